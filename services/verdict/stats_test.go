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
	if err := run(context.Background(), []string{"stats"}, getenv, strings.NewReader(input), &stdout, &stderr); err != nil {
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
		{"unknown fields are ignored", strings.Replace(mean, `{"kind"`, `{"id":"x","kind"`, 1), []string{`"abs_effect":0.2999999999999998,`}},
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
		out := statsLine(7, line)
		if bytes.Count(out, []byte("\n")) != 1 || out[len(out)-1] != '\n' {
			t.Fatalf("statsLine(%q) = %q, want one line", line, out)
		}
		var got map[string]json.RawMessage
		if err := json.Unmarshal(out, &got); err != nil {
			t.Fatalf("statsLine(%q) = %q, not a JSON object: %v", line, out, err)
		}
		_, isErr := got["error"]
		_, hasP := got["p_value"]
		if isErr == hasP {
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
