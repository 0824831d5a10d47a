package stats

import (
	"errors"
	"fmt"
	"math"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// wireArm and wireCompare mirror the input lines of `verdict stats`, the
// format of testdata/compare.json.
type wireArm struct {
	N             float64 `json:"n"`
	Sum           float64 `json:"sum"`
	SumSquares    float64 `json:"sum_squares"`
	DenSum        float64 `json:"den_sum"`
	DenSumSquares float64 `json:"den_sum_squares"`
	SumProducts   float64 `json:"sum_products"`
}

func (a wireArm) arm() Arm { return Arm(a) }

type wireCompare struct {
	Kind       Kind     `json:"kind"`
	Alpha      *float64 `json:"alpha"`
	Sequential *bool    `json:"sequential"`
	Tuning     *float64 `json:"tuning"`
	Control    wireArm  `json:"control"`
	Treatment  wireArm  `json:"treatment"`
}

// options applies DESIGN.md's defaults to what the line leaves out.
func (w wireCompare) options() Options {
	o := DefaultOptions()
	if w.Alpha != nil {
		o.Alpha = *w.Alpha
	}
	if w.Sequential != nil {
		o.Sequential = *w.Sequential
	}
	if w.Tuning != nil {
		o.Tuning = *w.Tuning
	}
	return o
}

type compareCase struct {
	In   wireCompare `json:"in"`
	Want struct {
		AbsEffect   float64     `json:"abs_effect"`
		AbsCI       [2]float64  `json:"abs_ci"`
		RelEffect   *float64    `json:"rel_effect"`
		RelCI       *[2]float64 `json:"rel_ci"`
		PValue      float64     `json:"p_value"`
		Significant bool        `json:"significant"`
	} `json:"want"`
	Detail struct {
		ControlMean   float64 `json:"control_mean"`
		ControlVar    float64 `json:"control_var"`
		TreatmentMean float64 `json:"treatment_mean"`
		TreatmentVar  float64 `json:"treatment_var"`
		SE            float64 `json:"se"`
		RelSE         float64 `json:"rel_se"`
		DF            float64 `json:"df"`
	} `json:"detail"`
}

func TestCompareAgainstOracle(t *testing.T) {
	_, cases := readGolden[compareCase](t, "compare.json")
	seen := map[string]int{}
	for i, c := range cases {
		opt := c.In.options()
		seen[fmt.Sprintf("%s sequential=%v", c.In.Kind, opt.Sequential)]++
		t.Run(fmt.Sprintf("%d_%s", i, c.In.Kind), func(t *testing.T) {
			r, err := Compare(c.In.Kind, c.In.Control.arm(), c.In.Treatment.arm(), opt)
			requireNoError(t, "Compare", err)
			w, d := c.Want, c.Detail
			requireClose(t, "Control.Mean", r.Control.Mean, d.ControlMean, d.SE)
			requireClose(t, "Control.Var", r.Control.Var, d.ControlVar, 0)
			requireClose(t, "Treatment.Mean", r.Treatment.Mean, d.TreatmentMean, d.SE)
			requireClose(t, "Treatment.Var", r.Treatment.Var, d.TreatmentVar, 0)
			requireClose(t, "SE", r.SE, d.SE, 0)
			requireClose(t, "DF", r.DF, d.DF, 0)
			requireClose(t, "AbsEffect", r.AbsEffect, w.AbsEffect, d.SE)
			requireClose(t, "AbsCI.Lo", r.AbsCI.Lo, w.AbsCI[0], d.SE)
			requireClose(t, "AbsCI.Hi", r.AbsCI.Hi, w.AbsCI[1], d.SE)
			requireClose(t, "PValue", r.PValue, w.PValue, 0)
			if r.Significant != w.Significant {
				t.Errorf("Significant = %v, want %v", r.Significant, w.Significant)
			}
			if r.RelDefined != (w.RelEffect != nil) {
				t.Fatalf("RelDefined = %v, want %v", r.RelDefined, w.RelEffect != nil)
			}
			if r.RelDefined {
				requireClose(t, "RelSE", r.RelSE, d.RelSE, 0)
				requireClose(t, "RelEffect", r.RelEffect, *w.RelEffect, d.RelSE)
				requireClose(t, "RelCI.Lo", r.RelCI.Lo, w.RelCI[0], d.RelSE)
				requireClose(t, "RelCI.Hi", r.RelCI.Hi, w.RelCI[1], d.RelSE)
			}
		})
	}
	// The oracle must have covered every kind in both modes.
	for _, k := range []Kind{Mean, Count, Proportion, Ratio} {
		for _, seq := range []bool{false, true} {
			if n := seen[fmt.Sprintf("%s sequential=%v", k, seq)]; n < 10 {
				t.Errorf("compare.json has %d cases of %s sequential=%v, want at least 10", n, k, seq)
			}
		}
	}
}

func TestCompareEdgeCases(t *testing.T) {
	ok := Arm{N: 100, Sum: 500, SumSquares: 3000}
	fixed := Options{Alpha: 0.05}
	tests := []struct {
		name               string
		kind               Kind
		control, treatment Arm
		opt                Options
		wantErr            error
	}{
		{"n below 2", Mean, Arm{N: 1, Sum: 5, SumSquares: 25}, ok, fixed, ErrInvalid},
		{"n zero", Mean, ok, Arm{}, fixed, ErrInvalid},
		{"NaN sum", Mean, Arm{N: 100, Sum: math.NaN(), SumSquares: 3000}, ok, fixed, ErrInvalid},
		{"infinite sum of squares", Mean, ok, Arm{N: 100, Sum: 5, SumSquares: math.Inf(1)}, fixed, ErrInvalid},
		{"NaN in an unused field", Proportion, Arm{N: 100, Sum: 5, DenSum: math.NaN()}, Arm{N: 100, Sum: 7}, fixed, ErrInvalid},
		{"sum of squares too small", Mean, Arm{N: 100, Sum: 500, SumSquares: 2000}, ok, fixed, ErrInvalid},
		{"proportion above 1", Proportion, Arm{N: 100, Sum: 101}, Arm{N: 100, Sum: 7}, fixed, ErrInvalid},
		{"negative proportion", Proportion, Arm{N: 100, Sum: 5}, Arm{N: 100, Sum: -1}, fixed, ErrInvalid},
		{"ratio with zero denominator", Ratio, Arm{N: 100, Sum: 50, SumSquares: 100}, Arm{N: 100, Sum: 50, SumSquares: 100, DenSum: 10, DenSumSquares: 5}, fixed, ErrInvalid},
		{"ratio with impossible covariance", Ratio,
			Arm{N: 100, Sum: 100, SumSquares: 200, DenSum: 100, DenSumSquares: 200, SumProducts: 1000},
			Arm{N: 100, Sum: 100, SumSquares: 200, DenSum: 100, DenSumSquares: 200, SumProducts: 150}, fixed, ErrInvalid},
		{"unknown kind", Kind("median"), ok, ok, fixed, ErrInvalid},
		{"alpha 0", Mean, ok, ok, Options{Alpha: 0}, ErrInvalid},
		{"alpha 1", Mean, ok, ok, Options{Alpha: 1}, ErrInvalid},
		{"alpha NaN", Mean, ok, ok, Options{Alpha: math.NaN()}, ErrInvalid},
		{"tuning 0 when sequential", Mean, ok, ok, Options{Alpha: 0.05, Sequential: true}, ErrInvalid},
		{"both arms constant", Mean, Arm{N: 50, Sum: 100, SumSquares: 200}, Arm{N: 60, Sum: 120, SumSquares: 240}, fixed, ErrNoVariance},
		{"both proportions 0", Proportion, Arm{N: 50}, Arm{N: 60}, DefaultOptions(), ErrNoVariance},
		{"overflowing effect", Mean, Arm{N: 2, Sum: -1.7e308, SumSquares: 1.7e308}, Arm{N: 2, Sum: 1.7e308, SumSquares: 1.7e308}, fixed, ErrInvalid},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r, err := Compare(tt.kind, tt.control, tt.treatment, tt.opt)
			if !errors.Is(err, tt.wantErr) {
				t.Fatalf("Compare(%s, %+v, %+v, %+v) error = %v, want %v", tt.kind, tt.control, tt.treatment, tt.opt, err, tt.wantErr)
			}
			if diff := cmp.Diff(Result{}, r); diff != "" {
				t.Errorf("Compare returned a result with its error (-want +got):\n%s", diff)
			}
		})
	}
}

func TestCompareRelativeUndefined(t *testing.T) {
	control := Arm{N: 500, Sum: 0, SumSquares: 2000}
	treatment := Arm{N: 500, Sum: 150, SumSquares: 2100}
	for _, opt := range []Options{{Alpha: 0.05}, DefaultOptions()} {
		r, err := Compare(Mean, control, treatment, opt)
		requireNoError(t, "Compare with control mean 0", err)
		if r.RelDefined {
			t.Errorf("Compare(control mean 0).RelDefined = true, want false")
		}
		got := []float64{r.RelEffect, r.RelSE, r.RelCI.Lo, r.RelCI.Hi}
		if diff := cmp.Diff([]float64{0, 0, 0, 0}, got); diff != "" {
			t.Errorf("relative fields with control mean 0 (-want +got):\n%s", diff)
		}
		if !finite(r.AbsEffect, r.AbsCI.Lo, r.AbsCI.Hi, r.PValue) || r.AbsEffect != 0.3 {
			t.Errorf("Compare(control mean 0) absolute = %v %v p %v, want finite, effect 0.3", r.AbsEffect, r.AbsCI, r.PValue)
		}
	}
}

func TestCompareConstantArmAgainstVaryingArm(t *testing.T) {
	// One arm without variance is fine: Welch's df reduces to the other's n−1.
	r, err := Compare(Proportion, Arm{N: 3000}, Arm{N: 3000, Sum: 12}, Options{Alpha: 0.05})
	requireNoError(t, "Compare", err)
	requireClose(t, "DF", r.DF, 2999, 0)
}

// TestRatioFromRawData checks the ratio estimate against the delta method
// worked by hand for a small data set.
func TestRatioFromRawData(t *testing.T) {
	x := []float64{3, 0, 5, 2, 8, 1}
	y := []float64{1, 1, 2, 1, 3, 1}
	var a Arm
	for i := range x {
		a.N++
		a.Sum += x[i]
		a.SumSquares += x[i] * x[i]
		a.DenSum += y[i]
		a.DenSumSquares += y[i] * y[i]
		a.SumProducts += x[i] * y[i]
	}
	e, err := Summarize(Ratio, a)
	requireNoError(t, "Summarize", err)
	// By hand: x̄ = 19/6, ȳ = 9/6, s²x = (103 − 19²/6)/5, s²y = (17 − 81/6)/5,
	// cov = (40 − 19·9/6)/5.
	mx, my := 19.0/6, 9.0/6
	sx, sy, cov := (103-361.0/6)/5, (17-81.0/6)/5, (40-171.0/6)/5
	wantVar := (sx/(my*my) - 2*cov*mx/(my*my*my) + sy*mx*mx/(my*my*my*my)) / 6
	if diff := cmp.Diff(Estimate{N: 6, Mean: 19.0 / 9, Var: wantVar}, e, cmp.Comparer(func(a, b float64) bool { return approxEqual(a, b, 0) })); diff != "" {
		t.Errorf("Summarize(Ratio) (-want +got):\n%s", diff)
	}
}

// TestSequentialPValueMatchesInterval checks the duality DESIGN.md implies:
// the always-valid p-value is below alpha exactly when the interval excludes 0.
func TestSequentialPValueMatchesInterval(t *testing.T) {
	control := Arm{N: 4000, Sum: 4000 * 10, SumSquares: 3999*9 + 4000*100}
	for _, shift := range []float64{0, 0.05, 0.1, 0.15, 0.2, 0.25, 0.3, 0.4} {
		treatment := Arm{N: 4000, Sum: 4000 * (10 + shift), SumSquares: 3999*9 + 4000*(10+shift)*(10+shift)}
		r, err := Compare(Mean, control, treatment, DefaultOptions())
		requireNoError(t, "Compare", err)
		if (r.PValue < 0.05) != r.Significant {
			t.Errorf("shift %v: PValue = %v but Significant = %v", shift, r.PValue, r.Significant)
		}
	}
}

func ExampleCompare() {
	control := Arm{N: 10000, Sum: 1000}   // 10.0% converted
	treatment := Arm{N: 10000, Sum: 1100} // 11.0% converted
	r, err := Compare(Proportion, control, treatment, DefaultOptions())
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Printf("effect %+.4f [%+.4f, %+.4f], relative %+.1f%%, p = %.3f, significant: %v\n",
		r.AbsEffect, r.AbsCI.Lo, r.AbsCI.Hi, 100*r.RelEffect, r.PValue, r.Significant)
	// Output: effect +0.0100 [-0.0036, +0.0236], relative +10.0%, p = 0.434, significant: false
}

// TestRelativeEffectNegativeControl: the relative effect is (m_t − m_c)/|m_c|,
// GrowthBook's convention, so net revenue going from −10 to −5 per unit is
// +50% (the absolute effect's sign), not m_t/m_c − 1 = −50%. Expected values
// worked by hand from DESIGN.md's formulas.
func TestRelativeEffectNegativeControl(t *testing.T) {
	// Each arm: mean as given, sample variance 4 (sd 2), n 100.
	arm := func(mean float64) Arm {
		n := 100.0
		return Arm{N: n, Sum: n * mean, SumSquares: 4*(n-1) + n*mean*mean}
	}
	for _, c := range []struct {
		mc, mt, rel float64
	}{
		{-10, -5, 0.5},
		{-10, -15, -0.5},
		{10, 15, 0.5},
		{10, 5, -0.5},
	} {
		r, err := Compare(Mean, arm(c.mc), arm(c.mt), Options{Alpha: 0.05})
		requireNoError(t, "Compare", err)
		requireClose(t, fmt.Sprintf("rel_effect %g → %g", c.mc, c.mt), r.RelEffect, c.rel, 1e-12)
		// v_t/m_c² + m_t²·v_c/m_c⁴ with v = 4/100: the sign of m_c does not enter.
		wantSE := math.Sqrt(0.04/(c.mc*c.mc) + c.mt*c.mt*0.04/math.Pow(c.mc, 4))
		requireClose(t, "rel_se", r.RelSE, wantSE, 1e-12)
		if (r.RelCI.Lo+r.RelCI.Hi)/2-c.rel > 1e-12 || r.RelCI.Lo > c.rel || r.RelCI.Hi < c.rel {
			t.Errorf("rel_ci %v is not centred on %g", r.RelCI, c.rel)
		}
	}
}
