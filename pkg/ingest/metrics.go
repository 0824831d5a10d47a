package ingest

import (
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promauto"

	"github.com/verdictlabs/verdict/pkg/event"
)

type metrics struct {
	received     *prometheus.CounterVec
	invalid      *prometheus.CounterVec
	inserted     *prometheus.CounterVec
	batchSeconds prometheus.Histogram
	batchSize    prometheus.Histogram
	lag          prometheus.Histogram
	insertErrors prometheus.Counter
	dlqErrors    prometheus.Counter
}

var allReasons = []event.Reason{
	event.ReasonTooLarge, event.ReasonMalformedJSON, event.ReasonMissingField, event.ReasonSchema,
	event.ReasonBadKey, event.ReasonBadTimestamp, event.ReasonOutOfWindow, event.ReasonNonFinite,
	event.ReasonUnknownSubject, event.ReasonTypeMismatch,
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
	}
	// Series exist from the start, so rate() and alerts see zeros, not gaps.
	for _, t := range []string{"exposure", "track", "unknown"} {
		m.received.WithLabelValues(t)
	}
	for _, r := range allReasons {
		m.invalid.WithLabelValues(string(r))
	}
	for _, t := range []string{"exposures", "events"} {
		m.inserted.WithLabelValues(t)
	}
	return m
}
