package notifier

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/verdictlabs/verdict/pkg/retry"
)

// backoffStop wraps an error that retryUntil must not retry.
type backoffStop struct{ err error }

func (b backoffStop) Error() string { return b.err.Error() }
func (b backoffStop) Unwrap() error { return b.err }

// deliverWithin calls attempt until it succeeds, fails permanently (an
// ErrPermanent), or the notifier's retry budget is spent, which is
// returned as an ErrPermanent too: one recipient that keeps failing must
// not hold up every other delivery. It returns ctx's error once ctx ends.
// An attempt under way when shutdown comes gets ten seconds to finish:
// cutting it off could leave the receiver with the message and the bucket
// without it. retrying sees every error that will be retried.
func (n *Notifier) deliverWithin(ctx context.Context, attempt func(ctx context.Context) error, retrying func(error)) error {
	return n.deliverFor(ctx, n.giveUp, attempt, retrying)
}

// deliverFor is deliverWithin with a budget of its own.
func (n *Notifier) deliverFor(ctx context.Context, giveUp time.Duration, attempt func(ctx context.Context) error, retrying func(error)) error {
	first := n.now()
	err := retryUntil(ctx, n.retryMax, func() error {
		if n.now().Sub(first) > giveUp {
			return backoffStop{fmt.Errorf("%w: still failing after %v", ErrPermanent, giveUp)}
		}
		actx, cancel := retry.WithGrace(ctx, 10*time.Second)
		defer cancel()
		err := attempt(actx)
		if errors.Is(err, ErrPermanent) {
			return backoffStop{err}
		}
		return err
	}, retrying)
	var stop backoffStop
	if errors.As(err, &stop) {
		return stop.err
	}
	return err
}

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
