package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// goldenDir holds the oracle's golden files (scripts/oracle/stats_oracle.py):
// their "in" members are input lines of verdict stats and their "want"
// members the output lines SciPy expects.
var goldenDir = filepath.Join("..", "..", "pkg", "stats", "testdata")

type goldenLine struct {
	In     json.RawMessage            `json:"in"`
	Want   map[string]json.RawMessage `json:"want"`
	Detail map[string]any             `json:"detail"`
}

func readGoldenLines(t *testing.T, name string) []goldenLine {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(goldenDir, name))
	if err != nil {
		t.Fatalf("read golden file: %v", err)
	}
	var g struct {
		Header struct {
			Oracle string `json:"oracle"`
		} `json:"header"`
		Cases []goldenLine `json:"cases"`
	}
	if err := json.Unmarshal(b, &g); err != nil {
		t.Fatalf("decode %s: %v", name, err)
	}
	t.Logf("%s: %d lines expected by %s", name, len(g.Cases), g.Header.Oracle)
	return g.Cases
}

// runStatsOn runs "verdict stats" through run, as main does, and returns its
// output lines.
func runStatsOn(t *testing.T, input string) []string {
	t.Helper()
	var stdout, stderr bytes.Buffer
	getenv := func(string) string { return "" }
	// A line that cannot be computed makes the command fail at the end;
	// its output line says why, which is what these tests look at.
	err := run(context.Background(), []string{"stats"}, getenv, strings.NewReader(input), &stdout, &stderr)
	if err != nil && !(strings.Contains(err.Error(), "could not be computed") && strings.Contains(stdout.String(), `{"error":`)) {
		t.Fatalf("verdict stats: %v (stderr %q)", err, stderr.String())
	}
	out := strings.TrimSuffix(stdout.String(), "\n")
	if out == "" {
		return nil
	}
	return strings.Split(out, "\n")
}

// TestStatsAgainstOracle feeds every golden input line to verdict stats and
// compares every output field with the oracle's to 1e-9 relative.
func TestStatsAgainstOracle(t *testing.T) {
	cases := append(readGoldenLines(t, "compare.json"), readGoldenLines(t, "srm.json")...)
	cases = append(cases, readGoldenLines(t, "srm_sequential.json")...)
	var in bytes.Buffer
	for _, c := range cases {
		if err := json.Compact(&in, c.In); err != nil {
			t.Fatal(err)
		}
		in.WriteByte('\n')
	}
	lines := runStatsOn(t, in.String())
	if len(lines) != len(cases) {
		t.Fatalf("verdict stats wrote %d lines for %d inputs", len(lines), len(cases))
	}
	for i, c := range cases {
		var got map[string]json.RawMessage
		if err := json.Unmarshal([]byte(lines[i]), &got); err != nil {
			t.Fatalf("line %d: output %q is not JSON: %v", i+1, lines[i], err)
		}
		scale := map[string]float64{}
		if se, ok := c.Detail["se"].(float64); ok {
			scale["abs_effect"], scale["abs_ci"] = se, se
		}
		if rse, ok := c.Detail["rel_se"].(float64); ok {
			scale["rel_effect"], scale["rel_ci"] = rse, rse
		}
		for key, want := range c.Want {
			g, ok := got[key]
			if !ok {
				t.Errorf("line %d (%s): field %q missing from %s", i+1, c.In, key, lines[i])
				continue
			}
			// The sequential SRM's ln BF is a difference of log-gammas of
			// the size of n·ln n, so its p carries their rounding: a few
			// 1e-9 at millions of units (DESIGN asks for 1e-6).
			tol := 1e-9
			if bytes.Contains(c.In, []byte(`"concentration"`)) {
				tol = 1e-7
			}
			if err := sameJSONTol(g, want, scale[key], tol); err != nil {
				t.Errorf("line %d (%s): %s = %s, want %s (%v)", i+1, c.In, key, g, want, err)
			}
		}
		for key := range got {
			if _, ok := c.Want[key]; !ok && key != "warning" {
				t.Errorf("line %d: unexpected field %q in %s", i+1, key, lines[i])
			}
		}
		if _, warned := got["warning"]; warned && string(c.Want["rel_effect"]) != "null" && c.Detail["enough_traffic"] != false {
			t.Errorf("line %d: warning without reason in %s", i+1, lines[i])
		}
	}
}

// sameJSON compares two JSON values: null, booleans and arrays exactly in
// shape, numbers to 1e-9 relative to the larger of |want| and scale.
func sameJSON(got, want json.RawMessage, scale float64) error {
	return sameJSONTol(got, want, scale, 1e-9)
}

// sameJSONTol is sameJSON to a relative tolerance of tol.
func sameJSONTol(got, want json.RawMessage, scale, tol float64) error {
	var g, w any
	if err := json.Unmarshal(got, &g); err != nil {
		return err
	}
	if err := json.Unmarshal(want, &w); err != nil {
		return err
	}
	switch w := w.(type) {
	case float64:
		g, ok := g.(float64)
		if !ok {
			return fmt.Errorf("not a number")
		}
		if g != w && math.Abs(g-w) > tol*math.Max(math.Abs(w), scale) {
			return fmt.Errorf("relative error %.2g", math.Abs(g-w)/math.Max(math.Abs(w), scale))
		}
		return nil
	case []any:
		ga, ok := g.([]any)
		if !ok || len(ga) != len(w) {
			return fmt.Errorf("not an array of %d", len(w))
		}
		for i := range w {
			gi, _ := json.Marshal(ga[i])
			wi, _ := json.Marshal(w[i])
			if err := sameJSONTol(gi, wi, scale, tol); err != nil {
				return fmt.Errorf("[%d]: %w", i, err)
			}
		}
		return nil
	}
	if g != w {
		return fmt.Errorf("differs")
	}
	return nil
}

func TestStatsLines(t *testing.T) {
	const (
		mean     = `{"kind":"mean","alpha":0.05,"sequential":false,"control":{"n":1000,"sum":5000,"sum_squares":40000},"treatment":{"n":1000,"sum":5300,"sum_squares":43000}}`
		meanSeq  = `{"kind":"mean","alpha":0.05,"sequential":true,"tuning":5000,"control":{"n":1000,"sum":5000,"sum_squares":40000},"treatment":{"n":1000,"sum":5300,"sum_squares":43000}}`
		defaults = `{"kind":"mean","control":{"n":1000,"sum":5000,"sum_squares":40000},"treatment":{"n":1000,"sum":5300,"sum_squares":43000}}`
	)
	tests := []struct {
		name  string
		input string
		want  []string // output line i must contain want[i]
	}{
		{"blank lines are skipped", "\n  \n\r\n", nil},
		{"a bad line does not stop the rest", "not json\n" + mean + "\n", []string{`{"error":"line 1: decode comparison`, `"significant":`}},
		{"CRLF and no final newline", mean + "\r\n" + mean, []string{`"abs_effect":0.2999999999999998,`, `"abs_effect":0.2999999999999998,`}},
		{"kind missing", `{"control":{}}`, []string{`"kind\" is missing`}},
		{"unknown kind", `{"kind":"median"}`, []string{`{"error":"line 1: \"kind\" = \"median\"`}},
		{"arm missing", `{"kind":"mean","control":{"n":10,"sum":1,"sum_squares":1}}`, []string{`\"treatment\" is missing`}},
		{"sum_squares missing", `{"kind":"mean","control":{"n":10,"sum":1},"treatment":{"n":10,"sum":1,"sum_squares":1}}`, []string{`control: \"sum_squares\" is missing`}},
		{"ratio field missing", `{"kind":"ratio","control":{"n":10,"sum":1,"sum_squares":1,"den_sum":3,"den_sum_squares":4},"treatment":{"n":10,"sum":1,"sum_squares":1}}`, []string{`\"sum_products\" is missing`}},
		{"proportion above 1", `{"kind":"proportion","control":{"n":10,"sum":11},"treatment":{"n":10,"sum":1}}`, []string{`control arm: invalid input: proportion sum = 11 with n = 10`}},
		{"n below 2", `{"kind":"count","control":{"n":1,"sum":1,"sum_squares":1},"treatment":{"n":10,"sum":1,"sum_squares":1}}`, []string{`n = 1, need at least 2 units`}},
		{"alpha outside (0, 1)", strings.Replace(mean, `"alpha":0.05`, `"alpha":1.5`, 1), []string{`alpha = 1.5, want a number in (0, 1)`}},
		{"zero variance", `{"kind":"mean","control":{"n":10,"sum":10,"sum_squares":10},"treatment":{"n":10,"sum":10,"sum_squares":10}}`, []string{`"error":"line 1: no variance`}},
		{"number out of range", strings.Replace(mean, `"sum":5000`, `"sum":1e999`, 1), []string{`"error":"line 1: decode comparison`}},
		{"string for a number", strings.Replace(mean, `"n":1000`, `"n":"1000"`, 1), []string{`"error"`}},
		{"trailing garbage", mean + ` {}`, []string{`"error"`}},
		{"JSON that is not an object", `[1,2]`, []string{`"error"`}},
		{"an unknown field is an error", strings.Replace(mean, `{"kind"`, `{"id":"x","kind"`, 1), []string{`unknown field \"id\"`}},
		{"an unknown arm field is an error", strings.Replace(mean, `"n":1000,`, `"n":1000,"pre_summ":3,`, 1), []string{`unknown field \"pre_summ\"`}},
		{"a field the kind does not take", strings.Replace(mean, `"n":1000,`, `"n":1000,"den_sum":3,`, 1), []string{`control: \"den_sum\" is not an input of a mean arm`}},
		{"CUPED on a ratio", `{"kind":"ratio","control":{"n":10,"sum":1,"sum_squares":1,"den_sum":3,"den_sum_squares":4,"sum_products":1,"pre_sum":1},"treatment":{}}`, []string{`\"pre_sum\" is not an input of a ratio arm`}},
		{"half the CUPED fields", strings.Replace(mean, `"n":1000,`, `"n":1000,"pre_sum":3,`, 1), []string{`pre_sum, pre_sum_squares, sum_pre_products go together`}},
		{"CUPED on one arm only", `{"kind":"mean","control":{"n":10,"sum":1,"sum_squares":1,"pre_sum":1,"pre_sum_squares":1,"sum_pre_products":1},"treatment":{"n":10,"sum":2,"sum_squares":3}}`, []string{`only one arm has CUPED fields`}},
		{"prior without the bayesian engine", strings.Replace(mean, `{"kind"`, `{"prior":{"mean":0},"kind"`, 1), []string{`belong to the bayesian engine`}},
		{"unknown engine", strings.Replace(mean, `{"kind"`, `{"engine":"bayes","kind"`, 1), []string{`\"engine\" = \"bayes\"`}},
		{"sequential bayesian", `{"kind":"proportion","engine":"bayesian","sequential":true,"control":{"n":100,"sum":49},"treatment":{"n":100,"sum":51}}`, []string{`does not apply to the bayesian engine`}},
		{"an srm with arms", `{"kind":"srm","observed":[3,5],"control":{}}`, []string{`\"control\" is not an input of an srm line`}},
		{"quantile arms of different levels", `{"kind":"quantile","control":{"n":1000,"n_star":1000,"nu":0.9,"quantile_hat":5,"quantile_lower":4,"quantile_upper":6},"treatment":{"n":1000,"n_star":1000,"nu":0.5,"quantile_hat":5,"quantile_lower":4,"quantile_upper":6}}`, []string{`the arms' nu differ`}},
		{"bayesian without variance", `{"kind":"proportion","engine":"bayesian","control":{"n":100,"sum":0},"treatment":{"n":100,"sum":0}}`,
			[]string{`"abs_effect":0,"abs_ci":[0,0],"rel_effect":0,"rel_ci":[0,0],"significant":false,"chance_to_win":0.5,"risk":[0,0],"warning":"no posterior: an arm has no variance`}},
		{"control mean 0", `{"kind":"mean","control":{"n":500,"sum":0,"sum_squares":2000},"treatment":{"n":500,"sum":150,"sum_squares":2100}}`,
			[]string{`"abs_effect":0.3,"abs_ci":[-0.12884627934533527,0.7288462793453352],"rel_effect":null,"rel_ci":null,"p_value":0.2942488570607121,"significant":false,"warning":"relative effect undefined: the control mean is 0"}`}},
		{"srm", `{"kind":"srm","observed":[1000,1000],"weights":[0.5,0.5]}`, []string{`{"p_value":1}`}},
		{"srm with null weights means equal weights", `{"kind":"srm","observed":[1000,1000,0],"weights":null}`, []string{`{"p_value":7.124576406741474e-218,"warning":"not enough traffic`}},
		{"srm without weights", `{"kind":"srm","observed":[1000,1000]}`, []string{`{"p_value":1}`}},
		{"srm with little traffic", `{"kind":"srm","observed":[3,5],"weights":[1,1]}`, []string{`"warning":"not enough traffic`}},
		{"srm weights mismatched", `{"kind":"srm","observed":[3,5],"weights":[1,1,1]}`, []string{`2 observed counts for 3 weights`}},
		{"srm without observed", `{"kind":"srm"}`, []string{`srm: \"observed\" is missing`}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			lines := runStatsOn(t, tt.input)
			if len(lines) != len(tt.want) {
				t.Fatalf("verdict stats <<< %q wrote %d lines %q, want %d", tt.input, len(lines), lines, len(tt.want))
			}
			for i, w := range tt.want {
				if !strings.Contains(lines[i], w) {
					t.Errorf("line %d = %s, want it to contain %s", i+1, lines[i], w)
				}
				if !json.Valid([]byte(lines[i])) {
					t.Errorf("line %d = %s, not valid JSON", i+1, lines[i])
				}
			}
		})
	}

	// DESIGN.md's defaults: alpha 0.05, sequential, tuning 5000.
	got := runStatsOn(t, defaults+"\n"+meanSeq+"\n")
	if got[0] != got[1] {
		t.Errorf("defaults: %s, want the same as explicit alpha 0.05, sequential, tuning 5000: %s", got[0], got[1])
	}
	if got := runStatsOn(t, mean); got[0] == runStatsOn(t, meanSeq)[0] {
		t.Errorf("fixed-horizon and sequential lines gave the same output %s", got[0])
	}
}

func TestStatsLongLine(t *testing.T) {
	long := `{"kind":"srm","observed":[` + strings.Repeat("1,", maxStatsLine) + `1]}`
	lines := runStatsOn(t, long+"\n"+`{"kind":"srm","observed":[10,12]}`+"\n")
	if len(lines) != 2 || !strings.Contains(lines[0], "line longer than") || !strings.Contains(lines[1], `"p_value"`) {
		t.Errorf("verdict stats with an over-long first line wrote %.200q, want an error line then a result", lines)
	}
}

func TestStatsArguments(t *testing.T) {
	var stdout, stderr bytes.Buffer
	getenv := func(string) string { return "" }
	if err := runStats(context.Background(), []string{"-h"}, getenv, strings.NewReader(""), &stdout, &stderr); err != nil {
		t.Errorf("verdict stats -h = %v, want nil", err)
	}
	if !strings.Contains(stderr.String(), "usage: verdict stats") {
		t.Errorf("verdict stats -h printed %q, want the usage", stderr.String())
	}
	if err := runStats(context.Background(), []string{"file.ndjson"}, getenv, strings.NewReader(""), &stdout, &stderr); err == nil {
		t.Errorf("verdict stats file.ndjson = nil, want an error: input comes on stdin")
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := runStats(ctx, nil, getenv, strings.NewReader("{}\n"), &stdout, &stderr); err == nil {
		t.Errorf("verdict stats with a cancelled context = nil, want the context's error")
	}
}

// FuzzStatsLine feeds arbitrary input lines to the decoder: every line must
// get exactly one line of valid JSON back, a result or an error.
func FuzzStatsLine(f *testing.F) {
	f.Add([]byte(`{"kind":"mean","alpha":0.05,"sequential":false,"control":{"n":1000,"sum":5000,"sum_squares":40000},"treatment":{"n":1000,"sum":5300,"sum_squares":43000}}`))
	f.Add([]byte(`{"kind":"ratio","control":{"n":40,"sum":41,"sum_squares":93,"den_sum":12,"den_sum_squares":52,"sum_products":15},"treatment":{"n":41,"sum":39,"sum_squares":81,"den_sum":12.4,"den_sum_squares":53,"sum_products":14.8}}`))
	f.Add([]byte(`{"kind":"proportion","control":{"n":100,"sum":0},"treatment":{"n":100,"sum":3}}`))
	f.Add([]byte(`{"kind":"srm","observed":[10,12,0],"weights":[1,1,0]}`))
	f.Add([]byte(`{"kind":"count","tuning":-1,"control":{"n":2,"sum":0,"sum_squares":0}}`))
	f.Add([]byte(`{`))
	f.Fuzz(func(t *testing.T, line []byte) {
		out, ok := statsLine(7, line)
		if bytes.Count(out, []byte("\n")) != 1 || out[len(out)-1] != '\n' {
			t.Fatalf("statsLine(%q) = %q, want one line", line, out)
		}
		var got map[string]json.RawMessage
		if err := json.Unmarshal(out, &got); err != nil {
			t.Fatalf("statsLine(%q) = %q, not a JSON object: %v", line, out, err)
		}
		_, isErr := got["error"]
		_, hasP := got["p_value"]
		_, hasChance := got["chance_to_win"]
		if isErr == ok {
			t.Fatalf("statsLine(%q) = %q with ok %v", line, out, ok)
		}
		if isErr == (hasP || hasChance) {
			t.Fatalf("statsLine(%q) = %q, want either an error or a p_value", line, out)
		}
		if hasP {
			var p float64
			if err := json.Unmarshal(got["p_value"], &p); err != nil || p < 0 || p > 1 {
				t.Fatalf("statsLine(%q) p_value = %s, want a number in [0, 1]", line, got["p_value"])
			}
		}
	})
}

// statsFields runs one line through verdict stats and returns its fields.
func statsFields(t *testing.T, line string) map[string]json.RawMessage {
	t.Helper()
	out := runStatsOn(t, line)
	if len(out) != 1 {
		t.Fatalf("verdict stats <<< %s wrote %q, want one line", line, out)
	}
	var got map[string]json.RawMessage
	if err := json.Unmarshal([]byte(out[0]), &got); err != nil {
		t.Fatal(err)
	}
	if e, ok := got["error"]; ok {
		t.Fatalf("verdict stats <<< %s: %s", line, e)
	}
	return got
}

// checkFields compares the named fields with want (numbers, or arrays of
// numbers, as JSON) to tol absolute.
func checkFields(t *testing.T, got map[string]json.RawMessage, want map[string]string, tol float64) {
	t.Helper()
	for key, w := range want {
		g, ok := got[key]
		if !ok {
			t.Errorf("field %q missing from %v", key, got)
			continue
		}
		if err := sameJSONTol(g, json.RawMessage(w), 1, tol); err != nil {
			t.Errorf("%s = %s, want %s: %v", key, g, w, err)
		}
	}
}

// TestStatsBayesian runs GrowthBook's published Bayesian test vectors
// (github.com/growthbook/growthbook packages/stats/tests/bayesian/test_tests.py
// at 8f1db4456915a8e7b7faf23d5632ca7219d2f469; numbers only) through
// verdict stats. Its binomial and Gaussian vectors are published to 5
// decimals and checked to that rounding; its quantile vectors are published
// in full and checked to 1e-9.
func TestStatsBayesian(t *testing.T) {
	const rounded = 0.5e-5
	t.Run("binomial", func(t *testing.T) {
		got := statsFields(t, `{"kind":"proportion","engine":"bayesian","control":{"n":100,"sum":49},"treatment":{"n":100,"sum":51}}`)
		checkFields(t, got, map[string]string{"rel_effect": "0.04082", "rel_ci": "[-0.24779,0.32943]",
			"chance_to_win": "0.60918", "risk": "[0.0814,0.04058]"}, rounded)
	})
	t.Run("gaussian", func(t *testing.T) {
		got := statsFields(t, `{"kind":"mean","engine":"bayesian","control":{"n":10,"sum":100,"sum_squares":1002.25},"treatment":{"n":10,"sum":105,"sum_squares":1111.5}}`)
		checkFields(t, got, map[string]string{"rel_effect": "0.05", "rel_ci": "[-0.02,0.12]",
			"chance_to_win": "0.91923", "risk": "[0.05131,0.00131]"}, rounded)
	})
	t.Run("gaussian informative", func(t *testing.T) {
		got := statsFields(t, `{"kind":"mean","engine":"bayesian","prior":{"mean":0.1,"variance":0.1,"proper":true},"control":{"n":10,"sum":100,"sum_squares":1002.25},"treatment":{"n":10,"sum":105,"sum_squares":1111.5}}`)
		checkFields(t, got, map[string]string{"rel_effect": "0.05063", "rel_ci": "[-0.01893,0.12019]",
			"chance_to_win": "0.92315", "risk": "[0.05186,0.00123]"}, rounded)
	})
	const arms = `"control":{"n":11054,"n_star":11054,"nu":0.9,"quantile_hat":7.157987489967789,"quantile_lower":7.098780136176828,"quantile_upper":7.217194843758751},` +
		`"treatment":{"n":10861,"n_star":10861,"nu":0.9,"quantile_hat":7.694499927525767,"quantile_lower":7.64180598628119,"quantile_upper":7.747193868770344}`
	t.Run("quantile improper", func(t *testing.T) {
		got := statsFields(t, `{"kind":"quantile","engine":"bayesian",`+arms+`}`)
		checkFields(t, got, map[string]string{"abs_effect": "0.5365124375579775", "abs_ci": "[0.4572559589115422,0.6157689162044128]"}, 1e-9)
	})
	t.Run("quantile flat", func(t *testing.T) {
		got := statsFields(t, `{"kind":"quantile","engine":"bayesian","prior":{"variance":1e6,"proper":true},`+arms+`}`)
		checkFields(t, got, map[string]string{"abs_effect": "0.536512437540855", "abs_ci": "[0.4572559588956844,0.6157689161860256]",
			"rel_effect": "0.07495297222736319", "rel_ci": "[0.06341005842481906,0.08649588602990732]"}, 1e-9)
	})
	t.Run("quantile informative", func(t *testing.T) {
		got := statsFields(t, `{"kind":"quantile","engine":"bayesian","prior":{"variance":1,"proper":true},`+arms+`}`)
		checkFields(t, got, map[string]string{"abs_effect": "0.536495315442269", "abs_ci": "[0.4572401014910488,0.6157505293934892]",
			"rel_effect": "0.07495037261804469", "rel_ci": "[0.06340765898986044,0.08649308624622894]"}, 1e-9)
	})
	t.Run("inverse", func(t *testing.T) {
		up := statsFields(t, `{"kind":"proportion","engine":"bayesian","control":{"n":100,"sum":49},"treatment":{"n":100,"sum":51}}`)
		down := statsFields(t, `{"kind":"proportion","engine":"bayesian","inverse":true,"control":{"n":100,"sum":49},"treatment":{"n":100,"sum":51}}`)
		var cu, cd float64
		var ru, rd [2]float64
		json.Unmarshal(up["chance_to_win"], &cu)
		json.Unmarshal(down["chance_to_win"], &cd)
		json.Unmarshal(up["risk"], &ru)
		json.Unmarshal(down["risk"], &rd)
		if math.Abs(cu+cd-1) > 1e-12 || ru[0] != rd[1] || ru[1] != rd[0] {
			t.Errorf("inverse: chance %v and %v, risks %v and %v; want complementary chances and swapped risks", cu, cd, ru, rd)
		}
	})
}

// TestStatsQuantile: a frequentist p90 comparison of GrowthBook's quantile
// vector arms. The expected numbers are SciPy 1.10.1's: the variances as
// GrowthBook's QuantileStatistic defines them, then
// scipy.stats.ttest_ind_from_stats(equal_var=False) for the p-value and
// scipy.stats.t.isf(0.025, Welch df) for the interval.
func TestStatsQuantile(t *testing.T) {
	got := statsFields(t, `{"kind":"quantile","sequential":false,`+
		`"control":{"n":11054,"n_star":11054,"nu":0.9,"quantile_hat":7.157987489967789,"quantile_lower":7.098780136176828,"quantile_upper":7.217194843758751},`+
		`"treatment":{"n":10861,"n_star":10861,"nu":0.9,"quantile_hat":7.694499927525767,"quantile_lower":7.64180598628119,"quantile_upper":7.747193868770344}}`)
	checkFields(t, got, map[string]string{"abs_effect": "0.5365124375579775", "abs_ci": "[0.4572515306112517,0.6157733445047033]"}, 1e-9)
	var p float64
	json.Unmarshal(got["p_value"], &p)
	if math.Abs(p-5.111375309322781e-40)/5.111375309322781e-40 > 1e-6 {
		t.Errorf("p_value = %g, want 5.111375309322781e-40", p)
	}
}

// TestStatsCUPED feeds the CUPED oracle's cases (scripts/oracle/cuped_oracle.py:
// statsmodels OLS) of mean, count and proportion metrics to verdict stats
// as per-arm pre_sum, pre_sum_squares and sum_pre_products, and checks the
// adjusted comparison and its "cuped" object.
func TestStatsCUPED(t *testing.T) {
	b, err := os.ReadFile(filepath.Join(goldenDir, "cuped.json"))
	if err != nil {
		t.Fatal(err)
	}
	type pre struct {
		Sum        float64 `json:"sum"`
		SumSquares float64 `json:"sum_squares"`
		CrossSum   float64 `json:"cross_sum"`
	}
	var g struct {
		Cases []struct {
			In   map[string]json.RawMessage `json:"in"`
			Want map[string]json.RawMessage `json:"want"`
		} `json:"cases"`
	}
	if err := json.Unmarshal(b, &g); err != nil {
		t.Fatal(err)
	}
	checked := 0
	for i, c := range g.Cases {
		var kind string
		json.Unmarshal(c.In["kind"], &kind)
		if kind == "ratio" { // a ratio's covariate needs more sums than the three fields
			continue
		}
		line := map[string]any{}
		for k, v := range c.In {
			if k != "control_pre" && k != "treatment_pre" {
				line[k] = v
			}
		}
		for _, arm := range []string{"control", "treatment"} {
			var a map[string]float64
			var p pre
			json.Unmarshal(c.In[arm], &a)
			json.Unmarshal(c.In[arm+"_pre"], &p)
			a["pre_sum"], a["pre_sum_squares"], a["sum_pre_products"] = p.Sum, p.SumSquares, p.CrossSum
			if kind == "proportion" {
				delete(a, "sum_squares")
			}
			line[arm] = a
		}
		in, _ := json.Marshal(line)
		got := statsFields(t, string(in))
		var se float64
		json.Unmarshal(c.Want["se"], &se)
		for _, key := range []string{"abs_effect", "abs_ci", "p_value"} {
			if err := sameJSONTol(got[key], c.Want[key], se, 1e-6); err != nil {
				t.Errorf("case %d: %s = %s, want %s: %v", i, key, got[key], c.Want[key], err)
			}
		}
		var cu map[string]json.RawMessage
		json.Unmarshal(got["cuped"], &cu)
		for _, key := range []string{"theta", "variance_reduction"} {
			if err := sameJSONTol(cu[key], c.Want[key], 1e-3, 1e-6); err != nil {
				t.Errorf("case %d: cuped.%s = %s, want %s: %v", i, key, cu[key], c.Want[key], err)
			}
		}
		checked++
	}
	if checked < 20 {
		t.Fatalf("only %d CUPED cases checked", checked)
	}
	t.Logf("%d CUPED cases checked against statsmodels", checked)
}

// TestStatsExitStatus: verdict stats answers every line and then fails
// when one could not be computed, so a script notices.
func TestStatsExitStatus(t *testing.T) {
	var stdout, stderr bytes.Buffer
	in := `{"kind":"srm","observed":[10,12]}` + "\n" + `{"kind":"mean","bogus":1}` + "\n" + `{"kind":"srm","observed":[10,12]}` + "\n"
	err := run(context.Background(), []string{"stats"}, func(string) string { return "" }, strings.NewReader(in), &stdout, &stderr)
	if err == nil || !strings.Contains(err.Error(), "1 of 3 lines could not be computed") {
		t.Errorf("verdict stats with one bad line of three = %v, want an error saying so", err)
	}
	if n := strings.Count(stdout.String(), "\n"); n != 3 {
		t.Errorf("verdict stats wrote %d lines, want 3: %s", n, stdout.String())
	}
}
