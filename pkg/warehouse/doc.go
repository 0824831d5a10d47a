// Package warehouse is verdict's ClickHouse adapter: it migrates the schema,
// inserts events column-wise, and runs a private local ClickHouse server when
// no server is configured.
//
// Events land in two tables of one database (default "verdict"): exposures
// and events (track events). Both are ReplacingMergeTree tables keyed on
// event_id, so inserting the same events again (a redelivery from NATS, a
// re-published event, a retried batch) cannot change any count as long as
// queries dedupe, with FINAL or by grouping on event_id. The migrations in
// schemas/clickhouse explain the table design.
//
// Only the native protocol is used: Debian's ClickHouse 18.16 rejects the
// HTTP protocol of clickhouse-go. Every statement here means the same on
// ClickHouse 18.16 and 26.x, and the tests run each against both
// (warehousetest.Engines): Debian's clickhouse-server 18.16 and ClickHouse
// 26.7 from chDB's libchdb.so, which StartLocal runs as a server (Engine
// ChDB, package chdb). readout.go says what that rules out.
//
// A typical start:
//
//	if !warehouse.Reachable(ctx, addr) {
//		local, err := warehouse.StartLocal(ctx, warehouse.LocalConfig{
//			Engine: warehouse.ChDB, ChDBCommand: []string{exe, "chdb-server"},
//			Addr: addr, DataDir: dir, Logger: logger})
//		...
//		defer local.Stop(context.Background())
//	}
//	w, err := warehouse.Open(ctx, warehouse.Config{Addr: addr, Database: "verdict"})
//	...
//	err = w.Migrate(ctx)
//	counts, err := w.Insert(ctx, events)
package warehouse
