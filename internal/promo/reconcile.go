package promo

import (
	"context"
	"errors"
	"log/slog"
	"strings"
)

// Reconciler applies what Stripe reports (webhook events) to the ledger,
// stock and counters. Stripe is the system of record for discounts: a
// discount made outside the adapter (Checkout, the Dashboard) on one of our
// codes is recorded and takes stock, and any rule it broke is flagged.
//
// Every handler is safe to run more than once and in any order: the store's
// scripts are keyed by discount and invoice IDs, redemption states only move
// forward, and a discount seen ending first is remembered as ended.
type Reconciler struct {
	Store   ReconcileStore
	Catalog *Catalog
	Log     *slog.Logger
	Kick    func(promoCodeID string)
}

// ours returns the code a Stripe coupon mirrors (coupon ID = promo code ID),
// or nil for a coupon the adapter does not own.
func (r *Reconciler) ours(ctx context.Context, couponID string) (*PromoCode, error) {
	if !strings.HasPrefix(couponID, "pc_") {
		return nil, nil
	}
	p, err := r.Store.Get(ctx, couponID)
	if errors.Is(err, ErrNotFound) {
		r.Log.WarnContext(ctx, "Stripe names a promo code this service does not have; run reconcile", "promo_code_id", couponID)
		return nil, nil
	}
	return p, err
}

// observed is what the store needs of a discount event. A ledger line made
// for it gets the discount's deterministic ID (RedemptionIDFor), so that a
// rebuild from Stripe reproduces it.
func (r *Reconciler) observed(d *DiscountEvent) ObservedDiscount {
	start := d.Start
	if start.IsZero() {
		start = d.At
	}
	return ObservedDiscount{DiscountID: d.DiscountID, Customer: d.Customer, Subscription: d.Subscription,
		At: d.At, NewID: RedemptionIDFor(d.DiscountID, start), Once: d.CouponDuration == Once}
}

// DiscountCreated: Stripe attached a discount.
func (r *Reconciler) DiscountCreated(ctx context.Context, d DiscountEvent) error {
	p, err := r.ours(ctx, d.CouponID)
	if p == nil || err != nil {
		return err
	}
	od := r.observed(&d)
	if od.SubscriptionTaken, err = r.subscriptionTaken(ctx, d.Subscription, p.ID); err != nil {
		return err
	}
	rd, outcome, change, err := r.Store.ObserveDiscount(ctx, p.ID, od)
	if err != nil {
		return err
	}
	if err := r.afterObserve(ctx, p, rd, outcome, od); err != nil {
		return err
	}
	r.stockChanged(ctx, p.ID, change)
	return r.Store.ObserveCouponRedemptions(ctx, p.ID, d.CouponTimesRedeemed)
}

// DiscountUpdated: the subscription's discount was replaced; prev is the
// one it replaced (nil when the event does not say).
func (r *Reconciler) DiscountUpdated(ctx context.Context, d DiscountEvent, prev *DiscountEvent) error {
	if prev != nil && prev.DiscountID != "" && prev.DiscountID != d.DiscountID {
		if err := r.discountEnded(ctx, *prev, ReasonReplaced); err != nil {
			return err
		}
	}
	return r.DiscountCreated(ctx, d)
}

// DiscountDeleted: Stripe removed a discount (its duration ended, or someone
// removed it).
func (r *Reconciler) DiscountDeleted(ctx context.Context, d DiscountEvent) error {
	reason := ReasonDeleted
	if d.CouponDuration == Repeating && !d.End.IsZero() && !d.At.Before(d.End) {
		reason = ReasonDuration
	}
	return r.discountEnded(ctx, d, reason)
}

func (r *Reconciler) discountEnded(ctx context.Context, d DiscountEvent, reason string) error {
	p, err := r.ours(ctx, d.CouponID)
	if p == nil || err != nil {
		return err
	}
	rd, change, err := r.Store.EndDiscount(ctx, p.ID, r.observed(&d), reason)
	if err != nil {
		return err
	}
	if rd.Subscription != "" {
		if err := r.Store.ClearClaim(ctx, rd.Subscription, rd.ID); err != nil {
			return err
		}
	}
	r.stockChanged(ctx, p.ID, change)
	return nil
}

// InvoicePaid counts a paid invoice: the customer is no longer new, and an
// invoice carrying one of our discounts activates and counts its redemption.
func (r *Reconciler) InvoicePaid(ctx context.Context, e InvoicePaidEvent) error {
	if e.AmountPaid > 0 && e.Customer != "" {
		if err := r.Store.MarkCustomerPaid(ctx, e.Customer); err != nil {
			return err
		}
	}
	if e.Discount == nil {
		return nil
	}
	p, err := r.ours(ctx, e.Discount.CouponID)
	if p == nil || err != nil {
		return err
	}
	od := r.observed(e.Discount)
	od.At = e.At
	if od.SubscriptionTaken, err = r.subscriptionTaken(ctx, od.Subscription, p.ID); err != nil {
		return err
	}
	rd, counted, change, err := r.Store.CountInvoice(ctx, p.ID, PaidInvoice{InvoiceID: e.InvoiceID, Discount: od,
		Currency: e.Currency, Amount: e.DiscountAmount})
	if err != nil {
		return err
	}
	if counted {
		if err := r.afterObserve(ctx, p, rd, ObservedConfirmed, od); err != nil {
			return err
		}
	}
	r.stockChanged(ctx, p.ID, change)
	return r.Store.ObserveCouponRedemptions(ctx, p.ID, e.Discount.CouponTimesRedeemed)
}

// SubscriptionDeleted ends the redemption of a cancelled subscription.
func (r *Reconciler) SubscriptionDeleted(ctx context.Context, e SubscriptionDeletedEvent) error {
	codes := []string{e.CouponID, e.Metadata[MetaPromoCodeID]}
	if c, err := r.Store.Claim(ctx, e.Subscription); err == nil {
		codes = append(codes, c.PromoCodeID)
	} else if !errors.Is(err, ErrNotFound) {
		return err
	}
	seen := map[string]bool{}
	for _, id := range codes {
		if seen[id] {
			continue
		}
		seen[id] = true
		p, err := r.ours(ctx, id)
		if p == nil || err != nil {
			if err != nil {
				return err
			}
			continue
		}
		rd, err := r.Store.SubscriptionRedemption(ctx, p.ID, e.Subscription)
		if errors.Is(err, ErrNotFound) {
			continue
		}
		if err != nil {
			return err
		}
		rd, change, err := r.Store.Finish(ctx, p.ID, rd.ID, ReasonCancelled, e.At)
		if err != nil {
			return err
		}
		if err := r.Store.ClearClaim(ctx, e.Subscription, rd.ID); err != nil {
			return err
		}
		r.stockChanged(ctx, p.ID, change)
	}
	return nil
}

// PromotionCodeUpdated keeps the code's record of its Stripe promotion code
// in step (read back from Stripe, so an old event cannot win).
func (r *Reconciler) PromotionCodeUpdated(ctx context.Context, promotionCodeID, couponID string) error {
	p, err := r.ours(ctx, couponID)
	if p == nil || err != nil {
		return err
	}
	return r.Catalog.ObservePromotionCode(ctx, p.ID, promotionCodeID)
}

// CouponDeleted makes the code inactive: Stripe can no longer apply it.
func (r *Reconciler) CouponDeleted(ctx context.Context, couponID string) error {
	p, err := r.ours(ctx, couponID)
	if p == nil || err != nil {
		return err
	}
	return r.Catalog.CouponDeleted(ctx, p.ID)
}

// afterObserve points the subscription's claim at a newly live redemption
// and clears the sweeper's mark of a confirmed reservation.
func (r *Reconciler) afterObserve(ctx context.Context, p *PromoCode, rd *Redemption, outcome ObserveOutcome, od ObservedDiscount) error {
	if outcome == ObservedKnown {
		return nil
	}
	if outcome == ObservedAdopted {
		level := slog.LevelInfo
		if len(rd.Flags) > 0 {
			level = slog.LevelWarn
		}
		r.Log.Log(ctx, level, "recorded a redemption made outside the adapter", "promo_code_id", p.ID,
			"redemption_id", rd.ID, "customer", rd.Customer, "subscription", rd.Subscription, "flags", rd.Flags)
	}
	if err := r.Store.UnmarkDue(ctx, p.ID, rd.ID); err != nil {
		return err
	}
	if rd.Subscription == "" || !rd.State.Live() || od.SubscriptionTaken {
		return nil
	}
	return r.Store.SetClaim(ctx, rd.Subscription, Claim{PromoCodeID: p.ID, RedemptionID: rd.ID, Owner: rd.Owner})
}

// subscriptionTaken reports whether another code's live redemption holds
// the subscription.
func (r *Reconciler) subscriptionTaken(ctx context.Context, sub, promoCodeID string) (bool, error) {
	if sub == "" {
		return false, nil
	}
	c, err := r.Store.Claim(ctx, sub)
	if errors.Is(err, ErrNotFound) || (err == nil && c.PromoCodeID == promoCodeID) {
		return false, nil
	}
	if err != nil {
		return false, err
	}
	rd, err := r.Store.GetRedemption(ctx, c.PromoCodeID, c.RedemptionID)
	if errors.Is(err, ErrNotFound) {
		return false, nil
	}
	return err == nil && rd.State.Live(), err
}

func (r *Reconciler) stockChanged(ctx context.Context, codeID string, c StockChange) {
	queueStripeSwitch(ctx, r.Store, r.Log, r.Kick, codeID, c)
}
