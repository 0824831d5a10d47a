package event

import (
	"encoding/json"
	"errors"
	"slices"
	"testing"
	"time"

	"github.com/valyala/fastjson"
)

// benchEvents are what an SDK sends: a few attributes and some context that
// verdict ignores.
var benchEvents = []struct {
	name, subject string
	data          []byte
}{
	{"exposure", SubjectExposure, []byte(`{"type":"exposure","event_id":"01JC5Q8V2W6X9Y3Z4A5B6C7D8E","ts":"2026-11-10T11:59:27.512Z","unit_id":"user-0008812","experiment":"checkout-redesign","variant":"one-page","attributes":{"platform":"ios","country":"DE","plan":"pro"},"context":{"library":{"name":"analytics-go","version":"3.3.0"}}}`)},
	{"track", SubjectTrack, []byte(`{"type":"track","event_id":"01JC5Q9K4M1N2P3Q4R5S6T7U8V","ts":"2026-11-10T12:59:02.5+01:00","unit_id":"user-0008812","event":"purchase","value":42.5,"attributes":{"platform":"ios","country":"DE","plan":"pro"},"context":{"library":{"name":"analytics-go","version":"3.3.0"}}}`)},
}

func BenchmarkDecode(b *testing.B) {
	for _, be := range benchEvents {
		b.Run(be.name, func(b *testing.B) {
			d := NewDecoder(DefaultWindow)
			b.SetBytes(int64(len(be.data)))
			b.ReportAllocs()
			for b.Loop() {
				if _, err := d.Decode(be.subject, be.data, testNow); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkDecodeEncodingJSON is the reflection baseline: encoding/json into
// a struct, then the same Event. It checks less than Decode does (no
// lengths in characters, no duplicate fields, no UTF-8), so it flatters
// encoding/json.
func BenchmarkDecodeEncodingJSON(b *testing.B) {
	for _, be := range benchEvents {
		b.Run(be.name, func(b *testing.B) {
			b.SetBytes(int64(len(be.data)))
			b.ReportAllocs()
			for b.Loop() {
				if _, err := decodeEncodingJSON(be.subject, be.data, testNow); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkDecodeFastjson is fastjson's parser doing the same job. fastjson
// parses leniently (NaN, raw control characters, bad escapes), so it needs
// its Validate pass first to be strict JSON; this measures why the Decoder
// scans by hand instead.
func BenchmarkDecodeFastjson(b *testing.B) {
	for _, be := range benchEvents {
		b.Run(be.name, func(b *testing.B) {
			var p fastjson.Parser
			b.SetBytes(int64(len(be.data)))
			b.ReportAllocs()
			for b.Loop() {
				if _, err := decodeFastjson(&p, be.subject, be.data, testNow); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

func BenchmarkAppendJSON(b *testing.B) {
	ev, err := NewDecoder(DefaultWindow).Decode(SubjectTrack, benchEvents[1].data, testNow)
	if err != nil {
		b.Fatal(err)
	}
	var buf []byte
	b.ReportAllocs()
	for b.Loop() {
		buf = ev.AppendJSON(buf[:0])
	}
}

func BenchmarkPeek(b *testing.B) {
	b.ReportAllocs()
	for b.Loop() {
		if _, _, err := Peek(benchEvents[1].data); err != nil {
			b.Fatal(err)
		}
	}
}

type jsonEvent struct {
	Type       string            `json:"type"`
	EventID    string            `json:"event_id"`
	TS         string            `json:"ts"`
	UnitID     string            `json:"unit_id"`
	Attributes map[string]string `json:"attributes"`
	Experiment string            `json:"experiment"`
	Variant    string            `json:"variant"`
	Event      string            `json:"event"`
	Value      *float64          `json:"value"`
}

var errBaseline = errors.New("invalid")

func decodeEncodingJSON(subject string, data []byte, now time.Time) (Event, error) {
	var j jsonEvent
	if err := json.Unmarshal(data, &j); err != nil {
		return Event{}, err
	}
	return finishBaseline(subject, j, now)
}

func decodeFastjson(p *fastjson.Parser, subject string, data []byte, now time.Time) (Event, error) {
	if err := fastjson.ValidateBytes(data); err != nil {
		return Event{}, err
	}
	v, err := p.ParseBytes(data)
	if err != nil {
		return Event{}, err
	}
	str := func(k string) string { return string(v.GetStringBytes(k)) }
	j := jsonEvent{
		Type: str("type"), EventID: str("event_id"), TS: str("ts"), UnitID: str("unit_id"),
		Experiment: str("experiment"), Variant: str("variant"), Event: str("event"),
	}
	if x := v.Get("value"); x != nil {
		f, err := x.Float64()
		if err != nil {
			return Event{}, err
		}
		j.Value = &f
	}
	if o := v.GetObject("attributes"); o != nil {
		j.Attributes = make(map[string]string, o.Len())
		o.Visit(func(k []byte, x *fastjson.Value) { j.Attributes[string(k)] = string(x.GetStringBytes()) })
	}
	return finishBaseline(subject, j, now)
}

// finishBaseline does the checks and the Event building that the baselines
// share.
func finishBaseline(subject string, j jsonEvent, now time.Time) (Event, error) {
	e := Event{ID: j.EventID, Unit: j.UnitID}
	switch {
	case subject == SubjectExposure && j.Type == "exposure":
		e.Type, e.Experiment, e.Variant = Exposure, j.Experiment, j.Variant
		if !IsKey(e.Experiment) || !IsKey(e.Variant) {
			return Event{}, errBaseline
		}
	case subject == SubjectTrack && j.Type == "track":
		e.Type, e.Name, e.Value = Track, j.Event, 1
		if j.Value != nil {
			e.Value = *j.Value
		}
		if !IsKey(e.Name) {
			return Event{}, errBaseline
		}
	default:
		return Event{}, errBaseline
	}
	if e.ID == "" || len(e.ID) > MaxIDLen || e.Unit == "" || len(e.Unit) > MaxUnitLen || len(j.Attributes) > MaxAttributes {
		return Event{}, errBaseline
	}
	ts, err := time.Parse(time.RFC3339Nano, j.TS)
	if err != nil {
		return Event{}, err
	}
	e.TS = ts.UTC()
	if e.TS.Before(now.Add(-DefaultWindow.MaxAge)) || e.TS.After(now.Add(DefaultWindow.MaxFuture)) {
		return Event{}, errBaseline
	}
	if len(j.Attributes) > 0 {
		for k := range j.Attributes {
			if !IsKey(k) {
				return Event{}, errBaseline
			}
			e.AttrKeys = append(e.AttrKeys, k)
		}
		slices.Sort(e.AttrKeys)
		e.AttrValues = make([]string, len(e.AttrKeys))
		for i, k := range e.AttrKeys {
			e.AttrValues[i] = j.Attributes[k]
		}
	}
	return e, nil
}
