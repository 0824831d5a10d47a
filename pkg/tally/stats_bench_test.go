package tally

import (
	"fmt"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/verdictlabs/verdict/pkg/config"
	"github.com/verdictlabs/verdict/pkg/stats"
	"github.com/verdictlabs/verdict/pkg/warehouse"
)

// BenchmarkStats is the in-memory part of a look that changed no unit:
// the capped metric's cap and sums made afresh over the units, the others'
// kept sums spread over the cells; at 100,000 units, 5 metrics (one
// capped) and 2 segment dimensions.
func BenchmarkStats(b *testing.B) {
	exp := config.Experiment{Key: "b", Variants: []config.Variant{{Key: "control"}, {Key: "treatment"}}, Control: "control",
		Segments: []string{"country", "platform"}, AttributionWindow: config.Duration(7 * 24 * time.Hour)}
	off := false
	metrics := []config.Metric{
		{Key: "conversion", Kind: stats.Proportion, Event: "purchase"},
		{Key: "revenue", Kind: stats.Mean, Event: "purchase", Aggregate: config.Sum, Cap: &config.Cap{Percentile: 0.99}},
		{Key: "items", Kind: stats.Count, Event: "add_to_cart", Aggregate: config.Count},
		{Key: "load_ms", Kind: stats.Ratio, Numerator: &config.Part{Event: "page_load", Aggregate: config.Sum}, Denominator: &config.Part{Event: "page_load", Aggregate: config.Count}},
		{Key: "clicks_per_session", Kind: stats.Ratio, Numerator: &config.Part{Event: "click", Aggregate: config.Count}, Denominator: &config.Part{Event: "session_start", Aggregate: config.Count}, CUPED: &config.CUPED{Enabled: &off}},
	}
	events := []string{"purchase", "add_to_cart", "page_load", "click", "session_start"}
	var pres []warehouse.Pre
	for _, e := range events[:4] {
		pres = append(pres, warehouse.Pre{Event: e, Lookback: 14 * 24 * time.Hour})
	}
	t := newTally("s", exp, metrics, warehouse.Layout{Events: events, Pres: pres})
	rng := rand.New(rand.NewPCG(1, 2))
	for u := range 100_000 {
		r := warehouse.UnitRow{Unit: uint64(u), FirstMS: 1, LastExposureMS: 1, MinVariant: []string{"control", "treatment"}[u%2],
			Segments: []string{fmt.Sprint(u % 5), fmt.Sprint(u % 3)}}
		r.MaxVariant = r.MinVariant
		for range events {
			r.Counts = append(r.Counts, uint64(rng.IntN(4)))
			r.Sums = append(r.Sums, float64(rng.IntN(1000))/10)
		}
		for range pres {
			r.PreCounts = append(r.PreCounts, uint64(rng.IntN(3)))
			r.PreSums = append(r.PreSums, float64(rng.IntN(1000))/10)
		}
		t.set(r)
	}
	for b.Loop() {
		if _, err := t.stats(); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/100_000, "ns/unit")
}
