package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/verdictlabs/verdict/pkg/readout"
	"github.com/verdictlabs/verdict/pkg/stream"
	"github.com/verdictlabs/verdict/pkg/tlstest"
	"github.com/verdictlabs/verdict/pkg/warehouse"
	"github.com/verdictlabs/verdict/pkg/warehouse/warehousetest"
)

// TestLockedDown is the security settings' acceptance run in one piece.
// verdict up runs its embedded NATS from deploy/nats/embedded.conf (an
// account with the users verdict, producer and reader) over TLS, reaches a
// ClickHouse that wants a password over TLS, and guards its API with a
// token and its HTTP ingest with a write key. Product traffic arrives as the
// producer user and a readout comes out end to end. Without credentials,
// NATS, ClickHouse, the API and HTTP ingest refuse, and nothing refused is
// stored; the producer cannot publish a readout; a readout forged by a user
// who may publish one mails nobody outside the stored owners; no planted
// secret shows in the log or on any endpoint.
func TestLockedDown(t *testing.T) {
	warehousetest.RunServerOnly(t, "has no users, passwords or TLS listener", testLockedDown)
}

func testLockedDown(t *testing.T, eng warehouse.Engine) {
	const planted = "planted-secret-0815"
	natsPW, producerPW, readerPW := planted+"-nats", planted+"-producer", planted+"-reader"
	chPW, apiToken, writeKey := planted+"-ch", planted+"-api", planted+"-key"
	// The config file reads the passwords from the environment.
	t.Setenv("VERDICT_NATS_PASSWORD", natsPW)
	t.Setenv("VERDICT_NATS_PRODUCER_PASSWORD", producerPW)
	t.Setenv("VERDICT_NATS_READER_PASSWORD", readerPW)
	cert := tlstest.New(t)
	example, err := os.ReadFile("../../deploy/nats/embedded.conf")
	if err != nil {
		t.Fatal(err)
	}
	conf := filepath.Join(t.TempDir(), "nats.conf")
	example = fmt.Appendf(example, "\ntls {\n  cert_file: %q\n  key_file: %q\n}\n", cert.CertFile, cert.KeyFile)
	if err := os.WriteFile(conf, example, 0o600); err != nil {
		t.Fatal(err)
	}

	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	chPlain, chSecure := deployFreeAddr(t), deployFreeAddr(t)
	_, securePort, _ := net.SplitHostPort(chSecure)
	port, _ := strconv.Atoi(securePort)
	local, err := warehouse.StartLocal(ctx, warehouse.LocalConfig{Addr: chPlain, DataDir: t.TempDir(), User: "verdict", Password: chPW,
		TLS: &warehouse.LocalTLS{Port: port, CertFile: cert.CertFile, KeyFile: cert.KeyFile}})
	if err != nil {
		t.Fatal(err)
	}
	defer local.Stop(context.Background())

	natsURL := "nats://" + deployFreeAddr(t)
	s := &lifecycleStack{env: map[string]string{
		"VERDICT_NATS_URL":            natsURL,
		"VERDICT_NATS_SERVER_CONFIG":  conf,
		"VERDICT_NATS_USER":           "verdict",
		"VERDICT_NATS_PASSWORD":       natsPW,
		"VERDICT_NATS_TLS_CA":         cert.CertFile,
		"VERDICT_CLICKHOUSE_ADDR":     chSecure,
		"VERDICT_CLICKHOUSE_TLS":      "1",
		"VERDICT_CLICKHOUSE_TLS_CA":   cert.CertFile,
		"VERDICT_CLICKHOUSE_USER":     "verdict",
		"VERDICT_CLICKHOUSE_PASSWORD": chPW,
		"VERDICT_API_TOKENS":          apiToken,
		"VERDICT_WRITE_KEYS":          writeKey,
		"VERDICT_HTTP_ADDR":           deployFreeAddr(t),
		"VERDICT_DATA_DIR":            t.TempDir(),
		"VERDICT_RULES_INTERVAL":      "1s",
		"VERDICT_DECISION_HOLD":       "0",
		"VERDICT_INGEST_BATCH_WAIT":   "200ms",
		"VERDICT_LOG_LEVEL":           "debug",
	}}
	s.start(t)

	truths := lifecycleScenarios("locked-")[:1] // the clear win
	key := truths[0].scenario.Experiment
	defs := lifecycleDefinitions(truths, time.Now().UTC().Add(-2*time.Hour).Truncate(time.Second))
	file := filepath.Join(t.TempDir(), "defs.json")
	writeJSON(t, file, defs)
	var out, errOut bytes.Buffer
	if err := run(ctx, []string{"apply", "-f", file}, s.getenv, strings.NewReader(""), &out, &errOut); err != nil {
		t.Fatalf("verdict apply: %v\n%s%s", err, out.String(), errOut.String())
	}

	// NATS: no credentials, no connection.
	if nc, err := nats.Connect(natsURL, nats.RootCAs(cert.CertFile), nats.Timeout(5*time.Second)); err == nil {
		nc.Close()
		t.Error("a NATS client without credentials connected")
	} else if !strings.Contains(strings.ToLower(err.Error()), "authorization") {
		t.Errorf("a NATS client without credentials: %v, want an authorization violation", err)
	}
	// Without TLS the server does not talk at all.
	if nc, err := nats.Connect(natsURL, nats.UserInfo("producer", producerPW), nats.Timeout(5*time.Second)); err == nil {
		nc.Close()
		t.Error("a NATS client without the CA connected")
	}

	// The producer publishes the product's traffic, and nothing else.
	violations := make(chan error, 16)
	producer, err := nats.Connect(natsURL, nats.UserInfo("producer", producerPW), nats.RootCAs(cert.CertFile),
		nats.CustomInboxPrefix("_INBOX_producer"),
		nats.ErrorHandler(func(_ *nats.Conn, _ *nats.Subscription, err error) { violations <- err }))
	if err != nil {
		t.Fatalf("connect as producer: %v", err)
	}
	defer producer.Close()
	pjs, err := jetstream.New(producer)
	if err != nil {
		t.Fatal(err)
	}
	exposures, tracks := lifecycleTraffic(truths, 3000, time.Now().Add(-90*time.Minute), time.Hour, 7)
	published := len(exposures) + len(tracks)
	for _, e := range append(exposures, tracks...) {
		m, _ := stream.EventMsg(e.AppendJSON(nil))
		if _, err := pjs.PublishMsgAsync(m, jetstream.WithStallWait(time.Minute)); err != nil {
			t.Fatalf("publish as producer: %v", err)
		}
	}
	select {
	case <-pjs.PublishAsyncComplete():
	case <-time.After(time.Minute):
		t.Fatal("the producer's events were not acknowledged within a minute")
	}
	if n := pjs.PublishAsyncPending(); n != 0 {
		t.Fatalf("%d of the producer's events unacknowledged", n)
	}
	forged, _ := json.Marshal(readout.Readout{Experiment: key, Version: 1_000_000, Status: readout.Decided, Label: readout.Pivot,
		Summary: "forged", Owners: []string{"mallory@evil.example"}})
	if err := producer.Publish("verdict.readouts."+key, forged); err != nil {
		t.Fatal(err)
	}
	producer.Flush()
	select {
	case err := <-violations:
		if !strings.Contains(strings.ToLower(err.Error()), "permissions violation") {
			t.Errorf("the producer's readout: %v, want a permissions violation", err)
		}
	case <-time.After(10 * time.Second):
		t.Error("the producer published a readout without a permissions violation")
	}

	// Neither the producer nor the reader may read the account's inboxes,
	// where every reply to verdict's services comes (the events ingest
	// fetches, the definitions and decision state it reads), nor the KV
	// buckets.
	readerViolations := make(chan error, 16)
	reader, err := nats.Connect(natsURL, nats.UserInfo("reader", readerPW), nats.RootCAs(cert.CertFile),
		nats.ErrorHandler(func(_ *nats.Conn, _ *nats.Subscription, err error) { readerViolations <- err }))
	if err != nil {
		t.Fatalf("connect as reader: %v", err)
	}
	defer reader.Close()
	for _, c := range []struct {
		who        string
		nc         *nats.Conn
		violations chan error
		subject    string
	}{
		{"producer", producer, violations, "_INBOX.>"},
		{"producer", producer, violations, "$KV.verdict_config.>"},
		{"reader", reader, readerViolations, "_INBOX.>"},
		{"reader", reader, readerViolations, "$KV.>"},
		{"reader", reader, readerViolations, "verdict.events.>"},
	} {
		sub, err := c.nc.SubscribeSync(c.subject)
		if err == nil {
			c.nc.Flush()
			select {
			case err = <-c.violations:
			case <-time.After(5 * time.Second):
			}
			sub.Unsubscribe()
		}
		if err == nil || !strings.Contains(strings.ToLower(err.Error()), "permissions violation") {
			t.Errorf("%s subscribing to %s: %v, want a permissions violation", c.who, c.subject, err)
		}
	}

	// HTTP: the API wants the token, ingest wants a write key.
	base := "http://" + s.env["VERDICT_HTTP_ADDR"]
	do := func(method, path, token string, basicUser string, body string) (int, string) {
		req, _ := http.NewRequest(method, base+path, strings.NewReader(body))
		if token != "" {
			req.Header.Set("Authorization", "Bearer "+token)
		}
		if basicUser != "" {
			req.SetBasicAuth(basicUser, "")
		}
		req.Header.Set("Content-Type", "application/json")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		return resp.StatusCode, string(b)
	}
	batch := func(event string) string {
		return fmt.Sprintf(`{"batch":[{"type":"track","event":%q,"userId":"u-http","messageId":%q,"timestamp":%q}]}`,
			event, "m-"+event, time.Now().UTC().Format(time.RFC3339))
	}
	for _, tc := range []struct {
		method, path, token, user, body string
		want                            int
	}{
		{"GET", "/v1/experiments", "", "", "", 401},
		{"GET", "/v1/experiments/" + key + "/readouts", "wrong", "", "", 401},
		{"GET", "/experiments/" + key, "", "", "", 401},
		{"POST", "/v1/batch", "", "", batch("refused_nokey"), 401},
		{"POST", "/v1/batch", "", "wrong-key", batch("refused_badkey"), 401},
		{"POST", "/v1/batch", "", writeKey, batch("accepted_key"), 200},
		{"GET", "/v1/experiments", apiToken, "", "", 200},
	} {
		if code, body := do(tc.method, tc.path, tc.token, tc.user, tc.body); code != tc.want {
			t.Errorf("%s %s (token %q, key %q) = %d %s, want %d", tc.method, tc.path, tc.token, tc.user, code, body, tc.want)
		}
	}

	// Readouts come out end to end, and the one email goes to the owner.
	s.settle(t, truths, 2*time.Minute)

	// A readout forged by a user who may publish readouts (verdict's own)
	// mails only the stored owners: never mallory.
	insider, err := nats.Connect(natsURL, nats.UserInfo("verdict", natsPW), nats.RootCAs(cert.CertFile))
	if err != nil {
		t.Fatal(err)
	}
	ijs, _ := jetstream.New(insider)
	if _, err := ijs.Publish(ctx, "verdict.readouts."+key, forged); err != nil {
		t.Fatalf("publish a readout as verdict: %v", err)
	}
	insider.Close()

	// ClickHouse: no password, a wrong one, or no TLS: no connection.
	for _, cfg := range []warehouse.Config{
		{Addr: chSecure, TLS: true, TLSCA: cert.CertFile, Username: "verdict"},
		{Addr: chSecure, TLS: true, TLSCA: cert.CertFile, Username: "verdict", Password: "wrong"},
		{Addr: chPlain, Username: "default"},
	} {
		shortCtx, cancelShort := context.WithTimeout(ctx, 15*time.Second)
		if w, err := warehouse.Open(shortCtx, cfg); err == nil {
			w.Close()
			t.Errorf("ClickHouse let in %q with password %q (TLS %v)", cfg.Username, cfg.Password, cfg.TLS)
		}
		cancelShort()
	}
	// Every event the producer published is stored once; what HTTP refused
	// is not stored at all.
	w, err := warehouse.Open(ctx, warehouse.Config{Addr: chSecure, TLS: true, TLSCA: cert.CertFile, Username: "verdict", Password: chPW, Database: "verdict"})
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	count := func(q string) uint64 {
		t.Helper()
		var n uint64
		if err := w.Conn().QueryRow(ctx, q).Scan(&n); err != nil {
			t.Fatalf("%s: %v", q, err)
		}
		return n
	}
	stored := count("SELECT count() FROM verdict.exposures FINAL WHERE experiment = '"+key+"'") +
		count("SELECT count() FROM verdict.events FINAL WHERE unit_id != 'u-http'")
	if stored != uint64(published) {
		t.Errorf("ClickHouse holds %d of the producer's events, want %d", stored, published)
	}
	for event, want := range map[string]uint64{"refused_nokey": 0, "refused_badkey": 0, "accepted_key": 1} {
		if n := count("SELECT count() FROM verdict.events FINAL WHERE event = '" + event + "'"); n != want {
			t.Errorf("events named %s stored: %d, want %d", event, n, want)
		}
	}

	// Let the notifier see the insider's readout, then look at the outbox.
	time.Sleep(3 * time.Second)
	for owner := range s.emails(t) {
		if strings.Contains(owner, "evil.example") {
			t.Errorf("the forged readout mailed %s", owner)
		}
	}

	// No planted secret on any endpoint, with or without the token, nor in
	// the log.
	for _, path := range []string{"/readyz", "/healthz", "/metrics", "/v1/experiments", "/v1/experiments/" + key + "/readout",
		"/v1/experiments/" + key + "/readouts", "/experiments", "/experiments/" + key} {
		for _, token := range []string{"", apiToken} {
			if _, body := do("GET", path, token, "", ""); strings.Contains(body, planted) {
				t.Errorf("GET %s shows a planted secret", path)
			}
		}
	}
	s.stop()
	if strings.Contains(s.log.String(), planted) {
		t.Errorf("verdict up's log shows a planted secret:\n%s", s.log.String())
	}
}
