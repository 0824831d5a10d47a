package stats

import (
	"fmt"
	"math"
)

// Sample ratio mismatch thresholds of DESIGN.md.
const (
	// SRMThreshold is the p-value below which a sample ratio mismatch marks
	// the experiment invalid.
	SRMThreshold = 0.001
	// SRMMinUnits is the number of units every arm (of weight > 0) needs
	// before the SRM test means anything: below it, "not enough traffic".
	SRMMinUnits = 8
)

// SRM returns the p-value of Pearson's chi-square test of the observed units
// per variant against the configured weights, for any number of variants.
// Variants of weight 0 are left out (as GrowthBook and SciPy's chisquare on
// the remaining arms do): the expected counts are the observed total of the
// others split by their weights, and the test has (number of them − 1)
// degrees of freedom. Weights need not sum to 1.
func SRM(observed, weights []float64) (float64, error) {
	obs, w, err := srmArms(observed, weights)
	if err != nil {
		return 0, err
	}
	var total, wsum float64
	for i := range obs {
		total += obs[i]
		wsum += w[i]
	}
	if total == 0 {
		return 0, fmt.Errorf("%w: no units observed in arms of weight > 0", ErrInvalid)
	}
	var stat float64
	for i := range obs {
		e := total * w[i] / wsum
		d := obs[i] - e
		stat += d * d / e
	}
	p := chi2Tail(stat, float64(len(obs)-1))
	if !finite(stat, p) {
		return 0, fmt.Errorf("%w: the chi-square statistic overflows float64", ErrInvalid)
	}
	return p, nil
}

// SRMEnoughTraffic reports whether every variant of weight > 0 has at least
// SRMMinUnits units; when it has not, the SRM p-value should be reported as
// "not enough traffic" rather than as a test. It returns false for input SRM
// would refuse.
func SRMEnoughTraffic(observed, weights []float64) bool {
	obs, _, err := srmArms(observed, weights)
	if err != nil {
		return false
	}
	for _, o := range obs {
		if o < SRMMinUnits {
			return false
		}
	}
	return true
}

// srmArms validates the input and returns the arms of weight > 0.
func srmArms(observed, weights []float64) (obs, w []float64, err error) {
	if len(observed) != len(weights) {
		return nil, nil, fmt.Errorf("%w: %d observed counts for %d weights", ErrInvalid, len(observed), len(weights))
	}
	for i := range observed {
		if !finite(observed[i]) || observed[i] < 0 {
			return nil, nil, fmt.Errorf("%w: observed[%d] = %g, want a finite count ≥ 0", ErrInvalid, i, observed[i])
		}
		if !finite(weights[i]) || weights[i] < 0 {
			return nil, nil, fmt.Errorf("%w: weights[%d] = %g, want a finite weight ≥ 0", ErrInvalid, i, weights[i])
		}
		if weights[i] > 0 {
			obs = append(obs, observed[i])
			w = append(w, weights[i])
		}
	}
	if len(obs) < 2 {
		return nil, nil, fmt.Errorf("%w: %d arms of weight > 0, need at least 2", ErrInvalid, len(obs))
	}
	if math.IsInf(sum(w), 0) {
		return nil, nil, fmt.Errorf("%w: weights overflow float64", ErrInvalid)
	}
	return obs, w, nil
}

func sum(xs []float64) float64 {
	var s float64
	for _, x := range xs {
		s += x
	}
	return s
}

// DefaultSRMConcentration is the concentration of the Dirichlet alternative
// in SequentialSRM, as in Optimizely's ssrm and GrowthBook: large enough
// that the test waits for a real imbalance rather than noise.
const DefaultSRMConcentration = 10000

// SequentialSRM returns the always-valid p-value of the sequential sample
// ratio mismatch test of Lindon & Malek (2022), "Anytime-Valid Inference for
// Multinomial Count Data", from the cumulative units per variant: the Bayes
// factor of a Dirichlet-multinomial alternative — Dirichlet mean the
// normalised weights p, concentration c, so α_i = c·p_i — against the
// multinomial null with probabilities p, and p = min(1, 1/BF). With
// n = Σ x_i and the multinomial coefficient cancelling,
//
//	ln BF = lnΓ(c) − lnΓ(c + n) + Σ [lnΓ(α_i + x_i) − lnΓ(α_i)] − Σ x_i ln p_i.
//
// The Bayes factor is a martingale under the null, so by Ville's inequality
// the chance that it ever exceeds 1/α — that the p-value ever falls below α
// at any of any number of looks — is at most α: unlike the chi-square test
// repeated at every readout, it can be checked continuously. Variants of
// weight 0 are left out, as in SRM.
func SequentialSRM(observed, weights []float64, concentration float64) (float64, error) {
	obs, w, err := srmArms(observed, weights)
	if err != nil {
		return 0, err
	}
	if !(concentration > 0) || math.IsInf(concentration, 0) {
		return 0, fmt.Errorf("%w: concentration %g, want a finite number > 0", ErrInvalid, concentration)
	}
	wsum := sum(w)
	var n, lnBF float64
	for i := range obs {
		p := w[i] / wsum
		a := concentration * p
		n += obs[i]
		lnBF += lgamma(a+obs[i]) - lgamma(a) - obs[i]*math.Log(p)
	}
	lnBF += lgamma(concentration) - lgamma(concentration+n)
	if math.IsNaN(lnBF) {
		return 0, fmt.Errorf("%w: the Bayes factor is not a number", ErrInvalid)
	}
	if lnBF <= 0 {
		return 1, nil
	}
	return math.Exp(-lnBF), nil
}

func lgamma(x float64) float64 {
	v, _ := math.Lgamma(x)
	return v
}
