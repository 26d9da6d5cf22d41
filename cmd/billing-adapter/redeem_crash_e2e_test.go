package main

import (
	"bytes"
	"encoding/json"
	"net/http"
	"testing"
	"time"

	"github.com/billing-adapter/billing-adapter/internal/stripesim"
)

// crashEnv keeps leases short so the tests need not wait minutes: a crashed
// request frees its Idempotency-Key and subscription lock after 4/3 of
// REQUEST_TIMEOUT, and its reservation after RESERVATION_LEASE.
var crashEnv = map[string]string{"REQUEST_TIMEOUT": "2s", "RESERVATION_LEASE": "3s", "LOG_LEVEL": "info"}

// crashDuringApply starts an apply on a child process, waits until the
// child's Stripe update is in flight (the reservation is made), and SIGKILLs
// the child. fault decides what the simulator does with that update.
func crashDuringApply(t *testing.T, fault stripesim.FaultKind) (st *stack, sub, codeID, key string) {
	t.Helper()
	st = newStack(t, "", stripesim.Options{})
	c := st.startChild(t, crashEnv)
	pl := st.newPlan(t, "usd", 2000)
	codeID = c.createCode(t, map[string]any{"code": "CRASH", "promo_type": "percentage", "amount_off": 30, "stock": 3})["id"].(string)
	sub = st.newSubscription(t, st.newCustomer(t, ""), pl.Price).ID
	st.Sim.InjectFault(stripesim.Fault{Kind: fault, Method: "POST", Path: "/v1/subscriptions/" + sub, Delay: time.Minute})
	st.Sim.ResetCounts()

	key = newKey()
	go func() { // answered by nobody: the child dies
		body, _ := json.Marshal(map[string]string{"code": "CRASH"})
		req, _ := http.NewRequest("POST", c.URL+"/v1/subscriptions/"+sub+"/promo_code", bytes.NewReader(body))
		req.Header.Set("Authorization", "Bearer "+checkoutSecret)
		req.Header.Set("Idempotency-Key", key)
		if resp, err := http.DefaultClient.Do(req); err == nil {
			resp.Body.Close()
		}
	}()
	eventually(t, "the Stripe update to be in flight", func() bool { return st.Sim.Count("POST /v1/subscriptions/{id}") == 1 })
	if got := c.code(t, codeID); num(got, "stock") != 2 || num(got, "reserved") != 1 {
		t.Fatalf("before the crash: stock %v reserved %v, want 2 and 1", got["stock"], got["reserved"])
	}
	c.kill()
	return st, sub, codeID, key
}

func TestCrashBetweenReservationAndStripe(t *testing.T) {
	t.Run("a retry with the same key completes it once", func(t *testing.T) {
		st, sub, codeID, key := crashDuringApply(t, stripesim.FaultHang)
		c := st.startChild(t, crashEnv)
		var r response
		eventually(t, "the crashed request's lease to end", func() bool {
			r = c.apply(t, sub, "CRASH", "", key)
			return r.Status != http.StatusConflict // in flight (Idempotency-Key or subscription lock) until the lease ends
		})
		mustStatus(t, r, http.StatusOK)
		assertOneLiveRedemption(t, c.service, codeID, sub, 2)
		c.deliverRecordedEvents(t) // no webhook endpoint: Stripe's events arrive now
		assertReconcileClean(t, c.service)
	})
	t.Run("without a retry the sweeper releases it when Stripe has no discount", func(t *testing.T) {
		st, sub, codeID, _ := crashDuringApply(t, stripesim.FaultHang)
		c := st.startChild(t, crashEnv)
		eventually(t, "the sweeper to release the reservation", func() bool {
			got := c.code(t, codeID)
			return num(got, "stock") == 3 && num(got, "reserved") == 0
		})
		led := c.redemptions(t, codeID)
		if len(led) != 1 || led[0]["state"] != "released" || led[0]["end_reason"] != "not_applied" {
			t.Fatalf("ledger %v", led)
		}
		if st.subscription(t, sub).Discount != nil {
			t.Fatal("Stripe has a discount")
		}
		c.deliverRecordedEvents(t) // no webhook endpoint: Stripe's events arrive now
		assertReconcileClean(t, c.service)
	})
	t.Run("without a retry the sweeper confirms what Stripe did", func(t *testing.T) {
		st, sub, codeID, _ := crashDuringApply(t, stripesim.FaultCommitThenHang)
		c := st.startChild(t, crashEnv)
		eventually(t, "the sweeper to confirm the reservation", func() bool { return num(c.code(t, codeID), "reserved") == 0 })
		assertOneLiveRedemption(t, c.service, codeID, sub, 2)
		c.deliverRecordedEvents(t) // no webhook endpoint: Stripe's events arrive now
		assertReconcileClean(t, c.service)
	})
}

// A new subscription whose create was answered by nobody: the sweeper finds
// it by the redemption ID in its metadata.
func TestCrashDuringSubscribeIsConfirmedBySweeper(t *testing.T) {
	st := newStack(t, "", stripesim.Options{})
	c := st.startChild(t, crashEnv)
	pl := st.newPlan(t, "usd", 2000)
	cus := st.newCustomer(t, "")
	codeID := c.createCode(t, map[string]any{"code": "NEWCRASH", "promo_type": "percentage", "amount_off": 30, "stock": 3})["id"].(string)
	st.Sim.InjectFault(stripesim.Fault{Kind: stripesim.FaultCommitThenHang, Method: "POST", Path: "/v1/subscriptions", Delay: time.Minute})
	st.Sim.ResetCounts()
	go func() {
		body, _ := json.Marshal(map[string]string{"customer": cus, "price": pl.Price, "promo_code": "NEWCRASH"})
		req, _ := http.NewRequest("POST", c.URL+"/v1/subscriptions", bytes.NewReader(body))
		req.Header.Set("Authorization", "Bearer "+checkoutSecret)
		req.Header.Set("Idempotency-Key", newKey())
		if resp, err := http.DefaultClient.Do(req); err == nil {
			resp.Body.Close()
		}
	}()
	eventually(t, "the subscription create to be in flight", func() bool { return st.Sim.Count("POST /v1/subscriptions") == 1 })
	c.kill()
	c = st.startChild(t, crashEnv)
	eventually(t, "the sweeper to confirm the reservation", func() bool { return num(c.code(t, codeID), "reserved") == 0 })
	led := c.redemptions(t, codeID)
	if len(led) != 1 || led[0]["state"] != "pending" || led[0]["subscription"] == nil {
		t.Fatalf("ledger %v", led)
	}
	if got := st.subscription(t, led[0]["subscription"].(string)); got.Discount == nil || got.Discount.Coupon.ID != codeID ||
		got.Customer.ID != cus {
		t.Fatalf("subscription %+v", got)
	}
	if num(c.code(t, codeID), "stock") != 2 {
		t.Fatal("want exactly one unit of stock taken")
	}
	c.deliverRecordedEvents(t) // no webhook endpoint: Stripe's events arrive now
	assertReconcileClean(t, c.service)
}

// assertOneLiveRedemption checks one discount in Stripe, one unit of stock
// taken (left remains) and exactly one pending ledger line for sub (a
// released line from a resolved earlier attempt may sit beside it).
func assertOneLiveRedemption(t *testing.T, s *service, codeID, sub string, left int64) {
	t.Helper()
	got := s.subscription(t, sub)
	if got.Discount == nil || got.Discount.Coupon.ID != codeID {
		t.Fatalf("Stripe discount %+v", got.Discount)
	}
	p := s.code(t, codeID)
	if num(p, "stock") != left || num(p, "reserved") != 0 {
		t.Fatalf("stock %v reserved %v, want %d and 0", p["stock"], p["reserved"], left)
	}
	pending := 0
	for _, l := range s.redemptions(t, codeID) {
		switch l["state"] {
		case "pending":
			pending++
			if l["stripe_discount_id"] != got.Discount.ID {
				t.Fatalf("ledger line %v does not name Stripe's discount %s", l, got.Discount.ID)
			}
		case "released":
		default:
			t.Fatalf("unexpected ledger line %v", l)
		}
	}
	if pending != 1 {
		t.Fatalf("%d pending ledger lines, want 1", pending)
	}
}

// A campaign without the customer rule has no customer index: an apply of
// the customer's second code that crashed after its reservation is resumed
// by a retry with the same key, found by the code it took, and completed
// once (no second line, the code held once).
func TestCrashDuringApplyOfASecondCampaignCode(t *testing.T) {
	st := newStack(t, "", stripesim.Options{})
	c := st.startChild(t, crashEnv)
	pl := st.newPlan(t, "usd", 2000)
	id, codes := newReadyCampaign(t, c.service, 3, map[string]any{"once_per_customer": false})
	cus := st.newCustomer(t, "")
	mustStatus(t, c.call(t, "POST", "/v1/subscriptions", checkoutSecret, newKey(),
		map[string]any{"customer": cus, "price": pl.Price, "promo_code": codes[0]}), http.StatusCreated)
	sub := st.newSubscription(t, cus, pl.Price).ID
	st.Sim.InjectFault(stripesim.Fault{Kind: stripesim.FaultHang, Method: "POST", Path: "/v1/subscriptions/" + sub, Delay: time.Minute})
	st.Sim.ResetCounts()
	key := newKey()
	go func() { // answered by nobody: the child dies
		body, _ := json.Marshal(map[string]string{"code": codes[1], "customer": cus})
		req, _ := http.NewRequest("POST", c.URL+"/v1/subscriptions/"+sub+"/promo_code", bytes.NewReader(body))
		req.Header.Set("Authorization", "Bearer "+checkoutSecret)
		req.Header.Set("Idempotency-Key", key)
		if resp, err := http.DefaultClient.Do(req); err == nil {
			resp.Body.Close()
		}
	}()
	eventually(t, "the Stripe update to be in flight", func() bool { return st.Sim.Count("POST /v1/subscriptions/{id}") == 1 })
	c.kill()
	c = st.startChild(t, crashEnv)
	var r response
	eventually(t, "the crashed request's lease to end", func() bool {
		r = c.apply(t, sub, codes[1], cus, key)
		return r.Status != http.StatusConflict
	})
	mustStatus(t, r, http.StatusOK)
	if s := st.subscription(t, sub); s.Discount == nil || s.Discount.Coupon.ID != id || s.Metadata["promo_code"] != codes[1] {
		t.Fatalf("Stripe subscription %+v %v", s.Discount, s.Metadata)
	}
	led := c.redemptions(t, id)
	if len(led) != 2 || led[0]["promo_code"] != codes[1] || led[0]["state"] != "pending" || led[0]["subscription"] != sub {
		t.Fatalf("ledger %v", led)
	}
	if m := waitCampaign(t, c.service, id, ready); m["redeemed"] != 2.0 {
		t.Fatalf("redeemed %v, want 2", m["redeemed"])
	}
	if cm := c.code(t, id); num(cm, "reserved") != 0 {
		t.Fatalf("the campaign's code record after the retry: reserved %v, want 0", cm["reserved"])
	}
	c.deliverRecordedEvents(t)
	assertReconcileClean(t, c.service)
}
