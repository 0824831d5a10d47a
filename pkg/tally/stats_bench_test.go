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
// capped) and 2 segment dimensions; then the same with a sixth metric, the
// p90 of page_load events (each unit's 0–3 events kept, sorted per cell
// at every look), to compare with.
func BenchmarkStats(b *testing.B) {
	b.Run("five metrics", func(b *testing.B) { benchStats(b, false) })
	b.Run("and an event-level p90", func(b *testing.B) { benchStats(b, true) })
}

func benchStats(b *testing.B, quantile bool) {
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
	layout := warehouse.Layout{Events: events, Pres: pres}
	if quantile {
		metrics = append(metrics, config.Metric{Key: "load_p90", Kind: stats.Quantile, Event: "page_load", Quantile: 0.9, Level: config.LevelEvent})
		layout.Values = []string{"page_load"}
	}
	t := newTally("s", exp, metrics, layout)
	rng := rand.New(rand.NewPCG(1, 2))
	for u := range 100_000 {
		r := warehouse.UnitRow{Unit: uint64(u), FirstMS: 1, LastExposureMS: 1, MinVariant: []string{"control", "treatment"}[u%2],
			Segments: []string{fmt.Sprint(u % 5), fmt.Sprint(u % 3)}}
		r.MaxVariant = r.MinVariant
		for _, e := range events {
			n := rng.IntN(4)
			r.Counts = append(r.Counts, uint64(n))
			var sum float64
			var vs []float64
			for range n {
				v := float64(rng.IntN(1000)) / 10
				sum += v
				vs = append(vs, v)
			}
			r.Sums = append(r.Sums, sum)
			if quantile && e == "page_load" {
				r.Values = [][]float64{vs}
			}
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
