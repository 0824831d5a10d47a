package warehouse_test

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/verdictlabs/verdict/pkg/event"
	"github.com/verdictlabs/verdict/pkg/warehouse"
	"github.com/verdictlabs/verdict/pkg/warehouse/warehousetest"
	"github.com/verdictlabs/verdict/schemas"

	"github.com/verdictlabs/verdict/pkg/testkit"
)

func TestMigrateIdempotent(t *testing.T) { warehousetest.Run(t, testMigrateIdempotent) }

func testMigrateIdempotent(t *testing.T, e warehouse.Engine) {
	s := warehousetest.StartServer(t, e)
	ctx := context.Background()
	// Two database names: the migrations work for any.
	for _, db := range []string{"verdict", "verdict_other"} {
		w := s.Open(t, db) // migrates once
		for range 2 {
			if err := w.Migrate(ctx); err != nil {
				t.Fatalf("Migrate again: %v", err)
			}
		}
		ms, err := warehouse.Migrations(schemas.ClickHouse)
		if err != nil {
			t.Fatal(err)
		}
		var want []row
		for _, m := range ms {
			want = append(want, row{uint64(m.Version), m.Name})
		}
		// Without FINAL: one row per version, not one per run.
		got := queryRows(t, w, "SELECT toUInt64(version), name FROM "+db+".schema_migrations ORDER BY version")
		if diff := cmp.Diff(want, got); diff != "" {
			t.Errorf("%s.schema_migrations (-want +got):\n%s", db, diff)
		}
		tables := queryRows(t, w, "SELECT name FROM system.tables WHERE database = '"+db+"' AND name IN ('events', 'exposures', 'schema_migrations') ORDER BY name")
		if diff := cmp.Diff([]row{{"events"}, {"exposures"}, {"schema_migrations"}}, tables); diff != "" {
			t.Errorf("tables of %s (-want +got):\n%s", db, diff)
		}
	}
	if err := warehouse.Migrate(ctx, s.Open(t, "verdict").Conn(), "bad-name"); !errors.Is(err, warehouse.ErrBadDatabase) {
		t.Errorf("Migrate(bad-name) = %v, want ErrBadDatabase", err)
	}
}

// batch returns n exposures and n track events with attributes and
// millisecond timestamps, ids prefixed by prefix.
func batch(prefix string, n int) []event.Event {
	base := time.Date(2026, 11, 20, 10, 0, 0, 0, time.UTC)
	var evs []event.Event
	for i := range n {
		unit := fmt.Sprintf("user-%05d", i%(n/2+1))
		ts := base.Add(time.Duration(i)*time.Second + time.Duration(i%1000)*time.Millisecond)
		keys, values := []string{"country", "platform"}, []string{[]string{"de", "us"}[i%2], []string{"ios", "web", "android"}[i%3]}
		if i%5 == 0 {
			keys, values = nil, nil // no attributes
		}
		evs = append(evs, event.Event{
			Type: event.Exposure, ID: fmt.Sprintf("%s-x-%d", prefix, i), TS: ts, Unit: unit,
			AttrKeys: keys, AttrValues: values,
			Experiment: []string{"checkout-redesign", "search.v2"}[i%2], Variant: []string{"control", "one-page"}[i%2],
		}, event.Event{
			Type: event.Track, ID: fmt.Sprintf("%s-t-%d", prefix, i), TS: ts.Add(time.Minute), Unit: unit,
			AttrKeys: keys, AttrValues: values,
			Name: []string{"purchase", "page_load"}[i%2], Value: float64(i) + 0.25,
		})
	}
	return evs
}

func TestInsertRoundTrip(t *testing.T) { warehousetest.Run(t, testInsertRoundTrip) }

func testInsertRoundTrip(t *testing.T, e warehouse.Engine) {
	w, _ := warehousetest.Start(t, e)
	ctx := context.Background()
	evs := batch("rt", 100)
	n, err := w.Insert(ctx, evs)
	if err != nil {
		t.Fatal(err)
	}
	if want := (warehouse.Counts{Exposures: 100, Events: 100}); n != want {
		t.Errorf("Insert = %+v, want %+v", n, want)
	}
	var wantX, wantT []row
	for _, e := range evs {
		ms := uint64(e.TS.UnixMilli())
		keys, values := e.AttrKeys, e.AttrValues
		if keys == nil {
			keys, values = []string{}, []string{}
		}
		switch e.Type {
		case event.Exposure:
			wantX = append(wantX, row{e.ID, ms, e.Unit, e.Experiment, e.Variant, keys, values})
		case event.Track:
			wantT = append(wantT, row{e.ID, ms, e.Unit, e.Name, e.Value, keys, values})
		}
	}
	gotX := queryRows(t, w, `SELECT event_id, toUInt64(ts) * 1000 + ts_ms, unit_id, experiment, variant, attr_keys, attr_values
		FROM verdict.exposures ORDER BY toUInt64(ts) * 1000 + ts_ms`)
	if diff := cmp.Diff(wantX, gotX); diff != "" {
		t.Errorf("exposures (-want +got):\n%s", diff)
	}
	gotT := queryRows(t, w, `SELECT event_id, toUInt64(ts) * 1000 + ts_ms, unit_id, event, value, attr_keys, attr_values
		FROM verdict.events ORDER BY toUInt64(ts) * 1000 + ts_ms`)
	if diff := cmp.Diff(wantT, gotT); diff != "" {
		t.Errorf("events (-want +got):\n%s", diff)
	}

	// A segment lookup as the readouts will do it.
	got := queryRows(t, w, `SELECT attr_values[indexOf(attr_keys, 'platform')] AS platform, toUInt64(count())
		FROM verdict.exposures FINAL GROUP BY platform ORDER BY platform`)
	perPlatform := map[string]uint64{}
	for _, e := range evs {
		if e.Type == event.Exposure {
			p := ""
			if len(e.AttrKeys) > 0 {
				p = e.AttrValues[1]
			}
			perPlatform[p]++
		}
	}
	want := []row{{"", perPlatform[""]}, {"android", perPlatform["android"]}, {"ios", perPlatform["ios"]}, {"web", perPlatform["web"]}}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("exposures by platform (-want +got):\n%s", diff)
	}

	if n, err := w.Insert(ctx, nil); err != nil || n != (warehouse.Counts{}) {
		t.Errorf("Insert(nil) = %+v, %v; want zero counts, nil", n, err)
	}
	bad := []event.Event{{Type: event.Track, ID: "a", TS: time.Now(), AttrKeys: []string{"k"}}}
	if _, err := w.Insert(ctx, bad); err == nil {
		t.Errorf("Insert(keys without values) = nil error, want an error")
	}
}

func TestInsertTwiceCountsOnce(t *testing.T) { warehousetest.Run(t, testInsertTwiceCountsOnce) }

func testInsertTwiceCountsOnce(t *testing.T, e warehouse.Engine) {
	w, _ := warehousetest.Start(t, e)
	ctx := context.Background()
	evs := batch("dup", 1000)
	counts := func() []row {
		// Scalar subqueries are Nullable on current ClickHouse, not on 18.16.
		return queryRows(t, w, `SELECT
			assumeNotNull((SELECT toUInt64(count()) FROM verdict.exposures FINAL)),
			assumeNotNull((SELECT toUInt64(uniqExact(event_id)) FROM verdict.exposures)),
			assumeNotNull((SELECT toUInt64(count()) FROM verdict.events FINAL)),
			assumeNotNull((SELECT toUInt64(uniqExact(event_id)) FROM verdict.events)),
			assumeNotNull((SELECT sum(value) FROM verdict.events FINAL))`)
	}
	if _, err := w.Insert(ctx, evs); err != nil {
		t.Fatal(err)
	}
	once := counts()
	want := []row{{uint64(1000), uint64(1000), uint64(1000), uint64(1000), 1000*999/2 + 0.25*1000}}
	if diff := cmp.Diff(want, once); diff != "" {
		t.Fatalf("after one insert (-want +got):\n%s", diff)
	}
	// The same batch again (a retried insert), and a redelivered half.
	for _, b := range [][]event.Event{evs, evs[:1000]} {
		if _, err := w.Insert(ctx, b); err != nil {
			t.Fatal(err)
		}
	}
	if diff := cmp.Diff(once, counts()); diff != "" {
		t.Errorf("after inserting the same events again (-once +now):\n%s", diff)
	}
	raw := queryRows(t, w, "SELECT toUInt64(count()) FROM verdict.exposures")
	t.Logf("exposure rows before merges: %v (deduplicated: 1000)", raw[0][0])
}

func TestRestartKeepsData(t *testing.T) { warehousetest.Run(t, testRestartKeepsData) }

func testRestartKeepsData(t *testing.T, e warehouse.Engine) {
	s := warehousetest.StartServer(t, e)
	w := s.Open(t, "verdict")
	ctx := context.Background()
	if _, err := w.Insert(ctx, batch("restart", 500)); err != nil {
		t.Fatal(err)
	}
	began := time.Now()
	if err := s.Stop(ctx); err != nil {
		t.Fatal(err)
	}
	stopped := time.Since(began)
	if warehouse.Reachable(ctx, s.Addr) {
		t.Fatalf("Reachable(%s) = true after Stop", s.Addr)
	}
	began = time.Now()
	if err := s.Start(ctx); err != nil {
		t.Fatal(err)
	}
	t.Logf("stop took %v, start again %v", stopped, time.Since(began))
	// The pool of w reconnects by itself.
	var got []row
	for range 50 {
		got = queryRowsErr(w, "SELECT toUInt64(count()) FROM verdict.exposures FINAL")
		if got != nil {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	if diff := cmp.Diff([]row{{uint64(500)}}, got); diff != "" {
		t.Errorf("exposures after a restart (-want +got):\n%s", diff)
	}
	if _, err := w.Insert(ctx, batch("after", 10)); err != nil {
		t.Errorf("Insert after a restart: %v", err)
	}

	// Killed rather than stopped (Stop with a context already done sends
	// SIGKILL at once): the server starts again on the same data.
	done, cancel := context.WithCancel(ctx)
	cancel()
	if err := s.Stop(done); err == nil {
		t.Errorf("Stop(done context) = nil, want an error saying the server was killed")
	}
	if err := s.Start(ctx); err != nil {
		t.Fatalf("start after a kill: %v", err)
	}
	got = nil
	for range 50 {
		if got = queryRowsErr(w, "SELECT toUInt64(count()) FROM verdict.exposures FINAL"); got != nil {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	if diff := cmp.Diff([]row{{uint64(510)}}, got); diff != "" {
		t.Errorf("exposures after a kill and start (-want +got):\n%s", diff)
	}
}

func TestStartLocalFailures(t *testing.T) { warehousetest.Run(t, testStartLocalFailures) }

func testStartLocalFailures(t *testing.T, e warehouse.Engine) {
	ctx := context.Background()
	cfg := func(addr, dir string) warehouse.LocalConfig {
		c := warehouse.LocalConfig{Engine: e, Addr: addr, DataDir: dir}
		if e == warehouse.ChDB {
			c.ChDBCommand = warehousetest.ChDBCommand(t)
		}
		return c
	}
	missing := cfg("127.0.0.1:1", t.TempDir())
	missing.Binary, missing.ChDBLib = "/nonexistent/clickhouse-server", "/nonexistent/libchdb.so"
	if _, err := warehouse.StartLocal(ctx, missing); err == nil {
		t.Error("StartLocal with a missing binary or library: nil error")
	}
	// A port held by something that is not ClickHouse: the server exits,
	// and the error carries its log.
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			c.Close()
		}
	}()
	dir := t.TempDir()
	_, err = warehouse.StartLocal(ctx, cfg(l.Addr().String(), dir))
	if err == nil || !strings.Contains(err.Error(), "exited during start") || !strings.Contains(err.Error(), "already in use") {
		t.Errorf("StartLocal on a taken port = %v, want an error saying it exited, with the log", err)
	}
	if e == warehouse.Server {
		if _, err := os.Stat(filepath.Join(dir, "clickhouse", "etc", "config.xml")); err != nil {
			t.Errorf("config not written: %v", err)
		}
	}
	// A running server at Addr: StartLocal refuses rather than start a second.
	s := warehousetest.StartServer(t, e)
	if _, err := warehouse.StartLocal(ctx, cfg(s.Addr, t.TempDir())); err == nil || !strings.Contains(err.Error(), "already answers") {
		t.Errorf("StartLocal where a server runs = %v, want an error saying one answers", err)
	}
}

func TestReachable(t *testing.T) {
	addr := freeAddr(t)
	if warehouse.Reachable(context.Background(), addr) {
		t.Errorf("Reachable(%s) = true for a closed port", addr)
	}
}

var freeAddr = testkit.FreeAddr

type row []any

// queryRows runs q and returns its rows, each value in the Go type that
// clickhouse-go scans the column type into.
func queryRows(t testing.TB, w *warehouse.Warehouse, q string) []row {
	t.Helper()
	rows, err := queryAll(w, q)
	if err != nil {
		t.Fatalf("%s: %v", q, err)
	}
	return rows
}

func queryRowsErr(w *warehouse.Warehouse, q string) []row {
	rows, _ := queryAll(w, q)
	return rows
}

func queryAll(w *warehouse.Warehouse, q string) ([]row, error) {
	rs, err := w.Conn().Query(context.Background(), q)
	if err != nil {
		return nil, err
	}
	defer rs.Close()
	var out []row
	types := rs.ColumnTypes()
	for rs.Next() {
		dest := make([]any, len(types))
		for i, ct := range types {
			dest[i] = newOf(ct.ScanType())
		}
		if err := rs.Scan(dest...); err != nil {
			return nil, err
		}
		r := make(row, len(dest))
		for i, d := range dest {
			r[i] = deref(d)
		}
		out = append(out, r)
	}
	return out, rs.Err()
}

// TestDialWrongPassword: a credential ClickHouse refuses fails Dial at once
// with the variables to check, rather than retrying until the context ends.
func TestDialWrongPassword(t *testing.T) {
	warehousetest.RunServerOnly(t, "26.7.3 ends its process at a failed login (an uncaught AUTHENTICATION_FAILED), so the refusal cannot be seen", testDialWrongPassword)
}

func testDialWrongPassword(t *testing.T, e warehouse.Engine) {
	_, addr := warehousetest.Start(t, e)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	for _, cfg := range []warehouse.Config{
		{Addr: addr, Database: "verdict", Username: "default", Password: "wrong"},
		{Addr: addr, Database: "verdict", Username: "nobody"},
	} {
		_, err := warehouse.Dial(ctx, cfg, nil)
		if err == nil || ctx.Err() != nil || !strings.Contains(err.Error(), "VERDICT_CLICKHOUSE_PASSWORD") {
			t.Errorf("Dial as %q with password %q = %v (context %v); want a refusal naming the settings", cfg.Username, cfg.Password, err, ctx.Err())
		}
	}
}
