package tally_test

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
	"go.uber.org/goleak"

	"github.com/verdictlabs/verdict/pkg/config"
	"github.com/verdictlabs/verdict/pkg/event"
	"github.com/verdictlabs/verdict/pkg/stats"
	"github.com/verdictlabs/verdict/pkg/tally"
	"github.com/verdictlabs/verdict/pkg/warehouse"
	"github.com/verdictlabs/verdict/pkg/warehouse/warehousetest"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

var t0 = time.Date(2026, 11, 2, 0, 0, 0, 0, time.UTC)

const day = 24 * time.Hour

func timePtr(t time.Time) *time.Time { return &t }

// The metrics of the test: every kind (quantiles of both levels), caps on a mean and a ratio, CUPED
// with two lookbacks on one event, and without.
var testMetrics = []config.Metric{
	{Key: "conversion", Kind: stats.Proportion, Event: "purchase"},
	{Key: "revenue", Kind: stats.Mean, Event: "purchase", Aggregate: config.Sum, Cap: &config.Cap{Percentile: 0.9}},
	{Key: "items", Kind: stats.Count, Event: "add_to_cart", CUPED: &config.CUPED{Lookback: config.Duration(3 * day)}},
	{Key: "load_ms", Kind: stats.Ratio, Numerator: &config.Part{Event: "page_load", Aggregate: config.Sum}, Denominator: &config.Part{Event: "page_load", Aggregate: config.Count}},
	{Key: "clicks_per_session", Kind: stats.Ratio, Numerator: &config.Part{Event: "click", Aggregate: config.Count},
		Denominator: &config.Part{Event: "session_start", Aggregate: config.Count}, Cap: &config.Cap{Percentile: 0.8}},
	{Key: "sessions", Kind: stats.Mean, Event: "session_start", Aggregate: config.Count, CUPED: &config.CUPED{Enabled: func() *bool { b := false; return &b }()}},
	{Key: "load_p90", Kind: stats.Quantile, Event: "page_load", Quantile: 0.9, Level: config.LevelEvent},
	{Key: "revenue_p50", Kind: stats.Quantile, Event: "purchase", Aggregate: config.Sum, Quantile: 0.5, Level: config.LevelUnit},
}

var testExperiment = config.Experiment{
	Key:               "checkout",
	Variants:          []config.Variant{{Key: "control", Weight: 0.5}, {Key: "treatment", Weight: 0.5}},
	Control:           "control",
	Segments:          []string{"platform", "country"},
	AttributionWindow: config.Duration(2 * day),
	Start:             t0,
	End:               timePtr(t0.Add(9 * day)),
}

// traffic makes the rows of one round of arrivals, numbered from seq: new
// units' exposures and their events, more events of earlier units, late
// events (timed days ago), copies of earlier events (published again, with
// a seq of their own), events and exposures timed after asOf, exposures
// earlier than a unit's first, exposures of the other variant and of an
// unknown one, and events of units never exposed.
type traffic struct {
	rng    *rand.Rand
	seq    uint64
	units  int
	sent   []event.Event // every event sent, to copy
	events int
}

var names = []string{"purchase", "add_to_cart", "page_load", "click", "session_start", "other"}

func (tr *traffic) round(asOf time.Time, newUnits, moreEvents int) []event.Event {
	var out []event.Event
	add := func(e event.Event) {
		tr.seq++
		e.Seq = tr.seq
		out = append(out, e)
		tr.sent = append(tr.sent, e)
	}
	ms := func(t time.Time) time.Time { return t.Truncate(time.Millisecond) }
	span := asOf.Sub(t0)
	when := func(from time.Time) time.Time { // a time in [from, asOf]
		if d := asOf.Sub(from); d > 0 {
			return ms(from.Add(time.Duration(tr.rng.Int64N(int64(d)))))
		}
		return from
	}
	track := func(unit string, ts time.Time) {
		tr.events++
		name := names[tr.rng.IntN(len(names))]
		add(event.Event{Type: event.Track, ID: fmt.Sprintf("e-%d", tr.events), TS: ts, Unit: unit, Name: name, Value: float64(tr.rng.IntN(2000)) / 10})
	}
	exposure := func(unit, variant string, ts time.Time) {
		tr.events++
		keys, values := []string{"country", "platform"}, []string{[]string{"de", "us", "fr"}[tr.rng.IntN(3)], []string{"ios", "web", "android"}[tr.rng.IntN(3)]}
		if tr.rng.IntN(7) == 0 {
			keys, values = []string{"platform"}, values[1:]
		}
		add(event.Event{Type: event.Exposure, ID: fmt.Sprintf("x-%d", tr.events), TS: ts, Unit: unit,
			Experiment: testExperiment.Key, Variant: variant, AttrKeys: keys, AttrValues: values})
	}
	for range newUnits {
		tr.units++
		unit := fmt.Sprintf("u-%d", tr.units)
		variant := []string{"control", "treatment"}[tr.rng.IntN(2)]
		if tr.rng.IntN(40) == 0 {
			variant = "typo"
		}
		first := when(t0.Add(-day)) // some before the start: their later exposures count
		exposure(unit, variant, first)
		// Activity before the exposure (CUPED's lookback) and after.
		for range tr.rng.IntN(4) {
			track(unit, ms(first.Add(-time.Duration(tr.rng.Int64N(int64(4*day))))))
		}
		for range tr.rng.IntN(8) {
			track(unit, when(first))
		}
		switch r := tr.rng.IntN(30); {
		case r == 0: // the other variant too
			exposure(unit, []string{"control", "treatment"}[tr.rng.IntN(2)], when(first))
		case r == 1: // a second exposure, later
			exposure(unit, variant, when(first))
		}
	}
	if tr.units == 0 {
		return out
	}
	pick := func() string { return fmt.Sprintf("u-%d", 1+tr.rng.IntN(tr.units)) }
	for range moreEvents {
		switch r := tr.rng.IntN(20); {
		case r < 10: // recent
			track(pick(), when(asOf.Add(-span/5)))
		case r < 15: // late: timed any time since before the start
			track(pick(), when(t0.Add(-3*day)))
		case r < 17 && len(tr.sent) > 0: // a copy of an event sent before
			c := tr.sent[tr.rng.IntN(len(tr.sent))]
			add(c)
		case r == 17: // timed after asOf (a clock ahead)
			track(pick(), ms(asOf.Add(time.Duration(tr.rng.Int64N(int64(4*time.Minute))))))
		case r == 18: // an exposure earlier than the unit's first, or after asOf
			if tr.rng.IntN(2) == 0 {
				exposure(pick(), "control", when(t0.Add(-day)))
			} else {
				exposure(pick(), "treatment", ms(asOf.Add(time.Duration(tr.rng.Int64N(int64(4*time.Minute))))))
			}
		default: // a unit nobody exposed
			track(fmt.Sprintf("stranger-%d", tr.rng.IntN(50)), when(t0))
		}
	}
	return out
}

// TestLooksEqualFullRecompute streams rounds of arrivals into ClickHouse
// and looks at the experiment after each, with a tally; every look must
// give the numbers of a full recompute at the same floor and time
// (warehouse.ExperimentStatsThrough), to 1e-9.
func TestLooksEqualFullRecompute(t *testing.T) { warehousetest.Run(t, testLooksEqualFullRecompute) }

func testLooksEqualFullRecompute(t *testing.T, eng warehouse.Engine) {
	w, _ := warehousetest.Start(t, eng)
	lookRounds(t, w, 14)
}

// TestLooksOnCluster: the same on two shards, where each look reads every
// shard and puts the units together.
func TestLooksOnCluster(t *testing.T) {
	warehousetest.RunServerOnly(t, "has no ON CLUSTER", func(t *testing.T, _ warehouse.Engine) {
		c := warehousetest.StartCluster(t, 2, 1)
		lookRounds(t, c.Open(t, c.Addr(), "verdict"), 6)
	})
}

// lookRounds inserts rounds of traffic into w, looks after each with a
// tally, and compares every look with a full recompute.
func lookRounds(t *testing.T, w *warehouse.Warehouse, rounds int) {
	ctx := context.Background()
	var floor atomic.Uint64
	// Steps of 3000 of seq: some looks take several.
	book := tally.NewBook(tally.Options{Source: w, Floor: func(context.Context) (uint64, error) { return floor.Load(), nil }, Step: 3000})
	defer book.Close()
	tr := &traffic{rng: rand.New(rand.NewPCG(7, 11))}
	asOf := t0.Add(6 * time.Hour)
	var looks, built, refetched int
	for round := range rounds {
		newUnits := 60
		if round == 4 {
			newUnits = 6000 // more units to read afresh than a query's text could list
		}
		evs := tr.round(asOf, newUnits, 150)
		if _, err := w.Insert(ctx, evs); err != nil {
			t.Fatal(err)
		}
		// The floor moves to what arrived, except in a few rounds: rows
		// above it must not count yet.
		if round%5 != 3 {
			floor.Store(tr.seq)
		}
		// A look at the same floor and time twice in a row, sometimes.
		for again := range 1 + round%3/2 {
			look, err := book.Look(ctx, testExperiment, testMetrics, asOf)
			if err != nil {
				t.Fatalf("round %d look %d: %v", round, again, err)
			}
			looks++
			if look.Built {
				built++
			}
			refetched += look.Refetch
			if look.Seq != floor.Load() {
				t.Errorf("round %d: look as of floor %d, want %d", round, look.Seq, floor.Load())
			}
			full, err := w.ExperimentStatsThrough(ctx, testExperiment, testMetrics, asOf, floor.Load())
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(full, look.Stats, cmpopts.EquateApprox(1e-9, 1e-9), cmpopts.EquateEmpty()); diff != "" {
				t.Fatalf("round %d (floor %d, as of %v): the tally differs from a full recompute (-full +tally):\n%s", round, floor.Load(), asOf, diff)
			}
			if again == 0 && round > 0 && look.Exposures+look.Events == 0 && round%5 != 3 {
				t.Errorf("round %d read no new rows", round)
			}
		}
		asOf = asOf.Add(15 * time.Hour)
	}
	full, _ := w.ExperimentStatsThrough(ctx, testExperiment, testMetrics, asOf, floor.Load())
	t.Logf("%d looks, %d built, %d units read afresh; %d exposed, %d multi, %d unknown variant, %d cells",
		looks, built, refetched, full.Exposed, full.MultiExposed, full.UnknownVariant, len(full.Cells))
	if built != 1 {
		t.Errorf("built %d times, want once", built)
	}
	var clustered, unitLevel int
	for _, c := range full.Cells {
		if q := c.Quantile; q != nil && q.N > 10 {
			if q.Clustered && q.DenSum > q.NClusters {
				clustered++
			} else if !q.Clustered {
				unitLevel++
			}
		}
	}
	if clustered == 0 || unitLevel == 0 {
		t.Errorf("%d event-level quantile cells with clusters of several events, %d unit-level ones: the test needs both", clustered, unitLevel)
	}
	if refetched == 0 || full.MultiExposed == 0 || full.UnknownVariant == 0 {
		t.Errorf("the traffic must read units afresh (%d), and have multi-exposed (%d) and unknown-variant (%d) units", refetched, full.MultiExposed, full.UnknownVariant)
	}

	// Verify: the tally against a full recompute at its own look.
	fullV, kept, seq, at, err := book.Verify(ctx, testExperiment, testMetrics)
	if err != nil {
		t.Fatal(err)
	}
	if seq != floor.Load() || at.IsZero() {
		t.Errorf("Verify as of %d, %v; want floor %d", seq, at, floor.Load())
	}
	if diff := cmp.Diff(fullV, kept, cmpopts.EquateApprox(1e-9, 1e-9), cmpopts.EquateEmpty()); diff != "" {
		t.Errorf("Verify (-full +tally):\n%s", diff)
	}
}

// TestShapeChangeBuildsInBackground: a definition whose tally holds other
// things (a new segment) is built again in the background; looks meanwhile
// return ErrBuilding, then the new shape's numbers.
func TestShapeChangeBuildsInBackground(t *testing.T) {
	warehousetest.Run(t, testShapeChangeBuildsInBackground)
}

func testShapeChangeBuildsInBackground(t *testing.T, eng warehouse.Engine) {
	w, _ := warehousetest.Start(t, eng)
	ctx := context.Background()
	tr := &traffic{rng: rand.New(rand.NewPCG(3, 5))}
	asOf := t0.Add(3 * day)
	if _, err := w.Insert(ctx, tr.round(asOf, 200, 300)); err != nil {
		t.Fatal(err)
	}
	floor := tr.seq
	book := tally.NewBook(tally.Options{Source: w, Floor: func(context.Context) (uint64, error) { return floor, nil }})
	defer book.Close()
	exp := testExperiment
	exp.Segments = []string{"platform"}
	if _, err := book.Look(ctx, exp, testMetrics, asOf); err != nil {
		t.Fatal(err)
	}
	exp.Segments = []string{"platform", "country"}
	_, err := book.Look(ctx, exp, testMetrics, asOf)
	if !errors.Is(err, tally.ErrBuilding) {
		t.Fatalf("look after a change of segments = %v, want ErrBuilding", err)
	}
	deadline := time.Now().Add(time.Minute)
	for {
		look, err := book.Look(ctx, exp, testMetrics, asOf)
		if errors.Is(err, tally.ErrBuilding) && time.Now().Before(deadline) {
			time.Sleep(20 * time.Millisecond)
			continue
		}
		if err != nil {
			t.Fatal(err)
		}
		full, err := w.ExperimentStatsThrough(ctx, exp, testMetrics, asOf, floor)
		if err != nil {
			t.Fatal(err)
		}
		if diff := cmp.Diff(full, look.Stats, cmpopts.EquateApprox(1e-9, 1e-9), cmpopts.EquateEmpty()); diff != "" {
			t.Fatalf("after the rebuild (-full +tally):\n%s", diff)
		}
		return
	}
}
