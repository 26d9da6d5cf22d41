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
}

// Validate runs every redemption rule without side effects: nothing is
// reserved. Without a price or subscription it makes no Stripe call; with
// one it makes one (Stripe's upcoming invoice with the discount applied),
// which also lets Stripe check its own promotion code rules.
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
	p, held, err := r.codeForCustomer(ctx, in.Code, in.Customer)
	if err != nil {
		return refused(nil, err)
	}
	res, err := r.checkWithoutStripe(ctx, p, held != nil, in)
	if err != nil || !res.Valid || (in.Price == "" && in.Subscription == "") {
		return res, err
	}

	pv, err := r.Stripe.PreviewInvoice(ctx, PreviewSpec{Customer: in.Customer, Subscription: in.Subscription,
		Price: in.Price, PromotionCodeID: p.Stripe.PromotionCodeID})
	if err != nil {
		return refused(p, err)
	}
	if pv.Customer != in.Customer {
		return refused(p, errCustomerMismatch())
	}
	if err := CheckPlan(p, pv.PriceIDs); err != nil {
		return refused(p, err)
	}
	res.Preview = pv
	return res, nil
}

// codeForCustomer loads a code by the text a customer typed (as code does)
// together with the customer's redemption of it (nil when none).
func (r *Redeemer) codeForCustomer(ctx context.Context, text, customer string) (*PromoCode, *Redemption, error) {
	norm, perr := lookupCodeText(text)
	if perr != nil {
		return nil, nil, perr
	}
	p, rd, err := r.Store.GetByCodeForCustomer(ctx, norm, customer)
	if errors.Is(err, ErrNotFound) {
		return nil, nil, errCodeNotFound(norm)
	}
	return p, rd, err
}

// checkWithoutStripe applies every rule Redis can decide.
func (r *Redeemer) checkWithoutStripe(ctx context.Context, p *PromoCode, usedByCustomer bool, in ValidateInput) (*ValidateResult, error) {
	if err := CheckRedeemable(p, r.Clock.Now()); err != nil {
		return refused(p, err)
	}
	if err := CheckAudience(p, false, in.Subscription != ""); err != nil {
		return refused(p, err)
	}
	if in.Subscription == "" && in.Price != "" {
		if err := CheckPlan(p, []string{in.Price}); err != nil {
			return refused(p, err)
		}
	}
	if usedByCustomer {
		return refused(p, errAlreadyRedeemed())
	}
	if in.Subscription != "" {
		if _, err := r.checkClaim(ctx, in.Subscription, p.ID, ""); err != nil {
			return refused(p, err)
		}
	}
	if err := r.checkNewUser(ctx, p, in.Customer, false); err != nil {
		return refused(p, err)
	}
	return &ValidateResult{Valid: true, Code: p}, nil
}

// refused turns a redemption refusal into an invalid result; any other
// error (Redis or Stripe unavailable, a malformed request) stays an error.
func refused(p *PromoCode, err error) (*ValidateResult, error) {
	var pe *Error
	if errors.As(err, &pe) && isRefusal(pe.Code) {
		return &ValidateResult{Valid: false, Reason: pe, Code: p}, nil
	}
	return nil, err
}

// isRefusal reports the codes that say "this code cannot be used here".
func isRefusal(c Code) bool {
	switch c {
	case CodeCodeNotFound, CodeCodeInactive, CodeCodeExpired, CodeCodeExhausted, CodePlanNotEligible,
		CodeNewUsersOnly, CodeExistingMembershipsOnly, CodeAlreadyRedeemedByCustomer,
		CodeSubscriptionHasPromoCode, CodeSubscriptionNotFound, CodeCustomerMismatch:
		return true
	}
	return false
}
