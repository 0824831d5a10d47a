package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/url"
	"os"
	"runtime/debug"
	"strconv"
	"strings"
	"time"

	"github.com/verdictlabs/verdict/pkg/gateway"
	"github.com/verdictlabs/verdict/pkg/ingest"
	"github.com/verdictlabs/verdict/pkg/notifier"
	"github.com/verdictlabs/verdict/pkg/rules"
	"github.com/verdictlabs/verdict/pkg/stack"
	"github.com/verdictlabs/verdict/pkg/stream"
	"github.com/verdictlabs/verdict/pkg/warehouse"
	"github.com/verdictlabs/verdict/pkg/web"
)

// upConfig is what `verdict up` and `verdict demo` are configured with; the
// flags' defaults come from the environment.
type upConfig struct {
	natsURL  string      // VERDICT_NATS_URL
	natsAuth stream.Auth // VERDICT_NATS_CREDS, _NKEY, _USER, _PASSWORD, _TOKEN, _TLS_*
	natsConf string      // VERDICT_NATS_SERVER_CONFIG
	// VERDICT_NATS_EXTERNAL, VERDICT_CLICKHOUSE_EXTERNAL
	externalNATS, externalCH bool
	natsRepl                 string                // VERDICT_NATS_REPLICAS
	natsDup                  string                // VERDICT_NATS_DUPLICATE_WINDOW
	ch                       warehouse.Config      // VERDICT_CLICKHOUSE_*
	chLocal                  warehouse.LocalConfig // VERDICT_CLICKHOUSE_LOCAL, VERDICT_CHDB_LIB
	httpAddr                 string                // VERDICT_HTTP_ADDR
	dataDir                  string                // VERDICT_DATA_DIR
	logLevel                 string                // VERDICT_LOG_LEVEL
	batch                    string                // VERDICT_INGEST_BATCH
	batchWait                string                // VERDICT_INGEST_BATCH_WAIT

	rulesInterval  string              // VERDICT_RULES_INTERVAL
	decisionHold   string              // VERDICT_DECISION_HOLD
	smtp           notifier.SMTPConfig // VERDICT_SMTP_*
	writeKeys      string              // VERDICT_WRITE_KEYS
	apiTokens      string              // VERDICT_API_TOKENS
	allowedDomains string              // VERDICT_SMTP_ALLOWED_DOMAINS
	allowedHosts   string              // VERDICT_WEBHOOK_ALLOWED_HOSTS
	gatewayUnit    string              // VERDICT_GATEWAY_UNIT
	baseURL        string              // VERDICT_BASE_URL

	// Filled in by validate from the strings above.
	batchN         int
	batchWaitD     time.Duration
	rulesIntervalD time.Duration
	decisionHoldD  time.Duration
	gateway        gateway.Config
	access         web.Access
	insecure       bool
	natsReplicas   int
	natsDuplicates time.Duration

	slack, webhooks string // VERDICT_SLACK_WEBHOOKS, VERDICT_WEBHOOKS
	webhookSecret   string // VERDICT_WEBHOOK_SECRET
	digest          string // VERDICT_DIGEST
	slackURLs       []string
	webhookURLs     []string
	hookHosts       []string
}

func envOr(getenv func(string) string, key, def string) string {
	if v := getenv(key); v != "" {
		return v
	}
	return def
}

func (c *upConfig) register(fs *flag.FlagSet, getenv func(string) string) {
	fs.StringVar(&c.natsURL, "nats-url", envOr(getenv, "VERDICT_NATS_URL", "nats://127.0.0.1:4222"), "NATS server URL; an embedded server is started there when none answers (VERDICT_NATS_URL)")
	fs.StringVar(&c.natsConf, "nats-server-config", getenv("VERDICT_NATS_SERVER_CONFIG"), "nats-server config file for the embedded server: accounts, users, permissions, TLS (VERDICT_NATS_SERVER_CONFIG)")
	c.ch.RegisterFlags(fs, getenv)      // up starts a local server at the address when none answers,
	c.chLocal.RegisterFlags(fs, getenv) // of this engine
	fs.StringVar(&c.httpAddr, "http-addr", envOr(getenv, "VERDICT_HTTP_ADDR", "127.0.0.1:8080"), "API, readout page, /metrics, /healthz, /readyz (VERDICT_HTTP_ADDR)")
	fs.StringVar(&c.dataDir, "data-dir", envOr(getenv, "VERDICT_DATA_DIR", "./var"), "NATS store, local ClickHouse data, outbox (VERDICT_DATA_DIR)")
	fs.StringVar(&c.logLevel, "log-level", envOr(getenv, "VERDICT_LOG_LEVEL", "info"), "debug, info, warn or error (VERDICT_LOG_LEVEL)")
	fs.StringVar(&c.batch, "ingest-batch", envOr(getenv, "VERDICT_INGEST_BATCH", "10000"), "events per ClickHouse insert (VERDICT_INGEST_BATCH)")
	fs.StringVar(&c.rulesInterval, "rules-interval", envOr(getenv, "VERDICT_RULES_INTERVAL", "1m"), "how often readouts are recomputed (VERDICT_RULES_INTERVAL)")
	fs.StringVar(&c.decisionHold, "decision-hold", envOr(getenv, "VERDICT_DECISION_HOLD", "10m"), "how long a candidate label must hold on every look before it is the decision (VERDICT_DECISION_HOLD)")
	fs.StringVar(&c.smtp.Addr, "smtp-addr", getenv("VERDICT_SMTP_ADDR"), "SMTP server host:port; empty writes .eml files to <data-dir>/outbox (VERDICT_SMTP_ADDR)")
	fs.StringVar(&c.smtp.From, "smtp-from", envOr(getenv, "VERDICT_SMTP_FROM", "verdict <verdict@localhost>"), "sender of readout emails (VERDICT_SMTP_FROM)")
	fs.StringVar(&c.smtp.Username, "smtp-username", getenv("VERDICT_SMTP_USERNAME"), "SMTP AUTH user; empty: no AUTH (VERDICT_SMTP_USERNAME)")
	c.smtp.Password = getenv("VERDICT_SMTP_PASSWORD") // not a flag: it would show in ps
	c.smtp.StartTLS = notifier.StartTLS(envOr(getenv, "VERDICT_SMTP_STARTTLS", "opportunistic"))
	fs.Func("smtp-starttls", "opportunistic, mandatory or none (VERDICT_SMTP_STARTTLS; default opportunistic)", func(s string) error {
		c.smtp.StartTLS = notifier.StartTLS(s)
		return nil
	})
	fs.StringVar(&c.natsRepl, "nats-replicas", getenv("VERDICT_NATS_REPLICAS"), "replicas of the streams and KV buckets, 1 to 5; unset keeps what they have (VERDICT_NATS_REPLICAS)")
	fs.StringVar(&c.natsDup, "nats-duplicate-window", getenv("VERDICT_NATS_DUPLICATE_WINDOW"), "how long VERDICT_EVENTS remembers Nats-Msg-Id to drop copies; about 140 B of memory per message in the window (VERDICT_NATS_DUPLICATE_WINDOW; default 10s)")
	c.natsAuth = stream.AuthFromEnv(getenv) // secrets: not flags
	fs.BoolVar(&c.externalNATS, "nats-external", isTrue(getenv("VERDICT_NATS_EXTERNAL")), "the NATS server at VERDICT_NATS_URL is yours: start none, send it the credentials (VERDICT_NATS_EXTERNAL)")
	fs.BoolVar(&c.externalCH, "clickhouse-external", isTrue(getenv("VERDICT_CLICKHOUSE_EXTERNAL")), "the ClickHouse at VERDICT_CLICKHOUSE_ADDR is yours: start none, send it the password (VERDICT_CLICKHOUSE_EXTERNAL)")
	c.writeKeys = getenv("VERDICT_WRITE_KEYS") // not a flag: it would show in ps
	c.apiTokens = getenv("VERDICT_API_TOKENS") // nor these
	c.access.MetricsToken = getenv("VERDICT_METRICS_TOKEN")
	c.slack, c.webhooks = getenv("VERDICT_SLACK_WEBHOOKS"), getenv("VERDICT_WEBHOOKS") // URLs with credentials: not flags
	c.webhookSecret = getenv("VERDICT_WEBHOOK_SECRET")
	c.insecure = isTrue(getenv("VERDICT_INSECURE"))
	fs.StringVar(&c.allowedDomains, "smtp-allowed-domains", getenv("VERDICT_SMTP_ALLOWED_DOMAINS"), "comma-separated recipient domains; owners elsewhere are refused (VERDICT_SMTP_ALLOWED_DOMAINS; default the sender's domain, * for any)")
	fs.StringVar(&c.allowedHosts, "webhook-allowed-hosts", getenv("VERDICT_WEBHOOK_ALLOWED_HOSTS"), "comma-separated hosts (or *.domain) Slack and webhook URLs may name, loopback and private addresses included; unset: any public host (VERDICT_WEBHOOK_ALLOWED_HOSTS)")
	fs.StringVar(&c.digest, "digest", getenv("VERDICT_DIGEST"), "digest schedule, cron in UTC (default \"0 9 * * 1\": Mondays 09:00), or off (VERDICT_DIGEST)")
	fs.StringVar(&c.gatewayUnit, "gateway-unit", envOr(getenv, "VERDICT_GATEWAY_UNIT", "user"), "HTTP ingest unit id: user (userId, else anonymousId) or anonymous (VERDICT_GATEWAY_UNIT)")
	fs.StringVar(&c.baseURL, "base-url", getenv("VERDICT_BASE_URL"), "where people open readout pages, for links in emails (VERDICT_BASE_URL; default http://<http-addr>)")
	fs.StringVar(&c.batchWait, "ingest-batch-wait", envOr(getenv, "VERDICT_INGEST_BATCH_WAIT", "1s"), "longest wait to fill a batch (VERDICT_INGEST_BATCH_WAIT)")
}

// validate lists every problem, each naming the variable and the fix.
func (c *upConfig) validate() error {
	var errs []error
	for _, one := range strings.Split(c.natsURL, ",") { // a cluster is a list of URLs
		if u, err := url.Parse(strings.TrimSpace(one)); err != nil || (u.Scheme != "nats" && u.Scheme != "tls") || u.Port() == "" {
			errs = append(errs, fmt.Errorf("VERDICT_NATS_URL %q: want nats://host:port, or several separated by commas", stream.Redact(c.natsURL)))
			break
		}
	}
	for name, addr := range map[string]string{"VERDICT_CLICKHOUSE_ADDR": c.ch.Addr, "VERDICT_HTTP_ADDR": c.httpAddr} {
		if _, _, err := net.SplitHostPort(addr); err != nil {
			errs = append(errs, fmt.Errorf("%s %q: want host:port", name, addr))
		}
	}
	if c.natsConf != "" {
		if _, err := os.Stat(c.natsConf); err != nil {
			errs = append(errs, fmt.Errorf("VERDICT_NATS_SERVER_CONFIG: %w", err))
		}
	}
	if _, err := warehouse.ParseEngine(string(c.chLocal.Engine)); err != nil {
		errs = append(errs, err)
	}
	// The chdb engine runs in a child process: this program, as `verdict
	// chdb-server` (under go test, the test binary, whose TestMain does the
	// same).
	if exe, err := os.Executable(); err != nil {
		errs = append(errs, fmt.Errorf("find verdict's own executable, which serves the chdb engine: %w", err))
	} else {
		c.chLocal.ChDBCommand = []string{exe, "chdb-server"}
	}
	if c.dataDir == "" {
		errs = append(errs, errors.New("VERDICT_DATA_DIR is empty: set a directory for the NATS store and ClickHouse data"))
	}
	var err error
	if c.natsReplicas, err = stream.ParseReplicas(c.natsRepl); err != nil {
		errs = append(errs, err)
	}
	if c.natsDuplicates, err = stream.ParseDuplicateWindow(c.natsDup); err != nil {
		errs = append(errs, err)
	}
	if c.batchN, err = strconv.Atoi(c.batch); err != nil || c.batchN < 1 || c.batchN > 1_000_000 {
		errs = append(errs, fmt.Errorf("VERDICT_INGEST_BATCH %q: want a whole number from 1 to 1000000", c.batch))
	}
	if c.batchWaitD, err = time.ParseDuration(c.batchWait); err != nil || c.batchWaitD <= 0 {
		errs = append(errs, fmt.Errorf("VERDICT_INGEST_BATCH_WAIT %q: want a duration such as 1s", c.batchWait))
	}
	if c.rulesIntervalD, err = time.ParseDuration(c.rulesInterval); err != nil || c.rulesIntervalD < time.Second {
		errs = append(errs, fmt.Errorf("VERDICT_RULES_INTERVAL %q: want a duration of at least 1s, such as 1m", c.rulesInterval))
	}
	if c.decisionHoldD, err = rules.ParseHold(c.decisionHold); err != nil {
		errs = append(errs, err)
	}
	if err := c.natsAuth.Validate(); err != nil {
		errs = append(errs, err)
	}
	c.access.Addr, c.access.BaseURL = c.httpAddr, c.baseURL
	if c.access.APITokens, err = web.ParseTokens("VERDICT_API_TOKENS", c.apiTokens); err != nil {
		errs = append(errs, err)
	} else if err := web.CheckExposure(c.httpAddr, c.access, c.insecure); err != nil {
		errs = append(errs, err)
	}
	if c.slackURLs, err = notifier.ParseURLs("VERDICT_SLACK_WEBHOOKS", c.slack); err != nil {
		errs = append(errs, err)
	}
	if c.webhookURLs, err = notifier.ParseURLs("VERDICT_WEBHOOKS", c.webhooks); err != nil {
		errs = append(errs, err)
	} else if len(c.webhookURLs) > 0 && c.webhookSecret == "" {
		errs = append(errs, errors.New("VERDICT_WEBHOOKS is set without VERDICT_WEBHOOK_SECRET: webhooks are signed with it"))
	}
	if c.hookHosts, err = notifier.ParseHosts(c.allowedHosts); err != nil {
		errs = append(errs, err)
	}
	if _, err := notifier.ParseDigest(c.digest); err != nil {
		errs = append(errs, err)
	}
	if c.gateway.WriteKeys, err = gateway.ParseWriteKeys(c.writeKeys); err != nil {
		errs = append(errs, err)
	}
	c.access.OpenIngest = len(c.gateway.WriteKeys) == 0
	if c.gateway.Unit, err = gateway.ParseUnit(c.gatewayUnit); err != nil {
		errs = append(errs, err)
	}
	if _, err := parseLevel(c.logLevel); err != nil {
		errs = append(errs, err)
	}
	return errors.Join(errs...)
}

func (c *upConfig) stack(log *slog.Logger) stack.Config {
	return stack.Config{
		NATSURL:            c.natsURL,
		NATSAuth:           c.natsAuth,
		NATSServerConfig:   c.natsConf,
		ExternalNATS:       c.externalNATS || strings.Contains(c.natsURL, ","), // a cluster is someone's
		ExternalClickHouse: c.externalCH,
		NATSReplicas:       c.natsReplicas,
		NATSDuplicates:     c.natsDuplicates,
		ClickHouse:         c.ch,
		LocalClickHouse:    c.chLocal,
		HTTPAddr:           c.httpAddr,
		DataDir:            c.dataDir,
		Ingest:             ingest.Config{BatchSize: c.batchN, BatchWait: c.batchWaitD},
		Rules:              rules.Config{Interval: c.rulesIntervalD, Hold: c.decisionHoldD},
		Notifier: notifier.Config{SMTP: c.smtp, BaseURL: c.baseURL, AllowedDomains: strings.Split(c.allowedDomains, ","), AllowedHosts: c.hookHosts,
			Slack: c.slackURLs, Webhooks: c.webhookURLs, WebhookSecret: c.webhookSecret, Digest: c.digest},
		Gateway: c.gateway,
		Access:  c.access,
		Logger:  log,
	}
}

func parseLevel(s string) (slog.Level, error) {
	var l slog.Level
	if err := l.UnmarshalText([]byte(strings.ToUpper(s))); err != nil {
		return 0, fmt.Errorf("VERDICT_LOG_LEVEL %q: want debug, info, warn or error", s)
	}
	return l, nil
}

func newLogger(w io.Writer, level string) *slog.Logger {
	l, _ := parseLevel(level)
	return slog.New(slog.NewTextHandler(w, &slog.HandlerOptions{Level: l}))
}

func runUp(ctx context.Context, args []string, getenv func(string) string, _ io.Reader, _, stderr io.Writer) error {
	var c upConfig
	fs := flag.NewFlagSet("verdict up", flag.ContinueOnError)
	fs.SetOutput(stderr)
	c.register(fs, getenv)
	if err := fs.Parse(args); err != nil {
		return err
	}
	if err := c.validate(); err != nil {
		return err
	}
	log := newLogger(stderr, c.logLevel)
	sc := c.stack(log)
	sc.OnReady = func() {
		log.Info("verdict is up", "http", "http://"+c.httpAddr, "nats", stream.Redact(c.natsURL), "clickhouse", c.ch.Addr)
	}
	limitMemory(getenv)
	return stack.Run(ctx, sc)
}

// upMemoryLimit is the soft memory limit of verdict up and verdict demo
// unless GOMEMLIMIT sets one. What the stack keeps is bounded by design
// (batches, the duplicate window, the rows a look reads at a time, the
// experiments' units), but Go's collector lets the heap grow to twice what
// is live before it collects; under a burst that slack is most of the
// process. Above the limit the collector works harder, never fails.
const upMemoryLimit = 400 << 20

// limitMemory sets upMemoryLimit, unless GOMEMLIMIT says otherwise.
func limitMemory(getenv func(string) string) {
	if getenv("GOMEMLIMIT") == "" {
		debug.SetMemoryLimit(upMemoryLimit)
	}
}

// isTrue reads a yes/no setting: 1 or true.
func isTrue(v string) bool { return v == "1" || strings.EqualFold(v, "true") }
