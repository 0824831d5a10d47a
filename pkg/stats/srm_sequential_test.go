package stats

import (
	"errors"
	"fmt"
	"math"
	"math/bits"
	"math/rand/v2"
	"testing"
)

// TestSequentialSRMAgainstOracle compares SequentialSRM with
// testdata/srm_sequential.json, written by scripts/oracle/stats_oracle.py
// from scipy.special.loggamma (and checked there against
// scipy.stats.multinomial.logpmf).
func TestSequentialSRMAgainstOracle(t *testing.T) {
	type srmCase struct {
		In struct {
			Observed      []float64 `json:"observed"`
			Weights       []float64 `json:"weights"`
			Concentration float64   `json:"concentration"`
		} `json:"in"`
		Want struct {
			PValue float64 `json:"p_value"`
		} `json:"want"`
	}
	_, cases := readGolden[srmCase](t, "srm_sequential.json")
	var below1, mismatched int
	for _, c := range cases {
		expr := fmt.Sprintf("SequentialSRM(%v, %v, %v)", c.In.Observed, c.In.Weights, c.In.Concentration)
		p, err := SequentialSRM(c.In.Observed, c.In.Weights, c.In.Concentration)
		requireNoError(t, expr, err)
		// ln BF is a difference of log-gammas of the size of n·ln n: its
		// rounding error, and so p's relative error, grows with n (1e-8 at
		// 3M units); DESIGN asks for 1e-6.
		if math.Abs(p-c.Want.PValue) > 1e-7*c.Want.PValue {
			t.Errorf("%s = %.17g, want %.17g (relative error %.2g)", expr, p, c.Want.PValue, math.Abs(p-c.Want.PValue)/c.Want.PValue)
		}
		if c.Want.PValue < 1 {
			below1++
		}
		if c.Want.PValue < SRMThreshold {
			mismatched++
		}
	}
	if below1 < 10 || mismatched < 3 {
		t.Errorf("srm_sequential.json has %d cases with p < 1 and %d with p < 0.001: regenerate it with more", below1, mismatched)
	}
}

func TestSequentialSRMErrors(t *testing.T) {
	tests := []struct {
		name              string
		observed, weights []float64
		concentration     float64
	}{
		{"lengths differ", []float64{10, 10}, []float64{1, 1, 1}, 10000},
		{"one arm of weight > 0", []float64{10, 10}, []float64{1, 0}, 10000},
		{"negative count", []float64{10, -1}, []float64{1, 1}, 10000},
		{"zero concentration", []float64{10, 10}, []float64{1, 1}, 0},
		{"infinite concentration", []float64{10, 10}, []float64{1, 1}, math.Inf(1)},
		{"NaN concentration", []float64{10, 10}, []float64{1, 1}, math.NaN()},
	}
	for _, tt := range tests {
		if _, err := SequentialSRM(tt.observed, tt.weights, tt.concentration); !errors.Is(err, ErrInvalid) {
			t.Errorf("%s: SequentialSRM(%v, %v, %v) error = %v, want ErrInvalid", tt.name, tt.observed, tt.weights, tt.concentration, err)
		}
	}
	// No units at all is no evidence, not an error.
	if p, err := SequentialSRM([]float64{0, 0}, []float64{1, 1}, 10000); err != nil || p != 1 {
		t.Errorf("SequentialSRM([0 0], [1 1], 10000) = %v, %v, want 1, nil", p, err)
	}
}

// TestSequentialSRMAA runs healthy 50/50 experiments and checks SRM at every
// one of 1,000 looks, 128 new units a look (128,000 in the end): the
// experiment counts as falsely invalid once any look has p < 0.001. The
// sequential test must stay at or below 0.1% over all looks; the chi-square
// test, repeated, is shown for contrast and must be well above it. A 52/48
// split that is really broken must still be caught.
func TestSequentialSRMAA(t *testing.T) {
	const (
		sims  = 4000
		looks = 1000
	)
	r := rand.New(rand.NewPCG(20261202, 9))
	weights := []float64{0.5, 0.5}
	var falseSeq, falseChi int
	for range sims {
		var a, b float64
		seqFlag, chiFlag := false, false
		for range looks {
			// Two fair coins per bit: 64 units of each draw go to arm a or b.
			na := float64(bits.OnesCount64(r.Uint64()) + bits.OnesCount64(r.Uint64()))
			a, b = a+na, b+128-na
			obs := []float64{a, b}
			if !seqFlag {
				p, err := SequentialSRM(obs, weights, DefaultSRMConcentration)
				requireNoError(t, "SequentialSRM", err)
				seqFlag = p < SRMThreshold
			}
			if !chiFlag {
				p, err := SRM(obs, weights)
				requireNoError(t, "SRM", err)
				chiFlag = p < SRMThreshold
			}
		}
		if seqFlag {
			falseSeq++
		}
		if chiFlag {
			falseChi++
		}
	}
	seqRate, chiRate := float64(falseSeq)/sims, float64(falseChi)/sims
	t.Logf("A/A over %d looks, %d experiments: sequential SRM falsely invalid %.3f%%, chi-square repeated %.2f%%", looks, sims, 100*seqRate, 100*chiRate)
	if seqRate > SRMThreshold {
		t.Errorf("sequential SRM flagged %d of %d healthy experiments (%.3f%%), want at most 0.1%%", falseSeq, sims, 100*seqRate)
	}
	if chiRate < 5*SRMThreshold {
		t.Errorf("repeated chi-square flagged only %.2f%% of healthy experiments: the simulation does not show the problem", 100*chiRate)
	}

	// A real mismatch: 52% of units reach arm a.
	caught := 0
	const broken = 200
	for range broken {
		var a, b float64
		for range looks {
			na := 0.0
			for range 128 {
				if r.Float64() < 0.52 {
					na++
				}
			}
			a, b = a+na, b+128-na
			if p, _ := SequentialSRM([]float64{a, b}, weights, DefaultSRMConcentration); p < SRMThreshold {
				caught++
				break
			}
		}
	}
	if caught < broken*99/100 {
		t.Errorf("sequential SRM caught %d of %d experiments with a 52/48 split, want at least 99%%", caught, broken)
	}
}
