package rules

import (
	"errors"
	"math"

	"github.com/verdictlabs/verdict/pkg/config"
	"github.com/verdictlabs/verdict/pkg/stats"
)

// Posterior turns a fixed-horizon comparison into the Bayesian engine's
// (GrowthBook's EffectBayesianABTest with the experiment's prior on the
// relative effect): the Result's effects and intervals become the
// posteriors' means and central credible intervals at 1 − alpha, its
// p-value twice the smaller posterior tail of the absolute effect at 0, and
// the relative posterior's chance to win and risks come back beside it.
// mc0 is the control's unadjusted mean (CUPED adjusts the others).
//
// The decision rules then read the credible interval as they read a
// confidence interval, which makes them Bayesian rules: a primary wins
// when its chance to win is at least 1 − alpha/2 (97.5% at alpha 0.05); a
// guardrail is harmed when the posterior probability that it is worse than
// its margin is at least 1 − alpha/2, and non-inferior when that
// probability is below alpha/2.
func Posterior(r stats.Result, mc0 float64, exp config.Experiment, m config.Metric) (stats.Result, *stats.Posterior, error) {
	opt := stats.BayesOptions{Alpha: exp.Alpha, Prior: stats.DefaultPrior(), Inverse: m.Direction == config.Decrease}
	if p := exp.Prior; p != nil {
		opt.Prior = stats.Prior{Mean: p.Mean, Variance: p.Variance, Proper: p.Proper}
	}
	b, err := stats.Bayes(r.Control, r.Treatment, mc0, opt)
	if err != nil {
		return stats.Result{}, nil, err
	}
	if !b.Defined {
		return stats.Result{}, nil, errors.New("no posterior: " + b.Why)
	}
	out := r
	out.AbsEffect, out.AbsCI, out.SE = b.Abs.Mean, b.Abs.CI, b.Abs.SD
	if out.RelDefined {
		out.RelEffect, out.RelCI, out.RelSE = b.Rel.Mean, b.Rel.CI, b.Rel.SD
	}
	out.DF = 0
	out.PValue = math.Erfc(math.Abs(b.Abs.Mean) / b.Abs.SD / math.Sqrt2) // 2·Φ(−|μ|/σ)
	out.Significant = out.AbsCI.Excludes(0)
	return out, &b.Rel, nil
}
