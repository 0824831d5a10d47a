// Command ingest runs verdict's ingest service alone: JetStream
// VERDICT_EVENTS into ClickHouse, with /metrics, /healthz and /readyz on
// VERDICT_HTTP_ADDR. `verdict up` runs the same service in one process with
// the others.
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
		fmt.Fprintln(os.Stderr, "ingest:", err)
		os.Exit(1)
	}
}
