package stream_test

import (
	"context"
	"testing"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/verdictlabs/verdict/pkg/stream"
	"github.com/verdictlabs/verdict/pkg/stream/streamtest"
)

// TestReplicas on a three-node cluster: VERDICT_NATS_REPLICAS=3 creates
// every stream and bucket with three replicas, and a later start without
// it (or a service that declares a bucket again) keeps them.
func TestReplicas(t *testing.T) {
	urls := streamtest.RunCluster(t, 3)
	nc, err := nats.Connect(urls)
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	bucket := jetstream.KeyValueConfig{Bucket: "verdict_test", History: 5, Storage: jetstream.FileStorage}
	for _, replicas := range []int{3, 0} {
		if err := stream.EnsureStreams(ctx, js, stream.DefaultLimits.WithReplicas(replicas)); err != nil {
			t.Fatal(err)
		}
		b := bucket
		b.Replicas = replicas
		if _, err := stream.EnsureKeyValue(ctx, js, b); err != nil {
			t.Fatal(err)
		}
		for _, name := range []string{stream.EventsStream, stream.DLQStream, stream.ReadoutsStream, "KV_verdict_test"} {
			s, err := js.Stream(ctx, name)
			if err != nil {
				t.Fatal(err)
			}
			if got := s.CachedInfo().Config.Replicas; got != 3 {
				t.Errorf("after declaring with replicas %d, %s has %d replicas, want 3", replicas, name, got)
			}
		}
	}
	if _, err := stream.ParseReplicas("7"); err == nil {
		t.Error("ParseReplicas(7) accepted")
	}
}
