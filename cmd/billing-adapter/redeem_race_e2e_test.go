package main

import (
	"fmt"
	"net/http"
	"sync"
	"testing"

	"github.com/billing-adapter/billing-adapter/internal/stripesim"
	"github.com/stripe/stripe-go/v76"
)

// 300 customers apply a stock-5 code at once through 3 replicas sharing
// Redis: exactly 5 get it, everyone else is told it is used up, and Stripe
// holds exactly 5 discounts.
func TestStockIsNeverOversoldAcrossReplicas(t *testing.T) {
	st := newStack(t, "", stripesim.Options{})
	replicas := []*service{st.start(t, nil), st.start(t, nil), st.start(t, nil)}
	pl := st.newPlan(t, "usd", 2000)
	pc := replicas[0].createCode(t, map[string]any{"code": "FIVE", "promo_type": "percentage", "amount_off": 20, "stock": 5})

	const n = 300
	subs := make([]string, n)
	for i := range subs {
		subs[i] = st.newSubscription(t, st.newCustomer(t, ""), pl.Price).ID
	}
	statuses := make([]int, n)
	codes := make([]string, n)
	var wg sync.WaitGroup
	start := make(chan struct{})
	for i := 0; i < n; i++ {
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			<-start
			r := replicas[i%len(replicas)].apply(t, subs[i], "FIVE", "", newKey())
			statuses[i] = r.Status
			if r.Status != http.StatusOK {
				codes[i], _ = r.errorCode(t)
			}
		}(i)
	}
	close(start)
	wg.Wait()

	tally := map[string]int{}
	for i := range statuses {
		tally[fmt.Sprintf("%d %s", statuses[i], codes[i])]++
	}
	if tally["200 "] != 5 || tally["422 code_exhausted"] != n-5 {
		t.Fatalf("outcomes %v, want 5 successes and %d code_exhausted", tally, n-5)
	}
	discounted := 0
	it := st.Stripe.Subscriptions.List(&stripe.SubscriptionListParams{ListParams: stripe.ListParams{Limit: stripe.Int64(100)}})
	for it.Next() {
		if d := it.Subscription().Discount; d != nil && d.Coupon.ID == pc["id"] {
			discounted++
		}
	}
	if err := it.Err(); err != nil {
		t.Fatal(err)
	}
	if discounted != 5 {
		t.Fatalf("Stripe has %d discounts, want 5", discounted)
	}
	got := replicas[1].code(t, pc["id"].(string))
	if num(got, "stock") != 0 || num(got, "reserved") != 0 || len(replicas[2].redemptions(t, pc["id"].(string))) != 5 {
		t.Fatalf("code %v", got)
	}
	replicas[0].deliverRecordedEvents(t) // no webhook endpoint: Stripe's events arrive now
	assertReconcileClean(t, replicas[0])
}

// One customer applying the same code to two subscriptions at once: exactly
// one succeeds, whichever replica and order.
func TestOneCustomerTwoSubscriptionsAtOnce(t *testing.T) {
	st := newStack(t, "", stripesim.Options{})
	a, b := st.start(t, nil), st.start(t, nil)
	pl := st.newPlan(t, "usd", 2000)
	for round := 0; round < 10; round++ {
		code := fmt.Sprintf("TWICE%d", round)
		a.createCode(t, map[string]any{"code": code, "promo_type": "percentage", "amount_off": 20})
		cus := st.newCustomer(t, "")
		s1, s2 := st.newSubscription(t, cus, pl.Price), st.newSubscription(t, cus, pl.Price)
		var r1, r2 response
		var wg sync.WaitGroup
		wg.Add(2)
		go func() { defer wg.Done(); r1 = a.apply(t, s1.ID, code, cus, newKey()) }()
		go func() { defer wg.Done(); r2 = b.apply(t, s2.ID, code, cus, newKey()) }()
		wg.Wait()
		ok, refused := r1, r2
		if r2.Status == http.StatusOK {
			ok, refused = r2, r1
		}
		code2, _ := refused.errorCode(t)
		if ok.Status != http.StatusOK || refused.Status != http.StatusConflict || code2 != "already_redeemed_by_customer" {
			t.Fatalf("round %d: %d %s / %d %s", round, r1.Status, r1.Body, r2.Status, r2.Body)
		}
		withDiscount := 0
		for _, id := range []string{s1.ID, s2.ID} {
			if st.subscription(t, id).Discount != nil {
				withDiscount++
			}
		}
		if withDiscount != 1 {
			t.Fatalf("round %d: %d subscriptions carry the discount", round, withDiscount)
		}
	}
	a.deliverRecordedEvents(t) // no webhook endpoint: Stripe's events arrive now
	assertReconcileClean(t, a)
}

// Stripe failing the update before doing it: the reservation is released,
// stock is back and the client gets 502; the retry with the same key works.
func TestStripeFailureReleasesTheReservation(t *testing.T) {
	s := startService(t, nil)
	pl := s.newPlan(t, "usd", 2000)
	pc := s.createCode(t, map[string]any{"code": "RETRYME", "promo_type": "percentage", "amount_off": 20, "stock": 2})
	id := pc["id"].(string)
	sub := s.newSubscription(t, s.newCustomer(t, ""), pl.Price)

	s.Sim.InjectFault(stripesim.Fault{Kind: stripesim.FaultServerError, Method: "POST", Path: "/v1/subscriptions/" + sub.ID})
	key := newKey()
	r := s.apply(t, sub.ID, "RETRYME", "", key)
	if code, _ := r.errorCode(t); r.Status != http.StatusBadGateway || code != "stripe_error" {
		t.Fatalf("got %d %s, want 502", r.Status, r.Body)
	}
	if got := s.code(t, id); num(got, "stock") != 2 || num(got, "reserved") != 0 {
		t.Fatalf("stock not released: %v", got)
	}
	if led := s.redemptions(t, id); len(led) != 1 || led[0]["state"] != "released" || led[0]["stock_returned"] != true {
		t.Fatalf("ledger %v", led)
	}
	if s.subscription(t, sub.ID).Discount != nil {
		t.Fatal("Stripe has a discount")
	}
	mustStatus(t, s.apply(t, sub.ID, "RETRYME", "", key), http.StatusOK)
	if got := s.code(t, id); num(got, "stock") != 1 {
		t.Fatalf("stock %v after the retry, want 1", got["stock"])
	}
	s.deliverRecordedEvents(t) // no webhook endpoint: Stripe's events arrive now
	assertReconcileClean(t, s)
}

// Stripe doing the update but answering 500 ("created but answered 500").
func TestCommittedButFailedUpdateCountsOnce(t *testing.T) {
	t.Run("read back at once", func(t *testing.T) {
		s := startService(t, nil)
		pl := s.newPlan(t, "usd", 2000)
		pc := s.createCode(t, map[string]any{"code": "LOSTANSWER", "promo_type": "percentage", "amount_off": 20, "stock": 3})
		sub := s.newSubscription(t, s.newCustomer(t, ""), pl.Price)
		s.Sim.InjectFault(stripesim.Fault{Kind: stripesim.FaultCommitThenError, Method: "POST", Path: "/v1/subscriptions/" + sub.ID})
		s.Sim.ResetCounts()
		mustStatus(t, s.apply(t, sub.ID, "LOSTANSWER", "", newKey()), http.StatusOK)
		if s.Sim.Count("GET /v1/subscriptions/{id}") != 2 || s.Sim.Count("POST /v1/subscriptions/{id}") != 1 {
			t.Fatalf("calls %v: want the update once and the subscription read before and after", s.Sim.Counts())
		}
		assertOneLiveRedemption(t, s, pc["id"].(string), sub.ID, 2)
		if n := len(s.redemptions(t, pc["id"].(string))); n != 1 {
			t.Fatalf("%d ledger lines, want 1", n)
		}
		s.deliverRecordedEvents(t) // no webhook endpoint: Stripe's events arrive now
		assertReconcileClean(t, s)
	})
	t.Run("retry with the same key", func(t *testing.T) {
		s := startService(t, nil)
		pl := s.newPlan(t, "usd", 2000)
		pc := s.createCode(t, map[string]any{"code": "LOSTANSWER", "promo_type": "percentage", "amount_off": 20, "stock": 3})
		sub := s.newSubscription(t, s.newCustomer(t, ""), pl.Price)
		// The update is done but answered 500, and the read-back after it
		// fails too (the apply's own first read passes).
		s.Sim.InjectFault(stripesim.Fault{Kind: stripesim.FaultCommitThenError, Method: "POST", Path: "/v1/subscriptions/" + sub.ID})
		s.Sim.InjectFault(stripesim.Fault{Kind: stripesim.FaultServerError, Method: "GET", Path: "/v1/subscriptions/" + sub.ID, Skip: 1})
		s.Sim.ResetCounts()
		key := newKey()
		r := s.apply(t, sub.ID, "LOSTANSWER", "", key)
		if r.Status != http.StatusBadGateway {
			t.Fatalf("first attempt %d %s, want 502 (outcome unknown)", r.Status, r.Body)
		}
		if got := s.code(t, pc["id"].(string)); num(got, "reserved") != 1 || num(got, "stock") != 2 {
			t.Fatalf("the reservation must wait for the retry or the sweeper: %v", got)
		}
		r = s.apply(t, sub.ID, "LOSTANSWER", "", key)
		mustStatus(t, r, http.StatusOK)
		assertOneLiveRedemption(t, s, pc["id"].(string), sub.ID, 2)
		if n := len(s.redemptions(t, pc["id"].(string))); n != 1 {
			t.Fatalf("%d ledger lines, want 1: the retry resumes the first reservation", n)
		}
		if n := s.Sim.Count("POST /v1/subscriptions/{id}"); n != 1 {
			t.Fatalf("the subscription was updated %d times, want once", n)
		}
		s.deliverRecordedEvents(t) // no webhook endpoint: Stripe's events arrive now
		assertReconcileClean(t, s)
	})
}
