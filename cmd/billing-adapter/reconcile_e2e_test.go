package main

import (
	"context"
	"errors"
	"net/http"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/stripe/stripe-go/v76"
)

// runReconcile runs `billing-adapter reconcile` against the stack.
func (s *service) runReconcile(t *testing.T, args ...string) (stdout, stderr string, err error) {
	t.Helper()
	vars := map[string]string{"REDIS_URL": s.RedisURL, "STRIPE_SECRET_KEY": stripeKey, "STRIPE_API_BASE": s.SimURL,
		"STRIPE_MAX_NETWORK_RETRIES": "0", "LOG_FORMAT": "text"}
	// syncBuffer: go-redis logs through a process-wide logger (redisstore.SetLogger),
	// which may write from another goroutine while the command prints.
	var out, errOut syncBuffer
	err = run(context.Background(), append([]string{"reconcile", "-rate", "1000"}, args...), func(k string) string { return vars[k] }, &out, &errOut)
	return out.String(), errOut.String(), err
}

// catalogState is everything the admin API shows of the catalog and the
// ledger, less what only Redis can know (see Rebuild): request times and
// the update time of codes.
func catalogState(t *testing.T, s *service) map[string]any {
	t.Helper()
	r := s.call(t, "GET", "/v1/promo_codes?limit=100&status=all", adminSecret, "", nil)
	mustStatus(t, r, http.StatusOK)
	out := map[string]any{}
	for _, d := range r.json(t)["data"].([]any) {
		c := d.(map[string]any)
		delete(c, "updated_at")
		st := c["stripe"].(map[string]any)
		delete(st, "times_redeemed") // Stripe's count: reconcile may see a newer one than the webhooks did
		var ledger []map[string]any
		for _, l := range s.redemptions(t, c["id"].(string)) {
			for _, k := range []string{"created_at", "confirmed_at", "activated_at", "ended_at", "effective_at"} {
				l[k] = l[k] != nil // known or not; the exact time is Stripe's, not the request's
			}
			// Whether ended_at is Stripe's exact time of the end: a rebuild
			// from Stripe's lists knows only the last paid invoice.
			delete(l, "ended_in_stripe")
			ledger = append(ledger, l)
		}
		c["ledger"] = ledger
		out[c["id"].(string)] = c
	}
	return out
}

// After FLUSHALL, reconcile -fix brings back the catalog, the ledger and the
// counters from Stripe alone.
func TestReconcileRebuildsRedisFromStripe(t *testing.T) {
	st, s := webhookStack(t, "", nil)
	clock := st.newClock(t)
	pl := st.newPlan(t, "usd", 2000)
	other := st.newPlan(t, "eur", 1000)
	// A variety of codes: limited and unlimited, flat and percentage,
	// restricted, inactive, archived, with metadata.
	three := s.createCode(t, map[string]any{"code": "THREEMONTHS", "promo_type": "percentage", "amount_off": 25,
		"promo_duration_months": 3, "stock": 10, "metadata": map[string]string{"campaign": "spring"}})["id"].(string)
	flat := s.createCode(t, map[string]any{"code": "FIVEOFF", "promo_type": "flat_amount", "amount_off": "5.00", "currency": "usd",
		"duration": "forever", "plan_ids": []string{pl.Price}, "new_users_only": true})["id"].(string)
	s.createCode(t, map[string]any{"code": "MEMBERS", "promo_type": "percentage", "amount_off": 12.5, "duration": "once",
		"existing_memberships_only": true, "stock": 4, "expiration_datetime": time.Now().Add(90 * 24 * time.Hour).UTC().Truncate(time.Second).Format(time.RFC3339)})
	off := s.createCode(t, map[string]any{"code": "PAUSED", "promo_type": "percentage", "amount_off": 5})["id"].(string)
	mustStatus(t, s.call(t, "POST", "/v1/promo_codes/"+off, adminSecret, newKey(), map[string]any{"status": "inactive", "stock": 7}), http.StatusOK)
	gone := s.createCode(t, map[string]any{"code": "GONE", "promo_type": "percentage", "amount_off": 5})["id"].(string)
	mustStatus(t, s.call(t, "POST", "/v1/promo_codes/"+gone, adminSecret, newKey(), map[string]any{"status": "archived"}), http.StatusOK)

	// Redemptions in every state: ended after 3 paid cycles, active,
	// pending, and one made outside the adapter.
	ended := st.newSubscription(t, st.newCustomer(t, clock), pl.Price)
	activeCus := st.newCustomer(t, clock)
	st.advance(t, clock, clockStart.Add(10*24*time.Hour))
	mustStatus(t, s.apply(t, ended.ID, "THREEMONTHS", "", newKey()), http.StatusOK)
	mustStatus(t, s.call(t, "POST", "/v1/subscriptions", checkoutSecret, newKey(),
		map[string]any{"customer": activeCus, "price": pl.Price, "promo_code": "FIVEOFF"}), http.StatusCreated)
	st.advance(t, clock, clockStart.AddDate(0, 5, 0).Add(time.Hour))
	pending := st.newSubscription(t, st.newCustomer(t, ""), other.Price)
	mustStatus(t, s.apply(t, pending.ID, "MEMBERS", "", newKey()), http.StatusOK)
	outside := st.newCustomer(t, "")
	if _, err := st.Stripe.Subscriptions.New(&stripe.SubscriptionParams{Customer: stripe.String(outside),
		Items: []*stripe.SubscriptionItemsParams{{Price: stripe.String(pl.Price)}}, Coupon: stripe.String(three)}); err != nil {
		t.Fatal(err)
	}
	st.settle(t)
	before := catalogState(t, s)
	if len(before[three].(map[string]any)["ledger"].([]map[string]any)) != 2 || num(before[flat].(map[string]any), "uses") != 1 {
		t.Fatalf("setup did not produce the redemptions it should: %v", before)
	}

	stdout, stderr, err := s.runReconcile(t)
	if err != nil || !strings.Contains(stdout, "0 differences") {
		t.Fatalf("a consistent Redis reported drift (%v):\n%s", err, stdout)
	}
	for _, list := range []string{"coupons", "promotion codes", "subscriptions", "paid invoices"} {
		if !strings.Contains(stderr, "reconcile: "+list+": ") {
			t.Errorf("no progress line for %s:\n%s", list, stderr)
		}
	}

	if err := s.Redis.FlushAll(context.Background()).Err(); err != nil {
		t.Fatal(err)
	}
	stdout, _, err = s.runReconcile(t)
	if !errors.Is(err, errDrift) || !strings.Contains(stdout, "MISSING") {
		t.Fatalf("after FLUSHALL: err %v, want drift:\n%s", err, stdout)
	}
	if stdout, _, err = s.runReconcile(t, "-fix"); err != nil || !strings.Contains(stdout, "fixed:") {
		t.Fatalf("reconcile -fix: %v\n%s", err, stdout)
	}
	after := catalogState(t, s)
	if !reflect.DeepEqual(before, after) {
		for id := range before {
			if !reflect.DeepEqual(before[id], after[id]) {
				t.Errorf("%s\nbefore %v\n after %v", id, before[id], after[id])
			}
		}
		t.Fatalf("the rebuilt state differs (%d codes before, %d after)", len(before), len(after))
	}
	if stdout, _, err := s.runReconcile(t); err != nil {
		t.Fatalf("drift after the fix: %v\n%s", err, stdout)
	}
	// The rebuilt state is live: rules still hold (one use per customer),
	// the new_users_only marker came back, and stock keeps counting.
	r := s.call(t, "POST", "/v1/subscriptions", checkoutSecret, newKey(), map[string]any{"customer": activeCus, "price": pl.Price, "promo_code": "FIVEOFF"})
	if code, _ := r.errorCode(t); code != "already_redeemed_by_customer" && code != "new_users_only" {
		t.Fatalf("after the rebuild: %d %s", r.Status, r.Body)
	}
	mustStatus(t, s.apply(t, st.newSubscription(t, st.newCustomer(t, ""), pl.Price).ID, "THREEMONTHS", "", newKey()), http.StatusOK)
	if got := num(s.code(t, three), "stock"); got != num(before[three].(map[string]any), "stock")-1 {
		t.Fatalf("stock %d after one more apply", got)
	}
	assertReconcileClean(t, s)
}

func TestReconcileReportsDrift(t *testing.T) {
	st, s := webhookStack(t, "", nil)
	pl := st.newPlan(t, "usd", 2000)
	id := s.createCode(t, map[string]any{"code": "DRIFTY", "promo_type": "percentage", "amount_off": 10, "stock": 5})["id"].(string)
	mustStatus(t, s.apply(t, st.newSubscription(t, st.newCustomer(t, ""), pl.Price).ID, "DRIFTY", "", newKey()), http.StatusOK)
	st.settle(t)
	// Someone tampers with the counters.
	if err := s.Redis.HSet(context.Background(), "ba:{"+id+"}:code", "stock", 99, "uses", 3).Err(); err != nil {
		t.Fatal(err)
	}
	stdout, _, err := s.runReconcile(t)
	if !errors.Is(err, errDrift) || !strings.Contains(stdout, "stock: redis=99 stripe=4") || !strings.Contains(stdout, "uses: redis=3 stripe=0") {
		t.Fatalf("err %v\n%s", err, stdout)
	}
	if _, _, err := s.runReconcile(t, "-fix"); err != nil {
		t.Fatal(err)
	}
	if got := s.code(t, id); num(got, "stock") != 4 || num(got, "uses") != 0 {
		t.Fatalf("after -fix: %v", got)
	}
	if _, _, err := s.runReconcile(t, "-since", "yesterday"); err == nil {
		t.Fatal("a bad -since was accepted")
	}
	assertReconcileClean(t, s)
}
