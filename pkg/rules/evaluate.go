package rules

import (
	"fmt"
	"sort"
	"time"

	"github.com/verdictlabs/verdict/pkg/config"
	"github.com/verdictlabs/verdict/pkg/decide"
	"github.com/verdictlabs/verdict/pkg/readout"
	"github.com/verdictlabs/verdict/pkg/stats"
	"github.com/verdictlabs/verdict/pkg/warehouse"
)

// Evaluate turns an experiment's sufficient statistics into its readout:
// every treatment is compared with the control on every metric, overall and
// (for the primary and guardrail metrics) in every segment value, and the
// decision rules label the result. Version and ComputedAt are left for the
// caller to stamp. The readout is one look's: decide.Latch makes decisions
// of looks.
//
// For a sequential experiment every comparison is narrowed by the running
// intersection of its confidence sequence over earlier looks (running, by
// cell key; nil for none): see stats.Intersect. The returned map is the
// record to keep for the next look. Looks where a variant of weight > 0
// has fewer than min_units units neither narrow nor are recorded: their
// variance estimates are too rough to bind later looks to.
//
// A segment dimension's values beyond the MaxSegmentValues with the most
// units are taken together as readout.OtherSegment (groupSegments), whose
// members change as values rise and fall: it is compared at every look
// but never narrowed. The running record keeps only cells the look has.
func Evaluate(exp config.Experiment, metrics map[string]config.Metric, st warehouse.ExperimentStats, now time.Time, running map[string]stats.Running) (readout.Readout, map[string]stats.Running) {
	st, grouped := groupSegments(st, MaxSegmentValues)
	ro, next := evaluate(exp, metrics, st, now, running)
	ro.Health.SegmentValuesGrouped = grouped
	return ro, next
}

func evaluate(exp config.Experiment, metrics map[string]config.Metric, st warehouse.ExperimentStats, now time.Time, running map[string]stats.Running) (readout.Readout, map[string]stats.Running) {
	cells := make(map[cellKey]stats.Arm, len(st.Cells))
	pres := make(map[cellKey]stats.Pre, len(st.Cells))
	quantiles := map[cellKey]*stats.QuantileArm{}
	values := map[string]map[string]bool{} // dimension → values seen
	for _, c := range st.Cells {
		cells[cellKey{c.Variant, c.Metric, c.Dimension, c.Value}] = c.Arm
		pres[cellKey{c.Variant, c.Metric, c.Dimension, c.Value}] = c.Pre
		if c.Quantile != nil {
			quantiles[cellKey{c.Variant, c.Metric, c.Dimension, c.Value}] = c.Quantile
		}
		if c.Dimension != "" {
			if values[c.Dimension] == nil {
				values[c.Dimension] = map[string]bool{}
			}
			values[c.Dimension][c.Value] = true
		}
	}
	// freq is the experiment's frequentist test, which the effects over
	// time use under either engine.
	freq := stats.Options{Alpha: exp.Alpha, Sequential: exp.Sequential, Tuning: exp.Tuning}
	if freq.Tuning == 0 {
		freq.Tuning = stats.DefaultTuning
	}
	opt := freq
	if exp.Bayesian() {
		// The posterior is formed from the fixed-horizon moments; there
		// is no confidence sequence to narrow.
		opt.Sequential = false
	}
	narrow := opt.Sequential && enoughUnits(exp, st.Units)
	// The cells of this look a running record may be kept for (not a
	// value grouped since, nor one of an old definition).
	has := make(map[string]bool, len(st.Cells))
	for _, c := range st.Cells {
		if c.Value != readout.OtherSegment {
			has[RunningKey(c.Variant, c.Metric, c.Dimension, c.Value)] = true
		}
	}
	next := map[string]stats.Running{}
	if !narrow {
		for k, v := range running {
			if has[k] {
				next[k] = v
			}
		}
	}
	compare := func(m config.Metric, variant, dim, value string) (decide.Comparison, bool) {
		ctl, okC := cells[cellKey{exp.Control, m.Key, dim, value}]
		trt, okT := cells[cellKey{variant, m.Key, dim, value}]
		if !okC || !okT {
			return decide.Comparison{}, false
		}
		var r stats.Result
		var cuped *stats.CUPED
		var err error
		if m.Kind == stats.Quantile {
			qc, qt := quantiles[cellKey{exp.Control, m.Key, dim, value}], quantiles[cellKey{variant, m.Key, dim, value}]
			switch {
			case value == readout.OtherSegment:
				err = fmt.Errorf("%w: a quantile of values grouped as %s is not computed", stats.ErrNoVariance, readout.OtherSegment)
			case qc == nil || qt == nil:
				err = fmt.Errorf("%w: no %s values yet in an arm", stats.ErrNoVariance, m.Event)
			default:
				r, err = stats.CompareQuantile(*qc, *qt, opt)
			}
		} else if m.CUPEDLookback() > 0 {
			var cu stats.CUPED
			r, cu, err = stats.CompareCUPED(m.Kind, ctl, trt, pres[cellKey{exp.Control, m.Key, dim, value}], pres[cellKey{variant, m.Key, dim, value}], opt)
			cuped = &cu
		} else {
			r, err = stats.Compare(m.Kind, ctl, trt, opt)
		}
		var post *stats.Posterior
		if err == nil && exp.Bayesian() {
			mc0 := r.Control.Mean
			if cuped != nil {
				mc0 = cuped.Control.Mean // as observed; r's are adjusted
				if !cuped.Applied {
					mc0 = r.Control.Mean
				}
			}
			r, post, err = Posterior(r, mc0, exp, m)
		}
		if err == nil && narrow && value != readout.OtherSegment {
			key := RunningKey(variant, m.Key, dim, value)
			if prev, ok := running[key]; ok {
				r, next[key] = stats.Intersect(prev, r)
			} else {
				next[key] = stats.RunningOf(r)
			}
		}
		return decide.Comparison{Metric: m, Result: r, Err: err, CUPED: cuped, Bayes: post}, true
	}

	var all, segmented []config.Metric // every metric; primaries and guardrails
	for _, key := range exp.Primary {
		all, segmented = append(all, metrics[key]), append(segmented, metrics[key])
	}
	for _, key := range exp.Secondary {
		all = append(all, metrics[key])
	}
	for _, g := range exp.Guardrails {
		all, segmented = append(all, metrics[g.Metric]), append(segmented, metrics[g.Metric])
	}

	in := decide.Input{
		Experiment:   exp,
		Now:          now,
		DataThrough:  st.DataThrough,
		Units:        map[string]int64{},
		MultiExposed: int64(st.MultiExposed),

		UnknownVariant: int64(st.UnknownVariant),
	}
	if in.DataThrough.IsZero() {
		in.DataThrough = exp.Start
	}
	for v, n := range st.Units {
		in.Units[v] = int64(n)
	}
	// Each series' share of the points a readout carries.
	points := max(MinSeriesPoints, SeriesPoints/max(1, (len(exp.Variants)-1)*len(all)*2))
	for _, v := range exp.Variants {
		if v.Key == exp.Control {
			continue
		}
		arm := decide.Arm{Variant: v.Key}
		for _, m := range all {
			if c, ok := compare(m, v.Key, "", ""); ok {
				c.Series, c.Novelty = overTime(exp, m, v.Key, st.Time, points, freq)
				arm.Metrics = append(arm.Metrics, c)
			}
		}
		for _, dim := range exp.Segments {
			for _, value := range sortedSet(values[dim]) {
				seg := decide.Segment{Dimension: dim, Value: value}
				for _, m := range segmented {
					if c, ok := compare(m, v.Key, dim, value); ok {
						seg.Metrics = append(seg.Metrics, c)
					}
				}
				if len(seg.Metrics) > 0 {
					arm.Segments = append(arm.Segments, seg)
				}
			}
		}
		in.Arms = append(in.Arms, arm)
	}
	if narrow {
		// A cell without a result at this look (its comparison failed)
		// keeps what it had.
		for k, v := range running {
			if _, ok := next[k]; !ok && has[k] {
				next[k] = v
			}
		}
	}
	ro := decide.Verdict(in)
	ro.Health.PreExposureImbalance = imbalances(exp, all, cells, pres)
	return ro, next
}

// imbalances tests, for every treatment and every CUPED metric, whether
// the covariate's mean (its ratio, for a ratio metric) before exposure
// differs from the control's: Welch's test, reported below
// readout.ImbalanceP. Randomisation makes such a difference rare; when it
// happens the arms were unlike from the start, and effects read from them
// deserve doubt even though CUPED corrects for the covariate.
func imbalances(exp config.Experiment, metrics []config.Metric, cells map[cellKey]stats.Arm, pres map[cellKey]stats.Pre) []readout.Imbalance {
	var out []readout.Imbalance
	seen := map[string]bool{}
	for _, m := range metrics {
		if m.CUPEDLookback() <= 0 || seen[m.Key] {
			continue
		}
		seen[m.Key] = true
		covariate := func(variant string) (stats.Kind, stats.Arm, bool) {
			a, ok := cells[cellKey{variant, m.Key, "", ""}]
			p := pres[cellKey{variant, m.Key, "", ""}]
			if m.Kind == stats.Ratio {
				return stats.Ratio, stats.Arm{N: a.N, Sum: p.Sum, SumSquares: p.SumSquares, DenSum: p.DenSum, DenSumSquares: p.DenSumSquares, SumProducts: p.SumProducts}, ok
			}
			return stats.Mean, stats.Arm{N: a.N, Sum: p.Sum, SumSquares: p.SumSquares}, ok
		}
		kind, ctl, ok := covariate(exp.Control)
		if !ok {
			continue
		}
		for _, v := range exp.Variants {
			if v.Key == exp.Control {
				continue
			}
			_, trt, ok := covariate(v.Key)
			if !ok {
				continue
			}
			// No covariate anywhere (nothing before exposure) fails
			// with ErrNoVariance or ErrInvalid: nothing to report.
			r, err := stats.Compare(kind, ctl, trt, stats.Options{Alpha: exp.Alpha})
			if err != nil || r.PValue >= readout.ImbalanceP {
				continue
			}
			out = append(out, readout.Imbalance{Variant: v.Key, Metric: m.Key,
				ControlMean: r.Control.Mean, TreatmentMean: r.Treatment.Mean, PValue: r.PValue})
		}
	}
	return out
}

// RunningKey names a comparison in the running record: variant, metric,
// segment dimension and value ("" overall). Keys cannot contain "|", so
// the value, last, may.
func RunningKey(variant, metric, dimension, value string) string {
	return variant + "|" + metric + "|" + dimension + "|" + value
}

// enoughUnits reports whether every variant of weight > 0 has min_units.
func enoughUnits(exp config.Experiment, units map[string]uint64) bool {
	need := exp.MinUnits
	if need <= 0 {
		need = config.DefaultMinUnits
	}
	for _, v := range exp.Variants {
		if v.Weight > 0 && units[v.Key] < uint64(need) {
			return false
		}
	}
	return true
}

type cellKey struct{ variant, metric, dimension, value string }

func sortedSet(m map[string]bool) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

// referenced returns the definitions of every metric exp names.
func referenced(exp config.Experiment, metrics map[string]config.Metric) []config.Metric {
	seen := map[string]bool{}
	var out []config.Metric
	add := func(key string) {
		if m, ok := metrics[key]; ok && !seen[key] {
			seen[key] = true
			out = append(out, m)
		}
	}
	for _, k := range exp.Primary {
		add(k)
	}
	for _, k := range exp.Secondary {
		add(k)
	}
	for _, g := range exp.Guardrails {
		add(g.Metric)
	}
	return out
}
