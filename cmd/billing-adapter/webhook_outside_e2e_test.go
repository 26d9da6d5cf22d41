package main

import (
	"net/http"
	"testing"

	"github.com/stripe/stripe-go/v76"
)

// Discounts made in Stripe itself (Checkout, the Dashboard, the API) on one
// of our codes are recorded, take stock, and are flagged when they broke a
// rule.
func TestRedemptionsMadeOutsideTheAdapter(t *testing.T) {
	st, s := webhookStack(t, "", nil)
	pl := st.newPlan(t, "usd", 2000)
	pc := s.createCode(t, map[string]any{"code": "OUTSIDE", "promo_type": "percentage", "amount_off": 50, "stock": 1})
	id := pc["id"].(string)
	promoID := pc["stripe"].(map[string]any)["promotion_code_id"].(string)

	// A Checkout-like subscription with the promotion code.
	first := st.newCustomer(t, "")
	sub1, err := st.Stripe.Subscriptions.New(&stripe.SubscriptionParams{Customer: stripe.String(first),
		Items: []*stripe.SubscriptionItemsParams{{Price: stripe.String(pl.Price)}}, PromotionCode: stripe.String(promoID)})
	if err != nil {
		t.Fatal(err)
	}
	st.settle(t)
	led := s.redemptions(t, id)
	if len(led) != 1 || led[0]["source"] != "stripe" || led[0]["customer"] != first || led[0]["subscription"] != sub1.ID ||
		led[0]["state"] != "active" || num(led[0], "cycles") != 1 || len(led[0]["flags"].([]any)) != 0 {
		t.Fatalf("ledger %v", led)
	}
	got := s.code(t, id)
	if num(got, "stock") != 0 || num(got, "uses") != 1 || num(got["discounted_amounts"].(map[string]any), "usd") != 1000 {
		t.Fatalf("code %v", got)
	}
	eventually(t, "the exhausted promotion code to be switched off in Stripe", func() bool {
		p, err := st.Stripe.PromotionCodes.Get(promoID, nil)
		return err == nil && !p.Active
	})

	// With no stock left, someone applies the coupon directly: recorded, flagged.
	second := st.newCustomer(t, "")
	sub2, err := st.Stripe.Subscriptions.New(&stripe.SubscriptionParams{Customer: stripe.String(second),
		Items: []*stripe.SubscriptionItemsParams{{Price: stripe.String(pl.Price)}}, Coupon: stripe.String(id)})
	if err != nil {
		t.Fatal(err)
	}
	st.settle(t)
	var flagged map[string]any
	for _, l := range s.redemptions(t, id) {
		if l["subscription"] == sub2.ID {
			flagged = l
		}
	}
	if flagged == nil || flagged["source"] != "stripe" || len(flagged["flags"].([]any)) != 1 || flagged["flags"].([]any)[0] != "stock_exhausted" {
		t.Fatalf("ledger line %v", flagged)
	}
	if got := s.code(t, id); num(got, "stock") != 0 || num(got, "uses") != 2 {
		t.Fatalf("stock must not go below zero and both uses count: %v", got)
	}
	// Rule 2 holds for them too: the adapter refuses a second code on sub1.
	s.createCode(t, map[string]any{"code": "SECOND", "promo_type": "percentage", "amount_off": 5})
	r := s.apply(t, sub1.ID, "SECOND", "", newKey())
	if code, _ := r.errorCode(t); r.Status != http.StatusConflict || code != "subscription_has_promo_code" {
		t.Fatalf("second code on a Stripe-made redemption: %d %s", r.Status, r.Body)
	}
	assertReconcileClean(t, s)
}

func TestCancelledSubscriptionEndsItsRedemption(t *testing.T) {
	st, s := webhookStack(t, "", nil)
	pl := st.newPlan(t, "usd", 2000)
	id := s.createCode(t, map[string]any{"code": "CANCELME", "promo_type": "percentage", "amount_off": 10, "stock": 5})["id"].(string)
	sub := st.newSubscription(t, st.newCustomer(t, ""), pl.Price)
	mustStatus(t, s.apply(t, sub.ID, "CANCELME", "", newKey()), http.StatusOK)
	if _, err := st.Stripe.Subscriptions.Cancel(sub.ID, nil); err != nil {
		t.Fatal(err)
	}
	st.settle(t)
	led := s.redemptions(t, id)
	if len(led) != 1 || led[0]["state"] != "ended" || led[0]["end_reason"] != "subscription_canceled" || led[0]["stock_returned"] != true {
		t.Fatalf("ledger %v", led)
	}
	if num(s.code(t, id), "stock") != 5 {
		t.Fatal("no discounted invoice was paid: the unit of stock must come back")
	}
	assertReconcileClean(t, s)
}

func TestStripeSideChangesToTheCode(t *testing.T) {
	st, s := webhookStack(t, "", nil)
	pc := s.createCode(t, map[string]any{"code": "STRIPESIDE", "promo_type": "percentage", "amount_off": 10})
	id := pc["id"].(string)
	promoID := pc["stripe"].(map[string]any)["promotion_code_id"].(string)

	// Someone switches the promotion code off in the Dashboard.
	if _, err := st.Stripe.PromotionCodes.Update(promoID, &stripe.PromotionCodeParams{Active: stripe.Bool(false)}); err != nil {
		t.Fatal(err)
	}
	st.settle(t)
	if got := s.code(t, id); got["stripe"].(map[string]any)["active"] != false || got["status"] != "active" {
		t.Fatalf("code after promotion_code.updated: %v", got)
	}
	// Someone deletes the coupon: the code is inactive for good.
	if _, err := st.Stripe.Coupons.Del(id, nil); err != nil {
		t.Fatal(err)
	}
	st.settle(t)
	got := s.code(t, id)
	if got["status"] != "inactive" || got["status_reason"] != "stripe_coupon_deleted" {
		t.Fatalf("code after coupon.deleted: %v", got)
	}
	r := s.call(t, "POST", "/v1/promo_codes/"+id, adminSecret, newKey(), map[string]any{"status": "active"})
	if code, _ := r.errorCode(t); r.Status != http.StatusConflict || code != "conflict" {
		t.Fatalf("re-activating a code without coupon: %d %s", r.Status, r.Body)
	}
	assertReconcileClean(t, s)
}

// A customer Stripe reports as having paid is no longer new: the adapter
// refuses new_users_only codes from Redis alone, without calling Stripe.
func TestPaidInvoiceMakesTheCustomerNotNew(t *testing.T) {
	st, s := webhookStack(t, "", nil)
	s.createCode(t, map[string]any{"code": "NEWONLY", "promo_type": "percentage", "amount_off": 10, "new_users_only": true})
	pl := st.newPlan(t, "usd", 2000)
	cus := st.newCustomer(t, "")
	if s.paid(t, cus) {
		t.Fatal("a customer without invoices is new")
	}
	st.newSubscription(t, cus, pl.Price)
	st.settle(t)
	st.Sim.ResetCounts()
	if !s.paid(t, cus) || st.totalCalls() != 0 {
		t.Fatalf("want new_users_only from Redis alone (Stripe calls %v)", st.Sim.Counts())
	}
	assertReconcileClean(t, s)
}
