package main

import (
	"encoding/json"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/billing-adapter/billing-adapter/internal/stripesim"
	"github.com/billing-adapter/billing-adapter/internal/testutil/redistest"
	"github.com/billing-adapter/billing-adapter/webhooks"
	"github.com/stripe/stripe-go/v76"
)

// errorOf checks the documented error shape and returns error.code.
func errorOf(t *testing.T, r response) string {
	t.Helper()
	var body struct {
		Error map[string]any `json:"error"`
	}
	if err := json.Unmarshal(r.Body, &body); err != nil || body.Error == nil {
		t.Fatalf("%d: not the error shape: %s", r.Status, r.Body)
	}
	for _, k := range []string{"type", "code", "message", "request_id"} {
		if v, _ := body.Error[k].(string); v == "" {
			t.Fatalf("%d: error.%s is missing: %s", r.Status, k, r.Body)
		}
	}
	return body.Error["code"].(string)
}

// The webhook receiver answers failures like /v1 does, from the one
// error→status table: a Redis outage is a 503 with Retry-After (not a
// 500), a Stripe failure while processing a 502, each in the API's error
// shape; the failed delivery leaves no claim behind, so Stripe's retry
// applies the event exactly once.
func TestWebhookFailuresAnswerLikeTheAPI(t *testing.T) {
	red := redistest.StartDurable(t) // AOF: a restart keeps the data, as in production
	s := newStack(t, red.URL(), stripesim.Options{}).start(t, nil)
	s.createCode(t, map[string]any{"code": "NEWONLY", "promo_type": "percentage", "amount_off": 10, "new_users_only": true})
	code := s.createCode(t, map[string]any{"code": "SWITCHED", "promo_type": "percentage", "amount_off": 10})
	codeID := code["id"].(string)
	promoID := code["stripe"].(map[string]any)["promotion_code_id"].(string)

	t.Run("Redis down: 503 with Retry-After, then the retry applies it once", func(t *testing.T) {
		body := event("evt_outage_1", "invoice.paid", webhooks.APIVersion, paidInvoice("cus_outage"))
		if err := red.Kill(); err != nil {
			t.Fatal(err)
		}
		r := s.signed(t, body, webhookSecret, time.Now())
		if r.Status != http.StatusServiceUnavailable || r.Header.Get("Retry-After") == "" || errorOf(t, r) != "service_unavailable" {
			t.Fatalf("webhook during the outage: %d Retry-After %q %s", r.Status, r.Header.Get("Retry-After"), r.Body)
		}
		v1 := s.call(t, "GET", "/v1/promo_codes", adminSecret, "", nil)
		if v1.Status != http.StatusServiceUnavailable || v1.Header.Get("Retry-After") != r.Header.Get("Retry-After") {
			t.Fatalf("/v1 during the outage: %d Retry-After %q, webhook %q", v1.Status, v1.Header.Get("Retry-After"), r.Header.Get("Retry-After"))
		}
		if err := red.Restart(); err != nil {
			t.Fatal(err)
		}
		eventually(t, "Redis back", func() bool { return s.call(t, "GET", "/readyz", "", "", nil).Status == http.StatusOK })
		if r := s.signed(t, body, webhookSecret, time.Now()); r.Status != http.StatusOK || strings.Contains(string(r.Body), "duplicate") {
			t.Fatalf("Stripe's retry: %d %s", r.Status, r.Body)
		}
		if !s.paid(t, "cus_outage") {
			t.Fatal("the retried event had no effect")
		}
		if r := s.signed(t, body, webhookSecret, time.Now()); r.Status != http.StatusOK || !strings.Contains(string(r.Body), `"duplicate":true`) {
			t.Fatalf("another delivery: %d %s", r.Status, r.Body)
		}
	})

	t.Run("Stripe fails while processing: 502, claim released, the retry applies it once", func(t *testing.T) {
		if _, err := s.Stripe.PromotionCodes.Update(promoID, &stripe.PromotionCodeParams{Active: stripe.Bool(false)}); err != nil {
			t.Fatal(err)
		}
		body := event("evt_promo_off", "promotion_code.updated", webhooks.APIVersion,
			map[string]any{"id": promoID, "object": "promotion_code", "active": false, "coupon": map[string]any{"id": codeID}})
		s.Sim.InjectFault(stripesim.Fault{Kind: stripesim.FaultServerError, Method: "GET", Path: "/v1/promotion_codes/" + promoID})
		r := s.signed(t, body, webhookSecret, time.Now())
		if r.Status != http.StatusBadGateway || errorOf(t, r) != "stripe_error" {
			t.Fatalf("with Stripe failing: %d %s", r.Status, r.Body)
		}
		if s.code(t, codeID)["stripe"].(map[string]any)["active"] != true {
			t.Fatal("the failed delivery changed the code")
		}
		if r := s.signed(t, body, webhookSecret, time.Now()); r.Status != http.StatusOK || strings.Contains(string(r.Body), "duplicate") {
			t.Fatalf("Stripe's retry: %d %s", r.Status, r.Body)
		}
		if s.code(t, codeID)["stripe"].(map[string]any)["active"] != false {
			t.Fatal("the retried event had no effect")
		}
	})
}
