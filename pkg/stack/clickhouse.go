package stack

import (
	"context"
	"log/slog"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promauto"

	"github.com/verdictlabs/verdict/pkg/warehouse"
)

// localClickHouse is the ClickHouse server the stack started itself. keep
// starts it again whenever its process exits while the stack runs — a
// crash, an OOM kill, or chDB 26.7.3 ending its process at a failed login —
// on the same address and data, so the services' connection pools find it
// again; each start is counted.
type localClickHouse struct {
	cfg      warehouse.LocalConfig
	log      *slog.Logger
	restarts prometheus.Counter

	mu  sync.Mutex
	cur *warehouse.Local
}

func newLocalClickHouse(cfg warehouse.LocalConfig, first *warehouse.Local, log *slog.Logger, reg prometheus.Registerer) *localClickHouse {
	return &localClickHouse{
		cfg: cfg,
		log: log,
		cur: first,
		restarts: promauto.With(reg).NewCounter(prometheus.CounterOpts{
			Name: "verdict_clickhouse_local_restarts_total",
			Help: "Times verdict up started its local ClickHouse server again after the process exited.",
		}),
	}
}

// keep watches the server until ctx ends, starting it again each time it
// exits; a start that fails is tried again with a backoff from 1 s to 1 min.
func (l *localClickHouse) keep(ctx context.Context) error {
	for {
		l.mu.Lock()
		cur := l.cur
		l.mu.Unlock()
		select {
		case <-ctx.Done():
			return nil
		case <-cur.Done():
		}
		if ctx.Err() != nil {
			return nil
		}
		l.log.Error("local clickhouse exited; starting it again", "engine", cur.Engine(), "err", cur.Err(), "log", cur.LogDir())
		for backoff := time.Second; ; backoff = min(2*backoff, time.Minute) {
			next, err := warehouse.StartLocal(ctx, l.cfg)
			if err == nil {
				l.mu.Lock()
				l.cur = next
				l.mu.Unlock()
				l.restarts.Inc()
				break
			}
			if ctx.Err() != nil {
				return nil
			}
			l.log.Error("start local clickhouse again", "err", err, "retry_in", backoff)
			select {
			case <-ctx.Done():
				return nil
			case <-time.After(backoff):
			}
		}
	}
}

// stop stops the server the stack has now.
func (l *localClickHouse) stop() {
	l.mu.Lock()
	defer l.mu.Unlock()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := l.cur.Stop(ctx); err != nil {
		l.log.Warn("stop clickhouse", "err", err)
	}
}
