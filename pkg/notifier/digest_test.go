package notifier

import (
	"io"
	"mime"
	"mime/multipart"
	"mime/quotedprintable"
	"net/mail"
	"strings"
	"sync"
	"testing"
	"time"
)

// clock is a time the test moves.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) now() time.Time  { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *clock) set(t time.Time) { c.mu.Lock(); defer c.mu.Unlock(); c.t = t }

// digestsOf are the digest emails sent, by recipient: their plain text.
func digestsOf(t *testing.T, rec *recorder) map[string][]string {
	t.Helper()
	out := map[string][]string{}
	for _, e := range rec.sent() {
		if !strings.HasPrefix(e.MessageID, "<verdict.digest.") {
			continue
		}
		msg, err := mail.ReadMessage(strings.NewReader(string(e.Data)))
		if err != nil {
			t.Fatal(err)
		}
		_, params, err := mime.ParseMediaType(msg.Header.Get("Content-Type"))
		if err != nil {
			t.Fatal(err)
		}
		part, err := multipart.NewReader(msg.Body, params["boundary"]).NextPart()
		if err != nil {
			t.Fatal(err)
		}
		text, err := io.ReadAll(quotedprintable.NewReader(part))
		if err != nil {
			t.Fatal(err)
		}
		for _, to := range e.To {
			out[to] = append(out[to], msg.Header.Get("Subject")+"\n"+string(text))
		}
	}
	return out
}

// TestDigest: on the schedule (Mondays 09:00 UTC), each owner gets one
// digest of their experiments: decided in the week (with what a pivot or
// salvage taught) and still running. Not for a week that ended before the
// deployment's first start, not again after a restart, and the next week
// only to owners with something in it.
func TestDigest(t *testing.T) {
	h := newHarness(t) // dark-mode, owned by pm@ and data@
	h.define("search", "pm@shop.example")
	c := &clock{t: time.Date(2026, 11, 30, 8, 0, 0, 0, time.UTC)} // a Monday, before 09:00
	rec := &recorder{}
	team := newReceiver(t) // a default Slack target gets the team's digest
	cfg := Config{Sender: rec, Now: c.now, DigestCheck: 50 * time.Millisecond, Slack: []string{team.URL}}
	stop := h.start(cfg)
	decided := h.readout("pivot", 1)
	at := time.Date(2026, 11, 25, 14, 0, 0, 0, time.UTC) // in the week to Monday 09:00
	decided.DecidedAt = &at
	h.publish(decided)
	running := h.readout("collecting", 1)
	running.Experiment, running.Name = "search", "Search ranking"
	h.publish(running)
	h.waitHandled()
	time.Sleep(300 * time.Millisecond)
	if d := digestsOf(t, rec); len(d) != 0 {
		t.Fatalf("digests before the first period of this deployment ended: %v", d)
	}

	teamDigests := func() []delivery { // the team digests, besides the decision itself
		var msgs []delivery
		for _, m := range team.deliveries() {
			if strings.HasPrefix(m.header.Get(DeliveryHeader), "digest.") {
				msgs = append(msgs, m)
			}
		}
		return msgs
	}
	c.set(time.Date(2026, 11, 30, 9, 0, 30, 0, time.UTC))
	// Email and Slack go out in parallel: wait for both before the restart.
	waitFor(t, "two digests", func() bool { return len(digestsOf(t, rec)) == 2 })
	waitFor(t, "the team's digest on Slack", func() bool { return len(teamDigests()) > 0 })
	stop()
	stop = h.start(cfg) // a restart: nothing again
	time.Sleep(500 * time.Millisecond)
	d := digestsOf(t, rec)
	pm, data := d["pm@shop.example"], d["data@shop.example"]
	if len(pm) != 1 || len(data) != 1 {
		t.Fatalf("digests: pm %d, data %d; want one each", len(pm), len(data))
	}
	for what, want := range map[string]string{
		"subject":        "verdict digest to 30 Nov 2026: 1 decided, 1 running",
		"decided":        "PIVOT · Dark mode (dark-mode)",
		"learned":        "What was learned",
		"running":        "Search ranking (search)",
		"pivot's lesson": decided.Summary,
	} {
		if !strings.Contains(pm[0], want) {
			t.Errorf("pm's digest has no %s (%q):\n%s", what, want, pm[0])
		}
	}
	if msgs := teamDigests(); len(msgs) != 1 || !strings.Contains(string(msgs[0].body), "1 decided, 1 running") {
		t.Errorf("Slack got %d team digests (%q), want one", len(msgs), msgs)
	}
	if strings.Contains(data[0], "Search ranking") {
		t.Errorf("data's digest lists search, which data does not own:\n%s", data[0])
	}

	// The next week: only pm has something (search is still running).
	c.set(time.Date(2026, 12, 7, 9, 1, 0, 0, time.UTC))
	waitFor(t, "the next week's digest", func() bool { return len(digestsOf(t, rec)["pm@shop.example"]) == 2 })
	stop()
	d = digestsOf(t, rec)
	if len(d["data@shop.example"]) != 1 || !strings.Contains(d["pm@shop.example"][1], "0 decided, 1 running") {
		t.Errorf("the second week: data got %d digests (want 1 in all), pm's says:\n%s", len(d["data@shop.example"]), d["pm@shop.example"][1])
	}
}

// TestLastFire checks the schedule arithmetic the digest periods use.
func TestLastFire(t *testing.T) {
	s, err := ParseDigest("")
	if err != nil {
		t.Fatal(err)
	}
	for now, want := range map[time.Time]time.Time{
		time.Date(2026, 12, 2, 15, 0, 0, 0, time.UTC):  time.Date(2026, 11, 30, 9, 0, 0, 0, time.UTC),
		time.Date(2026, 11, 30, 9, 0, 0, 0, time.UTC):  time.Date(2026, 11, 30, 9, 0, 0, 0, time.UTC),
		time.Date(2026, 11, 30, 8, 59, 0, 0, time.UTC): time.Date(2026, 11, 23, 9, 0, 0, 0, time.UTC),
	} {
		if got := lastFire(s, now); !got.Equal(want) {
			t.Errorf("lastFire(%v) = %v, want %v", now, got, want)
		}
	}
	if s, err := ParseDigest("off"); s != nil || err != nil {
		t.Errorf(`ParseDigest("off") = %v, %v; want none`, s, err)
	}
	if _, err := ParseDigest("every monday"); err == nil {
		t.Error("ParseDigest accepted a bad schedule")
	}
}
