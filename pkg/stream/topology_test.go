package stream_test

import (
	"context"
	"testing"

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
