package warehouse

import (
	"flag"

	"github.com/verdictlabs/verdict/pkg/settings"
)

// RegisterFlags adds the ClickHouse flags to fs, their defaults taken from
// the environment: -clickhouse-addr (VERDICT_CLICKHOUSE_ADDR, default
// 127.0.0.1:9000), -clickhouse-db (VERDICT_CLICKHOUSE_DB, verdict) and
// -clickhouse-user (VERDICT_CLICKHOUSE_USER, default). The password comes
// from VERDICT_CLICKHOUSE_PASSWORD only: a flag would show it in ps.
func (c *Config) RegisterFlags(fs *flag.FlagSet, getenv func(string) string) {
	env := func(key, def string) string { return settings.Env(getenv, key, def) }
	fs.StringVar(&c.Addr, "clickhouse-addr", env("VERDICT_CLICKHOUSE_ADDR", "127.0.0.1:9000"), "ClickHouse native host:port (VERDICT_CLICKHOUSE_ADDR)")
	fs.StringVar(&c.Database, "clickhouse-db", env("VERDICT_CLICKHOUSE_DB", DefaultDatabase), "ClickHouse database (VERDICT_CLICKHOUSE_DB)")
	fs.StringVar(&c.Username, "clickhouse-user", env("VERDICT_CLICKHOUSE_USER", "default"), "ClickHouse user (VERDICT_CLICKHOUSE_USER)")
	c.Password = getenv("VERDICT_CLICKHOUSE_PASSWORD")
	c.TLS = settings.True(getenv("VERDICT_CLICKHOUSE_TLS"))
	fs.BoolVar(&c.TLS, "clickhouse-tls", c.TLS, "native protocol over TLS, to ClickHouse's secure port (VERDICT_CLICKHOUSE_TLS)")
	fs.StringVar(&c.Cluster, "clickhouse-cluster", getenv("VERDICT_CLICKHOUSE_CLUSTER"), "cluster of the servers' remote_servers: tables sharded across it, created ON CLUSTER (VERDICT_CLICKHOUSE_CLUSTER)")
	fs.StringVar(&c.TLSCA, "clickhouse-tls-ca", getenv("VERDICT_CLICKHOUSE_TLS_CA"), "PEM file of the CA that signed ClickHouse's certificate (VERDICT_CLICKHOUSE_TLS_CA)")
}

// RegisterFlags adds the flags of the local server that `verdict up` starts
// when none answers at VERDICT_CLICKHOUSE_ADDR, their defaults taken from
// the environment: -clickhouse-local (VERDICT_CLICKHOUSE_LOCAL: chdb, the
// default, or server) and -chdb-lib (VERDICT_CHDB_LIB; default: what
// FindChDBLib finds).
func (c *LocalConfig) RegisterFlags(fs *flag.FlagSet, getenv func(string) string) {
	c.Engine = Engine(getenv("VERDICT_CLICKHOUSE_LOCAL"))
	if c.Engine == "" {
		c.Engine = ChDB
	}
	fs.Var(&c.Engine, "clickhouse-local", "ClickHouse to start when none answers at the address: chdb (ClickHouse 26 from libchdb.so) or server (an installed clickhouse-server, Debian's 18.16) (VERDICT_CLICKHOUSE_LOCAL)")
	fs.StringVar(&c.ChDBLib, "chdb-lib", getenv("VERDICT_CHDB_LIB"), "libchdb.so for -clickhouse-local chdb; default .cache/chdb/libchdb.so here or in a parent, /usr/local/lib, /usr/lib (VERDICT_CHDB_LIB)")
}

// String is the engine's name, for flag.Value.
func (e *Engine) String() string { return string(*e) }

// Set parses a flag's value with ParseEngine.
func (e *Engine) Set(s string) error {
	v, err := ParseEngine(s)
	if err == nil {
		*e = v
	}
	return err
}
