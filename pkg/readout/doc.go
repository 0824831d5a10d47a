// Package readout defines the readout: the document that says where an
// experiment stands — collecting, decided (persevere, pivot or salvage) or
// invalid — with the evidence, in numbers for analysts and in plain sentences
// for product managers.
//
// Package decide writes readouts (decide.Verdict); the rules service stamps
// Version and ComputedAt and publishes them on verdict.readouts.<experiment>,
// stores them in ClickHouse and serves them over HTTP; the notifier and the
// readout page read them. The JSON encoding is the public contract of
// DESIGN.md ("Readout") and is described by schemas/readout.schema.json; the
// tests validate golden readouts against that schema, so the two cannot
// drift apart.
//
// Conventions of the encoding:
//   - A missing value is null, never absent and never a made-up number:
//     label while collecting, rel_effect and rel_ci when the control mean is
//     0, the SRM p-value before every variant has 8 units, the target, ETA
//     and power before they can be planned.
//   - Lists are [] when empty, never null.
//   - Intervals are [lo, hi] arrays; times are RFC 3339.
//   - No NaN or infinity is ever encoded: MarshalJSON refuses a readout that
//     holds one (see Validate) rather than writing something a JSON parser
//     would reject.
//   - Relative quantities (rel_effect, margin, rates, shares, fraction) are
//     fractions: 0.042 is 4.2%.
package readout
