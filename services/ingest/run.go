package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"strconv"
	"time"

	"golang.org/x/sync/errgroup"

	"github.com/verdictlabs/verdict/pkg/ingest"
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
	var cfg ingest.Config
	fs := flag.NewFlagSet("ingest", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.StringVar(&cfg.NATSURL, "nats-url", env("VERDICT_NATS_URL", "nats://127.0.0.1:4222"), "NATS server URL (VERDICT_NATS_URL)")
	cfg.ClickHouse.RegisterFlags(fs, getenv)
	httpAddr := fs.String("http-addr", env("VERDICT_HTTP_ADDR", "127.0.0.1:8081"), "/metrics, /healthz, /readyz (VERDICT_HTTP_ADDR)")
	batch := fs.String("batch", env("VERDICT_INGEST_BATCH", "10000"), "events per ClickHouse insert (VERDICT_INGEST_BATCH)")
	wait := fs.String("batch-wait", env("VERDICT_INGEST_BATCH_WAIT", "1s"), "longest wait to fill a batch (VERDICT_INGEST_BATCH_WAIT)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	cfg.NATSAuth = stream.AuthFromEnv(getenv) // secrets: not flags
	if cfg.Limits == (stream.Limits{}) {
		cfg.Limits = stream.DefaultLimits
	}
	var err error
	if cfg.Limits.Replicas, err = stream.ParseReplicas(getenv("VERDICT_NATS_REPLICAS")); err != nil {
		return err
	}
	if cfg.Limits.EventsDuplicates, err = stream.ParseDuplicateWindow(getenv("VERDICT_NATS_DUPLICATE_WINDOW")); err != nil {
		return err
	}
	if err := cfg.NATSAuth.Validate(); err != nil {
		return err
	}
	var errs []error
	if cfg.BatchSize, err = strconv.Atoi(*batch); err != nil || cfg.BatchSize < 1 {
		errs = append(errs, fmt.Errorf("VERDICT_INGEST_BATCH %q: want a positive whole number", *batch))
	}
	if cfg.BatchWait, err = time.ParseDuration(*wait); err != nil || cfg.BatchWait <= 0 {
		errs = append(errs, fmt.Errorf("VERDICT_INGEST_BATCH_WAIT %q: want a duration such as 1s", *wait))
	}
	if err := errors.Join(errs...); err != nil {
		return err
	}

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
