package main

import (
	"bytes"
	"context"
	"io"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/verdictlabs/verdict/pkg/warehouse"
	"github.com/verdictlabs/verdict/pkg/warehouse/warehousetest"
)

// TestUpRefusesUnexpectedServers: `verdict up` does not hand its
// credentials to whatever already listens on its ports. With a NATS
// password set and something listening at VERDICT_NATS_URL, it stops,
// naming VERDICT_NATS_EXTERNAL, and what listens never sees the password;
// with a ClickHouse password and a ClickHouse it did not start at
// VERDICT_CLICKHOUSE_ADDR, likewise with VERDICT_CLICKHOUSE_EXTERNAL. (A
// ClickHouse of the server engine stands for any: the check is made before
// a word of the password is sent.)
func TestUpRefusesUnexpectedServers(t *testing.T) {
	const secret = "do-not-send-me"
	upWith := func(env map[string]string) error {
		t.Helper()
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		base := map[string]string{
			"VERDICT_HTTP_ADDR":        deployFreeAddr(t),
			"VERDICT_DATA_DIR":         t.TempDir(),
			"VERDICT_CLICKHOUSE_LOCAL": "server",
			"VERDICT_LOG_LEVEL":        "warn",
		}
		for k, v := range env {
			base[k] = v
		}
		return run(ctx, []string{"up"}, func(k string) string { return base[k] }, strings.NewReader(""), io.Discard, io.Discard)
	}

	t.Run("nats", func(t *testing.T) {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		defer ln.Close()
		var mu sync.Mutex
		var heard bytes.Buffer
		go func() {
			for {
				c, err := ln.Accept()
				if err != nil {
					return
				}
				// Speak like a NATS server: a client that trusted it would
				// answer with CONNECT and its password.
				c.Write([]byte(`INFO {"server_id":"x","version":"2.11.0","proto":1,"max_payload":1048576,"auth_required":true}` + "\r\n"))
				go func() {
					b, _ := io.ReadAll(io.LimitReader(c, 4096))
					mu.Lock()
					heard.Write(b)
					mu.Unlock()
				}()
			}
		}()
		err = upWith(map[string]string{
			"VERDICT_NATS_URL":      "nats://" + ln.Addr().String(),
			"VERDICT_NATS_USER":     "verdict",
			"VERDICT_NATS_PASSWORD": secret,
		})
		if err == nil || !strings.Contains(err.Error(), "VERDICT_NATS_EXTERNAL") {
			t.Errorf("verdict up with a NATS it did not start: %v, want a refusal naming VERDICT_NATS_EXTERNAL", err)
		}
		time.Sleep(200 * time.Millisecond)
		mu.Lock()
		defer mu.Unlock()
		if strings.Contains(heard.String(), secret) {
			t.Error("the password was sent to the server verdict up did not start")
		}
	})

	t.Run("clickhouse-18.16", func(t *testing.T) {
		ch := warehousetest.StartServer(t, warehouse.Server)
		err := upWith(map[string]string{
			"VERDICT_NATS_URL":            "nats://" + deployFreeAddr(t),
			"VERDICT_CLICKHOUSE_ADDR":     ch.Addr,
			"VERDICT_CLICKHOUSE_PASSWORD": secret,
		})
		if err == nil || !strings.Contains(err.Error(), "VERDICT_CLICKHOUSE_EXTERNAL") {
			t.Errorf("verdict up with a ClickHouse it did not start: %v, want a refusal naming VERDICT_CLICKHOUSE_EXTERNAL", err)
		}
	})
}
