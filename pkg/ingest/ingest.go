package ingest

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"
	"golang.org/x/sync/errgroup"

	"github.com/verdictlabs/verdict/pkg/event"
	"github.com/verdictlabs/verdict/pkg/retry"
	"github.com/verdictlabs/verdict/pkg/stream"
	"github.com/verdictlabs/verdict/pkg/warehouse"
	"github.com/verdictlabs/verdict/pkg/web"
)

// ConsumerName is the durable consumer that ingest reads VERDICT_EVENTS with.
const ConsumerName = "ingest"

// DefaultAckWait is Config.AckWait's default.
const DefaultAckWait = 15 * time.Second

// MaxFetchBytes bounds one fetch in bytes as well as in messages: a batch
// of 10,000 typical events is about 3 MB, a batch of the largest (64 KiB)
// would be 640 MB. Each worker holds a few batches at a time.
const MaxFetchBytes = 16 << 20

// Config is the ingest service's configuration.
type Config struct {
	NATSURL    string           // VERDICT_NATS_URL
	NATSAuth   stream.Auth      // VERDICT_NATS_CREDS, _NKEY, _USER, _PASSWORD, _TOKEN, _TLS_*
	ClickHouse warehouse.Config // VERDICT_CLICKHOUSE_ADDR, VERDICT_CLICKHOUSE_DB
	BatchSize  int              // messages per batch, default 10000
	BatchWait  time.Duration    // longest wait to fill a batch, default 1s
	// AckWait is how soon the messages of a worker that died without a
	// word (kill -9, a lost host) go to another: default 15s. A batch
	// being worked on is kept from redelivery by in-progress acks every
	// AckWait/3, however long its insert takes.
	AckWait time.Duration
	Window  event.Window  // accepted ts range, default event.DefaultWindow
	Limits  stream.Limits // stream limits, default stream.DefaultLimits
	// ConsumerPoll is how often the consumer's pending and redelivered
	// counts are read for the metrics, default 5s.
	ConsumerPoll time.Duration

	Logger     *slog.Logger
	Registerer prometheus.Registerer
	Checks     *web.Checks // readiness checks are added here when non-nil
	Now        func() time.Time
}

func (c *Config) setDefaults() {
	if c.BatchSize <= 0 {
		c.BatchSize = 10000
	}
	if c.BatchWait <= 0 {
		c.BatchWait = time.Second
	}
	if c.AckWait <= 0 {
		c.AckWait = DefaultAckWait
	}
	if c.ConsumerPoll <= 0 {
		c.ConsumerPoll = 5 * time.Second
	}
	if c.Window == (event.Window{}) {
		c.Window = event.DefaultWindow
	}
	if c.Limits == (stream.Limits{}) {
		c.Limits = stream.DefaultLimits
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	if c.Registerer == nil {
		c.Registerer = prometheus.NewRegistry()
	}
	if c.Now == nil {
		c.Now = time.Now
	}
}

// Run connects to NATS and ClickHouse, declares the streams, the tables and
// the durable consumer, and ingests until ctx is cancelled; then it finishes
// the batch in hand and returns.
func Run(ctx context.Context, cfg Config) error {
	cfg.setDefaults()
	log := cfg.Logger.With("service", "ingest")

	nc, js, err := stream.Open(ctx, cfg.NATSURL, cfg.NATSAuth, "verdict-ingest", cfg.Limits, log)
	if err != nil {
		return err
	}
	defer nc.Close()
	wh, err := warehouse.Dial(ctx, cfg.ClickHouse, log)
	if err != nil {
		return err
	}
	defer wh.Close()

	cons, err := js.CreateOrUpdateConsumer(ctx, stream.EventsStream, ConsumerConfig(cfg.BatchSize, cfg.AckWait))
	if err != nil {
		return fmt.Errorf("create consumer %s on %s: %w", ConsumerName, stream.EventsStream, err)
	}
	if cfg.Checks != nil {
		cfg.Checks.Add("nats", func(context.Context) error {
			if !nc.IsConnected() {
				return errors.New("not connected to " + stream.Redact(cfg.NATSURL))
			}
			return nil
		})
		cfg.Checks.Add("clickhouse", wh.Ping)
	}
	in := &Ingester{
		cons:     cons,
		js:       js,
		nc:       nc,
		insert:   wh.Insert,
		metrics:  newMetrics(cfg.Registerer),
		log:      log,
		now:      cfg.Now,
		batch:    cfg.BatchSize,
		wait:     cfg.BatchWait,
		ackWait:  cfg.AckWait,
		decoder:  event.NewDecoder(cfg.Window),
		stopWait: 30 * time.Second,
	}
	pollCtx, stopPoll := context.WithCancel(ctx)
	polled := make(chan struct{})
	go func() {
		defer close(polled)
		in.metrics.pollConsumer(pollCtx, cons.Info, cfg.ConsumerPoll, log)
	}()
	defer func() { stopPoll(); <-polled }()

	log.Info("ingesting", "stream", stream.EventsStream, "consumer", ConsumerName, "batch", cfg.BatchSize)
	return in.Run(ctx)
}

// ConsumerConfig is the durable consumer ingest reads with. MaxAckPending
// holds several batches, so the next fetch is never stalled by the one being
// inserted.
func ConsumerConfig(batch int, ackWait time.Duration) jetstream.ConsumerConfig {
	return jetstream.ConsumerConfig{
		Durable:       ConsumerName,
		Description:   "verdict ingest: events into ClickHouse",
		AckPolicy:     jetstream.AckExplicitPolicy,
		AckWait:       ackWait,
		MaxAckPending: 4 * batch,
		DeliverPolicy: jetstream.DeliverAllPolicy,
		// Unlimited: a message whose insert keeps failing is retried, never
		// dropped.
		MaxDeliver:      -1,
		MaxRequestBatch: batch,
	}
}

// InsertFunc writes decoded events into the warehouse. It must be safe to
// call again with the same events.
type InsertFunc func(ctx context.Context, evs []event.Event) (warehouse.Counts, error)

// Ingester is the fetch → decode → insert → ack pipeline.
type Ingester struct {
	cons     jetstream.Consumer
	js       jetstream.JetStream
	nc       *nats.Conn
	insert   InsertFunc
	metrics  *metrics
	log      *slog.Logger
	now      func() time.Time
	batch    int
	wait     time.Duration
	ackWait  time.Duration
	decoder  *event.Decoder
	stopWait time.Duration // how long a shutdown may spend on the last batch
}

type deadLetter struct {
	msg    jetstream.Msg
	reason event.Reason
	detail string
}

type batch struct {
	msgs   []jetstream.Msg // every message, acked after the insert
	events []event.Event
	dead   []deadLetter
	// stopKeep ends the in-progress acks that keep msgs from redelivery
	// from the fetch until the batch is done with (KeepInProgress).
	stopKeep func()
}

// reset empties b for reuse, dropping its references so that the messages
// and event strings can be collected.
func (b *batch) reset() {
	if b.stopKeep != nil {
		b.stopKeep()
		b.stopKeep = nil
	}
	clear(b.msgs)
	clear(b.events)
	clear(b.dead)
	b.msgs, b.events, b.dead = b.msgs[:0], b.events[:0], b.dead[:0]
}

// Run fetches and inserts until ctx is cancelled, then inserts and
// acknowledges the batch in hand before returning.
func (in *Ingester) Run(ctx context.Context) error {
	batches := make(chan *batch, 1)
	// At most three batches exist (being fetched, queued, being inserted);
	// they are reused, so a backlog costs no garbage beyond the messages.
	free := make(chan *batch, 3)
	g := new(errgroup.Group)
	g.Go(func() error {
		defer close(batches)
		return in.fetchLoop(ctx, batches, free)
	})
	g.Go(func() error {
		for b := range batches {
			if err := in.handle(ctx, b); err != nil {
				// Unacked messages come back after AckWait: nothing is lost.
				in.log.Warn("batch left unacknowledged", "rows", len(b.events), "err", err)
				b.reset()
				for b := range batches {
					b.reset()
				}
				return nil
			}
			b.reset()
			select {
			case free <- b:
			default:
			}
		}
		return nil
	})
	return g.Wait()
}

func (in *Ingester) fetchLoop(ctx context.Context, out chan<- *batch, free chan *batch) error {
	backoff := retry.NewBackoff(5 * time.Second)
	for ctx.Err() == nil {
		msgs, err := in.cons.Fetch(in.batch, jetstream.FetchMaxWait(in.wait), jetstream.FetchMaxBytes(MaxFetchBytes))
		if err != nil {
			in.log.Warn("fetch", "err", err)
			if !backoff.Wait(ctx) {
				return nil
			}
			continue
		}
		var b *batch
		select {
		case b = <-free:
		default:
			b = &batch{msgs: make([]jetstream.Msg, 0, in.batch), events: make([]event.Event, 0, in.batch)}
		}
		now := in.now()
		for msg := range msgs.Messages() {
			in.decode(b, msg, now)
		}
		if err := msgs.Error(); err != nil && !errors.Is(err, nats.ErrTimeout) && !errors.Is(err, jetstream.ErrNoMessages) {
			in.log.Warn("fetch batch", "err", err, "messages", len(b.msgs))
		}
		if len(b.msgs) == 0 {
			select {
			case free <- b:
			default:
			}
			continue
		}
		backoff.Reset()
		in.metrics.batchSize.Observe(float64(len(b.msgs)))
		// From here until acked, the batch's messages are worked on: a
		// batch queued behind a slow insert must not come back to another
		// worker, even with a short AckWait.
		b.stopKeep = stream.KeepInProgress(in.ackWait, b.msgs...)
		out <- b
	}
	return nil
}

// decode decodes one message into b; now is the fetch's time, for the
// accepted ts window.
func (in *Ingester) decode(b *batch, msg jetstream.Msg, now time.Time) {
	b.msgs = append(b.msgs, msg)
	subject := msg.Subject()
	switch subject {
	case event.SubjectExposure:
		in.metrics.receivedExposure.Inc()
	case event.SubjectTrack:
		in.metrics.receivedTrack.Inc()
	default:
		in.metrics.receivedUnknown.Inc()
	}
	ev, err := in.decoder.Decode(subject, msg.Data(), now)
	var bad *event.Error
	switch {
	case err == nil:
		if md, err := msg.Metadata(); err == nil {
			ev.Seq = md.Sequence.Stream
		}
		b.events = append(b.events, ev)
	case errors.As(err, &bad):
		b.dead = append(b.dead, deadLetter{msg: msg, reason: bad.Reason, detail: bad.Error()})
	default:
		b.dead = append(b.dead, deadLetter{msg: msg, reason: event.ReasonMalformedJSON, detail: err.Error()})
	}
}

// handle dead-letters, inserts and acknowledges one batch. It returns an
// error only when shutdown came before the batch could be written.
func (in *Ingester) handle(ctx context.Context, b *batch) error {
	// After cancellation the batch in hand still gets stopWait to land.
	wctx, cancel := retry.WithGrace(ctx, in.stopWait)
	defer cancel()

	if err := in.retry(wctx, "publish to dead-letter stream", in.metrics.dlqErrors, func(ctx context.Context) error {
		return in.deadLetter(ctx, b.dead)
	}); err != nil {
		return err
	}
	for _, d := range b.dead {
		in.metrics.invalid.WithLabelValues(string(d.reason)).Inc()
	}
	start := time.Now()
	var counts warehouse.Counts
	if err := in.retry(wctx, "insert batch", in.metrics.insertErrors, func(ctx context.Context) (err error) {
		counts, err = in.insert(ctx, b.events)
		return err
	}); err != nil {
		return err
	}
	in.metrics.batchSeconds.Observe(time.Since(start).Seconds())
	in.metrics.inserted.WithLabelValues("exposures").Add(float64(counts.Exposures))
	in.metrics.inserted.WithLabelValues("events").Add(float64(counts.Events))
	now := in.now()
	for i := range b.events {
		in.metrics.lag.Observe(now.Sub(b.events[i].TS).Seconds())
	}
	for _, msg := range b.msgs {
		if err := msg.Ack(); err != nil {
			in.log.Warn("ack", "err", err)
		}
	}
	// One round trip makes sure the acks have reached the server.
	if err := in.nc.FlushTimeout(10 * time.Second); err != nil {
		in.log.Warn("flush acks", "err", err)
	}
	in.log.Debug("batch ingested", "rows", len(b.events), "dead", len(b.dead))
	return nil
}

// deadLetter publishes rejected events to verdict.dlq.<reason>. The message
// id is the source stream sequence, so a redelivered bad event is stored once.
func (in *Ingester) deadLetter(ctx context.Context, dead []deadLetter) error {
	if len(dead) == 0 {
		return nil
	}
	msgs := make([]*nats.Msg, 0, len(dead))
	for _, d := range dead {
		m := stream.DeadLetter(d.reason, d.detail, d.msg.Subject(), d.msg.Data())
		if md, err := d.msg.Metadata(); err == nil {
			m.Header.Set(nats.MsgIdHdr, "ingest-"+strconv.FormatUint(md.Sequence.Stream, 10))
		}
		msgs = append(msgs, m)
	}
	return stream.PublishAll(ctx, in.js, msgs)
}

// retry calls f until it succeeds, backing off between attempts, or until
// ctx ends.
func (in *Ingester) retry(ctx context.Context, what string, failures prometheus.Counter, f func(context.Context) error) error {
	backoff := retry.NewBackoff(5 * time.Second)
	for {
		err := f(ctx)
		if err == nil {
			return nil
		}
		failures.Inc()
		in.log.Warn(what+", will retry", "err", err, "in", backoff.Next())
		if !backoff.Wait(ctx) {
			return fmt.Errorf("%s: %w", what, err)
		}
	}
}
