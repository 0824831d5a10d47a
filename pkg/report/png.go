package report

import (
	"bytes"
	"fmt"
	"image"
	"image/color"
	"image/draw"
	"image/png"
	"math"
	"strconv"

	"golang.org/x/image/font"
	"golang.org/x/image/math/fixed"
	"golang.org/x/image/vector"
)

// paintPNG draws a laid-out chart as a PNG, ChartWidth·scale pixels wide
// (the email's charts: PNGScale, shown at ChartWidth CSS pixels).
func paintPNG(sc scene, scale float64) ([]byte, error) {
	fs, err := goFonts()
	if err != nil {
		return nil, err
	}
	w, h := int(math.Ceil(sc.w*scale)), int(math.Ceil(sc.h*scale))
	img := image.NewRGBA(image.Rect(0, 0, w, h))
	draw.Draw(img, img.Bounds(), image.White, image.Point{}, draw.Src)
	faces := map[[2]float64]font.Face{}
	defer func() {
		for _, f := range faces {
			f.Close()
		}
	}()
	// Each polygon is rasterised in its own bounding box: a rasteriser the
	// size of the whole image per shape would be slow.
	var z vector.Rasterizer
	poly := func(c string, pts ...[2]float64) {
		x0, y0, x1, y1 := math.Inf(1), math.Inf(1), math.Inf(-1), math.Inf(-1)
		for _, p := range pts {
			x0, y0 = math.Min(x0, p[0]*scale), math.Min(y0, p[1]*scale)
			x1, y1 = math.Max(x1, p[0]*scale), math.Max(y1, p[1]*scale)
		}
		box := image.Rect(int(math.Floor(x0)), int(math.Floor(y0)), int(math.Ceil(x1)), int(math.Ceil(y1))).Intersect(img.Bounds())
		if box.Empty() {
			return
		}
		z.Reset(box.Dx(), box.Dy())
		ox, oy := float64(box.Min.X), float64(box.Min.Y)
		z.MoveTo(float32(pts[0][0]*scale-ox), float32(pts[0][1]*scale-oy))
		for _, p := range pts[1:] {
			z.LineTo(float32(p[0]*scale-ox), float32(p[1]*scale-oy))
		}
		z.ClosePath()
		z.Draw(img, box, image.NewUniform(hexColor(c)), image.Point{})
	}
	rect := func(c string, x, y, rw, rh float64) {
		if rw < 0 {
			x, rw = x+rw, -rw
		}
		poly(c, [2]float64{x, y}, [2]float64{x + rw, y}, [2]float64{x + rw, y + rh}, [2]float64{x, y + rh})
	}
	for _, s := range sc.items {
		switch s.kind {
		case rectShape:
			rect(s.color, s.x, s.y, s.w, s.h)
		case lineShape:
			// Lines are horizontal or vertical in this chart: thin rectangles.
			segs := [][2]float64{{0, 1}}
			if s.dash {
				segs = nil
				length := math.Hypot(s.w, s.h)
				for t := 0.0; t < length; t += 7 {
					segs = append(segs, [2]float64{t / length, math.Min(t+4, length) / length})
				}
			}
			for _, sg := range segs {
				x0, y0 := s.x+s.w*sg[0], s.y+s.h*sg[0]
				x1, y1 := s.x+s.w*sg[1], s.y+s.h*sg[1]
				if s.h == 0 {
					rect(s.color, x0, y0-s.width/2, x1-x0, s.width)
				} else {
					rect(s.color, x0-s.width/2, y0, s.width, y1-y0)
				}
			}
		case circleShape:
			var pts [][2]float64
			for i := range 48 {
				a := 2 * math.Pi * float64(i) / 48
				pts = append(pts, [2]float64{s.x + s.r*math.Cos(a), s.y + s.r*math.Sin(a)})
			}
			poly("#ffffff", grow(pts, s.x, s.y, 1.5)...)
			poly(s.color, pts...)
		case diamondShape:
			pts := [][2]float64{{s.x, s.y - s.r}, {s.x + s.r, s.y}, {s.x, s.y + s.r}, {s.x - s.r, s.y}}
			poly("#ffffff", grow(pts, s.x, s.y, 1.5)...)
			poly(s.color, pts...)
		case arrowShape:
			d := s.w * s.r
			poly(s.color, [2]float64{s.x + d, s.y}, [2]float64{s.x, s.y - s.r}, [2]float64{s.x, s.y + s.r})
		case polygonShape:
			if len(s.pts) >= 3 {
				poly(s.color, s.pts...)
			}
		case polylineShape:
			// Each segment a quad of the line's width, each joint a
			// square: no gaps where the line bends.
			h := s.width / 2
			for i := 1; i < len(s.pts); i++ {
				a, b := s.pts[i-1], s.pts[i]
				dx, dy := b[0]-a[0], b[1]-a[1]
				l := math.Hypot(dx, dy)
				if l == 0 {
					continue
				}
				nx, ny := -dy/l*h, dx/l*h
				poly(s.color, [2]float64{a[0] + nx, a[1] + ny}, [2]float64{b[0] + nx, b[1] + ny}, [2]float64{b[0] - nx, b[1] - ny}, [2]float64{a[0] - nx, a[1] - ny})
				rect(s.color, b[0]-h, b[1]-h, s.width, s.width)
			}
		case textShape:
			key := [2]float64{s.size * scale, 0}
			if s.bold {
				key[1] = 1
			}
			face, ok := faces[key]
			if !ok {
				if face, err = fs.face(s.size*scale, s.bold); err != nil {
					return nil, fmt.Errorf("load font at %gpx: %w", s.size*scale, err)
				}
				faces[key] = face
			}
			d := font.Drawer{Dst: img, Src: image.NewUniform(hexColor(s.color)), Face: face}
			x := s.x * scale
			switch s.anchor {
			case middle:
				x -= fix(d.MeasureString(s.text)) / 2
			case end:
				x -= fix(d.MeasureString(s.text))
			}
			d.Dot = fixed.Point26_6{X: fixed.Int26_6(x * 64), Y: fixed.Int26_6(s.y * scale * 64)}
			d.DrawString(s.text)
		}
	}
	var buf bytes.Buffer
	enc := png.Encoder{CompressionLevel: png.DefaultCompression}
	if err := enc.Encode(&buf, img); err != nil {
		return nil, fmt.Errorf("encode chart png: %w", err)
	}
	return buf.Bytes(), nil
}

// grow scales a polygon about (cx, cy) by d pixels, for a white halo that
// keeps a mark readable where it crosses a line.
func grow(pts [][2]float64, cx, cy, d float64) [][2]float64 {
	out := make([][2]float64, len(pts))
	for i, p := range pts {
		dx, dy := p[0]-cx, p[1]-cy
		l := math.Hypot(dx, dy)
		if l == 0 {
			out[i] = p
			continue
		}
		out[i] = [2]float64{cx + dx*(l+d)/l, cy + dy*(l+d)/l}
	}
	return out
}

func hexColor(s string) color.RGBA {
	v, err := strconv.ParseUint(s[1:], 16, 32)
	if len(s) != 7 || err != nil {
		return color.RGBA{A: 255}
	}
	return color.RGBA{R: uint8(v >> 16), G: uint8(v >> 8), B: uint8(v), A: 255}
}
