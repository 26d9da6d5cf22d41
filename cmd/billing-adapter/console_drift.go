package main

import (
	"context"
	"fmt"
	"time"

	"github.com/billing-adapter/billing-adapter/internal/console"
	"github.com/billing-adapter/billing-adapter/internal/promo"
	"github.com/billing-adapter/billing-adapter/internal/redisstore"
)

// consoleDrift is the console's drift page: what `reconcile` without -fix
// reports, from the same domain steps (promo.ReadStripe, Rebuild, Diff) on
// the service's own Stripe gateway and Redis store.
func consoleDrift(gw promo.StripeReader, store *redisstore.Store) func(context.Context) (*console.DriftReport, error) {
	return func(ctx context.Context) (*console.DriftReport, error) {
		snap, err := promo.ReadStripe(ctx, gw, time.Time{}, nil)
		if err != nil {
			return nil, fmt.Errorf("reading Stripe: %w", err)
		}
		now := time.Now().UTC()
		rebuilt := promo.Rebuild(snap, now)
		paid := promo.PaidMarks(snap.PaidCustomers, now) // customers whose paid mark is not over
		current, err := loadRedisState(ctx, store, rebuilt, paid)
		if err != nil {
			return nil, fmt.Errorf("reading Redis: %w", err)
		}
		drift := promo.Diff(current, rebuilt, paid)
		rep := &console.DriftReport{Summary: driftSummary(rebuilt, current, drift), Problems: rebuilt.Problems}
		rep.Lines = driftNotes(current, rebuilt)
		for _, d := range drift {
			rep.Lines = append(rep.Lines, d.String())
		}
		return rep, nil
	}
}
