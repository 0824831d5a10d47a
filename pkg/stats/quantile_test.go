package stats

import (
	"math"
	"math/rand/v2"
	"slices"
	"testing"
)

// sampleQuantile is the order statistic at level q of sorted values: the
// value of rank ceil(q·n) (1-based), clamped to the sample.
func sampleQuantile(sorted []float64, q float64) float64 {
	i := int(math.Ceil(q*float64(len(sorted)))) - 1
	return sorted[min(max(i, 0), len(sorted)-1)]
}

// quantileArmOf builds an arm's statistic from raw events: values[u] are
// unit u's event values. Event level (clustered) when events is true, else
// each unit contributes its first value (unit level).
func quantileArmOf(values [][]float64, nu float64, events bool) QuantileArm {
	var all []float64
	for _, vs := range values {
		if events {
			all = append(all, vs...)
		} else {
			all = append(all, vs[0])
		}
	}
	slices.Sort(all)
	n := float64(len(all))
	se := QuantileZ * math.Sqrt(nu*(1-nu)/n)
	a := QuantileArm{N: n, NStar: n, Nu: nu, Hat: sampleQuantile(all, nu),
		Lower: sampleQuantile(all, nu-se), Upper: sampleQuantile(all, nu+se)}
	if !events {
		return a
	}
	a.Clustered = true
	for _, vs := range values {
		s, m := 0.0, float64(len(vs))
		for _, v := range vs {
			if v <= a.Hat {
				s++
			}
		}
		a.MainSum += s
		a.MainSumSquares += s * s
		a.DenSum += m
		a.DenSumSquares += m * m
		a.MainDenSumProduct += s * m
		a.NClusters++
	}
	return a
}

// TestQuantileAAClustered runs A/A tests of an event-level p90 whose events
// are alike within a unit (each unit has its own level: a slow device makes
// every page slow). The clustered variance keeps the false-positive rate
// at alpha; treating events as independent, which they are not, rejects
// far more often. This is the simulation the clustered statistic exists for.
func TestQuantileAAClustered(t *testing.T) {
	const (
		sims  = 1000
		units = 400
		alpha = 0.05
		nu    = 0.9
	)
	r := rand.New(rand.NewPCG(7, 2026))
	arm := func() [][]float64 {
		out := make([][]float64, units)
		for u := range out {
			level := math.Exp(6 + 0.6*r.NormFloat64()) // the unit's typical page load, ms
			k := 1 + r.IntN(12)
			for range k {
				out[u] = append(out[u], level*math.Exp(0.2*r.NormFloat64()))
			}
		}
		return out
	}
	fixed := Options{Alpha: alpha}
	var clustered, naive, unit int
	for range sims {
		c, tr := arm(), arm()
		qc, qt := quantileArmOf(c, nu, true), quantileArmOf(tr, nu, true)
		res, err := CompareQuantile(qc, qt, fixed)
		requireNoError(t, "CompareQuantile clustered", err)
		if res.Significant {
			clustered++
		}
		qc.Clustered, qt.Clustered = false, false
		res, err = CompareQuantile(qc, qt, fixed)
		requireNoError(t, "CompareQuantile iid", err)
		if res.Significant {
			naive++
		}
		res, err = CompareQuantile(quantileArmOf(c, nu, false), quantileArmOf(tr, nu, false), fixed)
		requireNoError(t, "CompareQuantile unit level", err)
		if res.Significant {
			unit++
		}
	}
	rate := func(k int) float64 { return float64(k) / sims }
	t.Logf("A/A false-positive rate at alpha %g over %d simulations: clustered %.3f, events as iid %.3f, unit level %.3f",
		alpha, sims, rate(clustered), rate(naive), rate(unit))
	if b := mcBound(alpha, sims); rate(clustered) > b || rate(unit) > b {
		t.Errorf("false-positive rate clustered %.3f, unit level %.3f: above alpha %g plus 3 MC errors (%.3f)", rate(clustered), rate(unit), alpha, b)
	}
	if rate(naive) < 2*alpha {
		t.Errorf("events as iid rejected %.3f: the simulation does not cluster enough to test the correction", rate(naive))
	}
}

// TestSummarizeQuantileRefuses checks the input checks and GrowthBook's
// "too few values" rule (n ≤ z²·ν/(1−ν): 34 values for a p90).
func TestSummarizeQuantileRefuses(t *testing.T) {
	ok := QuantileArm{N: 1000, NStar: 1000, Nu: 0.9, Hat: 5, Lower: 4.5, Upper: 5.5}
	if _, err := SummarizeQuantile(ok); err != nil {
		t.Fatalf("SummarizeQuantile(%+v) = %v", ok, err)
	}
	for name, a := range map[string]QuantileArm{
		"nu 1":        {N: 1000, NStar: 1000, Nu: 1, Hat: 5, Lower: 4.5, Upper: 5.5},
		"bounds":      {N: 1000, NStar: 1000, Nu: 0.9, Hat: 6, Lower: 4.5, Upper: 5.5},
		"too few":     {N: 34, NStar: 34, Nu: 0.9, Hat: 5, Lower: 4.5, Upper: 5.5},
		"collapsed":   {N: 1000, NStar: 1000, Nu: 0.9, Hat: 5, Lower: 5, Upper: 5},
		"nan":         {N: 1000, NStar: 1000, Nu: 0.9, Hat: math.NaN(), Lower: 4.5, Upper: 5.5},
		"no n_star":   {N: 1000, Nu: 0.9, Hat: 5, Lower: 4.5, Upper: 5.5},
		"one cluster": {N: 1000, NStar: 1000, Nu: 0.9, Hat: 5, Lower: 4.5, Upper: 5.5, Clustered: true, NClusters: 1, DenSum: 1000},
	} {
		if _, err := SummarizeQuantile(a); err == nil {
			t.Errorf("%s: SummarizeQuantile(%+v) accepted", name, a)
		}
	}
	// 35 values are enough for a p90.
	if _, err := SummarizeQuantile(QuantileArm{N: 35, NStar: 35, Nu: 0.9, Hat: 5, Lower: 4.5, Upper: 5.5}); err != nil {
		t.Errorf("35 values for a p90: %v", err)
	}
}
