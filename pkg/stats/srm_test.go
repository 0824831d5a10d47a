package stats

import (
	"errors"
	"fmt"
	"testing"
)

func TestSRMAgainstOracle(t *testing.T) {
	type srmCase struct {
		In struct {
			Observed []float64 `json:"observed"`
			Weights  []float64 `json:"weights"`
		} `json:"in"`
		Want struct {
			PValue float64 `json:"p_value"`
		} `json:"want"`
		Detail struct {
			EnoughTraffic bool `json:"enough_traffic"`
		} `json:"detail"`
	}
	_, cases := readGolden[srmCase](t, "srm.json")
	arms := map[int]bool{}
	zeroWeight := 0
	for _, c := range cases {
		expr := fmt.Sprintf("SRM(%v, %v)", c.In.Observed, c.In.Weights)
		p, err := SRM(c.In.Observed, c.In.Weights)
		requireNoError(t, expr, err)
		requireClose(t, expr, p, c.Want.PValue, 1e-300)
		if got := SRMEnoughTraffic(c.In.Observed, c.In.Weights); got != c.Detail.EnoughTraffic {
			t.Errorf("SRMEnoughTraffic(%v, %v) = %v, want %v", c.In.Observed, c.In.Weights, got, c.Detail.EnoughTraffic)
		}
		arms[len(c.In.Weights)] = true
		for _, w := range c.In.Weights {
			if w == 0 {
				zeroWeight++
				break
			}
		}
	}
	for k := 2; k <= 5; k++ {
		if !arms[k] {
			t.Errorf("srm.json has no case with %d arms", k)
		}
	}
	if zeroWeight < 5 {
		t.Errorf("srm.json has %d cases with a weight of 0, want at least 5", zeroWeight)
	}
}

func TestSRMErrors(t *testing.T) {
	tests := []struct {
		name              string
		observed, weights []float64
	}{
		{"lengths differ", []float64{10, 10}, []float64{1, 1, 1}},
		{"one arm", []float64{10}, []float64{1}},
		{"one arm of weight > 0", []float64{10, 10}, []float64{1, 0}},
		{"negative count", []float64{10, -1}, []float64{1, 1}},
		{"negative weight", []float64{10, 10}, []float64{1, -1}},
		{"NaN count", []float64{10, nan()}, []float64{1, 1}},
		{"infinite weight", []float64{10, 10}, []float64{1, inf()}},
		{"nothing observed", []float64{0, 0, 5}, []float64{1, 1, 0}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if p, err := SRM(tt.observed, tt.weights); !errors.Is(err, ErrInvalid) {
				t.Errorf("SRM(%v, %v) = %v, %v, want error %v", tt.observed, tt.weights, p, err, ErrInvalid)
			}
			if SRMEnoughTraffic(tt.observed, tt.weights) {
				t.Errorf("SRMEnoughTraffic(%v, %v) = true, want false", tt.observed, tt.weights)
			}
		})
	}
}

func TestSRMEnoughTraffic(t *testing.T) {
	tests := []struct {
		observed, weights []float64
		want              bool
	}{
		{[]float64{8, 8}, []float64{1, 1}, true},
		{[]float64{7, 800}, []float64{1, 1}, false},
		{[]float64{900, 3, 800}, []float64{1, 0, 1}, true}, // the weight-0 arm does not count
		{[]float64{900, 800, 0}, []float64{0.3, 0.3, 0.4}, false},
	}
	for _, tt := range tests {
		if got := SRMEnoughTraffic(tt.observed, tt.weights); got != tt.want {
			t.Errorf("SRMEnoughTraffic(%v, %v) = %v, want %v", tt.observed, tt.weights, got, tt.want)
		}
	}
}
