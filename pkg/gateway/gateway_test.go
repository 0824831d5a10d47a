package gateway_test

import (
	"bytes"
	"compress/gzip"
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/verdictlabs/verdict/pkg/event"
	"github.com/verdictlabs/verdict/pkg/gateway"
	"github.com/verdictlabs/verdict/pkg/stream"
	"github.com/verdictlabs/verdict/pkg/stream/streamtest"
	"github.com/verdictlabs/verdict/pkg/web"
)

var received = time.Date(2026, 12, 2, 12, 0, 0, 0, time.UTC)

func TestMap(t *testing.T) {
	tests := []struct {
		name string
		msg  string
		unit gateway.Unit
		want event.Event
		ok   bool
		err  event.Reason
	}{
		{"GrowthBook exposure through Segment", `{"type":"track","event":"Experiment Viewed","messageId":"m1","userId":"u1","anonymousId":"a1","timestamp":"2026-12-02T11:00:00.250Z",
			"properties":{"experimentId":"checkout-redesign","variationId":"1","plan":"pro"},"context":{"os":{"name":"iOS"},"device":{"type":"mobile"},"locale":"de-DE","location":{"country":"DE"}}}`, "",
			event.Event{Type: event.Exposure, ID: "m1", TS: time.Date(2026, 12, 2, 11, 0, 0, 250e6, time.UTC), Unit: "u1", Experiment: "checkout-redesign", Variant: "1",
				AttrKeys: []string{"country", "device_type", "locale", "os", "plan"}, AttrValues: []string{"DE", "mobile", "de-DE", "iOS", "pro"}}, true, ""},
		{"snake case exposure, anonymous unit chosen", `{"type":"track","event":"experiment_viewed","messageId":"m2","userId":"u1","anonymousId":"a1","timestamp":"2026-12-02T11:00:00Z","properties":{"experiment_id":"e","variant":"b"}}`, gateway.UnitAnonymous,
			event.Event{Type: event.Exposure, ID: "m2", TS: time.Date(2026, 12, 2, 11, 0, 0, 0, time.UTC), Unit: "a1", Experiment: "e", Variant: "b"}, true, ""},
		{"purchase with revenue, anonymous only, clock corrected", `{"type":"track","event":"Order Completed","messageId":"m3","anonymousId":"a1","originalTimestamp":"2026-12-02T11:59:00Z","sentAt":"2026-12-02T11:59:30Z","properties":{"revenue":42.5,"value":3,"Coupon Code":"X1"}}`, "",
			event.Event{Type: event.Track, ID: "m3", TS: received.Add(-30 * time.Second), Unit: "a1", Name: "order_completed", Value: 42.5, AttrKeys: []string{"coupon_code"}, AttrValues: []string{"X1"}}, true, ""},
		{"value, else 1; numeric user id", `{"type":"track","event":"  Added to Cart!! ","messageId":"m4","userId":7,"properties":{"value":"3"}}`, "",
			event.Event{Type: event.Track, ID: "m4", TS: received, Unit: "7", Name: "added_to_cart", Value: 3}, true, ""},
		{"identify stores nothing", `{"type":"identify","messageId":"m5","userId":"u1"}`, "", event.Event{}, false, ""},
		{"no unit", `{"type":"track","event":"Signed Up","messageId":"m6"}`, "", event.Event{}, false, event.ReasonMissingField},
		{"no messageId", `{"type":"track","event":"Signed Up","userId":"u"}`, "", event.Event{}, false, event.ReasonMissingField},
		{"exposure without a variant", `{"type":"track","event":"Experiment Viewed","messageId":"m7","userId":"u","properties":{"experimentId":"e"}}`, "", event.Event{}, false, event.ReasonMissingField},
		{"a name with nothing to keep", `{"type":"track","event":"!!!","messageId":"m8","userId":"u"}`, "", event.Event{}, false, event.ReasonBadKey},
		{"bad timestamp", `{"type":"track","event":"x","messageId":"m9","userId":"u","timestamp":"yesterday"}`, "", event.Event{}, false, event.ReasonBadTimestamp},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var m gateway.Message
			if err := json.Unmarshal([]byte(tt.msg), &m); err != nil {
				t.Fatal(err)
			}
			got, ok, err := gateway.Map(m, received, "", tt.unit)
			var e *event.Error
			switch {
			case tt.err != "":
				if !errors.As(err, &e) || e.Reason != tt.err {
					t.Fatalf("Map error = %v, want reason %s", err, tt.err)
				}
				return
			case err != nil:
				t.Fatalf("Map: %v", err)
			}
			if ok != tt.ok {
				t.Fatalf("Map ok = %v, want %v", ok, tt.ok)
			}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("Map (-want +got):\n%s", diff)
			}
		})
	}
}

func TestNormalize(t *testing.T) {
	for in, want := range map[string]string{"Order Completed": "order_completed", "page_load": "page_load", "$pageview": "pageview", "A--B": "a--b", "Ünïcode Ëvent": "n_code_vent", "": ""} {
		if got := gateway.Normalize(in); got != want {
			t.Errorf("Normalize(%q) = %q, want %q", in, got, want)
		}
	}
	if got := gateway.Normalize(strings.Repeat("x", 200)); len(got) != 128 {
		t.Errorf("Normalize of 200 characters has %d, want 128", len(got))
	}
}

type server struct {
	url string
	js  jetstream.JetStream
}

func start(t *testing.T, opt gateway.Options) server {
	t.Helper()
	s := streamtest.Run(t)
	_, js := streamtest.Connect(t, s)
	if err := stream.EnsureStreams(context.Background(), js, stream.DefaultLimits); err != nil {
		t.Fatal(err)
	}
	mux := http.NewServeMux()
	gateway.New(js, opt).Register(mux)
	h := httptest.NewServer(mux)
	t.Cleanup(h.Close)
	return server{url: h.URL, js: js}
}

func (s server) post(t *testing.T, path, key, body string) (int, string) {
	t.Helper()
	req, _ := http.NewRequest(http.MethodPost, s.url+path, strings.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	if key != "" {
		req.SetBasicAuth(key, "")
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// counts returns the messages in a stream by subject.
func (s server) counts(t *testing.T, name string) map[string]int {
	t.Helper()
	st, err := s.js.Stream(context.Background(), name)
	if err != nil {
		t.Fatal(err)
	}
	info, err := st.Info(context.Background(), jetstream.WithSubjectFilter(">"))
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]int{}
	for k, v := range info.State.Subjects {
		out[k] = int(v)
	}
	return out
}

const batch = `{"batch":[
 {"type":"track","event":"Experiment Viewed","messageId":"x1","userId":"u1","properties":{"experimentId":"e","variationId":"b"}},
 {"type":"track","event":"Order Completed","messageId":"p1","userId":"u1","properties":{"revenue":10}},
 {"type":"track","event":"Order Completed","messageId":"p2","properties":{"revenue":10}},
 {"type":"identify","messageId":"i1","userId":"u1","traits":{"plan":"pro"}}
],"sentAt":"2026-12-02T12:00:00Z"}`

// TestBatch: a batch is published as verdict events, its one bad message
// dead-lettered with its reason, and answered 200 once all are in the
// stream; a retry of it adds nothing.
func TestBatch(t *testing.T) {
	s := start(t, gateway.Options{WriteKeys: []string{"wk1", "wk2"}})
	for range 2 {
		if code, body := s.post(t, "/v1/batch", "wk2", batch); code != http.StatusOK || !strings.Contains(body, `"success":true`) {
			t.Fatalf("POST /v1/batch = %d %s, want 200 success", code, body)
		}
	}
	if got, want := s.counts(t, stream.EventsStream), map[string]int{event.SubjectExposure: 1, event.SubjectTrack: 1}; !cmp.Equal(got, want) {
		t.Errorf("VERDICT_EVENTS = %v, want %v (the retry deduplicated by messageId)", got, want)
	}
	if got := s.counts(t, stream.DLQStream); got["verdict.dlq.missing_field"] != 2 {
		t.Errorf("VERDICT_DLQ = %v, want the message without a unit, once per request", got)
	}
}

func TestRefusals(t *testing.T) {
	s := start(t, gateway.Options{WriteKeys: []string{"wk1"}})
	for _, tt := range []struct {
		name, path, key, body string
		code                  int
	}{
		{"no key", "/v1/batch", "", batch, http.StatusUnauthorized},
		{"wrong key", "/v1/batch", "nope", batch, http.StatusUnauthorized},
		{"not JSON", "/v1/batch", "wk1", `{"batch":[`, http.StatusBadRequest},
		{"batch over 500 KB", "/v1/batch", "wk1", `{"batch":[` + strings.Repeat(`{"type":"page"},`, 40000) + `{}]}`, http.StatusBadRequest},
		{"message over 32 KB", "/v1/track", "wk1", `{"event":"x","userId":"u","messageId":"big","properties":{"p":"` + strings.Repeat("x", 33<<10) + `"}}`, http.StatusBadRequest},
		{"single track not JSON", "/v1/track", "wk1", `event=x`, http.StatusBadRequest},
	} {
		if code, body := s.post(t, tt.path, tt.key, tt.body); code != tt.code {
			t.Errorf("%s: POST %s = %d %s, want %d", tt.name, tt.path, code, body, tt.code)
		}
	}
	if got := s.counts(t, stream.EventsStream); len(got) != 0 {
		t.Errorf("VERDICT_EVENTS = %v after refused requests, want nothing", got)
	}
	// Accepted and counted, nothing stored.
	for _, p := range []string{"/v1/page", "/v1/screen", "/v1/identify", "/v1/group", "/v1/alias"} {
		if code, body := s.post(t, p, "wk1", `{"userId":"u","messageId":"m"}`); code != http.StatusOK {
			t.Errorf("POST %s = %d %s, want 200", p, code, body)
		}
	}
	if code, body := s.post(t, "/v1/track", "wk1", `{"event":"Signed Up","userId":"u","messageId":"t1"}`); code != http.StatusOK {
		t.Errorf("POST /v1/track = %d %s, want 200", code, body)
	}
	if got := s.counts(t, stream.EventsStream); !cmp.Equal(got, map[string]int{event.SubjectTrack: 1}) {
		t.Errorf("VERDICT_EVENTS = %v, want the one track", got)
	}
}

// TestGzip: RudderStack's library compresses its batches.
func TestGzip(t *testing.T) {
	s := start(t, gateway.Options{Loopback: true})
	var b bytes.Buffer
	zw := gzip.NewWriter(&b)
	zw.Write([]byte(batch))
	zw.Close()
	req, _ := http.NewRequest(http.MethodPost, s.url+"/v1/batch", &b)
	req.Header.Set("Content-Encoding", "gzip")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("gzip batch: %d, want 200", resp.StatusCode)
	}
	if got := s.counts(t, stream.EventsStream); len(got) != 2 {
		t.Errorf("VERDICT_EVENTS = %v, want the batch's exposure and purchase", got)
	}
}

func TestNoKeys(t *testing.T) {
	open := start(t, gateway.Options{Loopback: true})
	if code, body := open.post(t, "/v1/batch", "", batch); code != http.StatusOK {
		t.Errorf("no keys on loopback: POST = %d %s, want 200", code, body)
	}
	checks := &web.Checks{}
	closed := start(t, gateway.Options{Loopback: false, Checks: checks})
	if code, body := closed.post(t, "/v1/batch", "anything", batch); code != http.StatusUnauthorized || !strings.Contains(body, "no write keys") {
		t.Errorf("no keys, not loopback: POST = %d %s, want 401 saying why", code, body)
	}
	if failed := checks.Run(context.Background()); failed["gateway"] == nil || !strings.Contains(failed["gateway"].Error(), "VERDICT_WRITE_KEYS") {
		t.Errorf("readiness failures %v, want the gateway's, naming VERDICT_WRITE_KEYS", failed)
	}
	if got := closed.counts(t, stream.EventsStream); len(got) != 0 {
		t.Errorf("VERDICT_EVENTS = %v, want nothing while refused", got)
	}
}

func TestRate(t *testing.T) {
	s := start(t, gateway.Options{WriteKeys: []string{"wk1"}, Rate: 1}) // bursts of 2 messages
	if code, _ := s.post(t, "/v1/batch", "wk1", batch); code != http.StatusTooManyRequests {
		t.Errorf("3 messages at a rate of 1/s: %d, want 429", code)
	}
}

func TestEventsNDJSON(t *testing.T) {
	s := start(t, gateway.Options{Loopback: true})
	body := `{"type":"exposure","event_id":"e1","ts":"2026-12-02T11:00:00Z","unit_id":"u","experiment":"e","variant":"a"}
{"type":"track","event_id":"e2","ts":"2026-12-02T11:00:00Z","unit_id":"u","event":"purchase","value":3}

not json
`
	if code, resp := s.post(t, "/v1/events", "", body); code != http.StatusOK {
		t.Fatalf("POST /v1/events = %d %s", code, resp)
	}
	want := map[string]int{event.SubjectExposure: 1, event.SubjectTrack: 1, event.SubjectPrefix + "unknown": 1}
	if got := s.counts(t, stream.EventsStream); !cmp.Equal(got, want) {
		t.Errorf("VERDICT_EVENTS = %v, want %v (the bad line goes on for ingest to dead-letter)", got, want)
	}

	// A line over 64 KiB is not published: it is dead-lettered as
	// too_large, its first 64 KiB kept, and the request still succeeds for
	// the lines beside it.
	big := `{"type":"track","event_id":"big","ts":"2026-12-02T11:00:00Z","unit_id":"u","event":"purchase","properties":{"x":"` + strings.Repeat("a", 505_000) + `"}}`
	body = big + "\n" + `{"type":"track","event_id":"e3","ts":"2026-12-02T11:00:00Z","unit_id":"u","event":"purchase","value":3}` + "\n"
	if code, resp := s.post(t, "/v1/events", "", body); code != http.StatusOK {
		t.Fatalf("POST /v1/events with a 505 KB line = %d %s", code, resp)
	}
	want[event.SubjectTrack]++
	if got := s.counts(t, stream.EventsStream); !cmp.Equal(got, want) {
		t.Errorf("VERDICT_EVENTS = %v, want %v (the small line alone)", got, want)
	}
	st, err := s.js.Stream(context.Background(), stream.DLQStream)
	if err != nil {
		t.Fatal(err)
	}
	m, err := st.GetLastMsgForSubject(context.Background(), stream.DLQPrefix+string(event.ReasonTooLarge))
	if err != nil {
		t.Fatalf("no dead letter on verdict.dlq.too_large: %v", err)
	}
	if len(m.Data) != event.MaxSize || !strings.Contains(m.Header.Get(stream.ErrorHeader), "bytes kept") {
		t.Errorf("dead letter of %d bytes, %s %q: want the first %d bytes, and the error saying so", len(m.Data), stream.ErrorHeader, m.Header.Get(stream.ErrorHeader), event.MaxSize)
	}
}

// TestUnavailable: without the stream JetStream cannot take the events:
// 503 with Retry-After, so the client retries.
func TestUnavailable(t *testing.T) {
	s := streamtest.Run(t)
	_, js := streamtest.Connect(t, s) // no streams declared
	mux := http.NewServeMux()
	gateway.New(js, gateway.Options{Loopback: true, AckTimeout: 2 * time.Second}).Register(mux)
	h := httptest.NewServer(mux)
	defer h.Close()
	resp, err := http.Post(h.URL+"/v1/batch", "application/json", strings.NewReader(batch))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusServiceUnavailable || resp.Header.Get("Retry-After") == "" {
		t.Errorf("POST without a stream = %d, Retry-After %q; want 503 with Retry-After", resp.StatusCode, resp.Header.Get("Retry-After"))
	}
}

func TestParseWriteKeys(t *testing.T) {
	file := t.TempDir() + "/keys"
	if err := os.WriteFile(file, []byte("k1\n k2 ,k3\n\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	for in, want := range map[string][]string{"": nil, "a,b": {"a", "b"}, " a , ,b ": {"a", "b"}, "@" + file: {"k1", "k2", "k3"}} {
		got, err := gateway.ParseWriteKeys(in)
		if err != nil || !cmp.Equal(got, want) {
			t.Errorf("ParseWriteKeys(%q) = %q, %v; want %q", in, got, err, want)
		}
	}
	if _, err := gateway.ParseWriteKeys("@/no/such/file"); err == nil || !strings.Contains(err.Error(), "VERDICT_WRITE_KEYS") {
		t.Errorf("ParseWriteKeys of a missing file: %v, want an error naming VERDICT_WRITE_KEYS", err)
	}
}
