package stats

import (
	"fmt"
	"math"
)

// QuantileArm is one arm's statistic for a quantile metric, as GrowthBook's
// QuantileStatistic: the sample quantile at level Nu of N values and the
// order-statistic bounds of its 95% interval, computed on NStar values
// (NStar = N unless the bounds came from a subsample). For an event-level
// quantile the values are events and units are clusters: Clustered adds the
// per-unit sums that correct the variance for events of one unit being
// alike (GrowthBook's QuantileClusteredStatistic).
type QuantileArm struct {
	N, NStar, Nu float64
	Hat          float64 // the sample quantile
	Lower, Upper float64 // the order statistics bounding its 95% interval

	Clustered bool
	// Per unit (cluster): s = the unit's number of events at or below
	// Hat, m = the unit's number of events; sums over units.
	MainSum, MainSumSquares float64 // Σs, Σs²
	DenSum, DenSumSquares   float64 // Σm, Σm²
	MainDenSumProduct       float64 // Σs·m
	NClusters               float64 // units
}

// QuantileZ is the normal quantile of the 95% order-statistic interval
// that Lower and Upper bound: z_{0.975}. The bounds are always computed at
// this level, whatever alpha the comparison uses.
var QuantileZ = normalUpper(0.025)

// QuantileBounds returns the ranks (1-based, fractional) of the order
// statistics that bound the 95% interval of the level-nu quantile of n
// values: n·nu ∓ z·sqrt(n·nu·(1−nu)). Clamped to [1, n].
func QuantileBounds(n, nu float64) (lo, hi float64) {
	h := QuantileZ * math.Sqrt(n*nu*(1-nu))
	return math.Max(1, n*nu-h), math.Min(n, n*nu+h)
}

// unitVariance is GrowthBook's variance of the quantile statistic, the
// variance of one "unit" whose mean is the quantile: the interval's
// half-width over z, squared, times (NStar/N)(N−1); for a clustered
// statistic scaled by the clustered over the iid variance of the share of
// values below the quantile.
func (a QuantileArm) unitVariance() float64 {
	if a.N <= 1 {
		return 0
	}
	w := (a.Upper - a.Lower) / (2 * QuantileZ)
	v := a.NStar / a.N * (a.N - 1) * w * w
	if !a.Clustered {
		return v
	}
	k := a.NClusters
	if a.Nu == 0 || k <= 1 || a.DenSum <= 0 {
		return 0
	}
	ms, mn := a.MainSum/k, a.DenSum/k
	ss := (a.MainSumSquares/k - ms*ms) * k / (k - 1)
	sn := (a.DenSumSquares/k - mn*mn) * k / (k - 1)
	sns := (a.MainDenSumProduct/k - ms*mn) * k / (k - 1)
	cluster := (ss - 2*ms*sns/mn + ms*ms*sn/(mn*mn)) / (k * mn * mn)
	iid := a.Nu * (1 - a.Nu) / a.N
	return v * cluster / iid
}

// SummarizeQuantile returns the arm's estimate: Mean is the sample quantile,
// Var its variance, GrowthBook's statistic variance (floored at 1e-5 from
// 100 values on) over N.
func SummarizeQuantile(a QuantileArm) (Estimate, error) {
	if !finite(a.N, a.NStar, a.Nu, a.Hat, a.Lower, a.Upper, a.MainSum, a.MainSumSquares, a.DenSum, a.DenSumSquares, a.MainDenSumProduct, a.NClusters) {
		return Estimate{}, fmt.Errorf("%w: quantile statistics must be finite numbers, got %+v", ErrInvalid, a)
	}
	switch {
	case !(a.Nu > 0 && a.Nu < 1):
		return Estimate{}, fmt.Errorf("%w: nu = %g, want a quantile level in (0, 1)", ErrInvalid, a.Nu)
	case !(a.N >= 2):
		return Estimate{}, fmt.Errorf("%w: n = %g, need at least 2 values", ErrInvalid, a.N)
	case !(a.NStar > 0):
		return Estimate{}, fmt.Errorf("%w: n_star = %g, want the positive number of values the bounds came from", ErrInvalid, a.NStar)
	case a.Lower > a.Hat || a.Hat > a.Upper:
		return Estimate{}, fmt.Errorf("%w: want quantile_lower ≤ quantile_hat ≤ quantile_upper, got %g, %g, %g", ErrInvalid, a.Lower, a.Hat, a.Upper)
	}
	// Too few values for the interval to lie inside the sample at this
	// level: n ≤ z²·ν/(1−ν) or z²·(1−ν)/ν.
	z2 := QuantileZ * QuantileZ
	if a.N <= z2*a.Nu/(1-a.Nu) || a.N <= z2*(1-a.Nu)/a.Nu {
		return Estimate{}, fmt.Errorf("%w: %g values are too few for an interval of the %g quantile", ErrNoVariance, a.N, a.Nu)
	}
	v := a.unitVariance()
	if !(v > 0) {
		return Estimate{}, fmt.Errorf("%w: the quantile's interval is empty (quantile_lower = quantile_upper)", ErrNoVariance)
	}
	if a.N >= 100 {
		v = math.Max(v, 1e-5)
	}
	e := Estimate{N: a.N, Mean: a.Hat, Var: v / a.N}
	if !finite(e.Var) {
		return Estimate{}, fmt.Errorf("%w: the quantile's variance overflows float64; rescale the values", ErrInvalid)
	}
	return e, nil
}

// CompareQuantile compares two arms of a quantile metric: the difference of
// the sample quantiles with the variance above, through the same
// fixed-horizon (Welch) or sequential test as Compare.
func CompareQuantile(control, treatment QuantileArm, opt Options) (Result, error) {
	if err := opt.validate(); err != nil {
		return Result{}, err
	}
	c, err := SummarizeQuantile(control)
	if err != nil {
		return Result{}, fmt.Errorf("control arm: %w", err)
	}
	t, err := SummarizeQuantile(treatment)
	if err != nil {
		return Result{}, fmt.Errorf("treatment arm: %w", err)
	}
	return CompareEstimates(c, t, opt)
}

// CompareEstimates compares two arms' estimates (Summarize's or
// SummarizeQuantile's) by the test that opt selects.
func CompareEstimates(c, t Estimate, opt Options) (Result, error) {
	if err := opt.validate(); err != nil {
		return Result{}, err
	}
	return compare(c, t, opt)
}

// QuantileIndex is the 0-based position in n sorted values of the quantile
// at level p, as ClickHouse's quantileExact takes it: ⌊p·n⌋, at most n−1.
func QuantileIndex(p float64, n int) int {
	return min(int(math.Floor(p*float64(n))), n-1)
}

// QuantileOf is the statistic of the level-nu quantile of sorted (ascending,
// at least one value): the sample quantile and the values at the levels
// nu ∓ z·sqrt(nu(1−nu)/n) (clamped to [0, 1]) bounding its 95% interval,
// each at QuantileIndex. NStar = N = n; the clustered sums are left to the
// caller.
func QuantileOf(sorted []float64, nu float64) QuantileArm {
	n := len(sorted)
	h := QuantileZ * math.Sqrt(nu*(1-nu)/float64(n))
	return QuantileArm{
		N: float64(n), NStar: float64(n), Nu: nu,
		Hat:   sorted[QuantileIndex(nu, n)],
		Lower: sorted[QuantileIndex(math.Max(0, nu-h), n)],
		Upper: sorted[QuantileIndex(math.Min(1, nu+h), n)],
	}
}

// AddCluster adds one unit's events to a clustered statistic: m events, s
// of them at or below Hat.
func (a *QuantileArm) AddCluster(s, m float64) {
	a.Clustered = true
	a.MainSum += s
	a.MainSumSquares += s * s
	a.DenSum += m
	a.DenSumSquares += m * m
	a.MainDenSumProduct += s * m
	a.NClusters++
}
