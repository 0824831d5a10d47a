package notifier

import (
	"context"
	"time"

	"github.com/verdictlabs/verdict/pkg/retry"
)

// backoffStop wraps an error that retryUntil must not retry.
type backoffStop struct{ err error }

func (b backoffStop) Error() string { return b.err.Error() }
func (b backoffStop) Unwrap() error { return b.err }

// retryUntil calls f until it returns nil or a backoffStop, backing off from
// 100ms up to maxWait between attempts; it returns ctx's error once ctx
// ends. onErr sees every error that will be retried.
func retryUntil(ctx context.Context, maxWait time.Duration, f func() error, onErr func(error)) error {
	b := retry.NewBackoff(maxWait)
	for {
		err := f()
		if err == nil {
			return nil
		}
		if _, ok := err.(backoffStop); ok {
			return err
		}
		if ctx.Err() != nil {
			return ctx.Err()
		}
		onErr(err)
		if !b.Wait(ctx) {
			return ctx.Err()
		}
	}
}
