package promo

import (
	"context"
	"sync/atomic"
)

// Execution and idempotency. Like Stripe, the service saves the answer to an
// Idempotency-Key only once the operation began executing: a request refused
// while its parameters are checked (decoding, and the checks the domain makes
// from the request alone, before it reads or writes any state) saves nothing,
// so the corrected request with the same key simply runs. From the first read
// or write of state on (Redis or Stripe), the answer is the operation's
// outcome and is saved, refusals included (e.g. code_exhausted, an unknown
// Stripe price in plan_ids), except the answers that mean "try again"
// (httpapi decides which).
//
// The domain marks that moment with Began; the HTTP layer asks through the
// function TrackExecution returned.

type executionKey struct{}

// TrackExecution returns a context in which Began can be marked, and a
// function reporting whether it was.
func TrackExecution(ctx context.Context) (context.Context, func() bool) {
	began := new(atomic.Bool)
	return context.WithValue(ctx, executionKey{}, began), began.Load
}

// Began marks that the operation has checked its parameters and starts
// executing. Without TrackExecution it does nothing.
func Began(ctx context.Context) {
	if b, ok := ctx.Value(executionKey{}).(*atomic.Bool); ok {
		b.Store(true)
	}
}
