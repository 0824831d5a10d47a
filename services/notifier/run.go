package main

import (
	"context"
	"flag"
	"io"
	"log/slog"
	"path/filepath"
	"strings"

	"golang.org/x/sync/errgroup"

	"github.com/verdictlabs/verdict/pkg/notifier"
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
	var cfg notifier.Config
	fs := flag.NewFlagSet("notifier", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.StringVar(&cfg.NATSURL, "nats-url", env("VERDICT_NATS_URL", "nats://127.0.0.1:4222"), "NATS server URL (VERDICT_NATS_URL)")
	fs.StringVar(&cfg.SMTP.Addr, "smtp-addr", getenv("VERDICT_SMTP_ADDR"), "SMTP server host:port; empty writes .eml files to the outbox (VERDICT_SMTP_ADDR)")
	fs.StringVar(&cfg.SMTP.From, "smtp-from", env("VERDICT_SMTP_FROM", "verdict <verdict@localhost>"), "sender address (VERDICT_SMTP_FROM)")
	fs.StringVar(&cfg.SMTP.Username, "smtp-username", getenv("VERDICT_SMTP_USERNAME"), "SMTP AUTH user; empty: no AUTH (VERDICT_SMTP_USERNAME)")
	cfg.SMTP.Password = getenv("VERDICT_SMTP_PASSWORD") // not a flag: it would show in ps
	allowed := fs.String("smtp-allowed-domains", getenv("VERDICT_SMTP_ALLOWED_DOMAINS"), "comma-separated recipient domains; owners elsewhere are refused (VERDICT_SMTP_ALLOWED_DOMAINS; default the sender's domain, * for any)")
	hosts := fs.String("webhook-allowed-hosts", getenv("VERDICT_WEBHOOK_ALLOWED_HOSTS"), "comma-separated hosts (or *.domain) Slack and webhook URLs may name, loopback and private addresses included; unset: any public host (VERDICT_WEBHOOK_ALLOWED_HOSTS)")
	starttls := fs.String("smtp-starttls", env("VERDICT_SMTP_STARTTLS", "opportunistic"), "opportunistic, mandatory or none (VERDICT_SMTP_STARTTLS)")
	fs.StringVar(&cfg.Digest, "digest", getenv("VERDICT_DIGEST"), "digest schedule, cron in UTC (default \"0 9 * * 1\": Mondays 09:00), or off (VERDICT_DIGEST)")
	dataDir := fs.String("data-dir", env("VERDICT_DATA_DIR", "./var"), "the outbox is <data-dir>/outbox (VERDICT_DATA_DIR)")
	httpAddr := fs.String("http-addr", env("VERDICT_HTTP_ADDR", "127.0.0.1:8082"), "/metrics, /healthz, /readyz (VERDICT_HTTP_ADDR)")
	fs.StringVar(&cfg.BaseURL, "base-url", env("VERDICT_BASE_URL", "http://127.0.0.1:8080"), "where the readout pages are served, for links in emails (VERDICT_BASE_URL)")
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
	// Webhook URLs carry credentials (Slack's path is one): not flags.
	if cfg.Slack, err = notifier.ParseURLs("VERDICT_SLACK_WEBHOOKS", getenv("VERDICT_SLACK_WEBHOOKS")); err != nil {
		return err
	}
	if cfg.Webhooks, err = notifier.ParseURLs("VERDICT_WEBHOOKS", getenv("VERDICT_WEBHOOKS")); err != nil {
		return err
	}
	cfg.WebhookSecret = getenv("VERDICT_WEBHOOK_SECRET")
	if cfg.AllowedHosts, err = notifier.ParseHosts(*hosts); err != nil {
		return err
	}
	cfg.SMTP.StartTLS = notifier.StartTLS(*starttls)
	cfg.AllowedDomains = strings.Split(*allowed, ",")
	cfg.OutboxDir = filepath.Join(*dataDir, "outbox")

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
