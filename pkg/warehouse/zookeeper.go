package warehouse

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"time"
)

// ZooKeeperJar is where Debian's zookeeper package puts the server.
const ZooKeeperJar = "/usr/share/java/zookeeper.jar"

// ErrNoZooKeeper is returned by StartZooKeeper when ZooKeeper or Java is not
// installed.
var ErrNoZooKeeper = errors.New("no ZooKeeper: install it (Debian: apt-get install -y --no-install-recommends zookeeper), " +
	"which a ClickHouse cluster needs for ON CLUSTER DDL and replication")

// ZooKeeper is a standalone ZooKeeper server started by StartZooKeeper, for
// a ClickHouse cluster on one machine (tests, `make cluster-test`).
type ZooKeeper struct {
	addr string
	cmd  *exec.Cmd
	done chan struct{}
	stop sync.Once
}

// StartZooKeeper starts a standalone ZooKeeper listening on addr
// (host:port), its data and log under dir, and waits until it serves.
// Like StartLocal, the process gets SIGTERM if the one that started it dies.
func StartZooKeeper(ctx context.Context, addr, dir string) (*ZooKeeper, error) {
	java, err := exec.LookPath("java")
	if err != nil {
		return nil, ErrNoZooKeeper
	}
	if _, err := os.Stat(ZooKeeperJar); err != nil {
		return nil, ErrNoZooKeeper
	}
	host, port, err := splitAddr(addr)
	if err != nil {
		return nil, err
	}
	dir, err = filepath.Abs(dir)
	if err != nil {
		return nil, err
	}
	if err := os.MkdirAll(filepath.Join(dir, "data"), 0o755); err != nil {
		return nil, err
	}
	// No admin server (it would take :8080), four-letter words for the
	// readiness probe only.
	cfg := fmt.Sprintf("tickTime=2000\ndataDir=%s\nclientPort=%d\nclientPortAddress=%s\nadmin.enableServer=false\n4lw.commands.whitelist=srvr,ruok\nmaxClientCnxns=0\n",
		filepath.Join(dir, "data"), port, host)
	cfgFile := filepath.Join(dir, "zoo.cfg")
	if err := os.WriteFile(cfgFile, []byte(cfg), 0o644); err != nil {
		return nil, err
	}
	out, err := os.OpenFile(filepath.Join(dir, "zookeeper.log"), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return nil, err
	}
	defer out.Close()
	cmd := exec.Command(java, "-Xmx256m", "-cp", ZooKeeperJar, "org.apache.zookeeper.server.ZooKeeperServerMain", cfgFile)
	cmd.Stdout, cmd.Stderr = out, out
	cmd.SysProcAttr = sysProcAttr()
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("start zookeeper: %w", err)
	}
	z := &ZooKeeper{addr: addr, cmd: cmd, done: make(chan struct{})}
	go func() { cmd.Wait(); close(z.done) }()
	deadline := time.Now().Add(60 * time.Second)
	for !serving(addr) {
		select {
		case <-z.done:
			return nil, fmt.Errorf("zookeeper exited during start; see %s", out.Name())
		case <-ctx.Done():
			z.Stop()
			return nil, ctx.Err()
		case <-time.After(100 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			z.Stop()
			return nil, fmt.Errorf("zookeeper at %s not serving after 60s; see %s", addr, out.Name())
		}
	}
	return z, nil
}

// serving asks ZooKeeper's srvr four-letter word whether it serves.
func serving(addr string) bool {
	c, err := net.DialTimeout("tcp", addr, time.Second)
	if err != nil {
		return false
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(2 * time.Second))
	if _, err := c.Write([]byte("srvr")); err != nil {
		return false
	}
	sc := bufio.NewScanner(c)
	for sc.Scan() {
		if strings.HasPrefix(sc.Text(), "Mode:") {
			return true
		}
	}
	return false
}

// Addr is the client address.
func (z *ZooKeeper) Addr() string { return z.addr }

// Stop stops the server (SIGTERM, then SIGKILL after 10 s) and waits.
func (z *ZooKeeper) Stop() {
	z.stop.Do(func() {
		signalGroup(z.cmd.Process.Pid, syscall.SIGTERM)
		select {
		case <-z.done:
		case <-time.After(10 * time.Second):
			signalGroup(z.cmd.Process.Pid, syscall.SIGKILL)
			<-z.done
		}
	})
}
