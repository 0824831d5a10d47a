package main

import (
	"context"
	"errors"
	"flag"
	"io"
	"log/slog"

	"golang.org/x/sync/errgroup"

	"github.com/verdictlabs/verdict/pkg/rules"
	"github.com/verdictlabs/verdict/pkg/settings"
	"github.com/verdictlabs/verdict/pkg/stream"
	"github.com/verdictlabs/verdict/pkg/warehouse"
	"github.com/verdictlabs/verdict/pkg/web"
)

func run(ctx context.Context, args []string, getenv func(string) string, stderr io.Writer) error {
	var cfg rules.Config
	var nats stream.Settings
	var flags rules.Flags
	fs := flag.NewFlagSet("rules", flag.ContinueOnError)
	fs.SetOutput(stderr)
	nats.RegisterFlags(fs, getenv)
	cfg.ClickHouse.RegisterFlags(fs, getenv)
	flags.RegisterFlags(fs, getenv)
	httpAddr := fs.String("http-addr", settings.Env(getenv, "VERDICT_HTTP_ADDR", "127.0.0.1:8080"), "API, readout pages, /metrics, /healthz, /readyz (VERDICT_HTTP_ADDR)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	// Every problem at once, each naming its variable.
	errs := []error{nats.Validate(), flags.Apply(&cfg)}
	cfg.NATSURL, cfg.NATSAuth, cfg.NATSReplicas = nats.URL, nats.Auth, nats.Replicas
	// Secrets are not flags: they would show in ps.
	var access web.Access
	var err error
	if access.APITokens, err = web.ParseTokens("VERDICT_API_TOKENS", getenv("VERDICT_API_TOKENS")); err != nil {
		errs = append(errs, err)
	}
	access.MetricsToken = getenv("VERDICT_METRICS_TOKEN")
	access.Addr, access.BaseURL = *httpAddr, getenv("VERDICT_BASE_URL")
	if err == nil {
		errs = append(errs, web.CheckExposure(*httpAddr, access, settings.True(getenv("VERDICT_INSECURE"))))
	}
	if err := errors.Join(errs...); err != nil {
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
