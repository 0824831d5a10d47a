package tally

import (
	"fmt"
	"math"
	"slices"
	"strings"

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
	// A quantile metric's level (0 for other kinds), and for an
	// event-level one its events' position in layout.Values (else -1):
	// its x is then 0, its values the events'.
	quantile float64
	values   int
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
		pl := metricPlan{kind: m.Kind, cuped: lookback > 0, values: -1}
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
		case stats.Quantile:
			pl.quantile = m.Quantile
			if !m.EventQuantile() {
				pl.x, err = agg(config.Part{Event: m.Event, Aggregate: m.Aggregate})
			} else if pl.values = slices.Index(t.layout.Values, m.Event); pl.values < 0 {
				err = fmt.Errorf("metric %s: the values of %q are not in the layout", m.Key, m.Event)
			} else {
				pl.x, err = side(m.Event, true)
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
	if pl.values >= 0 {
		return 0, 0, 0, 0 // an event-level quantile
	}
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

// termsLayout is where each metric's terms sit in a compact array: the
// terms a metric has (a ratio's y and CUPED's p are 0 for the others, and
// so are their sums), in the order unitTerms writes them.
type termsLayout struct {
	active []int // per compact term, its position in a full metrics × nSums array
	from   []int // per metric, where its terms start in the compact array
}

func layoutOf(plans []metricPlan) termsLayout {
	var l termsLayout
	for m, pl := range plans {
		l.from = append(l.from, len(l.active))
		add := func(ks ...int) {
			for _, k := range ks {
				l.active = append(l.active, m*nSums+k)
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
	return l
}

// unitTerms appends unit i's terms of metric m, its values capped at cap.
func (t *tally) unitTerms(dst []float64, i int, pl metricPlan, cap float64) []float64 {
	x, y, px, py := t.metricValues(i, pl)
	x, px = min(x, cap), min(px, cap)
	dst = append(dst, x, x*x)
	if pl.ratio {
		dst = append(dst, y, y*y, x*y)
	}
	if pl.cuped {
		dst = append(dst, px, px*px, x*px)
		if pl.ratio {
			dst = append(dst, py, py*py, px*py, x*py, y*px, y*py)
		}
	}
	return dst
}

// groupSums are the units of one group and their terms summed.
type groupSums struct {
	units uint64
	sums  []float64
}

// kept are the sums of the uncapped metrics per group, carried from look
// to look: a look subtracts what the units it changes had, and adds what
// they have now (touch, settle), so that it costs what it changed. A
// capped metric's values move with its cap; its sums are made afresh at
// every look. Every unit's worth of changes, kept is made afresh too,
// so that the rounding of so many additions and subtractions stays far
// below 1e-9.
type kept struct {
	sig     string // the plans it was made for
	plans   []metricPlan
	layout  termsLayout
	groups  []groupSums
	updates int // changes since made afresh
	epoch   uint32
}

// touch takes unit i's terms out of the kept sums before the look changes
// it, once per look; settle puts them back.
func (t *tally) touch(i int) {
	k := t.kept
	if k == nil {
		return
	}
	for len(t.touched) <= i {
		t.touched = append(t.touched, 0)
	}
	if t.touched[i] == k.epoch {
		return
	}
	t.touched[i] = k.epoch
	t.changed = append(t.changed, int32(i))
	if i >= len(t.units) || t.units[i].group < 0 {
		return // new, or in no group: nothing to take out
	}
	t.addUnit(i, -1)
}

// settle puts the units touched by a look back into the kept sums, as
// they are now.
func (t *tally) settle() {
	k := t.kept
	if k == nil {
		return
	}
	for _, i := range t.changed {
		if t.units[i].group >= 0 {
			t.addUnit(int(i), 1)
		}
	}
	k.updates += len(t.changed)
	t.changed = t.changed[:0]
	k.epoch++
}

// addUnit adds (sign 1) or subtracts (-1) unit i's uncapped terms to its
// group's kept sums.
func (t *tally) addUnit(i int, sign float64) {
	k := t.kept
	g := int(t.units[i].group)
	for len(k.groups) <= g {
		k.groups = append(k.groups, groupSums{})
	}
	gs := &k.groups[g]
	if gs.sums == nil {
		gs.sums = make([]float64, len(k.layout.active))
	}
	if sign > 0 {
		gs.units++
	} else {
		gs.units--
	}
	var buf [64]float64
	terms := buf[:0]
	for _, pl := range k.plans {
		terms = t.unitTerms(terms, i, pl, math.Inf(1))
	}
	for j, v := range terms {
		gs.sums[j] += sign * v
	}
}

// keepFresh makes the kept sums afresh for plans (the uncapped ones).
func (t *tally) keepFresh(sig string, plans []metricPlan) {
	k := &kept{sig: sig, plans: plans, layout: layoutOf(plans), epoch: 1}
	if t.kept != nil {
		k.epoch = t.kept.epoch + 1
	}
	k.groups = make([]groupSums, len(t.groups.names))
	terms := make([]float64, 0, len(k.layout.active))
	for i, u := range t.units {
		if u.group < 0 {
			continue
		}
		terms = terms[:0]
		for _, pl := range plans {
			terms = t.unitTerms(terms, i, pl, math.Inf(1))
		}
		gs := &k.groups[u.group]
		if gs.sums == nil {
			gs.sums = make([]float64, len(k.layout.active))
		}
		gs.units++
		for j, v := range terms {
			gs.sums[j] += v
		}
	}
	t.kept = k
}

// stats makes the experiment's sufficient statistics from the units, as
// warehouse.ExperimentStats does in SQL. The uncapped metrics' sums are
// kept from look to look (kept); a capped metric is a pass over the units,
// for its cap and its sums.
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
	var uncapped, capped []int // metrics by position
	var sig strings.Builder
	for m, pl := range plans {
		if pl.percentile == 0 {
			uncapped = append(uncapped, m)
			fmt.Fprintf(&sig, "%d:%+v;", m, pl)
		} else {
			capped = append(capped, m)
		}
	}
	if t.kept == nil || t.kept.sig != sig.String() || t.kept.updates > len(t.units) {
		var ps []metricPlan
		for _, m := range uncapped {
			ps = append(ps, plans[m])
		}
		t.keepFresh(sig.String(), ps)
	}
	k := t.kept

	// Caps: a quantile of the non-zero values of the included units, arms
	// pooled, at 0-based position ⌊percentile · n⌋ (quantileExact's); then
	// those metrics' sums per group.
	included := func(u unit) bool { return u.minVariant == u.maxVariant && known[u.minVariant] }
	cappedGroups := make([]groupSums, len(t.groups.names))
	var cappedActive []int
	if len(capped) > 0 {
		var cplans []metricPlan
		caps := make([]float64, len(capped))
		var vs []float64
		for c, m := range capped {
			pl := plans[m]
			cplans = append(cplans, pl)
			caps[c] = math.Inf(1)
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
				caps[c] = nth(vs, int(pl.percentile*float64(len(vs))))
			}
		}
		cl := layoutOf(cplans)
		terms := make([]float64, 0, len(cl.active))
		for i, u := range t.units {
			if !included(u) {
				continue
			}
			terms = terms[:0]
			for c, pl := range cplans {
				terms = t.unitTerms(terms, i, pl, caps[c])
			}
			gs := &cappedGroups[u.group]
			if gs.sums == nil {
				gs.sums = make([]float64, len(cl.active))
			}
			gs.units++
			for j, v := range terms {
				gs.sums[j] += v
			}
		}
		// From the capped metrics' own layout to the full one.
		for j, at := range cl.active {
			cl.active[j] = capped[at/nSums]*nSums + at%nSums
		}
		cappedActive = cl.active
	}
	// The kept layout is over the uncapped metrics: their positions in
	// the full array.
	keptActive := make([]int, len(k.layout.active))
	for j, at := range k.layout.active {
		keptActive[j] = uncapped[at/nSums]*nSums + at%nSums
	}

	out.Exposed = uint64(len(t.units))
	var first, through int64
	for _, u := range t.units {
		if first == 0 || u.first < first {
			first = u.first
		}
		through = max(through, u.lastExposure, u.lastEvent)
	}
	var single uint64
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
	for gi := range t.groups.names {
		var g groupSums
		if gi < len(k.groups) {
			g = k.groups[gi]
		}
		if g.units == 0 {
			continue
		}
		variant, segments := t.groupOf(int32(gi))
		single += g.units
		if !known[variant] {
			out.UnknownVariant += g.units
			continue
		}
		out.Units[t.variants.names[variant]] += g.units
		for d := -1; d < t.dims; d++ {
			var value uint32
			if d >= 0 {
				value = segments[d]
			}
			c := cellOf(variant, d, value)
			c.units += g.units
			for j, at := range keptActive {
				c.sums[at] += g.sums[j]
			}
			if cg := cappedGroups[gi]; cg.sums != nil {
				for j, at := range cappedActive {
					c.sums[at] += cg.sums[j]
				}
			}
		}
	}
	out.MultiExposed = out.Exposed - single
	quantiles := t.quantiles(plans, included)
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
			if q := quantiles[m]; q != nil {
				cell.Quantile = q[id]
			}
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

// quantiles are each quantile metric's statistics per cell (nil for other
// metrics), as warehouse.ExperimentStats makes them: the cell's values
// sorted, stats.QuantileOf, and for an event-level quantile its units with
// events as clusters.
func (t *tally) quantiles(plans []metricPlan, included func(unit) bool) []map[cellID]*stats.QuantileArm {
	out := make([]map[cellID]*stats.QuantileArm, len(plans))
	for m, pl := range plans {
		if pl.quantile == 0 {
			continue
		}
		values := map[cellID][]float64{}
		units := map[cellID][]int{} // of an event-level quantile
		var one [1]float64
		for i, u := range t.units {
			if !included(u) {
				continue
			}
			vs := one[:]
			if pl.values >= 0 {
				vs = t.vals[i*t.nvalues+pl.values]
				if len(vs) == 0 {
					continue
				}
			} else {
				one[0], _, _, _ = t.metricValues(i, pl)
			}
			for d := -1; d < t.dims; d++ {
				id := cellID{variant: u.minVariant, dim: d}
				if d >= 0 {
					id.value = t.segments[i*t.dims+d]
				}
				values[id] = append(values[id], vs...)
				if pl.values >= 0 {
					units[id] = append(units[id], i)
				}
			}
		}
		arms := make(map[cellID]*stats.QuantileArm, len(values))
		for id, vs := range values {
			slices.Sort(vs)
			a := stats.QuantileOf(vs, pl.quantile)
			if pl.values >= 0 {
				a.Clustered = true
				for _, i := range units[id] {
					var below float64
					ev := t.vals[i*t.nvalues+pl.values]
					for _, v := range ev {
						if v <= a.Hat {
							below++
						}
					}
					a.AddCluster(below, float64(len(ev)))
				}
			}
			arms[id] = &a
		}
		out[m] = arms
	}
	return out
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
