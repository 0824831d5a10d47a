package event

import (
	"errors"
	"slices"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// schemaReasons are the rejections the JSON Schemas express; the others
// (subject, size, JSON syntax, non-finite, window) are outside them.
var schemaReasons = []Reason{ReasonMissingField, ReasonSchema, ReasonBadKey, ReasonBadTimestamp, ReasonTypeMismatch}

var fuzzSubjects = []string{SubjectExposure, SubjectTrack, "verdict.events.identify"}

// FuzzDecode checks that Decode never panics, that every error is an *Error
// with a known reason, that what it accepts AppendJSON writes back to the
// same Event, and that the JSON Schema agrees with it on every message it
// can read as JSON: the schema rejects exactly when the Decoder gives a
// reason the schema expresses.
func FuzzDecode(f *testing.F) {
	c := readCorpus(f)
	for _, e := range c.Entries {
		if e.PadTo == 0 {
			f.Add(uint8(max(0, slices.Index(fuzzSubjects, e.Subject))), e.data(f))
		}
	}
	compiled := compileSchemas(f)
	now := c.Now
	d := NewDecoder(DefaultWindow)
	again := NewDecoder(DefaultWindow)

	f.Fuzz(func(t *testing.T, subj uint8, data []byte) {
		subject := fuzzSubjects[int(subj)%len(fuzzSubjects)]
		ev, err := d.Decode(subject, data, now)
		if err != nil {
			var e *Error
			if !errors.As(err, &e) || !errors.Is(err, ErrInvalid) {
				t.Fatalf("Decode error %v is not an *Error wrapping ErrInvalid", err)
			}
			if !slices.Contains(allReasons, e.Reason) {
				t.Fatalf("Decode reason %q is not one of the Reasons", e.Reason)
			}
			if strings.ContainsAny(e.Detail, "\r\n") {
				t.Fatalf("Detail %q spans lines; it must fit one header", e.Detail)
			}
			s := compiled[subject]
			if s == nil || e.Reason == ReasonTooLarge || e.Reason == ReasonMalformedJSON {
				return
			}
			inSchema := slices.Contains(schemaReasons, e.Reason)
			if accepts := schemaAccepts(s, data); accepts == inSchema {
				t.Fatalf("Decode says %v, yet the schema accepts = %t", err, accepts)
			}
			return
		}

		if !schemaAccepts(compiled[subject], data) {
			t.Fatalf("Decode accepts what the %s schema rejects", subject)
		}
		enc := ev.AppendJSON(nil)
		ev2, err := again.Decode(subject, enc, now)
		if err != nil {
			t.Fatalf("Decode(AppendJSON(event)) = %v\nmessage: %q\nre-encoded: %q", err, data, enc)
		}
		if diff := cmp.Diff(ev, ev2); diff != "" {
			t.Fatalf("Decode(AppendJSON(event)) differs (-first +again):\n%s", diff)
		}
	})
}
