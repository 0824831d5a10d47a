package stream

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/url"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// ServerConfig says where an embedded nats-server listens and stores.
type ServerConfig struct {
	URL      string // nats://host:port to listen on; port 0 picks a free one
	StoreDir string // JetStream file store
	// ConfigFile, when set, is a nats-server configuration file
	// (VERDICT_NATS_SERVER_CONFIG): accounts, users and their permissions,
	// TLS, limits, in nats-server's own format, $VARIABLES read from the
	// environment. URL and StoreDir still say where the server listens and
	// stores; JetStream is always on.
	ConfigFile string
	Logger     *slog.Logger
}

// Server is an embedded nats-server with JetStream.
type Server struct {
	ns  *server.Server
	url string
}

// RunServer starts an embedded nats-server with JetStream and waits until it
// accepts connections.
func RunServer(cfg ServerConfig) (*Server, error) {
	host, port, err := hostPort(cfg.URL)
	if err != nil {
		return nil, err
	}
	opts := &server.Options{}
	if cfg.ConfigFile != "" {
		if opts, err = server.ProcessConfigFile(cfg.ConfigFile); err != nil {
			return nil, fmt.Errorf("VERDICT_NATS_SERVER_CONFIG %s: %w", cfg.ConfigFile, err)
		}
	}
	if opts.ServerName == "" {
		opts.ServerName = "verdict"
	}
	opts.Host, opts.Port = host, port
	opts.JetStream = true
	opts.StoreDir = filepath.Clean(cfg.StoreDir)
	opts.NoSigs = true
	opts.NoLog = true
	if opts.MaxPayload == 0 {
		// Batches of 10k events and their acks: keep payload and pending
		// limits well above one batch.
		opts.MaxPayload = 1 << 20
	}
	ns, err := server.NewServer(opts)
	if err != nil {
		return nil, fmt.Errorf("configure embedded nats-server: %w", err)
	}
	go ns.Start()
	if !ns.ReadyForConnections(30 * time.Second) {
		ns.Shutdown()
		return nil, fmt.Errorf("embedded nats-server on %s:%d not ready after 30s", host, port)
	}
	if cfg.Logger != nil {
		cfg.Logger.Info("embedded nats-server started", "url", ns.ClientURL(), "store", opts.StoreDir,
			"config", cfg.ConfigFile, "tls", opts.TLSConfig != nil)
	}
	return &Server{ns: ns, url: ns.ClientURL()}, nil
}

// URL is the client URL of the running server.
func (s *Server) URL() string { return s.url }

// Shutdown stops the server and waits until it has stopped.
func (s *Server) Shutdown() {
	s.ns.Shutdown()
	s.ns.WaitForShutdown()
}

// Reachable reports whether a NATS server answers at url within timeout.
// A server that refuses the credentials still answers.
func Reachable(url string, auth Auth, timeout time.Duration) bool {
	opts, err := auth.Options()
	if err != nil {
		return false
	}
	nc, err := nats.Connect(url, append(opts, nats.Timeout(timeout), nats.NoReconnect())...)
	if err != nil {
		return errors.Is(err, nats.ErrAuthorization) || strings.Contains(strings.ToLower(err.Error()), "authorization")
	}
	nc.Close()
	return true
}

// Listening reports whether anything accepts a TCP connection at the host
// and port of url, without saying anything to it.
func Listening(rawURL string, timeout time.Duration) bool {
	u, err := url.Parse(rawURL)
	if err != nil || u.Host == "" {
		return false
	}
	host := u.Host
	if u.Port() == "" {
		host = net.JoinHostPort(u.Hostname(), "4222")
	}
	c, err := net.DialTimeout("tcp", host, timeout)
	if err != nil {
		return false
	}
	c.Close()
	return true
}

// Connect connects to NATS and keeps reconnecting for as long as the
// connection is wanted: a service outlives a restart of nats-server.
func Connect(ctx context.Context, url string, auth Auth, name string, logger *slog.Logger) (*nats.Conn, error) {
	opts, err := auth.Options()
	if err != nil {
		return nil, err
	}
	opts = append(opts,
		nats.Name(name),
		nats.MaxReconnects(-1),
		nats.ReconnectWait(250*time.Millisecond),
		nats.DisconnectErrHandler(func(_ *nats.Conn, err error) {
			if err != nil {
				logger.Warn("nats disconnected", "err", err)
			}
		}),
		nats.ReconnectHandler(func(nc *nats.Conn) { logger.Info("nats reconnected", "url", Redact(nc.ConnectedUrl())) }),
	)
	var nc *nats.Conn
	for attempt := 0; ; attempt++ {
		nc, err = nats.Connect(url, opts...)
		if err == nil {
			return nc, nil
		}
		// Waiting does not mend a refused credential.
		if errors.Is(err, nats.ErrAuthorization) || errors.Is(err, nats.ErrAuthExpired) {
			return nil, fmt.Errorf("connect to nats at %s: %w; check VERDICT_NATS_USER, VERDICT_NATS_PASSWORD, VERDICT_NATS_TOKEN, VERDICT_NATS_CREDS or VERDICT_NATS_NKEY", Redact(url), err)
		}
		if attempt == 20 {
			return nil, fmt.Errorf("connect to nats at %s: %w", Redact(url), err)
		}
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-time.After(250 * time.Millisecond):
		}
	}
}

// Open connects a service to NATS (as Connect does), opens JetStream and
// declares the streams with the given limits: what every service does first.
// The caller closes the connection.
func Open(ctx context.Context, url string, auth Auth, name string, limits Limits, logger *slog.Logger) (*nats.Conn, jetstream.JetStream, error) {
	nc, err := Connect(ctx, url, auth, name, logger)
	if err != nil {
		return nil, nil, err
	}
	js, err := jetstream.New(nc)
	if err != nil {
		nc.Close()
		return nil, nil, fmt.Errorf("open jetstream: %w", err)
	}
	if err := EnsureStreams(ctx, js, limits); err != nil {
		nc.Close()
		return nil, nil, err
	}
	return nc, js, nil
}

func hostPort(rawURL string) (string, int, error) {
	u, err := url.Parse(rawURL)
	if err != nil || u.Host == "" {
		return "", 0, fmt.Errorf("VERDICT_NATS_URL %q: want nats://host:port", rawURL)
	}
	host, portStr, err := net.SplitHostPort(u.Host)
	if err != nil {
		return u.Hostname(), 4222, nil
	}
	port, err := strconv.Atoi(portStr)
	if err != nil {
		return "", 0, fmt.Errorf("VERDICT_NATS_URL %q: port %q is not a number", rawURL, portStr)
	}
	if port == 0 {
		// As with net.Listen, port 0 means any free port; nats-server
		// spells that -1 (0 would be its default, 4222).
		port = server.RANDOM_PORT
	}
	return host, port, nil
}

// Redact returns a VERDICT_NATS_URL (one URL or a comma-separated list)
// fit for logs, errors and /readyz: a password, or a token given as the
// user name, becomes "xxxxx".
func Redact(urls string) string {
	parts := strings.Split(urls, ",")
	for i, p := range parts {
		u, err := url.Parse(strings.TrimSpace(p))
		if err != nil || u.User == nil {
			if err != nil && strings.Contains(p, "@") {
				parts[i] = "xxxxx@" + p[strings.LastIndex(p, "@")+1:]
			}
			continue
		}
		if _, has := u.User.Password(); has {
			parts[i] = u.Redacted()
		} else {
			u.User = url.User("xxxxx")
			parts[i] = u.String()
		}
	}
	return strings.Join(parts, ",")
}
