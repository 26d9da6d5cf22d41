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
