package warehouse_test

import (
	"context"
	"net"
	"path/filepath"
	"testing"
	"time"

	"github.com/verdictlabs/verdict/pkg/testkit"
	"github.com/verdictlabs/verdict/pkg/tlstest"
	"github.com/verdictlabs/verdict/pkg/warehouse"
	"github.com/verdictlabs/verdict/pkg/warehouse/warehousetest"
)

// TestTLS runs the local server with a TLS port and connects over TLS,
// verifying it with VERDICT_CLICKHOUSE_TLS_CA's certificate; without the
// CA, or without TLS, the connection fails.
func TestTLS(t *testing.T) {
	warehousetest.RunServerOnly(t, "has no TLS listener", testTLS)
}

func testTLS(t *testing.T, e warehouse.Engine) {
	dir := t.TempDir()
	cert := tlstest.New(t)
	certFile, keyFile := cert.CertFile, cert.KeyFile
	plain, secure := testkit.FreeAddr(t), testkit.FreeAddr(t)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	l, err := warehouse.StartLocal(ctx, warehouse.LocalConfig{Addr: plain, DataDir: filepath.Join(dir, "data"),
		TLS: &warehouse.LocalTLS{Port: port(t, secure), CertFile: certFile, KeyFile: keyFile}})
	if err != nil {
		t.Fatal(err)
	}
	defer l.Stop(context.Background())

	w, err := warehouse.Open(ctx, warehouse.Config{Addr: secure, TLS: true, TLSCA: certFile})
	if err != nil {
		t.Fatalf("Open over TLS with the CA: %v", err)
	}
	w.Close()
	if w, err := warehouse.Open(ctx, warehouse.Config{Addr: secure, TLS: true}); err == nil {
		w.Close()
		t.Error("Open over TLS without the CA succeeded: the self-signed certificate must not verify")
	}
	shortCtx, cancelShort := context.WithTimeout(ctx, 10*time.Second)
	defer cancelShort()
	if w, err := warehouse.Open(shortCtx, warehouse.Config{Addr: secure}); err == nil {
		w.Close()
		t.Error("Open without TLS to the TLS port succeeded")
	}
}

func port(t *testing.T, addr string) int {
	t.Helper()
	a, err := net.ResolveTCPAddr("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	return a.Port
}

// TestLocalPassword starts the local server with a user and a password
// (what `verdict up` does when VERDICT_CLICKHOUSE_PASSWORD is set): the
// user with the password gets in; no password, a wrong one and the default
// user are refused at once.
func TestLocalPassword(t *testing.T) {
	warehousetest.RunServerOnly(t, "has no users but default", testLocalPassword)
}

func testLocalPassword(t *testing.T, e warehouse.Engine) {
	addr := testkit.FreeAddr(t)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	l, err := warehouse.StartLocal(ctx, warehouse.LocalConfig{Addr: addr, DataDir: t.TempDir(), User: "verdict", Password: "ch-pw-secret"})
	if err != nil {
		t.Fatal(err)
	}
	defer l.Stop(context.Background())
	w, err := warehouse.Open(ctx, warehouse.Config{Addr: addr, Username: "verdict", Password: "ch-pw-secret"})
	if err != nil {
		t.Fatalf("Open as verdict with its password: %v", err)
	}
	w.Close()
	for _, cfg := range []warehouse.Config{
		{Addr: addr, Username: "verdict"},
		{Addr: addr, Username: "verdict", Password: "wrong"},
		{Addr: addr, Username: "default"},
	} {
		if w, err := warehouse.Open(ctx, cfg); err == nil {
			w.Close()
			t.Errorf("Open as %q with password %q succeeded", cfg.Username, cfg.Password)
		} else if ctx.Err() != nil {
			t.Fatalf("Open as %q retried until the deadline: %v", cfg.Username, err)
		}
	}
}
