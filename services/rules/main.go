// Command rules runs verdict's rules service alone: readouts computed from
// ClickHouse for every experiment in the KV bucket verdict_config, published
// on VERDICT_READOUTS and served with the readout pages on
// VERDICT_HTTP_ADDR, beside /metrics, /healthz and /readyz. `verdict up`
// runs the same service in one process with the others.
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
		fmt.Fprintln(os.Stderr, "rules:", err)
		os.Exit(1)
	}
}
