package notifier

import (
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promauto"
)

type metrics struct {
	sent      prometheus.Counter
	failed    prometheus.Counter
	abandoned prometheus.Counter
	refused   prometheus.Counter
	readouts  *prometheus.CounterVec
	seconds   prometheus.Histogram

	hookSent, hookFailed *prometheus.CounterVec
	digests              prometheus.Counter
	digestsFailed        prometheus.Counter
}

var outcomes = []string{"emailed", "unchanged", "duplicate", "malformed", "abandoned"}

func newMetrics(reg prometheus.Registerer) *metrics {
	f := promauto.With(reg)
	m := &metrics{
		sent: f.NewCounter(prometheus.CounterOpts{
			Name: "verdict_emails_sent_total",
			Help: "Readout emails accepted by the SMTP server (or written to the outbox).",
		}),
		failed: f.NewCounter(prometheus.CounterOpts{
			Name: "verdict_emails_failed_total",
			Help: "Failed attempts to send a readout email; transient ones are retried, permanent ones also count in verdict_emails_abandoned_total.",
		}),
		abandoned: f.NewCounter(prometheus.CounterOpts{
			Name: "verdict_emails_abandoned_total",
			Help: "Readout emails given up after a permanent failure (5xx, no valid recipient, still failing after the retry budget); recorded in the verdict_notifier KV bucket.",
		}),
		refused: f.NewCounter(prometheus.CounterOpts{
			Name: "verdict_emails_refused_recipients_total",
			Help: "Owner addresses left out of readout emails because their domain is not in VERDICT_SMTP_ALLOWED_DOMAINS.",
		}),
		readouts: f.NewCounterVec(prometheus.CounterOpts{
			Name: "verdict_notifier_readouts_total",
			Help: "Readouts handled by the notifier, by outcome.",
		}, []string{"outcome"}),
		seconds: f.NewHistogram(prometheus.HistogramOpts{
			Name:    "verdict_email_send_seconds",
			Help:    "Time of one attempt to send an email.",
			Buckets: prometheus.ExponentialBuckets(0.005, 2, 14),
		}),
	}
	m.hookSent = f.NewCounterVec(prometheus.CounterOpts{
		Name: "verdict_notifications_sent_total",
		Help: "Decisions posted to Slack incoming webhooks (target slack) and to webhooks (target webhook).",
	}, []string{"target"})
	m.hookFailed = f.NewCounterVec(prometheus.CounterOpts{
		Name: "verdict_notifications_failed_total",
		Help: "Failed attempts to post a decision, by target; transient ones are retried.",
	}, []string{"target"})
	m.digests = f.NewCounter(prometheus.CounterOpts{
		Name: "verdict_digests_sent_total",
		Help: "Digests sent: one per owner (and per default Slack target) per VERDICT_DIGEST period.",
	})
	m.digestsFailed = f.NewCounter(prometheus.CounterOpts{
		Name: "verdict_digests_failed_total",
		Help: "Digests given up after their retries (a permanent error, or the retry budget spent).",
	})
	for _, t := range []string{"slack", "webhook"} {
		m.hookSent.WithLabelValues(t)
		m.hookFailed.WithLabelValues(t)
	}
	for _, o := range outcomes {
		m.readouts.WithLabelValues(o)
	}
	return m
}
