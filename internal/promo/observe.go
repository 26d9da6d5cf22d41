package promo

import (
	"context"
	"errors"
	"log/slog"
	"strings"
	"time"
)

// Observer applies what Stripe reports (webhook events) to the ledger,
// stock and counters. Stripe is the system of record for discounts: a
// discount made outside the adapter (Checkout, the Dashboard) on one of our
// codes is recorded and takes stock, and any rule it broke is flagged.
//
// Every handler is safe to run more than once and in any order, and every
// field it writes is a function of Stripe's facts, not of the order in which
// the events arrive: the store's scripts are keyed by discount and invoice
// IDs, times come from Stripe's timestamps (the discount's start, the
// invoice's paid_at, the subscription's canceled_at, the event's creation),
// ends follow the precedence documented at ReasonRemoved, and a discount
// seen ending first is recorded as if its start had been seen first.
type Observer struct {
	Store   ObserveStore
	Catalog *Catalog
	Log     *slog.Logger
	Kick    func(promoCodeID string)
	// Billing reads a subscription's metadata when a discount may belong to
	// a new subscription's reservation (ErrSubscriptionUnread). Without it a
	// reservation is matched by customer alone, except on a campaign that is
	// not once per customer (no customer index): there a discount the event
	// does not tie to its line is recorded as made outside the adapter.
	// The service always sets it.
	Billing BillingGateway
	// Campaigns follows a campaign's coupon deleted in Stripe; without it
	// the event is ignored.
	Campaigns *Campaigns
	// CampaignKick, when set, wakes the campaign worker (a mirrored
	// campaign code's promotion code to switch).
	CampaignKick func()
}

// ours reports whether a Stripe coupon can mirror one of our codes (coupon
// ID = promo code ID). Whether the code exists is the store's to say: its
// scripts answer ErrNotFound, which unknown() turns into a warning.
func ours(couponID string) bool {
	return strings.HasPrefix(couponID, "pc_") || strings.HasPrefix(couponID, "cmp_")
}

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
		At: d.At, Start: start, NewID: RedemptionIDFor(d.DiscountID, start), Once: d.CouponDuration == Once,
		CouponTimesRedeemed: d.CouponTimesRedeemed, SubscriptionRedemptionID: d.SubscriptionRedemptionID,
		SubscriptionRead: d.SubscriptionRead, MatchByCustomer: r.Billing == nil}
}

// withSubscription runs a store step; when the store needs to know which
// adapter redemption made the discount's subscription, it reads the
// subscription's metadata from Stripe and runs the step again.
func (r *Observer) withSubscription(ctx context.Context, od ObservedDiscount, step func(ObservedDiscount) error) error {
	err := step(od)
	if !errors.Is(err, ErrSubscriptionUnread) {
		return err
	}
	sub, err := r.Billing.GetSubscription(ctx, od.Subscription)
	if err != nil {
		return err
	}
	od.SubscriptionRead, od.SubscriptionRedemptionID = true, sub.Metadata[MetaRedemptionID]
	return step(od)
}

// FlagCustomerDiscount marks a ledger line whose Stripe discount sits on the
// customer (subscription null), as `stripe trigger customer.discount.created`
// or the Dashboard's "apply coupon to customer" makes it. Stripe applies such
// a discount to every invoice of the customer that has no discount of its own,
// on any subscription and on one-off invoices, so the adapter's
// per-subscription rules (one code per subscription, plan_ids,
// existing_memberships_only) cannot hold for it. It is recorded like any
// discount made outside the adapter (one use of the customer, a unit of
// stock, invoices carrying it counted) and flagged with this, whichever of
// its events arrives first.
const FlagCustomerDiscount = "customer_discount"

// DiscountCreated: Stripe attached a discount.
func (r *Observer) DiscountCreated(ctx context.Context, d DiscountEvent) error {
	if !ours(d.CouponID) {
		return nil
	}
	rd, err := r.discountCreated(ctx, d)
	if err != nil {
		return err
	}
	return r.flagCustomerDiscount(ctx, d, rd)
}

// flagCustomerDiscount flags rd when its discount is on the customer.
func (r *Observer) flagCustomerDiscount(ctx context.Context, d DiscountEvent, rd *Redemption) error {
	if rd == nil || d.Subscription != "" || rd.Subscription != "" {
		return nil
	}
	r.Log.WarnContext(ctx, "a discount on a customer, not a subscription, uses one of our codes: it applies to all the customer's invoices; recorded and flagged",
		"promo_code_id", d.CouponID, "redemption_id", rd.ID, "customer", d.Customer, "stripe_discount_id", d.DiscountID)
	_, err := r.Store.FlagRedemption(ctx, d.CouponID, rd.ID, FlagCustomerDiscount)
	return err
}

func (r *Observer) discountCreated(ctx context.Context, d DiscountEvent) (*Redemption, error) {
	var rd *Redemption
	var how ObserveOutcome
	var change StockChange
	err := r.withSubscription(ctx, r.observed(&d), func(od ObservedDiscount) (err error) {
		rd, how, change, err = r.Store.ObserveDiscount(ctx, d.CouponID, od)
		return err
	})
	if err != nil {
		return nil, r.unknown(ctx, d.CouponID, err)
	}
	r.stockChanged(ctx, d.CouponID, change)
	if rd != nil && rd.UniqueCode == "" && d.PromotionCodeID != "" && strings.HasPrefix(d.CouponID, "cmp_") {
		// A campaign code's promotion code (Stripe Checkout): the line takes
		// the code it names, whichever event showed the discount first.
		if ms, ok := r.Store.(MirrorStore); ok {
			got, err := ms.AttributeCampaignCode(ctx, d.CouponID, rd.ID, d.PromotionCodeID)
			if err != nil {
				return nil, err
			}
			if got != nil {
				rd = got
			}
		}
	}
	return rd, r.afterObserve(ctx, d.CouponID, rd, how)
}

// DiscountUpdated: the subscription's discount was replaced; prev is the
// one it replaced (nil when the event does not say). A discount made outside
// the adapter that replaced one of our codes' discounts broke the rule of
// one promo code per subscription: it is flagged, whichever of its events
// came first.
func (r *Observer) DiscountUpdated(ctx context.Context, d DiscountEvent, prev *DiscountEvent) error {
	replaced := prev != nil && prev.DiscountID != "" && prev.DiscountID != d.DiscountID
	if replaced {
		if err := r.discountEnded(ctx, *prev, ReasonReplaced); err != nil {
			return err
		}
	}
	if !ours(d.CouponID) {
		return nil
	}
	rd, err := r.discountCreated(ctx, d)
	if err != nil || rd == nil {
		return err
	}
	if err := r.flagCustomerDiscount(ctx, d, rd); err != nil {
		return err
	}
	if replaced && ours(prev.CouponID) && prev.CouponID != d.CouponID && rd.Source == SourceStripe {
		_, err = r.Store.FlagRedemption(ctx, d.CouponID, rd.ID, "subscription_has_promo_code")
	}
	return err
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
	var rd *Redemption
	var change StockChange
	err := r.withSubscription(ctx, r.observed(&d), func(od ObservedDiscount) (err error) {
		rd, change, err = r.Store.EndDiscount(ctx, d.CouponID, od, reason)
		return err
	})
	if err != nil {
		return r.unknown(ctx, d.CouponID, err)
	}
	r.stockChanged(ctx, d.CouponID, change)
	if err := r.codeGivenBack(ctx, rd); err != nil {
		return err
	}
	if rd.Subscription != "" {
		return r.Store.ClearClaim(ctx, rd.Subscription, rd.ID)
	}
	return r.flagCustomerDiscount(ctx, d, rd)
}

// codeGivenBack queues the promotion code switch of a campaign code that
// rd's end gave back (giveBackCode); an error fails the event, so Stripe's
// retry queues it.
func (r *Observer) codeGivenBack(ctx context.Context, rd *Redemption) error {
	queued, err := giveBackCode(ctx, r.Store, rd)
	if queued && err == nil && r.CampaignKick != nil {
		r.CampaignKick()
	}
	return err
}

// InvoicePaid counts a paid invoice: the customer is no longer new, and an
// invoice carrying one of our discounts activates and counts its redemption.
// In the common case (a known redemption) that is the paid customer's mark
// and one script: one round trip when the store is a PaidCounter, two
// otherwise.
func (r *Observer) InvoicePaid(ctx context.Context, e InvoicePaidEvent) error {
	paidAt := e.PaidAt
	if paidAt.IsZero() {
		paidAt = e.At
	}
	mark := e.AmountPaid > 0 && e.Customer != ""
	ourDiscount := e.Discount != nil && ours(e.Discount.CouponID)
	pc, together := r.Store.(PaidCounter)
	together = together && mark && ourDiscount
	if mark && !together {
		if err := r.Store.MarkCustomerPaid(ctx, e.Customer, paidAt.Add(PaidKeep)); err != nil {
			return err
		}
	}
	if !ourDiscount {
		return nil
	}
	od := r.observed(e.Discount)
	od.At = e.At
	if !e.PaidAt.IsZero() {
		od.At = e.PaidAt
	}
	var c Counted
	// markErr is the paid mark's failure when it went with the count: the
	// count's effects are carried through (so a retry, which finds the
	// invoice counted, misses none of them), then the event fails, so
	// Stripe's retry sets the mark.
	var markErr error
	err := r.withSubscription(ctx, od, func(od ObservedDiscount) (err error) {
		inv := PaidInvoice{InvoiceID: e.InvoiceID, Discount: od, Currency: e.Currency, Amount: e.DiscountAmount}
		if together {
			together = false // a second step (after reading the subscription) counts alone
			c, markErr, err = pc.MarkPaidAndCountInvoice(ctx, e.Customer, paidAt.Add(PaidKeep), e.Discount.CouponID, inv)
			return err
		}
		c, err = r.Store.CountInvoice(ctx, e.Discount.CouponID, inv)
		return err
	})
	if err != nil {
		if markErr != nil {
			return markErr
		}
		return r.unknown(ctx, e.Discount.CouponID, err)
	}
	if err := r.invoiceCounted(ctx, e, c); err != nil {
		return err
	}
	return markErr
}

// invoiceCounted is what follows a paid invoice's count.
func (r *Observer) invoiceCounted(ctx context.Context, e InvoicePaidEvent, c Counted) error {
	r.stockChanged(ctx, e.Discount.CouponID, c.Change)
	if rd := c.Redemption; c.New && rd != nil && rd.UniqueCode != "" && !rd.State.Live() {
		// A paid invoice seen after its line ended: the line used the code
		// after all and holds it for good; a promotion code switched on when
		// the code seemed given back is switched off again.
		if ms, ok := r.Store.(MirrorStore); ok {
			if err := ms.QueueCodeSync(ctx, e.Discount.CouponID, rd.UniqueCode, false); err != nil {
				return err
			}
			if r.CampaignKick != nil {
				r.CampaignKick()
			}
		}
	}
	return r.afterObserve(ctx, e.Discount.CouponID, c.Redemption, c.How)
}

// SubscriptionDeleted ends the redemption of a canceled subscription at
// its canceled_at. The discount the subscription still had ends like a
// deleted one (EndDiscount): recorded even when its start was not seen yet,
// and on a line that already ended it counts when it is the earliest end
// (StripeEndPrecedence). A live line of another of our codes that the
// subscription's claim or metadata names (its discount gone already, the
// event of that not seen yet) ends too.
func (r *Observer) SubscriptionDeleted(ctx context.Context, e SubscriptionDeletedEvent) error {
	at := e.CanceledAt
	if at.IsZero() {
		at = e.At
	}
	seen := map[string]bool{}
	if e.Discount != nil && ours(e.Discount.CouponID) {
		d := *e.Discount
		d.At = at
		if err := r.discountEnded(ctx, d, ReasonCanceled); err != nil {
			return err
		}
		seen[d.CouponID] = true
	}
	codes := []string{e.CouponID, e.Metadata[MetaPromoCodeID]}
	if c, err := r.Store.Claim(ctx, e.Subscription); err == nil {
		codes = append(codes, c.PromoCodeID)
	} else if !errors.Is(err, ErrNotFound) {
		return err
	}
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
		rd, change, err := r.Store.EndFromStripe(ctx, id, rd.ID, ReasonCanceled, at)
		if err != nil {
			return err
		}
		if err := r.codeGivenBack(ctx, rd); err != nil {
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
// in step (read back from Stripe, so an old event cannot win): a promo
// code's (Catalog.ObservePromotionCode) or a mirrored campaign code's.
func (r *Observer) PromotionCodeUpdated(ctx context.Context, promotionCodeID, couponID string) error {
	switch {
	case strings.HasPrefix(couponID, "pc_"):
		return r.unknown(ctx, couponID, r.Catalog.ObservePromotionCode(ctx, couponID, promotionCodeID))
	case strings.HasPrefix(couponID, "cmp_"):
		return r.campaignPromotionCodeUpdated(ctx, couponID, promotionCodeID)
	}
	return nil
}

// campaignPromotionCodeUpdated follows a mirrored campaign code's promotion
// code switched in Stripe (the Dashboard) as a promo code's is followed: the
// adapter reads the promotion code back and records the active flag Stripe
// shows (stripe_promotion_code_active in the codes list), unless the
// adapter switched the code since the read (its own record is newer), and
// logs a warning when the flag is not what the adapter wants. It changes
// nothing else: the adapter applies campaign codes with the campaign's
// coupon, so a code switched off in Stripe refuses Stripe Checkout only and
// is still redeemed through the adapter; the adapter does not switch it
// back by itself, but its next switch of the code (a redemption, a code
// given back, a status change of the campaign) sets the flag it wants.
func (r *Observer) campaignPromotionCodeUpdated(ctx context.Context, campaignID, promotionCodeID string) error {
	ms, ok := r.Store.(MirrorStore)
	if !ok || r.Catalog == nil {
		return nil
	}
	code, err := ms.CampaignPromotionCode(ctx, campaignID, promotionCodeID)
	if errors.Is(err, ErrNotFound) {
		r.Log.WarnContext(ctx, "a promotion code on a campaign's coupon that this service did not make (or not yet recorded); ignored",
			"campaign_id", campaignID, "promotion_code_id", promotionCodeID)
		return nil
	}
	if err != nil {
		return err
	}
	active, err := r.Catalog.Gateway.GetPromotionCode(ctx, promotionCodeID)
	if err != nil {
		return err
	}
	recorded, err := ms.ObservePromotionCodeActive(ctx, campaignID, code, active)
	if err != nil || !recorded || (code.Known && code.Active == active) || r.Campaigns == nil {
		return err
	}
	c, err := r.Campaigns.Get(ctx, campaignID)
	if err != nil {
		return r.unknown(ctx, campaignID, err)
	}
	want, err := r.Campaigns.wantActive(ctx, c, code.Text)
	if err != nil {
		return err
	}
	if want != active {
		r.Log.WarnContext(ctx, "a campaign code's Stripe promotion code was switched outside the adapter", "campaign_id", campaignID,
			"code", code.Text, "promotion_code_id", promotionCodeID, "stripe_active", active, "adapter_wants", want)
	}
	return nil
}

// CouponDeleted makes the code, or the campaign and every code of it,
// inactive for good: Stripe can no longer apply it (Catalog.CouponDeleted,
// Campaigns.CouponDeleted).
func (r *Observer) CouponDeleted(ctx context.Context, couponID string) error {
	switch {
	case strings.HasPrefix(couponID, "pc_"):
		return r.unknown(ctx, couponID, r.Catalog.CouponDeleted(ctx, couponID))
	case strings.HasPrefix(couponID, "cmp_") && r.Campaigns != nil:
		return r.unknown(ctx, couponID, r.Campaigns.CouponDeleted(ctx, couponID))
	}
	return nil
}

// afterObserve follows up a line that became live just now: the sweeper's
// mark of a confirmed reservation goes, and the subscription's claim points
// at the line unless another code's live redemption with a later discount
// holds it (Stripe keeps one discount per subscription: the latest).
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
		taken, err := r.subscriptionTaken(ctx, rd)
		if err != nil {
			return err
		}
		if !taken {
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
// rd's subscription: an apply in flight, or a discount that started after
// rd's.
func (r *Observer) subscriptionTaken(ctx context.Context, rd *Redemption) (bool, error) {
	c, err := r.Store.Claim(ctx, rd.Subscription)
	if errors.Is(err, ErrNotFound) || (err == nil && c.PromoCodeID == rd.PromoCodeID) {
		return false, nil
	}
	if err != nil {
		return false, err
	}
	other, err := r.Store.GetRedemption(ctx, c.PromoCodeID, c.RedemptionID)
	if errors.Is(err, ErrNotFound) {
		return false, nil
	}
	if err != nil {
		return false, err
	}
	return other.State == RedemptionReserved || (other.State.Live() && later(other.ConfirmedAt, rd.ConfirmedAt)), nil
}

// later reports whether a is after b (a zero time is not known: never later).
func later(a, b time.Time) bool { return !a.IsZero() && a.After(b) }

func (r *Observer) stockChanged(ctx context.Context, codeID string, c StockChange) {
	queueStripeSwitch(ctx, r.Store, r.Log, r.Kick, codeID, c)
}
