package main

import (
	"net/http"
	"strconv"
	"strings"
	"testing"

	"github.com/billing-adapter/billing-adapter/internal/testutil/redistest"
)

// redisErrors sums billing_redis_errors_total over its series and returns
// the series that are not zero.
func (s *service) redisErrors(t *testing.T) (float64, []string) {
	t.Helper()
	m := s.call(t, "GET", "/metrics", "", "", nil)
	mustStatus(t, m, http.StatusOK)
	var sum float64
	var nonzero []string
	for line := range strings.SplitSeq(string(m.Body), "\n") {
		if !strings.HasPrefix(line, "billing_redis_errors_total") {
			continue
		}
		fields := strings.Fields(line)
		v, err := strconv.ParseFloat(fields[len(fields)-1], 64)
		if err != nil {
			t.Fatalf("metrics line %q: %v", line, err)
		}
		sum += v
		if v != 0 {
			nonzero = append(nonzero, line)
		}
	}
	return sum, nonzero
}

// billing_redis_errors_total counts failures only: a healthy service doing
// creates, validates, applies, removals and webhooks (scripts loaded for
// the first time, connections opened to a Redis 7.0) reports 0, and a
// stopped Redis makes it count.
func TestRedisErrorsMetricCountsOnlyFailures(t *testing.T) {
	red := redistest.Start(t) // its own Redis: this test stops it
	st, s := webhookStack(t, red.URL(), nil)

	threeMonthsOfDiscount(t, st, s, nil) // create, apply, five months of webhooks
	pl := st.newPlan(t, "usd", 2000)
	s.createCode(t, map[string]any{"code": "HEALTHY", "promo_type": "flat_amount", "amount_off": "5.00", "currency": "usd"})
	cus := st.newCustomer(t, "")
	r := s.call(t, "POST", "/v1/promo_codes/validate", checkoutSecret, "",
		map[string]any{"code": "HEALTHY", "customer": cus, "price": pl.Price})
	if mustStatus(t, r, http.StatusOK); r.json(t)["valid"] != true {
		t.Fatalf("validate: %s", r.Body)
	}
	r = s.call(t, "POST", "/v1/subscriptions", checkoutSecret, newKey(),
		map[string]any{"customer": cus, "price": pl.Price, "promo_code": "HEALTHY"})
	mustStatus(t, r, http.StatusCreated)
	sub := r.json(t)["id"].(string)
	mustStatus(t, s.call(t, "DELETE", "/v1/subscriptions/"+sub+"/promo_code", checkoutSecret, newKey(), nil), http.StatusOK)
	st.settle(t)
	mustStatus(t, s.call(t, "GET", "/v1/promo_codes", adminSecret, "", nil), http.StatusOK)

	if sum, series := s.redisErrors(t); sum != 0 {
		t.Fatalf("a healthy service reports Redis errors: %v", series)
	}

	if err := red.Stop(); err != nil {
		t.Fatal(err)
	}
	mustStatus(t, s.call(t, "GET", "/v1/promo_codes", adminSecret, "", nil), http.StatusServiceUnavailable)
	if sum, _ := s.redisErrors(t); sum == 0 {
		t.Fatal("Redis is stopped, yet no Redis error was counted")
	}
}
