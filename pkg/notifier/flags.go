package notifier

import (
	"errors"
	"flag"
	"path/filepath"
	"strings"

	"github.com/verdictlabs/verdict/pkg/settings"
)

// Flags are the notifier's own settings, as flags whose defaults come from
// the environment: the same names under bin/notifier and verdict up.
// Passwords, webhook URLs (Slack's path is a credential) and the webhook
// secret come from the environment only.
type Flags struct {
	smtp                  SMTPConfig
	starttls              string
	allowedDomains, hosts string
	slack, webhooks       string
	webhookSecret, digest string
}

// RegisterFlags adds -smtp-addr, -smtp-from, -smtp-username,
// -smtp-starttls, -smtp-allowed-domains, -webhook-allowed-hosts and
// -digest to fs, and reads VERDICT_SMTP_PASSWORD, VERDICT_SLACK_WEBHOOKS,
// VERDICT_WEBHOOKS and VERDICT_WEBHOOK_SECRET.
func (f *Flags) RegisterFlags(fs *flag.FlagSet, getenv func(string) string) {
	fs.StringVar(&f.smtp.Addr, "smtp-addr", getenv("VERDICT_SMTP_ADDR"), "SMTP server host:port; empty writes .eml files to <data-dir>/outbox (VERDICT_SMTP_ADDR)")
	fs.StringVar(&f.smtp.From, "smtp-from", settings.Env(getenv, "VERDICT_SMTP_FROM", "verdict <verdict@localhost>"), "sender of readout emails (VERDICT_SMTP_FROM)")
	fs.StringVar(&f.smtp.Username, "smtp-username", getenv("VERDICT_SMTP_USERNAME"), "SMTP AUTH user; empty: no AUTH (VERDICT_SMTP_USERNAME)")
	f.smtp.Password = getenv("VERDICT_SMTP_PASSWORD")
	fs.StringVar(&f.starttls, "smtp-starttls", settings.Env(getenv, "VERDICT_SMTP_STARTTLS", "opportunistic"), "opportunistic, mandatory or none (VERDICT_SMTP_STARTTLS)")
	fs.StringVar(&f.allowedDomains, "smtp-allowed-domains", getenv("VERDICT_SMTP_ALLOWED_DOMAINS"), "comma-separated recipient domains; owners elsewhere are refused (VERDICT_SMTP_ALLOWED_DOMAINS; default the sender's domain, * for any)")
	fs.StringVar(&f.hosts, "webhook-allowed-hosts", getenv("VERDICT_WEBHOOK_ALLOWED_HOSTS"), "comma-separated hosts (or *.domain) Slack and webhook URLs may name, loopback and private addresses included; unset: any public host (VERDICT_WEBHOOK_ALLOWED_HOSTS)")
	fs.StringVar(&f.digest, "digest", getenv("VERDICT_DIGEST"), "digest schedule, cron in UTC (default \"0 9 * * 1\": Mondays 09:00), or off (VERDICT_DIGEST)")
	f.slack, f.webhooks = getenv("VERDICT_SLACK_WEBHOOKS"), getenv("VERDICT_WEBHOOKS")
	f.webhookSecret = getenv("VERDICT_WEBHOOK_SECRET")
}

// Apply parses the flags into c (SMTP, AllowedDomains, AllowedHosts,
// Slack, Webhooks, WebhookSecret, Digest, and OutboxDir under dataDir)
// and lists every problem.
func (f *Flags) Apply(c *Config, dataDir string) error {
	var errs []error
	var err error
	c.SMTP = f.smtp
	c.SMTP.StartTLS = StartTLS(f.starttls)
	c.AllowedDomains = strings.Split(f.allowedDomains, ",")
	if c.AllowedHosts, err = ParseHosts(f.hosts); err != nil {
		errs = append(errs, err)
	}
	if c.Slack, err = ParseURLs("VERDICT_SLACK_WEBHOOKS", f.slack); err != nil {
		errs = append(errs, err)
	}
	if c.Webhooks, err = ParseURLs("VERDICT_WEBHOOKS", f.webhooks); err != nil {
		errs = append(errs, err)
	} else if len(c.Webhooks) > 0 && f.webhookSecret == "" {
		errs = append(errs, errors.New("VERDICT_WEBHOOKS is set without VERDICT_WEBHOOK_SECRET: webhooks are signed with it"))
	}
	c.WebhookSecret = f.webhookSecret
	if _, err := ParseDigest(f.digest); err != nil {
		errs = append(errs, err)
	}
	c.Digest = f.digest
	c.OutboxDir = filepath.Join(dataDir, "outbox")
	return errors.Join(errs...)
}
