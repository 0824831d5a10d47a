package warehouse

import (
	"context"
	"fmt"
	"sync"
	"time"

	"github.com/verdictlabs/verdict/pkg/event"
)

// Table names, as they appear in errors and in verdict_events_inserted_total.
const (
	TableExposures = "exposures"
	TableEvents    = "events"
)

// statements are the queries with the database put in, built once.
type statements struct {
	insertExposures string
	insertEvents    string
}

// The column lists are spelled out: ClickHouse 18.16 sends no column
// description for a bare INSERT INTO t, and PrepareBatch then refuses every
// Append ("expected 0 arguments"). inserted_at is left to its DEFAULT.
const (
	insertExposures = `INSERT INTO {db:Identifier}.exposures (event_id, ts, ts_ms, unit_id, experiment, variant, attr_keys, attr_values, seq)`
	insertEvents    = `INSERT INTO {db:Identifier}.events (event_id, ts, ts_ms, unit_id, event, value, attr_keys, attr_values, seq)`
)

func newStatements(db string) statements {
	return statements{
		insertExposures: withDatabase(insertExposures, db),
		insertEvents:    withDatabase(insertEvents, db),
	}
}

// Counts are the rows inserted into each table.
type Counts struct {
	Exposures int
	Events    int // track events
}

// Insert writes evs into the exposures and events tables, column-wise, one
// INSERT per table that has rows. Inserting the same events again is
// harmless: the tables keep one row per event_id for every query that
// dedupes, so a batch whose insert failed, or whose outcome is unknown, can
// simply be retried whole. On an error Counts says which tables were written
// before it.
//
// ClickHouse makes a part per INSERT: call it with 10k rows or more, not
// event by event.
func (w *Warehouse) Insert(ctx context.Context, evs []event.Event) (Counts, error) {
	cols := columnsPool.Get().(*columns)
	defer columnsPool.Put(cols)
	cols.reset()
	for i := range evs {
		if err := cols.add(&evs[i]); err != nil {
			return Counts{}, err
		}
	}
	var n Counts
	if x := &cols.exposures; len(x.id) > 0 {
		if err := w.send(ctx, w.sql.insertExposures, TableExposures, len(x.id),
			x.id, x.ts, x.tsMS, x.unit, x.experiment, x.variant, x.attrKeys, x.attrValues, x.seq); err != nil {
			return n, err
		}
		n.Exposures = len(x.id)
	}
	if t := &cols.tracks; len(t.id) > 0 {
		if err := w.send(ctx, w.sql.insertEvents, TableEvents, len(t.id),
			t.id, t.ts, t.tsMS, t.unit, t.name, t.value, t.attrKeys, t.attrValues, t.seq); err != nil {
			return n, err
		}
		n.Events = len(t.id)
	}
	return n, nil
}

// send inserts one table's columns, given in the order of query's column
// list, as one batch.
func (w *Warehouse) send(ctx context.Context, query, table string, rows int, columns ...any) (err error) {
	defer func() {
		if err != nil {
			err = fmt.Errorf("insert %d rows into %s: %w", rows, table, err)
		}
	}()
	batch, err := w.conn.PrepareBatch(ctx, query)
	if err != nil {
		return err
	}
	defer func() {
		if !batch.IsSent() {
			batch.Abort()
		}
	}()
	for i, c := range columns {
		if err := batch.Column(i).Append(c); err != nil {
			return err
		}
	}
	return batch.Send()
}

// columns are the column slices of one Insert call. They are pooled:
// clickhouse-go copies what is appended, so the slices are reused by the next
// call and a steady ingest allocates little here.
type columns struct {
	exposures struct {
		common
		experiment, variant []string
	}
	tracks struct {
		common
		name  []string
		value []float64
	}
}

// common are the columns both tables have.
type common struct {
	id, unit             []string
	ts                   []time.Time
	tsMS                 []uint16
	attrKeys, attrValues [][]string
	seq                  []uint64
}

var columnsPool = sync.Pool{New: func() any { return new(columns) }}

func (c *columns) reset() {
	x, t := &c.exposures, &c.tracks
	x.common.reset()
	x.experiment, x.variant = x.experiment[:0], x.variant[:0]
	t.common.reset()
	t.name, t.value = t.name[:0], t.value[:0]
}

func (c *common) reset() {
	c.id, c.unit, c.ts, c.tsMS, c.seq = c.id[:0], c.unit[:0], c.ts[:0], c.tsMS[:0], c.seq[:0]
	// Clear the references so a pooled slice does not pin old events.
	clear(c.attrKeys[:cap(c.attrKeys)])
	clear(c.attrValues[:cap(c.attrValues)])
	c.attrKeys, c.attrValues = c.attrKeys[:0], c.attrValues[:0]
}

func (c *common) add(e *event.Event) {
	c.id = append(c.id, e.ID)
	c.unit = append(c.unit, e.Unit)
	c.ts = append(c.ts, e.TS)
	c.tsMS = append(c.tsMS, uint16(e.TS.Nanosecond()/int(time.Millisecond)))
	c.seq = append(c.seq, e.Seq)
	keys, values := e.AttrKeys, e.AttrValues
	// Empty arrays, never nil ones: clickhouse-go writes both as [], but
	// being explicit costs nothing.
	if keys == nil {
		keys, values = []string{}, []string{}
	}
	c.attrKeys = append(c.attrKeys, keys)
	c.attrValues = append(c.attrValues, values)
}

func (c *columns) add(e *event.Event) error {
	if len(e.AttrKeys) != len(e.AttrValues) {
		return fmt.Errorf("event %q: %d attribute keys but %d values", e.ID, len(e.AttrKeys), len(e.AttrValues))
	}
	switch e.Type {
	case event.Exposure:
		x := &c.exposures
		x.common.add(e)
		x.experiment = append(x.experiment, e.Experiment)
		x.variant = append(x.variant, e.Variant)
	case event.Track:
		t := &c.tracks
		t.common.add(e)
		t.name = append(t.name, e.Name)
		t.value = append(t.value, e.Value)
	default:
		return fmt.Errorf("event %q: unknown type %d", e.ID, e.Type)
	}
	return nil
}
