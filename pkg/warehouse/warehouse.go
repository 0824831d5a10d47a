package warehouse

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"regexp"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2"
	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"

	"github.com/verdictlabs/verdict/schemas"
)

// Defaults of Config.
const (
	DefaultAddr     = "127.0.0.1:9000"
	DefaultDatabase = "verdict"
)

// Config says where the warehouse is.
type Config struct {
	Addr     string // host:port of the native protocol; default 127.0.0.1:9000
	Database string // default "verdict"; must match ^[a-z_][a-z0-9_]*$
	Username string // default "default"
	Password string
	// TLS speaks the native protocol over TLS (ClickHouse's secure port,
	// 9440 by default; VERDICT_CLICKHOUSE_TLS), verifying the server with
	// the system's CAs or with TLSCA, a PEM file (VERDICT_CLICKHOUSE_TLS_CA).
	TLS   bool
	TLSCA string
	// Cluster, when set, is the name of a cluster in the servers'
	// remote_servers (VERDICT_CLICKHOUSE_CLUSTER): the tables are sharded
	// across it (see cluster.go), and Addr is any of its nodes.
	Cluster string
}

// LogValue keeps the password out of logs.
func (c Config) LogValue() slog.Value {
	pw := ""
	if c.Password != "" {
		pw = "REDACTED"
	}
	return slog.GroupValue(
		slog.String("addr", c.Addr),
		slog.String("database", c.Database),
		slog.String("username", c.Username),
		slog.String("password", pw),
		slog.Bool("tls", c.TLS || c.TLSCA != ""),
		slog.String("cluster", c.Cluster),
	)
}

// databasePattern is what a database name must match to be put into SQL.
// It is narrower than what ClickHouse allows so no quoting is ever needed.
var databasePattern = regexp.MustCompile(`^[a-z_][a-z0-9_]*$`)

// ErrBadDatabase is returned for a database name that does not match
// ^[a-z_][a-z0-9_]*$.
var ErrBadDatabase = errors.New("database name must match ^[a-z_][a-z0-9_]*$")

func checkDatabase(db string) error {
	if len(db) > 64 || !databasePattern.MatchString(db) {
		return fmt.Errorf("database %q: %w", db, ErrBadDatabase)
	}
	return nil
}

// Warehouse is a pool of native connections to ClickHouse and the database
// verdict's tables live in. It is safe for concurrent use.
type Warehouse struct {
	conn driver.Conn
	db   string
	sql  statements

	// On a cluster: its name, its shards (each a pool of its own), and
	// whether a shard has replicas.
	cluster    string
	shards     []*shard
	replicated bool
	opts       clickhouse.Options // to reach a node of the cluster itself
}

// Open connects to the ClickHouse server at cfg.Addr and pings it. It does
// not create or migrate the database: call Migrate. Connections use the
// server's "default" database, so they work before cfg.Database exists; every
// statement names its database.
func Open(ctx context.Context, cfg Config) (*Warehouse, error) {
	if cfg.Addr == "" {
		cfg.Addr = DefaultAddr
	}
	if cfg.Database == "" {
		cfg.Database = DefaultDatabase
	}
	if cfg.Username == "" {
		cfg.Username = "default"
	}
	if err := checkDatabase(cfg.Database); err != nil {
		return nil, err
	}
	if cfg.Cluster != "" && !clusterPattern.MatchString(cfg.Cluster) {
		return nil, fmt.Errorf("VERDICT_CLICKHOUSE_CLUSTER %q: want a name of letters, digits and _", cfg.Cluster)
	}
	var tlsConfig *tls.Config
	if cfg.TLS || cfg.TLSCA != "" {
		tlsConfig = &tls.Config{MinVersion: tls.VersionTLS12}
		if cfg.TLSCA != "" {
			pem, err := os.ReadFile(cfg.TLSCA)
			if err != nil {
				return nil, fmt.Errorf("VERDICT_CLICKHOUSE_TLS_CA: %w", err)
			}
			pool := x509.NewCertPool()
			if !pool.AppendCertsFromPEM(pem) {
				return nil, fmt.Errorf("VERDICT_CLICKHOUSE_TLS_CA %s: no PEM certificate in it", cfg.TLSCA)
			}
			tlsConfig.RootCAs = pool
		}
	}
	opts := clickhouse.Options{
		TLS:      tlsConfig,
		Protocol: clickhouse.Native,
		Addr:     []string{cfg.Addr},
		Auth: clickhouse.Auth{
			Database: "default",
			Username: cfg.Username,
			Password: cfg.Password,
		},
		DialTimeout:     5 * time.Second,
		MaxOpenConns:    8,
		MaxIdleConns:    4,
		ConnMaxLifetime: time.Hour,
	}
	if cfg.Cluster != "" {
		// An insert returns once every shard has its rows.
		opts.Settings = clickhouse.Settings{"insert_distributed_sync": 1}
	}
	conn, err := clickhouse.Open(&opts)
	if err != nil {
		return nil, fmt.Errorf("open clickhouse at %s: %w", cfg.Addr, err)
	}
	if err := conn.Ping(ctx); err != nil {
		conn.Close()
		return nil, fmt.Errorf("ping clickhouse at %s: %w", cfg.Addr, err)
	}
	w := &Warehouse{conn: conn, db: cfg.Database, sql: newStatements(cfg.Database), cluster: cfg.Cluster, opts: opts}
	if cfg.Cluster != "" {
		if w.shards, w.replicated, err = topology(ctx, conn, cfg.Cluster, opts); err != nil {
			conn.Close()
			return nil, err
		}
	}
	return w, nil
}

// Database is the name of the database that holds verdict's tables; queries
// written elsewhere qualify table names with it.
func (w *Warehouse) Database() string { return w.db }

// Conn is the underlying connection pool, for queries (readouts, tests).
func (w *Warehouse) Conn() driver.Conn { return w.conn }

// Ping checks that the server answers.
func (w *Warehouse) Ping(ctx context.Context) error { return w.conn.Ping(ctx) }

// Migrate applies the migrations not applied yet to the warehouse's
// database; see the package function Migrate.
func (w *Warehouse) Migrate(ctx context.Context) error {
	ms, err := Migrations(schemas.ClickHouse)
	if err != nil {
		return err
	}
	return migrate(ctx, w.conn, w.db, w.cluster, w.replicated, ms, w.execOn)
}

// Cluster is the cluster's name, "" on a single server.
func (w *Warehouse) Cluster() string { return w.cluster }

// Close closes the connections.
func (w *Warehouse) Close() error {
	closeShards(w.shards)
	return w.conn.Close()
}
