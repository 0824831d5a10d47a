package stats

import (
	"math"
	"testing"
)

// The expected values in this file are GrowthBook's published test vectors
// for its EffectBayesianABTest, recorded from
// github.com/growthbook/growthbook packages/stats/tests/bayesian/test_tests.py
// at commit 8f1db4456915a8e7b7faf23d5632ca7219d2f469 (numbers only, none of
// its code). Where GrowthBook publishes them rounded to 5 decimals the check
// allows that rounding; its quantile vectors are published in full and are
// matched to 1e-9 relative.

func requireNear(t *testing.T, what string, got, want, tol float64) {
	t.Helper()
	if math.Abs(got-want) > tol || math.IsNaN(got) {
		t.Errorf("%s = %.12g, want %.12g (±%g)", what, got, want, tol)
	}
}

func bayesOf(t *testing.T, kind Kind, c, tr Arm, opt BayesOptions) BayesResult {
	t.Helper()
	ce, err := Summarize(kind, c)
	requireNoError(t, "Summarize control", err)
	te, err := Summarize(kind, tr)
	requireNoError(t, "Summarize treatment", err)
	r, err := Bayes(ce, te, ce.Mean, opt)
	requireNoError(t, "Bayes", err)
	return r
}

func TestBayesGrowthBookVectors(t *testing.T) {
	const round = 0.5e-5 // published to 5 decimals
	improper := BayesOptions{Alpha: 0.05, Prior: DefaultPrior()}
	for _, tc := range []struct {
		name      string
		kind      Kind
		c, tr     Arm
		opt       BayesOptions
		mean, sd  float64
		ci        [2]float64
		ctw       float64
		riskC, rT float64
	}{
		// TestBinom.test_bayesian_binomial_ab_test
		{"binomial", Proportion, Arm{N: 100, Sum: 49}, Arm{N: 100, Sum: 51}, improper,
			0.04082, 0.14725, [2]float64{-0.24779, 0.32943}, 0.60918, 0.0814, 0.04058},
		// TestNorm.test_bayesian_gaussian_ab_test
		{"gaussian", Mean, Arm{N: 10, Sum: 100, SumSquares: 1002.25}, Arm{N: 10, Sum: 105, SumSquares: 1111.5}, improper,
			0.05, 0.03572, [2]float64{-0.02, 0.12}, 0.91923, 0.05131, 0.00131},
		// TestNorm.test_bayesian_gaussian_ab_test_informative
		{"gaussian informative", Mean, Arm{N: 10, Sum: 100, SumSquares: 1002.25}, Arm{N: 10, Sum: 105, SumSquares: 1111.5},
			BayesOptions{Alpha: 0.05, Prior: Prior{Mean: 0.1, Variance: 0.1, Proper: true}},
			0.05063, 0.03549, [2]float64{-0.01893, 0.12019}, 0.92315, 0.05186, 0.00123},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := bayesOf(t, tc.kind, tc.c, tc.tr, tc.opt)
			p := r.Rel // GrowthBook's default difference type is relative
			requireNear(t, "expected", p.Mean, tc.mean, round)
			requireNear(t, "stddev", p.SD, tc.sd, round)
			requireNear(t, "ci lo", p.CI.Lo, tc.ci[0], round)
			requireNear(t, "ci hi", p.CI.Hi, tc.ci[1], round)
			requireNear(t, "chanceToWin", p.ChanceToWin, tc.ctw, round)
			requireNear(t, "risk control", p.Risk[0], tc.riskC, round)
			requireNear(t, "risk treatment", p.Risk[1], tc.rT, round)
		})
	}
}

// TestBayesQuantileVectors: TestEffectBayesianABTest.test_bayesian_effect_ab_test,
// a p90 in two arms under five priors, absolute and relative.
func TestBayesQuantileVectors(t *testing.T) {
	c := QuantileArm{N: 11054, NStar: 11054, Nu: 0.9, Hat: 7.157987489967789, Lower: 7.098780136176828, Upper: 7.217194843758751}
	tr := QuantileArm{N: 10861, NStar: 10861, Nu: 0.9, Hat: 7.694499927525767, Lower: 7.64180598628119, Upper: 7.747193868770344}
	ce, err := SummarizeQuantile(c)
	requireNoError(t, "control", err)
	te, err := SummarizeQuantile(tr)
	requireNoError(t, "treatment", err)
	improper := Prior{Proper: false, Variance: 1}
	flat := Prior{Variance: 1e6, Proper: true}
	inf := Prior{Variance: 1, Proper: true}
	for _, tc := range []struct {
		name     string
		prior    Prior
		relative bool
		mean     float64
		ci       [2]float64
	}{
		{"improper flat", improper, false, 0.5365124375579775, [2]float64{0.4572559589115422, 0.6157689162044128}},
		{"flat", flat, false, 0.536512437540855, [2]float64{0.4572559588956844, 0.6157689161860256}},
		{"relative flat", flat, true, 0.07495297222736319, [2]float64{0.06341005842481906, 0.08649588602990732}},
		{"informative", inf, false, 0.536495315442269, [2]float64{0.4572401014910488, 0.6157505293934892}},
		{"relative informative", inf, true, 0.07495037261804469, [2]float64{0.06340765898986044, 0.08649308624622894}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r, err := Bayes(ce, te, ce.Mean, BayesOptions{Alpha: 0.05, Prior: tc.prior})
			requireNoError(t, "Bayes", err)
			p := r.Abs
			if tc.relative {
				p = r.Rel
			}
			requireClose(t, "expected", p.Mean, tc.mean, 1e-9)
			requireClose(t, "ci lo", p.CI.Lo, tc.ci[0], 1e-9)
			requireClose(t, "ci hi", p.CI.Hi, tc.ci[1], 1e-9)
		})
	}
}

// TestRisk: GrowthBook's TestGetRiskNumericalStability (published to 10
// decimals), and its far-tail limits.
func TestRisk(t *testing.T) {
	r := risk(0.1, 0.05)
	requireNear(t, "risk control", r[0], 0.1004245351308, 0.5e-10)
	requireNear(t, "risk treatment", r[1], 0.0004245351308414, 0.5e-10)
	if got := risk(0.01, 4.5e-9); got != [2]float64{0.01, 0} {
		t.Errorf("risk(0.01, 4.5e-9) = %v, want [0.01 0]", got)
	}
	if got := risk(-0.01, 4.5e-9); got != [2]float64{0, 0.01} {
		t.Errorf("risk(-0.01, 4.5e-9) = %v, want [0 0.01]", got)
	}
}

// TestBayesInverse: for a metric where lower is better the chance to win
// is P(effect < 0) and the two risks swap (GrowthBook's inverse).
func TestBayesInverse(t *testing.T) {
	c, tr := Arm{N: 100, Sum: 49}, Arm{N: 100, Sum: 51}
	up := bayesOf(t, Proportion, c, tr, BayesOptions{Alpha: 0.05, Prior: DefaultPrior()})
	down := bayesOf(t, Proportion, c, tr, BayesOptions{Alpha: 0.05, Prior: DefaultPrior(), Inverse: true})
	requireClose(t, "chance to win", down.Rel.ChanceToWin, 1-up.Rel.ChanceToWin, 1e-12)
	if down.Rel.Risk != [2]float64{up.Rel.Risk[1], up.Rel.Risk[0]} {
		t.Errorf("inverse risks %v, want %v swapped", down.Rel.Risk, up.Rel.Risk)
	}
	if down.Rel.CI != up.Rel.CI {
		t.Errorf("inverse changed the interval: %v vs %v", down.Rel.CI, up.Rel.CI)
	}
}

// TestBayesUninformative: an arm without variance gives GrowthBook's
// uninformative answer (its test_missing_data), not an error.
func TestBayesUninformative(t *testing.T) {
	r, err := Bayes(Estimate{N: 10, Mean: 1}, Estimate{N: 10, Mean: 2, Var: 0.1}, 1, BayesOptions{Alpha: 0.05, Prior: DefaultPrior()})
	requireNoError(t, "Bayes", err)
	if r.Defined || r.Rel.ChanceToWin != 0.5 || r.Rel.Mean != 0 || r.Why == "" {
		t.Errorf("Bayes with a constant arm = %+v, want undefined, chance 0.5, mean 0, a reason", r)
	}
	if _, err := Bayes(Estimate{N: 10, Mean: 1, Var: 1}, Estimate{N: 10, Mean: 2, Var: 1}, 1,
		BayesOptions{Alpha: 0.05, Prior: Prior{Variance: 0, Proper: true}}); err == nil {
		t.Error("a proper prior with variance 0 was accepted")
	}
}
