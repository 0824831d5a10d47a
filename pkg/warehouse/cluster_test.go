package warehouse_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"

	"github.com/verdictlabs/verdict/pkg/config"
	"github.com/verdictlabs/verdict/pkg/warehouse"
	"github.com/verdictlabs/verdict/pkg/warehouse/warehousetest"
)

// TestCluster runs the migrations ON CLUSTER on two shards (ClickHouse
// 18.16 with Debian's ZooKeeper), inserts the readout test's world twice
// through one node, and checks against a single server with the same
// events: each node has the _local tables and the Distributed ones, every
// event is counted once, both shards hold rows, and ExperimentStats
// (shard by shard, added up) equals the single server's and the Go
// computation from the raw events.
func TestCluster(t *testing.T) {
	warehousetest.RunServerOnly(t, "has no ON CLUSTER", testCluster)
}

func testCluster(t *testing.T, e warehouse.Engine) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	c := warehousetest.StartCluster(t, 2, 1)
	cw := c.Open(t, c.Addr(), "verdict")
	// Again, and through the other node: the migrations are idempotent.
	c.Open(t, c.Shards[1][0], "verdict")
	single, _ := warehousetest.Start(t, e)

	batches, all := readoutWorld(3)
	for _, w := range []*warehouse.Warehouse{cw, single} {
		for _, b := range batches {
			if _, err := w.Insert(ctx, b); err != nil {
				t.Fatal(err)
			}
		}
		if _, err := w.Insert(ctx, all); err != nil { // every event again
			t.Fatal(err)
		}
	}
	count := func(w *warehouse.Warehouse, q string) uint64 {
		t.Helper()
		var n uint64
		if err := w.Conn().QueryRow(ctx, q).Scan(&n); err != nil {
			t.Fatalf("%s: %v", q, err)
		}
		return n
	}
	for _, table := range []string{"exposures", "events"} {
		q := fmt.Sprintf("SELECT count() FROM verdict.%s FINAL", table)
		if got, want := count(cw, q), count(single, q); got != want || want == 0 {
			t.Errorf("%s: the cluster counts %d, the single server %d", q, got, want)
		}
		for i, rs := range c.Shards {
			node, err := warehouse.Open(ctx, warehouse.Config{Addr: rs[0]})
			if err != nil {
				t.Fatal(err)
			}
			if n := count(node, fmt.Sprintf("SELECT count() FROM verdict.%s_local FINAL", table)); n == 0 {
				t.Errorf("shard %d holds no rows of %s", i+1, table)
			}
			if engine := engineOf(t, node, table); engine != "Distributed" {
				t.Errorf("shard %d: verdict.%s is %s, want Distributed", i+1, table, engine)
			}
			node.Close()
		}
	}

	checkout, search := worldExperiments()
	for _, tt := range []struct {
		exp  config.Experiment
		asOf time.Time
	}{{checkout, edgeAsOf}, {checkout, t0.Add(30 * day)}, {search, t0.Add(12 * day)}} {
		got, err := cw.ExperimentStats(ctx, tt.exp, readoutMetrics, tt.asOf)
		if err != nil {
			t.Fatal(err)
		}
		one, err := single.ExperimentStats(ctx, tt.exp, readoutMetrics, tt.asOf)
		if err != nil {
			t.Fatal(err)
		}
		if diff := cmp.Diff(one, got, cmpopts.EquateApprox(1e-12, 1e-9), cmpopts.EquateEmpty()); diff != "" {
			t.Errorf("%s as of %v: the cluster's statistics (+) differ from the single server's (-):\n%s", tt.exp.Key, tt.asOf, diff)
		}
		want := expectStats(tt.exp, readoutMetrics, tt.asOf, all)
		if diff := cmp.Diff(want, got, cmpopts.EquateApprox(1e-9, 1e-9), cmpopts.EquateEmpty()); diff != "" {
			t.Errorf("%s as of %v: the cluster's statistics (+) differ from the Go computation (-):\n%s", tt.exp.Key, tt.asOf, diff)
		}
		ts, err := cw.TimeStats(ctx, tt.exp, readoutMetrics, tt.asOf)
		if err != nil {
			t.Fatal(err)
		}
		if diff := cmp.Diff(expectTime(tt.exp, readoutMetrics, tt.asOf, all), ts, cmpopts.EquateApprox(1e-9, 1e-9), cmpopts.EquateEmpty()); diff != "" {
			t.Errorf("%s as of %v: the cluster's statistics over time (+) differ from the Go computation (-):\n%s", tt.exp.Key, tt.asOf, diff)
		}
	}

	// Readouts are stored and read through the Distributed table.
	if err := cw.StoreReadout(ctx, "checkout", 1, t0, t0, "collecting", "", []byte(`{"v":1}`)); err != nil {
		t.Fatal(err)
	}
	if doc, v, err := cw.LatestReadout(ctx, "checkout"); err != nil || v != 1 || string(doc) != `{"v":1}` {
		t.Errorf("LatestReadout on the cluster = %s, %d, %v", doc, v, err)
	}
}

func engineOf(t *testing.T, w *warehouse.Warehouse, table string) string {
	t.Helper()
	var engine string
	if err := w.Conn().QueryRow(context.Background(), "SELECT engine FROM system.tables WHERE database = 'verdict' AND name = '"+table+"'").Scan(&engine); err != nil {
		t.Fatalf("engine of %s: %v", table, err)
	}
	return engine
}

// TestClusterReplicated: with two replicas in a shard the _local tables are
// ReplicatedReplacingMergeTree, and what is inserted through one replica
// reaches the other.
func TestClusterReplicated(t *testing.T) {
	warehousetest.RunServerOnly(t, "has no ON CLUSTER", testClusterReplicated)
}

func testClusterReplicated(t *testing.T, e warehouse.Engine) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	c := warehousetest.StartCluster(t, 1, 2)
	w := c.Open(t, c.Addr(), "verdict")
	_, all := readoutWorld(5)
	if _, err := w.Insert(ctx, all); err != nil {
		t.Fatal(err)
	}
	other, err := warehouse.Open(ctx, warehouse.Config{Addr: c.Shards[0][1]})
	if err != nil {
		t.Fatal(err)
	}
	defer other.Close()
	if engine := engineOf(t, other, "events_local"); engine != "ReplicatedReplacingMergeTree" {
		t.Errorf("events_local is %s, want ReplicatedReplacingMergeTree", engine)
	}
	var want, got uint64
	if err := w.Conn().QueryRow(ctx, "SELECT count() FROM verdict.events FINAL").Scan(&want); err != nil || want == 0 {
		t.Fatalf("count through the first replica: %d, %v", want, err)
	}
	for deadline := time.Now().Add(time.Minute); ; time.Sleep(200 * time.Millisecond) {
		if err := other.Conn().QueryRow(ctx, "SELECT count() FROM verdict.events_local FINAL").Scan(&got); err != nil {
			t.Fatal(err)
		}
		if got == want || time.Now().After(deadline) {
			break
		}
	}
	if got != want {
		t.Errorf("the second replica has %d events, the first %d", got, want)
	}
}
