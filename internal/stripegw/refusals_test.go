package stripegw

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	"github.com/stripe/stripe-go/v76"

	"github.com/billing-adapter/billing-adapter/internal/promo"
	"github.com/billing-adapter/billing-adapter/internal/stripesim"
	"github.com/billing-adapter/billing-adapter/internal/testutil/stripespec"
)

// refusalStripe answers an apply on sub_1 (customer cus_1) with refusal and
// the read-back of promo_1 with promotionCode ("" = a 500). date is the
// Date header of the refusal (zero = none); clock the subscription's test
// clock time (0 = none).
type refusalStripe struct {
	refusal       string
	promotionCode string
	date          time.Time
	clock         int64
}

func (f refusalStripe) serve(w http.ResponseWriter, r *http.Request) {
	switch {
	case r.Method == http.MethodPost && r.URL.Path == "/v1/subscriptions/sub_1":
		if f.date.IsZero() {
			w.Header()["Date"] = nil // net/http adds one otherwise
		} else {
			w.Header().Set("Date", f.date.UTC().Format(http.TimeFormat))
		}
		stripeError(w, 400, "req_refused", f.refusal)
	case r.Method == http.MethodGet && r.URL.Path == "/v1/promotion_codes/promo_1" && f.promotionCode != "":
		writeJSON(w, f.promotionCode)
	case r.Method == http.MethodGet && r.URL.Path == "/v1/subscriptions/sub_1":
		clock := "null"
		if f.clock != 0 {
			clock = fmt.Sprintf(`{"id":"clock_1","object":"test_helpers.test_clock","frozen_time":%d}`, f.clock)
		}
		writeJSON(w, `{"id":"sub_1","object":"subscription","customer":"cus_1","test_clock":`+clock+`}`)
	default:
		stripeError(w, 500, "req_500", `{"error":{"type":"api_error","message":"boom"}}`)
	}
}

// promotionCodeJSON is promo_1 on coupon co_1 with fields merged in (raw
// JSON object members, "" for none).
func promotionCodeJSON(fields, couponFields string) string {
	coupon := `{"id":"co_1","object":"coupon","valid":true` + prefixComma(couponFields) + `}`
	return `{"id":"promo_1","object":"promotion_code","active":true,"code":"X","coupon":` + coupon +
		`,"restrictions":{"first_time_transaction":false},"times_redeemed":0` + prefixComma(fields) + `}`
}

func prefixComma(s string) string {
	if s == "" {
		return ""
	}
	return "," + s
}

func refusalJSON(code, param, message string) string {
	return `{"error":{"type":"invalid_request_error","code":"` + code + `","param":"` + param + `","message":"` + message + `"}}`
}

// Every refusal is decided by Stripe's structured fields and the objects read
// back; the message says the same neutral thing each time.
func TestRefusalClassification(t *testing.T) {
	at := time.Date(2030, 1, 2, 3, 4, 5, 0, time.UTC)
	past, future := at.Add(-time.Minute).Unix(), at.Add(time.Hour).Unix()
	plain := refusalJSON("", "promotion_code", "Refused.")
	tests := []struct {
		name  string
		f     refusalStripe
		want  promo.Code
		reads int // requests after the refusal
	}{
		{"inactive", refusalStripe{refusal: plain, promotionCode: promotionCodeJSON(`"active":false`, "")},
			promo.CodeCodeInactive, 1},
		{"coupon no longer valid", refusalStripe{refusal: plain, promotionCode: promotionCodeJSON("", `"valid":false`)},
			promo.CodeCodeInactive, 1},
		{"used up", refusalStripe{refusal: plain, promotionCode: promotionCodeJSON(`"max_redemptions":3,"times_redeemed":3`, "")},
			promo.CodeCodeExhausted, 1},
		{"coupon used up (and so inactive)", refusalStripe{refusal: plain,
			promotionCode: promotionCodeJSON(`"active":false`, `"valid":false,"max_redemptions":1,"times_redeemed":1`)},
			promo.CodeCodeExhausted, 1},
		{"another customer's", refusalStripe{refusal: plain, promotionCode: promotionCodeJSON(`"customer":"cus_other"`, "")},
			promo.CodeCustomerMismatch, 2},
		{"first-time customers only", refusalStripe{refusal: plain,
			promotionCode: promotionCodeJSON(`"restrictions":{"first_time_transaction":true}`, "")},
			promo.CodeNewUsersOnly, 1},
		{"own customer, first-time only", refusalStripe{refusal: plain,
			promotionCode: promotionCodeJSON(`"customer":"cus_1","restrictions":{"first_time_transaction":true}`, "")},
			promo.CodeNewUsersOnly, 2},
		{"expired at Stripe's Date", refusalStripe{refusal: plain, date: at,
			promotionCode: promotionCodeJSON(fmt.Sprintf(`"expires_at":%d,"restrictions":{"first_time_transaction":true}`, past), "")},
			promo.CodeCodeExpired, 2},
		{"expiring later than Stripe's Date", refusalStripe{refusal: plain, date: at,
			promotionCode: promotionCodeJSON(fmt.Sprintf(`"expires_at":%d,"restrictions":{"first_time_transaction":true}`, future), "")},
			promo.CodeNewUsersOnly, 2},
		{"expired at the customer's test clock", refusalStripe{refusal: plain, date: at, clock: future + 1,
			promotionCode: promotionCodeJSON(fmt.Sprintf(`"expires_at":%d`, future), "")},
			promo.CodeCodeExpired, 2},
		{"coupon redeem_by passed", refusalStripe{refusal: plain, date: at,
			promotionCode: promotionCodeJSON("", fmt.Sprintf(`"redeem_by":%d`, past))},
			promo.CodeCodeExpired, 2},
		{"Stripe's time unknown: expiry not ruled out", refusalStripe{refusal: plain,
			promotionCode: promotionCodeJSON(fmt.Sprintf(`"expires_at":%d,"restrictions":{"first_time_transaction":true}`, past), "")},
			promo.CodeStripeError, 2},
		{"Stripe's time unknown, inactive all the same", refusalStripe{refusal: plain,
			promotionCode: promotionCodeJSON(fmt.Sprintf(`"active":false,"expires_at":%d`, past), "")},
			promo.CodeCodeInactive, 2},
		{"coupon_expired", refusalStripe{refusal: refusalJSON("coupon_expired", "promotion_code", "Refused."),
			promotionCode: promotionCodeJSON("", `"valid":false`)},
			promo.CodeCodeExpired, 1},
		{"coupon_expired, read-back fails", refusalStripe{refusal: refusalJSON("coupon_expired", "promotion_code", "Refused.")},
			promo.CodeCodeExpired, 1},
		{"coupon_expired, coupon used up", refusalStripe{refusal: refusalJSON("coupon_expired", "promotion_code", "Refused."),
			promotionCode: promotionCodeJSON("", `"valid":false,"max_redemptions":2,"times_redeemed":2`)},
			promo.CodeCodeExhausted, 1},
		{"param discounts", refusalStripe{refusal: refusalJSON("", "discounts[0][promotion_code]", "Refused."),
			promotionCode: promotionCodeJSON(`"active":false`, "")},
			promo.CodeCodeInactive, 1},
		{"no param", refusalStripe{refusal: refusalJSON("", "", "Refused."),
			promotionCode: promotionCodeJSON(`"active":false`, "")},
			promo.CodeCodeInactive, 1},
		{"nothing explains it", refusalStripe{refusal: plain, promotionCode: promotionCodeJSON("", "")},
			promo.CodeStripeError, 1},
		{"read-back fails", refusalStripe{refusal: plain}, promo.CodeStripeError, 1},
		{"about another parameter", refusalStripe{refusal: refusalJSON("", "default_payment_method", "Refused."),
			promotionCode: promotionCodeJSON(`"restrictions":{"first_time_transaction":true}`, "")},
			promo.CodeStripeError, 0},
		{"malformed request", refusalStripe{refusal: refusalJSON("parameter_unknown", "promotion_code", "Refused."),
			promotionCode: promotionCodeJSON(`"active":false`, "")},
			promo.CodeStripeError, 0},
		{"no such promotion code", refusalStripe{refusal: refusalJSON("resource_missing", "promotion_code", "Refused.")},
			promo.CodeStripeError, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			base, rec := fakeStripe(t, tt.f.serve)
			_, err := newTestGateway(base, nil).ApplyPromotionCode(context.Background(), "sub_1", "promo_1", nil, "k")
			pe := asPromo(t, err)
			if pe.Code != tt.want || pe.StripeRequestID != "req_refused" {
				t.Errorf("got %s (Stripe request %s), want %s (req_refused): %v", pe.Code, pe.StripeRequestID, tt.want, err)
			}
			var se *stripe.Error
			if !errors.As(err, &se) || se.HTTPStatusCode != 400 || errors.Is(err, promo.ErrOutcomeUnknown) {
				t.Errorf("error %v does not keep Stripe's refusal", err)
			}
			if n := len(rec.all()) - 1; n != tt.reads {
				t.Errorf("%d requests after the refusal, want %d: %+v", n, tt.reads, rec.all())
			}
		})
	}
}

// The wording the gateway once matched means nothing now: each of those
// messages, on a promotion code whose read-back explains nothing, stays a
// stripe_error carrying Stripe's message.
func TestRefusalWordsAreNotRead(t *testing.T) {
	for _, msg := range []string{
		"This promotion code is inactive and cannot be redeemed.",
		"This promotion code cannot be redeemed because it has expired.",
		"This promotion code cannot be redeemed because it has been used the maximum number of times.",
		"This promotion code cannot be redeemed because it is restricted to a different customer.",
		"This promotion code cannot be redeemed because the associated customer has prior transactions.",
		"No such subscription: 'sub_1'",
	} {
		f := refusalStripe{refusal: refusalJSON("", "promotion_code", msg), promotionCode: promotionCodeJSON("", "")}
		base, _ := fakeStripe(t, f.serve)
		_, err := newTestGateway(base, nil).ApplyPromotionCode(context.Background(), "sub_1", "promo_1", nil, "k")
		if pe := asPromo(t, err); pe.Code != promo.CodeStripeError || pe.Message != "Stripe: "+msg {
			t.Errorf("%q: got %s %q, want stripe_error with Stripe's message", msg, pe.Code, pe.Message)
		}
	}
}

// Against the simulator on its own clock (no test clock): it refuses a
// promotion code past expires_at, and the gateway tells so from the
// refusal's Date header, which is the simulator's time.
func TestRefusalExpiryAtStripesTime(t *testing.T) {
	var mu sync.Mutex
	now := time.Now().Truncate(time.Second)
	clock := func() time.Time { mu.Lock(); defer mu.Unlock(); return now }
	sim := stripesim.New(stripesim.Options{Now: clock, RewordErrors: true})
	srv := httptest.NewServer(stripespec.Handler(t, sim))
	t.Cleanup(func() { srv.Close(); stripespec.Events(t, sim.EventBodies()); sim.Close() })
	b := backendAt(srv.URL)
	b.stateful, b.sim = true, sim

	_, priceID := b.plan(t, "usd", 2000)
	cus := b.customer(t, "")
	subID := b.subscribe(t, cus, priceID, "", nil)
	expires := now.Add(time.Hour)
	id, err := b.gw.CreatePromotionCode(t.Context(), promo.PromotionCodeSpec{Code: "SOON", CouponID: b.coupon(t, 1000),
		Active: true, ExpiresAt: &expires, FirstTimeTransaction: true}, b.key())
	must(t, "CreatePromotionCode", err)
	mu.Lock()
	now = now.Add(2 * time.Hour)
	mu.Unlock()
	// The customer has paid too (first_time_transaction would refuse as
	// well): the expiry decides.
	checkRefused(t, b, refusalTarget{cus, subID, priceID, id}, promo.CodeCodeExpired)
}
