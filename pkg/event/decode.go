package event

import (
	"fmt"
	"math"
	"strconv"
	"time"
	"unicode/utf8"
)

// maxDepth bounds the nesting of ignored fields. encoding/json allows 10000;
// no SDK context comes near 100, and the bound keeps a hostile message from
// recursing deep.
const maxDepth = 100

// field is a member of the event object that the contract names.
type field uint8

const (
	fType field = iota
	fEventID
	fTS
	fUnit
	fAttributes
	fExperiment
	fVariant
	fEvent
	fValue
	nFields
	fOther = nFields // a field outside the contract: checked as JSON, ignored
)

var fieldNames = [nFields]string{
	fType:       "type",
	fEventID:    "event_id",
	fTS:         "ts",
	fUnit:       "unit_id",
	fAttributes: "attributes",
	fExperiment: "experiment",
	fVariant:    "variant",
	fEvent:      "event",
	fValue:      "value",
}

// required lists the required fields of each type besides "type", in the
// order they are checked.
var required = [...][]field{
	Exposure: {fEventID, fTS, fUnit, fExperiment, fVariant},
	Track:    {fEventID, fTS, fUnit, fEvent},
}

// keys are the fields of each type that hold keys.
var keys = [...][]field{
	Exposure: {fExperiment, fVariant},
	Track:    {fEvent},
}

func lookupField(name []byte) field {
	// A switch on string(name) does not allocate.
	switch string(name) {
	case "type":
		return fType
	case "event_id":
		return fEventID
	case "ts":
		return fTS
	case "unit_id":
		return fUnit
	case "attributes":
		return fAttributes
	case "experiment":
		return fExperiment
	case "variant":
		return fVariant
	case "event":
		return fEvent
	case "value":
		return fValue
	}
	return fOther
}

// kind is the JSON type of a value.
type kind uint8

const (
	kindAbsent kind = iota
	kindString
	kindNumber
	kindBool
	kindNull
	kindObject
	kindArray
)

func (k kind) String() string {
	return [...]string{"absent", "a string", "a number", "a boolean", "null", "an object", "an array"}[k]
}

// token is a value the decoder kept. For a string, [start, end) is its
// unescaped text in Decoder.buf; for a number, its literal in the message.
type token struct {
	kind       kind
	start, end int
}

type attr struct {
	key, val token
}

// Decoder decodes and validates events. It keeps its buffers from one
// message to the next, so a long-lived Decoder allocates only the strings of
// each Event. A Decoder is not safe for concurrent use: give each goroutine
// its own.
type Decoder struct {
	window Window
	peek   bool // keep only "type" and "event_id"

	// State of the message being decoded.
	data   []byte
	pos    int
	fields [nFields]token
	attrs  []attr
	buf    []byte // unescaped strings of the fields kept, in one piece
	key    []byte // unescaped name of the member being read
}

// NewDecoder returns a Decoder that accepts ts within w around the time
// passed to Decode.
func NewDecoder(w Window) *Decoder {
	if w.MaxAge == 0 {
		w.MaxAge = DefaultWindow.MaxAge
	}
	if w.MaxFuture == 0 {
		w.MaxFuture = DefaultWindow.MaxFuture
	}
	return &Decoder{window: w}
}

// Decode decodes one message that arrived on subject, and validates it as of
// now. The Event shares no memory with data, which the caller may reuse.
// Every error is an *Error (errors.Is(err, ErrInvalid) holds); the package
// documentation lists the order of the checks.
func (d *Decoder) Decode(subject string, data []byte, now time.Time) (Event, error) {
	var typ Type
	switch subject {
	case SubjectExposure:
		typ = Exposure
	case SubjectTrack:
		typ = Track
	default:
		return Event{}, errorf(ReasonUnknownSubject, "subject %q: events go to %s or %s", subject, SubjectExposure, SubjectTrack)
	}
	if len(data) > MaxSize {
		return Event{}, errorf(ReasonTooLarge, "message is %d bytes; the limit is %d", len(data), MaxSize)
	}
	if err := d.parse(data); err != nil {
		return Event{}, err
	}
	if err := d.checkType(typ); err != nil {
		return Event{}, err
	}
	for _, f := range required[typ] {
		if d.fields[f].kind == kindAbsent {
			return Event{}, errorf(ReasonMissingField, "field %q is required in %s events", fieldNames[f], typ)
		}
	}
	if err := d.checkSchema(typ); err != nil {
		return Event{}, err
	}
	if err := d.checkKeys(typ); err != nil {
		return Event{}, err
	}

	ts, ok := parseTime(d.str(d.fields[fTS]))
	if !ok {
		return Event{}, errorf(ReasonBadTimestamp, "field %q: %s is not an RFC 3339 date-time such as 2026-11-05T14:03:27.512Z or 2026-11-05T15:03:27+01:00",
			"ts", quote(d.str(d.fields[fTS])))
	}
	value := 1.0
	if v := d.fields[fValue]; typ == Track && v.kind == kindNumber {
		// The literal has JSON number syntax, so the only failure is a range
		// error, which returns ±Inf (or 0 for underflow, which is fine).
		value, _ = strconv.ParseFloat(string(d.data[v.start:v.end]), 64)
		if math.IsInf(value, 0) {
			return Event{}, errorf(ReasonNonFinite, "field %q: %s is beyond the range of a 64-bit float", "value", quote(d.data[v.start:v.end]))
		}
	}
	if lo := now.Add(-d.window.MaxAge); ts.Before(lo) {
		return Event{}, errorf(ReasonOutOfWindow, "field %q: %s is more than %s before now (%s); events that old are not accepted",
			"ts", ts.Format(time.RFC3339Nano), d.window.MaxAge, now.UTC().Format(time.RFC3339))
	}
	if hi := now.Add(d.window.MaxFuture); ts.After(hi) {
		return Event{}, errorf(ReasonOutOfWindow, "field %q: %s is more than %s after now (%s); check the sender's clock",
			"ts", ts.Format(time.RFC3339Nano), d.window.MaxFuture, now.UTC().Format(time.RFC3339))
	}

	// One allocation holds every string of the event.
	all := string(d.buf)
	s := func(t token) string { return all[t.start:t.end] }
	e := Event{
		Type: typ,
		ID:   s(d.fields[fEventID]),
		TS:   ts,
		Unit: s(d.fields[fUnit]),
	}
	if typ == Exposure {
		e.Experiment = s(d.fields[fExperiment])
		e.Variant = s(d.fields[fVariant])
	} else {
		e.Name = s(d.fields[fEvent])
		e.Value = value
	}
	if n := len(d.attrs); n > 0 {
		kv := make([]string, 2*n)
		for i, a := range d.attrs {
			kv[i], kv[n+i] = s(a.key), s(a.val)
		}
		e.AttrKeys, e.AttrValues = kv[:n:n], kv[n:]
	}
	return e, nil
}

func (d *Decoder) str(t token) []byte { return d.buf[t.start:t.end] }

func (d *Decoder) checkType(typ Type) error {
	t := d.fields[fType]
	switch {
	case t.kind == kindAbsent:
		return errorf(ReasonMissingField, "field %q is required: %q on %s", "type", typ, typ.Subject())
	case t.kind != kindString:
		return errorf(ReasonSchema, "field %q: must be a string, not %s", "type", t.kind)
	case string(d.str(t)) != typ.String():
		return errorf(ReasonTypeMismatch, "field %q: %s on subject %s, which carries only %q events",
			"type", quote(d.str(t)), typ.Subject(), typ)
	}
	return nil
}

func (d *Decoder) checkSchema(typ Type) error {
	if err := d.checkString(fEventID, 1, MaxIDLen); err != nil {
		return err
	}
	if err := d.checkString(fTS, 0, 0); err != nil {
		return err
	}
	if err := d.checkString(fUnit, 1, MaxUnitLen); err != nil {
		return err
	}
	if a := d.fields[fAttributes]; a.kind != kindAbsent {
		if a.kind != kindObject {
			return errorf(ReasonSchema, "field %q: must be an object of strings, not %s", "attributes", a.kind)
		}
		if len(d.attrs) > MaxAttributes {
			return errorf(ReasonSchema, "field %q: %d attributes; at most %d are accepted", "attributes", len(d.attrs), MaxAttributes)
		}
		for _, at := range d.attrs {
			if at.val.kind != kindString {
				return errorf(ReasonSchema, "field %q: attribute %s must be a string, not %s", "attributes", quote(d.str(at.key)), at.val.kind)
			}
			if n := runes(d.str(at.val)); n > MaxAttrValue {
				return errorf(ReasonSchema, "field %q: attribute %s is %d characters; at most %d are accepted",
					"attributes", quote(d.str(at.key)), n, MaxAttrValue)
			}
		}
	}
	for _, f := range keys[typ] {
		if err := d.checkString(f, 0, 0); err != nil {
			return err
		}
	}
	if v := d.fields[fValue]; typ == Track && v.kind != kindAbsent && v.kind != kindNumber {
		return errorf(ReasonSchema, "field %q: must be a number, not %s; leave it out to mean 1", "value", v.kind)
	}
	return nil
}

// checkString checks that a present field is a string of min to max
// characters; max 0 means any length.
func (d *Decoder) checkString(f field, min, max int) error {
	t := d.fields[f]
	if t.kind != kindString {
		return errorf(ReasonSchema, "field %q: must be a string, not %s", fieldNames[f], t.kind)
	}
	if max == 0 {
		return nil
	}
	// Bytes bound characters from above, so most strings need no counting.
	if n := t.end - t.start; n < min || n > max && runes(d.str(t)) > max {
		return errorf(ReasonSchema, "field %q: must be %d to %d characters, not %d", fieldNames[f], min, max, runes(d.str(t)))
	}
	return nil
}

func runes(b []byte) int { return utf8.RuneCount(b) }

func (d *Decoder) checkKeys(typ Type) error {
	for _, f := range keys[typ] {
		if k := d.str(d.fields[f]); !IsKey(k) {
			return errorf(ReasonBadKey, "field %q: %s does not match %s (lowercase letters, digits, '_', '.', '-')", fieldNames[f], quote(k), KeyPattern)
		}
	}
	for _, a := range d.attrs {
		if k := d.str(a.key); !IsKey(k) {
			return errorf(ReasonBadKey, "field %q: attribute name %s does not match %s (lowercase letters, digits, '_', '.', '-')", "attributes", quote(k), KeyPattern)
		}
	}
	return nil
}

// IsKey reports whether k matches KeyPattern, the pattern of experiment,
// variant, event, metric and attribute keys.
func IsKey[S ~string | ~[]byte](k S) bool {
	if len(k) == 0 || len(k) > MaxKeyLen {
		return false
	}
	for i := 0; i < len(k); i++ {
		c := k[i]
		switch {
		case 'a' <= c && c <= 'z', '0' <= c && c <= '9':
		case i > 0 && (c == '_' || c == '.' || c == '-'):
		default:
			return false
		}
	}
	return true
}

func errorf(r Reason, format string, args ...any) *Error {
	return &Error{Reason: r, Detail: fmt.Sprintf(format, args...)}
}

// quote quotes a value for an error's Detail, which travels in a one-line
// header: control characters are escaped and long values cut.
func quote(b []byte) string {
	const max = 64
	if len(b) <= max {
		return strconv.Quote(string(b))
	}
	n := max
	for n > 0 && !utf8.RuneStart(b[n]) {
		n--
	}
	return strconv.Quote(string(b[:n])) + "..."
}

// parseTime parses an RFC 3339 date-time with seconds:
// YYYY-MM-DD[Tt]hh:mm:ss[.frac]([Zz]|[+-]hh:mm). Leap seconds are refused.
func parseTime(b []byte) (time.Time, bool) {
	if len(b) < len("2006-01-02T15:04:05Z") {
		return time.Time{}, false
	}
	num := func(i, n int) int {
		v := 0
		for _, c := range b[i : i+n] {
			if c < '0' || c > '9' {
				return -1
			}
			v = v*10 + int(c-'0')
		}
		return v
	}
	year, month, day := num(0, 4), num(5, 2), num(8, 2)
	hour, minute, sec := num(11, 2), num(14, 2), num(17, 2)
	if b[4] != '-' || b[7] != '-' || b[10] != 'T' && b[10] != 't' || b[13] != ':' || b[16] != ':' ||
		year < 0 || month < 1 || month > 12 || day < 1 || day > daysIn(month, year) ||
		hour < 0 || hour > 23 || minute < 0 || minute > 59 || sec < 0 || sec > 59 {
		return time.Time{}, false
	}
	b = b[19:]
	nsec := 0
	if b[0] == '.' {
		i := 1
		for ; i < len(b) && '0' <= b[i] && b[i] <= '9'; i++ {
			if i <= 9 {
				nsec = nsec*10 + int(b[i]-'0')
			}
		}
		if i == 1 {
			return time.Time{}, false
		}
		for n := i; n <= 9; n++ {
			nsec *= 10
		}
		b = b[i:]
	}
	offset := 0
	switch {
	case len(b) == 1 && (b[0] == 'Z' || b[0] == 'z'):
	case len(b) == 6 && (b[0] == '+' || b[0] == '-') && b[3] == ':':
		oh, om := num(1, 2), num(4, 2)
		if oh < 0 || oh > 23 || om < 0 || om > 59 {
			return time.Time{}, false
		}
		offset = (oh*60 + om) * 60
		if b[0] == '-' {
			offset = -offset
		}
	default:
		return time.Time{}, false
	}
	t := time.Date(year, time.Month(month), day, hour, minute, sec, nsec, time.UTC)
	return t.Add(-time.Duration(offset) * time.Second), true
}

func daysIn(month, year int) int {
	switch month {
	case 2:
		if year%4 == 0 && (year%100 != 0 || year%400 == 0) {
			return 29
		}
		return 28
	case 4, 6, 9, 11:
		return 30
	}
	return 31
}
