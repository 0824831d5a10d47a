package stats

import (
	"fmt"
	"math"
)

// ChangeArm is one arm's sums for the test of a changing effect: per unit,
// a metric over an early and a late part of its time since exposure, each
// as a numerator x and a denominator y (y = 1 for a metric that is not a
// ratio), summed with every product of the four.
type ChangeArm struct {
	N float64
	// Sums are Σ of early x, early y, late x, late y; Products[i][j] is
	// Σ of the product of the ith and the jth.
	Sums     [4]float64
	Products [4][4]float64
}

// Add counts one unit.
func (a *ChangeArm) Add(earlyX, earlyY, lateX, lateY float64) {
	v := [4]float64{earlyX, earlyY, lateX, lateY}
	a.N++
	for i := range v {
		a.Sums[i] += v[i]
		for j := range v {
			a.Products[i][j] += v[i] * v[j]
		}
	}
}

// Part returns the Arm of the early (late false) or late part: what
// Compare takes.
func (a ChangeArm) Part(late bool) Arm {
	x, y := 0, 1
	if late {
		x, y = 2, 3
	}
	return Arm{N: a.N, Sum: a.Sums[x], SumSquares: a.Products[x][x], DenSum: a.Sums[y], DenSumSquares: a.Products[y][y], SumProducts: a.Products[x][y]}
}

// Change is the test of whether a treatment's relative effect changed
// between the early and the late part: the ratio of its late lift
// (treatment over control, late) to its early lift, on the log scale, by
// the delta method with each unit's early and late values correlated.
type Change struct {
	Early, Late Result // each part compared alone, by Compare
	// Ratio is late lift / early lift − 1: −0.2 when the late lift is a
	// fifth smaller (1.30 → 1.04). CI is its interval and PValue the test
	// of Ratio = 0; both are the confidence sequence's when opt is
	// Sequential, valid however often they are looked at.
	Ratio       float64
	CI          Interval
	PValue      float64
	Significant bool
	// LogEarly is the log of the early lift, whose sign says which way
	// the effect went at first.
	LogEarly float64
}

// CompareChange tests whether the treatment's effect on a metric of kind
// changed from the early to the late part. Both parts of both arms need
// positive means (a log of the lift is taken): a metric that may be
// negative, or that no unit of an arm had in a part, returns ErrInvalid.
func CompareChange(kind Kind, control, treatment ChangeArm, opt Options) (Change, error) {
	if err := opt.validate(); err != nil {
		return Change{}, err
	}
	var out Change
	var err error
	if out.Early, err = Compare(kind, control.Part(false), treatment.Part(false), opt); err != nil {
		return Change{}, fmt.Errorf("early part: %w", err)
	}
	if out.Late, err = Compare(kind, control.Part(true), treatment.Part(true), opt); err != nil {
		return Change{}, fmt.Errorf("late part: %w", err)
	}
	c, err := logLiftChange(control)
	if err != nil {
		return Change{}, fmt.Errorf("control arm: %w", err)
	}
	t, err := logLiftChange(treatment)
	if err != nil {
		return Change{}, fmt.Errorf("treatment arm: %w", err)
	}
	r, err := compare(c, t, opt)
	if err != nil {
		return Change{}, err
	}
	out.Ratio = math.Expm1(r.AbsEffect)
	out.CI = Interval{math.Expm1(r.AbsCI.Lo), math.Expm1(r.AbsCI.Hi)}
	out.PValue, out.Significant = r.PValue, r.Significant
	out.LogEarly = math.Log(out.Early.Treatment.Mean / out.Early.Control.Mean)
	if !finite(out.Ratio, out.CI.Lo, out.CI.Hi, out.LogEarly) {
		return Change{}, fmt.Errorf("%w: the change overflows float64", ErrInvalid)
	}
	return out, nil
}

// logLiftChange is one arm's log(late x̄/late ȳ) − log(early x̄/early ȳ)
// and its delta-method variance.
func logLiftChange(a ChangeArm) (Estimate, error) {
	if !(a.N >= 2) {
		return Estimate{}, fmt.Errorf("%w: n = %g, need at least 2 units", ErrInvalid, a.N)
	}
	var mean [4]float64
	for i := range mean {
		mean[i] = a.Sums[i] / a.N
		if !(mean[i] > 0) {
			return Estimate{}, fmt.Errorf("%w: a part's mean is %g; the change of a lift needs positive means", ErrInvalid, mean[i])
		}
	}
	// ∂/∂ of log(lx/ly) − log(ex/ey) at the means.
	grad := [4]float64{-1 / mean[0], 1 / mean[1], 1 / mean[2], -1 / mean[3]}
	var v float64
	for i := range grad {
		for j := range grad {
			cov := (a.Products[i][j] - a.Sums[i]*a.Sums[j]/a.N) / (a.N - 1)
			v += grad[i] * grad[j] * cov
		}
	}
	e := Estimate{N: a.N, Mean: math.Log(mean[2]/mean[3]) - math.Log(mean[0]/mean[1]), Var: math.Max(v, 0) / a.N}
	if !finite(e.Mean, e.Var) {
		return Estimate{}, fmt.Errorf("%w: the change overflows float64", ErrInvalid)
	}
	return e, nil
}
