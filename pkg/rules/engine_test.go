package rules

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/verdictlabs/verdict/pkg/config"
	"github.com/verdictlabs/verdict/pkg/readout"
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

// TestEngineLifecycle: readouts computed while ingest is behind are
// provisional and decide nothing; once it has caught up the candidate
// holds and is decided; a new engine (a restart) continues from the stored
// state and a definition change starts the running intervals again.
func TestEngineLifecycle(t *testing.T) {
	now := time.Date(2026, 11, 27, 12, 0, 0, 0, time.UTC)
	defs := config.Definitions{
		Metrics: []config.Metric{{Key: "conversion", Kind: stats.Proportion, Event: "purchase", Direction: config.Increase}},
		Experiments: []config.Experiment{{
			Key: "win", Variants: []config.Variant{{Key: "control", Weight: 0.5}, {Key: "treatment", Weight: 0.5}},
			Control: "control", Primary: []string{"conversion"}, MDE: 0.1, Alpha: 0.05, Power: 0.8, Sequential: true, Tuning: 5000,
			AttributionWindow: config.Duration(24 * time.Hour), Start: now.Add(-24 * time.Hour),
		}},
	}
	win := armStats(20000)
	win.Cells[1].Arm = stats.Arm{N: 20000, Sum: 2600, SumSquares: 2600} // 13% against 10%
	wh := &fakeWarehouse{stats: win}
	states := newMemStates()
	backlog := stream.Backlog{Pending: 5000, Lag: time.Minute}
	var published []readout.Readout
	engine := func() *Engine {
		e, err := NewEngine(context.Background(), EngineOptions{
			Warehouse: wh,
			Publish: func(_ context.Context, m *nats.Msg) error {
				var r readout.Readout
				if err := json.Unmarshal(m.Data, &r); err != nil {
					t.Fatal(err)
				}
				published = append(published, r)
				return nil
			},
			Load:       func(context.Context) (config.Definitions, error) { return defs, nil },
			States:     states,
			Backlog:    func(context.Context) (stream.Backlog, error) { return backlog, nil },
			Hold:       2 * time.Minute,
			Logger:     slog.New(slog.DiscardHandler),
			Registerer: prometheus.NewRegistry(),
			Now:        func() time.Time { return now },
		})
		if err != nil {
			t.Fatal(err)
		}
		return e
	}
	e := engine()
	look := func(wantStatus readout.Status, wantProvisional bool) readout.Readout {
		t.Helper()
		if err := e.EvaluateAll(context.Background()); err != nil {
			t.Fatal(err)
		}
		r := published[len(published)-1]
		if r.Status != wantStatus || r.Provisional != wantProvisional || r.Candidate != readout.Persevere {
			t.Fatalf("at %v: status %s, provisional %v, candidate %q; want %s, %v, persevere (%s)", now, r.Status, r.Provisional, r.Candidate, wantStatus, wantProvisional, r.Summary)
		}
		now = now.Add(time.Minute)
		return r
	}
	look(readout.Collecting, true)
	look(readout.Collecting, true)
	look(readout.Collecting, true) // held for longer than the hold, but never caught up
	backlog = stream.Backlog{Pending: 20, Lag: 100 * time.Millisecond}
	look(readout.Collecting, false) // in flight: caught up; the hold starts
	look(readout.Collecting, false)
	r := look(readout.Decided, false)
	if r.Label != readout.Persevere || r.DecidedAt == nil || r.Health.Backlog != 20 {
		t.Errorf("decided: label %q, decided_at %v, backlog %d", r.Label, r.DecidedAt, r.Health.Backlog)
	}

	// A restart continues: decided, with the intervals kept.
	st, _, _ := states.Get(context.Background(), "win")
	if len(st.Running) == 0 || st.Definition == "" {
		t.Fatalf("stored state %+v, want running intervals and a definition digest", st)
	}
	e = engine()
	// The effect shrinks: the interval stays the intersection with what
	// was stored before the restart.
	decidedCI := r.Arms[0].Metrics[0].CI
	wh.stats = armStats(20000)
	wh.stats.Cells[1].Arm = stats.Arm{N: 20000, Sum: 2250, SumSquares: 2250}
	r = look(readout.Decided, false)
	if ci := r.Arms[0].Metrics[0].CI; r.Label != readout.Persevere || ci[0] != decidedCI[0] || ci[1] >= decidedCI[1] {
		t.Errorf("after a restart: label %q, ci %v; want persevere on the intersection with %v", r.Label, ci, decidedCI)
	}

	// A definition change keeps the decision but starts the intervals again.
	defs.Experiments[0].Alpha = 0.1 // the intervals depend on it (the MDE does not)
	r = look(readout.Decided, false)
	if ci := r.Arms[0].Metrics[0].CI; r.Label != readout.Persevere || ci[0] >= decidedCI[0] {
		t.Errorf("after a definition change: label %q, ci %v; want persevere kept, and this look's own interval, below %v", r.Label, ci, decidedCI)
	}
}

// TestTimeStatsRefresh: the statistics over time, a full read, are
// computed at the first look, again when a metric's sums move by more than
// 5% (events arriving for units already counted move no unit count) or
// TimeStatsEvery has passed, and not otherwise; each readout carries the
// last.
func TestTimeStatsRefresh(t *testing.T) {
	now := time.Date(2026, 11, 27, 12, 0, 0, 0, time.UTC)
	defs := config.Definitions{
		Metrics: []config.Metric{{Key: "conversion", Kind: stats.Proportion, Event: "purchase", Direction: config.Increase}},
		Experiments: []config.Experiment{{
			Key: "x", Variants: []config.Variant{{Key: "control", Weight: 0.5}, {Key: "treatment", Weight: 0.5}},
			Control: "control", Primary: []string{"conversion"}, MDE: 0.1, Alpha: 0.05, Power: 0.8, Sequential: true,
			AttributionWindow: config.Duration(24 * time.Hour), Start: now.Add(-30 * 24 * time.Hour),
		}},
	}
	wh := &fakeWarehouse{stats: armStats(1000)}
	var calls []time.Time
	e, err := NewEngine(context.Background(), EngineOptions{
		Warehouse: wh,
		TimeStats: func(_ context.Context, exp config.Experiment, _ []config.Metric, asOf time.Time) (warehouse.TimeStats, error) {
			calls = append(calls, asOf)
			return warehouse.TimeStats{AsOf: asOf, Split: 12 * time.Hour}, nil
		},
		Publish:    func(context.Context, *nats.Msg) error { return nil },
		Load:       func(context.Context) (config.Definitions, error) { return defs, nil },
		States:     newMemStates(),
		Backlog:    noBacklog,
		Logger:     slog.New(slog.DiscardHandler),
		Registerer: prometheus.NewRegistry(),
		Now:        func() time.Time { return now },
	})
	if err != nil {
		t.Fatal(err)
	}
	look := func(want int) {
		t.Helper()
		if err := e.EvaluateAll(context.Background()); err != nil {
			t.Fatal(err)
		}
		if len(calls) != want {
			t.Fatalf("computed %d times by %v, want %d", len(calls), now, want)
		}
	}
	look(1)
	now = now.Add(time.Minute)
	look(1) // nothing moved
	more := armStats(1000)
	more.Cells[1].Arm.Sum *= 1.04
	wh.stats = more
	now = now.Add(time.Minute)
	look(1)                       // 4%
	more.Cells[1].Arm.Sum *= 1.02 // 6% in all
	now = now.Add(time.Minute)
	look(2) // events for units already counted
	now = now.Add(TimeStatsEvery)
	look(3) // an hour on
}
