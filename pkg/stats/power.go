package stats

import (
	"fmt"
	"math"
	"time"
)

// Plan describes the effect an experiment should be able to detect: the
// input of sample-size and power calculations.
//
// Both calculations use the normal approximation (z rather than t), equal
// variances in both arms, and count both tails of the two-sided test, as
// statsmodels' NormalIndPower does:
//
//	power = Φ(Δ/s − c) + Φ(−Δ/s − c),  Δ = |MDE·Mean|,  s = √(Variance·(1/n_c + 1/n_t)).
//
// For fixed-horizon analysis c is the normal quantile z_{1−α/2}. For
// sequential analysis c is the confidence sequence's half-width in standard
// errors at N = n_c + n_t units (see Compare), so that "power" is the chance
// that the sequence excludes 0 when looked at with that many units: the
// sequential sample size is the fixed one with the wider boundary, which is
// what a team planning an always-valid experiment needs to budget. (The
// sequence may of course stop earlier; it is never later than planned with
// more than the stated power.)
type Plan struct {
	Mean     float64 // expected control mean per unit (for a ratio metric, the ratio)
	Variance float64 // variance of one unit's value: p(1−p) for a proportion, Estimate.UnitVariance otherwise
	MDE      float64 // relative minimum detectable effect: 0.03 is ±3% of Mean
	Power    float64 // target power in (0, 1), e.g. 0.8; used by SampleSize only
	Options          // Alpha, and Sequential with Tuning for the sequential equivalent
}

// delta validates the plan and returns the absolute effect to detect and the
// unit standard deviation.
func (p Plan) delta(needPower bool) (float64, float64, error) {
	if err := p.Options.validate(); err != nil {
		return 0, 0, err
	}
	if !finite(p.Mean, p.Variance, p.MDE) {
		return 0, 0, fmt.Errorf("%w: plan mean %g, variance %g, mde %g must be finite", ErrInvalid, p.Mean, p.Variance, p.MDE)
	}
	if !(p.Variance > 0) {
		return 0, 0, fmt.Errorf("%w: plan variance = %g, want > 0", ErrInvalid, p.Variance)
	}
	d := math.Abs(p.MDE * p.Mean)
	if !(d > 0) || math.IsInf(d, 0) {
		return 0, 0, fmt.Errorf("%w: mde %g of mean %g is an effect of %g, want a non-zero finite effect", ErrInvalid, p.MDE, p.Mean, d)
	}
	if needPower && !(p.Power > p.Alpha && p.Power < 1) {
		return 0, 0, fmt.Errorf("%w: power = %g, want a number in (alpha, 1) = (%g, 1)", ErrInvalid, p.Power, p.Alpha)
	}
	return d, math.Sqrt(p.Variance), nil
}

// boundary returns the critical value c in standard errors for N units in
// total: z_{1−α/2} for fixed horizon, the confidence sequence's multiplier
// for sequential analysis.
func (o Options) boundary(n float64) float64 {
	if !o.Sequential {
		return normalUpper(o.Alpha / 2)
	}
	l := -2 * math.Log(o.Alpha)
	rho2 := (l + math.Log(l+1)) / o.Tuning
	t := n*rho2 + 1
	return math.Sqrt(n) * math.Sqrt(2*t*math.Log(math.Sqrt(t)/o.Alpha)/(n*n*rho2))
}

// power returns the power with nc and nt units for an effect d and unit
// standard deviation sd.
func (p Plan) power(d, sd, nc, nt float64) float64 {
	c := p.boundary(nc + nt)
	k := d / (sd * math.Sqrt(1/nc+1/nt))
	return normalCDF(k-c) + normalCDF(-k-c)
}

// PowerAt returns the power reached with the given units per arm: the chance
// of a significant result if the true effect is the plan's MDE. Plan.Power is
// not used.
func PowerAt(p Plan, control, treatment float64) (float64, error) {
	d, sd, err := p.delta(false)
	if err != nil {
		return 0, err
	}
	if !(control > 0 && treatment > 0) || !finite(control, treatment) {
		return 0, fmt.Errorf("%w: units per arm %g and %g, want positive numbers", ErrInvalid, control, treatment)
	}
	return p.power(d, sd, control, treatment), nil
}

// SampleSize returns the units needed in each of two equal arms to detect the
// plan's MDE with its power: the n at which PowerAt(p, n, n) = p.Power,
// solved to full precision. It is not rounded; plan for math.Ceil of it.
func SampleSize(p Plan) (float64, error) {
	d, sd, err := p.delta(true)
	if err != nil {
		return 0, err
	}
	// Start from the one-tailed closed form, then bracket and bisect in log n:
	// power grows with n for both boundaries wherever it exceeds alpha.
	z := normalUpper(p.Alpha/2) + normalUpper(1-p.Power)
	n := 2 * p.Variance * z * z / (d * d)
	if !(n > 0) || math.IsInf(n, 0) {
		n = 1
	}
	f := func(n float64) float64 { return p.power(d, sd, n, n) - p.Power }
	lo, hi := n, n
	for i := 0; f(hi) < 0; i++ {
		if i == 2000 || math.IsInf(hi, 0) {
			return 0, fmt.Errorf("%w: no finite sample reaches power %g", ErrInvalid, p.Power)
		}
		lo, hi = hi, hi*2
	}
	for i := 0; f(lo) >= 0; i++ {
		if i == 2000 || lo == 0 {
			return 0, fmt.Errorf("%w: power %g is reached with no units at all", ErrInvalid, p.Power)
		}
		hi, lo = lo, lo/2
	}
	for range 200 {
		mid := math.Sqrt(lo * hi)
		if mid <= lo || mid >= hi {
			break
		}
		if f(mid) < 0 {
			lo = mid
		} else {
			hi = mid
		}
	}
	return hi, nil
}

// DecisionDate returns when target units will be reached, from units now
// (asOf) at perDay units per day; asOf itself when the target is already
// reached. Units and target are in the same measure (e.g. both arms
// together). The clock is the caller's: nothing here reads the time.
func DecisionDate(target, units, perDay float64, asOf time.Time) (time.Time, error) {
	if !finite(target, units, perDay) || target < 0 || units < 0 {
		return time.Time{}, fmt.Errorf("%w: target %g, units %g and rate %g must be finite and ≥ 0", ErrInvalid, target, units, perDay)
	}
	if units >= target {
		return asOf, nil
	}
	if !(perDay > 0) {
		return time.Time{}, fmt.Errorf("%w: no traffic (rate %g units per day), the target of %g units is never reached", ErrInvalid, perDay, target)
	}
	days := (target - units) / perDay
	const maxDays = 100 * 366
	if days > maxDays {
		return time.Time{}, fmt.Errorf("%w: at %g units per day the target of %g units takes %.0f days, more than 100 years", ErrInvalid, perDay, target, days)
	}
	return asOf.Add(time.Duration(days * float64(24*time.Hour))), nil
}

// DailyRate returns the units per day seen between start and asOf.
func DailyRate(units float64, start, asOf time.Time) (float64, error) {
	elapsed := asOf.Sub(start)
	if elapsed <= 0 {
		return 0, fmt.Errorf("%w: no time elapsed between start %s and %s", ErrInvalid, start.Format(time.RFC3339), asOf.Format(time.RFC3339))
	}
	if !finite(units) || units < 0 {
		return 0, fmt.Errorf("%w: units = %g, want a finite count ≥ 0", ErrInvalid, units)
	}
	return units / (elapsed.Hours() / 24), nil
}
