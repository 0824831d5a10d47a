package stats

import (
	"math"
	"math/rand/v2"
	"testing"
)

// The simulations below check the statistics' promises rather than their
// digits: they run with fixed seeds, so they are deterministic, and are sized
// to finish in a few seconds even under -race.

// draw returns one unit's value.
type draw func(r *rand.Rand) float64

func normal(mean, sd float64) draw {
	return func(r *rand.Rand) float64 { return mean + sd*r.NormFloat64() }
}

func bernoulli(p float64) draw {
	return func(r *rand.Rand) float64 {
		if r.Float64() < p {
			return 1
		}
		return 0
	}
}

// addUnits adds n units drawn from d to the arm.
func addUnits(a *Arm, r *rand.Rand, d draw, n int) {
	for range n {
		x := d(r)
		a.N++
		a.Sum += x
		a.SumSquares += x * x
	}
}

// mcBound is alpha plus three Monte-Carlo standard errors of a rate
// measured over sims trials.
func mcBound(rate float64, sims int) float64 {
	return rate + 3*math.Sqrt(rate*(1-rate)/float64(sims))
}

// TestAAPeeking runs A/A tests (no true effect) and looks after every batch
// of units, as a product manager refreshing the readout would. Stopping at
// the first significant look inflates the fixed-horizon test's false-positive
// rate far above alpha; the confidence sequence keeps it at or below alpha.
func TestAAPeeking(t *testing.T) {
	const (
		sims  = 1000
		looks = 60
		batch = 20 // units per arm per look: 1,200 per arm at the last look
		alpha = 0.05
	)
	scenarios := []struct {
		name string
		kind Kind
		unit draw
	}{
		{"mean", Mean, normal(10, 3)},
		{"proportion", Proportion, bernoulli(0.1)},
	}
	for i, sc := range scenarios {
		t.Run(sc.name, func(t *testing.T) {
			r := rand.New(rand.NewPCG(20261101, uint64(i)))
			fixed := Options{Alpha: alpha}
			sequential := Options{Alpha: alpha, Sequential: true, Tuning: DefaultTuning}
			var naiveHits, seqHits int
			for range sims {
				var control, treatment Arm
				naive, seq := false, false
				for range looks {
					addUnits(&control, r, sc.unit, batch)
					addUnits(&treatment, r, sc.unit, batch)
					// Errors (both proportions still 0 at the first look) are no
					// rejection, as in a readout.
					if !naive {
						res, err := Compare(sc.kind, control, treatment, fixed)
						naive = err == nil && res.Significant
					}
					if !seq {
						res, err := Compare(sc.kind, control, treatment, sequential)
						seq = err == nil && res.Significant
					}
				}
				if naive {
					naiveHits++
				}
				if seq {
					seqHits++
				}
			}
			naiveRate, seqRate := float64(naiveHits)/sims, float64(seqHits)/sims
			t.Logf("A/A %s, %d simulations, %d looks: false-positive rate fixed-horizon with peeking %.3f, sequential %.3f (alpha %.2f)",
				sc.name, sims, looks, naiveRate, seqRate, alpha)
			if naiveRate < 3*alpha {
				t.Errorf("fixed-horizon with peeking: false-positive rate %.3f, want well above alpha (≥ %.2f)", naiveRate, 3*alpha)
			}
			if bound := mcBound(alpha, sims); seqRate > bound {
				t.Errorf("sequential: false-positive rate %.3f, want at most alpha within Monte-Carlo error (≤ %.3f)", seqRate, bound)
			}
		})
	}
}

// TestPowerAtPlannedSample runs experiments with a true effect equal to the
// MDE, each stopped at the sample SampleSize plans, and checks that the share
// of significant results is the target power.
func TestPowerAtPlannedSample(t *testing.T) {
	const (
		sims   = 2000
		target = 0.8
	)
	for i, opt := range []Options{{Alpha: 0.05}, DefaultOptions()} {
		name := "fixed"
		if opt.Sequential {
			name = "sequential"
		}
		t.Run(name, func(t *testing.T) {
			plan := Plan{Mean: 10, Variance: 9, MDE: 0.05, Power: target, Options: opt}
			n, err := SampleSize(plan)
			requireNoError(t, "SampleSize", err)
			units := int(math.Ceil(n))
			r := rand.New(rand.NewPCG(20261102, uint64(i)))
			control, treatment := normal(10, 3), normal(10.5, 3)
			hits := 0
			for range sims {
				var c, tr Arm
				addUnits(&c, r, control, units)
				addUnits(&tr, r, treatment, units)
				res, err := Compare(Mean, c, tr, opt)
				requireNoError(t, "Compare", err)
				if res.Significant {
					hits++
				}
			}
			rate := float64(hits) / sims
			t.Logf("%s: %d units per arm for +5%% on mean 10 (sd 3): power %.3f over %d simulations (target %.2f)", name, units, rate, sims, target)
			if math.Abs(rate-target) > 0.03 {
				t.Errorf("%s power at the planned sample = %.3f, want %.2f ± 0.03", name, rate, target)
			}
		})
	}
}
