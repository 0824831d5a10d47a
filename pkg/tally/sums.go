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
// warehouse.ExperimentStats does in SQL.
func (t *tally) stats() (warehouse.ExperimentStats, error) {
	exp := t.exp
	out := warehouse.ExperimentStats{Units: make(map[string]uint64, len(exp.Variants))}
	known := make(map[uint32]bool, len(exp.Variants))
	for _, v := range exp.Variants {
		out.Units[v.Key] = 0
		known[t.variants.id(v.Key)] = true
	}
	plans, err := t.plan()
	if err != nil {
		return out, err
	}
	// Caps: a quantile of the non-zero values of the included units, arms
	// pooled, at 0-based position ⌊percentile · n⌋ (quantileExact's).
	caps := make([]float64, len(plans))
	for m, pl := range plans {
		caps[m] = math.Inf(1)
		if pl.percentile == 0 {
			continue
		}
		var vs []float64
		for i, u := range t.units {
			if u.minVariant != u.maxVariant || !known[u.minVariant] {
				continue
			}
			if x, _, _, _ := t.metricValues(i, pl); x != 0 {
				vs = append(vs, x)
			}
		}
		if len(vs) > 0 {
			slices.Sort(vs)
			caps[m] = vs[int(pl.percentile*float64(len(vs)))]
		}
	}

	cells := map[cellID]*cellSums{}
	var order []cellID
	add := func(id cellID, i int) *cellSums {
		c, ok := cells[id]
		if !ok {
			c = &cellSums{sums: make([]float64, len(plans)*nSums)}
			cells[id] = c
			order = append(order, id)
		}
		c.units++
		return c
	}
	var first, through int64
	xs := make([]float64, len(plans)*4) // a unit's x, y, px, py per metric, capped
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
		out.Units[t.variants.names[u.minVariant]]++
		for m, pl := range plans {
			x, y, px, py := t.metricValues(i, pl)
			xs[m*4], xs[m*4+1], xs[m*4+2], xs[m*4+3] = min(x, caps[m]), y, min(px, caps[m]), py
		}
		targets := []*cellSums{add(cellID{u.minVariant, -1, 0}, i)}
		for d := range t.dims {
			targets = append(targets, add(cellID{u.minVariant, d, t.segments[i*t.dims+d]}, i))
		}
		for _, c := range targets {
			for m := range plans {
				x, y, px, py := xs[m*4], xs[m*4+1], xs[m*4+2], xs[m*4+3]
				s := c.sums[m*nSums : (m+1)*nSums]
				s[sx] += x
				s[sxx] += x * x
				s[sy] += y
				s[syy] += y * y
				s[sxy] += x * y
				s[spx] += px
				s[spxx] += px * px
				s[spy] += py
				s[spyy] += py * py
				s[spxpy] += px * py
				s[sxpx] += x * px
				s[sxpy] += x * py
				s[sypx] += y * px
				s[sypy] += y * py
			}
		}
	}
	overall := map[string]bool{}
	for _, id := range order {
		c := cells[id]
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
