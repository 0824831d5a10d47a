package stats

import (
	"testing"
)

// FuzzCompare checks the invariants every comparison must keep, whatever the
// input: an error or finite numbers, 0 ≤ p ≤ 1, the effect inside its
// interval, significance exactly when the interval excludes 0, and symmetry:
// swapping the arms negates the effect and mirrors its interval, with the
// same p-value and the same decision.
func FuzzCompare(f *testing.F) {
	f.Add(uint8(0), false, 0.05, 5000.0, 1000.0, 5000.0, 40000.0, 0.0, 0.0, 0.0, 1000.0, 5300.0, 43000.0, 0.0, 0.0, 0.0)
	f.Add(uint8(1), true, 0.01, 1000.0, 20.0, 3.0, 3.0, 0.0, 0.0, 0.0, 25.0, 9.0, 9.0, 0.0, 0.0, 0.0)
	f.Add(uint8(2), true, 0.1, 200.0, 50.0, 0.0, 0.0, 0.0, 0.0, 0.0, 60.0, 3.0, 0.0, 0.0, 0.0, 0.0)
	f.Add(uint8(3), false, 0.05, 5000.0, 4000.0, 4.1e6, 9.3e9, 12000.0, 52000.0, 1.55e7, 4100.0, 3.9e6, 8.1e9, 12400.0, 53000.0, 1.48e7)
	f.Add(uint8(0), false, 0.2, 1.0, 2.0, 0.0, 1.0, 0.0, 0.0, 0.0, 2.0, 1e300, 1e300, 0.0, 0.0, 0.0)
	kinds := []Kind{Mean, Count, Proportion, Ratio}
	f.Fuzz(func(t *testing.T, k uint8, seq bool, alpha, tuning,
		nc, sc, ssc, dsc, dssc, spc, nt, st, sst, dst, dsst, spt float64) {
		kind := kinds[int(k)%len(kinds)]
		opt := Options{Alpha: alpha, Sequential: seq, Tuning: tuning}
		control := Arm{N: nc, Sum: sc, SumSquares: ssc, DenSum: dsc, DenSumSquares: dssc, SumProducts: spc}
		treatment := Arm{N: nt, Sum: st, SumSquares: sst, DenSum: dst, DenSumSquares: dsst, SumProducts: spt}
		r, err := Compare(kind, control, treatment, opt)
		s, serr := Compare(kind, treatment, control, opt)
		if (err == nil) != (serr == nil) {
			t.Fatalf("Compare errors differ when arms swap: %v, swapped %v", err, serr)
		}
		if err != nil {
			return
		}
		checkResult(t, r)
		checkResult(t, s)
		if s.AbsEffect != -r.AbsEffect || s.AbsCI != (Interval{-r.AbsCI.Hi, -r.AbsCI.Lo}) {
			t.Errorf("swapped AbsEffect %v %v, want %v %v", s.AbsEffect, s.AbsCI, -r.AbsEffect, Interval{-r.AbsCI.Hi, -r.AbsCI.Lo})
		}
		if s.PValue != r.PValue || s.Significant != r.Significant || s.SE != r.SE || s.DF != r.DF {
			t.Errorf("swapped p %v significant %v se %v df %v, want p %v significant %v se %v df %v",
				s.PValue, s.Significant, s.SE, s.DF, r.PValue, r.Significant, r.SE, r.DF)
		}
	})
}

func checkResult(t *testing.T, r Result) {
	t.Helper()
	if !finite(r.AbsEffect, r.AbsCI.Lo, r.AbsCI.Hi, r.SE, r.PValue, r.DF, r.RelEffect, r.RelCI.Lo, r.RelCI.Hi, r.RelSE,
		r.Control.Mean, r.Control.Var, r.Treatment.Mean, r.Treatment.Var) {
		t.Fatalf("Compare returned a non-finite number: %+v", r)
	}
	if !(r.PValue >= 0 && r.PValue <= 1) {
		t.Errorf("PValue = %v, want in [0, 1]", r.PValue)
	}
	if !(r.AbsCI.Lo <= r.AbsEffect && r.AbsEffect <= r.AbsCI.Hi) {
		t.Errorf("AbsEffect %v outside its interval %v", r.AbsEffect, r.AbsCI)
	}
	if r.RelDefined && !(r.RelCI.Lo <= r.RelEffect && r.RelEffect <= r.RelCI.Hi) {
		t.Errorf("RelEffect %v outside its interval %v", r.RelEffect, r.RelCI)
	}
	if r.Significant != r.AbsCI.Excludes(0) {
		t.Errorf("Significant = %v with AbsCI %v", r.Significant, r.AbsCI)
	}
}

// FuzzSRM checks that SRM answers with an error or a p-value in [0, 1].
func FuzzSRM(f *testing.F) {
	f.Add(1000.0, 1010.0, 0.0, 0.5, 0.5, 0.0)
	f.Add(3.0, 900.0, 5.0, 1.0, 1.0, 0.0)
	f.Fuzz(func(t *testing.T, o1, o2, o3, w1, w2, w3 float64) {
		p, err := SRM([]float64{o1, o2, o3}, []float64{w1, w2, w3})
		if err == nil && !(p >= 0 && p <= 1) {
			t.Errorf("SRM(%v, %v, %v; %v, %v, %v) = %v, want in [0, 1]", o1, o2, o3, w1, w2, w3, p)
		}
	})
}

// FuzzAdjust checks that adjusted p-values are p-values, never below the raw
// ones, and that Holm is never below Benjamini–Hochberg.
func FuzzAdjust(f *testing.F) {
	f.Add(0.01, 0.04, 0.03, 0.5)
	f.Fuzz(func(t *testing.T, a, b, c, d float64) {
		p := []float64{a, b, c, d}
		holm, herr := Holm(p)
		bh, berr := BH(p)
		if (herr == nil) != (berr == nil) {
			t.Fatalf("Holm error %v, BH error %v", herr, berr)
		}
		if herr != nil {
			return
		}
		for i := range p {
			if !(holm[i] >= p[i] && holm[i] <= 1 && bh[i] >= p[i] && bh[i] <= holm[i]) {
				t.Errorf("p %v: Holm %v, BH %v, want p ≤ BH ≤ Holm ≤ 1", p, holm, bh)
			}
		}
	})
}
