package notifier

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/verdictlabs/verdict/pkg/config"
	"github.com/verdictlabs/verdict/pkg/readout"
)

// receiver is a real HTTP server on loopback that keeps what it is sent and
// answers with the codes it is told, then 200.
type receiver struct {
	*httptest.Server
	mu       sync.Mutex
	failures []int // answered first, in order
	got      []delivery
	attempts int
}

type delivery struct {
	header http.Header
	body   []byte
}

func newReceiver(t *testing.T, failures ...int) *receiver {
	r := &receiver{failures: failures}
	r.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		body, _ := io.ReadAll(req.Body)
		r.mu.Lock()
		defer r.mu.Unlock()
		r.attempts++
		if len(r.failures) > 0 {
			code := r.failures[0]
			r.failures = r.failures[1:]
			http.Error(w, "not now", code)
			return
		}
		r.got = append(r.got, delivery{req.Header.Clone(), body})
		io.WriteString(w, "ok")
	}))
	t.Cleanup(r.Close)
	return r
}

func (r *receiver) deliveries() []delivery {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]delivery(nil), r.got...)
}

// TestWebhooks: an experiment's notify sends each decision once to its
// Slack incoming webhook and once to its webhook, the webhook's body the
// readout JSON signed with HMAC-SHA256; a receiver answering 500 and 429
// first gets it after the retries; nothing is sent again after a restart;
// collecting and unchanged readouts send nothing.
func TestWebhooks(t *testing.T) {
	h := newHarness(t)
	slack := newReceiver(t)
	hook := newReceiver(t, http.StatusInternalServerError, http.StatusTooManyRequests)
	h.defineNotify("dark-mode", &config.Notify{Slack: []string{slack.URL + "/services/T0/B0/secret"}, Webhooks: []string{hook.URL + "/verdict"}},
		"pm@shop.example")
	const secret = "webhook-secret"
	cfg := Config{Sender: &recorder{}, WebhookSecret: secret}
	stop := h.start(cfg)
	h.publish(h.readout("collecting", 1))
	h.publish(h.readout("persevere", 2))
	h.publish(h.readout("persevere", 3)) // unchanged
	h.waitHandled()
	stop()
	// A restart, and the same readouts again, past the duplicate window.
	stop = h.start(cfg)
	h.publish(h.readout("persevere", 2), "again-2")
	h.publish(h.readout("invalid", 4))
	h.waitHandled()
	stop()

	hooks := hook.deliveries()
	if len(hooks) != 2 {
		t.Fatalf("the webhook got %d deliveries, want 2 (persevere, then invalid)", len(hooks))
	}
	for i, want := range []struct {
		kind    string
		version int64
		status  readout.Status
	}{{"first_label", 2, readout.Decided}, {"invalid", 4, readout.Invalid}} {
		d := hooks[i]
		if ts := d.header.Get(TimestampHeader); ts == "" {
			t.Errorf("delivery %d: no %s", i, TimestampHeader)
		} else if got := d.header.Get(SignatureHeader); got != Sign([]byte(secret), ts, d.body) {
			t.Errorf("delivery %d: signature %q does not match the timestamp and body", i, got)
		}
		var r readout.Readout
		if err := json.Unmarshal(d.body, &r); err != nil || r.Version != want.version || r.Status != want.status || r.Experiment != "dark-mode" {
			t.Errorf("delivery %d: body is readout %d %s of %q (%v), want version %d, %s", i, r.Version, r.Status, r.Experiment, err, want.version, want.status)
		}
		if d.header.Get(EventHeader) != want.kind || d.header.Get(DeliveryHeader) == "" || d.header.Get("Content-Type") != "application/json" {
			t.Errorf("delivery %d: headers %v, want event %s, a delivery id, JSON", i, d.header, want.kind)
		}
	}
	if hook.attempts != 4 {
		t.Errorf("the webhook was tried %d times, want 4 (500, 429, then the two deliveries)", hook.attempts)
	}
	msgs := slack.deliveries()
	if len(msgs) != 2 {
		t.Fatalf("Slack got %d messages, want 2", len(msgs))
	}
	for i, want := range []string{"PERSEVERE", "INVALID"} {
		var m struct{ Text string }
		if err := json.Unmarshal(msgs[i].body, &m); err != nil || !strings.Contains(m.Text, want) || !strings.Contains(m.Text, "/experiments/dark-mode") {
			t.Errorf("Slack message %d = %q (%v), want the %s decision with a link", i, m.Text, err, want)
		}
	}
	if v := labelled(t, h, "verdict_notifications_sent_total", "webhook"); v != 1 {
		t.Errorf("verdict_notifications_sent_total{target=webhook} after the restart = %v, want 1 (the invalid one)", v)
	}
}

// TestWebhookPermanent: a receiver answering 404 is given up at once and
// recorded; the next decision goes out to it again, and email is unaffected.
func TestWebhookPermanent(t *testing.T) {
	h := newHarness(t)
	gone := newReceiver(t, http.StatusNotFound)
	h.defineNotify("dark-mode", &config.Notify{Webhooks: []string{gone.URL}}, "pm@shop.example")
	rec := &recorder{}
	stop := h.start(Config{Sender: rec, WebhookSecret: "s"})
	h.publish(h.readout("persevere", 1))
	h.publish(h.readout("invalid", 2))
	h.waitHandled()
	stop()
	if gone.attempts != 2 || len(gone.deliveries()) != 1 {
		t.Errorf("attempts %d, deliveries %d; want 2 and 1 (the 404 given up, the next decision delivered)", gone.attempts, len(gone.deliveries()))
	}
	if n := len(rec.sent()); n != 2 {
		t.Errorf("%d emails, want 2", n)
	}
}

// recorder is a Sender that keeps the emails.
type recorder struct {
	mu   sync.Mutex
	msgs []Email
}

func (r *recorder) Send(_ context.Context, e Email) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.msgs = append(r.msgs, e)
	return nil
}

func (r *recorder) sent() []Email {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]Email(nil), r.msgs...)
}

// labelled is the value of counter name with target label value, as the
// last start of the notifier registered it.
func labelled(t *testing.T, h *harness, name, target string) float64 {
	t.Helper()
	mfs, err := h.reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
		for _, m := range mf.GetMetric() {
			for _, l := range m.GetLabel() {
				if l.GetName() == "target" && l.GetValue() == target {
					return m.GetCounter().GetValue()
				}
			}
		}
	}
	t.Fatalf("metric %s{target=%q} not found", name, target)
	return 0
}

// TestHookGuard: a definition's URL cannot make the notifier post to a
// loopback, private or link-local address unless its host is allowed, nor
// to a host off a set allow list, nor follow a redirect; each is given up
// at once, counted, and the email still goes.
func TestHookGuard(t *testing.T) {
	for _, tc := range []struct {
		name    string
		allowed []string
		target  func(r *receiver) string
	}{
		{"loopback, not allowed", []string{}, func(r *receiver) string { return r.URL }},
		{"a name for loopback, not allowed", []string{}, func(r *receiver) string { return strings.Replace(r.URL, "127.0.0.1", "localhost", 1) }},
		{"link-local metadata", []string{}, func(*receiver) string { return "http://169.254.169.254/latest/meta-data/iam/" }},
		{"off the allow list", []string{"hooks.example.com"}, func(r *receiver) string { return r.URL }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h := newHarness(t)
			hook := newReceiver(t)
			h.defineNotify("dark-mode", &config.Notify{Webhooks: []string{tc.target(hook)}}, "pm@shop.example")
			rec := &recorder{}
			stop := h.start(Config{Sender: rec, WebhookSecret: "s", AllowedHosts: tc.allowed})
			h.publish(h.readout("persevere", 1))
			h.waitHandled()
			stop()
			if hook.attempts != 0 {
				t.Errorf("the receiver got %d requests, want none", hook.attempts)
			}
			if got := labelled(t, h, "verdict_notifications_failed_total", "webhook"); got != 1 {
				t.Errorf("verdict_notifications_failed_total{target=webhook} = %v, want 1", got)
			}
			if n := len(rec.sent()); n != 1 {
				t.Errorf("%d emails, want 1", n)
			}
		})
	}

	t.Run("no redirects", func(t *testing.T) {
		h := newHarness(t)
		final := newReceiver(t)
		redirect := httptest.NewServer(http.RedirectHandler(final.URL, http.StatusFound))
		defer redirect.Close()
		h.defineNotify("dark-mode", &config.Notify{Webhooks: []string{redirect.URL}}, "pm@shop.example")
		stop := h.start(Config{Sender: &recorder{}, WebhookSecret: "s"})
		h.publish(h.readout("persevere", 1))
		h.waitHandled()
		stop()
		if final.attempts != 0 {
			t.Errorf("the redirect was followed: %d requests", final.attempts)
		}
	})
}

// TestVerify: a receiver's check refuses a replay outside the tolerance, a
// changed body and a changed timestamp.
func TestVerify(t *testing.T) {
	secret, body := []byte("s3cret"), []byte(`{"experiment":"x"}`)
	at := time.Unix(1_700_000_000, 0)
	h := http.Header{}
	h.Set(TimestampHeader, "1700000000")
	h.Set(SignatureHeader, Sign(secret, "1700000000", body))
	if err := Verify(secret, h, body, at.Add(time.Minute), 5*time.Minute); err != nil {
		t.Errorf("a fresh delivery: %v", err)
	}
	if err := Verify(secret, h, body, at.Add(time.Hour), 5*time.Minute); err == nil {
		t.Error("a replay an hour later passed")
	}
	if err := Verify(secret, h, []byte(`{"experiment":"y"}`), at, 5*time.Minute); err == nil {
		t.Error("a changed body passed")
	}
	h.Set(TimestampHeader, "1700000060")
	if err := Verify(secret, h, body, at, 5*time.Minute); err == nil {
		t.Error("a changed timestamp passed")
	}
}

// TestSlackEscaped: names and summaries reach Slack as text, never as a
// mention or a link.
func TestSlackEscaped(t *testing.T) {
	h := newHarness(t)
	slack := newReceiver(t)
	h.defineNotify("dark-mode", &config.Notify{Slack: []string{slack.URL}}, "pm@shop.example")
	stop := h.start(Config{Sender: &recorder{}})
	r := h.readout("persevere", 1)
	r.Summary = "<!channel> look at <https://evil.example|your bank> & more"
	h.publish(r)
	h.waitHandled()
	stop()
	d := slack.deliveries()
	if len(d) != 1 {
		t.Fatalf("%d Slack posts, want 1", len(d))
	}
	var msg struct{ Text string }
	if err := json.Unmarshal(d[0].body, &msg); err != nil {
		t.Fatal(err)
	}
	if strings.Contains(msg.Text, "<!channel>") || strings.Contains(msg.Text, "<https://evil") || !strings.Contains(msg.Text, "&lt;!channel&gt; look at &lt;https://evil.example|your bank&gt; &amp; more") {
		t.Errorf("Slack text %q: want the summary escaped", msg.Text)
	}
}

// TestForgedReadouts: readouts the rules service never took — a version
// far ahead, another label under a real version, an experiment without
// state — are refused and counted; they poison nothing: the real readouts
// after them are emailed as if they had never come.
func TestForgedReadouts(t *testing.T) {
	h := newHarness(t)
	h.define("no-state", "pm@shop.example")
	rec := &recorder{}
	stop := h.start(Config{Sender: rec})
	h.forge(h.readout("persevere", 999_999_999), "forged-ahead")
	h.publish(h.readout("collecting", 1))
	h.forge(h.readout("pivot", 1), "forged-same-version")
	other := h.readout("persevere", 1)
	other.Experiment = "no-state"
	h.forge(other, "forged-no-state")
	h.publish(h.readout("salvage", 2))
	h.waitHandled()
	stop()
	sent := rec.sent()
	if len(sent) != 1 || !strings.Contains(sent[0].MessageID, ".v2.") {
		var ids []string
		for _, e := range sent {
			ids = append(ids, e.MessageID)
		}
		t.Errorf("emails %q, want exactly one, of the real readout 2", ids)
	}
	mfs, err := h.reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	refused := 0.0
	for _, mf := range mfs {
		for _, m := range mf.GetMetric() {
			for _, l := range m.GetLabel() {
				if mf.GetName() == "verdict_notifier_readouts_total" && l.GetName() == "outcome" && l.GetValue() == "refused" {
					refused = m.GetCounter().GetValue()
				}
			}
		}
	}
	if refused != 3 {
		t.Errorf("verdict_notifier_readouts_total{outcome=refused} = %v, want 3", refused)
	}
}
