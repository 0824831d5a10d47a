package warehouse

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2"

	"github.com/verdictlabs/verdict/pkg/retry"
)

// Dial opens the warehouse and applies the migrations, waiting for
// ClickHouse to answer: services may start before the database does. It
// gives up when ctx ends, and at once when ClickHouse refuses the user or
// the password: waiting would not mend a wrong credential.
func Dial(ctx context.Context, cfg Config, log *slog.Logger) (*Warehouse, error) {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	backoff := retry.NewBackoff(5 * time.Second)
	for {
		w, err := Open(ctx, cfg)
		if err == nil {
			if err = w.Migrate(ctx); err == nil {
				return w, nil
			}
			w.Close()
		}
		if isAuthError(err) {
			return nil, fmt.Errorf("clickhouse at %s refused user %q: %w; check VERDICT_CLICKHOUSE_USER and VERDICT_CLICKHOUSE_PASSWORD", cfg.Addr, cfg.Username, err)
		}
		log.Warn("clickhouse not ready, will retry", "addr", cfg.Addr, "err", err, "in", backoff.Next())
		if !backoff.Wait(ctx) {
			return nil, fmt.Errorf("open clickhouse at %s: %w", cfg.Addr, err)
		}
	}
}

// isAuthError reports whether err is ClickHouse refusing the credentials:
// UNKNOWN_USER (192), WRONG_PASSWORD (193), REQUIRED_PASSWORD (194),
// AUTHENTICATION_FAILED (516).
func isAuthError(err error) bool {
	var e *clickhouse.Exception
	if !errors.As(err, &e) {
		return false
	}
	switch e.Code {
	case 192, 193, 194, 516:
		return true
	}
	return false
}
