package stripegw

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stripe/stripe-go/v76"

	"github.com/billing-adapter/billing-adapter/internal/promo"
	"github.com/billing-adapter/billing-adapter/internal/telemetry"
)

func TestUnknownPriceIsInvalidPlanIDs(t *testing.T) {
	base, _ := fakeStripe(t, func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/v1/prices/price_known" {
			writeJSON(w, `{"id":"price_known","object":"price","product":"prod_1"}`)
			return
		}
		stripeError(w, 404, "req_404", `{"error":{"type":"invalid_request_error","code":"resource_missing",
			"param":"price","message":"No such price: 'price_gone'"}}`)
	})
	m := telemetry.New()
	_, err := newTestGateway(base, m).ResolvePlans(context.Background(), []string{"price_known", "price_gone"})
	pe := asPromo(t, err)
	if pe.Code != promo.CodeInvalidRequest || pe.Param != "plan_ids" || pe.Message != "no Stripe price price_gone" {
		t.Errorf("got %+v, want invalid_request on plan_ids naming price_gone", pe)
	}
	if pe.StripeRequestID != "req_404" || pe.StripeCode != "resource_missing" {
		t.Errorf("Stripe request %q code %q, want req_404 resource_missing", pe.StripeRequestID, pe.StripeCode)
	}
	assertMetric(t, m, "price.retrieve", "ok")
	assertMetric(t, m, "price.retrieve", "invalid_request_error")
}

func TestResolvePlansKeepsOrder(t *testing.T) {
	base, _ := fakeStripe(t, func(w http.ResponseWriter, r *http.Request) {
		id := strings.TrimPrefix(r.URL.Path, "/v1/prices/")
		writeJSON(w, `{"id":"`+id+`","object":"price","product":"prod_of_`+id+`","type":"one_time"}`)
	})
	got, err := newTestGateway(base, nil).ResolvePlans(context.Background(), []string{"price_b", "price_a", "price_c"})
	if err != nil {
		t.Fatal(err)
	}
	if strings.Join(got, ",") != "prod_of_price_b,prod_of_price_a,prod_of_price_c" {
		t.Errorf("products = %q", got)
	}
}

func TestPromotionCodeTaken(t *testing.T) {
	// Stripe's refusal says nothing but param=code; the list of active
	// promotion codes with the text shows it is taken.
	base, rec := fakeStripe(t, func(w http.ResponseWriter, r *http.Request) {
		if r.Method == http.MethodGet && r.URL.Path == "/v1/promotion_codes" {
			writeJSON(w, `{"object":"list","url":"/v1/promotion_codes","has_more":false,"data":[
				{"id":"promo_theirs","object":"promotion_code","active":true,"code":"welcome10","coupon":{"id":"co_other","object":"coupon"}}]}`)
			return
		}
		stripeError(w, 400, "req_taken", `{"error":{"type":"invalid_request_error","param":"code","message":"Worded in any way at all."}}`)
	})
	m := telemetry.New()
	_, err := newTestGateway(base, m).CreatePromotionCode(context.Background(),
		promo.PromotionCodeSpec{Code: "WELCOME10", CouponID: "co_1", Active: true}, "key-1")
	if !errors.Is(err, promo.ErrPromotionCodeTaken) {
		t.Fatalf("error %v does not wrap ErrPromotionCodeTaken", err)
	}
	var se *stripe.Error
	if !errors.As(err, &se) || se.RequestID != "req_taken" {
		t.Errorf("error %v does not keep the *stripe.Error", err)
	}
	pe := asPromo(t, err)
	if pe.Code != promo.CodeConflict || pe.Param != "code" || pe.StripeRequestID != "req_taken" {
		t.Errorf("got %+v, want conflict on code with the Stripe request ID", pe)
	}
	if look := rec.last(t); look.Form.Get("code") != "WELCOME10" || look.Form.Get("active") != "true" || look.Form.Has("coupon") {
		t.Errorf("look-up %+v, want active promotion codes with the text on any coupon", look)
	}
	assertMetric(t, m, "promotion_code.create", "invalid_request_error")

	// Other refusals are not "taken": another param, no active code with the
	// text (a malformed code), or an inactive code (never unique).
	for name, tc := range map[string]struct {
		param  string
		active bool
		list   string
		looks  int
	}{
		"param coupon":    {"coupon", true, `[{"id":"promo_x","object":"promotion_code","active":true}]`, 0},
		"none active":     {"code", true, `[]`, 1},
		"inactive create": {"code", false, `[{"id":"promo_x","object":"promotion_code","active":true}]`, 0},
	} {
		base, rec := fakeStripe(t, func(w http.ResponseWriter, r *http.Request) {
			if r.Method == http.MethodGet {
				writeJSON(w, `{"object":"list","url":"/v1/promotion_codes","has_more":false,"data":`+tc.list+`}`)
				return
			}
			stripeError(w, 400, "req_bad", `{"error":{"type":"invalid_request_error","param":"`+tc.param+`","message":"An active promotion code with this code already exists."}}`)
		})
		_, err := newTestGateway(base, nil).CreatePromotionCode(context.Background(),
			promo.PromotionCodeSpec{Code: "WELCOME10", CouponID: "co_1", Active: tc.active}, "key-1")
		if errors.Is(err, promo.ErrPromotionCodeTaken) || promo.CodeOf(err) != promo.CodeStripeError {
			t.Errorf("%s: error %v, want a plain stripe_error", name, err)
		}
		if n := len(rec.all()) - 1; n != tc.looks {
			t.Errorf("%s: %d look-ups, want %d", name, n, tc.looks)
		}
	}
}

func TestServerErrorKeepsRequestID(t *testing.T) {
	var calls atomic.Int32
	base, _ := fakeStripe(t, func(w http.ResponseWriter, r *http.Request) {
		calls.Add(1)
		stripeError(w, 500, "req_500", `{"error":{"type":"api_error","message":"Something went wrong on Stripe's end."}}`)
	})
	m := telemetry.New()
	g := New(Options{SecretKey: testKey, APIBase: base, MaxRetries: 2, Timeout: 5 * time.Second, Metrics: m})
	_, err := g.CreateCoupon(context.Background(),
		promo.CouponSpec{Name: "X", PercentOff: 1000, Duration: promo.Once}, "key-500")
	pe := asPromo(t, err)
	if pe.Code != promo.CodeStripeError || pe.StripeRequestID != "req_500" ||
		pe.Message != "Stripe: Something went wrong on Stripe's end." {
		t.Errorf("got %+v", pe)
	}
	var se *stripe.Error
	if !errors.As(err, &se) || se.HTTPStatusCode != 500 {
		t.Errorf("error %v does not keep the *stripe.Error", err)
	}
	if n := calls.Load(); n != 1 {
		t.Errorf("%d calls: stripe-go does not retry a POST that got a 500 (idempotency layer caches it)", n)
	}
	assertMetric(t, m, "coupon.create", "api_error")
}

func TestRateLimited(t *testing.T) {
	base, _ := fakeStripe(t, func(w http.ResponseWriter, r *http.Request) {
		stripeError(w, 429, "req_429", `{"error":{"type":"invalid_request_error","code":"rate_limit",
			"message":"Too many requests hit the API too quickly."}}`)
	})
	m := telemetry.New()
	err := newTestGateway(base, m).UpdatePromotionCode(context.Background(), "promo_1",
		promo.PromotionCodeUpdate{Active: new(bool)}, "key-429")
	pe := asPromo(t, err)
	if pe.Code != promo.CodeStripeError || !strings.Contains(pe.Message, "rate limited") ||
		pe.StripeCode != "rate_limit" || pe.StripeRequestID != "req_429" {
		t.Errorf("got %+v", pe)
	}
	assertMetric(t, m, "promotion_code.update", "rate_limited")
}

func TestNetworkErrors(t *testing.T) {
	t.Run("refused", func(t *testing.T) {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		base := "http://" + l.Addr().String()
		l.Close()
		m := telemetry.New()
		_, _, _, err = newTestGateway(base, m).FindPromotionCode(context.Background(), "X", "co_1")
		pe := asPromo(t, err)
		if pe.Code != promo.CodeStripeError || pe.Message != "Stripe did not answer" || pe.Err == nil {
			t.Errorf("got %+v", pe)
		}
		assertMetric(t, m, "promotion_code.list", "network")
	})
	t.Run("timeout", func(t *testing.T) {
		release := make(chan struct{})
		base, _ := fakeStripe(t, func(w http.ResponseWriter, r *http.Request) {
			select {
			case <-release:
			case <-r.Context().Done():
			}
		})
		defer close(release)
		m := telemetry.New()
		g := New(Options{SecretKey: testKey, APIBase: base, Timeout: 100 * time.Millisecond, Metrics: m})
		_, err := g.CreateCoupon(context.Background(), promo.CouponSpec{PercentOff: 1, Duration: promo.Once}, "k")
		pe := asPromo(t, err)
		var ne net.Error
		if pe.Message != "Stripe did not answer" || !errors.As(err, &ne) || !ne.Timeout() {
			t.Errorf("got %+v, want a timeout", pe)
		}
		assertMetric(t, m, "coupon.create", "network")
	})
	t.Run("cancelled context", func(t *testing.T) {
		base, _ := fakeStripe(t, func(w http.ResponseWriter, r *http.Request) { <-r.Context().Done() })
		ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
		defer cancel()
		_, err := newTestGateway(base, nil).ResolvePlans(ctx, []string{"price_1"})
		if pe := asPromo(t, err); pe.Message != "Stripe did not answer" || !errors.Is(err, context.DeadlineExceeded) {
			t.Errorf("got %+v", pe)
		}
	})
	t.Run("not json", func(t *testing.T) {
		base, _ := fakeStripe(t, func(w http.ResponseWriter, r *http.Request) {
			w.WriteHeader(502)
			w.Write([]byte("<html>bad gateway</html>"))
		})
		m := telemetry.New()
		_, err := newTestGateway(base, m).CreateCoupon(context.Background(),
			promo.CouponSpec{PercentOff: 1, Duration: promo.Once}, "k")
		if pe := asPromo(t, err); pe.Code != promo.CodeStripeError || pe.Message != "Stripe call failed" {
			t.Errorf("got %+v", pe)
		}
		assertMetric(t, m, "coupon.create", "bad_response")
	})
}

func TestRetryReusesIdempotencyKey(t *testing.T) {
	var calls atomic.Int32
	base, rec := fakeStripe(t, func(w http.ResponseWriter, r *http.Request) {
		if calls.Add(1) == 1 {
			stripeError(w, 503, "req_503", `{"error":{"type":"api_error","message":"unavailable"}}`)
			return
		}
		writeJSON(w, `{"id":"co_retried","object":"coupon"}`)
	})
	g := New(Options{SecretKey: testKey, APIBase: base, MaxRetries: 1, Timeout: 5 * time.Second})
	id, err := g.CreateCoupon(context.Background(), promo.CouponSpec{PercentOff: 500, Duration: promo.Once}, "key-retry")
	if err != nil || id != "co_retried" {
		t.Fatalf("got %q, %v", id, err)
	}
	reqs := rec.all()
	if len(reqs) != 2 || reqs[0].IdempotencyKey != "key-retry" || reqs[1].IdempotencyKey != "key-retry" {
		t.Errorf("requests %+v, want two attempts with the same key", reqs)
	}
}

func TestIdempotencyKeysAreSent(t *testing.T) {
	base, rec := fakeStripe(t, func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/v1/coupons":
			writeJSON(w, `{"id":"co_1","object":"coupon"}`)
		default:
			writeJSON(w, `{"id":"promo_1","object":"promotion_code"}`)
		}
	})
	g := newTestGateway(base, nil)
	ctx := context.Background()
	if _, err := g.CreateCoupon(ctx, promo.CouponSpec{PercentOff: 1, Duration: promo.Once}, "k-coupon"); err != nil {
		t.Fatal(err)
	}
	if _, err := g.CreatePromotionCode(ctx, promo.PromotionCodeSpec{Code: "A", CouponID: "co_1"}, "k-promo"); err != nil {
		t.Fatal(err)
	}
	if err := g.UpdatePromotionCode(ctx, "promo_1", promo.PromotionCodeUpdate{Active: new(bool)}, "k-update"); err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, r := range rec.all() {
		got = append(got, r.Path+"="+r.IdempotencyKey)
	}
	want := "/v1/coupons=k-coupon,/v1/promotion_codes=k-promo,/v1/promotion_codes/promo_1=k-update"
	if strings.Join(got, ",") != want {
		t.Errorf("keys %q, want %q", got, want)
	}
}

func TestPercentOffIsExactDecimalText(t *testing.T) {
	base, rec := fakeStripe(t, func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, `{"id":"co_1","object":"coupon"}`)
	})
	g := newTestGateway(base, nil)
	for hundredths, want := range map[int64]string{1250: "12.5", 3333: "33.33", 1: "0.01", 1005: "10.05",
		9999: "99.99", 10000: "100", 5000: "50", 2999: "29.99", 1010: "10.1"} {
		if _, err := g.CreateCoupon(context.Background(),
			promo.CouponSpec{PercentOff: hundredths, Duration: promo.Once}, "k"); err != nil {
			t.Fatal(err)
		}
		if got := rec.last(t).Form["percent_off"]; len(got) != 1 || got[0] != want {
			t.Errorf("percent_off for %d = %q, want %q", hundredths, got, want)
		}
	}
}

func TestCreateCouponRefusesBadSpecs(t *testing.T) {
	base, rec := fakeStripe(t, func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, `{"id":"co_1","object":"coupon"}`)
	})
	g := newTestGateway(base, nil)
	for name, spec := range map[string]promo.CouponSpec{
		"neither":            {Duration: promo.Once},
		"both":               {PercentOff: 1, AmountOff: 1, Currency: "usd", Duration: promo.Once},
		"amount no currency": {AmountOff: 100, Duration: promo.Once},
		"repeating 0":        {PercentOff: 1, Duration: promo.Repeating},
		"no duration":        {PercentOff: 1},
	} {
		if _, err := g.CreateCoupon(context.Background(), spec, "k"); promo.CodeOf(err) != promo.CodeInternal {
			t.Errorf("%s: error %v, want internal_error", name, err)
		}
	}
	if n := len(rec.all()); n != 0 {
		t.Errorf("%d requests reached Stripe", n)
	}
}

func TestSecretKeyNeverLogged(t *testing.T) {
	var buf bytes.Buffer
	logger := slog.New(slog.NewTextHandler(&buf, &slog.HandlerOptions{Level: slog.LevelDebug}))
	var calls atomic.Int32
	base, _ := fakeStripe(t, func(w http.ResponseWriter, r *http.Request) {
		if calls.Add(1) == 1 {
			stripeError(w, 503, "req_503", `{"error":{"type":"api_error","message":"unavailable"}}`)
			return
		}
		stripeError(w, 400, "req_400", `{"error":{"type":"invalid_request_error","message":"bad"}}`)
	})
	g := New(Options{SecretKey: "sk_test_supersecret", APIBase: base, MaxRetries: 1, Timeout: 5 * time.Second, Logger: logger})
	_, _ = g.CreateCoupon(context.Background(), promo.CouponSpec{PercentOff: 1, Duration: promo.Once}, "k")
	if buf.Len() == 0 {
		t.Fatal("nothing logged at debug level")
	}
	if strings.Contains(buf.String(), "supersecret") {
		t.Errorf("secret key in logs:\n%s", buf.String())
	}
	if !strings.Contains(buf.String(), "level=WARN") {
		t.Errorf("retry not logged at warn:\n%s", buf.String())
	}
}

func TestFindPromotionCodeFallsBackToInactive(t *testing.T) {
	base, rec := fakeStripe(t, func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Query().Get("active") == "true" {
			writeJSON(w, `{"object":"list","url":"/v1/promotion_codes","has_more":false,"data":[]}`)
			return
		}
		writeJSON(w, `{"object":"list","url":"/v1/promotion_codes","has_more":true,"data":[
			{"id":"promo_new","object":"promotion_code","active":false,"code":"SPRING","coupon":{"id":"co_1","object":"coupon"}}]}`)
	})
	id, active, found, err := newTestGateway(base, nil).FindPromotionCode(context.Background(), "SPRING", "co_1")
	if err != nil || id != "promo_new" || active || !found {
		t.Fatalf("got %q active %v found %v err %v; want the inactive promo_new", id, active, found, err)
	}
	reqs := rec.all()
	if len(reqs) != 2 || reqs[1].Form.Has("active") || reqs[1].Form.Get("coupon") != "co_1" || reqs[1].Form.Get("limit") != "1" {
		t.Errorf("requests %+v, want an active-only query then one over all", reqs)
	}

	empty, _ := fakeStripe(t, func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, `{"object":"list","url":"/v1/promotion_codes","has_more":false,"data":[]}`)
	})
	if _, _, found, err := newTestGateway(empty, nil).FindPromotionCode(context.Background(), "NONE", "co_1"); found || err != nil {
		t.Errorf("got found %v err %v, want not found", found, err)
	}
}

func TestGetCoupon(t *testing.T) {
	base, _ := fakeStripe(t, func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/v1/coupons/pc_here":
			writeJSON(w, `{"id":"pc_here","object":"coupon"}`)
		case "/v1/coupons/pc_gone":
			stripeError(w, 404, "req_404", `{"error":{"type":"invalid_request_error","code":"resource_missing","param":"id","message":"No such coupon: 'pc_gone'"}}`)
		default:
			stripeError(w, 500, "req_500", `{"error":{"type":"api_error","message":"boom"}}`)
		}
	})
	g := newTestGateway(base, nil)
	if found, err := g.GetCoupon(context.Background(), "pc_here"); !found || err != nil {
		t.Errorf("existing coupon: %v, %v", found, err)
	}
	if found, err := g.GetCoupon(context.Background(), "pc_gone"); found || err != nil {
		t.Errorf("missing coupon: %v, %v; want not found without error", found, err)
	}
	found, err := g.GetCoupon(context.Background(), "pc_broken")
	if pe := asPromo(t, err); found || pe.Code != promo.CodeStripeError || pe.StripeRequestID != "req_500" {
		t.Errorf("failing Stripe: %v, %+v", found, pe)
	}
}
