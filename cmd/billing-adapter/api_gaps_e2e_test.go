package main

import (
	"net/http"
	"strings"
	"testing"
)

// The API additions of issue 12 that the console and the payment page need.

// TestExpandPlans: expand[]=plans adds each plan's product name, amount,
// currency and interval, read from Stripe once and then from the cache.
func TestExpandPlans(t *testing.T) {
	s := startService(t, nil)
	basic, pro := s.newPlan(t, "usd", 900), s.newPlan(t, "eur", 2500)
	pc := s.createCode(t, map[string]any{"code": "PLANS10", "promo_type": "percentage", "amount_off": 10,
		"plan_ids": []string{basic.Price, pro.Price}})
	id := pc["id"].(string)
	if _, ok := pc["plans"]; ok {
		t.Fatalf("plans present without expand: %v", pc["plans"])
	}
	before := s.Sim.Count("GET /v1/prices/{id}")
	r := s.call(t, "GET", "/v1/promo_codes/"+id+"?expand[]=plans", adminSecret, "", nil)
	mustStatus(t, r, http.StatusOK)
	plans, _ := r.json(t)["plans"].([]any)
	if len(plans) != 2 {
		t.Fatalf("plans: %s", r.Body)
	}
	// plans follow plan_ids (which the service keeps in its own order).
	ids := pc["plan_ids"].([]any)
	byID := map[string]map[string]any{}
	for i, p := range plans {
		pm := p.(map[string]any)
		if pm["id"] != ids[i] {
			t.Errorf("plans[%d] is %v, plan_ids[%d] is %v", i, pm["id"], i, ids[i])
		}
		byID[pm["id"].(string)] = pm
	}
	first, second := byID[basic.Price], byID[pro.Price]
	if first["id"] != basic.Price || first["product"] != basic.Product || first["product_name"] != "Instance" ||
		num(first, "unit_amount") != 900 || first["currency"] != "usd" || first["interval"] != "month" ||
		num(first, "interval_count") != 1 {
		t.Errorf("first plan: %v", first)
	}
	if second["id"] != pro.Price || num(second, "unit_amount") != 2500 || second["currency"] != "eur" {
		t.Errorf("second plan: %v", second)
	}
	if got := s.Sim.Count("GET /v1/prices/{id}") - before; got != 2 {
		t.Errorf("first expanded read made %d price reads, want 2", got)
	}
	for range 3 {
		mustStatus(t, s.call(t, "GET", "/v1/promo_codes/"+id+"?expand[]=plans", adminSecret, "", nil), http.StatusOK)
	}
	r = s.call(t, "GET", "/v1/promo_codes?expand[]=plans", adminSecret, "", nil)
	mustStatus(t, r, http.StatusOK)
	data := r.json(t)["data"].([]any)
	if len(data) != 1 || len(data[0].(map[string]any)["plans"].([]any)) != 2 {
		t.Errorf("list with expand: %s", r.Body)
	}
	if got := s.Sim.Count("GET /v1/prices/{id}") - before; got != 2 {
		t.Errorf("cached reads still called Stripe: %d price reads in all, want 2", got)
	}
	r = s.call(t, "GET", "/v1/promo_codes/"+id+"?expand[]=coupon", adminSecret, "", nil)
	mustStatus(t, r, http.StatusBadRequest)
	if code, param := r.errorCode(t); code != "invalid_request" || param != "expand[]" {
		t.Errorf("expand of something else: %s %s", code, param)
	}
}

// TestValidateListsEligiblePlans: plan_not_eligible comes with the plans
// the code applies to; other answers carry eligible_plans: null.
func TestValidateListsEligiblePlans(t *testing.T) {
	s := startService(t, nil)
	basic, other := s.newPlan(t, "usd", 900), s.newPlan(t, "usd", 1900)
	s.createCode(t, map[string]any{"code": "ONLYBASIC", "promo_type": "percentage", "amount_off": 10,
		"plan_ids": []string{basic.Price}})
	cus := s.newCustomer(t, "")
	r := s.call(t, "POST", "/v1/promo_codes/validate", checkoutSecret, "",
		map[string]any{"code": "onlybasic", "customer": cus, "price": other.Price})
	mustStatus(t, r, http.StatusOK)
	v := r.json(t)
	if v["valid"] != false || v["reason"] != "plan_not_eligible" {
		t.Fatalf("verdict: %s", r.Body)
	}
	plans, _ := v["eligible_plans"].([]any)
	if len(plans) != 1 || plans[0].(map[string]any)["id"] != basic.Price ||
		num(plans[0].(map[string]any), "unit_amount") != 900 {
		t.Errorf("eligible_plans: %v", v["eligible_plans"])
	}
	r = s.call(t, "POST", "/v1/promo_codes/validate", checkoutSecret, "",
		map[string]any{"code": "ONLYBASIC", "customer": cus, "price": basic.Price})
	mustStatus(t, r, http.StatusOK)
	if v := r.json(t); v["valid"] != true || v["eligible_plans"] != nil {
		t.Errorf("eligible price: %s", r.Body)
	}
}

// TestSubscriptionPromoCodeRead: GET /v1/subscriptions/{id}/promo_code is
// the live redemption, 404 before and after; another customer is refused;
// it needs the checkout scope.
func TestSubscriptionPromoCodeRead(t *testing.T) {
	s := startService(t, nil)
	p := s.newPlan(t, "usd", 1000)
	s.createCode(t, map[string]any{"code": "README5", "promo_type": "percentage", "amount_off": 5})
	cus := s.newCustomer(t, "")
	sub := s.newSubscription(t, cus, p.Price)
	path := "/v1/subscriptions/" + sub.ID + "/promo_code"

	r := s.call(t, "GET", path, checkoutSecret, "", nil)
	mustStatus(t, r, http.StatusNotFound)
	if code, _ := r.errorCode(t); code != "resource_missing" {
		t.Errorf("no code yet: %s", r.Body)
	}
	mustStatus(t, s.apply(t, sub.ID, "README5", cus, newKey()), http.StatusOK)
	r = s.call(t, "GET", path, checkoutSecret, "", nil)
	mustStatus(t, r, http.StatusOK)
	rd := r.json(t)
	if rd["promo_code"] != "README5" || rd["customer"] != cus || rd["subscription"] != sub.ID || rd["state"] != "pending" {
		t.Errorf("live redemption: %s", r.Body)
	}
	mustStatus(t, s.call(t, "GET", path+"?customer="+cus, checkoutSecret, "", nil), http.StatusOK)
	r = s.call(t, "GET", path+"?customer=cus_someone_else", checkoutSecret, "", nil)
	mustStatus(t, r, http.StatusForbidden)
	if code, _ := r.errorCode(t); code != "customer_mismatch" {
		t.Errorf("other customer: %s", r.Body)
	}
	mustStatus(t, s.call(t, "GET", path, adminSecret, "", nil), http.StatusForbidden)
	mustStatus(t, s.call(t, "GET", path, "", "", nil), http.StatusUnauthorized)

	mustStatus(t, s.call(t, "DELETE", path, checkoutSecret, newKey(), nil), http.StatusOK)
	mustStatus(t, s.call(t, "GET", path, checkoutSecret, "", nil), http.StatusNotFound)
}

// TestAPIGapsRefusals: 405 with Allow, unknown starting_after, stock with
// unlimited_stock.
func TestAPIGapsRefusals(t *testing.T) {
	s := startService(t, nil)
	pc := s.createCode(t, map[string]any{"code": "GAPS1", "promo_type": "percentage", "amount_off": 5, "stock": 3})
	id := pc["id"].(string)

	r := s.call(t, "DELETE", "/v1/promo_codes/"+id, adminSecret, newKey(), nil)
	mustStatus(t, r, http.StatusMethodNotAllowed)
	if allow := r.Header.Get("Allow"); !strings.Contains(allow, "GET") || !strings.Contains(allow, "POST") {
		t.Errorf("Allow %q", allow)
	}
	if code, _ := r.errorCode(t); code != "method_not_allowed" {
		t.Errorf("405 body: %s", r.Body)
	}

	for _, path := range []string{"/v1/promo_codes?starting_after=pc_NOPE", "/v1/promo_codes/" + id + "/redemptions?starting_after=rd_NOPE"} {
		r = s.call(t, "GET", path, adminSecret, "", nil)
		mustStatus(t, r, http.StatusBadRequest)
		if code, param := r.errorCode(t); code != "invalid_request" || param != "starting_after" {
			t.Errorf("%s: %s", path, r.Body)
		}
	}
	mustStatus(t, s.call(t, "GET", "/v1/promo_codes?starting_after="+id, adminSecret, "", nil), http.StatusOK)

	r = s.call(t, "POST", "/v1/promo_codes", adminSecret, newKey(), map[string]any{"code": "GAPS2",
		"promo_type": "percentage", "amount_off": 5, "stock": 10, "unlimited_stock": true})
	mustStatus(t, r, http.StatusBadRequest)
	if _, param := r.errorCode(t); param != "stock" {
		t.Errorf("create with both: %s", r.Body)
	}
	r = s.call(t, "POST", "/v1/promo_codes/"+id, adminSecret, newKey(), map[string]any{"stock": 10, "unlimited_stock": true})
	mustStatus(t, r, http.StatusBadRequest)
	if _, param := r.errorCode(t); param != "stock" {
		t.Errorf("update with both: %s", r.Body)
	}
}
