package main

import (
	"context"
	"errors"
	"testing"
	"time"
)

// TestDeadline: the lazy deadline behaves as context.WithDeadline does,
// seen from outside, and starts nothing until Done is asked for.
func TestDeadline(t *testing.T) {
	closed := func(c <-chan struct{}) bool {
		select {
		case <-c:
			return true
		case <-time.After(2 * time.Second):
			return false
		}
	}
	t.Run("ends at its deadline", func(t *testing.T) {
		ctx, cancel := withDeadline(time.Now().Add(20 * time.Millisecond))
		defer cancel()
		if at, ok := ctx.Deadline(); !ok || time.Until(at) > 20*time.Millisecond {
			t.Errorf("Deadline = %v, %t", at, ok)
		}
		if ctx.Err() != nil || ctx.(*deadline).started != nil {
			t.Fatalf("Err = %v, started %v before the deadline and before Done", ctx.Err(), ctx.(*deadline).started)
		}
		if !closed(ctx.Done()) || !errors.Is(ctx.Err(), context.DeadlineExceeded) || !errors.Is(context.Cause(ctx), context.DeadlineExceeded) {
			t.Errorf("after the deadline: Err = %v, Cause = %v", ctx.Err(), context.Cause(ctx))
		}
	})
	t.Run("passed without a timer", func(t *testing.T) {
		ctx, cancel := withDeadline(time.Now().Add(-time.Millisecond))
		if !errors.Is(ctx.Err(), context.DeadlineExceeded) || ctx.(*deadline).started != nil {
			t.Errorf("Err = %v with no Done asked", ctx.Err())
		}
		cancel()
		if !errors.Is(ctx.Err(), context.DeadlineExceeded) || !closed(ctx.Done()) || !errors.Is(ctx.Err(), context.DeadlineExceeded) {
			t.Errorf("cancelled after its deadline: Err = %v, want DeadlineExceeded", ctx.Err())
		}
	})
	t.Run("cancelled before Done", func(t *testing.T) {
		ctx, cancel := withDeadline(time.Now().Add(time.Hour))
		cancel()
		if !errors.Is(ctx.Err(), context.Canceled) || !closed(ctx.Done()) || !errors.Is(ctx.Err(), context.Canceled) {
			t.Errorf("Err = %v, want Canceled", ctx.Err())
		}
	})
	t.Run("cancelled after Done, reaching a child", func(t *testing.T) {
		ctx, cancel := withDeadline(time.Now().Add(time.Hour))
		child, stop := context.WithTimeout(ctx, time.Hour)
		defer stop()
		cancel()
		if !closed(child.Done()) || !errors.Is(child.Err(), context.Canceled) || !errors.Is(ctx.Err(), context.Canceled) {
			t.Errorf("child Err = %v, parent Err = %v; want Canceled", child.Err(), ctx.Err())
		}
	})
}
