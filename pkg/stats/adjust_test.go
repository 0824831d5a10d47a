package stats

import (
	"errors"
	"fmt"
	"math"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
)

func TestAdjustAgainstStatsmodels(t *testing.T) {
	type adjustCase struct {
		P    []float64 `json:"p"`
		Holm []float64 `json:"holm"`
		BH   []float64 `json:"bh"`
	}
	_, cases := readGolden[adjustCase](t, "adjust.json")
	approx := cmpopts.EquateApprox(relTol, 0)
	for _, c := range cases {
		holm, err := Holm(c.P)
		requireNoError(t, "Holm", err)
		if diff := cmp.Diff(c.Holm, holm, approx); diff != "" {
			t.Errorf("Holm(%v) (-want +got):\n%s", c.P, diff)
		}
		bh, err := BH(c.P)
		requireNoError(t, "BH", err)
		if diff := cmp.Diff(c.BH, bh, approx); diff != "" {
			t.Errorf("BH(%v) (-want +got):\n%s", c.P, diff)
		}
	}
}

func TestAdjustSmall(t *testing.T) {
	tests := []struct {
		p, holm, bh []float64
	}{
		{nil, []float64{}, []float64{}},
		{[]float64{0.03}, []float64{0.03}, []float64{0.03}},
		{[]float64{0.01, 0.04, 0.03}, []float64{0.03, 0.06, 0.06}, []float64{0.03, 0.04, 0.04}},
		{[]float64{0.5, 0.5}, []float64{1, 1}, []float64{0.5, 0.5}},
	}
	approx := cmpopts.EquateApprox(1e-15, 0)
	for _, tt := range tests {
		holm, err := Holm(tt.p)
		requireNoError(t, "Holm", err)
		if diff := cmp.Diff(tt.holm, holm, approx); diff != "" {
			t.Errorf("Holm(%v) (-want +got):\n%s", tt.p, diff)
		}
		bh, err := BH(tt.p)
		requireNoError(t, "BH", err)
		if diff := cmp.Diff(tt.bh, bh, approx); diff != "" {
			t.Errorf("BH(%v) (-want +got):\n%s", tt.p, diff)
		}
	}
}

func TestAdjustRejectsNonPValues(t *testing.T) {
	for _, p := range [][]float64{{0.1, -0.1}, {1.5}, {nan()}, {0.2, inf()}} {
		for name, f := range map[string]func([]float64) ([]float64, error){"Holm": Holm, "BH": BH} {
			if got, err := f(p); !errors.Is(err, ErrInvalid) {
				t.Errorf("%s(%v) = %v, %v, want error %v", name, p, got, err, ErrInvalid)
			}
		}
	}
}

func nan() float64 { return math.NaN() }
func inf() float64 { return math.Inf(1) }

func ExampleHolm() {
	// Salvage: the primary metric in five segments.
	adjusted, _ := Holm([]float64{0.004, 0.03, 0.2, 0.012, 0.6})
	fmt.Println(adjusted)
	// Output: [0.02 0.09 0.4 0.048 0.6]
}
