// Package chdb serves current ClickHouse (26.7) on the native protocol from
// chDB's libchdb.so, which the npm registry serves as
// @chdb/lib-linux-x64-gnu (scripts/install-clickhouse.sh installs it).
//
// libchdb.so is clickhouse-local as a C library. Its entry point
// chdb_query_cmdline takes clickhouse-local's command line, and
// clickhouse-local can open the native TCP listener of a server with SYSTEM
// START LISTEN TCP: the listener answers for as long as the command line's
// last query runs. Serve makes that query read the process's standard input
// to its end, so the server runs until the process that started it closes
// the pipe, or dies (the kernel closes it then). warehouse.StartLocal runs
// Serve in a child process of its own (a process holds one chDB engine, and
// a crash in it must not take verdict down); cmd/chdb-server and `verdict
// chdb-server` are that child.
//
// The library is loaded with purego: no cgo, so the launcher builds
// wherever Go does. What clickhouse-local cannot do, this server cannot
// either: no users.xml (one passwordless user, default), no TLS listener,
// no ON CLUSTER.
package chdb

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"runtime"
	"strconv"
	"strings"

	"github.com/ebitengine/purego"
)

// Config says where the server keeps its data and listens.
type Config struct {
	// Lib is the path of libchdb.so.
	Lib string
	// Dir is the data directory (clickhouse-local's --path); it keeps the
	// databases across restarts. LogFile, when set, gets the server log.
	Dir, LogFile string
	// Addr is host:port of the native protocol; the host is the only
	// listen_host.
	Addr string
}

// serveQuery starts the listener, then blocks reading standard input until
// it ends.
const serveQuery = "SYSTEM START LISTEN TCP; SELECT * FROM file('/dev/stdin', 'LineAsString') FORMAT Null"

// Args is the clickhouse-local command line Serve runs.
func Args(cfg Config) ([]string, error) {
	host, port, err := net.SplitHostPort(cfg.Addr)
	if err != nil {
		return nil, fmt.Errorf("address %q: %w", cfg.Addr, err)
	}
	if p, err := strconv.Atoi(port); err != nil || p <= 0 || p > 65535 {
		return nil, fmt.Errorf("address %q: bad port", cfg.Addr)
	}
	if host == "" {
		host = "127.0.0.1"
	}
	if cfg.Dir == "" {
		return nil, errors.New("no data directory")
	}
	args := []string{"clickhouse",
		"--path=" + cfg.Dir,
		"--tcp_port=" + port,
		"--listen_host=" + host,
		"--multiquery",
		"--query=" + serveQuery,
	}
	// Server settings that are no command-line options go after "--".
	if cfg.LogFile != "" {
		args = append(args, "--", "--logger.log="+cfg.LogFile, "--logger.level=information")
	}
	return args, nil
}

// Serve loads cfg.Lib and serves ClickHouse at cfg.Addr on cfg.Dir until
// standard input ends; it returns the error ClickHouse reported (a port in
// use, a data directory locked by another server), or nil after a clean
// stop. It is meant to be all a process does: the library cannot be
// unloaded, and a process runs one engine.
func Serve(cfg Config) error {
	args, err := Args(cfg)
	if err != nil {
		return err
	}
	lib, err := purego.Dlopen(cfg.Lib, purego.RTLD_NOW|purego.RTLD_GLOBAL)
	if err != nil {
		return fmt.Errorf("load %s: %w", cfg.Lib, err)
	}
	var (
		queryCmdline  func(argc int32, argv **byte) uintptr
		resultError   func(result uintptr) string
		destroyResult func(result uintptr)
	)
	purego.RegisterLibFunc(&queryCmdline, lib, "chdb_query_cmdline")
	purego.RegisterLibFunc(&resultError, lib, "chdb_result_error")
	purego.RegisterLibFunc(&destroyResult, lib, "chdb_destroy_query_result")

	// argv as C wants it: NUL-terminated strings and a NULL at the end.
	// Go's collector does not move heap objects; KeepAlive holds them for
	// the whole call, which lasts as long as the server runs.
	bufs := make([][]byte, len(args))
	argv := make([]*byte, len(args)+1)
	for i, a := range args {
		bufs[i] = append([]byte(a), 0)
		argv[i] = &bufs[i][0]
	}
	result := queryCmdline(int32(len(args)), &argv[0])
	runtime.KeepAlive(bufs)
	runtime.KeepAlive(argv)
	if result == 0 {
		return errors.New("chdb_query_cmdline returned no result")
	}
	defer destroyResult(result)
	if msg := strings.TrimSpace(resultError(result)); msg != "" {
		return errors.New(msg)
	}
	return nil
}

// Main is the launcher's command line: -lib, -path, -addr and -log as
// Config's fields, then Serve.
func Main(args []string, stderr io.Writer) error {
	var cfg Config
	fs := flag.NewFlagSet("chdb-server", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.StringVar(&cfg.Lib, "lib", "", "path of libchdb.so")
	fs.StringVar(&cfg.Dir, "path", "", "data directory")
	fs.StringVar(&cfg.Addr, "addr", "127.0.0.1:9000", "native protocol host:port")
	fs.StringVar(&cfg.LogFile, "log", "", "server log file")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if cfg.Lib == "" || fs.NArg() > 0 {
		return errors.New("usage: chdb-server -lib LIBCHDB.SO -path DIR [-addr HOST:PORT] [-log FILE]")
	}
	return Serve(cfg)
}
