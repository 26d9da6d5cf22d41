package main

import (
	"fmt"
	"net/http"
	"testing"
	"time"

	"github.com/billing-adapter/billing-adapter/internal/stripesim"
	"github.com/stripe/stripe-go/v76"
)

// A create that Stripe fails at either step (the coupon or the promotion
// code), with any fault kind, answers 502; a retry, with the same
// Idempotency-Key or a new key and the same body, answers 201 with the code
// ready and usable, and Stripe holds exactly one coupon and one promotion code
// for it. For the commit kinds, Stripe made the object but its answer was lost
// and so was the lookup that follows: the retry adopts the object.
func TestCreateRetryAfterStripeFaultMakesOneOfEach(t *testing.T) {
	// One stack for every case; STRIPE_TIMEOUT is short so that hangs end fast.
	st := newStack(t, "", stripesim.Options{})
	s := st.start(t, map[string]string{"STRIPE_TIMEOUT": "1s"})
	customer := st.newCustomer(t, "")

	steps := []struct {
		name string
		path string // the create that fails
		// lookup is the request the service makes to find an object whose
		// create failed; the commit kinds fail it too, so that the first
		// attempt answers 502 although Stripe holds the object.
		lookupPath string
	}{
		{"coupon", "/v1/coupons", "/v1/coupons/"},
		{"promotion_code", "/v1/promotion_codes", "/v1/promotion_codes"},
	}
	kinds := []struct {
		kind      stripesim.FaultKind
		committed bool // Stripe made the object before the answer was lost
	}{
		{stripesim.FaultServerError, false},
		{stripesim.FaultRateLimit, false},
		{stripesim.FaultLockTimeout, false},
		{stripesim.FaultHang, false},
		{stripesim.FaultCommitThenError, true},
		{stripesim.FaultCommitThenHang, true},
	}
	n := 0
	for _, step := range steps {
		for _, k := range kinds {
			for _, sameKey := range []bool{true, false} {
				n++
				code := fmt.Sprintf("RETRY%d", n)
				retry := "new key"
				if sameKey {
					retry = "same key"
				}
				t.Run(fmt.Sprintf("%s/%s/%s", step.name, k.kind, retry), func(t *testing.T) {
					st.Sim.ClearFaults()
					t.Cleanup(st.Sim.ClearFaults)
					st.Sim.InjectFault(stripesim.Fault{Kind: k.kind, Method: "POST", Path: step.path, Delay: time.Minute})
					if k.committed {
						st.Sim.InjectFault(stripesim.Fault{Kind: stripesim.FaultServerError, Method: "GET", Path: step.lookupPath})
					}
					body := percentBody(code)
					key := newKey()
					r := s.call(t, "POST", "/v1/promo_codes", adminSecret, key, body)
					mustStatus(t, r, http.StatusBadGateway)
					if c, _ := r.errorCode(t); c != "stripe_error" {
						t.Fatalf("first attempt: %s", r.Body)
					}
					// The fault hit where intended.
					wantCoupons, wantPromos := 0, 0
					if step.name == "promotion_code" || k.committed {
						wantCoupons = 1
					}
					if step.name == "promotion_code" && k.committed {
						wantPromos = 1
					}
					if c, p := len(stripeCoupons(t, st, code)), len(stripePromotionCodes(t, st, code)); c != wantCoupons || p != wantPromos {
						t.Fatalf("after the failure Stripe holds %d coupons and %d promotion codes, want %d and %d", c, p, wantCoupons, wantPromos)
					}

					if !sameKey {
						key = newKey()
					}
					r = s.call(t, "POST", "/v1/promo_codes", adminSecret, key, body)
					mustStatus(t, r, http.StatusCreated)
					created := r.json(t)
					id := created["id"].(string)
					refs := created["stripe"].(map[string]any)
					if refs["state"] != "ready" || refs["coupon_id"] != id || refs["promotion_code_id"] == "" || refs["active"] != true {
						t.Fatalf("created %s", r.Body)
					}
					if got := s.code(t, id)["stripe"].(map[string]any); got["state"] != "ready" {
						t.Fatalf("stored refs %v", got)
					}

					coupons, promos := stripeCoupons(t, st, code), stripePromotionCodes(t, st, code)
					if len(coupons) != 1 || coupons[0].ID != id {
						t.Fatalf("Stripe coupons for %s: %d (want exactly one, %s)", code, len(coupons), id)
					}
					if len(promos) != 1 || promos[0].ID != refs["promotion_code_id"] || promos[0].Coupon.ID != id || !promos[0].Active {
						t.Fatalf("Stripe promotion codes for %s: %d (want exactly one, %v, on %s)", code, len(promos), refs["promotion_code_id"], id)
					}

					v := s.call(t, "POST", "/v1/promo_codes/validate", checkoutSecret, "", map[string]any{"code": code, "customer": customer})
					mustStatus(t, v, http.StatusOK)
					if got := v.json(t); got["valid"] != true {
						t.Fatalf("validate: %s", v.Body)
					}
				})
			}
		}
	}
}

// stripeCoupons lists the simulator's coupons that mirror promo code text code.
func stripeCoupons(t *testing.T, st *stack, code string) []*stripe.Coupon {
	t.Helper()
	var out []*stripe.Coupon
	it := st.Stripe.Coupons.List(&stripe.CouponListParams{})
	for it.Next() {
		if c := it.Coupon(); c.Metadata["promo_code"] == code {
			out = append(out, c)
		}
	}
	if err := it.Err(); err != nil {
		t.Fatal(err)
	}
	return out
}

// stripePromotionCodes lists the simulator's promotion codes with text code,
// active or not.
func stripePromotionCodes(t *testing.T, st *stack, code string) []*stripe.PromotionCode {
	t.Helper()
	var out []*stripe.PromotionCode
	it := st.Stripe.PromotionCodes.List(&stripe.PromotionCodeListParams{Code: stripe.String(code)})
	for it.Next() {
		out = append(out, it.PromotionCode())
	}
	if err := it.Err(); err != nil {
		t.Fatal(err)
	}
	return out
}
