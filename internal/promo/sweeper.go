package promo

import (
	"context"
	"errors"
	"log/slog"
	"time"
)

// ResolveDue settles reservations whose lease ended without their request
// finishing (the process died, or Stripe could not be read back): Stripe is
// asked whether the discount is on the subscription, and the reservation is
// confirmed if it is, released (stock back) if it is not. It handles at most
// limit reservations and returns how many it settled.
func (r *Redeemer) ResolveDue(ctx context.Context, limit int) (int, error) {
	due, err := r.Store.Due(ctx, r.Clock.Now(), limit)
	if err != nil {
		return 0, err
	}
	settled := 0
	for _, d := range due {
		if err := r.resolve(ctx, d); err != nil {
			r.Log.WarnContext(ctx, "could not resolve an expired reservation; retrying later",
				"promo_code_id", d.PromoCodeID, "redemption_id", d.RedemptionID, "err", err.Error())
			continue
		}
		settled++
	}
	return settled, nil
}

func (r *Redeemer) resolve(ctx context.Context, d DueReservation) error {
	rd, err := r.Store.GetRedemption(ctx, d.PromoCodeID, d.RedemptionID)
	if errors.Is(err, ErrNotFound) || (err == nil && rd.State != RedemptionReserved) {
		// Never reserved (the request stopped after marking), or settled.
		return r.Store.UnmarkDue(ctx, d.PromoCodeID, d.RedemptionID)
	}
	if err != nil {
		return err
	}
	p, err := r.Store.Get(ctx, rd.PromoCodeID)
	if err != nil {
		return err
	}
	var sub *Subscription
	effective := func(s *Subscription) time.Time { return s.CurrentPeriodStart }
	if rd.Subscription != "" {
		unlock, err := r.Store.LockSubscription(ctx, rd.Subscription, r.LockTTL)
		if err != nil {
			return err // a retry of the apply holds it: it settles the reservation itself
		}
		defer unlock()
		if rd, err = r.Store.GetRedemption(ctx, d.PromoCodeID, d.RedemptionID); err != nil || rd.State != RedemptionReserved {
			return err
		}
		sub, err = r.Stripe.GetSubscription(ctx, rd.Subscription)
		if CodeOf(err) == CodeSubscriptionNotFound {
			sub, err = nil, nil
		}
		if err != nil {
			return err
		}
		effective = func(s *Subscription) time.Time { return s.CurrentPeriodEnd }
	} else if sub, err = r.Stripe.FindSubscription(ctx, rd.Customer, MetaRedemptionID, rd.ID); err != nil {
		return err
	}
	if ourDiscount(sub, p) != nil {
		if _, err := r.confirm(ctx, p, rd, sub, effective(sub)); err != nil {
			return err
		}
		r.Log.InfoContext(ctx, "sweeper confirmed a reservation: Stripe has the discount",
			"redemption_id", rd.ID, "promo_code_id", p.ID, "subscription", sub.ID)
		return nil
	}
	if _, err := r.finish(ctx, rd, ReasonNotApplied); err != nil {
		return err
	}
	r.Log.InfoContext(ctx, "sweeper released a reservation: Stripe has no discount, the unit of stock is back",
		"redemption_id", rd.ID, "promo_code_id", p.ID)
	return nil
}

// Worker runs one replica's background duties: it resolves reservations
// whose lease ended and switches Stripe promotion codes on or off when a
// code's stock crosses zero. Every replica runs one; each duty is safe to run
// concurrently with the others' (scripts and locks decide).
type Worker struct {
	Redeemer *Redeemer
	Catalog  *Catalog
	Interval time.Duration
	Log      *slog.Logger
	kick     chan struct{}
}

// NewWorker builds a worker that wakes every interval, and at once when
// kicked.
func NewWorker(r *Redeemer, c *Catalog, interval time.Duration, log *slog.Logger) *Worker {
	return &Worker{Redeemer: r, Catalog: c, Interval: interval, Log: log, kick: make(chan struct{}, 1)}
}

// Kick asks for a run now (promo code switch queued); it never blocks.
func (w *Worker) Kick(string) {
	select {
	case w.kick <- struct{}{}:
	default:
	}
}

// Run works until ctx is done.
func (w *Worker) Run(ctx context.Context) {
	t := time.NewTicker(w.Interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		case <-w.kick:
		}
		w.RunOnce(ctx)
	}
}

// RunOnce does one round of every duty.
func (w *Worker) RunOnce(ctx context.Context) {
	const batch = 100
	if n, err := w.Redeemer.ResolveDue(ctx, batch); err != nil {
		w.Log.WarnContext(ctx, "sweeper could not list expired reservations", "err", err.Error())
	} else if n > 0 {
		w.Log.InfoContext(ctx, "sweeper settled expired reservations", "count", n)
	}
	ids, err := w.Redeemer.Store.StripeSyncPending(ctx, batch)
	if err != nil {
		w.Log.WarnContext(ctx, "could not list promotion codes to switch", "err", err.Error())
		return
	}
	for _, id := range ids {
		// Done before the switch: a change queued while it runs is kept.
		if err := w.Redeemer.Store.StripeSyncDone(ctx, id); err != nil {
			continue
		}
		if err := w.Catalog.SyncStripeActive(ctx, id); err != nil {
			w.Log.WarnContext(ctx, "could not switch the Stripe promotion code; retrying later", "promo_code_id", id, "err", err.Error())
			_ = w.Redeemer.Store.NeedsStripeSync(context.WithoutCancel(ctx), id)
		}
	}
}
