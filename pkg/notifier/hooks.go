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
	"strconv"
	"strings"
	"time"

	"github.com/verdictlabs/verdict/pkg/config"
	"github.com/verdictlabs/verdict/pkg/readout"
	"github.com/verdictlabs/verdict/pkg/report"
)

// Webhook headers. The signature is "sha256=" and the hex HMAC-SHA256,
// with VERDICT_WEBHOOK_SECRET, of the timestamp, a ".", and the body, as
// Stripe and Slack sign theirs: a receiver recomputes it and refuses a
// timestamp more than five minutes from its clock, so a delivery
// captured once cannot be replayed later.
const (
	SignatureHeader = "X-Verdict-Signature"
	TimestampHeader = "X-Verdict-Timestamp" // Unix seconds when the delivery was signed
	EventHeader     = "X-Verdict-Event"     // first_label, label_changed or invalid
	DeliveryHeader  = "X-Verdict-Delivery"  // the same for a resend: receivers can dedupe on it
)

// Sign is the X-Verdict-Signature value of body signed at timestamp (the
// X-Verdict-Timestamp value) with secret.
func Sign(secret []byte, timestamp string, body []byte) string {
	mac := hmac.New(sha256.New, secret)
	mac.Write([]byte(timestamp))
	mac.Write([]byte("."))
	mac.Write(body)
	return "sha256=" + hex.EncodeToString(mac.Sum(nil))
}

// Verify checks a delivery's signature and that its timestamp is within
// tolerance of now: what a receiver does (in Go; the README shows it in a
// shell).
func Verify(secret []byte, header http.Header, body []byte, now time.Time, tolerance time.Duration) error {
	ts := header.Get(TimestampHeader)
	sec, err := strconv.ParseInt(ts, 10, 64)
	if err != nil {
		return fmt.Errorf("%s %q: want Unix seconds", TimestampHeader, ts)
	}
	if d := now.Sub(time.Unix(sec, 0)); d > tolerance || d < -tolerance {
		return fmt.Errorf("%s is %v from now: more than %v, a replay or a wrong clock", TimestampHeader, d.Round(time.Second), tolerance)
	}
	if !hmac.Equal([]byte(header.Get(SignatureHeader)), []byte(Sign(secret, ts, body))) {
		return fmt.Errorf("%s does not match the body and timestamp", SignatureHeader)
	}
	return nil
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
		if err := checkTarget(n.hosts, t.url); err != nil {
			n.metrics.hookFailed.WithLabelValues(t.kind).Inc()
			log.Error("notification given up", "err", err)
			return err
		}
		err = n.deliverFor(ctx, n.hookGiveUp, func(ctx context.Context) error {
			if t.kind == "webhook" {
				ts := strconv.FormatInt(n.now().Unix(), 10)
				header.Set(TimestampHeader, ts)
				header.Set(SignatureHeader, Sign(n.secret, ts, body))
			}
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
		text := fmt.Sprintf("*%s* · %s (`%s`)\n%s", report.Verdict(r), report.SlackEscape(name), report.SlackEscape(r.Experiment), report.SlackEscape(r.Summary))
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
	// Signed at each attempt (post), so a retry carries a fresh timestamp.
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
	if errors.Is(err, ErrRefusedTarget) {
		return fmt.Errorf("%w: %w", ErrPermanent, err)
	}
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
