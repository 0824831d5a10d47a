package report

import (
	"bytes"
	"fmt"
	"image/png"
	"os"
	"strings"
	"testing"
)

// TestTimeChart draws the novelty fixture's effects over time (a readout
// of TestNoveltyTruths' decaying lift) for the page and the email: one row
// of two panels for its one metric, a band and a line in each, the
// novelty line above them, and nothing at all for a readout without
// series. VERDICT_CHART_DIR, when set, keeps the PNG to look at.
func TestTimeChart(t *testing.T) {
	r := load(t, "testdata/readouts/pivot_welcome_tour_novelty.json")
	svg := string(TimeChartSVG(r))
	for _, want := range []string{`class="over-time"`, "<polygon", "<polyline", "Novelty: the lift decays, +32.8% in the first 7d after exposure, -2.7% after.", "cumulative, by day since the start", "that day alone, by day since exposure"} {
		if !strings.Contains(svg, want) {
			t.Errorf("the SVG lacks %q", want)
		}
	}
	if n := strings.Count(svg, "<polyline"); n != 2 {
		t.Errorf("%d lines, want 2 (one per panel)", n)
	}
	sc, _ := layoutTimeChart(r)
	b, err := paintPNG(sc, PNGScale)
	if err != nil {
		t.Fatal(err)
	}
	img, err := png.Decode(bytes.NewReader(b))
	if err != nil {
		t.Fatal(err)
	}
	if img.Bounds().Dx() != ChartWidth*PNGScale || img.Bounds().Dy() != int(sc.h)*PNGScale {
		t.Errorf("size %v, want %dx%d", img.Bounds().Size(), ChartWidth*PNGScale, int(sc.h)*PNGScale)
	}
	if dir := os.Getenv("VERDICT_CHART_DIR"); dir != "" {
		if err := os.WriteFile(dir+"/over-time.png", b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	for name, f := range fixtures(t) {
		if name == "pivot_welcome_tour_novelty" {
			continue
		}
		if svg := TimeChartSVG(f); svg != "" {
			t.Errorf("%s has no series, yet a chart was drawn", name)
		}
		if _, ok := layoutTimeChart(f); ok {
			t.Errorf("%s has no series, yet a chart was laid out", name)
		}
	}
}

// TestDayTicks: at most 6 round days from the first to the last.
func TestDayTicks(t *testing.T) {
	for _, tt := range []struct {
		first, last int
		want        string
	}{{0, 0, "[0]"}, {0, 3, "[0 1 2 3]"}, {0, 13, "[0 5 10 13]"}, {0, 30, "[0 7 14 21 28]"}, {0, 90, "[0 30 60 90]"}} {
		if got := fmt.Sprint(dayTicks(tt.first, tt.last)); got != tt.want {
			t.Errorf("dayTicks(%d, %d) = %s, want %s", tt.first, tt.last, got, tt.want)
		}
	}
}
