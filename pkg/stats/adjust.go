package stats

import (
	"fmt"
	"sort"
)

// Holm returns Holm's step-down adjusted p-values (controlling the
// family-wise error rate), in the order of p: the i-th smallest of m p-values
// becomes max over j ≤ i of min(1, (m−j+1)·p_(j)). This is statsmodels'
// multipletests(method="holm"). Reject the hypotheses whose adjusted p-value
// is below alpha.
func Holm(p []float64) ([]float64, error) {
	order, err := ascending(p)
	if err != nil {
		return nil, err
	}
	m := len(p)
	adj := make([]float64, m)
	running := 0.0
	for rank, i := range order {
		running = max(running, min(1, float64(m-rank)*p[i]))
		adj[i] = running
	}
	return adj, nil
}

// BH returns Benjamini–Hochberg adjusted p-values (controlling the false
// discovery rate), in the order of p: the i-th smallest of m p-values
// becomes min over j ≥ i of min(1, m/j·p_(j)). This is statsmodels'
// multipletests(method="fdr_bh").
func BH(p []float64) ([]float64, error) {
	order, err := ascending(p)
	if err != nil {
		return nil, err
	}
	m := len(p)
	adj := make([]float64, m)
	running := 1.0
	for rank := m - 1; rank >= 0; rank-- {
		i := order[rank]
		running = min(running, float64(m)/float64(rank+1)*p[i])
		adj[i] = running
	}
	return adj, nil
}

// ascending validates p-values and returns their indices, smallest first.
func ascending(p []float64) ([]int, error) {
	order := make([]int, len(p))
	for i, x := range p {
		if !(x >= 0 && x <= 1) {
			return nil, fmt.Errorf("%w: p[%d] = %g, want a p-value in [0, 1]", ErrInvalid, i, x)
		}
		order[i] = i
	}
	sort.SliceStable(order, func(a, b int) bool { return p[order[a]] < p[order[b]] })
	return order, nil
}
