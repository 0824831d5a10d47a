package stream

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/url"
	"strings"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

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
