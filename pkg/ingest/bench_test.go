package ingest_test

import (
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"runtime"
	"strconv"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/verdictlabs/verdict/pkg/event"
	"github.com/verdictlabs/verdict/pkg/ingest"
	"github.com/verdictlabs/verdict/pkg/simulate"
	"github.com/verdictlabs/verdict/pkg/stream"
	"github.com/verdictlabs/verdict/pkg/warehouse"
	"github.com/verdictlabs/verdict/pkg/warehouse/warehousetest"
)

// BenchmarkIngest measures verdict's ingest (JetStream → decode → ClickHouse
// → ack) against raw JetStream fetch-and-ack loops that do nothing with the
// messages, over the same backlog on the same servers in the same run. It
// reports events/s of each and the ratios: these machines drift too much
// for absolute figures to compare across runs.
//
// The backlog is VERDICT_BENCH_EVENTS events (default 300000) of simulated
// product traffic. peak-heap-MiB is the largest Go heap seen while ingest
// worked through it: with VERDICT_BENCH_EVENTS=10000000 it shows that memory
// stays bounded under a large backlog.
func BenchmarkIngest(b *testing.B) {
	n := 300_000
	if v, err := strconv.Atoi(os.Getenv("VERDICT_BENCH_EVENTS")); err == nil && v > 0 {
		n = v
	}
	url := natsProcess(b)
	nc, err := nats.Connect(url)
	if err != nil {
		b.Fatal(err)
	}
	defer nc.Close()
	js, err := jetstream.New(nc)
	if err != nil {
		b.Fatal(err)
	}
	ch := warehousetest.StartServer(b, warehousetest.BenchEngine())
	ctx := context.Background()
	if err := stream.EnsureStreams(ctx, js, stream.DefaultLimits); err != nil {
		b.Fatal(err)
	}
	backlog(b, js, n)

	for i := 0; b.Loop(); i++ {
		ackAll := rawLoop(b, js, fmt.Sprintf("raw-ackall-%d", i), n, true)
		ackEach := rawLoop(b, js, fmt.Sprintf("raw-ackeach-%d", i), n, false)
		verdict, peak := verdictIngest(b, js, url, ch, fmt.Sprintf("bench%d", i), n)
		b.ReportMetric(ackAll, "raw-ackall-events/s")
		b.ReportMetric(ackEach, "raw-ackeach-events/s")
		b.ReportMetric(verdict, "ingest-events/s")
		b.ReportMetric(verdict/ackAll, "ratio-vs-ackall")
		b.ReportMetric(verdict/ackEach, "ratio-vs-ackeach")
		b.ReportMetric(float64(peak)/(1<<20), "peak-heap-MiB")
	}
}

// natsProcess runs nats-server in a child process (this test binary, see
// TestMain), so that the benchmark's heap holds ingest and not the server's
// caches, and returns its URL.
func natsProcess(b *testing.B) string {
	b.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	url := "nats://" + ln.Addr().String()
	ln.Close()
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), "VERDICT_NATS_CHILD_STORE="+b.TempDir(), "VERDICT_NATS_URL="+url)
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() {
		cmd.Process.Signal(syscall.SIGTERM)
		cmd.Wait()
	})
	for deadline := time.Now().Add(30 * time.Second); !stream.Reachable(url, stream.Auth{}, time.Second); {
		if time.Now().After(deadline) {
			b.Fatalf("nats-server child not answering at %s", url)
		}
		time.Sleep(100 * time.Millisecond)
	}
	return url
}

// backlog publishes n simulated events, each with its Nats-Msg-Id.
func backlog(b *testing.B, js jetstream.JetStream, n int) {
	b.Helper()
	gen := simulate.NewGenerator(1, "bench")
	scenarios := simulate.Demo()
	now := time.Now().UTC()
	var futures []jetstream.PubAckFuture
	var evs []event.Event
	for published := 0; published < n; {
		evs = gen.Unit(evs[:0], &scenarios[published%len(scenarios)], now)
		for i := range evs {
			if published == n {
				break
			}
			m := nats.NewMsg(event.SubjectPrefix + evs[i].Type.String())
			m.Data = evs[i].AppendJSON(nil)
			m.Header.Set(nats.MsgIdHdr, evs[i].ID)
			f, err := js.PublishMsgAsync(m, jetstream.WithStallWait(time.Minute))
			if err != nil {
				b.Fatal(err)
			}
			futures = append(futures, f)
			published++
			if len(futures) == 4000 {
				settleAll(b, futures)
				futures = futures[:0]
			}
		}
	}
	settleAll(b, futures)
}

func settleAll(b *testing.B, futures []jetstream.PubAckFuture) {
	b.Helper()
	for _, f := range futures {
		select {
		case <-f.Ok():
		case err := <-f.Err():
			b.Fatal(err)
		}
	}
}

// rawLoop consumes the whole backlog with a fresh durable consumer:
// Fetch(10000), then either one AckAll per batch or an ack per message.
func rawLoop(b *testing.B, js jetstream.JetStream, name string, n int, ackAll bool) float64 {
	b.Helper()
	ctx := context.Background()
	policy := jetstream.AckExplicitPolicy
	if ackAll {
		policy = jetstream.AckAllPolicy
	}
	cons, err := js.CreateOrUpdateConsumer(ctx, stream.EventsStream, jetstream.ConsumerConfig{
		Durable: name, AckPolicy: policy, MaxAckPending: 40000, MaxRequestBatch: 10000,
	})
	if err != nil {
		b.Fatal(err)
	}
	start := time.Now()
	for got := 0; got < n; {
		msgs, err := cons.Fetch(10000, jetstream.FetchMaxWait(time.Second))
		if err != nil {
			b.Fatal(err)
		}
		var last jetstream.Msg
		for m := range msgs.Messages() {
			got++
			last = m
			if !ackAll {
				m.Ack()
			}
		}
		if ackAll && last != nil {
			if err := last.DoubleAck(ctx); err != nil {
				b.Fatal(err)
			}
		}
	}
	return float64(n) / time.Since(start).Seconds()
}

// verdictIngest runs ingest.Run into a fresh database until every message of
// the backlog is acknowledged.
func verdictIngest(b *testing.B, js jetstream.JetStream, url string, ch *warehousetest.Server, db string, n int) (float64, uint64) {
	b.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	if err := js.DeleteConsumer(ctx, stream.EventsStream, ingest.ConsumerName); err != nil && err != jetstream.ErrConsumerNotFound {
		b.Fatal(err)
	}
	runtime.GC() // the backlog's garbage is not ingest's
	var peak atomic.Uint64
	sample := make(chan struct{})
	go func() {
		defer close(sample)
		var ms runtime.MemStats
		for ctx.Err() == nil {
			runtime.ReadMemStats(&ms)
			if ms.HeapInuse > peak.Load() {
				peak.Store(ms.HeapInuse)
			}
			time.Sleep(100 * time.Millisecond)
		}
	}()
	done := make(chan error, 1)
	start := time.Now()
	go func() {
		done <- ingest.Run(ctx, ingest.Config{
			NATSURL:    url,
			ClickHouse: warehouse.Config{Addr: ch.Addr, Database: db},
			Registerer: prometheus.NewRegistry(),
		})
	}()
	var elapsed time.Duration
	for {
		time.Sleep(50 * time.Millisecond)
		c, err := js.Consumer(ctx, stream.EventsStream, ingest.ConsumerName)
		if err != nil {
			continue
		}
		info, err := c.Info(ctx)
		if err != nil {
			b.Fatal(err)
		}
		if info.AckFloor.Stream >= uint64(n) && info.NumAckPending == 0 {
			elapsed = time.Since(start)
			break
		}
	}
	cancel()
	if err := <-done; err != nil {
		b.Fatal(err)
	}
	<-sample
	return float64(n) / elapsed.Seconds(), peak.Load()
}
