package main

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/billing-adapter/billing-adapter/internal/stripesim"
	"github.com/billing-adapter/billing-adapter/internal/testutil/redistest"
	"github.com/stripe/stripe-go/v76"
)

func percentBody(code string) map[string]any {
	return map[string]any{"code": code, "promo_type": "percentage", "amount_off": 12.5, "promo_duration_months": 3}
}

func TestCreatePromoCodeIsMirroredToStripe(t *testing.T) {
	s := startService(t, nil)
	prod, err := s.Stripe.Products.New(&stripe.ProductParams{Name: stripe.String("Instance")})
	if err != nil {
		t.Fatal(err)
	}
	price, err := s.Stripe.Prices.New(&stripe.PriceParams{Currency: stripe.String("usd"), UnitAmount: stripe.Int64(4900),
		Product: stripe.String(prod.ID), Recurring: &stripe.PriceRecurringParams{Interval: stripe.String("month")}})
	if err != nil {
		t.Fatal(err)
	}
	s.Sim.ResetCounts()
	expires := time.Now().Add(30 * 24 * time.Hour).UTC().Truncate(time.Second)
	r := s.call(t, "POST", "/v1/promo_codes", adminSecret, newKey(), map[string]any{
		"code": "spring25", "promo_type": "percentage", "amount_off": "12.5", "duration": "repeating",
		"promo_duration_months": 3, "expiration_datetime": expires.Format(time.RFC3339), "new_users_only": true,
		"plan_ids": []string{price.ID}, "stock": 10, "metadata": map[string]string{"campaign": "spring"},
	})
	mustStatus(t, r, http.StatusCreated)
	pc := r.json(t)
	for k, want := range map[string]any{
		"object": "promo_code", "code": "SPRING25", "promo_type": "percentage", "amount_off": 12.5, "duration": "repeating",
		"promo_duration_months": 3.0, "stock": 10.0, "unlimited_stock": false, "uses": 0.0, "status": "active",
		"new_users_only": true, "expiration_datetime": expires.Format(time.RFC3339),
	} {
		if pc[k] != want {
			t.Errorf("%s = %v, want %v", k, pc[k], want)
		}
	}
	id := pc["id"].(string)
	if !strings.HasPrefix(id, "pc_") {
		t.Fatalf("id %q", id)
	}
	refs := pc["stripe"].(map[string]any)
	if refs["state"] != "ready" || refs["active"] != true {
		t.Fatalf("stripe refs %v", refs)
	}

	coupon, err := s.Stripe.Coupons.Get(refs["coupon_id"].(string), &stripe.CouponParams{Params: stripe.Params{Expand: []*string{stripe.String("applies_to")}}})
	if err != nil {
		t.Fatal(err)
	}
	if coupon.PercentOff != 12.5 || coupon.Duration != "repeating" || coupon.DurationInMonths != 3 ||
		coupon.Metadata["promo_code_id"] != id || coupon.Metadata["campaign"] != "spring" ||
		coupon.AppliesTo == nil || len(coupon.AppliesTo.Products) != 1 || coupon.AppliesTo.Products[0] != prod.ID {
		t.Fatalf("coupon %+v applies_to %+v", coupon, coupon.AppliesTo)
	}
	promo, err := s.Stripe.PromotionCodes.Get(refs["promotion_code_id"].(string), nil)
	if err != nil {
		t.Fatal(err)
	}
	if promo.Code != "SPRING25" || promo.Coupon.ID != coupon.ID || !promo.Active || promo.ExpiresAt != expires.Unix() ||
		promo.Restrictions == nil || !promo.Restrictions.FirstTimeTransaction || promo.Metadata["promo_code_id"] != id {
		t.Fatalf("promotion code %+v", promo)
	}
	// Minimal Stripe traffic: one price lookup, one coupon, one promotion code.
	for op, want := range map[string]int{"GET /v1/prices/{id}": 1, "POST /v1/coupons": 1, "POST /v1/promotion_codes": 1} {
		if got := s.Sim.Count(op); got != want {
			t.Errorf("%s called %d times, want %d (%v)", op, got, want, s.Sim.Counts())
		}
	}

	got := s.call(t, "GET", "/v1/promo_codes/"+id, adminSecret, "", nil)
	mustStatus(t, got, http.StatusOK)
	if string(got.Body) != string(r.Body) {
		t.Fatalf("GET differs from create:\n%s\n%s", got.Body, r.Body)
	}
}

func TestCreateFlatAmountExactMinorUnits(t *testing.T) {
	s := startService(t, nil)
	tests := []struct {
		code, amount, currency string
		minor                  int64
	}{
		{"USD550", "5.50", "usd", 550}, {"JPY500", "500", "jpy", 500}, {"KWD1230", "1.230", "kwd", 1230},
	}
	for _, tt := range tests {
		r := s.call(t, "POST", "/v1/promo_codes", adminSecret, newKey(), fmt.Sprintf(
			`{"code":%q,"promo_type":"flat_amount","amount_off":%s,"currency":%q,"duration":"once"}`, tt.code, tt.amount, tt.currency))
		mustStatus(t, r, http.StatusCreated)
		pc := r.json(t)
		if pc["amount_off_minor"] != float64(tt.minor) || pc["currency"] != tt.currency || pc["unlimited_stock"] != true || pc["stock"] != nil {
			t.Errorf("%s: %v", tt.code, pc)
		}
		coupon, err := s.Stripe.Coupons.Get(pc["stripe"].(map[string]any)["coupon_id"].(string), nil)
		if err != nil {
			t.Fatal(err)
		}
		if coupon.AmountOff != tt.minor || string(coupon.Currency) != tt.currency || coupon.Duration != "once" {
			t.Errorf("%s coupon: %d %s %s", tt.code, coupon.AmountOff, coupon.Currency, coupon.Duration)
		}
	}
}

func TestCreateRefusesBadInput(t *testing.T) {
	s := startService(t, nil)
	mustStatus(t, s.call(t, "POST", "/v1/promo_codes", adminSecret, newKey(), percentBody("TAKEN")), http.StatusCreated)
	tests := []struct {
		name   string
		body   any
		status int
		code   string
		param  string
	}{
		{"unknown field", `{"code":"A","promo_type":"percentage","amount_off":5,"colour":"red"}`, 400, "invalid_request", "colour"},
		{"wrong type", `{"code":"A","promo_type":"percentage","amount_off":5,"stock":"ten"}`, 400, "invalid_request", "stock"},
		{"not json", `{"code":`, 400, "invalid_request", ""},
		{"empty body", ``, 400, "invalid_request", ""},
		{"two objects", `{"code":"A","promo_type":"percentage","amount_off":5}{}`, 400, "invalid_request", ""},
		{"eth", `{"code":"A","promo_type":"flat_amount","amount_off":5,"currency":"eth"}`, 400, "invalid_request", "currency"},
		{"bgn", `{"code":"A","promo_type":"flat_amount","amount_off":5,"currency":"bgn"}`, 400, "invalid_request", "currency"},
		{"jpy decimals", `{"code":"A","promo_type":"flat_amount","amount_off":5.5,"currency":"jpy"}`, 400, "invalid_request", "amount_off"},
		{"kwd step", `{"code":"A","promo_type":"flat_amount","amount_off":1.235,"currency":"kwd"}`, 400, "invalid_request", "amount_off"},
		{"percent over 100", `{"code":"A","promo_type":"percentage","amount_off":100.5}`, 400, "invalid_request", "amount_off"},
		{"percent zero", `{"code":"A","promo_type":"percentage","amount_off":0}`, 400, "invalid_request", "amount_off"},
		{"code charset", `{"code":"NO-DASH","promo_type":"percentage","amount_off":5}`, 400, "invalid_request", "code"},
		{"code case-insensitive duplicate", `{"code":"taken","promo_type":"percentage","amount_off":5}`, 409, "conflict", "code"},
		{"past expiration", `{"code":"A","promo_type":"percentage","amount_off":5,"expiration_datetime":"2020-01-01T00:00:00Z"}`, 400, "invalid_request", "expiration_datetime"},
		{"bad timestamp", `{"code":"A","promo_type":"percentage","amount_off":5,"expiration_datetime":"tomorrow"}`, 400, "invalid_request", "expiration_datetime"},
		{"unknown price", `{"code":"A","promo_type":"percentage","amount_off":5,"plan_ids":["price_nope"]}`, 400, "invalid_request", "plan_ids"},
		{"metadata key too long", fmt.Sprintf(`{"code":"A","promo_type":"percentage","amount_off":5,"metadata":{%q:"v"}}`, strings.Repeat("k", 41)), 400, "invalid_request", "metadata"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := s.call(t, "POST", "/v1/promo_codes", adminSecret, newKey(), tt.body)
			mustStatus(t, r, tt.status)
			code, param := r.errorCode(t)
			if code != tt.code || param != tt.param {
				t.Fatalf("code %q param %q, want %q %q: %s", code, param, tt.code, tt.param, r.Body)
			}
		})
	}
	// None of the refused requests reached Stripe's write endpoints.
	if n := s.Sim.Count("POST /v1/coupons"); n != 1 {
		t.Fatalf("%d coupons created, want only the first code's", n)
	}
}

func TestAuthAndScopes(t *testing.T) {
	s := startService(t, nil)
	tests := []struct {
		name, method, path, secret, header string
		status                             int
		code                               string
	}{
		{"no key", "GET", "/v1/promo_codes", "", "", 401, "unauthorized"},
		{"wrong key", "GET", "/v1/promo_codes", "not-a-key-at-all", "", 401, "unauthorized"},
		{"key prefix of a real key", "GET", "/v1/promo_codes", adminSecret[:10], "", 401, "unauthorized"},
		{"basic auth with a password", "GET", "/v1/promo_codes", "", "Basic YWRtaW46eA==", 401, "unauthorized"},
		// HTTP Basic with the key as user name and an empty password, as
		// Stripe accepts it (curl -u KEY:): the same keys and scopes.
		{"basic: admin key, empty password", "GET", "/v1/promo_codes", "", basic(adminSecret + ":"), 200, ""},
		{"basic: checkout key on admin route", "GET", "/v1/promo_codes", "", basic(checkoutSecret + ":"), 403, "forbidden"},
		{"basic: admin key with a password", "GET", "/v1/promo_codes", "", basic(adminSecret + ":pw"), 401, "unauthorized"},
		{"basic: admin key, no colon", "GET", "/v1/promo_codes", "", basic(adminSecret), 401, "unauthorized"},
		{"basic: unknown key", "GET", "/v1/promo_codes", "", basic("not-a-key-at-all:"), 401, "unauthorized"},
		{"basic: empty user", "GET", "/v1/promo_codes", "", basic(":"), 401, "unauthorized"},
		{"basic: not base64", "GET", "/v1/promo_codes", "", "Basic %%%", 401, "unauthorized"},
		{"basic: nothing after the scheme", "GET", "/v1/promo_codes", "", "Basic", 401, "unauthorized"},
		{"scheme in lower case", "GET", "/v1/promo_codes", "", "bearer " + adminSecret, 200, ""},
		{"another scheme", "GET", "/v1/promo_codes", "", "Token " + adminSecret, 401, "unauthorized"},
		{"key without a scheme", "GET", "/v1/promo_codes", "", adminSecret, 401, "unauthorized"},
		{"checkout key on admin route", "GET", "/v1/promo_codes", checkoutSecret, "", 403, "forbidden"},
		{"checkout key cannot create", "POST", "/v1/promo_codes", checkoutSecret, "", 403, "forbidden"},
		{"admin key", "GET", "/v1/promo_codes", adminSecret, "", 200, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			req, _ := http.NewRequest(tt.method, s.URL+tt.path, strings.NewReader(`{}`))
			if tt.secret != "" {
				req.Header.Set("Authorization", "Bearer "+tt.secret)
			}
			if tt.header != "" {
				req.Header.Set("Authorization", tt.header)
			}
			req.Header.Set("Idempotency-Key", newKey())
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			if resp.StatusCode != tt.status {
				t.Fatalf("status %d, want %d", resp.StatusCode, tt.status)
			}
			if tt.code != "" {
				raw, _ := io.ReadAll(resp.Body)
				if code, _ := (response{Status: resp.StatusCode, Body: raw}).errorCode(t); code != tt.code {
					t.Fatalf("code %q, want %q: %s", code, tt.code, raw)
				}
			}
		})
	}
}

// basic is an Authorization header of HTTP Basic credentials user:password.
func basic(credentials string) string {
	return "Basic " + base64.StdEncoding.EncodeToString([]byte(credentials))
}

func TestIdempotencyContract(t *testing.T) {
	s := startService(t, nil)
	key := newKey()
	first := s.call(t, "POST", "/v1/promo_codes", adminSecret, key, percentBody("IDEM1"))
	mustStatus(t, first, http.StatusCreated)
	if first.Header.Get("Idempotent-Replayed") != "" {
		t.Fatal("first answer marked as replay")
	}
	calls := s.Sim.Count("POST /v1/coupons")

	// Same key, same body (whitespace aside): the saved answer, no new work.
	replay := s.call(t, "POST", "/v1/promo_codes", adminSecret, key,
		`{ "code": "IDEM1", "promo_type": "percentage", "amount_off": 12.5, "promo_duration_months": 3 }`)
	mustStatus(t, replay, http.StatusCreated)
	if replay.Header.Get("Idempotent-Replayed") != "true" || string(replay.Body) != string(first.Body) {
		t.Fatalf("replay: %v %s", replay.Header, replay.Body)
	}
	if s.Sim.Count("POST /v1/coupons") != calls {
		t.Fatal("replay reached Stripe")
	}
	// Same key, other body: 422.
	r := s.call(t, "POST", "/v1/promo_codes", adminSecret, key, percentBody("IDEM2"))
	mustStatus(t, r, http.StatusUnprocessableEntity)
	if code, _ := r.errorCode(t); code != "idempotency_key_reused" {
		t.Fatal(code)
	}
	// Same key, other path: 422 too.
	id := first.json(t)["id"].(string)
	mustStatus(t, s.call(t, "POST", "/v1/promo_codes/"+id, adminSecret, key, percentBody("IDEM1")), http.StatusUnprocessableEntity)
	// Keys are scoped per API key: another admin key with the same key value runs the request.
	other := s.call(t, "POST", "/v1/promo_codes", admin2Secret, key, percentBody("IDEM1"))
	mustStatus(t, other, http.StatusConflict) // it ran: the code text is taken
	// A 400 of request validation is not saved: the corrected request with
	// the same key runs (TestIdempotencySavesOnlyWhatBeganExecuting has
	// every class).
	bad := newKey()
	mustStatus(t, s.call(t, "POST", "/v1/promo_codes", adminSecret, bad, `{"code":"-"}`), 400)
	mustStatus(t, s.call(t, "POST", "/v1/promo_codes", adminSecret, bad, percentBody("IDEMFIX")), 201)
	// Header rules.
	r = s.call(t, "POST", "/v1/promo_codes", adminSecret, "", percentBody("NOKEY"))
	mustStatus(t, r, 400)
	if code, param := r.errorCode(t); code != "idempotency_key_invalid" || param != "Idempotency-Key" {
		t.Fatal(code, param)
	}
	mustStatus(t, s.call(t, "POST", "/v1/promo_codes", adminSecret, strings.Repeat("k", 256), percentBody("LONGKEY")), 400)
	mustStatus(t, s.call(t, "POST", "/v1/promo_codes", adminSecret, strings.Repeat("k", 255), percentBody("LONGKEY")), 201)
	// GET needs no key.
	mustStatus(t, s.call(t, "GET", "/v1/promo_codes", adminSecret, "", nil), 200)
}

func TestIdempotencyTTLFromConfig(t *testing.T) {
	s := startService(t, map[string]string{"IDEMPOTENCY_TTL": "90m"})
	mustStatus(t, s.call(t, "POST", "/v1/promo_codes", adminSecret, newKey(), percentBody("TTL1")), 201)
	keys, err := s.Redis.Keys(context.Background(), "ba:{idem:*").Result()
	if err != nil || len(keys) != 1 {
		t.Fatalf("idempotency records: %v %v", keys, err)
	}
	ttl := s.Redis.PTTL(context.Background(), keys[0]).Val()
	if ttl <= 89*time.Minute || ttl > 90*time.Minute {
		t.Fatalf("record TTL %v, want 90m", ttl)
	}
}

// 50 concurrent identical requests with one Idempotency-Key create exactly
// one coupon and one promotion code.
func TestConcurrentIdenticalCreatesMakeOneStripeObject(t *testing.T) {
	s := startService(t, nil)
	key := newKey()
	var wg sync.WaitGroup
	results := make([]response, 50)
	start := make(chan struct{})
	for i := range results {
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			<-start
			results[i] = s.call(t, "POST", "/v1/promo_codes", adminSecret, key, percentBody("RUSH"))
		}(i)
	}
	close(start)
	wg.Wait()
	ids := map[string]bool{}
	statuses := map[int]int{}
	for _, r := range results {
		statuses[r.Status]++
		switch r.Status {
		case http.StatusCreated:
			ids[r.json(t)["id"].(string)] = true
		case http.StatusConflict:
			if code, _ := r.errorCode(t); code != "idempotency_key_in_use" {
				t.Fatalf("409 with %s", code)
			}
		default:
			t.Fatalf("unexpected %d: %s", r.Status, r.Body)
		}
	}
	if len(ids) != 1 {
		t.Fatalf("statuses %v, promo code IDs %v: want exactly one", statuses, ids)
	}
	if c, p := s.Sim.Count("POST /v1/coupons"), s.Sim.Count("POST /v1/promotion_codes"); c != 1 || p != 1 {
		t.Fatalf("Stripe saw %d coupon and %d promotion code creates, want 1 and 1", c, p)
	}
	// After the rush, the key replays the one result.
	r := s.call(t, "POST", "/v1/promo_codes", adminSecret, key, percentBody("RUSH"))
	if r.Status != 201 || !ids[r.json(t)["id"].(string)] {
		t.Fatalf("final replay %d %s", r.Status, r.Body)
	}
	listed := s.call(t, "GET", "/v1/promo_codes", adminSecret, "", nil).json(t)["data"].([]any)
	if len(listed) != 1 {
		t.Fatalf("%d codes listed", len(listed))
	}
	// Stripe holds exactly one coupon and one promotion code.
	if n := countCoupons(t, s); n != 1 {
		t.Fatalf("%d coupons in Stripe", n)
	}
	if n := countPromotionCodes(t, s, "RUSH"); n != 1 {
		t.Fatalf("%d promotion codes in Stripe", n)
	}
}

func countCoupons(t *testing.T, s *service) int {
	t.Helper()
	n := 0
	it := s.Stripe.Coupons.List(&stripe.CouponListParams{})
	for it.Next() {
		n++
	}
	if err := it.Err(); err != nil {
		t.Fatal(err)
	}
	return n
}

func countPromotionCodes(t *testing.T, s *service, code string) int {
	t.Helper()
	n := 0
	it := s.Stripe.PromotionCodes.List(&stripe.PromotionCodeListParams{Code: stripe.String(code)})
	for it.Next() {
		n++
	}
	if err := it.Err(); err != nil {
		t.Fatal(err)
	}
	return n
}

// Stripe fails halfway: the coupon is made, the promotion code is refused.
// A retry with the same Idempotency-Key finishes without a second coupon; so
// does a retry with another key; nothing is left active in between.
func TestHalfwayFailureIsFinishedByRetry(t *testing.T) {
	for _, sameKey := range []bool{true, false} {
		t.Run(fmt.Sprintf("same key %v", sameKey), func(t *testing.T) {
			s := startService(t, nil)
			s.Sim.InjectFault(stripesim.Fault{Kind: stripesim.FaultServerError, Method: "POST", Path: "/v1/promotion_codes"})
			key := newKey()
			r := s.call(t, "POST", "/v1/promo_codes", adminSecret, key, percentBody("HALF"))
			mustStatus(t, r, http.StatusBadGateway)
			e := r.json(t)["error"].(map[string]any)
			if e["code"] != "stripe_error" || e["stripe_request_id"] == nil || !strings.Contains(e["message"].(string), "Stripe") {
				t.Fatalf("502 body: %s", r.Body)
			}
			if countCoupons(t, s) != 1 || countPromotionCodes(t, s, "HALF") != 0 {
				t.Fatal("expected one coupon and no promotion code after the failure")
			}
			// Nothing half-made is listed or redeemable.
			if l := s.call(t, "GET", "/v1/promo_codes?status=all", adminSecret, "", nil).json(t)["data"].([]any); len(l) != 0 {
				t.Fatalf("unfinished code listed: %v", l)
			}
			retryKey := key
			if !sameKey {
				retryKey = newKey()
			}
			r2 := s.call(t, "POST", "/v1/promo_codes", adminSecret, retryKey, percentBody("HALF"))
			mustStatus(t, r2, http.StatusCreated)
			if s.Sim.Count("POST /v1/coupons") != 1 || countCoupons(t, s) != 1 {
				t.Fatalf("second coupon created: %v", s.Sim.Counts())
			}
			if countPromotionCodes(t, s, "HALF") != 1 {
				t.Fatal("promotion code missing after retry")
			}
		})
	}
}

// The coupon is created but Stripe answers 500 (and replays that 500 for the
// key, as Stripe does): the service finds the coupon by its fixed ID instead
// of making a second one. The same for a promotion code.
func TestCommittedButUnansweredStripeCreates(t *testing.T) {
	for _, path := range []string{"/v1/coupons", "/v1/promotion_codes"} {
		t.Run(path, func(t *testing.T) {
			s := startService(t, nil)
			s.Sim.InjectFault(stripesim.Fault{Kind: stripesim.FaultCommitThenError, Method: "POST", Path: path})
			r := s.call(t, "POST", "/v1/promo_codes", adminSecret, newKey(), percentBody("LOST"))
			mustStatus(t, r, http.StatusCreated)
			if countCoupons(t, s) != 1 || countPromotionCodes(t, s, "LOST") != 1 {
				t.Fatalf("want one coupon and one promotion code: %v", s.Sim.Counts())
			}
			pc := r.json(t)["stripe"].(map[string]any)
			if pc["coupon_id"] == "" || pc["promotion_code_id"] == "" {
				t.Fatalf("refs %v", pc)
			}
		})
	}
}

func TestCrashedCreateIsResumedAfterItsLease(t *testing.T) {
	// A crash leaves the provisioning lease held; a same-key retry resumes at
	// once (the store tests cover takeover by another key after the lease).
	s := startService(t, nil)
	s.Sim.InjectFault(stripesim.Fault{Kind: stripesim.FaultHang, Method: "POST", Path: "/v1/promotion_codes", Delay: 300 * time.Millisecond})
	key := newKey()
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, "POST", s.URL+"/v1/promo_codes", strings.NewReader(`{"code":"CRASH","promo_type":"percentage","amount_off":5}`))
	req.Header.Set("Authorization", "Bearer "+adminSecret)
	req.Header.Set("Idempotency-Key", key)
	if resp, err := http.DefaultClient.Do(req); err == nil {
		resp.Body.Close()
		t.Fatal("client should have given up")
	}
	// The service goes on and fails against the hang; then the client retries.
	deadline := time.Now().Add(5 * time.Second)
	for {
		r := s.call(t, "POST", "/v1/promo_codes", adminSecret, key, `{"code":"CRASH","promo_type":"percentage","amount_off":5}`)
		if r.Status == http.StatusCreated {
			break
		}
		if r.Status != http.StatusConflict || time.Now().After(deadline) {
			t.Fatalf("retry: %d %s", r.Status, r.Body)
		}
		time.Sleep(50 * time.Millisecond)
	}
	if s.Sim.Count("POST /v1/coupons") != 1 || countCoupons(t, s) != 1 {
		t.Fatalf("second coupon: %v", s.Sim.Counts())
	}
}

func TestUpdateKeepsStripeInStep(t *testing.T) {
	s := startService(t, nil)
	r := s.call(t, "POST", "/v1/promo_codes", adminSecret, newKey(), map[string]any{
		"code": "STEP", "promo_type": "percentage", "amount_off": 10, "stock": 2, "metadata": map[string]string{"a": "1", "b": "2"},
	})
	mustStatus(t, r, 201)
	id := r.json(t)["id"].(string)
	promoID := r.json(t)["stripe"].(map[string]any)["promotion_code_id"].(string)
	stripeActive := func(pid string) bool {
		p, err := s.Stripe.PromotionCodes.Get(pid, nil)
		if err != nil {
			t.Fatal(err)
		}
		return p.Active
	}
	update := func(body any, status int) map[string]any {
		t.Helper()
		r := s.call(t, "POST", "/v1/promo_codes/"+id, adminSecret, newKey(), body)
		mustStatus(t, r, status)
		return r.json(t)
	}
	steps := []struct {
		name       string
		body       any
		wantActive bool
	}{
		{"deactivate", `{"status":"inactive"}`, false},
		{"reactivate", `{"status":"active"}`, true},
		{"stock to zero", `{"stock":0}`, false},
		{"stock back", `{"stock":3}`, true},
		{"unlimited", `{"unlimited_stock":true}`, true},
	}
	for _, st := range steps {
		pc := update(st.body, 200)
		if stripeActive(promoID) != st.wantActive || pc["stripe"].(map[string]any)["active"] != st.wantActive {
			t.Fatalf("%s: Stripe active should be %v", st.name, st.wantActive)
		}
	}
	// Metadata merges, "" deletes, and reaches Stripe.
	pc := update(`{"metadata":{"a":"","c":"3"}}`, 200)
	if md := pc["metadata"].(map[string]any); len(md) != 2 || md["b"] != "2" || md["c"] != "3" {
		t.Fatalf("metadata %v", md)
	}
	p, _ := s.Stripe.PromotionCodes.Get(promoID, nil)
	if _, has := p.Metadata["a"]; has || p.Metadata["c"] != "3" || p.Metadata["promo_code_id"] != id {
		t.Fatalf("Stripe metadata %v", p.Metadata)
	}
	// A new expiration replaces the Stripe promotion code (expires_at is immutable there).
	exp := time.Now().Add(72 * time.Hour).UTC().Truncate(time.Second)
	pc = update(fmt.Sprintf(`{"expiration_datetime":%q}`, exp.Format(time.RFC3339)), 200)
	newPromo := pc["stripe"].(map[string]any)["promotion_code_id"].(string)
	if newPromo == promoID || stripeActive(promoID) || !stripeActive(newPromo) {
		t.Fatalf("rotation: old %s new %s", promoID, newPromo)
	}
	if np, _ := s.Stripe.PromotionCodes.Get(newPromo, nil); np.ExpiresAt != exp.Unix() || np.Code != "STEP" {
		t.Fatalf("new promotion code %+v", np)
	}
	// Immutable fields need a new code; unknown fields are refused.
	for body, param := range map[string]string{`{"amount_off":20}`: "amount_off", `{"currency":"usd"}`: "currency",
		`{"duration":"once"}`: "duration", `{"promo_type":"flat_amount"}`: "promo_type", `{"color":"red"}`: "color",
		`{"stock":-1}`: "stock", `{"status":"paused"}`: "status", `{"stock":null}`: "stock"} {
		r := s.call(t, "POST", "/v1/promo_codes/"+id, adminSecret, newKey(), body)
		mustStatus(t, r, 400)
		code, got := r.errorCode(t)
		if code != "invalid_request" || got != param {
			t.Errorf("%s: %s %s", body, code, got)
		}
		if param == "amount_off" && !strings.Contains(string(r.Body), "new code") {
			t.Errorf("immutable message: %s", r.Body)
		}
	}
	// Archive: Stripe inactive, hidden by default, text reusable, no way back.
	update(`{"status":"archived"}`, 200)
	if stripeActive(newPromo) {
		t.Fatal("archived code still active in Stripe")
	}
	update(`{"status":"active"}`, 409)
	def := s.call(t, "GET", "/v1/promo_codes", adminSecret, "", nil).json(t)["data"].([]any)
	arch := s.call(t, "GET", "/v1/promo_codes?status=archived", adminSecret, "", nil).json(t)["data"].([]any)
	if len(def) != 0 || len(arch) != 1 {
		t.Fatalf("default list %d, archived %d", len(def), len(arch))
	}
	again := s.call(t, "POST", "/v1/promo_codes", adminSecret, newKey(), `{"code":"step","promo_type":"percentage","amount_off":15}`)
	mustStatus(t, again, 201)
	if again.json(t)["id"] == id {
		t.Fatal("reused the archived record")
	}
	mustStatus(t, s.call(t, "POST", "/v1/promo_codes/pc_missing", adminSecret, newKey(), `{"status":"inactive"}`), 404)
	mustStatus(t, s.call(t, "GET", "/v1/promo_codes/pc_missing", adminSecret, "", nil), 404)
	s.deliverRecordedEvents(t) // no webhook endpoint: Stripe's events arrive now
	assertReconcileClean(t, s)
}

func TestListPromoCodes(t *testing.T) {
	s := startService(t, nil)
	var ids []string
	for i := 0; i < 5; i++ {
		r := s.call(t, "POST", "/v1/promo_codes", adminSecret, newKey(), percentBody(fmt.Sprintf("LIST%d", i)))
		mustStatus(t, r, 201)
		ids = append(ids, r.json(t)["id"].(string))
	}
	mustStatus(t, s.call(t, "POST", "/v1/promo_codes/"+ids[0], adminSecret, newKey(), `{"status":"inactive"}`), 200)
	page := s.call(t, "GET", "/v1/promo_codes?limit=2", adminSecret, "", nil).json(t)
	data := page["data"].([]any)
	if len(data) != 2 || page["has_more"] != true || data[0].(map[string]any)["id"] != ids[4] {
		t.Fatalf("page 1: %v", page)
	}
	page = s.call(t, "GET", "/v1/promo_codes?limit=10&starting_after="+ids[2], adminSecret, "", nil).json(t)
	if data = page["data"].([]any); len(data) != 2 || page["has_more"] != false || data[1].(map[string]any)["id"] != ids[0] {
		t.Fatalf("page after: %v", page)
	}
	if data = s.call(t, "GET", "/v1/promo_codes?status=inactive", adminSecret, "", nil).json(t)["data"].([]any); len(data) != 1 {
		t.Fatalf("inactive: %v", data)
	}
	for _, q := range []string{"limit=0", "limit=101", "limit=x", "status=bogus"} {
		mustStatus(t, s.call(t, "GET", "/v1/promo_codes?"+q, adminSecret, "", nil), 400)
	}
}

func TestBodyLimit(t *testing.T) {
	s := startService(t, nil)
	big := `{"code":"BIG","promo_type":"percentage","amount_off":5,"metadata":{"k":"` + strings.Repeat("x", 1<<20) + `"}}`
	r := s.call(t, "POST", "/v1/promo_codes", adminSecret, newKey(), big)
	mustStatus(t, r, http.StatusRequestEntityTooLarge)
	if code, _ := r.errorCode(t); code != "body_too_large" {
		t.Fatal(code)
	}
}

func TestHealthReadinessAndMetrics(t *testing.T) {
	red := redistest.Start(t) // its own Redis: this test kills it
	s := startService(t, map[string]string{"REDIS_URL": red.URL()})
	mustStatus(t, s.call(t, "GET", "/healthz", "", "", nil), 200)
	mustStatus(t, s.call(t, "GET", "/readyz", "", "", nil), 200)
	mustStatus(t, s.call(t, "POST", "/v1/promo_codes", adminSecret, newKey(), percentBody("METRIC")), 201)
	mustStatus(t, s.call(t, "POST", "/webhooks/stripe", "", "", `{}`), http.StatusBadRequest) // unsigned
	m := s.call(t, "GET", "/metrics", "", "", nil)
	mustStatus(t, m, 200)
	for _, want := range []string{
		`billing_http_requests_total{method="POST",route="/v1/promo_codes",status="201"} 1`,
		`billing_http_request_duration_seconds_bucket{method="POST",route="/v1/promo_codes",status="201"`,
		`billing_stripe_calls_total{operation="coupon.create",outcome="ok"} 1`,
		`billing_stripe_calls_total{operation="promotion_code.create",outcome="ok"} 1`,
	} {
		if !strings.Contains(string(m.Body), want) {
			t.Errorf("metrics lack %s", want)
		}
	}
	if err := red.Kill(); err != nil {
		t.Fatal(err)
	}
	mustStatus(t, s.call(t, "GET", "/readyz", "", "", nil), 503)
	mustStatus(t, s.call(t, "GET", "/healthz", "", "", nil), 200)
	r := s.call(t, "GET", "/v1/promo_codes", adminSecret, "", nil)
	mustStatus(t, r, 503)
	if !strings.Contains(string(s.call(t, "GET", "/metrics", "", "", nil).Body), "billing_redis_errors_total") {
		t.Error("Redis errors not counted")
	}
	if err := red.Restart(); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(5 * time.Second)
	for s.call(t, "GET", "/readyz", "", "", nil).Status != 200 {
		if time.Now().After(deadline) {
			t.Fatal("not ready after Redis came back")
		}
		time.Sleep(50 * time.Millisecond)
	}
	// One access log line per request, with route and request ID.
	if !strings.Contains(s.logs.String(), `"route":"/v1/promo_codes"`) || !strings.Contains(s.logs.String(), `"request_id":"req_`) {
		t.Error("access log lines missing")
	}
}

func TestGracefulShutdownFinishesInFlightRequests(t *testing.T) {
	s := startService(t, nil)
	s.Sim.InjectFault(stripesim.Fault{Kind: stripesim.FaultHang, Method: "POST", Path: "/v1/coupons", Delay: 700 * time.Millisecond})
	done := make(chan response, 1)
	go func() { done <- s.call(t, "POST", "/v1/promo_codes", adminSecret, newKey(), percentBody("SLOW")) }()
	time.Sleep(200 * time.Millisecond) // the request is now waiting on Stripe
	stopped := make(chan error, 1)
	go func() { stopped <- s.stop() }()
	r := <-done
	if r.Status != http.StatusBadGateway { // the hang ends in Stripe's 500: a full answer, not a cut connection
		t.Fatalf("in-flight request got %d %s", r.Status, r.Body)
	}
	if err := <-stopped; err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(s.logs.String(), "shutting down") || !strings.Contains(s.logs.String(), `"msg":"stopped"`) {
		t.Fatal("shutdown not logged")
	}
}

func TestEmbeddedSimulatorIsDefaultAndSaysSoFirst(t *testing.T) {
	var out syncBuffer
	ctx, cancel := context.WithCancel(context.Background())
	addr, simAddr := freeAddr(t), freeAddr(t)
	env := map[string]string{"BILLING_ADDR": addr, "REDIS_URL": redisSrv.URL(), "STRIPE_SIM_ADDR": simAddr,
		"BILLING_API_KEYS": "admin:admin:" + adminSecret}
	done := make(chan error, 1)
	go func() { done <- run(ctx, []string{"serve"}, func(k string) string { return env[k] }, &out, &out) }()
	defer func() {
		cancel()
		if err := <-done; err != nil {
			t.Fatal(err)
		}
	}()
	deadline := time.Now().Add(10 * time.Second)
	for !strings.Contains(out.String(), "listening") {
		if time.Now().After(deadline) {
			t.Fatalf("no listening line:\n%s", out.String())
		}
		time.Sleep(20 * time.Millisecond)
	}
	first := strings.SplitN(out.String(), "\n", 2)[0]
	if !strings.Contains(first, "simulator") {
		t.Fatalf("first log line does not mention the simulator: %s", first)
	}
	req, _ := http.NewRequest("POST", "http://"+addr+"/v1/promo_codes", strings.NewReader(`{"code":"SIM","promo_type":"percentage","amount_off":5}`))
	req.Header.Set("Authorization", "Bearer "+adminSecret)
	req.Header.Set("Idempotency-Key", newKey())
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 201 {
		t.Fatalf("create against the embedded simulator: %d", resp.StatusCode)
	}
	// Developers reach the simulator at STRIPE_SIM_ADDR, e.g. for demo data.
	req, _ = http.NewRequest("POST", "http://"+simAddr+"/_sim/seed", nil)
	req.Header.Set("Authorization", "Bearer sk_test_anything")
	resp, err = http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var seed struct {
		CustomerID string `json:"customer_id"`
		PriceID    string `json:"price_id"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&seed); err != nil || resp.StatusCode != 200 ||
		!strings.HasPrefix(seed.CustomerID, "cus_") || !strings.HasPrefix(seed.PriceID, "price_") {
		t.Fatalf("seed at STRIPE_SIM_ADDR: %d %+v %v", resp.StatusCode, seed, err)
	}
}

func TestRunUsageAndConfigErrors(t *testing.T) {
	var out syncBuffer
	err := run(context.Background(), nil, func(string) string { return "" }, &out, &out)
	if err == nil || exitCode(err) != 2 {
		t.Fatalf("no command: %v", err)
	}
	err = run(context.Background(), []string{"serve"}, func(k string) string {
		return map[string]string{"IDEMPOTENCY_TTL": "soon"}[k]
	}, &out, &out)
	if err == nil || !strings.Contains(err.Error(), "IDEMPOTENCY_TTL") || !strings.Contains(err.Error(), "BILLING_API_KEYS") {
		t.Fatalf("config errors should name every variable: %v", err)
	}
	if err := run(context.Background(), []string{"help", "config"}, func(string) string { return "" }, &out, &out); err != nil ||
		!strings.Contains(out.String(), "STRIPE_WEBHOOK_SECRETS") {
		t.Fatalf("help config: %v", err)
	}
}
