package promo

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"time"
)

// Redeemer applies codes to subscriptions (DESIGN.md "Redemption rules").
//
// Every apply follows the same protocol so that it holds across replicas and
// crashes and nothing is counted twice:
//
//  1. cheap checks from Redis and the Stripe subscription (no stock taken);
//  2. MarkDue, then Reserve: one script checks the code and the customer and
//     takes a unit of stock; the mark lets the sweeper find the reservation
//     if this process dies;
//  3. the Stripe call, with an idempotency key derived from the request's
//     Idempotency-Key and the redemption ID;
//  4. Confirm (Stripe attached the discount) or Finish (Stripe refused:
//     released, stock back). When Stripe's answer is lost the subscription is
//     read back before deciding; if that fails too, the reservation stays
//     for the sweeper, which decides from Stripe after the lease.
//
// A retry with the same Idempotency-Key finds its own reservation (Owner)
// and repeats the same Stripe call, which Stripe replays.
type Redeemer struct {
	Store  RedemptionStore
	Stripe BillingGateway
	Clock  Clock
	Log    *slog.Logger
	NewID  func() string // "rd_" + sortable unique suffix
	// Lease is how long a reservation is held before the sweeper may resolve
	// it; it must exceed the longest request.
	Lease time.Duration
	// LockTTL bounds how long an apply holds its subscription's lock.
	LockTTL time.Duration
	// Kick, when set, is told about codes whose Stripe promotion code must
	// be switched on or off (after NeedsStripeSync recorded it).
	Kick func(promoCodeID string)
	// CampaignKick, when set, wakes the campaign worker (a mirrored code's
	// promotion code to switch off).
	CampaignKick func()
	// Plans, when set, expands the plans of a code that refuses the price
	// (validate's eligible_plans); a PlanCache in the service.
	Plans PlanReader
}

// ApplyResult is the outcome of a subscribe or an apply.
type ApplyResult struct {
	Code         *PromoCode // nil when no code was given
	Redemption   *Redemption
	Subscription *Subscription
}

// SubscribeInput is POST /v1/subscriptions.
type SubscribeInput struct {
	Customer  string
	Price     string
	Quantity  int64 // 0 = 1
	PromoCode string
	Metadata  map[string]string
}

// MaxQuantity bounds a subscription's quantity.
const MaxQuantity = 1_000_000

// Subscribe creates a Stripe subscription, with the promo code's discount on
// its first invoice when one is given. One Stripe call.
func (r *Redeemer) Subscribe(ctx context.Context, in SubscribeInput, requestKey string) (*ApplyResult, error) {
	if err := CheckStripeID("customer", in.Customer); err != nil {
		return nil, err
	}
	if err := CheckStripeID("price", in.Price); err != nil {
		return nil, err
	}
	if in.Quantity == 0 {
		in.Quantity = 1
	}
	if in.Quantity < 1 || in.Quantity > MaxQuantity {
		return nil, Invalid("quantity", "quantity must be between 1 and %d", MaxQuantity)
	}
	if err := checkSubscriptionMetadata(in.Metadata); err != nil {
		return nil, err
	}
	Began(ctx)
	spec := SubscriptionSpec{Customer: in.Customer, Price: in.Price, Quantity: in.Quantity, Metadata: copyMetadata(in.Metadata)}
	if in.PromoCode == "" {
		sub, err := r.Stripe.CreateSubscription(ctx, spec, StripeKey(requestKey, "subscription.create"))
		if err != nil {
			return nil, err
		}
		return &ApplyResult{Subscription: sub}, nil
	}

	f, _, err := r.gather(ctx, in.PromoCode, in.Customer, RequestOwner(requestKey), nil, in.Price)
	if err != nil {
		return nil, err
	}
	if err := Decide(f, r.Clock.Now()); err != nil {
		return nil, err
	}
	p := f.Code
	// The code's metadata goes onto memberships created with it (the source
	// API's promise); the request's own metadata wins on a clash.
	md := copyMetadata(p.Metadata)
	for k, v := range in.Metadata {
		md[k] = v
	}
	if len(md)+len(subscriptionMetadataKeys) > StripeMetadataKeys {
		// Only a code created before MaxMetadataKeys was lowered can get here.
		return nil, Invalid("metadata", "metadata and the promo code's metadata together may have at most %d keys",
			StripeMetadataKeys-len(subscriptionMetadataKeys))
	}

	now := r.Clock.Now()
	rd, done, err := r.reserve(ctx, p, &Redemption{ID: r.NewID(), PromoCodeID: p.ID, Customer: in.Customer,
		Source: SourceNewSubscription, UniqueCode: uniqueCode(p)}, requestKey, now)
	if err != nil || done {
		return r.finished(ctx, p, rd, err)
	}
	spec.PromotionCodeID, spec.Metadata = p.Stripe.PromotionCodeID, promoMetadata(md, p, rd)
	if spec.PromotionCodeID == "" {
		spec.CouponID = p.Stripe.CouponID // a campaign code: its campaign's coupon, the code in the metadata
	}
	sub, err := r.Stripe.CreateSubscription(ctx, spec, StripeKey(requestKey, "subscription.create:"+rd.ID))
	if err != nil {
		sub, err = r.settleUnknown(ctx, p, rd, err, func(ctx context.Context) (*Subscription, error) {
			return r.Stripe.FindSubscription(ctx, rd.Customer, MetaRedemptionID, rd.ID)
		})
		if err != nil {
			return nil, err
		}
	}
	return r.confirm(ctx, p, rd, sub, sub.CurrentPeriodStart)
}

// ApplyInput is POST /v1/subscriptions/{id}/promo_code.
type ApplyInput struct {
	Subscription string
	Code         string
	Customer     string // optional: must own the subscription when given
}

// Apply puts a code on an existing subscription without proration: the
// current period is untouched and the next invoice is discounted. Two Stripe
// calls: read the subscription, update it. The subscription is read first:
// ownership is established before anything else is looked at.
func (r *Redeemer) Apply(ctx context.Context, in ApplyInput, requestKey string) (*ApplyResult, error) {
	if err := CheckStripeID("subscription", in.Subscription); err != nil {
		return nil, err
	}
	if in.Customer != "" {
		if err := CheckStripeID("customer", in.Customer); err != nil {
			return nil, err
		}
	}
	if _, err := lookupCodeText(in.Code); err != nil && CodeOf(err) == CodeInvalidRequest {
		return nil, err // no code at all is a malformed request, not a refusal
	}
	Began(ctx)
	sub, err := r.ownedSubscription(ctx, in.Subscription, in.Customer)
	if err != nil {
		return nil, err
	}
	// A subscription's owner never changes and a canceled one stays
	// canceled, so the read may precede the lock; a code applied meanwhile
	// by another request is seen through its claim below.
	unlock, err := r.Store.LockSubscription(ctx, sub.ID, r.LockTTL)
	if err != nil {
		return nil, err
	}
	defer unlock()

	f, held, err := r.gather(ctx, in.Code, sub.Customer, RequestOwner(requestKey), sub, "")
	if err != nil {
		return nil, err
	}
	now := r.Clock.Now()
	if err := Decide(f, now); err != nil {
		return nil, err
	}
	p := f.Code
	if err := checkMetadataRoom(sub); err != nil {
		return nil, err
	}
	id := r.NewID()
	if f.Resuming { // the request's own reservation: resume it under its ID
		id = held.ID
	}
	if err := r.Store.SetClaim(ctx, sub.ID, Claim{PromoCodeID: p.ID, RedemptionID: id}); err != nil {
		return nil, err
	}
	rd, done, err := r.reserve(ctx, p, &Redemption{ID: id, PromoCodeID: p.ID, Customer: sub.Customer,
		Subscription: sub.ID, Source: SourceExistingSubscription, UniqueCode: uniqueCode(p)}, requestKey, now)
	if err != nil {
		r.clearClaim(ctx, sub.ID, id)
		return nil, err
	}
	if rd.ID != id { // an earlier attempt of this request reserved under another ID
		if err := r.Store.SetClaim(ctx, sub.ID, Claim{PromoCodeID: p.ID, RedemptionID: rd.ID}); err != nil {
			return nil, err
		}
	}
	if done {
		return &ApplyResult{Code: p, Redemption: rd, Subscription: sub}, nil
	}
	if ourDiscount(sub, p) == nil {
		md := promoMetadata(nil, p, rd)
		key := StripeKey(requestKey, "subscription.apply:"+rd.ID)
		var updated *Subscription
		var err error
		if p.Stripe.PromotionCodeID != "" {
			updated, err = r.Stripe.ApplyPromotionCode(ctx, sub.ID, p.Stripe.PromotionCodeID, md, key)
		} else { // a campaign code: its campaign's coupon, the code in the metadata
			updated, err = r.Stripe.ApplyCoupon(ctx, sub.ID, p.Stripe.CouponID, md, key)
		}
		if err != nil {
			updated, err = r.settleUnknown(ctx, p, rd, err, func(ctx context.Context) (*Subscription, error) {
				return r.Stripe.GetSubscription(ctx, sub.ID)
			})
			if err != nil {
				return nil, err
			}
		}
		sub = updated
	}
	return r.confirm(ctx, p, rd, sub, sub.CurrentPeriodEnd)
}

// Remove takes the adapter's promo code off a subscription: Stripe's discount
// is deleted and the redemption ends. If no discounted invoice was paid yet
// the unit of stock goes back and the customer may use the code again.
func (r *Redeemer) Remove(ctx context.Context, subscription, requestKey string) (*ApplyResult, error) {
	if err := CheckStripeID("subscription", subscription); err != nil {
		return nil, err
	}
	Began(ctx)
	unlock, err := r.Store.LockSubscription(ctx, subscription, r.LockTTL)
	if err != nil {
		return nil, err
	}
	defer unlock()
	noCode := Errorf(CodeNotFound, "subscription %s has no promo code applied through this service", subscription)
	claim, err := r.Store.Claim(ctx, subscription)
	if errors.Is(err, ErrNotFound) {
		return nil, noCode
	}
	if err != nil {
		return nil, err
	}
	rd, err := r.Store.GetRedemption(ctx, claim.PromoCodeID, claim.RedemptionID)
	if errors.Is(err, ErrNotFound) || (err == nil && !rd.State.Live()) {
		r.clearClaim(ctx, subscription, claim.RedemptionID)
		return nil, noCode
	}
	if err != nil {
		return nil, err
	}
	if _, err := r.Stripe.RemoveDiscount(ctx, subscription, StripeKey(requestKey, "subscription.discount.delete:"+rd.ID)); err != nil {
		return nil, err
	}
	rd, err = r.finish(ctx, rd, ReasonRemoved)
	if err != nil {
		return nil, err
	}
	p, err := r.Store.Get(ctx, rd.PromoCodeID)
	if err != nil {
		return nil, err
	}
	return &ApplyResult{Code: p, Redemption: rd}, nil
}

// ownedSubscription reads the subscription from Stripe and establishes that
// customer (when given) owns it and that it can take a code (CheckOwner).
// Nothing about the subscription is read from Redis before this.
func (r *Redeemer) ownedSubscription(ctx context.Context, id, customer string) (*Subscription, error) {
	sub, err := r.Stripe.GetSubscription(ctx, id)
	if err != nil {
		return nil, err
	}
	if err := CheckOwner(sub, customer); err != nil {
		return nil, err
	}
	return sub, nil
}

// gather reads the Facts Decide needs: the code by the text the customer
// typed (code_not_found), the customer's redemption of it (held, nil when
// none), the subscription's claim when sub is set, and whether the customer
// has paid when the code is for new users only. owner is the request's
// (RequestOwner; "" for validate, which never resumes, and reads through
// the store's ValidateReader when it has one).
func (r *Redeemer) gather(ctx context.Context, codeText, customer, owner string, sub *Subscription, price string) (Facts, *Redemption, error) {
	got, err := r.codeForCustomer(ctx, codeText, customer, owner == "")
	if err != nil {
		return Facts{}, nil, err
	}
	p, held := got.Code, got.Held
	f := Facts{Code: p, Subscription: sub}
	f.Resuming = owner != "" && held != nil && held.Owner == owner
	f.UsedByCustomer = held != nil && !f.Resuming
	switch {
	case sub != nil:
		f.Prices, f.PricesKnown = sub.PriceIDs, true
		claimed, err := r.liveClaim(ctx, sub.ID)
		if err != nil {
			return Facts{}, nil, err
		}
		f.SubscriptionClaimed = claimed != nil && !(f.Resuming && claimed.ID == held.ID)
	case price != "":
		f.Prices, f.PricesKnown = []string{price}, true
	}
	if p.NewUsersOnly && !f.Resuming {
		// A paid invoice seen in a webhook, or the subscription's latest.
		f.CustomerHasPaid = (sub != nil && sub.LatestInvoicePaid) || (got.PaidRead && got.Paid)
		if !f.CustomerHasPaid && !got.PaidRead {
			if f.CustomerHasPaid, err = r.Store.CustomerHasPaid(ctx, customer); err != nil {
				return Facts{}, nil, err
			}
		}
	}
	return f, held, nil
}

// codeForCustomer loads a code by the text a customer typed together with
// the customer's redemption of it (Held, nil when none). For validate it
// reads through the store's ValidateReader when the store has one (the
// code may then come from a snapshot, and the paid mark with it).
func (r *Redeemer) codeForCustomer(ctx context.Context, text, customer string, validate bool) (ValidateRead, error) {
	norm, perr := lookupCodeText(text)
	if perr != nil {
		return ValidateRead{}, perr
	}
	var got ValidateRead
	var err error
	if vr, ok := r.Store.(ValidateReader); ok && validate {
		got, err = vr.ReadForValidate(ctx, norm, customer)
	} else {
		got.Code, got.Held, err = r.Store.GetByCodeForCustomer(ctx, norm, customer)
	}
	if errors.Is(err, ErrNotFound) {
		return ValidateRead{}, errCodeNotFound(norm)
	}
	return got, err
}

// liveClaim returns the live redemption the subscription's claim names, or
// nil (no claim, or a stale one: its redemption ended or was never made).
func (r *Redeemer) liveClaim(ctx context.Context, subscription string) (*Redemption, error) {
	claim, err := r.Store.Claim(ctx, subscription)
	if errors.Is(err, ErrNotFound) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	rd, err := r.Store.GetRedemption(ctx, claim.PromoCodeID, claim.RedemptionID)
	switch {
	case errors.Is(err, ErrNotFound):
		return nil, nil // left by an attempt that died before reserving; the lock says it is over
	case err != nil:
		return nil, err
	case !rd.State.Live():
		return nil, nil
	}
	return rd, nil
}

// reserve marks and makes the reservation. done is true when the request's
// own earlier attempt already got Stripe's confirmation.
func (r *Redeemer) reserve(ctx context.Context, p *PromoCode, rd *Redemption, requestKey string, now time.Time) (*Redemption, bool, error) {
	rd.State, rd.Owner, rd.CreatedAt, rd.LeaseUntil = RedemptionReserved, RequestOwner(requestKey), now, now.Add(r.Lease)
	due := DueReservation{PromoCodeID: p.ID, RedemptionID: rd.ID, LeaseUntil: rd.LeaseUntil}
	if err := r.Store.MarkDue(ctx, due); err != nil {
		return nil, false, err
	}
	got, outcome, err := r.Store.Reserve(ctx, rd, now)
	if err != nil || got.ID != rd.ID {
		r.unmarkDue(ctx, p.ID, rd.ID)
	}
	if err != nil {
		return nil, false, err
	}
	if outcome == Resumed {
		r.Log.InfoContext(ctx, "resuming the request's own reservation", "redemption_id", got.ID, "state", got.State)
	}
	return got, got.State != RedemptionReserved, nil
}

// finished answers a reserve that failed or found the work already done.
func (r *Redeemer) finished(ctx context.Context, p *PromoCode, rd *Redemption, err error) (*ApplyResult, error) {
	if err != nil {
		return nil, err
	}
	sub, err := r.Stripe.GetSubscription(ctx, rd.Subscription)
	if err != nil {
		return nil, err
	}
	return &ApplyResult{Code: p, Redemption: rd, Subscription: sub}, nil
}

// settleUnknown handles a failed Stripe call. A refusal releases the
// reservation. When the outcome is unknown, look reads Stripe back: the
// subscription carrying our discount means the call took effect.
func (r *Redeemer) settleUnknown(ctx context.Context, p *PromoCode, rd *Redemption, cause error,
	look func(context.Context) (*Subscription, error)) (*Subscription, error) {
	if errors.Is(cause, ErrOutcomeUnknown) {
		sub, err := look(ctx)
		if err != nil {
			r.Log.WarnContext(ctx, "Stripe's answer was lost and Stripe cannot be read; the sweeper resolves the reservation after its lease",
				"redemption_id", rd.ID, "promo_code_id", p.ID, "err", err.Error())
			return nil, cause
		}
		if sub != nil && ourDiscount(sub, p) != nil {
			r.Log.InfoContext(ctx, "Stripe applied the discount although its answer was lost", "redemption_id", rd.ID)
			return sub, nil
		}
	}
	if _, err := r.finish(ctx, rd, ReasonStripeRefused); err != nil {
		r.Log.ErrorContext(ctx, "could not release a reservation; the sweeper will", "redemption_id", rd.ID, "err", err.Error())
	}
	return nil, cause
}

// confirm records Stripe's discount on the reservation.
func (r *Redeemer) confirm(ctx context.Context, p *PromoCode, rd *Redemption, sub *Subscription, effective time.Time) (*ApplyResult, error) {
	d := ourDiscount(sub, p)
	if d == nil {
		r.Log.ErrorContext(ctx, "Stripe answered without the discount; releasing the reservation",
			"redemption_id", rd.ID, "subscription", sub.ID)
		if _, err := r.finish(ctx, rd, ReasonStripeRefused); err != nil {
			return nil, err
		}
		return nil, &Error{Code: CodeStripeError, Message: "Stripe did not attach the discount to subscription " + sub.ID}
	}
	// confirmed_at is the discount's start in Stripe, as the webhook path
	// records it, so the line does not depend on which confirms first.
	at := d.Start
	if at.IsZero() {
		at = r.Clock.Now()
	}
	out, change, err := r.Store.Confirm(ctx, p.ID, rd.ID, Confirmation{
		Subscription: sub.ID, DiscountID: d.ID, EffectiveAt: effective, At: at})
	if err != nil {
		return nil, err
	}
	if err := r.Store.SetClaim(ctx, sub.ID, Claim{PromoCodeID: p.ID, RedemptionID: rd.ID}); err != nil {
		return nil, err
	}
	r.unmarkDue(ctx, p.ID, rd.ID)
	r.stockChanged(ctx, p.ID, change)
	if ms, ok := r.Store.(MirrorStore); ok && rd.UniqueCode != "" {
		// A mirrored campaign code taken here: its Stripe promotion code is
		// switched off in the background (best effort, as the stock switch).
		if err := ms.QueueCodeSync(ctx, p.ID, rd.UniqueCode, false); err != nil {
			r.Log.WarnContext(ctx, "could not queue a campaign code's promotion code switch", "campaign_id", p.ID, "err", err.Error())
		} else if r.CampaignKick != nil {
			r.CampaignKick()
		}
	}
	return &ApplyResult{Code: p, Redemption: out, Subscription: sub}, nil
}

// finish ends or releases rd and clears what pointed at it.
func (r *Redeemer) finish(ctx context.Context, rd *Redemption, reason string) (*Redemption, error) {
	// Finishing must happen even if the request was canceled meanwhile.
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
	defer cancel()
	out, change, err := r.Store.Finish(ctx, rd.PromoCodeID, rd.ID, reason, r.Clock.Now())
	if err != nil {
		return nil, err
	}
	if out.Subscription != "" {
		r.clearClaim(ctx, out.Subscription, out.ID)
	}
	r.unmarkDue(ctx, out.PromoCodeID, out.ID)
	r.stockChanged(ctx, out.PromoCodeID, change)
	if queued, err := giveBackCode(ctx, r.Store, out); err != nil {
		r.Log.WarnContext(ctx, "could not queue a given-back campaign code's promotion code switch; the campaign's next status change switches it",
			"campaign_id", out.PromoCodeID, "err", err.Error())
	} else if queued && r.CampaignKick != nil {
		r.CampaignKick()
	}
	return out, nil
}

// giveBackCode queues the Stripe promotion code of the campaign code rd
// took to be switched on again when rd no longer holds it (it ended or was
// released before any paid invoice: the text is free again), if the code
// is mirrored and its campaign active (MirrorStore.QueueGivenBack: checked
// in the same step); the worker (syncCodes) decides from the state of then
// and makes no Stripe call when the promotion code is on already. It is a
// function of rd's state, not of whether rd ended just now, so a repeated
// end (a redelivered webhook) queues again and the switch is never lost.
func giveBackCode(ctx context.Context, s any, rd *Redemption) (bool, error) {
	if rd == nil || rd.UniqueCode == "" || rd.State.Live() || rd.HoldsUse() {
		return false, nil
	}
	ms, ok := s.(MirrorStore)
	if !ok {
		return false, nil
	}
	return true, ms.QueueGivenBack(context.WithoutCancel(ctx), rd.PromoCodeID, rd.UniqueCode)
}

func (r *Redeemer) clearClaim(ctx context.Context, sub, rdID string) {
	if err := r.Store.ClearClaim(context.WithoutCancel(ctx), sub, rdID); err != nil {
		r.Log.WarnContext(ctx, "could not clear a subscription claim; the next apply finds it stale", "subscription", sub, "err", err.Error())
	}
}

func (r *Redeemer) unmarkDue(ctx context.Context, codeID, rdID string) {
	if err := r.Store.UnmarkDue(context.WithoutCancel(ctx), codeID, rdID); err != nil {
		r.Log.WarnContext(ctx, "could not unmark a resolved reservation; the sweeper drops it", "redemption_id", rdID, "err", err.Error())
	}
}

// stockChanged queues the Stripe promotion code switch a script asked for.
func (r *Redeemer) stockChanged(ctx context.Context, codeID string, c StockChange) {
	queueStripeSwitch(ctx, r.Store, r.Log, r.Kick, codeID, c)
}

// queueStripeSwitch records (and kicks the worker about) a code whose Stripe
// promotion code must be switched on or off after a script moved its stock.
func queueStripeSwitch(ctx context.Context, s RedemptionStore, log *slog.Logger, kick func(string), codeID string, c StockChange) {
	if !c.StripeActiveChanged {
		return
	}
	if err := s.NeedsStripeSync(context.WithoutCancel(ctx), codeID); err != nil {
		log.ErrorContext(ctx, "could not queue the Stripe promotion code switch; run reconcile", "promo_code_id", codeID, "err", err.Error())
		return
	}
	if kick != nil {
		kick(codeID)
	}
}

// ourDiscount returns the subscription's discount when it is this code's
// (the coupon's ID is the promo code's ID).
func ourDiscount(sub *Subscription, p *PromoCode) *Discount {
	if sub == nil || sub.Discount == nil || sub.Discount.CouponID != p.Stripe.CouponID {
		return nil
	}
	return sub.Discount
}

// subscriptionMetadataKeys are written by the adapter on subscriptions.
var subscriptionMetadataKeys = []string{MetaPromoCodeID, MetaPromoCode, MetaRedemptionID, MetaRedemptionSource}

// checkMetadataRoom refuses, before anything is reserved, a subscription
// whose own metadata leaves no room for the adapter's keys: Stripe would
// refuse the update. Keys the adapter wrote there before (an earlier code)
// are counted once.
func checkMetadataRoom(sub *Subscription) *Error {
	n := len(sub.Metadata)
	for _, k := range subscriptionMetadataKeys {
		if _, ok := sub.Metadata[k]; !ok {
			n++
		}
	}
	if n <= StripeMetadataKeys {
		return nil
	}
	return &Error{Code: CodeConflict, Param: "subscription", Message: fmt.Sprintf(
		"Subscription %s has %d metadata keys in Stripe; a promo code adds the adapter's %d (%s) and Stripe allows %d per object: remove %d of the subscription's keys first.",
		sub.ID, len(sub.Metadata), len(subscriptionMetadataKeys), strings.Join(subscriptionMetadataKeys, ", "), StripeMetadataKeys, n-StripeMetadataKeys)}
}

// promoMetadata is md plus the links from a subscription to its redemption.
func promoMetadata(md map[string]string, p *PromoCode, rd *Redemption) map[string]string {
	out := copyMetadata(md)
	out[MetaPromoCodeID], out[MetaPromoCode], out[MetaRedemptionID] = p.ID, p.Code, rd.ID
	out[MetaRedemptionSource] = string(rd.Source)
	return out
}

// checkSubscriptionMetadata checks a subscribe request's metadata: at most
// MaxSubscriptionMetadataKeys keys (see the budget in checks.go), Stripe's
// limits on keys and values, none of the adapter's keys.
func checkSubscriptionMetadata(md map[string]string) error {
	if len(md) > MaxSubscriptionMetadataKeys {
		return Invalid("metadata", "metadata may have at most %d keys: the subscription also gets the promo code's metadata (up to %d keys) and the adapter's %d, and Stripe allows %d",
			MaxSubscriptionMetadataKeys, MaxMetadataKeys, len(subscriptionMetadataKeys), StripeMetadataKeys)
	}
	if err := checkMetadataEntries(md); err != nil {
		return err
	}
	for _, k := range []string{MetaRedemptionID, MetaRedemptionSource} {
		if _, ok := md[k]; ok {
			return Invalid("metadata", "metadata key %q is reserved by the adapter", k)
		}
	}
	return nil
}

// SubscriptionRedemption returns the subscription's live redemption
// (reserved, pending or active) and its code; a subscription without one is
// CodeNotFound. When customer is given, a redemption of another customer is
// customer_mismatch, as apply answers for someone else's subscription.
func (r *Redeemer) SubscriptionRedemption(ctx context.Context, subscription, customer string) (*Redemption, *PromoCode, error) {
	if err := CheckStripeID("subscription", subscription); err != nil {
		return nil, nil, err
	}
	if customer != "" {
		if err := CheckStripeID("customer", customer); err != nil {
			return nil, nil, err
		}
	}
	rd, err := r.liveClaim(ctx, subscription)
	if err != nil {
		return nil, nil, err
	}
	if rd == nil {
		return nil, nil, &Error{Code: CodeNotFound, Param: "id",
			Message: "subscription " + subscription + " has no promo code applied through this service"}
	}
	if customer != "" && rd.Customer != customer {
		return nil, nil, errCustomerMismatch()
	}
	p, err := r.Store.Get(ctx, rd.PromoCodeID)
	if err != nil {
		return nil, nil, err
	}
	return rd, p, nil
}

// ListRedemptions returns a page of one code's ledger, newest first.
// startingAfter must name a ledger line of that code (400 otherwise).
func (r *Redeemer) ListRedemptions(ctx context.Context, promoCodeID string, limit int, startingAfter string) (Page[*Redemption], error) {
	if startingAfter != "" {
		if _, err := r.Store.GetRedemption(ctx, promoCodeID, startingAfter); errors.Is(err, ErrNotFound) {
			return Page[*Redemption]{}, errUnknownCursor(startingAfter, "redemption")
		} else if err != nil {
			return Page[*Redemption]{}, err
		}
	}
	return r.Store.ListRedemptions(ctx, promoCodeID, limit, startingAfter)
}
