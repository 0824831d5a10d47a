package rules_test

import (
	"flag"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/verdictlabs/verdict/pkg/config"
	"github.com/verdictlabs/verdict/pkg/decide"
	"github.com/verdictlabs/verdict/pkg/readout"
	"github.com/verdictlabs/verdict/pkg/rules"
	"github.com/verdictlabs/verdict/pkg/stats"
	"github.com/verdictlabs/verdict/pkg/warehouse"
)

var aaSims = flag.Int("aa.sims", 0, "A/A experiments in TestAALifecycle; 0: 60, or 4 under -race (the closing note's figures used 2000)")

// TestAALifecycle streams A/A experiments — no true effect anywhere —
// through the whole decision path as the rules service runs it: 1,000
// looks a minute apart, 40 new units a look, Evaluate with the running
// intersection kept between looks, and Latch with a 10-minute hold. Each
// has a proportion primary (10%), a revenue secondary, a guardrail with a
// 5% margin and three platform segments, as a typical definition does.
// An A/A experiment may end in pivot (the lift it was designed for is
// ruled out) or stay collecting; it must never persevere or be salvaged
// beyond what alpha allows, and must essentially never be invalid.
func TestAALifecycle(t *testing.T) {
	const (
		looks   = 1000
		perLook = 40
	)
	metrics := map[string]config.Metric{evConv.Key: evConv, evRev.Key: evRev, "spend": {Key: "spend", Kind: stats.Mean, Event: "purchase", Aggregate: config.Sum, Direction: config.Increase}}
	exp := config.Experiment{
		Key:        "aa",
		Variants:   []config.Variant{{Key: "control", Weight: 0.5}, {Key: "treatment", Weight: 0.5}},
		Control:    "control",
		Primary:    []string{evConv.Key},
		Secondary:  []string{evRev.Key},
		Guardrails: []config.Guardrail{{Metric: "spend", Margin: 0.05}},
		Segments:   []string{"platform"},
		MDE:        0.1, Alpha: 0.05, Power: 0.8, Sequential: true, Tuning: 5000, MinUnits: 100,
		AttributionWindow: config.Duration(7 * 24 * time.Hour),
		Start:             evStart,
	}
	if *aaSims == 0 {
		*aaSims = 60
		if raceEnabled {
			*aaSims = 4
		}
	}
	platforms := []string{"ios", "android", "web"}
	r := rand.New(rand.NewPCG(20261202, 1))
	var invalid, persevere, salvage, pivot, flips int
	for range *aaSims {
		type key struct{ variant, dim, value string }
		conv, rev := map[key]*stats.Arm{}, map[key]*stats.Arm{}
		add := func(m map[key]*stats.Arm, k key, x float64) {
			a := m[k]
			if a == nil {
				a = &stats.Arm{}
				m[k] = a
			}
			a.N++
			a.Sum += x
			a.SumSquares += x * x
		}
		units := map[string]uint64{"control": 0, "treatment": 0}
		var lc decide.Lifecycle
		var running map[string]stats.Running
		var emailed []readout.Label
		everInvalid := false
		for look := range looks {
			for range perLook {
				v := exp.Variants[r.IntN(2)].Key
				p := platforms[r.IntN(3)]
				units[v]++
				c, x := 0.0, 0.0
				if r.Float64() < 0.1 {
					c, x = 1, 20+40*r.Float64()
				}
				for _, k := range []key{{v, "", ""}, {v, "platform", p}} {
					add(conv, k, c)
					add(rev, k, x)
				}
			}
			st := warehouse.ExperimentStats{Units: units}
			for k, a := range conv {
				st.Cells = append(st.Cells,
					warehouse.Cell{Variant: k.variant, Metric: evConv.Key, Dimension: k.dim, Value: k.value, Arm: *a},
					warehouse.Cell{Variant: k.variant, Metric: evRev.Key, Dimension: k.dim, Value: k.value, Arm: *rev[k]},
					warehouse.Cell{Variant: k.variant, Metric: "spend", Dimension: k.dim, Value: k.value, Arm: *rev[k]})
			}
			now := evStart.Add(time.Duration(look+1) * time.Minute)
			st.DataThrough = now
			ro, next := rules.Evaluate(exp, metrics, st, now, running)
			running = next
			prev := lc
			ro, lc = decide.Latch(lc, decide.Look{Readout: ro, Now: now, Hold: 10 * time.Minute})
			everInvalid = everInvalid || ro.Status == readout.Invalid
			if ro.Status != readout.Collecting && (ro.Status != prev.Status || ro.Label != prev.Label) {
				emailed = append(emailed, ro.Label)
			}
		}
		if len(emailed) > 1 {
			flips++
		}
		switch {
		case everInvalid:
			invalid++
		case lc.Label == readout.Persevere:
			persevere++
		case lc.Label == readout.Salvage:
			salvage++
		case lc.Label == readout.Pivot:
			pivot++
		}
	}
	n := float64(*aaSims)
	t.Logf("A/A, %d experiments × %d looks (%d units per arm at the end): invalid %.2f%%, persevere %.2f%%, salvage %.2f%%, pivot %.1f%%, still collecting %.1f%%; more than one decision: %.2f%%",
		*aaSims, looks, looks*perLook/2, 100*float64(invalid)/n, 100*float64(persevere)/n, 100*float64(salvage)/n,
		100*float64(pivot)/n, 100*float64(*aaSims-invalid-persevere-salvage-pivot)/n, 100*float64(flips)/n)
	// Bounds for 60 experiments (the default): nothing invalid; at most 2
	// persevere, which a 2.5% one-sided rate would exceed with chance 0.2.
	if invalid > *aaSims/1000 {
		t.Errorf("%d of %d A/A experiments became invalid, want at most 0.1%%", invalid, *aaSims)
	}
	if limit := 2 + *aaSims/40; persevere > limit {
		t.Errorf("%d of %d A/A experiments persevered, want at most %d", persevere, *aaSims, limit)
	}
	if pivot < *aaSims/2 {
		t.Errorf("only %d of %d A/A experiments pivoted after %d looks: futility should rule out the 10%% lift", pivot, *aaSims, looks)
	}
}
