package event

import (
	"math"
	"strconv"
	"time"
	"unicode/utf8"
)

// AppendJSON appends e as canonical JSON to dst: fields in a fixed order, ts
// in UTC with as many fraction digits as it needs, attributes in key order,
// value always written for a track. What Decode returns, AppendJSON writes
// back to an equal Event. A non-finite Value is written as 1e999 (or
// -1e999), which Decode rejects as non_finite, since JSON has no NaN or
// infinity; text that is not UTF-8 is written as U+FFFD.
func (e Event) AppendJSON(dst []byte) []byte {
	dst = append(dst, `{"type":"`...)
	dst = append(dst, e.Type.String()...)
	dst = append(dst, `","event_id":`...)
	dst = appendString(dst, e.ID)
	dst = append(dst, `,"ts":"`...)
	dst = e.TS.UTC().AppendFormat(dst, time.RFC3339Nano)
	dst = append(dst, `","unit_id":`...)
	dst = appendString(dst, e.Unit)
	switch e.Type {
	case Exposure:
		dst = append(dst, `,"experiment":`...)
		dst = appendString(dst, e.Experiment)
		dst = append(dst, `,"variant":`...)
		dst = appendString(dst, e.Variant)
	case Track:
		dst = append(dst, `,"event":`...)
		dst = appendString(dst, e.Name)
		dst = append(dst, `,"value":`...)
		switch {
		case math.IsInf(e.Value, -1):
			dst = append(dst, "-1e999"...)
		case math.IsInf(e.Value, 1), math.IsNaN(e.Value):
			dst = append(dst, "1e999"...)
		default:
			dst = strconv.AppendFloat(dst, e.Value, 'g', -1, 64)
		}
	}
	if len(e.AttrKeys) > 0 {
		dst = append(dst, `,"attributes":{`...)
		for i, k := range e.AttrKeys {
			if i > 0 {
				dst = append(dst, ',')
			}
			dst = appendString(dst, k)
			dst = append(dst, ':')
			v := ""
			if i < len(e.AttrValues) {
				v = e.AttrValues[i]
			}
			dst = appendString(dst, v)
		}
		dst = append(dst, '}')
	}
	return append(dst, '}')
}

// appendString appends s as a JSON string, escaping only what JSON requires.
func appendString(dst []byte, s string) []byte {
	const hex = "0123456789abcdef"
	dst = append(dst, '"')
	run := 0
	for i := 0; i < len(s); {
		c := s[i]
		if c >= 0x20 && c != '"' && c != '\\' && c < utf8.RuneSelf {
			i++
			continue
		}
		if c >= utf8.RuneSelf {
			r, n := utf8.DecodeRuneInString(s[i:])
			if r != utf8.RuneError || n != 1 {
				i += n
				continue
			}
		}
		dst = append(dst, s[run:i]...)
		switch c {
		case '"', '\\':
			dst = append(dst, '\\', c)
		case '\n':
			dst = append(dst, `\n`...)
		case '\r':
			dst = append(dst, `\r`...)
		case '\t':
			dst = append(dst, `\t`...)
		default:
			if c < 0x20 {
				dst = append(dst, '\\', 'u', '0', '0', hex[c>>4], hex[c&0xf])
			} else {
				dst = append(dst, `\ufffd`...)
			}
		}
		i++
		run = i
	}
	dst = append(dst, s[run:]...)
	return append(dst, '"')
}

// Peek returns the "type" and "event_id" of a raw event, for a publisher to
// pick the subject (SubjectPrefix+typ) and the Nats-Msg-Id header. It checks
// only that data is one JSON object whose "type" is a string; id is empty when
// "event_id" is absent or not a string. Whether the event is valid is for
// Decode to say, after the message is published, so that a bad event reaches
// the dead-letter stream rather than vanishing in the publisher. A typ that is
// not "exposure" or "track" makes no valid subject token when it is empty or
// holds '.', '*', '>' or white space: publishers should send such events to
// SubjectPrefix+"unknown", where ingest dead-letters them as unknown_subject.
func Peek(data []byte) (typ string, id string, err error) {
	d := Decoder{peek: true}
	if err := d.parse(data); err != nil {
		return "", "", err
	}
	switch t := d.fields[fType]; t.kind {
	case kindAbsent:
		return "", "", errorf(ReasonMissingField, "field %q is required: %q or %q", "type", Exposure, Track)
	case kindString:
		switch string(d.str(t)) { // the common types without an allocation
		case "exposure":
			typ = "exposure"
		case "track":
			typ = "track"
		default:
			typ = string(d.str(t))
		}
	default:
		return "", "", errorf(ReasonSchema, "field %q: must be a string, not %s", "type", t.kind)
	}
	if t := d.fields[fEventID]; t.kind == kindString {
		id = string(d.str(t))
	}
	return typ, id, nil
}
