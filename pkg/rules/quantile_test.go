package rules_test

import (
	"context"
	"fmt"
	"math"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/verdictlabs/verdict/pkg/config"
	"github.com/verdictlabs/verdict/pkg/event"
	"github.com/verdictlabs/verdict/pkg/readout"
	"github.com/verdictlabs/verdict/pkg/rules"
	"github.com/verdictlabs/verdict/pkg/stats"
	"github.com/verdictlabs/verdict/pkg/warehouse"
	"github.com/verdictlabs/verdict/pkg/warehouse/warehousetest"
)

// TestQuantileGuardrail runs quantile metrics from raw events through
// ClickHouse and the decision rules: a treatment that converts better but
// makes the slowest page loads slower (loads above 1 s take 80% longer
// above it) must not persevere: the p90 guardrail is beyond its 15%
// margin. The same
// treatment without the slowdown perseveres with the guardrail
// non-inferior. The readout's quantiles are the arms' p90 of their events,
// as sorted here.
func TestQuantileGuardrail(t *testing.T) { warehousetest.Run(t, testQuantileGuardrail) }

func testQuantileGuardrail(t *testing.T, e warehouse.Engine) {
	w, _ := warehousetest.Start(t, e)
	ctx := context.Background()
	start := time.Date(2026, 11, 2, 0, 0, 0, 0, time.UTC)
	loadP90 := config.Metric{Key: "load_p90", Kind: stats.Quantile, Event: "page_load", Quantile: 0.9, Level: config.LevelEvent, Direction: config.Decrease}
	basketP50 := config.Metric{Key: "basket_p50", Kind: stats.Quantile, Event: "purchase", Aggregate: config.Sum, Quantile: 0.5, Level: config.LevelUnit, Direction: config.Increase}
	conv := config.Metric{Key: "conv", Kind: stats.Proportion, Event: "purchase", Direction: config.Increase}
	metrics := map[string]config.Metric{loadP90.Key: loadP90, basketP50.Key: basketP50, conv.Key: conv}

	r := rand.New(rand.NewPCG(7, 11))
	var evs []event.Event
	loads := map[string][]float64{} // experiment/variant → every page load
	id := 0
	next := func() string { id++; return fmt.Sprintf("e%d", id) }
	for _, key := range []string{"slow", "fast"} {
		for u := range 3000 {
			unit := fmt.Sprintf("%s-u%d", key, u)
			variant := []string{"control", "treatment"}[u%2]
			ts := start.Add(time.Duration(u) * time.Minute)
			evs = append(evs, event.Event{Type: event.Exposure, ID: next(), TS: ts, Unit: unit, Experiment: key, Variant: variant})
			// Each unit has its own speed: its loads are alike (a cluster).
			speed := math.Exp(0.4 * r.NormFloat64())
			for range 1 + r.IntN(5) {
				load := 800 * speed * math.Exp(0.3*r.NormFloat64())
				if key == "slow" && variant == "treatment" && load > 1000 {
					load = 1000 + (load-1000)*1.8 // the slow tail, slower
				}
				load = math.Round(load)
				loads[key+"/"+variant] = append(loads[key+"/"+variant], load)
				evs = append(evs, event.Event{Type: event.Track, ID: next(), TS: ts.Add(time.Minute), Unit: unit, Name: "page_load", Value: load})
			}
			p := 0.10
			if variant == "treatment" {
				p = 0.16
			}
			if r.Float64() < p {
				evs = append(evs, event.Event{Type: event.Track, ID: next(), TS: ts.Add(2 * time.Minute), Unit: unit, Name: "purchase", Value: math.Round(20 + 40*r.Float64())})
			}
		}
	}
	if _, err := w.Insert(ctx, evs); err != nil {
		t.Fatal(err)
	}
	now := start.Add(10 * 24 * time.Hour)
	for _, tt := range []struct {
		key       string
		label     readout.Label
		beyond    bool
		worseTail bool
	}{
		{"slow", "", true, true},
		{"fast", readout.Persevere, false, false},
	} {
		t.Run(tt.key, func(t *testing.T) {
			end := start.Add(7 * 24 * time.Hour)
			exp := config.Experiment{
				Key: tt.key, Variants: []config.Variant{{Key: "control", Weight: 0.5}, {Key: "treatment", Weight: 0.5}}, Control: "control",
				Primary: []string{conv.Key}, Secondary: []string{basketP50.Key}, Guardrails: []config.Guardrail{{Metric: loadP90.Key, Margin: 0.15}},
				MDE: 0.2, Alpha: 0.05, Power: 0.8, Sequential: true, Tuning: stats.DefaultTuning,
				AttributionWindow: config.Duration(24 * time.Hour), Start: start, End: &end,
			}
			st, err := w.ExperimentStats(ctx, exp, []config.Metric{conv, basketP50, loadP90}, now)
			if err != nil {
				t.Fatal(err)
			}
			ro, _ := rules.Evaluate(exp, metrics, st, now, nil)
			if err := ro.Validate(); err != nil {
				t.Fatalf("readout does not validate: %v", err)
			}
			var guard *readout.Metric
			for i, m := range ro.Arms[0].Metrics {
				if m.Metric == loadP90.Key {
					guard = &ro.Arms[0].Metrics[i]
				}
			}
			if guard == nil || guard.Kind != "quantile" || guard.Quantile == nil || *guard.Quantile != 0.9 || guard.Level != "event" {
				t.Fatalf("no quantile guardrail in the readout: %+v", guard)
			}
			for _, arm := range []struct {
				variant string
				got     readout.Estimate
			}{{"control", guard.Control}, {"treatment", guard.Treatment}} {
				vs := slices.Clone(loads[tt.key+"/"+arm.variant])
				slices.Sort(vs)
				want := vs[int(0.9*float64(len(vs)))]
				if arm.got.Mean != want || arm.got.N != float64(len(vs)) {
					t.Errorf("%s: p90 %v of %v loads, want %v of %d", arm.variant, arm.got.Mean, arm.got.N, want, len(vs))
				}
			}
			t.Logf("p90 %v → %v (%+.1f%%, interval %+.1f%% to %+.1f%%); label %s", guard.Control.Mean, guard.Treatment.Mean,
				100**guard.RelEffect, 100*guard.RelCI[0], 100*guard.RelCI[1], ro.Arms[0].Label)
			if got := guard.BeyondMargin != nil && *guard.BeyondMargin; got != tt.beyond {
				t.Errorf("beyond_margin %v, want %v", got, tt.beyond)
			}
			if got := guard.NonInferior != nil && *guard.NonInferior; got == tt.beyond {
				t.Errorf("non_inferior %v, want %v", got, !tt.beyond)
			}
			if tt.label != "" && ro.Arms[0].Label != tt.label {
				t.Errorf("label %s, want %s\n%s", ro.Arms[0].Label, tt.label, strings.Join(ro.Arms[0].Reasons, "\n"))
			}
			if tt.beyond && ro.Arms[0].Label == readout.Persevere {
				t.Errorf("persevere with the p90 guardrail beyond its margin\n%s", strings.Join(ro.Arms[0].Reasons, "\n"))
			}
			if tt.beyond && !strings.Contains(strings.Join(ro.Arms[0].Reasons, "\n"), loadP90.Key) {
				t.Errorf("the reasons do not name %s:\n%s", loadP90.Key, strings.Join(ro.Arms[0].Reasons, "\n"))
			}
		})
	}
}
