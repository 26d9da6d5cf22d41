package main

import (
	"strconv"
	"testing"

	"github.com/billing-adapter/billing-adapter/internal/stripesim"
)

// The brute-force guard: validate, subscribe with a code and apply are
// counted per customer and per API key across replicas (one Redis), and
// over either limit answer 429 rate_limited with Retry-After; subscribing
// without a code and the admin routes are not counted.
func TestBruteForceGuard(t *testing.T) {
	st := newStack(t, "", stripesim.Options{})
	env := map[string]string{"RATE_LIMIT_PER_CUSTOMER": "3/m", "RATE_LIMIT_PER_API_KEY": "10/h"}
	a, b := st.start(t, env), st.start(t, env)
	pl := st.newPlan(t, "usd", 2000)
	validate := func(s *service, customer, code string) response {
		return s.call(t, "POST", "/v1/promo_codes/validate", checkoutSecret, "", map[string]any{"code": code, "customer": customer})
	}
	limited := func(r response, what string, maxWait int) {
		t.Helper()
		code, _ := r.errorCode(t)
		wait, err := strconv.Atoi(r.Header.Get("Retry-After"))
		if r.Status != 429 || code != "rate_limited" || err != nil || wait < 1 || wait > maxWait {
			t.Fatalf("%s: %d %s Retry-After %q, want 429 rate_limited within %d s", what, r.Status, r.Body, r.Header.Get("Retry-After"), maxWait)
		}
	}
	cusA, cusB := st.newCustomer(t, ""), st.newCustomer(t, "")
	for i := range 3 { // guesses: code_not_found, on both replicas
		if r := []*service{a, b}[i%2].call(t, "POST", "/v1/promo_codes/validate", checkoutSecret, "",
			map[string]any{"code": "GUESS" + strconv.Itoa(i), "customer": cusA}); r.Status != 200 || r.json(t)["reason"] != "code_not_found" {
			t.Fatalf("guess %d: %d %s", i, r.Status, r.Body)
		}
	}
	limited(validate(b, cusA, "GUESS4"), "customer A's 4th guess", 60) // key: 4
	// Another customer is not held back by A.
	if r := validate(a, cusB, "GUESS5"); r.Status != 200 {
		t.Fatalf("customer B: %d", r.Status)
	} // key: 5
	// Apply counts against the same allowance of A (A named as customer).
	sub := st.newSubscription(t, cusA, pl.Price)
	limited(a.apply(t, sub.ID, "GUESS6", cusA, newKey()), "customer A's apply", 60) // key: 6
	// Subscribing without a code tries no code and is not counted.
	if r := b.call(t, "POST", "/v1/subscriptions", checkoutSecret, newKey(), map[string]any{"customer": cusA, "price": pl.Price}); r.Status != 201 {
		t.Fatalf("subscribe without a code: %d %s", r.Status, r.Body)
	}
	// Subscribe with a code does count: B's 2nd and 3rd, then B's 4th is refused.
	for i := range 2 {
		if r := b.call(t, "POST", "/v1/subscriptions", checkoutSecret, newKey(), map[string]any{"customer": cusB, "price": pl.Price, "promo_code": "NOPE"}); r.Status != 404 {
			t.Fatalf("subscribe %d with an unknown code: %d %s", i, r.Status, r.Body)
		}
	} // key: 8
	limited(a.call(t, "POST", "/v1/subscriptions", checkoutSecret, newKey(), map[string]any{"customer": cusB, "price": pl.Price, "promo_code": "NOPE"}),
		"customer B's 4th", 60) // key: 9
	// The key's allowance (10 an hour): one more, then every customer waits.
	cusC := st.newCustomer(t, "")
	if r := validate(a, cusC, "GUESS7"); r.Status != 200 {
		t.Fatalf("customer C: %d", r.Status)
	} // key: 10
	limited(validate(b, st.newCustomer(t, ""), "GUESS8"), "the key's 11th", 3600)
	// Admin routes are not guarded.
	if r := a.call(t, "GET", "/v1/promo_codes", adminSecret, "", nil); r.Status != 200 {
		t.Fatalf("admin list: %d", r.Status)
	}
}
