package main

import (
	"net/http"
	"testing"
)

// An admin who leaves out both duration and promo_duration_months gets a
// permanent discount (0 = forever, the source API's default; Stripe's own
// would be once), and the create answer and the Stripe coupon say so.
func TestCreateWithoutDurationIsForeverAndSaysSo(t *testing.T) {
	s := startService(t, nil)
	r := s.call(t, "POST", "/v1/promo_codes", adminSecret, newKey(), `{"code":"NODUR","promo_type":"percentage","amount_off":10}`)
	mustStatus(t, r, http.StatusCreated)
	p := r.json(t)
	if p["duration"] != "forever" || p["promo_duration_months"] != 0.0 {
		t.Fatalf("duration %v, promo_duration_months %v; want forever, 0", p["duration"], p["promo_duration_months"])
	}
	cp, err := s.Stripe.Coupons.Get(p["stripe"].(map[string]any)["coupon_id"].(string), nil)
	if err != nil {
		t.Fatal(err)
	}
	if cp.Duration != "forever" || cp.DurationInMonths != 0 {
		t.Fatalf("Stripe coupon duration %q (%d months), want forever", cp.Duration, cp.DurationInMonths)
	}
}
