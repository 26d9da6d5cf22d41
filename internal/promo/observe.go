package promo

import (
	"context"
	"errors"
	"log/slog"
	"strings"
)

// Observer applies what Stripe reports (webhook events) to the ledger,
// stock and counters. Stripe is the system of record for discounts: a
// discount made outside the adapter (Checkout, the Dashboard) on one of our
// codes is recorded and takes stock, and any rule it broke is flagged.
//
// Every handler is safe to run more than once and in any order: the store's
// scripts are keyed by discount and invoice IDs, redemption states only move
// forward, and a discount seen ending first is remembered as ended.
type Observer struct {
	Store   ObserveStore
	Catalog *Catalog
	Log     *slog.Logger
	Kick    func(promoCodeID string)
}

// ours reports whether a Stripe coupon can mirror one of our codes (coupon
// ID = promo code ID). Whether the code exists is the store's to say: its
// scripts answer ErrNotFound, which unknown() turns into a warning.
func ours(couponID string) bool { return strings.HasPrefix(couponID, "pc_") }

// unknown swallows ErrNotFound for a code Stripe names but the service does
// not have (a reconcile repairs it) and passes any other error on.
func (r *Observer) unknown(ctx context.Context, codeID string, err error) error {
	if errors.Is(err, ErrNotFound) || CodeOf(err) == CodeNotFound {
		r.Log.WarnContext(ctx, "Stripe names a promo code this service does not have; run reconcile", "promo_code_id", codeID)
		return nil
	}
	return err
}

// observed is what the store needs of a discount event. A ledger line made
// for it gets the discount's deterministic ID (RedemptionIDFor), so that a
// rebuild from Stripe reproduces it.
func (r *Observer) observed(d *DiscountEvent) ObservedDiscount {
	start := d.Start
	if start.IsZero() {
		start = d.At
	}
	return ObservedDiscount{DiscountID: d.DiscountID, Customer: d.Customer, Subscription: d.Subscription,
		At: d.At, NewID: RedemptionIDFor(d.DiscountID, start), Once: d.CouponDuration == Once,
		CouponTimesRedeemed: d.CouponTimesRedeemed}
}

// DiscountCreated: Stripe attached a discount.
func (r *Observer) DiscountCreated(ctx context.Context, d DiscountEvent) error {
	if !ours(d.CouponID) {
		return nil
	}
	rd, how, change, err := r.Store.ObserveDiscount(ctx, d.CouponID, r.observed(&d))
	if err != nil {
		return r.unknown(ctx, d.CouponID, err)
	}
	r.stockChanged(ctx, d.CouponID, change)
	return r.afterObserve(ctx, d.CouponID, rd, how)
}

// DiscountUpdated: the subscription's discount was replaced; prev is the
// one it replaced (nil when the event does not say).
func (r *Observer) DiscountUpdated(ctx context.Context, d DiscountEvent, prev *DiscountEvent) error {
	if prev != nil && prev.DiscountID != "" && prev.DiscountID != d.DiscountID {
		if err := r.discountEnded(ctx, *prev, ReasonReplaced); err != nil {
			return err
		}
	}
	return r.DiscountCreated(ctx, d)
}

// DiscountDeleted: Stripe removed a discount (its duration ended, or someone
// removed it).
func (r *Observer) DiscountDeleted(ctx context.Context, d DiscountEvent) error {
	reason := ReasonDeleted
	if d.CouponDuration == Repeating && !d.End.IsZero() && !d.At.Before(d.End) {
		reason = ReasonDuration
	}
	return r.discountEnded(ctx, d, reason)
}

func (r *Observer) discountEnded(ctx context.Context, d DiscountEvent, reason string) error {
	if !ours(d.CouponID) {
		return nil
	}
	rd, change, err := r.Store.EndDiscount(ctx, d.CouponID, r.observed(&d), reason)
	if err != nil {
		return r.unknown(ctx, d.CouponID, err)
	}
	r.stockChanged(ctx, d.CouponID, change)
	if rd.Subscription != "" {
		return r.Store.ClearClaim(ctx, rd.Subscription, rd.ID)
	}
	return nil
}

// InvoicePaid counts a paid invoice: the customer is no longer new, and an
// invoice carrying one of our discounts activates and counts its redemption.
// In the common case (a known redemption) that is two round trips: the paid
// customer and one script.
func (r *Observer) InvoicePaid(ctx context.Context, e InvoicePaidEvent) error {
	if e.AmountPaid > 0 && e.Customer != "" {
		if err := r.Store.MarkCustomerPaid(ctx, e.Customer); err != nil {
			return err
		}
	}
	if e.Discount == nil || !ours(e.Discount.CouponID) {
		return nil
	}
	od := r.observed(e.Discount)
	od.At = e.At
	c, err := r.Store.CountInvoice(ctx, e.Discount.CouponID, PaidInvoice{InvoiceID: e.InvoiceID, Discount: od,
		Currency: e.Currency, Amount: e.DiscountAmount})
	if err != nil {
		return r.unknown(ctx, e.Discount.CouponID, err)
	}
	r.stockChanged(ctx, e.Discount.CouponID, c.Change)
	return r.afterObserve(ctx, e.Discount.CouponID, c.Redemption, c.How)
}

// SubscriptionDeleted ends the redemption of a cancelled subscription.
func (r *Observer) SubscriptionDeleted(ctx context.Context, e SubscriptionDeletedEvent) error {
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
		if !ours(id) {
			continue
		}
		rd, err := r.Store.SubscriptionRedemption(ctx, id, e.Subscription)
		if errors.Is(err, ErrNotFound) {
			continue
		}
		if err != nil {
			return err
		}
		rd, change, err := r.Store.Finish(ctx, id, rd.ID, ReasonCancelled, e.At)
		if err != nil {
			return err
		}
		if err := r.Store.ClearClaim(ctx, e.Subscription, rd.ID); err != nil {
			return err
		}
		r.stockChanged(ctx, id, change)
	}
	return nil
}

// PromotionCodeUpdated keeps the code's record of its Stripe promotion code
// in step (read back from Stripe, so an old event cannot win).
func (r *Observer) PromotionCodeUpdated(ctx context.Context, promotionCodeID, couponID string) error {
	if !ours(couponID) {
		return nil
	}
	return r.unknown(ctx, couponID, r.Catalog.ObservePromotionCode(ctx, couponID, promotionCodeID))
}

// CouponDeleted makes the code inactive: Stripe can no longer apply it.
func (r *Observer) CouponDeleted(ctx context.Context, couponID string) error {
	if !ours(couponID) {
		return nil
	}
	return r.unknown(ctx, couponID, r.Catalog.CouponDeleted(ctx, couponID))
}

// afterObserve follows up a line that became live just now: the sweeper's
// mark of a confirmed reservation goes, and the subscription's claim points
// at the line unless another code's live redemption holds the subscription,
// which is a rule an adopted (outside) redemption broke.
func (r *Observer) afterObserve(ctx context.Context, codeID string, rd *Redemption, how ObserveOutcome) error {
	switch how {
	case ObservedKnown:
		return nil
	case ObservedConfirmed:
		if err := r.Store.UnmarkDue(ctx, codeID, rd.ID); err != nil {
			return err
		}
	}
	if rd.Subscription != "" && rd.State.Live() {
		taken, err := r.subscriptionTaken(ctx, rd.Subscription, codeID)
		if err != nil {
			return err
		}
		switch {
		case taken && how == ObservedAdopted:
			if rd, err = r.Store.FlagRedemption(ctx, codeID, rd.ID, "subscription_has_promo_code"); err != nil {
				return err
			}
		case !taken:
			if err := r.Store.SetClaim(ctx, rd.Subscription, Claim{PromoCodeID: codeID, RedemptionID: rd.ID}); err != nil {
				return err
			}
		}
	}
	if how == ObservedAdopted {
		level := slog.LevelInfo
		if len(rd.Flags) > 0 {
			level = slog.LevelWarn
		}
		r.Log.Log(ctx, level, "recorded a redemption made outside the adapter", "promo_code_id", codeID,
			"redemption_id", rd.ID, "customer", rd.Customer, "subscription", rd.Subscription, "flags", rd.Flags)
	}
	return nil
}

// subscriptionTaken reports whether another code's live redemption holds
// the subscription.
func (r *Observer) subscriptionTaken(ctx context.Context, sub, promoCodeID string) (bool, error) {
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

func (r *Observer) stockChanged(ctx context.Context, codeID string, c StockChange) {
	queueStripeSwitch(ctx, r.Store, r.Log, r.Kick, codeID, c)
}
