package ingest_test

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"os/signal"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/goleak"

	"github.com/verdictlabs/verdict/pkg/event"
	"github.com/verdictlabs/verdict/pkg/ingest"
	"github.com/verdictlabs/verdict/pkg/stream"
	"github.com/verdictlabs/verdict/pkg/stream/embedded"
	"github.com/verdictlabs/verdict/pkg/stream/streamtest"
	"github.com/verdictlabs/verdict/pkg/testkit"
	"github.com/verdictlabs/verdict/pkg/warehouse"
	"github.com/verdictlabs/verdict/pkg/warehouse/warehousetest"
)

// TestMain doubles as the ingest process of TestKilledMidBatch: with
// VERDICT_INGEST_CHILD set, the test binary runs ingest.Run until killed.
func TestMain(m *testing.M) {
	if os.Getenv("VERDICT_INGEST_CHILD") == "1" {
		ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM)
		defer stop()
		err := ingest.Run(ctx, ingest.Config{
			NATSURL:    os.Getenv("VERDICT_NATS_URL"),
			ClickHouse: warehouse.Config{Addr: os.Getenv("VERDICT_CLICKHOUSE_ADDR"), Database: "verdict"},
			BatchSize:  500,
			BatchWait:  100 * time.Millisecond,
			AckWait:    2 * time.Second,
		})
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
		os.Exit(0)
	}
	if dir := os.Getenv("VERDICT_NATS_CHILD_STORE"); dir != "" {
		// BenchmarkIngest's nats-server, in a process of its own so that the
		// benchmark's heap is ingest's alone.
		s, err := embedded.Run(embedded.Config{URL: os.Getenv("VERDICT_NATS_URL"), StoreDir: dir})
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
		ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM)
		<-ctx.Done()
		stop()
		s.Shutdown()
		os.Exit(0)
	}
	goleak.VerifyTestMain(m)
}

// env is one test's private NATS and ClickHouse.
type env struct {
	ns  *embedded.Server
	nc  *nats.Conn
	js  jetstream.JetStream
	ch  *warehousetest.Server
	wh  *warehouse.Warehouse
	reg *prometheus.Registry
}

func newEnv(t *testing.T, eng warehouse.Engine) *env {
	t.Helper()
	e := &env{ns: streamtest.Run(t), ch: warehousetest.StartServer(t, eng), reg: prometheus.NewRegistry()}
	e.nc, e.js = streamtest.Connect(t, e.ns)
	e.wh = e.ch.Open(t, "verdict")
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := stream.EnsureStreams(ctx, e.js, stream.DefaultLimits); err != nil {
		t.Fatal(err)
	}
	return e
}

func (e *env) config() ingest.Config {
	return ingest.Config{
		NATSURL:    e.ns.URL(),
		ClickHouse: warehouse.Config{Addr: e.ch.Addr, Database: "verdict"},
		BatchSize:  1000,
		BatchWait:  100 * time.Millisecond,
		AckWait:    5 * time.Second,
		Registerer: e.reg,
	}
}

// startIngest runs ingest in this process until the test ends.
func (e *env) startIngest(t *testing.T, cfg ingest.Config) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- ingest.Run(ctx, cfg) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("ingest.Run: %v", err)
		}
	})
}

// events makes n distinct valid events, alternating exposures and tracks.
func events(run string, n int, now time.Time) []event.Event {
	evs := make([]event.Event, n)
	for i := range evs {
		ev := event.Event{
			ID:         fmt.Sprintf("%s-%d", run, i),
			TS:         now.Add(-time.Duration(i) * time.Millisecond).Truncate(time.Millisecond),
			Unit:       fmt.Sprintf("unit-%d", i/2),
			AttrKeys:   []string{"platform"},
			AttrValues: []string{[]string{"ios", "android"}[i%2]},
		}
		if i%2 == 0 {
			ev.Type, ev.Experiment, ev.Variant = event.Exposure, "checkout-redesign", []string{"control", "one-page"}[i/2%2]
		} else {
			ev.Type, ev.Name, ev.Value = event.Track, "purchase", float64(i%97)+0.25
		}
		evs[i] = ev
	}
	return evs
}

// publish publishes evs asynchronously, each with Nats-Msg-Id unless
// withoutID, and waits for every ack.
func publish(t *testing.T, js jetstream.JetStream, evs []event.Event, withoutID bool) (duplicates int) {
	t.Helper()
	var futures []jetstream.PubAckFuture
	for i := range evs {
		if len(futures) == 1000 {
			duplicates += settle(t, futures)
			futures = futures[:0]
		}
		m := nats.NewMsg(event.SubjectPrefix + evs[i].Type.String())
		m.Data = evs[i].AppendJSON(nil)
		if !withoutID {
			m.Header.Set(nats.MsgIdHdr, evs[i].ID)
		}
		f, err := js.PublishMsgAsync(m)
		if err != nil {
			t.Fatalf("publish: %v", err)
		}
		futures = append(futures, f)
	}
	return duplicates + settle(t, futures)
}

func publishRaw(t *testing.T, js jetstream.JetStream, subject string, data []byte) {
	t.Helper()
	if _, err := js.Publish(context.Background(), subject, data); err != nil {
		t.Fatalf("publish to %s: %v", subject, err)
	}
}

func settle(t *testing.T, futures []jetstream.PubAckFuture) (duplicates int) {
	t.Helper()
	for _, f := range futures {
		select {
		case ack := <-f.Ok():
			if ack.Duplicate {
				duplicates++
			}
		case err := <-f.Err():
			t.Fatalf("publish: %v", err)
		case <-time.After(30 * time.Second):
			t.Fatal("no publish ack after 30s")
		}
	}
	return duplicates
}

type counts struct {
	Distinct uint64 // uniqExact(event_id) over both tables
	Final    uint64 // count() FINAL over both tables
}

func (e *env) counts(t *testing.T) counts {
	t.Helper()
	var c counts
	for _, table := range []string{"exposures", "events"} {
		var distinct, final uint64
		q := fmt.Sprintf("SELECT (SELECT uniqExact(event_id) FROM verdict.%[1]s), (SELECT count() FROM verdict.%[1]s FINAL)", table)
		if err := e.wh.Conn().QueryRow(context.Background(), q).Scan(&distinct, &final); err != nil {
			t.Fatalf("count %s: %v", table, err)
		}
		c.Distinct += distinct
		c.Final += final
	}
	return c
}

func (e *env) dlqMessages(t *testing.T) uint64 {
	t.Helper()
	s, err := e.js.Stream(context.Background(), stream.DLQStream)
	if err != nil {
		t.Fatal(err)
	}
	info, err := s.Info(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	return info.State.Msgs
}

// waitFor polls cond until it holds, failing the test after timeout with
// what cond last said.
func waitFor(t *testing.T, timeout time.Duration, cond func() (bool, string)) {
	t.Helper()
	testkit.WaitFor(t, timeout, 200*time.Millisecond, cond)
}

func metricSum(t *testing.T, reg *prometheus.Registry, name string) float64 {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	var sum float64
	for _, mf := range mfs {
		if mf.GetName() == name {
			for _, m := range mf.GetMetric() {
				sum += m.GetCounter().GetValue()
			}
		}
	}
	return sum
}

func TestExactlyOnce(t *testing.T) { warehousetest.Run(t, testExactlyOnce) }

func testExactlyOnce(t *testing.T, eng warehouse.Engine) {
	e := newEnv(t, eng)
	e.startIngest(t, e.config())
	now := time.Now().UTC()
	evs := events("once", 10000, now)

	if dup := publish(t, e.js, evs, false); dup != 0 {
		t.Fatalf("first publish: %d duplicates, want 0", dup)
	}
	// Re-published with the same Nats-Msg-Id: JetStream drops them.
	if dup := publish(t, e.js, evs[:500], false); dup != 500 {
		t.Errorf("re-publish with Nats-Msg-Id: %d duplicates, want 500", dup)
	}
	// Re-published without a message id (as `nats pub` does): they reach
	// ClickHouse a second time, and must change no count.
	publish(t, e.js, evs[1000:2000], true)
	publish(t, e.js, evs[5000:5500], true)
	// Bad events in between.
	for i := range 100 {
		publishRaw(t, e.js, event.SubjectExposure, []byte(fmt.Sprintf(`{"event_id":"bad-%d"`, i)))
	}

	waitFor(t, 60*time.Second, func() (bool, string) {
		c, dead := e.counts(t), e.dlqMessages(t)
		invalid := metricSum(t, e.reg, "verdict_events_invalid_total")
		return c.Distinct == 10000 && dead == 100 && invalid == 100 && metricSum(t, e.reg, "verdict_events_received_total") == 11600,
			fmt.Sprintf("distinct %d, dead-lettered %d, counted invalid %v", c.Distinct, dead, invalid)
	})
	if c := e.counts(t); c != (counts{10000, 10000}) {
		t.Errorf("counts = %+v, want 10000 distinct and 10000 after FINAL", c)
	}
	// valid + dead-lettered = published (distinct messages that reached the stream).
	valid, dead := e.counts(t).Distinct, e.dlqMessages(t)
	if valid+dead != 10100 {
		t.Errorf("valid %d + dead-lettered %d = %d, want 10100 published", valid, dead, valid+dead)
	}
	// The values landed as published.
	var sum float64
	if err := e.wh.Conn().QueryRow(context.Background(), "SELECT sum(value) FROM verdict.events FINAL").Scan(&sum); err != nil {
		t.Fatal(err)
	}
	var want float64
	for _, ev := range evs {
		want += ev.Value
	}
	if sum != want {
		t.Errorf("sum(value) = %v, want %v", sum, want)
	}
}

func TestDeadLetterReasons(t *testing.T) { warehousetest.Run(t, testDeadLetterReasons) }

func testDeadLetterReasons(t *testing.T, eng warehouse.Engine) {
	e := newEnv(t, eng)
	e.startIngest(t, e.config())
	now := time.Now().UTC()
	ts := now.Format(time.RFC3339Nano)
	exposure := func(fields string) []byte {
		return []byte(`{"type":"exposure","event_id":"e1","unit_id":"u1","experiment":"exp","variant":"a",` + fields + `}`)
	}
	cases := []struct {
		name    string
		subject string
		data    []byte
		reason  event.Reason
	}{
		{"malformed JSON", event.SubjectExposure, []byte(`{"type":"exposure",`), event.ReasonMalformedJSON},
		{"not an object", event.SubjectTrack, []byte(`[1,2,3]`), event.ReasonMalformedJSON},
		{"schema violation", event.SubjectExposure, exposure(`"ts":"` + ts + `","attributes":{"plan":3}`), event.ReasonSchema},
		{"missing field", event.SubjectTrack, []byte(`{"type":"track","event_id":"e2","ts":"` + ts + `","unit_id":"u1"}`), event.ReasonMissingField},
		{"bad timestamp", event.SubjectExposure, exposure(`"ts":"27/11/2026 10:00"`), event.ReasonBadTimestamp},
		{"too old", event.SubjectExposure, exposure(`"ts":"` + now.Add(-31*24*time.Hour).Format(time.RFC3339) + `"`), event.ReasonOutOfWindow},
		{"in the future", event.SubjectExposure, exposure(`"ts":"` + now.Add(time.Hour).Format(time.RFC3339) + `"`), event.ReasonOutOfWindow},
		{"over 64 KiB (larger still, the stream refuses it)", event.SubjectExposure, exposure(`"ts":"` + ts + `","attributes":{"x":"` + strings.Repeat("a", 65<<10) + `"}`), event.ReasonTooLarge},
		{"bad key", event.SubjectExposure, []byte(`{"type":"exposure","event_id":"e3","ts":"` + ts + `","unit_id":"u1","experiment":"Checkout Redesign","variant":"a"}`), event.ReasonBadKey},
		{"non-finite value", event.SubjectTrack, []byte(`{"type":"track","event_id":"e4","ts":"` + ts + `","unit_id":"u1","event":"purchase","value":1e999}`), event.ReasonNonFinite},
		{"type disagrees with subject", event.SubjectTrack, exposure(`"ts":"` + ts + `"`), event.ReasonTypeMismatch},
	}
	for _, c := range cases {
		publishRaw(t, e.js, c.subject, c.data)
	}
	waitFor(t, 30*time.Second, func() (bool, string) {
		n, counted := e.dlqMessages(t), metricSum(t, e.reg, "verdict_events_invalid_total")
		return n == uint64(len(cases)) && counted == float64(len(cases)),
			fmt.Sprintf("%d dead-lettered and %v counted, want %d", n, counted, len(cases))
	})

	// Read the dead letters back in order: subject, payload and header.
	cons, err := e.js.OrderedConsumer(context.Background(), stream.DLQStream, jetstream.OrderedConsumerConfig{})
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range cases {
		msg, err := cons.Next(jetstream.FetchMaxWait(5 * time.Second))
		if err != nil {
			t.Fatalf("%s: read dead letter: %v", c.name, err)
		}
		if want := stream.DLQPrefix + string(c.reason); msg.Subject() != want {
			t.Errorf("%s: dead-lettered on %s, want %s (%s)", c.name, msg.Subject(), want, msg.Headers().Get(stream.ErrorHeader))
		}
		want := c.data
		if len(want) > event.MaxSize {
			want = want[:event.MaxSize] // a dead letter keeps an event's worth
		}
		if string(msg.Data()) != string(want) {
			t.Errorf("%s: payload changed in the dead-letter stream", c.name)
		}
		if h := msg.Headers().Get(stream.ErrorHeader); !strings.HasPrefix(h, string(c.reason)+": ") {
			t.Errorf("%s: Verdict-Error = %q, want it to start with %q", c.name, h, c.reason+": ")
		}
		if h := msg.Headers().Get(stream.SubjectHeader); h != c.subject {
			t.Errorf("%s: Verdict-Subject = %q, want %q", c.name, h, c.subject)
		}
	}
	if c := e.counts(t); c.Distinct != 0 {
		t.Errorf("%d rows inserted from bad events, want 0", c.Distinct)
	}
}

// TestKilledMidBatch kills the ingest process (SIGKILL) while it works
// through a backlog, restarts it, and checks that every event landed once.
func TestKilledMidBatch(t *testing.T) { warehousetest.Run(t, testKilledMidBatch) }

func testKilledMidBatch(t *testing.T, eng warehouse.Engine) {
	e := newEnv(t, eng)
	const n = 100000
	publish(t, e.js, events("kill", n, time.Now().UTC()), false)

	start := func() *exec.Cmd {
		cmd := exec.Command(os.Args[0], "-test.run=^$")
		cmd.Env = append(os.Environ(), "VERDICT_INGEST_CHILD=1",
			"VERDICT_NATS_URL="+e.ns.URL(), "VERDICT_CLICKHOUSE_ADDR="+e.ch.Addr)
		cmd.Stderr = os.Stderr
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		return cmd
	}
	first := start()
	// Kill as soon as the first rows are in: polled tightly, since on an idle
	// machine the child gets through the backlog in a few seconds.
	deadline := time.Now().Add(60 * time.Second)
	for e.counts(t).Distinct == 0 {
		if time.Now().After(deadline) {
			t.Fatal("no rows inserted within 60s of starting ingest")
		}
		time.Sleep(10 * time.Millisecond)
	}
	if err := first.Process.Kill(); err != nil {
		t.Fatal(err)
	}
	first.Wait()
	// chDB's server may end its process too when its client dies in the
	// middle of an insert: started again, as verdict up does, it must
	// still end up with every event once.
	if revived, err := e.ch.Revive(context.Background(), 5*time.Second); err != nil {
		t.Fatalf("start clickhouse again: %v", err)
	} else if revived {
		t.Logf("the %s server ended with the killed client; started again", eng)
	}
	killedAt := e.counts(t).Distinct
	if killedAt >= n {
		t.Fatalf("all %d events were in before the kill; the test did not kill mid-stream", n)
	}
	t.Logf("killed with %d of %d events inserted", killedAt, n)

	second := start()
	restarted := time.Now()
	t.Cleanup(func() {
		second.Process.Signal(syscall.SIGTERM)
		second.Wait()
	})
	waitFor(t, 90*time.Second, func() (bool, string) {
		c := e.counts(t)
		return c.Distinct == n, fmt.Sprintf("%d of %d after the restart", c.Distinct, n)
	})
	// What the killed worker had fetched comes back after the ack wait.
	t.Logf("every event in %v after the restart (ack wait %v)", time.Since(restarted).Round(100*time.Millisecond), ingest.DefaultAckWait)
	// Nothing left pending: every message was acknowledged.
	waitFor(t, 30*time.Second, func() (bool, string) {
		info, err := e.js.Consumer(context.Background(), stream.EventsStream, ingest.ConsumerName)
		if err != nil {
			return false, err.Error()
		}
		ci, err := info.Info(context.Background())
		if err != nil {
			return false, err.Error()
		}
		return ci.NumAckPending == 0 && ci.NumPending == 0, fmt.Sprintf("ack pending %d, pending %d", ci.NumAckPending, ci.NumPending)
	})
	if c := e.counts(t); c != (counts{n, n}) {
		t.Errorf("counts = %+v, want %d distinct and %d after FINAL", c, n, n)
	}
	if dead := e.dlqMessages(t); dead != 0 {
		t.Errorf("%d dead-lettered, want 0", dead)
	}
}

// TestClickHouseOutage stops ClickHouse for ten seconds while events keep
// arriving; ingest must recover by itself and lose nothing.
func TestClickHouseOutage(t *testing.T) { warehousetest.Run(t, testClickHouseOutage) }

func testClickHouseOutage(t *testing.T, eng warehouse.Engine) {
	e := newEnv(t, eng)
	e.startIngest(t, e.config())
	evs := events("outage", 20000, time.Now().UTC())

	var wg sync.WaitGroup
	wg.Add(1)
	go func() { // a steady stream: 20 slices over about 20 seconds
		defer wg.Done()
		for i := 0; i < len(evs); i += 1000 {
			publish(t, e.js, evs[i:i+1000], false)
			time.Sleep(time.Second)
		}
	}()
	waitFor(t, 30*time.Second, func() (bool, string) {
		c := e.counts(t)
		return c.Distinct > 0, "nothing inserted before the outage"
	})
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := e.ch.Stop(ctx); err != nil {
		t.Fatal(err)
	}
	time.Sleep(10 * time.Second)
	if err := e.ch.Start(ctx); err != nil {
		t.Fatal(err)
	}
	wg.Wait()
	e.wh = e.ch.Open(t, "verdict") // the test's own connection died with the server
	waitFor(t, 90*time.Second, func() (bool, string) {
		c := e.counts(t)
		return c.Distinct == uint64(len(evs)), fmt.Sprintf("%d of %d after the outage", c.Distinct, len(evs))
	})
	if c := e.counts(t); c != (counts{20000, 20000}) {
		t.Errorf("counts = %+v, want 20000 distinct and 20000 after FINAL", c)
	}
	if got := metricSum(t, e.reg, "verdict_ingest_insert_errors_total"); got == 0 {
		t.Errorf("verdict_ingest_insert_errors_total = 0: the outage was not seen, so the test proved nothing")
	}
}
