package rules

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"slices"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/verdictlabs/verdict/pkg/config"
	"github.com/verdictlabs/verdict/pkg/stats"
	"github.com/verdictlabs/verdict/pkg/stream/streamtest"
)

// TestLeases shares five experiments between two instances through a real
// KV bucket: alone, the first holds all; with a second alive they split
// three and two, never both holding one; when the first stops renewing,
// the second holds all once the first's leases expired.
func TestLeases(t *testing.T) {
	_, js := streamtest.Connect(t, streamtest.Run(t))
	ctx := context.Background()
	kv, err := EnsureLeaseBucket(ctx, js, 0)
	if err != nil {
		t.Fatal(err)
	}
	now := time.Date(2026, 12, 2, 10, 0, 0, 0, time.UTC)
	clock := func() time.Time { return now }
	a := &KVLeases{KV: kv, Instance: "a", TTL: 3 * time.Second, Now: clock}
	b := &KVLeases{KV: kv, Instance: "b", TTL: 3 * time.Second, Now: clock}
	exps := []string{"e1", "e2", "e3", "e4", "e5"}
	hold := func(l *KVLeases) map[string]bool {
		t.Helper()
		h, err := l.Hold(ctx, exps)
		if err != nil {
			t.Fatal(err)
		}
		return h
	}
	if h := hold(a); len(h) != 5 {
		t.Fatalf("alone, a holds %v, want all five", slices.Sorted(maps.Keys(h)))
	}
	if h := hold(b); len(h) != 0 {
		t.Errorf("b took %v, which a holds", slices.Sorted(maps.Keys(h)))
	}
	var ha, hb map[string]bool
	for range 3 { // a lets go of what is above its share; b takes it
		now = now.Add(time.Second)
		ha, hb = hold(a), hold(b)
	}
	if len(ha) != 3 || len(hb) != 2 {
		t.Errorf("a holds %v, b %v; want three and two", slices.Sorted(maps.Keys(ha)), slices.Sorted(maps.Keys(hb)))
	}
	for e := range ha {
		if hb[e] {
			t.Errorf("both hold %s", e)
		}
	}
	// a dies: its leases expire, and b takes them.
	now = now.Add(4 * time.Second)
	if hb = hold(b); len(hb) != 5 {
		t.Errorf("after a's leases expired, b holds %v, want all five", slices.Sorted(maps.Keys(hb)))
	}
	// A clean stop hands over at once.
	b.Release(ctx)
	a.held = nil
	if ha = hold(a); len(ha) != 5 {
		t.Errorf("after b released, a holds %v, want all five", slices.Sorted(maps.Keys(ha)))
	}
}

// failingStore fails StoreReadout once, for the version given: the
// instance dies between taking a version and publishing it.
type failingStore struct {
	fakeWarehouse
	failAt uint64
}

func (f *failingStore) StoreReadout(ctx context.Context, exp string, version uint64, a, b time.Time, s, l string, doc []byte) error {
	if version == f.failAt {
		f.failAt = 0
		return errors.New("killed")
	}
	return f.fakeWarehouse.StoreReadout(ctx, exp, version, a, b, s, l, doc)
}

// TestTakeover: two engines share one experiment's state. The first takes
// version 3 and dies before publishing it; the second, evaluating next,
// publishes that readout first and then its own version 4; the first,
// back, continues at 5. The versions on the subject are 1 to 5: no gap, no
// repeat.
func TestTakeover(t *testing.T) {
	now := time.Date(2026, 12, 2, 10, 0, 0, 0, time.UTC)
	defs := config.Definitions{
		Metrics: []config.Metric{{Key: "conversion", Kind: stats.Proportion, Event: "purchase", Direction: config.Increase}},
		Experiments: []config.Experiment{{
			Key: "shared", Variants: []config.Variant{{Key: "control", Weight: 0.5}, {Key: "treatment", Weight: 0.5}},
			Control: "control", Primary: []string{"conversion"}, MDE: 0.1, Alpha: 0.05, Power: 0.8, Sequential: true,
			AttributionWindow: config.Duration(24 * time.Hour), Start: now.Add(-24 * time.Hour),
		}},
	}
	states := newMemStates()
	var mu sync.Mutex
	var versions []uint64 // as published, deduplicated by Nats-Msg-Id like the stream
	seen := map[string]bool{}
	publish := func(_ context.Context, m *nats.Msg) error {
		mu.Lock()
		defer mu.Unlock()
		id := m.Header.Get(nats.MsgIdHdr)
		if !seen[id] {
			seen[id] = true
			v, _ := strconv.ParseUint(id[len("shared."):], 10, 64)
			versions = append(versions, v)
		}
		return nil
	}
	last := func(context.Context, string) (uint64, error) {
		mu.Lock()
		defer mu.Unlock()
		if len(versions) == 0 {
			return 0, nil
		}
		return versions[len(versions)-1], nil
	}
	engine := func(wh Warehouse) *Engine {
		e, err := NewEngine(context.Background(), EngineOptions{
			Warehouse: wh, Publish: publish, LastPublished: last,
			Load:   func(context.Context) (config.Definitions, error) { return defs, nil },
			States: states, Backlog: noBacklog, Hold: -1,
			Logger: slog.New(slog.DiscardHandler), Registerer: prometheus.NewRegistry(),
			Now: func() time.Time { return now },
		})
		if err != nil {
			t.Fatal(err)
		}
		return e
	}
	first := engine(&failingStore{fakeWarehouse: fakeWarehouse{stats: armStats(100)}, failAt: 3})
	for range 3 {
		first.EvaluateAll(context.Background()) // the third fails after taking version 3
		now = now.Add(time.Second)
	}
	if fmt.Sprint(versions) != "[1 2]" || states.states["shared"].Version != 3 {
		t.Fatalf("before the takeover: published %v, state at version %d; want [1 2] and 3", versions, states.states["shared"].Version)
	}
	secondWH := &fakeWarehouse{stats: armStats(100)}
	second := engine(secondWH)
	if err := second.EvaluateAll(context.Background()); err != nil {
		t.Fatal(err)
	}
	if fmt.Sprint(versions) != "[1 2 3 4]" {
		t.Errorf("after the takeover: published %v, want [1 2 3 4]", versions)
	}
	if fmt.Sprint(secondWH.stored) != "[3 4]" {
		t.Errorf("the second engine stored %v, want [3 4]", secondWH.stored)
	}
	now = now.Add(time.Second)
	if err := first.EvaluateAll(context.Background()); err != nil {
		t.Fatal(err)
	}
	if fmt.Sprint(versions) != "[1 2 3 4 5]" {
		t.Errorf("the first engine back: published %v, want [1 2 3 4 5]", versions)
	}
}

// TestRenewKeepsLeases: an instance busy with a long round renews its
// leases without a round's Hold; another instance cannot take them, past
// the lifetime they had when the round began.
func TestRenewKeepsLeases(t *testing.T) {
	_, js := streamtest.Connect(t, streamtest.Run(t))
	ctx := context.Background()
	kv, err := EnsureLeaseBucket(ctx, js, 0)
	if err != nil {
		t.Fatal(err)
	}
	now := time.Date(2026, 12, 2, 10, 0, 0, 0, time.UTC)
	clock := func() time.Time { return now }
	a := &KVLeases{KV: kv, Instance: "a", TTL: 3 * time.Second, Now: clock}
	b := &KVLeases{KV: kv, Instance: "b", TTL: 3 * time.Second, Now: clock}
	exps := []string{"e1", "e2"}
	if h, err := a.Hold(ctx, exps); err != nil || len(h) != 2 {
		t.Fatalf("a holds %v, %v; want both", h, err)
	}
	// A round of 10 s, renewed every second.
	for range 10 {
		now = now.Add(time.Second)
		if err := a.Renew(ctx); err != nil {
			t.Fatal(err)
		}
		if h, err := b.Hold(ctx, exps); err != nil || len(h) != 0 {
			t.Fatalf("%v into a's round, b took %v (%v)", now.Sub(time.Date(2026, 12, 2, 10, 0, 0, 0, time.UTC)), h, err)
		}
	}
	// Without renewal they lapse, and b takes its share and more.
	now = now.Add(4 * time.Second)
	if h, err := b.Hold(ctx, exps); err != nil || len(h) == 0 {
		t.Errorf("after a stopped renewing, b holds %v (%v); want some", h, err)
	}
}
