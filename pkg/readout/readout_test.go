package readout

import (
	"bytes"
	"encoding/json"
	"errors"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/santhosh-tekuri/jsonschema/v6"

	"github.com/verdictlabs/verdict/pkg/testkit"
)

// schemaPath is the published schema. It is read from disk rather than
// embedded because schemas/doc.go belongs to the schemas module's owners.
const schemaPath = "../../schemas/readout.schema.json"

func compileSchema(t testing.TB) *jsonschema.Schema {
	return testkit.Schema(t, schemaPath, "https://github.com/verdictlabs/verdict/schemas/readout.schema.json")
}

func validate(s *jsonschema.Schema, data []byte) error {
	v, err := jsonschema.UnmarshalJSON(bytes.NewReader(data))
	if err != nil {
		return err
	}
	return s.Validate(v)
}

func ptr[T any](v T) *T { return &v }

var (
	start = time.Date(2026, 11, 1, 0, 0, 0, 0, time.UTC)
	end   = time.Date(2026, 11, 29, 0, 0, 0, 0, time.UTC)
	now   = time.Date(2026, 11, 12, 9, 30, 0, 0, time.UTC)
)

func health() Health {
	return Health{
		SRM: SRMOK, SRMPValue: ptr(0.61),
		Counts: []VariantCount{
			{Variant: "control", Units: 15040, Weight: 0.5, ExpectedShare: 0.5, ObservedShare: 15040.0 / 30010},
			{Variant: "one-page", Units: 14970, Weight: 0.5, ExpectedShare: 0.5, ObservedShare: 14970.0 / 30010},
		},
		MultipleExposureCount: 31, MultipleExposureRate: 31.0 / 30041,
	}
}

func conversion(role Role) Metric {
	return Metric{
		Metric: "purchase_conversion", Role: role, Kind: "proportion", Direction: "increase",
		Control: Estimate{N: 15040, Mean: 0.1}, Treatment: Estimate{N: 14970, Mean: 0.1042},
		AbsEffect: 0.0042, RelEffect: ptr(0.042), CI: Interval{0.0021, 0.0063}, RelCI: &Interval{0.021, 0.064},
		PValue: 0.0004, Significant: true, Outcome: Better,
	}
}

func pageLoad() Metric {
	return Metric{
		Metric: "page_load_ms", Role: Guardrail, Kind: "ratio", Direction: "decrease",
		Control: Estimate{N: 15040, Mean: 812.5}, Treatment: Estimate{N: 14970, Mean: 815},
		AbsEffect: 2.5, RelEffect: ptr(2.5 / 812.5), CI: Interval{-8, 13}, RelCI: &Interval{-0.0098, 0.016},
		PValue: 1, Significant: false, Outcome: Inconclusive,
		Margin: ptr(0.05), AbsMargin: ptr(40.625), NonInferior: ptr(true), BeyondMargin: ptr(false),
	}
}

// examples are readouts that exercise every field and every null.
func examples() map[string]Readout {
	return map[string]Readout{
		"persevere": {
			Experiment: "checkout-redesign", Name: "One-page checkout",
			Hypothesis: "A one-page checkout raises purchase conversion.", Owners: []string{"[email protected]"},
			Version: 42, ComputedAt: now, DataThrough: now.Add(-time.Minute),
			Status: Decided, Label: Persevere,
			Summary: "Persevere: one-page raised purchase_conversion by 4.2% (95% interval +2.1% to +6.3%), with every guardrail within its margin; roll it out.",
			Reasons: []string{"purchase_conversion went up by 4.2% (95% interval +2.1% to +6.3%).", "Next: roll out one-page to everyone."},
			Health:  health(),
			Progress: Progress{Units: 30010, TargetPerVariant: ptr(int64(14000)), Target: ptr(int64(28000)), Fraction: ptr(1.0),
				Power: ptr(0.83), UnitsPerDay: ptr(2727.5), Start: start, End: &end},
			Arms: []Arm{{
				Variant: "one-page", Label: Persevere, Reasons: []string{"Next: roll out one-page to everyone."},
				Metrics: []Metric{conversion(Primary), pageLoad()},
			}},
		},
		"collecting": {
			Experiment: "button-color", Version: 1, ComputedAt: now, DataThrough: now,
			Status: Collecting, Label: NoLabel,
			Summary: "Still collecting: no conclusive result yet.",
			Health: Health{SRM: SRMNotEnoughTraffic, Counts: []VariantCount{
				{Variant: "control", Units: 3, Weight: 1, ExpectedShare: 0.5, ObservedShare: 0.6},
				{Variant: "green", Units: 2, Weight: 1, ExpectedShare: 0.5, ObservedShare: 0.4},
			}},
			Progress: Progress{Units: 5, Start: start, ETA: &end, End: &end},
			Arms: []Arm{{
				Variant: "green",
				Unavailable: []Unavailable{{Metric: "purchase_conversion", Role: Primary,
					Reason: "no variance: both arms are constant (standard error 0), so no test is possible"}},
			}},
		},
		"salvage": {
			Experiment: "dark-mode", Version: 7, ComputedAt: now, DataThrough: now,
			Status: Decided, Label: Salvage,
			Summary:  "Salvage: dark did not win overall, but raised purchase_conversion by 45% for platform = android; keep it there.",
			Reasons:  []string{"Next: keep dark for platform = android only and confirm it with a follow-up experiment there."},
			Health:   health(),
			Progress: Progress{Units: 30010, Start: start},
			Arms: []Arm{{
				Variant: "dark", Label: Salvage, Reasons: []string{"Next: keep dark for platform = android only."},
				Metrics: []Metric{{
					Metric: "clicks", Role: Secondary, Direction: "increase",
					Control: Estimate{N: 15040, Mean: 0}, Treatment: Estimate{N: 14970, Mean: 0.01},
					AbsEffect: 0.01, CI: Interval{0.004, 0.016}, PValue: 0.001, Significant: true, Outcome: Better,
				}},
			}},
			Salvage: []SalvageItem{
				{Variant: "dark", Kind: SalvageSegment, Dimension: "platform", Value: "android", Metric: "purchase_conversion", Role: Primary,
					Control: Estimate{N: 6000, Mean: 0.1}, Treatment: Estimate{N: 6010, Mean: 0.145},
					AbsEffect: 0.045, RelEffect: ptr(0.45), CI: Interval{0.03, 0.06}, RelCI: &Interval{0.3, 0.6},
					PValue: 0.00001, AdjustedPValue: 0.00006},
				{Variant: "dark", Kind: SalvageSegment, Dimension: "country", Value: "", Metric: "purchase_conversion", Role: Primary,
					Control: Estimate{N: 600, Mean: 0.1}, Treatment: Estimate{N: 610, Mean: 0.2},
					AbsEffect: 0.1, RelEffect: ptr(1.0), CI: Interval{0.05, 0.15}, RelCI: &Interval{0.5, 1.5},
					PValue: 0.0001, AdjustedPValue: 0.0006},
				{Variant: "dark", Kind: SalvageMetric, Metric: "clicks", Role: Secondary,
					Control: Estimate{N: 15040, Mean: 0}, Treatment: Estimate{N: 14970, Mean: 0.01},
					AbsEffect: 0.01, CI: Interval{0.004, 0.016}, PValue: 0.001, AdjustedPValue: 0.001},
			},
		},
		"invalid": {
			Experiment: "search-ranking", Version: 3, ComputedAt: now, DataThrough: now,
			Status:  Invalid,
			Summary: "Invalid: sample ratio mismatch (control got 60.2% of units, 50% was planned), so no result can be trusted.",
			Reasons: []string{"Sample ratio mismatch: control got 60.2% of units where 50% was planned (p < 0.001). Fix the assignment before reading results."},
			Health: Health{SRM: SRMMismatch, SRMPValue: ptr(1e-40), Counts: []VariantCount{
				{Variant: "control", Units: 6020, Weight: 0.5, ExpectedShare: 0.5, ObservedShare: 0.602},
				{Variant: "ml-ranker", Units: 3980, Weight: 0.5, ExpectedShare: 0.5, ObservedShare: 0.398},
			}},
			Progress: Progress{Units: 10000, Start: start},
			Arms: []Arm{{Variant: "ml-ranker", Reasons: []string{"Not judged: the data cannot be trusted (see the experiment's health)."},
				Metrics: []Metric{conversion(Primary)}}},
		},
	}
}

// TestGolden encodes example readouts, compares them with testdata/*.json
// (go test -update rewrites them), validates them against the published
// schema and decodes them back.
func TestGolden(t *testing.T) {
	s := compileSchema(t)
	for name, r := range examples() {
		t.Run(name, func(t *testing.T) {
			got, err := json.MarshalIndent(r, "", "  ")
			if err != nil {
				t.Fatalf("marshal: %v", err)
			}
			got = append(got, '\n')
			path := filepath.Join("testdata", name+".json")
			if *testkit.Update {
				if err := os.WriteFile(path, got, 0o644); err != nil {
					t.Fatal(err)
				}
			}
			want, err := os.ReadFile(path)
			if err != nil {
				t.Fatalf("read golden file (run go test -update to create it): %v", err)
			}
			if diff := cmp.Diff(string(want), string(got)); diff != "" {
				t.Errorf("marshal(%s) differs from %s (-want +got):\n%s", name, path, diff)
			}
			if err := validate(s, got); err != nil {
				t.Errorf("schema rejects %s: %v", path, err)
			}
			var back Readout
			if err := json.Unmarshal(got, &back); err != nil {
				t.Fatalf("unmarshal: %v", err)
			}
			// Decoding gives [] for the lists the encoder filled in.
			want2 := r
			want2.Reasons = nonNil(r.Reasons)
			want2.Salvage = nonNil(r.Salvage)
			for i := range want2.Arms {
				want2.Arms[i].Reasons = nonNil(want2.Arms[i].Reasons)
				want2.Arms[i].Metrics = nonNil(want2.Arms[i].Metrics)
			}
			if diff := cmp.Diff(want2, back); diff != "" {
				t.Errorf("round trip (-want +got):\n%s", diff)
			}
		})
	}
}

// TestSchemaRejects checks that the schema holds the rules it states, by
// breaking a valid readout one way at a time.
func TestSchemaRejects(t *testing.T) {
	s := compileSchema(t)
	base, err := json.Marshal(examples()["persevere"])
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name   string
		mutate func(doc map[string]any)
	}{
		{"label while collecting", func(d map[string]any) { d["status"] = "collecting" }},
		{"no label when decided", func(d map[string]any) { d["label"] = nil }},
		{"unknown label", func(d map[string]any) { d["label"] = "ship" }},
		{"unknown status", func(d map[string]any) { d["status"] = "done" }},
		{"missing summary", func(d map[string]any) { delete(d, "summary") }},
		{"null reasons", func(d map[string]any) { d["reasons"] = nil }},
		{"version 0", func(d map[string]any) { d["version"] = 0 }},
		{"bad time", func(d map[string]any) { d["computed_at"] = "yesterday" }},
		{"unknown field", func(d map[string]any) { d["confidence"] = 0.95 }},
		{"srm p-value without traffic", func(d map[string]any) { d["health"].(map[string]any)["srm"] = "not_enough_traffic" }},
		{"no srm p-value with traffic", func(d map[string]any) { d["health"].(map[string]any)["srm_p_value"] = nil }},
		{"rate above 1", func(d map[string]any) { d["health"].(map[string]any)["multiple_exposure_rate"] = 1.5 }},
		{"eta absent", func(d map[string]any) { delete(d["progress"].(map[string]any), "eta") }},
		{"guardrail without margin", func(d map[string]any) { delete(metric(d, 1), "non_inferior") }},
		{"margin on a primary", func(d map[string]any) { metric(d, 0)["margin"] = 0.05 }},
		{"ci of three", func(d map[string]any) { metric(d, 0)["ci"] = []any{1, 2, 3} }},
		{"rel_effect absent", func(d map[string]any) { delete(metric(d, 0), "rel_effect") }},
		{"p-value above 1", func(d map[string]any) { metric(d, 0)["p_value"] = 1.2 }},
		{"unknown role", func(d map[string]any) { metric(d, 0)["role"] = "north_star" }},
		{"unknown direction", func(d map[string]any) { metric(d, 0)["direction"] = "up" }},
		{"segment without dimension", func(d map[string]any) {
			d["salvage"] = []any{map[string]any{"variant": "one-page", "kind": "segment", "dimension": nil, "value": "ios",
				"metric": "m", "role": "primary", "control": map[string]any{"n": 1, "mean": 0}, "treatment": map[string]any{"n": 1, "mean": 0},
				"abs_effect": 0, "rel_effect": nil, "ci": []any{0, 0}, "rel_ci": nil, "p_value": 0, "adjusted_p_value": 0}}
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var doc map[string]any
			if err := json.Unmarshal(base, &doc); err != nil {
				t.Fatal(err)
			}
			tt.mutate(doc)
			b, err := json.Marshal(doc)
			if err != nil {
				t.Fatal(err)
			}
			if err := validate(s, b); err == nil {
				t.Errorf("schema accepts a readout with %s", tt.name)
			}
		})
	}
}

func metric(doc map[string]any, i int) map[string]any {
	return doc["arms"].([]any)[0].(map[string]any)["metrics"].([]any)[i].(map[string]any)
}

// TestMarshalRefuses checks that NaN, infinities and status/label mismatches
// never reach JSON, and that the error names the field.
func TestMarshalRefuses(t *testing.T) {
	tests := []struct {
		name   string
		mutate func(r *Readout)
		field  string
	}{
		{"NaN effect", func(r *Readout) { r.Arms[0].Metrics[0].AbsEffect = math.NaN() }, "arms[0].metrics[0].abs_effect"},
		{"infinite rel_ci", func(r *Readout) { r.Arms[0].Metrics[1].RelCI = &Interval{0, math.Inf(1)} }, "arms[0].metrics[1].rel_ci[1]"},
		{"NaN srm p-value", func(r *Readout) { r.Health.SRMPValue = ptr(math.NaN()) }, "health.srm_p_value"},
		{"infinite fraction", func(r *Readout) { r.Progress.Fraction = ptr(math.Inf(-1)) }, "progress.fraction"},
		{"NaN adjusted p", func(r *Readout) {
			r.Salvage = []SalvageItem{{Kind: SalvageMetric, AdjustedPValue: math.NaN()}}
		}, "salvage[0].adjusted_p_value"},
		{"label while collecting", func(r *Readout) { r.Status = Collecting }, "label"},
		{"decided without label", func(r *Readout) { r.Label = NoLabel }, "label"},
		{"unknown arm label", func(r *Readout) { r.Arms[0].Label = "ship" }, "arms[0].label"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := examples()["persevere"]
			tt.mutate(&r)
			_, err := json.Marshal(r)
			if !errors.Is(err, ErrInvalid) {
				t.Fatalf("Marshal = %v, want an error wrapping ErrInvalid", err)
			}
			if !strings.Contains(err.Error(), tt.field+" =") {
				t.Errorf("Marshal error %q does not name %s", err, tt.field)
			}
		})
	}
}

// TestEmptyLists checks that a zero readout encodes its lists as [].
func TestEmptyLists(t *testing.T) {
	r := Readout{Status: Collecting, Arms: []Arm{{Variant: "b"}}}
	b, err := json.Marshal(r)
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{`"reasons":[]`, `"arms":[{"variant":"b","label":null,"reasons":[],"metrics":[]}]`, `"salvage":[]`, `"counts":[]`, `"label":null`} {
		if !bytes.Contains(b, []byte(want)) {
			t.Errorf("Marshal(zero readout) = %s, want it to contain %s", b, want)
		}
	}
}
