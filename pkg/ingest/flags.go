package ingest

import (
	"errors"
	"flag"
	"fmt"
	"strconv"
	"time"

	"github.com/verdictlabs/verdict/pkg/settings"
	"github.com/verdictlabs/verdict/pkg/stream"
)

// Flags are ingest's own settings, as flags whose defaults come from the
// environment: the same names under bin/ingest and verdict up.
type Flags struct {
	batch, wait, duplicates string
}

// RegisterFlags adds -ingest-batch (VERDICT_INGEST_BATCH, 10000),
// -ingest-batch-wait (VERDICT_INGEST_BATCH_WAIT, 1s) and
// -nats-duplicate-window (VERDICT_NATS_DUPLICATE_WINDOW, 10s) to fs.
func (f *Flags) RegisterFlags(fs *flag.FlagSet, getenv func(string) string) {
	fs.StringVar(&f.batch, "ingest-batch", settings.Env(getenv, "VERDICT_INGEST_BATCH", "10000"), "events per ClickHouse insert (VERDICT_INGEST_BATCH)")
	fs.StringVar(&f.wait, "ingest-batch-wait", settings.Env(getenv, "VERDICT_INGEST_BATCH_WAIT", "1s"), "longest wait to fill a batch (VERDICT_INGEST_BATCH_WAIT)")
	fs.StringVar(&f.duplicates, "nats-duplicate-window", getenv("VERDICT_NATS_DUPLICATE_WINDOW"), "how long VERDICT_EVENTS remembers Nats-Msg-Id to drop copies; about 140 B of memory per message in the window (VERDICT_NATS_DUPLICATE_WINDOW; default 10s)")
}

// Apply parses the flags into c (BatchSize, BatchWait, Limits with their
// duplicate window) and lists every problem.
func (f *Flags) Apply(c *Config) error {
	var errs []error
	var err error
	if c.BatchSize, err = strconv.Atoi(f.batch); err != nil || c.BatchSize < 1 || c.BatchSize > 1_000_000 {
		errs = append(errs, fmt.Errorf("VERDICT_INGEST_BATCH %q: want a whole number from 1 to 1000000", f.batch))
	}
	if c.BatchWait, err = time.ParseDuration(f.wait); err != nil || c.BatchWait <= 0 {
		errs = append(errs, fmt.Errorf("VERDICT_INGEST_BATCH_WAIT %q: want a duration such as 1s", f.wait))
	}
	if c.Limits == (stream.Limits{}) {
		c.Limits = stream.DefaultLimits
	}
	if c.Limits.EventsDuplicates, err = stream.ParseDuplicateWindow(f.duplicates); err != nil {
		errs = append(errs, err)
	}
	return errors.Join(errs...)
}
