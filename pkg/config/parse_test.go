package config

import (
	"encoding/json"
	"errors"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/verdictlabs/verdict/pkg/stats"
	"github.com/verdictlabs/verdict/pkg/testkit"
)

func date(s string) time.Time {
	t, err := time.Parse(time.RFC3339, s)
	if err != nil {
		panic(err)
	}
	return t.UTC()
}

func ptr[T any](v T) *T { return &v }

// minimalYAML has only what a file must say; the rest are defaults
// (testdata/minimal.yaml, which pkg/configstore's tests apply too).
var minimalYAML = func() string {
	b, err := os.ReadFile("testdata/minimal.yaml")
	if err != nil {
		panic(err)
	}
	return "\n" + string(b)
}()

func minimalDefs() Definitions {
	return Definitions{
		Metrics: []Metric{
			{Key: "conversion", Kind: stats.Proportion, Event: "purchase", Direction: Increase},
			{Key: "revenue", Kind: stats.Mean, Event: "purchase", Aggregate: Sum, Direction: Increase},
			{Key: "visits", Kind: stats.Count, Event: "visit", Aggregate: Count, Direction: Increase},
			{Key: "load", Kind: stats.Ratio, Numerator: &Part{"page_load", Sum}, Denominator: &Part{"page_load", Count}, Direction: Increase},
		},
		Experiments: []Experiment{{
			Key:               "exp-1",
			Variants:          []Variant{{"control", 0.5}, {"treatment", 0.5}},
			Control:           "control",
			Primary:           []string{"conversion"},
			MDE:               0.03,
			Alpha:             0.05,
			Power:             0.8,
			Sequential:        true,
			Tuning:            5000,
			MinUnits:          100,
			AttributionWindow: Duration(7 * 24 * time.Hour),
			Start:             date("2026-11-01T00:00:00Z"),
		}},
	}
}

func TestParse(t *testing.T) {
	tests := []struct {
		name string
		file string
		data string
		want func(*Definitions)
	}{
		{"defaults", "x.yaml", minimalYAML, func(*Definitions) {}},
		{"explicit values are kept", "x.yaml", strings.NewReplacer(
			"mde: 0.03", "mde: 0.03\n    alpha: 0.01\n    power: 0.9\n    sequential: false\n    tuning: 1e3\n    attribution_window: 36h\n    end: 2026-12-01T00:00:00Z",
			"{key: control}, {key: treatment}", "{key: control, weight: 0.2}, {key: treatment, weight: 0.8}",
		).Replace(minimalYAML), func(d *Definitions) {
			e := &d.Experiments[0]
			e.Alpha, e.Power, e.Sequential, e.Tuning = 0.01, 0.9, false, 1000
			e.AttributionWindow = Duration(36 * time.Hour)
			e.End = ptr(date("2026-12-01T00:00:00Z"))
			e.Variants = []Variant{{"control", 0.2}, {"treatment", 0.8}}
		}},
		{"JSON", "x.json", `{"metrics": [{"key": "m", "kind": "mean", "event": "e", "direction": "decrease"}]}`, func(d *Definitions) {
			*d = Definitions{Metrics: []Metric{{Key: "m", Kind: stats.Mean, Event: "e", Aggregate: Sum, Direction: Decrease}}}
		}},
		{"JSON by content, tabs", "-", "{\n\t\"metrics\": [\n\t\t{\"key\": \"m\", \"kind\": \"count\", \"event\": \"e\"}\n\t]\n}", func(d *Definitions) {
			*d = Definitions{Metrics: []Metric{{Key: "m", Kind: stats.Count, Event: "e", Aggregate: Count, Direction: Increase}}}
		}},
		{"bayesian, prior variance left out is 1", "x.yaml", strings.Replace(minimalYAML, "mde: 0.03", "mde: 0.03\n    engine: bayesian\n    prior: {mean: 0.02, proper: true}", 1), func(d *Definitions) {
			d.Experiments[0].Engine, d.Experiments[0].Prior = EngineBayesian, &Prior{Mean: 0.02, Variance: 1, Proper: true}
		}},
		{"empty file", "x.yaml", "# nothing yet\n", func(d *Definitions) { *d = Definitions{} }},
		{"three-way even split", "x.yaml", strings.Replace(minimalYAML, "{key: control}, {key: treatment}", "{key: control}, {key: a}, {key: b}", 1), func(d *Definitions) {
			d.Experiments[0].Variants = []Variant{{"control", 1.0 / 3}, {"a", 1.0 / 3}, {"b", 1.0 / 3}}
		}},
		{"tagged string", "x.yaml", "metrics: [{key: !!str 404, kind: count, event: e}]", func(d *Definitions) {
			*d = Definitions{Metrics: []Metric{{Key: "404", Kind: stats.Count, Event: "e", Aggregate: Count, Direction: Increase}}}
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := Parse(tt.file, []byte(tt.data))
			if err != nil {
				t.Fatalf("Parse: %v", err)
			}
			want := minimalDefs()
			tt.want(&want)
			if diff := cmp.Diff(want, got); diff != "" {
				t.Errorf("Parse (-want +got):\n%s", diff)
			}
		})
	}
}

func TestParseProblems(t *testing.T) {
	tests := []struct {
		name, file, data string
		want             []string
	}{
		{"YAML syntax", "x.yaml", "metrics: [\n", []string{"x.yaml:1:10: YAML syntax: sequence end token ']' not found"}},
		{"JSON syntax", "x.json", "{\n  \"metrics\": [],\n}", []string{"x.json:3:1: JSON syntax: invalid character '}' looking for beginning of object key string"}},
		{"not a mapping", "x.yaml", "- a\n- b\n", []string{"x.yaml:1:1: want a mapping, got a list"}},
		{"unknown and duplicate", "x.yaml", "metrics: []\nmetrics: []\nexperimentz: []\n", []string{
			`x.yaml:2:1: metrics: metrics is given twice (first on line 1); keep one`,
			`x.yaml:3:1: experimentz: unknown field "experimentz" (did you mean "experiments"?); the fields here are metrics, experiments`,
		}},
		{"unknown alias", "x.yaml", "metrics: *nope\n", []string{`x.yaml:1:10: metrics: alias *nope refers to no anchor &nope`}},
		{"not finite", "x.yaml", "experiments: [{mde: .inf}]", []string{`x.yaml:1:21: experiments[0].mde: want a finite number, got .inf`}},
		{"two documents", "x.yaml", "metrics: []\n---\nmetrics: []\n", []string{`x.yaml:3:1: a second YAML document (after ---): put every definition in one document, or pass each file with its own -f`}},
		{"not UTF-8", "x.yaml", "metrics: \xff", []string{`x.yaml: file is not UTF-8 text; save it as UTF-8`}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Parse(tt.file, []byte(tt.data))
			var ps Problems
			if !errors.As(err, &ps) {
				t.Fatalf("Parse error = %v, want Problems", err)
			}
			var got []string
			for _, p := range ps {
				got = append(got, p.String())
			}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("Parse problems (-want +got):\n%s", diff)
			}
		})
	}
}

func TestDuration(t *testing.T) {
	tests := []struct {
		in   string
		want time.Duration
		out  string
	}{
		{"7d", 7 * 24 * time.Hour, "7d"},
		{"36h", 36 * time.Hour, "36h0m0s"},
		{"90m", 90 * time.Minute, "1h30m0s"},
		{"1d12h", 36 * time.Hour, "36h0m0s"},
		{"1.5d", 36 * time.Hour, "36h0m0s"},
		{"48h", 48 * time.Hour, "2d"},
		{"500ms", 500 * time.Millisecond, "500ms"},
	}
	for _, tt := range tests {
		d, err := ParseDuration(tt.in)
		if err != nil || time.Duration(d) != tt.want {
			t.Errorf("ParseDuration(%q) = %v, %v, want %v", tt.in, time.Duration(d), err, tt.want)
			continue
		}
		b, _ := d.MarshalJSON()
		if string(b) != `"`+tt.out+`"` {
			t.Errorf("MarshalJSON(%q) = %s, want %q", tt.in, b, tt.out)
		}
		var back Duration
		if err := back.UnmarshalJSON(b); err != nil || back != d {
			t.Errorf("UnmarshalJSON(%s) = %v, %v, want %v", b, back, err, d)
		}
	}
	for _, bad := range []string{"", "0d", "0s", "-7d", "7", "7 days", "d", "1w", "1h7d", "+1h", "999999999d"} {
		if d, err := ParseDuration(bad); err == nil {
			t.Errorf("ParseDuration(%q) = %v, want an error", bad, d)
		}
	}
}

// TestGolden lists every problem of testdata/bad.yaml, compared with
// testdata/bad.golden (go test -run Golden -update rewrites it).
func TestGolden(t *testing.T) {
	data, err := os.ReadFile("testdata/bad.yaml")
	if err != nil {
		t.Fatal(err)
	}
	f, _ := ParseFile("testdata/bad.yaml", data)
	err = ValidateFiles(f)
	if err == nil {
		t.Fatal("ValidateFiles(bad.yaml) = nil, want problems")
	}
	got := err.Error() + "\n"
	if *testkit.Update {
		if err := os.WriteFile("testdata/bad.golden", []byte(got), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile("testdata/bad.golden")
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(string(want), got); diff != "" {
		t.Errorf("problems of bad.yaml (-bad.golden +got):\n%s", diff)
	}
}

func FuzzParse(f *testing.F) {
	for _, s := range []string{minimalYAML, "{}", "metrics: [{key: a, kind: ratio, numerator: {event: x}}]",
		"x: &a [*a]", "experiments:\n  - <<: [*a, *b]\n", "a: !!str", "{\"metrics\": [1, 2]}"} {
		f.Add("x.yaml", []byte(s))
	}
	if data, err := os.ReadFile("testdata/bad.yaml"); err == nil {
		f.Add("bad.yaml", data)
	}
	f.Fuzz(func(t *testing.T, name string, data []byte) {
		file, err := ParseFile(name, data)
		if file == nil {
			t.Fatal("ParseFile returned a nil File")
		}
		verr := ValidateFiles(file)
		if err != nil && verr == nil {
			t.Fatalf("ParseFile: %v, but ValidateFiles found nothing", err)
		}
		for _, e := range []error{err, verr} {
			var ps Problems
			if e != nil && (!errors.As(e, &ps) || len(ps) == 0) {
				t.Fatalf("error %v is not a non-empty Problems", e)
			}
		}
		if verr == nil {
			// What validates must survive the trip through the KV encoding.
			for _, m := range file.Metrics {
				var back Metric
				if json.Unmarshal(mustJSON(t, m), &back) != nil || string(mustJSON(t, back)) != string(mustJSON(t, m)) {
					t.Fatalf("metric %q does not survive JSON", m.Key)
				}
			}
			for _, e := range file.Experiments {
				var back Experiment
				if json.Unmarshal(mustJSON(t, e), &back) != nil || string(mustJSON(t, back)) != string(mustJSON(t, e)) {
					t.Fatalf("experiment %q does not survive JSON", e.Key)
				}
			}
		}
	})
}

func mustJSON(t *testing.T, v any) []byte {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// TestHostileMerges: merge keys that refer to themselves or multiply must end fast.
func TestHostileMerges(t *testing.T) {
	for _, s := range []string{
		"metrics:\n  - &a {key: x, <<: *a}\n",
		"a: &a {k: 1}\nb: &b {<<: [*a, *a, *a, *a, *a, *a, *a, *a]}\nc: &c {<<: [*b, *b, *b, *b, *b, *b, *b, *b]}\nd: &d {<<: [*c, *c, *c, *c, *c, *c, *c, *c]}\nmetrics: [{<<: [*d, *d, *d, *d, *d, *d, *d, *d, *d]}]\n",
		"metrics: [&a {<<: *a}]\n",
	} {
		start := time.Now()
		_, err := Parse("x.yaml", []byte(s))
		if time.Since(start) > time.Second || err == nil {
			t.Errorf("Parse(%q) = %v after %v", strings.TrimSpace(s), err, time.Since(start))
		}
	}
}
