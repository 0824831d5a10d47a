// Command gateway runs verdict's HTTP ingest alone: Segment's HTTP
// Tracking API and verdict's NDJSON events into JetStream VERDICT_EVENTS,
// with /metrics, /healthz and /readyz, on VERDICT_HTTP_ADDR. `verdict up`
// serves the same endpoints on its own HTTP server.
package main

import (
	"context"
	"fmt"
	"os"
	"os/signal"
	"syscall"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := run(ctx, os.Args[1:], os.Getenv, os.Stderr)
	stop()
	if err != nil {
		fmt.Fprintln(os.Stderr, "gateway:", err)
		os.Exit(1)
	}
}
