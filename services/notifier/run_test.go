package main

import (
	"context"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/verdictlabs/verdict/pkg/configstore"
	"github.com/verdictlabs/verdict/pkg/rules"
	"github.com/verdictlabs/verdict/pkg/simulate"
	"github.com/verdictlabs/verdict/pkg/stream"
	"github.com/verdictlabs/verdict/pkg/stream/streamtest"
	"github.com/verdictlabs/verdict/pkg/testkit"
)

// TestRun starts the notifier through run without SMTP: a salvage readout
// becomes one .eml file in $VERDICT_DATA_DIR/outbox.
func TestRun(t *testing.T) {
	s := streamtest.Run(t)
	_, js := streamtest.Connect(t, s)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	httpAddr := ln.Addr().String()
	ln.Close()
	dir := t.TempDir()
	env := map[string]string{"VERDICT_NATS_URL": s.URL(), "VERDICT_DATA_DIR": dir, "VERDICT_HTTP_ADDR": httpAddr, "VERDICT_SMTP_PASSWORD": "hunter2", "VERDICT_SMTP_USERNAME": "u"}
	ctx, cancel := context.WithCancel(context.Background())
	var logs strings.Builder
	errc := make(chan error, 1)
	go func() { errc <- run(ctx, nil, func(k string) string { return env[k] }, &syncWriter{w: &logs}) }()
	defer func() {
		cancel()
		if err := <-errc; err != nil {
			t.Errorf("run: %v", err)
		}
		if strings.Contains(logs.String(), "hunter2") {
			t.Errorf("the SMTP password is in the log")
		}
		if t.Failed() {
			t.Logf("the notifier's log:\n%s", logs.String())
		}
	}()
	waitFor(t, "/readyz", func() bool {
		resp, err := http.Get("http://" + httpAddr + "/readyz")
		if err != nil {
			return false
		}
		resp.Body.Close()
		return resp.StatusCode == 200
	})
	// The notifier emails the owners of the stored definition only.
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
	b, err := os.ReadFile("../../pkg/report/testdata/readouts/salvage_dark_mode_android.json")
	if err != nil {
		t.Fatal(err)
	}
	// The rules service takes a readout in verdict_decisions before it
	// publishes it; the notifier acts only on readouts found there.
	var ro struct{ Version uint64 }
	if err := json.Unmarshal(b, &ro); err != nil {
		t.Fatal(err)
	}
	states, err := rules.EnsureStateBucket(context.Background(), js, 0)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := states.Put(context.Background(), rules.State{Experiment: "dark-mode", Version: ro.Version, Readout: b}, 0); err != nil {
		t.Fatal(err)
	}
	m := nats.NewMsg(stream.ReadoutsPrefix + "dark-mode")
	m.Data = b
	m.Header.Set(nats.MsgIdHdr, "dark-mode.1")
	if _, err := js.PublishMsg(context.Background(), m); err != nil {
		t.Fatal(err)
	}
	var files []string
	waitFor(t, "an email in the outbox", func() bool {
		files, _ = filepath.Glob(filepath.Join(dir, "outbox", "*.eml"))
		return len(files) == 1
	})
	// The counter is incremented after the file is written: wait for it
	// rather than scrape once.
	waitFor(t, "verdict_emails_sent_total 1 on /metrics", func() bool {
		resp, err := http.Get("http://" + httpAddr + "/metrics")
		if err != nil {
			return false
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		return strings.Contains(string(body), "verdict_emails_sent_total 1")
	})
}

func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	testkit.WaitFor(t, 20*time.Second, 50*time.Millisecond, func() (bool, string) { return cond(), "waiting for " + what })
}

// syncWriter serialises writes from the service's goroutines.
type syncWriter struct {
	mu sync.Mutex
	w  io.Writer
}

func (s *syncWriter) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.w.Write(p)
}
