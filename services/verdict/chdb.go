package main

import (
	"context"
	"io"

	"github.com/verdictlabs/verdict/pkg/warehouse/chdb"
)

// runChDBServer is `verdict chdb-server -lib LIB -path DIR -addr HOST:PORT`:
// the child process `verdict up` starts for VERDICT_CLICKHOUSE_LOCAL=chdb.
// It serves until its standard input ends; a signal ends it at once.
func runChDBServer(ctx context.Context, args []string, _ func(string) string, _ io.Reader, _, stderr io.Writer) error {
	done := make(chan error, 1)
	go func() { done <- chdb.Main(args, stderr) }()
	select {
	case err := <-done:
		return err
	case <-ctx.Done():
		// The engine cannot be stopped from here but by its input; the
		// process exits under it, as ClickHouse allows (its parts are
		// written whole or not at all).
		return ctx.Err()
	}
}
