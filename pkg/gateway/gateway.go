// Package gateway takes product analytics over HTTP: Segment's HTTP
// Tracking API (POST /v1/batch, /v1/track, /v1/page, /v1/screen,
// /v1/identify, /v1/group, /v1/alias), which Segment's, RudderStack's and
// compatible libraries speak, and verdict's own NDJSON events (POST
// /v1/events). Tracks become verdict events on VERDICT_EVENTS (see Map);
// the other calls are accepted and counted. A request is answered 200 only
// once JetStream has acknowledged every message of it, so a client that
// retries on anything else loses nothing, and the messageId (Nats-Msg-Id)
// makes its retries harmless.
package gateway

import (
	"bytes"
	"compress/gzip"
	"context"
	"crypto/subtle"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promauto"
	"golang.org/x/time/rate"

	"github.com/verdictlabs/verdict/pkg/event"
	"github.com/verdictlabs/verdict/pkg/stream"
	"github.com/verdictlabs/verdict/pkg/web"
)

// Segment's limits.
const (
	MaxMessage = 32 << 10  // bytes in one message
	MaxBatch   = 500 << 10 // bytes in one request
)

// Options configure a Gateway.
type Options struct {
	// WriteKeys are the accepted write keys (VERDICT_WRITE_KEYS). With
	// none, requests are served only when Loopback is true.
	WriteKeys []string
	// Loopback: the HTTP server listens on a loopback address only.
	Loopback bool
	// Unit chooses the unit id (VERDICT_GATEWAY_UNIT); default UnitUser.
	Unit Unit
	// Rate is the messages per second one write key may send, with bursts
	// of twice that; default 20000.
	Rate float64
	// AckTimeout bounds the wait for JetStream's acknowledgements; default 10s.
	AckTimeout time.Duration

	Logger     *slog.Logger
	Registerer prometheus.Registerer
	Checks     *web.Checks
	Now        func() time.Time
}

// Gateway serves the endpoints.
type Gateway struct {
	js      jetstream.JetStream
	opt     Options
	keys    [][]byte
	metrics *metrics

	mu       sync.Mutex
	limiters map[string]*rate.Limiter
}

// New returns a gateway publishing with js. It refuses to serve without
// write keys unless HTTP listens on loopback only: it logs why, and
// /readyz (when Checks is set) fails with the reason.
func New(js jetstream.JetStream, opt Options) *Gateway {
	if opt.Unit == "" {
		opt.Unit = UnitUser
	}
	if opt.Rate <= 0 {
		opt.Rate = 20000
	}
	if opt.AckTimeout <= 0 {
		opt.AckTimeout = 10 * time.Second
	}
	if opt.Logger == nil {
		opt.Logger = slog.New(slog.DiscardHandler)
	}
	if opt.Registerer == nil {
		opt.Registerer = prometheus.NewRegistry()
	}
	if opt.Now == nil {
		opt.Now = time.Now
	}
	g := &Gateway{js: js, opt: opt, metrics: newMetrics(opt.Registerer), limiters: map[string]*rate.Limiter{}}
	for _, k := range opt.WriteKeys {
		g.keys = append(g.keys, []byte(k))
	}
	if g.refused() {
		opt.Logger.Error("http ingest refused: VERDICT_WRITE_KEYS is empty and VERDICT_HTTP_ADDR is not a loopback address; set write keys to accept events over HTTP")
		if opt.Checks != nil {
			opt.Checks.Add("gateway", func(context.Context) error {
				return errors.New("no VERDICT_WRITE_KEYS while VERDICT_HTTP_ADDR is not loopback: http ingest refuses every request")
			})
		}
	}
	return g
}

func (g *Gateway) refused() bool { return len(g.keys) == 0 && !g.opt.Loopback }

// Register adds the endpoints to mux.
func (g *Gateway) Register(mux *http.ServeMux) {
	for _, name := range []string{"batch", "track", "page", "screen", "identify", "group", "alias", "events"} {
		mux.Handle("POST /v1/"+name, g.handler(name))
	}
}

// ParseWriteKeys reads VERDICT_WRITE_KEYS: keys separated by commas, or
// @FILE for a file of keys, one a line or separated by commas.
func ParseWriteKeys(s string) ([]string, error) { return web.ParseTokens("VERDICT_WRITE_KEYS", s) }

// reply is Segment's response body.
type reply struct {
	Success bool   `json:"success"`
	Message string `json:"message,omitempty"`
}

func (g *Gateway) handler(name string) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := g.opt.Now()
		code, msg := g.serve(w, r, name)
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(code)
		_ = json.NewEncoder(w).Encode(reply{Success: code == http.StatusOK, Message: msg})
		g.metrics.requests.WithLabelValues(name, fmt.Sprint(code)).Inc()
		g.metrics.seconds.Observe(g.opt.Now().Sub(start).Seconds())
	})
}

// serve handles one request and returns the status and, for errors, why.
func (g *Gateway) serve(w http.ResponseWriter, r *http.Request, name string) (int, string) {
	key, ok := g.authorize(r)
	if !ok {
		w.Header().Set("WWW-Authenticate", `Basic realm="verdict"`)
		if g.refused() {
			return http.StatusUnauthorized, "http ingest is off: the server has no write keys configured"
		}
		return http.StatusUnauthorized, "a valid write key is required (HTTP Basic auth, the write key as user name)"
	}
	var in io.Reader = r.Body
	if strings.EqualFold(r.Header.Get("Content-Encoding"), "gzip") { // RudderStack's default, Segment's option
		zr, err := gzip.NewReader(r.Body)
		if err != nil {
			return http.StatusBadRequest, "the body is not gzip: " + err.Error()
		}
		defer zr.Close()
		in = zr
	}
	// The limits hold for the uncompressed body.
	body, err := io.ReadAll(io.LimitReader(in, MaxBatch+1))
	if err != nil {
		return http.StatusBadRequest, "could not read the body"
	}
	if len(body) > MaxBatch {
		return http.StatusBadRequest, fmt.Sprintf("the request is over %d KB", MaxBatch>>10)
	}
	received := g.opt.Now().UTC()
	var msgs []*nats.Msg
	var dead []deadLetter
	ignored := 0
	switch name {
	case "events":
		msgs, dead = eventsNDJSON(body)
	case "batch":
		var b struct {
			Batch  []json.RawMessage `json:"batch"`
			SentAt string            `json:"sentAt"`
		}
		if err := json.Unmarshal(body, &b); err != nil {
			return http.StatusBadRequest, "the body is not a JSON batch: " + err.Error()
		}
		for _, raw := range b.Batch {
			m, d, ign := g.message(raw, "", received, b.SentAt)
			msgs, dead, ignored = appendIf(msgs, m), appendDead(dead, d), ignored+ign
		}
	default:
		if len(body) > MaxMessage {
			return http.StatusBadRequest, fmt.Sprintf("the message is over %d KB", MaxMessage>>10)
		}
		if !json.Valid(body) {
			return http.StatusBadRequest, "the body is not JSON"
		}
		m, d, ign := g.message(body, name, received, "")
		msgs, dead, ignored = appendIf(msgs, m), appendDead(dead, d), ignored+ign
	}
	if n := len(msgs) + len(dead); n > 0 && !g.limiter(key).AllowN(time.Now(), n) {
		w.Header().Set("Retry-After", "1")
		return http.StatusTooManyRequests, "this write key is over its rate; retry later"
	}
	for _, d := range dead {
		msgs = append(msgs, d.msg("POST /v1/"+name))
	}
	if err := g.publish(r.Context(), msgs); err != nil {
		g.opt.Logger.Warn("http ingest: publish", "err", err, "messages", len(msgs))
		w.Header().Set("Retry-After", "5")
		return http.StatusServiceUnavailable, "the event stream cannot take the events now; retry later"
	}
	g.metrics.messages.WithLabelValues("accepted").Add(float64(len(msgs) - len(dead)))
	g.metrics.messages.WithLabelValues("dead_lettered").Add(float64(len(dead)))
	g.metrics.messages.WithLabelValues("ignored").Add(float64(ignored))
	return http.StatusOK, ""
}

func appendIf(msgs []*nats.Msg, m *nats.Msg) []*nats.Msg {
	if m != nil {
		return append(msgs, m)
	}
	return msgs
}

func appendDead(dead []deadLetter, d *deadLetter) []deadLetter {
	if d != nil {
		return append(dead, *d)
	}
	return dead
}

// message maps one Segment message: a message to publish, a dead letter,
// or nothing to store (ignored 1). typ is the endpoint's type for the
// single-message endpoints, "" in a batch.
func (g *Gateway) message(raw []byte, typ string, received time.Time, sentAt string) (*nats.Msg, *deadLetter, int) {
	if len(raw) > MaxMessage {
		return nil, &deadLetter{payload: raw, err: invalid(event.ReasonTooLarge, "the message is %d bytes; Segment's limit is %d", len(raw), MaxMessage)}, 0
	}
	m, err := decodeMessage(raw)
	if err != nil {
		return nil, &deadLetter{payload: raw, err: err}, 0
	}
	if typ != "" {
		m.Type = typ
	}
	e, ok, err := Map(m, received, sentAt, g.opt.Unit)
	if err != nil {
		return nil, &deadLetter{payload: raw, err: err}, 0
	}
	if !ok {
		return nil, nil, 1
	}
	msg := nats.NewMsg(e.Type.Subject())
	msg.Data = e.AppendJSON(nil)
	msg.Header.Set(nats.MsgIdHdr, e.ID)
	return msg, nil, 0
}

// eventsNDJSON makes a message of every line of verdict's own events, as
// `verdict publish` does: a line whose type cannot be read goes to
// verdict.events.unknown, where ingest dead-letters it; a line over
// event.MaxSize is a dead letter here.
func eventsNDJSON(body []byte) (msgs []*nats.Msg, dead []deadLetter) {
	for _, line := range bytes.Split(body, []byte("\n")) {
		line = bytes.TrimSpace(line)
		if len(line) == 0 {
			continue
		}
		if len(line) > event.MaxSize {
			dead = append(dead, deadLetter{payload: line, err: invalid(event.ReasonTooLarge, "the event is %d bytes; the limit is %d", len(line), event.MaxSize)})
			continue
		}
		msg, _ := stream.EventMsg(line)
		msgs = append(msgs, msg)
	}
	return msgs, dead
}

// deadLetter is a message the gateway could not map.
type deadLetter struct {
	payload []byte
	err     error
}

// msg is the dead letter, with where it came from in Verdict-Subject.
func (d deadLetter) msg(from string) *nats.Msg {
	reason := event.ReasonMalformedJSON
	var e *event.Error
	if errors.As(d.err, &e) {
		reason = e.Reason
	}
	return stream.DeadLetter(reason, d.err.Error(), from, d.payload)
}

// publish sends every message and waits for every acknowledgement.
func (g *Gateway) publish(ctx context.Context, msgs []*nats.Msg) error {
	if len(msgs) == 0 {
		return nil
	}
	ctx, cancel := context.WithTimeout(ctx, g.opt.AckTimeout)
	defer cancel()
	if err := stream.PublishAll(ctx, g.js, msgs); err != nil {
		if ctx.Err() != nil {
			return fmt.Errorf("wait for acknowledgements: %w", err)
		}
		return err
	}
	return nil
}

// authorize checks the write key (HTTP Basic, the key as user name; a
// Bearer token or a bare key in the user name are accepted too) and
// returns the key to rate-limit by.
func (g *Gateway) authorize(r *http.Request) (string, bool) {
	if len(g.keys) == 0 {
		return "", !g.refused()
	}
	user, _, ok := r.BasicAuth()
	if !ok {
		if t, found := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer "); found {
			user, ok = t, true
		}
	}
	if !ok {
		return "", false
	}
	for _, k := range g.keys {
		if subtle.ConstantTimeCompare([]byte(user), k) == 1 {
			return user, true
		}
	}
	return "", false
}

func (g *Gateway) limiter(key string) *rate.Limiter {
	g.mu.Lock()
	defer g.mu.Unlock()
	l, ok := g.limiters[key]
	if !ok {
		l = rate.NewLimiter(rate.Limit(g.opt.Rate), int(2*g.opt.Rate))
		g.limiters[key] = l
	}
	return l
}

type metrics struct {
	requests *prometheus.CounterVec
	messages *prometheus.CounterVec
	seconds  prometheus.Histogram
}

func newMetrics(reg prometheus.Registerer) *metrics {
	f := promauto.With(reg)
	m := &metrics{
		requests: f.NewCounterVec(prometheus.CounterOpts{
			Name: "verdict_gateway_requests_total",
			Help: "HTTP ingest requests, by endpoint and status code.",
		}, []string{"endpoint", "code"}),
		messages: f.NewCounterVec(prometheus.CounterOpts{
			Name: "verdict_gateway_messages_total",
			Help: "HTTP ingest messages: accepted (published), dead_lettered, ignored (page, screen, identify, group, alias).",
		}, []string{"outcome"}),
		seconds: f.NewHistogram(prometheus.HistogramOpts{
			Name:    "verdict_gateway_request_seconds",
			Help:    "Time to answer an HTTP ingest request, JetStream acknowledgements included.",
			Buckets: prometheus.ExponentialBuckets(0.0005, 2, 16),
		}),
	}
	for _, o := range []string{"accepted", "dead_lettered", "ignored"} {
		m.messages.WithLabelValues(o)
	}
	return m
}

// Config is the configuration of a gateway with its own NATS connection.
type Config struct {
	NATSURL  string      // VERDICT_NATS_URL
	NATSAuth stream.Auth // VERDICT_NATS_CREDS, _NKEY, _USER, _PASSWORD, _TOKEN, _TLS_*
	// NATSReplicas are the replicas of the streams (VERDICT_NATS_REPLICAS;
	// 0 keeps what they have).
	NATSReplicas int
	HTTPAddr     string   // VERDICT_HTTP_ADDR: without write keys, served only on loopback
	WriteKeys    []string // VERDICT_WRITE_KEYS
	Unit         Unit     // VERDICT_GATEWAY_UNIT

	Logger     *slog.Logger
	Registerer prometheus.Registerer
	Checks     *web.Checks
}

// Open connects to NATS (declaring the streams) and returns a gateway,
// and the function that closes its connection.
func Open(ctx context.Context, cfg Config) (*Gateway, func(), error) {
	log := cfg.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	log = log.With("service", "gateway")
	nc, js, err := stream.Open(ctx, cfg.NATSURL, cfg.NATSAuth, "verdict-gateway", stream.DefaultLimits.WithReplicas(cfg.NATSReplicas), log)
	if err != nil {
		return nil, nil, err
	}
	if cfg.Checks != nil {
		cfg.Checks.Add("gateway_nats", func(context.Context) error {
			if !nc.IsConnected() {
				return errors.New("not connected to " + stream.Redact(cfg.NATSURL))
			}
			return nil
		})
	}
	g := New(js, Options{
		WriteKeys: cfg.WriteKeys, Loopback: web.IsLoopback(cfg.HTTPAddr), Unit: cfg.Unit,
		Logger: log, Registerer: cfg.Registerer, Checks: cfg.Checks,
	})
	log.Info("http ingest", "endpoints", "/v1/batch /v1/track /v1/page /v1/screen /v1/identify /v1/group /v1/alias /v1/events", "write_keys", len(cfg.WriteKeys), "unit", g.opt.Unit)
	return g, nc.Close, nil
}

// ParseUnit reads VERDICT_GATEWAY_UNIT.
func ParseUnit(s string) (Unit, error) {
	switch u := Unit(s); u {
	case "", UnitUser:
		return UnitUser, nil
	case UnitAnonymous:
		return u, nil
	}
	return "", fmt.Errorf("VERDICT_GATEWAY_UNIT %q: want user (userId, else anonymousId) or anonymous (anonymousId, else userId)", s)
}
