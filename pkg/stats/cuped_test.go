package stats

import (
	"fmt"
	"testing"
)

// cupedCase is one line of testdata/cuped.json.
type cupedCase struct {
	In struct {
		Kind         Kind    `json:"kind"`
		Alpha        float64 `json:"alpha"`
		Sequential   bool    `json:"sequential"`
		Tuning       float64 `json:"tuning"`
		ControlArm   armJSON `json:"control"`
		TreatmentArm armJSON `json:"treatment"`
		ControlPre   preJSON `json:"control_pre"`
		TreatmentPre preJSON `json:"treatment_pre"`
	} `json:"in"`
	Want struct {
		Theta             float64    `json:"theta"`
		VarianceReduction float64    `json:"variance_reduction"`
		ControlMean       float64    `json:"control_mean"`
		TreatmentMean     float64    `json:"treatment_mean"`
		AbsEffect         float64    `json:"abs_effect"`
		SE                float64    `json:"se"`
		AbsCI             [2]float64 `json:"abs_ci"`
		RelEffect         float64    `json:"rel_effect"`
		RelCI             [2]float64 `json:"rel_ci"`
		PValue            float64    `json:"p_value"`
	} `json:"want"`
}

type armJSON struct {
	N             float64 `json:"n"`
	Sum           float64 `json:"sum"`
	SumSquares    float64 `json:"sum_squares"`
	DenSum        float64 `json:"den_sum"`
	DenSumSquares float64 `json:"den_sum_squares"`
	SumProducts   float64 `json:"sum_products"`
}

type preJSON struct {
	Sum           float64 `json:"sum"`
	SumSquares    float64 `json:"sum_squares"`
	DenSum        float64 `json:"den_sum"`
	DenSumSquares float64 `json:"den_sum_squares"`
	SumProducts   float64 `json:"sum_products"`
	CrossSum      float64 `json:"cross_sum"`
	CrossDen      float64 `json:"cross_den"`
	DenCrossSum   float64 `json:"den_cross_sum"`
	DenCrossDen   float64 `json:"den_cross_den"`
}

func (a armJSON) arm() Arm { return Arm(a) }
func (p preJSON) pre() Pre { return Pre(p) }

// TestCUPEDOracle checks CompareCUPED against testdata/cuped.json, written
// by scripts/oracle/cuped_oracle.py: theta and the adjusted effect from
// statsmodels' OLS of the outcome on the treatment indicator and the
// centred covariate (Deng et al. 2013; ratios linearised by the delta
// method), the standard error from statsmodels' HC2 regression of the
// adjusted outcome, intervals and p-values from SciPy's t or DESIGN.md's
// confidence sequence.
func TestCUPEDOracle(t *testing.T) {
	_, cases := readGolden[cupedCase](t, "cuped.json")
	kinds := map[Kind]int{}
	for i, c := range cases {
		in, want := c.In, c.Want
		opt := Options{Alpha: in.Alpha, Sequential: in.Sequential, Tuning: in.Tuning}
		r, cu, err := CompareCUPED(in.Kind, in.ControlArm.arm(), in.TreatmentArm.arm(), in.ControlPre.pre(), in.TreatmentPre.pre(), opt)
		name := fmt.Sprintf("case %d (%s, sequential %v)", i, in.Kind, in.Sequential)
		if err != nil {
			t.Errorf("%s: %v", name, err)
			continue
		}
		if !cu.Applied {
			t.Errorf("%s: CUPED not applied", name)
			continue
		}
		kinds[in.Kind]++
		se := want.SE
		requireClose(t, name+" theta", cu.Theta, want.Theta, 1e-12)
		requireClose(t, name+" variance_reduction", cu.VarianceReduction, want.VarianceReduction, 1e-3) // a fraction: 1e-12 absolute
		requireClose(t, name+" control mean", r.Control.Mean, want.ControlMean, 0)
		requireClose(t, name+" treatment mean", r.Treatment.Mean, want.TreatmentMean, 0)
		requireClose(t, name+" abs_effect", r.AbsEffect, want.AbsEffect, se)
		requireClose(t, name+" se", r.SE, want.SE, 0)
		requireClose(t, name+" abs_ci lo", r.AbsCI.Lo, want.AbsCI[0], se)
		requireClose(t, name+" abs_ci hi", r.AbsCI.Hi, want.AbsCI[1], se)
		requireClose(t, name+" rel_effect", r.RelEffect, want.RelEffect, r.RelSE)
		requireClose(t, name+" rel_ci lo", r.RelCI.Lo, want.RelCI[0], r.RelSE)
		requireClose(t, name+" rel_ci hi", r.RelCI.Hi, want.RelCI[1], r.RelSE)
		requireClose(t, name+" p_value", r.PValue, want.PValue, 1e-12)
	}
	for _, k := range []Kind{Mean, Count, Proportion, Ratio} {
		if kinds[k] == 0 {
			t.Errorf("no %s case was checked", k)
		}
	}
}

// TestCUPEDWithoutCovariate: with no pre-exposure data the comparison is
// the unadjusted one, reported as not applied.
func TestCUPEDWithoutCovariate(t *testing.T) {
	c := Arm{N: 1000, Sum: 120, SumSquares: 120}
	tr := Arm{N: 1000, Sum: 150, SumSquares: 150}
	want, err := Compare(Proportion, c, tr, DefaultOptions())
	if err != nil {
		t.Fatal(err)
	}
	got, cu, err := CompareCUPED(Proportion, c, tr, Pre{}, Pre{}, DefaultOptions())
	if err != nil {
		t.Fatal(err)
	}
	if cu.Applied || got != want {
		t.Errorf("CompareCUPED without a covariate = %+v, %+v; want Compare's %+v, not applied", got, cu, want)
	}
}
