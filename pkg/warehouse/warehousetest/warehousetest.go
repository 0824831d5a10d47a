// Package warehousetest runs a private ClickHouse server for a test: on free
// ports, with its data in t.TempDir(), stopped when the test ends. Every
// test that talks to ClickHouse runs once per engine of Engines (Run makes
// the subtests): Debian's clickhouse-server 18.16 and ClickHouse 26.7 from
// chDB's libchdb.so. A test that needs ClickHouse fails, never skips, when
// either is not installed (scripts/install-clickhouse.sh installs both).
package warehousetest

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/verdictlabs/verdict/pkg/testkit"
	"github.com/verdictlabs/verdict/pkg/warehouse"
)

// Engines are the ClickHouse versions the tests run against: the oldest
// verdict supports and the newest. VERDICT_TEST_CLICKHOUSE=server or =chdb
// runs one of them only, for a quicker loop while developing; the other's
// subtests then skip and say so. make test never sets it.
func Engines() []warehouse.Engine {
	return []warehouse.Engine{warehouse.Server, warehouse.ChDB}
}

// BenchEngine is the engine benchmarks run on: VERDICT_TEST_CLICKHOUSE
// (server or chdb), by default chdb, the current ClickHouse users run.
func BenchEngine() warehouse.Engine {
	if os.Getenv("VERDICT_TEST_CLICKHOUSE") == string(warehouse.Server) {
		return warehouse.Server
	}
	return warehouse.ChDB
}

// Run runs test once per engine, as parallel subtests named after each
// engine's version (clickhouse-18.16, clickhouse-26.7). Each has servers,
// ports and data of its own, and most of a test's time is waiting (for a
// server, a readout, a hold), so the two overlap.
func Run(t *testing.T, test func(t *testing.T, e warehouse.Engine)) {
	t.Helper()
	for _, e := range Engines() {
		t.Run(Name(e), func(t *testing.T) {
			if only := os.Getenv("VERDICT_TEST_CLICKHOUSE"); only != "" && only != string(e) {
				t.Skipf("VERDICT_TEST_CLICKHOUSE=%s: only that engine runs", only)
			}
			t.Parallel()
			test(t, e)
		})
	}
}

// RunServerOnly is Run for a test of what only clickhouse-server does (TLS,
// users and passwords, ON CLUSTER): chDB's subtest skips, saying why.
// Only one subtest runs, so neither is parallel (such a test may use
// t.Setenv).
func RunServerOnly(t *testing.T, why string, test func(t *testing.T, e warehouse.Engine)) {
	t.Helper()
	for _, e := range Engines() {
		t.Run(Name(e), func(t *testing.T) {
			if e != warehouse.Server {
				t.Skipf("clickhouse-server only: ClickHouse 26 from chDB %s", why)
			}
			if only := os.Getenv("VERDICT_TEST_CLICKHOUSE"); only != "" && only != string(e) {
				t.Skipf("VERDICT_TEST_CLICKHOUSE=%s: only that engine runs", only)
			}
			test(t, e)
		})
	}
}

// Name is e's subtest name, clickhouse-<major.minor> when the version can
// be read from the installed binary or library, else e itself.
func Name(e warehouse.Engine) string {
	versions.once.Do(func() {
		versions.names = map[warehouse.Engine]string{}
		// 18.16's server has no --version; its package's client says it.
		for _, cmd := range [][]string{{serverBinary(), "--version"}, {"clickhouse-client", "--version"}} {
			out, _ := exec.Command(cmd[0], cmd[1:]...).Output()
			if m := majorMinor.FindString(string(out)); m != "" {
				versions.names[warehouse.Server] = "clickhouse-" + m
				break
			}
		}
		if lib, err := warehouse.FindChDBLib(); err == nil {
			if b, err := os.ReadFile(filepath.Join(filepath.Dir(lib), "VERSION")); err == nil {
				if m := majorMinor.FindString(string(b)); m != "" {
					versions.names[warehouse.ChDB] = "clickhouse-" + m
				}
			}
		}
	})
	if n, ok := versions.names[e]; ok {
		return n
	}
	return string(e)
}

var (
	versions struct {
		once  sync.Once
		names map[warehouse.Engine]string
	}
	majorMinor = regexp.MustCompile(`\b[0-9]+\.[0-9]+`)
)

func serverBinary() string {
	for _, c := range []string{"clickhouse-server", "/usr/sbin/clickhouse-server", "/usr/bin/clickhouse-server"} {
		if p, err := exec.LookPath(c); err == nil {
			return p
		}
	}
	return "clickhouse-server"
}

// ChDBCommand is the launcher of ChDB servers for LocalConfig.ChDBCommand:
// chdb/cmd/chdb-server, built once per test process (the test binary is
// not bin/verdict, so it cannot run itself as `verdict chdb-server`).
func ChDBCommand(t testing.TB) []string {
	t.Helper()
	launcher.once.Do(func() { launcher.path, launcher.err = buildLauncher() })
	if launcher.err != nil {
		t.Fatalf("build the chdb launcher: %v", launcher.err)
	}
	return []string{launcher.path}
}

var launcher struct {
	once sync.Once
	path string
	err  error
}

// buildLauncher builds chdb-server in the pkg module (wherever the test
// runs, so the build sees pkg's go.mod) into a directory of its own, then
// renames it to a name shared by every test process: each has a finished
// binary there, whichever rename came last.
func buildLauncher() (string, error) {
	_, self, _, ok := runtime.Caller(0)
	if !ok {
		return "", errors.New("no source path of warehousetest")
	}
	module := filepath.Join(filepath.Dir(self), "..", "..") // pkg/warehouse/warehousetest → pkg
	shared := filepath.Join(os.TempDir(), fmt.Sprintf("verdict-chdb-server-%d", os.Getuid()))
	if err := os.MkdirAll(shared, 0o700); err != nil {
		return "", err
	}
	tmp, err := os.MkdirTemp(shared, "build-")
	if err != nil {
		return "", err
	}
	defer os.RemoveAll(tmp)
	out := filepath.Join(tmp, "chdb-server")
	cmd := exec.Command("go", "build", "-o", out, "./warehouse/chdb/cmd/chdb-server")
	cmd.Dir = module
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
	if b, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("go build: %v\n%s", err, b)
	}
	path := filepath.Join(shared, "chdb-server")
	if err := os.Rename(out, path); err != nil {
		return "", err
	}
	return path, nil
}

// Start starts a private server of engine e, opens a Warehouse on it with
// database "verdict" migrated, and registers their cleanup. It returns the
// Warehouse and the server's native address.
func Start(t testing.TB, e warehouse.Engine) (*warehouse.Warehouse, string) {
	t.Helper()
	s := StartServer(t, e)
	return s.Open(t, warehouse.DefaultDatabase), s.Addr
}

// Server is a private ClickHouse server that a test can stop and start
// again at the same address, with the same data.
type Server struct {
	Addr    string // native protocol, 127.0.0.1:port
	DataDir string // the LocalConfig.DataDir
	Engine  warehouse.Engine

	chdbCommand []string
	mu          sync.Mutex
	local       *warehouse.Local // nil while stopped
	cluster     *warehouse.LocalCluster
}

// StartServer starts a private server of engine e and registers its Stop.
func StartServer(t testing.TB, e warehouse.Engine) *Server {
	t.Helper()
	s := &Server{DataDir: t.TempDir(), Engine: e}
	if e == warehouse.ChDB {
		s.chdbCommand = ChDBCommand(t)
	}
	var err error
	// A free port can be taken between choosing it and the server binding
	// it; choose again then.
	for range 3 {
		s.Addr = testkit.FreeAddr(t)
		if err = s.Start(context.Background()); err == nil || errors.Is(err, warehouse.ErrNoServerBinary) || errors.Is(err, warehouse.ErrNoChDBLib) ||
			!strings.Contains(err.Error(), "ddress already in use") {
			break
		}
	}
	if err != nil {
		t.Fatalf("start local clickhouse: %v", err)
	}
	t.Cleanup(func() {
		if l := s.Local(); t.Failed() && l != nil {
			t.Logf("the end of %s's log (%s):\n%s", s.Engine, l.LogDir(), l.LogTail())
		}
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		if err := s.Stop(ctx); err != nil {
			t.Errorf("stop local clickhouse: %v", err)
		}
	})
	return s
}

// Start starts the server again after Stop, at the same address and on the
// same data. It is safe to call from any goroutine; it does nothing when the
// server runs.
func (s *Server) Start(ctx context.Context) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.local != nil {
		return nil
	}
	l, err := warehouse.StartLocal(ctx, warehouse.LocalConfig{
		Engine:      s.Engine,
		ChDBCommand: s.chdbCommand,
		Addr:        s.Addr,
		DataDir:     s.DataDir,
		Cluster:     s.cluster,
		Logger:      slog.New(slog.DiscardHandler),
	})
	if err != nil {
		return err
	}
	s.local = l
	return nil
}

// Revive starts the server again, on the same address and data, if its
// process has ended without Stop or is ending, and says whether it had.
// chDB 26.7.3's server ends its process when a client vanishes in the
// middle of an insert (an uncaught NETWORK_ERROR) or fails to log in, and
// `verdict up` starts it again; a test that kills a client mid-insert does
// the same. The server logs the fatal error at once but may take seconds
// more to end, refusing queries meanwhile: Revive watches for either for up
// to wait, and stops a server that has logged one without waiting for it.
func (s *Server) Revive(ctx context.Context, wait time.Duration) (bool, error) {
	s.mu.Lock()
	l := s.local
	s.mu.Unlock()
	if l == nil {
		return false, nil
	}
	deadline := time.After(wait)
	tick := time.NewTicker(50 * time.Millisecond)
	defer tick.Stop()
	for ended := false; !ended; {
		select {
		case <-l.Done():
			ended = true
		case <-tick.C:
			ended = l.Fatal()
		case <-deadline:
			return false, nil
		case <-ctx.Done():
			return false, ctx.Err()
		}
	}
	// A server that logged a fatal error is ending anyway: Stop kills it
	// if it has not ended within a few seconds, and has always ended when
	// Stop returns.
	stopCtx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	s.Stop(stopCtx)
	return true, s.Start(ctx)
}

// Stop stops the server (SIGTERM, SIGKILL when ctx ends first), keeping its
// data. It is safe to call from any goroutine and when already stopped.
func (s *Server) Stop(ctx context.Context) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.local == nil {
		return nil
	}
	err := s.local.Stop(ctx)
	s.local = nil
	return err
}

// Local is the running server process, or nil while stopped.
func (s *Server) Local() *warehouse.Local {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.local
}

// Open opens a Warehouse on the server with database db migrated, and
// registers its Close. Tests that share a server use distinct databases.
func (s *Server) Open(t testing.TB, db string) *warehouse.Warehouse {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	w, err := warehouse.Open(ctx, warehouse.Config{Addr: s.Addr, Database: db})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { w.Close() })
	if err := w.Migrate(ctx); err != nil {
		t.Fatalf("migrate database %s: %v", db, err)
	}
	return w
}

// Cluster is a ClickHouse cluster on this machine: a ZooKeeper and
// shards × replicas private servers, named "verdict" in every server's
// remote_servers.
type Cluster struct {
	Name      string
	Shards    [][]string // native addresses of each shard's replicas
	ZooKeeper string
	Servers   []*Server // in shard order, then replica order
}

// Addr is the first server's address, for Config.Addr.
func (c *Cluster) Addr() string { return c.Shards[0][0] }

// StartCluster starts a ZooKeeper and shards × replicas servers as one
// cluster, each server's data in its own t.TempDir(), and registers their
// stops. It fails the test when ZooKeeper or ClickHouse is not installed.
// Its servers are clickhouse-server (Debian's 18.16): chDB has no ON
// CLUSTER, so cluster tests run on that engine only.
func StartCluster(t testing.TB, shards, replicas int) *Cluster {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	c := &Cluster{Name: "verdict", ZooKeeper: testkit.FreeAddr(t)}
	zk, err := warehouse.StartZooKeeper(ctx, c.ZooKeeper, t.TempDir())
	if err != nil {
		t.Fatalf("start zookeeper: %v", err)
	}
	t.Cleanup(zk.Stop)
	for range shards {
		var rs []string
		for range replicas {
			rs = append(rs, testkit.FreeAddr(t))
		}
		c.Shards = append(c.Shards, rs)
	}
	for si, rs := range c.Shards {
		for ri, addr := range rs {
			s := &Server{Addr: addr, DataDir: t.TempDir(), Engine: warehouse.Server, cluster: &warehouse.LocalCluster{
				Name: c.Name, Shards: c.Shards, ZooKeeper: []string{c.ZooKeeper},
				Shard: fmt.Sprint(si + 1), Replica: fmt.Sprint(ri + 1),
			}}
			if replicas > 1 {
				_, p, _ := net.SplitHostPort(testkit.FreeAddr(t))
				fmt.Sscan(p, &s.cluster.InterserverPort)
			}
			if err := s.Start(ctx); err != nil {
				t.Fatalf("start clickhouse %s of the cluster: %v", addr, err)
			}
			t.Cleanup(func() {
				stopCtx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
				defer cancel()
				if err := s.Stop(stopCtx); err != nil {
					t.Errorf("stop clickhouse %s: %v", addr, err)
				}
			})
			c.Servers = append(c.Servers, s)
		}
	}
	return c
}

// Open opens a Warehouse on the cluster through the server at addr, with
// database db migrated ON CLUSTER, and registers its Close.
func (c *Cluster) Open(t testing.TB, addr, db string) *warehouse.Warehouse {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	w, err := warehouse.Open(ctx, warehouse.Config{Addr: addr, Database: db, Cluster: c.Name})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { w.Close() })
	if err := w.Migrate(ctx); err != nil {
		t.Fatalf("migrate database %s on cluster %s: %v", db, c.Name, err)
	}
	return w
}
