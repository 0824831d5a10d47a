package report

import (
	"fmt"
	"math"
	"strconv"
	"strings"
	"sync"
	"unicode/utf8"

	"golang.org/x/image/font"
	"golang.org/x/image/font/gofont/gobold"
	"golang.org/x/image/font/gofont/goregular"
	"golang.org/x/image/font/opentype"
	"golang.org/x/image/math/fixed"

	"github.com/verdictlabs/verdict/pkg/readout"
)

// The chart is a forest plot: one row per metric (and per salvaged segment
// or metric), a dot at the relative effect, a bar for its 95% interval, a
// line at zero and, on guardrail rows, the margin beyond which the
// guardrail counts as harmed, with the harmed side shaded.
//
// It is laid out once, in CSS pixels, as a list of shapes (a scene); the PNG
// for the email and the SVG for the page paint the same scene, so they
// look the same. Text is measured with the Go fonts, which the PNG uses.

// ChartWidth is the chart's width in CSS pixels; the PNG is drawn at
// PNGScale times that for sharp text on high-density screens.
const (
	ChartWidth = 640
	PNGScale   = 2
)

const (
	labelX    = 12.0  // left edge of the row labels
	plotX0    = 232.0 // plot area
	plotX1    = 488.0
	valueX    = 628.0 // right edge of the effect column
	rowH      = 34.0
	headH     = 26.0
	titleH    = 30.0
	axisH     = 30.0
	legendH   = 24.0
	labelSize = 12.5
	smallSize = 10.5
)

const (
	colInk     = "#202124"
	colMuted   = "#5f6368"
	colGrid    = "#e8eaed"
	colZero    = "#3c4043"
	colMargin  = "#c5221f"
	colHarm    = "#fce8e6"
	colSalvage = "#b06000"
	colStripe  = "#f8f9fa"
)

type shapeKind int

const (
	rectShape shapeKind = iota
	lineShape
	circleShape
	diamondShape
	textShape
	arrowShape    // a small triangle at (x, y) pointing left (w < 0) or right
	polygonShape  // filled, through pts
	polylineShape // a line of width through pts
)

type anchor int

const (
	start anchor = iota
	middle
	end
)

type shape struct {
	kind       shapeKind
	x, y, w, h float64 // rect: corner and size; line: from (x, y) to (x+w, y+h)
	r          float64 // circle, diamond, arrow: radius
	color      string
	width      float64 // line width
	dash       bool
	text       string
	size       float64
	bold       bool
	anchor     anchor
	title      string // SVG tooltip, for the row's mark
	pts        [][2]float64
}

// scene is a laid-out chart.
type scene struct {
	w, h  float64
	title string // accessible description
	items []shape
}

type row struct {
	label, sub     string
	est, lo, hi    float64
	ok             bool // false: no relative effect (control mean 0)
	color          string
	margin         *float64 // relative position of a guardrail margin
	marginBadAbove bool
	diamond        bool
	value, ci      string
}

type fonts struct{ regular, bold *opentype.Font }

func (f fonts) face(size float64, bold bool) (font.Face, error) {
	ft := f.regular
	if bold {
		ft = f.bold
	}
	return opentype.NewFace(ft, &opentype.FaceOptions{Size: size, DPI: 72, Hinting: font.HintingNone})
}

// goFonts parses the Go fonts compiled into the binary, once.
var goFonts = sync.OnceValues(func() (fonts, error) {
	r, err := opentype.Parse(goregular.TTF)
	if err != nil {
		return fonts{}, fmt.Errorf("parse Go regular font: %w", err)
	}
	b, err := opentype.Parse(gobold.TTF)
	if err != nil {
		return fonts{}, fmt.Errorf("parse Go bold font: %w", err)
	}
	return fonts{r, b}, nil
})

// measureFaces caches a face per size and weight for measure; faces are
// not safe for concurrent use, hence the lock.
var measureFaces = struct {
	sync.Mutex
	m map[[2]float64]font.Face
}{m: map[[2]float64]font.Face{}}

// measure is the advance of s in CSS pixels at size.
func measure(s string, size float64, bold bool) float64 {
	key := [2]float64{size, 0}
	if bold {
		key[1] = 1
	}
	measureFaces.Lock()
	defer measureFaces.Unlock()
	face, ok := measureFaces.m[key]
	if !ok {
		fs, err := goFonts()
		if err == nil {
			face, err = fs.face(size, bold)
		}
		if err != nil {
			return float64(utf8.RuneCountInString(s)) * size * 0.6
		}
		measureFaces.m[key] = face
	}
	return fix(font.MeasureString(face, s))
}

func fix(x fixed.Int26_6) float64 { return float64(x) / 64 }

// fit shortens s with an ellipsis until it is at most w wide.
func fit(s string, size float64, bold bool, w float64) string {
	if measure(s, size, bold) <= w {
		return s
	}
	rs := []rune(s)
	for len(rs) > 1 {
		rs = rs[:len(rs)-1]
		if t := string(rs) + "…"; measure(t, size, bold) <= w {
			return t
		}
	}
	return "…"
}

// layoutChart lays out the forest plot of r.
func layoutChart(r readout.Readout) scene {
	metrics, salvage := metricRows(r), salvageRows(r)
	lo, hi := domain(append(append([]row{}, metrics...), salvage...))
	ticks := niceTicks(lo, hi)
	lo, hi = math.Min(lo, ticks[0]), math.Max(hi, ticks[len(ticks)-1])
	xOf := func(v float64) float64 {
		return plotX0 + (v-lo)/(hi-lo)*(plotX1-plotX0)
	}

	sc := scene{w: ChartWidth}
	add := func(s shape) { sc.items = append(sc.items, s) }
	y := 0.0
	add(shape{kind: textShape, x: labelX, y: 20, text: "Relative effect against control, with 95% intervals", size: 13, bold: true, color: colInk})
	y += titleH

	section := func(name string, rows []row) {
		if len(rows) == 0 {
			return
		}
		add(shape{kind: textShape, x: labelX, y: y + 18, text: name, size: 11, bold: true, color: colMuted})
		add(shape{kind: rectShape, x: labelX, y: y + headH - 1, w: valueX - labelX, h: 1, color: colGrid})
		y += headH
		top := y
		var bg, fg []shape
		for i, rw := range rows {
			b, f := rowShapes(rw, i, y, lo, hi, xOf)
			bg, fg = append(bg, b...), append(fg, f...)
			y += rowH
		}
		// Stripes and shading, then the grid and the zero line, then the
		// marks and labels on top.
		sc.items = append(sc.items, bg...)
		for _, t := range ticks {
			c, w := colGrid, 1.0
			if t == 0 {
				c, w = colZero, 1.5
			}
			add(shape{kind: lineShape, x: xOf(t), y: top, h: y - top, width: w, color: c})
		}
		sc.items = append(sc.items, fg...)
	}
	section("METRICS", metrics)
	section("SALVAGED: WORTH KEEPING", salvage)
	if len(metrics)+len(salvage) == 0 {
		add(shape{kind: textShape, x: ChartWidth / 2, y: y + 24, text: "No metric has been compared yet.", size: labelSize, color: colMuted, anchor: middle})
		y += 40
	}

	// Axis.
	add(shape{kind: rectShape, x: plotX0, y: y, w: plotX1 - plotX0, h: 1, color: colMuted})
	for _, t := range ticks {
		add(shape{kind: rectShape, x: xOf(t) - 0.5, y: y, w: 1, h: 4, color: colMuted})
		add(shape{kind: textShape, x: xOf(t), y: y + 16, text: tickLabel(t), size: smallSize, color: colMuted, anchor: middle})
	}
	y += axisH
	// Legend.
	lx := labelX
	legend := func(k shapeKind, c, text string) {
		switch k {
		case circleShape:
			add(shape{kind: circleShape, x: lx + 5, y: y + 8, r: 4.5, color: c})
		case diamondShape:
			add(shape{kind: diamondShape, x: lx + 5, y: y + 8, r: 6, color: c})
		case lineShape:
			add(shape{kind: lineShape, x: lx + 5, y: y + 1, h: 14, width: 1.5, dash: true, color: c})
		}
		add(shape{kind: textShape, x: lx + 14, y: y + 12, text: text, size: smallSize, color: colMuted})
		lx += 14 + measure(text, smallSize, false) + 16
	}
	legend(circleShape, outcomeColor(readout.Better), "better")
	legend(circleShape, outcomeColor(readout.Worse), "worse")
	legend(circleShape, outcomeColor(readout.Inconclusive), "no clear change")
	if len(salvage) > 0 {
		legend(diamondShape, colSalvage, "salvaged")
	}
	legend(lineShape, colMargin, "guardrail margin")
	y += legendH
	sc.h = math.Ceil(y)
	sc.title = chartTitle(r, metrics, salvage)
	return sc
}

// metricRows are the chart's rows of every arm's metrics.
func metricRows(r readout.Readout) []row {
	multi := len(r.Arms) > 1
	var metrics []row
	for _, a := range r.Arms {
		for _, m := range a.Metrics {
			rw := row{label: m.Metric, sub: string(m.Role), color: outcomeColor(m.Outcome)}
			if multi {
				rw.label = a.Variant + " · " + m.Metric
			}
			if m.Direction == "decrease" {
				rw.sub += " · lower is better"
			} else {
				rw.sub += " · higher is better"
			}
			rw.effect(m.RelEffect, m.RelCI, m.AbsEffect)
			if m.Role == readout.Guardrail && m.Margin != nil {
				mg := *m.Margin
				rw.marginBadAbove = m.Direction == "decrease"
				if !rw.marginBadAbove {
					mg = -mg
				}
				rw.margin = &mg
				if m.BeyondMargin != nil && *m.BeyondMargin {
					rw.color = outcomeColor(readout.Worse)
				}
			}
			metrics = append(metrics, rw)
		}
	}
	return metrics
}

// salvageRows are the chart's rows of what is worth keeping.
func salvageRows(r readout.Readout) []row {
	var salvage []row
	for _, s := range r.Salvage {
		rw := row{label: where(s), sub: "salvage · " + s.Variant, color: colSalvage, diamond: true}
		if s.Kind == readout.SalvageSegment {
			rw.sub = "salvage · " + s.Metric
			if len(r.Arms) > 1 {
				rw.sub += " · " + s.Variant
			}
		}
		rw.effect(s.RelEffect, s.RelCI, s.AbsEffect)
		salvage = append(salvage, rw)
	}
	return salvage
}

// effect sets the row's mark and numbers: the relative effect and its
// interval, or the absolute effect when there is no relative one.
func (rw *row) effect(rel *float64, relCI *readout.Interval, abs float64) {
	if rel != nil && relCI != nil {
		rw.ok, rw.est, rw.lo, rw.hi = true, *rel, relCI[0], relCI[1]
		rw.value, rw.ci = readout.Percent(*rel), "["+readout.Percent(relCI[0])+", "+readout.Percent(relCI[1])+"]"
		return
	}
	rw.value, rw.ci = readout.Number(abs, true), "absolute"
}

// rowShapes lays out the ith row at y: its background (stripe, harmed
// side of a margin) and its foreground (labels, numbers, interval, mark).
func rowShapes(rw row, i int, y, lo, hi float64, xOf func(float64) float64) (bg, fg []shape) {
	cy := y + rowH/2
	if i%2 == 1 {
		bg = append(bg, shape{kind: rectShape, x: labelX - 4, y: y, w: valueX - labelX + 8, h: rowH, color: colStripe})
	}
	if rw.margin != nil {
		// Shade the harmed side of the margin, then mark the margin.
		mx := xOf(*rw.margin)
		if rw.marginBadAbove {
			bg = append(bg, shape{kind: rectShape, x: mx, y: y + 3, w: plotX1 - mx, h: rowH - 6, color: colHarm})
		} else {
			bg = append(bg, shape{kind: rectShape, x: plotX0, y: y + 3, w: mx - plotX0, h: rowH - 6, color: colHarm})
		}
		fg = append(fg, shape{kind: lineShape, x: mx, y: y + 3, h: rowH - 6, width: 1.5, color: colMargin, dash: true,
			title: "guardrail margin " + readout.Percent(*rw.margin)})
	}
	fg = append(fg,
		shape{kind: textShape, x: labelX, y: cy - 2, text: fit(rw.label, labelSize, false, plotX0-labelX-12), size: labelSize, color: colInk},
		shape{kind: textShape, x: labelX, y: cy + 11, text: fit(rw.sub, smallSize, false, plotX0-labelX-12), size: smallSize, color: colMuted},
		shape{kind: textShape, x: valueX, y: cy - 2, text: rw.value, size: labelSize, bold: true, color: rw.color, anchor: end},
		shape{kind: textShape, x: valueX, y: cy + 11, text: rw.ci, size: smallSize, color: colMuted, anchor: end})
	if !rw.ok {
		fg = append(fg, shape{kind: textShape, x: (plotX0 + plotX1) / 2, y: cy + 4, text: "no relative effect: control mean is 0", size: smallSize, color: colMuted, anchor: middle})
		return bg, fg
	}
	tip := rw.label + ": " + rw.value + " " + rw.ci
	a, b := xOf(math.Max(rw.lo, lo)), xOf(math.Min(rw.hi, hi))
	fg = append(fg, shape{kind: lineShape, x: a, y: cy, w: b - a, width: 3, color: rw.color, title: tip})
	if rw.lo < lo {
		fg = append(fg, shape{kind: arrowShape, x: a, y: cy, w: -1, r: 5, color: rw.color})
	}
	if rw.hi > hi {
		fg = append(fg, shape{kind: arrowShape, x: b, y: cy, w: 1, r: 5, color: rw.color})
	}
	ex := xOf(math.Min(math.Max(rw.est, lo), hi))
	if rw.diamond {
		fg = append(fg, shape{kind: diamondShape, x: ex, y: cy, r: 7, color: rw.color, title: tip})
	} else {
		fg = append(fg, shape{kind: circleShape, x: ex, y: cy, r: 5.5, color: rw.color, title: tip})
	}
	return bg, fg
}

func chartTitle(r readout.Readout, metrics, salvage []row) string {
	var b strings.Builder
	b.WriteString("Forest plot of relative effects for " + r.Experiment + ". ")
	for _, rw := range append(append([]row{}, metrics...), salvage...) {
		b.WriteString(rw.label + " (" + rw.sub + "): " + rw.value + " " + rw.ci + ". ")
	}
	return strings.TrimSpace(b.String())
}

// domain is the range of relative effects to show: every interval and
// margin, and zero, with some air; at most −100% to +100%, beyond which
// intervals end in an arrow.
func domain(rows []row) (float64, float64) {
	lo, hi := 0.0, 0.0
	for _, r := range rows {
		if r.ok {
			lo, hi = math.Min(lo, r.lo), math.Max(hi, r.hi)
		}
		if r.margin != nil {
			lo, hi = math.Min(lo, *r.margin), math.Max(hi, *r.margin)
		}
	}
	if hi-lo < 0.02 {
		lo, hi = lo-0.01, hi+0.01
	}
	pad := (hi - lo) * 0.06
	return math.Max(lo-pad, -1), math.Min(hi+pad, 1)
}

// niceTicks are 3 to 7 round tick values covering [lo, hi].
func niceTicks(lo, hi float64) []float64 {
	span := hi - lo
	raw := span / 5
	p := math.Pow(10, math.Floor(math.Log10(raw)))
	step := p
	for _, m := range []float64{1, 2, 2.5, 5, 10} {
		if m*p >= raw {
			step = m * p
			break
		}
	}
	first := math.Floor(lo/step) * step
	var ticks []float64
	for t := first; t <= hi+step*1e-9 || len(ticks) < 2; t += step {
		ticks = append(ticks, math.Round(t/step)*step)
		if len(ticks) > 12 {
			break
		}
	}
	if ticks[len(ticks)-1] < hi {
		ticks = append(ticks, ticks[len(ticks)-1]+step)
	}
	return ticks
}

func tickLabel(t float64) string {
	if t == 0 {
		return "0"
	}
	v := math.Round(math.Abs(t)*1e6) / 1e4 // percent, without float noise
	s := strconv.FormatFloat(v, 'f', -1, 64)
	if t > 0 {
		return "+" + s + "%"
	}
	return "-" + s + "%"
}
