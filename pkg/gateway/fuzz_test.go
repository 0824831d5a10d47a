package gateway

import (
	"encoding/json"
	"errors"
	"testing"
	"time"

	"github.com/verdictlabs/verdict/pkg/event"
)

// FuzzSegment feeds arbitrary bytes through what every Segment message of
// a request goes through: decoding, then Map. Nothing may panic; a refusal
// is an *event.Error wrapping event.ErrInvalid (it is dead-lettered with
// its reason); and an event it makes is one JSON object that ingest's
// decoder reads, failing at most on what Map leaves to ingest (keys, the
// time window), never as malformed.
func FuzzSegment(f *testing.F) {
	for _, seed := range []string{
		`{"type":"track","event":"Order Completed","userId":"u1","messageId":"m1","timestamp":"2026-11-27T10:00:00Z","properties":{"revenue":42,"plan":"pro"}}`,
		`{"type":"track","event":"Experiment Viewed","anonymousId":"a1","messageId":"m2","properties":{"experimentId":"checkout","variationId":"one-page"},"context":{"os":{"name":"iOS"},"locale":"en-GB"}}`,
		`{"type":"page","userId":42,"messageId":"m3","sentAt":"2026-11-27T10:00:01Z","originalTimestamp":"2026-11-27T10:00:00Z"}`,
		`{"type":"track","event":"","userId":"","properties":{"value":"NaN"}}`,
		`{"type":"identify","traits":{"email":"a@b"}}`,
		`not json`,
	} {
		f.Add([]byte(seed))
	}
	received := time.Date(2026, 11, 27, 10, 0, 5, 0, time.UTC)
	dec := event.NewDecoder(event.Window{MaxAge: 100 * 365 * 24 * time.Hour, MaxFuture: 100 * 365 * 24 * time.Hour})
	f.Fuzz(func(t *testing.T, raw []byte) {
		m, err := decodeMessage(raw)
		if err != nil {
			var e *event.Error
			if !errors.As(err, &e) || !errors.Is(err, event.ErrInvalid) {
				t.Fatalf("decodeMessage(%q) = %v, not an *event.Error", raw, err)
			}
			return
		}
		for _, unit := range []Unit{UnitUser, UnitAnonymous} {
			e, ok, err := Map(m, received, "2026-11-27T10:00:06Z", unit)
			if err != nil {
				var ee *event.Error
				if !errors.As(err, &ee) || !errors.Is(err, event.ErrInvalid) {
					t.Fatalf("Map(%q) = %v, not an *event.Error", raw, err)
				}
				continue
			}
			if !ok {
				continue
			}
			b := e.AppendJSON(nil)
			if !json.Valid(b) {
				t.Fatalf("Map(%q) made invalid JSON %q", raw, b)
			}
			if _, err := dec.Decode(e.Type.Subject(), b, received); err != nil {
				var ee *event.Error
				if errors.As(err, &ee) && ee.Reason == event.ReasonMalformedJSON {
					t.Fatalf("Map(%q) made %q, which ingest reads as malformed: %v", raw, b, err)
				}
			}
		}
	})
}
