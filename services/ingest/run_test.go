package main

import (
	"context"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/verdictlabs/verdict/pkg/event"
	"github.com/verdictlabs/verdict/pkg/stream/streamtest"
	"github.com/verdictlabs/verdict/pkg/warehouse"
	"github.com/verdictlabs/verdict/pkg/warehouse/warehousetest"
)

// TestRun starts the ingest service through run against real NATS and
// ClickHouse: a published exposure and a bad event show in its metrics.
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
		"VERDICT_HTTP_ADDR": httpAddr, "VERDICT_INGEST_BATCH_WAIT": "100ms",
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

	metrics := func() string {
		resp, err := http.Get("http://" + httpAddr + "/metrics")
		if err != nil {
			return err.Error()
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return string(b)
	}
	deadline := time.Now().Add(30 * time.Second)
	for !strings.Contains(metrics(), "verdict_events_inserted_total") {
		if time.Now().After(deadline) {
			t.Fatal("ingest did not start within 30s")
		}
		time.Sleep(100 * time.Millisecond)
	}
	ev := event.Event{Type: event.Exposure, ID: "e-1", TS: time.Now().UTC().Truncate(time.Millisecond), Unit: "u-1", Experiment: "exp", Variant: "a"}
	if _, err := js.Publish(ctx, event.SubjectExposure, ev.AppendJSON(nil)); err != nil {
		t.Fatal(err)
	}
	if _, err := js.Publish(ctx, event.SubjectTrack, []byte(`{"type":"track"`)); err != nil {
		t.Fatal(err)
	}
	want := []string{`verdict_events_inserted_total{table="exposures"} 1`, `verdict_events_invalid_total{reason="malformed_json"} 1`}
	for {
		m := metrics()
		missing := ""
		for _, w := range want {
			if !strings.Contains(m, w) {
				missing = w
			}
		}
		if missing == "" {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("/metrics lacks %s", missing)
		}
		time.Sleep(100 * time.Millisecond)
	}
}
