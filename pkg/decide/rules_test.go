package decide

import (
	"errors"
	"math"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/verdictlabs/verdict/pkg/config"
	"github.com/verdictlabs/verdict/pkg/readout"
	"github.com/verdictlabs/verdict/pkg/stats"
)

// TestGuardrails checks the guardrail definitions with literal values: a 5%
// margin on a control mean of 800 (or −800) is 40 in the metric's units.
func TestGuardrails(t *testing.T) {
	inc := config.Metric{Key: "retention", Kind: stats.Proportion}
	dec := load
	type flags struct {
		Outcome           readout.Outcome
		NonInferior, Harm bool
	}
	tests := []struct {
		name   string
		metric config.Metric
		c      float64
		lo, hi float64
		want   flags
	}{
		{"decrease: inside the margin", dec, 800, -10, 20, flags{readout.Inconclusive, true, false}},
		{"decrease: CI ends exactly on +A", dec, 800, -10, 40, flags{readout.Inconclusive, false, false}},
		{"decrease: CI straddles +A", dec, 800, 10, 60, flags{readout.Worse, false, false}},
		{"decrease: CI starts exactly on +A", dec, 800, 40, 90, flags{readout.Worse, false, false}},
		{"decrease: beyond +A", dec, 800, 41, 90, flags{readout.Worse, false, true}},
		{"decrease: better", dec, 800, -60, -20, flags{readout.Better, true, false}},
		{"increase: inside the margin", inc, 800, -20, 10, flags{readout.Inconclusive, true, false}},
		{"increase: CI starts exactly on −A", inc, 800, -40, 10, flags{readout.Inconclusive, false, false}},
		{"increase: CI ends exactly on −A", inc, 800, -90, -40, flags{readout.Worse, false, false}},
		{"increase: beyond −A", inc, 800, -90, -41, flags{readout.Worse, false, true}},
		{"increase: negative control mean uses |c|", inc, -800, -90, -41, flags{readout.Worse, false, true}},
		{"zero control mean: margin 0", inc, 0, -1, -0.5, flags{readout.Worse, false, true}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := stats.Result{
				Control:   stats.Estimate{N: 1000, Mean: tt.c, Var: 1},
				Treatment: stats.Estimate{N: 1000, Mean: tt.c + (tt.lo+tt.hi)/2, Var: 1},
				AbsEffect: (tt.lo + tt.hi) / 2, AbsCI: stats.Interval{Lo: tt.lo, Hi: tt.hi}, SE: 1, PValue: 0.5,
			}
			m := read(Comparison{Metric: tt.metric, Result: r}, role{role: readout.Guardrail, margin: 0.05})
			got := m.out()
			if diff := cmp.Diff(tt.want, flags{got.Outcome, *got.NonInferior, *got.BeyondMargin}); diff != "" {
				t.Errorf("guardrail CI [%g, %g] on control %g (-want +got):\n%s", tt.lo, tt.hi, tt.c, diff)
			}
			if want := 0.05 * math.Abs(tt.c); *got.AbsMargin != want || *got.Margin != 0.05 {
				t.Errorf("margins = %g, %g, want 0.05, %g", *got.Margin, *got.AbsMargin, want)
			}
		})
	}
}

// TestMetricOut checks one metric's mapping into the readout field by field.
func TestMetricOut(t *testing.T) {
	c := convWin
	got := read(c, role{role: readout.Primary}).out()
	tm, cm := 0.11, 0.1 // variables: float64 arithmetic, as at run time
	want := readout.Metric{
		Metric: "purchase_conversion", Role: readout.Primary, Kind: "proportion", Direction: "increase",
		Control: readout.Estimate{N: 20000, Mean: 0.1}, Treatment: readout.Estimate{N: 20000, Mean: 0.11},
		AbsEffect: tm - cm, RelEffect: ptr2((tm - cm) / math.Abs(cm)), CI: readout.Interval{0.004, 0.016},
		RelCI: &readout.Interval{0.004 / 0.1, 0.016 / 0.1}, PValue: 0.0001, Significant: true, Outcome: readout.Better,
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("out() mismatch (-want +got):\n%s", diff)
	}
}

func TestFormat(t *testing.T) {
	tests := []struct{ got, want string }{
		{readout.Percent(0.042), "+4.2%"},
		{readout.Percent(-0.021), "-2.1%"},
		{readout.Percent(0.1), "+10%"},
		{readout.Percent(0.008), "+0.8%"},
		{readout.Percent(0.0083), "+0.83%"},
		{readout.Percent(-0.00051), "-0.051%"},
		{readout.Percent(0), "0%"},
		{readout.Percent(1e-12), "0%"}, // below a millionth of a percent
		{readout.Share(0.5), "50%"},
		{readout.Share(1.0 / 3), "33.3%"},
		{readout.Share(0.602), "60.2%"},
		{readout.Number(0.0123, true), "+0.0123"},
		{readout.Number(-1234.56, true), "-1235"},
		{readout.Number(2.5e7, true), "+2.5e+07"},
		{readout.Number(0.5, false), "0.5"},
		{readout.Number(0, true), "0"},
		{readout.Count(31204), "31,204"},
		{readout.Count(999), "999"},
		{readout.Count(1234567), "1,234,567"},
		{readout.PValue(0.0004), "p < 0.001"},
		{readout.PValue(0.0042), "p = 0.0042"},
		{readout.PValue(0.35), "p = 0.35"},
		{readout.PValue(0.997), "p = 1"},
		{readout.Date(time.Date(2026, 11, 20, 23, 0, 0, 0, time.FixedZone("x", -3600))), "21 Nov 2026"},
		{readout.Time(time.Date(2026, 11, 20, 23, 5, 9, 0, time.FixedZone("x", -3600))), "21 Nov 2026 00:05 UTC"},
		{join([]string{"a", "b", "c"}), "a, b and c"},
	}
	for i, tt := range tests {
		if tt.got != tt.want {
			t.Errorf("case %d = %q, want %q", i, tt.got, tt.want)
		}
	}
}

// TestHostileInput feeds Verdict input no service should send and checks
// that the readout is still valid and honest.
func TestHostileInput(t *testing.T) {
	s := compileSchema(t)
	nan := math.NaN()
	tests := []struct {
		name   string
		in     Input
		status readout.Status
	}{
		{"zero input", Input{}, readout.Collecting},
		{"no arms", input(), readout.Collecting},
		{"NaN result", input(treat("one-page", convR(nan, nan, nan, nan), revFlat, loadOK)), readout.Collecting},
		{"infinite CI", input(treat("one-page", convR(0.11, math.Inf(-1), math.Inf(1), 0.5), revFlat, loadOK)), readout.Collecting},
		{"p-value above 1", input(treat("one-page", convR(0.11, 0.004, 0.016, 7), revFlat, loadOK)), readout.Collecting},
		{"upside-down CI", input(treat("one-page", convR(0.11, 0.016, 0.004, 0.01), revFlat, loadOK)), readout.Collecting},
		{"negative units", func() Input {
			in := input(treat("one-page", convWin, revFlat, loadOK))
			in.Units = map[string]int64{"control": -5, "one-page": -1}
			in.MultiExposed = -3
			return in
		}(), readout.Collecting}, // counted as 0 units: below min_units
		{"nonsense options", func() Input {
			in := input(treat("one-page", convWide, revFlat, loadOK))
			in.Experiment.Alpha, in.Experiment.Power, in.Experiment.MDE, in.Experiment.Tuning = 7, nan, math.Inf(1), -1
			in.Experiment.Guardrails[0].Margin = nan
			in.Experiment.Variants[0].Weight = nan
			return in
		}(), readout.Collecting},
		{"unknown and duplicate metrics", input(treat("one-page", convWin, convWorse, revFlat, loadOK,
			Comparison{Metric: config.Metric{Key: "other"}, Result: convWin.Result})), readout.Decided},
		{"error wraps", input(treat("one-page", Comparison{Metric: conv, Err: errors.New("query timed out")}, revFlat, loadOK)), readout.Collecting},
		{"huge numbers", input(treat("one-page", Comparison{Metric: conv, Result: result(conv.Key, 1e300, 1e-300, 1e300, 1e299, 1e301, 0)})), readout.Collecting},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := Verdict(tt.in)
			if r.Status != tt.status {
				t.Errorf("status = %s, want %s (summary %q)", r.Status, tt.status, r.Summary)
			}
			if err := r.Validate(); err != nil {
				t.Fatalf("Validate() = %v", err)
			}
			r.Experiment = "x" // the zero input has no key for the schema's pattern
			encode(t, s, r)
		})
	}
}

// FuzzVerdict checks that Verdict never panics, never emits a NaN or an
// infinity, and always writes a readout the schema accepts, whatever numbers
// it is given.
func FuzzVerdict(f *testing.F) {
	f.Add(int64(20000), int64(20000), int64(40), 0.1, 0.11, 0.004, 0.016, 0.0001, 805.0, -10.0, 20.0, 0.05, 0.1, 0.05, true, 10.0, 0.002)
	f.Add(int64(5), int64(3), int64(0), 0.0, 0.0, 0.0, 0.0, 1.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, false, 0.0, 0.0)
	f.Add(int64(12040), int64(7960), int64(500), 1e-300, 1e300, -1e308, 1e308, 0.5, math.NaN(), math.Inf(1), math.Inf(-1), -1.0, math.NaN(), 2.0, true, -5.0, 0.03)
	s := compileSchema(f)
	f.Fuzz(func(t *testing.T, nc, nt, multi int64, c, tr, lo, hi, p, lt, llo, lhi, margin, mde, alpha float64, seq bool, days, segp float64) {
		in := input()
		in.Units = map[string]int64{"control": nc, "one-page": nt}
		in.MultiExposed = multi
		in.Experiment.MDE, in.Experiment.Alpha, in.Experiment.Sequential = mde, alpha, seq
		in.Experiment.Guardrails[0].Margin = margin
		if finite(days) && math.Abs(days) < 1e5 {
			in.DataThrough = start.Add(time.Duration(days * 24 * float64(time.Hour)))
		}
		r := func(key string, c, t, lo, hi, p float64) stats.Result {
			x := result(key, float64(nc), c, t, lo, hi, p)
			x.Control.N, x.Treatment.N = float64(nc), float64(nt)
			return x
		}
		a := treat("one-page",
			Comparison{Metric: conv, Result: r(conv.Key, c, tr, lo, hi, p)},
			Comparison{Metric: rev, Result: r(rev.Key, c, tr, lo, hi, segp)},
			Comparison{Metric: load, Result: r(load.Key, 800, lt, llo, lhi, p)})
		a.Segments = []Segment{
			seg("platform", "ios", Comparison{Metric: conv, Result: r(conv.Key, c, tr, lo, hi, segp)},
				Comparison{Metric: load, Result: r(load.Key, 800, lt, llo, lhi, p)}),
			seg("platform", "", Comparison{Metric: conv, Result: r(conv.Key, tr, c, -hi, -lo, p)}),
		}
		in.Arms = []Arm{a, treat("two-page", Comparison{Metric: conv, Result: r(conv.Key, c, tr, lo, hi, segp)})}
		out := Verdict(in)
		if err := out.Validate(); err != nil {
			t.Fatalf("Validate() = %v", err)
		}
		encode(t, s, out)
		if out.Summary == "" {
			t.Fatal("empty summary")
		}
	})
}

// TestReasonsQuoteReadout checks that the text quotes the readout's own
// rel_effect and rel_ci, not the absolute interval divided by the control
// mean: with a delta-method interval the two differ (here -4.6% to +11.6%
// against -4.7% to +11.7%).
func TestReasonsQuoteReadout(t *testing.T) {
	c := convR(0.1035, -0.0046, 0.0116, 0.4)
	c.Result.RelEffect, c.Result.RelCI = 0.0351, stats.Interval{Lo: -0.047, Hi: 0.117}
	r := Verdict(input(treat("one-page", c, revFlat, loadOK)))
	want := "purchase_conversion is at +3.5% so far (95% interval -4.7% to +11.7%): not conclusive yet."
	if got := r.Arms[0].Reasons[0]; got != want {
		t.Errorf("reason = %q, want %q", got, want)
	}
	checkQuotes(t, r)

	// A negative control mean: rel_effect, divided by |m_c|, has the sign
	// of the change, so the text quotes it (−40 → −38 is up 5%).
	neg := Comparison{Metric: rev, Result: result(rev.Key, units, -40, -38, 0.8, 3.2, 0.002)}
	x := &experiment{opt: options{alpha: 0.05}}
	m := read(neg, role{role: readout.Secondary})
	if got, want := x.change(m), "revenue_per_user went up by 5% (95% interval +2% to +8%)"; got != want {
		t.Errorf("change() = %q, want %q", got, want)
	}
}

// TestReasonsAgreeWithDecision: with few units the relative interval can
// include 0 while the absolute one, which decides, does not. The text then
// quotes the absolute interval, so it never reads "raised by 35% (95%
// interval -3.1% to +74%)".
func TestReasonsAgreeWithDecision(t *testing.T) {
	c := convR(0.11, 0.004, 0.016, 0.0001)
	c.Result.RelCI = stats.Interval{Lo: -0.01, Hi: 0.21} // wider, across 0
	r := Verdict(input(treat("one-page", c, revFlat, loadOK)))
	if r.Label != readout.Persevere {
		t.Fatalf("label = %q, want persevere (the absolute interval excludes 0)", r.Label)
	}
	want := "Persevere: one-page raised purchase_conversion by 1 point (95% interval +0.4 points to +1.6 points)"
	if !strings.HasPrefix(r.Summary, want) {
		t.Errorf("summary = %q, want it to start %q", r.Summary, want)
	}
	checkQuotes(t, r)
}

// checkQuotes checks that every interval quoted in r's reasons is the
// rel_ci (or, without one, the ci) of a metric or salvage item of r, as
// the text rounds it.
func checkQuotes(t *testing.T, r readout.Readout) {
	t.Helper()
	quoted := map[string]bool{}
	add := func(ci readout.Interval, rel *readout.Interval, control float64) {
		if rel != nil && control > 0 {
			quoted[readout.Percent(rel[0])+" to "+readout.Percent(rel[1])] = true
		}
		quoted[readout.Number(ci[0], true)+" to "+readout.Number(ci[1], true)] = true
		quoted[points(ci[0])+" to "+points(ci[1])] = true
	}
	for _, a := range r.Arms {
		for _, m := range a.Metrics {
			add(m.CI, m.RelCI, m.Control.Mean)
		}
	}
	for _, s := range r.Salvage {
		add(s.CI, s.RelCI, s.Control.Mean)
	}
	re := regexp.MustCompile(`interval ([^ ]+(?: points?)? to [^;)]+)`)
	texts := append([]string{r.Summary}, r.Reasons...)
	for _, a := range r.Arms {
		texts = append(texts, a.Reasons...)
	}
	for _, s := range texts {
		for _, q := range re.FindAllStringSubmatch(s, -1) {
			if !quoted[q[1]] {
				t.Errorf("%q quotes the interval %s, which is no rel_ci (or ci) of the readout", s, q[1])
			}
		}
	}
}

// TestNoDecisionWithoutData: a variant below min_units, or a primary metric
// without a result in an arm, keeps every arm collecting — whatever the
// other numbers say, and even at the planned end — but the data can still
// be invalid. Units of variants the definition does not list are counted,
// and above 1% of exposed units make the experiment invalid.
func TestNoDecisionWithoutData(t *testing.T) {
	s := compileSchema(t)
	win := input(treat("one-page", convWin, revFlat, loadOK))
	tests := []struct {
		name    string
		in      Input
		status  readout.Status
		summary string // a part of it
	}{
		{"enough units", win, readout.Decided, "Persevere"},
		{"control below min_units", func() Input {
			in := win
			in.Units = map[string]int64{"control": 99, "one-page": 100}
			in.MultiExposed = 0
			in.Experiment.MinUnits = 100
			return in
		}(), readout.Collecting, "every variant needs at least 100 units, and control has 99"},
		{"default min_units", func() Input {
			in := win
			in.Units = map[string]int64{"control": 99, "one-page": 99}
			in.MultiExposed = 0
			in.Experiment.MinUnits = 0
			return in
		}(), readout.Collecting, "at least 100 units"},
		{"primary without data at the end", func() Input {
			in := input(treat("one-page", noVariance, revWin, loadHarm))
			in.Now = end.Add(time.Hour)
			return in
		}(), readout.Collecting, "primary metric purchase_conversion has no data to compare in one-page"},
		{"primary missing", input(treat("one-page", revFlat, loadOK)), readout.Collecting, "no data was computed for it"},
		{"invalid beats the gate", func() Input {
			in := input(treat("one-page", noVariance, revFlat, loadOK))
			in.Units = map[string]int64{"control": 5000, "one-page": 4000}
			return in
		}(), readout.Invalid, "sample ratio mismatch"},
		{"unknown variants at 1%", func() Input {
			in := win
			in.UnknownVariant = (2*units + 40) / 99 // 1% of all exposed, just under
			return in
		}(), readout.Decided, "Persevere"},
		{"unknown variants above 1%", func() Input {
			in := win
			in.UnknownVariant = (2*units+40)/99 + 2
			return in
		}(), readout.Invalid, "exposed to a variant the definition does not list"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := Verdict(tt.in)
			if got.Status != tt.status || !strings.Contains(got.Summary, tt.summary) {
				t.Errorf("status %s, summary %q; want %s and %q", got.Status, got.Summary, tt.status, tt.summary)
			}
			if got.Health.UnknownVariantUnits != max(tt.in.UnknownVariant, 0) {
				t.Errorf("health.unknown_variant_units = %d, want %d", got.Health.UnknownVariantUnits, tt.in.UnknownVariant)
			}
			encode(t, s, got)
		})
	}
}
