// Package warehousetest runs a private ClickHouse server for a test: on free
// ports, with its data in t.TempDir(), stopped when the test ends. A test
// that needs ClickHouse fails, never skips, when clickhouse-server is not
// installed (scripts/install-clickhouse.sh installs it).
package warehousetest

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/verdictlabs/verdict/pkg/warehouse"
)

// Start starts a private server, opens a Warehouse on it with database
// "verdict" migrated, and registers their cleanup. It returns the Warehouse
// and the server's native address.
func Start(t testing.TB) (*warehouse.Warehouse, string) {
	t.Helper()
	s := StartServer(t)
	return s.Open(t, warehouse.DefaultDatabase), s.Addr
}

// Server is a private ClickHouse server that a test can stop and start
// again at the same address, with the same data.
type Server struct {
	Addr    string // native protocol, 127.0.0.1:port
	DataDir string // the LocalConfig.DataDir

	mu      sync.Mutex
	local   *warehouse.Local // nil while stopped
	cluster *warehouse.LocalCluster
}

// StartServer starts a private server and registers its Stop.
func StartServer(t testing.TB) *Server {
	t.Helper()
	s := &Server{DataDir: t.TempDir()}
	var err error
	// A free port can be taken between choosing it and the server binding
	// it; choose again then.
	for range 3 {
		s.Addr = freeAddr(t)
		if err = s.Start(context.Background()); err == nil || errors.Is(err, warehouse.ErrNoServerBinary) ||
			!strings.Contains(err.Error(), "ddress already in use") {
			break
		}
	}
	if err != nil {
		t.Fatalf("start local clickhouse: %v", err)
	}
	t.Cleanup(func() {
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
		Addr:    s.Addr,
		DataDir: s.DataDir,
		Cluster: s.cluster,
		Logger:  slog.New(slog.DiscardHandler),
	})
	if err != nil {
		return err
	}
	s.local = l
	return nil
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

func freeAddr(t testing.TB) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return fmt.Sprintf("127.0.0.1:%d", l.Addr().(*net.TCPAddr).Port)
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
func StartCluster(t testing.TB, shards, replicas int) *Cluster {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	c := &Cluster{Name: "verdict", ZooKeeper: freeAddr(t)}
	zk, err := warehouse.StartZooKeeper(ctx, c.ZooKeeper, t.TempDir())
	if err != nil {
		t.Fatalf("start zookeeper: %v", err)
	}
	t.Cleanup(zk.Stop)
	for range shards {
		var rs []string
		for range replicas {
			rs = append(rs, freeAddr(t))
		}
		c.Shards = append(c.Shards, rs)
	}
	for si, rs := range c.Shards {
		for ri, addr := range rs {
			s := &Server{Addr: addr, DataDir: t.TempDir(), cluster: &warehouse.LocalCluster{
				Name: c.Name, Shards: c.Shards, ZooKeeper: []string{c.ZooKeeper},
				Shard: fmt.Sprint(si + 1), Replica: fmt.Sprint(ri + 1),
			}}
			if replicas > 1 {
				_, p, _ := net.SplitHostPort(freeAddr(t))
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
