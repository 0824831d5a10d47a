package main

import (
	"context"
	"errors"
	"flag"
	"io"
	"log/slog"

	"golang.org/x/sync/errgroup"

	"github.com/verdictlabs/verdict/pkg/ingest"
	"github.com/verdictlabs/verdict/pkg/settings"
	"github.com/verdictlabs/verdict/pkg/stream"
	"github.com/verdictlabs/verdict/pkg/web"
)

func run(ctx context.Context, args []string, getenv func(string) string, stderr io.Writer) error {
	var cfg ingest.Config
	var nats stream.Settings
	var flags ingest.Flags
	fs := flag.NewFlagSet("ingest", flag.ContinueOnError)
	fs.SetOutput(stderr)
	nats.RegisterFlags(fs, getenv)
	cfg.ClickHouse.RegisterFlags(fs, getenv)
	flags.RegisterFlags(fs, getenv)
	httpAddr := fs.String("http-addr", settings.Env(getenv, "VERDICT_HTTP_ADDR", "127.0.0.1:8081"), "/metrics, /healthz, /readyz (VERDICT_HTTP_ADDR)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	// Every problem at once, each naming its variable.
	if err := errors.Join(nats.Validate(), flags.Apply(&cfg)); err != nil {
		return err
	}
	cfg.NATSURL, cfg.NATSAuth, cfg.Limits.Replicas = nats.URL, nats.Auth, nats.Replicas

	log := slog.New(slog.NewTextHandler(stderr, nil))
	reg := web.NewRegistry()
	checks := &web.Checks{}
	cfg.Logger, cfg.Registerer, cfg.Checks = log, reg, checks
	log.Info("starting ingest", "clickhouse", cfg.ClickHouse, "nats", stream.Redact(cfg.NATSURL))

	g, gctx := errgroup.WithContext(ctx)
	g.Go(func() error { return ingest.Run(gctx, cfg) })
	g.Go(func() error {
		return web.Serve(gctx, *httpAddr, web.Access{MetricsToken: getenv("VERDICT_METRICS_TOKEN")}.Wrap(web.NewMux(reg, checks)), log)
	})
	return g.Wait()
}
