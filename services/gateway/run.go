package main

import (
	"context"
	"errors"
	"flag"
	"io"
	"log/slog"

	"github.com/verdictlabs/verdict/pkg/gateway"
	"github.com/verdictlabs/verdict/pkg/settings"
	"github.com/verdictlabs/verdict/pkg/stream"
	"github.com/verdictlabs/verdict/pkg/web"
)

func run(ctx context.Context, args []string, getenv func(string) string, stderr io.Writer) error {
	var cfg gateway.Config
	var nats stream.Settings
	var flags gateway.Flags
	fs := flag.NewFlagSet("gateway", flag.ContinueOnError)
	fs.SetOutput(stderr)
	nats.RegisterFlags(fs, getenv)
	flags.RegisterFlags(fs, getenv)
	fs.StringVar(&cfg.HTTPAddr, "http-addr", settings.Env(getenv, "VERDICT_HTTP_ADDR", "127.0.0.1:8082"), "HTTP ingest, /metrics, /healthz, /readyz (VERDICT_HTTP_ADDR)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	// Every problem at once, each naming its variable.
	if err := errors.Join(nats.Validate(), flags.Apply(&cfg)); err != nil {
		return err
	}
	cfg.NATSURL, cfg.NATSAuth, cfg.NATSReplicas = nats.URL, nats.Auth, nats.Replicas

	log := slog.New(slog.NewTextHandler(stderr, nil))
	reg := web.NewRegistry()
	checks := &web.Checks{}
	cfg.Logger, cfg.Registerer, cfg.Checks = log, reg, checks
	g, closeNATS, err := gateway.Open(ctx, cfg)
	if err != nil {
		return err
	}
	defer closeNATS()
	mux := web.NewMux(reg, checks)
	g.Register(mux)
	return web.Serve(ctx, cfg.HTTPAddr, web.Access{MetricsToken: getenv("VERDICT_METRICS_TOKEN"), Addr: cfg.HTTPAddr, OpenIngest: len(cfg.WriteKeys) == 0}.Wrap(mux), log)
}
