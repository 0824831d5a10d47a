package rules

import (
	"cmp"
	"slices"

	"github.com/verdictlabs/verdict/pkg/readout"
	"github.com/verdictlabs/verdict/pkg/stats"
	"github.com/verdictlabs/verdict/pkg/warehouse"
)

// MaxSegmentValues is how many values of one segment dimension a readout
// tests: the ones with the most units. A dimension is an event attribute,
// so its values are whatever clients send (an app version, a city, or
// 3,000 made-up platforms); the rest are summed into one value,
// readout.OtherSegment, and counted in health.segment_values_grouped. So a
// readout, its Holm families and the decision state stay bounded whatever
// the input.
const MaxSegmentValues = 20

// groupSegments keeps, per dimension, the max values with the most units
// (all variants together; ties by value) and sums the cells of the others
// into readout.OtherSegment; their sufficient statistics add up, so the
// group's numbers are what its units would give together. It returns how
// many values of each dimension were grouped (nil when none).
func groupSegments(st warehouse.ExperimentStats, max int) (warehouse.ExperimentStats, map[string]int) {
	// Units per dimension and value: one metric's N, every variant.
	var metric string
	for _, c := range st.Cells {
		if c.Dimension != "" && (metric == "" || c.Metric < metric) {
			metric = c.Metric
		}
	}
	units := map[string]map[string]float64{}
	for _, c := range st.Cells {
		if c.Dimension == "" || c.Metric != metric {
			continue
		}
		if units[c.Dimension] == nil {
			units[c.Dimension] = map[string]float64{}
		}
		units[c.Dimension][c.Value] += c.Arm.N
	}
	kept := map[string]map[string]bool{}
	var grouped map[string]int
	for dim, byValue := range units {
		if len(byValue) <= max {
			continue
		}
		values := make([]string, 0, len(byValue))
		for v := range byValue {
			values = append(values, v)
		}
		slices.SortFunc(values, func(a, b string) int {
			return cmp.Or(cmp.Compare(byValue[b], byValue[a]), cmp.Compare(a, b))
		})
		kept[dim] = map[string]bool{}
		for _, v := range values[:max] {
			kept[dim][v] = true
		}
		if grouped == nil {
			grouped = map[string]int{}
		}
		grouped[dim] = len(values) - max
	}
	if grouped == nil {
		return st, nil
	}
	type key struct{ variant, metric, dim string }
	other := map[key]*warehouse.Cell{}
	out := st
	out.Cells = make([]warehouse.Cell, 0, len(st.Cells))
	var order []key
	for _, c := range st.Cells {
		if kept[c.Dimension] == nil || kept[c.Dimension][c.Value] {
			out.Cells = append(out.Cells, c)
			continue
		}
		k := key{c.Variant, c.Metric, c.Dimension}
		o, ok := other[k]
		if !ok {
			o = &warehouse.Cell{Variant: c.Variant, Metric: c.Metric, Dimension: c.Dimension, Value: readout.OtherSegment}
			other[k] = o
			order = append(order, k)
		}
		o.Arm = addArm(o.Arm, c.Arm)
		o.Pre = addPre(o.Pre, c.Pre)
	}
	for _, k := range order {
		out.Cells = append(out.Cells, *other[k])
	}
	return out, grouped
}

func addArm(a, b stats.Arm) stats.Arm {
	return stats.Arm{N: a.N + b.N, Sum: a.Sum + b.Sum, SumSquares: a.SumSquares + b.SumSquares,
		DenSum: a.DenSum + b.DenSum, DenSumSquares: a.DenSumSquares + b.DenSumSquares, SumProducts: a.SumProducts + b.SumProducts}
}

func addPre(a, b stats.Pre) stats.Pre {
	return stats.Pre{Sum: a.Sum + b.Sum, SumSquares: a.SumSquares + b.SumSquares, DenSum: a.DenSum + b.DenSum,
		DenSumSquares: a.DenSumSquares + b.DenSumSquares, SumProducts: a.SumProducts + b.SumProducts,
		CrossSum: a.CrossSum + b.CrossSum, CrossDen: a.CrossDen + b.CrossDen, DenCrossSum: a.DenCrossSum + b.DenCrossSum, DenCrossDen: a.DenCrossDen + b.DenCrossDen}
}

// GroupSegments is what Evaluate tests: st with each dimension's values
// beyond MaxSegmentValues taken together.
func GroupSegments(st warehouse.ExperimentStats) warehouse.ExperimentStats {
	out, _ := groupSegments(st, MaxSegmentValues)
	return out
}
