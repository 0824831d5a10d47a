package tally

import (
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/verdictlabs/verdict/pkg/stats"
	"github.com/verdictlabs/verdict/pkg/warehouse"
)

func TestDiff(t *testing.T) {
	// Diff reads every field of Arm and Pre as a float64.
	for _, v := range []any{stats.Arm{}, stats.Pre{}} {
		rt := reflect.TypeOf(v)
		for i := range rt.NumField() {
			if rt.Field(i).Type.Kind() != reflect.Float64 {
				t.Errorf("%s.%s is %s: Diff compares float64 fields only", rt.Name(), rt.Field(i).Name, rt.Field(i).Type)
			}
		}
	}
	at := time.Date(2026, 11, 2, 0, 0, 0, 0, time.UTC)
	full := warehouse.ExperimentStats{
		Units: map[string]uint64{"a": 10, "b": 12}, Exposed: 23, MultiExposed: 1, FirstExposure: at, DataThrough: at,
		Cells: []warehouse.Cell{
			{Variant: "a", Metric: "m", Arm: stats.Arm{N: 10, Sum: 1e6, SumSquares: 3}},
			{Variant: "b", Metric: "m", Arm: stats.Arm{N: 12, Sum: 5}, Pre: stats.Pre{Sum: 2}},
			{Variant: "b", Metric: "m", Dimension: "platform", Value: "ios", Arm: stats.Arm{N: 2}},
		},
	}
	if d := Diff(full, full, 1e-9); len(d) != 0 {
		t.Errorf("Diff(x, x) = %q, want nothing", d)
	}
	kept := full
	kept.Units = map[string]uint64{"a": 10, "b": 11}
	kept.Cells = []warehouse.Cell{
		{Variant: "a", Metric: "m", Arm: stats.Arm{N: 10, Sum: 1e6 * (1 + 1e-12), SumSquares: 3}}, // within 1e-9
		{Variant: "b", Metric: "m", Arm: stats.Arm{N: 12, Sum: 5}, Pre: stats.Pre{Sum: 2.5}},
		{Variant: "b", Metric: "m", Dimension: "platform", Value: "web", Arm: stats.Arm{N: 2}},
	}
	got := strings.Join(Diff(full, kept, 1e-9), "\n")
	for _, want := range []string{"units of b: full 12, tally 11", "b m: pre-exposure Sum full 2, tally 2.5", "[platform = ios]: only in the full recompute", "[platform = web]: only in the tally"} {
		if !strings.Contains(got, want) {
			t.Errorf("Diff lacks %q:\n%s", want, got)
		}
	}
	if strings.Contains(got, "a m") {
		t.Errorf("Diff reports a difference within the tolerance:\n%s", got)
	}
}

// TestNth: the quickselect picks what a sort puts at each position, with
// duplicates, sorted and reversed inputs.
func TestNth(t *testing.T) {
	for _, in := range [][]float64{
		{5}, {2, 1}, {1, 1, 1, 1}, {3, 1, 2, 3, 1, 2, 3}, {1, 2, 3, 4, 5, 6, 7, 8}, {8, 7, 6, 5, 4, 3, 2, 1},
		{0.5, -2, 7, 7, 7, 1e9, -1e9, 3, 3, 0},
	} {
		want := slices.Clone(in)
		slices.Sort(want)
		for k := range in {
			if got := nth(slices.Clone(in), k); got != want[k] {
				t.Errorf("nth(%v, %d) = %v, want %v", in, k, got, want[k])
			}
		}
	}
}
