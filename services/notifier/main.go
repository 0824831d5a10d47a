// Command notifier runs verdict's notifier alone: readouts from JetStream
// VERDICT_READOUTS to email (SMTP, or .eml files in the outbox), with
// /metrics, /healthz and /readyz on VERDICT_HTTP_ADDR. `verdict up` runs the
// same service in one process with the others.
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
		fmt.Fprintln(os.Stderr, "notifier:", err)
		os.Exit(1)
	}
}
