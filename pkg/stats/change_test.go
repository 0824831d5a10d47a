package stats

import (
	"math"
	"math/rand/v2"
	"testing"

	"github.com/verdictlabs/verdict/pkg/testkit"
)

// truth is a simulated effect that may change with the time since
// exposure: the treatment multiplies the early part's rate by early and
// the late part's by late.
type truth struct {
	name        string
	early, late float64
	// want is what the test should find: "" no change, or the sign of
	// the change of the lift.
	want string
}

// visits adds n units to an arm: each unit has a propensity (log-normal,
// mean 1, spread 0.8) that scales both parts, so that a unit's early and
// late values are correlated, as people who come back early come back
// late too. The early part's rate is 2 visits, the late part's 1 (the
// control's activity itself falls with time), each Poisson; ratio also
// draws a denominator (sessions) per part, and the numerator is visits.
func visits(a *ChangeArm, r *rand.Rand, n int, early, late float64, ratio bool) {
	for range n {
		p := math.Exp(0.8*r.NormFloat64() - 0.32)
		ex, lx := poisson(r, 2*p*early), poisson(r, p*late)
		ey, ly := 1.0, 1.0
		if ratio {
			ey, ly = 1+poisson(r, 3*p), 1+poisson(r, 1.5*p)
			ex, lx = poisson(r, 0.5*ey*early), poisson(r, 0.5*ly*late)
		}
		a.Add(ex, ey, lx, ly)
	}
}

func poisson(r *rand.Rand, mean float64) float64 { return float64(testkit.Poisson(r, mean)) }

// TestChangeVariance: the delta-method variance of one arm's log lift
// change matches the spread of the estimate over many replications, for a
// mean metric and a ratio, within 10%.
func TestChangeVariance(t *testing.T) {
	for _, ratio := range []bool{false, true} {
		r := rand.New(rand.NewPCG(20261206, 1))
		const reps, n = 2000, 500
		var sum, sumSq, estimated float64
		for range reps {
			var a ChangeArm
			visits(&a, r, n, 1, 1, ratio)
			e, err := logLiftChange(a)
			if err != nil {
				t.Fatal(err)
			}
			sum += e.Mean
			sumSq += e.Mean * e.Mean
			estimated += e.Var
		}
		empirical := (sumSq - sum*sum/reps) / (reps - 1)
		estimated /= reps
		if math.Abs(estimated/empirical-1) > 0.1 {
			t.Errorf("ratio %v: delta-method variance %.4g, spread over %d replications %.4g", ratio, estimated, reps, empirical)
		}
	}
}

// TestChangeSimulatedTruths looks at each simulated experiment 30 times as
// its units' windows close (the confidence sequence's use), under three
// truths: a constant lift, whose change the test must find at most at
// alpha's rate, though the control's own activity falls by half from the
// early to the late part; a win that decays to nothing (novelty); and an
// effect that grows late (learning). The last two must be found, with the
// right direction, in most experiments.
func TestChangeSimulatedTruths(t *testing.T) {
	const (
		sims  = 300
		looks = 30
		batch = 200 // units per arm per look
		alpha = 0.05
	)
	truths := []truth{
		{"constant +20%", 1.2, 1.2, ""},
		{"decaying +30% → 0", 1.3, 1.0, "-"},
		{"growing +5% → +30%", 1.05, 1.3, "+"},
	}
	for _, ratio := range []bool{false, true} {
		kind := Mean
		if ratio {
			kind = Ratio
		}
		for i, tr := range truths {
			t.Run(string(kind)+"/"+tr.name, func(t *testing.T) {
				r := rand.New(rand.NewPCG(20261206, uint64(10+i)))
				opt := Options{Alpha: alpha, Sequential: true, Tuning: DefaultTuning}
				found, wrong := 0, 0
				for range sims {
					var c, tt ChangeArm
					hit := ""
					for range looks {
						visits(&c, r, batch, 1, 1, ratio)
						visits(&tt, r, batch, tr.early, tr.late, ratio)
						ch, err := CompareChange(kind, c, tt, opt)
						if err != nil {
							t.Fatal(err)
						}
						if ch.Significant && hit == "" {
							hit = "+"
							if ch.Ratio < 0 {
								hit = "-"
							}
						}
					}
					switch {
					case hit == "":
					case hit == tr.want:
						found++
					default:
						wrong++
					}
				}
				rate := float64(found+wrong) / sims
				t.Logf("%s: a change found in %.1f%% of %d experiments (%d in the wrong direction)", tr.name, 100*rate, sims, wrong)
				if tr.want == "" {
					// alpha plus three Monte Carlo standard errors.
					if limit := alpha + 3*math.Sqrt(alpha*(1-alpha)/sims); rate > limit {
						t.Errorf("a constant lift was found to change in %.1f%% of experiments, above %.1f%%", 100*rate, 100*limit)
					}
					return
				}
				if found < sims*8/10 || wrong > 0 {
					t.Errorf("found %d of %d (want at least 80%%), %d in the wrong direction", found, sims, wrong)
				}
			})
		}
	}
}

// TestCompareChange: the parts are Compare's, Ratio is the late lift over
// the early lift less one, worked by hand on a small example, and a part
// with a mean of 0 is refused.
func TestCompareChange(t *testing.T) {
	var c, tr ChangeArm
	for i := range 400 {
		// Control: early 2 or 4, late 1 or 2 (apart from early);
		// treatment: early 3 or 6, late the same: lift 1.5 early, 1 late.
		k, l := float64(1+i%2), float64(1+i/2%2)
		c.Add(2*k, 1, l, 1)
		tr.Add(3*k, 1, l, 1)
	}
	ch, err := CompareChange(Mean, c, tr, DefaultOptions())
	if err != nil {
		t.Fatal(err)
	}
	if math.Abs(ch.Ratio-(1/1.5-1)) > 1e-12 || math.Abs(ch.LogEarly-math.Log(1.5)) > 1e-12 {
		t.Errorf("Ratio %v, LogEarly %v; want %v, %v", ch.Ratio, ch.LogEarly, 1/1.5-1, math.Log(1.5))
	}
	early, err := Compare(Mean, c.Part(false), tr.Part(false), DefaultOptions())
	if err != nil || early != ch.Early {
		t.Errorf("Early = %+v, want Compare's %+v (%v)", ch.Early, early, err)
	}
	var zero ChangeArm
	for range 10 {
		zero.Add(1, 1, 0, 1)
	}
	if _, err := CompareChange(Mean, zero, zero, DefaultOptions()); err == nil {
		t.Error("a late part with mean 0 was not refused")
	}
}
