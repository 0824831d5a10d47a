package decide

import (
	"time"

	"github.com/verdictlabs/verdict/pkg/config"
	"github.com/verdictlabs/verdict/pkg/readout"
	"github.com/verdictlabs/verdict/pkg/stats"
)

// Input is everything Verdict needs about one experiment: its definition,
// the clock, the units per variant, and the comparisons the stats engine
// made. The rules service fills it straight from its queries:
//
//	in := decide.Input{Experiment: exp, Now: now, DataThrough: watermark,
//		Units: unitsByVariant, MultiExposed: excluded}
//	for _, v := range treatments {
//		arm := decide.Arm{Variant: v}
//		for _, m := range metricsOf(exp) { // primary, secondary, guardrails
//			r, err := stats.Compare(m.Kind, ctl[m.Key], trt[v][m.Key], opt)
//			arm.Metrics = append(arm.Metrics, decide.Comparison{Metric: m, Result: r, Err: err})
//		}
//		for _, s := range segmentValues { // per configured dimension and value
//			seg := decide.Segment{Dimension: s.Dim, Value: s.Value}
//			... the same for the primary and guardrail metrics, in that segment
//			arm.Segments = append(arm.Segments, seg)
//		}
//		in.Arms = append(in.Arms, arm)
//	}
//	r := decide.Verdict(in)
//
// Roles (primary, secondary, guardrail) and margins come from the
// definition, never from the results, so they cannot disagree. Verdict does
// not trust its input: results with non-finite numbers, metrics that are
// missing or failed (Err), negative counts and out-of-range options are
// handled, never a panic and never a NaN in the readout.
type Input struct {
	Experiment config.Experiment

	// Now is the clock: the end date counts as reached when Now is at or
	// after Experiment.End.
	Now time.Time
	// DataThrough is the time up to which events are counted. The traffic
	// rate (and so the expected decision date) is measured from
	// Experiment.Start to DataThrough.
	DataThrough time.Time

	// Units holds the units analysed per variant key: units exposed to
	// exactly one variant. Variants of the definition missing here have 0.
	Units map[string]int64
	// MultiExposed counts the units exposed to more than one variant (left
	// out of Units and of every comparison).
	MultiExposed int64
	// UnknownVariant counts the units exposed to one variant that the
	// definition does not list (left out of Units and of every comparison).
	UnknownVariant int64

	// Arms has one entry per treatment variant (not the control), in the
	// order the readout should list them.
	Arms []Arm
}

// Arm holds one treatment variant's comparisons with the control.
type Arm struct {
	Variant string
	// Metrics has a Comparison for every metric of the experiment: primary,
	// secondary and guardrails. A metric of the definition with no Comparison is
	// reported as unavailable; a Comparison for a metric the definition does not
	// name is ignored.
	Metrics []Comparison
	// Segments has, per segment value, the Comparisons of the primary and
	// guardrail metrics computed on that segment's units only. They are used
	// to look for salvage (rule 4); secondary metrics here are ignored.
	Segments []Segment
}

// Segment is one value of a segment dimension, e.g. platform = ios.
type Segment struct {
	Dimension string
	Value     string
	Metrics   []Comparison
}

// Comparison is stats.Compare's answer for one metric: the Result, or the error
// it returned (the metric is then unavailable, e.g. stats.ErrNoVariance
// while nobody has converted yet).
type Comparison struct {
	Metric config.Metric
	Result stats.Result
	Err    error
	// CUPED is what variance reduction did to Result; nil when the metric
	// has none.
	CUPED *stats.CUPED
	// Bayes is the Bayesian engine's posterior (relative scale), nil under
	// the frequentist engine. Result then holds the posterior's means and
	// credible intervals (see rules.Posterior), so the rules below read
	// them as they read confidence intervals.
	Bayes *stats.Posterior
	// Series and Novelty are the effect over time and the test of whether
	// it changes with the time since exposure (nil: not computed). A
	// primary win whose lift is decaying and no longer better in the late
	// part of the window is novelty, not a persevere (rule 3).
	Series  *readout.Series
	Novelty *readout.Novelty
}
