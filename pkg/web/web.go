// Package web serves verdict's HTTP endpoints: /metrics for Prometheus,
// /healthz (the process is alive) and /readyz (every registered dependency
// answers). Services add their own routes to the same mux.
package web

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// Checks is the set of readiness checks behind /readyz. It is safe for
// concurrent use: services add their checks as they start.
type Checks struct {
	mu     sync.Mutex
	checks map[string]func(context.Context) error
}

// Add registers a named readiness check; /readyz fails while any fails.
func (c *Checks) Add(name string, check func(context.Context) error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.checks == nil {
		c.checks = map[string]func(context.Context) error{}
	}
	c.checks[name] = check
}

// Len is the number of registered checks.
func (c *Checks) Len() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.checks)
}

// Run runs every check and returns the failures by name.
func (c *Checks) Run(ctx context.Context) map[string]error {
	c.mu.Lock()
	checks := make(map[string]func(context.Context) error, len(c.checks))
	for k, v := range c.checks {
		checks[k] = v
	}
	c.mu.Unlock()
	failed := map[string]error{}
	for name, check := range checks {
		if err := check(ctx); err != nil {
			failed[name] = err
		}
	}
	return failed
}

// NewMux returns a mux with /metrics, /healthz and /readyz.
func NewMux(gatherer prometheus.Gatherer, checks *Checks) *http.ServeMux {
	mux := http.NewServeMux()
	mux.Handle("GET /metrics", promhttp.HandlerFor(gatherer, promhttp.HandlerOpts{}))
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) {
		fmt.Fprintln(w, "ok")
	})
	mux.HandleFunc("GET /readyz", func(w http.ResponseWriter, r *http.Request) {
		ctx, cancel := context.WithTimeout(r.Context(), 2*time.Second)
		defer cancel()
		failed := checks.Run(ctx)
		if len(failed) == 0 {
			fmt.Fprintln(w, "ready")
			return
		}
		names := make([]string, 0, len(failed))
		for name := range failed {
			names = append(names, name)
		}
		sort.Strings(names)
		// The errors name servers, addresses and users: shown to a client
		// on this machine, while a remote probe learns which check fails.
		detail := fromLoopback(r)
		var b strings.Builder
		for _, name := range names {
			if detail {
				fmt.Fprintf(&b, "%s: %v\n", name, failed[name])
			} else {
				fmt.Fprintf(&b, "%s: failing (details on this machine's /readyz)\n", name)
			}
		}
		http.Error(w, b.String(), http.StatusServiceUnavailable)
	})
	return mux
}

// fromLoopback reports whether r came from this machine.
func fromLoopback(r *http.Request) bool {
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		return false
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// Serve serves h on addr until ctx is cancelled, then shuts down gracefully
// within five seconds.
func Serve(ctx context.Context, addr string, h http.Handler, logger *slog.Logger) error {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return fmt.Errorf("listen on %s (VERDICT_HTTP_ADDR): %w", addr, err)
	}
	// Timeouts bound a slow or stalled client; the longest answer (a
	// readout history of 10,000) takes well under the write timeout.
	srv := &http.Server{
		Handler:           h,
		ReadHeaderTimeout: 10 * time.Second,
		ReadTimeout:       30 * time.Second,
		WriteTimeout:      60 * time.Second,
		IdleTimeout:       2 * time.Minute,
		MaxHeaderBytes:    64 << 10,
	}
	logger.Info("http listening", "addr", ln.Addr().String())
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	select {
	case err := <-errc:
		return fmt.Errorf("serve http on %s: %w", addr, err)
	case <-ctx.Done():
	}
	shutdownCtx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := srv.Shutdown(shutdownCtx); err != nil {
		return fmt.Errorf("shut down http server: %w", err)
	}
	if err := <-errc; err != nil && !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	return nil
}

// NewRegistry returns the registry a verdict process exposes on /metrics:
// Go runtime and process collectors and verdict_build_info, ready for the
// services' own metrics.
func NewRegistry() *prometheus.Registry {
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	RegisterBuildInfo(reg)
	return reg
}
