package stats

import (
	"errors"
	"fmt"
	"math"
	"testing"
	"time"
)

func TestPowerAgainstOracle(t *testing.T) {
	type powerCase struct {
		Plan struct {
			Mean       float64 `json:"mean"`
			Variance   float64 `json:"variance"`
			MDE        float64 `json:"mde"`
			Power      float64 `json:"power"`
			Alpha      float64 `json:"alpha"`
			Sequential bool    `json:"sequential"`
			Tuning     float64 `json:"tuning"`
		} `json:"plan"`
		SampleSize float64 `json:"sample_size"`
		Control    float64 `json:"control"`
		Treatment  float64 `json:"treatment"`
		PowerAt    float64 `json:"power_at"`
	}
	_, cases := readGolden[powerCase](t, "power.json")
	for _, c := range cases {
		p := Plan{
			Mean: c.Plan.Mean, Variance: c.Plan.Variance, MDE: c.Plan.MDE, Power: c.Plan.Power,
			Options: Options{Alpha: c.Plan.Alpha, Sequential: c.Plan.Sequential, Tuning: c.Plan.Tuning},
		}
		n, err := SampleSize(p)
		requireNoError(t, "SampleSize", err)
		requireClose(t, fmt.Sprintf("SampleSize(%+v)", p), n, c.SampleSize, 0)
		pw, err := PowerAt(p, c.Control, c.Treatment)
		requireNoError(t, "PowerAt", err)
		requireClose(t, fmt.Sprintf("PowerAt(%+v, %v, %v)", p, c.Control, c.Treatment), pw, c.PowerAt, 0)
	}
}

func TestSampleSizeSequentialIsLarger(t *testing.T) {
	p := Plan{Mean: 0.1, Variance: 0.09, MDE: 0.03, Power: 0.8, Options: Options{Alpha: 0.05}}
	fixed, err := SampleSize(p)
	requireNoError(t, "SampleSize(fixed)", err)
	p.Sequential, p.Tuning = true, 5000
	seq, err := SampleSize(p)
	requireNoError(t, "SampleSize(sequential)", err)
	t.Logf("units per arm for +3%% on a 10%% conversion rate: fixed %.0f, sequential %.0f (×%.2f)", fixed, seq, seq/fixed)
	if !(seq > fixed) {
		t.Errorf("sequential sample size %v, want more than fixed %v", seq, fixed)
	}
	// At the planned sample the power is the target, by construction.
	pw, err := PowerAt(p, seq, seq)
	requireNoError(t, "PowerAt", err)
	requireClose(t, "PowerAt(SampleSize)", pw, 0.8, 0)
}

func TestPlanErrors(t *testing.T) {
	good := Plan{Mean: 10, Variance: 4, MDE: 0.05, Power: 0.8, Options: Options{Alpha: 0.05}}
	tests := []struct {
		name string
		edit func(*Plan)
	}{
		{"mean 0", func(p *Plan) { p.Mean = 0 }},
		{"mde 0", func(p *Plan) { p.MDE = 0 }},
		{"variance 0", func(p *Plan) { p.Variance = 0 }},
		{"variance NaN", func(p *Plan) { p.Variance = math.NaN() }},
		{"power 1", func(p *Plan) { p.Power = 1 }},
		{"power below alpha", func(p *Plan) { p.Power = 0.01 }},
		{"alpha 0", func(p *Plan) { p.Alpha = 0 }},
		{"sequential without tuning", func(p *Plan) { p.Sequential = true }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := good
			tt.edit(&p)
			if n, err := SampleSize(p); !errors.Is(err, ErrInvalid) {
				t.Errorf("SampleSize(%+v) = %v, %v, want error %v", p, n, err, ErrInvalid)
			}
		})
	}
	if pw, err := PowerAt(good, 0, 100); !errors.Is(err, ErrInvalid) {
		t.Errorf("PowerAt(0 units) = %v, %v, want error %v", pw, err, ErrInvalid)
	}
}

func TestDecisionDate(t *testing.T) {
	start := time.Date(2026, 11, 1, 0, 0, 0, 0, time.UTC)
	asOf := start.Add(72 * time.Hour)
	tests := []struct {
		name                  string
		target, units, perDay float64
		want                  time.Time
		wantErr               bool
	}{
		{"half way at 1000 a day", 10000, 5000, 1000, asOf.Add(5 * 24 * time.Hour), false},
		{"fractional days", 1500, 0, 1000, asOf.Add(36 * time.Hour), false},
		{"already there", 100, 150, 0, asOf, false},
		{"no traffic", 100, 50, 0, time.Time{}, true},
		{"a thousand years", 1e9, 0, 1, time.Time{}, true},
		{"NaN rate", 100, 50, math.NaN(), time.Time{}, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := DecisionDate(tt.target, tt.units, tt.perDay, asOf)
			if (err != nil) != tt.wantErr {
				t.Fatalf("DecisionDate(%v, %v, %v) error = %v, want error %v", tt.target, tt.units, tt.perDay, err, tt.wantErr)
			}
			if !got.Equal(tt.want) {
				t.Errorf("DecisionDate(%v, %v, %v) = %v, want %v", tt.target, tt.units, tt.perDay, got, tt.want)
			}
		})
	}

	rate, err := DailyRate(3000, start, asOf)
	requireNoError(t, "DailyRate", err)
	requireClose(t, "DailyRate(3000 units in 3 days)", rate, 1000, 0)
	if _, err := DailyRate(3000, asOf, start); !errors.Is(err, ErrInvalid) {
		t.Errorf("DailyRate(backwards) error = %v, want %v", err, ErrInvalid)
	}
}

func ExampleSampleSize() {
	// Purchase conversion of 10%, detect a +3% relative lift with 80% power.
	p := Plan{Mean: 0.1, Variance: 0.1 * 0.9, MDE: 0.03, Power: 0.8, Options: Options{Alpha: 0.05}}
	n, _ := SampleSize(p)
	fmt.Printf("fixed horizon: %.0f units per arm\n", math.Ceil(n))
	p.Options = DefaultOptions()
	n, _ = SampleSize(p)
	fmt.Printf("sequential:    %.0f units per arm\n", math.Ceil(n))
	// Output:
	// fixed horizon: 156978 units per arm
	// sequential:    399176 units per arm
}
