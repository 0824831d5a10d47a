package warehouse

import (
	"context"
	"fmt"
	"log/slog"
	"time"
)

// Dial opens the warehouse and applies the migrations, waiting for
// ClickHouse to answer: services may start before the database does. It
// gives up only when ctx ends.
func Dial(ctx context.Context, cfg Config, log *slog.Logger) (*Warehouse, error) {
	wait := 100 * time.Millisecond
	for {
		w, err := Open(ctx, cfg)
		if err == nil {
			if err = w.Migrate(ctx); err == nil {
				return w, nil
			}
			w.Close()
		}
		log.Warn("clickhouse not ready, will retry", "addr", cfg.Addr, "err", err, "in", wait)
		select {
		case <-ctx.Done():
			return nil, fmt.Errorf("open clickhouse at %s: %w", cfg.Addr, err)
		case <-time.After(wait):
		}
		wait = min(2*wait, 5*time.Second)
	}
}
