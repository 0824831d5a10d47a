package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"runtime/debug"
	"strings"

	"github.com/verdictlabs/verdict/pkg/gateway"
	"github.com/verdictlabs/verdict/pkg/ingest"
	"github.com/verdictlabs/verdict/pkg/notifier"
	"github.com/verdictlabs/verdict/pkg/rules"
	"github.com/verdictlabs/verdict/pkg/settings"
	"github.com/verdictlabs/verdict/pkg/stack"
	"github.com/verdictlabs/verdict/pkg/stream"
	"github.com/verdictlabs/verdict/pkg/warehouse"
	"github.com/verdictlabs/verdict/pkg/web"
)

// upConfig is what `verdict up` and `verdict demo` are configured with:
// the settings of every service, registered by the packages they belong
// to (the same flags as bin/ingest, bin/rules, bin/notifier and
// bin/gateway), and up's own.
type upConfig struct {
	nats     stream.Settings       // VERDICT_NATS_URL, _REPLICAS, credentials
	natsConf string                // VERDICT_NATS_SERVER_CONFIG
	ch       warehouse.Config      // VERDICT_CLICKHOUSE_*
	chLocal  warehouse.LocalConfig // VERDICT_CLICKHOUSE_LOCAL, VERDICT_CHDB_LIB
	// VERDICT_NATS_EXTERNAL, VERDICT_CLICKHOUSE_EXTERNAL
	externalNATS, externalCH bool
	httpAddr                 string // VERDICT_HTTP_ADDR
	dataDir                  string // VERDICT_DATA_DIR
	logLevel                 string // VERDICT_LOG_LEVEL
	baseURL                  string // VERDICT_BASE_URL
	apiTokens                string // VERDICT_API_TOKENS
	insecure                 bool   // VERDICT_INSECURE

	ingestFlags   ingest.Flags
	rulesFlags    rules.Flags
	notifierFlags notifier.Flags
	gatewayFlags  gateway.Flags

	// Filled in by validate.
	ingest   ingest.Config
	rules    rules.Config
	notifier notifier.Config
	gateway  gateway.Config
	access   web.Access
}

func (c *upConfig) register(fs *flag.FlagSet, getenv func(string) string) {
	c.nats.RegisterFlags(fs, getenv) // up starts an embedded server at the URL when none answers,
	fs.StringVar(&c.natsConf, "nats-server-config", getenv("VERDICT_NATS_SERVER_CONFIG"), "nats-server config file for the embedded server: accounts, users, permissions, TLS (VERDICT_NATS_SERVER_CONFIG)")
	c.ch.RegisterFlags(fs, getenv)      // and a local ClickHouse at the address when none answers,
	c.chLocal.RegisterFlags(fs, getenv) // of this engine
	fs.StringVar(&c.httpAddr, "http-addr", settings.Env(getenv, "VERDICT_HTTP_ADDR", "127.0.0.1:8080"), "API, readout page, HTTP ingest, /metrics, /healthz, /readyz (VERDICT_HTTP_ADDR)")
	fs.StringVar(&c.dataDir, "data-dir", settings.Env(getenv, "VERDICT_DATA_DIR", "./var"), "NATS store, local ClickHouse data, outbox (VERDICT_DATA_DIR)")
	fs.StringVar(&c.logLevel, "log-level", settings.Env(getenv, "VERDICT_LOG_LEVEL", "info"), "debug, info, warn or error (VERDICT_LOG_LEVEL)")
	fs.StringVar(&c.baseURL, "base-url", getenv("VERDICT_BASE_URL"), "where people open readout pages, for links in emails (VERDICT_BASE_URL; default http://<http-addr>)")
	fs.BoolVar(&c.externalNATS, "nats-external", settings.True(getenv("VERDICT_NATS_EXTERNAL")), "the NATS server at VERDICT_NATS_URL is yours: start none, send it the credentials (VERDICT_NATS_EXTERNAL)")
	fs.BoolVar(&c.externalCH, "clickhouse-external", settings.True(getenv("VERDICT_CLICKHOUSE_EXTERNAL")), "the ClickHouse at VERDICT_CLICKHOUSE_ADDR is yours: start none, send it the password (VERDICT_CLICKHOUSE_EXTERNAL)")
	c.ingestFlags.RegisterFlags(fs, getenv)
	c.rulesFlags.RegisterFlags(fs, getenv)
	c.notifierFlags.RegisterFlags(fs, getenv)
	c.gatewayFlags.RegisterFlags(fs, getenv)
	// Secrets are not flags: they would show in ps.
	c.apiTokens = getenv("VERDICT_API_TOKENS")
	c.access.MetricsToken = getenv("VERDICT_METRICS_TOKEN")
	c.insecure = settings.True(getenv("VERDICT_INSECURE"))
}

// validate lists every problem, each naming the variable and the fix.
func (c *upConfig) validate() error {
	errs := []error{
		c.nats.Validate(),
		c.ingestFlags.Apply(&c.ingest),
		c.rulesFlags.Apply(&c.rules),
		c.notifierFlags.Apply(&c.notifier, c.dataDir),
		c.gatewayFlags.Apply(&c.gateway),
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
	c.access.Addr, c.access.BaseURL = c.httpAddr, c.baseURL
	var err error
	if c.access.APITokens, err = web.ParseTokens("VERDICT_API_TOKENS", c.apiTokens); err != nil {
		errs = append(errs, err)
	} else if err := web.CheckExposure(c.httpAddr, c.access, c.insecure); err != nil {
		errs = append(errs, err)
	}
	c.access.OpenIngest = len(c.gateway.WriteKeys) == 0
	c.notifier.BaseURL = c.baseURL
	if _, err := parseLevel(c.logLevel); err != nil {
		errs = append(errs, err)
	}
	return errors.Join(errs...)
}

func (c *upConfig) stack(log *slog.Logger) stack.Config {
	return stack.Config{
		NATSURL:            c.nats.URL,
		NATSAuth:           c.nats.Auth,
		NATSServerConfig:   c.natsConf,
		ExternalNATS:       c.externalNATS || strings.Contains(c.nats.URL, ","), // a cluster is someone's
		ExternalClickHouse: c.externalCH,
		NATSReplicas:       c.nats.Replicas,
		NATSDuplicates:     c.ingest.Limits.EventsDuplicates,
		ClickHouse:         c.ch,
		LocalClickHouse:    c.chLocal,
		HTTPAddr:           c.httpAddr,
		DataDir:            c.dataDir,
		Ingest:             c.ingest,
		Rules:              c.rules,
		Notifier:           c.notifier,
		Gateway:            c.gateway,
		Access:             c.access,
		Logger:             log,
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
		log.Info("verdict is up", "http", "http://"+c.httpAddr, "nats", stream.Redact(c.nats.URL), "clickhouse", c.ch.Addr)
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
