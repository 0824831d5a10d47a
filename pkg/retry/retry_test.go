package retry

import (
	"context"
	"testing"
	"time"
)

func TestBackoffDoublesUpToMax(t *testing.T) {
	b := NewBackoff(350 * time.Millisecond)
	want := []time.Duration{100 * time.Millisecond, 200 * time.Millisecond, 350 * time.Millisecond, 350 * time.Millisecond}
	for i, w := range want {
		if got := b.Next(); got != w {
			t.Fatalf("delay %d = %v, want %v", i, got, w)
		}
		b.next = min(2*b.next, b.max) // what Wait does after sleeping
	}
	b.Reset()
	if got := b.Next(); got != First {
		t.Errorf("after Reset, Next() = %v, want %v", got, First)
	}
}

func TestBackoffWaitStopsWithContext(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if NewBackoff(time.Hour).Wait(ctx) {
		t.Error("Wait on a cancelled context = true, want false")
	}
}

func TestWithGrace(t *testing.T) {
	parent, cancel := context.WithCancel(context.Background())
	ctx, stop := WithGrace(parent, 50*time.Millisecond)
	defer stop()
	cancel()
	if ctx.Err() != nil {
		t.Fatal("the grace context ended with its parent, want it to last the grace period")
	}
	select {
	case <-ctx.Done():
	case <-time.After(5 * time.Second):
		t.Fatal("the grace context did not end after the grace period")
	}
}
