package main

import (
	"bufio"
	"cmp"
	"context"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/verdictlabs/verdict/pkg/configstore"
	"github.com/verdictlabs/verdict/pkg/event"
	"github.com/verdictlabs/verdict/pkg/ingest"
	"github.com/verdictlabs/verdict/pkg/simulate"
	"github.com/verdictlabs/verdict/pkg/stream"
)

// BenchmarkUpBurst runs bin/verdict up as a process of its own and
// publishes a burst of VERDICT_BENCH_BURST events (default 2,000,000;
// docs/performance.md has 12,000,000) of the demo's six experiments from
// this process, as fast as JetStream takes them, with Nats-Msg-Id. It
// reports the peak resident memory (VmHWM) of verdict up and, apart, of its
// local ClickHouse, the rate published, and the time until ingest has
// landed everything. VERDICT_BENCH_CLICKHOUSE_LOCAL picks the engine.
//
//	go test -run '^$' -bench BenchmarkUpBurst -benchtime 1x -timeout 60m .
func BenchmarkUpBurst(b *testing.B) {
	n := 2_000_000
	if s := os.Getenv("VERDICT_BENCH_BURST"); s != "" {
		var err error
		if n, err = strconv.Atoi(s); err != nil || n <= 0 {
			b.Fatalf("VERDICT_BENCH_BURST %q: want a number of events", s)
		}
	}
	dir := b.TempDir()
	bin := filepath.Join(dir, "verdict")
	build := exec.Command("go", "build", "-o", bin, ".")
	if out, err := build.CombinedOutput(); err != nil {
		b.Fatalf("go build: %v\n%s", err, out)
	}
	free := func() string {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			b.Fatal(err)
		}
		defer l.Close()
		return l.Addr().String()
	}
	natsAddr, httpAddr := free(), free()
	up := exec.Command(bin, "up")
	up.Env = append(os.Environ(),
		"VERDICT_NATS_URL=nats://"+natsAddr, "VERDICT_CLICKHOUSE_ADDR="+free(), "VERDICT_HTTP_ADDR="+httpAddr,
		"VERDICT_DATA_DIR="+filepath.Join(dir, "var"), "VERDICT_RULES_INTERVAL=5s", "VERDICT_LOG_LEVEL=warn",
		"VERDICT_CLICKHOUSE_LOCAL="+cmp.Or(os.Getenv("VERDICT_BENCH_CLICKHOUSE_LOCAL"), "chdb"))
	upLog, err := os.Create(filepath.Join(dir, "up.log"))
	if err != nil {
		b.Fatal(err)
	}
	up.Stdout, up.Stderr = upLog, upLog
	if err := up.Start(); err != nil {
		b.Fatal(err)
	}
	defer func() {
		up.Process.Signal(os.Interrupt)
		up.Wait()
		if b.Failed() {
			log, _ := os.ReadFile(upLog.Name())
			b.Logf("verdict up's log:\n%s", log)
			ch, _ := os.ReadFile(filepath.Join(dir, "var", "clickhouse", "chdb", "log", "clickhouse-server.log"))
			for _, line := range strings.Split(string(ch), "\n") {
				if strings.Contains(line, "<Fatal>") {
					b.Log(line)
				}
			}
		}
	}()
	ctx, cancel := context.WithTimeout(context.Background(), time.Hour)
	defer cancel()
	for {
		resp, err := http.Get("http://" + httpAddr + "/readyz")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				break
			}
		}
		if ctx.Err() != nil {
			b.Fatal("verdict up not ready")
		}
		time.Sleep(200 * time.Millisecond)
	}
	nc, err := nats.Connect("nats://" + natsAddr)
	if err != nil {
		b.Fatal(err)
	}
	defer nc.Close()
	js, err := jetstream.New(nc, jetstream.WithPublishAsyncMaxPending(8192))
	if err != nil {
		b.Fatal(err)
	}
	kv, err := configstore.EnsureBucket(ctx, js, 0)
	if err != nil {
		b.Fatal(err)
	}
	defs, err := simulate.DemoDefinitions(time.Now().Add(-time.Hour))
	if err != nil {
		b.Fatal(err)
	}
	if err := configstore.Apply(ctx, kv, defs); err != nil {
		b.Fatal(err)
	}

	// Resident memory, sampled: verdict up's, and its children's (the
	// local ClickHouse) apart.
	var mu sync.Mutex
	var peakUp, peakChildren int64
	sampleCtx, stopSampling := context.WithCancel(ctx)
	sampled := make(chan struct{})
	go func() {
		defer close(sampled)
		for sampleCtx.Err() == nil {
			self, children := vmHWM(up.Process.Pid), int64(0)
			for _, c := range childrenOf(up.Process.Pid) {
				children += vmHWM(c)
			}
			mu.Lock()
			peakUp, peakChildren = max(peakUp, self), max(peakChildren, children)
			mu.Unlock()
			select {
			case <-sampleCtx.Done():
			case <-time.After(200 * time.Millisecond):
			}
		}
	}()

	for b.Loop() {
		began := time.Now()
		g := simulate.NewGenerator(1, "burst")
		scenarios := simulate.Demo()
		published := 0
		var evs []event.Event
		var buf []byte
		at := time.Now().Add(-30 * time.Minute)
		for i := 0; published < n; i++ {
			evs = g.Unit(evs[:0], &scenarios[i%len(scenarios)], at)
			for _, e := range evs {
				if published == n {
					break
				}
				buf = e.AppendJSON(buf[:0])
				msg := nats.NewMsg(map[event.Type]string{event.Exposure: event.SubjectExposure, event.Track: event.SubjectTrack}[e.Type])
				msg.Data = append([]byte(nil), buf...)
				msg.Header.Set(nats.MsgIdHdr, e.ID)
				if _, err := js.PublishMsgAsync(msg); err != nil {
					b.Fatal(err)
				}
				published++
			}
			if js.PublishAsyncPending() >= 4096 {
				select {
				case <-js.PublishAsyncComplete():
				case <-ctx.Done():
					b.Fatal("publish did not complete")
				}
			}
		}
		<-js.PublishAsyncComplete()
		publishedIn := time.Since(began)
		// Landed: the ingest consumer has nothing pending and nothing
		// unacknowledged.
		for {
			c, err := js.Consumer(ctx, stream.EventsStream, ingest.ConsumerName)
			if err == nil {
				if ci, err := c.Info(ctx); err == nil && ci.NumPending == 0 && ci.NumAckPending == 0 {
					break
				}
			}
			if ctx.Err() != nil {
				b.Fatal("ingest did not land the burst")
			}
			time.Sleep(500 * time.Millisecond)
		}
		landedIn := time.Since(began)
		b.ReportMetric(float64(n)/publishedIn.Seconds(), "published/s")
		b.ReportMetric(landedIn.Seconds(), "s-to-land")
		b.Logf("%d events published in %v (%.0f/s), landed %v after the first", n, publishedIn.Round(time.Millisecond), float64(n)/publishedIn.Seconds(), landedIn.Round(time.Millisecond))
	}
	time.Sleep(time.Second)
	stopSampling()
	<-sampled
	mu.Lock()
	defer mu.Unlock()
	b.ReportMetric(float64(peakUp)/(1<<20), "MiB-up")
	b.ReportMetric(float64(peakChildren)/(1<<20), "MiB-clickhouse")
	b.Logf("peak resident memory: verdict up %d MiB, its ClickHouse %d MiB", peakUp>>20, peakChildren>>20)
}

// vmHWM is a process's peak resident memory in bytes, 0 when unknown.
func vmHWM(pid int) int64 {
	f, err := os.Open(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), "VmHWM:"); ok {
			kb, _ := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 10, 64)
			return kb << 10
		}
	}
	return 0
}

// childrenOf lists the child processes of pid, started from any of its
// threads.
func childrenOf(pid int) []int {
	tasks, _ := filepath.Glob(fmt.Sprintf("/proc/%d/task/*/children", pid))
	var out []int
	for _, t := range tasks {
		b, _ := os.ReadFile(t)
		for _, f := range strings.Fields(string(b)) {
			if c, err := strconv.Atoi(f); err == nil {
				out = append(out, c)
			}
		}
	}
	return out
}
