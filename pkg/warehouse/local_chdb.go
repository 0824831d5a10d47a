package warehouse

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
)

// Engine is what a local ClickHouse server runs.
type Engine string

const (
	// ChDB is ClickHouse 26.7 from chDB's libchdb.so (npm's
	// @chdb/lib-linux-x64-gnu), run by a launcher process: the ClickHouse
	// users run today. It has one passwordless user, no TLS and no cluster.
	ChDB Engine = "chdb"
	// Server is an installed clickhouse-server binary; Debian's is 18.16.
	Server Engine = "server"
)

// ParseEngine reads VERDICT_CLICKHOUSE_LOCAL: chdb or server.
func ParseEngine(s string) (Engine, error) {
	switch e := Engine(s); e {
	case ChDB, Server:
		return e, nil
	}
	return "", fmt.Errorf("VERDICT_CLICKHOUSE_LOCAL %q: want chdb (ClickHouse 26 from libchdb.so) or server (an installed clickhouse-server, Debian's 18.16)", s)
}

// ErrNoChDBLib is returned by StartLocal when Engine is ChDB and no
// libchdb.so is found.
var ErrNoChDBLib = errors.New("no libchdb.so found (VERDICT_CHDB_LIB, .cache/chdb/ in this directory or a parent, /usr/local/lib, /usr/lib): " +
	"install it with scripts/install-clickhouse.sh (npm's @chdb/lib-linux-x64-gnu), " +
	"run Debian's ClickHouse instead (VERDICT_CLICKHOUSE_LOCAL=server), " +
	"or point verdict at a running server with VERDICT_CLICKHOUSE_ADDR")

// FindChDBLib returns the first libchdb.so of: .cache/chdb/libchdb.so in
// the working directory or one of its parents (where
// scripts/install-clickhouse.sh puts it in a checkout), then
// /usr/local/lib and /usr/lib (where chDB's own installer puts it). It
// returns ErrNoChDBLib when there is none.
func FindChDBLib() (string, error) {
	var candidates []string
	if dir, err := os.Getwd(); err == nil {
		for {
			candidates = append(candidates, filepath.Join(dir, ".cache", "chdb", "libchdb.so"))
			parent := filepath.Dir(dir)
			if parent == dir {
				break
			}
			dir = parent
		}
	}
	candidates = append(candidates, "/usr/local/lib/libchdb.so", "/usr/lib/libchdb.so")
	for _, c := range candidates {
		if fi, err := os.Stat(c); err == nil && fi.Mode().IsRegular() {
			return c, nil
		}
	}
	return "", ErrNoChDBLib
}

// chdbProcess prepares the launcher of a ChDB server: data, log and stderr
// under DataDir/chdb, and a pipe on its standard input whose closing stops
// it (see package chdb).
func chdbProcess(cfg LocalConfig) (*Local, error) {
	var unsupported []error
	if cfg.Password != "" {
		unsupported = append(unsupported, errors.New("a password (it has no users but default)"))
	}
	if cfg.TLS != nil {
		unsupported = append(unsupported, errors.New("TLS (it has no TLS listener)"))
	}
	if cfg.Cluster != nil {
		unsupported = append(unsupported, errors.New("a cluster (it has no ON CLUSTER)"))
	}
	if cfg.HTTPAddr != "" {
		unsupported = append(unsupported, errors.New("an HTTP port"))
	}
	if len(unsupported) > 0 {
		return nil, fmt.Errorf("the local chdb engine cannot have %w; run clickhouse-server for that (VERDICT_CLICKHOUSE_LOCAL=server)", errors.Join(unsupported...))
	}
	if len(cfg.ChDBCommand) == 0 {
		return nil, errors.New("start local clickhouse (chdb): no launcher command (LocalConfig.ChDBCommand)")
	}
	lib := cfg.ChDBLib
	if lib == "" {
		var err error
		if lib, err = FindChDBLib(); err != nil {
			return nil, err
		}
	}
	lib, err := filepath.Abs(lib)
	if err != nil {
		return nil, err
	}
	if _, err := os.Stat(lib); err != nil {
		return nil, fmt.Errorf("VERDICT_CHDB_LIB: %w", err)
	}
	if _, _, err := splitAddr(cfg.Addr); err != nil {
		return nil, err
	}
	dir, err := filepath.Abs(filepath.Join(cfg.DataDir, "chdb"))
	if err != nil {
		return nil, err
	}
	if err := os.MkdirAll(filepath.Join(dir, "log"), 0o755); err != nil {
		return nil, err
	}
	args := append(cfg.ChDBCommand[1:len(cfg.ChDBCommand):len(cfg.ChDBCommand)],
		"-lib", lib, "-path", dir+"/", "-addr", cfg.Addr, "-log", filepath.Join(dir, "log", "clickhouse-server.log"))
	cmd := exec.Command(cfg.ChDBCommand[0], args...)
	// clickhouse-local takes the time zone of its process; the tables'
	// columns are UTC either way, and UTC makes clickhouse-client show
	// times as stored, as the Server engine's config does.
	cmd.Env = append(os.Environ(), "TZ=UTC")
	stdin, err := cmd.StdinPipe()
	if err != nil {
		return nil, err
	}
	return &Local{engine: ChDB, dir: dir, cmd: cmd, stdin: stdin}, nil
}

// Engine is what the server runs.
func (l *Local) Engine() Engine { return l.engine }
