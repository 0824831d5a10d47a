package rules

import (
	"context"
	"fmt"
	"log/slog"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/verdictlabs/verdict/pkg/config"
	"github.com/verdictlabs/verdict/pkg/stats"
	"github.com/verdictlabs/verdict/pkg/stream"
	"github.com/verdictlabs/verdict/pkg/warehouse"
)

// fakeWarehouse serves fixed statistics and records stored readouts: the
// engine's bookkeeping is tested here; e2e_test.go tests it on real servers.
type fakeWarehouse struct {
	stats  warehouse.ExperimentStats
	stored []uint64
}

func (f *fakeWarehouse) ExperimentStats(context.Context, config.Experiment, []config.Metric, time.Time) (warehouse.ExperimentStats, error) {
	return f.stats, nil
}

func (f *fakeWarehouse) StoreReadout(_ context.Context, _ string, version uint64, _, _ time.Time, _, _ string, _ []byte) error {
	f.stored = append(f.stored, version)
	return nil
}

func (f *fakeWarehouse) LatestVersions(context.Context) (map[string]uint64, error) {
	return map[string]uint64{}, nil
}

// memStates keeps State in memory, with KV's revision rule.
type memStates struct {
	states map[string]State
	revs   map[string]uint64
}

func newMemStates() *memStates {
	return &memStates{states: map[string]State{}, revs: map[string]uint64{}}
}

func (m *memStates) Get(_ context.Context, key string) (State, uint64, error) {
	if st, ok := m.states[key]; ok {
		return st, m.revs[key], nil
	}
	return State{Experiment: key}, 0, nil
}

func (m *memStates) Put(_ context.Context, st State, rev uint64) (uint64, error) {
	if m.revs[st.Experiment] != rev {
		return 0, fmt.Errorf("revision %d, stored %d", rev, m.revs[st.Experiment])
	}
	m.revs[st.Experiment]++
	m.states[st.Experiment] = st
	return m.revs[st.Experiment], nil
}

func noBacklog(context.Context) (stream.Backlog, error) { return stream.Backlog{}, nil }

func armStats(units float64) warehouse.ExperimentStats {
	arm := stats.Arm{N: units, Sum: units / 10, SumSquares: units / 10}
	return warehouse.ExperimentStats{
		Units: map[string]uint64{"control": uint64(units), "treatment": uint64(units)},
		Cells: []warehouse.Cell{
			{Variant: "control", Metric: "conversion", Arm: arm},
			{Variant: "treatment", Metric: "conversion", Arm: arm},
		},
	}
}

// TestEndedExperimentPublishesOnlyLateData: after its attribution window an
// experiment is still evaluated, since late events may arrive, but a readout
// is published only when it changed.
func TestEndedExperimentPublishesOnlyLateData(t *testing.T) {
	now := time.Date(2026, 11, 27, 12, 0, 0, 0, time.UTC)
	end := now.Add(-72 * time.Hour)
	defs := config.Definitions{
		Metrics: []config.Metric{{Key: "conversion", Kind: stats.Proportion, Event: "purchase", Direction: config.Increase}},
		Experiments: []config.Experiment{{
			Key: "ended", Variants: []config.Variant{{Key: "control", Weight: 0.5}, {Key: "treatment", Weight: 0.5}},
			Control: "control", Primary: []string{"conversion"}, MDE: 0.1, Alpha: 0.05, Power: 0.8, Sequential: true,
			AttributionWindow: config.Duration(24 * time.Hour), Start: now.Add(-30 * 24 * time.Hour), End: &end,
		}},
	}
	wh := &fakeWarehouse{stats: armStats(100)}
	var published []string
	e, err := NewEngine(context.Background(), EngineOptions{
		Warehouse: wh,
		Publish: func(_ context.Context, m *nats.Msg) error {
			published = append(published, m.Header.Get(nats.MsgIdHdr))
			return nil
		},
		Load:       func(context.Context) (config.Definitions, error) { return defs, nil },
		States:     newMemStates(),
		Backlog:    noBacklog,
		Hold:       -1,
		Logger:     slog.New(slog.DiscardHandler),
		Registerer: prometheus.NewRegistry(),
		Now:        func() time.Time { return now },
	})
	if err != nil {
		t.Fatal(err)
	}
	evaluate := func() {
		t.Helper()
		if err := e.EvaluateAll(context.Background()); err != nil {
			t.Fatal(err)
		}
	}
	evaluate()
	evaluate() // nothing new
	wh.stats = armStats(5000)
	evaluate() // late data
	evaluate()
	if want := []string{"ended.1", "ended.2"}; len(published) != len(want) || published[0] != want[0] || published[1] != want[1] {
		t.Errorf("published %v, want %v", published, want)
	}
	if len(wh.stored) != 2 {
		t.Errorf("stored versions %v, want 2 readouts", wh.stored)
	}

	// Past the late-data horizon it is no longer evaluated at all.
	now = end.Add(24*time.Hour + LateData + time.Minute)
	wh.stats = armStats(9000)
	evaluate()
	if len(published) != 2 {
		t.Errorf("published %v after the late-data horizon, want nothing more", published)
	}
}
