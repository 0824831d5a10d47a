package notifier

import (
	"cmp"
	"context"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/mail"
	"net/url"
	"regexp"
	"slices"
	"strings"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"
	"golang.org/x/sync/errgroup"

	"github.com/verdictlabs/verdict/pkg/config"
	"github.com/verdictlabs/verdict/pkg/configstore"
	"github.com/verdictlabs/verdict/pkg/readout"
	"github.com/verdictlabs/verdict/pkg/report"
	"github.com/verdictlabs/verdict/pkg/retry"
	"github.com/verdictlabs/verdict/pkg/stream"
	"github.com/verdictlabs/verdict/pkg/web"
)

// Names the notifier owns in NATS.
const (
	ConsumerName = "notifier"         // durable consumer on VERDICT_READOUTS
	Bucket       = "verdict_notifier" // KV: experiment → what was emailed
)

// Config is the notifier's configuration.
type Config struct {
	NATSURL  string      // VERDICT_NATS_URL
	NATSAuth stream.Auth // VERDICT_NATS_CREDS, _NKEY, _USER, _PASSWORD, _TOKEN, _TLS_*
	// NATSReplicas are the replicas of the streams and buckets
	// (VERDICT_NATS_REPLICAS; 0 keeps what they have).
	NATSReplicas int
	SMTP         SMTPConfig // VERDICT_SMTP_*
	// OutboxDir receives .eml files when SMTP.Addr is empty
	// ($VERDICT_DATA_DIR/outbox).
	OutboxDir string
	// BaseURL is where the readout page is served, for links in emails
	// (VERDICT_BASE_URL, default http://<VERDICT_HTTP_ADDR>).
	BaseURL string
	// AckWait is how long NATS waits before redelivering a readout whose
	// notifier died; default 30s.
	AckWait time.Duration
	// RetryMax caps the backoff between delivery attempts; default 1m.
	RetryMax time.Duration
	// GiveUpAfter bounds how long one email is retried before it is
	// recorded as failed and the notifier goes on; default 15m.
	GiveUpAfter time.Duration
	// AllowedDomains are the only recipient domains
	// (VERDICT_SMTP_ALLOWED_DOMAINS); other owners are refused and counted.
	// With SMTP and none set, the sender's domain alone is allowed: a
	// definition must not mail whoever it names. "*" allows any domain.
	AllowedDomains []string
	// AllowedHosts (VERDICT_WEBHOOK_ALLOWED_HOSTS), when set, are the only
	// hosts Slack and webhook URLs may name; a loopback, private or
	// link-local address is refused unless its host is on it (guard.go).
	AllowedHosts []string
	// HookGiveUpAfter bounds how long one Slack or webhook delivery is
	// retried; default 2m. Targets are posted to at once, so a dead one
	// holds the others for no longer than that.
	HookGiveUpAfter time.Duration
	// Slack and Webhooks are where the decisions of experiments without
	// a notify of their own are posted (VERDICT_SLACK_WEBHOOKS,
	// VERDICT_WEBHOOKS); WebhookSecret signs the webhooks' bodies
	// (VERDICT_WEBHOOK_SECRET).
	Slack, Webhooks []string
	WebhookSecret   string
	// Digest is the schedule of the digest (VERDICT_DIGEST): a cron
	// schedule in UTC, "" for Mondays 09:00, "off" for none. DigestCheck
	// is how often the notifier looks whether one is due; default 1m.
	Digest      string
	DigestCheck time.Duration

	Logger     *slog.Logger
	Registerer prometheus.Registerer
	Checks     *web.Checks // readiness checks are added here when non-nil
	Now        func() time.Time

	// Sender replaces SMTP and the outbox (tests).
	Sender Sender
}

func (c *Config) setDefaults() {
	if c.AckWait <= 0 {
		c.AckWait = 30 * time.Second
	}
	if c.RetryMax <= 0 {
		c.RetryMax = time.Minute
	}
	if c.DigestCheck <= 0 {
		c.DigestCheck = time.Minute
	}
	if c.GiveUpAfter <= 0 {
		c.GiveUpAfter = 15 * time.Minute
	}
	if c.HookGiveUpAfter <= 0 {
		c.HookGiveUpAfter = 2 * time.Minute
	}
	if c.SMTP.StartTLS == "" {
		c.SMTP.StartTLS = Opportunistic
	}
	// A password goes only over TLS.
	if c.SMTP.Password != "" && c.SMTP.StartTLS == Opportunistic {
		c.SMTP.StartTLS = Mandatory
	}
	if c.SMTP.Timeout <= 0 {
		c.SMTP.Timeout = time.Minute
	}
	if c.SMTP.HelloName == "" {
		c.SMTP.HelloName = "localhost"
	}
	if c.SMTP.From == "" {
		c.SMTP.From = report.DefaultFrom
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

func (c *Config) validate() error {
	var errs []error
	if _, err := mail.ParseAddress(c.SMTP.From); err != nil {
		errs = append(errs, fmt.Errorf("VERDICT_SMTP_FROM %q: want an address such as \"verdict <[email protected]>\"", c.SMTP.From))
	}
	if c.SMTP.Addr != "" {
		if _, _, err := net.SplitHostPort(c.SMTP.Addr); err != nil {
			errs = append(errs, fmt.Errorf("VERDICT_SMTP_ADDR %q: want host:port, e.g. smtp.example.com:587", c.SMTP.Addr))
		}
	} else if c.OutboxDir == "" && c.Sender == nil {
		errs = append(errs, errors.New("VERDICT_SMTP_ADDR is empty and there is no outbox directory: set VERDICT_SMTP_ADDR or VERDICT_DATA_DIR"))
	}
	switch c.SMTP.StartTLS {
	case Opportunistic, Mandatory, NoTLS:
	default:
		errs = append(errs, fmt.Errorf("VERDICT_SMTP_STARTTLS %q: want opportunistic, mandatory or none", c.SMTP.StartTLS))
	}
	if c.SMTP.Password != "" && c.SMTP.StartTLS == NoTLS {
		errs = append(errs, errors.New("VERDICT_SMTP_STARTTLS none with VERDICT_SMTP_PASSWORD set would send the password in the clear: use mandatory (the default with a password)"))
	}
	if c.SMTP.Password != "" && c.SMTP.Username == "" {
		errs = append(errs, errors.New("VERDICT_SMTP_PASSWORD is set without VERDICT_SMTP_USERNAME: set both, or neither"))
	}
	if _, err := ParseDigest(c.Digest); err != nil {
		errs = append(errs, err)
	}
	if len(c.Webhooks) > 0 && c.WebhookSecret == "" {
		errs = append(errs, errors.New("VERDICT_WEBHOOKS is set without VERDICT_WEBHOOK_SECRET: webhooks are signed with it"))
	}
	if c.BaseURL != "" {
		if u, err := url.Parse(c.BaseURL); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			errs = append(errs, fmt.Errorf("VERDICT_BASE_URL %q: want http(s)://host[:port]", c.BaseURL))
		}
	}
	return errors.Join(errs...)
}

// Run connects to NATS, declares the streams, the KV bucket and the durable
// consumer, and emails readouts until ctx is cancelled.
func Run(ctx context.Context, cfg Config) error {
	cfg.setDefaults()
	if err := cfg.validate(); err != nil {
		return err
	}
	log := cfg.Logger.With("service", "notifier")

	nc, js, err := stream.Open(ctx, cfg.NATSURL, cfg.NATSAuth, "verdict-notifier", stream.DefaultLimits.WithReplicas(cfg.NATSReplicas), log)
	if err != nil {
		return err
	}
	defer nc.Close()
	// An existing bucket keeps its replicas (a start used to reset them
	// to 1).
	kv, err := stream.EnsureKeyValue(ctx, js, jetstream.KeyValueConfig{
		Bucket:      Bucket,
		Description: "verdict notifier: per experiment, the last readout handled and the last email sent",
		History:     5,
		Storage:     jetstream.FileStorage,
		Replicas:    cfg.NATSReplicas,
	})
	if err != nil {
		return fmt.Errorf("create kv bucket %s: %w", Bucket, err)
	}
	// Recipients come from the stored definitions, never from the readout
	// message: anyone who can publish on verdict.readouts.* must not be
	// able to send mail through the relay.
	defs, err := configstore.EnsureBucket(ctx, js, cfg.NATSReplicas)
	if err != nil {
		return err
	}
	cons, err := js.CreateOrUpdateConsumer(ctx, stream.ReadoutsStream, ConsumerConfig(cfg.AckWait))
	if err != nil {
		return fmt.Errorf("create consumer %s on %s: %w", ConsumerName, stream.ReadoutsStream, err)
	}
	if cfg.Checks != nil {
		cfg.Checks.Add("notifier_nats", func(context.Context) error {
			if !nc.IsConnected() {
				return errors.New("not connected to " + stream.Redact(cfg.NATSURL))
			}
			return nil
		})
	}
	sender := cfg.Sender
	switch {
	case sender != nil:
	case cfg.SMTP.Addr != "":
		sender = &smtpSender{cfg: cfg.SMTP, log: log}
		log.Info("emailing over smtp", "smtp", cfg.SMTP)
	default:
		sender = outbox{dir: cfg.OutboxDir}
		log.Info("no VERDICT_SMTP_ADDR: writing emails to the outbox", "dir", cfg.OutboxDir)
	}
	from, _ := mail.ParseAddress(cfg.SMTP.From)
	n := &Notifier{
		cons:        cons,
		kv:          kv,
		send:        sender,
		from:        cfg.SMTP.From,
		envFrom:     from.Address,
		baseURL:     cfg.BaseURL,
		metrics:     newMetrics(cfg.Registerer),
		log:         log,
		now:         cfg.Now,
		ackWait:     cfg.AckWait,
		retryMax:    cfg.RetryMax,
		giveUp:      cfg.GiveUpAfter,
		allowed:     recipientDomains(cfg, log),
		hosts:       cfg.AllowedHosts,
		hookGiveUp:  cfg.HookGiveUpAfter,
		slack:       cfg.Slack,
		webhooks:    cfg.Webhooks,
		secret:      []byte(cfg.WebhookSecret),
		http:        hookClient(cfg.AllowedHosts),
		definitions: func(ctx context.Context) (config.Definitions, error) { return configstore.Load(ctx, defs) },
	}
	n.decisions = func(ctx context.Context) (jetstream.KeyValue, error) { return js.KeyValue(ctx, stream.DecisionsBucket) }
	n.definition = func(ctx context.Context, experiment string) (config.Experiment, bool, error) {
		d, err := n.definitions(ctx)
		if err != nil {
			return config.Experiment{}, false, err
		}
		e, ok := d.Experiment(experiment)
		return e, ok, nil
	}
	if schedule, _ := ParseDigest(cfg.Digest); schedule != nil {
		done := make(chan struct{})
		defer func() { <-done }()
		go func() { defer close(done); n.digestLoop(ctx, schedule, cfg.DigestCheck) }()
		log.Info("digests", "schedule", cmp.Or(cfg.Digest, DefaultDigest))
	}
	log.Info("notifying", "stream", stream.ReadoutsStream, "consumer", ConsumerName, "bucket", Bucket)
	return n.run(ctx)
}

// ConsumerConfig is the durable consumer the notifier reads with. One
// message at a time keeps each experiment's readouts in order.
func ConsumerConfig(ackWait time.Duration) jetstream.ConsumerConfig {
	return jetstream.ConsumerConfig{
		Durable:       ConsumerName,
		Description:   "verdict notifier: emails on verdict changes",
		FilterSubject: stream.ReadoutsSubjects,
		AckPolicy:     jetstream.AckExplicitPolicy,
		AckWait:       ackWait,
		MaxAckPending: 1,
		DeliverPolicy: jetstream.DeliverAllPolicy,
		MaxDeliver:    -1, // an email that cannot go out yet is retried, never dropped
	}
}

// Notifier turns readout messages into emails.
type Notifier struct {
	cons     jetstream.Consumer
	kv       jetstream.KeyValue
	send     Sender
	from     string // From header
	envFrom  string // envelope sender
	baseURL  string
	metrics  *metrics
	log      *slog.Logger
	now      func() time.Time
	ackWait  time.Duration
	retryMax time.Duration
	giveUp   time.Duration
	allowed  map[string]bool // lower-case domains; nil: any
	// hosts are VERDICT_WEBHOOK_ALLOWED_HOSTS; hookGiveUp bounds one
	// Slack or webhook delivery's retries.
	hosts      []string
	hookGiveUp time.Duration
	// Default Slack and webhook targets, the webhooks' secret.
	slack, webhooks []string
	secret          []byte
	http            *http.Client
	// definition is the experiment as stored in verdict_config, and
	// whether it is defined there: its owners and notify are the only
	// recipients.
	definition func(ctx context.Context, experiment string) (config.Experiment, bool, error)
	// decisions opens the rules' state bucket (verify.go).
	decisions func(ctx context.Context) (jetstream.KeyValue, error)
	// definitions are every stored definition (for digests).
	definitions func(ctx context.Context) (config.Definitions, error)
	// digested is the end of the last period whose digests all went out
	// (or were found sent), so later looks skip it; the digest loop's own.
	digested time.Time
}

// recipientDomains are the domains owners may be mailed at: nil for any.
// Over SMTP with no VERDICT_SMTP_ALLOWED_DOMAINS, the sender's domain; the
// outbox (no SMTP) sends nothing anywhere and allows any.
func recipientDomains(cfg Config, log *slog.Logger) map[string]bool {
	if slices.Contains(cfg.AllowedDomains, "*") {
		return nil
	}
	if len(domains(cfg.AllowedDomains)) == 0 && cfg.SMTP.Addr != "" && cfg.Sender == nil {
		from, err := mail.ParseAddress(cfg.SMTP.From)
		if err == nil {
			_, domain, _ := strings.Cut(from.Address, "@")
			log.Info("VERDICT_SMTP_ALLOWED_DOMAINS is not set: owners are mailed only at the sender's domain", "domain", domain)
			return domains([]string{domain})
		}
	}
	return domains(cfg.AllowedDomains)
}

// domains reads VERDICT_SMTP_ALLOWED_DOMAINS into a set; nil when empty.
func domains(list []string) map[string]bool {
	var out map[string]bool
	for _, d := range list {
		if d = strings.ToLower(strings.TrimSpace(d)); d != "" {
			if out == nil {
				out = map[string]bool{}
			}
			out[d] = true
		}
	}
	return out
}

// record is what the KV bucket holds per experiment.
type record struct {
	Experiment string `json:"experiment"`
	// Handled is the highest readout version fully handled (emailed, found
	// unchanged, or given up on).
	Handled int64 `json:"handled_version"`
	// Notified is the last event emailed (or given up on): the state later
	// readouts are compared with.
	Notified *event `json:"notified,omitempty"`
	// Pending is an intent: an email decided on and maybe sent, not yet
	// confirmed. A redelivery of its version sends it (again).
	Pending *event `json:"pending,omitempty"`
}

// event is one email-worthy state of an experiment.
type event struct {
	Version    int64          `json:"version"`
	Status     readout.Status `json:"status"`
	Label      readout.Label  `json:"label"`
	Kind       string         `json:"kind"` // first_label, label_changed, invalid
	MessageID  string         `json:"message_id"`
	Recipients []string       `json:"recipients,omitempty"`
	At         time.Time      `json:"at,omitzero"`
	Error      string         `json:"error,omitempty"` // set when given up on
	// Previous is the readout version of the email before this one.
	Previous int64 `json:"previous_version,omitempty"`
}

// kindOf says whether r is worth an email given the last one, and why.
func kindOf(last *event, r readout.Readout) string {
	switch {
	case r.Status == readout.Invalid:
		if last == nil || last.Status != readout.Invalid {
			return "invalid"
		}
	case r.Status == readout.Decided && r.Label != readout.NoLabel:
		switch {
		case last == nil:
			return "first_label"
		case last.Status != readout.Decided || last.Label != r.Label:
			return "label_changed"
		}
	}
	return ""
}

func (n *Notifier) run(ctx context.Context) error {
	backoff := retry.NewBackoff(5 * time.Second)
	for ctx.Err() == nil {
		msg, err := n.cons.Next(jetstream.FetchMaxWait(2 * time.Second))
		if err != nil {
			// No readout within the wait is the normal idle case.
			if errors.Is(err, jetstream.ErrNoMessages) || errors.Is(err, nats.ErrTimeout) ||
				errors.Is(err, context.DeadlineExceeded) || ctx.Err() != nil {
				continue
			}
			n.log.Warn("fetch readout", "err", err)
			backoff.Wait(ctx)
			continue
		}
		backoff.Reset()
		n.handle(ctx, msg)
	}
	return nil
}

// handle takes one readout message to its end: acked once handled, nak'd on
// shutdown, terminated when it is not a readout.
func (n *Notifier) handle(ctx context.Context, msg jetstream.Msg) {
	stop := stream.KeepInProgress(n.ackWait, msg)
	defer stop()
	var r readout.Readout
	if err := json.Unmarshal(msg.Data(), &r); err != nil || r.Experiment == "" {
		n.log.Error("not a readout: terminated", "subject", msg.Subject(), "err", err)
		n.metrics.readouts.WithLabelValues("malformed").Inc()
		_ = msg.Term()
		return
	}
	if want := stream.ReadoutsPrefix + r.Experiment; msg.Subject() != want {
		n.log.Error("readout on the wrong subject: terminated", "subject", msg.Subject(), "experiment", r.Experiment)
		n.metrics.readouts.WithLabelValues("malformed").Inc()
		_ = msg.Term()
		return
	}
	log := n.log.With("experiment", r.Experiment, "version", r.Version)
	if err := n.verify(ctx, r, msg.Data()); errors.Is(err, errRefused) || errors.Is(err, errSuperseded) {
		outcome := "refused"
		if errors.Is(err, errSuperseded) {
			outcome = "superseded"
			log.Debug("readout superseded: a later one carries its decision", "why", err)
		} else {
			log.Warn("readout refused: not the one the rules service took", "why", err)
		}
		n.metrics.readouts.WithLabelValues(outcome).Inc()
		_ = msg.Term()
		return
	} else if err != nil {
		// NATS could not say: the readout comes again.
		log.Warn("verify readout, will retry", "err", err)
		_ = msg.NakWithDelay(time.Second)
		return
	}
	outcome, err := n.process(ctx, log, r)
	if err != nil {
		// Only shutdown gets here: hand the readout back at once, so the
		// next notifier resumes it (its intent, if any, is in KV).
		log.Info("readout left for the next start", "err", err)
		_ = msg.Nak()
		return
	}
	n.metrics.readouts.WithLabelValues(outcome).Inc()
	ackCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
	defer cancel()
	if err := msg.DoubleAck(ackCtx); err != nil {
		// KV already says this version is handled: the redelivery is acked
		// without an email.
		log.Warn("ack readout", "err", err)
	}
}

// channel is one place an experiment's decisions go: its owners' email,
// or one Slack or webhook target. Each keeps its own record in the bucket,
// so each gets every decision exactly once, and a target added later starts
// with the decision in force.
type channel struct {
	key     string                         // the record's bucket key
	id      func(r readout.Readout) string // the intent's identity: a Message-ID, a delivery id
	deliver func(ctx context.Context, log *slog.Logger, r readout.Readout, last, ev *event) error
}

// process does what the readout calls for on every channel of its
// experiment and reports the email's outcome; an error only when ctx ended
// first. A readout is acked when all its channels are done.
func (n *Notifier) process(ctx context.Context, log *slog.Logger, r readout.Readout) (string, error) {
	exp, defined, err := n.lookup(ctx, log, r.Experiment)
	if err != nil {
		return "", err
	}
	chans := []channel{{
		key: kvKey(r.Experiment),
		id:  func(r readout.Readout) string { return report.MessageID(r.Experiment, r.Version, n.envFrom) },
		deliver: func(ctx context.Context, log *slog.Logger, r readout.Readout, last, ev *event) error {
			return n.deliver(ctx, log, exp, defined, r, last, ev)
		},
	}}
	if defined {
		for _, t := range n.hookTargets(exp) {
			chans = append(chans, channel{
				key:     kvKey(r.Experiment) + ".hook." + t.id(),
				id:      func(r readout.Readout) string { return fmt.Sprintf("%s.v%d.%s", r.Experiment, r.Version, t.id()) },
				deliver: n.deliverHook(t),
			})
		}
	}
	// Channels go at once, at most maxParallelChannels at a time: a dead
	// target costs its own retries (HookGiveUpAfter), not the others'.
	outcomes := make([]string, len(chans))
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(maxParallelChannels)
	for i, c := range chans {
		g.Go(func() error {
			o, err := n.processChannel(gctx, log, r, c)
			outcomes[i] = o
			return err
		})
	}
	if err := g.Wait(); err != nil {
		return "", err
	}
	return outcomes[0], nil
}

// maxParallelChannels bounds the deliveries of one readout under way at
// once (the email and up to config.MaxNotifyTargets Slack and webhook
// targets).
const maxParallelChannels = 8

// processChannel does what the readout calls for on one channel.
func (n *Notifier) processChannel(ctx context.Context, log *slog.Logger, r readout.Readout, c channel) (string, error) {
	key := c.key
	for {
		rec, rev, err := n.load(ctx, key)
		if err != nil {
			return "", err
		}
		rec.Experiment = r.Experiment
		var ev *event
		switch {
		case rec.Pending != nil && rec.Pending.Version == r.Version:
			// An intent from a run that stopped (or crashed) mid-send.
			ev = rec.Pending
			log.Warn("resuming an email that may already have gone out; a duplicate would carry the same Message-ID", "message_id", ev.MessageID)
		case r.Version <= rec.Handled:
			log.Debug("readout already handled")
			return "duplicate", nil
		default:
			kind := kindOf(rec.Notified, r)
			if kind == "" {
				rec.Handled = r.Version
				if err := n.put(ctx, key, rec, rev); errors.Is(err, errConflict) {
					continue
				} else if err != nil {
					return "", err
				}
				return "unchanged", nil
			}
			ev = &event{Version: r.Version, Status: r.Status, Label: r.Label, Kind: kind, MessageID: c.id(r)}
			if rec.Notified != nil {
				ev.Previous = rec.Notified.Version
			}
			rec.Pending = ev
			if rev, err = n.putRev(ctx, key, rec, rev); errors.Is(err, errConflict) {
				continue
			} else if err != nil {
				return "", err
			}
		}

		outcome := "emailed"
		sendErr := c.deliver(ctx, log, r, rec.Notified, ev)
		switch {
		case sendErr == nil:
			ev.At = n.now().UTC()
		case errors.Is(sendErr, ErrPermanent):
			ev.Error = sendErr.Error()
			outcome = "abandoned"
		default:
			return "", sendErr // shutdown: the intent stays
		}
		rec.Notified, rec.Pending = ev, nil
		rec.Handled = max(rec.Handled, r.Version)
		// The email is out: record it even while shutting down, and keep
		// trying through a NATS hiccup.
		wctx, cancel := retry.WithGrace(ctx, 10*time.Second)
		err = retryUntil(wctx, n.retryMax, func() error {
			rec2, rev2, err := n.load(wctx, key)
			if err != nil {
				return err
			}
			if rec2.Pending == nil || rec2.Pending.MessageID != ev.MessageID {
				return nil // someone else recorded it
			}
			rec2.Notified, rec2.Pending, rec2.Handled = rec.Notified, nil, max(rec2.Handled, rec.Handled)
			return n.put(wctx, key, rec2, rev2)
		}, func(err error) { log.Warn("record sent email, will retry", "err", err) })
		cancel()
		if err != nil {
			return "", fmt.Errorf("record email %s as sent: %w", ev.MessageID, err)
		}
		return outcome, nil
	}
}

// lookup reads the experiment's stored definition, retrying through NATS
// trouble until ctx ends.
func (n *Notifier) lookup(ctx context.Context, log *slog.Logger, experiment string) (config.Experiment, bool, error) {
	var exp config.Experiment
	var defined bool
	err := retryUntil(ctx, n.retryMax, func() error {
		var err error
		exp, defined, err = n.definition(ctx, experiment)
		return err
	}, func(err error) { log.Warn("read the experiment's definition, will retry", "err", err) })
	return exp, defined, err
}

// deliver renders and sends the email for ev to the owners of exp, the
// experiment's stored definition (defined false: there is none), retrying
// transient failures until it is out, fails permanently, or ctx ends.
func (n *Notifier) deliver(ctx context.Context, log *slog.Logger, exp config.Experiment, defined bool, r readout.Readout, last, ev *event) error {
	owners := exp.Owners
	if !defined {
		n.metrics.failed.Inc()
		n.metrics.abandoned.Inc()
		log.Error("no email sent: the experiment has no stored definition, so no owners to email (the readout's own list is not trusted)")
		return fmt.Errorf("%w: experiment %q has no stored definition", ErrPermanent, r.Experiment)
	}
	to, bad := report.Recipients(owners)
	if len(bad) > 0 {
		log.Warn("owner addresses left out: they do not parse", "owners", bad)
	}
	to = n.allowedOnly(log, to)
	if len(to) == 0 {
		n.metrics.failed.Inc()
		n.metrics.abandoned.Inc()
		log.Error("no email sent: the experiment has no valid, allowed owner address")
		return fmt.Errorf("%w: no valid, allowed owner address in %q", ErrPermanent, owners)
	}
	ev.Recipients = to
	var prev *readout.Readout
	if last != nil {
		prev = &readout.Readout{Experiment: r.Experiment, Version: last.Version, Status: last.Status, Label: last.Label}
	}
	data, err := report.RenderEmail(r, report.EmailOptions{From: n.from, To: to, BaseURL: n.baseURL, Previous: prev})
	if err != nil {
		n.metrics.failed.Inc()
		n.metrics.abandoned.Inc()
		return fmt.Errorf("%w: render email: %w", ErrPermanent, err)
	}
	e := Email{From: n.envFrom, To: to, MessageID: ev.MessageID, Data: data}
	err = n.deliverWithin(ctx, func(ctx context.Context) error {
		start := time.Now()
		err := n.send.Send(ctx, e)
		n.metrics.seconds.Observe(time.Since(start).Seconds())
		if err != nil {
			n.metrics.failed.Inc()
		}
		return err
	}, func(err error) { log.Warn("send email, will retry", "message_id", e.MessageID, "err", err) })
	if errors.Is(err, ErrPermanent) {
		n.metrics.abandoned.Inc()
		log.Error("email given up", "message_id", e.MessageID, "err", err)
		return err
	}
	if err != nil {
		return err
	}
	n.metrics.sent.Inc()
	log.Info("email sent", "kind", ev.Kind, "verdict", report.Verdict(r), "to", to, "message_id", e.MessageID)
	return nil
}

var errConflict = errors.New("kv record changed concurrently")

func (n *Notifier) load(ctx context.Context, key string) (record, uint64, error) {
	var rec record
	var rev uint64
	err := retryUntil(ctx, n.retryMax, func() error {
		e, err := n.kv.Get(ctx, key)
		if errors.Is(err, jetstream.ErrKeyNotFound) {
			rec, rev = record{}, 0
			return nil
		}
		if err != nil {
			return fmt.Errorf("read %s from %s: %w", key, Bucket, err)
		}
		rec, rev = record{}, e.Revision()
		if err := json.Unmarshal(e.Value(), &rec); err != nil {
			n.log.Error("unreadable notifier record: starting afresh", "key", key, "err", err)
			rec = record{}
		}
		return nil
	}, func(err error) { n.log.Warn("read notifier state, will retry", "err", err) })
	return rec, rev, err
}

func (n *Notifier) put(ctx context.Context, key string, rec record, rev uint64) error {
	_, err := n.putRev(ctx, key, rec, rev)
	return err
}

// putRev writes rec if the key is still at rev (0: absent), and returns the
// new revision; errConflict if it is not.
func (n *Notifier) putRev(ctx context.Context, key string, rec record, rev uint64) (uint64, error) {
	b, err := json.Marshal(rec)
	if err != nil {
		return 0, err
	}
	var out uint64
	err = retryUntil(ctx, n.retryMax, func() error {
		var err error
		if rev == 0 {
			out, err = n.kv.Create(ctx, key, b)
		} else {
			out, err = n.kv.Update(ctx, key, b, rev)
		}
		var apiErr *jetstream.APIError
		if errors.Is(err, jetstream.ErrKeyExists) || (errors.As(err, &apiErr) && apiErr.ErrorCode == jetstream.JSErrCodeStreamWrongLastSequence) {
			return backoffStop{errConflict}
		}
		return err
	}, func(err error) { n.log.Warn("write notifier state, will retry", "err", err) })
	var stop backoffStop
	if errors.As(err, &stop) {
		return 0, stop.err
	}
	return out, err
}

// allowedOnly keeps the recipients whose domain is allowed, and counts the
// others.
func (n *Notifier) allowedOnly(log *slog.Logger, to []string) []string {
	if n.allowed == nil {
		return to
	}
	var out []string
	for _, a := range to {
		_, domain, _ := strings.Cut(a, "@")
		if n.allowed[strings.ToLower(domain)] {
			out = append(out, a)
			continue
		}
		n.metrics.refused.Inc()
		log.Warn("owner refused: the domain is not in VERDICT_SMTP_ALLOWED_DOMAINS", "owner", a)
	}
	return out
}

// kvKeyPattern is what a KV key may be; experiment keys almost always are.
var kvKeyPattern = regexp.MustCompile(`^[-_a-zA-Z0-9]+(\.[-_a-zA-Z0-9]+)*$`)

// kvKey is the bucket key of an experiment: the key itself, or, for the
// rare experiment key NATS would refuse (a trailing dot, two dots in a
// row), "hex." and its hex.
func kvKey(experiment string) string {
	if kvKeyPattern.MatchString(experiment) && !strings.HasPrefix(experiment, "hex.") {
		return experiment
	}
	return "hex." + hex.EncodeToString([]byte(experiment))
}
