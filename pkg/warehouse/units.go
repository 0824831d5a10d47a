package warehouse

import (
	"context"
	"fmt"
	"math"
	"strings"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2"
	"github.com/ClickHouse/clickhouse-go/v2/ext"
	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"

	"github.com/verdictlabs/verdict/pkg/config"
)

// What pkg/tally reads to keep an experiment's readout between looks: the
// rows per exposed unit that ExperimentStats sums (UnitRows), and the raw
// rows that arrived in a range of seq (Exposures, Events). On a cluster
// each reads every shard and puts the answers together: a unit lives on
// one shard.

// UnitRow is one exposed unit as ExperimentStats counts it (see its
// contract): its first exposure, the variants it saw, the segment values of
// its first exposure, and the count and sum of each event of the Layout
// inside its attribution window (up to asOf) and of each Pre in its
// lookback.
type UnitRow struct {
	Unit                    uint64 // cityHash64(unit_id)
	FirstMS, LastExposureMS uint64 // its first and last exposure in the range, ms
	LastEventMS             uint64 // its last counted event in its window, ms; 0 for none
	MinVariant, MaxVariant  string // equal when it saw one variant
	Segments                []string
	Counts                  []uint64  // per Layout.Events
	Sums                    []float64 // per Layout.Events
	PreCounts               []uint64  // per Layout.Pres
	PreSums                 []float64 // per Layout.Pres
	// Values are, per Layout.Values, the value of each event counted in
	// the window (an event-level quantile's values), in no order.
	Values [][]float64
	// Counted are the cityHash64(event_id) of every event counted above,
	// each once: what a copy that arrives later is recognised by.
	Counted []uint64
}

// UnitRows returns the UnitRow of every unit of exp exposed by asOf, from
// the rows that arrived with seq <= seq, or of the units of units only (by
// cityHash64(unit_id)) when units is not nil; and the Layout of their
// arrays for metrics. first, when not zero, is at or before the first
// exposure of every unit of units: their events are read from first on
// (less the longest lookback), not from the experiment's start.
func (w *Warehouse) UnitRows(ctx context.Context, exp config.Experiment, metrics []config.Metric, asOf time.Time, seq uint64, units []uint64, first time.Time) (Layout, []UnitRow, error) {
	c := cut{seq: seq, units: units}
	if units != nil && !first.IsZero() {
		c.firstMS = first.UnixMilli()
	}
	q, err := newReadoutQuery(w.db, exp, metrics, asOf, c)
	if err != nil {
		return Layout{}, nil, fmt.Errorf("units of experiment %s: %w", exp.Key, err)
	}
	if q.empty || (units != nil && len(units) == 0) {
		return q.layout, nil, nil
	}
	if units != nil {
		tbl, err := ext.NewTable(unitsTable, ext.Column("unit_key", "UInt64"))
		if err != nil {
			return Layout{}, nil, err
		}
		for _, u := range units {
			if err := tbl.Append(u); err != nil {
				return Layout{}, nil, err
			}
		}
		ctx = clickhouse.Context(ctx, clickhouse.WithExternalTable(tbl))
	}
	var out []UnitRow
	err = w.eachConn(ctx, q.unitRows, q.shardUnitRows, named(q.params), func(rows driver.Rows) error {
		for rows.Next() {
			var r UnitRow
			if err := rows.Scan(&r.Unit, &r.FirstMS, &r.LastExposureMS, &r.LastEventMS, &r.MinVariant, &r.MaxVariant,
				&r.Segments, &r.Counts, &r.Sums, &r.PreCounts, &r.PreSums, &r.Values, &r.Counted); err != nil {
				return err
			}
			out = append(out, r)
		}
		return rows.Err()
	})
	if err != nil {
		return Layout{}, nil, fmt.Errorf("units of experiment %s: %w", exp.Key, err)
	}
	return q.layout, out, nil
}

// RowFilter picks raw rows by where they arrived: MinSeq <= seq <= MaxSeq
// (MaxSeq 0: no upper bound), and, when After is not zero, by time: ts
// after After.
type RowFilter struct {
	MinSeq, MaxSeq uint64
	After          time.Time
}

// ExposureRow is one exposure as it arrived (copies included).
type ExposureRow struct {
	Unit     uint64 // cityHash64(unit_id)
	MS       uint64 // ts in ms
	Variant  string
	Segments []string // the values of the experiment's segment dimensions, "" for none
}

// EventRow is one track event as it arrived (copies included).
type EventRow struct {
	Unit  uint64 // cityHash64(unit_id)
	Hash  uint64 // cityHash64(event_id)
	Event int    // the position of its name in the names asked for
	MS    uint64 // ts in ms
	Value float64
}

const (
	exposureRowsSQL = `SELECT cityHash64(unit_id), toUInt64(ts) * 1000 + ts_ms, variant, {segments}
FROM {db}.exposures{local}
WHERE experiment = @experiment AND seq >= @min_seq AND seq <= @max_seq{after}`

	eventRowsSQL = `SELECT cityHash64(unit_id), cityHash64(event_id), toInt64(indexOf(@events, event)) - 1, toUInt64(ts) * 1000 + ts_ms, value
FROM {db}.events{local}
WHERE event IN @event_set AND seq >= @min_seq AND seq <= @max_seq{after}`
)

// Exposures returns the exposures of exp that f picks.
func (w *Warehouse) Exposures(ctx context.Context, exp config.Experiment, f RowFilter) ([]ExposureRow, error) {
	segments := "emptyArrayString()"
	params := []any{clickhouse.Named("experiment", exp.Key)}
	if len(exp.Segments) > 0 {
		segments = "["
		for i, d := range exp.Segments {
			if i > 0 {
				segments += ", "
			}
			segments += fmt.Sprintf("attr_values[indexOf(attr_keys, @dimension_%d)]", i+1)
			params = append(params, clickhouse.Named(fmt.Sprintf("dimension_%d", i+1), d))
		}
		segments += "]"
	}
	single, shard := w.rowsSQL(exposureRowsSQL, segments, f)
	var out []ExposureRow
	err := w.eachConn(ctx, single, shard, append(params, f.params()...), func(rows driver.Rows) error {
		for rows.Next() {
			var r ExposureRow
			if err := rows.Scan(&r.Unit, &r.MS, &r.Variant, &r.Segments); err != nil {
				return err
			}
			out = append(out, r)
		}
		return rows.Err()
	})
	if err != nil {
		return nil, fmt.Errorf("exposures of experiment %s with seq in [%d, %d]: %w", exp.Key, f.MinSeq, f.MaxSeq, err)
	}
	return out, nil
}

// Events returns the track events named one of names that f picks; a
// row's Event is the position of its name in names.
func (w *Warehouse) Events(ctx context.Context, names []string, f RowFilter) ([]EventRow, error) {
	if len(names) == 0 {
		return nil, nil
	}
	set := make([]any, len(names))
	for i, n := range names {
		set[i] = n
	}
	single, shard := w.rowsSQL(eventRowsSQL, "", f)
	params := append([]any{clickhouse.Named("events", names), clickhouse.Named("event_set", clickhouse.GroupSet{Value: set})}, f.params()...)
	var out []EventRow
	err := w.eachConn(ctx, single, shard, params, func(rows driver.Rows) error {
		for rows.Next() {
			var r EventRow
			var event int64
			if err := rows.Scan(&r.Unit, &r.Hash, &event, &r.MS, &r.Value); err != nil {
				return err
			}
			r.Event = int(event)
			out = append(out, r)
		}
		return rows.Err()
	})
	if err != nil {
		return nil, fmt.Errorf("events with seq in [%d, %d]: %w", f.MinSeq, f.MaxSeq, err)
	}
	return out, nil
}

func (f RowFilter) params() []any {
	to := f.MaxSeq
	if to == 0 {
		to = math.MaxUint64
	}
	p := []any{clickhouse.Named("min_seq", f.MinSeq), clickhouse.Named("max_seq", to)}
	if !f.After.IsZero() {
		p = append(p, clickhouse.Named("after_s", f.After.Unix()), clickhouse.Named("after_ms", uint64(max(f.After.UnixMilli(), 0))))
	}
	return p
}

// rowsSQL fills a raw-rows query for a single server and for a shard.
func (w *Warehouse) rowsSQL(sql, segments string, f RowFilter) (single, shard string) {
	after := ""
	if !f.After.IsZero() {
		// The whole seconds first: they are what the sort keys and
		// partitions know.
		after = " AND ts >= toDateTime(@after_s) AND toUInt64(ts) * 1000 + ts_ms > @after_ms"
	}
	sql = withDatabase(sql, w.db)
	for _, r := range [][2]string{{"{db}", w.db}, {"{segments}", segments}, {"{after}", after}} {
		sql = strings.ReplaceAll(sql, r[0], r[1])
	}
	return strings.ReplaceAll(sql, "{local}", ""), strings.ReplaceAll(sql, "{local}", LocalSuffix)
}

// eachConn runs sql on the single server, or shardSQL on every shard of a
// cluster, and hands each answer's rows to read.
func (w *Warehouse) eachConn(ctx context.Context, sql, shardSQL string, args []any, read func(driver.Rows) error) error {
	run := func(conn driver.Conn, sql string) error {
		rows, err := conn.Query(ctx, sql, args...)
		if err != nil {
			return err
		}
		defer rows.Close()
		return read(rows)
	}
	if w.shards == nil {
		return run(w.conn, sql)
	}
	for _, sh := range w.shards {
		if err := run(sh.conn, shardSQL); err != nil {
			return fmt.Errorf("shard %d: %w", sh.num, err)
		}
	}
	return nil
}
