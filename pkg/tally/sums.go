package tally

import (
	"fmt"
	"math"
	"slices"

	"github.com/verdictlabs/verdict/pkg/config"
	"github.com/verdictlabs/verdict/pkg/stats"
	"github.com/verdictlabs/verdict/pkg/warehouse"
)

// part is where one side of a metric's per-unit value comes from: an
// event's count or sum, in the window or in a lookback.
type part struct {
	event int  // position in layout.Events
	count bool // the count, else the sum
	pre   int  // position in layout.Pres of (event, the metric's lookback); -1 without CUPED
}

// metricPlan is how a metric's per-unit values x (and y, a ratio's
// denominator) are made from a unit's counts and sums, before and after
// its first exposure; cap < 0 when the metric is not capped.
type metricPlan struct {
	kind       stats.Kind
	x, y       part
	ratio      bool
	cuped      bool
	percentile float64 // of the cap; 0 for none
}

// plan reads each metric's parts off the layout, as the readout SQL does.
func (t *tally) plan() ([]metricPlan, error) {
	plans := make([]metricPlan, len(t.metrics))
	for i, m := range t.metrics {
		lookback := m.CUPEDLookback()
		side := func(event string, count bool) (part, error) {
			e := slices.Index(t.layout.Events, event)
			if e < 0 {
				return part{}, fmt.Errorf("metric %s: event %q is not in the layout", m.Key, event)
			}
			p := part{event: e, count: count, pre: -1}
			if lookback > 0 {
				if p.pre = slices.Index(t.layout.Pres, warehouse.Pre{Event: event, Lookback: lookback}); p.pre < 0 {
					return part{}, fmt.Errorf("metric %s: lookback %v of %q is not in the layout", m.Key, lookback, event)
				}
			}
			return p, nil
		}
		agg := func(p config.Part) (part, error) { return side(p.Event, p.Aggregate == config.Count) }
		pl := metricPlan{kind: m.Kind, cuped: lookback > 0}
		var err error
		switch m.Kind {
		case stats.Proportion, stats.Count:
			pl.x, err = side(m.Event, true)
		case stats.Mean:
			pl.x, err = agg(config.Part{Event: m.Event, Aggregate: m.Aggregate})
		case stats.Ratio:
			pl.ratio = true
			if pl.x, err = agg(*m.Numerator); err == nil {
				pl.y, err = agg(*m.Denominator)
			}
		default:
			err = fmt.Errorf("metric %s: kind %q", m.Key, m.Kind)
		}
		if err != nil {
			return nil, err
		}
		if m.Cap != nil && m.Kind != stats.Proportion {
			pl.percentile = m.Cap.Percentile
		}
		plans[i] = pl
	}
	return plans, nil
}

// value is side p of unit i: after its first exposure, or (pre) in the
// lookback before it.
func (t *tally) value(i int, p part, pre bool) float64 {
	if pre {
		if p.pre < 0 {
			return 0
		}
		if p.count {
			return float64(t.preCounts[i*t.pre+p.pre])
		}
		return t.preSums[i*t.pre+p.pre]
	}
	if p.count {
		return float64(t.counts[i*t.events+p.event])
	}
	return t.sums[i*t.events+p.event]
}

// metricValues are a unit's x, y, px and py for one metric, before any cap.
func (t *tally) metricValues(i int, pl metricPlan) (x, y, px, py float64) {
	x = t.value(i, pl.x, false)
	if pl.cuped {
		px = t.value(i, pl.x, true)
	}
	if pl.kind == stats.Proportion {
		x, px = b2f(x > 0), b2f(px > 0)
	}
	if pl.ratio {
		y = t.value(i, pl.y, false)
		if pl.cuped {
			py = t.value(i, pl.y, true)
		}
	}
	return x, y, px, py
}

func b2f(b bool) float64 {
	if b {
		return 1
	}
	return 0
}

// The 14 sums of a metric in a cell, in this order.
const (
	sx = iota
	sxx
	sy
	syy
	sxy
	spx
	spxx
	spy
	spyy
	spxpy
	sxpx
	sxpy
	sypx
	sypy
	nSums
)

// cellSums are the sums of one variant in one segment (or overall).
type cellSums struct {
	units uint64
	sums  []float64 // metrics × nSums
}

type cellID struct {
	variant uint32
	dim     int    // -1 overall
	value   uint32 // into values[dim]
}

// stats makes the experiment's sufficient statistics from the units, as
// warehouse.ExperimentStats does in SQL. It is one pass over the units
// (two for a capped metric), without a map lookup or an allocation per
// unit: it runs at every look.
func (t *tally) stats() (warehouse.ExperimentStats, error) {
	exp := t.exp
	out := warehouse.ExperimentStats{Units: make(map[string]uint64, len(exp.Variants))}
	known := make([]bool, 0, len(t.variants.names)+len(exp.Variants))
	for _, v := range exp.Variants {
		out.Units[v.Key] = 0
		id := t.variants.id(v.Key)
		for int(id) >= len(known) {
			known = append(known, false)
		}
		known[id] = true
	}
	for len(known) < len(t.variants.names) {
		known = append(known, false)
	}
	plans, err := t.plan()
	if err != nil {
		return out, err
	}
	included := func(u unit) bool { return u.minVariant == u.maxVariant && known[u.minVariant] }
	// Caps: a quantile of the non-zero values of the included units, arms
	// pooled, at 0-based position ⌊percentile · n⌋ (quantileExact's).
	caps := make([]float64, len(plans))
	var vs []float64
	for m, pl := range plans {
		caps[m] = math.Inf(1)
		if pl.percentile == 0 {
			continue
		}
		vs = vs[:0]
		for i, u := range t.units {
			if !included(u) {
				continue
			}
			if x, _, _, _ := t.metricValues(i, pl); x != 0 {
				vs = append(vs, x)
			}
		}
		if len(vs) > 0 {
			caps[m] = nth(vs, int(pl.percentile*float64(len(vs))))
		}
	}

	// The terms each metric has, in the order unitTerms writes them: a
	// ratio's y and CUPED's p are 0 for the others, and so are their sums.
	var active []int // positions in a full metrics × nSums array
	for m, pl := range plans {
		add := func(ks ...int) {
			for _, k := range ks {
				active = append(active, m*nSums+k)
			}
		}
		add(sx, sxx)
		if pl.ratio {
			add(sy, syy, sxy)
		}
		if pl.cuped {
			add(spx, spxx, sxpx)
			if pl.ratio {
				add(spy, spyy, spxpy, sxpy, sypx, sypy)
			}
		}
	}
	// Units are summed per group (variant and segment values) first: a
	// group then adds to its overall cell and one cell per dimension.
	type groupSums struct {
		units uint64
		sums  []float64 // per active term
	}
	groups := make([]groupSums, len(t.groups.names))
	var first, through int64
	terms := make([]float64, 0, len(active)) // a unit's active terms, capped
	for i, u := range t.units {
		out.Exposed++
		if first == 0 || u.first < first {
			first = u.first
		}
		through = max(through, u.lastExposure, u.lastEvent)
		switch {
		case u.minVariant != u.maxVariant:
			out.MultiExposed++
			continue
		case !known[u.minVariant]:
			out.UnknownVariant++
			continue
		}
		terms = terms[:0]
		for m, pl := range plans {
			x, y, px, py := t.metricValues(i, pl)
			x, px = min(x, caps[m]), min(px, caps[m])
			terms = append(terms, x, x*x)
			if pl.ratio {
				terms = append(terms, y, y*y, x*y)
			}
			if pl.cuped {
				terms = append(terms, px, px*px, x*px)
				if pl.ratio {
					terms = append(terms, py, py*py, px*py, x*py, y*px, y*py)
				}
			}
		}
		g := &groups[u.group]
		if g.sums == nil {
			g.sums = make([]float64, len(active))
		}
		g.units++
		sums := g.sums[:len(terms)]
		for k, v := range terms {
			sums[k] += v
		}
	}

	// Cells by variant, then per dimension by value: slices, grown as
	// values appear, of positions in cells (-1: none yet).
	var cells []cellSums
	var ids []cellID
	index := make([][]int, len(t.variants.names)*(1+t.dims))
	cellOf := func(variant uint32, dim int, value uint32) *cellSums {
		row := &index[int(variant)*(1+t.dims)+dim+1]
		for int(value) >= len(*row) {
			*row = append(*row, -1)
		}
		at := (*row)[value]
		if at < 0 {
			at = len(cells)
			(*row)[value] = at
			cells = append(cells, cellSums{sums: make([]float64, len(plans)*nSums)})
			ids = append(ids, cellID{variant, dim, value})
		}
		return &cells[at]
	}
	for gi, g := range groups {
		if g.units == 0 {
			continue
		}
		variant, segments := t.groupOf(int32(gi))
		out.Units[t.variants.names[variant]] += g.units
		for d := -1; d < t.dims; d++ {
			var value uint32
			if d >= 0 {
				value = segments[d]
			}
			c := cellOf(variant, d, value)
			c.units += g.units
			for k, at := range active {
				c.sums[at] += g.sums[k]
			}
		}
	}
	overall := map[string]bool{}
	for k, id := range ids {
		c := &cells[k]
		variant := t.variants.names[id.variant]
		dim, value := "", ""
		if id.dim >= 0 {
			dim, value = exp.Segments[id.dim], t.values[id.dim].names[id.value]
			if value == "" {
				value = warehouse.NoValue
			}
		} else {
			overall[variant] = true
		}
		for m, mt := range t.metrics {
			s := c.sums[m*nSums : (m+1)*nSums]
			cell := warehouse.Cell{Variant: variant, Metric: mt.Key, Dimension: dim, Value: value,
				Arm: stats.Arm{N: float64(c.units), Sum: s[sx], SumSquares: s[sxx]},
				Pre: stats.Pre{Sum: s[spx], SumSquares: s[spxx], CrossSum: s[sxpx]}}
			if plans[m].ratio {
				cell.Arm.DenSum, cell.Arm.DenSumSquares, cell.Arm.SumProducts = s[sy], s[syy], s[sxy]
				cell.Pre.DenSum, cell.Pre.DenSumSquares, cell.Pre.SumProducts = s[spy], s[spyy], s[spxpy]
				cell.Pre.CrossDen, cell.Pre.DenCrossSum, cell.Pre.DenCrossDen = s[sxpy], s[sypx], s[sypy]
			}
			out.Cells = append(out.Cells, cell)
		}
	}
	// Variants without units still get their overall cells, with N = 0.
	for _, v := range exp.Variants {
		if overall[v.Key] {
			continue
		}
		for _, m := range t.metrics {
			out.Cells = append(out.Cells, warehouse.Cell{Variant: v.Key, Metric: m.Key})
		}
	}
	warehouse.SortCells(out.Cells)
	if first > 0 {
		out.FirstExposure = msTime(first)
		out.DataThrough = msTime(through)
	}
	return out, nil
}

// nth returns the value at 0-based position k of vs sorted, reordering vs:
// quickselect, linear on average, where a sort of every unit's value at
// every look would not be.
func nth(vs []float64, k int) float64 {
	lo, hi := 0, len(vs)-1
	for lo < hi {
		// Median of three as the pivot; Hoare's partition.
		mid := lo + (hi-lo)/2
		if vs[mid] < vs[lo] {
			vs[mid], vs[lo] = vs[lo], vs[mid]
		}
		if vs[hi] < vs[lo] {
			vs[hi], vs[lo] = vs[lo], vs[hi]
		}
		if vs[hi] < vs[mid] {
			vs[hi], vs[mid] = vs[mid], vs[hi]
		}
		pivot := vs[mid]
		i, j := lo, hi
		for i <= j {
			for vs[i] < pivot {
				i++
			}
			for vs[j] > pivot {
				j--
			}
			if i <= j {
				vs[i], vs[j] = vs[j], vs[i]
				i++
				j--
			}
		}
		switch {
		case k <= j:
			hi = j
		case k >= i:
			lo = i
		default:
			return vs[k]
		}
	}
	return vs[k]
}
