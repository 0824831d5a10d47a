package event

import (
	"errors"
	"time"
)

// Type is the kind of an event, fixed by its subject and its "type" field.
type Type uint8

const (
	// Exposure records that a unit saw a variant of an experiment.
	Exposure Type = iota + 1
	// Track records a behaviour event (a purchase, a page load, ...).
	Track
)

// String returns the event's "type" value: "exposure" or "track".
func (t Type) String() string {
	switch t {
	case Exposure:
		return "exposure"
	case Track:
		return "track"
	}
	return "unknown"
}

// Subject returns the NATS subject that carries events of type t.
func (t Type) Subject() string { return SubjectPrefix + t.String() }

// Subjects on which events arrive; SubjectPrefix+Type.String() is the subject
// of each type.
const (
	SubjectPrefix   = "verdict.events."
	SubjectExposure = SubjectPrefix + "exposure"
	SubjectTrack    = SubjectPrefix + "track"
)

// Event is one decoded and validated event. Fields that do not belong to its
// Type are zero.
type Event struct {
	Type Type
	ID   string    // event_id: the dedup key
	TS   time.Time // ts, in UTC
	Unit string    // unit_id

	// AttrKeys and AttrValues are the attributes, sorted by key, as the
	// parallel arrays ClickHouse stores.
	AttrKeys   []string
	AttrValues []string

	Experiment string // exposure
	Variant    string // exposure

	Name  string  // track: "event"
	Value float64 // track: "value", default 1

	// Seq is the sequence number in VERDICT_EVENTS of the message the
	// event came in, set by ingest (0 otherwise). It is no field of the
	// JSON: it says where the event arrived, so that a readout can read
	// only what arrived since the last one.
	Seq uint64
}

// ErrInvalid is wrapped by every error that means the event itself is bad:
// it goes to the dead-letter stream and is never retried.
var ErrInvalid = errors.New("invalid event")

// Reason names why an event was rejected. It is the last token of the
// dead-letter subject verdict.dlq.<reason> and the label of
// verdict_events_invalid_total.
type Reason string

// The reasons an event is rejected.
const (
	ReasonTooLarge       Reason = "too_large"        // over MaxSize bytes
	ReasonMalformedJSON  Reason = "malformed_json"   // not one JSON object in UTF-8, or a field given twice
	ReasonMissingField   Reason = "missing_field"    // a required field is absent
	ReasonSchema         Reason = "schema_violation" // wrong JSON type or length, too many attributes
	ReasonBadKey         Reason = "bad_key"          // a key or attribute name does not match KeyPattern
	ReasonBadTimestamp   Reason = "bad_timestamp"    // ts is not RFC 3339
	ReasonOutOfWindow    Reason = "ts_out_of_window" // ts too old or too far in the future
	ReasonNonFinite      Reason = "non_finite"       // value is not a finite number
	ReasonUnknownSubject Reason = "unknown_subject"  // not verdict.events.exposure or .track
	ReasonTypeMismatch   Reason = "type_mismatch"    // "type" disagrees with the subject
)

// Reasons lists every Reason, in the order above.
func Reasons() []Reason {
	return []Reason{
		ReasonTooLarge, ReasonMalformedJSON, ReasonMissingField, ReasonSchema, ReasonBadKey,
		ReasonBadTimestamp, ReasonOutOfWindow, ReasonNonFinite, ReasonUnknownSubject, ReasonTypeMismatch,
	}
}

// Error is a rejected event: why, and what exactly was wrong. It wraps
// ErrInvalid.
type Error struct {
	Reason Reason
	Detail string // e.g. `field "unit_id": must be 1 to 256 characters`
}

func (e *Error) Error() string { return string(e.Reason) + ": " + e.Detail }

// Unwrap makes errors.Is(err, ErrInvalid) true.
func (e *Error) Unwrap() error { return ErrInvalid }

// Limits of the contract.
const (
	MaxSize       = 64 << 10 // bytes in one message
	MaxAttributes = 32
	MaxIDLen      = 128
	MaxUnitLen    = 256
	MaxKeyLen     = 128 // experiment, variant, event and attribute names
	MaxAttrValue  = 256 // characters in one attribute value
	// KeyPattern is the pattern of experiment, variant, event and metric keys.
	KeyPattern = `^[a-z0-9][a-z0-9_.-]{0,127}$`
)

// Window is the accepted range of ts around the time an event is decoded:
// [now-MaxAge, now+MaxFuture], both ends included. A zero field takes the
// value of DefaultWindow.
type Window struct {
	MaxAge    time.Duration // default 30 days
	MaxFuture time.Duration // default 5 minutes
}

// DefaultWindow is the design's default accepted window.
var DefaultWindow = Window{MaxAge: 30 * 24 * time.Hour, MaxFuture: 5 * time.Minute}
