package report

import (
	"fmt"
	"html"
	"html/template"
	"strconv"
	"strings"

	"github.com/verdictlabs/verdict/pkg/readout"
)

// ChartSVG draws the forest plot of r as inline SVG for an HTML page: the
// same layout as the email's PNG, scalable, with a title and description for
// screen readers and a tooltip on every mark. Every piece of text in it is
// escaped.
func ChartSVG(r readout.Readout) template.HTML {
	return template.HTML(paintSVG(layoutChart(r)))
}

func paintSVG(sc scene) string {
	var b strings.Builder
	f := func(v float64) string { return strconv.FormatFloat(v, 'f', 2, 64) }
	esc := html.EscapeString
	fmt.Fprintf(&b, `<svg xmlns="http://www.w3.org/2000/svg" class="forest" viewBox="0 0 %s %s" width="%s" height="%s" role="img" aria-labelledby="forest-title forest-desc" style="width:100%%;max-width:56rem;height:auto;font-family:'Go','Helvetica Neue',Arial,sans-serif">`,
		f(sc.w), f(sc.h), f(sc.w), f(sc.h))
	fmt.Fprintf(&b, `<title id="forest-title">Relative effects with 95%% intervals</title><desc id="forest-desc">%s</desc>`, esc(sc.title))
	b.WriteString(`<rect width="100%" height="100%" fill="#ffffff"/>`)
	for _, s := range sc.items {
		tip := ""
		if s.title != "" {
			tip = "<title>" + esc(s.title) + "</title>"
		}
		switch s.kind {
		case rectShape:
			x, w := s.x, s.w
			if w < 0 {
				x, w = x+w, -w
			}
			fmt.Fprintf(&b, `<rect x="%s" y="%s" width="%s" height="%s" fill="%s"/>`, f(x), f(s.y), f(w), f(s.h), s.color)
		case lineShape:
			dash := ""
			if s.dash {
				dash = ` stroke-dasharray="4 3"`
			}
			fmt.Fprintf(&b, `<line x1="%s" y1="%s" x2="%s" y2="%s" stroke="%s" stroke-width="%s"%s>%s</line>`,
				f(s.x), f(s.y), f(s.x+s.w), f(s.y+s.h), s.color, f(s.width), dash, tip)
		case circleShape:
			fmt.Fprintf(&b, `<circle cx="%s" cy="%s" r="%s" fill="%s" stroke="#ffffff" stroke-width="1.5">%s</circle>`, f(s.x), f(s.y), f(s.r), s.color, tip)
		case diamondShape:
			fmt.Fprintf(&b, `<polygon points="%s,%s %s,%s %s,%s %s,%s" fill="%s" stroke="#ffffff" stroke-width="1.5" class="salvaged">%s</polygon>`,
				f(s.x), f(s.y-s.r), f(s.x+s.r), f(s.y), f(s.x), f(s.y+s.r), f(s.x-s.r), f(s.y), s.color, tip)
		case arrowShape:
			d := s.w * s.r
			fmt.Fprintf(&b, `<polygon points="%s,%s %s,%s %s,%s" fill="%s"/>`, f(s.x+d), f(s.y), f(s.x), f(s.y-s.r), f(s.x), f(s.y+s.r), s.color)
		case polygonShape, polylineShape:
			pts := make([]string, len(s.pts))
			for i, pt := range s.pts {
				pts[i] = f(pt[0]) + "," + f(pt[1])
			}
			if s.kind == polygonShape {
				fmt.Fprintf(&b, `<polygon points="%s" fill="%s"/>`, strings.Join(pts, " "), s.color)
			} else {
				fmt.Fprintf(&b, `<polyline points="%s" fill="none" stroke="%s" stroke-width="%s" stroke-linejoin="round"/>`, strings.Join(pts, " "), s.color, f(s.width))
			}
		case textShape:
			a := ""
			switch s.anchor {
			case middle:
				a = ` text-anchor="middle"`
			case end:
				a = ` text-anchor="end"`
			}
			weight := ""
			if s.bold {
				weight = ` font-weight="700"`
			}
			fmt.Fprintf(&b, `<text x="%s" y="%s" font-size="%s" fill="%s"%s%s>%s</text>`, f(s.x), f(s.y), f(s.size), s.color, a, weight, esc(s.text))
		}
	}
	b.WriteString(`</svg>`)
	return b.String()
}
