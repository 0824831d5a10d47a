package rules

import (
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
// caller to stamp.
func Evaluate(exp config.Experiment, metrics map[string]config.Metric, st warehouse.ExperimentStats, now time.Time) readout.Readout {
	cells := make(map[cellKey]stats.Arm, len(st.Cells))
	values := map[string]map[string]bool{} // dimension → values seen
	for _, c := range st.Cells {
		cells[cellKey{c.Variant, c.Metric, c.Dimension, c.Value}] = c.Arm
		if c.Dimension != "" {
			if values[c.Dimension] == nil {
				values[c.Dimension] = map[string]bool{}
			}
			values[c.Dimension][c.Value] = true
		}
	}
	opt := stats.Options{Alpha: exp.Alpha, Sequential: exp.Sequential, Tuning: exp.Tuning}
	if opt.Tuning == 0 {
		opt.Tuning = stats.DefaultTuning
	}
	compare := func(m config.Metric, variant, dim, value string) (decide.Comparison, bool) {
		ctl, okC := cells[cellKey{exp.Control, m.Key, dim, value}]
		trt, okT := cells[cellKey{variant, m.Key, dim, value}]
		if !okC || !okT {
			return decide.Comparison{}, false
		}
		r, err := stats.Compare(m.Kind, ctl, trt, opt)
		return decide.Comparison{Metric: m, Result: r, Err: err}, true
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
	}
	if in.DataThrough.IsZero() {
		in.DataThrough = exp.Start
	}
	for v, n := range st.Units {
		in.Units[v] = int64(n)
	}
	for _, v := range exp.Variants {
		if v.Key == exp.Control {
			continue
		}
		arm := decide.Arm{Variant: v.Key}
		for _, m := range all {
			if c, ok := compare(m, v.Key, "", ""); ok {
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
	return decide.Verdict(in)
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
