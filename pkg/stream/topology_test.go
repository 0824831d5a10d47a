package stream_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/verdictlabs/verdict/pkg/event"
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

// TestEventsDuplicateWindow: VERDICT_EVENTS is created with the default
// window (10 s), a service with VERDICT_NATS_DUPLICATE_WINDOW sets its own,
// and a service without it (EventsDuplicates 0) keeps what the stream has
// rather than fight over it.
func TestEventsDuplicateWindow(t *testing.T) {
	s := streamtest.Run(t)
	_, js := streamtest.Connect(t, s)
	ctx := context.Background()
	window := func() time.Duration {
		t.Helper()
		st, err := js.Stream(ctx, stream.EventsStream)
		if err != nil {
			t.Fatal(err)
		}
		return st.CachedInfo().Config.Duplicates
	}
	if err := stream.EnsureStreams(ctx, js, stream.DefaultLimits); err != nil {
		t.Fatal(err)
	}
	if got := window(); got != stream.DefaultEventsDuplicates {
		t.Errorf("created with window %v, want %v", got, stream.DefaultEventsDuplicates)
	}
	set := stream.DefaultLimits
	set.EventsDuplicates = 2 * time.Minute
	if err := stream.EnsureStreams(ctx, js, set); err != nil {
		t.Fatal(err)
	}
	if got := window(); got != 2*time.Minute {
		t.Errorf("window after setting 2m = %v", got)
	}
	if err := stream.EnsureStreams(ctx, js, stream.DefaultLimits); err != nil {
		t.Fatal(err)
	}
	if got := window(); got != 2*time.Minute {
		t.Errorf("window after a start without the setting = %v, want the 2m it had", got)
	}
	for _, bad := range []string{"0s", "50ms", "2h", "soon"} {
		if _, err := stream.ParseDuplicateWindow(bad); err == nil {
			t.Errorf("ParseDuplicateWindow(%q) = nil error", bad)
		}
	}
	if d, err := stream.ParseDuplicateWindow(""); err != nil || d != stream.DefaultEventsDuplicates {
		t.Errorf("ParseDuplicateWindow(\"\") = %v, %v; want the default", d, err)
	}
}

// TestIngestFloor: nothing is in before ingest's consumer exists; then the
// floor is the last message acknowledged with all before it.
func TestIngestFloor(t *testing.T) {
	s := streamtest.Run(t)
	_, js := streamtest.Connect(t, s)
	ctx := context.Background()
	if err := stream.EnsureStreams(ctx, js, stream.DefaultLimits); err != nil {
		t.Fatal(err)
	}
	floor := func() uint64 {
		t.Helper()
		f, err := stream.IngestFloor(ctx, js, "ingest")
		if err != nil {
			t.Fatal(err)
		}
		return f
	}
	for i := range 5 {
		if _, err := js.Publish(ctx, "verdict.events.track", []byte(fmt.Sprint(i))); err != nil {
			t.Fatal(err)
		}
	}
	if f := floor(); f != 0 {
		t.Errorf("floor without a consumer = %d, want 0", f)
	}
	c, err := js.CreateOrUpdateConsumer(ctx, stream.EventsStream, jetstream.ConsumerConfig{Durable: "ingest", AckPolicy: jetstream.AckExplicitPolicy})
	if err != nil {
		t.Fatal(err)
	}
	msgs, err := c.Fetch(5, jetstream.FetchMaxWait(2*time.Second))
	if err != nil {
		t.Fatal(err)
	}
	var got []jetstream.Msg
	for m := range msgs.Messages() {
		got = append(got, m)
	}
	if len(got) != 5 {
		t.Fatalf("fetched %d, want 5", len(got))
	}
	// Acked: 1, 2 and 4. The floor stops below 3.
	for _, i := range []int{0, 1, 3} {
		if err := got[i].DoubleAck(ctx); err != nil {
			t.Fatal(err)
		}
	}
	if f := floor(); f != 2 {
		t.Errorf("floor with 1, 2 and 4 acknowledged = %d, want 2", f)
	}
	for _, i := range []int{2, 4} {
		if err := got[i].DoubleAck(ctx); err != nil {
			t.Fatal(err)
		}
	}
	if f := floor(); f != 5 {
		t.Errorf("floor with all acknowledged = %d, want 5", f)
	}
}

// TestMaxMsgSize: VERDICT_EVENTS and VERDICT_DLQ refuse a message over
// MaxMsgSize (the publisher gets the error), and take one of 64 KiB.
func TestMaxMsgSize(t *testing.T) {
	s := streamtest.Run(t)
	_, js := streamtest.Connect(t, s)
	ctx := context.Background()
	if err := stream.EnsureStreams(ctx, js, stream.DefaultLimits); err != nil {
		t.Fatal(err)
	}
	for _, subject := range []string{"verdict.events.track", "verdict.dlq.too_large"} {
		if _, err := js.Publish(ctx, subject, make([]byte, event.MaxSize)); err != nil {
			t.Errorf("publish 64 KiB on %s: %v", subject, err)
		}
		if _, err := js.Publish(ctx, subject, make([]byte, 505_000)); err == nil {
			t.Errorf("publish 505 KB on %s: stored, want refused", subject)
		}
	}
}
