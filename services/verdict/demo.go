package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"math/rand/v2"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"golang.org/x/sync/errgroup"

	"github.com/verdictlabs/verdict/pkg/config"
	"github.com/verdictlabs/verdict/pkg/configstore"
	"github.com/verdictlabs/verdict/pkg/event"
	"github.com/verdictlabs/verdict/pkg/readout"
	"github.com/verdictlabs/verdict/pkg/rules"
	"github.com/verdictlabs/verdict/pkg/simulate"
	"github.com/verdictlabs/verdict/pkg/stack"
	"github.com/verdictlabs/verdict/pkg/stream"
	"github.com/verdictlabs/verdict/pkg/warehouse"
)

// runDemo runs the stack and streams simulated traffic into it: experiments
// with known truths, a few duplicates and a few bad events, and prints what
// lands.
func runDemo(ctx context.Context, args []string, getenv func(string) string, _ io.Reader, stdout, stderr io.Writer) error {
	var c upConfig
	fs := flag.NewFlagSet("verdict demo", flag.ContinueOnError)
	fs.SetOutput(stderr)
	c.register(fs, getenv)
	rate := fs.Int("units-per-second", 1000, "simulated new units per second, over all experiments")
	duration := fs.Duration("duration", 0, "stop after this long (0: until interrupted)")
	keepTraffic := fs.Bool("keep-traffic", false, "keep streaming traffic once every experiment is decided")
	if err := fs.Parse(args); err != nil {
		return err
	}
	// The demo is for watching readouts settle: it looks every 10s, and
	// holds a decision 30s, unless told otherwise.
	c.rulesFlags.Default("10s", "30s", getenv, func(name string) bool { return flagSet(fs, name) })
	if err := c.validate(); err != nil {
		return err
	}
	if *duration > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, *duration)
		defer cancel()
	}
	log := newLogger(stderr, c.logLevel)
	ready := make(chan struct{})
	sc := c.stack(log)
	// The demo's streams keep what a demo needs, not a week: ingest lands
	// events within seconds, and ./var stays within about a gigabyte.
	sc.Ingest.Limits = DemoLimits
	sc.OnReady = func() { close(ready) }

	g, gctx := errgroup.WithContext(ctx)
	limitMemory(getenv)
	g.Go(func() error { return stack.Run(gctx, sc) })
	g.Go(func() error {
		select {
		case <-gctx.Done():
			return nil
		case <-ready:
		}
		if err := applyDemo(gctx, c.nats.URL, c.nats.Auth, c.nats.Replicas, stdout); err != nil {
			return err
		}
		fmt.Fprintf(stdout, "verdict is up: readouts at http://%s/experiments, metrics at /metrics — streaming simulated traffic until every experiment is decided (Ctrl-C stops)\n", c.httpAddr)
		return demoTraffic(gctx, c, *rate, *keepTraffic, stdout)
	})
	err := g.Wait()
	if ctx.Err() != nil {
		return nil
	}
	return err
}

// applyDemo stores the demo's definitions, starting ten minutes ago (the
// simulated exposures are stamped up to five minutes in the past), except
// that an experiment already stored keeps its start (keepStarts).
func applyDemo(ctx context.Context, natsURL string, auth stream.Auth, replicas int, stdout io.Writer) error {
	defs, err := simulate.DemoDefinitions(time.Now().Add(-10 * time.Minute))
	if err != nil {
		return fmt.Errorf("demo definitions: %w", err)
	}
	nc, err := connectOnce(natsURL, auth, "verdict-demo")
	if err != nil {
		return err
	}
	defer nc.Close()
	js, err := jetstream.New(nc)
	if err != nil {
		return err
	}
	kv, err := configstore.EnsureBucket(ctx, js, replicas)
	if err != nil {
		return err
	}
	stored, err := configstore.Load(ctx, kv)
	if err != nil {
		// Definitions of another kind in the bucket: the demo's replace
		// them, as before.
		fmt.Fprintf(stdout, "stored definitions unreadable (%v): applying the demo's afresh\n", err)
	}
	kept := keepStarts(&defs, stored)
	if err := configstore.Apply(ctx, kv, defs); err != nil {
		return fmt.Errorf("apply demo definitions: %w", err)
	}
	for _, e := range defs.Experiments {
		if kept[e.Key] {
			fmt.Fprintf(stdout, "continuing experiment %s, started %s: %s\n", e.Key, e.Start.Format(time.RFC3339), e.Hypothesis)
		} else {
			fmt.Fprintf(stdout, "applied experiment %s: %s\n", e.Key, e.Hypothesis)
		}
	}
	return nil
}

// keepStarts gives each experiment of defs that stored holds already (an
// earlier run of the demo on the same data directory) the start it was
// stored with, and reports which: restarting the demo continues its
// experiments, with the units and decisions they have, instead of moving
// their start (which dropped every unit exposed before it).
func keepStarts(defs *config.Definitions, stored config.Definitions) map[string]bool {
	kept := map[string]bool{}
	for i, e := range defs.Experiments {
		if old, ok := stored.Experiment(e.Key); ok && !old.Start.IsZero() && old.Start.Before(e.Start) {
			defs.Experiments[i].Start = old.Start
			kept[e.Key] = true
		}
	}
	return kept
}

func flagSet(fs *flag.FlagSet, name string) bool {
	set := false
	fs.Visit(func(f *flag.Flag) { set = set || f.Name == name })
	return set
}

// DemoLimits are the demo's stream limits: VERDICT_EVENTS keeps 256 MiB
// (about a million events; ingest lands them within seconds), the
// dead letters and readouts 64 MiB each.
var DemoLimits = func() stream.Limits {
	l := stream.DefaultLimits
	l.EventsMaxBytes, l.DLQMaxBytes, l.ReadoutsMaxBytes = 256<<20, 64<<20, 64<<20
	return l
}()

func demoTraffic(ctx context.Context, c upConfig, rate int, keepTraffic bool, stdout io.Writer) error {
	nc, err := connectOnce(c.nats.URL, c.nats.Auth, "verdict-demo")
	if err != nil {
		return err
	}
	defer nc.Close()
	js, err := jetstream.New(nc, jetstream.WithPublishAsyncMaxPending(4096))
	if err != nil {
		return err
	}
	wh, err := warehouse.Open(ctx, c.ch)
	if err != nil {
		return err
	}
	defer wh.Close()

	g, gctx := errgroup.WithContext(ctx)
	traffic, stopTraffic := context.WithCancel(gctx)
	defer stopTraffic()
	if keepTraffic {
		stopTraffic = func() {}
	}
	began := time.Now()
	g.Go(func() error { return streamTraffic(traffic, js, rate) })
	g.Go(func() error {
		return reportCounts(gctx, js, wh, stdout, func(summary string) {
			stopTraffic()
			what := "traffic stopped"
			if keepTraffic {
				what = "traffic goes on (-keep-traffic)"
			}
			fmt.Fprintf(stdout, "all %d experiments decided after %s: %s. The demo's %s; the readouts stay at http://%s/experiments, the emails in %s (Ctrl-C stops verdict).\n",
				len(simulate.Demo()), time.Since(began).Round(time.Second), summary, what, c.httpAddr, filepath.Join(c.dataDir, "outbox"))
		})
	})
	err = g.Wait()
	if ctx.Err() != nil {
		return nil
	}
	return err
}

// streamTraffic publishes rate new units a second, round robin over the
// demo's scenarios. About one event in 200 is published twice (JetStream
// drops the copy by its Nats-Msg-Id) and one in 1000 is broken on purpose,
// to show the dead-letter stream at work.
func streamTraffic(ctx context.Context, js jetstream.JetStream, rate int) error {
	scenarios := simulate.Demo()
	gen := simulate.NewGenerator(uint64(time.Now().UnixNano()), strconv.FormatInt(time.Now().Unix(), 36))
	noise := rand.New(rand.NewPCG(1, 2))
	tick := time.NewTicker(100 * time.Millisecond)
	defer tick.Stop()
	perTick := max(1, rate/10)
	var evs []event.Event
	var buf []byte
	for n := 0; ; {
		select {
		case <-ctx.Done():
			return nil
		case <-tick.C:
		}
		evs = evs[:0]
		// Exposures are stamped MaxDelay ago, so that every event of the
		// unit lies in the past, as it would for real traffic.
		now := time.Now().UTC().Add(-simulate.MaxDelay)
		for range perTick {
			evs = gen.Unit(evs, &scenarios[n%len(scenarios)], now)
			n++
		}
		for i := range evs {
			buf = evs[i].AppendJSON(buf[:0])
			subject := event.SubjectPrefix + evs[i].Type.String()
			copies := 1
			switch x := noise.IntN(1000); {
			case x < 5:
				copies = 2
			case x == 999:
				buf = append(buf[:len(buf)/2], "…"...) // truncated JSON
			case x == 998:
				buf = []byte(`{"type":"exposure","event_id":"bad-` + strconv.Itoa(n) + `","ts":"yesterday","unit_id":"u","experiment":"x","variant":"a"}`)
			}
			for range copies {
				msg := nats.NewMsg(subject)
				msg.Data = append([]byte(nil), buf...)
				msg.Header.Set(nats.MsgIdHdr, evs[i].ID)
				if _, err := js.PublishMsgAsync(msg, jetstream.WithStallWait(10*time.Second)); err != nil {
					return fmt.Errorf("publish demo traffic: %w", err)
				}
			}
		}
	}
}

// demoDecided reports whether every experiment of keys has a latched
// status other than collecting in latest, and says which label each got:
// "persevere: checkout-redesign, loyalty-banner; pivot: …".
func demoDecided(keys []string, latest map[string]readout.Readout) (bool, string) {
	by := map[string][]string{}
	var order []string
	for _, k := range keys {
		r, ok := latest[k]
		if !ok || r.Status == readout.Collecting {
			return false, ""
		}
		v := string(r.Status)
		if r.Label != readout.NoLabel {
			v = string(r.Label)
		}
		if by[v] == nil {
			order = append(order, v)
		}
		by[v] = append(by[v], k)
	}
	var parts []string
	for _, v := range order {
		parts = append(parts, v+": "+strings.Join(by[v], ", "))
	}
	return true, strings.Join(parts, "; ")
}

func reportCounts(ctx context.Context, js jetstream.JetStream, wh *warehouse.Warehouse, stdout io.Writer, decided func(summary string)) error {
	tick := time.NewTicker(5 * time.Second)
	defer tick.Stop()
	var keys []string
	for _, s := range simulate.Demo() {
		keys = append(keys, s.Experiment)
	}
	done := false
	var lastCounts string
	seen := map[string]string{} // experiment → the verdict last printed
	q := fmt.Sprintf(`SELECT
	    (SELECT uniqExact(event_id) FROM %[1]s.exposures),
	    (SELECT uniqExact(event_id) FROM %[1]s.events)`, wh.Database())
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-tick.C:
		}
		var exposures, events uint64
		if err := wh.Conn().QueryRow(ctx, q).Scan(&exposures, &events); err != nil {
			fmt.Fprintf(stdout, "counts: %v\n", err)
			continue
		}
		var dead uint64
		if s, err := js.Stream(ctx, stream.DLQStream); err == nil {
			if info, err := s.Info(ctx); err == nil {
				dead = info.State.Msgs
			}
		}
		// Once the traffic has stopped the counts stand still: say so once.
		if counts := fmt.Sprintf("exposures %d  track events %d  dead-lettered %d", exposures, events, dead); counts != lastCounts {
			fmt.Fprintf(stdout, "%s  %s\n", time.Now().Format("15:04:05"), counts)
			lastCounts = counts
		}
		rs, err := rules.Readouts{W: wh}.List(ctx)
		if err != nil {
			continue
		}
		latest := map[string]readout.Readout{}
		for _, r := range rs {
			latest[r.Experiment] = r
			verdict := strings.ToUpper(string(r.Status))
			if r.Label != readout.NoLabel {
				verdict = strings.ToUpper(string(r.Label))
			}
			if seen[r.Experiment] != verdict {
				seen[r.Experiment] = verdict
				fmt.Fprintf(stdout, "    %-18s %-10s %s\n", r.Experiment, verdict, r.Summary)
			}
		}
		if ok, summary := demoDecided(keys, latest); ok && !done {
			done = true
			decided(summary)
		}
	}
}
