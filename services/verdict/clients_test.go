package main

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/verdictlabs/verdict/pkg/config"
	"github.com/verdictlabs/verdict/pkg/stats"
	"github.com/verdictlabs/verdict/pkg/stream"
	"github.com/verdictlabs/verdict/pkg/warehouse"
	"github.com/verdictlabs/verdict/pkg/warehouse/warehousetest"
)

// TestOfficialClients points the official client libraries from npm,
// unchanged (testdata/node: Segment's Node library, RudderStack's Node SDK,
// GrowthBook's JS SDK reporting exposures through Segment), at verdict up's
// HTTP ingest while JetStream refuses writes for its first two seconds:
// the libraries retry on the 503s, every exposure and purchase lands in
// ClickHouse exactly once although some are sent twice, a client with a
// wrong write key stores nothing, and the experiment gets its readout. `make test-deps` installs
// the libraries (npm ci).
func TestOfficialClients(t *testing.T) { warehousetest.Run(t, testOfficialClients) }

func testOfficialClients(t *testing.T, eng warehouse.Engine) {
	dir, _ := filepath.Abs(filepath.Join("testdata", "node"))
	node, err := exec.LookPath("node")
	if err != nil {
		t.Fatal("node is not installed: the official client libraries need it (apt-get install nodejs)")
	}
	if _, err := os.Stat(filepath.Join(dir, "node_modules", "@segment", "analytics-node")); err != nil {
		t.Fatalf("the client libraries are not installed in %s: run make test-deps (npm ci there)", dir)
	}
	s := &lifecycleStack{env: map[string]string{
		"VERDICT_NATS_URL":          "nats://" + deployFreeAddr(t),
		"VERDICT_CLICKHOUSE_ADDR":   deployFreeAddr(t),
		"VERDICT_CLICKHOUSE_LOCAL":  string(eng),
		"VERDICT_HTTP_ADDR":         deployFreeAddr(t),
		"VERDICT_DATA_DIR":          t.TempDir(),
		"VERDICT_RULES_INTERVAL":    "1s",
		"VERDICT_DECISION_HOLD":     "0",
		"VERDICT_INGEST_BATCH_WAIT": "200ms",
		"VERDICT_LOG_LEVEL":         "warn",
		"VERDICT_WRITE_KEYS":        "wk-test-1,wk-test-2",
	}}
	s.start(t)
	defs := config.Definitions{
		Metrics: []config.Metric{
			{Key: "conversion", Kind: stats.Proportion, Event: "order_completed", Direction: config.Increase},
			{Key: "revenue", Kind: stats.Mean, Event: "order_completed", Aggregate: config.Sum, Direction: config.Increase},
		},
		Experiments: []config.Experiment{{
			Key: "gb-checkout", Owners: []string{"gb@example.com"},
			Variants: []config.Variant{{Key: "control", Weight: 0.5}, {Key: "one-page", Weight: 0.5}}, Control: "control",
			Primary: []string{"conversion"}, Secondary: []string{"revenue"}, Segments: []string{"os"},
			MDE: 0.2, Alpha: 0.05, Power: 0.8, Sequential: true, Tuning: 5000,
			AttributionWindow: config.Duration(24 * time.Hour), Start: time.Now().UTC().Add(-time.Hour).Truncate(time.Second),
		}},
	}
	file := filepath.Join(t.TempDir(), "definitions.json")
	b, _ := json.Marshal(defs)
	if err := os.WriteFile(file, b, 0o644); err != nil {
		t.Fatal(err)
	}
	var out, errOut bytes.Buffer
	if err := run(context.Background(), []string{"apply", "-f", file}, s.getenv, strings.NewReader(""), &out, &errOut); err != nil {
		t.Fatalf("verdict apply: %v\n%s%s", err, out.String(), errOut.String())
	}

	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()

	// JetStream refuses the first requests: the stream takes no subjects
	// until the gateway has answered 503 (or for 30 s at most), and the
	// libraries retry.
	nc, err := nats.Connect(s.env["VERDICT_NATS_URL"])
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	js, _ := jetstream.New(nc)
	events, err := js.Stream(ctx, stream.EventsStream)
	if err != nil {
		t.Fatal(err)
	}
	cfg := events.CachedInfo().Config
	paused := cfg
	paused.Subjects = []string{"verdict.paused.>"}
	if _, err := js.UpdateStream(ctx, paused); err != nil {
		t.Fatal(err)
	}
	resumed := make(chan error, 1)
	refusedOnce := regexp.MustCompile(`verdict_gateway_requests_total\{code="503",endpoint="batch"\} [1-9]`)
	go func() {
		for end := time.Now().Add(30 * time.Second); time.Now().Before(end); time.Sleep(50 * time.Millisecond) {
			resp, err := http.Get("http://" + s.env["VERDICT_HTTP_ADDR"] + "/metrics")
			if err != nil {
				continue
			}
			m, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if refusedOnce.Match(m) {
				break
			}
		}
		_, err := js.UpdateStream(ctx, cfg)
		resumed <- err
	}()

	cmd := exec.CommandContext(ctx, node, "clients.mjs")
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "VERDICT_URL=http://"+s.env["VERDICT_HTTP_ADDR"], "WRITE_KEY=wk-test-2", "EXPERIMENT=gb-checkout", "UNITS=2000")
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	stdout, err := cmd.Output()
	if err != nil {
		t.Fatalf("node clients.mjs: %v\n%s", err, stderr.String())
	}
	if err := <-resumed; err != nil {
		t.Fatal(err)
	}
	var sent struct {
		Exposures, Purchases, Products []string
		Duplicates, Refused            int
		Errors                         []string
	}
	if err := json.Unmarshal(stdout, &sent); err != nil {
		t.Fatalf("node clients.mjs printed %q: %v\n%s", stdout, err, stderr.String())
	}
	t.Logf("sent %d exposures, %d purchases (Segment), %d products (RudderStack), %d duplicates; %d refused with the wrong key",
		len(sent.Exposures), len(sent.Purchases), len(sent.Products), sent.Duplicates, sent.Refused)
	if len(sent.Errors) > 0 || sent.Refused == 0 || sent.Duplicates == 0 {
		t.Errorf("client errors %q, %d refused, %d duplicates; want no errors, refusals of the wrong key, and duplicates", sent.Errors, sent.Refused, sent.Duplicates)
	}

	resp, err := http.Get("http://" + s.env["VERDICT_HTTP_ADDR"] + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	metrics, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	for _, code := range []string{"503", "401", "200"} {
		if !regexp.MustCompile(`verdict_gateway_requests_total\{code="` + code + `",endpoint="batch"\} [1-9]`).Match(metrics) {
			t.Errorf("/metrics has no batch answered %s: the test wants refusals while JetStream was paused, of the wrong key, and successes", code)
		}
	}

	wh, err := warehouse.Dial(ctx, warehouse.Config{Addr: s.env["VERDICT_CLICKHOUSE_ADDR"], Database: "verdict"}, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer wh.Close()
	ids := func(q string) []string {
		t.Helper()
		rows, err := wh.Conn().Query(ctx, q)
		if err != nil {
			t.Fatal(err)
		}
		defer rows.Close()
		var out []string
		for rows.Next() {
			var id string
			if err := rows.Scan(&id); err != nil {
				t.Fatal(err)
			}
			out = append(out, id)
		}
		slices.Sort(out)
		return out
	}
	wantTracks := slices.Sorted(slices.Values(slices.Concat(sent.Purchases, sent.Products)))
	wantExposures := slices.Sorted(slices.Values(sent.Exposures))
	deadline := time.Now().Add(time.Minute)
	for {
		// Every row, copies included: exactly once means no copy at all.
		exposures := ids("SELECT event_id FROM verdict.exposures")
		tracks := ids("SELECT event_id FROM verdict.events")
		if slices.Equal(exposures, wantExposures) && slices.Equal(tracks, wantTracks) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("ClickHouse holds %d exposures and %d track events; want exactly the %d and %d sent, each once", len(exposures), len(tracks), len(wantExposures), len(wantTracks))
		}
		time.Sleep(500 * time.Millisecond)
	}
	if n := ids("SELECT event_id FROM verdict.events WHERE unit_id LIKE 'intruder-%'"); len(n) > 0 {
		t.Errorf("%d events of the wrong write key are stored", len(n))
	}
	for {
		r, ok := s.readout(t, "gb-checkout")
		var full struct{ Progress struct{ Units int } }
		if ok {
			resp, err := http.Get("http://" + s.env["VERDICT_HTTP_ADDR"] + "/v1/experiments/gb-checkout/readout")
			if err == nil {
				_ = json.NewDecoder(resp.Body).Decode(&full)
				resp.Body.Close()
			}
		}
		if ok && full.Progress.Units == len(sent.Exposures) {
			t.Logf("readout: %s %s: %s", r.Status, r.Label, r.Summary)
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("no readout of gb-checkout over the %d exposed units (last: %+v, %d units)", len(sent.Exposures), r, full.Progress.Units)
		}
		time.Sleep(500 * time.Millisecond)
	}
}
