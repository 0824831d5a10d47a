// Package testkit is what verdict's tests share: free ports, waiting for a
// condition, golden files and the published JSON Schemas. It imports
// testing, so only tests import it.
package testkit

import (
	"flag"
	"math"
	"math/rand/v2"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/santhosh-tekuri/jsonschema/v6"
)

// FreePort is a loopback port free when it returns.
func FreePort(t testing.TB) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// FreeAddr is a loopback host:port free when it returns.
func FreeAddr(t testing.TB) string {
	t.Helper()
	return "127.0.0.1:" + strconv.Itoa(FreePort(t))
}

// WaitFor polls cond every poll until it holds, failing the test after
// timeout with what cond last said.
func WaitFor(t testing.TB, timeout, poll time.Duration, cond func() (bool, string)) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		ok, state := cond()
		if ok {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("not reached after %v: %s", timeout, state)
		}
		time.Sleep(poll)
	}
}

// Poisson draws from a Poisson distribution of the mean by Knuth's
// method, which suits the small means of simulated behaviour.
func Poisson(r *rand.Rand, mean float64) int {
	l, k, p := math.Exp(-mean), 0, 1.0
	for {
		p *= r.Float64()
		if p <= l {
			return k
		}
		k++
	}
}

// Update is the -update flag of every package that has golden files: go
// test -update writes them anew.
var Update = flag.Bool("update", false, "rewrite the golden files in testdata")

// Golden compares got with the file at path, or writes it there with
// -update.
func Golden(t testing.TB, path string, got []byte) {
	t.Helper()
	if *Update {
		if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, got, 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("read golden (run go test -update): %v", err)
	}
	if diff := cmp.Diff(string(want), string(got)); diff != "" {
		t.Errorf("%s differs (-want +got; go test -update rewrites it):\n%s", path, diff)
	}
}

// Schema compiles the JSON Schema file at path, known by id (its $id), with
// formats asserted.
func Schema(t testing.TB, path, id string) *jsonschema.Schema {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatalf("open schema: %v", err)
	}
	defer f.Close()
	doc, err := jsonschema.UnmarshalJSON(f)
	if err != nil {
		t.Fatalf("read schema %s: %v", path, err)
	}
	c := jsonschema.NewCompiler()
	c.AssertFormat()
	if err := c.AddResource(id, doc); err != nil {
		t.Fatalf("add schema %s: %v", path, err)
	}
	s, err := c.Compile(id)
	if err != nil {
		t.Fatalf("compile schema %s: %v", path, err)
	}
	return s
}
