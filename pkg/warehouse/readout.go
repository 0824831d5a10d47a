package warehouse

import (
	"context"
	"errors"
	"fmt"
	"math"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2"
	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"

	"github.com/verdictlabs/verdict/pkg/config"
	"github.com/verdictlabs/verdict/pkg/stats"
)

// NoValue is the segment value of units whose first exposure did not carry
// the segment's attribute. An attribute whose value is the empty string is
// reported the same way.
const NoValue = "(none)"

// ExperimentStats are the sufficient statistics of one experiment as of one
// moment, as ExperimentStats computes them in ClickHouse.
type ExperimentStats struct {
	// Units are the included units per variant of the definition (every
	// variant has an entry, 0 when it has no units yet): exposed to that
	// variant only.
	Units map[string]uint64
	// Exposed counts every unit with an exposure in the analysis range,
	// included or not: Exposed = Σ Units + MultiExposed + UnknownVariant.
	Exposed uint64
	// MultiExposed counts units exposed to more than one variant; they are
	// left out of every statistic.
	MultiExposed uint64
	// UnknownVariant counts units exposed to a single variant that the
	// definition does not list (a typo in a client, a variant removed from
	// the definition); they are left out of every statistic, too.
	UnknownVariant uint64
	// FirstExposure is the earliest exposure in the analysis range, and
	// DataThrough the latest exposure or counted track event (never after
	// asOf). Both are zero when there is no exposure.
	FirstExposure, DataThrough time.Time
	// Cells are the statistics per variant and metric: overall (Dimension
	// "") for every variant × metric, and per segment value seen.
	Cells []Cell
	// Time, when set, is the experiment's statistics over time
	// (TimeStats), computed apart: the readout carries them as they are.
	Time *TimeStats
}

// Cell is the sufficient statistics of one metric in one variant, overall
// (Dimension and Value "") or in one segment (Dimension the attribute,
// Value its value or NoValue).
type Cell struct {
	Variant, Metric, Dimension, Value string
	Arm                               stats.Arm
	// Pre is the CUPED covariate's sums: the metric over each unit's
	// events in its lookback before the first exposure (zero when the
	// metric has no CUPED).
	Pre stats.Pre
	// Quantile is a quantile metric's statistic (nil for other kinds, and
	// when the cell has no value: an event-level quantile's units without
	// events). Arm.N is its units all the same.
	Quantile *stats.QuantileArm
}

// Cell returns the statistics of metric in variant, overall when dimension
// is "", else for the segment dimension = value.
func (s ExperimentStats) Cell(variant, metric, dimension, value string) (stats.Arm, bool) {
	for _, c := range s.Cells {
		if c.Variant == variant && c.Metric == metric && c.Dimension == dimension && c.Value == value {
			return c.Arm, true
		}
	}
	return stats.Arm{}, false
}

// ErrBadDefinition is wrapped by ExperimentStats errors about the
// definitions it was given (not about ClickHouse).
var ErrBadDefinition = errors.New("bad experiment or metric definition")

// ExperimentStats computes, in ClickHouse, the sufficient statistics of exp
// for each of metrics (the definitions of every metric the experiment
// names) as of asOf. The contract, which the tests check against a
// computation in Go from the raw events:
//
//   - Exposures count when their experiment is exp.Key and their ts is in
//     [exp.Start, min(exp.End, asOf)]. Copies of an event (same event_id)
//     count once everywhere.
//   - A unit's first exposure (earliest ts in milliseconds; on a tie, the
//     smallest event_id) is its start; its segment values are the
//     attributes of that exposure. Units exposed to more than one variant
//     are counted in MultiExposed, units of a variant the definition does
//     not list in UnknownVariant; neither enters any statistic.
//   - A unit's metric value uses the metric's track events of that unit with
//     ts in [start, start + exp.AttributionWindow) and ts ≤ asOf:
//     proportion 1 with at least one event else 0; mean the sum of value
//     (aggregate sum) or the number of events (aggregate count); count the
//     number of events; ratio its numerator and denominator, each the
//     aggregate of its own event. Units without events count, with 0.
//   - A metric with a cap is winsorised: per-unit values (a ratio's
//     numerators) above the cap are set to the cap, which is
//     quantileExact(percentile) of the non-zero values of the included
//     units of the experiment, arms pooled: the value at 0-based position
//     ⌊percentile · n⌋ of the n non-zero values sorted, without
//     interpolation. Units at 0 are left out of the quantile (and keep 0),
//     so that a sparse metric is not capped to 0; with no non-zero value
//     there is nothing to cap.
//   - A quantile metric's cells carry a stats.QuantileArm (stats.QuantileOf)
//     of the included units' values (level unit: the unit's aggregate, 0
//     without events) or of their counted events' values (level event; one
//     cluster per unit with events, s its events at or below the cell's
//     quantile). Its Arm has N (units) and zero sums.
//
// It runs one query, one more when a metric has a cap (the caps first),
// and one per quantile metric (two for an event-level one: its quantiles
// first, then the clusters' counts at or below them).
func (w *Warehouse) ExperimentStats(ctx context.Context, exp config.Experiment, metrics []config.Metric, asOf time.Time) (ExperimentStats, error) {
	return w.experimentStats(ctx, exp, metrics, asOf, everything)
}

// ExperimentStatsThrough is ExperimentStats over the rows that arrived
// with seq <= seq only (see schemas/clickhouse/0003_seq.sql): what a
// readout as of that acknowledgement floor counts.
func (w *Warehouse) ExperimentStatsThrough(ctx context.Context, exp config.Experiment, metrics []config.Metric, asOf time.Time, seq uint64) (ExperimentStats, error) {
	return w.experimentStats(ctx, exp, metrics, asOf, cut{seq: seq})
}

func (w *Warehouse) experimentStats(ctx context.Context, exp config.Experiment, metrics []config.Metric, asOf time.Time, c cut) (ExperimentStats, error) {
	q, err := newReadoutQuery(w.db, exp, metrics, asOf, c)
	if err != nil {
		return ExperimentStats{}, fmt.Errorf("readout of experiment %s: %w", exp.Key, err)
	}
	out := ExperimentStats{Units: make(map[string]uint64, len(exp.Variants))}
	for _, v := range exp.Variants {
		out.Units[v.Key] = 0
	}
	if q.empty {
		out.Cells = q.emptyCells(exp)
		return out, nil
	}
	caps, err := w.caps(ctx, q)
	if err != nil {
		return ExperimentStats{}, fmt.Errorf("readout of experiment %s: caps: %w", exp.Key, err)
	}
	if err := w.sufficientStats(ctx, q, exp, caps, &out); err != nil {
		return ExperimentStats{}, fmt.Errorf("readout of experiment %s: %w", exp.Key, err)
	}
	if err := w.quantileStats(ctx, q, caps, &out); err != nil {
		return ExperimentStats{}, fmt.Errorf("readout of experiment %s: quantiles: %w", exp.Key, err)
	}
	return out, nil
}

// quantileStats runs each quantile metric's queries (on every shard, on a
// cluster) and puts its statistics in out's cells.
func (w *Warehouse) quantileStats(ctx context.Context, q *readoutQuery, caps map[string]any, out *ExperimentStats) error {
	type key struct{ variant, dim, value string }
	for _, qq := range q.quantiles {
		m := q.metrics[qq.metric]
		sorted := map[key][]float64{}
		err := w.eachConn(ctx, qq.values, qq.shardValues, named(q.params, caps), func(rows driver.Rows) error {
			for rows.Next() {
				var k key
				var vs []float64
				if err := rows.Scan(&k.variant, &k.dim, &k.value, &vs); err != nil {
					return err
				}
				sorted[k] = append(sorted[k], vs...)
			}
			return rows.Err()
		})
		if err != nil {
			return fmt.Errorf("metric %s: %w", m.Key, err)
		}
		arms := make(map[key]*stats.QuantileArm, len(sorted))
		var cells []string
		var hats []float64
		for k, vs := range sorted {
			if w.shards != nil {
				slices.Sort(vs) // the shards' sorted runs, merged
			}
			a := stats.QuantileOf(vs, m.Quantile)
			arms[k] = &a
			cells, hats = append(cells, cellKey(k.variant, k.dim, k.value)), append(hats, a.Hat)
		}
		if m.EventQuantile() && len(arms) > 0 {
			for _, a := range arms {
				a.Clustered = true
			}
			err := w.eachConn(ctx, qq.clusters, qq.shardClusters, named(q.params, caps, map[string]any{"cells": cells, "hats": hats}), func(rows driver.Rows) error {
				for rows.Next() {
					var k key
					var s, ss, d, dd, sd float64
					var n uint64
					if err := rows.Scan(&k.variant, &k.dim, &k.value, &s, &ss, &d, &dd, &sd, &n); err != nil {
						return err
					}
					a := arms[k]
					if a == nil {
						return fmt.Errorf("cluster sums of %q, %q = %q, a cell without values", k.variant, k.dim, k.value)
					}
					a.MainSum += s
					a.MainSumSquares += ss
					a.DenSum += d
					a.DenSumSquares += dd
					a.MainDenSumProduct += sd
					a.NClusters += float64(n)
				}
				return rows.Err()
			})
			if err != nil {
				return fmt.Errorf("metric %s: clusters: %w", m.Key, err)
			}
		}
		for i := range out.Cells {
			c := &out.Cells[i]
			if c.Metric != m.Key {
				continue
			}
			value := c.Value
			if c.Dimension != "" && value == NoValue {
				value = ""
			}
			if a, ok := arms[key{c.Variant, c.Dimension, value}]; ok {
				c.Quantile = a
			}
		}
	}
	return nil
}

// The readout SQL, in three steps from the inside out. It means the same on
// every ClickHouse from 18.16 to 26.x (the tests run it on both ends,
// warehousetest.Engines): it uses what 18.16 has and current ClickHouse
// still documents, and nothing whose meaning changed in between: nested
// subqueries, each with an alias when joined (joined_subquery_requires_alias
// is 1 by default since 20.3; no CTEs over subqueries on 18.16), ALL
// LEFT/INNER JOIN ... USING (never ANY: since 20.1 ANY INNER JOIN keeps one
// row per key on both sides, which on the same text drops all but one of a
// unit's events), -ForEach, ARRAY JOIN, groupArray, arrayEnumerateUniq,
// quantileExact; lambdas never capture a column (18.16 fails with "Unknown
// identifier" when they do). {…} marks a fragment the Go code generates
// from the definitions (column lists, one entry per metric, event or
// segment dimension) with only numbers of its own in them; every value from
// a definition is a bound @parameter, except a cap's percentile, a float64
// checked and formatted by Go because quantileExact takes its level as a
// literal.
//
// Why it is shaped this way (BenchmarkReadout: 1M units, 10M events, 2
// cores; the previous shape, kept in readout_bench_test.go as the
// baseline, took about twice the time and the server CPU, measured side by
// side):
//
//   - Units are keyed on unit_key = cityHash64(unit_id), a UInt64: joins
//     and GROUP BYs on it cost about half of the same on the string (hash
//     tables of fixed-size keys, no string copies); a 128-bit key
//     (sipHash128, murmurHash3_128) kept most of the string's cost. The
//     price is a collision argument: two distinct units share a key with
//     probability about n²/2⁶⁵ for n units in one readout (3·10⁻⁸ for 1M
//     exposed units), and an event of a unit outside the experiment lands
//     on an exposed unit with probability about n·m/2⁶⁴ for m other units
//     in the events read (5·10⁻⁶ for 1M and 100M). A collision would merge
//     the two units' rows.
//   - Both joins are ALL, and their right sides have one row per unit_key
//     (a GROUP BY unit_key), so each left row meets at most one right row:
//     the join adds no rows, and it means this on every version. ANY, used
//     here before, meant the same on 18.16 only.
//   - Copies of an event are dropped per unit, after the join and the
//     window: the unit's counted rows are gathered with groupArray in the
//     GROUP BY that is needed anyway, and arrayEnumerateUniq over
//     cityHash64(event_id) marks the first copy of each event (1). This
//     replaces a GROUP BY (unit, event hash) over every counted row, the
//     most expensive step after the join. A collision would need two events
//     of one unit with the same 64-bit hash.
//   - The first exposure's segment values are argMin(value, order) per
//     dimension with a String order key (the exposure's millisecond, 14
//     digits, then its event_id: string order is (ms, event_id) order):
//     argMin of an Array value by a tuple key goes through generic values
//     and took nearly twice the time.
//   - Units are summed per (variant, segment values) before the ARRAY JOIN
//     that makes one row per dimension: all the statistics are sums, mins
//     and maxes, so the ARRAY JOIN and the -ForEach sums run over a few
//     groups instead of (1 + dimensions) rows per unit.
//
// Tried and not kept (same benchmark): FINAL instead of the dedup (merges
// every event read across parts by sort key, not by event_id; no faster);
// GROUP BY event hash alone for the dedup (slower than the per-unit
// arrays, and a weaker collision argument); a unit_id IN (subquery) filter
// before the join (nearly every event belongs to the experiment's units,
// so it only adds a set lookup per event: no gain measured); one GROUP BY
// of exposures and events together, windows applied to per-unit arrays (no
// join, but groupArray of every event and lambdas over them cost more than
// the join); scalar per-metric sums instead of -ForEach (no faster once
// units are summed per group first); explicit PREWHERE (18.16 moves the
// event and ts conditions to PREWHERE itself); materialized hash columns
// (a migration adding unit_hash and event_hash UInt64 MATERIALIZED
// cityHash64(...)): leaving the hashing and the two strings out of the
// events scan saves at most ~0.4 s of CPU, about 5% of a readout, for 16
// incompressible bytes more per stored event. The caps stay a query of
// their own: 18.16 cannot reuse a subquery's result, so a cap computed
// inside the statistics query (a scalar subquery) would repeat that work.
//
// No materialized view pre-aggregates for the readout. Per-unit event sums
// depend on each unit's first exposure, known only at query time, and a view
// sees every copy of an event as inserted, so a SummingMergeTree would count
// a redelivered event twice. Exposures could be pre-aggregated safely (min,
// max and argMin ignore copies), but that saves at most the units side,
// and a per-unit state cannot honour the [Start, min(End, asOf)] range of a
// readout.
const (
	// exposuresWhere selects the exposures in the analysis range that
	// arrived by the cut-off (seq; every row when it is the largest
	// UInt64), of the units asked for ({units}: every unit, or those of
	// @units).
	exposuresWhere = `experiment = @experiment
                AND ts >= toDateTime(@start_s) AND ts <= toDateTime(@end_s)
                AND toUInt64(ts) * 1000 + ts_ms >= @start_ms AND toUInt64(ts) * 1000 + ts_ms <= @end_ms
                AND seq <= @max_seq{units}`

	// unitsSQL is one row per unit exposed in the analysis range: its first
	// exposure, whether it saw one variant (min = max), and the segment
	// values of its first exposure (unit_segment_N, the Nth dimension).
	// Duplicated exposures cannot change min, max or argMin, so exposures
	// need no dedup step. exposure_order sorts as (ms, event_id) does:
	// exposure_ms + 10¹³ has 14 digits for every DateTime.
	unitsSQL = `SELECT
            unit_key,
            min(exposure_ms) AS first_ms,
            max(exposure_ms) AS last_exposure_ms,
            min(variant) AS min_variant,
            max(variant) AS max_variant{segment_columns}
        FROM
        (
            SELECT cityHash64(unit_id) AS unit_key, variant,
                toUInt64(ts) * 1000 + ts_ms AS exposure_ms,
                concat(toString(exposure_ms + 10000000000000), event_id) AS exposure_order{segments}
            FROM {db:Identifier}.exposures
            WHERE ` + exposuresWhere + `
        )
        GROUP BY unit_key`

	// unitEventsSQL is one row per exposed unit with counted events: per
	// event name (numbered by its position in @events) the number and the
	// sum of value of the unit's events inside its attribution window, each
	// event once (copy_number 1: its first copy among the unit's rows), and
	// for CUPED the same over the unit's events in a lookback before its
	// first exposure (offset < 0). The groupArrays of one unit list its
	// rows in the same order, so copy_number, event_numbers, event_values
	// and event_offsets are parallel arrays.
	unitEventsSQL = `SELECT
            unit_key,
            last_event_ms,{counted}
            {event_columns}
        FROM
        (
            SELECT
                unit_key,
                maxIf(track_ms, track_ms >= first_ms) AS last_event_ms,{counted_events}
                arrayEnumerateUniq(groupArray(event_hash)) AS copy_number,
                groupArray(event_index) AS event_numbers,
                groupArray(value) AS event_values,
                groupArray(toInt64(track_ms) - toInt64(first_ms)) AS event_offsets
            FROM
            (
                SELECT
                    cityHash64(unit_id) AS unit_key,
                    cityHash64(event_id) AS event_hash,
                    toUInt64(ts) * 1000 + ts_ms AS track_ms,
                    indexOf(@events, event) AS event_index,
                    value
                FROM {db:Identifier}.events
                WHERE event IN @event_set
                    AND ts >= toDateTime(@scan_start_s) AND ts <= toDateTime(@events_end_s)
                    AND seq <= @max_seq{units}
            ) AS track
            ALL INNER JOIN
            (
                SELECT cityHash64(unit_id) AS unit_key, min(toUInt64(ts) * 1000 + ts_ms) AS first_ms
                FROM {db:Identifier}.exposures
                WHERE ` + exposuresWhere + `
                GROUP BY unit_key
            ) AS first_exposures USING unit_key
            WHERE (track_ms >= first_ms AND track_ms < first_ms + @window_ms AND track_ms <= @as_of_ms)
                OR (track_ms < first_ms AND track_ms + @lookback_ms >= first_ms)
            GROUP BY unit_key
        )`

	// perUnitSQL is one row per exposed unit: its variant ('' when it saw
	// more than one), segment values (the first, '', is the overall
	// "dimension"), and per metric its value x and, for a ratio, its
	// denominator y. The LEFT JOIN leaves 0 in the event columns of units
	// without counted events (join_use_nulls is 0 by default on 18.16 and
	// on current ClickHouse; the query sets it).
	perUnitSQL = `SELECT
        if(min_variant = max_variant, min_variant, '') AS unit_variant,
        {unit_segments} AS unit_segments,
        first_ms, last_exposure_ms, last_event_ms,
        {metric_x} AS xs,
        {metric_y} AS ys,
        {metric_px} AS pxs,
        {metric_py} AS pys,
        {metric_values} AS qvs
    FROM
    (
        ` + unitsSQL + `
    ) AS units
    ALL LEFT JOIN
    (
        ` + unitEventsSQL + `
    ) AS unit_events USING unit_key`

	// unitRowsSQL is perUnitSQL before the metrics: per exposed unit its
	// first exposure, variants, segment values, the count and sum of each
	// event inside its window and of each (event, lookback) in its CUPED
	// lookback, and the event hashes it counted. pkg/tally keeps these
	// between looks.
	unitRowsSQL = `SELECT
        unit_key,
        first_ms, last_exposure_ms, last_event_ms,
        min_variant, max_variant,
        {unit_segment_values} AS unit_segments,
        {counts} AS counts,
        {sums} AS sums,
        {pre_counts} AS pre_counts,
        {pre_sums} AS pre_sums,
        {values} AS values,
        counted
    FROM
    (
        ` + unitsSQL + `
    ) AS units
    ALL LEFT JOIN
    (
        ` + unitEventsSQL + `
    ) AS unit_events USING unit_key
    SETTINGS join_use_nulls = 0`

	// capsSQL is the cap of each capped metric: a quantile over the
	// included units, arms pooled.
	capsSQL = `SELECT {quantiles}
FROM
(
    ` + perUnitSQL + `
)
WHERE unit_variant IN @variants
SETTINGS join_use_nulls = 0`

	// statsSQL is the sufficient statistics per variant, overall
	// (dimension '') and per segment value: units are first summed per
	// variant and combination of segment values, then ARRAY JOIN turns
	// each group into one row per dimension, the overall one included.
	statsSQL = `SELECT
    unit_variant,
    dimension,
    segment_value,
    sum(group_units) AS units,
    sumForEach(group_x) AS sum_x,
    sumForEach(group_xx) AS sum_xx,
    sumForEach(group_y) AS sum_y,
    sumForEach(group_yy) AS sum_yy,
    sumForEach(group_xy) AS sum_xy,
    sumForEach(group_px) AS sum_px,
    sumForEach(group_pxx) AS sum_pxx,
    sumForEach(group_py) AS sum_py,
    sumForEach(group_pyy) AS sum_pyy,
    sumForEach(group_pxpy) AS sum_pxpy,
    sumForEach(group_xpx) AS sum_xpx,
    sumForEach(group_xpy) AS sum_xpy,
    sumForEach(group_ypx) AS sum_ypx,
    sumForEach(group_ypy) AS sum_ypy,
    min(group_first_ms) AS first_exposure_ms,
    max(group_through_ms) AS data_through_ms
FROM
(
    SELECT
        unit_variant,
        unit_segments,
        count() AS group_units,
        sumForEach(xs) AS group_x,
        sumForEach(arrayMap(x -> x * x, xs)) AS group_xx,
        sumForEach(ys) AS group_y,
        sumForEach(arrayMap(y -> y * y, ys)) AS group_yy,
        sumForEach(arrayMap((x, y) -> x * y, xs, ys)) AS group_xy,
        sumForEach(pxs) AS group_px,
        sumForEach(arrayMap(x -> x * x, pxs)) AS group_pxx,
        sumForEach(pys) AS group_py,
        sumForEach(arrayMap(y -> y * y, pys)) AS group_pyy,
        sumForEach(arrayMap((x, y) -> x * y, pxs, pys)) AS group_pxpy,
        sumForEach(arrayMap((x, p) -> x * p, xs, pxs)) AS group_xpx,
        sumForEach(arrayMap((x, p) -> x * p, xs, pys)) AS group_xpy,
        sumForEach(arrayMap((y, p) -> y * p, ys, pxs)) AS group_ypx,
        sumForEach(arrayMap((y, p) -> y * p, ys, pys)) AS group_ypy,
        min(first_ms) AS group_first_ms,
        max(greatest(last_exposure_ms, last_event_ms)) AS group_through_ms
    FROM
    (
        ` + perUnitSQL + `
    )
    GROUP BY unit_variant, unit_segments
)
ARRAY JOIN @dimensions AS dimension, unit_segments AS segment_value
GROUP BY unit_variant, dimension, segment_value
SETTINGS join_use_nulls = 0`

	// quantileValuesSQL is a quantile metric's values per variant, overall
	// and per segment value, sorted: {value} is the unit's value (level
	// unit) or array of its events' values (level event, {gather}
	// groupArrayArray, units without events left out by {nonempty}). Each
	// shard of a cluster sends its own; they are merged, and the order
	// statistics taken, by stats.QuantileOf.
	quantileValuesSQL = `SELECT unit_variant, dimension, segment_value, arraySort({gather}(v)) AS sorted
FROM
(
    SELECT unit_variant, unit_segments, {value} AS v
    FROM
    (
        ` + perUnitSQL + `
    )
    WHERE unit_variant IN @variants{nonempty}
)
ARRAY JOIN @dimensions AS dimension, unit_segments AS segment_value
GROUP BY unit_variant, dimension, segment_value
SETTINGS join_use_nulls = 0`

	// quantileClustersSQL is an event-level quantile's cluster sums per
	// variant, overall and per segment value: per unit with events, m its
	// events and s those at or below its cell's quantile, looked up in
	// @hats by the cell's key in @cells (cellKey's encoding; replicate
	// hands the quantile to the lambda, which may not capture a column).
	quantileClustersSQL = `SELECT unit_variant, dimension, segment_value,
    sum(s), sum(s * s), sum(m), sum(m * m), sum(s * m), count()
FROM
(
    SELECT unit_variant, dimension, segment_value,
        toFloat64(length(v)) AS m,
        toFloat64(arrayCount((x, h) -> x <= h, v, replicate(@hats[indexOf(@cells,
            concat(toString(length(unit_variant)), ':', unit_variant, toString(length(dimension)), ':', dimension, segment_value))], v))) AS s
    FROM
    (
        SELECT unit_variant, unit_segments, {value} AS v
        FROM
        (
            ` + perUnitSQL + `
        )
        WHERE unit_variant IN @variants AND notEmpty(v)
    )
    ARRAY JOIN @dimensions AS dimension, unit_segments AS segment_value
)
GROUP BY unit_variant, dimension, segment_value
SETTINGS join_use_nulls = 0`
)

// cellKey is the encoding of (variant, dimension, segment value) that
// quantileClustersSQL looks a cell's quantile up by: each of the first two
// prefixed by its length in bytes.
func cellKey(variant, dim, value string) string {
	return fmt.Sprintf("%d:%s%d:%s%s", len(variant), variant, len(dim), dim, value)
}

// readoutQuery is the SQL of one experiment's readout and its parameters.
type readoutQuery struct {
	db      string
	empty   bool            // the analysis range is empty: nothing to query
	metrics []config.Metric // in the order of xs and ys
	dims    []string
	params  map[string]any // bound as @name

	stats string // the statistics SQL with its fragments filled in

	// The caps query, "" when no metric has a cap, and its parameters.
	caps       string
	capsParams map[string]any
	// On a cluster, what each shard runs over its _local tables: the
	// statistics, and instead of the caps each capped metric's sorted
	// non-zero values (the caps are quantiles over every shard's units).
	shardStats, shardValues string
	capped                  []int // indexes into metrics of the capped metrics, in the order of caps' columns

	fillRaw func(sql string) string // fills sql's fragments with uncapped values

	// The per-unit rows (unitRowsSQL) and what their arrays hold.
	unitRows, shardUnitRows string
	layout                  Layout

	// Per quantile metric: its index in metrics, and its values and (level
	// event) clusters queries.
	quantiles []quantileQuery
}

// quantileQuery is the SQL of one quantile metric's statistics, on a
// single server and (shard...) on each shard of a cluster.
type quantileQuery struct {
	metric                  int
	values, shardValues     string
	clusters, shardClusters string
}

// Layout says what the arrays of a UnitRow hold: the window count and sum
// of each of Events, in order, the lookback count and sum of each of
// Pres, and the values of the events of each of Values (events of
// event-level quantiles).
type Layout struct {
	Events []string
	Pres   []Pre
	Values []string
}

// Pre is an event summed over a CUPED lookback before the first exposure.
type Pre struct {
	Event    string
	Lookback time.Duration
}

// cut says which rows a query reads: those that arrived with seq <= seq,
// of every unit, or of units only when units is not nil. firstMS, when not
// 0, is at or before the first exposure of every unit of units: no event
// before it less the longest lookback is read.
type cut struct {
	seq     uint64
	units   []uint64
	firstMS int64
}

// unitsTable is the external table of a cut's units: one UInt64 column.
const unitsTable = "verdict_units"

// everything is the cut of every row.
var everything = cut{seq: math.MaxUint64}

func newReadoutQuery(db string, exp config.Experiment, metrics []config.Metric, asOf time.Time, c cut) (*readoutQuery, error) {
	window := time.Duration(exp.AttributionWindow)
	if window <= 0 {
		return nil, fmt.Errorf("%w: attribution window %v is not positive", ErrBadDefinition, window)
	}
	if len(exp.Variants) == 0 {
		return nil, fmt.Errorf("%w: no variants", ErrBadDefinition)
	}
	end := asOf
	if exp.End != nil && exp.End.Before(end) {
		end = *exp.End
	}
	startMS, endMS, asOfMS := exp.Start.UnixMilli(), end.UnixMilli(), asOf.UnixMilli()
	// Before Start (or an End before Start) nothing can count; the
	// definitions are still checked.
	q := &readoutQuery{db: db, metrics: metrics, dims: exp.Segments, empty: startMS < 0 || endMS < startMS}
	eventsEnd := min(asOfMS, endMS+window.Milliseconds())

	// Event names, numbered in order of first use: count_N and sum_N are
	// the per-unit aggregates of the Nth.
	var events []string
	number := func(event string) int {
		i := slices.Index(events, event)
		if i < 0 {
			events = append(events, event)
			i = len(events) - 1
		}
		return i + 1
	}
	// Pre-exposure aggregates for CUPED, numbered per (event, lookback):
	// pre_count_K and pre_sum_K of the Kth over the unit's events in the
	// lookback before its first exposure.
	type preKey struct {
		event    string
		lookback int64 // ms
	}

	var pres []preKey
	preNumber := func(event string, lookback int64) int {
		k := preKey{event, lookback}
		i := slices.Index(pres, k)
		if i < 0 {
			number(event)
			pres = append(pres, k)
			i = len(pres) - 1
		}
		return i + 1
	}
	post := func(event string, count bool) string {
		if count {
			return fmt.Sprintf("toFloat64(count_%d)", number(event))
		}
		return fmt.Sprintf("sum_%d", number(event))
	}
	// value is the per-unit value x of m (and y, a ratio's denominator)
	// from the aggregates agg names.
	value := func(m config.Metric, agg func(event string, count bool) string) (x, y string, err error) {
		part := func(p config.Part) (string, error) {
			if p.Event == "" {
				return "", fmt.Errorf("%w: no event", ErrBadDefinition)
			}
			switch p.Aggregate {
			case config.Count:
				return agg(p.Event, true), nil
			case config.Sum, "":
				return agg(p.Event, false), nil
			}
			return "", fmt.Errorf("%w: aggregate %q is not sum or count", ErrBadDefinition, p.Aggregate)
		}
		switch m.Kind {
		case stats.Proportion:
			if m.Event == "" {
				return "", "", fmt.Errorf("%w: no event", ErrBadDefinition)
			}
			x = fmt.Sprintf("toFloat64(%s > 0)", agg(m.Event, true))
		case stats.Mean:
			x, err = part(config.Part{Event: m.Event, Aggregate: m.Aggregate})
		case stats.Count:
			x, err = part(config.Part{Event: m.Event, Aggregate: config.Count})
		case stats.Quantile:
			if !(m.Quantile > 0 && m.Quantile < 1) {
				return "", "", fmt.Errorf("%w: quantile %v is not in (0, 1)", ErrBadDefinition, m.Quantile)
			}
			if m.EventQuantile() {
				// Its values are events': xs has 0 (the cells' Arm
				// keeps N only), qvs the unit's values.
				if m.Event == "" {
					return "", "", fmt.Errorf("%w: no event", ErrBadDefinition)
				}
				number(m.Event)
				x = "toFloat64(0)"
			} else {
				x, err = part(config.Part{Event: m.Event, Aggregate: m.Aggregate})
			}
		case stats.Ratio:
			if m.Numerator == nil || m.Denominator == nil {
				return "", "", fmt.Errorf("%w: a ratio needs a numerator and a denominator", ErrBadDefinition)
			}
			if x, err = part(*m.Numerator); err == nil {
				y, err = part(*m.Denominator)
			}
		default:
			err = fmt.Errorf("%w: kind %q", ErrBadDefinition, m.Kind)
		}
		if y == "" {
			y = "toFloat64(0)"
		}
		return x, y, err
	}
	// xs are the per-unit values (capped), raw the same before capping,
	// ys a ratio's denominators (0 for other kinds), pxs and pys the same
	// over the CUPED lookback (0 when the metric has no CUPED), capped
	// like xs.
	var xs, raw, ys, pxs, pys []string
	var maxLookback int64
	for i, m := range metrics {
		x, y, err := value(m, post)
		if err != nil {
			return nil, fmt.Errorf("metric %s: %w", m.Key, err)
		}
		px, py := "toFloat64(0)", "toFloat64(0)"
		if lookback := m.CUPEDLookback().Milliseconds(); lookback > 0 {
			maxLookback = max(maxLookback, lookback)
			pre := func(event string, count bool) string {
				if count {
					return fmt.Sprintf("toFloat64(pre_count_%d)", preNumber(event, lookback))
				}
				return fmt.Sprintf("pre_sum_%d", preNumber(event, lookback))
			}
			if px, py, err = value(m, pre); err != nil {
				return nil, fmt.Errorf("metric %s: %w", m.Key, err)
			}
		}
		raw, ys, pys = append(raw, x), append(ys, y), append(pys, py)
		// A proportion is 0 or 1: a cap cannot change it (and validation
		// refuses one).
		if m.Cap != nil && m.Kind != stats.Proportion {
			if p := m.Cap.Percentile; !(p > 0 && p < 1) {
				return nil, fmt.Errorf("metric %s: %w: cap percentile %v is not in (0, 1)", m.Key, ErrBadDefinition, p)
			}
			q.capped = append(q.capped, i)
			x = fmt.Sprintf("least(%s, @cap_%d)", x, i+1)
			px = fmt.Sprintf("least(%s, @cap_%d)", px, i+1)
		}
		xs, pxs = append(xs, x), append(pxs, px)
	}

	// Events whose values are kept: values_K is the Kth's values in the
	// window; qvs has, per event-level quantile metric, its values_K.
	var valued, metricValues []string
	for i, m := range metrics {
		if m.Kind != stats.Quantile {
			continue
		}
		value := fmt.Sprintf("xs[%d]", i+1)
		if m.EventQuantile() {
			k := slices.Index(valued, m.Event)
			if k < 0 {
				valued = append(valued, m.Event)
				k = len(valued) - 1
			}
			metricValues = append(metricValues, fmt.Sprintf("values_%d", k+1))
			value = fmt.Sprintf("qvs[%d]", len(metricValues))
		}
		q.quantiles = append(q.quantiles, quantileQuery{metric: i, values: value})
	}
	q.layout.Values = valued
	q.layout.Events = slices.Clone(events)
	for _, p := range pres {
		q.layout.Pres = append(q.layout.Pres, Pre{p.event, time.Duration(p.lookback) * time.Millisecond})
	}

	// count_N and sum_N over the first copies (copy_number 1) of the
	// unit's counted events numbered N (offset ≥ 0: from the first
	// exposure on); pre_count_K and pre_sum_K over those in the Kth's
	// lookback before it.
	var eventColumns []string
	for i := range events {
		n := i + 1
		eventColumns = append(eventColumns, fmt.Sprintf("arrayCount((c, e, o) -> c = 1 AND e = %d AND o >= 0, copy_number, event_numbers, event_offsets) AS count_%d, "+
			"arraySum((c, e, o, v) -> if(c = 1 AND e = %d AND o >= 0, v, 0), copy_number, event_numbers, event_offsets, event_values) AS sum_%d", n, n, n, n))
	}
	for i, p := range pres {
		k, n := i+1, slices.Index(events, p.event)+1
		eventColumns = append(eventColumns, fmt.Sprintf("arrayCount((c, e, o) -> c = 1 AND e = %d AND o < 0 AND o >= -%d, copy_number, event_numbers, event_offsets) AS pre_count_%d, "+
			"arraySum((c, e, o, v) -> if(c = 1 AND e = %d AND o < 0 AND o >= -%d, v, 0), copy_number, event_numbers, event_offsets, event_values) AS pre_sum_%d", n, p.lookback, k, n, p.lookback, k))
	}
	for i, e := range valued {
		n := slices.Index(events, e) + 1
		eventColumns = append(eventColumns, fmt.Sprintf("arrayFilter((v, c, e, o) -> c = 1 AND e = %d AND o >= 0, event_values, copy_number, event_numbers, event_offsets) AS values_%d", n, i+1))
	}
	if len(events) == 0 {
		// No metric: keep the query valid; no event is named "".
		events = []string{""}
		eventColumns = []string{"length(copy_number) AS count_1"}
	}
	// Per segment dimension N: its value on each exposure (segment_N), the
	// value of the unit's first exposure (unit_segment_N), and the unit's
	// array of them, '' first for the overall "dimension".
	var segments, segmentColumns strings.Builder
	unitSegments := []string{"''"}
	var segmentValues []string
	dimensions := []string{""}
	for i, d := range exp.Segments {
		n := i + 1
		fmt.Fprintf(&segments, ",\n                attr_values[indexOf(attr_keys, @dimension_%d)] AS segment_%d", n, n)
		fmt.Fprintf(&segmentColumns, ",\n            argMin(segment_%d, exposure_order) AS unit_segment_%d", n, n)
		unitSegments = append(unitSegments, fmt.Sprintf("unit_segment_%d", n))
		segmentValues = append(segmentValues, fmt.Sprintf("unit_segment_%d", n))
		dimensions = append(dimensions, d)
	}
	variants := make([]any, len(exp.Variants))
	for i, v := range exp.Variants {
		variants[i] = v.Key
	}
	eventSet := make([]any, len(events))
	for i, e := range events {
		eventSet[i] = e
	}
	q.params = map[string]any{
		"experiment":   exp.Key,
		"start_s":      startMS / 1000,
		"scan_start_s": max(startMS-maxLookback, c.firstMS-maxLookback, 0) / 1000,
		"lookback_ms":  maxLookback,
		"end_s":        endMS / 1000,
		"start_ms":     startMS,
		"end_ms":       endMS,
		"events_end_s": eventsEnd / 1000,
		"window_ms":    window.Milliseconds(),
		"as_of_ms":     asOfMS,
		"events":       events,
		"event_set":    clickhouse.GroupSet{Value: eventSet},
		"variants":     clickhouse.GroupSet{Value: variants},
		"dimensions":   dimensions,
		"max_seq":      c.seq,
	}
	unitFilter := ""
	if c.units != nil {
		// The units go as external data, a table sent with the query: a
		// list in the SQL of thousands of hashes outgrows max_query_size.
		unitFilter = "\n                AND cityHash64(unit_id) IN " + unitsTable
	}
	for i, d := range exp.Segments {
		q.params[fmt.Sprintf("dimension_%d", i+1)] = d
	}

	floats := func(list []string) string {
		if len(list) == 0 {
			return "emptyArrayFloat64()"
		}
		return "[" + strings.Join(list, ", ") + "]"
	}
	list := func(list []string, empty, convert string) string {
		if len(list) == 0 {
			return empty
		}
		out := make([]string, len(list))
		for i, l := range list {
			out[i] = fmt.Sprintf(convert, l)
		}
		return "[" + strings.Join(out, ", ") + "]"
	}
	var counts, sums, preCounts, preSums, values []string
	for i := range valued {
		values = append(values, fmt.Sprintf("values_%d", i+1))
	}
	for i := range events {
		if events[i] != "" {
			counts, sums = append(counts, fmt.Sprintf("count_%d", i+1)), append(sums, fmt.Sprintf("sum_%d", i+1))
		}
	}
	for i := range pres {
		preCounts, preSums = append(preCounts, fmt.Sprintf("pre_count_%d", i+1)), append(preSums, fmt.Sprintf("pre_sum_%d", i+1))
	}
	rowsMode := false
	fill := func(sql string, xs []string) string {
		counted, countedEvents := "", ""
		if rowsMode {
			counted, countedEvents = "\n            counted,", "\n                groupUniqArray(event_hash) AS counted,"
		}
		return strings.NewReplacer(
			"{units}", unitFilter,
			"{counted}", counted,
			"{counted_events}", countedEvents,
			"{unit_segment_values}", list(segmentValues, "emptyArrayString()", "%s"),
			"{counts}", list(counts, "emptyArrayUInt64()", "toUInt64(%s)"),
			"{sums}", list(sums, "emptyArrayFloat64()", "toFloat64(%s)"),
			"{pre_counts}", list(preCounts, "emptyArrayUInt64()", "toUInt64(%s)"),
			"{pre_sums}", list(preSums, "emptyArrayFloat64()", "toFloat64(%s)"),
			"{values}", list(values, "arrayFilter(x -> 0, [emptyArrayFloat64()])", "arrayMap(v -> toFloat64(v), %s)"),
			"{metric_values}", list(metricValues, "arrayFilter(x -> 0, [emptyArrayFloat64()])", "arrayMap(v -> toFloat64(v), %s)"),
			dbPlaceholder+".exposures", db+".exposures{local}",
			dbPlaceholder+".events", db+".events{local}",
			dbPlaceholder, db,
			"{segments}", segments.String(),
			"{segment_columns}", segmentColumns.String(),
			"{unit_segments}", "["+strings.Join(unitSegments, ", ")+"]",
			"{event_columns}", strings.Join(eventColumns, ",\n            "),
			"{metric_x}", floats(xs),
			"{metric_y}", floats(ys),
			"{metric_px}", floats(pxs),
			"{metric_py}", floats(pys),
		).Replace(sql)
	}
	q.stats = fill(statsSQL, xs)
	q.shardStats = strings.ReplaceAll(q.stats, "{local}", LocalSuffix)
	q.stats = strings.ReplaceAll(q.stats, "{local}", "")
	q.fillRaw = func(sql string) string { return fill(sql, raw) }
	rowsMode = true
	q.unitRows = fill(unitRowsSQL, xs)
	rowsMode = false
	q.shardUnitRows = strings.ReplaceAll(q.unitRows, "{local}", LocalSuffix)
	q.unitRows = strings.ReplaceAll(q.unitRows, "{local}", "")
	for j, qq := range q.quantiles {
		gather, nonempty := "groupArray", ""
		if metrics[qq.metric].EventQuantile() {
			gather, nonempty = "groupArrayArray", " AND notEmpty(v)"
			q.quantiles[j].clusters = strings.ReplaceAll(fill(quantileClustersSQL, xs), "{value}", qq.values)
		}
		q.quantiles[j].values = strings.NewReplacer("{gather}", gather, "{nonempty}", nonempty, "{value}", qq.values).Replace(fill(quantileValuesSQL, xs))
		qj := &q.quantiles[j]
		qj.shardValues, qj.values = strings.ReplaceAll(qj.values, "{local}", LocalSuffix), strings.ReplaceAll(qj.values, "{local}", "")
		qj.shardClusters, qj.clusters = strings.ReplaceAll(qj.clusters, "{local}", LocalSuffix), strings.ReplaceAll(qj.clusters, "{local}", "")
	}
	if len(q.capped) > 0 {
		// The caps are quantiles of uncapped values, from a query that
		// reads only the events of the capped metrics.
		var capped []config.Metric
		var quantiles, values []string
		for j, i := range q.capped {
			m := metrics[i]
			// A level of quantileExact must be a literal: it is a float64
			// checked to be in (0, 1), formatted here, never text from a file.
			level := strconv.FormatFloat(m.Cap.Percentile, 'g', -1, 64)
			// Over the units with a non-zero value, as GrowthBook's
			// "ignore zeros": a sparse metric (revenue, when few buy) has
			// a 99th percentile of 0 over all units, which would cap every
			// purchase to nothing.
			quantiles = append(quantiles, fmt.Sprintf("quantileExactIf(%s)(xs[%d], xs[%d] != 0)", level, j+1, j+1))
			values = append(values, fmt.Sprintf("arraySort(groupArrayIf(xs[%d], xs[%d] != 0))", j+1, j+1))
			m.Cap = nil
			off := false
			m.CUPED = &config.CUPED{Enabled: &off} // the caps need no covariate
			capped = append(capped, m)
		}
		noSegments := exp
		noSegments.Segments = nil
		sub, err := newReadoutQuery(db, noSegments, capped, asOf, c)
		if err != nil {
			return nil, err
		}
		raw := sub.fillRaw(capsSQL)
		q.caps = strings.ReplaceAll(strings.Replace(raw, "{quantiles}", strings.Join(quantiles, ", "), 1), "{local}", "")
		q.shardValues = strings.ReplaceAll(strings.Replace(raw, "{quantiles}", strings.Join(values, ", "), 1), "{local}", LocalSuffix)
		q.capsParams = sub.params
	}
	return q, nil
}

// named returns the parameters of each map as clickhouse.Named.
func named(params ...map[string]any) []any {
	var out []any
	for _, p := range params {
		for k, v := range p {
			out = append(out, clickhouse.Named(k, v))
		}
	}
	return out
}

// caps runs the caps query: the cap of each capped metric, by parameter
// name (cap_N for the Nth metric). A metric without included units gets
// +Inf: nothing to cap.
func (w *Warehouse) caps(ctx context.Context, q *readoutQuery) (map[string]any, error) {
	caps := make(map[string]any, len(q.capped))
	if q.caps == "" {
		return caps, nil
	}
	var values []float64
	var err error
	if w.shards != nil {
		values, err = w.shardCaps(ctx, q)
	} else {
		values, err = w.singleCaps(ctx, q)
	}
	if err != nil {
		return nil, err
	}
	for i, m := range q.capped {
		v := values[i]
		if math.IsNaN(v) {
			v = math.Inf(1)
		}
		caps[fmt.Sprintf("cap_%d", m+1)] = v
	}
	return caps, nil
}

// singleCaps runs the caps query on a single server: one quantile per
// capped metric, NaN when it has no non-zero value.
func (w *Warehouse) singleCaps(ctx context.Context, q *readoutQuery) ([]float64, error) {
	rows, err := w.conn.Query(ctx, q.caps, named(q.capsParams)...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	values := make([]float64, len(q.capped))
	dest := make([]any, len(values))
	for i := range values {
		dest[i] = &values[i]
	}
	if !rows.Next() {
		if err := rows.Err(); err != nil {
			return nil, err
		}
		return nil, errors.New("caps query returned no row")
	}
	if err := rows.Scan(dest...); err != nil {
		return nil, err
	}
	return values, rows.Err()
}

// statRow is one row of the statistics query: one variant in one segment
// (or overall, dimension "").
type statRow struct {
	variant, dim, value       string
	units, firstMS, throughMS uint64
	sx, sxx, sy, syy, sxy     []float64
	// CUPED: px, py are the pre-exposure x and y.
	spx, spxx, spy, spyy, spxpy, sxpx, sxpy, sypx, sypy []float64
}

// sums are the row's per-metric sums, in the order of the query's columns.
func (r *statRow) sums() []*[]float64 {
	return []*[]float64{&r.sx, &r.sxx, &r.sy, &r.syy, &r.sxy, &r.spx, &r.spxx, &r.spy, &r.spyy, &r.spxpy, &r.sxpx, &r.sxpy, &r.sypx, &r.sypy}
}

// statRows runs the statistics query sql on conn.
func statRows(ctx context.Context, conn driver.Conn, sql string, args []any) ([]statRow, error) {
	rows, err := conn.Query(ctx, sql, args...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []statRow
	for rows.Next() {
		var r statRow
		dest := []any{&r.variant, &r.dim, &r.value, &r.units}
		for _, s := range r.sums() {
			dest = append(dest, s)
		}
		if err := rows.Scan(append(dest, &r.firstMS, &r.throughMS)...); err != nil {
			return nil, err
		}
		out = append(out, r)
	}
	return out, rows.Err()
}

// shardStatRows runs the statistics query on every shard and adds up the
// shards' rows of each variant and segment: no unit is on two shards, so
// the sums are the cluster's.
func (w *Warehouse) shardStatRows(ctx context.Context, q *readoutQuery, caps map[string]any) ([]statRow, error) {
	type key struct{ variant, dim, value string }
	sum := map[key]*statRow{}
	var order []key
	add := func(to, from []float64) []float64 {
		if to == nil {
			return slices.Clone(from)
		}
		for i := range to {
			to[i] += from[i]
		}
		return to
	}
	for _, sh := range w.shards {
		rows, err := statRows(ctx, sh.conn, q.shardStats, named(q.params, caps))
		if err != nil {
			return nil, fmt.Errorf("shard %d: %w", sh.num, err)
		}
		for _, r := range rows {
			k := key{r.variant, r.dim, r.value}
			t, ok := sum[k]
			if !ok {
				t = &statRow{variant: r.variant, dim: r.dim, value: r.value, firstMS: r.firstMS}
				sum[k] = t
				order = append(order, k)
			}
			from, to := r.sums(), t.sums()
			for i := range from {
				if len(*from[i]) != len(q.metrics) {
					return nil, fmt.Errorf("shard %d: statistics row has %d metrics, want %d", sh.num, len(*from[i]), len(q.metrics))
				}
				*to[i] = add(*to[i], *from[i])
			}
			t.units += r.units
			t.firstMS = min(t.firstMS, r.firstMS)
			t.throughMS = max(t.throughMS, r.throughMS)
		}
	}
	out := make([]statRow, len(order))
	for i, k := range order {
		out[i] = *sum[k]
	}
	return out, nil
}

// shardCaps computes the caps on a cluster: each shard's sorted non-zero
// values of each capped metric, merged, and the value at 0-based position
// ⌊percentile · n⌋ of the n values, as quantileExact takes it.
func (w *Warehouse) shardCaps(ctx context.Context, q *readoutQuery) ([]float64, error) {
	all := make([][]float64, len(q.capped))
	for _, sh := range w.shards {
		rows, err := sh.conn.Query(ctx, q.shardValues, named(q.capsParams)...)
		if err != nil {
			return nil, fmt.Errorf("shard %d: %w", sh.num, err)
		}
		values := make([][]float64, len(q.capped))
		dest := make([]any, len(values))
		for i := range values {
			dest[i] = &values[i]
		}
		for rows.Next() {
			if err := rows.Scan(dest...); err != nil {
				rows.Close()
				return nil, fmt.Errorf("shard %d: %w", sh.num, err)
			}
			for i := range values {
				all[i] = append(all[i], values[i]...)
			}
		}
		err = rows.Err()
		rows.Close()
		if err != nil {
			return nil, fmt.Errorf("shard %d: %w", sh.num, err)
		}
	}
	caps := make([]float64, len(q.capped))
	for i, m := range q.capped {
		vs := all[i]
		if len(vs) == 0 {
			caps[i] = math.NaN() // no non-zero value: nothing to cap
			continue
		}
		slices.Sort(vs)
		caps[i] = vs[int(q.metrics[m].Cap.Percentile*float64(len(vs)))]
	}
	return caps, nil
}

// sufficientStats runs the statistics query (on every shard, on a cluster)
// and fills out.
func (w *Warehouse) sufficientStats(ctx context.Context, q *readoutQuery, exp config.Experiment, caps map[string]any, out *ExperimentStats) error {
	var rows []statRow
	var err error
	if w.shards != nil {
		rows, err = w.shardStatRows(ctx, q, caps)
	} else {
		rows, err = statRows(ctx, w.conn, q.stats, named(q.params, caps))
	}
	if err != nil {
		return err
	}
	known := make(map[string]bool, len(exp.Variants))
	for _, v := range exp.Variants {
		known[v.Key] = true
	}
	overall := make(map[string]bool) // variants with an overall row
	var (
		first, through uint64
		segmentCells   []Cell
	)
	for _, r := range rows {
		variant, dim, value, units, firstMS, throughMS := r.variant, r.dim, r.value, r.units, r.firstMS, r.throughMS
		sx, sxx, sy, syy, sxy := r.sx, r.sxx, r.sy, r.syy, r.sxy
		for _, s := range r.sums() {
			if len(*s) != len(q.metrics) {
				return fmt.Errorf("statistics row has %d metrics, want %d", len(*s), len(q.metrics))
			}
		}
		if dim == "" {
			out.Exposed += units
			if first == 0 || firstMS < first {
				first = firstMS
			}
			through = max(through, throughMS)
			switch {
			case variant == "":
				out.MultiExposed += units
			case !known[variant]:
				out.UnknownVariant += units
			default:
				out.Units[variant] = units
			}
		}
		if !known[variant] {
			continue
		}
		for i, m := range q.metrics {
			c := Cell{Variant: variant, Metric: m.Key, Arm: stats.Arm{N: float64(units), Sum: sx[i], SumSquares: sxx[i]},
				Pre: stats.Pre{Sum: r.spx[i], SumSquares: r.spxx[i], CrossSum: r.sxpx[i]}}
			if m.Kind == stats.Ratio {
				c.Arm.DenSum, c.Arm.DenSumSquares, c.Arm.SumProducts = sy[i], syy[i], sxy[i]
				c.Pre.DenSum, c.Pre.DenSumSquares, c.Pre.SumProducts = r.spy[i], r.spyy[i], r.spxpy[i]
				c.Pre.CrossDen, c.Pre.DenCrossSum, c.Pre.DenCrossDen = r.sxpy[i], r.sypx[i], r.sypy[i]
			}
			if dim == "" {
				overall[variant] = true
				out.Cells = append(out.Cells, c)
				continue
			}
			c.Dimension, c.Value = dim, value
			if c.Value == "" {
				c.Value = NoValue
			}
			segmentCells = append(segmentCells, c)
		}
	}
	// Variants without units still get their overall cells, with N = 0.
	for _, c := range q.emptyCells(exp) {
		if !overall[c.Variant] {
			out.Cells = append(out.Cells, c)
		}
	}
	out.Cells = append(out.Cells, segmentCells...)
	SortCells(out.Cells)
	if first > 0 {
		out.FirstExposure = time.UnixMilli(int64(first)).UTC()
		out.DataThrough = time.UnixMilli(int64(through)).UTC()
	}
	return nil
}

// emptyCells are the overall cells of every variant and metric, with N = 0.
func (q *readoutQuery) emptyCells(exp config.Experiment) []Cell {
	var cells []Cell
	for _, v := range exp.Variants {
		for _, m := range q.metrics {
			cells = append(cells, Cell{Variant: v.Key, Metric: m.Key})
		}
	}
	return cells
}

// SortCells orders cells by variant, metric, dimension ("" first) and
// value, as ExperimentStats returns them.
func SortCells(cells []Cell) {
	slices.SortFunc(cells, func(a, b Cell) int {
		for _, c := range [...]int{
			strings.Compare(a.Variant, b.Variant),
			strings.Compare(a.Metric, b.Metric),
			strings.Compare(a.Dimension, b.Dimension),
			strings.Compare(a.Value, b.Value),
		} {
			if c != 0 {
				return c
			}
		}
		return 0
	})
}
