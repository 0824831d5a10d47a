package rules_test

import (
	"context"
	"fmt"
	"math"
	"math/rand/v2"
	"strings"
	"testing"
	"time"

	"github.com/verdictlabs/verdict/pkg/config"
	"github.com/verdictlabs/verdict/pkg/event"
	"github.com/verdictlabs/verdict/pkg/readout"
	"github.com/verdictlabs/verdict/pkg/rules"
	"github.com/verdictlabs/verdict/pkg/stats"
	"github.com/verdictlabs/verdict/pkg/testkit"
	"github.com/verdictlabs/verdict/pkg/warehouse"
	"github.com/verdictlabs/verdict/pkg/warehouse/warehousetest"
)

// TestNoveltyTruths runs three simulated truths from raw events through
// ClickHouse, the statistics over time and the decision rules. Units come
// back to visit every day of their 14-day window, less as the days pass;
// the treatment multiplies the visits of day k since exposure by a lift
// that is constant (+25%), decays (+80% on day 0, nearly none after a
// week: novelty) or grows (none at first, +50% once learnt). The readout
// must find the change of each (stable, decaying, growing), persevere on
// the constant and the growing lifts and not on the novelty, which at its
// end date is a pivot that says why.
func TestNoveltyTruths(t *testing.T) { warehousetest.Run(t, testNoveltyTruths) }

func testNoveltyTruths(t *testing.T, e warehouse.Engine) {
	w, _ := warehousetest.Start(t, e)
	ctx := context.Background()
	start := time.Date(2026, 10, 1, 0, 0, 0, 0, time.UTC)
	end := start.Add(10 * 24 * time.Hour)
	now := start.Add(30 * 24 * time.Hour)
	visits := config.Metric{Key: "visits", Kind: stats.Count, Event: "visit", Direction: config.Increase}
	metrics := map[string]config.Metric{visits.Key: visits}
	truths := []struct {
		key    string
		lift   func(day float64) float64
		status readout.NoveltyStatus
		label  readout.Label
		reason string
	}{
		{"constant", func(float64) float64 { return 1.25 }, readout.NoveltyStable, readout.Persevere, "roll out"},
		{"decaying", func(k float64) float64 { return 1 + 0.8*math.Exp(-k/2) }, readout.NoveltyDecaying, readout.Pivot, "it was novelty that wore off"},
		{"growing", func(k float64) float64 { return 1 + 0.5*(1-math.Exp(-k/3)) }, readout.NoveltyGrowing, readout.Persevere, "grows with time since exposure"},
	}
	r := rand.New(rand.NewPCG(2026, 12))
	var evs []event.Event
	id := 0
	next := func() string { id++; return fmt.Sprintf("e%d", id) }
	for _, tr := range truths {
		for u := range 10000 {
			unit := fmt.Sprintf("%s-u%d", tr.key, u)
			variant := []string{"control", "treatment"}[u%2]
			exposed := start.Add(time.Duration(r.Int64N(int64(end.Sub(start)))))
			evs = append(evs, event.Event{Type: event.Exposure, ID: next(), TS: exposed, Unit: unit, Experiment: tr.key, Variant: variant})
			propensity := math.Exp(0.5*r.NormFloat64() - 0.125)
			for k := range 14 {
				rate := 0.3 * math.Exp(-float64(k)/7) * propensity
				if variant == "treatment" {
					rate *= tr.lift(float64(k))
				}
				for range testkit.Poisson(r, rate) {
					ts := exposed.Add(time.Duration(k)*24*time.Hour + time.Duration(r.Int64N(int64(24*time.Hour))))
					evs = append(evs, event.Event{Type: event.Track, ID: next(), TS: ts, Unit: unit, Name: "visit", Value: 1})
				}
			}
		}
	}
	if _, err := w.Insert(ctx, evs); err != nil {
		t.Fatal(err)
	}
	for _, tr := range truths {
		t.Run(tr.key, func(t *testing.T) {
			exp := config.Experiment{
				Key: tr.key, Variants: []config.Variant{{Key: "control", Weight: 0.5}, {Key: "treatment", Weight: 0.5}}, Control: "control",
				Primary: []string{visits.Key}, MDE: 0.05, Alpha: 0.05, Power: 0.8, Sequential: true, Tuning: stats.DefaultTuning,
				AttributionWindow: config.Duration(14 * 24 * time.Hour), Start: start, End: &end,
			}
			used := []config.Metric{visits}
			st, err := w.ExperimentStats(ctx, exp, used, now)
			if err != nil {
				t.Fatal(err)
			}
			ts, err := w.TimeStats(ctx, exp, used, now)
			if err != nil {
				t.Fatal(err)
			}
			st.Time = &ts
			ro, _ := rules.Evaluate(exp, metrics, st, now, nil)
			if err := ro.Validate(); err != nil {
				t.Fatalf("readout does not validate: %v", err)
			}
			m := ro.Arms[0].Metrics[0]
			n, s := m.Novelty, m.Series
			if n == nil || s == nil || n.Early == nil || n.Change == nil {
				t.Fatalf("no novelty test or series in the readout: %+v %+v", n, s)
			}
			t.Logf("%s: early %+.1f%%, late %+.1f%%, change %+.1f%% [%+.1f%%, %+.1f%%]: %s; label %s", tr.key,
				100*n.Early.RelEffect, 100*n.Late.RelEffect, 100**n.Change, 100*n.ChangeCI[0], 100*n.ChangeCI[1], n.Status, ro.Arms[0].Label)
			t.Logf("%s\n%s", ro.Summary, strings.Join(ro.Arms[0].Reasons, "\n"))
			if n.Status != tr.status || n.Split != "7d" || n.Units != 10000 {
				t.Errorf("novelty %s after a split at %s over %d units, want %s, 7d, 10000", n.Status, n.Split, n.Units, tr.status)
			}
			if ro.Arms[0].Label != tr.label {
				t.Errorf("label %q, want %q", ro.Arms[0].Label, tr.label)
			}
			if all := strings.Join(ro.Arms[0].Reasons, "\n"); !strings.Contains(all, tr.reason) {
				t.Errorf("the reasons lack %q:\n%s", tr.reason, all)
			}
			// A point a day from the start to now, one per day of the
			// window since exposure; the last cumulative point is the
			// readout's comparison (no CUPED: the metric has no history).
			if len(s.Cumulative) != 31 || len(s.SinceExposure) != 14 {
				t.Fatalf("%d cumulative points and %d since exposure, want 31 and 14", len(s.Cumulative), len(s.SinceExposure))
			}
			if last := s.Cumulative[30]; math.Abs(last.AbsEffect-m.AbsEffect) > 1e-5*math.Abs(m.AbsEffect) || last.Units != 10000 {
				t.Errorf("the last cumulative point %+v is not the readout's effect %v", last, m.AbsEffect)
			}
			day0, day13 := *s.SinceExposure[0].RelEffect, *s.SinceExposure[13].RelEffect
			truth0, truth13 := tr.lift(0)-1, tr.lift(13)-1
			t.Logf("since exposure: day 0 %+.1f%% (truth %+.1f%%), day 13 %+.1f%% (truth %+.1f%%)", 100*day0, 100*truth0, 100*day13, 100*truth13)
			if math.Abs(day0-truth0) > 0.15 || math.Abs(day13-truth13) > 0.25 {
				t.Errorf("the effect by day since exposure is far from the truth")
			}
		})
	}
}
