package rules

import (
	"fmt"
	"testing"
	"time"

	"github.com/verdictlabs/verdict/pkg/readout"
)

// TestThin: a series keeps at most its share of points, evenly spread,
// with its first and last day.
func TestThin(t *testing.T) {
	var ps []readout.Point
	for d := range 31 {
		ps = append(ps, readout.Point{Day: d})
	}
	days := func(ps []readout.Point) string {
		var out []int
		for _, p := range ps {
			out = append(out, p.Day)
		}
		return fmt.Sprint(out)
	}
	for _, tt := range []struct {
		n    int
		want string
	}{{40, "[0 1 2 3 4 5 6 7 8 9 10 11 12 13 14 15 16 17 18 19 20 21 22 23 24 25 26 27 28 29 30]"}, {8, "[0 4 8 12 17 21 25 30]"}, {2, "[0 30]"}} {
		if got := days(thin(ps, tt.n)); got != tt.want {
			t.Errorf("thin to %d = %s, want %s", tt.n, got, tt.want)
		}
	}
}

// TestShortAndSig: the split reads as definitions write durations, and
// points keep six significant digits.
func TestShortAndSig(t *testing.T) {
	for d, want := range map[time.Duration]string{7 * 24 * time.Hour: "7d", 84 * time.Hour: "3d12h", 12 * time.Hour: "12h", 90 * time.Minute: "1h30m", 30 * time.Second: "30s"} {
		if got := short(d); got != want {
			t.Errorf("short(%v) = %q, want %q", d, got, want)
		}
	}
	for x, want := range map[float64]float64{0.4557601495306869: 0.45576, -1234567.89: -1234570, 0: 0, 2.5e-9: 2.5e-9} {
		if got := sig(x); got != want {
			t.Errorf("sig(%v) = %v, want %v", x, got, want)
		}
	}
}
