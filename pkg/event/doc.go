// Package event defines the events that product analytics sends to verdict
// (exposures and tracks), and decodes and validates them exactly as the JSON
// Schemas in schemas/events say.
//
// A Decoder turns one NATS message into an Event or an *Error whose Reason
// names the dead-letter subject. It is a hand-written, single-pass scanner:
// reflection-based encoding/json costs several times more per event and
// decoding is the first bottleneck of ingest (see shared/PERF.md). The
// scanner is strict JSON (RFC 8259, as encoding/json reads it), so anything
// it accepts a JSON Schema validator can read too; the corpus and fuzz tests
// hold the two together.
//
// Checks run in this order, and the first failure is the one reported:
//
//	subject not verdict.events.exposure or .track  unknown_subject
//	over MaxSize bytes                             too_large
//	not one JSON object in UTF-8, a field twice    malformed_json
//	"type" absent                                  missing_field
//	"type" not a string                            schema_violation
//	"type" not the subject's type                  type_mismatch
//	a required field absent                        missing_field
//	wrong JSON type or length, > 32 attributes     schema_violation
//	a key or attribute name not in KeyPattern      bad_key
//	ts not RFC 3339                                bad_timestamp
//	value not a finite float64 (1e999)             non_finite
//	ts outside the Window around now               ts_out_of_window
//
// Where the design is silent this package decides:
//   - Fields outside the schema are allowed and ignored: SDKs add their
//     context (library, page, ...) and an event should not be lost for it.
//     Ignored values must still be valid JSON, nested at most 100 deep.
//   - A contract field given twice is malformed_json, not "last one wins":
//     JSON parsers disagree on duplicates, and the dedup key must not depend
//     on which one reads the message. Unknown fields may repeat.
//   - Attribute names follow KeyPattern (bad_key otherwise), because they are
//     the segment dimensions that experiment definitions name; values are
//     strings of at most MaxAttrValue characters, empty allowed. null is a
//     schema_violation wherever it appears in a contract field.
//   - Text must be UTF-8; an escaped lone surrogate (\ud800) becomes U+FFFD,
//     as encoding/json does. Lengths count characters (code points), as JSON
//     Schema does.
//   - ts is RFC 3339 with seconds, 'T' or 't', and 'Z', 'z' or ±hh:mm; the
//     fraction is kept to the nanosecond; leap seconds (:60) are refused
//     since time.Time cannot hold them. The schema says the same with a
//     pattern beside format "date-time".
package event
