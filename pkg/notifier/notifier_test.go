package notifier

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"io"
	"mime"
	"net"
	"net/mail"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/emersion/go-sasl"
	"github.com/emersion/go-smtp"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"go.uber.org/goleak"

	"github.com/verdictlabs/verdict/pkg/config"
	"github.com/verdictlabs/verdict/pkg/configstore"
	"github.com/verdictlabs/verdict/pkg/readout"
	"github.com/verdictlabs/verdict/pkg/stats"
	"github.com/verdictlabs/verdict/pkg/stream"
	"github.com/verdictlabs/verdict/pkg/stream/embedded"
	"github.com/verdictlabs/verdict/pkg/stream/streamtest"
	"github.com/verdictlabs/verdict/pkg/testkit"
	"github.com/verdictlabs/verdict/pkg/tlstest"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// received is one email taken by the test SMTP server.
type received struct {
	from    string
	to      []string
	subject string
	msgID   string
	data    []byte
	tls     bool
	user    string
}

// mailServer is a real SMTP server (emersion/go-smtp) that keeps what it
// receives.
type mailServer struct {
	srv  *smtp.Server
	addr string
	done chan struct{}

	mu   sync.Mutex
	msgs []received
	// refuse, when set, is the SMTP error every DATA gets.
	refuse *smtp.SMTPError
	auth   bool // require AUTH PLAIN user/secret
}

type session struct {
	s    *mailServer
	conn *smtp.Conn
	cur  received
}

func (se *session) AuthMechanisms() []string { return []string{sasl.Plain} }
func (se *session) Auth(string) (sasl.Server, error) {
	return sasl.NewPlainServer(func(_, user, pass string) error {
		if user != "user" || pass != "secret" {
			return smtp.ErrAuthFailed
		}
		se.cur.user = user
		return nil
	}), nil
}
func (se *session) Mail(from string, _ *smtp.MailOptions) error {
	if se.s.auth && se.cur.user == "" {
		return smtp.ErrAuthRequired
	}
	se.cur.from = from
	return nil
}
func (se *session) Rcpt(to string, _ *smtp.RcptOptions) error {
	se.cur.to = append(se.cur.to, to)
	return nil
}
func (se *session) Data(r io.Reader) error {
	b, err := io.ReadAll(r)
	if err != nil {
		return err
	}
	se.s.mu.Lock()
	defer se.s.mu.Unlock()
	if se.s.refuse != nil {
		return se.s.refuse
	}
	m, err := mail.ReadMessage(bytes.NewReader(b))
	if err != nil {
		return err
	}
	got := se.cur
	got.data = b
	got.subject, _ = new(mime.WordDecoder).DecodeHeader(m.Header.Get("Subject"))
	got.msgID = m.Header.Get("Message-ID")
	_, got.tls = se.conn.TLSConnectionState()
	se.s.msgs = append(se.s.msgs, got)
	return nil
}
func (se *session) Reset()        { se.cur = received{user: se.cur.user} }
func (se *session) Logout() error { return nil }

// startMail serves SMTP on addr ("127.0.0.1:0" for any port) until the test
// ends or stop is called.
func startMail(t *testing.T, addr string, cert *tls.Certificate, auth bool) *mailServer {
	t.Helper()
	s := &mailServer{done: make(chan struct{}), auth: auth}
	s.srv = smtp.NewServer(smtp.BackendFunc(func(c *smtp.Conn) (smtp.Session, error) {
		return &session{s: s, conn: c}, nil
	}))
	s.srv.Domain = "localhost"
	s.srv.AllowInsecureAuth = cert == nil
	if cert != nil {
		s.srv.TLSConfig = &tls.Config{Certificates: []tls.Certificate{*cert}}
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		t.Fatalf("listen for smtp on %s: %v", addr, err)
	}
	s.addr = ln.Addr().String()
	go func() { defer close(s.done); _ = s.srv.Serve(ln) }()
	t.Cleanup(s.stop)
	return s
}

func (s *mailServer) stop() {
	_ = s.srv.Close()
	<-s.done
}

func (s *mailServer) received() []received {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]received(nil), s.msgs...)
}

// freeAddr is a local address nothing listens on (yet).
func freeAddr(t *testing.T) string { return testkit.FreeAddr(t) }

type harness struct {
	t   *testing.T
	srv *embedded.Server
	js  jetstream.JetStream
	reg *prometheus.Registry
}

func newHarness(t *testing.T) *harness {
	s := streamtest.Run(t)
	_, js := streamtest.Connect(t, s)
	if err := stream.EnsureStreams(context.Background(), js, stream.DefaultLimits); err != nil {
		t.Fatal(err)
	}
	h := &harness{t: t, srv: s, js: js}
	h.define("dark-mode", "pm@shop.example", "data@shop.example")
	return h
}

// define stores an experiment's definition with these owners in
// verdict_config, as verdict apply does: the notifier emails only them.
func (h *harness) define(experiment string, owners ...string) {
	h.t.Helper()
	h.defineNotify(experiment, nil, owners...)
}

// defineNotify is define with the experiment's notify.
func (h *harness) defineNotify(experiment string, notify *config.Notify, owners ...string) {
	h.t.Helper()
	ctx := context.Background()
	kv, err := configstore.EnsureBucket(ctx, h.js, 0)
	if err != nil {
		h.t.Fatal(err)
	}
	defs, err := configstore.Load(ctx, kv)
	if err != nil {
		h.t.Fatal(err)
	}
	if len(defs.Metrics) == 0 {
		defs.Metrics = []config.Metric{{Key: "conversion", Kind: stats.Proportion, Event: "purchase", Direction: config.Increase}}
	}
	defs.Experiments = slices.DeleteFunc(defs.Experiments, func(e config.Experiment) bool { return e.Key == experiment })
	defs.Experiments = append(defs.Experiments, config.Experiment{
		Key: experiment, Owners: owners, Notify: notify, Variants: []config.Variant{{Key: "control", Weight: 0.5}, {Key: "b", Weight: 0.5}},
		Control: "control", Primary: []string{"conversion"}, MDE: 0.1, Alpha: 0.05, Power: 0.8, Sequential: true, Tuning: 5000,
		AttributionWindow: config.Duration(24 * time.Hour), Start: time.Date(2026, 11, 1, 0, 0, 0, 0, time.UTC),
	})
	if err := configstore.Apply(ctx, kv, defs); err != nil {
		h.t.Fatal(err)
	}
}

// start runs the notifier until the returned stop is called (or the test
// ends); stop is idempotent.
func (h *harness) start(cfg Config) (stop func()) {
	h.t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	h.reg = prometheus.NewRegistry()
	cfg.NATSURL = h.srv.URL()
	cfg.Registerer = h.reg
	if cfg.AckWait == 0 {
		cfg.AckWait = 3 * time.Second
	}
	if cfg.RetryMax == 0 {
		cfg.RetryMax = 300 * time.Millisecond
	}
	cfg.BaseURL = "http://127.0.0.1:8080"
	if cfg.AllowedHosts == nil {
		cfg.AllowedHosts = []string{"127.0.0.1"} // the receivers listen on loopback
	}
	if cfg.SMTP.From == "" {
		cfg.SMTP.From = "verdict <verdict@shop.example>"
	}
	errc := make(chan error, 1)
	go func() { errc <- Run(ctx, cfg) }()
	var once sync.Once
	stop = func() {
		once.Do(func() {
			cancel()
			if err := <-errc; err != nil {
				h.t.Errorf("Run: %v", err)
			}
		})
	}
	h.t.Cleanup(stop)
	return stop
}

func fixture(t *testing.T, name string) readout.Readout {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("..", "report", "testdata", "readouts", name+".json"))
	if err != nil {
		t.Fatal(err)
	}
	var r readout.Readout
	if err := json.Unmarshal(b, &r); err != nil {
		t.Fatal(err)
	}
	return r
}

// readouts of one experiment, by verdict.
func (h *harness) readout(verdict string, version int64) readout.Readout {
	name := map[string]string{
		"collecting": "collecting_checkout_day_two",
		"salvage":    "salvage_dark_mode_android",
		"pivot":      "pivot_image_carousel_guardrail",
		"persevere":  "persevere_checkout_redesign",
		"invalid":    "invalid_search_ranking_srm",
	}[verdict]
	r := fixture(h.t, name)
	r.Experiment, r.Name, r.Version = "dark-mode", "Dark mode", version
	r.Owners = []string{"pm@shop.example", "Data Team <data@shop.example>"}
	return r
}

// publish publishes r as the rules service does; msgID overrides the usual
// Nats-Msg-Id, to get a re-publish past the duplicate window.
func (h *harness) publish(r readout.Readout, msgID ...string) {
	h.t.Helper()
	b, err := json.Marshal(r)
	if err != nil {
		h.t.Fatal(err)
	}
	m := nats.NewMsg(stream.ReadoutsPrefix + r.Experiment)
	m.Data = b
	id := r.Experiment + "." + strconv.FormatInt(r.Version, 10)
	if len(msgID) > 0 {
		id = msgID[0]
	}
	m.Header.Set(nats.MsgIdHdr, id)
	h.take(r.Experiment, r.Version, b)
	if _, err := h.js.PublishMsg(context.Background(), m); err != nil {
		h.t.Fatal(err)
	}
}

// forge publishes r as anyone who may publish on verdict.readouts.* can:
// without the rules service having taken it.
func (h *harness) forge(r readout.Readout, msgID string) {
	h.t.Helper()
	b, err := json.Marshal(r)
	if err != nil {
		h.t.Fatal(err)
	}
	m := nats.NewMsg(stream.ReadoutsPrefix + r.Experiment)
	m.Data = b
	m.Header.Set(nats.MsgIdHdr, msgID)
	if _, err := h.js.PublishMsg(context.Background(), m); err != nil {
		h.t.Fatal(err)
	}
}

// take stores the readout in verdict_decisions as the rules service does
// before it publishes (the notifier acts only on readouts found there),
// unless a later version is stored already.
func (h *harness) take(experiment string, version int64, doc []byte) {
	h.t.Helper()
	ctx := context.Background()
	kv, err := h.js.CreateOrUpdateKeyValue(ctx, jetstream.KeyValueConfig{Bucket: stream.DecisionsBucket, History: 5})
	if err != nil {
		h.t.Fatal(err)
	}
	var st decisionState
	if e, err := kv.Get(ctx, experiment); err == nil {
		if err := json.Unmarshal(e.Value(), &st); err != nil {
			h.t.Fatal(err)
		}
	}
	if uint64(version) < st.Version {
		return
	}
	b, _ := json.Marshal(decisionState{Version: uint64(version), Readout: doc})
	if _, err := kv.Put(ctx, experiment, b); err != nil {
		h.t.Fatal(err)
	}
}

// waitHandled waits until the notifier has acknowledged everything.
func (h *harness) waitHandled() {
	h.t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for time.Now().Before(deadline) {
		// Every readout in the stream acknowledged: the ack floor has
		// reached the stream's last message (num_pending alone can lag a
		// publish that just returned).
		c, err := h.js.Consumer(context.Background(), stream.ReadoutsStream, ConsumerName)
		st, err2 := h.js.Stream(context.Background(), stream.ReadoutsStream)
		if err == nil && err2 == nil {
			info, err := c.Info(context.Background())
			sinfo, err2 := st.Info(context.Background())
			if err == nil && err2 == nil && info.NumPending == 0 && info.NumAckPending == 0 && info.AckFloor.Stream >= sinfo.State.LastSeq {
				return
			}
		}
		time.Sleep(50 * time.Millisecond)
	}
	h.t.Fatal("notifier did not handle every readout within 20s")
}

func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	testkit.WaitFor(t, 20*time.Second, 50*time.Millisecond, func() (bool, string) { return cond(), "waiting for " + what })
}

func subjects(rs []received) []string {
	var out []string
	for _, r := range rs {
		out = append(out, r.subject)
	}
	return out
}

func requireSubjects(t *testing.T, rs []received, want ...string) {
	t.Helper()
	got := subjects(rs)
	if len(got) != len(want) {
		t.Fatalf("%d emails, want %d:\n got %q\nwant %q", len(got), len(want), got, want)
	}
	for i := range want {
		if got[i] != want[i] {
			t.Errorf("email %d subject = %q, want %q", i, got[i], want[i])
		}
	}
}

const (
	salvageSubject = "[verdict] dark-mode: SALVAGE — keep it for platform = android"
	pivotSubject   = "[verdict] dark-mode: PIVOT — page_load_ms worse beyond its 5% margin"
	invalidSubject = "[verdict] dark-mode: INVALID — sample ratio mismatch (p < 0.001)"
)

// TestOneEmailPerChange: an email when the experiment first gets a label,
// when the label changes and when it becomes invalid; none for collecting,
// repeated labels, redeliveries or re-publishes, also across restarts.
func TestOneEmailPerChange(t *testing.T) {
	h := newHarness(t)
	ms := startMail(t, "127.0.0.1:0", nil, false)
	cfg := Config{SMTP: SMTPConfig{Addr: ms.addr}}
	stop := h.start(cfg)

	h.publish(h.readout("collecting", 1))
	h.publish(h.readout("salvage", 2))
	h.publish(h.readout("salvage", 3))
	h.publish(h.readout("collecting", 4)) // salvage → collecting → salvage: no new email
	h.publish(h.readout("salvage", 5))
	h.publish(h.readout("pivot", 6))
	h.publish(h.readout("pivot", 7))
	h.waitHandled()
	requireSubjects(t, ms.received(), salvageSubject, pivotSubject)
	if got := testutil.ToFloat64(counter(t, h.reg, "verdict_emails_sent_total")); got != 2 {
		t.Errorf("verdict_emails_sent_total = %v, want 2", got)
	}
	stop()

	// Restarted: a re-publish of an emailed version under another message id
	// (past the duplicate window), and an older version, send nothing.
	stop = h.start(cfg)
	h.publish(h.readout("pivot", 6), "dark-mode.6.again")
	h.publish(h.readout("salvage", 2), "dark-mode.2.again")
	h.publish(h.readout("invalid", 8))
	h.publish(h.readout("invalid", 9))
	h.publish(h.readout("salvage", 10)) // invalid → salvage: the owners were last told "invalid"
	h.waitHandled()
	stop()
	got := ms.received()
	requireSubjects(t, got, salvageSubject, pivotSubject, invalidSubject, salvageSubject)
	for _, m := range got {
		if len(m.to) != 2 || m.to[0] != "pm@shop.example" || m.to[1] != "data@shop.example" {
			t.Errorf("envelope recipients = %q, want the two owners", m.to)
		}
		if m.from != "verdict@shop.example" {
			t.Errorf("envelope sender = %q", m.from)
		}
	}
	if got[0].msgID != "<verdict.dark-mode.v2.e6d7d676@shop.example>" || got[3].msgID != "<verdict.dark-mode.v10.e6d7d676@shop.example>" {
		t.Errorf("Message-IDs = %q, %q", got[0].msgID, got[3].msgID)
	}
}

func counter(t *testing.T, reg *prometheus.Registry, name string) prometheus.Collector {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() == name && len(mf.GetMetric()) == 1 {
			return prometheus.NewCounterFunc(prometheus.CounterOpts{Name: name, Help: "copy"}, func() float64 {
				return mf.GetMetric()[0].GetCounter().GetValue()
			})
		}
	}
	t.Fatalf("metric %s not found", name)
	return nil
}

// TestSMTPDown: while nothing listens at VERDICT_SMTP_ADDR no email goes out
// and the readout stays unacked; the notifier is stopped and restarted
// meanwhile; once SMTP comes back exactly one email arrives.
func TestSMTPDown(t *testing.T) {
	h := newHarness(t)
	addr := freeAddr(t)
	cfg := Config{SMTP: SMTPConfig{Addr: addr}}
	stop := h.start(cfg)
	h.publish(h.readout("salvage", 1))
	waitFor(t, "failed attempts", func() bool {
		mfs, _ := h.reg.Gather()
		for _, mf := range mfs {
			if mf.GetName() == "verdict_emails_failed_total" {
				return mf.GetMetric()[0].GetCounter().GetValue() >= 3
			}
		}
		return false
	})
	c, err := h.js.Consumer(context.Background(), stream.ReadoutsStream, ConsumerName)
	if err != nil {
		t.Fatal(err)
	}
	info, err := c.Info(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if info.NumAckPending != 1 {
		t.Errorf("readout not pending while SMTP is down: %+v", info)
	}
	stop() // stopped mid-retry: the intent stays in KV, the message is nak'd

	stop = h.start(cfg)
	time.Sleep(500 * time.Millisecond)
	ms := startMail(t, addr, nil, false)
	h.waitHandled()
	time.Sleep(300 * time.Millisecond)
	stop()
	requireSubjects(t, ms.received(), salvageSubject)

	// And again after another restart: nothing more.
	stop = h.start(cfg)
	h.publish(h.readout("salvage", 2))
	h.waitHandled()
	stop()
	requireSubjects(t, ms.received(), salvageSubject)
}

// TestCrashAfterSend: the process died after the SMTP server took the email
// and before KV recorded it. The redelivery finds the intent and sends the
// same message again, with the same Message-ID — the documented choice — and
// then records it, so a third delivery sends nothing.
func TestCrashAfterSend(t *testing.T) {
	h := newHarness(t)
	ms := startMail(t, "127.0.0.1:0", nil, false)
	kv, err := h.js.CreateOrUpdateKeyValue(context.Background(), jetstream.KeyValueConfig{Bucket: Bucket, History: 5})
	if err != nil {
		t.Fatal(err)
	}
	intent := record{Experiment: "dark-mode", Pending: &event{Version: 1, Status: readout.Decided, Label: readout.Salvage,
		Kind: "first_label", MessageID: "<verdict.dark-mode.v1.e6d7d676@shop.example>"}}
	b, _ := json.Marshal(intent)
	if _, err := kv.Put(context.Background(), "dark-mode", b); err != nil {
		t.Fatal(err)
	}
	stop := h.start(Config{SMTP: SMTPConfig{Addr: ms.addr}})
	h.publish(h.readout("salvage", 1))
	h.waitHandled()
	h.publish(h.readout("salvage", 1), "dark-mode.1.again")
	h.waitHandled()
	stop()
	got := ms.received()
	requireSubjects(t, got, salvageSubject)
	if got[0].msgID != intent.Pending.MessageID {
		t.Errorf("Message-ID = %q, want the intent's %q", got[0].msgID, intent.Pending.MessageID)
	}
	e, err := kv.Get(context.Background(), "dark-mode")
	if err != nil {
		t.Fatal(err)
	}
	var rec record
	if err := json.Unmarshal(e.Value(), &rec); err != nil {
		t.Fatal(err)
	}
	if rec.Pending != nil || rec.Notified == nil || rec.Notified.Version != 1 || rec.Handled != 1 {
		t.Errorf("record after the resend = %+v", rec)
	}
}

// TestPermanentFailure: a 5xx is recorded, counted and not retried forever;
// the next change is emailed normally.
func TestPermanentFailure(t *testing.T) {
	h := newHarness(t)
	ms := startMail(t, "127.0.0.1:0", nil, false)
	ms.mu.Lock()
	ms.refuse = &smtp.SMTPError{Code: 554, EnhancedCode: smtp.EnhancedCode{5, 7, 1}, Message: "rejected by policy"}
	ms.mu.Unlock()
	stop := h.start(Config{SMTP: SMTPConfig{Addr: ms.addr}})
	h.publish(h.readout("salvage", 1))
	h.waitHandled()
	ms.mu.Lock()
	ms.refuse = nil
	ms.mu.Unlock()
	h.publish(h.readout("salvage", 2))
	h.publish(h.readout("pivot", 3))
	h.waitHandled()
	requireSubjects(t, ms.received(), pivotSubject)
	for name, want := range map[string]float64{"verdict_emails_failed_total": 1, "verdict_emails_abandoned_total": 1, "verdict_emails_sent_total": 1} {
		if got := testutil.ToFloat64(counter(t, h.reg, name)); got != want {
			t.Errorf("%s = %v, want %v", name, got, want)
		}
	}
	stop()
}

// TestStartTLSAuth: with a username the notifier upgrades with STARTTLS and
// authenticates; a mandatory policy refuses a server without STARTTLS.
func TestStartTLSAuth(t *testing.T) {
	cert, pool := selfSigned(t)
	ms := startMail(t, "127.0.0.1:0", &cert, true)
	h := newHarness(t)
	stop := h.start(Config{SMTP: SMTPConfig{Addr: ms.addr, Username: "user", Password: "secret", StartTLS: Mandatory, TLS: &tls.Config{RootCAs: pool}}})
	h.publish(h.readout("persevere", 1))
	h.waitHandled()
	stop()
	got := ms.received()
	if len(got) != 1 || !got[0].tls || got[0].user != "user" {
		t.Fatalf("received %+v, want one email over TLS from user", got)
	}
}

func TestMandatoryTLSWithoutTLS(t *testing.T) {
	ms := startMail(t, "127.0.0.1:0", nil, false)
	s := &smtpSender{cfg: SMTPConfig{Addr: ms.addr, StartTLS: Mandatory, Timeout: 5 * time.Second, HelloName: "localhost"}, log: discard()}
	err := s.Send(context.Background(), Email{From: "a@b.example", To: []string{"c@d.example"}, Data: []byte("Subject: x\r\n\r\nx\r\n")})
	if err == nil || errors.Is(err, ErrPermanent) {
		t.Fatalf("Send without STARTTLS under a mandatory policy = %v, want a transient error", err)
	}
	if len(ms.received()) != 0 {
		t.Error("sent in the clear")
	}
}

// TestOutbox: without SMTP, each email is a .eml file named by its
// Message-ID, once per event.
func TestOutbox(t *testing.T) {
	h := newHarness(t)
	dir := t.TempDir()
	stop := h.start(Config{OutboxDir: dir})
	h.publish(h.readout("salvage", 1))
	h.publish(h.readout("salvage", 2))
	h.publish(h.readout("invalid", 3))
	h.waitHandled()
	stop()
	files, _ := filepath.Glob(filepath.Join(dir, "*.eml"))
	if len(files) != 2 {
		t.Fatalf("outbox has %d files, want 2: %v", len(files), files)
	}
	b, err := os.ReadFile(filepath.Join(dir, "verdict.dark-mode.v1.e6d7d676_shop.example.eml"))
	if err != nil {
		t.Fatal(err)
	}
	m, err := mail.ReadMessage(bytes.NewReader(b))
	if err != nil {
		t.Fatal(err)
	}
	if s, _ := new(mime.WordDecoder).DecodeHeader(m.Header.Get("Subject")); s != salvageSubject {
		t.Errorf("subject = %q", s)
	}
}

func TestConfigValidate(t *testing.T) {
	c := Config{SMTP: SMTPConfig{Addr: "nohostport", From: "not an address", StartTLS: "sometimes", Password: "x"}, BaseURL: "ftp://x"}
	c.setDefaults()
	err := c.validate()
	for _, want := range []string{"VERDICT_SMTP_ADDR", "VERDICT_SMTP_FROM", "VERDICT_SMTP_STARTTLS", "VERDICT_SMTP_PASSWORD", "VERDICT_BASE_URL"} {
		if err == nil || !bytes.Contains([]byte(err.Error()), []byte(want)) {
			t.Errorf("validate() = %v, want it to name %s", err, want)
		}
	}
	var buf bytes.Buffer
	slogText(&buf).Info("cfg", "smtp", SMTPConfig{Addr: "x:25", Username: "u", Password: "hunter2"})
	if bytes.Contains(buf.Bytes(), []byte("hunter2")) {
		t.Errorf("password logged: %s", buf.String())
	}
}

func TestKVKey(t *testing.T) {
	for in, want := range map[string]string{"dark-mode": "dark-mode", "a.b": "a.b", "a.": "hex.612e", "a..b": "hex.612e2e62", "hex.x": "hex.6865782e78"} {
		if got := kvKey(in); got != want {
			t.Errorf("kvKey(%q) = %q, want %q", in, got, want)
		}
	}
}

func selfSigned(t *testing.T) (tls.Certificate, *x509.CertPool) {
	c := tlstest.New(t)
	return c.TLS, c.Pool
}

// TestRecipientsFromDefinitions: a forged readout naming outside addresses
// (anyone who can publish on verdict.readouts.* could send one) emails
// nobody but the stored definition's owners, and a readout of an
// experiment without a stored definition emails nobody at all.
func TestRecipientsFromDefinitions(t *testing.T) {
	h := newHarness(t)
	ms := startMail(t, "127.0.0.1:0", nil, false)
	stop := h.start(Config{SMTP: SMTPConfig{Addr: ms.addr}})
	forged := h.readout("persevere", 1)
	forged.Owners = []string{"victim@outside.example"}
	h.publish(forged)
	stranger := h.readout("pivot", 1)
	stranger.Experiment, stranger.Owners = "not-defined", []string{"victim@outside.example"}
	h.publish(stranger)
	h.waitHandled()
	stop()
	got := ms.received()
	if len(got) != 1 || !slices.Equal(got[0].to, []string{"pm@shop.example", "data@shop.example"}) {
		t.Fatalf("received %+v; want one email, to the stored owners only", got)
	}
	if v := testutil.ToFloat64(counter(t, h.reg, "verdict_emails_abandoned_total")); v != 1 {
		t.Errorf("verdict_emails_abandoned_total = %v, want 1 (the undefined experiment)", v)
	}
}

// TestAllowedDomains: owners outside VERDICT_SMTP_ALLOWED_DOMAINS are left
// out and counted.
func TestAllowedDomains(t *testing.T) {
	h := newHarness(t)
	h.define("mixed", "pm@shop.example", "someone@elsewhere.example")
	ms := startMail(t, "127.0.0.1:0", nil, false)
	stop := h.start(Config{SMTP: SMTPConfig{Addr: ms.addr}, AllowedDomains: []string{"Shop.Example"}})
	r := h.readout("persevere", 1)
	r.Experiment = "mixed"
	h.publish(r)
	h.waitHandled()
	stop()
	if got := ms.received(); len(got) != 1 || !slices.Equal(got[0].to, []string{"pm@shop.example"}) {
		t.Fatalf("received %+v; want one email to pm@shop.example only", got)
	}
	if v := testutil.ToFloat64(counter(t, h.reg, "verdict_emails_refused_recipients_total")); v != 1 {
		t.Errorf("verdict_emails_refused_recipients_total = %v, want 1", v)
	}
}

// TestAllowedDomainsDefault: over SMTP without VERDICT_SMTP_ALLOWED_DOMAINS
// only the sender's domain is mailed: a definition naming
// victim@attacker-owned.example mails nobody there. "*" allows any.
func TestAllowedDomainsDefault(t *testing.T) {
	for _, tc := range []struct {
		allowed []string
		want    []string
	}{
		{nil, []string{"pm@shop.example"}},
		{[]string{"*"}, []string{"pm@shop.example", "victim@attacker-owned.example"}},
	} {
		h := newHarness(t)
		h.define("mixed", "pm@shop.example", "victim@attacker-owned.example")
		ms := startMail(t, "127.0.0.1:0", nil, false)
		stop := h.start(Config{SMTP: SMTPConfig{Addr: ms.addr, From: "verdict <verdict@shop.example>"}, AllowedDomains: tc.allowed})
		r := h.readout("persevere", 1)
		r.Experiment = "mixed"
		h.publish(r)
		h.waitHandled()
		stop()
		if got := ms.received(); len(got) != 1 || !slices.Equal(got[0].to, tc.want) {
			t.Errorf("allowed %q: received %+v; want one email to %v", tc.allowed, got, tc.want)
		}
	}
}

// TestGiveUp: an email that keeps failing transiently is given up after
// GiveUpAfter and recorded, and the next readout's email goes out.
func TestGiveUp(t *testing.T) {
	h := newHarness(t)
	h.define("other", "pm@shop.example")
	ms := startMail(t, "127.0.0.1:0", nil, false)
	ms.mu.Lock()
	ms.refuse = &smtp.SMTPError{Code: 451, EnhancedCode: smtp.EnhancedCode{4, 3, 0}, Message: "try again later"}
	ms.mu.Unlock()
	stop := h.start(Config{SMTP: SMTPConfig{Addr: ms.addr}, GiveUpAfter: time.Second})
	h.publish(h.readout("salvage", 1))
	h.waitHandled()
	ms.mu.Lock()
	ms.refuse = nil
	ms.mu.Unlock()
	r := h.readout("pivot", 1)
	r.Experiment = "other"
	h.publish(r)
	h.waitHandled()
	stop()
	requireSubjects(t, ms.received(), "[verdict] other: PIVOT — page_load_ms worse beyond its 5% margin")
	if v := testutil.ToFloat64(counter(t, h.reg, "verdict_emails_abandoned_total")); v != 1 {
		t.Errorf("verdict_emails_abandoned_total = %v, want 1", v)
	}
}

func TestPasswordNeedsTLS(t *testing.T) {
	cfg := Config{SMTP: SMTPConfig{Addr: "smtp.example:587", Username: "u", Password: "p", StartTLS: NoTLS}, OutboxDir: t.TempDir()}
	cfg.setDefaults()
	if err := cfg.validate(); err == nil || !strings.Contains(err.Error(), "in the clear") {
		t.Errorf("validate with a password and no TLS = %v, want a refusal", err)
	}
	cfg = Config{SMTP: SMTPConfig{Addr: "smtp.example:587", Username: "u", Password: "p"}}
	cfg.setDefaults()
	if cfg.SMTP.StartTLS != Mandatory {
		t.Errorf("STARTTLS with a password = %s, want mandatory", cfg.SMTP.StartTLS)
	}
}
