package warehouse_test

import (
	"context"
	"math"
	"strings"
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
// same readout without the cap: one query instead of two. baseline and
// baseline-nocap run the readout's previous SQL (baselineStatsSQL) on the
// same data in the same process, and check that it gives the same
// statistics as ExperimentStats. Setup takes a minute or two. Run it with
//
//	go test -run '^$' -bench BenchmarkReadout -benchtime 3x ./warehouse/
func BenchmarkReadout(b *testing.B) {
	s := warehousetest.StartServer(b, warehousetest.BenchEngine())
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
	noCap := append([]config.Metric(nil), benchMetrics...)
	noCap[1].Cap = nil
	baseline := func(metrics []config.Metric, capped bool) func(*testing.B) {
		return func(b *testing.B) {
			var rows []baselineRow
			for b.Loop() {
				rows = baselineReadout(ctx, b, w, start, asOf, capped)
			}
			perOp[b.Name()] = b.Elapsed() / time.Duration(b.N)
			st, err := w.ExperimentStats(ctx, exp, metrics, asOf)
			if err != nil {
				b.Fatal(err)
			}
			sameAsBaseline(b, st, metrics, rows)
		}
	}
	b.Run("baseline", baseline(benchMetrics, true))
	b.Run("readout", readout(benchMetrics))
	b.Run("baseline-nocap", baseline(noCap, false))
	b.Run("nocap", readout(noCap))
	// CUPED (on by default) reads the 14 days before the experiment's
	// start too and sums every metric over each unit's events before its
	// exposure; nocuped is the readout without it.
	off := false
	noCUPED := append([]config.Metric(nil), benchMetrics...)
	for i := range noCUPED {
		noCUPED[i].CUPED = &config.CUPED{Enabled: &off}
	}
	b.Run("nocuped", readout(noCUPED))
	// The statistics over time of the same experiment (TimeStats: every
	// unit's events per day, summed in Go), which the rules engine runs
	// apart from the looks (rules.TimeStatsMove).
	b.Run("timestats", func(b *testing.B) {
		var ts warehouse.TimeStats
		for b.Loop() {
			var err error
			if ts, err = w.TimeStats(ctx, exp, benchMetrics, asOf); err != nil {
				b.Fatal(err)
			}
		}
		perOp[b.Name()] = b.Elapsed() / time.Duration(b.N)
		c := ts.Metrics["conversion"].Cumulative["control"]
		if len(c) != 31 || c[30].N == 0 {
			b.Errorf("%d cumulative points, the last over %v units", len(c), c[len(c)-1].N)
		}
	})
	if d, base := perOp[b.Name()+"/timestats"], perOp[b.Name()+"/readout"]; d > 0 && base > 0 {
		b.Logf("timestats: %.2f× the readout", float64(d)/float64(base))
	}
	scan := perOp[b.Name()+"/scan"]
	if d, base := perOp[b.Name()+"/readout"], perOp[b.Name()+"/nocuped"]; d > 0 && base > 0 {
		b.Logf("CUPED costs %.2f× the readout without it", float64(d)/float64(base))
	}
	for _, name := range []string{"baseline", "readout", "baseline-nocap", "nocap", "nocuped", "timestats"} {
		if d := perOp[b.Name()+"/"+name]; scan > 0 && d > 0 {
			b.Logf("%s: %v per readout, %.0f× the bare scan (%v)", name, d, float64(d)/float64(scan), scan)
		}
	}
	for _, pair := range [][2]string{{"readout", "baseline"}, {"nocap", "baseline-nocap"}} {
		if d, base := perOp[b.Name()+"/"+pair[0]], perOp[b.Name()+"/"+pair[1]]; d > 0 && base > 0 {
			b.Logf("%s: %.1f× faster than %s", pair[0], float64(base)/float64(d), pair[1])
		}
	}
}

// The readout's previous SQL, as ExperimentStats generated it for
// BenchmarkReadout's experiment and metrics before the rewrite (unit_id
// string keys, ALL joins, dedup by GROUP BY (unit, event hash), ARRAY JOIN
// of every unit), kept to time it side by side with the current one in the
// same run and to check that both give the same statistics.
const (
	baselineCapsSQL = `SELECT quantileExactIf(0.99)(xs[1], xs[1] != 0)
FROM
(
    SELECT
        if(min_variant = max_variant, min_variant, '') AS unit_variant,
        unit_segments, first_ms, last_exposure_ms, last_event_ms,
        [sum_1] AS xs,
        [toFloat64(0)] AS ys
    FROM
    (
        SELECT
            unit_id AS unit,
            min(exposure_ms) AS first_ms,
            max(exposure_ms) AS last_exposure_ms,
            min(variant) AS min_variant,
            max(variant) AS max_variant,
            argMin(segments, (exposure_ms, event_id)) AS unit_segments
        FROM
        (
            SELECT unit_id, variant, event_id,
                toUInt64(ts) * 1000 + ts_ms AS exposure_ms,
                [''] AS segments
            FROM verdict.exposures
            WHERE experiment = @experiment
                AND ts >= toDateTime(@start_s) AND ts <= toDateTime(@end_s)
                AND exposure_ms >= @start_ms AND exposure_ms <= @end_ms
        )
        GROUP BY unit
    ) AS units
    ALL LEFT JOIN
    (
        SELECT
            event_unit AS unit,
            max(event_ms) AS last_event_ms,
            countIf(event_number = 1) AS count_1, sumIf(event_value, event_number = 1) AS sum_1
        FROM
        (
            SELECT
                any(unit) AS event_unit,
                any(track_ms) AS event_ms,
                any(event_index) AS event_number,
                any(value) AS event_value
            FROM
            (
                SELECT
                    unit_id AS unit,
                    cityHash64(event_id) AS event_hash,
                    toUInt64(ts) * 1000 + ts_ms AS track_ms,
                    indexOf(@events, event) AS event_index,
                    value
                FROM verdict.events
                WHERE event IN @event_set
                    AND ts >= toDateTime(@start_s) AND ts <= toDateTime(@events_end_s)
            ) AS track
            ALL INNER JOIN
            (
                SELECT unit_id AS unit, min(toUInt64(ts) * 1000 + ts_ms) AS first_ms
                FROM verdict.exposures
                WHERE experiment = @experiment
                    AND ts >= toDateTime(@start_s) AND ts <= toDateTime(@end_s)
                    AND toUInt64(ts) * 1000 + ts_ms >= @start_ms AND toUInt64(ts) * 1000 + ts_ms <= @end_ms
                GROUP BY unit
            ) AS first_exposures USING unit
            WHERE track_ms >= first_ms AND track_ms < first_ms + @window_ms AND track_ms <= @as_of_ms
            GROUP BY unit, event_hash
        )
        GROUP BY event_unit
    ) AS unit_events USING unit
)
WHERE unit_variant IN @variants
SETTINGS join_use_nulls = 0`
	baselineStatsSQL = `SELECT
    unit_variant,
    dimension,
    segment_value,
    count() AS units,
    sumForEach(xs) AS sum_x,
    sumForEach(arrayMap(x -> x * x, xs)) AS sum_xx,
    sumForEach(ys) AS sum_y,
    sumForEach(arrayMap(y -> y * y, ys)) AS sum_yy,
    sumForEach(arrayMap((x, y) -> x * y, xs, ys)) AS sum_xy,
    min(first_ms) AS first_exposure_ms,
    max(greatest(last_exposure_ms, last_event_ms)) AS data_through_ms
FROM
(
    SELECT
        if(min_variant = max_variant, min_variant, '') AS unit_variant,
        unit_segments, first_ms, last_exposure_ms, last_event_ms,
        [toFloat64(count_1 > 0), least(sum_1, @cap_2), toFloat64(count_2), sum_3, toFloat64(count_4)] AS xs,
        [toFloat64(0), toFloat64(0), toFloat64(0), toFloat64(count_3), toFloat64(count_5)] AS ys
    FROM
    (
        SELECT
            unit_id AS unit,
            min(exposure_ms) AS first_ms,
            max(exposure_ms) AS last_exposure_ms,
            min(variant) AS min_variant,
            max(variant) AS max_variant,
            argMin(segments, (exposure_ms, event_id)) AS unit_segments
        FROM
        (
            SELECT unit_id, variant, event_id,
                toUInt64(ts) * 1000 + ts_ms AS exposure_ms,
                ['', attr_values[indexOf(attr_keys, @dimension_1)], attr_values[indexOf(attr_keys, @dimension_2)]] AS segments
            FROM verdict.exposures
            WHERE experiment = @experiment
                AND ts >= toDateTime(@start_s) AND ts <= toDateTime(@end_s)
                AND exposure_ms >= @start_ms AND exposure_ms <= @end_ms
        )
        GROUP BY unit
    ) AS units
    ALL LEFT JOIN
    (
        SELECT
            event_unit AS unit,
            max(event_ms) AS last_event_ms,
            countIf(event_number = 1) AS count_1, sumIf(event_value, event_number = 1) AS sum_1,
            countIf(event_number = 2) AS count_2, sumIf(event_value, event_number = 2) AS sum_2,
            countIf(event_number = 3) AS count_3, sumIf(event_value, event_number = 3) AS sum_3,
            countIf(event_number = 4) AS count_4, sumIf(event_value, event_number = 4) AS sum_4,
            countIf(event_number = 5) AS count_5, sumIf(event_value, event_number = 5) AS sum_5
        FROM
        (
            SELECT
                any(unit) AS event_unit,
                any(track_ms) AS event_ms,
                any(event_index) AS event_number,
                any(value) AS event_value
            FROM
            (
                SELECT
                    unit_id AS unit,
                    cityHash64(event_id) AS event_hash,
                    toUInt64(ts) * 1000 + ts_ms AS track_ms,
                    indexOf(@events, event) AS event_index,
                    value
                FROM verdict.events
                WHERE event IN @event_set
                    AND ts >= toDateTime(@start_s) AND ts <= toDateTime(@events_end_s)
            ) AS track
            ALL INNER JOIN
            (
                SELECT unit_id AS unit, min(toUInt64(ts) * 1000 + ts_ms) AS first_ms
                FROM verdict.exposures
                WHERE experiment = @experiment
                    AND ts >= toDateTime(@start_s) AND ts <= toDateTime(@end_s)
                    AND toUInt64(ts) * 1000 + ts_ms >= @start_ms AND toUInt64(ts) * 1000 + ts_ms <= @end_ms
                GROUP BY unit
            ) AS first_exposures USING unit
            WHERE track_ms >= first_ms AND track_ms < first_ms + @window_ms AND track_ms <= @as_of_ms
            GROUP BY unit, event_hash
        )
        GROUP BY event_unit
    ) AS unit_events USING unit
)
ARRAY JOIN @dimensions AS dimension, unit_segments AS segment_value
GROUP BY unit_variant, dimension, segment_value
SETTINGS join_use_nulls = 0`
)

// baselineReadout runs the previous SQL: the caps query (when capped), then
// the statistics query, and returns its rows.
func baselineReadout(ctx context.Context, b *testing.B, w *warehouse.Warehouse, start, asOf time.Time, capped bool) []baselineRow {
	b.Helper()
	ms := func(t time.Time) int64 { return t.UnixMilli() }
	window := int64(7 * 24 * time.Hour / time.Millisecond)
	params := map[string]any{
		"experiment": "bench", "start_s": start.Unix(), "end_s": asOf.Unix(),
		"start_ms": ms(start), "end_ms": ms(asOf), "events_end_s": asOf.Unix(),
		"window_ms": window, "as_of_ms": ms(asOf),
		"variants": clickhouse.GroupSet{Value: []any{"control", "treatment"}},
	}
	args := func(extra map[string]any) []any {
		var out []any
		for _, m := range []map[string]any{params, extra} {
			for k, v := range m {
				out = append(out, clickhouse.Named(k, v))
			}
		}
		return out
	}
	stats := baselineStatsSQL
	var statsArgs []any
	if capped {
		var cap float64
		if err := w.Conn().QueryRow(ctx, baselineCapsSQL, args(map[string]any{
			"events": []string{"purchase"}, "event_set": clickhouse.GroupSet{Value: []any{"purchase"}},
			"dimensions": []string{""},
		})...).Scan(&cap); err != nil {
			b.Fatalf("baseline caps: %v", err)
		}
		statsArgs = args(map[string]any{"cap_2": cap})
	} else {
		stats = strings.Replace(stats, "least(sum_1, @cap_2)", "sum_1", 1)
		statsArgs = args(nil)
	}
	events := []string{"purchase", "add_to_cart", "page_load", "click", "session_start"}
	eventSet := make([]any, len(events))
	for i, e := range events {
		eventSet[i] = e
	}
	statsArgs = append(statsArgs,
		clickhouse.Named("events", events), clickhouse.Named("event_set", clickhouse.GroupSet{Value: eventSet}),
		clickhouse.Named("dimensions", []string{"", "country", "platform"}),
		clickhouse.Named("dimension_1", "country"), clickhouse.Named("dimension_2", "platform"))
	rows, err := w.Conn().Query(ctx, stats, statsArgs...)
	if err != nil {
		b.Fatalf("baseline statistics: %v", err)
	}
	defer rows.Close()
	var out []baselineRow
	for rows.Next() {
		var r baselineRow
		var sxx, sy, syy, sxy []float64
		var first, through uint64
		if err := rows.Scan(&r.variant, &r.dim, &r.value, &r.units, &r.sumX, &sxx, &sy, &syy, &sxy, &first, &through); err != nil {
			b.Fatal(err)
		}
		out = append(out, r)
	}
	if err := rows.Err(); err != nil {
		b.Fatal(err)
	}
	return out
}

type baselineRow struct {
	variant, dim, value string
	units               uint64
	sumX                []float64
}

// sameAsBaseline reports the cells of st that differ from the baseline's
// rows: units and the sum of x of every metric in every known variant.
func sameAsBaseline(b *testing.B, st warehouse.ExperimentStats, metrics []config.Metric, rows []baselineRow) {
	b.Helper()
	checked := 0
	for _, r := range rows {
		if r.variant != "control" && r.variant != "treatment" {
			continue
		}
		value := r.value
		if r.dim != "" && value == "" {
			value = warehouse.NoValue
		}
		for i, m := range metrics {
			arm, ok := st.Cell(r.variant, m.Key, r.dim, value)
			if !ok || arm.N != float64(r.units) || math.Abs(arm.Sum-r.sumX[i]) > 1e-9*math.Max(1, math.Abs(r.sumX[i])) {
				b.Errorf("%s %s %s=%s: readout N %v sum %v, baseline N %d sum %v", r.variant, m.Key, r.dim, value, arm.N, arm.Sum, r.units, r.sumX[i])
			}
			checked++
		}
	}
	if checked == 0 || checked != len(st.Cells) {
		b.Errorf("compared %d cells with the baseline, the readout has %d", checked, len(st.Cells))
	}
}

func named(name string, v any) any { return clickhouse.Named(name, v) }
