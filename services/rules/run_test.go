package main

import (
	"context"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/verdictlabs/verdict/pkg/configstore"
	"github.com/verdictlabs/verdict/pkg/simulate"
	"github.com/verdictlabs/verdict/pkg/stream/streamtest"
	"github.com/verdictlabs/verdict/pkg/warehouse"
	"github.com/verdictlabs/verdict/pkg/warehouse/warehousetest"
)

// TestRun starts the rules service through run against real NATS and
// ClickHouse, applies definitions, and reads a readout of every experiment
// back from its API, its page and its metrics.
func TestRun(t *testing.T) { warehousetest.Run(t, testRun) }

func testRun(t *testing.T, eng warehouse.Engine) {
	s := streamtest.Run(t)
	_, js := streamtest.Connect(t, s)
	ch := warehousetest.StartServer(t, eng)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	httpAddr := ln.Addr().String()
	ln.Close()
	env := map[string]string{
		"VERDICT_NATS_URL": s.URL(), "VERDICT_CLICKHOUSE_ADDR": ch.Addr,
		"VERDICT_HTTP_ADDR": httpAddr, "VERDICT_RULES_INTERVAL": "1s",
	}
	ctx, cancel := context.WithCancel(context.Background())
	errc := make(chan error, 1)
	go func() { errc <- run(ctx, nil, func(k string) string { return env[k] }, io.Discard) }()
	defer func() {
		cancel()
		if err := <-errc; err != nil {
			t.Errorf("run: %v", err)
		}
	}()

	defs, err := simulate.DemoDefinitions(time.Now().Add(-time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	kv, err := configstore.EnsureBucket(context.Background(), js, 0)
	if err != nil {
		t.Fatal(err)
	}
	if err := configstore.Apply(context.Background(), kv, defs); err != nil {
		t.Fatal(err)
	}

	get := func(path string) (int, string) {
		resp, err := http.Get("http://" + httpAddr + path)
		if err != nil {
			return 0, err.Error()
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	var list struct {
		Experiments []struct{ Experiment, Status string } `json:"experiments"`
	}
	deadline := time.Now().Add(60 * time.Second)
	for {
		code, body := get("/v1/experiments")
		if code == http.StatusOK {
			if err := json.Unmarshal([]byte(body), &list); err != nil {
				t.Fatalf("GET /v1/experiments: %v in %s", err, body)
			}
			if len(list.Experiments) == len(defs.Experiments) {
				break
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("GET /v1/experiments = %d %s; want a readout of each of %d experiments", code, body, len(defs.Experiments))
		}
		time.Sleep(200 * time.Millisecond)
	}
	for _, e := range list.Experiments {
		if e.Status != "collecting" {
			t.Errorf("%s: status %q without any events, want collecting", e.Experiment, e.Status)
		}
	}
	if code, body := get("/experiments/dark-mode"); code != http.StatusOK || !strings.Contains(body, "Dark mode") {
		t.Errorf("GET /experiments/dark-mode = %d, want 200 with the experiment's name", code)
	}
	// Unknown experiments, through the real wiring: rules.Handle over the
	// ClickHouse readouts.
	for _, path := range []string{"/v1/experiments/no-such/readout", "/experiments/no-such"} {
		if code, body := get(path); code != http.StatusNotFound {
			t.Errorf("GET %s = %d %s, want 404", path, code, body)
		}
	}
	if _, body := get("/metrics"); !strings.Contains(body, `verdict_readouts_total{label="none"}`) {
		t.Errorf("/metrics lacks verdict_readouts_total{label=\"none\"}")
	}
}
