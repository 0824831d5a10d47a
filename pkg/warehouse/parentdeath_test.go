//go:build linux

package warehouse_test

import (
	"bufio"
	"context"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/verdictlabs/verdict/pkg/warehouse"
)

// TestServerDiesWithParent kills, with SIGKILL, a process that started a
// local server, and checks the server goes too.
func TestServerDiesWithParent(t *testing.T) {
	if os.Getenv("WAREHOUSE_TEST_PARENT") == "1" {
		return // in the helper process: see helperParent
	}
	addr := freeAddr(t)
	cmd := exec.Command(os.Args[0], "-test.run=^TestHelperParent$")
	cmd.Env = append(os.Environ(), "WAREHOUSE_TEST_PARENT=1", "WAREHOUSE_TEST_ADDR="+addr, "WAREHOUSE_TEST_DIR="+t.TempDir())
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer cmd.Process.Kill()
	sc := bufio.NewScanner(out)
	ready := false
	for sc.Scan() {
		if strings.HasPrefix(sc.Text(), "ready") {
			ready = true
			break
		}
	}
	if !ready {
		t.Fatal("helper did not start a server")
	}
	if !warehouse.Reachable(context.Background(), addr) {
		t.Fatal("server not reachable while its parent lives")
	}
	cmd.Process.Signal(syscall.SIGKILL)
	cmd.Wait()
	deadline := time.Now().Add(20 * time.Second)
	for warehouse.Reachable(context.Background(), addr) {
		if time.Now().After(deadline) {
			t.Fatalf("server at %s still answers 20s after its parent was killed", addr)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// TestHelperParent is the process TestServerDiesWithParent kills.
func TestHelperParent(t *testing.T) {
	if os.Getenv("WAREHOUSE_TEST_PARENT") != "1" {
		t.Skip("helper process of TestServerDiesWithParent")
	}
	_, err := warehouse.StartLocal(context.Background(), warehouse.LocalConfig{
		Addr: os.Getenv("WAREHOUSE_TEST_ADDR"), DataDir: os.Getenv("WAREHOUSE_TEST_DIR"),
	})
	if err != nil {
		t.Fatal(err)
	}
	fmt.Println("ready")
	time.Sleep(time.Minute)
}
