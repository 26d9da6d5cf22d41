package promo

import (
	"slices"
	"strings"
	"time"
)

// The redemption rules (DESIGN.md "Redemption rules") as pure checks. The
// store re-checks the code's state, stock and the customer's use inside the
// reservation script, so these early checks only save a Stripe call; their
// messages are written for the person at the payment page.
//
// Validate, Apply and Subscribe decide with the same two steps, so they give
// the same answer in the same situation:
//
//  1. CheckOwner, on the subscription read from Stripe, before anything about
//     the subscription is read from Redis: subscription_not_found (a canceled
//     one included), then customer_mismatch. A request about another
//     customer's subscription learns nothing else about it.
//  2. Decide, on the Facts gathered from Redis (and the subscription), in the
//     order of the README's table: code_not_found (while gathering),
//     code_inactive, code_expired, code_exhausted, plan_not_eligible,
//     new_users_only, existing_memberships_only,
//     already_redeemed_by_customer (unless the code is a campaign's with
//     once_per_customer: false), subscription_has_promo_code.
//
// Stripe's own checks (the preview, the subscription create or update) come
// after both.

// MaxStripeIDLength bounds customer, price and subscription IDs in requests.
const MaxStripeIDLength = 255

// refusalMessages are the messages of the redemption refusals, written for
// the person at the payment page.
var refusalMessages = map[Code]string{
	CodeCodeNotFound:              "There is no such promo code.",
	CodeCodeInactive:              "This promo code is no longer active.",
	CodeCodeExpired:               "This promo code has expired.",
	CodeCodeExhausted:             "This promo code has been used up.",
	CodePlanNotEligible:           "This promo code does not apply to this plan.",
	CodeNewUsersOnly:              "This promo code is for new customers only.",
	CodeExistingMembershipsOnly:   "This promo code can only be applied to an existing subscription.",
	CodeAlreadyRedeemedByCustomer: "This customer has already used this promo code.",
	CodeSubscriptionHasPromoCode:  "This subscription already has a promo code; remove it first to apply another.",
	CodeSubscriptionNotFound:      "There is no such subscription.",
	CodeCustomerMismatch:          "The subscription does not belong to this customer.",
}

// refusalParams names the request field each refusal is about.
var refusalParams = map[Code]string{
	CodeSubscriptionHasPromoCode: "subscription", CodeSubscriptionNotFound: "subscription", CodeCustomerMismatch: "customer",
}

// Refuse returns the redemption refusal c with its standard message.
func Refuse(c Code) *Error {
	param := refusalParams[c]
	if param == "" {
		param = "code"
	}
	return &Error{Code: c, Param: param, Message: refusalMessages[c]}
}

func refusal(code Code, msg string) *Error {
	e := Refuse(code)
	e.Message = msg
	return e
}

func errCodeNotFound(code string) *Error {
	return refusal(CodeCodeNotFound, "There is no promo code "+code+".")
}

// CheckRedeemable refuses a code that cannot be redeemed at now: not ready
// in Stripe, not active, expired, or out of stock.
func CheckRedeemable(p *PromoCode, now time.Time) *Error {
	switch {
	case p.Stripe.State != SyncReady:
		return refusal(CodeCodeInactive, "This promo code is not available yet.")
	case p.Status != StatusActive:
		return Refuse(CodeCodeInactive)
	case p.Expired(now):
		return refusal(CodeCodeExpired, "This promo code expired on "+p.ExpiresAt.UTC().Format(time.RFC3339)+".")
	case !p.UnlimitedStock && p.Stock <= 0:
		return Refuse(CodeCodeExhausted)
	}
	return nil
}

// CheckPlan refuses a code restricted to plans none of priceIDs is.
func CheckPlan(p *PromoCode, priceIDs []string) *Error {
	if len(p.PlanIDs) == 0 {
		return nil
	}
	for _, id := range priceIDs {
		if slices.Contains(p.PlanIDs, id) {
			return nil
		}
	}
	return Refuse(CodePlanNotEligible)
}

// CheckAudience applies new_users_only (the customer must never have paid)
// and existing_memberships_only (only on an existing subscription).
func CheckAudience(p *PromoCode, customerHasPaid, existingSubscription bool) *Error {
	if p.NewUsersOnly && customerHasPaid {
		return Refuse(CodeNewUsersOnly)
	}
	if p.ExistingMembershipsOnly && !existingSubscription {
		return Refuse(CodeExistingMembershipsOnly)
	}
	return nil
}

func errAlreadyRedeemed() *Error { return Refuse(CodeAlreadyRedeemedByCustomer) }

// CheckOwner establishes that customer (when given) owns sub and that sub can
// still take a code. Someone else's subscription is customer_mismatch
// whatever its state; a canceled (or incomplete_expired) one is
// subscription_not_found: it will never be billed again, so for a promo code
// it is gone.
func CheckOwner(sub *Subscription, customer string) *Error {
	if customer != "" && sub.Customer != customer {
		return errCustomerMismatch()
	}
	switch sub.Status {
	case "canceled", "incomplete_expired":
		return refusal(CodeSubscriptionNotFound, "Subscription "+sub.ID+" is "+sub.Status+" and can no longer take a promo code.")
	}
	return nil
}

// Facts are what Decide looks at, gathered after CheckOwner.
type Facts struct {
	Code *PromoCode
	// Resuming is set when the request's own reservation of the code exists
	// (a retry with the same Idempotency-Key): its rules were decided when it
	// was made and are not applied again.
	Resuming bool
	// UsedByCustomer: the customer holds a redemption of the code (one that
	// is not the request's own; of a campaign: of any of its codes). It
	// refuses only a code that is once per customer (OncePerCustomer).
	UsedByCustomer bool
	// Subscription is the existing subscription the code would go on; nil
	// for a new subscription.
	Subscription *Subscription
	// SubscriptionClaimed: Redis records a live redemption of another
	// request on Subscription.
	SubscriptionClaimed bool
	// Prices the discount would apply to, when PricesKnown (validate
	// without price or subscription does not know them).
	Prices      []string
	PricesKnown bool
	// CustomerHasPaid is only gathered for new_users_only codes.
	CustomerHasPaid bool
}

// Decide applies the redemption rules to f in their documented order and
// returns the first refusal, or nil.
func Decide(f Facts, now time.Time) *Error {
	p, sub := f.Code, f.Subscription
	if f.Resuming {
		// Only what may have changed in Stripe since: a discount that is not
		// ours.
		if sub != nil && sub.Discount != nil && ourDiscount(sub, p) == nil {
			return errSubscriptionHasCode(sub.ID)
		}
		return nil
	}
	if err := CheckRedeemable(p, now); err != nil {
		return err
	}
	if f.PricesKnown {
		if err := CheckPlan(p, f.Prices); err != nil {
			return err
		}
	}
	if err := CheckAudience(p, f.CustomerHasPaid, sub != nil); err != nil {
		return err
	}
	if f.UsedByCustomer && p.OncePerCustomer() {
		return errAlreadyRedeemed()
	}
	if sub != nil && (f.SubscriptionClaimed || sub.Discount != nil) {
		return errSubscriptionHasCode(sub.ID)
	}
	return nil
}

func errSubscriptionHasCode(sub string) *Error {
	return refusal(CodeSubscriptionHasPromoCode, "Subscription "+sub+" already has a promo code; remove it first to apply another.")
}

func errCustomerMismatch() *Error { return Refuse(CodeCustomerMismatch) }

// CheckStripeID checks an ID the caller names (customer, price,
// subscription): required, printable, no spaces or URL delimiters.
func CheckStripeID(param, id string) *Error {
	switch {
	case id == "":
		return Invalid(param, "%s is required", param)
	case len(id) > MaxStripeIDLength:
		return Invalid(param, "%s must be at most %d characters", param, MaxStripeIDLength)
	case strings.ContainsAny(id, " /?#&%\t\r\n"):
		return Invalid(param, "%s must be a Stripe ID such as cus_123", param)
	}
	return nil
}

// lookupCodeText normalizes what a customer typed; text that cannot be a
// code is simply not found (a typo is not a malformed request).
func lookupCodeText(code string) (string, *Error) {
	norm := NormalizeCode(code)
	if norm == "" {
		return "", Invalid("code", "code is required")
	}
	if CheckCodeText(norm) != nil {
		return "", errCodeNotFound(norm)
	}
	return norm, nil
}
