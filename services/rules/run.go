package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"time"

	"golang.org/x/sync/errgroup"

	"github.com/verdictlabs/verdict/pkg/rules"
	"github.com/verdictlabs/verdict/pkg/stream"
	"github.com/verdictlabs/verdict/pkg/warehouse"
	"github.com/verdictlabs/verdict/pkg/web"
)

func run(ctx context.Context, args []string, getenv func(string) string, stderr io.Writer) error {
	env := func(key, def string) string {
		if v := getenv(key); v != "" {
			return v
		}
		return def
	}
	var cfg rules.Config
	fs := flag.NewFlagSet("rules", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.StringVar(&cfg.NATSURL, "nats-url", env("VERDICT_NATS_URL", "nats://127.0.0.1:4222"), "NATS server URL (VERDICT_NATS_URL)")
	cfg.ClickHouse.RegisterFlags(fs, getenv)
	httpAddr := fs.String("http-addr", env("VERDICT_HTTP_ADDR", "127.0.0.1:8080"), "API, readout pages, /metrics, /healthz, /readyz (VERDICT_HTTP_ADDR)")
	interval := fs.String("interval", env("VERDICT_RULES_INTERVAL", "1m"), "how often readouts are recomputed (VERDICT_RULES_INTERVAL)")
	hold := fs.String("decision-hold", env("VERDICT_DECISION_HOLD", "10m"), "how long a candidate label must hold on every look before it is the decision (VERDICT_DECISION_HOLD)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	cfg.NATSAuth = stream.AuthFromEnv(getenv) // secrets: not flags
	var err error
	if cfg.NATSReplicas, err = stream.ParseReplicas(getenv("VERDICT_NATS_REPLICAS")); err != nil {
		return err
	}
	if err := cfg.NATSAuth.Validate(); err != nil {
		return err
	}
	// Secrets are not flags: they would show in ps.
	var access web.Access
	if access.APITokens, err = web.ParseTokens("VERDICT_API_TOKENS", getenv("VERDICT_API_TOKENS")); err != nil {
		return err
	}
	access.MetricsToken = getenv("VERDICT_METRICS_TOKEN")
	access.Addr, access.BaseURL = *httpAddr, getenv("VERDICT_BASE_URL")
	if err := web.CheckExposure(*httpAddr, access, getenv("VERDICT_INSECURE") == "1" || getenv("VERDICT_INSECURE") == "true"); err != nil {
		return err
	}
	if cfg.Interval, err = time.ParseDuration(*interval); err != nil || cfg.Interval < time.Second {
		return fmt.Errorf("VERDICT_RULES_INTERVAL %q: want a duration of at least 1s, such as 1m", *interval)
	}
	if cfg.Hold, err = rules.ParseHold(*hold); err != nil {
		return err
	}

	log := slog.New(slog.NewTextHandler(stderr, nil))
	reg := web.NewRegistry()
	checks := &web.Checks{}
	cfg.Logger, cfg.Registerer, cfg.Checks = log, reg, checks
	log.Info("starting rules", "clickhouse", cfg.ClickHouse, "nats", stream.Redact(cfg.NATSURL), "interval", cfg.Interval, "hold", max(cfg.Hold, 0))

	// The API and the pages read the readouts this service stores.
	wh, err := warehouse.Dial(ctx, cfg.ClickHouse, log)
	if err != nil {
		return err
	}
	defer wh.Close()
	mux := web.NewMux(reg, checks)
	rules.Handle(mux, wh, log)
	cfg.Mux = mux // and POST /v1/experiments/{key}/recompute

	g, gctx := errgroup.WithContext(ctx)
	g.Go(func() error { return rules.Run(gctx, cfg) })
	g.Go(func() error { return web.Serve(gctx, *httpAddr, access.Wrap(mux), log) })
	return g.Wait()
}
