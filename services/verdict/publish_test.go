package main

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/verdictlabs/verdict/pkg/event"
	"github.com/verdictlabs/verdict/pkg/stream"
	"github.com/verdictlabs/verdict/pkg/stream/streamtest"
)

// publishWorld is an NDJSON file of events as a user might write them: two
// good ones, a blank line, a copy of the first, one whose type cannot be
// read, one over 64 KiB, one 40 days old and a track named with "name"
// rather than "event". Times are relative to now, as ingest's window is.
func publishWorld(t *testing.T) string {
	t.Helper()
	ts := func(ago time.Duration) string { return time.Now().Add(-ago).UTC().Format(time.RFC3339Nano) }
	lines := []string{
		fmt.Sprintf(`{"type":"exposure","event_id":"e1","ts":%q,"unit_id":"u1","experiment":"x","variant":"a"}`, ts(time.Hour)),
		fmt.Sprintf(`{"type":"track","event_id":"e2","ts":%q,"unit_id":"u1","event":"buy","value":3}`, ts(time.Hour-time.Second)),
		``,
		fmt.Sprintf(`{"type":"exposure","event_id":"e1","ts":%q,"unit_id":"u1","experiment":"x","variant":"a"}`, ts(time.Hour)),
		`{"type":"track"`,
		fmt.Sprintf(`{"type":"track","event_id":"big","ts":%q,"unit_id":"u1","event":"buy","properties":{"x":"%s"}}`, ts(time.Hour), strings.Repeat("a", 100_000)),
		fmt.Sprintf(`{"type":"track","event_id":"old","ts":%q,"unit_id":"u1","event":"buy"}`, ts(40*24*time.Hour)),
		fmt.Sprintf(`{"type":"track","event_id":"named","ts":%q,"unit_id":"u1","name":"buy"}`, ts(time.Hour)),
	}
	file := filepath.Join(t.TempDir(), "events.ndjson")
	if err := os.WriteFile(file, []byte(strings.Join(lines, "\n")+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	return file
}

// TestPublish publishes an NDJSON file through `verdict publish` to a real
// NATS server: each good line on its type's subject with Nats-Msg-Id =
// event_id, a repeated event dropped by JetStream, and every line that
// ingest would refuse checked here the same way: named on stderr with its
// line number and reason, counted, left out, and publish fails. With
// --dead-letter they are sent all the same, for ingest to dead-letter.
func TestPublish(t *testing.T) {
	s := streamtest.Run(t)
	_, js := streamtest.Connect(t, s)
	ctx := context.Background()
	if err := stream.EnsureStreams(ctx, js, stream.DefaultLimits); err != nil {
		t.Fatal(err)
	}
	file := publishWorld(t)
	getenv := func(k string) string { return map[string]string{"VERDICT_NATS_URL": s.URL()}[k] }
	var out, errOut strings.Builder
	err := run(ctx, []string{"publish", file}, getenv, nil, &out, &errOut)
	if err == nil || !strings.Contains(err.Error(), "4 of 7 events refused") {
		t.Errorf("verdict publish = %v, want 4 of 7 events refused", err)
	}
	if want := "published 3 events (1 duplicates dropped by JetStream)\n" +
		"refused 4 events that ingest would refuse: too_large 1, malformed_json 1, missing_field 1, ts_out_of_window 1\n"; out.String() != want {
		t.Errorf("output = %q, want %q", out.String(), want)
	}
	for _, want := range []string{"line 5: malformed_json:", "line 6: too_large:", "line 7: ts_out_of_window:", `line 8: missing_field: field "event" is required in track events`} {
		if !strings.Contains(errOut.String(), want) {
			t.Errorf("stderr lacks %q:\n%s", want, errOut.String())
		}
	}
	cons, err := js.OrderedConsumer(ctx, stream.EventsStream, jetstream.OrderedConsumerConfig{})
	if err != nil {
		t.Fatal(err)
	}
	for i, w := range []struct{ subject, id string }{{"verdict.events.exposure", "e1"}, {"verdict.events.track", "e2"}} {
		msg, err := cons.Next()
		if err != nil {
			t.Fatalf("message %d: %v", i, err)
		}
		if msg.Subject() != w.subject || msg.Headers().Get("Nats-Msg-Id") != w.id {
			t.Errorf("message %d on %s with Nats-Msg-Id %q, want %s with %q", i, msg.Subject(), msg.Headers().Get("Nats-Msg-Id"), w.subject, w.id)
		}
	}
	events := func() uint64 {
		info, err := js.Stream(ctx, stream.EventsStream)
		if err != nil {
			t.Fatal(err)
		}
		return info.CachedInfo().State.Msgs
	}
	if n := events(); n != 2 {
		t.Errorf("VERDICT_EVENTS holds %d messages, want 2", n)
	}

	// --dead-letter: the refused events are published all the same, for
	// ingest to dead-letter and count (the one over the stream's limit
	// straight to VERDICT_DLQ), and publish succeeds.
	out.Reset()
	if err := run(ctx, []string{"publish", "--dead-letter", file}, getenv, nil, &out, &errOut); err != nil {
		t.Fatalf("verdict publish --dead-letter: %v", err)
	}
	if !strings.Contains(out.String(), "sent for dead-lettering (verdict dlq shows them once ingest has) 4 events") {
		t.Errorf("output = %q", out.String())
	}
	if n := events(); n != 2+3 {
		t.Errorf("VERDICT_EVENTS holds %d messages, want the 2 and the 3 refused ones that fit", n)
	}
	info, err := js.Stream(ctx, stream.DLQStream)
	if err != nil {
		t.Fatal(err)
	}
	if n := info.CachedInfo().State.Msgs; n != 1 {
		t.Errorf("VERDICT_DLQ holds %d messages, want the one too large", n)
	}
}

// TestDLQ: `verdict dlq` lists the dead letters that ingest wrote, per
// reason with the latest's why; shows them as text (long ones cut short)
// or JSON; replays those that pass the checks now to their type's subject
// and removes them, keeping the others with why; and purges.
func TestDLQ(t *testing.T) {
	s := streamtest.Run(t)
	_, js := streamtest.Connect(t, s)
	ctx := context.Background()
	if err := stream.EnsureStreams(ctx, js, stream.DefaultLimits); err != nil {
		t.Fatal(err)
	}
	getenv := func(k string) string { return map[string]string{"VERDICT_NATS_URL": s.URL()}[k] }
	ts := func(ago time.Duration) string { return time.Now().Add(-ago).UTC().Format(time.RFC3339Nano) }
	for _, d := range []struct {
		reason, why, payload string
	}{
		{"malformed_json", "unexpected end of JSON", `{"type":"track"`},
		{"too_large", "message is 100122 bytes; the limit is 65536", `{"type":"track","event_id":"big","properties":{"x":"` + strings.Repeat("a", 100_000) + `"}}`},
		{"ts_out_of_window", "too old", fmt.Sprintf(`{"type":"track","event_id":"old","ts":%q,"unit_id":"u1","event":"buy"}`, ts(40*24*time.Hour))},
		{"missing_field", `field "event" is required in track events`, fmt.Sprintf(`{"type":"track","event_id":"named","ts":%q,"unit_id":"u1","name":"buy"}`, ts(time.Hour))},
	} {
		if _, err := js.PublishMsg(ctx, stream.DeadLetter(event.Reason(d.reason), d.why, "verdict.events.track", []byte(d.payload))); err != nil {
			t.Fatal(err)
		}
	}
	events := func() uint64 {
		info, err := js.Stream(ctx, stream.EventsStream)
		if err != nil {
			t.Fatal(err)
		}
		return info.CachedInfo().State.Msgs
	}
	var errOut strings.Builder
	dlq := func(args ...string) string {
		t.Helper()
		var out strings.Builder
		if err := run(ctx, append([]string{"dlq"}, args...), getenv, nil, &out, &errOut); err != nil {
			t.Fatalf("verdict dlq %v: %v", args, err)
		}
		return out.String()
	}
	list := dlq()
	for _, want := range []string{"4 dead letters in VERDICT_DLQ, kept for 30d:", "missing_field           1", `field "event" is required in track events`, "ts_out_of_window"} {
		if !strings.Contains(list, want) {
			t.Errorf("verdict dlq lacks %q:\n%s", want, list)
		}
	}
	var shown []deadLetter
	for _, line := range strings.Split(strings.TrimSpace(dlq("show", "--json", "--reason", "missing_field")), "\n") {
		var d deadLetter
		if err := json.Unmarshal([]byte(line), &d); err != nil {
			t.Fatalf("show --json line %q: %v", line, err)
		}
		shown = append(shown, d)
	}
	if len(shown) != 1 || shown[0].Reason != "missing_field" || shown[0].From != "verdict.events.track" || !strings.Contains(string(shown[0].Event), `"event_id":"named"`) {
		t.Errorf("show --json --reason missing_field = %+v", shown)
	}
	if text := dlq("show"); strings.Count(text, "\n    why:") != 4 || !strings.Contains(text, "… (") {
		t.Errorf("show lists not the 4 dead letters, the big one cut short:\n%s", text)
	}
	// Replay: nothing passes yet (each still fails), so all stay.
	if got := dlq("replay"); !strings.Contains(got, "replayed 0 dead letters") || !strings.Contains(got, "kept too_large 1, malformed_json 1, missing_field 1, ts_out_of_window 1") {
		t.Errorf("replay = %q", got)
	}
	// A dead letter that passes now (sent to the wrong subject by its
	// producer, say) is replayed to its type's subject and leaves the DLQ.
	good := fmt.Sprintf(`{"type":"track","event_id":"late","ts":%q,"unit_id":"u2","event":"buy"}`, time.Now().Add(-time.Minute).UTC().Format(time.RFC3339Nano))
	if _, err := js.PublishMsg(ctx, stream.DeadLetter("type_mismatch", "sent to verdict.events.exposure", "verdict.events.exposure", []byte(good))); err != nil {
		t.Fatal(err)
	}
	before := events()
	if got := dlq("replay", "--reason", "type_mismatch"); !strings.Contains(got, "replayed 1 dead letters (verdict.dlq.type_mismatch)") {
		t.Errorf("replay --reason type_mismatch = %q", got)
	}
	if n := events(); n != before+1 {
		t.Errorf("VERDICT_EVENTS holds %d messages after the replay, want %d", n, before+1)
	}
	if got := dlq("--reason", "type_mismatch"); !strings.Contains(got, "no dead letters") {
		t.Errorf("the replayed dead letter stayed:\n%s", got)
	}
	if got := dlq("purge", "--reason", "too_large"); got != "purged verdict.dlq.too_large\n" {
		t.Errorf("purge = %q", got)
	}
	if got := dlq(); !strings.Contains(got, "3 dead letters") || strings.Contains(got, "too_large") {
		t.Errorf("after the purge:\n%s", got)
	}
	var bad strings.Builder
	if err := run(ctx, []string{"dlq", "--reason", "nope"}, getenv, nil, &bad, &bad); err == nil || !strings.Contains(err.Error(), "missing_field") {
		t.Errorf("an unknown reason: %v, want the list of reasons", err)
	}
}
