package stripegw

import (
	"context"
	"errors"
	"net/http"
	"strings"

	"github.com/stripe/stripe-go/v76"

	"github.com/billing-adapter/billing-adapter/internal/promo"
)

// Stripe's refusals of a redemption call are given their domain meaning here,
// from Stripe's structured fields and a re-read of the objects, never from
// the words of its message (DESIGN.md).
//
// What Stripe documents, and so what this relies on:
//   - Error codes (docs.stripe.com/error-codes; the `code` enum of the
//     2023-10-16 OpenAPI spec that stripe-go's ErrorCode constants come from):
//     `resource_missing` ("the ID provided is not valid"; param names the
//     parameter, `id` the object in the URL path), `coupon_expired` ("the
//     coupon provided for a subscription or order has expired") and
//     `invoice_upcoming_none`. No code exists for a promotion code Stripe will
//     not redeem (inactive, expired, used up, another customer's, first-time
//     only): that is a 400 `invalid_request_error` whose param names the
//     promotion code, and only its message says why.
//   - So the why is read back, with the field meanings of Stripe's API
//     reference. Promotion code: `active` ("only active if the coupon is also
//     valid"), `expires_at` ("date at which the promotion code can no longer
//     be redeemed"), `max_redemptions` and `times_redeemed`, `customer` ("the
//     customer that this promotion code can be used by"),
//     `restrictions.first_time_transaction` ("only redeemed for customers
//     without any successful payments or invoices"). Its coupon (always
//     embedded): `valid` ("whether this coupon can still be applied to a
//     customer"), `redeem_by` ("date after which the coupon can no longer be
//     redeemed"), `max_redemptions` and `times_redeemed`, `deleted`.
//   - Time is Stripe's: a customer on a test clock lives at the clock's
//     `frozen_time`; otherwise the refusal's HTTP Date header (Stripe's
//     clock). Without either, expiry cannot be decided and is not guessed.
//
// Whatever the re-read cannot explain, or a re-read that fails, stays the
// 502 stripe_error that translate made.

// opCustomerRetrieve is the metric operation of the refusal re-read of a
// customer.
const opCustomerRetrieve = "customer.retrieve"

// redemption is what a subscription call knows about a redemption it sent:
// the promotion code and who redeems it (the customer, or the subscription
// whose customer it is). The zero value is a call without a promotion code.
type redemption struct {
	promotionCode string
	customer      string
	subscription  string
}

// redemptionError gives a Stripe refusal of a subscription call its domain
// meaning: an unknown subscription, customer or price, or a refused
// promotion code. Everything else stays as translate made it (502).
func (g *Gateway) redemptionError(ctx context.Context, err error, rd redemption) error {
	se := stripeErr(err)
	if se == nil {
		return err
	}
	refuse := func(c promo.Code) error {
		e := promo.Refuse(c)
		e.StripeRequestID, e.StripeCode, e.Err = se.RequestID, string(se.Code), se
		return e
	}
	param := se.Param
	switch {
	case se.Code == stripe.ErrorCodeResourceMissing && (param == "subscription" || param == "id"):
		return refuse(promo.CodeSubscriptionNotFound)
	case se.Code == "invoice_upcoming_none":
		return refuse(promo.CodeSubscriptionNotFound)
	case se.Code == stripe.ErrorCodeResourceMissing && param == "customer":
		return stripeInvalid("customer", se)
	case se.Code == stripe.ErrorCodeResourceMissing && strings.Contains(param, "price"):
		return stripeInvalid("price", se)
	case rd.promotionCode == "" || !refusesDiscount(se):
		return err
	}
	code, ok := g.explainRefusal(ctx, se, rd)
	if se.Code == stripe.ErrorCodeCouponExpired && code != promo.CodeCodeExhausted {
		// Stripe's own code says it; the re-read only tells a coupon that is
		// used up (no longer valid, which the code also covers) apart.
		code, ok = promo.CodeCodeExpired, true
	}
	if !ok {
		return err
	}
	return refuse(code)
}

// refusesDiscount reports a refusal that may be about the discount: a 400
// invalid_request_error whose param names the promotion code, a discount or
// the coupon (or nothing), and whose code does not say the request was
// malformed (parameter_*) or named a missing object.
func refusesDiscount(se *stripe.Error) bool {
	if se.Type != stripe.ErrorTypeInvalidRequest || se.HTTPStatusCode != http.StatusBadRequest ||
		se.Code == stripe.ErrorCodeResourceMissing || strings.HasPrefix(string(se.Code), "parameter") {
		return false
	}
	p := se.Param
	return p == "" || p == "promotion_code" || p == "coupon" || strings.HasPrefix(p, "discounts")
}

// explainRefusal reads the promotion code (with its coupon) back, and the
// redeeming customer when a rule needs it, and returns the rule they show
// broken. In order: expired (promotion code or coupon, at Stripe's time),
// used up (promotion code or coupon), restricted to another customer,
// inactive (or its coupon no longer valid), and, when nothing else explains
// it, first-time customers only (Stripe refuses a customer with prior
// transactions; the re-read cannot show those, the restriction can). ok is
// false when nothing explains the refusal or a read failed.
func (g *Gateway) explainRefusal(ctx context.Context, se *stripe.Error, rd redemption) (code promo.Code, ok bool) {
	var pc *stripe.PromotionCode
	err := g.call(ctx, opPromotionCodeGet, func() (err error) {
		pc, err = g.api.PromotionCodes.Get(rd.promotionCode, &stripe.PromotionCodeParams{Params: stripe.Params{Context: ctx}})
		return err
	})
	if err == nil && pc.Coupon == nil {
		err = errors.New("promotion code " + pc.ID + " came without its coupon")
	}
	if err != nil {
		g.log.WarnContext(ctx, "could not read back a promotion code Stripe refused; answering stripe_error",
			"promotion_code", rd.promotionCode, "stripe_request_id", se.RequestID, "error", err)
		return "", false
	}
	cp := pc.Coupon
	restricted := pc.Customer != nil && pc.Customer.ID != ""
	timed := pc.ExpiresAt != 0 || cp.RedeemBy != 0
	var who redeemer
	if restricted || timed {
		if who, err = g.readRedeemer(ctx, rd); err != nil {
			g.log.WarnContext(ctx, "could not read back the customer of a refused promotion code; answering stripe_error",
				"promotion_code", rd.promotionCode, "stripe_request_id", se.RequestID, "error", err)
			return "", false
		}
	}
	now, known := who.clock, who.clock != 0
	if !known {
		now, known = stripeTime(se)
	}
	switch {
	case timed && known && ((pc.ExpiresAt != 0 && now >= pc.ExpiresAt) || (cp.RedeemBy != 0 && now >= cp.RedeemBy)):
		return promo.CodeCodeExpired, true
	case (pc.MaxRedemptions != 0 && pc.TimesRedeemed >= pc.MaxRedemptions) ||
		(cp.MaxRedemptions != 0 && cp.TimesRedeemed >= cp.MaxRedemptions):
		return promo.CodeCodeExhausted, true
	case restricted && pc.Customer.ID != who.customer:
		return promo.CodeCustomerMismatch, true
	case !pc.Active || !cp.Valid || cp.Deleted:
		return promo.CodeCodeInactive, true
	case timed && !known:
		return "", false // it may have expired: do not guess another reason
	case pc.Restrictions != nil && pc.Restrictions.FirstTimeTransaction:
		return promo.CodeNewUsersOnly, true
	}
	return "", false
}

// redeemer is the customer a redemption is for and its time.
type redeemer struct {
	customer string
	clock    int64 // frozen_time of the customer's test clock (Unix); 0 = none
}

// readRedeemer reads the redeeming customer (or the subscription, for its
// customer) with its test clock: one call.
func (g *Gateway) readRedeemer(ctx context.Context, rd redemption) (redeemer, error) {
	switch {
	case rd.subscription != "":
		params := &stripe.SubscriptionParams{Params: stripe.Params{Context: ctx}}
		params.AddExpand("test_clock")
		var sub *stripe.Subscription
		err := g.call(ctx, opSubscriptionRetrieve, func() (err error) {
			sub, err = g.api.Subscriptions.Get(rd.subscription, params)
			return err
		})
		if err != nil {
			return redeemer{}, err
		}
		if sub.Customer == nil || sub.Customer.ID == "" {
			return redeemer{}, errors.New("subscription " + sub.ID + " came without its customer")
		}
		return redeemer{customer: sub.Customer.ID, clock: frozenTime(sub.TestClock)}, nil
	case rd.customer != "":
		params := &stripe.CustomerParams{Params: stripe.Params{Context: ctx}}
		params.AddExpand("test_clock")
		var c *stripe.Customer
		err := g.call(ctx, opCustomerRetrieve, func() (err error) {
			c, err = g.api.Customers.Get(rd.customer, params)
			return err
		})
		if err != nil {
			return redeemer{}, err
		}
		return redeemer{customer: c.ID, clock: frozenTime(c.TestClock)}, nil
	}
	return redeemer{}, errors.New("the call names no customer")
}

func frozenTime(tc *stripe.TestHelpersTestClock) int64 {
	if tc == nil {
		return 0
	}
	return tc.FrozenTime
}

// stripeTime is Stripe's time when it answered se: its Date header.
func stripeTime(se *stripe.Error) (int64, bool) {
	if se.LastResponse == nil {
		return 0, false
	}
	t, err := http.ParseTime(se.LastResponse.Header.Get("Date"))
	if err != nil {
		return 0, false
	}
	return t.Unix(), true
}
