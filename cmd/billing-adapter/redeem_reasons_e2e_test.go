package main

import (
	"net/http"
	"testing"
	"time"

	"github.com/stripe/stripe-go/v76"
)

// reasonStatus is the README's table "What each answer means at the payment
// page": the status of each redemption refusal.
var reasonStatus = map[string]int{
	"code_not_found":               http.StatusNotFound,
	"code_inactive":                http.StatusUnprocessableEntity,
	"code_expired":                 http.StatusUnprocessableEntity,
	"code_exhausted":               http.StatusUnprocessableEntity,
	"plan_not_eligible":            http.StatusUnprocessableEntity,
	"new_users_only":               http.StatusUnprocessableEntity,
	"existing_memberships_only":    http.StatusUnprocessableEntity,
	"already_redeemed_by_customer": http.StatusConflict,
	"subscription_has_promo_code":  http.StatusConflict,
	"subscription_not_found":       http.StatusNotFound,
	"customer_mismatch":            http.StatusForbidden,
}

// validateCode asks POST /v1/promo_codes/validate and returns its answer.
func (s *service) validateCode(t *testing.T, body map[string]any) map[string]any {
	t.Helper()
	r := s.call(t, "POST", "/v1/promo_codes/validate", checkoutSecret, "", body)
	mustStatus(t, r, http.StatusOK)
	return r.json(t)
}

// Validate and the apply endpoints give the same answer for every reason a
// code is refused, each situation set up end to end: validate's reason is
// apply's (or subscribe's) error code, with the status of the README's
// table. Authorization comes first: someone else's subscription is
// customer_mismatch whatever else is true of it; then, when several reasons
// hold, the first in the README's table is given.
func TestValidateAndApplyAgreeOnEveryReason(t *testing.T) {
	s := startService(t, nil)
	pl := s.newPlan(t, "usd", 2000)
	other := s.newPlan(t, "usd", 3000)
	mk := func(code string, extra map[string]any) {
		body := map[string]any{"code": code, "promo_type": "percentage", "amount_off": 10, "stock": 5}
		for k, v := range extra {
			body[k] = v
		}
		s.createCode(t, body)
	}
	mk("OK", nil)
	mk("OTHER", nil)
	mk("OFF", map[string]any{"status": "inactive"})
	mk("EMPTY", map[string]any{"stock": 0})
	mk("PLANONLY", map[string]any{"plan_ids": []string{other.Price}})
	mk("MEMBERS", map[string]any{"existing_memberships_only": true})
	mk("NEWBIES", map[string]any{"new_users_only": true})
	soon := time.Now().UTC().Truncate(time.Second).Add(2 * time.Second)
	mk("SOON", map[string]any{"expiration_datetime": soon.Format(time.RFC3339)})

	// member has paid an invoice of memberSub, a subscription made in Stripe.
	member := s.newCustomer(t, "")
	memberSub := s.newSubscription(t, member, pl.Price).ID
	// stranger owns subscriptions of every kind: with our code, with a
	// discount made in Stripe, canceled.
	stranger := s.newCustomer(t, "")
	strangersWithCode := s.newSubscription(t, stranger, pl.Price).ID
	mustStatus(t, s.apply(t, strangersWithCode, "OTHER", stranger, newKey()), http.StatusOK)
	outside, err := s.Stripe.Coupons.New(&stripe.CouponParams{PercentOff: stripe.Float64(5), Duration: stripe.String("forever")})
	if err != nil {
		t.Fatal(err)
	}
	strangersWithOutsideDiscount := s.newSubscription(t, stranger, pl.Price).ID
	if _, err := s.Stripe.Subscriptions.Update(strangersWithOutsideDiscount, &stripe.SubscriptionParams{Coupon: stripe.String(outside.ID)}); err != nil {
		t.Fatal(err)
	}
	strangersCanceled := s.newSubscription(t, stranger, pl.Price).ID
	if _, err := s.Stripe.Subscriptions.Cancel(strangersCanceled, nil); err != nil {
		t.Fatal(err)
	}
	// used subscribed with OK and has a second subscription without a code.
	used := s.newCustomer(t, "")
	r := s.call(t, "POST", "/v1/subscriptions", checkoutSecret, newKey(),
		map[string]any{"customer": used, "price": pl.Price, "promo_code": "OK"})
	mustStatus(t, r, http.StatusCreated)
	usedFirst := r.json(t)["id"].(string)
	usedSecond := s.newSubscription(t, used, pl.Price).ID
	// used also holds a code of a campaign (once per customer by default)
	// and of one created with once_per_customer: false.
	_, cmpCodes := newReadyCampaign(t, s, 3, nil)
	_, manyCodes := newReadyCampaign(t, s, 3, map[string]any{"once_per_customer": false})
	for _, code := range []string{cmpCodes[0], manyCodes[0]} {
		mustStatus(t, s.call(t, "POST", "/v1/subscriptions", checkoutSecret, newKey(),
			map[string]any{"customer": used, "price": pl.Price, "promo_code": code}), http.StatusCreated)
	}
	time.Sleep(time.Until(soon) + 50*time.Millisecond) // SOON expires; nothing signals the passing of time

	tests := []struct {
		name string
		code string
		// customer and subscription of the apply (and of validate);
		// existing "" means the situation is a new subscription to price.
		customer, existing, price string
		want                      string
	}{
		{"unknown code, existing", "NOSUCH", member, memberSub, "", "code_not_found"},
		{"unknown code, new", "NOSUCH", s.newCustomer(t, ""), "", pl.Price, "code_not_found"},
		{"inactive, existing", "OFF", member, memberSub, "", "code_inactive"},
		{"inactive, new", "OFF", s.newCustomer(t, ""), "", pl.Price, "code_inactive"},
		{"expired, existing", "SOON", member, memberSub, "", "code_expired"},
		{"expired, new", "SOON", s.newCustomer(t, ""), "", pl.Price, "code_expired"},
		{"exhausted, existing", "EMPTY", member, memberSub, "", "code_exhausted"},
		{"exhausted, new", "EMPTY", s.newCustomer(t, ""), "", pl.Price, "code_exhausted"},
		{"other plan, existing", "PLANONLY", member, memberSub, "", "plan_not_eligible"},
		{"other plan, new", "PLANONLY", s.newCustomer(t, ""), "", pl.Price, "plan_not_eligible"},
		{"new users only, member's subscription", "NEWBIES", member, memberSub, "", "new_users_only"},
		{"new users only, member subscribes again", "NEWBIES", member, "", pl.Price, "new_users_only"},
		{"members only on a new subscription", "MEMBERS", s.newCustomer(t, ""), "", pl.Price, "existing_memberships_only"},
		{"used by the customer, another subscription", "OK", used, usedSecond, "", "already_redeemed_by_customer"},
		{"used by the customer, new", "OK", used, "", pl.Price, "already_redeemed_by_customer"},
		{"campaign: the customer's second code, another subscription", cmpCodes[1], used, usedSecond, "", "already_redeemed_by_customer"},
		{"campaign: the customer's second code, new", cmpCodes[1], used, "", pl.Price, "already_redeemed_by_customer"},
		{"campaign without once per customer: the customer's own code again", manyCodes[0], used, usedSecond, "", "code_exhausted"},
		{"campaign without once per customer: a second code on a subscription that has one", manyCodes[1], stranger, strangersWithCode, "", "subscription_has_promo_code"},
		{"subscription has our code", "OK", stranger, strangersWithCode, "", "subscription_has_promo_code"},
		{"subscription has a discount made in Stripe", "OK", stranger, strangersWithOutsideDiscount, "", "subscription_has_promo_code"},
		// Several reasons at once: the first in the README's table wins.
		{"inactive code on a subscription that has a code", "OFF", stranger, strangersWithCode, "", "code_inactive"},
		{"other plan on a subscription that has a code", "PLANONLY", stranger, strangersWithCode, "", "plan_not_eligible"},
		{"used by the customer, on the subscription that has it", "OK", used, usedFirst, "", "already_redeemed_by_customer"},
		{"unknown subscription", "OK", member, "sub_nosuch", "", "subscription_not_found"},
		{"canceled subscription", "OK", stranger, strangersCanceled, "", "subscription_not_found"},
		{"someone else's subscription", "OK", member, usedSecond, "", "customer_mismatch"},
		{"someone else's subscription with a code", "OK", member, strangersWithCode, "", "customer_mismatch"},
		{"someone else's subscription with a discount made in Stripe", "OK", member, strangersWithOutsideDiscount, "", "customer_mismatch"},
		{"someone else's canceled subscription", "OK", member, strangersCanceled, "", "customer_mismatch"},
		{"someone else's subscription, unknown code", "NOSUCH", member, strangersWithCode, "", "customer_mismatch"},
		{"someone else's subscription, expired code", "SOON", member, strangersWithCode, "", "customer_mismatch"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			body := map[string]any{"code": tt.code, "customer": tt.customer}
			if tt.existing != "" {
				body["subscription"] = tt.existing
			} else {
				body["price"] = tt.price
			}
			v := s.validateCode(t, body)
			if v["valid"] != false || v["reason"] != tt.want || v["message"] == "" {
				t.Errorf("validate: valid=%v reason=%v, want %s", v["valid"], v["reason"], tt.want)
			}
			var r response
			if tt.existing != "" {
				r = s.apply(t, tt.existing, tt.code, tt.customer, newKey())
			} else {
				r = s.call(t, "POST", "/v1/subscriptions", checkoutSecret, newKey(),
					map[string]any{"customer": tt.customer, "price": tt.price, "promo_code": tt.code})
			}
			code, _ := r.errorCode(t)
			if code != tt.want || r.Status != reasonStatus[tt.want] {
				t.Errorf("apply: %d %s, want %d %s: %s", r.Status, code, reasonStatus[tt.want], tt.want, r.Body)
			}
			if code != v["reason"] {
				t.Errorf("validate says %v, apply says %s", v["reason"], code)
			}
		})
	}
	// Nothing was held by any refusal.
	for _, c := range []string{"OK", "OTHER", "NEWBIES", "PLANONLY", "MEMBERS"} {
		if p := s.code(t, s.codeID(t, c)); num(p, "reserved") != 0 {
			t.Errorf("%s holds %v reservations after refusals", c, p["reserved"])
		}
	}
}
