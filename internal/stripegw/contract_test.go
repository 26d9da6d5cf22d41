package stripegw

import (
	"context"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/billing-adapter/billing-adapter/internal/promo"
	"github.com/billing-adapter/billing-adapter/internal/telemetry"
	"github.com/billing-adapter/billing-adapter/internal/testutil/stripemock"
)

// These tests send every gateway call to stripe-mock, which validates each
// parameter against Stripe's 2023-10-16 OpenAPI spec and answers 400 to
// unknown or malformed ones: no error means the request is valid for Stripe.
// A recording proxy in between checks the exact form values sent.

func mockGateway(t *testing.T) (*Gateway, *recorder, *telemetry.Metrics) {
	t.Helper()
	base, rec := recordingProxy(t, stripemock.Start(t))
	m := telemetry.New()
	return newTestGateway(base, m), rec, m
}

func TestContractResolvePlans(t *testing.T) {
	g, rec, m := mockGateway(t)
	products, err := g.ResolvePlans(context.Background(), []string{"price_monthly", "price_yearly"})
	if err != nil {
		t.Fatalf("ResolvePlans: %v", err)
	}
	if len(products) != 2 || products[0] == "" || products[1] == "" {
		t.Fatalf("products = %q, want two product IDs", products)
	}
	reqs := rec.all()
	if len(reqs) != 2 || reqs[0].Path != "/v1/prices/price_monthly" || reqs[1].Path != "/v1/prices/price_yearly" {
		t.Fatalf("requests = %+v, want GET of each price in order", reqs)
	}
	for _, r := range reqs {
		if r.Method != "GET" || len(r.Form) != 0 {
			t.Errorf("%s %s with params %v, want a bare GET", r.Method, r.Path, r.Form)
		}
		if r.Authorization != "Bearer "+testKey {
			t.Errorf("Authorization = %q", r.Authorization)
		}
	}
	assertMetric(t, m, "price.retrieve", "ok")
}

func TestContractCreateCoupon(t *testing.T) {
	g, rec, m := mockGateway(t)
	long := strings.Repeat("A1", 32) // 64 chars: longer than Stripe's 40 for a coupon name
	cases := []struct {
		name   string
		spec   promo.CouponSpec
		want   map[string]string // form values that must be sent
		absent []string          // form keys that must not be sent
	}{
		{
			name: "percentage with decimals once",
			spec: promo.CouponSpec{ID: "pc_1", PromoCodeID: "pc_1", Name: "SAVE12", PercentOff: 1250, Duration: promo.Once},
			want: map[string]string{"id": "pc_1", "percent_off": "12.5", "duration": "once", "name": "SAVE12",
				"metadata[promo_code_id]": "pc_1"},
			absent: []string{"amount_off", "currency", "duration_in_months", "applies_to[products][0]"},
		},
		{
			name:   "percentage two decimals forever",
			spec:   promo.CouponSpec{PromoCodeID: "pc_2", Name: "THIRD", PercentOff: 3333, Duration: promo.Forever},
			want:   map[string]string{"percent_off": "33.33", "duration": "forever"},
			absent: []string{"duration_in_months", "id"},
		},
		{
			name:   "flat amount usd",
			spec:   promo.CouponSpec{PromoCodeID: "pc_3", Name: "FIVE50", AmountOff: 550, Currency: "usd", Duration: promo.Once},
			want:   map[string]string{"amount_off": "550", "currency": "usd", "duration": "once"},
			absent: []string{"percent_off"},
		},
		{
			name:   "flat amount jpy",
			spec:   promo.CouponSpec{PromoCodeID: "pc_4", Name: "YEN500", AmountOff: 500, Currency: "jpy", Duration: promo.Forever},
			want:   map[string]string{"amount_off": "500", "currency": "jpy", "duration": "forever"},
			absent: []string{"percent_off"},
		},
		{
			name: "repeating with months",
			spec: promo.CouponSpec{PromoCodeID: "pc_5", Name: "THREEMONTHS", PercentOff: 2000, Duration: promo.Repeating, Months: 3},
			want: map[string]string{"percent_off": "20", "duration": "repeating", "duration_in_months": "3"},
		},
		{
			name: "applies to products and metadata",
			spec: promo.CouponSpec{PromoCodeID: "pc_6", Name: "PLANS", PercentOff: 10000, Duration: promo.Once,
				ProductIDs: []string{"prod_A", "prod_B", "prod_A"},
				Metadata:   map[string]string{"campaign": "spring", promo.MetaPromoCodeID: "pc_6", promo.MetaPromoCode: "PLANS"}},
			want: map[string]string{"percent_off": "100", "applies_to[products][0]": "prod_A",
				"applies_to[products][1]": "prod_B", "metadata[campaign]": "spring",
				"metadata[promo_code_id]": "pc_6", "metadata[" + promo.MetaPromoCode + "]": "PLANS"},
			absent: []string{"applies_to[products][2]"},
		},
		{
			name: "64 character code is cut to Stripe's 40 character name",
			spec: promo.CouponSpec{PromoCodeID: "pc_7", Name: long, PercentOff: 1, Duration: promo.Once},
			want: map[string]string{"name": long[:40], "percent_off": "0.01"},
		},
	}
	for i, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			key := promo.StripeKey("request-"+strconv.Itoa(i), "coupon:"+tc.spec.PromoCodeID)
			id, err := g.CreateCoupon(context.Background(), tc.spec, key)
			if err != nil {
				t.Fatalf("CreateCoupon: %v", err)
			}
			if id == "" {
				t.Fatal("empty coupon ID")
			}
			r := rec.last(t)
			if r.Method != "POST" || r.Path != "/v1/coupons" {
				t.Fatalf("request %s %s, want POST /v1/coupons", r.Method, r.Path)
			}
			if r.IdempotencyKey != key {
				t.Errorf("Idempotency-Key = %q, want %q", r.IdempotencyKey, key)
			}
			for k, v := range tc.want {
				if got := r.Form[k]; len(got) != 1 || got[0] != v {
					t.Errorf("form %s = %q, want %q", k, got, v)
				}
			}
			for _, k := range tc.absent {
				if _, ok := r.Form[k]; ok {
					t.Errorf("form has %s = %q, want it absent", k, r.Form[k])
				}
			}
		})
	}
	assertMetric(t, m, "coupon.create", "ok")
}

func TestContractCreatePromotionCode(t *testing.T) {
	g, rec, m := mockGateway(t)
	expires := time.Date(2031, 5, 6, 7, 8, 9, 0, time.UTC)

	t.Run("expires, first time, inactive", func(t *testing.T) {
		spec := promo.PromotionCodeSpec{
			PromoCodeID: "pc_1", Code: "WELCOME10", CouponID: "co_123", ExpiresAt: &expires,
			FirstTimeTransaction: true, Active: false,
			Metadata: map[string]string{promo.MetaPromoCodeID: "pc_1", "campaign": "spring"},
		}
		key := promo.StripeKey("req-1", "promotion_code:pc_1")
		id, err := g.CreatePromotionCode(context.Background(), spec, key)
		if err != nil {
			t.Fatalf("CreatePromotionCode: %v", err)
		}
		if id == "" {
			t.Fatal("empty promotion code ID")
		}
		r := rec.last(t)
		want := map[string]string{
			"coupon": "co_123", "code": "WELCOME10", "active": "false",
			"expires_at": strconv.FormatInt(expires.Unix(), 10), "restrictions[first_time_transaction]": "true",
			"metadata[promo_code_id]": "pc_1", "metadata[campaign]": "spring",
		}
		checkForm(t, r, "POST", "/v1/promotion_codes", key, want, nil)
	})

	t.Run("plain active", func(t *testing.T) {
		spec := promo.PromotionCodeSpec{PromoCodeID: "pc_2", Code: "SPRING", CouponID: "co_456", Active: true}
		key := promo.StripeKey("req-2", "promotion_code:pc_2")
		if _, err := g.CreatePromotionCode(context.Background(), spec, key); err != nil {
			t.Fatalf("CreatePromotionCode: %v", err)
		}
		checkForm(t, rec.last(t), "POST", "/v1/promotion_codes", key,
			map[string]string{"coupon": "co_456", "code": "SPRING", "active": "true", "metadata[promo_code_id]": "pc_2"},
			[]string{"expires_at", "restrictions[first_time_transaction]"})
	})
	assertMetric(t, m, "promotion_code.create", "ok")
}

func TestContractUpdatePromotionCode(t *testing.T) {
	g, rec, m := mockGateway(t)
	off := false
	u := promo.PromotionCodeUpdate{Active: &off, Metadata: map[string]string{
		promo.MetaPromoCodeID: "pc_1", "campaign": "summer", "removed": "",
	}}
	key := promo.StripeKey("req-3", "promotion_code.update:pc_1")
	if err := g.UpdatePromotionCode(context.Background(), "promo_123", u, key); err != nil {
		t.Fatalf("UpdatePromotionCode: %v", err)
	}
	checkForm(t, rec.last(t), "POST", "/v1/promotion_codes/promo_123", key, map[string]string{
		"active": "false", "metadata[promo_code_id]": "pc_1", "metadata[campaign]": "summer", "metadata[removed]": "",
	}, []string{"code", "coupon"})

	on := true
	if err := g.UpdatePromotionCode(context.Background(), "promo_123", promo.PromotionCodeUpdate{Active: &on}, key+"b"); err != nil {
		t.Fatalf("UpdatePromotionCode active only: %v", err)
	}
	r := rec.last(t)
	if len(r.Form) != 1 || r.Form.Get("active") != "true" {
		t.Errorf("form = %v, want only active=true", r.Form)
	}

	n := len(rec.all())
	if err := g.UpdatePromotionCode(context.Background(), "promo_123", promo.PromotionCodeUpdate{}, key+"c"); err != nil {
		t.Fatalf("empty update: %v", err)
	}
	if len(rec.all()) != n {
		t.Error("an update with nothing to change called Stripe")
	}
	assertMetric(t, m, "promotion_code.update", "ok")
}

func TestContractFindPromotionCode(t *testing.T) {
	g, rec, m := mockGateway(t)
	id, active, found, err := g.FindPromotionCode(context.Background(), "WELCOME10", "pc_01HX")
	if err != nil {
		t.Fatalf("FindPromotionCode: %v", err)
	}
	// stripe-mock's list fixture holds one promotion code (active: false in
	// the fixture; the mock ignores filters). It was found by the first query.
	if !found || id == "" || active {
		t.Fatalf("got id %q active %v found %v, want the fixture's promotion code", id, active, found)
	}
	checkForm(t, rec.last(t), "GET", "/v1/promotion_codes", "",
		map[string]string{"code": "WELCOME10", "coupon": "pc_01HX", "active": "true", "limit": "1"}, nil)
	if n := len(rec.all()); n != 1 {
		t.Errorf("%d requests, want 1 (an active one was found; no pagination)", n)
	}
	assertMetric(t, m, "promotion_code.list", "ok")
}

func TestContractGetCoupon(t *testing.T) {
	g, rec, m := mockGateway(t)
	found, err := g.GetCoupon(context.Background(), "pc_01HX")
	if err != nil || !found {
		t.Fatalf("GetCoupon = %v, %v; want found", found, err)
	}
	checkForm(t, rec.last(t), "GET", "/v1/coupons/pc_01HX", "", nil, nil)
	assertMetric(t, m, "coupon.retrieve", "ok")
}

func checkForm(t *testing.T, r captured, method, path, key string, want map[string]string, absent []string) {
	t.Helper()
	if r.Method != method || r.Path != path {
		t.Fatalf("request %s %s, want %s %s", r.Method, r.Path, method, path)
	}
	if r.IdempotencyKey != key {
		t.Errorf("Idempotency-Key = %q, want %q", r.IdempotencyKey, key)
	}
	for k, v := range want {
		if got, ok := r.Form[k]; !ok || len(got) != 1 || got[0] != v {
			t.Errorf("form %s = %q (present %v), want %q", k, got, ok, v)
		}
	}
	for _, k := range absent {
		if _, ok := r.Form[k]; ok {
			t.Errorf("form has %s = %q, want it absent", k, r.Form[k])
		}
	}
}
