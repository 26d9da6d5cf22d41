package promo

import (
	"context"
	"sync/atomic"
)

// Execution and idempotency. Like Stripe, the service saves the answer to an
// Idempotency-Key only once the operation began executing: a request refused
// while its parameters are checked (decoding, the checks the domain makes
// from the request alone, and on create that the plan_ids name Stripe
// prices) saves nothing, so the corrected request with the same key simply
// runs. From the first read or write of the state the operation decides on
// (the code, the subscription, Stripe's answer to the write), the answer is
// the operation's outcome and is saved, refusals included (code_exhausted,
// customer_mismatch, Stripe refusing a subscribe's price), except the
// answers that mean "try again" (httpapi's saveAnswer decides which).
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
