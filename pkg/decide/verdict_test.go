package decide

import (
	"errors"
	"fmt"
	"math"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
	"github.com/verdictlabs/verdict/pkg/config"
	"github.com/verdictlabs/verdict/pkg/readout"
	"github.com/verdictlabs/verdict/pkg/stats"
	"github.com/verdictlabs/verdict/pkg/testkit"
)

// The fixture's planned sample: stats.SampleSize for a 10% MDE on a 10%
// conversion (unit variance 0.09), power 0.8, alpha 0.05, sequential with
// tuning 5000, is 30,402.8 units per variant.
const (
	targetPerVariant = 30403
	target           = 2 * targetPerVariant
)

func plan() stats.Plan {
	return stats.Plan{Mean: 0.1, Variance: 0.09, MDE: 0.1, Power: 0.8,
		Options: stats.Options{Alpha: 0.05, Sequential: true, Tuning: 5000}}
}

// wantProgress is the fixture's progress with nc and nt units, dataThrough
// days after the start; the ETA only while collecting.
func wantProgress(t *testing.T, nc, nt int64, days float64, collecting bool) readout.Progress {
	t.Helper()
	e := end
	n := nc + nt
	p := readout.Progress{Units: n, TargetPerVariant: ptr2(int64(targetPerVariant)), Target: ptr2(int64(target)),
		Fraction: ptr2(min(1, float64(n)/target)), UnitsPerDay: ptr2(float64(n) / days), Start: start, End: &e}
	if pw, err := stats.PowerAt(plan(), float64(nc), float64(nt)); err == nil {
		p.Power = &pw
	}
	if collecting {
		through := start.Add(time.Duration(days * 24 * float64(time.Hour)))
		eta, err := stats.DecisionDate(target, float64(n), float64(n)/days, through)
		if err != nil || eta.After(end) {
			eta = end
		}
		p.ETA = &eta
	}
	return p
}

func wantHealth(nc, nt, multi int64) readout.Health {
	n := float64(nc + nt)
	h := readout.Health{
		SRM: readout.SRMOK,
		Counts: []readout.VariantCount{
			{Variant: "control", Units: nc, Weight: 0.5, ExpectedShare: 0.5, ObservedShare: float64(nc) / n},
			{Variant: "one-page", Units: nt, Weight: 0.5, ExpectedShare: 0.5, ObservedShare: float64(nt) / n},
		},
		MultipleExposureCount: multi, MultipleExposureRate: float64(multi) / (n + float64(multi)),
	}
	if p, err := stats.SequentialSRM([]float64{float64(nc), float64(nt)}, []float64{0.5, 0.5}, stats.DefaultSRMConcentration); err == nil {
		h.SRMPValue = &p
	}
	return h
}

// wantMetric maps a comparison into the readout: the numbers copied, the
// outcome and guardrail flags by the definitions in the package comment.
// TestGuardrails checks those definitions with literal values.
func wantMetric(c Comparison, role readout.Role, margin float64) readout.Metric {
	r := c.Result
	m := readout.Metric{
		Metric: c.Metric.Key, Role: role, Kind: string(c.Metric.Kind), Direction: "increase",
		Control:   readout.Estimate{N: r.Control.N, Mean: r.Control.Mean},
		Treatment: readout.Estimate{N: r.Treatment.N, Mean: r.Treatment.Mean},
		AbsEffect: r.AbsEffect, CI: readout.Interval{r.AbsCI.Lo, r.AbsCI.Hi},
		PValue: r.PValue, Significant: r.AbsCI.Lo > 0 || r.AbsCI.Hi < 0, Outcome: readout.Inconclusive,
	}
	lo, hi := r.AbsCI.Lo, r.AbsCI.Hi
	if c.Metric.Direction == config.Decrease {
		m.Direction = "decrease"
		lo, hi = -hi, -lo // in the good direction
	}
	switch {
	case lo > 0:
		m.Outcome = readout.Better
	case hi < 0:
		m.Outcome = readout.Worse
	}
	if r.RelDefined {
		m.RelEffect = ptr2(r.RelEffect)
		m.RelCI = &readout.Interval{r.RelCI.Lo, r.RelCI.Hi}
	}
	if role == readout.Guardrail {
		a := margin * math.Abs(r.Control.Mean)
		m.Margin, m.AbsMargin = ptr2(margin), ptr2(a)
		m.NonInferior, m.BeyondMargin = ptr2(lo > -a), ptr2(hi < -a)
	}
	return m
}

// wantArm maps an arm's comparisons in definition order (primary,
// secondary, guardrail) for the fixture experiment.
func wantArm(a Arm, label readout.Label) readout.Arm {
	out := readout.Arm{Variant: a.Variant, Label: label, Metrics: []readout.Metric{}}
	for _, key := range []string{conv.Key, rev.Key, load.Key} {
		var c *Comparison
		for i := range a.Metrics {
			if a.Metrics[i].Metric.Key == key {
				c = &a.Metrics[i]
				break
			}
		}
		role := map[string]readout.Role{conv.Key: readout.Primary, rev.Key: readout.Secondary, load.Key: readout.Guardrail}[key]
		switch {
		case c == nil:
			out.Unavailable = append(out.Unavailable, readout.Unavailable{Metric: key, Role: role, Reason: "no data was computed for it"})
		case errors.Is(c.Err, stats.ErrNoVariance):
			// Said in words: see read.
			out.Unavailable = append(out.Unavailable, readout.Unavailable{Metric: key, Role: role, Reason: "every unit has the same value so far (no " + c.Metric.Event + " events yet)"})
		case c.Err != nil:
			out.Unavailable = append(out.Unavailable, readout.Unavailable{Metric: key, Role: role, Reason: c.Err.Error()})
		default:
			out.Metrics = append(out.Metrics, wantMetric(*c, role, 0.05))
		}
	}
	return out
}

func wantSalvage(variant string, s *Segment, c Comparison, adjusted float64) readout.SalvageItem {
	r := c.Result
	it := readout.SalvageItem{
		Variant: variant, Kind: readout.SalvageMetric, Metric: c.Metric.Key, Role: readout.Secondary,
		Control:   readout.Estimate{N: r.Control.N, Mean: r.Control.Mean},
		Treatment: readout.Estimate{N: r.Treatment.N, Mean: r.Treatment.Mean},
		AbsEffect: r.AbsEffect, RelEffect: ptr2(r.RelEffect), CI: readout.Interval{r.AbsCI.Lo, r.AbsCI.Hi},
		RelCI: &readout.Interval{r.RelCI.Lo, r.RelCI.Hi}, PValue: r.PValue, AdjustedPValue: adjusted,
	}
	if s != nil {
		it.Kind, it.Dimension, it.Value, it.Role = readout.SalvageSegment, s.Dimension, s.Value, readout.Primary
	}
	return it
}

// base is the readout expected for in with the given status and labels
// (arm labels in input order), before a case's own changes.
func base(t *testing.T, in Input, status readout.Status, label readout.Label, arms ...readout.Label) readout.Readout {
	t.Helper()
	nc, nt := in.Units["control"], in.Units["one-page"]
	days := in.DataThrough.Sub(start).Hours() / 24
	r := readout.Readout{
		Experiment: "checkout-redesign", Name: "One-page checkout",
		Hypothesis: "A one-page checkout raises purchase conversion.", Owners: []string{"[email protected]"},
		DataThrough: in.DataThrough, Status: status, Label: label,
		Candidate: label, CandidateStatus: status, // one look alone
		Health:   wantHealth(nc, nt, in.MultiExposed),
		Progress: wantProgress(t, nc, nt, days, status == readout.Collecting),
		Salvage:  []readout.SalvageItem{},
	}
	for i, a := range in.Arms {
		r.Arms = append(r.Arms, wantArm(a, arms[i]))
	}
	return r
}

func withArms(in Input, arms ...Arm) Input { in.Arms = arms; return in }

type verdictCase struct {
	name   string
	in     Input
	status readout.Status
	label  readout.Label
	arms   []readout.Label
	edit   func(t *testing.T, r *readout.Readout) // the case's expected changes to base
}

func verdictCases() []verdictCase {
	// Segments of the one-page arm: platform = ios, android, web.
	segs := func(ios, android, web Comparison, guard ...Comparison) []Segment {
		ss := []Segment{
			seg("platform", "ios", ios, loadOK),
			seg("platform", "android", android, loadOK),
			seg("platform", "web", web, loadOK),
		}
		if len(guard) > 0 {
			ss[0].Metrics[1] = guard[0]
		}
		return ss
	}
	segArm := func(ss []Segment, cs ...Comparison) Arm { a := treat("one-page", cs...); a.Segments = ss; return a }
	salvageSegs := segs(convSegWin, convSegNo, convSegNo)
	holmFails := segs(convSegSml, convR(0.111, 0.0005, 0.0215, 0.03), convR(0.111, 0.0002, 0.0218, 0.04))
	harmedSegs := segs(convSegWin, convSegNo, convSegNo, loadSegBad)

	decrease := input(treat("one-page", Comparison{Metric: load, Result: loadBetter.Result}))
	decrease.Experiment.Primary = []string{load.Key}
	decrease.Experiment.Secondary, decrease.Experiment.Guardrails = nil, nil

	planned := input(treat("one-page", convWide, revFlat, loadOK))
	planned.Units = map[string]int64{"control": 31000, "one-page": 31000}

	ended := input(treat("one-page", convWide, revFlat, loadOK))
	ended.Now = end.Add(time.Hour)

	slow := input(treat("one-page", convWide, revFlat, loadOK))
	slow.Units = map[string]int64{"control": 2000, "one-page": 2000}

	noMDE := input(treat("one-page", convWide, revFlat, loadOK))
	noMDE.Experiment.MDE = 0

	srm := input(treat("one-page", convWin, revFlat, loadOK))
	srm.Units = map[string]int64{"control": 12040, "one-page": 7960}

	contaminated := input(treat("one-page", convWin, revFlat, loadOK))
	contaminated.MultiExposed = 500

	atLimit := input(treat("one-page", convWide, revFlat, loadOK))
	atLimit.Units = map[string]int64{"control": 19800, "one-page": 19800}
	atLimit.MultiExposed = 400 // exactly 1%: tolerated

	tiny := input(treat("one-page", noVariance, Comparison{Metric: rev, Err: stats.ErrInvalid}, Comparison{Metric: load, Err: stats.ErrInvalid}))
	tiny.Units = map[string]int64{"control": 5, "one-page": 3}
	tiny.MultiExposed = 0
	tiny.DataThrough = start.Add(2 * time.Hour)

	threeArms := func(arms ...Arm) Input {
		in := input(arms...)
		in.Experiment.Variants = []config.Variant{{Key: "control", Weight: 1}, {Key: "one-page", Weight: 1}, {Key: "two-page", Weight: 1}}
		in.Units = map[string]int64{"control": units, "one-page": units, "two-page": units}
		return in
	}
	three := func(t *testing.T, r *readout.Readout, collecting bool) {
		n := float64(3 * units)
		third := 1.0 / 3
		r.Health.Counts = []readout.VariantCount{
			{Variant: "control", Units: units, Weight: 1, ExpectedShare: third, ObservedShare: third},
			{Variant: "one-page", Units: units, Weight: 1, ExpectedShare: third, ObservedShare: third},
			{Variant: "two-page", Units: units, Weight: 1, ExpectedShare: third, ObservedShare: third},
		}
		r.Health.MultipleExposureRate = 40 / (n + 40)
		p, _ := stats.SRM([]float64{units, units, units}, []float64{1, 1, 1})
		r.Health.SRMPValue = &p
		r.Progress.Units = 3 * units
		r.Progress.Target = ptr2(int64(3 * targetPerVariant))
		r.Progress.Fraction = ptr2(n / (3 * targetPerVariant))
		r.Progress.UnitsPerDay = ptr2(n / 10)
		r.Progress.ETA = nil
		if collecting {
			eta, _ := stats.DecisionDate(3*targetPerVariant, n, n/10, now)
			r.Progress.ETA = &eta
		}
	}
	twoPage := func(cs ...Comparison) Arm { return treat("two-page", cs...) }
	convBig := convR(0.115, 0.009, 0.021, 0.00001)

	fixed := input(treat("one-page", convWin, revFlat, loadOK))
	fixed.Experiment.Sequential = false

	zeroControl := withArms(ended, treat("one-page", convWide, Comparison{Metric: rev, Result: func() stats.Result {
		r := result(rev.Key, units, 0, 0.5, 0.2, 0.8, 0.001)
		return r
	}()}, loadOK))

	missingGuard := input(treat("one-page", convWin, revFlat))

	return []verdictCase{
		{name: "persevere", in: input(treat("one-page", convWin, revFlat, loadOK)),
			status: readout.Decided, label: readout.Persevere, arms: []readout.Label{readout.Persevere}},
		{name: "persevere_decrease_primary", in: decrease,
			status: readout.Decided, label: readout.Persevere, arms: []readout.Label{readout.Persevere},
			edit: func(t *testing.T, r *readout.Readout) {
				m := wantMetric(Comparison{Metric: load, Result: loadBetter.Result}, readout.Primary, 0)
				r.Arms[0].Metrics = []readout.Metric{m}
				r.Arms[0].Unavailable = nil
				n, _ := stats.SampleSize(stats.Plan{Mean: 800, Variance: 160000, MDE: 0.1, Power: 0.8, Options: plan().Options})
				pw, _ := stats.PowerAt(stats.Plan{Mean: 800, Variance: 160000, MDE: 0.1, Options: plan().Options}, units, units)
				r.Progress.TargetPerVariant = ptr2(int64(math.Ceil(n)))
				r.Progress.Target = ptr2(2 * int64(math.Ceil(n)))
				r.Progress.Fraction = ptr2(1.0)
				r.Progress.Power = &pw
			}},
		{name: "pivot_guardrail_harm", in: input(treat("one-page", convWin, revWin, loadHarm)),
			status: readout.Decided, label: readout.Pivot, arms: []readout.Label{readout.Pivot}},
		{name: "guardrail_at_margin_good_side", in: input(treat("one-page", convWin, revFlat, loadEdgeIn)),
			status: readout.Collecting, arms: []readout.Label{readout.NoLabel}},
		{name: "guardrail_at_margin_bad_side", in: input(treat("one-page", convWin, revFlat, loadEdgeBd)),
			status: readout.Collecting, arms: []readout.Label{readout.NoLabel}},
		{name: "guardrail_unproven_at_planned_sample", in: withArms(planned, treat("one-page", convWin, revFlat, loadOpen)),
			status: readout.Decided, label: readout.Pivot, arms: []readout.Label{readout.Pivot}},
		{name: "guardrail_missing", in: missingGuard,
			status: readout.Collecting, arms: []readout.Label{readout.NoLabel}},
		// Rule 4 waits until the primary is established not to be a win
		// (rule 5's stopping condition, or a primary significantly worse):
		// before that, a segment or secondary win is only an early sign.
		{name: "salvage_segment", in: withArms(ended, segArm(salvageSegs, convWide, revFlat, loadOK)),
			status: readout.Decided, label: readout.Salvage, arms: []readout.Label{readout.Salvage},
			edit: func(t *testing.T, r *readout.Readout) {
				// Holm over 3 segment tests: 3 × 0.0005.
				r.Salvage = []readout.SalvageItem{wantSalvage("one-page", &salvageSegs[0], convSegWin, 0.0015)}
			}},
		{name: "segment_early_is_collecting", in: input(segArm(salvageSegs, convWide, revFlat, loadOK)),
			status: readout.Collecting, arms: []readout.Label{readout.NoLabel}},
		// (c) A segment win once the futility bound is crossed.
		{name: "salvage_segment_futility", in: input(segArm(salvageSegs, convFutile, revFlat, loadOK)),
			status: readout.Decided, label: readout.Salvage, arms: []readout.Label{readout.Salvage},
			edit: func(t *testing.T, r *readout.Readout) {
				r.Salvage = []readout.SalvageItem{wantSalvage("one-page", &salvageSegs[0], convSegWin, 0.0015)}
				r.Progress.ETA = nil
			}},
		// (d) A segment win while the primary is significantly worse
		// overall, guardrails fine.
		{name: "salvage_segment_primary_worse", in: input(segArm(salvageSegs, convWorse, revFlat, loadOK)),
			status: readout.Decided, label: readout.Salvage, arms: []readout.Label{readout.Salvage},
			edit: func(t *testing.T, r *readout.Readout) {
				r.Salvage = []readout.SalvageItem{wantSalvage("one-page", &salvageSegs[0], convSegWin, 0.0015)}
				r.Progress.ETA = nil
			}},
		{name: "segment_not_after_holm", in: input(segArm(holmFails, convWide, revFlat, loadOK)),
			status: readout.Collecting, arms: []readout.Label{readout.NoLabel}},
		{name: "segment_not_after_holm_at_end", in: withArms(ended, segArm(holmFails, convWide, revFlat, loadOK)),
			status: readout.Decided, label: readout.Pivot, arms: []readout.Label{readout.Pivot}},
		// A futile primary with a segment significant before Holm, not
		// after: futility waits (a pivot now could never become salvage).
		{name: "futility_held_by_promising_segment", in: input(segArm(holmFails, convFutile, revFlat, loadOK)),
			status: readout.Collecting, arms: []readout.Label{readout.NoLabel}},
		{name: "segment_guardrail_harm", in: input(segArm(harmedSegs, convWide, revFlat, loadOK)),
			status: readout.Collecting, arms: []readout.Label{readout.NoLabel}},
		{name: "segment_guardrail_harm_at_end", in: withArms(ended, segArm(harmedSegs, convWide, revFlat, loadOK)),
			status: readout.Decided, label: readout.Pivot, arms: []readout.Label{readout.Pivot}},
		// (b) A secondary win once the planned sample is reached.
		{name: "salvage_secondary", in: withArms(planned, treat("one-page", convWide, revWin, loadOK)),
			status: readout.Decided, label: readout.Salvage, arms: []readout.Label{readout.Salvage},
			edit: func(t *testing.T, r *readout.Readout) {
				r.Salvage = []readout.SalvageItem{wantSalvage("one-page", nil, revWin, 0.002)}
				r.Progress = wantProgress(t, 31000, 31000, 10, false)
			}},
		// (a) The same secondary win while the primary is still collecting.
		{name: "secondary_early_is_collecting", in: input(treat("one-page", convWide, revWin, loadOK)),
			status: readout.Collecting, arms: []readout.Label{readout.NoLabel}},
		{name: "secondary_worse_is_not_salvage", in: input(treat("one-page", convWide, revDown, loadOK)),
			status: readout.Collecting, arms: []readout.Label{readout.NoLabel}},
		{name: "secondary_worse_at_planned_sample", in: withArms(planned, treat("one-page", convWide, revDown, loadOK)),
			status: readout.Decided, label: readout.Pivot, arms: []readout.Label{readout.Pivot},
			edit: func(t *testing.T, r *readout.Readout) {
				r.Progress = wantProgress(t, 31000, 31000, 10, false)
			}},
		{name: "primary_win_no_salvage", in: input(segArm(salvageSegs, convWin, revWin, loadOpen)),
			status: readout.Collecting, arms: []readout.Label{readout.NoLabel}},
		{name: "pivot_planned_sample", in: planned,
			status: readout.Decided, label: readout.Pivot, arms: []readout.Label{readout.Pivot},
			edit: func(t *testing.T, r *readout.Readout) {
				r.Progress = wantProgress(t, 31000, 31000, 10, false)
			}},
		{name: "pivot_end_date", in: ended,
			status: readout.Decided, label: readout.Pivot, arms: []readout.Label{readout.Pivot}},
		{name: "pivot_futility", in: input(treat("one-page", convFutile, revFlat, loadOK)),
			status: readout.Decided, label: readout.Pivot, arms: []readout.Label{readout.Pivot}},
		{name: "futility_bound_exactly", in: input(treat("one-page", convAtMDE, revFlat, loadOK)),
			status: readout.Collecting, arms: []readout.Label{readout.NoLabel}},
		{name: "pivot_primary_worse", in: input(treat("one-page", convWorse, revFlat, loadOK)),
			status: readout.Decided, label: readout.Pivot, arms: []readout.Label{readout.Pivot}},
		// A primary without data blocks every label but invalid, even at
		// the planned end: no decision on nothing.
		{name: "primary_unmeasurable_at_end_is_collecting", in: withArms(ended, treat("one-page", noVariance, revFlat, loadOK)),
			status: readout.Collecting, arms: []readout.Label{readout.NoLabel},
			edit: func(t *testing.T, r *readout.Readout) {
				// No control estimate of the primary: nothing to plan with.
				r.Progress.TargetPerVariant, r.Progress.Target, r.Progress.Fraction, r.Progress.Power = nil, nil, nil, nil
				r.Progress.ETA = ptr2(end)
			}},
		{name: "collecting_eta", in: input(treat("one-page", convWide, revFlat, loadOK)),
			status: readout.Collecting, arms: []readout.Label{readout.NoLabel}},
		{name: "collecting_eta_is_end", in: slow,
			status: readout.Collecting, arms: []readout.Label{readout.NoLabel}},
		{name: "collecting_no_mde", in: noMDE,
			status: readout.Collecting, arms: []readout.Label{readout.NoLabel},
			edit: func(t *testing.T, r *readout.Readout) {
				r.Progress.TargetPerVariant, r.Progress.Target, r.Progress.Fraction, r.Progress.Power = nil, nil, nil, nil
				r.Progress.ETA = ptr2(end) // no target: the planned end
			}},
		{name: "invalid_srm", in: srm,
			status: readout.Invalid, arms: []readout.Label{readout.NoLabel},
			edit: func(t *testing.T, r *readout.Readout) { r.Health.SRM = readout.SRMMismatch }},
		{name: "invalid_contamination", in: contaminated,
			status: readout.Invalid, arms: []readout.Label{readout.NoLabel}},
		{name: "contamination_at_limit", in: atLimit,
			status: readout.Collecting, arms: []readout.Label{readout.NoLabel}},
		{name: "srm_not_enough_traffic", in: tiny,
			status: readout.Collecting, arms: []readout.Label{readout.NoLabel},
			edit: func(t *testing.T, r *readout.Readout) {
				r.Health.SRM, r.Health.SRMPValue = readout.SRMNotEnoughTraffic, nil
				r.Progress = readout.Progress{Units: 8, UnitsPerDay: ptr2(8 / (2.0 / 24)), Start: start, End: ptr2(end), ETA: ptr2(end)}
			}},
		{name: "tie_two_persevere", in: threeArms(treat("one-page", convWin, revFlat, loadOK), twoPage(convBig, revFlat, loadOK)),
			status: readout.Decided, label: readout.Persevere, arms: []readout.Label{readout.Persevere, readout.Persevere},
			edit: func(t *testing.T, r *readout.Readout) { three(t, r, false) }},
		{name: "tie_equal_effects_first_arm", in: threeArms(treat("one-page", convWin, revFlat, loadOK), twoPage(convWin, revFlat, loadOK)),
			status: readout.Decided, label: readout.Persevere, arms: []readout.Label{readout.Persevere, readout.Persevere},
			edit: func(t *testing.T, r *readout.Readout) { three(t, r, false) }},
		{name: "pivot_and_collecting_is_collecting", in: threeArms(treat("one-page", convWin, revFlat, loadHarm), twoPage(convWide, revFlat, loadOK)),
			status: readout.Collecting, arms: []readout.Label{readout.Pivot, readout.NoLabel},
			edit: func(t *testing.T, r *readout.Readout) { three(t, r, true) }},
		{name: "salvage_beats_pivot", in: threeArms(treat("one-page", convWin, revFlat, loadHarm), twoPage(convFutile, revWin, loadOK)),
			status: readout.Decided, label: readout.Salvage, arms: []readout.Label{readout.Pivot, readout.Salvage},
			edit: func(t *testing.T, r *readout.Readout) {
				three(t, r, false)
				r.Salvage = []readout.SalvageItem{wantSalvage("two-page", nil, revWin, 0.004)} // Holm over 2 arms: 2 × 0.002
			}},
		{name: "every_arm_pivots", in: threeArms(treat("one-page", convFutile, revFlat, loadOK), twoPage(convWin, revFlat, loadHarm)),
			status: readout.Decided, label: readout.Pivot, arms: []readout.Label{readout.Pivot, readout.Pivot},
			edit: func(t *testing.T, r *readout.Readout) { three(t, r, false) }},
		{name: "fixed_horizon_early", in: fixed,
			status: readout.Decided, label: readout.Persevere, arms: []readout.Label{readout.Persevere},
			edit: func(t *testing.T, r *readout.Readout) {
				p := plan()
				p.Sequential = false
				n, _ := stats.SampleSize(p)
				pw, _ := stats.PowerAt(p, units, units)
				r.Progress.TargetPerVariant = ptr2(int64(math.Ceil(n)))
				r.Progress.Target = ptr2(2 * int64(math.Ceil(n)))
				r.Progress.Fraction = ptr2(min(1, 2*units/(2*math.Ceil(n))))
				r.Progress.Power = &pw
			}},
		{name: "zero_control_mean", in: zeroControl,
			status: readout.Decided, label: readout.Salvage, arms: []readout.Label{readout.Salvage},
			edit: func(t *testing.T, r *readout.Readout) {
				c := zeroControl.Arms[0].Metrics[1]
				it := wantSalvage("one-page", nil, c, 0.001)
				it.RelEffect, it.RelCI = nil, nil
				r.Salvage = []readout.SalvageItem{it}
			}},
	}
}

// TestVerdict checks every rule and branch on whole readouts. The reasons
// and summary are compared with testdata/reasons/<case>.txt (go test
// -update rewrites them), and every readout is validated against the schema.
func TestVerdict(t *testing.T) {
	s := compileSchema(t)
	for _, tt := range verdictCases() {
		t.Run(tt.name, func(t *testing.T) {
			got := Verdict(tt.in)
			want := base(t, tt.in, tt.status, tt.label, tt.arms...)
			if tt.edit != nil {
				tt.edit(t, &want)
			}
			ignoreText := cmp.Options{
				cmpopts.IgnoreFields(readout.Readout{}, "Summary", "Reasons"),
				cmpopts.IgnoreFields(readout.Arm{}, "Reasons"),
				cmpopts.EquateApprox(1e-12, 0), // Holm's products
			}
			if diff := cmp.Diff(want, got, ignoreText); diff != "" {
				t.Errorf("Verdict(%s) mismatch (-want +got):\n%s", tt.name, diff)
			}
			encode(t, s, got)
			checkQuotes(t, got)
			golden(t, filepath.Join("testdata", "reasons", tt.name+".txt"), []byte(text(got)))
		})
	}
}

// text renders what people read: summary, reasons, and each arm's reasons.
func text(r readout.Readout) string {
	var b strings.Builder
	fmt.Fprintf(&b, "status: %s\nlabel: %s\nsummary: %s\nreasons:\n", r.Status, labelText(r.Label), r.Summary)
	for _, s := range r.Reasons {
		fmt.Fprintf(&b, "  - %s\n", s)
	}
	for _, a := range r.Arms {
		fmt.Fprintf(&b, "arm %s (%s):\n", a.Variant, labelText(a.Label))
		for _, s := range a.Reasons {
			fmt.Fprintf(&b, "  - %s\n", s)
		}
	}
	return b.String()
}

func labelText(l readout.Label) string {
	if l == readout.NoLabel {
		return "null"
	}
	return string(l)
}

func golden(t *testing.T, path string, got []byte) { t.Helper(); testkit.Golden(t, path, got) }
