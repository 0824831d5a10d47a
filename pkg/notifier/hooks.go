package notifier

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"strings"

	"github.com/verdictlabs/verdict/pkg/config"
	"github.com/verdictlabs/verdict/pkg/readout"
	"github.com/verdictlabs/verdict/pkg/report"
)

// Webhook headers. The signature is GitHub's form: "sha256=" and the hex
// HMAC-SHA256 of the body with VERDICT_WEBHOOK_SECRET.
const (
	SignatureHeader = "X-Verdict-Signature"
	EventHeader     = "X-Verdict-Event"    // first_label, label_changed or invalid
	DeliveryHeader  = "X-Verdict-Delivery" // the same for a resend: receivers can dedupe on it
)

// Sign is the X-Verdict-Signature value of body with secret.
func Sign(secret, body []byte) string {
	mac := hmac.New(sha256.New, secret)
	mac.Write(body)
	return "sha256=" + hex.EncodeToString(mac.Sum(nil))
}

// hookTarget is one place besides email a decision goes.
type hookTarget struct {
	kind string // "slack" or "webhook"
	url  string
}

// id names the target in bucket keys and delivery ids.
func (t hookTarget) id() string {
	sum := sha256.Sum256([]byte(t.kind + " " + t.url))
	return t.kind + "-" + hex.EncodeToString(sum[:6])
}

// hookTargets are the experiment's targets: its definition's notify, else
// the defaults.
func (n *Notifier) hookTargets(e config.Experiment) []hookTarget {
	slack, hooks := n.slack, n.webhooks
	if e.Notify != nil {
		slack, hooks = e.Notify.Slack, e.Notify.Webhooks
	}
	var out []hookTarget
	for _, u := range slack {
		out = append(out, hookTarget{"slack", u})
	}
	for _, u := range hooks {
		out = append(out, hookTarget{"webhook", u})
	}
	return out
}

// deliverHook posts the decision ev to t, retrying what may pass (network
// errors, 408, 429, 5xx) with backoff for the retry budget; any other
// answer is permanent.
func (n *Notifier) deliverHook(t hookTarget) func(ctx context.Context, log *slog.Logger, r readout.Readout, last, ev *event) error {
	return func(ctx context.Context, log *slog.Logger, r readout.Readout, last, ev *event) error {
		log = log.With("target", t.kind, "url", redactURL(t.url), "delivery", ev.MessageID)
		body, header, err := n.hookRequest(t, r, ev)
		if err != nil {
			n.metrics.hookFailed.WithLabelValues(t.kind).Inc()
			log.Error("notification given up", "err", err)
			return fmt.Errorf("%w: %w", ErrPermanent, err)
		}
		err = n.deliverWithin(ctx, func(ctx context.Context) error {
			err := post(ctx, n.http, t.url, body, header)
			if err != nil {
				n.metrics.hookFailed.WithLabelValues(t.kind).Inc()
			}
			return err
		}, func(err error) { log.Warn("notify, will retry", "err", err) })
		if errors.Is(err, ErrPermanent) {
			log.Error("notification given up", "err", err)
			return err
		}
		if err != nil {
			return err
		}
		n.metrics.hookSent.WithLabelValues(t.kind).Inc()
		log.Info("notification sent", "kind", ev.Kind, "verdict", report.Verdict(r))
		return nil
	}
}

// hookRequest is the body and headers of the post: for Slack a message, for
// a webhook the readout JSON, signed.
func (n *Notifier) hookRequest(t hookTarget, r readout.Readout, ev *event) ([]byte, http.Header, error) {
	h := http.Header{"Content-Type": {"application/json"}, "User-Agent": {"verdict"}}
	h.Set(EventHeader, ev.Kind)
	h.Set(DeliveryHeader, ev.MessageID)
	if t.kind == "slack" {
		name := r.Name
		if name == "" {
			name = r.Experiment
		}
		text := fmt.Sprintf("*%s* · %s (`%s`)\n%s", report.Verdict(r), name, r.Experiment, r.Summary)
		if n.baseURL != "" {
			text += fmt.Sprintf("\n<%s/experiments/%s|Open the readout>", strings.TrimRight(n.baseURL, "/"), url.PathEscape(r.Experiment))
		}
		body, err := json.Marshal(map[string]string{"text": text})
		return body, h, err
	}
	if len(n.secret) == 0 {
		return nil, nil, errors.New("VERDICT_WEBHOOK_SECRET is not set: webhooks are signed with it")
	}
	body, err := json.Marshal(r)
	if err != nil {
		return nil, nil, err
	}
	h.Set(SignatureHeader, Sign(n.secret, body))
	return body, h, nil
}

// post sends one request; an answer that retrying cannot change is
// ErrPermanent.
func post(ctx context.Context, client *http.Client, target string, body []byte, header http.Header) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, target, bytes.NewReader(body))
	if err != nil {
		return fmt.Errorf("%w: %w", ErrPermanent, err)
	}
	req.Header = header
	resp, err := client.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	msg, _ := io.ReadAll(io.LimitReader(resp.Body, 512))
	switch c := resp.StatusCode; {
	case c >= 200 && c < 300:
		return nil
	case c == http.StatusRequestTimeout || c == http.StatusTooManyRequests || c >= 500:
		return fmt.Errorf("%s: %q", resp.Status, bytes.TrimSpace(msg))
	default:
		return fmt.Errorf("%w: %s: %q", ErrPermanent, resp.Status, bytes.TrimSpace(msg))
	}
}

// redactURL keeps a webhook's secret path (Slack's is the credential) out
// of logs: scheme and host only.
func redactURL(raw string) string {
	u, err := url.Parse(raw)
	if err != nil {
		return "(unparsable URL)"
	}
	return u.Scheme + "://" + u.Host + "/…"
}

// ParseURLs reads a comma-separated list of http(s) URLs (VERDICT_SLACK_WEBHOOKS,
// VERDICT_WEBHOOKS).
func ParseURLs(name, list string) ([]string, error) {
	var out []string
	for _, raw := range strings.Split(list, ",") {
		if raw = strings.TrimSpace(raw); raw == "" {
			continue
		}
		if u, err := url.Parse(raw); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || u.User != nil {
			return nil, fmt.Errorf("%s: %s is not an http(s) URL without credentials", name, redactURL(raw))
		}
		out = append(out, raw)
	}
	return out, nil
}
