package warehouse

import (
	"bufio"
	"context"
	"fmt"
	"io/fs"
	"path"
	"regexp"
	"sort"
	"strconv"
	"strings"

	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"
	"github.com/verdictlabs/verdict/schemas"
)

// dbPlaceholder is how migrations name the database. It is spelled like a
// ClickHouse query parameter so the files read as SQL, but Migrate replaces
// it as text (after checking the name): 18.16 has no identifier parameters.
const dbPlaceholder = "{db:Identifier}"

// The bookkeeping table lives outside the numbered files because Migrate
// needs it before it can tell which files to run. ReplacingMergeTree keyed on
// version: two services migrating at once may both record a version, and
// reading with FINAL (or DISTINCT) still sees it once.
const (
	createDatabase   = `CREATE DATABASE IF NOT EXISTS {db:Identifier}`
	createMigrations = `CREATE TABLE IF NOT EXISTS {db:Identifier}.schema_migrations
(
    version    UInt32,
    name       String,
    applied_at DateTime('UTC') DEFAULT now()
)
ENGINE = ReplacingMergeTree()
ORDER BY version`
	selectMigrations = `SELECT DISTINCT version FROM {db:Identifier}.schema_migrations`
	// INSERT ... VALUES through Exec hangs on 18.16 (the server waits for
	// data blocks); INSERT ... SELECT runs entirely on the server.
	insertMigration = `INSERT INTO {db:Identifier}.schema_migrations (version, name) SELECT toUInt32(?), ?`
)

// Migration is one numbered file of schemas/clickhouse.
type Migration struct {
	Version    uint32   // from the file name: 0001_events.sql is 1
	Name       string   // file name
	Statements []string // with the database placeholder still in
}

// Migrate creates database db if needed and applies, in order, every
// migration of schemas/clickhouse that its schema_migrations table does not
// record yet, recording each after its statements succeed. It is idempotent:
// run at every start, it does nothing once the database is up to date.
func Migrate(ctx context.Context, conn driver.Conn, db string) error {
	ms, err := Migrations(schemas.ClickHouse)
	if err != nil {
		return err
	}
	return migrate(ctx, conn, db, "", false, ms, nil)
}

// migrate applies ms to db, on a single server or, when cluster is set, ON
// CLUSTER (see cluster.go): the database and the bookkeeping table on every
// node, each table as its _local table and a Distributed one. Every node
// records its own applied versions, so a service that talks to another node
// applies them again, which IF NOT EXISTS makes harmless.
//
// execOn runs a statement on a cluster's nodes themselves (see
// clusterStatements); nil on a single server.
func migrate(ctx context.Context, conn driver.Conn, db, cluster string, replicated bool, ms []Migration, execOn func(context.Context, nodes, string) error) error {
	if err := checkDatabase(db); err != nil {
		return err
	}
	prepare := []string{createDatabase, createMigrations}
	if cluster != "" {
		prepare = []string{
			strings.Replace(createDatabase, dbPlaceholder, dbPlaceholder+" ON CLUSTER "+cluster, 1),
			strings.Replace(createMigrations, "schema_migrations", "schema_migrations ON CLUSTER "+cluster, 1),
		}
	}
	for _, q := range prepare {
		if err := conn.Exec(ctx, withDatabase(q, db)); err != nil {
			return fmt.Errorf("prepare migrations in database %s: %w", db, err)
		}
	}
	applied, err := appliedVersions(ctx, conn, db)
	if err != nil {
		return err
	}
	for _, m := range ms {
		if applied[m.Version] {
			continue
		}
		var stmts []clusterStmt
		for _, sql := range m.Statements {
			stmts = append(stmts, clusterStmt{sql: sql})
		}
		if cluster != "" {
			var err error
			if stmts, err = clusterStatements(m.Statements, db, cluster, replicated); err != nil {
				return fmt.Errorf("migration %s on cluster %s: %w", m.Name, cluster, err)
			}
		}
		for i, stmt := range stmts {
			sql := withDatabase(stmt.sql, db)
			var err error
			if stmt.on == onCluster {
				err = conn.Exec(ctx, sql)
			} else {
				err = execOn(ctx, stmt.on, sql)
			}
			if err != nil && !columnExists(stmt.sql, err) {
				return fmt.Errorf("migration %s, statement %d: %w", m.Name, i+1, err)
			}
		}
		if err := conn.Exec(ctx, withDatabase(insertMigration, db), m.Version, m.Name); err != nil {
			return fmt.Errorf("record migration %s: %w", m.Name, err)
		}
	}
	return nil
}

func appliedVersions(ctx context.Context, conn driver.Conn, db string) (map[uint32]bool, error) {
	rows, err := conn.Query(ctx, withDatabase(selectMigrations, db))
	if err != nil {
		return nil, fmt.Errorf("read applied migrations: %w", err)
	}
	defer rows.Close()
	applied := make(map[uint32]bool)
	for rows.Next() {
		var v uint32
		if err := rows.Scan(&v); err != nil {
			return nil, fmt.Errorf("read applied migrations: %w", err)
		}
		applied[v] = true
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("read applied migrations: %w", err)
	}
	return applied, nil
}

// addColumn matches a migration's ALTER TABLE ... ADD COLUMN statement, on
// one server or on a cluster.
var addColumn = regexp.MustCompile(`^ALTER TABLE \{db:Identifier\}\.([a-z_]+)( ON CLUSTER [A-Za-z0-9_]+)? ADD COLUMN ([a-z_]+) `)

// columnExists reports whether err is ClickHouse refusing stmt, an ADD
// COLUMN, because the column is there already: 18.16 has no ADD COLUMN IF
// NOT EXISTS, so a migration that ran but was not recorded (two services
// migrating at once, a crash in between) meets its own column when it runs
// again. On a cluster the refusal comes back as one host's error text.
func columnExists(stmt string, err error) bool {
	return addColumn.MatchString(stmt) && strings.Contains(err.Error(), "already exists")
}

// withDatabase puts the (checked) database name in place of the placeholder.
func withDatabase(q, db string) string { return strings.ReplaceAll(q, dbPlaceholder, db) }

// Migrations reads the numbered migrations (NNNN_name.sql) of fsys, at its
// root or under clickhouse/, in version order.
func Migrations(fsys fs.FS) ([]Migration, error) {
	names, err := fs.Glob(fsys, "clickhouse/*.sql")
	if err != nil {
		return nil, err
	}
	if len(names) == 0 {
		if names, err = fs.Glob(fsys, "*.sql"); err != nil {
			return nil, err
		}
	}
	var ms []Migration
	seen := make(map[uint32]string)
	for _, name := range names {
		base := path.Base(name)
		num, _, ok := strings.Cut(base, "_")
		v, err := strconv.ParseUint(num, 10, 32)
		if !ok || err != nil || v == 0 {
			return nil, fmt.Errorf("migration %s: name must be NNNN_name.sql with NNNN > 0", name)
		}
		if prev, dup := seen[uint32(v)]; dup {
			return nil, fmt.Errorf("migrations %s and %s have the same version %d", prev, base, v)
		}
		seen[uint32(v)] = base
		b, err := fs.ReadFile(fsys, name)
		if err != nil {
			return nil, err
		}
		stmts := SplitStatements(string(b))
		if len(stmts) == 0 {
			return nil, fmt.Errorf("migration %s: no statements", name)
		}
		ms = append(ms, Migration{Version: uint32(v), Name: base, Statements: stmts})
	}
	sort.Slice(ms, func(i, j int) bool { return ms[i].Version < ms[j].Version })
	return ms, nil
}

// SplitStatements splits a migration into statements. A statement ends at a
// line whose last non-blank character is ";" (the ";" is dropped); lines that
// are only a "--" comment are left out. The native protocol takes one
// statement per query, and this rule needs no SQL parser.
func SplitStatements(sql string) []string {
	var stmts []string
	var cur strings.Builder
	flush := func() {
		if s := strings.TrimSpace(cur.String()); s != "" {
			stmts = append(stmts, s)
		}
		cur.Reset()
	}
	sc := bufio.NewScanner(strings.NewReader(sql))
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		line := strings.TrimRight(sc.Text(), " \t\r")
		if strings.HasPrefix(strings.TrimSpace(line), "--") {
			continue
		}
		if strings.HasSuffix(line, ";") {
			cur.WriteString(strings.TrimSuffix(line, ";"))
			flush()
			continue
		}
		cur.WriteString(line)
		cur.WriteByte('\n')
	}
	flush()
	return stmts
}
