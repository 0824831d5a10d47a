package report

import (
	"fmt"
	"html/template"
	"math"
	"strconv"
	"strings"

	"github.com/verdictlabs/verdict/pkg/readout"
)

// The effects over time: per treatment and metric with a series, two
// panels side by side, each a line (the effect) in a band (its interval)
// on the metric's own scale, in its own units (a proportion in percentage
// points): on the left the cumulative effect as of each day since the
// start, on the right the effect on each day since exposure. Above them,
// the metric and what the novelty test found. It is a scene, as the forest
// plot is, painted as SVG for the page and PNG for the email.

const (
	seriesHeadH  = 46.0  // metric name and novelty line
	seriesPlotH  = 104.0 // a panel's plot area
	seriesAxisH  = 30.0  // day labels and the panel's caption
	seriesGap    = 14.0  // between rows
	panelW       = 246.0 // a panel's plot width
	panelLeft    = 62.0  // left panel's plot x; its tick labels are left of it
	panelRight   = 382.0 // right panel's plot x
	colBand      = "#d2e3fc"
	colLine      = "#1967d2"
	seriesLineW  = 2.0
	seriesTitleH = 30.0
)

// TimeChartSVG draws r's effects over time as inline SVG for the page; ""
// when no metric has a series.
func TimeChartSVG(r readout.Readout) template.HTML {
	sc, ok := layoutTimeChart(r)
	if !ok {
		return ""
	}
	return template.HTML(strings.Replace(paintSVG(sc), `class="forest"`, `class="over-time"`, 1))
}

// layoutTimeChart lays the series of r out; false when there is none.
func layoutTimeChart(r readout.Readout) (scene, bool) {
	sc := scene{w: ChartWidth}
	add := func(s shape) { sc.items = append(sc.items, s) }
	text := func(x, y float64, s string, size float64, bold bool, color string, a anchor) {
		add(shape{kind: textShape, x: x, y: y, text: s, size: size, bold: bold, color: color, anchor: a})
	}
	y := seriesTitleH
	text(labelX, 20, "Effects over time: treatment − control, with the interval", labelSize+1, true, colInk, start)
	var desc []string
	for _, a := range r.Arms {
		for _, m := range a.Metrics {
			s := m.Series
			if s == nil || len(s.Cumulative) == 0 {
				continue
			}
			label := m.Metric
			if len(r.Arms) > 1 {
				label = a.Variant + " · " + m.Metric
			}
			scale, unit := 1.0, ""
			if m.Kind == "proportion" {
				scale, unit = 100, " pp"
			}
			text(labelX, y+14, fit(label, labelSize, true, 300), labelSize, true, colInk, start)
			line := noveltyText(m.Novelty)
			text(labelX, y+31, fit(line, smallSize, false, ChartWidth-2*labelX), smallSize, false, colMuted, start)
			top := y + seriesHeadH
			lo, hi := 0.0, 0.0
			for _, p := range append(append([]readout.Point{}, s.Cumulative...), s.SinceExposure...) {
				lo, hi = math.Min(lo, p.CI[0]*scale), math.Max(hi, p.CI[1]*scale)
			}
			if hi-lo == 0 {
				lo, hi = -1, 1
			}
			ticks := niceTicks(lo, hi)
			lo, hi = math.Min(lo, ticks[0]), math.Max(hi, ticks[len(ticks)-1])
			yOf := func(v float64) float64 { return top + seriesPlotH*(hi-v*scale)/(hi-lo) }
			panel := func(x0 float64, points []readout.Point, caption string) {
				// Grid and tick labels, then the zero line.
				for _, t := range ticks {
					ty := top + seriesPlotH*(hi-t)/(hi-lo)
					add(shape{kind: lineShape, x: x0, y: ty, w: panelW, color: colGrid, width: 1})
					text(x0-6, ty+3.5, tickText(t, unit), smallSize, false, colMuted, end)
				}
				add(shape{kind: lineShape, x: x0, y: yOf(0), w: panelW, color: colZero, width: 1, dash: true})
				text(x0+panelW/2, top+seriesPlotH+seriesAxisH-4, caption, smallSize, false, colMuted, middle)
				if len(points) == 0 {
					text(x0+panelW/2, top+seriesPlotH/2, "no day complete yet", smallSize, false, colMuted, middle)
					return
				}
				first, last := points[0].Day, points[len(points)-1].Day
				xOf := func(d int) float64 {
					if last == first {
						return x0 + panelW/2
					}
					return x0 + panelW*float64(d-first)/float64(last-first)
				}
				for _, d := range dayTicks(first, last) {
					text(xOf(d), top+seriesPlotH+13, strconv.Itoa(d), smallSize, false, colMuted, middle)
				}
				if len(points) == 1 {
					p := points[0]
					add(shape{kind: lineShape, x: xOf(p.Day), y: yOf(p.CI[1]), h: yOf(p.CI[0]) - yOf(p.CI[1]), color: colBand, width: 6})
					add(shape{kind: circleShape, x: xOf(p.Day), y: yOf(p.AbsEffect), r: 4, color: colLine, title: pointTitle(m.Metric, p, scale, unit)})
					return
				}
				var band, line [][2]float64
				for _, p := range points {
					band = append(band, [2]float64{xOf(p.Day), yOf(p.CI[1])})
					line = append(line, [2]float64{xOf(p.Day), yOf(p.AbsEffect)})
				}
				for i := len(points) - 1; i >= 0; i-- {
					band = append(band, [2]float64{xOf(points[i].Day), yOf(points[i].CI[0])})
				}
				add(shape{kind: polygonShape, pts: band, color: colBand})
				add(shape{kind: lineShape, x: x0, y: yOf(0), w: panelW, color: colZero, width: 1, dash: true})
				add(shape{kind: polylineShape, pts: line, color: colLine, width: seriesLineW})
				p := points[len(points)-1]
				add(shape{kind: circleShape, x: xOf(p.Day), y: yOf(p.AbsEffect), r: 3.5, color: colLine, title: pointTitle(m.Metric, p, scale, unit)})
			}
			panel(panelLeft, s.Cumulative, "cumulative, by day since the start")
			panel(panelRight, s.SinceExposure, "that day alone, by day since exposure")
			p := s.Cumulative[len(s.Cumulative)-1]
			desc = append(desc, fmt.Sprintf("%s: %d days, last %s%s [%s, %s]; %s.", label, len(s.Cumulative),
				readout.Number(p.AbsEffect*scale, true), unit, readout.Number(p.CI[0]*scale, true), readout.Number(p.CI[1]*scale, true), line))
			y = top + seriesPlotH + seriesAxisH + seriesGap
		}
	}
	if len(desc) == 0 {
		return scene{}, false
	}
	sc.h = y
	sc.title = "Effects over time. " + strings.Join(desc, " ")
	return sc, true
}

// noveltyText says what the novelty test found, in a line.
func noveltyText(n *readout.Novelty) string {
	if n == nil {
		return "No novelty test for this metric."
	}
	switch n.Status {
	case readout.NoveltyNotEnoughData:
		return fmt.Sprintf("Novelty: not enough data yet (%d units have their whole window).", n.Units)
	case readout.NoveltyStable:
		return fmt.Sprintf("Novelty: none shown. Lift %s in the first %s after exposure, %s after.", readout.Percent(n.Early.RelEffect), n.Split, n.LateLift())
	case readout.NoveltyDecaying:
		return fmt.Sprintf("Novelty: the lift decays, %s in the first %s after exposure, %s after.", readout.Percent(n.Early.RelEffect), n.Split, n.LateLift())
	case readout.NoveltyGrowing:
		return fmt.Sprintf("Novelty: the lift grows, %s in the first %s after exposure, %s after.", readout.Percent(n.Early.RelEffect), n.Split, n.LateLift())
	}
	return ""
}

// pointTitle is a point's tooltip.
func pointTitle(metric string, p readout.Point, scale float64, unit string) string {
	return fmt.Sprintf("%s, day %d: %s%s [%s, %s] over %d units", metric, p.Day, readout.Number(p.AbsEffect*scale, true), unit, readout.Number(p.CI[0]*scale, true), readout.Number(p.CI[1]*scale, true), p.Units)
}

// tickText is a tick of the metric's scale.
func tickText(t float64, unit string) string {
	return readout.Number(math.Round(t*1e9)/1e9, true) + unit
}

// dayTicks are up to 6 days from first to last, round where they can be.
func dayTicks(first, last int) []int {
	if last <= first {
		return []int{first}
	}
	step := 1
	for _, s := range []int{1, 2, 5, 7, 10, 14, 30, 60, 90} {
		step = s
		if (last-first)/s <= 5 {
			break
		}
	}
	var out []int
	for d := first; d <= last; d += step {
		out = append(out, d)
	}
	if out[len(out)-1] != last && last-out[len(out)-1] >= step/2 {
		out = append(out, last)
	}
	return out
}
