package main

import (
	"net/http"
	"testing"
	"time"

	"github.com/stripe/stripe-go/v76"
)

func TestSubscribeWithCodeDiscountsTheFirstInvoice(t *testing.T) {
	s := startService(t, nil)
	pl := s.newPlan(t, "usd", 2000)
	cus := s.newCustomer(t, "")
	pc := s.createCode(t, map[string]any{"code": "welcome25", "promo_type": "percentage", "amount_off": 25,
		"duration": "once", "stock": 10, "metadata": map[string]string{"campaign": "autumn"}})
	id := pc["id"].(string)

	s.Sim.ResetCounts()
	key := newKey()
	body := map[string]any{"customer": cus, "price": pl.Price, "promo_code": "Welcome25", "metadata": map[string]string{"order": "o-1"}}
	r := s.call(t, "POST", "/v1/subscriptions", checkoutSecret, key, body)
	mustStatus(t, r, http.StatusCreated)
	if n, want := s.Sim.Count("POST /v1/subscriptions"), 1; n != want || s.totalCalls() != want {
		t.Fatalf("Stripe calls %v, want exactly one subscription create", s.Sim.Counts())
	}
	out := r.json(t)
	subID := out["id"].(string)
	disc, _ := out["discount"].(map[string]any)
	rd, _ := out["redemption"].(map[string]any)
	if out["status"] != "active" || disc == nil || disc["promo_code_id"] != id || rd == nil || rd["state"] != "pending" ||
		rd["subscription"] != subID || out["effective_at"] != out["current_period_start"] {
		t.Fatalf("response %s", r.Body)
	}

	sub := s.subscription(t, subID)
	for k, want := range map[string]string{"promo_code_id": id, "promo_code": "WELCOME25", "promo_redemption_id": rd["id"].(string),
		"campaign": "autumn", "order": "o-1"} {
		if sub.Metadata[k] != want {
			t.Errorf("subscription metadata %s = %q, want %q", k, sub.Metadata[k], want)
		}
	}
	inv := s.invoices(t, subID)
	if len(inv) != 1 || inv[0].Subtotal != 2000 || inv[0].Total != 1500 || inv[0].AmountPaid != 1500 {
		t.Fatalf("first invoice %+v", inv)
	}
	got := s.code(t, id)
	if num(got, "stock") != 9 || num(got, "reserved") != 0 {
		t.Fatalf("code after subscribe: stock %v reserved %v", got["stock"], got["reserved"])
	}
	if led := s.redemptions(t, id); len(led) != 1 || led[0]["state"] != "pending" || led[0]["customer"] != cus ||
		led[0]["source"] != "new_subscription" || led[0]["stripe_discount_id"] != sub.Discount.ID {
		t.Fatalf("ledger %v", led)
	}

	replay := s.call(t, "POST", "/v1/subscriptions", checkoutSecret, key, body)
	if replay.Status != http.StatusCreated || replay.Header.Get("Idempotent-Replayed") != "true" || string(replay.Body) != string(r.Body) {
		t.Fatalf("replay %d %s", replay.Status, replay.Body)
	}
	if s.Sim.Count("POST /v1/subscriptions") != 1 {
		t.Fatal("a replay reached Stripe")
	}
	s.deliverRecordedEvents(t) // no webhook endpoint: Stripe's events arrive now
	assertReconcileClean(t, s)
}

func TestSubscribeWithoutCode(t *testing.T) {
	s := startService(t, nil)
	pl := s.newPlan(t, "eur", 900)
	cus := s.newCustomer(t, "")
	s.Sim.ResetCounts()
	r := s.call(t, "POST", "/v1/subscriptions", checkoutSecret, newKey(), map[string]any{"customer": cus, "price": pl.Price, "quantity": 2})
	mustStatus(t, r, http.StatusCreated)
	out := r.json(t)
	if out["discount"] != nil || out["redemption"] != nil || s.totalCalls() != 1 {
		t.Fatalf("%s (calls %v)", r.Body, s.Sim.Counts())
	}
	if inv := s.invoices(t, out["id"].(string)); len(inv) != 1 || inv[0].Total != 1800 {
		t.Fatalf("invoice %+v", inv)
	}
}

func TestApplyToExistingSubscriptionDiscountsTheNextInvoice(t *testing.T) {
	s := startService(t, nil)
	clock := s.newClock(t)
	pl := s.newPlan(t, "usd", 2000)
	cus := s.newCustomer(t, clock)
	sub := s.newSubscription(t, cus, pl.Price)
	pc := s.createCode(t, map[string]any{"code": "HALFOFF", "promo_type": "percentage", "amount_off": 50, "duration": "once"})
	s.advance(t, clock, clockStart.Add(10*24*time.Hour)) // mid period

	s.Sim.ResetCounts()
	r := s.apply(t, sub.ID, "halfoff", cus, newKey())
	mustStatus(t, r, http.StatusOK)
	counts := s.Sim.Counts()
	if counts["GET /v1/subscriptions/{id}"] != 1 || counts["POST /v1/subscriptions/{id}"] != 1 || s.totalCalls() != 2 {
		t.Fatalf("Stripe calls %v, want one read and one update", counts)
	}
	out := r.json(t)
	periodEnd := time.Unix(sub.CurrentPeriodEnd, 0).UTC().Format(time.RFC3339)
	if out["effective_at"] != periodEnd || out["current_period_end"] != periodEnd {
		t.Fatalf("effective_at %v, want the current period end %s", out["effective_at"], periodEnd)
	}
	rd := out["redemption"].(map[string]any)
	if rd["state"] != "pending" || rd["source"] != "existing_subscription" || rd["customer"] != cus {
		t.Fatalf("redemption %v", rd)
	}
	// No proration: the current period is untouched.
	if inv := s.invoices(t, sub.ID); len(inv) != 1 || inv[0].Total != 2000 {
		t.Fatalf("invoices after apply %+v", inv)
	}
	// The next monthly debit carries the discount, the one after does not (once).
	s.advance(t, clock, time.Unix(sub.CurrentPeriodEnd, 0).Add(time.Hour))
	inv := s.invoices(t, sub.ID)
	if len(inv) != 2 || inv[1].Subtotal != 2000 || inv[1].Total != 1000 || inv[1].Status != stripe.InvoiceStatusPaid {
		t.Fatalf("next invoice %+v", inv[len(inv)-1])
	}
	s.advance(t, clock, time.Unix(sub.CurrentPeriodEnd, 0).AddDate(0, 1, 0).Add(time.Hour))
	if inv := s.invoices(t, sub.ID); len(inv) != 3 || inv[2].Total != 2000 {
		t.Fatalf("third invoice %+v", inv[len(inv)-1])
	}
	if got := s.code(t, pc["id"].(string)); got["stock"] != nil || num(got, "reserved") != 0 {
		t.Fatalf("unlimited code %v", got)
	}
	s.deliverRecordedEvents(t) // no webhook endpoint: Stripe's events arrive now
	assertReconcileClean(t, s)
}

func TestRemovePromoCode(t *testing.T) {
	s := startService(t, nil)
	pl := s.newPlan(t, "usd", 2000)
	cus := s.newCustomer(t, "")
	sub := s.newSubscription(t, cus, pl.Price)
	pc := s.createCode(t, map[string]any{"code": "TAKEBACK", "promo_type": "flat_amount", "amount_off": "5.00",
		"currency": "usd", "duration": "forever", "stock": 3})
	id := pc["id"].(string)
	mustStatus(t, s.apply(t, sub.ID, "TAKEBACK", "", newKey()), http.StatusOK)
	if num(s.code(t, id), "stock") != 2 {
		t.Fatal("apply took no stock")
	}

	s.Sim.ResetCounts()
	r := s.call(t, "DELETE", "/v1/subscriptions/"+sub.ID+"/promo_code", checkoutSecret, newKey(), nil)
	mustStatus(t, r, http.StatusOK)
	rd := r.json(t)["redemption"].(map[string]any)
	if rd["state"] != "ended" || rd["end_reason"] != "removed" || rd["stock_returned"] != true || s.totalCalls() != 1 {
		t.Fatalf("removal %s (calls %v)", r.Body, s.Sim.Counts())
	}
	if got := s.subscription(t, sub.ID); got.Discount != nil {
		t.Fatalf("discount still on the subscription: %+v", got.Discount)
	}
	if num(s.code(t, id), "stock") != 3 {
		t.Fatal("stock not returned: no discounted invoice was paid yet")
	}
	r = s.call(t, "DELETE", "/v1/subscriptions/"+sub.ID+"/promo_code", checkoutSecret, newKey(), nil)
	if code, _ := r.errorCode(t); r.Status != http.StatusNotFound || code != "resource_missing" {
		t.Fatalf("second removal %d %s", r.Status, r.Body)
	}
	// Never used, so the customer may apply it again.
	mustStatus(t, s.apply(t, sub.ID, "TAKEBACK", cus, newKey()), http.StatusOK)
	s.deliverRecordedEvents(t) // no webhook endpoint: Stripe's events arrive now
	assertReconcileClean(t, s)
}

func TestValidate(t *testing.T) {
	s := startService(t, nil)
	pl := s.newPlan(t, "usd", 2000)
	other := s.newPlan(t, "usd", 5000)
	cus := s.newCustomer(t, "")
	sub := s.newSubscription(t, cus, pl.Price)
	s.createCode(t, map[string]any{"code": "TENOFF", "promo_type": "flat_amount", "amount_off": "10", "currency": "usd",
		"duration": "repeating", "promo_duration_months": 3, "plan_ids": []string{pl.Price}})
	validate := func(body map[string]any) map[string]any {
		t.Helper()
		r := s.call(t, "POST", "/v1/promo_codes/validate", checkoutSecret, "", body)
		mustStatus(t, r, http.StatusOK)
		return r.json(t)
	}

	s.Sim.ResetCounts()
	v := validate(map[string]any{"code": "tenoff", "customer": cus})
	d := v["discount"].(map[string]any)
	if v["valid"] != true || v["reason"] != nil || num(d, "amount_off") != 1000 || d["currency"] != "usd" ||
		d["duration"] != "repeating" || num(d, "applies_to_cycles") != 3 || v["preview"] != nil {
		t.Fatalf("validate %v", v)
	}
	if s.totalCalls() != 0 {
		t.Fatalf("validate without preview called Stripe: %v", s.Sim.Counts())
	}

	v = validate(map[string]any{"code": "TENOFF", "customer": cus, "subscription": sub.ID})
	pv, _ := v["preview"].(map[string]any)
	if v["valid"] != true || pv == nil || num(pv, "amount_before") != 2000 || num(pv, "amount_after") != 1000 ||
		num(pv, "discount_amount") != 1000 || pv["currency"] != "usd" {
		t.Fatalf("preview of the subscription %v", v)
	}
	if s.totalCalls() != 2 || s.Sim.Count("GET /v1/subscriptions/{id}") != 1 || s.Sim.Count("GET /v1/invoices/upcoming") != 1 {
		t.Fatalf("validate with preview: calls %v, want the subscription read (ownership first) and one upcoming invoice", s.Sim.Counts())
	}
	newcomer := s.newCustomer(t, "")
	v = validate(map[string]any{"code": "TENOFF", "customer": newcomer, "price": pl.Price})
	if pv, _ := v["preview"].(map[string]any); v["valid"] != true || pv == nil || num(pv, "amount_after") != 1000 {
		t.Fatalf("preview of a new subscription %v", v)
	}

	// Nothing was reserved or written by validating.
	mustStatus(t, s.apply(t, sub.ID, "TENOFF", cus, newKey()), http.StatusOK)
	stranger := s.newCustomer(t, "")
	for name, tc := range map[string]struct {
		body   map[string]any
		reason string
	}{
		"unknown code":           {map[string]any{"code": "NOPE", "customer": cus}, "code_not_found"},
		"not a code at all":      {map[string]any{"code": "no-such!", "customer": cus}, "code_not_found"},
		"another plan":           {map[string]any{"code": "TENOFF", "customer": newcomer, "price": other.Price}, "plan_not_eligible"},
		"used by the customer":   {map[string]any{"code": "TENOFF", "customer": cus}, "already_redeemed_by_customer"},
		"another's, with a code": {map[string]any{"code": "TENOFF", "customer": stranger, "subscription": sub.ID}, "customer_mismatch"},
		"someone else's sub":     {map[string]any{"code": "TENOFF", "customer": stranger, "subscription": s.newSubscription(t, newcomer, pl.Price).ID}, "customer_mismatch"},
		"subscription not found": {map[string]any{"code": "TENOFF", "customer": stranger, "subscription": "sub_missing"}, "subscription_not_found"},
	} {
		v := validate(tc.body)
		if v["valid"] != false || v["reason"] != tc.reason || v["message"] == "" {
			t.Errorf("%s: got valid=%v reason=%v, want %s", name, v["valid"], v["reason"], tc.reason)
		}
	}
	r := s.call(t, "POST", "/v1/promo_codes/validate", checkoutSecret, "", map[string]any{"code": "TENOFF"})
	if code, param := r.errorCode(t); r.Status != http.StatusBadRequest || code != "invalid_request" || param != "customer" {
		t.Fatalf("missing customer: %d %s", r.Status, r.Body)
	}
	r = s.call(t, "POST", "/v1/promo_codes/validate", adminSecret, "", map[string]any{"code": "TENOFF", "customer": cus})
	if r.Status != http.StatusForbidden {
		t.Fatalf("admin key on a checkout endpoint: %d", r.Status)
	}
	s.deliverRecordedEvents(t) // no webhook endpoint: Stripe's events arrive now
	assertReconcileClean(t, s)
}
