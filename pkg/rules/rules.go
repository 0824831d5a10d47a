package rules

import (
	"cmp"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"net/http"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promauto"
	"golang.org/x/sync/errgroup"

	"github.com/verdictlabs/verdict/pkg/config"
	"github.com/verdictlabs/verdict/pkg/configstore"
	"github.com/verdictlabs/verdict/pkg/decide"
	"github.com/verdictlabs/verdict/pkg/ingest"
	"github.com/verdictlabs/verdict/pkg/readout"
	"github.com/verdictlabs/verdict/pkg/stream"
	"github.com/verdictlabs/verdict/pkg/tally"
	"github.com/verdictlabs/verdict/pkg/warehouse"
	"github.com/verdictlabs/verdict/pkg/web"
)

// Config is the rules service's configuration.
type Config struct {
	NATSURL  string      // VERDICT_NATS_URL
	NATSAuth stream.Auth // VERDICT_NATS_CREDS, _NKEY, _USER, _PASSWORD, _TOKEN, _TLS_*
	// NATSReplicas are the replicas of the streams and buckets
	// (VERDICT_NATS_REPLICAS; 0 keeps what they have).
	NATSReplicas int
	ClickHouse   warehouse.Config // VERDICT_CLICKHOUSE_ADDR, VERDICT_CLICKHOUSE_DB
	Interval     time.Duration    // VERDICT_RULES_INTERVAL, default 1m
	// Hold is how long a candidate must hold on every look before it
	// becomes the decision (VERDICT_DECISION_HOLD); default 10m, and a
	// negative value means 0 (decide at the first look).
	Hold time.Duration

	Logger     *slog.Logger
	Registerer prometheus.Registerer
	Checks     *web.Checks // readiness checks are added here when non-nil
	// Mux, when set, gets POST /v1/experiments/{key}/recompute: this
	// instance's tally of the experiment against a full recompute.
	Mux *http.ServeMux
	Now func() time.Time
}

// Warehouse is what the rules service needs of ClickHouse.
type Warehouse interface {
	ExperimentStats(ctx context.Context, exp config.Experiment, metrics []config.Metric, asOf time.Time) (warehouse.ExperimentStats, error)
	StoreReadout(ctx context.Context, experiment string, version uint64, computedAt, dataThrough time.Time, status, label string, doc []byte) error
	LatestVersions(ctx context.Context) (map[string]uint64, error)
}

// Run connects to NATS and ClickHouse and evaluates experiments until ctx
// is cancelled.
func Run(ctx context.Context, cfg Config) error {
	if cfg.Interval <= 0 {
		cfg.Interval = time.Minute
	}
	if cfg.Hold == 0 {
		cfg.Hold = decide.DefaultHold
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.Registerer == nil {
		cfg.Registerer = prometheus.NewRegistry()
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	log := cfg.Logger.With("service", "rules")

	nc, js, err := stream.Open(ctx, cfg.NATSURL, cfg.NATSAuth, "verdict-rules", stream.DefaultLimits.WithReplicas(cfg.NATSReplicas), log)
	if err != nil {
		return err
	}
	defer nc.Close()
	kv, err := configstore.EnsureBucket(ctx, js, cfg.NATSReplicas)
	if err != nil {
		return err
	}
	states, err := EnsureStateBucket(ctx, js, cfg.NATSReplicas)
	if err != nil {
		return err
	}
	leaseKV, err := EnsureLeaseBucket(ctx, js, cfg.NATSReplicas)
	if err != nil {
		return err
	}
	// A lease outlives two missed rounds; a dead instance's experiments
	// pass to the others within three intervals.
	leases := &KVLeases{KV: leaseKV, Instance: instanceID(), TTL: max(3*cfg.Interval, 3*time.Second), Now: cfg.Now}
	defer func() {
		releaseCtx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		leases.Release(releaseCtx)
	}()
	readouts, err := js.Stream(ctx, stream.ReadoutsStream)
	if err != nil {
		return fmt.Errorf("stream %s: %w", stream.ReadoutsStream, err)
	}
	wh, err := warehouse.Dial(ctx, cfg.ClickHouse, log)
	if err != nil {
		return err
	}
	defer wh.Close()
	if cfg.Checks != nil {
		cfg.Checks.Add("clickhouse (rules)", wh.Ping)
	}

	// Each experiment's units are kept between looks: a look reads what
	// arrived since the last, up to the ingest consumer's floor.
	book := tally.NewBook(tally.Options{
		Source: wh,
		Floor:  func(ctx context.Context) (uint64, error) { return stream.IngestFloor(ctx, js, ingest.ConsumerName) },
		// The looks of a round share a floor, and so the events they
		// read, when they start within this of each other: a round of a
		// dozen experiments, four at a time, starts its looks within a
		// second, and what arrived meanwhile waits for the next round.
		FloorReuse: min(time.Second, cfg.Interval/2),
		Logger:     log,
	})
	defer book.Close()
	if cfg.Mux != nil {
		HandleRecompute(cfg.Mux, book, func(ctx context.Context) (config.Definitions, error) { return configstore.Load(ctx, kv) }, log)
	}

	e, err := NewEngine(ctx, EngineOptions{
		Warehouse: wh,
		Stats:     book.ExperimentStats,
		TimeStats: wh.TimeStats,
		Retain:    book.Retain,
		Publish: func(ctx context.Context, msg *nats.Msg) error {
			_, err := js.PublishMsg(ctx, msg)
			return err
		},
		Load:   func(ctx context.Context) (config.Definitions, error) { return configstore.Load(ctx, kv) },
		States: states,
		Leases: leases,
		LastPublished: func(ctx context.Context, experiment string) (uint64, error) {
			return lastPublished(ctx, readouts, experiment)
		},
		Backlog: func(ctx context.Context) (stream.Backlog, error) {
			return stream.IngestBacklog(ctx, js, ingest.ConsumerName, cfg.Now())
		},
		Hold:       cfg.Hold,
		Logger:     log,
		Registerer: cfg.Registerer,
		Now:        cfg.Now,
	})
	if err != nil {
		return err
	}

	watcher, err := kv.WatchAll(ctx, jetstream.UpdatesOnly())
	if err != nil {
		return fmt.Errorf("watch %s: %w", config.Bucket, err)
	}
	defer watcher.Stop()

	log.Info("evaluating experiments", "interval", cfg.Interval, "hold", max(cfg.Hold, 0), "instance", leases.Instance, "lease", leases.TTL)
	tick := time.NewTicker(cfg.Interval)
	defer tick.Stop()
	// The watcher closes its channel when ctx ends (its subscription is
	// bound to ctx) or when its subscription goes away: a closed channel
	// is always ready, so it must leave the select, or the loop spins.
	updates := watcher.Updates()
	for {
		if err := e.EvaluateAll(ctx); err != nil && ctx.Err() == nil {
			log.Warn("evaluate experiments", "err", err)
		}
		select {
		case <-ctx.Done():
			return nil
		case <-tick.C:
		case upd, ok := <-updates:
			if !ok {
				if ctx.Err() != nil {
					return nil
				}
				// Definitions are still read at every evaluation.
				log.Warn("definition watcher stopped: changes now take effect at the next interval", "bucket", config.Bucket)
				updates = nil
				continue
			}
			if upd != nil {
				log.Info("definition changed", "key", upd.Key(), "op", upd.Operation().String())
			}
			// Let a burst of changes from one `verdict apply` settle.
			time.Sleep(200 * time.Millisecond)
			drain(updates)
		}
	}
}

// instanceID names this process among rules instances: host, pid and a
// random part, so a restarted process is a new instance.
func instanceID() string {
	host, _ := os.Hostname()
	var b [4]byte
	rand.Read(b[:])
	id := fmt.Sprintf("%s-%d-%x", host, os.Getpid(), b)
	return strings.Map(func(r rune) rune { // what a KV key may hold
		if r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '-' || r == '_' {
			return r
		}
		return '_'
	}, id)
}

// lastPublished reads the version of the newest readout of experiment on
// VERDICT_READOUTS; 0 when it has none.
func lastPublished(ctx context.Context, s jetstream.Stream, experiment string) (uint64, error) {
	m, err := s.GetLastMsgForSubject(ctx, stream.ReadoutsPrefix+experiment)
	if errors.Is(err, jetstream.ErrMsgNotFound) {
		return 0, nil
	}
	if err != nil {
		return 0, err
	}
	var ro struct {
		Version uint64 `json:"version"`
	}
	if err := json.Unmarshal(m.Data, &ro); err != nil {
		return 0, fmt.Errorf("decode readout %d of %s: %w", m.Sequence, experiment, err)
	}
	return ro.Version, nil
}

// drain empties ch of what is pending, and returns at once when ch is
// closed.
func drain(ch <-chan jetstream.KeyValueEntry) {
	for {
		select {
		case _, ok := <-ch:
			if !ok {
				return
			}
		default:
			return
		}
	}
}

// StatsFunc computes an experiment's sufficient statistics as of asOf:
// tally.Book's incremental look, or Warehouse.ExperimentStats in full.
type StatsFunc func(ctx context.Context, exp config.Experiment, metrics []config.Metric, asOf time.Time) (warehouse.ExperimentStats, error)

// EngineOptions are the seams of an Engine.
type EngineOptions struct {
	Warehouse Warehouse
	// Stats computes each look's statistics; nil: Warehouse.ExperimentStats.
	// A look it answers tally.ErrBuilding is skipped: the last readout
	// stands.
	Stats StatsFunc
	// TimeStats, when set, computes an experiment's statistics over time
	// (the readout's series and novelty test): a full read of its events,
	// so it runs again only when the units or a metric's sums changed by
	// more than TimeStatsMove, the definition changed, or TimeStatsEvery has passed;
	// meanwhile looks reuse the last. nil: readouts carry none.
	TimeStats func(ctx context.Context, exp config.Experiment, metrics []config.Metric, asOf time.Time) (warehouse.TimeStats, error)
	// Retain, when set, is told after each round's leases which
	// experiments this engine holds, so that what it keeps of the others
	// can go.
	Retain func(held func(experiment string) bool)
	// Concurrency bounds the experiments evaluated at once; 0: 4.
	Concurrency int
	Publish     func(ctx context.Context, msg *nats.Msg) error
	Load        func(ctx context.Context) (config.Definitions, error)
	// States keeps each experiment's decision lifecycle between looks.
	States States
	// Backlog is what ingest has still to land; readouts computed while
	// its oldest event has waited more than MaxIngestLag are provisional.
	Backlog func(ctx context.Context) (stream.Backlog, error)
	// Hold is how long a candidate must hold before it becomes the
	// decision (0: at once; negative counts as 0).
	Hold time.Duration
	// Leases, when set, say which experiments this engine evaluates (the
	// others are another instance's); nil evaluates every one.
	Leases Leases
	// LastPublished returns the version of the newest readout of the
	// experiment on VERDICT_READOUTS (0 when none): before it continues
	// an experiment another instance evaluated, the engine publishes that
	// instance's last readout if it never was. nil: never.
	LastPublished func(ctx context.Context, experiment string) (uint64, error)
	Logger        *slog.Logger
	Registerer    prometheus.Registerer
	Now           func() time.Time
}

// Engine evaluates experiments and publishes their readouts.
type Engine struct {
	opt     EngineOptions
	metrics *metrics

	round sync.Mutex // EvaluateAll runs one at a time
	// refused are the stored experiments the last round left out, with
	// why: each is logged when it first fails (round holds it).
	refused map[string]string

	mu       sync.Mutex                // guards the maps below: a round evaluates experiments concurrently
	versions map[string]uint64         // version of the readout this engine last published, or found stored at start
	last     map[string]readout.Status // status of the latest readout published by this engine
	digests  map[string][32]byte       // content of that readout, without version and time
	// published is the version of each experiment this engine has
	// published, or seen published, since it started.
	published map[string]uint64
	// times are each experiment's last statistics over time.
	times map[string]timeStats
}

// TimeStatsEvery is how often an experiment's statistics over time are
// computed again when its units hardly changed: late events for units
// already counted show within it.
const TimeStatsEvery = time.Hour

// TimeStatsMove is how far (a share) a metric's units or sums must move
// for the statistics over time to be computed again before
// TimeStatsEvery: a full read each time they grow by 5% costs, spread
// over the looks, about 20 reads of what is new, while data landing in
// bulk (a backfill, its tracks after its exposures) is seen at the next
// look.
const TimeStatsMove = 0.05

// timeStats are statistics over time and what they were computed for.
type timeStats struct {
	definition string
	sums       map[string][3]float64 // per overall cell: units, Σx, Σy (see moved)
	at         time.Time
	ts         *warehouse.TimeStats
}

// overallSums are the units and sums of st's overall cells, by variant
// and metric: what moves when units or their events arrive.
func overallSums(st warehouse.ExperimentStats) map[string][3]float64 {
	out := map[string][3]float64{}
	for _, c := range st.Cells {
		if c.Dimension == "" {
			out[c.Variant+"\x00"+c.Metric] = [3]float64{c.Arm.N, c.Arm.Sum, c.Arm.DenSum}
		}
	}
	return out
}

// moved reports whether any of now's sums differs from was's by more
// than TimeStatsMove, or is new.
func moved(was, now map[string][3]float64) bool {
	for k, n := range now {
		w, ok := was[k]
		if !ok {
			return true
		}
		for i := range n {
			if math.Abs(n[i]-w[i]) > TimeStatsMove*math.Max(math.Abs(n[i]), math.Abs(w[i])) {
				return true
			}
		}
	}
	return false
}

// timeStatsOf returns exp's statistics over time, computed again when the
// last are stale (EngineOptions.TimeStats); a failure is logged and the
// last stand, so that it never holds a readout back.
func (e *Engine) timeStatsOf(ctx context.Context, exp config.Experiment, used []config.Metric, now time.Time, st warehouse.ExperimentStats) *warehouse.TimeStats {
	sums := overallSums(st)
	def := definitionDigest(exp, used)
	e.mu.Lock()
	last, ok := e.times[exp.Key]
	e.mu.Unlock()
	if ok && last.definition == def && !moved(last.sums, sums) && now.Sub(last.at) < TimeStatsEvery {
		return last.ts
	}
	ts, err := e.opt.TimeStats(ctx, exp, used, now)
	if err != nil {
		e.opt.Logger.Warn("statistics over time failed: the last stand", "experiment", exp.Key, "err", err)
		return last.ts
	}
	e.mu.Lock()
	e.times[exp.Key] = timeStats{definition: def, sums: sums, at: now, ts: &ts}
	e.mu.Unlock()
	return &ts
}

// digestOf hashes a readout's content, leaving out what changes at every
// evaluation (version, computed_at).
func digestOf(ro readout.Readout) ([32]byte, error) {
	ro.Version, ro.ComputedAt = 0, time.Time{}
	b, err := json.Marshal(ro)
	if err != nil {
		return [32]byte{}, fmt.Errorf("encode readout: %w", err)
	}
	return sha256.Sum256(b), nil
}

// NewEngine returns an engine that continues each experiment's versions
// from the readouts already stored.
func NewEngine(ctx context.Context, opt EngineOptions) (*Engine, error) {
	opt.Hold = max(opt.Hold, 0)
	versions, err := opt.Warehouse.LatestVersions(ctx)
	if err != nil {
		return nil, fmt.Errorf("read readout versions: %w", err)
	}
	return &Engine{opt: opt, metrics: newMetrics(opt.Registerer), versions: versions, last: map[string]readout.Status{}, digests: map[string][32]byte{}, published: map[string]uint64{}, times: map[string]timeStats{}}, nil
}

// storeAndPublish stores readout version of experiment in ClickHouse and
// publishes it on verdict.readouts.<experiment>, with a Nats-Msg-Id that
// makes publishing it twice harmless.
func (e *Engine) storeAndPublish(ctx context.Context, experiment string, version uint64, ro readout.Readout, doc []byte) error {
	if err := e.opt.Warehouse.StoreReadout(ctx, experiment, version, ro.ComputedAt, ro.DataThrough, string(ro.Status), string(ro.Label), doc); err != nil {
		return err
	}
	e.mu.Lock()
	e.versions[experiment] = version
	e.last[experiment] = ro.Status
	e.mu.Unlock()
	msg := nats.NewMsg(stream.ReadoutsPrefix + experiment)
	msg.Data = doc
	msg.Header.Set(nats.MsgIdHdr, experiment+"."+strconv.FormatUint(version, 10))
	if err := e.opt.Publish(ctx, msg); err != nil {
		return fmt.Errorf("publish readout %d: %w", version, err)
	}
	e.mu.Lock()
	e.published[experiment] = version
	e.mu.Unlock()
	return nil
}

// catchUp publishes the readout st holds when it is not known to be
// published: it was taken by an instance (this one before a restart, or
// another) that died between taking its version and publishing it.
func (e *Engine) catchUp(ctx context.Context, st State) error {
	e.mu.Lock()
	published := e.published[st.Experiment]
	e.mu.Unlock()
	if st.Version == 0 || len(st.Readout) == 0 || published == st.Version {
		return nil
	}
	if e.opt.LastPublished != nil {
		last, err := e.opt.LastPublished(ctx, st.Experiment)
		if err != nil {
			return fmt.Errorf("read the last readout published: %w", err)
		}
		if last >= st.Version {
			e.mu.Lock()
			e.published[st.Experiment] = st.Version
			e.mu.Unlock()
			return nil
		}
	}
	var ro readout.Readout
	if err := json.Unmarshal(st.Readout, &ro); err != nil {
		return fmt.Errorf("decode the readout of %s in %s: %w", st.Experiment, StateBucket, err)
	}
	e.opt.Logger.Info("publishing a readout taken but not published", "experiment", st.Experiment, "version", st.Version)
	return e.storeAndPublish(ctx, st.Experiment, st.Version, ro, st.Readout)
}

// MaxIngestLag is how long the oldest event ingest has not yet taken may
// have waited in VERDICT_EVENTS for a readout to count as caught up. A
// steady stream always has some events in flight between two fetches, for
// well under a second; a stream that never drained to zero would otherwise
// never be decided. A backfill, or an ingest that is down or slow, is
// behind by more.
const MaxIngestLag = 2 * time.Second

// LateData is how long after an experiment's attribution window closes its
// events may still arrive: ingest accepts events up to 30 days old. Until
// then an ended experiment is still evaluated, but a readout is published
// only when it differs from the last one.
const LateData = 30 * 24 * time.Hour

// EvaluateAll evaluates every experiment that has started and has not long
// finished, up to Concurrency at once, each as of its own look's time. One
// failing experiment does not stop the others. While the round runs, the
// leases it holds are renewed (when Leases is a Renewer), so a long round
// does not let them lapse.
func (e *Engine) EvaluateAll(ctx context.Context) error {
	e.round.Lock()
	defer e.round.Unlock()
	defs, err := e.opt.Load(ctx)
	if err != nil {
		return fmt.Errorf("load definitions: %w", err)
	}
	for key, err := range defs.Refused {
		if e.refused[key] != err.Error() {
			e.opt.Logger.Error("a stored definition fails validation: its experiment is not looked at until it is applied again", "experiment", key, "err", err)
		}
	}
	e.refused = map[string]string{}
	for key, err := range defs.Refused {
		e.refused[key] = err.Error()
	}
	metrics := make(map[string]config.Metric, len(defs.Metrics))
	for _, m := range defs.Metrics {
		metrics[m.Key] = m
	}
	now := e.opt.Now().UTC()
	backlog, err := e.opt.Backlog(ctx)
	if err != nil {
		return fmt.Errorf("read the ingest backlog: %w", err)
	}
	var held map[string]bool
	if e.opt.Leases != nil {
		var due []string
		for _, exp := range defs.Experiments {
			if !now.Before(exp.Start) {
				due = append(due, exp.Key)
			}
		}
		if held, err = e.opt.Leases.Hold(ctx, due); err != nil {
			return fmt.Errorf("hold leases: %w", err)
		}
		if r, ok := e.opt.Leases.(Renewer); ok {
			stop := e.renewWhile(ctx, r)
			defer stop()
		}
	}
	if e.opt.Retain != nil {
		e.opt.Retain(func(key string) bool {
			if held != nil {
				return held[key]
			}
			return slices.ContainsFunc(defs.Experiments, func(exp config.Experiment) bool { return exp.Key == key })
		})
	}
	var (
		mu       sync.Mutex // guards errs and statuses
		errs     []error
		statuses = map[readout.Status]int{}
	)
	defer func() {
		e.metrics.status.Reset()
		for _, st := range []readout.Status{readout.Collecting, readout.Decided, readout.Invalid} {
			e.metrics.status.WithLabelValues(string(st)).Set(float64(statuses[st]))
		}
	}()
	g := new(errgroup.Group)
	g.SetLimit(cmp.Or(e.opt.Concurrency, 4))
	for _, exp := range defs.Experiments {
		if now.Before(exp.Start) || (held != nil && !held[exp.Key]) {
			continue
		}
		e.mu.Lock()
		version, last := e.versions[exp.Key], e.last[exp.Key]
		e.mu.Unlock()
		if exp.End != nil && now.After(exp.End.Add(time.Duration(exp.AttributionWindow)+LateData)) && version > 0 {
			mu.Lock()
			statuses[last]++
			mu.Unlock()
			continue
		}
		g.Go(func() error {
			status, err := e.evaluate(ctx, exp, metrics, backlog)
			mu.Lock()
			defer mu.Unlock()
			if status != "" {
				statuses[status]++
			}
			if err != nil {
				e.metrics.failures.Inc()
				e.opt.Logger.Warn("evaluate experiment", "experiment", exp.Key, "err", err)
				errs = append(errs, fmt.Errorf("experiment %s: %w", exp.Key, err))
			}
			return nil
		})
	}
	g.Wait()
	return errors.Join(errs...)
}

// renewWhile renews r's leases every third of their lifetime until the
// returned function is called.
func (e *Engine) renewWhile(ctx context.Context, r Renewer) (stop func()) {
	every := time.Second
	if l, ok := r.(*KVLeases); ok && l.TTL > 0 {
		every = l.TTL / 3
	}
	ctx, cancel := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() {
		defer close(done)
		t := time.NewTicker(every)
		defer t.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-t.C:
				if err := r.Renew(ctx); err != nil && ctx.Err() == nil {
					e.opt.Logger.Warn("renew leases", "err", err)
				}
			}
		}
	}()
	return func() {
		cancel()
		<-done
	}
}

// evaluate computes, stores and publishes one readout, as of the time it
// starts, and returns the status of the experiment's latest readout. The
// experiment's state is stored before the readout: a crash in between
// leaves a decision that the next look publishes, never a published
// decision that is forgotten.
func (e *Engine) evaluate(ctx context.Context, exp config.Experiment, metrics map[string]config.Metric, backlog stream.Backlog) (readout.Status, error) {
	start := time.Now()
	now := e.opt.Now().UTC()
	e.mu.Lock()
	last, lastDigest, lastVersion := e.last[exp.Key], e.digests[exp.Key], e.versions[exp.Key]
	e.mu.Unlock()
	used := referenced(exp, metrics)
	statsOf := e.opt.Stats
	if statsOf == nil {
		statsOf = e.opt.Warehouse.ExperimentStats
	}
	st, err := statsOf(ctx, exp, used, now)
	if errors.Is(err, tally.ErrBuilding) {
		e.opt.Logger.Debug("tally rebuilding: the last readout stands", "experiment", exp.Key)
		return last, nil
	}
	if err != nil {
		return last, err
	}
	if e.opt.TimeStats != nil {
		st.Time = e.timeStatsOf(ctx, exp, used, now, st)
	}
	state, rev, err := e.opt.States.Get(ctx, exp.Key)
	if err != nil {
		return last, err
	}
	if err := e.catchUp(ctx, state); err != nil {
		return last, err
	}
	state.Experiment = exp.Key
	if def := definitionDigest(exp, used); def != state.Definition {
		state.Definition, state.Running = def, nil
	}
	look, running := Evaluate(exp, metrics, st, now, state.Running)
	provisional := backlog.Pending > 0 && backlog.Lag > MaxIngestLag
	look.Health.Backlog = backlog.Pending
	ro, lifecycle := decide.Latch(state.Lifecycle, decide.Look{Readout: look, Provisional: provisional, Now: now, Hold: e.opt.Hold})
	if !provisional {
		state.Running = running
	}
	state.Lifecycle, state.UpdatedAt = lifecycle, now
	// Once the attribution window has closed, nothing changes but late
	// data: publish only what is new.
	digest, err := digestOf(ro)
	if err != nil {
		return last, err
	}
	if exp.End != nil && now.After(exp.End.Add(time.Duration(exp.AttributionWindow))) && digest == lastDigest {
		return last, nil
	}
	// The version is taken with the state, by compare-and-set: when
	// another instance took the next one meanwhile, Put fails and this
	// look is dropped.
	version := max(state.Version, lastVersion) + 1
	ro.Version = int64(version)
	ro.ComputedAt = now
	doc, err := json.Marshal(ro)
	if err != nil {
		return last, fmt.Errorf("encode readout: %w", err)
	}
	state.Version, state.Readout = version, doc
	if _, err := e.opt.States.Put(ctx, state, rev); err != nil {
		return last, err
	}
	if d := lifecycle.DecidedAt; d != nil && d.Equal(now) {
		e.opt.Logger.Info("decided", "experiment", exp.Key, "status", ro.Status, "label", ro.Label, "held", e.opt.Hold)
	}
	e.mu.Lock()
	e.digests[exp.Key] = digest
	e.mu.Unlock()
	if err := e.storeAndPublish(ctx, exp.Key, version, ro, doc); err != nil {
		return ro.Status, err
	}
	e.metrics.observe(ro, time.Since(start))
	e.opt.Logger.Info("readout", "experiment", exp.Key, "version", version, "status", ro.Status, "label", ro.Label, "units", ro.Progress.Units)
	return ro.Status, nil
}

type metrics struct {
	readouts *prometheus.CounterVec
	seconds  prometheus.Histogram
	failures prometheus.Counter
	srm      prometheus.Counter
	status   *prometheus.GaugeVec
}

func newMetrics(reg prometheus.Registerer) *metrics {
	f := promauto.With(reg)
	m := &metrics{
		readouts: f.NewCounterVec(prometheus.CounterOpts{
			Name: "verdict_readouts_total",
			Help: "Readouts published, by label (none while collecting or invalid).",
		}, []string{"label"}),
		seconds: f.NewHistogram(prometheus.HistogramOpts{
			Name:    "verdict_readout_seconds",
			Help:    "Time to compute one experiment's readout: query, statistics, decision, store, publish.",
			Buckets: prometheus.ExponentialBuckets(0.005, 2, 14),
		}),
		failures: f.NewCounter(prometheus.CounterOpts{
			Name: "verdict_readout_failures_total",
			Help: "Experiment evaluations that failed (retried at the next interval).",
		}),
		srm: f.NewCounter(prometheus.CounterOpts{
			Name: "verdict_srm_detections_total",
			Help: "Readouts that found a sample ratio mismatch.",
		}),
		status: f.NewGaugeVec(prometheus.GaugeOpts{
			Name: "verdict_experiments",
			Help: "Experiments by the status of their latest readout.",
		}, []string{"status"}),
	}
	for _, l := range []string{"persevere", "pivot", "salvage", "none"} {
		m.readouts.WithLabelValues(l)
	}
	return m
}

func (m *metrics) observe(ro readout.Readout, took time.Duration) {
	label := string(ro.Label)
	if label == "" {
		label = "none"
	}
	m.readouts.WithLabelValues(label).Inc()
	m.seconds.Observe(took.Seconds())
	if ro.Health.SRM == readout.SRMMismatch {
		m.srm.Inc()
	}
}
