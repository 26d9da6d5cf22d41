package main

import (
	"context"
	"net/http"
	"strings"
	"testing"

	"github.com/billing-adapter/billing-adapter/internal/stripesim"
)

// Which answers an Idempotency-Key keeps (README "Idempotency"), as Stripe
// does: nothing for a request that never began executing, so the corrected
// request with the same key simply runs; the outcome of one that began, so a
// repeat replays it.
func TestIdempotencySavesOnlyWhatBeganExecuting(t *testing.T) {
	s := startService(t, nil)
	pl := s.newPlan(t, "usd", 2000)
	ok := func(code string) map[string]any { return percentBody(code) }
	dbsize := func() int64 { return s.Redis.DBSize(context.Background()).Val() }

	// Refused before the operation began: the same key with the corrected
	// request runs (201, not a replay, not 422).
	notSaved := []struct {
		name        string
		method      string
		path        string
		secret      string
		first       any
		status      int
		errCode     string
		corrected   any
		correctedOK int
	}{
		{"400 malformed JSON", "POST", "/v1/promo_codes", adminSecret, `{"code":"NS1",`, 400, "invalid_request", ok("NS1"), 201},
		{"400 unknown field", "POST", "/v1/promo_codes", adminSecret, `{"code":"NS2","bogus":1}`, 400, "invalid_request", ok("NS2"), 201},
		{"400 amount_off must be positive", "POST", "/v1/promo_codes", adminSecret,
			`{"code":"NS3","promo_type":"flat_amount","amount_off":-5,"currency":"usd"}`, 400, "invalid_request",
			`{"code":"NS3","promo_type":"flat_amount","amount_off":5,"currency":"usd"}`, 201},
		{"400 expiration not a timestamp", "POST", "/v1/promo_codes", adminSecret,
			`{"code":"NS4","promo_type":"percentage","amount_off":10,"expiration_datetime":"tomorrow"}`, 400, "invalid_request",
			`{"code":"NS4","promo_type":"percentage","amount_off":10,"expiration_datetime":"2099-01-01T00:00:00Z"}`, 201},
		{"400 plan_ids names no Stripe price", "POST", "/v1/promo_codes", adminSecret,
			`{"code":"NS5","promo_type":"percentage","amount_off":10,"plan_ids":["price_nosuch"]}`, 400, "invalid_request",
			`{"code":"NS5","promo_type":"percentage","amount_off":10,"plan_ids":["` + pl.Price + `"]}`, 201},
		{"400 subscribe without customer", "POST", "/v1/subscriptions", checkoutSecret,
			`{"price":"` + pl.Price + `"}`, 400, "invalid_request", nil, 201},
		{"400 apply without code", "POST", "/v1/subscriptions/sub_x/promo_code", checkoutSecret,
			`{}`, 400, "invalid_request", nil, 0},
	}
	for _, tt := range notSaved {
		t.Run(tt.name, func(t *testing.T) {
			key := newKey()
			r := s.call(t, tt.method, tt.path, tt.secret, key, tt.first)
			mustStatus(t, r, tt.status)
			if code, _ := r.errorCode(t); code != tt.errCode {
				t.Fatalf("code %q, want %q", code, tt.errCode)
			}
			// The same request again runs again (no replay header).
			again := s.call(t, tt.method, tt.path, tt.secret, key, tt.first)
			mustStatus(t, again, tt.status)
			if again.Header.Get("Idempotent-Replayed") != "" {
				t.Fatal("a request refused before it began was replayed")
			}
			if tt.correctedOK == 0 {
				return
			}
			corrected := tt.corrected
			if corrected == nil { // the subscribe case
				corrected = map[string]any{"customer": s.newCustomer(t, ""), "price": pl.Price}
			}
			fixed := s.call(t, tt.method, tt.path, tt.secret, key, corrected)
			mustStatus(t, fixed, tt.correctedOK)
			if fixed.Header.Get("Idempotent-Replayed") != "" {
				t.Fatal("the corrected request was answered from a record")
			}
			// From now on the key holds the corrected request's answer.
			replay := s.call(t, tt.method, tt.path, tt.secret, key, corrected)
			if replay.Status != tt.correctedOK || replay.Header.Get("Idempotent-Replayed") != "true" {
				t.Fatalf("replay of the corrected request: %d %v", replay.Status, replay.Header)
			}
		})
	}

	t.Run("400 update with an invalid stock, then the corrected update", func(t *testing.T) {
		id := s.createCode(t, map[string]any{"code": "NSUPD", "promo_type": "percentage", "amount_off": 10, "stock": 3})["id"].(string)
		key := newKey()
		r := s.call(t, "POST", "/v1/promo_codes/"+id, adminSecret, key, `{"stock":-1}`)
		mustStatus(t, r, 400)
		r = s.call(t, "POST", "/v1/promo_codes/"+id, adminSecret, key, `{"stock":7}`)
		mustStatus(t, r, 200)
		if num(r.json(t), "stock") != 7 || r.Header.Get("Idempotent-Replayed") != "" {
			t.Fatalf("corrected update: %s", r.Body)
		}
	})

	// Refused before the idempotency layer: no record at all (nothing is
	// written to Redis), and the key stays free.
	before := dbsize()
	key := newKey()
	for _, tt := range []struct {
		name, method, path, secret string
		body                       any
		status                     int
	}{
		{"401 no key", "POST", "/v1/promo_codes", "", ok("NS6"), 401},
		{"401 unknown key", "POST", "/v1/promo_codes", "not-a-key-at-all", ok("NS6"), 401},
		{"403 scope", "POST", "/v1/promo_codes", checkoutSecret, ok("NS6"), 403},
		{"404 route", "POST", "/v1/promo_code", adminSecret, ok("NS6"), 404},
		{"413 body too large", "POST", "/v1/promo_codes", adminSecret, `{"code":"` + strings.Repeat("A", 1<<20) + `"}`, 413},
	} {
		mustStatus(t, s.call(t, tt.method, tt.path, tt.secret, key, tt.body), tt.status)
	}
	if after := dbsize(); after != before {
		t.Fatalf("refused requests wrote %d Redis keys", after-before)
	}
	mustStatus(t, s.call(t, "POST", "/v1/promo_codes", adminSecret, key, ok("NS6")), 201)

	// Decided by the domain after it began: saved and replayed; another
	// body with the key is 422.
	t.Run("422 code_exhausted is saved", func(t *testing.T) {
		code := s.createCode(t, map[string]any{"code": "GONE", "promo_type": "percentage", "amount_off": 10, "stock": 0})
		cus := s.newCustomer(t, "")
		body := map[string]any{"customer": cus, "price": pl.Price, "promo_code": "GONE"}
		key := newKey()
		r := s.call(t, "POST", "/v1/subscriptions", checkoutSecret, key, body)
		mustStatus(t, r, 422)
		if c, _ := r.errorCode(t); c != "code_exhausted" {
			t.Fatal(c)
		}
		// Stock comes back; the same request with the same key still gets
		// the saved refusal, without running.
		mustStatus(t, s.call(t, "POST", "/v1/promo_codes/"+code["id"].(string), adminSecret, newKey(), `{"stock":5}`), 200)
		calls := s.Sim.Count("POST /v1/subscriptions")
		replay := s.call(t, "POST", "/v1/subscriptions", checkoutSecret, key, body)
		if replay.Status != 422 || replay.Header.Get("Idempotent-Replayed") != "true" || string(replay.Body) != string(r.Body) {
			t.Fatalf("replay %d %v %s", replay.Status, replay.Header, replay.Body)
		}
		if s.Sim.Count("POST /v1/subscriptions") != calls {
			t.Fatal("the replay reached Stripe")
		}
		other := s.call(t, "POST", "/v1/subscriptions", checkoutSecret, key, map[string]any{"customer": cus, "price": pl.Price})
		mustStatus(t, other, 422)
		if c, _ := other.errorCode(t); c != "idempotency_key_reused" {
			t.Fatal(c)
		}
	})
	t.Run("400 of Stripe refusing a subscribe's price is saved", func(t *testing.T) {
		key, body := newKey(), map[string]any{"customer": s.newCustomer(t, ""), "price": "price_nosuch"}
		first := s.call(t, "POST", "/v1/subscriptions", checkoutSecret, key, body)
		mustStatus(t, first, 400)
		r := s.call(t, "POST", "/v1/subscriptions", checkoutSecret, key, body)
		if r.Status != 400 || r.Header.Get("Idempotent-Replayed") != "true" || string(r.Body) != string(first.Body) {
			t.Fatalf("%d %v %s", r.Status, r.Header, r.Body)
		}
	})
	t.Run("404 of an unknown promo code is saved", func(t *testing.T) {
		key := newKey()
		mustStatus(t, s.call(t, "POST", "/v1/promo_codes/pc_nosuch", adminSecret, key, `{"stock":1}`), 404)
		r := s.call(t, "POST", "/v1/promo_codes/pc_nosuch", adminSecret, key, `{"stock":1}`)
		if r.Status != 404 || r.Header.Get("Idempotent-Replayed") != "true" {
			t.Fatalf("%d %v", r.Status, r.Header)
		}
	})
	t.Run("502 is not saved: the retry resumes", func(t *testing.T) {
		s.Sim.InjectFault(stripesim.Fault{Kind: stripesim.FaultServerError, Method: "POST", Path: "/v1/promotion_codes"})
		key := newKey()
		mustStatus(t, s.call(t, "POST", "/v1/promo_codes", adminSecret, key, ok("NS502")), http.StatusBadGateway)
		r := s.call(t, "POST", "/v1/promo_codes", adminSecret, key, ok("NS502"))
		if r.Status != 201 || r.Header.Get("Idempotent-Replayed") != "" {
			t.Fatalf("retry after 502: %d %v %s", r.Status, r.Header, r.Body)
		}
	})
}
