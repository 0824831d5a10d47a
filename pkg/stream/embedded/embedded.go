// Package embedded runs nats-server with JetStream inside the process:
// what `verdict up` starts when no NATS answers, and what tests run. It is
// the only package that links nats-server, so that the services that
// connect to a NATS of their own do not.
package embedded

import (
	"fmt"
	"log/slog"
	"net"
	"net/url"
	"path/filepath"
	"strconv"
	"time"

	"github.com/nats-io/nats-server/v2/server"
)

// Config says where an embedded nats-server listens and stores.
type Config struct {
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

// Run starts an embedded nats-server with JetStream and waits until it
// accepts connections.
func Run(cfg Config) (*Server, error) {
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

// hostPort is the host and port of a nats:// URL to listen on.
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
