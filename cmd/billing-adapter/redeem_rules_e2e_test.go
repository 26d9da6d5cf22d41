package main

import (
	"net/http"
	"testing"
	"time"

	"github.com/stripe/stripe-go/v76"
)

// Every redemption rule, through both entry points, with the status and
// error code the payment page gets, and stock left untouched by a refusal.
func TestRedemptionRefusals(t *testing.T) {
	s := startService(t, nil)
	pl := s.newPlan(t, "usd", 2000)
	other := s.newPlan(t, "usd", 3000)
	mk := func(code string, extra map[string]any) string {
		body := map[string]any{"code": code, "promo_type": "percentage", "amount_off": 10, "stock": 5}
		for k, v := range extra {
			body[k] = v
		}
		return s.createCode(t, body)["id"].(string)
	}
	mk("OK", nil)
	mk("OFF", map[string]any{"status": "inactive"})
	mk("EMPTY", map[string]any{"stock": 0})
	mk("PLANONLY", map[string]any{"plan_ids": []string{other.Price}})
	mk("MEMBERS", map[string]any{"existing_memberships_only": true})
	mk("NEWBIES", map[string]any{"new_users_only": true})
	soon := time.Now().Add(time.Second).UTC().Truncate(time.Second).Add(time.Second)
	mk("SOON", map[string]any{"expiration_datetime": soon.Format(time.RFC3339)})
	archived := mk("GONE", nil)
	mustStatus(t, s.call(t, "POST", "/v1/promo_codes/"+archived, adminSecret, newKey(), map[string]any{"status": "archived"}), http.StatusOK)
	time.Sleep(time.Until(soon) + 50*time.Millisecond)

	// An existing member (paid invoice) and a newcomer.
	member := s.newCustomer(t, "")
	memberSub := s.newSubscription(t, member, pl.Price)
	canceled := s.newSubscription(t, s.newCustomer(t, ""), pl.Price)
	if _, err := s.Stripe.Subscriptions.Cancel(canceled.ID, nil); err != nil {
		t.Fatal(err)
	}
	used := s.newCustomer(t, "")
	mustStatus(t, s.call(t, "POST", "/v1/subscriptions", checkoutSecret, newKey(),
		map[string]any{"customer": used, "price": pl.Price, "promo_code": "OK"}), http.StatusCreated)
	withCode := s.newSubscription(t, s.newCustomer(t, ""), pl.Price)
	mustStatus(t, s.apply(t, withCode.ID, "OK", "", newKey()), http.StatusOK)

	subscribe := func(customer, price, code string) response {
		return s.call(t, "POST", "/v1/subscriptions", checkoutSecret, newKey(),
			map[string]any{"customer": customer, "price": price, "promo_code": code})
	}
	tests := []struct {
		name   string
		do     func() response
		status int
		code   string
	}{
		{"unknown code", func() response { return subscribe(s.newCustomer(t, ""), pl.Price, "NOSUCH") }, 404, "code_not_found"},
		{"archived code", func() response { return subscribe(s.newCustomer(t, ""), pl.Price, "GONE") }, 404, "code_not_found"},
		{"inactive code", func() response { return subscribe(s.newCustomer(t, ""), pl.Price, "OFF") }, 422, "code_inactive"},
		{"expired code", func() response { return subscribe(s.newCustomer(t, ""), pl.Price, "SOON") }, 422, "code_expired"},
		{"no stock", func() response { return subscribe(s.newCustomer(t, ""), pl.Price, "EMPTY") }, 422, "code_exhausted"},
		{"other plan", func() response { return subscribe(s.newCustomer(t, ""), pl.Price, "PLANONLY") }, 422, "plan_not_eligible"},
		{"members only on a new subscription", func() response { return subscribe(s.newCustomer(t, ""), pl.Price, "MEMBERS") }, 422, "existing_memberships_only"},
		{"new users only, customer has paid (Stripe refuses)", func() response { return subscribe(member, pl.Price, "NEWBIES") }, 422, "new_users_only"},
		{"same customer twice", func() response { return subscribe(used, pl.Price, "OK") }, 409, "already_redeemed_by_customer"},
		{"apply: unknown code", func() response { return s.apply(t, memberSub.ID, "NOSUCH", "", newKey()) }, 404, "code_not_found"},
		{"apply: expired", func() response { return s.apply(t, memberSub.ID, "SOON", "", newKey()) }, 422, "code_expired"},
		{"apply: no stock", func() response { return s.apply(t, memberSub.ID, "EMPTY", "", newKey()) }, 422, "code_exhausted"},
		{"apply: other plan", func() response { return s.apply(t, memberSub.ID, "PLANONLY", "", newKey()) }, 422, "plan_not_eligible"},
		{"apply: new users only, member", func() response { return s.apply(t, memberSub.ID, "NEWBIES", "", newKey()) }, 422, "new_users_only"},
		{"apply: subscription has a code", func() response { return s.apply(t, withCode.ID, "MEMBERS", "", newKey()) }, 409, "subscription_has_promo_code"},
		{"apply: unknown subscription", func() response { return s.apply(t, "sub_nosuch", "OK", "", newKey()) }, 404, "subscription_not_found"},
		{"apply: not the owner", func() response { return s.apply(t, memberSub.ID, "OK", used, newKey()) }, 403, "customer_mismatch"},
		{"apply: canceled subscription", func() response { return s.apply(t, canceled.ID, "OK", "", newKey()) }, 404, "subscription_not_found"},
		{"apply: bad subscription id", func() response { return s.apply(t, "sub%20x", "OK", "", newKey()) }, 400, "invalid_request"},
	}
	stockBefore := num(s.code(t, s.codeID(t, "OK")), "stock")
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := tt.do()
			code, _ := r.errorCode(t)
			if r.Status != tt.status || code != tt.code {
				t.Fatalf("got %d %s, want %d %s: %s", r.Status, code, tt.status, tt.code, r.Body)
			}
		})
	}
	for _, name := range []string{"OK", "NEWBIES", "PLANONLY"} {
		p := s.code(t, s.codeID(t, name))
		if num(p, "reserved") != 0 {
			t.Errorf("%s holds reservations after refusals: %v", name, p["reserved"])
		}
	}
	if got := num(s.code(t, s.codeID(t, "NEWBIES")), "stock"); got != 5 {
		t.Errorf("a refusal by Stripe kept stock: %d left of 5", got)
	}
	if got := num(s.code(t, s.codeID(t, "OK")), "stock"); got != stockBefore {
		t.Errorf("refusals changed stock: %d, want %d", got, stockBefore)
	}
	// existing_memberships_only is fine on an existing subscription.
	mustStatus(t, s.apply(t, memberSub.ID, "MEMBERS", member, newKey()), http.StatusOK)
	if got := s.subscription(t, memberSub.ID); got.Discount == nil || got.Discount.Coupon.ID != s.codeID(t, "MEMBERS") {
		t.Fatalf("discount %+v", got.Discount)
	}
	s.deliverRecordedEvents(t) // no webhook endpoint: Stripe's events arrive now
	assertReconcileClean(t, s)
}

// codeID finds a code's ID by its text through the admin list.
func (s *service) codeID(t *testing.T, code string) string {
	t.Helper()
	r := s.call(t, "GET", "/v1/promo_codes?limit=100&status=all", adminSecret, "", nil)
	mustStatus(t, r, http.StatusOK)
	for _, d := range r.json(t)["data"].([]any) {
		if m := d.(map[string]any); m["code"] == code {
			return m["id"].(string)
		}
	}
	t.Fatalf("no code %s", code)
	return ""
}

// A once code applied and then exhausted switches its Stripe promotion code
// off, so Stripe Checkout cannot redeem it either; stock coming back
// switches it on again.
func TestExhaustedCodeIsSwitchedOffInStripe(t *testing.T) {
	s := startService(t, nil)
	pl := s.newPlan(t, "usd", 2000)
	pc := s.createCode(t, map[string]any{"code": "LASTONE", "promo_type": "percentage", "amount_off": 10, "stock": 1})
	promoID := pc["stripe"].(map[string]any)["promotion_code_id"].(string)
	stripeActive := func() bool {
		p, err := s.Stripe.PromotionCodes.Get(promoID, nil)
		if err != nil {
			t.Fatal(err)
		}
		return p.Active
	}
	sub := s.newSubscription(t, s.newCustomer(t, ""), pl.Price)
	mustStatus(t, s.apply(t, sub.ID, "LASTONE", "", newKey()), http.StatusOK)
	// The worker switches Stripe first, then records it: wait for both.
	eventually(t, "the promotion code to be switched off", func() bool {
		return !stripeActive() && s.code(t, pc["id"].(string))["stripe"].(map[string]any)["active"] == false
	})
	if got := s.code(t, pc["id"].(string)); num(got, "stock") != 0 {
		t.Fatalf("code %v", got)
	}
	mustStatus(t, s.call(t, "DELETE", "/v1/subscriptions/"+sub.ID+"/promo_code", checkoutSecret, newKey(), nil), http.StatusOK)
	eventually(t, "the promotion code to be switched on", stripeActive)
	s.deliverRecordedEvents(t) // no webhook endpoint: Stripe's events arrive now
	assertReconcileClean(t, s)
}

// The discount survives in Stripe exactly as applied: the coupon's terms.
func TestAppliedDiscountCarriesTheCouponTerms(t *testing.T) {
	s := startService(t, nil)
	pl := s.newPlan(t, "jpy", 5000)
	sub := s.newSubscription(t, s.newCustomer(t, ""), pl.Price)
	pc := s.createCode(t, map[string]any{"code": "YEN500", "promo_type": "flat_amount", "amount_off": 500, "currency": "jpy",
		"promo_duration_months": 2})
	r := s.apply(t, sub.ID, "YEN500", "", newKey())
	mustStatus(t, r, http.StatusOK)
	d := r.json(t)["discount"].(map[string]any)
	terms := d["terms"].(map[string]any)
	if d["promo_code_id"] != pc["id"] || num(terms, "amount_off") != 500 || terms["currency"] != "jpy" || num(terms, "applies_to_cycles") != 2 {
		t.Fatalf("discount %v", d)
	}
	got := s.subscription(t, sub.ID)
	if got.Discount == nil || got.Discount.Coupon.AmountOff != 500 || got.Discount.Coupon.Duration != stripe.CouponDurationRepeating ||
		got.Discount.PromotionCode.ID != pc["stripe"].(map[string]any)["promotion_code_id"] {
		t.Fatalf("Stripe discount %+v", got.Discount)
	}
	s.deliverRecordedEvents(t) // no webhook endpoint: Stripe's events arrive now
	assertReconcileClean(t, s)
}
