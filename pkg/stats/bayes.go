package stats

import (
	"fmt"
	"math"
)

// Prior is a Gaussian prior on the effect, as GrowthBook's GaussianPrior:
// on the relative effect (m_t − m_c)/|m_c|, rescaled by the control mean
// for the absolute one. An improper prior (Proper false, the default) is
// flat: the posterior is then the data's normal likelihood.
type Prior struct {
	Mean     float64 `json:"mean"`
	Variance float64 `json:"variance"`
	Proper   bool    `json:"proper"`
}

// DefaultPrior is GrowthBook's default: improper (flat), with mean 0 and
// variance 1 used only once Proper is set.
func DefaultPrior() Prior { return Prior{Mean: 0, Variance: 1} }

// BayesOptions choose a Bayesian analysis, GrowthBook's
// EffectBayesianABTest.
type BayesOptions struct {
	// Alpha sets the credible interval's level, 1 − Alpha.
	Alpha float64
	Prior Prior
	// Inverse makes a decrease the win (a metric whose direction is
	// decrease): ChanceToWin is then P(effect < 0) and the risks swap.
	Inverse bool
}

// Posterior is the normal posterior of one effect.
type Posterior struct {
	Mean, SD float64
	CI       Interval // the central 1 − Alpha credible interval
	// ChanceToWin is P(effect > 0), or P(effect < 0) when Inverse.
	ChanceToWin float64
	// Risk is the expected loss of shipping each arm, in the effect's
	// units: Risk[0] of keeping control, E[max(effect, 0)]; Risk[1] of
	// shipping the treatment, E[max(−effect, 0)]. Swapped when Inverse.
	Risk [2]float64
}

// BayesResult is a Bayesian comparison: the posterior of the absolute and
// of the relative effect. Defined is false when no posterior could be
// formed (an arm without variance, a control mean of 0); the posteriors are
// then GrowthBook's uninformative answer (chance to win 0.5, everything
// else 0) and Why says why.
type BayesResult struct {
	Defined bool
	Why     string
	Abs     Posterior
	Rel     Posterior
}

func (o BayesOptions) validate() error {
	if !(o.Alpha > 0 && o.Alpha < 1) {
		return fmt.Errorf("%w: alpha = %g, want a number in (0, 1)", ErrInvalid, o.Alpha)
	}
	if !finite(o.Prior.Mean, o.Prior.Variance) || (o.Prior.Proper && !(o.Prior.Variance > 0)) {
		return fmt.Errorf("%w: prior {mean %g, variance %g}: a proper prior needs a finite mean and a positive variance", ErrInvalid, o.Prior.Mean, o.Prior.Variance)
	}
	return nil
}

// Bayes computes the posteriors of the effect of t over c, two arms'
// estimates (Summarize, SummarizeQuantile, or CUPED-adjusted ones), with
// the control's unadjusted mean mc0 scaling the prior and the relative
// effect as GrowthBook does. The data's moments are those of Compare: the
// absolute effect with variance v_t + v_c, the relative effect
// (m_t − m_c)/|mc0| with the delta-method variance.
func Bayes(c, t Estimate, mc0 float64, opt BayesOptions) (BayesResult, error) {
	if err := opt.validate(); err != nil {
		return BayesResult{}, err
	}
	if !finite(c.N, c.Mean, c.Var, t.N, t.Mean, t.Var, mc0) {
		return BayesResult{}, fmt.Errorf("%w: estimates must be finite numbers", ErrInvalid)
	}
	switch {
	case !(c.Var > 0) || !(t.Var > 0):
		return uninformative("an arm has no variance: nothing to update the prior with"), nil
	case c.Mean == 0 || mc0 == 0:
		return uninformative("the control mean is 0: the relative effect is undefined"), nil
	}
	absMean, absVar := t.Mean-c.Mean, t.Var+c.Var
	relMean := (t.Mean - c.Mean) / math.Abs(mc0)
	relVar := t.Var/(mc0*mc0) + t.Mean*t.Mean*c.Var/(mc0*mc0*mc0*mc0)
	absPrior := Prior{Mean: opt.Prior.Mean * math.Abs(mc0), Variance: opt.Prior.Variance * mc0 * mc0, Proper: opt.Prior.Proper}
	r := BayesResult{Defined: true}
	r.Abs = posterior(absMean, absVar, absPrior, opt)
	r.Rel = posterior(relMean, relVar, opt.Prior, opt)
	if !finite(r.Abs.Mean, r.Abs.SD, r.Rel.Mean, r.Rel.SD, r.Abs.CI.Lo, r.Abs.CI.Hi, r.Rel.CI.Lo, r.Rel.CI.Hi) {
		return BayesResult{}, fmt.Errorf("%w: the posterior overflows float64; rescale the values", ErrInvalid)
	}
	return r, nil
}

func uninformative(why string) BayesResult {
	p := Posterior{ChanceToWin: 0.5}
	return BayesResult{Why: why, Abs: p, Rel: p}
}

// posterior combines the data's normal likelihood (mean m, variance v > 0)
// with the prior: precisions add, means weigh by precision.
func posterior(m, v float64, prior Prior, opt BayesOptions) Posterior {
	prec := 1 / v
	mean := m
	if prior.Proper {
		prec += 1 / prior.Variance
		mean = (m/v + prior.Mean/prior.Variance) / prec
	}
	sd := math.Sqrt(1 / prec)
	z := normalUpper(opt.Alpha / 2)
	p := Posterior{Mean: mean, SD: sd, CI: Interval{mean - z*sd, mean + z*sd}}
	up := normalCDF(mean / sd) // P(effect > 0)
	p.ChanceToWin = up
	p.Risk = risk(mean, sd)
	if opt.Inverse {
		p.ChanceToWin = normalCDF(-mean / sd)
		p.Risk[0], p.Risk[1] = p.Risk[1], p.Risk[0]
	}
	return p
}

// risk returns E[max(X, 0)] and E[max(−X, 0)] for X ~ N(mu, sigma²), the
// expected loss of keeping control and of shipping the treatment:
// mu·Φ(mu/σ) + σφ(mu/σ) and −mu·Φ(−mu/σ) + σφ(mu/σ). GrowthBook computes
// the same from truncated-normal means; these closed forms need no
// special case in the far tails.
func risk(mu, sigma float64) [2]float64 {
	if sigma > 0 && math.Abs(mu/sigma) > 37 {
		// φ and the far Φ underflow to 0: the limits, as GrowthBook.
		return [2]float64{math.Max(mu, 0), math.Max(-mu, 0)}
	}
	z := mu / sigma
	phi := math.Exp(-z*z/2) / math.Sqrt(2*math.Pi)
	return [2]float64{mu*normalCDF(z) + sigma*phi, -mu*normalCDF(-z) + sigma*phi}
}
