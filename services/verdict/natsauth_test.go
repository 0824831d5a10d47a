package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"

	"github.com/verdictlabs/verdict/pkg/stream/streamtest"
	"github.com/verdictlabs/verdict/pkg/warehouse"
	"github.com/verdictlabs/verdict/pkg/warehouse/warehousetest"
)

// TestSecuredNATS runs verdict up against a nats-server that wants a user
// and a password over TLS: verdict apply, publish and every service
// connect with VERDICT_NATS_USER, _PASSWORD and _TLS_CA, a readout is made
// end to end, and a client without the credentials is refused.
func TestSecuredNATS(t *testing.T) { warehousetest.Run(t, testSecuredNATS) }

func testSecuredNATS(t *testing.T, eng warehouse.Engine) {
	ca, tc := streamtest.SelfSigned(t)
	url := streamtest.RunSecure(t, &server.Options{Username: "verdict", Password: "nats-pw-secret", TLSConfig: tc, TLS: true, TLSTimeout: 2})
	s := &lifecycleStack{env: map[string]string{
		"VERDICT_NATS_URL":          url,
		"VERDICT_NATS_EXTERNAL":     "1", // the secured server is ours: send it the credentials
		"VERDICT_NATS_USER":         "verdict",
		"VERDICT_NATS_PASSWORD":     "nats-pw-secret",
		"VERDICT_NATS_TLS_CA":       ca,
		"VERDICT_CLICKHOUSE_ADDR":   deployFreeAddr(t),
		"VERDICT_CLICKHOUSE_LOCAL":  string(eng),
		"VERDICT_HTTP_ADDR":         deployFreeAddr(t),
		"VERDICT_DATA_DIR":          t.TempDir(),
		"VERDICT_RULES_INTERVAL":    "1s",
		"VERDICT_DECISION_HOLD":     "0",
		"VERDICT_INGEST_BATCH_WAIT": "200ms",
		"VERDICT_LOG_LEVEL":         "info",
	}}
	s.start(t)

	truths := lifecycleScenarios("tls-")[:1] // the clear win
	defs := lifecycleDefinitions(truths, time.Now().UTC().Add(-2*time.Hour).Truncate(time.Second))
	file := t.TempDir() + "/defs.json"
	writeJSON(t, file, defs)
	var out, errOut bytes.Buffer
	if err := run(context.Background(), []string{"apply", "-f", file}, s.getenv, strings.NewReader(""), &out, &errOut); err != nil {
		t.Fatalf("verdict apply: %v\n%s%s", err, out.String(), errOut.String())
	}
	exposures, tracks := lifecycleTraffic(truths, 3000, time.Now().Add(-90*time.Minute), time.Hour, 3)
	s.publish(t, append(exposures, tracks...))
	s.settle(t, truths, 90*time.Second)

	nc, err := nats.Connect(url, nats.RootCAs(ca), nats.Timeout(5*time.Second))
	if err == nil {
		nc.Close()
		t.Error("a client without credentials connected")
	} else if !errors.Is(err, nats.ErrAuthorization) && !strings.Contains(strings.ToLower(err.Error()), "authorization") {
		t.Errorf("a client without credentials: %v, want an authorization violation", err)
	}
	s.stop()
	if strings.Contains(s.log.String(), "nats-pw-secret") {
		t.Error("the NATS password is in verdict up's log")
	}
}

func writeJSON(t *testing.T, file string, v any) {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(file, b, 0o644); err != nil {
		t.Fatal(err)
	}
}
