package tally

import (
	"fmt"
	"math"
	"reflect"

	"github.com/verdictlabs/verdict/pkg/warehouse"
)

// Diff lists where kept differs from full beyond a relative tolerance tol
// (or an absolute one, for numbers near 0): counts, times and every sum of
// every cell. Nothing when they agree.
func Diff(full, kept warehouse.ExperimentStats, tol float64) []string {
	var out []string
	differ := func(a, b float64) bool {
		return math.Abs(a-b) > tol*max(1, math.Abs(a), math.Abs(b))
	}
	for v, n := range full.Units {
		if kept.Units[v] != n {
			out = append(out, fmt.Sprintf("units of %s: full %d, tally %d", v, n, kept.Units[v]))
		}
	}
	for v, n := range kept.Units {
		if _, ok := full.Units[v]; !ok {
			out = append(out, fmt.Sprintf("units of %s: full none, tally %d", v, n))
		}
	}
	for _, c := range [...]struct {
		what       string
		full, kept uint64
	}{{"exposed units", full.Exposed, kept.Exposed}, {"multi-exposed units", full.MultiExposed, kept.MultiExposed}, {"unknown-variant units", full.UnknownVariant, kept.UnknownVariant}} {
		if c.full != c.kept {
			out = append(out, fmt.Sprintf("%s: full %d, tally %d", c.what, c.full, c.kept))
		}
	}
	if !full.FirstExposure.Equal(kept.FirstExposure) || !full.DataThrough.Equal(kept.DataThrough) {
		out = append(out, fmt.Sprintf("first exposure and data through: full %v and %v, tally %v and %v", full.FirstExposure, full.DataThrough, kept.FirstExposure, kept.DataThrough))
	}
	type key struct{ variant, metric, dimension, value string }
	cells := map[key]warehouse.Cell{}
	for _, c := range kept.Cells {
		cells[key{c.Variant, c.Metric, c.Dimension, c.Value}] = c
	}
	for _, f := range full.Cells {
		k := key{f.Variant, f.Metric, f.Dimension, f.Value}
		name := fmt.Sprintf("%s %s", f.Variant, f.Metric)
		if f.Dimension != "" {
			name += fmt.Sprintf(" [%s = %s]", f.Dimension, f.Value)
		}
		c, ok := cells[k]
		if !ok {
			out = append(out, name+": only in the full recompute")
			continue
		}
		delete(cells, k)
		if (f.Quantile == nil) != (c.Quantile == nil) {
			out = append(out, fmt.Sprintf("%s: quantile statistic full %v, tally %v", name, f.Quantile != nil, c.Quantile != nil))
		}
		pairs := []struct {
			what       string
			full, kept any
		}{{"", f.Arm, c.Arm}, {"pre-exposure ", f.Pre, c.Pre}}
		if f.Quantile != nil && c.Quantile != nil {
			pairs = append(pairs, struct {
				what       string
				full, kept any
			}{"quantile ", *f.Quantile, *c.Quantile})
		}
		for _, pair := range pairs {
			fv, kv := reflect.ValueOf(pair.full), reflect.ValueOf(pair.kept)
			for i := range fv.NumField() {
				if fv.Field(i).Kind() == reflect.Bool {
					if fv.Field(i).Bool() != kv.Field(i).Bool() {
						out = append(out, fmt.Sprintf("%s: %s%s full %v, tally %v", name, pair.what, fv.Type().Field(i).Name, fv.Field(i).Bool(), kv.Field(i).Bool()))
					}
					continue
				}
				a, b := fv.Field(i).Float(), kv.Field(i).Float()
				if differ(a, b) {
					out = append(out, fmt.Sprintf("%s: %s%s full %v, tally %v", name, pair.what, fv.Type().Field(i).Name, a, b))
				}
			}
		}
	}
	for k := range cells {
		out = append(out, fmt.Sprintf("%s %s [%s = %s]: only in the tally", k.variant, k.metric, k.dimension, k.value))
	}
	return out
}
