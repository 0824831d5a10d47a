package stream

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/verdictlabs/verdict/pkg/event"
)

// DecisionsBucket is the KV bucket where the rules service keeps each
// experiment's decision state, with its latest readout (pkg/rules); the
// notifier checks every readout against it.
const DecisionsBucket = "verdict_decisions"

// Stream names and subjects of the contract.
const (
	EventsStream   = "VERDICT_EVENTS"
	EventsSubjects = "verdict.events.>"
	DLQStream      = "VERDICT_DLQ"
	DLQSubjects    = "verdict.dlq.>"
	DLQPrefix      = "verdict.dlq."

	ReadoutsStream   = "VERDICT_READOUTS"
	ReadoutsSubjects = "verdict.readouts.>"
	ReadoutsPrefix   = "verdict.readouts."

	// ErrorHeader carries why a dead-lettered event was rejected.
	ErrorHeader = "Verdict-Error"
	// SubjectHeader carries the subject the dead-lettered event arrived on.
	SubjectHeader = "Verdict-Subject"
)

// MaxMsgSize is the largest message VERDICT_EVENTS and VERDICT_DLQ take:
// an event's limit (event.MaxSize, 64 KiB) and room for its headers. A
// publish of anything larger is refused by the server; an event between
// the two reaches ingest, which dead-letters it as too_large.
const MaxMsgSize = event.MaxSize + 4<<10

// Limits bound what the streams keep.
type Limits struct {
	EventsMaxAge     time.Duration // default 7 days
	EventsMaxBytes   int64         // default 10 GiB
	DLQMaxAge        time.Duration // default 30 days
	DLQMaxBytes      int64         // default 1 GiB
	ReadoutsMaxAge   time.Duration // default 90 days
	ReadoutsMaxBytes int64         // default 2 GiB
	Duplicates       time.Duration // dedup window on Nats-Msg-Id of VERDICT_DLQ and VERDICT_READOUTS, default 10 minutes
	// EventsDuplicates is VERDICT_EVENTS's dedup window on Nats-Msg-Id
	// (VERDICT_NATS_DUPLICATE_WINDOW): 0 keeps what the stream has, and
	// creates it with DefaultEventsDuplicates. nats-server keeps every
	// message id of the window in memory, about 140 bytes each: 10 s at
	// 25,000 events/s is 35 MiB, 10 min was 2 GiB. Copies outside the
	// window cost a row that ClickHouse and the readouts deduplicate.
	EventsDuplicates time.Duration
	// Replicas of every stream and KV bucket (VERDICT_NATS_REPLICAS): 0
	// creates them with the server's default (1) and keeps the replicas an
	// existing one has; n > 0 creates them with n and scales existing ones
	// to n.
	Replicas int
}

// DefaultEventsDuplicates is VERDICT_EVENTS's dedup window unless
// VERDICT_NATS_DUPLICATE_WINDOW says otherwise: long enough for a client's
// retries of a publish, short enough that the ids it keeps stay small.
const DefaultEventsDuplicates = 10 * time.Second

// ParseDuplicateWindow reads VERDICT_NATS_DUPLICATE_WINDOW: empty is
// DefaultEventsDuplicates, else a duration from 100ms to 1h.
func ParseDuplicateWindow(s string) (time.Duration, error) {
	if s == "" {
		return DefaultEventsDuplicates, nil
	}
	d, err := time.ParseDuration(s)
	if err != nil || d < 100*time.Millisecond || d > time.Hour {
		return 0, fmt.Errorf("VERDICT_NATS_DUPLICATE_WINDOW %q: want a duration from 100ms to 1h, such as 10s", s)
	}
	return d, nil
}

// WithReplicas returns l with Replicas n.
func (l Limits) WithReplicas(n int) Limits {
	l.Replicas = n
	return l
}

// ParseReplicas reads VERDICT_NATS_REPLICAS: empty is 0 (keep), else 1 to 5.
func ParseReplicas(s string) (int, error) {
	if s == "" {
		return 0, nil
	}
	n, err := strconv.Atoi(s)
	if err != nil || n < 1 || n > 5 {
		return 0, fmt.Errorf("VERDICT_NATS_REPLICAS %q: want 1 to 5 (3 for a three-node cluster)", s)
	}
	return n, nil
}

// EnsureKeyValue opens the KV bucket cfg.Bucket, creating it with cfg when
// it does not exist. An existing bucket keeps its settings, except that a
// cfg.Replicas > 0 it does not have yet is applied: no service start takes
// replicas away from a bucket.
func EnsureKeyValue(ctx context.Context, js jetstream.JetStream, cfg jetstream.KeyValueConfig) (jetstream.KeyValue, error) {
	kv, err := js.KeyValue(ctx, cfg.Bucket)
	if err == nil {
		if cfg.Replicas == 0 {
			return kv, nil
		}
		s, err := js.Stream(ctx, "KV_"+cfg.Bucket)
		if err != nil {
			return nil, fmt.Errorf("KV bucket %s: %w", cfg.Bucket, err)
		}
		if s.CachedInfo().Config.Replicas == cfg.Replicas {
			return kv, nil
		}
		if kv, err = js.UpdateKeyValue(ctx, cfg); err != nil {
			return nil, fmt.Errorf("scale KV bucket %s to %d replicas: %w", cfg.Bucket, cfg.Replicas, err)
		}
		return kv, nil
	}
	if !errors.Is(err, jetstream.ErrBucketNotFound) {
		return nil, fmt.Errorf("open KV bucket %s: %w", cfg.Bucket, err)
	}
	kv, err = js.CreateKeyValue(ctx, cfg)
	if errors.Is(err, jetstream.ErrBucketExists) { // created meanwhile by another service
		kv, err = js.KeyValue(ctx, cfg.Bucket)
	}
	if err != nil {
		return nil, fmt.Errorf("create KV bucket %s: %w", cfg.Bucket, err)
	}
	return kv, nil
}

// DefaultLimits are the limits used when none are configured.
var DefaultLimits = Limits{
	EventsMaxAge:   7 * 24 * time.Hour,
	EventsMaxBytes: 10 << 30,
	DLQMaxAge:      30 * 24 * time.Hour,
	DLQMaxBytes:    1 << 30,
	ReadoutsMaxAge: 90 * 24 * time.Hour,
	// Bounded: a readout every minute for every experiment is a few GB a
	// quarter; the notifier reads only the newest, and ClickHouse keeps
	// the history.
	ReadoutsMaxBytes: 2 << 30,
	Duplicates:       10 * time.Minute,
}

// EnsureStreams creates VERDICT_EVENTS, VERDICT_DLQ and VERDICT_READOUTS, or updates them to
// the given limits. It is safe to call at every start.
func EnsureStreams(ctx context.Context, js jetstream.JetStream, l Limits) error {
	for _, cfg := range streamConfigs(l) {
		if s, err := js.Stream(ctx, cfg.Name); err == nil {
			have := s.CachedInfo().Config
			// Without VERDICT_NATS_REPLICAS the replicas are the
			// operator's: a stream scaled out with `nats stream edit
			// --replicas 3` keeps them.
			if cfg.Replicas == 0 {
				cfg.Replicas = have.Replicas
			}
			if cfg.Name == EventsStream && l.EventsDuplicates == 0 {
				cfg.Duplicates = have.Duplicates
			}
			// Update only what differs: services start together under
			// `verdict up`, and a stream update racing another service's
			// consumer creation trips a data race inside nats-server 2.15.
			if sameSettings(have, cfg) {
				continue
			}
		}
		if _, err := js.CreateOrUpdateStream(ctx, cfg); err != nil {
			return fmt.Errorf("create or update stream %s: %w", cfg.Name, err)
		}
	}
	return nil
}

// streamConfigs are the streams verdict declares, with the given limits.
func streamConfigs(l Limits) []jetstream.StreamConfig {
	readoutsMaxBytes := l.ReadoutsMaxBytes
	if readoutsMaxBytes == 0 {
		readoutsMaxBytes = -1 // unlimited, as the server stores it
	}
	return []jetstream.StreamConfig{
		{
			Name:        EventsStream,
			Description: "experiment exposures and behaviour events",
			Subjects:    []string{EventsSubjects},
			Storage:     jetstream.FileStorage,
			Retention:   jetstream.LimitsPolicy,
			Discard:     jetstream.DiscardOld,
			MaxAge:      l.EventsMaxAge,
			MaxBytes:    l.EventsMaxBytes,
			MaxMsgSize:  MaxMsgSize,
			Duplicates:  cmp.Or(l.EventsDuplicates, DefaultEventsDuplicates),
			Replicas:    l.Replicas,
		},
		{
			Name:        DLQStream,
			Description: "rejected events with their reason in the Verdict-Error header",
			Subjects:    []string{DLQSubjects},
			Storage:     jetstream.FileStorage,
			Retention:   jetstream.LimitsPolicy,
			Discard:     jetstream.DiscardOld,
			MaxAge:      l.DLQMaxAge,
			MaxBytes:    l.DLQMaxBytes,
			MaxMsgSize:  MaxMsgSize,
			Duplicates:  l.Duplicates,
			Replicas:    l.Replicas,
		},
		{
			Name:        ReadoutsStream,
			Description: "readouts, one subject per experiment: verdict.readouts.<experiment>",
			Subjects:    []string{ReadoutsSubjects},
			Storage:     jetstream.FileStorage,
			Retention:   jetstream.LimitsPolicy,
			Discard:     jetstream.DiscardOld,
			MaxAge:      l.ReadoutsMaxAge,
			MaxBytes:    readoutsMaxBytes,
			Duplicates:  l.Duplicates,
			Replicas:    l.Replicas,
		},
	}
}

// SameAsDeclared reports whether have is one of the streams EnsureStreams
// declares with limits l, with every setting it manages as declared.
func SameAsDeclared(have jetstream.StreamConfig, l Limits) bool {
	for _, want := range streamConfigs(l) {
		if want.Name == have.Name {
			return sameSettings(have, want)
		}
	}
	return false
}

// sameSettings reports whether have already carries every setting of want
// that EnsureStreams manages.
func sameSettings(have, want jetstream.StreamConfig) bool {
	return slices.Equal(have.Subjects, want.Subjects) && have.Description == want.Description &&
		have.Storage == want.Storage && have.Retention == want.Retention && have.Discard == want.Discard &&
		have.MaxAge == want.MaxAge && have.MaxBytes == want.MaxBytes && have.Duplicates == want.Duplicates &&
		(want.MaxMsgSize == 0 || have.MaxMsgSize == want.MaxMsgSize) &&
		(want.Replicas == 0 || have.Replicas == want.Replicas)
}

// KeepInProgress tells JetStream every third of ackWait that msgs are still
// being worked on, so that a long outage downstream (ClickHouse, SMTP) does
// not get them redelivered to another worker meanwhile. Call stop when done.
func KeepInProgress(ackWait time.Duration, msgs ...jetstream.Msg) (stop func()) {
	done := make(chan struct{})
	finished := make(chan struct{})
	go func() {
		defer close(finished)
		t := time.NewTicker(ackWait / 3)
		defer t.Stop()
		for {
			select {
			case <-done:
				return
			case <-t.C:
				for _, m := range msgs {
					_ = m.InProgress()
				}
			}
		}
	}()
	return func() { close(done); <-finished }
}

// Backlog is what the durable consumer of VERDICT_EVENTS has not yet
// delivered: what ingest still has to land.
type Backlog struct {
	// Pending is the consumer's num_pending: messages not yet delivered.
	Pending int64
	// Lag is how long the oldest of them has waited in the stream (0 when
	// none is pending). A steady stream always has a few messages pending
	// for a moment; a backlog is pending messages that have waited.
	Lag time.Duration
}

// IngestBacklog reads the backlog of the durable consumer on
// VERDICT_EVENTS at now. When the consumer does not exist yet, nothing has
// been ingested: every message of the stream is pending.
func IngestBacklog(ctx context.Context, js jetstream.JetStream, consumer string, now time.Time) (Backlog, error) {
	s, err := js.Stream(ctx, EventsStream)
	if err != nil {
		return Backlog{}, fmt.Errorf("stream %s: %w", EventsStream, err)
	}
	var b Backlog
	var next uint64 // the sequence of the oldest undelivered message, or after it
	c, err := s.Consumer(ctx, consumer)
	switch {
	case errors.Is(err, jetstream.ErrConsumerNotFound):
		info, err := s.Info(ctx)
		if err != nil {
			return Backlog{}, fmt.Errorf("stream %s info: %w", EventsStream, err)
		}
		b.Pending, next = int64(info.State.Msgs), info.State.FirstSeq
	case err != nil:
		return Backlog{}, fmt.Errorf("consumer %s on %s: %w", consumer, EventsStream, err)
	default:
		info, err := c.Info(ctx)
		if err != nil {
			return Backlog{}, fmt.Errorf("consumer %s info: %w", consumer, err)
		}
		b.Pending, next = int64(info.NumPending), info.Delivered.Stream+1
	}
	if b.Pending == 0 {
		return b, nil
	}
	m, err := s.GetMsg(ctx, next, jetstream.WithGetMsgSubject(EventsSubjects))
	if errors.Is(err, jetstream.ErrMsgNotFound) {
		return b, nil // delivered meanwhile
	}
	if err != nil {
		return Backlog{}, fmt.Errorf("oldest pending message of %s: %w", EventsStream, err)
	}
	b.Lag = max(0, now.Sub(m.Time))
	return b, nil
}

// IngestFloor returns the acknowledgement floor of the ingest consumer on
// VERDICT_EVENTS: the stream sequence at or below which every message is
// acknowledged. Ingest acknowledges a message only once its row is in
// ClickHouse (or dead-lettered), so every row that arrived with a seq at or
// below the floor can be read. Without the consumer (ingest has not started
// yet) nothing is in: 0.
func IngestFloor(ctx context.Context, js jetstream.JetStream, consumer string) (uint64, error) {
	c, err := js.Consumer(ctx, EventsStream, consumer)
	if errors.Is(err, jetstream.ErrConsumerNotFound) {
		return 0, nil
	}
	if err != nil {
		return 0, fmt.Errorf("consumer %s on %s: %w", consumer, EventsStream, err)
	}
	info, err := c.Info(ctx)
	if err != nil {
		return 0, fmt.Errorf("consumer %s info: %w", consumer, err)
	}
	return info.AckFloor.Stream, nil
}
