package tally_test

import (
	"context"
	"fmt"
	"os"
	"runtime"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2"
	"golang.org/x/sync/errgroup"

	"github.com/verdictlabs/verdict/pkg/config"
	"github.com/verdictlabs/verdict/pkg/stats"
	"github.com/verdictlabs/verdict/pkg/tally"
	"github.com/verdictlabs/verdict/pkg/warehouse"
	"github.com/verdictlabs/verdict/pkg/warehouse/warehousetest"
)

// The benchmark's data, made on the server: @units units exposed over 14
// days (1% of them to both variants), 10 track events per unit of 5 names
// over 21 days, every row with its own seq in arrival order; then, for each
// look, 1% more events, half of them late (timed anywhere in the 21 days),
// half recent, with the next seqs.
const (
	benchExposures = `INSERT INTO verdict.exposures (event_id, ts, ts_ms, unit_id, experiment, variant, attr_keys, attr_values, seq)
SELECT concat('x-', toString(n)), toDateTime(@start_s + intDiv(offset_ms, 1000)), offset_ms % 1000,
    concat('user-', toString(u)), 'bench',
    if((n >= @units AND n % 10 = 0) != (cityHash64(u) % 2 = 0), 'control', 'treatment'),
    ['country', 'platform'], [['de', 'us', 'fr', 'gb', 'jp'][u % 5 + 1], ['ios', 'web', 'android'][u % 3 + 1]],
    n + 1
FROM (SELECT number AS n, n % @units AS u, cityHash64(n, 7) % (14 * 86400000) AS offset_ms FROM numbers(@exposures))`
	benchEvents = `INSERT INTO verdict.events (event_id, ts, ts_ms, unit_id, event, value, attr_keys, attr_values, seq)
SELECT concat('e-', toString(n)), toDateTime(@start_s + intDiv(offset_ms, 1000)), offset_ms % 1000,
    concat('user-', toString(cityHash64(n) % @units)),
    ['purchase', 'page_load', 'click', 'session_start', 'add_to_cart'][n % 5 + 1],
    (cityHash64(n, 3) % 10000) / 100, [], [],
    @seq0 + n - @from + 1
FROM (SELECT number AS n, if(n % 2 = 0, cityHash64(n, 9) % (21 * 86400000), (20 * 86400000) + cityHash64(n, 9) % 86400000) AS offset_ms FROM numbers(@from, @count))`
	benchBare = `SELECT count() FROM (SELECT unit_id, count(), sum(value) FROM verdict.events GROUP BY unit_id)`
)

var benchMetrics = []config.Metric{
	{Key: "conversion", Kind: stats.Proportion, Event: "purchase"},
	{Key: "revenue", Kind: stats.Mean, Event: "purchase", Aggregate: config.Sum, Cap: &config.Cap{Percentile: 0.99}},
	{Key: "items", Kind: stats.Count, Event: "add_to_cart", Aggregate: config.Count},
	{Key: "load_ms", Kind: stats.Ratio, Numerator: &config.Part{Event: "page_load", Aggregate: config.Sum}, Denominator: &config.Part{Event: "page_load", Aggregate: config.Count}},
	{Key: "clicks_per_session", Kind: stats.Ratio, Numerator: &config.Part{Event: "click", Aggregate: config.Count}, Denominator: &config.Part{Event: "session_start", Aggregate: config.Count}},
}

// BenchmarkLook measures, at each size of VERDICT_BENCH_UNITS (default
// 100000,300000,1000000 units, 10 events each), in the same run on the same
// server:
//   - bare: one per-unit pass over the events (GROUP BY unit_id, count and
//     sum): the least any recompute of the history costs;
//   - full: the readout recomputed in full (ExperimentStatsThrough);
//   - build: a tally's first look (every unit read);
//   - look: a tally's look after 1% more events, half of them late.
//
// It logs look against full and against bare, and checks the last look
// against a full recompute. Run it with
//
//	go test -run '^$' -bench BenchmarkLook -benchtime 5x ./tally/
func BenchmarkLook(b *testing.B) {
	sizes := []int{100_000, 300_000, 1_000_000}
	if s := os.Getenv("VERDICT_BENCH_UNITS"); s != "" {
		sizes = nil
		for _, f := range strings.Split(s, ",") {
			n, err := strconv.Atoi(f)
			if err != nil {
				b.Fatalf("VERDICT_BENCH_UNITS %q: %v", s, err)
			}
			sizes = append(sizes, n)
		}
	}
	srv := warehousetest.StartServer(b, warehousetest.BenchEngine())
	for _, units := range sizes {
		b.Run(fmt.Sprintf("units=%d", units), func(b *testing.B) { benchLook(b, srv, units) })
	}
}

func benchLook(b *testing.B, srv *warehousetest.Server, units int) {
	db := fmt.Sprintf("bench_%d", units)
	w := srv.Open(b, db)
	ctx := context.Background()
	exec := func(q string, args ...any) {
		b.Helper()
		if err := w.Conn().Exec(ctx, strings.ReplaceAll(q, "verdict.", db+"."), args...); err != nil {
			b.Fatalf("%.60s...: %v", q, err)
		}
	}
	start := time.Date(2026, 11, 1, 0, 0, 0, 0, time.UTC)
	exposures := units + units/100
	began := time.Now()
	exec(benchExposures, clickhouse.Named("start_s", start.Unix()), clickhouse.Named("units", units), clickhouse.Named("exposures", exposures))
	seq := uint64(exposures)
	total := 10 * units
	for from := 0; from < total; from += 2_000_000 {
		count := min(2_000_000, total-from)
		exec(benchEvents, clickhouse.Named("start_s", start.Unix()), clickhouse.Named("units", units),
			clickhouse.Named("seq0", seq), clickhouse.Named("from", from), clickhouse.Named("count", count))
		seq += uint64(count)
	}
	exec(`OPTIMIZE TABLE verdict.events FINAL`)
	exec(`OPTIMIZE TABLE verdict.exposures FINAL`)
	b.Logf("%d units: %d exposures and %d events in %v", units, exposures, total, time.Since(began))

	exp := config.Experiment{
		Key:               "bench",
		Variants:          []config.Variant{{Key: "control", Weight: 0.5}, {Key: "treatment", Weight: 0.5}},
		Control:           "control",
		Segments:          []string{"country", "platform"},
		AttributionWindow: config.Duration(7 * 24 * time.Hour),
		Start:             start,
	}
	asOf := start.Add(22 * 24 * time.Hour)
	floor := seq
	book := tally.NewBook(tally.Options{Source: benchSource{w}, Floor: func(context.Context) (uint64, error) { return floor, nil }})
	defer book.Close()
	per := map[string]time.Duration{}
	b.Run("bare", func(b *testing.B) {
		for b.Loop() {
			var n uint64
			if err := w.Conn().QueryRow(ctx, strings.ReplaceAll(benchBare, "verdict.", db+".")).Scan(&n); err != nil {
				b.Fatal(err)
			}
		}
		per["bare"] = b.Elapsed() / time.Duration(b.N)
	})
	b.Run("full", func(b *testing.B) {
		for b.Loop() {
			if _, err := w.ExperimentStatsThrough(ctx, exp, benchMetrics, asOf, floor); err != nil {
				b.Fatal(err)
			}
		}
		per["full"] = b.Elapsed() / time.Duration(b.N)
	})
	b.Run("build", func(b *testing.B) {
		for b.Loop() {
			fresh := tally.NewBook(tally.Options{Source: benchSource{w}, Floor: func(context.Context) (uint64, error) { return floor, nil }})
			if _, err := fresh.Look(ctx, exp, benchMetrics, asOf); err != nil {
				b.Fatal(err)
			}
			fresh.Close()
		}
		per["build"] = b.Elapsed() / time.Duration(b.N)
	})
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	if _, err := book.Look(ctx, exp, benchMetrics, asOf); err != nil {
		b.Fatal(err)
	}
	runtime.GC()
	runtime.ReadMemStats(&after)
	held := int64(after.HeapAlloc) - int64(before.HeapAlloc)
	b.Logf("%d units: the tally holds %d MiB of heap, %d bytes a unit", units, held>>20, held/int64(units))
	next := total
	var read int
	b.Run("look", func(b *testing.B) {
		for b.Loop() {
			b.StopTimer()
			count := total / 100
			exec(benchEvents, clickhouse.Named("start_s", start.Unix()), clickhouse.Named("units", units),
				clickhouse.Named("seq0", seq), clickhouse.Named("from", next), clickhouse.Named("count", count))
			next += count
			seq += uint64(count)
			floor = seq
			b.StartTimer()
			look, err := book.Look(ctx, exp, benchMetrics, asOf)
			if err != nil {
				b.Fatal(err)
			}
			read = look.Events
		}
		per["look"] = b.Elapsed() / time.Duration(b.N)
	})
	b.Logf("%d units: a look after 1%% new events (%d rows read) took %v: %.3f of a full recompute (%v), %.3f of a bare per-unit pass (%v); a build %v",
		units, read, per["look"], float64(per["look"])/float64(per["full"]), per["full"], float64(per["look"])/float64(per["bare"]), per["bare"], per["build"])

	look, err := book.Look(ctx, exp, benchMetrics, asOf)
	if err != nil {
		b.Fatal(err)
	}
	full, err := w.ExperimentStatsThrough(ctx, exp, benchMetrics, asOf, floor)
	if err != nil {
		b.Fatal(err)
	}
	if d := tally.Diff(full, look.Stats, 1e-9); len(d) > 0 {
		b.Errorf("the last look differs from a full recompute:\n%s", strings.Join(d, "\n"))
	}
}

// benchSource is the warehouse, as a tally.Source.
type benchSource struct{ *warehouse.Warehouse }

// BenchmarkRound is one round of the rules service over K experiments of U
// units each (VERDICT_BENCH_ROUND, default 12x100000), 10 events a unit, all
// in one events table: after 1% more events (half late) every experiment is
// looked at, four at once, as the rules engine does; beside it, the same
// round with full recomputes. Run it with
//
//	go test -run '^$' -bench BenchmarkRound -benchtime 3x ./tally/
func BenchmarkRound(b *testing.B) {
	k, units := 12, 100_000
	if s := os.Getenv("VERDICT_BENCH_ROUND"); s != "" {
		if _, err := fmt.Sscanf(s, "%dx%d", &k, &units); err != nil {
			b.Fatalf("VERDICT_BENCH_ROUND %q: want KxU, such as 12x100000", s)
		}
	}
	srv := warehousetest.StartServer(b, warehousetest.BenchEngine())
	w := srv.Open(b, "round")
	ctx := context.Background()
	exec := func(q string, args ...any) {
		b.Helper()
		if err := w.Conn().Exec(ctx, strings.ReplaceAll(q, "verdict.", "round."), args...); err != nil {
			b.Fatalf("%.60s...: %v", q, err)
		}
	}
	start := time.Date(2026, 11, 1, 0, 0, 0, 0, time.UTC)
	// Units 0..K·U-1, experiment i owning i·U..(i+1)·U-1.
	all := k * units
	began := time.Now()
	var exps []config.Experiment
	for i := range k {
		exec(`INSERT INTO verdict.exposures (event_id, ts, ts_ms, unit_id, experiment, variant, attr_keys, attr_values, seq)
SELECT concat('x-', toString(n)), toDateTime(@start_s + intDiv(offset_ms, 1000)), offset_ms % 1000,
    concat('user-', toString(n)), @experiment, if(cityHash64(n) % 2 = 0, 'control', 'treatment'),
    ['platform'], [['ios', 'web', 'android'][n % 3 + 1]], n + 1
FROM (SELECT number AS n, cityHash64(n, 7) % (14 * 86400000) AS offset_ms FROM numbers(@from, @count))`,
			clickhouse.Named("start_s", start.Unix()), clickhouse.Named("experiment", fmt.Sprintf("e%d", i)),
			clickhouse.Named("from", i*units), clickhouse.Named("count", units))
		exps = append(exps, config.Experiment{
			Key:               fmt.Sprintf("e%d", i),
			Variants:          []config.Variant{{Key: "control", Weight: 0.5}, {Key: "treatment", Weight: 0.5}},
			Control:           "control",
			Segments:          []string{"platform"},
			AttributionWindow: config.Duration(7 * 24 * time.Hour),
			Start:             start,
		})
	}
	seq := uint64(all)
	total := 10 * all
	for from := 0; from < total; from += 2_000_000 {
		count := min(2_000_000, total-from)
		exec(benchEvents, clickhouse.Named("start_s", start.Unix()), clickhouse.Named("units", all),
			clickhouse.Named("seq0", seq), clickhouse.Named("from", from), clickhouse.Named("count", count))
		seq += uint64(count)
	}
	exec(`OPTIMIZE TABLE verdict.events FINAL`)
	exec(`OPTIMIZE TABLE verdict.exposures FINAL`)
	b.Logf("%d experiments × %d units: %d events in %v", k, units, total, time.Since(began))

	asOf := start.Add(22 * 24 * time.Hour)
	floor := seq
	book := tally.NewBook(tally.Options{Source: benchSource{w}, Floor: func(context.Context) (uint64, error) { return floor, nil }, FloorReuse: time.Second})
	defer book.Close()
	round := func(look func(config.Experiment) error) error {
		var g errgroup.Group
		g.SetLimit(4)
		for _, exp := range exps {
			g.Go(func() error { return look(exp) })
		}
		return g.Wait()
	}
	tallied := func(exp config.Experiment) error { _, err := book.Look(ctx, exp, benchMetrics, asOf); return err }
	if err := round(tallied); err != nil { // the builds
		b.Fatal(err)
	}
	per := map[string]time.Duration{}
	next := total
	b.Run("looks", func(b *testing.B) {
		for b.Loop() {
			b.StopTimer()
			count := total / 100
			exec(benchEvents, clickhouse.Named("start_s", start.Unix()), clickhouse.Named("units", all),
				clickhouse.Named("seq0", seq), clickhouse.Named("from", next), clickhouse.Named("count", count))
			next += count
			seq += uint64(count)
			floor = seq
			time.Sleep(time.Second) // the last round's floor has gone stale
			b.StartTimer()
			if err := round(tallied); err != nil {
				b.Fatal(err)
			}
		}
		per["looks"] = b.Elapsed() / time.Duration(b.N)
	})
	b.Run("full", func(b *testing.B) {
		for b.Loop() {
			if err := round(func(exp config.Experiment) error {
				_, err := w.ExperimentStatsThrough(ctx, exp, benchMetrics, asOf, floor)
				return err
			}); err != nil {
				b.Fatal(err)
			}
		}
		per["full"] = b.Elapsed() / time.Duration(b.N)
	})
	b.Logf("a round of %d experiments × %d units after 1%% new events: %v with tallies, %v recomputing each in full (%.3f)",
		k, units, per["looks"], per["full"], float64(per["looks"])/float64(per["full"]))
	for _, exp := range exps[:1] {
		look, err := book.Look(ctx, exp, benchMetrics, asOf)
		if err != nil {
			b.Fatal(err)
		}
		full, err := w.ExperimentStatsThrough(ctx, exp, benchMetrics, asOf, floor)
		if err != nil {
			b.Fatal(err)
		}
		if d := tally.Diff(full, look.Stats, 1e-9); len(d) > 0 {
			b.Errorf("%s: the last look differs from a full recompute:\n%s", exp.Key, strings.Join(d, "\n"))
		}
	}
}
