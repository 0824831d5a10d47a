package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"mime"
	"net/http"
	"net/mail"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2"
	"github.com/emersion/go-smtp"
	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/verdictlabs/verdict/pkg/config"
	"github.com/verdictlabs/verdict/pkg/event"
	"github.com/verdictlabs/verdict/pkg/rules"
	"github.com/verdictlabs/verdict/pkg/stream"
	"github.com/verdictlabs/verdict/pkg/warehouse"
	"github.com/verdictlabs/verdict/pkg/warehouse/warehousetest"
)

// TestScaleOut is the scale-out on one machine, as issue 12 checks it: a
// three-node NATS cluster (real nats-server processes, streams and buckets
// with three replicas), a two-shard ClickHouse cluster (18.16, with
// Debian's ZooKeeper), and two processes of each verdict service (bin/
// ingest, bin/rules, bin/notifier). Experiments with known truths are
// published while one NATS node, one ingest worker and one rules instance
// are killed with SIGKILL. Then every event is in ClickHouse exactly once;
// the cluster's statistics, and the readouts computed from them, equal a
// single server's with the same events; each owner gets exactly one email
// (a real SMTP server counts them); and each experiment's readout versions
// on VERDICT_READOUTS and in ClickHouse are 1, 2, 3, … without a gap or a
// repeat.
func TestScaleOut(t *testing.T) {
	warehousetest.RunServerOnly(t, "has no ON CLUSTER", testScaleOut)
}

func testScaleOut(t *testing.T, eng warehouse.Engine) {
	ctx, cancel := context.WithTimeout(context.Background(), 8*time.Minute)
	defer cancel()
	bin := buildScaleOutBinaries(t)

	// NATS: three nodes, and every stream with three replicas before the
	// services start.
	var natsURLs []string
	var nodes []*scaleProc
	routes := []string{deployFreeAddr(t), deployFreeAddr(t), deployFreeAddr(t)}
	for i, route := range routes {
		client := deployFreeAddr(t)
		conf := filepath.Join(t.TempDir(), "nats.conf")
		var rs []string
		for _, r := range routes {
			rs = append(rs, "nats://"+r)
		}
		body := fmt.Sprintf("server_name: n%d\nlisten: %s\njetstream { store_dir: %q }\ncluster { name: verdict, listen: %s, routes: [%s] }\n",
			i+1, client, t.TempDir(), route, strings.Join(rs, ", "))
		if err := os.WriteFile(conf, []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
		nodes = append(nodes, startScaleProc(t, fmt.Sprintf("nats-%d", i+1), filepath.Join(bin, "nats-server"), []string{"-c", conf}, nil))
		natsURLs = append(natsURLs, "nats://"+client)
	}
	urls := strings.Join(natsURLs, ",")
	nc, js := connectCluster(t, ctx, urls)
	if err := stream.EnsureStreams(ctx, js, stream.DefaultLimits.WithReplicas(3)); err != nil {
		t.Fatal(err)
	}

	cluster := warehousetest.StartCluster(t, 2, 1)
	mail := startMailSink(t)

	env := map[string]string{
		"VERDICT_NATS_URL":             urls,
		"VERDICT_NATS_REPLICAS":        "3",
		"VERDICT_CLICKHOUSE_CLUSTER":   cluster.Name,
		"VERDICT_RULES_INTERVAL":       "1s",
		"VERDICT_DECISION_HOLD":        "5s",
		"VERDICT_INGEST_BATCH":         "1000",
		"VERDICT_INGEST_BATCH_WAIT":    "200ms",
		"VERDICT_SMTP_ADDR":            mail.addr,
		"VERDICT_SMTP_STARTTLS":        "none",
		"VERDICT_SMTP_ALLOWED_DOMAINS": "example.com",
	}
	getenv := func(k string) string { return env[k] }
	truths := lifecycleScenarios("scale-")
	defs := lifecycleDefinitions(truths, time.Now().UTC().Add(-2*time.Hour).Truncate(time.Second))
	file := filepath.Join(t.TempDir(), "defs.json")
	writeJSON(t, file, defs)
	var out, errOut bytes.Buffer
	if err := run(ctx, []string{"apply", "-f", file}, getenv, strings.NewReader(""), &out, &errOut); err != nil {
		t.Fatalf("verdict apply: %v\n%s%s", err, out.String(), errOut.String())
	}

	var ingests, ruless, notifiers []*scaleProc
	var rulesAddrs []string
	for i := range 2 {
		with := func(extra map[string]string) map[string]string {
			m := map[string]string{"VERDICT_CLICKHOUSE_ADDR": cluster.Shards[i][0], "VERDICT_HTTP_ADDR": deployFreeAddr(t), "VERDICT_DATA_DIR": t.TempDir()}
			for k, v := range env {
				m[k] = v
			}
			for k, v := range extra {
				m[k] = v
			}
			return m
		}
		ie, re, ne := with(nil), with(nil), with(nil)
		ingests = append(ingests, startScaleProc(t, fmt.Sprintf("ingest-%d", i+1), filepath.Join(bin, "ingest"), nil, ie))
		ruless = append(ruless, startScaleProc(t, fmt.Sprintf("rules-%d", i+1), filepath.Join(bin, "rules"), nil, re))
		notifiers = append(notifiers, startScaleProc(t, fmt.Sprintf("notifier-%d", i+1), filepath.Join(bin, "notifier"), nil, ne))
		rulesAddrs = append(rulesAddrs, re["VERDICT_HTTP_ADDR"])
		for _, p := range []struct {
			p    *scaleProc
			addr string
		}{{ingests[i], ie["VERDICT_HTTP_ADDR"]}, {ruless[i], re["VERDICT_HTTP_ADDR"]}, {notifiers[i], ne["VERDICT_HTTP_ADDR"]}} {
			p.p.waitReady(t, ctx, "http://"+p.addr+"/readyz")
		}
	}

	// The traffic, in time order, published in chunks; a chunk that fails
	// (a node died under it) is published again: Nats-Msg-Id keeps one copy.
	exposures, tracks := lifecycleTraffic(truths, 8000, time.Now().Add(-90*time.Minute), time.Hour, 1)
	all := slices.Concat(exposures, tracks)
	const chunk = 500
	for at := 0; at < len(all); at += chunk {
		if at >= len(all)/3 && nodes[2].alive() {
			// A third in: one NATS node, one ingest worker, one rules
			// instance die without a word.
			nodes[2].kill(t)
			ingests[0].kill(t)
			ruless[0].kill(t)
		}
		publishChunk(t, ctx, js, all[at:min(at+chunk, len(all))])
	}
	nc.Close()
	began := time.Now()
	t.Logf("published %d exposures and %d track events", len(exposures), len(tracks))

	// Every event in ClickHouse exactly once (the killed worker's unacked
	// batch comes back after the ingest consumer's one-minute ack wait).
	cw, err := warehouse.Open(ctx, warehouse.Config{Addr: cluster.Addr(), Cluster: cluster.Name})
	if err != nil {
		t.Fatal(err)
	}
	defer cw.Close()
	count := func(w *warehouse.Warehouse, q string) uint64 {
		t.Helper()
		var n uint64
		if err := w.Conn().QueryRow(ctx, q).Scan(&n); err != nil {
			t.Fatalf("%s: %v", q, err)
		}
		return n
	}
	for deadline := time.Now().Add(3 * time.Minute); ; time.Sleep(time.Second) {
		x, e := count(cw, "SELECT count() FROM verdict.exposures FINAL"), count(cw, "SELECT count() FROM verdict.events FINAL")
		if x == uint64(len(exposures)) && e == uint64(len(tracks)) {
			break
		}
		if x > uint64(len(exposures)) || e > uint64(len(tracks)) || time.Now().After(deadline) {
			t.Fatalf("ClickHouse holds %d exposures and %d track events; %d and %d were published", x, e, len(exposures), len(tracks))
		}
	}

	t.Logf("every event in ClickHouse once, %v after the last was published", time.Since(began).Round(time.Second))
	// Decisions, as the surviving rules instance serves them, and one
	// email each.
	settleScaleOut(t, rulesAddrs[1], truths, 3*time.Minute)
	checkEmails(t, truths, mail.subjects())
	t.Logf("decided and emailed, %v after the last event was published", time.Since(began).Round(time.Second))

	// The readouts equal a single server's with the same events.
	single, _ := warehousetest.Start(t, eng)
	if _, err := single.Insert(ctx, all); err != nil {
		t.Fatal(err)
	}
	metrics := map[string]config.Metric{}
	for _, m := range defs.Metrics {
		metrics[m.Key] = m
	}
	asOf := time.Now().UTC()
	for _, exp := range defs.Experiments {
		got, err := cw.ExperimentStats(ctx, exp, defs.Metrics, asOf)
		if err != nil {
			t.Fatal(err)
		}
		want, err := single.ExperimentStats(ctx, exp, defs.Metrics, asOf)
		if err != nil {
			t.Fatal(err)
		}
		if diff := cmp.Diff(want, got, cmpopts.EquateApprox(1e-12, 1e-9), cmpopts.EquateEmpty()); diff != "" {
			t.Errorf("%s: the cluster's statistics (+) differ from the single server's (-):\n%s", exp.Key, diff)
		}
		gotRO, _ := rules.Evaluate(exp, metrics, got, asOf, nil)
		wantRO, _ := rules.Evaluate(exp, metrics, want, asOf, nil)
		if gotRO.Status != wantRO.Status || gotRO.Label != wantRO.Label || gotRO.Summary != wantRO.Summary {
			t.Errorf("%s: the cluster's readout says %s %s %q, the single server's %s %s %q", exp.Key,
				gotRO.Status, gotRO.Label, gotRO.Summary, wantRO.Status, wantRO.Label, wantRO.Summary)
		}
	}

	// Versions rise by one, on the stream and in ClickHouse: read with the
	// surviving rules instance stopped, so that they hold still.
	ruless[1].stop(t)
	nc2, js2 := connectCluster(t, ctx, strings.Join(natsURLs[:2], ","))
	defer nc2.Close()
	for _, exp := range defs.Experiments {
		onStream, streamDocs := streamVersions(t, ctx, js2, exp.Key)
		stored, storedDocs := storedVersions(t, ctx, cw, exp.Key)
		// One readout per version: a version taken twice would show as
		// two documents (the stream keeps the first, deduplicated by
		// Nats-Msg-Id; ClickHouse the last). A readout is stored before it
		// is published, so ClickHouse may hold one more, which the next
		// instance to evaluate the experiment publishes.
		for v, doc := range streamDocs {
			if storedDocs[v] != doc {
				t.Errorf("%s: version %d on VERDICT_READOUTS is not the readout stored with that version:\n%.300s\n%.300s", exp.Key, v, doc, storedDocs[v])
				break
			}
		}
		if n, m := len(streamDocs), len(storedDocs); m != n && m != n+1 {
			t.Errorf("%s: %d versions on VERDICT_READOUTS, %d in ClickHouse", exp.Key, n, m)
		}
		for name, vs := range map[string][]uint64{"VERDICT_READOUTS": onStream, "verdict.readouts": stored} {
			if len(vs) == 0 {
				t.Errorf("%s: no readouts in %s", exp.Key, name)
			}
			for i, v := range vs {
				if v != uint64(i+1) {
					t.Errorf("%s: versions in %s are %v…: want 1, 2, 3, … without gaps or repeats", exp.Key, name, vs[:min(len(vs), i+3)])
					break
				}
			}
		}
	}
	// Every stream and bucket still has its three replicas.
	for _, name := range []string{stream.EventsStream, stream.DLQStream, stream.ReadoutsStream, "KV_verdict_config", "KV_verdict_decisions", "KV_verdict_notifier", "KV_" + rules.LeaseBucket} {
		s, err := js2.Stream(ctx, name)
		if err != nil {
			t.Errorf("stream %s: %v", name, err)
			continue
		}
		if r := s.CachedInfo().Config.Replicas; r != 3 {
			t.Errorf("%s has %d replicas, want 3", name, r)
		}
	}
}

// buildScaleOutBinaries builds nats-server (from the module verdict
// embeds) and the services' binaries into a temporary directory.
func buildScaleOutBinaries(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	goBin, err := exec.LookPath("go")
	if err != nil {
		t.Fatalf("go is not on PATH: %v", err)
	}
	builds := [][]string{
		{"../../pkg", "-o", filepath.Join(dir, "nats-server"), "github.com/nats-io/nats-server/v2"},
	}
	for _, s := range []string{"ingest", "rules", "notifier"} {
		builds = append(builds, []string{"../..", "-o", filepath.Join(dir, s), "./services/" + s})
	}
	for _, b := range builds {
		cmd := exec.Command(goBin, append([]string{"build"}, b[1:]...)...)
		cmd.Dir = b[0]
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("go build %v: %v\n%s", b[1:], err, out)
		}
	}
	return dir
}

// scaleProc is a child process of the test, killed with it.
type scaleProc struct {
	name string
	cmd  *exec.Cmd
	log  string
	done chan struct{}
}

func startScaleProc(t *testing.T, name, bin string, args []string, env map[string]string) *scaleProc {
	t.Helper()
	p := &scaleProc{name: name, log: filepath.Join(t.TempDir(), name+".log"), done: make(chan struct{})}
	f, err := os.Create(p.log)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	p.cmd = exec.Command(bin, args...)
	p.cmd.Stdout, p.cmd.Stderr = f, f
	p.cmd.Env = []string{"PATH=" + os.Getenv("PATH"), "HOME=" + os.Getenv("HOME")}
	for k, v := range env {
		p.cmd.Env = append(p.cmd.Env, k+"="+v)
	}
	p.cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := p.cmd.Start(); err != nil {
		t.Fatalf("start %s: %v", name, err)
	}
	go func() { p.cmd.Wait(); close(p.done) }()
	t.Cleanup(func() {
		if p.alive() {
			p.cmd.Process.Signal(syscall.SIGTERM)
			select {
			case <-p.done:
			case <-time.After(15 * time.Second):
				p.cmd.Process.Kill()
				<-p.done
			}
		}
		if t.Failed() {
			b, _ := os.ReadFile(p.log)
			if len(b) > 6000 {
				b = b[len(b)-6000:]
			}
			t.Logf("--- %s's log (the end):\n%s", name, b)
		}
	})
	return p
}

// stop sends SIGTERM and waits for the process to exit.
func (p *scaleProc) stop(t *testing.T) {
	t.Helper()
	p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-p.done:
	case <-time.After(30 * time.Second):
		t.Fatalf("%s did not stop on SIGTERM within 30s", p.name)
	}
}

func (p *scaleProc) alive() bool {
	select {
	case <-p.done:
		return false
	default:
		return true
	}
}

// kill sends SIGKILL: no shutdown, no goodbye.
func (p *scaleProc) kill(t *testing.T) {
	t.Helper()
	if err := p.cmd.Process.Kill(); err != nil {
		t.Fatalf("kill %s: %v", p.name, err)
	}
	<-p.done
	t.Logf("killed %s", p.name)
}

func (p *scaleProc) waitReady(t *testing.T, ctx context.Context, url string) {
	t.Helper()
	for deadline := time.Now().Add(2 * time.Minute); ; time.Sleep(200 * time.Millisecond) {
		if resp, err := http.Get(url); err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return
			}
		}
		if !p.alive() || time.Now().After(deadline) || ctx.Err() != nil {
			t.Fatalf("%s not ready at %s", p.name, url)
		}
	}
}

// connectCluster connects to the cluster and waits until JetStream answers.
func connectCluster(t *testing.T, ctx context.Context, urls string) (*nats.Conn, jetstream.JetStream) {
	t.Helper()
	for deadline := time.Now().Add(time.Minute); ; time.Sleep(250 * time.Millisecond) {
		nc, err := nats.Connect(urls, nats.MaxReconnects(-1), nats.ReconnectWait(100*time.Millisecond))
		if err == nil {
			js, _ := jetstream.New(nc)
			infoCtx, cancel := context.WithTimeout(ctx, 2*time.Second)
			_, err = js.AccountInfo(infoCtx)
			cancel()
			if err == nil {
				return nc, js
			}
			nc.Close()
		}
		if time.Now().After(deadline) {
			t.Fatalf("the NATS cluster at %s: %v", urls, err)
		}
	}
}

// publishChunk publishes evs and waits for JetStream's acks, publishing
// again what was not acked.
func publishChunk(t *testing.T, ctx context.Context, js jetstream.JetStream, evs []event.Event) {
	t.Helper()
	msgs := make([]*nats.Msg, len(evs))
	for i, e := range evs {
		msgs[i], _ = stream.EventMsg(e.AppendJSON(nil))
	}
	for attempt := 0; len(msgs) > 0; attempt++ {
		if attempt == 60 || ctx.Err() != nil {
			t.Fatalf("%d events not acknowledged after 60 attempts", len(msgs))
		}
		var futures []jetstream.PubAckFuture
		var failed []*nats.Msg
		for _, m := range msgs {
			f, err := js.PublishMsgAsync(m, jetstream.WithStallWait(10*time.Second))
			if err != nil {
				failed = append(failed, m)
				continue
			}
			futures = append(futures, f)
		}
		for _, f := range futures {
			select {
			case <-f.Ok():
			case <-f.Err():
				failed = append(failed, f.Msg())
			case <-time.After(10 * time.Second):
				failed = append(failed, f.Msg())
			}
		}
		if msgs = failed; len(msgs) > 0 {
			time.Sleep(500 * time.Millisecond)
		}
	}
}

// settleScaleOut waits until every experiment's readout on rules at addr
// has its truth's outcome, then for the hold and a few looks more.
func settleScaleOut(t *testing.T, addr string, truths []lifecycleTruth, timeout time.Duration) {
	t.Helper()
	s := &lifecycleStack{env: map[string]string{"VERDICT_HTTP_ADDR": addr}}
	s.settle(t, truths, timeout)
}

// streamVersions are the versions of the experiment's readouts on
// VERDICT_READOUTS, in stream order, with their documents.
func streamVersions(t *testing.T, ctx context.Context, js jetstream.JetStream, key string) ([]uint64, map[uint64]string) {
	t.Helper()
	subject := stream.ReadoutsPrefix + key
	s, err := js.Stream(ctx, stream.ReadoutsStream)
	if err != nil {
		t.Fatal(err)
	}
	info, err := s.Info(ctx, jetstream.WithSubjectFilter(subject))
	if err != nil {
		t.Fatal(err)
	}
	n := info.State.Subjects[subject]
	// Message by message, by subject from a sequence on: nothing to set
	// up that a node's death could take away.
	var vs []uint64
	docs := map[uint64]string{}
	for seq := uint64(1); uint64(len(vs)) < n; {
		var m *jetstream.RawStreamMsg
		for attempt := 0; ; attempt++ {
			if m, err = s.GetMsg(ctx, seq, jetstream.WithGetMsgSubject(subject)); err == nil || attempt == 20 {
				break
			}
			time.Sleep(250 * time.Millisecond)
		}
		if err != nil {
			t.Fatalf("read readouts of %s: %v (%d of %d)", key, err, len(vs), n)
		}
		var ro struct{ Version uint64 }
		if err := json.Unmarshal(m.Data, &ro); err != nil {
			t.Fatal(err)
		}
		vs = append(vs, ro.Version)
		docs[ro.Version] = string(m.Data)
		seq = m.Sequence + 1
	}
	return vs, docs
}

// storedVersions are the versions of verdict.readouts for the experiment,
// with their documents, as a reader sees them (FINAL).
func storedVersions(t *testing.T, ctx context.Context, w *warehouse.Warehouse, key string) ([]uint64, map[uint64]string) {
	t.Helper()
	rows, err := w.Conn().Query(ctx, "SELECT version, readout FROM verdict.readouts FINAL WHERE experiment = @e ORDER BY version", clickhouse.Named("e", key))
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	var vs []uint64
	docs := map[uint64]string{}
	for rows.Next() {
		var v uint64
		var doc string
		if err := rows.Scan(&v, &doc); err != nil {
			t.Fatal(err)
		}
		vs = append(vs, v)
		docs[v] = doc
	}
	return vs, docs
}

// mailSink is a real SMTP server (go-smtp) that keeps every message's
// recipients and subject.
type mailSink struct {
	addr string
	mu   sync.Mutex
	got  map[string][]string // recipient → subjects
}

func startMailSink(t *testing.T) *mailSink {
	t.Helper()
	m := &mailSink{got: map[string][]string{}}
	srv := smtp.NewServer(smtp.BackendFunc(func(*smtp.Conn) (smtp.Session, error) { return &sinkSession{m: m}, nil }))
	srv.Domain = "localhost"
	srv.AllowInsecureAuth = true
	m.addr = deployFreeAddr(t)
	srv.Addr = m.addr
	go srv.ListenAndServe()
	t.Cleanup(func() { srv.Close() })
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(50 * time.Millisecond) {
		if c, err := smtp.Dial(m.addr); err == nil {
			c.Close()
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the SMTP sink did not start")
		}
	}
	return m
}

func (m *mailSink) subjects() map[string][]string {
	m.mu.Lock()
	defer m.mu.Unlock()
	out := map[string][]string{}
	for k, v := range m.got {
		out[k] = slices.Clone(v)
	}
	return out
}

type sinkSession struct {
	m  *mailSink
	to []string
}

func (s *sinkSession) Mail(string, *smtp.MailOptions) error      { return nil }
func (s *sinkSession) Rcpt(to string, _ *smtp.RcptOptions) error { s.to = append(s.to, to); return nil }
func (s *sinkSession) Reset()                                    { s.to = nil }
func (s *sinkSession) Logout() error                             { return nil }
func (s *sinkSession) Data(r io.Reader) error {
	msg, err := mail.ReadMessage(bufio.NewReader(r))
	if err != nil {
		return err
	}
	io.Copy(io.Discard, msg.Body)
	subject := msg.Header.Get("Subject")
	if d, err := new(mime.WordDecoder).DecodeHeader(subject); err == nil {
		subject = d
	}
	s.m.mu.Lock()
	defer s.m.mu.Unlock()
	for _, to := range s.to {
		s.m.got[to] = append(s.m.got[to], subject)
	}
	return nil
}
