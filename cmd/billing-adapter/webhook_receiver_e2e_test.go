package main

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/billing-adapter/billing-adapter/webhooks"
)

// event builds a Stripe event body.
func event(id, typ, apiVersion string, object map[string]any) []byte {
	b, _ := json.Marshal(map[string]any{"id": id, "object": "event", "type": typ, "api_version": apiVersion,
		"created": time.Now().Unix(), "livemode": false, "data": map[string]any{"object": object}})
	return b
}

// paidInvoice is an invoice.paid object without discounts: it only marks
// the customer as having paid.
func paidInvoice(customer string) map[string]any {
	return map[string]any{"id": "in_" + customer, "object": "invoice", "customer": customer, "currency": "usd",
		"amount_paid": 2000, "status": "paid", "total_discount_amounts": []any{}}
}

// postWebhook sends a body with a Stripe-Signature header ("" = none).
func (s *service) postWebhook(t *testing.T, body io.Reader, length int64, signature string) response {
	t.Helper()
	req, err := http.NewRequest("POST", s.URL+"/webhooks/stripe", body)
	if err != nil {
		t.Fatal(err)
	}
	req.ContentLength = length
	if signature != "" {
		req.Header.Set("Stripe-Signature", signature)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	return response{Status: resp.StatusCode, Header: resp.Header, Body: raw}
}

func (s *service) signed(t *testing.T, body []byte, secret string, at time.Time) response {
	t.Helper()
	return s.postWebhook(t, bytes.NewReader(body), int64(len(body)), webhooks.Sign(body, secret, at))
}

// paid reports whether the service recorded the customer as having paid:
// a new_users_only code validates as refused for them.
func (s *service) paid(t *testing.T, customer string) bool {
	t.Helper()
	r := s.call(t, "POST", "/v1/promo_codes/validate", checkoutSecret, "", map[string]any{"code": "NEWONLY", "customer": customer})
	mustStatus(t, r, http.StatusOK)
	return r.json(t)["reason"] == "new_users_only"
}

func TestWebhookReceiver(t *testing.T) {
	const oldSecret, newSecret = "whsec_old_0123456789", "whsec_new_0123456789"
	s := startService(t, map[string]string{"STRIPE_WEBHOOK_SECRETS": oldSecret + "," + newSecret})
	s.createCode(t, map[string]any{"code": "NEWONLY", "promo_type": "percentage", "amount_off": 10, "new_users_only": true})
	now := time.Now()
	seq := 0
	next := func(typ, version string) (string, []byte) {
		seq++
		cus := "cus_hook" + string(rune('a'+seq))
		if typ == "" {
			typ = "invoice.paid"
		}
		return cus, event("evt_hook"+string(rune('a'+seq)), typ, version, paidInvoice(cus))
	}
	stored := func(body []byte) bool {
		var ev struct{ ID string }
		_ = json.Unmarshal(body, &ev)
		n, err := s.Redis.Exists(context.Background(), "ba:evt:"+ev.ID).Result()
		if err != nil {
			t.Fatal(err)
		}
		return n == 1
	}

	t.Run("signed with the new secret, then a duplicate", func(t *testing.T) {
		cus, body := next("", webhooks.APIVersion)
		r := s.signed(t, body, newSecret, now)
		if r.Status != 200 || !s.paid(t, cus) || !stored(body) {
			t.Fatalf("%d %s", r.Status, r.Body)
		}
		r = s.signed(t, body, newSecret, now.Add(time.Second))
		if r.Status != 200 || !strings.Contains(string(r.Body), `"duplicate":true`) {
			t.Fatalf("duplicate: %d %s", r.Status, r.Body)
		}
	})
	t.Run("signed with the old secret during rotation", func(t *testing.T) {
		cus, body := next("", webhooks.APIVersion)
		if r := s.signed(t, body, oldSecret, now); r.Status != 200 || !s.paid(t, cus) {
			t.Fatalf("%d %s", r.Status, r.Body)
		}
	})
	refused := []struct {
		name   string
		send   func(body []byte) response
		status int
	}{
		{"no signature", func(b []byte) response { return s.postWebhook(t, bytes.NewReader(b), int64(len(b)), "") }, 400},
		{"unknown secret", func(b []byte) response { return s.signed(t, b, "whsec_attacker_000000", now) }, 400},
		{"stale timestamp", func(b []byte) response { return s.signed(t, b, newSecret, now.Add(-webhooks.Tolerance-5*time.Second)) }, 400},
		{"future timestamp", func(b []byte) response {
			return s.signed(t, b, newSecret, now.Add(webhooks.FutureTolerance+5*time.Second))
		}, 400},
		{"tampered body", func(b []byte) response {
			sig := webhooks.Sign(b, newSecret, now)
			forged := bytes.Replace(b, []byte(`"amount_paid":2000`), []byte(`"amount_paid":2001`), 1)
			return s.postWebhook(t, bytes.NewReader(forged), int64(len(forged)), sig)
		}, 400},
		{"garbled header", func(b []byte) response { return s.postWebhook(t, bytes.NewReader(b), int64(len(b)), "t=abc,v1=zz") }, 400},
	}
	for _, tc := range refused {
		t.Run(tc.name, func(t *testing.T) {
			cus, body := next("", webhooks.APIVersion)
			if r := tc.send(body); r.Status != tc.status {
				t.Fatalf("%d %s, want %d", r.Status, r.Body, tc.status)
			}
			if stored(body) || s.paid(t, cus) {
				t.Fatal("a refused delivery left a trace")
			}
		})
	}
	t.Run("oversized body", func(t *testing.T) {
		big := bytes.Repeat([]byte("x"), webhooks.MaxBody+1)
		if r := s.postWebhook(t, bytes.NewReader(big), int64(len(big)), webhooks.Sign(big, newSecret, now)); r.Status != 413 {
			t.Fatalf("with Content-Length: %d", r.Status)
		}
		// Without a length (chunked), reading stops at the limit.
		if r := s.postWebhook(t, io.MultiReader(bytes.NewReader(big), strings.NewReader("more")), -1, webhooks.Sign(big, newSecret, now)); r.Status != 413 {
			t.Fatalf("chunked: %d", r.Status)
		}
	})
	t.Run("unknown event type", func(t *testing.T) {
		cus, body := next("customer.tax_id.created", webhooks.APIVersion)
		if r := s.signed(t, body, newSecret, now); r.Status != 200 || !strings.Contains(string(r.Body), "ignored") || s.paid(t, cus) {
			t.Fatalf("%d %s", r.Status, r.Body)
		}
	})
	t.Run("another API version whose fields parse", func(t *testing.T) {
		cus, body := next("", "2024-06-20")
		if r := s.signed(t, body, newSecret, now); r.Status != 200 || !s.paid(t, cus) {
			t.Fatalf("%d %s", r.Status, r.Body)
		}
		if strings.Count(s.logs.String(), `"api_version":"2024-06-20"`) != 1 {
			t.Fatal("want exactly one warning naming the other API version")
		}
	})
	t.Run("signed garbage", func(t *testing.T) {
		body := []byte(`{"id":"evt_x","type":"invoice.paid","data":{"object":{"amount_paid":"lots"}}}`)
		if r := s.signed(t, body, newSecret, now); r.Status != 400 || stored(body) {
			t.Fatalf("%d %s", r.Status, r.Body)
		}
	})
}

// `billing-adapter webhooks send FILE` signs an event as Stripe would and
// posts it to the service.
func TestWebhooksSendCommand(t *testing.T) {
	s := startService(t, nil)
	s.createCode(t, map[string]any{"code": "NEWONLY", "promo_type": "percentage", "amount_off": 10, "new_users_only": true})
	file := t.TempDir() + "/event.json"
	if err := os.WriteFile(file, event("evt_cli_1", "invoice.paid", webhooks.APIVersion, paidInvoice("cus_cli")), 0o600); err != nil {
		t.Fatal(err)
	}
	env := map[string]string{"STRIPE_WEBHOOK_SECRETS": webhookSecret, "BILLING_ADDR": strings.TrimPrefix(s.URL, "http://")}
	var out, errOut bytes.Buffer
	if err := run(context.Background(), []string{"webhooks", "send", file}, func(k string) string { return env[k] }, &out, &errOut); err != nil {
		t.Fatalf("webhooks send: %v\n%s%s", err, out.String(), errOut.String())
	}
	if !strings.Contains(out.String(), "evt_cli_1 invoice.paid -> 200") || !s.paid(t, "cus_cli") {
		t.Fatalf("output %q; the event had no effect", out.String())
	}
	// Without a secret it refuses to send anything.
	err := run(context.Background(), []string{"webhooks", "send", file}, func(k string) string {
		return map[string]string{"BILLING_ADDR": env["BILLING_ADDR"]}[k]
	}, &out, &errOut)
	if err == nil || !strings.Contains(err.Error(), "STRIPE_WEBHOOK_SECRETS") {
		t.Fatalf("without a secret: %v", err)
	}
}
