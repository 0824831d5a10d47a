package main

import (
	"context"
	"errors"
	"flag"
	"io"
	"log/slog"

	"github.com/verdictlabs/verdict/pkg/gateway"
	"github.com/verdictlabs/verdict/pkg/stream"
	"github.com/verdictlabs/verdict/pkg/web"
)

func run(ctx context.Context, args []string, getenv func(string) string, stderr io.Writer) error {
	env := func(key, def string) string {
		if v := getenv(key); v != "" {
			return v
		}
		return def
	}
	var cfg gateway.Config
	fs := flag.NewFlagSet("gateway", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.StringVar(&cfg.NATSURL, "nats-url", env("VERDICT_NATS_URL", "nats://127.0.0.1:4222"), "NATS server URL (VERDICT_NATS_URL)")
	fs.StringVar(&cfg.HTTPAddr, "http-addr", env("VERDICT_HTTP_ADDR", "127.0.0.1:8082"), "HTTP ingest, /metrics, /healthz, /readyz (VERDICT_HTTP_ADDR)")
	unit := fs.String("unit", env("VERDICT_GATEWAY_UNIT", "user"), "unit id: user (userId, else anonymousId) or anonymous (VERDICT_GATEWAY_UNIT)")
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
	var errs []error
	// The keys are not a flag: they would show in ps.
	if cfg.WriteKeys, err = gateway.ParseWriteKeys(getenv("VERDICT_WRITE_KEYS")); err != nil {
		errs = append(errs, err)
	}
	if cfg.Unit, err = gateway.ParseUnit(*unit); err != nil {
		errs = append(errs, err)
	}
	if err := errors.Join(errs...); err != nil {
		return err
	}

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
