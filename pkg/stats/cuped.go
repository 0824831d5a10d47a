package stats

import (
	"fmt"
	"math"
)

// Pre holds an arm's CUPED covariate: per unit, the same metric computed
// over the unit's events in a lookback before its first exposure (x0; for
// a ratio metric its numerator x0 and denominator y0), and its products
// with the outcome (x, and for a ratio y, of Arm).
type Pre struct {
	Sum           float64 // Σx0
	SumSquares    float64 // Σx0²
	DenSum        float64 // Σy0, ratio metrics only
	DenSumSquares float64 // Σy0²
	SumProducts   float64 // Σx0·y0

	CrossSum    float64 // Σx·x0
	CrossDen    float64 // Σx·y0, ratio only
	DenCrossSum float64 // Σy·x0, ratio only
	DenCrossDen float64 // Σy·y0, ratio only
}

// CUPED says what the covariate did to one comparison.
type CUPED struct {
	// Applied is false when the covariate does not vary (no unit has
	// pre-exposure events): the comparison is then the unadjusted one.
	Applied bool
	// Theta is the regression coefficient of the outcome on the covariate,
	// pooled within the two arms.
	Theta float64
	// VarianceReduction is 1 − Var(adjusted effect)/Var(unadjusted
	// effect), both from the same per-arm sample variances.
	VarianceReduction float64
	// Control and Treatment are the arms' unadjusted estimates, as
	// observed (the Result holds the adjusted ones).
	Control, Treatment Estimate
}

// CompareCUPED is Compare with variance reduction by a pre-exposure
// covariate (Deng, Xu, Kohavi and Walker 2013). Each unit's outcome is
// linearised — for mean, count and proportion it is the unit's value x; for
// a ratio the delta method's (x − R·y)/ȳ with the arm's ratio R — and so is
// its covariate (x0, or (x0 − P·y0)/ȳ0 with the arm's pre-period ratio P).
// θ is the slope of outcome on covariate pooled within the arms, Σ over both
// arms of the centred cross-products over Σ of the centred squares: the
// coefficient of the covariate in the OLS of the outcome on a treatment
// indicator and the centred covariate. Each arm's estimate becomes
// M − θ·(P − P̄) (M and P the arm's outcome and covariate estimates, P̄ the
// covariate's pooled estimate), with variance
// (s²_u − 2θ·s_uv + θ²·s²_v)/n from sample (n−1) moments, and feeds the same
// fixed-horizon or sequential test as Compare. The absolute effect is
// therefore ΔM − θ·ΔP, the OLS coefficient of the treatment indicator.
//
// When the covariate does not vary in either arm there is nothing to adjust
// with, and the result is Compare's, with CUPED.Applied false.
func CompareCUPED(kind Kind, control, treatment Arm, cp, tp Pre, opt Options) (Result, CUPED, error) {
	raw, err := Compare(kind, control, treatment, opt)
	if err != nil {
		return Result{}, CUPED{}, err
	}
	if !finite(cp.Sum, cp.SumSquares, cp.DenSum, cp.DenSumSquares, cp.SumProducts, cp.CrossSum, cp.CrossDen, cp.DenCrossSum, cp.DenCrossDen,
		tp.Sum, tp.SumSquares, tp.DenSum, tp.DenSumSquares, tp.SumProducts, tp.CrossSum, tp.CrossDen, tp.DenCrossSum, tp.DenCrossDen) {
		return Result{}, CUPED{}, fmt.Errorf("%w: CUPED sums must be finite numbers", ErrInvalid)
	}
	c, ok := linearise(kind, control, cp)
	if !ok {
		return raw, CUPED{}, nil
	}
	t, ok := linearise(kind, treatment, tp)
	if !ok {
		return raw, CUPED{}, nil
	}
	svv := (c.n-1)*c.vv + (t.n-1)*t.vv
	// A covariate that is (numerically) constant within the arms carries
	// no information.
	if !(svv > 1e-12*((c.n-1)*c.uu+(t.n-1)*t.uu)) || svv == 0 {
		return raw, CUPED{}, nil
	}
	theta := ((c.n-1)*c.uv + (t.n-1)*t.uv) / svv
	var pre float64 // the covariate's estimate over both arms
	if kind == Ratio {
		pre = (cp.Sum + tp.Sum) / (cp.DenSum + tp.DenSum)
	} else {
		pre = (cp.Sum + tp.Sum) / (control.N + treatment.N)
	}
	adjust := func(e Estimate, l lin) Estimate {
		v := (l.uu - 2*theta*l.uv + theta*theta*l.vv) / l.n
		return Estimate{N: e.N, Mean: e.Mean - theta*(l.p-pre), Var: math.Max(v, 0)}
	}
	r, err := compare(adjust(raw.Control, c), adjust(raw.Treatment, t), opt)
	if err != nil {
		return Result{}, CUPED{}, err
	}
	before := c.uu/c.n + t.uu/t.n
	after := r.Control.Var + r.Treatment.Var
	out := CUPED{Applied: true, Theta: theta, Control: raw.Control, Treatment: raw.Treatment}
	if before > 0 {
		out.VarianceReduction = 1 - after/before
	}
	return r, out, nil
}

// lin is one arm's linearised outcome u and covariate v: their sample
// variances and covariance (n−1), and the covariate's estimate p (the
// arm's mean of x0, or its pre-period ratio Σx0/Σy0).
type lin struct {
	n, uu, uv, vv, p float64
}

// linearise returns the arm's lin; false when it cannot be formed (a
// ratio whose pre-period denominator sums to 0).
func linearise(kind Kind, a Arm, p Pre) (lin, bool) {
	n := a.N
	cov := func(sab, sa, sb float64) float64 { return (sab - sa*sb/n) / (n - 1) }
	sxx := cov(a.SumSquares, a.Sum, a.Sum)
	if kind == Proportion {
		sxx = cov(a.Sum, a.Sum, a.Sum) // x² = x
	}
	s00 := cov(p.SumSquares, p.Sum, p.Sum)
	sx0 := cov(p.CrossSum, a.Sum, p.Sum)
	if kind != Ratio {
		return lin{n: n, uu: sxx, uv: sx0, vv: s00, p: p.Sum / n}, true
	}
	if a.DenSum == 0 || p.DenSum == 0 {
		return lin{}, false
	}
	my, my0 := a.DenSum/n, p.DenSum/n
	r, pr := a.Sum/a.DenSum, p.Sum/p.DenSum
	sxy := cov(a.SumProducts, a.Sum, a.DenSum)
	syy := cov(a.DenSumSquares, a.DenSum, a.DenSum)
	s0y0 := cov(p.SumProducts, p.Sum, p.DenSum)
	sy0y0 := cov(p.DenSumSquares, p.DenSum, p.DenSum)
	sxy0 := cov(p.CrossDen, a.Sum, p.DenSum)
	syx0 := cov(p.DenCrossSum, a.DenSum, p.Sum)
	syy0 := cov(p.DenCrossDen, a.DenSum, p.DenSum)
	return lin{
		n:  n,
		uu: (sxx - 2*r*sxy + r*r*syy) / (my * my),
		vv: (s00 - 2*pr*s0y0 + pr*pr*sy0y0) / (my0 * my0),
		uv: (sx0 - pr*sxy0 - r*syx0 + r*pr*syy0) / (my * my0),
		p:  pr,
	}, true
}
