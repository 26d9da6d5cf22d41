package main

import (
	"net/http"
	"strconv"
	"strings"
	"testing"
)

// metricValue returns the value of the sample of name whose labels include
// every k="v" of labels (the sum when several match), and whether any did.
func metricValue(body, name string, labels map[string]string) (float64, bool) {
	var sum float64
	found := false
	for line := range strings.SplitSeq(body, "\n") {
		if !strings.HasPrefix(line, name+"{") && !strings.HasPrefix(line, name+" ") {
			continue
		}
		ok := true
		for k, v := range labels {
			if !strings.Contains(line, k+`="`+v+`"`) {
				ok = false
			}
		}
		if !ok {
			continue
		}
		f := strings.Fields(line)
		v, err := strconv.ParseFloat(f[len(f)-1], 64)
		if err == nil {
			sum, found = sum+v, true
		}
	}
	return sum, found
}

// TestBusinessMetrics: redemptions by outcome and reason, webhook events
// by type and result with their lag, Stripe calls by operation and outcome,
// and the opt-in per-code stock gauges.
func TestBusinessMetrics(t *testing.T) {
	st, s := webhookStack(t, "", map[string]string{"METRICS_CODE_STOCK": "true"})
	threeMonthsOfDiscount(t, st, s, nil) // create, apply, five months of webhooks
	cus := st.newCustomer(t, "")
	r := s.call(t, "POST", "/v1/promo_codes/validate", checkoutSecret, "", map[string]any{"code": "NOSUCH", "customer": cus})
	mustStatus(t, r, http.StatusOK)
	r = s.call(t, "POST", "/v1/promo_codes/validate", checkoutSecret, "", map[string]any{"code": "THREEMONTHS", "customer": cus})
	mustStatus(t, r, http.StatusOK)
	mustStatus(t, s.apply(t, "sub_missing", "THREEMONTHS", "", newKey()), http.StatusNotFound)
	bad := s.call(t, "POST", "/webhooks/stripe", "", "", `{"id":"evt_x","type":"invoice.paid"}`)
	mustStatus(t, bad, http.StatusBadRequest)

	m := s.call(t, "GET", "/metrics", "", "", nil)
	mustStatus(t, m, http.StatusOK)
	body := string(m.Body)
	checks := []struct {
		name   string
		labels map[string]string
		min    float64
	}{
		{"billing_redemptions_total", map[string]string{"operation": "apply", "outcome": "ok"}, 1},
		{"billing_redemptions_total", map[string]string{"operation": "apply", "outcome": "refused", "reason": "subscription_not_found"}, 1},
		{"billing_redemptions_total", map[string]string{"operation": "validate", "outcome": "refused", "reason": "code_not_found"}, 1},
		{"billing_redemptions_total", map[string]string{"operation": "validate", "outcome": "ok"}, 1},
		{"billing_webhook_events_total", map[string]string{"type": "invoice.paid", "result": "processed"}, 3},
		{"billing_webhook_events_total", map[string]string{"type": "customer.discount.created", "result": "processed"}, 1},
		{"billing_webhook_events_total", map[string]string{"type": "unknown", "result": "rejected"}, 1},
		{"billing_webhook_lag_seconds_count", map[string]string{"type": "invoice.paid"}, 3},
		{"billing_stripe_calls_total", map[string]string{"operation": "subscription.update", "outcome": "ok"}, 1},
		{"billing_promo_code_stock", map[string]string{"code": "THREEMONTHS"}, 9},
		{"billing_promo_code_uses", map[string]string{"code": "THREEMONTHS"}, 1},
	}
	for _, c := range checks {
		v, ok := metricValue(body, c.name, c.labels)
		if !ok || v < c.min {
			t.Errorf("%s%v = %v (found %v), want at least %v", c.name, c.labels, v, ok, c.min)
		}
	}
	if v, _ := metricValue(body, "billing_promo_code_stock", map[string]string{"code": "THREEMONTHS"}); v != 9 {
		t.Errorf("stock gauge %v, want 9", v)
	}

	// Off by default: no per-code series.
	plain := startService(t, nil)
	plain.createCode(t, map[string]any{"code": "NOGAUGE", "promo_type": "percentage", "amount_off": 5, "stock": 3})
	m = plain.call(t, "GET", "/metrics", "", "", nil)
	if strings.Contains(string(m.Body), "billing_promo_code_stock") {
		t.Error("per-code gauges without METRICS_CODE_STOCK")
	}
}
