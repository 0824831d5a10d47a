package decide

import (
	"fmt"
	"math"
	"time"

	"github.com/verdictlabs/verdict/pkg/config"
	"github.com/verdictlabs/verdict/pkg/readout"
	"github.com/verdictlabs/verdict/pkg/stats"
)

// health runs rule 1's checks: sample ratio mismatch over every variant of
// the definition, and the multiple-exposure rate.
func (x *experiment) health() {
	vs := x.in.Experiment.Variants
	observed := make([]float64, len(vs))
	weights := make([]float64, len(vs))
	var wsum float64
	for i, v := range vs {
		n := x.unitsOf(v.Key)
		x.units = addUnits(x.units, n)
		observed[i] = float64(n)
		weights[i] = v.Weight
		if v.Weight > 0 && !math.IsInf(v.Weight, 1) {
			wsum += v.Weight
		}
	}
	for i, v := range vs {
		c := readout.VariantCount{Variant: v.Key, Units: x.unitsOf(v.Key)}
		if finite(v.Weight) && v.Weight >= 0 {
			c.Weight = v.Weight
			if wsum > 0 && !math.IsInf(wsum, 0) {
				c.ExpectedShare = v.Weight / wsum
			}
		}
		if x.units > 0 {
			c.ObservedShare = observed[i] / float64(x.units)
		}
		if c.ExpectedShare > 0 && (x.minWeight == 0 || c.Weight < x.minWeight) {
			x.minWeight, x.weightSum = c.Weight, wsum
		}
		x.counts = append(x.counts, c)
	}

	// The sequential test, valid however often readouts look (a chi-square
	// test repeated at every readout flags a healthy experiment at some look
	// far more often than its 0.001); the 8 units per arm only keep the
	// readout from showing a test that cannot say anything yet.
	x.srm = readout.SRMNotEnoughTraffic
	if stats.SRMEnoughTraffic(observed, weights) {
		if p, err := stats.SequentialSRM(observed, weights, stats.DefaultSRMConcentration); err == nil {
			x.srm, x.srmP = readout.SRMOK, p
			if p < stats.SRMThreshold {
				x.srm, x.srmInvalid = readout.SRMMismatch, true
			}
		}
	}
	// The variant furthest from its planned share, for the SRM reason.
	worst := -1.0
	for i, c := range x.counts {
		if d := math.Abs(c.ObservedShare - c.ExpectedShare); d > worst {
			worst, x.worstVariant = d, i
		}
	}

	multi, unknown := max(x.in.MultiExposed, 0), max(x.in.UnknownVariant, 0)
	// As float64: the sum may not fit in an int64.
	if total := float64(x.units) + float64(multi) + float64(unknown); total > 0 {
		x.multiRate = float64(multi) / total
		x.unknownRate = float64(unknown) / total
	}
	x.contaminated = x.multiRate > MaxMultipleExposure
	x.unknown = x.unknownRate > MaxUnknownVariant
}

// gate finds what keeps the experiment from any label but invalid: a
// variant of weight > 0 with fewer than min_units units, or a primary
// metric that could not be compared in a treatment arm of weight > 0 (no
// events yet, no variance, a failed comparison). A decision on a metric
// with no data would be a decision on nothing: a backfill that lands the
// exposures before the events would otherwise pivot on an empty primary.
func (x *experiment) gate() {
	minUnits := x.in.Experiment.MinUnits
	if minUnits <= 0 {
		minUnits = config.DefaultMinUnits
	}
	weight := map[string]float64{}
	for _, v := range x.in.Experiment.Variants {
		weight[v.Key] = v.Weight
	}
	var short []string
	for _, v := range x.in.Experiment.Variants {
		if v.Weight > 0 && x.unitsOf(v.Key) < minUnits {
			short = append(short, fmt.Sprintf("%s has %s", v.Key, readout.Count(x.unitsOf(v.Key))))
		}
	}
	if len(short) > 0 {
		x.blockers = append(x.blockers, fmt.Sprintf("No decision yet: every variant needs at least %s units, and %s.", readout.Count(minUnits), join(short)))
	}
	for _, a := range x.arms {
		if !(weight[a.variant] > 0) {
			continue
		}
		for _, m := range a.with(readout.Primary) {
			if !m.ok {
				x.blockers = append(x.blockers, fmt.Sprintf("No decision yet: primary metric %s has no data to compare in %s (%s).", m.key, a.variant, m.why))
			}
		}
	}
}

// plan computes the planned sample per variant (the largest over the primary
// metrics of stats.SampleSize for the MDE, with the control's observed mean
// and unit variance), the power reached so far, and the traffic rate.
func (x *experiment) plan() {
	control := x.in.Experiment.Control
	nc := float64(x.unitsOf(control))
	for _, key := range x.keys {
		if x.roles[key].role != readout.Primary {
			continue
		}
		var p stats.Plan
		found := false
		for _, a := range x.arms {
			for _, m := range a.metrics {
				if m.key == key && m.ok && !found {
					p = stats.Plan{
						Mean:     m.res.Control.Mean,
						Variance: m.res.Control.UnitVariance(),
						MDE:      x.opt.mde,
						Power:    x.opt.power,
						Options:  stats.Options{Alpha: x.opt.alpha, Sequential: x.opt.sequential, Tuning: x.opt.tuning},
					}
					found = true
				}
			}
		}
		if !found || x.opt.mde == 0 {
			continue
		}
		if n, err := stats.SampleSize(p); err == nil && n < 1e15 {
			x.targetPerArm = max(x.targetPerArm, math.Ceil(n))
		}
		for _, a := range x.arms {
			nt := float64(x.unitsOf(a.variant))
			if nc <= 0 || nt <= 0 {
				continue
			}
			if pw, err := stats.PowerAt(p, nc, nt); err == nil && finite(pw) {
				if x.power < 0 || pw < x.power {
					x.power = pw
				}
			}
		}
	}
	start := x.in.Experiment.Start
	if !start.IsZero() {
		if r, err := stats.DailyRate(float64(x.units), start, x.in.DataThrough); err == nil && finite(r) {
			x.unitsPerDay = r
		}
	}
}

// target is the total units at which the smallest variant reaches the
// planned sample at the planned split; 0 when unknown.
func (x *experiment) target() float64 {
	if x.targetPerArm == 0 {
		return 0
	}
	// Written as n·Σw/min w rather than n/min share so that equal weights
	// give whole numbers exactly (30403·3/1, not 30403/(1/3)).
	t := x.targetPerArm * float64(len(x.in.Experiment.Variants))
	if x.minWeight > 0 {
		t = x.targetPerArm * x.weightSum / x.minWeight
	}
	t = math.Ceil(t)
	if !(t < 1e15) {
		return 0
	}
	return t
}

// eta is the expected decision date while collecting: the date the target
// is reached at the current traffic, or the planned end if sooner.
func (x *experiment) eta() *time.Time {
	var best *time.Time
	if t := x.target(); t > 0 && x.unitsPerDay > 0 {
		if d, err := stats.DecisionDate(t, float64(x.units), x.unitsPerDay, x.in.DataThrough); err == nil {
			best = &d
		}
	}
	if end := x.in.Experiment.End; end != nil && (best == nil || end.Before(*best)) {
		e := *end
		best = &e
	}
	return best
}

func (x *experiment) progress(collecting bool) readout.Progress {
	p := readout.Progress{Units: x.units, Start: x.in.Experiment.Start}
	if end := x.in.Experiment.End; end != nil {
		p.End = ptr(*end)
	}
	if t := x.target(); t > 0 {
		p.TargetPerVariant = ptr(int64(x.targetPerArm))
		p.Target = ptr(int64(t))
		p.Fraction = ptr(min(1, float64(x.units)/t))
	}
	if x.power >= 0 {
		p.Power = ptr(x.power)
	}
	if x.unitsPerDay >= 0 {
		p.UnitsPerDay = ptr(x.unitsPerDay)
	}
	if collecting {
		p.ETA = x.eta()
	}
	return p
}

func (x *experiment) healthOut() readout.Health {
	h := readout.Health{
		SRM:                   x.srm,
		Counts:                x.counts,
		MultipleExposureCount: max(x.in.MultiExposed, 0),
		MultipleExposureRate:  x.multiRate,
		UnknownVariantUnits:   max(x.in.UnknownVariant, 0),
	}
	if x.srm != readout.SRMNotEnoughTraffic {
		h.SRMPValue = ptr(x.srmP)
	}
	return h
}

// addUnits adds two non-negative counts, saturating rather than wrapping.
func addUnits(a, b int64) int64 {
	if a > math.MaxInt64-b {
		return math.MaxInt64
	}
	return a + b
}
