package main

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/verdictlabs/verdict/pkg/notifier"
	"github.com/verdictlabs/verdict/pkg/warehouse"
	"github.com/verdictlabs/verdict/pkg/warehouse/warehousetest"
)

// TestWebhooksEndToEnd: verdict up with VERDICT_WEBHOOKS and
// VERDICT_WEBHOOK_SECRET, experiments with known truths streamed in; a real
// local receiver gets exactly one delivery per decision, each signed, each
// the readout of its experiment's decision, and none again after a restart.
func TestWebhooksEndToEnd(t *testing.T) { warehousetest.Run(t, testWebhooksEndToEnd) }

func testWebhooksEndToEnd(t *testing.T, eng warehouse.Engine) {
	const secret = "e2e-webhook-secret"
	var mu sync.Mutex
	got := map[string][]string{} // experiment → events delivered
	bad := 0
	recv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		mu.Lock()
		defer mu.Unlock()
		var ro struct {
			Experiment, Status, Label string
		}
		if notifier.Verify([]byte(secret), r.Header, body, time.Now(), 5*time.Minute) != nil || json.Unmarshal(body, &ro) != nil {
			bad++
			http.Error(w, "bad signature", http.StatusUnauthorized)
			return
		}
		got[ro.Experiment] = append(got[ro.Experiment], r.Header.Get(notifier.EventHeader)+" "+ro.Status+" "+ro.Label)
	}))
	defer recv.Close()
	s := &lifecycleStack{env: map[string]string{
		"VERDICT_NATS_URL":              "nats://" + deployFreeAddr(t),
		"VERDICT_CLICKHOUSE_ADDR":       deployFreeAddr(t),
		"VERDICT_CLICKHOUSE_LOCAL":      string(eng),
		"VERDICT_HTTP_ADDR":             deployFreeAddr(t),
		"VERDICT_DATA_DIR":              t.TempDir(),
		"VERDICT_RULES_INTERVAL":        "1s",
		"VERDICT_DECISION_HOLD":         "2s",
		"VERDICT_INGEST_BATCH_WAIT":     "200ms",
		"VERDICT_LOG_LEVEL":             "warn",
		"VERDICT_WEBHOOKS":              recv.URL + "/verdict",
		"VERDICT_WEBHOOK_SECRET":        secret,
		"VERDICT_WEBHOOK_ALLOWED_HOSTS": "127.0.0.1", // the receiver is on loopback
	}}
	s.start(t)
	truths := lifecycleScenarios("hook-")[:4] // a win, a guardrail harm, a segment win, a broken split
	defs := lifecycleDefinitions(truths, time.Now().UTC().Add(-2*time.Hour).Truncate(time.Second))
	file := t.TempDir() + "/defs.json"
	writeJSON(t, file, defs)
	var out, errOut bytes.Buffer
	if err := run(context.Background(), []string{"apply", "-f", file}, s.getenv, strings.NewReader(""), &out, &errOut); err != nil {
		t.Fatalf("verdict apply: %v\n%s", err, errOut.String())
	}
	exposures, tracks := lifecycleTraffic(truths, 8000, time.Now().Add(-90*time.Minute), time.Hour, 1)
	s.publish(t, append(exposures, tracks...))
	s.settle(t, truths, 2*time.Minute)
	s.stop()
	s.start(t) // a restart sends nothing again
	time.Sleep(4 * time.Second)
	s.stop()

	mu.Lock()
	defer mu.Unlock()
	if bad > 0 {
		t.Errorf("%d deliveries with a bad signature", bad)
	}
	for _, tr := range truths {
		key := tr.scenario.Experiment
		want := "first_label decided " + strings.ToLower(tr.subject)
		if tr.subject == "INVALID" {
			want = "invalid invalid "
		}
		if d := got[key]; len(d) != 1 || d[0] != want {
			t.Errorf("%s: deliveries %q, want exactly one %q", key, d, want)
		}
	}
}
