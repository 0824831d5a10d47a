package rules_test

import (
	"encoding/json"
	"fmt"
	"math"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/verdictlabs/verdict/pkg/config"
	"github.com/verdictlabs/verdict/pkg/readout"
	"github.com/verdictlabs/verdict/pkg/rules"
	"github.com/verdictlabs/verdict/pkg/stats"
	"github.com/verdictlabs/verdict/pkg/warehouse"
)

var (
	evStart = time.Date(2026, 11, 1, 0, 0, 0, 0, time.UTC)
	evEnd   = time.Date(2026, 11, 15, 0, 0, 0, 0, time.UTC)
	evNow   = time.Date(2026, 11, 16, 0, 0, 0, 0, time.UTC) // after the end

	evConv = config.Metric{Key: "conv", Kind: stats.Proportion, Event: "purchase", Direction: config.Increase}
	evRev  = config.Metric{Key: "rev", Kind: stats.Mean, Event: "purchase", Aggregate: config.Sum, Direction: config.Increase}
	evLoad = config.Metric{Key: "load", Kind: stats.Ratio, Direction: config.Decrease,
		Numerator: &config.Part{Event: "page_load", Aggregate: config.Sum}, Denominator: &config.Part{Event: "page_load", Aggregate: config.Count}}
	evMetrics = map[string]config.Metric{evConv.Key: evConv, evRev.Key: evRev, evLoad.Key: evLoad}
)

// evExperiment has its control in the middle, so that arms must follow the
// definition's order without it.
func evExperiment() config.Experiment {
	end := evEnd
	return config.Experiment{
		Key:        "exp",
		Variants:   []config.Variant{{Key: "b", Weight: 0.25}, {Key: "control", Weight: 0.5}, {Key: "c", Weight: 0.25}},
		Control:    "control",
		Primary:    []string{evConv.Key},
		Secondary:  []string{evRev.Key},
		Guardrails: []config.Guardrail{{Metric: evLoad.Key, Margin: 0.05}},
		Segments:   []string{"platform"},
		MDE:        0.1, Alpha: 0.05, Power: 0.8, Sequential: true, Tuning: 5000,
		AttributionWindow: config.Duration(7 * 24 * time.Hour),
		Start:             evStart,
		End:               &end,
	}
}

// propArm is n units of which k converted.
func propArm(n, k float64) stats.Arm { return stats.Arm{N: n, Sum: k, SumSquares: k} }

// meanArm is n units with that mean and sample standard deviation.
func meanArm(n, mean, sd float64) stats.Arm {
	return stats.Arm{N: n, Sum: n * mean, SumSquares: (n-1)*sd*sd + n*mean*mean}
}

// ratioArm is n units whose numerators and denominators have those means
// and standard deviations, and correlation rho.
func ratioArm(n, mx, my, sx, sy, rho float64) stats.Arm {
	return stats.Arm{
		N: n, Sum: n * mx, SumSquares: (n-1)*sx*sx + n*mx*mx,
		DenSum: n * my, DenSumSquares: (n-1)*sy*sy + n*my*my,
		SumProducts: (n-1)*rho*sx*sy + n*mx*my,
	}
}

// flatStats is every variant flat on every metric, overall and in two
// platforms, with distinct numbers per variant so a cell read for the
// wrong one shows.
func flatStats() warehouse.ExperimentStats {
	st := warehouse.ExperimentStats{
		Units:        map[string]uint64{"b": 500, "control": 1000, "c": 501},
		MultiExposed: 7,
		DataThrough:  evNow.Add(-time.Hour),
	}
	add := func(variant, metric, dim, value string, a stats.Arm) {
		st.Cells = append(st.Cells, warehouse.Cell{Variant: variant, Metric: metric, Dimension: dim, Value: value, Arm: a})
	}
	for i, v := range []string{"control", "b", "c"} {
		n := float64(st.Units[v])
		d := float64(i) // a small, distinct offset per variant
		add(v, "conv", "", "", propArm(n, math.Round(n*0.1)+d))
		add(v, "rev", "", "", meanArm(n, 10+d/100, 20))
		add(v, "load", "", "", ratioArm(n, 800+d, 2, 300, 1, 0.5))
		for _, p := range []string{"ios", "web"} {
			add(v, "conv", "platform", p, propArm(n/2, math.Round(n*0.05)))
			add(v, "rev", "platform", p, meanArm(n/2, 10, 20))
			add(v, "load", "platform", p, ratioArm(n/2, 800, 2, 300, 1, 0.5))
		}
	}
	return st
}

// set replaces (or adds) one cell.
func set(st *warehouse.ExperimentStats, variant, metric, dim, value string, a stats.Arm) {
	for i, c := range st.Cells {
		if c.Variant == variant && c.Metric == metric && c.Dimension == dim && c.Value == value {
			st.Cells[i].Arm = a
			return
		}
	}
	st.Cells = append(st.Cells, warehouse.Cell{Variant: variant, Metric: metric, Dimension: dim, Value: value, Arm: a})
}

// drop removes one cell.
func drop(st *warehouse.ExperimentStats, variant, metric string) {
	for i, c := range st.Cells {
		if c.Variant == variant && c.Metric == metric && c.Dimension == "" {
			st.Cells = append(st.Cells[:i], st.Cells[i+1:]...)
			return
		}
	}
}

// TestEvaluateWiring checks that every treatment is compared with the
// control on every metric of the experiment, each side from its own cell,
// with the experiment's options; and that counts and times reach the
// readout.
func TestEvaluateWiring(t *testing.T) {
	tests := []struct {
		name string
		edit func(*config.Experiment)
		opt  stats.Options // what Compare must have been called with
	}{
		{"sequential", func(*config.Experiment) {}, stats.Options{Alpha: 0.05, Sequential: true, Tuning: 5000}},
		{"tuning left out is 5000", func(e *config.Experiment) { e.Tuning = 0 }, stats.Options{Alpha: 0.05, Sequential: true, Tuning: 5000}},
		{"tuning 800", func(e *config.Experiment) { e.Tuning = 800 }, stats.Options{Alpha: 0.05, Sequential: true, Tuning: 800}},
		{"fixed horizon, alpha 0.01", func(e *config.Experiment) { e.Sequential, e.Alpha = false, 0.01 }, stats.Options{Alpha: 0.01}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			exp := evExperiment()
			tt.edit(&exp)
			st := flatStats()
			ro, _ := rules.Evaluate(exp, evMetrics, st, evNow, nil)

			if got := []string{ro.Arms[0].Variant, ro.Arms[1].Variant}; len(ro.Arms) != 2 || !cmp.Equal(got, []string{"b", "c"}) {
				t.Fatalf("arms %v, want b and c", got)
			}
			roles := map[string]readout.Role{"conv": readout.Primary, "rev": readout.Secondary, "load": readout.Guardrail}
			for _, arm := range ro.Arms {
				if len(arm.Metrics) != 3 || len(arm.Unavailable) != 0 {
					t.Errorf("arm %s: metrics %d, unavailable %+v; want 3 and none", arm.Variant, len(arm.Metrics), arm.Unavailable)
				}
				for _, m := range arm.Metrics {
					ctl, _ := st.Cell("control", m.Metric, "", "")
					trt, _ := st.Cell(arm.Variant, m.Metric, "", "")
					want, err := stats.Compare(evMetrics[m.Metric].Kind, ctl, trt, tt.opt)
					if err != nil {
						t.Fatal(err)
					}
					got := readout.Metric{Control: m.Control, Treatment: m.Treatment, AbsEffect: m.AbsEffect, CI: m.CI, PValue: m.PValue}
					exact := readout.Metric{
						Control:   readout.Estimate{N: want.Control.N, Mean: want.Control.Mean},
						Treatment: readout.Estimate{N: want.Treatment.N, Mean: want.Treatment.Mean},
						AbsEffect: want.AbsEffect, CI: readout.Interval{want.AbsCI.Lo, want.AbsCI.Hi}, PValue: want.PValue,
					}
					if diff := cmp.Diff(exact, got); diff != "" {
						t.Errorf("arm %s, %s: (-Compare(control cell, %s cell, %+v) +readout):\n%s", arm.Variant, m.Metric, arm.Variant, tt.opt, diff)
					}
					if m.RelEffect == nil || *m.RelEffect != want.RelEffect || m.RelCI == nil || *m.RelCI != (readout.Interval{want.RelCI.Lo, want.RelCI.Hi}) {
						t.Errorf("arm %s, %s: rel_effect %v, rel_ci %v; want %v, %v", arm.Variant, m.Metric, m.RelEffect, m.RelCI, want.RelEffect, want.RelCI)
					}
					if m.Role != roles[m.Metric] {
						t.Errorf("arm %s, %s: role %s, want %s", arm.Variant, m.Metric, m.Role, roles[m.Metric])
					}
				}
			}

			wantCounts := []readout.VariantCount{
				{Variant: "b", Units: 500, Weight: 0.25, ExpectedShare: 0.25, ObservedShare: 500.0 / 2001},
				{Variant: "control", Units: 1000, Weight: 0.5, ExpectedShare: 0.5, ObservedShare: 1000.0 / 2001},
				{Variant: "c", Units: 501, Weight: 0.25, ExpectedShare: 0.25, ObservedShare: 501.0 / 2001},
			}
			if diff := cmp.Diff(wantCounts, ro.Health.Counts); diff != "" {
				t.Errorf("health.counts (-want +got):\n%s", diff)
			}
			if ro.Health.MultipleExposureCount != 7 || ro.Health.MultipleExposureRate != 7.0/2008 {
				t.Errorf("multiple exposures %d, rate %v; want 7, %v", ro.Health.MultipleExposureCount, ro.Health.MultipleExposureRate, 7.0/2008)
			}
			if ro.Progress.Units != 2001 || !ro.DataThrough.Equal(st.DataThrough) || ro.Experiment != "exp" {
				t.Errorf("progress.units %d, data_through %v, experiment %q; want 2001, %v, exp", ro.Progress.Units, ro.DataThrough, ro.Experiment, st.DataThrough)
			}
			if ro.Version != 0 || !ro.ComputedAt.IsZero() {
				t.Errorf("version %d, computed_at %v: Evaluate leaves them to the caller", ro.Version, ro.ComputedAt)
			}
		})
	}
}

// TestEvaluateUnavailable checks that a metric without both cells, or
// whose cells Compare refuses, is listed as unavailable, not compared.
func TestEvaluateUnavailable(t *testing.T) {
	tests := []struct {
		name string
		edit func(*warehouse.ExperimentStats)
		want map[string][]readout.Unavailable // by arm
	}{
		{
			name: "no treatment cell",
			edit: func(st *warehouse.ExperimentStats) { drop(st, "b", "rev") },
			want: map[string][]readout.Unavailable{"b": {{Metric: "rev", Role: readout.Secondary, Reason: "no data was computed for it"}}},
		},
		{
			name: "no control cell: every arm",
			edit: func(st *warehouse.ExperimentStats) { drop(st, "control", "load") },
			want: map[string][]readout.Unavailable{
				"b": {{Metric: "load", Role: readout.Guardrail, Reason: "no data was computed for it"}},
				"c": {{Metric: "load", Role: readout.Guardrail, Reason: "no data was computed for it"}},
			},
		},
		{
			name: "one unit",
			edit: func(st *warehouse.ExperimentStats) { set(st, "c", "conv", "", "", propArm(1, 1)) },
			want: map[string][]readout.Unavailable{"c": {{Metric: "conv", Role: readout.Primary, Reason: "n = 1"}}},
		},
		{
			name: "no variance",
			edit: func(st *warehouse.ExperimentStats) {
				set(st, "control", "rev", "", "", meanArm(1000, 0, 0))
				set(st, "b", "rev", "", "", meanArm(500, 0, 0))
			},
			want: map[string][]readout.Unavailable{"b": {{Metric: "rev", Role: readout.Secondary, Reason: "every unit has the same value so far"}}},
		},
		{
			name: "no cells at all",
			edit: func(st *warehouse.ExperimentStats) { st.Cells = nil },
			want: map[string][]readout.Unavailable{
				"b": {{Metric: "conv", Role: readout.Primary, Reason: "no data"}, {Metric: "rev", Role: readout.Secondary, Reason: "no data"}, {Metric: "load", Role: readout.Guardrail, Reason: "no data"}},
				"c": {{Metric: "conv", Role: readout.Primary, Reason: "no data"}, {Metric: "rev", Role: readout.Secondary, Reason: "no data"}, {Metric: "load", Role: readout.Guardrail, Reason: "no data"}},
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			st := flatStats()
			tt.edit(&st)
			ro, _ := rules.Evaluate(evExperiment(), evMetrics, st, evNow, nil)
			for _, arm := range ro.Arms {
				want := tt.want[arm.Variant]
				if len(arm.Unavailable) != len(want) {
					t.Errorf("arm %s: unavailable %+v, want %+v", arm.Variant, arm.Unavailable, want)
					continue
				}
				for i, u := range arm.Unavailable {
					if u.Metric != want[i].Metric || u.Role != want[i].Role || !strings.Contains(u.Reason, want[i].Reason) {
						t.Errorf("arm %s: unavailable[%d] = %+v, want %s %s, reason containing %q", arm.Variant, i, u, want[i].Role, want[i].Metric, want[i].Reason)
					}
				}
				if n := len(arm.Metrics) + len(arm.Unavailable); n != 3 {
					t.Errorf("arm %s: %d metrics and unavailable, want 3", arm.Variant, n)
				}
			}
		})
	}
}

// TestEvaluateSegments checks which segment cells reach the decision: the
// primary and guardrail metrics in the experiment's segment dimensions.
// The experiment ended flat overall, so a segment where the primary won
// (with no guardrail harm there) is salvaged, and nothing else is.
func TestEvaluateSegments(t *testing.T) {
	win := func(st *warehouse.ExperimentStats, dim, value string) {
		set(st, "control", "conv", dim, value, propArm(250, 25))
		set(st, "b", "conv", dim, value, propArm(250, 100))
	}
	tests := []struct {
		name    string
		edit    func(*warehouse.ExperimentStats)
		label   readout.Label
		salvage []string // "variant dimension=value"
	}{
		{"flat everywhere", func(*warehouse.ExperimentStats) {}, readout.Pivot, nil},
		{"primary wins on ios", func(st *warehouse.ExperimentStats) { win(st, "platform", "ios") }, readout.Salvage, []string{"b platform=ios"}},
		{"and a value only the treatment has", func(st *warehouse.ExperimentStats) {
			win(st, "platform", "ios")
			set(st, "b", "conv", "platform", "tv", propArm(250, 250))
		}, readout.Salvage, []string{"b platform=ios"}},
		{"primary wins on ios, guardrail harmed there", func(st *warehouse.ExperimentStats) {
			win(st, "platform", "ios")
			set(st, "control", "load", "platform", "ios", ratioArm(250, 800, 2, 100, 1, 0.5))
			set(st, "b", "load", "platform", "ios", ratioArm(250, 1200, 2, 100, 1, 0.5))
		}, readout.Pivot, nil},
		{"primary wins in a dimension the experiment does not segment by", func(st *warehouse.ExperimentStats) { win(st, "country", "de") }, readout.Pivot, nil},
		{"secondary wins on ios", func(st *warehouse.ExperimentStats) {
			set(st, "control", "rev", "platform", "ios", meanArm(500, 10, 5))
			set(st, "b", "rev", "platform", "ios", meanArm(500, 30, 5))
		}, readout.Pivot, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			st := flatStats()
			tt.edit(&st)
			ro, _ := rules.Evaluate(evExperiment(), evMetrics, st, evNow, nil)
			var salvage []string
			for _, it := range ro.Salvage {
				salvage = append(salvage, it.Variant+" "+it.Dimension+"="+it.Value)
			}
			if ro.Label != tt.label || !cmp.Equal(salvage, tt.salvage) {
				t.Errorf("label %q, salvage %v; want %q, %v (summary: %s)", ro.Label, salvage, tt.label, tt.salvage, ro.Summary)
			}
			for _, it := range ro.Salvage {
				ctl, _ := st.Cell("control", it.Metric, it.Dimension, it.Value)
				trt, _ := st.Cell(it.Variant, it.Metric, it.Dimension, it.Value)
				want, err := stats.Compare(stats.Proportion, ctl, trt, stats.DefaultOptions())
				if err != nil {
					t.Fatal(err)
				}
				if it.AbsEffect != want.AbsEffect || it.PValue != want.PValue || it.CI != (readout.Interval{want.AbsCI.Lo, want.AbsCI.Hi}) {
					t.Errorf("salvage %s %s=%s: effect %v, ci %v, p %v; want the segment's cells: %v, %v, %v",
						it.Variant, it.Dimension, it.Value, it.AbsEffect, it.CI, it.PValue, want.AbsEffect, want.AbsCI, want.PValue)
				}
			}
		})
	}
}

// TestEvaluateDataThrough checks that a readout without data is dated from
// the experiment's start.
func TestEvaluateDataThrough(t *testing.T) {
	exp := evExperiment()
	ro, _ := rules.Evaluate(exp, evMetrics, warehouse.ExperimentStats{Units: map[string]uint64{"b": 0, "control": 0, "c": 0}}, evStart.Add(time.Hour), nil)
	if !ro.DataThrough.Equal(exp.Start) || ro.Status != readout.Collecting || ro.Progress.Units != 0 {
		t.Errorf("data_through %v, status %s, units %d; want %v, collecting, 0", ro.DataThrough, ro.Status, ro.Progress.Units, exp.Start)
	}
}

// TestEvaluateManySegmentValues: 3,001 values of one dimension (what a
// made-up or a real high-cardinality attribute gives) are tested as the 20
// with the most units and one "(other)"; the readout says how many were
// grouped, the running record stays that small (and drops what an earlier
// look kept for values grouped since), and "(other)" winning everywhere
// salvages nothing, while a top value's win still does.
func TestEvaluateManySegmentValues(t *testing.T) {
	many := func(otherWins bool) warehouse.ExperimentStats {
		st := flatStats()
		for i := range 3000 {
			value := fmt.Sprintf("p%04d", i)
			conv := 1.0
			if otherWins {
				conv = 4
			}
			set(&st, "control", "conv", "platform", value, propArm(8, 1))
			set(&st, "b", "conv", "platform", value, propArm(4, conv))
			set(&st, "c", "conv", "platform", value, propArm(4, 1))
		}
		return st
	}
	// A record an earlier look kept for values grouped now.
	before := map[string]stats.Running{}
	for i := 1000; i < 3000; i++ {
		before[rules.RunningKey("b", "conv", "platform", fmt.Sprintf("p%04d", i))] = stats.Running{}
	}

	st := many(false)
	set(&st, "control", "conv", "platform", "ios", propArm(250, 25))
	set(&st, "b", "conv", "platform", "ios", propArm(250, 100))
	ro, running := rules.Evaluate(evExperiment(), evMetrics, st, evNow, before)
	// 3,000, and ios and web of flatStats.
	if got := ro.Health.SegmentValuesGrouped["platform"]; got != 3002-rules.MaxSegmentValues {
		t.Errorf("segment_values_grouped[platform] = %d, want %d", got, 3002-rules.MaxSegmentValues)
	}
	var salvage []string
	for _, it := range ro.Salvage {
		salvage = append(salvage, it.Variant+" "+it.Dimension+"="+it.Value)
	}
	if ro.Label != readout.Salvage || !cmp.Equal(salvage, []string{"b platform=ios"}) {
		t.Errorf("label %q, salvage %v; want salvage of b platform=ios", ro.Label, salvage)
	}
	segmentKeys := 0
	for k := range running {
		if strings.Contains(k, "|platform|") {
			segmentKeys++
		}
		if strings.Contains(k, readout.OtherSegment) {
			t.Errorf("running record for %s: the group changes members, it is never narrowed", k)
		}
	}
	// At most the 20 kept values × 2 treatments × 2 segmented metrics.
	if segmentKeys > rules.MaxSegmentValues*2*2 {
		t.Errorf("%d segment cells in the running record, want at most %d", segmentKeys, rules.MaxSegmentValues*2*2)
	}
	if b, _ := json.Marshal(running); len(b) > 64<<10 {
		t.Errorf("running record of %d bytes", len(b))
	}

	// "(other)" is every grouped value's units together.
	ro, _ = rules.Evaluate(evExperiment(), evMetrics, many(true), evNow, nil)
	if ro.Label == readout.Salvage {
		t.Errorf("label salvage (%v) from the grouped values: \"(other)\" names no segment to keep", ro.Salvage)
	}
}

// TestGroupSegmentsSums: the "(other)" cells are the sums of the grouped
// values' cells (CUPED's sums add up the same way).
func TestGroupSegmentsSums(t *testing.T) {
	st := warehouse.ExperimentStats{}
	var want stats.Arm
	for i := range 30 {
		a := stats.Arm{N: float64(100 - i), Sum: float64(i), SumSquares: float64(2 * i)}
		set(&st, "control", "conv", "platform", fmt.Sprintf("v%02d", i), a)
		if i >= rules.MaxSegmentValues {
			want.N, want.Sum, want.SumSquares = want.N+a.N, want.Sum+a.Sum, want.SumSquares+a.SumSquares
		}
	}
	got := rules.GroupSegments(st)
	arm, ok := got.Cell("control", "conv", "platform", readout.OtherSegment)
	if !ok || arm != want {
		t.Errorf("(other) = %+v (found %v), want %+v", arm, ok, want)
	}
	if _, ok := got.Cell("control", "conv", "platform", "v19"); !ok {
		t.Error("v19, the 20th largest, was grouped")
	}
	if _, ok := got.Cell("control", "conv", "platform", "v20"); ok {
		t.Error("v20, the 21st largest, was kept")
	}
}

// TestEvaluateBayesian: under engine bayesian every metric's effects and
// intervals are the posterior's (stats.Bayes on the fixed-horizon moments,
// with the experiment's prior, inverse for a decrease metric), the readout
// carries chance_to_win and risk, and a clear win on the primary with the
// guardrail held is a persevere.
func TestEvaluateBayesian(t *testing.T) {
	exp := evExperiment()
	exp.Engine = config.EngineBayesian
	exp.Prior = &config.Prior{Mean: 0, Variance: 0.04, Proper: true}
	st := flatStats()
	// b converts at 18% against control's 10%: a clear win even after the
	// prior (sd 20%) shrinks it.
	set(&st, "b", "conv", "", "", propArm(500, 90))
	ro, _ := rules.Evaluate(exp, evMetrics, st, evNow, nil)
	if err := ro.Validate(); err != nil {
		t.Fatalf("readout does not validate: %v", err)
	}
	for _, arm := range ro.Arms {
		for _, m := range arm.Metrics {
			ctl, _ := st.Cell("control", m.Metric, "", "")
			trt, _ := st.Cell(arm.Variant, m.Metric, "", "")
			kind := evMetrics[m.Metric].Kind
			ce, _ := stats.Summarize(kind, ctl)
			te, _ := stats.Summarize(kind, trt)
			want, err := stats.Bayes(ce, te, ce.Mean, stats.BayesOptions{Alpha: 0.05, Prior: stats.Prior{Variance: 0.04, Proper: true},
				Inverse: evMetrics[m.Metric].Direction == config.Decrease})
			if err != nil {
				t.Fatal(err)
			}
			if m.AbsEffect != want.Abs.Mean || m.CI != (readout.Interval{want.Abs.CI.Lo, want.Abs.CI.Hi}) ||
				*m.RelEffect != want.Rel.Mean || *m.RelCI != (readout.Interval{want.Rel.CI.Lo, want.Rel.CI.Hi}) {
				t.Errorf("arm %s, %s: effect %v %v rel %v %v; want the posterior's %+v", arm.Variant, m.Metric, m.AbsEffect, m.CI, *m.RelEffect, *m.RelCI, want)
			}
			if m.ChanceToWin == nil || *m.ChanceToWin != want.Rel.ChanceToWin || m.Risk == nil || *m.Risk != want.Rel.Risk {
				t.Errorf("arm %s, %s: chance_to_win %v, risk %v; want %v, %v", arm.Variant, m.Metric, m.ChanceToWin, m.Risk, want.Rel.ChanceToWin, want.Rel.Risk)
			}
		}
	}
	if got := ro.Arms[0].Label; got != readout.Persevere {
		t.Errorf("arm b: label %q, want persevere (chance to win %v)\n%s", got, *ro.Arms[0].Metrics[0].ChanceToWin, strings.Join(ro.Arms[0].Reasons, "\n"))
	}

	// The frequentist readout of the same data carries no posterior.
	exp.Engine, exp.Prior = "", nil
	ro, _ = rules.Evaluate(exp, evMetrics, st, evNow, nil)
	if m := ro.Arms[0].Metrics[0]; m.ChanceToWin != nil || m.Risk != nil {
		t.Errorf("frequentist readout has chance_to_win %v, risk %v", m.ChanceToWin, m.Risk)
	}
}

// setPre gives one overall cell a CUPED covariate: n units whose
// pre-exposure values have that mean and standard deviation.
func setPre(st *warehouse.ExperimentStats, variant, metric string, mean, sd float64) {
	for i, c := range st.Cells {
		if c.Variant == variant && c.Metric == metric && c.Dimension == "" {
			n := c.Arm.N
			st.Cells[i].Pre = stats.Pre{Sum: n * mean, SumSquares: (n-1)*sd*sd + n*mean*mean}
		}
	}
}

// TestEvaluateImbalance: a treatment whose units already spent more before
// exposure is reported in health.pre_exposure_imbalance (and shown as a
// failed health check); arms alike before exposure are not.
func TestEvaluateImbalance(t *testing.T) {
	exp := evExperiment()
	st := flatStats()
	setPre(&st, "control", "rev", 10, 20)
	setPre(&st, "b", "rev", 10.3, 20) // within noise: z ≈ 0.27
	setPre(&st, "c", "rev", 16, 20)   // z ≈ 5.5: p ≈ 1e-7
	ro, _ := rules.Evaluate(exp, evMetrics, st, evNow, nil)
	if err := ro.Validate(); err != nil {
		t.Fatalf("readout does not validate: %v", err)
	}
	got := ro.Health.PreExposureImbalance
	if len(got) != 1 || got[0].Variant != "c" || got[0].Metric != "rev" || got[0].ControlMean != 10 || got[0].TreatmentMean != 16 || !(got[0].PValue < 1e-5) {
		t.Fatalf("pre_exposure_imbalance = %+v, want c on rev, 10 against 16, p < 1e-5", got)
	}
	// The same test, by hand: Welch's t on the covariate (fixed horizon).
	want, _ := stats.Compare(stats.Mean, stats.Arm{N: 1000, Sum: 10000, SumSquares: 999*400 + 1000*100},
		stats.Arm{N: 501, Sum: 501 * 16, SumSquares: 500*400 + 501*256}, stats.Options{Alpha: 0.05})
	if math.Abs(got[0].PValue-want.PValue) > 1e-12*want.PValue {
		t.Errorf("p_value %g, want %g", got[0].PValue, want.PValue)
	}
	b, _ := json.Marshal(ro.Health)
	if !strings.Contains(string(b), `"pre_exposure_imbalance":[{"variant":"c","metric":"rev"`) {
		t.Errorf("health JSON %s", b)
	}
	// Without covariates (no pre-exposure events anywhere) nothing is reported.
	ro, _ = rules.Evaluate(exp, evMetrics, flatStats(), evNow, nil)
	if ro.Health.PreExposureImbalance != nil {
		t.Errorf("no covariates: %+v", ro.Health.PreExposureImbalance)
	}
}
