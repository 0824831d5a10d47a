package main

import (
	"context"
	"errors"
	"flag"
	"io"
	"log/slog"

	"golang.org/x/sync/errgroup"

	"github.com/verdictlabs/verdict/pkg/notifier"
	"github.com/verdictlabs/verdict/pkg/settings"
	"github.com/verdictlabs/verdict/pkg/stream"
	"github.com/verdictlabs/verdict/pkg/web"
)

func run(ctx context.Context, args []string, getenv func(string) string, stderr io.Writer) error {
	var cfg notifier.Config
	var nats stream.Settings
	var flags notifier.Flags
	fs := flag.NewFlagSet("notifier", flag.ContinueOnError)
	fs.SetOutput(stderr)
	nats.RegisterFlags(fs, getenv)
	flags.RegisterFlags(fs, getenv)
	dataDir := fs.String("data-dir", settings.Env(getenv, "VERDICT_DATA_DIR", "./var"), "the outbox is <data-dir>/outbox (VERDICT_DATA_DIR)")
	httpAddr := fs.String("http-addr", settings.Env(getenv, "VERDICT_HTTP_ADDR", "127.0.0.1:8083"), "/metrics, /healthz, /readyz (VERDICT_HTTP_ADDR)")
	fs.StringVar(&cfg.BaseURL, "base-url", settings.Env(getenv, "VERDICT_BASE_URL", "http://127.0.0.1:8080"), "where the readout pages are served, for links in emails (VERDICT_BASE_URL)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	// Every problem at once, each naming its variable.
	if err := errors.Join(nats.Validate(), flags.Apply(&cfg, *dataDir)); err != nil {
		return err
	}
	cfg.NATSURL, cfg.NATSAuth, cfg.NATSReplicas = nats.URL, nats.Auth, nats.Replicas

	log := slog.New(slog.NewTextHandler(stderr, nil))
	reg := web.NewRegistry()
	checks := &web.Checks{}
	cfg.Logger, cfg.Registerer, cfg.Checks = log, reg, checks
	log.Info("starting notifier", "nats", stream.Redact(cfg.NATSURL), "smtp", cfg.SMTP)

	g, gctx := errgroup.WithContext(ctx)
	g.Go(func() error { return notifier.Run(gctx, cfg) })
	g.Go(func() error {
		return web.Serve(gctx, *httpAddr, web.Access{MetricsToken: getenv("VERDICT_METRICS_TOKEN")}.Wrap(web.NewMux(reg, checks)), log)
	})
	return g.Wait()
}
