package stats

import (
	"errors"
	"fmt"
	"math"
)

// Errors that decide what a caller does. Each returned error wraps one of them
// and says what was wrong.
var (
	// ErrInvalid marks input that is not valid sufficient statistics or options:
	// NaN or infinite values, fewer than 2 units, a proportion above 1, sums
	// that no data could produce, alpha outside (0, 1), an unknown kind.
	ErrInvalid = errors.New("invalid input")
	// ErrNoVariance marks a comparison of arms that both have zero variance:
	// the standard error is 0 and there is nothing to test.
	ErrNoVariance = errors.New("no variance")
)

// Kind is how a metric's per-unit values are summarised.
type Kind string

// The metric kinds of DESIGN.md.
const (
	// Mean is the mean of a per-unit value (e.g. revenue per user).
	Mean Kind = "mean"
	// Count is the mean of a per-unit count; its statistics are those of Mean.
	Count Kind = "count"
	// Proportion is the share of units with a 0/1 value of 1 (conversion).
	Proportion Kind = "proportion"
	// Ratio is Σ numerator / Σ denominator over units, by the delta method.
	Ratio Kind = "ratio"
	// Quantile is a quantile of events' or units' values: its arms are
	// QuantileArms, not Arms (CompareQuantile).
	Quantile Kind = "quantile"
)

// Valid reports whether k is one of the kinds whose arms are Arms (every
// kind but Quantile).
func (k Kind) Valid() bool {
	switch k {
	case Mean, Count, Proportion, Ratio:
		return true
	}
	return false
}

// Arm holds the sufficient statistics of one arm for one metric: what
// ClickHouse computes in one pass over the per-unit values x (and, for a
// ratio metric, the per-unit denominators y).
type Arm struct {
	N          float64 // number of units
	Sum        float64 // Σx
	SumSquares float64 // Σx²; unused for Proportion, where x is 0 or 1

	// Ratio metrics only.
	DenSum        float64 // Σy
	DenSumSquares float64 // Σy²
	SumProducts   float64 // Σxy
}

// Add counts one unit with value x (and, for a ratio, denominator y).
func (a *Arm) Add(x, y float64) {
	a.N++
	a.Sum += x
	a.SumSquares += x * x
	a.DenSum += y
	a.DenSumSquares += y * y
	a.SumProducts += x * y
}

// Options choose the analysis.
type Options struct {
	// Alpha is the two-sided significance level, in (0, 1).
	Alpha float64
	// Sequential selects the always-valid confidence sequence; false selects
	// the fixed-horizon Welch test, valid only at one pre-planned look.
	Sequential bool
	// Tuning is the confidence sequence's tuning size N* in units (both arms
	// together): the sample size around which the sequence is tightest. Only
	// used when Sequential.
	Tuning float64
}

// Defaults of DESIGN.md.
const (
	DefaultAlpha  = 0.05
	DefaultTuning = 5000
)

// DefaultOptions returns the options DESIGN.md fixes as defaults: alpha 0.05,
// sequential, tuning 5000 units.
func DefaultOptions() Options {
	return Options{Alpha: DefaultAlpha, Sequential: true, Tuning: DefaultTuning}
}

func (o Options) validate() error {
	if !(o.Alpha > 0 && o.Alpha < 1) {
		return fmt.Errorf("%w: alpha = %g, want a number in (0, 1)", ErrInvalid, o.Alpha)
	}
	if o.Sequential && !(o.Tuning > 0 && !math.IsInf(o.Tuning, 1)) {
		return fmt.Errorf("%w: tuning = %g, want a positive number of units", ErrInvalid, o.Tuning)
	}
	return nil
}

// Estimate is one arm's estimate of the metric.
type Estimate struct {
	N    float64 // units
	Mean float64 // the mean; for a ratio metric Σx/Σy
	Var  float64 // the variance of Mean (not of a unit's value)
}

// UnitVariance returns the variance of one unit's value implied by the
// estimate, N·Var: the input that sample-size planning needs.
func (e Estimate) UnitVariance() float64 { return e.N * e.Var }

// Interval is a confidence interval (or, for sequential analysis, the current
// interval of a confidence sequence).
type Interval struct{ Lo, Hi float64 }

// Excludes reports whether x lies outside the closed interval.
func (i Interval) Excludes(x float64) bool { return x < i.Lo || x > i.Hi }

// Result is the comparison of a treatment arm with the control arm.
type Result struct {
	Control, Treatment Estimate

	AbsEffect float64  // Treatment.Mean − Control.Mean
	AbsCI     Interval // interval for AbsEffect
	SE        float64  // standard error of AbsEffect

	// RelDefined is false when the relative effect is undefined: the control
	// mean is 0 (or so close to it that the numbers overflow). RelEffect,
	// RelCI and RelSE are then 0 and must not be shown.
	RelDefined bool
	RelEffect  float64  // (Treatment.Mean − Control.Mean)/|Control.Mean|
	RelCI      Interval // interval for RelEffect, for display only
	RelSE      float64  // delta-method standard error of RelEffect

	// DF is the Welch–Satterthwaite degrees of freedom of a fixed-horizon
	// test; 0 for sequential analysis.
	DF float64
	// PValue is the two-sided p-value of the absolute effect (for sequential
	// analysis, the always-valid p-value).
	PValue float64
	// Significant reports whether AbsCI excludes 0: the decision rules use
	// this, never the relative interval.
	Significant bool
}

// Compare compares the treatment arm with the control arm for a metric of the
// given kind, by DESIGN.md's formulas.
func Compare(kind Kind, control, treatment Arm, opt Options) (Result, error) {
	if err := opt.validate(); err != nil {
		return Result{}, err
	}
	c, err := Summarize(kind, control)
	if err != nil {
		return Result{}, fmt.Errorf("control arm: %w", err)
	}
	t, err := Summarize(kind, treatment)
	if err != nil {
		return Result{}, fmt.Errorf("treatment arm: %w", err)
	}
	return compare(c, t, opt)
}

func compare(c, t Estimate, opt Options) (Result, error) {
	r := Result{Control: c, Treatment: t, AbsEffect: t.Mean - c.Mean}
	v := t.Var + c.Var
	if v == 0 {
		return Result{}, fmt.Errorf("%w: both arms are constant (standard error 0), so no test is possible", ErrNoVariance)
	}
	r.SE = math.Sqrt(v)

	if c.Mean != 0 {
		// Divided by |m_c|, as GrowthBook does, so that the relative
		// effect has the absolute effect's sign when the control mean is
		// negative (net revenue −10 → −5 is +50%, not −50%).
		r.RelEffect = (t.Mean - c.Mean) / math.Abs(c.Mean)
		mc2 := c.Mean * c.Mean
		r.RelSE = math.Sqrt(t.Var/mc2 + t.Mean*t.Mean*c.Var/(mc2*mc2))
		r.RelDefined = finite(r.RelEffect, r.RelSE)
	}

	// half is the half-width of an interval per unit of standard error.
	var half float64
	if opt.Sequential {
		// The asymptotic confidence sequence, written as in DESIGN.md.
		n := c.N + t.N
		l := -2 * math.Log(opt.Alpha)
		rho2 := (l + math.Log(l+1)) / opt.Tuning
		tt := n*rho2 + 1
		half = math.Sqrt(n) * math.Sqrt(2*tt*math.Log(math.Sqrt(tt)/opt.Alpha)/(n*n*rho2))
		z := r.AbsEffect / r.SE
		r.PValue = math.Min(1, math.Sqrt(tt)*math.Exp(-rho2*n*z*z/(2*tt)))
	} else {
		// Welch–Satterthwaite, rearranged as 1/Σ((v_i/v)²/(n_i−1)) so that
		// squaring a large variance cannot overflow.
		wt, wc := t.Var/v, c.Var/v
		r.DF = 1 / (wt*wt/(t.N-1) + wc*wc/(c.N-1))
		half = studentQuantile2(opt.Alpha, r.DF)
		r.PValue = studentTail2(math.Abs(r.AbsEffect)/r.SE, r.DF)
	}
	r.AbsCI = Interval{r.AbsEffect - half*r.SE, r.AbsEffect + half*r.SE}
	if r.RelDefined {
		r.RelCI = Interval{r.RelEffect - half*r.RelSE, r.RelEffect + half*r.RelSE}
		if !finite(r.RelCI.Lo, r.RelCI.Hi) {
			r.RelDefined = false
		}
	}
	if !r.RelDefined {
		r.RelEffect, r.RelSE, r.RelCI = 0, 0, Interval{}
	}
	if !finite(r.AbsEffect, r.SE, r.AbsCI.Lo, r.AbsCI.Hi, r.PValue) {
		return Result{}, fmt.Errorf("%w: the effect or its interval overflows float64; rescale the values", ErrInvalid)
	}
	r.Significant = r.AbsCI.Excludes(0)
	return r, nil
}

// Summarize returns an arm's estimate and the variance of that estimate:
// for Mean and Count the sample variance (n−1) over n; for Proportion
// p(1−p)/n; for Ratio the delta method on the numerator and denominator
// (sample variances and covariance with n−1), over n.
func Summarize(kind Kind, a Arm) (Estimate, error) {
	if !kind.Valid() {
		return Estimate{}, fmt.Errorf("%w: kind %q, want mean, count, proportion or ratio", ErrInvalid, kind)
	}
	if !finite(a.N, a.Sum, a.SumSquares, a.DenSum, a.DenSumSquares, a.SumProducts) {
		return Estimate{}, fmt.Errorf("%w: sufficient statistics must be finite numbers, got %+v", ErrInvalid, a)
	}
	if !(a.N >= 2) {
		return Estimate{}, fmt.Errorf("%w: n = %g, need at least 2 units", ErrInvalid, a.N)
	}
	e := Estimate{N: a.N, Mean: a.Sum / a.N}
	switch kind {
	case Mean, Count:
		s2, err := sampleVariance(a.N, a.Sum, a.SumSquares, "sum", "sum_squares")
		if err != nil {
			return Estimate{}, err
		}
		e.Var = s2 / a.N
	case Proportion:
		if a.Sum < 0 || a.Sum > a.N {
			return Estimate{}, fmt.Errorf("%w: proportion sum = %g with n = %g, want 0 ≤ sum ≤ n", ErrInvalid, a.Sum, a.N)
		}
		e.Var = e.Mean * (1 - e.Mean) / a.N
	case Ratio:
		if a.DenSum == 0 {
			return Estimate{}, fmt.Errorf("%w: ratio den_sum = 0, the ratio is undefined", ErrInvalid)
		}
		sx, err := sampleVariance(a.N, a.Sum, a.SumSquares, "sum", "sum_squares")
		if err != nil {
			return Estimate{}, err
		}
		sy, err := sampleVariance(a.N, a.DenSum, a.DenSumSquares, "den_sum", "den_sum_squares")
		if err != nil {
			return Estimate{}, err
		}
		cov := (a.SumProducts - a.Sum*a.DenSum/a.N) / (a.N - 1)
		mx, my := a.Sum/a.N, a.DenSum/a.N
		e.Mean = mx / my
		// gbstats' RatioStatistic: Var(x̄/ȳ) ≈ (s²x/ȳ² − 2·cov·x̄/ȳ³ + s²y·x̄²/ȳ⁴)/n.
		my2 := my * my
		v := sx/my2 - 2*cov*mx/(my2*my) + sy*mx*mx/(my2*my2)
		if v < 0 {
			if v < -1e-9*(sx/my2+sy*mx*mx/(my2*my2)) {
				return Estimate{}, fmt.Errorf("%w: ratio sums give a negative variance (|cov| exceeds what the variances allow); check sum_products", ErrInvalid)
			}
			v = 0 // rounding
		}
		e.Var = v / a.N
	}
	if !finite(e.Mean, e.Var) {
		return Estimate{}, fmt.Errorf("%w: the estimate overflows float64; rescale the values", ErrInvalid)
	}
	return e, nil
}

// sampleVariance returns the sample variance (with n−1) from n, Σx and Σx².
func sampleVariance(n, sum, sumSquares float64, sumName, squaresName string) (float64, error) {
	ss := sumSquares - sum*sum/n
	if ss < 0 {
		// Σx² − (Σx)²/n is never negative for real data, but the subtraction
		// rounds: tolerate what rounding can do, refuse the rest.
		if ss < -1e-9*sumSquares {
			return 0, fmt.Errorf("%w: %s = %g is less than %s²/n = %g, no data has these sums", ErrInvalid, squaresName, sumSquares, sumName, sum*sum/n)
		}
		ss = 0
	}
	return ss / (n - 1), nil
}

// finite reports whether every x is neither NaN nor infinite.
func finite(xs ...float64) bool {
	for _, x := range xs {
		if math.IsNaN(x) || math.IsInf(x, 0) {
			return false
		}
	}
	return true
}
