package warehouse

import (
	"context"
	"fmt"
	"regexp"
	"strings"

	"github.com/ClickHouse/clickhouse-go/v2"
	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"
)

// On a cluster (Config.Cluster, VERDICT_CLICKHOUSE_CLUSTER) every table of
// schemas/clickhouse is two tables on every node, created ON CLUSTER:
//
//   - <table>_local holds a shard's rows: the migration's table as written,
//     or ReplicatedReplacingMergeTree under /clickhouse/tables/{shard}/<db>/<table>
//     with the {replica} macro when a shard of the cluster has more than
//     one replica;
//   - <table>, a Distributed table over <table>_local under the public name,
//     which everything else reads and writes.
//
// Rows are sharded so that what must meet, meets on one shard: exposures and
// events by cityHash64(unit_id), so every copy of an event is deduplicated by
// its shard's ReplacingMergeTree (FINAL works per shard) and all of a unit's
// rows are on one shard for the readout's per-unit joins; readouts by
// experiment. Inserts wait until every shard has its rows
// (insert_distributed_sync), so an acked event is on its shard, not in a
// queue on the node ingest talked to.
//
// The readout query runs on each shard over the _local tables, and the
// shards' sufficient statistics are added up here (ExperimentStats): every
// statistic is a count, a sum, a minimum or a maximum over units, and no
// unit spans two shards. A cap is an exact quantile over all shards' units,
// so each shard returns its sorted non-zero values and the quantile is
// taken of them merged.

// shardKeys are the sharding keys of the Distributed tables. A table a
// migration creates must have one here before it can run on a cluster.
var shardKeys = map[string]string{
	"exposures": "cityHash64(unit_id)",
	"events":    "cityHash64(unit_id)",
	"readouts":  "cityHash64(experiment)",
}

// clusterPattern is what a cluster name must match to be put into SQL.
var clusterPattern = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]*$`)

// LocalSuffix names a shard's table under a Distributed one.
const LocalSuffix = "_local"

var columnComment = regexp.MustCompile(` COMMENT '(?:[^'\\]|\\.)*'`)

var createTable = regexp.MustCompile(`^CREATE TABLE IF NOT EXISTS \{db:Identifier\}\.([a-z_]+)\s*\(`)

// clusterStmt is a statement of a migration as it runs on a cluster: ON
// CLUSTER (in its text), or on the nodes themselves.
type clusterStmt struct {
	sql string
	on  nodes
}

// nodes says where a clusterStmt runs without ON CLUSTER.
type nodes int

const (
	onCluster    nodes = iota // through the node Migrate talks to, ON CLUSTER
	onEveryNode               // on every replica of every shard
	onEveryShard              // on one replica of each shard: a Replicated table passes it on
)

// clusterStatements rewrites one migration's statements for cluster:
// each CREATE TABLE becomes its _local table and the Distributed table
// over it, both ON CLUSTER; each ALTER TABLE ... ADD COLUMN alters both on
// the nodes themselves (18.16 refuses ALTER ON CLUSTER of a table that is
// not replicated in a cluster whose shards use internal_replication, and a
// Distributed table is never replicated): the _local table on every node,
// or once per shard when it is Replicated; the Distributed one on every
// node. Any other statement is refused: it has not been written for a
// cluster yet.
func clusterStatements(stmts []string, db, cluster string, replicated bool) ([]clusterStmt, error) {
	var out []clusterStmt
	for _, stmt := range stmts {
		if a := addColumn.FindStringSubmatch(stmt); a != nil {
			table := a[1]
			if _, ok := shardKeys[table]; !ok {
				return nil, fmt.Errorf("table %s has no sharding key for a cluster (warehouse.shardKeys)", table)
			}
			rest := stmt[len(fmt.Sprintf("ALTER TABLE %s.%s", dbPlaceholder, table)):]
			local := clusterStmt{fmt.Sprintf("ALTER TABLE %s.%s%s%s", dbPlaceholder, table, LocalSuffix, rest), onEveryNode}
			if replicated { // as for CREATE TABLE: no column comments on 18.16's Replicated tables
				local = clusterStmt{columnComment.ReplaceAllString(local.sql, ""), onEveryShard}
			}
			out = append(out, local, clusterStmt{fmt.Sprintf("ALTER TABLE %s.%s%s", dbPlaceholder, table, columnComment.ReplaceAllString(rest, "")), onEveryNode})
			continue
		}
		m := createTable.FindStringSubmatch(stmt)
		if m == nil {
			return nil, fmt.Errorf("statement %.40q…: only CREATE TABLE IF NOT EXISTS and ALTER TABLE ... ADD COLUMN run on a cluster", stmt)
		}
		table := m[1]
		key, ok := shardKeys[table]
		if !ok {
			return nil, fmt.Errorf("table %s has no sharding key for a cluster (warehouse.shardKeys)", table)
		}
		local := strings.Replace(stmt, m[0], fmt.Sprintf("CREATE TABLE IF NOT EXISTS %s.%s%s ON CLUSTER %s\n(", dbPlaceholder, table, LocalSuffix, cluster), 1)
		if replicated {
			engine := "ENGINE = ReplacingMergeTree()"
			if !strings.Contains(local, engine) {
				return nil, fmt.Errorf("table %s: want %q to make it replicated", table, engine)
			}
			local = strings.Replace(local, engine, fmt.Sprintf("ENGINE = ReplicatedReplacingMergeTree('/clickhouse/tables/{shard}/%s/%s', '{replica}')", db, table), 1)
			// 18.16 refuses a Replicated table whose columns have
			// comments ("Table structure in ZooKeeper is too different
			// from local table structure"); the comments stay in the
			// migration files.
			local = columnComment.ReplaceAllString(local, "")
		}
		out = append(out, clusterStmt{sql: local}, clusterStmt{sql: fmt.Sprintf("CREATE TABLE IF NOT EXISTS %s.%s ON CLUSTER %s AS %s.%s%s\nENGINE = Distributed(%s, %s, %s%s, %s)",
			dbPlaceholder, table, cluster, dbPlaceholder, table, LocalSuffix, cluster, db, table, LocalSuffix, key)})
	}
	return out, nil
}

// execOn runs sql on the nodes of the cluster on says.
func (w *Warehouse) execOn(ctx context.Context, on nodes, sql string) error {
	for _, sh := range w.shards {
		if on == onEveryShard {
			if err := sh.conn.Exec(ctx, sql); err != nil {
				return fmt.Errorf("shard %d: %w", sh.num, err)
			}
			continue
		}
		for _, addr := range sh.addrs {
			o := w.opts
			o.Addr = []string{addr}
			conn, err := clickhouse.Open(&o)
			if err != nil {
				return fmt.Errorf("node %s: %w", addr, err)
			}
			err = conn.Exec(ctx, sql)
			conn.Close()
			if err != nil {
				return fmt.Errorf("node %s: %w", addr, err)
			}
		}
	}
	return nil
}

// shard is one shard of the cluster: a pool over its replicas.
type shard struct {
	num   uint32
	addrs []string
	conn  driver.Conn
}

// topology reads the cluster's shards from system.clusters and opens a
// pool to each (over its replicas, in order), with the options of the
// warehouse's own pool. It reports whether any shard has replicas.
func topology(ctx context.Context, conn driver.Conn, cluster string, opts clickhouse.Options) ([]*shard, bool, error) {
	rows, err := conn.Query(ctx, `SELECT shard_num, groupArray(concat(host_name, ':', toString(port)))
FROM (SELECT shard_num, replica_num, host_name, port FROM system.clusters WHERE cluster = @cluster ORDER BY shard_num, replica_num)
GROUP BY shard_num ORDER BY shard_num`, clickhouse.Named("cluster", cluster))
	if err != nil {
		return nil, false, fmt.Errorf("read cluster %s from system.clusters: %w", cluster, err)
	}
	defer rows.Close()
	var shards []*shard
	replicated := false
	for rows.Next() {
		s := &shard{}
		if err := rows.Scan(&s.num, &s.addrs); err != nil {
			return nil, false, fmt.Errorf("read cluster %s: %w", cluster, err)
		}
		replicated = replicated || len(s.addrs) > 1
		shards = append(shards, s)
	}
	if err := rows.Err(); err != nil {
		return nil, false, fmt.Errorf("read cluster %s: %w", cluster, err)
	}
	if len(shards) == 0 {
		return nil, false, fmt.Errorf("VERDICT_CLICKHOUSE_CLUSTER %q: no such cluster in system.clusters; define it in the servers' remote_servers", cluster)
	}
	for _, s := range shards {
		o := opts
		o.Addr = s.addrs
		o.ConnOpenStrategy = clickhouse.ConnOpenInOrder
		if s.conn, err = clickhouse.Open(&o); err != nil {
			closeShards(shards)
			return nil, false, fmt.Errorf("open shard %d (%v): %w", s.num, s.addrs, err)
		}
	}
	return shards, replicated, nil
}

func closeShards(shards []*shard) {
	for _, s := range shards {
		if s.conn != nil {
			s.conn.Close()
		}
	}
}
