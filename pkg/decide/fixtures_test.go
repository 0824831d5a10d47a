package decide

import (
	"bytes"
	"encoding/json"
	"math"
	"testing"
	"time"

	"github.com/santhosh-tekuri/jsonschema/v6"
	"github.com/verdictlabs/verdict/pkg/config"
	"github.com/verdictlabs/verdict/pkg/readout"
	"github.com/verdictlabs/verdict/pkg/stats"

	"github.com/verdictlabs/verdict/pkg/testkit"
)

// The fixture: DESIGN.md's example experiment, 10 days in.
var (
	start = time.Date(2026, 11, 1, 0, 0, 0, 0, time.UTC)
	end   = time.Date(2026, 11, 29, 0, 0, 0, 0, time.UTC)
	now   = time.Date(2026, 11, 11, 0, 0, 0, 0, time.UTC)

	conv = config.Metric{Key: "purchase_conversion", Kind: stats.Proportion, Event: "purchase"}
	rev  = config.Metric{Key: "revenue_per_user", Kind: stats.Mean, Event: "purchase"}
	load = config.Metric{Key: "page_load_ms", Kind: stats.Ratio, Direction: config.Decrease,
		Numerator: &config.Part{Event: "page_load"}, Denominator: &config.Part{Event: "page_load", Aggregate: config.Count}}
)

func fixture() config.Experiment {
	e := end
	return config.Experiment{
		Key: "checkout-redesign", Name: "One-page checkout",
		Hypothesis: "A one-page checkout raises purchase conversion.",
		Owners:     []string{"[email protected]"},
		Variants:   []config.Variant{{Key: "control", Weight: 0.5}, {Key: "one-page", Weight: 0.5}},
		Control:    "control",
		Primary:    []string{conv.Key},
		Secondary:  []string{rev.Key},
		Guardrails: []config.Guardrail{{Metric: load.Key, Margin: 0.05}},
		Segments:   []string{"platform"},
		MDE:        0.1, Alpha: 0.05, Power: 0.8, Sequential: true, Tuning: 5000,
		Start: start, End: &e,
	}
}

// unitVar is each fixture metric's variance of one unit's value, which sets
// the control's estimate variance (and so the planned sample).
var unitVar = map[string]float64{conv.Key: 0.09, rev.Key: 400, load.Key: 160000}

// result builds a comparison by hand: control mean c, treatment mean t, the
// absolute interval [lo, hi] and p-value, n units per arm. Hand-made results
// put interval edges exactly where a test needs them.
func result(key string, n, c, t, lo, hi, p float64) stats.Result {
	v := unitVar[key] / n
	r := stats.Result{
		Control:   stats.Estimate{N: n, Mean: c, Var: v},
		Treatment: stats.Estimate{N: n, Mean: t, Var: v},
		AbsEffect: t - c, AbsCI: stats.Interval{Lo: lo, Hi: hi}, SE: (hi - lo) / 4,
		PValue: p, Significant: lo > 0 || hi < 0,
	}
	if c != 0 {
		r.RelDefined, r.RelEffect, r.RelSE = true, (t-c)/math.Abs(c), (hi-lo)/4/math.Abs(c)
		r.RelCI = stats.Interval{Lo: lo / math.Abs(c), Hi: hi / math.Abs(c)}
	}
	return r
}

const units = 20000 // per arm in the fixture

// mde is the fixture's MDE as a variable, so that mde*0.1 rounds as Verdict's
// arithmetic does (a constant expression would be exact).
var mde = 0.1

// Fixture results: purchase conversion (control 10%), revenue (control 40),
// page load (control 800 ms, lower is better, margin 5% = 40 ms).
func convR(t, lo, hi, p float64) Comparison {
	return Comparison{Metric: conv, Result: result(conv.Key, units, 0.1, t, lo, hi, p)}
}
func revR(t, lo, hi, p float64) Comparison {
	return Comparison{Metric: rev, Result: result(rev.Key, units, 40, t, lo, hi, p)}
}
func loadR(t, lo, hi, p float64) Comparison {
	return Comparison{Metric: load, Result: result(load.Key, units, 800, t, lo, hi, p)}
}

var (
	convWin    = convR(0.11, 0.004, 0.016, 0.0001)   // +10%, significant
	convWide   = convR(0.102, -0.006, 0.014, 0.5)    // +2%, inconclusive, +10% still possible
	convFutile = convR(0.1005, -0.004, 0.005, 0.8)   // +0.5%, +10% ruled out (hi 0.005 < 0.01)
	convAtMDE  = convR(0.1005, -0.004, mde*0.1, 0.7) // hi exactly on MDE·c, in float64: not futile
	convWorse  = convR(0.09, -0.016, -0.004, 0.001)  // −10%, significant
	revFlat    = revR(40.2, -1, 1.4, 0.7)            // inconclusive
	revWin     = revR(42, 0.8, 3.2, 0.002)           // +5%, significant
	revDown    = revR(38, -3.2, -0.8, 0.002)         // −5%, significant: not worth keeping
	loadOK     = loadR(805, -10, 20, 0.5)            // non-inferior: hi 20 < 40
	loadHarm   = loadR(900, 60, 140, 0.0001)         // beyond: lo 60 > 40
	loadOpen   = loadR(820, -5, 45, 0.2)             // neither
	loadEdgeIn = loadR(815, -10, 40, 0.3)            // hi exactly +40: not non-inferior
	loadEdgeBd = loadR(865, 40, 90, 0.0001)          // lo exactly +40: not beyond
	loadBetter = loadR(760, -60, -20, 0.0001)        // −5%, better
	convSegWin = convR(0.13, 0.012, 0.048, 0.0005)   // a segment's clear win
	convSegSml = convR(0.112, 0.001, 0.023, 0.02)    // raw significant, not after Holm
	convSegNo  = convR(0.101, -0.01, 0.012, 0.4)     // nothing
	loadSegBad = loadR(900, 50, 150, 0.001)          // guardrail harm in a segment
	noVariance = Comparison{Metric: conv, Err: stats.ErrNoVariance}
)

func treat(variant string, cs ...Comparison) Arm { return Arm{Variant: variant, Metrics: cs} }

func seg(dim, value string, cs ...Comparison) Segment {
	return Segment{Dimension: dim, Value: value, Metrics: cs}
}

func input(arms ...Arm) Input {
	return Input{
		Experiment: fixture(), Now: now, DataThrough: now,
		Units:        map[string]int64{"control": units, "one-page": units},
		MultiExposed: 40,
		Arms:         arms,
	}
}

func ptr2[T any](v T) *T { return &v }

// compileSchema compiles the published readout schema, read from disk (the
// schemas module does not embed it).
func compileSchema(t testing.TB) *jsonschema.Schema {
	return testkit.Schema(t, "../../schemas/readout.schema.json", "https://github.com/verdictlabs/verdict/schemas/readout.schema.json")
}

// encode stamps a readout as the publisher would and checks it against the
// schema.
func encode(t testing.TB, s *jsonschema.Schema, r readout.Readout) []byte {
	t.Helper()
	r.Version = 1
	r.ComputedAt = r.DataThrough
	b, err := json.MarshalIndent(r, "", "  ")
	if err != nil {
		t.Fatalf("marshal readout: %v", err)
	}
	v, err := jsonschema.UnmarshalJSON(bytes.NewReader(b))
	if err != nil {
		t.Fatalf("reread readout: %v", err)
	}
	if err := s.Validate(v); err != nil {
		t.Fatalf("schema rejects the readout: %v\n%s", err, b)
	}
	return append(b, '\n')
}
