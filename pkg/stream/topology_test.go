package stream_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/verdictlabs/verdict/pkg/stream"
	"github.com/verdictlabs/verdict/pkg/stream/streamtest"
)

// TestEnsureStreamsIdempotent: a second EnsureStreams finds every stream as
// it wants it and updates nothing (an update racing a consumer creation
// trips a data race inside nats-server), and keeps an operator's replicas.
func TestEnsureStreamsIdempotent(t *testing.T) {
	s := streamtest.Run(t)
	_, js := streamtest.Connect(t, s)
	ctx := context.Background()
	if err := stream.EnsureStreams(ctx, js, stream.DefaultLimits); err != nil {
		t.Fatal(err)
	}
	updated := map[string]bool{}
	for _, name := range []string{stream.EventsStream, stream.DLQStream, stream.ReadoutsStream} {
		st, err := js.Stream(ctx, name)
		if err != nil {
			t.Fatalf("stream %s: %v", name, err)
		}
		updated[name] = !stream.SameAsDeclared(st.CachedInfo().Config, stream.DefaultLimits)
	}
	for name, u := range updated {
		if u {
			t.Errorf("stream %s as created differs from its declaration: EnsureStreams would update it at every start", name)
		}
	}
	if err := stream.EnsureStreams(ctx, js, stream.Limits{
		EventsMaxAge: stream.DefaultLimits.EventsMaxAge, EventsMaxBytes: 1 << 30,
		DLQMaxAge: stream.DefaultLimits.DLQMaxAge, DLQMaxBytes: stream.DefaultLimits.DLQMaxBytes,
		ReadoutsMaxAge: stream.DefaultLimits.ReadoutsMaxAge, Duplicates: stream.DefaultLimits.Duplicates,
	}); err != nil {
		t.Fatal(err)
	}
	st, err := js.Stream(ctx, stream.EventsStream)
	if err != nil {
		t.Fatal(err)
	}
	if got := st.CachedInfo().Config.MaxBytes; got != 1<<30 {
		t.Errorf("after EnsureStreams with new limits, VERDICT_EVENTS max bytes = %d, want %d", got, 1<<30)
	}
}

// TestIngestBacklog reads the backlog as the rules service does: every
// message before the consumer exists, what it has not delivered once it
// does, and how long the oldest has waited.
func TestIngestBacklog(t *testing.T) {
	s := streamtest.Run(t)
	_, js := streamtest.Connect(t, s)
	ctx := context.Background()
	if err := stream.EnsureStreams(ctx, js, stream.DefaultLimits); err != nil {
		t.Fatal(err)
	}
	backlog := func(at time.Time) stream.Backlog {
		t.Helper()
		b, err := stream.IngestBacklog(ctx, js, "ingest", at)
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	if b := backlog(time.Now()); b != (stream.Backlog{}) {
		t.Errorf("empty stream: backlog %+v, want none", b)
	}
	published := time.Now()
	for i := range 10 {
		if _, err := js.Publish(ctx, "verdict.events.track", []byte(fmt.Sprint(i))); err != nil {
			t.Fatal(err)
		}
	}
	if b := backlog(published.Add(time.Minute)); b.Pending != 10 || b.Lag < 59*time.Second {
		t.Errorf("no consumer yet: backlog %+v, want 10 pending for about a minute", b)
	}
	c, err := js.CreateOrUpdateConsumer(ctx, stream.EventsStream, jetstream.ConsumerConfig{Durable: "ingest", AckPolicy: jetstream.AckExplicitPolicy})
	if err != nil {
		t.Fatal(err)
	}
	batch, err := c.Fetch(4, jetstream.FetchMaxWait(time.Second))
	if err != nil {
		t.Fatal(err)
	}
	for m := range batch.Messages() {
		_ = m.Ack()
	}
	if b := backlog(published.Add(time.Minute)); b.Pending != 6 || b.Lag < 59*time.Second {
		t.Errorf("4 delivered: backlog %+v, want 6 pending for about a minute", b)
	}
	batch, err = c.Fetch(6, jetstream.FetchMaxWait(time.Second))
	if err != nil {
		t.Fatal(err)
	}
	for m := range batch.Messages() {
		_ = m.Ack()
	}
	if b := backlog(published.Add(time.Minute)); b != (stream.Backlog{}) {
		t.Errorf("all delivered: backlog %+v, want none", b)
	}
}

func TestRedact(t *testing.T) {
	for in, want := range map[string]string{
		"nats://127.0.0.1:4222":                            "nats://127.0.0.1:4222",
		"nats://verdict:s3cret@n1:4222,nats://n2:4222":     "nats://verdict:xxxxx@n1:4222,nats://n2:4222",
		"tls://s3cret-token@n1:4222":                       "tls://xxxxx@n1:4222",
		"nats://a:s3cret@n1:4222, nats://b:s3cret@n2:4222": "nats://a:xxxxx@n1:4222,nats://b:xxxxx@n2:4222",
	} {
		if got := stream.Redact(in); got != want {
			t.Errorf("Redact(%q) = %q, want %q", in, got, want)
		}
	}
}
