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

// TestAAEngines runs A/A experiments (no true effect) through Evaluate with
// a look every day for 30 days, as the rules service looks, and counts the
// experiments that were ever labelled persevere: the false-persevere rate
// of each engine under daily peeking. The README quotes these numbers.
//
// The frequentist sequential engine holds its promise (at most alpha/2: a
// persevere needs the interval above 0, one side of the two-sided test).
// The Bayesian engine, like GrowthBook's, is not corrected for looking:
// its rate is reported, and checked only to be above the sequential one,
// so that the README's warning stays true.
func TestAAEngines(t *testing.T) {
	const (
		sims    = 1000
		days    = 30
		perDay  = 200 // units per arm per day
		p       = 0.1 // conversion in both arms
		alpha   = 0.05
		simSeed = 20261206
	)
	start := time.Date(2026, 11, 1, 0, 0, 0, 0, time.UTC)
	end := start.Add(days * 24 * time.Hour)
	conv := config.Metric{Key: "conv", Kind: stats.Proportion, Event: "purchase", Direction: config.Increase}
	metrics := map[string]config.Metric{conv.Key: conv}
	base := config.Experiment{
		Key:      "aa",
		Variants: []config.Variant{{Key: "control", Weight: 0.5}, {Key: "b", Weight: 0.5}},
		Control:  "control", Primary: []string{conv.Key},
		MDE: 0.1, Alpha: alpha, Power: 0.8, Sequential: true, Tuning: 5000,
		AttributionWindow: config.Duration(7 * 24 * time.Hour), Start: start, End: &end,
	}
	engines := []struct {
		name string
		edit func(*config.Experiment)
	}{
		{"frequentist sequential", func(*config.Experiment) {}},
		{"bayesian (flat prior)", func(e *config.Experiment) { e.Engine = config.EngineBayesian }},
		{"bayesian (prior sd 10%)", func(e *config.Experiment) {
			e.Engine, e.Prior = config.EngineBayesian, &config.Prior{Variance: 0.01, Proper: true}
		}},
	}
	rates := make([]float64, len(engines))
	for i, eng := range engines {
		exp := base
		eng.edit(&exp)
		r := rand.New(rand.NewPCG(simSeed, 1)) // the same data for every engine
		persevered := 0
		for range sims {
			var c, b stats.Arm
			var running map[string]stats.Running
			for day := 1; day <= days; day++ {
				for _, a := range []*stats.Arm{&c, &b} {
					for range perDay {
						a.N++
						if r.Float64() < p {
							a.Sum++
							a.SumSquares++
						}
					}
				}
				st := warehouse.ExperimentStats{
					Units:       map[string]uint64{"control": uint64(c.N), "b": uint64(b.N)},
					DataThrough: start.Add(time.Duration(day) * 24 * time.Hour),
					Cells: []warehouse.Cell{
						{Variant: "control", Metric: conv.Key, Arm: c},
						{Variant: "b", Metric: conv.Key, Arm: b},
					},
				}
				var ro readout.Readout
				ro, running = rules.Evaluate(exp, metrics, st, st.DataThrough, running)
				if len(ro.Arms) == 1 && ro.Arms[0].Label == readout.Persevere {
					persevered++
					break
				}
			}
		}
		rates[i] = float64(persevered) / sims
		t.Logf("%-24s false persevere in %d of %d A/A experiments (%.1f%%), 30 daily looks of +%d units per arm",
			eng.name, persevered, sims, 100*rates[i], perDay)
	}
	if b := mcBound(alpha/2, sims); rates[0] > b {
		t.Errorf("frequentist sequential: false-persevere rate %.3f, above alpha/2 plus 3 MC errors (%.3f)", rates[0], b)
	}
	if rates[1] <= rates[0] {
		t.Errorf("bayesian flat prior %.3f is not above the sequential %.3f: update the README's comparison", rates[1], rates[0])
	}
}

// mcBound is a rate plus three Monte-Carlo standard errors over sims trials.
func mcBound(rate float64, sims int) float64 {
	return rate + 3*math.Sqrt(rate*(1-rate)/float64(sims))
}
