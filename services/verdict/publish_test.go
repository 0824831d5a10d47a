package main

import (
	"context"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/verdictlabs/verdict/pkg/stream"
	"github.com/verdictlabs/verdict/pkg/stream/streamtest"
)

// TestPublish publishes an NDJSON file through `verdict publish` to a real
// NATS server: each line on its type's subject with Nats-Msg-Id = event_id,
// a repeated event dropped by JetStream, an unreadable line sent on for
// dead-lettering rather than lost, an event over 64 KiB dead-lettered.
func TestPublish(t *testing.T) {
	s := streamtest.Run(t)
	_, js := streamtest.Connect(t, s)
	ctx := context.Background()
	if err := stream.EnsureStreams(ctx, js, stream.DefaultLimits); err != nil {
		t.Fatal(err)
	}
	lines := []string{
		`{"type":"exposure","event_id":"e1","ts":"2026-11-27T10:00:00Z","unit_id":"u1","experiment":"x","variant":"a"}`,
		`{"type":"track","event_id":"e2","ts":"2026-11-27T10:00:01Z","unit_id":"u1","event":"buy","value":3}`,
		``,
		`{"type":"exposure","event_id":"e1","ts":"2026-11-27T10:00:00Z","unit_id":"u1","experiment":"x","variant":"a"}`,
		`{"type":"track"`,
		`{"type":"track","event_id":"big","ts":"2026-11-27T10:00:01Z","unit_id":"u1","event":"buy","properties":{"x":"` + strings.Repeat("a", 100_000) + `"}}`,
	}
	file := filepath.Join(t.TempDir(), "events.ndjson")
	if err := os.WriteFile(file, []byte(strings.Join(lines, "\n")+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	var out strings.Builder
	getenv := func(k string) string { return map[string]string{"VERDICT_NATS_URL": s.URL()}[k] }
	if err := run(ctx, []string{"publish", file}, getenv, nil, &out, io.Discard); err != nil {
		t.Fatalf("verdict publish: %v", err)
	}
	if want := "published 4 events (1 duplicates dropped by JetStream, 1 without a readable type sent for dead-lettering)\n" +
		"dead-lettered 1 events over 65536 bytes (verdict.dlq.too_large)\n"; out.String() != want {
		t.Errorf("output = %q, want %q", out.String(), want)
	}

	cons, err := js.OrderedConsumer(ctx, stream.EventsStream, jetstream.OrderedConsumerConfig{})
	if err != nil {
		t.Fatal(err)
	}
	want := []struct{ subject, id string }{
		{"verdict.events.exposure", "e1"},
		{"verdict.events.track", "e2"},
		{"verdict.events.unknown", ""},
	}
	for i, w := range want {
		msg, err := cons.Next()
		if err != nil {
			t.Fatalf("message %d: %v", i, err)
		}
		if msg.Subject() != w.subject || msg.Headers().Get("Nats-Msg-Id") != w.id {
			t.Errorf("message %d on %s with Nats-Msg-Id %q, want %s with %q", i, msg.Subject(), msg.Headers().Get("Nats-Msg-Id"), w.subject, w.id)
		}
	}
	info, err := js.Stream(ctx, stream.EventsStream)
	if err != nil {
		t.Fatal(err)
	}
	if n := info.CachedInfo().State.Msgs; n != 3 {
		t.Errorf("VERDICT_EVENTS holds %d messages, want 3", n)
	}
}
