package stats

import (
	"math"
	"math/rand/v2"
	"testing"
)

// correlated adds n units to an arm: a covariate x0 ~ N(mu0, sd) and an
// outcome x = mean + ρ·(x0 − mu0) + sqrt(1−ρ²)·N(0, sd), so corr(x, x0) = ρ.
func correlated(a *Arm, p *Pre, r *rand.Rand, n int, mean, sd, rho float64) {
	const mu0 = 20
	for range n {
		x0 := mu0 + sd*r.NormFloat64()
		x := mean + rho*(x0-mu0) + math.Sqrt(1-rho*rho)*sd*r.NormFloat64()
		a.N++
		a.Sum += x
		a.SumSquares += x * x
		p.Sum += x0
		p.SumSquares += x0 * x0
		p.CrossSum += x * x0
	}
}

// TestCUPEDAA: with a covariate correlated 0.7 with the outcome and no true
// effect, CUPED's false-positive rate stays at or below alpha, for the
// fixed-horizon test at its one look and for the confidence sequence at
// every one of 30 looks.
func TestCUPEDAA(t *testing.T) {
	const (
		sims  = 1000
		looks = 30
		batch = 40
		alpha = 0.05
		rho   = 0.7
	)
	for i, opt := range []Options{{Alpha: alpha}, DefaultOptions()} {
		name := map[bool]string{false: "fixed", true: "sequential"}[opt.Sequential]
		t.Run(name, func(t *testing.T) {
			r := rand.New(rand.NewPCG(20261202, uint64(i)))
			rejected := 0
			for range sims {
				var c, tr Arm
				var cp, tp Pre
				hit := false
				for look := range looks {
					correlated(&c, &cp, r, batch, 10, 3, rho)
					correlated(&tr, &tp, r, batch, 10, 3, rho)
					if !opt.Sequential && look < looks-1 {
						continue // the fixed-horizon test looks once
					}
					res, cu, err := CompareCUPED(Mean, c, tr, cp, tp, opt)
					requireNoError(t, "CompareCUPED", err)
					if !cu.Applied {
						t.Fatal("CUPED not applied")
					}
					hit = hit || res.Significant
				}
				if hit {
					rejected++
				}
			}
			rate := float64(rejected) / sims
			t.Logf("%s: %d of %d A/A tests significant with CUPED (ρ %.1f): %.3f", name, rejected, sims, rho, rate)
			if rate > mcBound(alpha, sims) {
				t.Errorf("%s: false-positive rate %.3f with CUPED, want ≤ %.2f (+ Monte-Carlo error)", name, rate, alpha)
			}
		})
	}
}

// TestCUPEDPower: at the sample planned for the unadjusted variance, a
// covariate correlated ρ with the outcome multiplies the variance by 1 − ρ²
// (Deng et al. 2013), so the power is the normal power at that variance; the
// simulated power matches it, and the variance reduction CUPED reports is
// ρ². The planned sample at the reduced variance is (1 − ρ²) times the
// unadjusted one.
func TestCUPEDPower(t *testing.T) {
	const (
		sims = 2000
		rho  = 0.6
	)
	opt := Options{Alpha: 0.05}
	plan := Plan{Mean: 10, Variance: 9, MDE: 0.05, Power: 0.8, Options: opt}
	n, err := SampleSize(plan)
	requireNoError(t, "SampleSize", err)
	units := int(math.Ceil(n))
	// Theory: d / sqrt(2σ²(1−ρ²)/n) standard errors from 0.
	d, sd := 0.5, 3.0
	z := d / math.Sqrt(2*sd*sd*(1-rho*rho)/float64(units))
	crit := normalUpper(opt.Alpha / 2)
	theory := normalCDF(z-crit) + normalCDF(-z-crit)
	r := rand.New(rand.NewPCG(20261203, 7))
	hits, raw := 0, 0
	var reduction float64
	for range sims {
		var c, tr Arm
		var cp, tp Pre
		correlated(&c, &cp, r, units, 10, sd, rho)
		correlated(&tr, &tp, r, units, 10+d, sd, rho)
		res, cu, err := CompareCUPED(Mean, c, tr, cp, tp, opt)
		requireNoError(t, "CompareCUPED", err)
		if res.Significant {
			hits++
		}
		if plain, err := Compare(Mean, c, tr, opt); err == nil && plain.Significant {
			raw++
		}
		reduction += cu.VarianceReduction / sims
	}
	rate, rawRate := float64(hits)/sims, float64(raw)/sims
	t.Logf("%d units per arm: power %.3f with CUPED (theory %.3f), %.3f without (planned 0.80); variance reduction %.3f (ρ² = %.2f)",
		units, rate, theory, rawRate, reduction, rho*rho)
	if math.Abs(rate-theory) > 3*math.Sqrt(theory*(1-theory)/sims)+0.01 {
		t.Errorf("power with CUPED %.3f, want %.3f as theory says for ρ = %.1f", rate, theory, rho)
	}
	if math.Abs(rawRate-0.8) > 0.03 {
		t.Errorf("power without CUPED %.3f, want the planned 0.80", rawRate)
	}
	if math.Abs(reduction-rho*rho) > 0.01 {
		t.Errorf("mean variance reduction %.4f, want ρ² = %.2f", reduction, rho*rho)
	}
	reduced := plan
	reduced.Variance = plan.Variance * (1 - rho*rho)
	m, err := SampleSize(reduced)
	requireNoError(t, "SampleSize", err)
	if math.Abs(m/n-(1-rho*rho)) > 0.01 {
		t.Errorf("planned sample at the reduced variance is %.3f of the unadjusted, want 1 − ρ² = %.2f", m/n, 1-rho*rho)
	}
}
