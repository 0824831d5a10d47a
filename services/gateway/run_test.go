package main

import (
	"context"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/verdictlabs/verdict/pkg/stream"
	"github.com/verdictlabs/verdict/pkg/stream/streamtest"
)

// TestRun starts the gateway through run against a real NATS server: a
// batch with the write key lands in VERDICT_EVENTS and shows in the
// metrics; a wrong key is refused.
func TestRun(t *testing.T) {
	s := streamtest.Run(t)
	_, js := streamtest.Connect(t, s)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	httpAddr := ln.Addr().String()
	ln.Close()
	env := map[string]string{"VERDICT_NATS_URL": s.URL(), "VERDICT_HTTP_ADDR": httpAddr, "VERDICT_WRITE_KEYS": "k1,k2", "VERDICT_METRICS_TOKEN": "m-token"}
	ctx, cancel := context.WithCancel(context.Background())
	errc := make(chan error, 1)
	go func() { errc <- run(ctx, nil, func(k string) string { return env[k] }, io.Discard) }()
	defer func() {
		cancel()
		if err := <-errc; err != nil {
			t.Errorf("run: %v", err)
		}
	}()
	post := func(key string) int {
		req, _ := http.NewRequest(http.MethodPost, "http://"+httpAddr+"/v1/batch",
			strings.NewReader(`{"batch":[{"type":"track","event":"Order Completed","messageId":"m1","userId":"u1","properties":{"revenue":5}}]}`))
		req.SetBasicAuth(key, "")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			return 0
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	deadline := time.Now().Add(30 * time.Second)
	for post("k2") != http.StatusOK {
		if time.Now().After(deadline) {
			t.Fatal("the gateway did not accept a batch within 30s")
		}
		time.Sleep(100 * time.Millisecond)
	}
	if code := post("wrong"); code != http.StatusUnauthorized {
		t.Errorf("wrong key: %d, want 401", code)
	}
	st, err := js.Stream(ctx, stream.EventsStream)
	if err != nil {
		t.Fatal(err)
	}
	info, err := st.Info(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if info.State.Msgs != 1 {
		t.Errorf("VERDICT_EVENTS holds %d messages, want 1", info.State.Msgs)
	}
	resp, err := http.Get("http://" + httpAddr + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusUnauthorized {
		t.Errorf("/metrics without VERDICT_METRICS_TOKEN's token: %d, want 401", resp.StatusCode)
	}
	req, _ := http.NewRequest(http.MethodGet, "http://"+httpAddr+"/metrics", nil)
	req.Header.Set("Authorization", "Bearer m-token")
	resp, err = http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	for _, want := range []string{`verdict_gateway_requests_total{code="200",endpoint="batch"}`, `verdict_gateway_requests_total{code="401",endpoint="batch"} 1`, `verdict_gateway_messages_total{outcome="accepted"} 1`} {
		if !strings.Contains(string(b), want) {
			t.Errorf("/metrics lacks %s", want)
		}
	}
}
