package stripesim

import (
	"net/http"
	"strings"
	"testing"
	"time"

	stripe "github.com/stripe/stripe-go/v76"
)

// errorRequests sends requests that each end in a different error (auth, an
// unknown route, a bad parameter, a missing object, a refused promotion code,
// an idempotency conflict, a simulator control) and returns the answers.
func errorRequests(t *testing.T, e *env) []rawResp {
	t.Helper()
	pr := e.mkPrice(2000, "usd")
	cp := e.mkCoupon(&stripe.CouponParams{PercentOff: stripe.Float64(10), Duration: stripe.String("once")})
	off, err := e.sc.PromotionCodes.New(&stripe.PromotionCodeParams{Coupon: stripe.String(cp.ID),
		Code: stripe.String("OFF"), Active: stripe.Bool(false)})
	mustNoErr(t, err)
	cus := e.mkCustomer("")
	sub, err := e.mkSub(cus.ID, pr.ID, nil)
	mustNoErr(t, err)
	idem := map[string]string{"Idempotency-Key": "k-reword"}
	return []rawResp{
		e.raw("GET", "/v1/customers", "", "", nil),
		e.raw("GET", "/v1/nope", testKey, "", nil),
		e.raw("POST", "/v1/customers", testKey, "bogus=1", nil),
		e.raw("GET", "/v1/customers/cus_missing", testKey, "", nil),
		e.raw("POST", "/v1/subscriptions/"+sub.ID, testKey, "promotion_code="+off.ID, idem),
		e.raw("POST", "/v1/subscriptions/"+sub.ID, testKey, "promotion_code="+off.ID, idem), // replayed
		e.raw("POST", "/v1/subscriptions/"+sub.ID, testKey, "promotion_code="+off.ID+"&description=x", idem),
		e.raw("POST", "/_sim/faults", testKey, `{"kind":"nope"}`, nil),
	}
}

// With RewordErrors every error message is replaced while status, type,
// code and param stay exactly as without it.
func TestRewordErrors(t *testing.T) {
	plain := errorRequests(t, newEnv(t, Options{}))
	reworded := errorRequests(t, newEnv(t, Options{RewordErrors: true}))
	seen := map[string]bool{}
	for i, p := range plain {
		r := reworded[i]
		if p.status < 400 || p.errField("message") == "" {
			t.Fatalf("request %d did not fail: %d %s", i, p.status, p.raw)
		}
		for _, f := range []string{"type", "code", "param", "doc_url"} {
			if p.errField(f) != r.errField(f) {
				t.Errorf("request %d: %s %q reworded to %q", i, f, p.errField(f), r.errField(f))
			}
		}
		if p.status != r.status {
			t.Errorf("request %d: status %d reworded to %d", i, p.status, r.status)
		}
		msg := r.errField("message")
		if !strings.HasPrefix(msg, "Reworded by stripe-sim (message ") || msg == p.errField("message") {
			t.Errorf("request %d: message %q (plain %q) was not reworded", i, msg, p.errField("message"))
		}
		if seen[msg] && i != 5 { // 5 replays 4: Stripe replays the stored body
			t.Errorf("request %d: message %q used twice", i, msg)
		}
		seen[msg] = true
	}
	if reworded[5].errField("message") != reworded[4].errField("message") || reworded[5].header.Get("Idempotent-Replayed") != "true" {
		t.Errorf("replay %q, want the stored %q", reworded[5].raw, reworded[4].raw)
	}
	// The promotion code refusal keeps Stripe's structured fields.
	if r := reworded[4]; r.status != 400 || r.errField("type") != "invalid_request_error" || r.errField("param") != "promotion_code" {
		t.Errorf("refusal %s", r.raw)
	}
}

// Errors with a code link to Stripe's page for it, as Stripe's do.
func TestErrorDocURL(t *testing.T) {
	e := newEnv(t, Options{})
	r := e.raw("GET", "/v1/customers/cus_missing", testKey, "", nil)
	if r.errField("code") != "resource_missing" || r.errField("doc_url") != "https://stripe.com/docs/error-codes/resource-missing" {
		t.Errorf("missing customer: %s", r.raw)
	}
	if r := e.raw("GET", "/v1/nope", testKey, "", nil); r.errField("doc_url") != "" {
		t.Errorf("error without a code has a doc_url: %s", r.raw)
	}
}

// The Date header is the simulator's time, as Stripe's is Stripe's.
func TestDateHeaderIsTheSimulatorsTime(t *testing.T) {
	at := time.Date(2031, 5, 6, 7, 8, 9, 0, time.UTC)
	e := newEnv(t, Options{Now: func() time.Time { return at }})
	for _, path := range []string{"/v1/customers", "/v1/customers/cus_missing"} {
		r := e.raw("GET", path, testKey, "", nil)
		if got, err := http.ParseTime(r.header.Get("Date")); err != nil || !got.Equal(at) {
			t.Errorf("%s: Date %q, want %s", path, r.header.Get("Date"), at.Format(http.TimeFormat))
		}
	}
}
