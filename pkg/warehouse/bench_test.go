package warehouse_test

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/verdictlabs/verdict/pkg/event"
	"github.com/verdictlabs/verdict/pkg/warehouse/warehousetest"
)

// BenchmarkInsert10k inserts batches of 10,000 track events and reports
// rows/s. Beside it, in the same run on the same server:
//   - sorted: the same rows handed over already in sort-key order;
//   - baseline: the same columns, already built, sent with the least
//     clickhouse-go allows into a plain MergeTree without a sort key: what
//     this machine can do at all.
func BenchmarkInsert10k(b *testing.B) {
	const n = 10_000
	s := warehousetest.StartServer(b, warehousetest.BenchEngine())
	w := s.Open(b, "verdict")
	ctx := context.Background()
	evs := benchEvents(n)
	// Every run starts on empty tables: parts left by the previous run
	// would be merged during this one, and past 150 parts in a partition
	// ClickHouse delays inserts on purpose.
	truncate := func(b *testing.B, table string) {
		if err := w.Conn().Exec(ctx, "TRUNCATE TABLE IF EXISTS verdict."+table); err != nil {
			b.Fatal(err)
		}
	}
	report := func(b *testing.B) {
		b.ReportMetric(float64(b.N*n)/b.Elapsed().Seconds(), "rows/s")
	}

	b.Run("warehouse", func(b *testing.B) {
		truncate(b, "events")
		b.ReportAllocs()
		for b.Loop() {
			if _, err := w.Insert(ctx, evs); err != nil {
				b.Fatal(err)
			}
		}
		report(b)
	})

	b.Run("sorted", func(b *testing.B) {
		sorted := slices.Clone(evs)
		slices.SortFunc(sorted, func(x, y event.Event) int {
			if c := strings.Compare(x.Name, y.Name); c != 0 {
				return c
			}
			return strings.Compare(x.ID, y.ID) // one day: ts adds nothing
		})
		truncate(b, "events")
		b.ReportAllocs()
		for b.Loop() {
			if _, err := w.Insert(ctx, sorted); err != nil {
				b.Fatal(err)
			}
		}
		report(b)
	})

	b.Run("baseline", func(b *testing.B) {
		conn := w.Conn()
		if err := conn.Exec(ctx, `CREATE TABLE IF NOT EXISTS verdict.bare (event_id String, ts DateTime('UTC'), ts_ms UInt16,
			unit_id String, event String, value Float64, attr_keys Array(String), attr_values Array(String))
			ENGINE = MergeTree() ORDER BY tuple()`); err != nil {
			b.Fatal(err)
		}
		truncate(b, "bare")
		var (
			ids, units, names []string
			ts                []time.Time
			ms                []uint16
			values            []float64
			keys, vals        [][]string
		)
		for _, e := range evs {
			ids, units, names = append(ids, e.ID), append(units, e.Unit), append(names, e.Name)
			ts, ms, values = append(ts, e.TS), append(ms, uint16(e.TS.Nanosecond()/1e6)), append(values, e.Value)
			keys, vals = append(keys, e.AttrKeys), append(vals, e.AttrValues)
		}
		b.ReportAllocs()
		for b.Loop() {
			batch, err := conn.PrepareBatch(ctx, `INSERT INTO verdict.bare (event_id, ts, ts_ms, unit_id, event, value, attr_keys, attr_values)`)
			if err != nil {
				b.Fatal(err)
			}
			for i, c := range []any{ids, ts, ms, units, names, values, keys, vals} {
				if err := batch.Column(i).Append(c); err != nil {
					b.Fatal(err)
				}
			}
			if err := batch.Send(); err != nil {
				b.Fatal(err)
			}
		}
		report(b)
	})
}

// benchEvents are n track events as ingest sees them: random-looking ids,
// a few event names, two attributes, in arrival (time) order.
func benchEvents(n int) []event.Event {
	base := time.Date(2026, 11, 20, 10, 0, 0, 0, time.UTC)
	names := []string{"purchase", "page_load", "click", "session_start", "add_to_cart"}
	evs := make([]event.Event, n)
	for i := range evs {
		h := uint64(i)*0x9e3779b97f4a7c15 + 1
		evs[i] = event.Event{
			Type:       event.Track,
			ID:         fmt.Sprintf("%016x-%016x", h, h*31),
			TS:         base.Add(time.Duration(i) * time.Millisecond),
			Unit:       fmt.Sprintf("user-%08d", h%200_000),
			AttrKeys:   []string{"country", "platform"},
			AttrValues: []string{[]string{"de", "us", "fr"}[i%3], []string{"ios", "web"}[i%2]},
			Name:       names[h%uint64(len(names))],
			Value:      float64(h % 1000),
		}
	}
	return evs
}
