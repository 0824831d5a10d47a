package main

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/verdictlabs/verdict/pkg/event"
	"github.com/verdictlabs/verdict/pkg/warehouse"
	"github.com/verdictlabs/verdict/pkg/warehouse/warehousetest"
)

// TestLocalClickHouseRestarts kills the ClickHouse that verdict up started
// (SIGKILL; on chDB also a login with a wrong password, which ends 26.7.3's
// process): up starts it again on the same data, counts it in
// verdict_clickhouse_local_restarts_total, and events published afterwards
// land beside the ones from before.
func TestLocalClickHouseRestarts(t *testing.T) { warehousetest.Run(t, testLocalClickHouseRestarts) }

func testLocalClickHouseRestarts(t *testing.T, eng warehouse.Engine) {
	s := &lifecycleStack{env: map[string]string{
		"VERDICT_NATS_URL":          "nats://" + deployFreeAddr(t),
		"VERDICT_CLICKHOUSE_ADDR":   deployFreeAddr(t),
		"VERDICT_CLICKHOUSE_LOCAL":  string(eng),
		"VERDICT_HTTP_ADDR":         deployFreeAddr(t),
		"VERDICT_DATA_DIR":          t.TempDir(),
		"VERDICT_INGEST_BATCH_WAIT": "100ms",
	}}
	s.start(t)
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	addr := s.env["VERDICT_CLICKHOUSE_ADDR"]
	w, err := warehouse.Open(ctx, warehouse.Config{Addr: addr})
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()

	exposures := func(from, n int) []event.Event {
		var evs []event.Event
		for i := from; i < from+n; i++ {
			evs = append(evs, event.Event{Type: event.Exposure, ID: fmt.Sprintf("x-%d", i), TS: time.Now().UTC(),
				Unit: fmt.Sprintf("u-%d", i), Experiment: "restart", Variant: "control"})
		}
		return evs
	}
	landed := func(want uint64) {
		t.Helper()
		var got uint64
		for ctx.Err() == nil {
			row := w.Conn().QueryRow(ctx, "SELECT toUInt64(count()) FROM verdict.exposures FINAL WHERE experiment = 'restart'")
			if row.Scan(&got) == nil && got == want {
				return
			}
			time.Sleep(200 * time.Millisecond)
		}
		t.Fatalf("exposures in ClickHouse: %d, want %d", got, want)
	}
	restarts := func(want int) {
		t.Helper()
		metric := regexp.MustCompile(`(?m)^verdict_clickhouse_local_restarts_total (\d+)$`)
		var got string
		for ctx.Err() == nil {
			resp, err := http.Get("http://" + s.env["VERDICT_HTTP_ADDR"] + "/metrics")
			if err == nil {
				b, _ := io.ReadAll(resp.Body)
				resp.Body.Close()
				if m := metric.FindStringSubmatch(string(b)); m != nil {
					if got = m[1]; got == strconv.Itoa(want) {
						return
					}
				}
			}
			time.Sleep(200 * time.Millisecond)
		}
		t.Fatalf("verdict_clickhouse_local_restarts_total = %q, want %d", got, want)
	}
	started := regexp.MustCompile(`msg="clickhouse starting".* pid=(\d+)`)
	pid := func() int {
		m := started.FindAllStringSubmatch(s.log.String(), -1)
		if m == nil {
			t.Fatal("no pid of the local clickhouse in up's log")
		}
		p, _ := strconv.Atoi(m[len(m)-1][1])
		return p
	}

	s.publish(t, exposures(0, 10))
	landed(10)
	restarts(0)
	first := pid()
	if err := syscall.Kill(first, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	restarts(1)
	if pid() == first {
		t.Fatalf("restarted, but the log names no new process")
	}
	s.publish(t, exposures(10, 10))
	landed(20)

	if eng == warehouse.ChDB {
		// A wrong password ends chDB's process: up starts it again.
		badCtx, cancelBad := context.WithTimeout(ctx, 5*time.Second)
		bad, err := warehouse.Open(badCtx, warehouse.Config{Addr: addr, Password: "wrong"})
		cancelBad()
		if err == nil {
			bad.Close()
		}
		restarts(2)
		s.publish(t, exposures(20, 10))
		landed(30)
	}
	if strings.Contains(s.log.String(), "start local clickhouse again") {
		t.Logf("a start was retried:\n%s", s.log.String())
	}
}
