// Package retry holds what services that retry work share: an exponential
// backoff, and a shutdown grace period for finishing the work in hand.
package retry

import (
	"context"
	"time"
)

// First is the first delay of a Backoff.
const First = 100 * time.Millisecond

// Backoff is a delay that starts at First and doubles up to a maximum.
type Backoff struct{ next, max time.Duration }

// NewBackoff returns a backoff that never waits longer than max.
func NewBackoff(max time.Duration) *Backoff { return &Backoff{next: First, max: max} }

// Next is the delay the next Wait sleeps for.
func (b *Backoff) Next() time.Duration { return b.next }

// Reset starts again from First, after a success.
func (b *Backoff) Reset() { b.next = First }

// Wait sleeps for the current delay and doubles it; false if ctx ended
// first.
func (b *Backoff) Wait(ctx context.Context) bool {
	t := time.NewTimer(b.next)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-t.C:
	}
	b.next = min(2*b.next, b.max)
	return true
}

// WithGrace returns a context that ends grace after parent does: work in
// hand when a shutdown begins gets that long to finish.
func WithGrace(parent context.Context, grace time.Duration) (context.Context, context.CancelFunc) {
	ctx, cancel := context.WithCancel(context.WithoutCancel(parent))
	stop := context.AfterFunc(parent, func() {
		t := time.NewTimer(grace)
		defer t.Stop()
		select {
		case <-t.C:
			cancel()
		case <-ctx.Done():
		}
	})
	return ctx, func() { stop(); cancel() }
}
