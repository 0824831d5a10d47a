package warehouse

import (
	"context"
	"fmt"
	"log/slog"
	"time"

	"github.com/verdictlabs/verdict/pkg/retry"
)

// Dial opens the warehouse and applies the migrations, waiting for
// ClickHouse to answer: services may start before the database does. It
// gives up only when ctx ends.
func Dial(ctx context.Context, cfg Config, log *slog.Logger) (*Warehouse, error) {
	backoff := retry.NewBackoff(5 * time.Second)
	for {
		w, err := Open(ctx, cfg)
		if err == nil {
			if err = w.Migrate(ctx); err == nil {
				return w, nil
			}
			w.Close()
		}
		log.Warn("clickhouse not ready, will retry", "addr", cfg.Addr, "err", err, "in", backoff.Next())
		if !backoff.Wait(ctx) {
			return nil, fmt.Errorf("open clickhouse at %s: %w", cfg.Addr, err)
		}
	}
}
