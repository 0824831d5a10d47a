package rules_test

import (
	"math"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/verdictlabs/verdict/pkg/config"
	"github.com/verdictlabs/verdict/pkg/readout"
	"github.com/verdictlabs/verdict/pkg/rules"
	"github.com/verdictlabs/verdict/pkg/stats"
	"github.com/verdictlabs/verdict/pkg/warehouse"
)

// TestCUPEDDecidesSooner: the same experiment, the same units — revenue
// per user raised 8%, each unit's revenue correlated 0.7 with its revenue
// in the 14 days before exposure — looked at after every 100 units per arm.
// With CUPED (the default) it is decided persevere at fewer units than with
// cuped: {enabled: false}, and its readout reports the variance reduction.
func TestCUPEDDecidesSooner(t *testing.T) {
	start := time.Date(2026, 11, 1, 0, 0, 0, 0, time.UTC)
	off := false
	revenue := config.Metric{Key: "revenue", Kind: stats.Mean, Event: "purchase", Aggregate: config.Sum, Direction: config.Increase}
	plain := revenue
	plain.CUPED = &config.CUPED{Enabled: &off}
	exp := config.Experiment{
		Key: "checkout", Variants: []config.Variant{{Key: "control", Weight: 0.5}, {Key: "one-page", Weight: 0.5}},
		Control: "control", Primary: []string{"revenue"},
		MDE: 0.05, Alpha: 0.05, Power: 0.8, Sequential: true, Tuning: 5000, MinUnits: 100,
		AttributionWindow: config.Duration(7 * 24 * time.Hour), Start: start,
	}
	r := rand.New(rand.NewPCG(20261202, 12))
	var arms [2]stats.Arm
	var pres [2]stats.Pre
	decidedAt := map[string]int{}
	var reduction float64
	for look := 1; look <= 200 && len(decidedAt) < 2; look++ {
		for i, lift := range []float64{1, 1.08} {
			for range 100 {
				z0, e := r.NormFloat64(), r.NormFloat64()
				x0 := math.Exp(3 + 0.5*z0)
				x := lift * math.Exp(3+0.5*(0.7*z0+math.Sqrt(1-0.49)*e))
				arms[i].N++
				arms[i].Sum += x
				arms[i].SumSquares += x * x
				pres[i].Sum += x0
				pres[i].SumSquares += x0 * x0
				pres[i].CrossSum += x * x0
			}
		}
		now := start.Add(time.Duration(look) * time.Hour)
		st := warehouse.ExperimentStats{
			Units:   map[string]uint64{"control": uint64(arms[0].N), "one-page": uint64(arms[1].N)},
			Exposed: uint64(arms[0].N + arms[1].N), FirstExposure: start, DataThrough: now,
			Cells: []warehouse.Cell{
				{Variant: "control", Metric: "revenue", Arm: arms[0], Pre: pres[0]},
				{Variant: "one-page", Metric: "revenue", Arm: arms[1], Pre: pres[1]},
			},
		}
		for name, m := range map[string]config.Metric{"cuped": revenue, "plain": plain} {
			if _, done := decidedAt[name]; done {
				continue
			}
			ro, _ := rules.Evaluate(exp, map[string]config.Metric{"revenue": m}, st, now, nil)
			if ro.Status == readout.Collecting {
				continue
			}
			if ro.Label != readout.Persevere {
				t.Fatalf("%s: %s %s at %d units per arm, want persevere: %s", name, ro.Status, ro.Label, look*100, ro.Summary)
			}
			decidedAt[name] = look * 100
			if cu := ro.Arms[0].Metrics[0].CUPED; name == "cuped" {
				if cu == nil || !cu.Applied || cu.Lookback != "14d" {
					t.Fatalf("cuped readout's cuped = %+v, want applied with the 14d lookback", cu)
				}
				reduction = cu.VarianceReduction
			} else if cu != nil {
				t.Errorf("plain readout's cuped = %+v, want none", cu)
			}
		}
	}
	t.Logf("decided persevere at %d units per arm with CUPED (variance reduction %.2f), %d without", decidedAt["cuped"], reduction, decidedAt["plain"])
	if decidedAt["cuped"] == 0 || decidedAt["plain"] == 0 || decidedAt["cuped"] >= decidedAt["plain"] {
		t.Errorf("decided at %v units per arm; want CUPED's decision first", decidedAt)
	}
	if reduction < 0.3 {
		t.Errorf("variance reduction %.2f, want about 0.4 for a correlation of 0.7 on the log scale", reduction)
	}
}
