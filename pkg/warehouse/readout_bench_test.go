package warehouse_test

import (
	"context"
	"testing"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2"
	"github.com/verdictlabs/verdict/pkg/config"
	"github.com/verdictlabs/verdict/pkg/stats"
	"github.com/verdictlabs/verdict/pkg/warehouse"
	"github.com/verdictlabs/verdict/pkg/warehouse/warehousetest"
)

// Benchmark data, generated on the server (INSERT ... SELECT FROM numbers(),
// far faster than sending 10M events): one experiment with 1M units, 1.1M
// exposures (1% of units also see the other variant, 5% have no country),
// 10M track events of 5 names from 1M units over 21 days (the experiment's
// units, so nearly every event is read and joined), then 1% of the events
// and exposures inserted again as copies that the readout must drop.
const (
	readoutBenchExposures = `INSERT INTO verdict.exposures (event_id, ts, ts_ms, unit_id, experiment, variant, attr_keys, attr_values)
SELECT
    concat('x-', toString(n)),
    toDateTime(@start_s + intDiv(offset_ms, 1000)), offset_ms % 1000,
    concat('user-', toString(u)), 'bench',
    if((n >= 1000000 AND n % 10 = 0) != (cityHash64(u) % 2 = 0), 'control', 'treatment'),
    if(u % 20 = 0, ['platform'], ['country', 'platform']),
    if(u % 20 = 0, [['ios', 'web', 'android'][u % 3 + 1]], [['de', 'us', 'fr', 'gb', 'jp'][u % 5 + 1], ['ios', 'web', 'android'][u % 3 + 1]])
FROM (SELECT number AS n, n % 1000000 AS u, cityHash64(n, 7) % (14 * 86400000) AS offset_ms FROM numbers(1100000))`
	readoutBenchEvents = `INSERT INTO verdict.events (event_id, ts, ts_ms, unit_id, event, value, attr_keys, attr_values)
SELECT
    concat('e-', toString(n)),
    toDateTime(@start_s + intDiv(offset_ms, 1000)), offset_ms % 1000,
    concat('user-', toString(u)),
    ['purchase', 'page_load', 'click', 'session_start', 'add_to_cart'][n % 5 + 1],
    (cityHash64(n, 3) % 10000) / 100,
    ['platform'], [['ios', 'web', 'android'][u % 3 + 1]]
FROM (SELECT number AS n, cityHash64(n) % 1000000 AS u, cityHash64(n, 9) % (21 * 86400000) AS offset_ms FROM numbers(@from, @count))`
	readoutBenchCopies = `INSERT INTO verdict.events SELECT * FROM verdict.events WHERE cityHash64(event_id) % 100 = 0`
	readoutBenchScan   = `SELECT count(), sum(value) FROM verdict.events`
)

var benchMetrics = []config.Metric{
	{Key: "conversion", Kind: stats.Proportion, Event: "purchase"},
	{Key: "revenue", Kind: stats.Mean, Event: "purchase", Aggregate: config.Sum, Cap: &config.Cap{Percentile: 0.99}},
	{Key: "items", Kind: stats.Count, Event: "add_to_cart", Aggregate: config.Count},
	{Key: "load_ms", Kind: stats.Ratio, Numerator: &config.Part{Event: "page_load", Aggregate: config.Sum}, Denominator: &config.Part{Event: "page_load", Aggregate: config.Count}},
	{Key: "clicks_per_session", Kind: stats.Ratio, Numerator: &config.Part{Event: "click", Aggregate: config.Count}, Denominator: &config.Part{Event: "session_start", Aggregate: config.Count}},
}

// BenchmarkReadout times ExperimentStats for one experiment with 1M
// exposed units, 5 metrics (one capped) and 2 segment dimensions over 10M
// track events, against a bare full scan of the same events table
// (count and sum of value) in the same run; it logs the ratio. nocap is the
// same readout without the cap: one query instead of two. Setup takes a
// minute or two. Run it with
//
//	go test -run '^$' -bench BenchmarkReadout -benchtime 3x ./warehouse/
func BenchmarkReadout(b *testing.B) {
	s := warehousetest.StartServer(b)
	w := s.Open(b, "verdict")
	ctx := context.Background()
	start := time.Date(2026, 11, 1, 0, 0, 0, 0, time.UTC)
	exec := func(q string, args ...any) {
		b.Helper()
		if err := w.Conn().Exec(ctx, q, args...); err != nil {
			b.Fatalf("%.60s...: %v", q, err)
		}
	}
	began := time.Now()
	exec(readoutBenchExposures, named("start_s", start.Unix()))
	for from := 0; from < 10_000_000; from += 2_000_000 {
		exec(readoutBenchEvents, named("start_s", start.Unix()), named("from", from), named("count", 2_000_000))
	}
	// Merged first, as a table that has been running a while is, so that
	// background merges do not run during the timed queries; then copies,
	// not merged yet, which the readout must drop.
	exec(`OPTIMIZE TABLE verdict.events FINAL`)
	exec(`OPTIMIZE TABLE verdict.exposures FINAL`)
	exec(readoutBenchCopies)
	exec(`INSERT INTO verdict.exposures SELECT * FROM verdict.exposures WHERE cityHash64(event_id) % 100 = 0`)
	b.Logf("setup: %v", time.Since(began))

	exp := config.Experiment{
		Key:               "bench",
		Variants:          []config.Variant{{Key: "control", Weight: 0.5}, {Key: "treatment", Weight: 0.5}},
		Control:           "control",
		Segments:          []string{"country", "platform"},
		AttributionWindow: config.Duration(7 * 24 * time.Hour),
		Start:             start,
	}
	asOf := start.Add(30 * 24 * time.Hour)
	perOp := map[string]time.Duration{}
	readout := func(metrics []config.Metric) func(*testing.B) {
		return func(b *testing.B) {
			var st warehouse.ExperimentStats
			for b.Loop() {
				var err error
				if st, err = w.ExperimentStats(ctx, exp, metrics, asOf); err != nil {
					b.Fatal(err)
				}
			}
			perOp[b.Name()] = b.Elapsed() / time.Duration(b.N)
			if st.Exposed != 1_000_000 {
				b.Errorf("Exposed = %d, want 1000000", st.Exposed)
			}
			b.ReportMetric(float64(len(st.Cells)), "cells")
		}
	}
	b.Run("scan", func(b *testing.B) {
		for b.Loop() {
			var n uint64
			var sum float64
			if err := w.Conn().QueryRow(ctx, readoutBenchScan).Scan(&n, &sum); err != nil {
				b.Fatal(err)
			}
			if n < 10_000_000 {
				b.Fatalf("scan counted %d events", n)
			}
		}
		perOp[b.Name()] = b.Elapsed() / time.Duration(b.N)
	})
	b.Run("readout", readout(benchMetrics))
	noCap := append([]config.Metric(nil), benchMetrics...)
	noCap[1].Cap = nil
	b.Run("nocap", readout(noCap))
	scan := perOp[b.Name()+"/scan"]
	for _, name := range []string{"readout", "nocap"} {
		if d := perOp[b.Name()+"/"+name]; scan > 0 && d > 0 {
			b.Logf("%s: %v per readout, %.0f× the bare scan (%v)", name, d, float64(d)/float64(scan), scan)
		}
	}
}

func named(name string, v any) any { return clickhouse.Named(name, v) }
