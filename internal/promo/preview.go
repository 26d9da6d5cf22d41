package promo

import (
	"context"
	"errors"
)

// ValidateInput is POST /v1/promo_codes/validate.
type ValidateInput struct {
	Code         string
	Customer     string
	Price        string // optional: preview a new subscription to this price
	Subscription string // optional: preview the next invoice of this subscription
}

// ValidateResult says whether the code would be accepted now. Reason is the
// refusal the apply endpoints would give (its Code and Message).
type ValidateResult struct {
	Valid   bool
	Reason  *Error
	Code    *PromoCode      // set when the code exists
	Preview *InvoicePreview // set when a price or subscription was given and the code is valid
	// EligiblePlans are the plans the code applies to, when the reason is
	// plan_not_eligible (so the page can offer them) and Redeemer.Plans is set.
	EligiblePlans []Plan
}

// Validate runs every redemption rule without side effects: nothing is
// reserved. It decides exactly as Apply and Subscribe do (CheckOwner, then
// Decide; see rules.go), so its reason is the error they would answer.
// Without a price or subscription it makes no Stripe call. With a
// subscription it reads it first (ownership before anything else); with a
// price or subscription it then asks Stripe for the upcoming invoice with
// the discount applied, which also lets Stripe check its own promotion code
// rules.
//
// Validate is advisory: when the store is a ValidateReader it reads the
// code's record from a per-replica snapshot, so a change another replica
// made to the code's status, stock or expiry may show up to the snapshot's
// max age late (VALIDATE_CODE_MAX_AGE); the replica's own changes and the
// customer's own redemptions show at once. Apply and Subscribe decide on
// Redis itself.
func (r *Redeemer) Validate(ctx context.Context, in ValidateInput) (*ValidateResult, error) {
	if err := CheckStripeID("customer", in.Customer); err != nil {
		return nil, err
	}
	for _, f := range [...]struct{ param, v string }{{"price", in.Price}, {"subscription", in.Subscription}} {
		if f.v != "" {
			if err := CheckStripeID(f.param, f.v); err != nil {
				return nil, err
			}
		}
	}
	if _, err := lookupCodeText(in.Code); err != nil && CodeOf(err) == CodeInvalidRequest {
		return nil, err
	}
	var sub *Subscription
	if in.Subscription != "" {
		var err error
		if sub, err = r.ownedSubscription(ctx, in.Subscription, in.Customer); err != nil {
			return refused(nil, err)
		}
	}
	price := in.Price
	if sub != nil {
		price = "" // the subscription's own prices are checked
	}
	f, _, err := r.gather(ctx, in.Code, in.Customer, "", sub, price)
	if err != nil {
		return refused(nil, err)
	}
	p := f.Code
	if err := Decide(f, r.Clock.Now()); err != nil {
		res, rerr := refused(p, err)
		if rerr == nil && res.Reason.Code == CodePlanNotEligible {
			res.EligiblePlans = r.eligiblePlans(ctx, p)
		}
		return res, rerr
	}
	if sub != nil {
		if err := checkMetadataRoom(sub); err != nil {
			return nil, err // apply's answer: not a refusal of the code, an error
		}
	}
	res := &ValidateResult{Valid: true, Code: p}
	if in.Price == "" && in.Subscription == "" {
		return res, nil
	}
	pv, err := r.Stripe.PreviewInvoice(ctx, PreviewSpec{Customer: in.Customer, Subscription: in.Subscription,
		Price: price, PromotionCodeID: p.Stripe.PromotionCodeID, CouponID: campaignCoupon(p)})
	if err != nil {
		return refused(p, err)
	}
	res.Preview = pv
	return res, nil
}

// eligiblePlans expands the plans p applies to. Stripe failing to answer
// does not change the verdict: the list is then left out (and logged).
func (r *Redeemer) eligiblePlans(ctx context.Context, p *PromoCode) []Plan {
	if r.Plans == nil || len(p.PlanIDs) == 0 {
		return nil
	}
	plans, err := r.Plans.Plans(ctx, p.PlanIDs)
	if err != nil {
		r.Log.WarnContext(ctx, "could not read the plans of a code for eligible_plans", "promo_code_id", p.ID, "err", err.Error())
		return nil
	}
	return plans
}

// refused turns a redemption refusal into an invalid result; any other
// error (Redis or Stripe unavailable, a malformed request) stays an error.
func refused(p *PromoCode, err error) (*ValidateResult, error) {
	var pe *Error
	if errors.As(err, &pe) && IsRefusal(pe.Code) {
		return &ValidateResult{Valid: false, Reason: pe, Code: p}, nil
	}
	return nil, err
}

// IsRefusal reports the codes that say "this code cannot be used here".
func IsRefusal(c Code) bool {
	switch c {
	case CodeCodeNotFound, CodeCodeInactive, CodeCodeExpired, CodeCodeExhausted, CodePlanNotEligible,
		CodeNewUsersOnly, CodeExistingMembershipsOnly, CodeAlreadyRedeemedByCustomer,
		CodeSubscriptionHasPromoCode, CodeSubscriptionNotFound, CodeCustomerMismatch:
		return true
	}
	return false
}
