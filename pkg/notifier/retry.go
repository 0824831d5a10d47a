package notifier

import (
	"context"
	"time"

	"github.com/nats-io/nats.go/jetstream"
)

// backoffStop wraps an error that retry must not retry.
type backoffStop struct{ err error }

func (b backoffStop) Error() string { return b.err.Error() }
func (b backoffStop) Unwrap() error { return b.err }

// retry calls f until it returns nil or a backoffStop, backing off from
// 100ms up to maxWait between attempts; it returns ctx's error once ctx
// ends. onErr sees every error that will be retried.
func retry(ctx context.Context, maxWait time.Duration, f func() error, onErr func(error)) error {
	b := newBackoff(maxWait)
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
		if !b.wait(ctx) {
			return ctx.Err()
		}
	}
}

type backoff struct{ next, max time.Duration }

func newBackoff(max time.Duration) *backoff {
	return &backoff{next: 100 * time.Millisecond, max: max}
}

func (b *backoff) reset() { b.next = 100 * time.Millisecond }

// wait sleeps for the current delay and doubles it; false if ctx ended.
func (b *backoff) wait(ctx context.Context) bool {
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

// keepInProgress tells JetStream every third of AckWait that msg is still
// being worked on, so an SMTP outage does not get it redelivered.
func keepInProgress(msg jetstream.Msg, ackWait time.Duration) (stop func()) {
	done := make(chan struct{})
	finished := make(chan struct{})
	go func() {
		defer close(finished)
		t := time.NewTicker(ackWait / 3)
		defer t.Stop()
		for {
			select {
			case <-done:
				return
			case <-t.C:
				_ = msg.InProgress()
			}
		}
	}()
	return func() { close(done); <-finished }
}

// withGrace returns a context that ends grace after parent does.
func withGrace(parent context.Context, grace time.Duration) (context.Context, context.CancelFunc) {
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
