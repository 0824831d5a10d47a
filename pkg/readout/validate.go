package readout

import (
	"errors"
	"fmt"
	"math"
)

// ErrInvalid marks a readout that breaks the contract: a number that is NaN
// or infinite, an unknown status or label, or a label that does not fit the
// status.
var ErrInvalid = errors.New("invalid readout")

// Validate reports the first way the readout breaks the contract, wrapping
// ErrInvalid and naming the field by its JSON path. It checks what the
// schema cannot see in Go values (NaN and infinities, which encoding/json
// would refuse anyway with a less useful error) and the status rules: a
// label only when decided, and always when decided.
func (r Readout) Validate() error {
	v := validator{}
	switch r.Status {
	case Collecting, Invalid:
		if r.Label != NoLabel {
			v.fail("label", "%q with status %q, want null", r.Label, r.Status)
		}
	case Decided:
		if !r.Label.valid() || r.Label == NoLabel {
			v.fail("label", "%q with status decided, want persevere, pivot or salvage", r.Label)
		}
	default:
		v.fail("status", "%q, want collecting, decided or invalid", r.Status)
	}
	if !r.Label.valid() {
		v.fail("label", "%q, want persevere, pivot, salvage or null", r.Label)
	}
	if !r.Candidate.valid() {
		v.fail("candidate", "%q, want persevere, pivot, salvage or null", r.Candidate)
	}
	switch r.CandidateStatus {
	case "": // readouts from before the decision lifecycle
	case Collecting, Invalid:
		if r.Candidate != NoLabel {
			v.fail("candidate", "%q with candidate_status %q, want null", r.Candidate, r.CandidateStatus)
		}
	case Decided:
		if r.Candidate == NoLabel {
			v.fail("candidate", "null with candidate_status decided, want persevere, pivot or salvage")
		}
	default:
		v.fail("candidate_status", "%q, want collecting, decided or invalid", r.CandidateStatus)
	}

	h := r.Health
	v.optional("health.srm_p_value", h.SRMPValue)
	v.number("health.multiple_exposure_rate", h.MultipleExposureRate)
	for i, c := range h.Counts {
		p := fmt.Sprintf("health.counts[%d]", i)
		v.number(p+".weight", c.Weight)
		v.number(p+".expected_share", c.ExpectedShare)
		v.number(p+".observed_share", c.ObservedShare)
	}

	g := r.Progress
	v.optional("progress.fraction", g.Fraction)
	v.optional("progress.power", g.Power)
	v.optional("progress.units_per_day", g.UnitsPerDay)

	for i, a := range r.Arms {
		p := fmt.Sprintf("arms[%d]", i)
		if !a.Label.valid() {
			v.fail(p+".label", "%q, want persevere, pivot, salvage or null", a.Label)
		}
		for j, m := range a.Metrics {
			q := fmt.Sprintf("%s.metrics[%d]", p, j)
			v.estimate(q+".control", m.Control)
			v.estimate(q+".treatment", m.Treatment)
			v.number(q+".abs_effect", m.AbsEffect)
			v.optional(q+".rel_effect", m.RelEffect)
			v.interval(q+".ci", &m.CI)
			v.interval(q+".rel_ci", m.RelCI)
			v.number(q+".p_value", m.PValue)
			v.optional(q+".margin", m.Margin)
			v.optional(q+".abs_margin", m.AbsMargin)
			if m.Series != nil {
				for name, points := range map[string][]Point{"cumulative": m.Series.Cumulative, "since_exposure": m.Series.SinceExposure} {
					for k, pt := range points {
						r := fmt.Sprintf("%s.series.%s[%d]", q, name, k)
						v.number(r+".control_mean", pt.Control)
						v.number(r+".treatment_mean", pt.Treatment)
						v.number(r+".abs_effect", pt.AbsEffect)
						v.interval(r+".ci", &pt.CI)
						v.optional(r+".rel_effect", pt.RelEffect)
						v.interval(r+".rel_ci", pt.RelCI)
					}
				}
			}
			if n := m.Novelty; n != nil {
				for name, e := range map[string]*Effect{"early": n.Early, "late": n.Late} {
					if e != nil {
						v.number(q+".novelty."+name+".rel_effect", e.RelEffect)
						v.interval(q+".novelty."+name+".rel_ci", &e.RelCI)
					}
				}
				v.optional(q+".novelty.change", n.Change)
				v.interval(q+".novelty.change_ci", n.ChangeCI)
				v.optional(q+".novelty.p_value", n.PValue)
			}
		}
	}
	for i, s := range r.Salvage {
		q := fmt.Sprintf("salvage[%d]", i)
		v.estimate(q+".control", s.Control)
		v.estimate(q+".treatment", s.Treatment)
		v.number(q+".abs_effect", s.AbsEffect)
		v.optional(q+".rel_effect", s.RelEffect)
		v.interval(q+".ci", &s.CI)
		v.interval(q+".rel_ci", s.RelCI)
		v.number(q+".p_value", s.PValue)
		v.number(q+".adjusted_p_value", s.AdjustedPValue)
	}
	return v.err
}

func (l Label) valid() bool {
	switch l {
	case NoLabel, Persevere, Pivot, Salvage:
		return true
	}
	return false
}

// validator keeps the first failure.
type validator struct{ err error }

func (v *validator) fail(path, format string, args ...any) {
	if v.err == nil {
		v.err = fmt.Errorf("%w: %s = %s", ErrInvalid, path, fmt.Sprintf(format, args...))
	}
}

func (v *validator) number(path string, x float64) {
	if math.IsNaN(x) || math.IsInf(x, 0) {
		v.fail(path, "%g, want a finite number", x)
	}
}

func (v *validator) optional(path string, x *float64) {
	if x != nil {
		v.number(path, *x)
	}
}

func (v *validator) interval(path string, i *Interval) {
	if i != nil {
		v.number(path+"[0]", i[0])
		v.number(path+"[1]", i[1])
	}
}

func (v *validator) estimate(path string, e Estimate) {
	v.number(path+".n", e.N)
	v.number(path+".mean", e.Mean)
}
