package event

import (
	"errors"
	"math"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

var testNow = time.Date(2026, 11, 10, 12, 0, 0, 0, time.UTC)

func TestDecode(t *testing.T) {
	tests := []struct {
		name    string
		subject string
		data    string
		want    Event
		wantErr *Error
	}{
		{
			name:    "exposure with attributes sorted and ts in UTC",
			subject: SubjectExposure,
			data: `{"type":"exposure","event_id":"e-1","ts":"2026-11-10T12:59:00.5+01:00","unit_id":"u-1",` +
				`"experiment":"checkout-redesign","variant":"one-page","attributes":{"platform":"ios","country":"DE","plan":""},` +
				`"context":{"library":{"name":"analytics-go"}}}`,
			want: Event{
				Type: Exposure, ID: "e-1", TS: time.Date(2026, 11, 10, 11, 59, 0, 500e6, time.UTC), Unit: "u-1",
				AttrKeys: []string{"country", "plan", "platform"}, AttrValues: []string{"DE", "", "ios"},
				Experiment: "checkout-redesign", Variant: "one-page",
			},
		},
		{
			name:    "track without value counts 1",
			subject: SubjectTrack,
			data:    `{"type":"track","event_id":"t-1","ts":"2026-11-10T11:59:00Z","unit_id":"u-1","event":"purchase","attributes":{}}`,
			want:    Event{Type: Track, ID: "t-1", TS: time.Date(2026, 11, 10, 11, 59, 0, 0, time.UTC), Unit: "u-1", Name: "purchase", Value: 1},
		},
		{
			name:    "track value, escapes and a surrogate pair",
			subject: SubjectTrack,
			data:    `{"type":"track","event_id":"a\"b\\c\u00e9\n","ts":"2026-11-10t11:59:00z","unit_id":"\ud83d\ude00\ud800x","event":"refund","value":-1.25e1}`,
			want:    Event{Type: Track, ID: "a\"b\\cé\n", TS: time.Date(2026, 11, 10, 11, 59, 0, 0, time.UTC), Unit: "😀\uFFFDx", Name: "refund", Value: -12.5},
		},
		{
			name:    "unknown subject",
			subject: "verdict.events.identify",
			data:    `{}`,
			wantErr: &Error{ReasonUnknownSubject, `subject "verdict.events.identify": events go to verdict.events.exposure or verdict.events.track`},
		},
		{
			name:    "too large",
			subject: SubjectTrack,
			data:    `{"x":"` + strings.Repeat("x", MaxSize) + `"}`,
			wantErr: &Error{ReasonTooLarge, `message is 65544 bytes; the limit is 65536`},
		},
		{
			name:    "not an object",
			subject: SubjectTrack,
			data:    `[{"type":"track"}]`,
			wantErr: &Error{ReasonMalformedJSON, `not a JSON object: it starts with "[{\"type\":\"track\""`},
		},
		{
			name:    "syntax error",
			subject: SubjectTrack,
			data:    `{"type" "track"}`,
			wantErr: &Error{ReasonMalformedJSON, `at byte 8: unexpected "\"" after an object member's name, where ':' should be`},
		},
		{
			name:    "not UTF-8",
			subject: SubjectTrack,
			data:    "{\"type\":\"tr\xffck\"}",
			wantErr: &Error{ReasonMalformedJSON, `at byte 11: not UTF-8`},
		},
		{
			name:    "truncated",
			subject: SubjectTrack,
			data:    `{"type":"track","ev`,
			wantErr: &Error{ReasonMalformedJSON, `unexpected end of JSON in a string, where the closing '"' should be`},
		},
		{
			name:    "field given twice",
			subject: SubjectTrack,
			data:    `{"type":"track","unit_id":"a","unit_id":"b"}`,
			wantErr: &Error{ReasonMalformedJSON, `field "unit_id" is given twice`},
		},
		{
			name:    "type absent",
			subject: SubjectExposure,
			data:    `{"event_id":"e"}`,
			wantErr: &Error{ReasonMissingField, `field "type" is required: "exposure" on verdict.events.exposure`},
		},
		{
			name:    "type mismatch",
			subject: SubjectExposure,
			data:    `{"type":"track"}`,
			wantErr: &Error{ReasonTypeMismatch, `field "type": "track" on subject verdict.events.exposure, which carries only "exposure" events`},
		},
		{
			name:    "missing field",
			subject: SubjectExposure,
			data:    `{"type":"exposure","event_id":"e","ts":"2026-11-10T11:59:00Z","unit_id":"u","experiment":"x"}`,
			wantErr: &Error{ReasonMissingField, `field "variant" is required in exposure events`},
		},
		{
			name:    "missing field before a schema violation",
			subject: SubjectTrack,
			data:    `{"type":"track","event_id":7,"ts":"2026-11-10T11:59:00Z","unit_id":"u"}`,
			wantErr: &Error{ReasonMissingField, `field "event" is required in track events`},
		},
		{
			name:    "unit_id too long, counted in characters",
			subject: SubjectTrack,
			data:    `{"type":"track","event_id":"t","ts":"2026-11-10T11:59:00Z","unit_id":"` + strings.Repeat("é", 257) + `","event":"e"}`,
			wantErr: &Error{ReasonSchema, `field "unit_id": must be 1 to 256 characters, not 257`},
		},
		{
			name:    "value null",
			subject: SubjectTrack,
			data:    `{"type":"track","event_id":"t","ts":"2026-11-10T11:59:00Z","unit_id":"u","event":"e","value":null}`,
			wantErr: &Error{ReasonSchema, `field "value": must be a number, not null; leave it out to mean 1`},
		},
		{
			name:    "attribute not a string",
			subject: SubjectTrack,
			data:    `{"type":"track","event_id":"t","ts":"2026-11-10T11:59:00Z","unit_id":"u","event":"e","attributes":{"plan":3}}`,
			wantErr: &Error{ReasonSchema, `field "attributes": attribute "plan" must be a string, not a number`},
		},
		{
			name:    "schema violation before a bad key",
			subject: SubjectExposure,
			data:    `{"type":"exposure","event_id":"","ts":"2026-11-10T11:59:00Z","unit_id":"u","experiment":"X","variant":"y"}`,
			wantErr: &Error{ReasonSchema, `field "event_id": must be 1 to 128 characters, not 0`},
		},
		{
			name:    "bad key",
			subject: SubjectExposure,
			data:    `{"type":"exposure","event_id":"e","ts":"2026-11-10T11:59:00Z","unit_id":"u","experiment":"x","variant":"Control"}`,
			wantErr: &Error{ReasonBadKey, `field "variant": "Control" does not match ^[a-z0-9][a-z0-9_.-]{0,127}$ (lowercase letters, digits, '_', '.', '-')`},
		},
		{
			name:    "bad attribute name",
			subject: SubjectExposure,
			data:    `{"type":"exposure","event_id":"e","ts":"2026-11-10T11:59:00Z","unit_id":"u","experiment":"x","variant":"y","attributes":{"OS":"ios"}}`,
			wantErr: &Error{ReasonBadKey, `field "attributes": attribute name "OS" does not match ^[a-z0-9][a-z0-9_.-]{0,127}$ (lowercase letters, digits, '_', '.', '-')`},
		},
		{
			name:    "bad timestamp",
			subject: SubjectTrack,
			data:    `{"type":"track","event_id":"t","ts":"2026-11-10 11:59:00","unit_id":"u","event":"e"}`,
			wantErr: &Error{ReasonBadTimestamp, `field "ts": "2026-11-10 11:59:00" is not an RFC 3339 date-time such as 2026-11-05T14:03:27.512Z or 2026-11-05T15:03:27+01:00`},
		},
		{
			name:    "non-finite value",
			subject: SubjectTrack,
			data:    `{"type":"track","event_id":"t","ts":"2026-11-10T11:59:00Z","unit_id":"u","event":"e","value":1e999}`,
			wantErr: &Error{ReasonNonFinite, `field "value": "1e999" is beyond the range of a 64-bit float`},
		},
		{
			name:    "too old",
			subject: SubjectTrack,
			data:    `{"type":"track","event_id":"t","ts":"2026-10-01T00:00:00+02:00","unit_id":"u","event":"e"}`,
			wantErr: &Error{ReasonOutOfWindow, `field "ts": 2026-09-30T22:00:00Z is more than 720h0m0s before now (2026-11-10T12:00:00Z); events that old are not accepted`},
		},
		{
			name:    "in the future",
			subject: SubjectTrack,
			data:    `{"type":"track","event_id":"t","ts":"2026-11-10T12:05:00.000000001Z","unit_id":"u","event":"e"}`,
			wantErr: &Error{ReasonOutOfWindow, `field "ts": 2026-11-10T12:05:00.000000001Z is more than 5m0s after now (2026-11-10T12:00:00Z); check the sender's clock`},
		},
	}
	d := NewDecoder(Window{})
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := d.Decode(tt.subject, []byte(tt.data), testNow)
			if tt.wantErr != nil {
				var e *Error
				if !errors.As(err, &e) {
					t.Fatalf("Decode(%s, %.60q) = %v, want error %v", tt.subject, tt.data, err, tt.wantErr)
				}
				if diff := cmp.Diff(tt.wantErr, e); diff != "" {
					t.Errorf("Decode(%s, %.60q) error (-want +got):\n%s", tt.subject, tt.data, diff)
				}
				if !errors.Is(err, ErrInvalid) {
					t.Errorf("errors.Is(%v, ErrInvalid) = false, want true", err)
				}
				return
			}
			if err != nil {
				t.Fatalf("Decode(%s, %.60q) = %v, want no error", tt.subject, tt.data, err)
			}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("Decode(%s, %.60q) (-want +got):\n%s", tt.subject, tt.data, diff)
			}
			if loc := got.TS.Location(); loc != time.UTC {
				t.Errorf("Decode(...).TS.Location() = %v, want UTC", loc)
			}
		})
	}
}

// TestDecodeCopies checks that an Event does not share memory with the
// message, which the consumer reuses.
func TestDecodeCopies(t *testing.T) {
	data := []byte(`{"type":"exposure","event_id":"e-1","ts":"2026-11-10T11:59:00Z","unit_id":"u-1","experiment":"x","variant":"y","attributes":{"plan":"pro"}}`)
	d := NewDecoder(DefaultWindow)
	got, err := d.Decode(SubjectExposure, data, testNow)
	if err != nil {
		t.Fatal(err)
	}
	for i := range data {
		data[i] = 'Z'
	}
	if _, err := d.Decode(SubjectTrack, []byte(`{"type":"track","event_id":"t-2","ts":"2026-11-10T11:59:00Z","unit_id":"u-2","event":"e","attributes":{"plan":"max"}}`), testNow); err != nil {
		t.Fatal(err)
	}
	want := Event{
		Type: Exposure, ID: "e-1", TS: time.Date(2026, 11, 10, 11, 59, 0, 0, time.UTC), Unit: "u-1",
		AttrKeys: []string{"plan"}, AttrValues: []string{"pro"}, Experiment: "x", Variant: "y",
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("event after its buffers were reused (-want +got):\n%s", diff)
	}
}

func TestDecodeWindow(t *testing.T) {
	d := NewDecoder(Window{MaxAge: time.Hour, MaxFuture: time.Second})
	for _, tc := range []struct {
		ts   string
		want string
	}{
		{"2026-11-10T11:00:00Z", "valid"},
		{"2026-11-10T10:59:59.999Z", string(ReasonOutOfWindow)},
		{"2026-11-10T12:00:01Z", "valid"},
		{"2026-11-10T12:00:01.001Z", string(ReasonOutOfWindow)},
	} {
		data := `{"type":"track","event_id":"t","ts":"` + tc.ts + `","unit_id":"u","event":"e"}`
		_, err := d.Decode(SubjectTrack, []byte(data), testNow)
		if got := outcome(t, err); got != tc.want {
			t.Errorf("Decode(ts %s) with a 1h/1s window = %s, want %s", tc.ts, got, tc.want)
		}
	}
}

func TestParseTime(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want time.Time // zero: refused
	}{
		{"2026-11-10T12:00:00Z", time.Date(2026, 11, 10, 12, 0, 0, 0, time.UTC)},
		{"2026-11-10t12:00:00z", time.Date(2026, 11, 10, 12, 0, 0, 0, time.UTC)},
		{"2026-11-10T12:00:00.1Z", time.Date(2026, 11, 10, 12, 0, 0, 100e6, time.UTC)},
		{"2026-11-10T12:00:00.123456789999Z", time.Date(2026, 11, 10, 12, 0, 0, 123456789, time.UTC)},
		{"2026-11-10T00:30:00+01:00", time.Date(2026, 11, 9, 23, 30, 0, 0, time.UTC)},
		{"2026-11-10T23:30:00-00:45", time.Date(2026, 11, 11, 0, 15, 0, 0, time.UTC)},
		{"2024-02-29T00:00:00Z", time.Date(2024, 2, 29, 0, 0, 0, 0, time.UTC)},
		{"2000-02-29T00:00:00Z", time.Date(2000, 2, 29, 0, 0, 0, 0, time.UTC)},
		{"2100-02-29T00:00:00Z", time.Time{}},
		{"2026-04-31T00:00:00Z", time.Time{}},
		{"2026-00-10T00:00:00Z", time.Time{}},
		{"2026-11-00T00:00:00Z", time.Time{}},
		{"2026-11-10T12:60:00Z", time.Time{}},
		{"2026-11-10T12:00:60Z", time.Time{}},
		{"2026-11-10T12:00:00+01:60", time.Time{}},
		{"2026-11-10T12:00:00+1:00", time.Time{}},
		{"2026-11-10T12:00:00.Z", time.Time{}},
		{"2026-11-10T12:00:00.5", time.Time{}},
		{"2026-11-10T12:00:00ZZ", time.Time{}},
		{"2026-11-10T12:00:00UTC", time.Time{}},
		{"+026-11-10T12:00:00Z", time.Time{}},
		{"2026-11-10T12:00:00", time.Time{}},
		{"", time.Time{}},
	} {
		got, ok := parseTime([]byte(tc.in))
		if ok != !tc.want.IsZero() || !got.Equal(tc.want) {
			t.Errorf("parseTime(%q) = %v, %t, want %v, %t", tc.in, got, ok, tc.want, !tc.want.IsZero())
		}
		if std, err := time.Parse(time.RFC3339Nano, tc.in); ok && (err != nil || !std.Equal(got)) && !strings.ContainsAny(tc.in, "tz") {
			t.Errorf("parseTime(%q) = %v, but time.Parse says %v, %v", tc.in, got, std, err)
		}
	}
}

func TestIsKey(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want bool
	}{
		{"checkout-redesign", true},
		{"0", true},
		{"a.b_c-d", true},
		{strings.Repeat("a", 128), true},
		{strings.Repeat("a", 129), false},
		{"", false},
		{"-a", false},
		{"_a", false},
		{".a", false},
		{"A", false},
		{"a b", false},
		{"é", false},
		{"a/b", false},
	} {
		if got := IsKey(tc.in); got != tc.want {
			t.Errorf("IsKey(%q) = %t, want %t", tc.in, got, tc.want)
		}
	}
}

func TestAppendJSON(t *testing.T) {
	tests := []struct {
		name string
		e    Event
		want string
	}{
		{
			name: "exposure",
			e: Event{
				Type: Exposure, ID: "e-1", TS: time.Date(2026, 11, 10, 12, 59, 0, 500e6, time.FixedZone("CET", 3600)), Unit: "u-1",
				AttrKeys: []string{"country", "platform"}, AttrValues: []string{"DE", "ios"},
				Experiment: "checkout-redesign", Variant: "one-page",
			},
			want: `{"type":"exposure","event_id":"e-1","ts":"2026-11-10T11:59:00.5Z","unit_id":"u-1","experiment":"checkout-redesign","variant":"one-page","attributes":{"country":"DE","platform":"ios"}}`,
		},
		{
			name: "track with escapes",
			e:    Event{Type: Track, ID: "a\"b\\c\n\x01é", TS: time.Date(2026, 11, 10, 12, 0, 0, 0, time.UTC), Unit: "bad\xffutf8", Name: "purchase", Value: 1e21},
			want: `{"type":"track","event_id":"a\"b\\c\n\u0001é","ts":"2026-11-10T12:00:00Z","unit_id":"bad\ufffdutf8","event":"purchase","value":1e+21}`,
		},
		{
			name: "non-finite value",
			e:    Event{Type: Track, ID: "t", TS: time.Date(2026, 11, 10, 12, 0, 0, 0, time.UTC), Unit: "u", Name: "e", Value: math.Inf(-1)},
			want: `{"type":"track","event_id":"t","ts":"2026-11-10T12:00:00Z","unit_id":"u","event":"e","value":-1e999}`,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := string(tt.e.AppendJSON(nil)); got != tt.want {
				t.Errorf("AppendJSON() =\n%s\nwant\n%s", got, tt.want)
			}
		})
	}
}

func TestPeek(t *testing.T) {
	tests := []struct {
		data            string
		wantTyp, wantID string
		wantErr         Reason
	}{
		{data: `{"event_id":"e-1","type":"exposure"}`, wantTyp: "exposure", wantID: "e-1"},
		{data: `{"type":"track","event_id":"t\u002d1","value":"anything"}`, wantTyp: "track", wantID: "t-1"},
		{data: `{"type":"identify"}`, wantTyp: "identify"},
		{data: `{"type":"track","event_id":5}`, wantTyp: "track"},
		{data: `{"event_id":"e-1"}`, wantErr: ReasonMissingField},
		{data: `{"type":null}`, wantErr: ReasonSchema},
		{data: `{"type":"track"`, wantErr: ReasonMalformedJSON},
		{data: `not json`, wantErr: ReasonMalformedJSON},
	}
	for _, tt := range tests {
		typ, id, err := Peek([]byte(tt.data))
		var gotReason Reason
		if e := (*Error)(nil); errors.As(err, &e) {
			gotReason = e.Reason
		} else if err != nil {
			t.Errorf("Peek(%q) error %v is not an *Error", tt.data, err)
		}
		if typ != tt.wantTyp || id != tt.wantID || gotReason != tt.wantErr {
			t.Errorf("Peek(%q) = %q, %q, %v, want %q, %q, %s", tt.data, typ, id, err, tt.wantTyp, tt.wantID, tt.wantErr)
		}
	}
}

func TestTypeSubject(t *testing.T) {
	if got, want := Exposure.Subject(), SubjectExposure; got != want {
		t.Errorf("Exposure.Subject() = %q, want %q", got, want)
	}
	if got, want := Track.Subject(), SubjectTrack; got != want {
		t.Errorf("Track.Subject() = %q, want %q", got, want)
	}
}

func TestDecodeAllocs(t *testing.T) {
	if testing.Short() || raceEnabled {
		t.Skip("allocation counts differ under -race")
	}
	d := NewDecoder(DefaultWindow)
	data := benchEvents[1].data
	got := testing.AllocsPerRun(100, func() {
		if _, err := d.Decode(SubjectTrack, data, testNow); err != nil {
			t.Fatal(err)
		}
	})
	// One string holding every text field, one slice for the attributes.
	if got > 2 {
		t.Errorf("Decode allocates %v times per event, want at most 2", got)
	}
}
