package stats

import (
	"fmt"
	"testing"
)

func TestDistributionsAgainstSciPy(t *testing.T) {
	type distCase struct {
		Dist string  `json:"dist"`
		DF   float64 `json:"df"`
		X    float64 `json:"x"`
		Want float64 `json:"want"`
	}
	_, cases := readGolden[distCase](t, "dist.json")
	funcs := map[string]func(x, df float64) float64{
		"t_tail2":      studentTail2,
		"t_quantile2":  studentQuantile2,
		"chi2_tail":    chi2Tail,
		"normal_upper": func(p, _ float64) float64 { return normalUpper(p) },
	}
	for _, c := range cases {
		f, ok := funcs[c.Dist]
		if !ok {
			t.Fatalf("unknown distribution %q in dist.json", c.Dist)
		}
		requireClose(t, fmt.Sprintf("%s(%v, df=%v)", c.Dist, c.X, c.DF), f(c.X, c.DF), c.Want, 0)
	}
}

func TestStudentQuantileInvertsTail(t *testing.T) {
	for _, df := range []float64{1, 1.2, 3, 17.5, 400, 1e6, 1e12} {
		for _, alpha := range []float64{1e-300, 1e-12, 0.001, 0.05, 0.5, 0.999999} {
			q := studentQuantile2(alpha, df)
			requireClose(t, fmt.Sprintf("studentTail2(studentQuantile2(%v, %v))", alpha, df), studentTail2(q, df), alpha, 0)
		}
	}
}
