// Package stack runs the whole of verdict on one machine, as `verdict up`
// does: an embedded NATS server (unless one answers at the URL), a local
// ClickHouse server of the chosen engine (unless one answers at the address:
// ClickHouse 26 from libchdb.so, or an installed clickhouse-server), and every
// service in one process — ingest, rules, notifier —
// behind one HTTP server with the API, the readout pages, HTTP ingest
// (package gateway) and /metrics.
package stack

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"time"

	"golang.org/x/sync/errgroup"

	"github.com/verdictlabs/verdict/pkg/gateway"
	"github.com/verdictlabs/verdict/pkg/ingest"
	"github.com/verdictlabs/verdict/pkg/notifier"
	"github.com/verdictlabs/verdict/pkg/rules"
	"github.com/verdictlabs/verdict/pkg/stream"
	"github.com/verdictlabs/verdict/pkg/stream/embedded"
	"github.com/verdictlabs/verdict/pkg/warehouse"
	"github.com/verdictlabs/verdict/pkg/web"
)

// Config is the configuration of the whole stack.
type Config struct {
	NATSURL  string      // VERDICT_NATS_URL
	NATSAuth stream.Auth // VERDICT_NATS_* credentials and TLS
	// NATSServerConfig is a nats-server config file for the embedded
	// server (VERDICT_NATS_SERVER_CONFIG): its accounts, users and TLS.
	NATSServerConfig string
	// ExternalNATS and ExternalClickHouse say the servers at NATSURL and
	// ClickHouse.Addr are the user's (VERDICT_NATS_EXTERNAL,
	// VERDICT_CLICKHOUSE_EXTERNAL): Run starts none and sends them its
	// credentials. Without them, a server that already answers is used only
	// when there are no credentials to send it: verdict up does not hand
	// its passwords to whatever happens to listen on its ports.
	ExternalNATS, ExternalClickHouse bool
	// NATSReplicas are the replicas of the streams and buckets
	// (VERDICT_NATS_REPLICAS; 0 keeps what they have).
	NATSReplicas int
	// NATSDuplicates is VERDICT_EVENTS's dedup window
	// (VERDICT_NATS_DUPLICATE_WINDOW; 0 keeps what the stream has).
	NATSDuplicates time.Duration
	ClickHouse     warehouse.Config // VERDICT_CLICKHOUSE_ADDR, VERDICT_CLICKHOUSE_DB
	// LocalClickHouse is the server started when none answers at
	// ClickHouse.Addr: its Engine (VERDICT_CLICKHOUSE_LOCAL), ChDBLib
	// (VERDICT_CHDB_LIB) and ChDBCommand; Run fills in the rest.
	LocalClickHouse warehouse.LocalConfig
	HTTPAddr        string          // VERDICT_HTTP_ADDR
	DataDir         string          // VERDICT_DATA_DIR
	Ingest          ingest.Config   // batch tuning; connection fields are filled in from the above
	Rules           rules.Config    // interval; connection fields are filled in from the above
	Notifier        notifier.Config // SMTP; connection fields and the outbox are filled in from the above
	Gateway         gateway.Config  // write keys and unit; connection fields are filled in from the above
	Access          web.Access      // VERDICT_API_TOKENS, VERDICT_METRICS_TOKEN
	Logger          *slog.Logger

	// OnReady, when set, is called once every part is up.
	OnReady func()
}

// Run brings the stack up and keeps it running until ctx is cancelled, then
// stops the services, the ClickHouse server and the NATS server it started.
func Run(ctx context.Context, cfg Config) error {
	log := cfg.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	if err := os.MkdirAll(cfg.DataDir, 0o755); err != nil {
		return fmt.Errorf("create VERDICT_DATA_DIR %s: %w", cfg.DataDir, err)
	}

	natsListening := stream.Listening(cfg.NATSURL, time.Second)
	switch {
	case cfg.ExternalNATS:
		log.Info("using external nats-server (VERDICT_NATS_EXTERNAL)", "url", stream.Redact(cfg.NATSURL))
		if cfg.NATSServerConfig != "" {
			log.Warn("VERDICT_NATS_SERVER_CONFIG is for the embedded server; VERDICT_NATS_EXTERNAL says the server is yours, so it is not used", "file", cfg.NATSServerConfig)
		}
	case natsListening && (cfg.NATSAuth.HasSecret() || strings.Contains(cfg.NATSURL, "@") || cfg.NATSServerConfig != ""):
		return fmt.Errorf("something already listens at %s (VERDICT_NATS_URL), and verdict up did not start it: it will not send it the NATS credentials, nor use it in place of its embedded server (VERDICT_NATS_SERVER_CONFIG). Stop what listens there, choose another address, or set VERDICT_NATS_EXTERNAL=1 if it is your NATS server", stream.Redact(cfg.NATSURL))
	case natsListening:
		log.Info("using the nats-server that already answers (no credentials to send it)", "url", stream.Redact(cfg.NATSURL))
	default:
		ns, err := embedded.Run(embedded.Config{
			URL:        cfg.NATSURL,
			StoreDir:   filepath.Join(cfg.DataDir, "nats"),
			ConfigFile: cfg.NATSServerConfig,
			Logger:     log,
		})
		if err != nil {
			return err
		}
		defer ns.Shutdown()
	}

	reg := web.NewRegistry()
	var local *localClickHouse // nil when the ClickHouse is someone else's

	// Over TLS or on a cluster the servers are someone else's: the local
	// one has no certificate and is no cluster, and a plain ping of a TLS
	// port finds nobody.
	switch chListening := !cfg.ExternalClickHouse && warehouse.Reachable(ctx, cfg.ClickHouse.Addr); {
	case cfg.ExternalClickHouse || cfg.ClickHouse.TLS || cfg.ClickHouse.Cluster != "":
		log.Info("using external clickhouse", "addr", cfg.ClickHouse.Addr, "tls", cfg.ClickHouse.TLS)
	case chListening && cfg.ClickHouse.Password != "":
		return fmt.Errorf("a ClickHouse server already answers at %s (VERDICT_CLICKHOUSE_ADDR), and verdict up did not start it: it will not send it VERDICT_CLICKHOUSE_PASSWORD. Stop it, choose another address, or set VERDICT_CLICKHOUSE_EXTERNAL=1 if it is your server", cfg.ClickHouse.Addr)
	case chListening:
		log.Info("using the clickhouse that already answers (no password to send it)", "addr", cfg.ClickHouse.Addr)
	case !web.IsLoopback(cfg.ClickHouse.Addr) && cfg.ClickHouse.Password == "":
		return fmt.Errorf("VERDICT_CLICKHOUSE_ADDR %s is not a loopback address: the local ClickHouse would let anyone who reaches it in without a password. Use a loopback address, or set VERDICT_CLICKHOUSE_PASSWORD (the server engine)", cfg.ClickHouse.Addr)
	default:
		// With VERDICT_CLICKHOUSE_PASSWORD set, the local server's only
		// user is VERDICT_CLICKHOUSE_USER with that password (the server
		// engine; chdb refuses a password).
		lc := cfg.LocalClickHouse
		lc.Addr, lc.DataDir, lc.Logger = cfg.ClickHouse.Addr, filepath.Join(cfg.DataDir, "clickhouse"), log
		lc.User, lc.Password = cfg.ClickHouse.Username, cfg.ClickHouse.Password
		first, err := warehouse.StartLocal(ctx, lc)
		if err != nil {
			return err
		}
		local = newLocalClickHouse(lc, first, log, reg)
		defer local.stop()
	}

	// Declare the streams once, before the services start together: each
	// would otherwise race the others to create them.
	limits := cfg.Ingest.Limits
	if limits == (stream.Limits{}) {
		limits = stream.DefaultLimits
	}
	limits = limits.WithReplicas(cfg.NATSReplicas)
	limits.EventsDuplicates = cfg.NATSDuplicates
	conn, _, err := stream.Open(ctx, cfg.NATSURL, cfg.NATSAuth, "verdict-up", limits, log)
	if err != nil {
		return err
	}
	conn.Close()

	wh, err := warehouse.Dial(ctx, cfg.ClickHouse, log)
	if err != nil {
		return err
	}
	defer wh.Close()

	checks := &web.Checks{}
	mux := web.NewMux(reg, checks)
	rules.Handle(mux, wh, log)

	gc := cfg.Gateway
	gc.NATSURL, gc.NATSAuth, gc.HTTPAddr, gc.NATSReplicas = cfg.NATSURL, cfg.NATSAuth, cfg.HTTPAddr, cfg.NATSReplicas
	gc.Logger, gc.Registerer, gc.Checks = log, reg, checks
	gw, closeGateway, err := gateway.Open(ctx, gc)
	if err != nil {
		return err
	}
	defer closeGateway()
	gw.Register(mux)

	ic := cfg.Ingest
	ic.NATSURL, ic.NATSAuth = cfg.NATSURL, cfg.NATSAuth
	if ic.Limits == (stream.Limits{}) {
		ic.Limits = stream.DefaultLimits
	}
	ic.Limits.Replicas, ic.Limits.EventsDuplicates = cfg.NATSReplicas, cfg.NATSDuplicates
	ic.ClickHouse = cfg.ClickHouse
	ic.Logger = log
	ic.Registerer = reg
	ic.Checks = checks

	rc := cfg.Rules
	rc.NATSURL, rc.NATSAuth, rc.ClickHouse, rc.NATSReplicas = cfg.NATSURL, cfg.NATSAuth, cfg.ClickHouse, cfg.NATSReplicas
	rc.Logger, rc.Registerer, rc.Checks, rc.Mux = log, reg, checks, mux

	nc := cfg.Notifier
	nc.NATSURL, nc.NATSAuth, nc.NATSReplicas = cfg.NATSURL, cfg.NATSAuth, cfg.NATSReplicas
	nc.OutboxDir = filepath.Join(cfg.DataDir, "outbox")
	if nc.BaseURL == "" {
		nc.BaseURL = "http://" + cfg.HTTPAddr
	}
	nc.Logger, nc.Registerer, nc.Checks = log, reg, checks

	g, gctx := errgroup.WithContext(ctx)
	if local != nil {
		g.Go(func() error { return local.keep(gctx) })
	}
	g.Go(func() error { return ingest.Run(gctx, ic) })
	g.Go(func() error { return rules.Run(gctx, rc) })
	g.Go(func() error { return notifier.Run(gctx, nc) })
	g.Go(func() error { return web.Serve(gctx, cfg.HTTPAddr, cfg.Access.Wrap(mux), log) })
	if cfg.OnReady != nil {
		g.Go(func() error {
			waitReady(gctx, checks)
			if gctx.Err() == nil {
				cfg.OnReady()
			}
			return nil
		})
	}
	return g.Wait()
}

// waitReady returns once every readiness check passes (and at least the
// services' checks are registered), or ctx ends.
func waitReady(ctx context.Context, checks *web.Checks) {
	t := time.NewTicker(100 * time.Millisecond)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			if checks.Len() > 0 && len(checks.Run(ctx)) == 0 {
				return
			}
		}
	}
}
