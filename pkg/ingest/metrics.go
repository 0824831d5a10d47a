package ingest

import (
	"context"
	"log/slog"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promauto"

	"github.com/verdictlabs/verdict/pkg/event"
)

type metrics struct {
	received *prometheus.CounterVec
	// The received counters by type, looked up once: they count every message.
	receivedExposure, receivedTrack, receivedUnknown prometheus.Counter
	invalid                                          *prometheus.CounterVec
	inserted                                         *prometheus.CounterVec
	batchSeconds                                     prometheus.Histogram
	batchSize                                        prometheus.Histogram
	lag                                              prometheus.Histogram
	insertErrors                                     prometheus.Counter
	dlqErrors                                        prometheus.Counter

	// From the durable consumer's info, polled (see pollConsumer).
	pending     prometheus.Gauge
	ackPending  prometheus.Gauge
	redelivered prometheus.Gauge
	infoErrors  prometheus.Counter
}

func newMetrics(reg prometheus.Registerer) *metrics {
	f := promauto.With(reg)
	m := &metrics{
		received: f.NewCounterVec(prometheus.CounterOpts{
			Name: "verdict_events_received_total",
			Help: "Events read from VERDICT_EVENTS, valid or not, by type (from the subject).",
		}, []string{"type"}),
		invalid: f.NewCounterVec(prometheus.CounterOpts{
			Name: "verdict_events_invalid_total",
			Help: "Events rejected and sent to VERDICT_DLQ, by reason.",
		}, []string{"reason"}),
		inserted: f.NewCounterVec(prometheus.CounterOpts{
			Name: "verdict_events_inserted_total",
			Help: "Rows inserted into ClickHouse, by table (redeliveries included).",
		}, []string{"table"}),
		batchSeconds: f.NewHistogram(prometheus.HistogramOpts{
			Name:    "verdict_ingest_batch_seconds",
			Help:    "Time to insert one batch into ClickHouse, retries included.",
			Buckets: prometheus.ExponentialBuckets(0.005, 2, 14),
		}),
		batchSize: f.NewHistogram(prometheus.HistogramOpts{
			Name:    "verdict_ingest_batch_size",
			Help:    "Messages in one fetched batch.",
			Buckets: prometheus.ExponentialBuckets(1, 4, 10),
		}),
		lag: f.NewHistogram(prometheus.HistogramOpts{
			Name:    "verdict_event_lag_seconds",
			Help:    "Time from an event's ts to its insert into ClickHouse.",
			Buckets: []float64{0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300, 900, 3600, 86400},
		}),
		insertErrors: f.NewCounter(prometheus.CounterOpts{
			Name: "verdict_ingest_insert_errors_total",
			Help: "Failed ClickHouse inserts (each is retried).",
		}),
		dlqErrors: f.NewCounter(prometheus.CounterOpts{
			Name: "verdict_ingest_dlq_publish_errors_total",
			Help: "Failed publishes to VERDICT_DLQ (each is retried).",
		}),
		pending: f.NewGauge(prometheus.GaugeOpts{
			Name: "verdict_ingest_consumer_pending_messages",
			Help: "Messages in VERDICT_EVENTS not yet delivered to the durable consumer \"ingest\" (its backlog), as of the last poll.",
		}),
		ackPending: f.NewGauge(prometheus.GaugeOpts{
			Name: "verdict_ingest_consumer_ack_pending_messages",
			Help: "Messages delivered to the consumer \"ingest\" and not acknowledged yet (batches being inserted), as of the last poll.",
		}),
		redelivered: f.NewGauge(prometheus.GaugeOpts{
			Name: "verdict_ingest_consumer_redelivered_messages",
			Help: "Messages of the consumer \"ingest\" delivered more than once and not acknowledged yet, as of the last poll.",
		}),
		infoErrors: f.NewCounter(prometheus.CounterOpts{
			Name: "verdict_ingest_consumer_info_errors_total",
			Help: "Failed polls of the consumer \"ingest\"'s info; the consumer gauges keep their last values meanwhile.",
		}),
	}
	// Series exist from the start, so rate() and alerts see zeros, not gaps.
	m.receivedExposure = m.received.WithLabelValues("exposure")
	m.receivedTrack = m.received.WithLabelValues("track")
	m.receivedUnknown = m.received.WithLabelValues("unknown")
	for _, r := range event.Reasons() {
		m.invalid.WithLabelValues(string(r))
	}
	for _, t := range []string{"exposures", "events"} {
		m.inserted.WithLabelValues(t)
	}
	return m
}

// ConsumerInfoFunc returns the durable consumer's state;
// jetstream.Consumer's Info is one.
type ConsumerInfoFunc func(ctx context.Context) (*jetstream.ConsumerInfo, error)

// pollConsumer sets the consumer gauges from info every interval until ctx
// ends. The numbers are the server's, for the consumer as a whole: several
// ingest workers sharing it all report the same values, so dashboards take
// max(), not sum(), over instances.
func (m *metrics) pollConsumer(ctx context.Context, info ConsumerInfoFunc, interval time.Duration, log *slog.Logger) {
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		ictx, cancel := context.WithTimeout(ctx, interval)
		ci, err := info(ictx)
		cancel()
		switch {
		case err == nil:
			m.pending.Set(float64(ci.NumPending))
			m.ackPending.Set(float64(ci.NumAckPending))
			m.redelivered.Set(float64(ci.NumRedelivered))
		case ctx.Err() == nil:
			m.infoErrors.Inc()
			log.Warn("read consumer info", "consumer", ConsumerName, "err", err)
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}
