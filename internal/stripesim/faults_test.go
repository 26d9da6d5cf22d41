package stripesim

import (
	"context"
	"errors"
	"net/http"
	"testing"
	"time"

	stripe "github.com/stripe/stripe-go/v76"
)

func TestCounters(t *testing.T) {
	e := newEnv(t, Options{})
	cp := e.mkCoupon(&stripe.CouponParams{PercentOff: stripe.Float64(10)})
	for i := 0; i < 3; i++ {
		_, err := e.sc.Coupons.Get(cp.ID, nil)
		mustNoErr(t, err)
	}
	_, _ = e.sc.Coupons.Get("missing", nil)
	_, err := e.sc.Coupons.Update(cp.ID, &stripe.CouponParams{Name: stripe.String("n")})
	mustNoErr(t, err)
	_, err = e.sc.Coupons.Del(cp.ID, nil)
	mustNoErr(t, err)
	want := map[string]int{
		"POST /v1/coupons":        1,
		"GET /v1/coupons/{id}":    4,
		"POST /v1/coupons/{id}":   1,
		"DELETE /v1/coupons/{id}": 1,
	}
	got := e.sim.Counts()
	for k, v := range want {
		if got[k] != v {
			t.Errorf("Counts()[%q] = %d, want %d (all: %v)", k, got[k], v, got)
		}
	}
	if e.sim.Count("GET /v1/coupons/{id}") != 4 {
		t.Error("Count mismatch")
	}
	e.sim.ResetCounts()
	if len(e.sim.Counts()) != 0 || e.sim.Count("POST /v1/coupons") != 0 {
		t.Fatalf("after reset: %v", e.sim.Counts())
	}
	// Templates for nested paths.
	_, _ = e.sc.Subscriptions.DeleteDiscount("sub_x", nil)
	if e.sim.Count("DELETE /v1/subscriptions/{id}/discount") != 1 {
		t.Fatalf("counts = %v", e.sim.Counts())
	}
}

func TestFaultServerError(t *testing.T) {
	e := newEnv(t, Options{})
	e.sim.InjectFault(Fault{Kind: FaultServerError, Method: "POST", Path: "/v1/coupons", Count: 2})
	p := couponParams("fault-key", 10)
	for i := 0; i < 2; i++ {
		_, err := e.sc.Coupons.New(p)
		se := stripeErr(t, err, 500, stripe.ErrorTypeAPI, "", "")
		if se.LastResponse.Header.Get("Stripe-Should-Retry") != "false" {
			t.Error("missing Stripe-Should-Retry: false")
		}
	}
	if e.sim.count(func(s *Server) int { return len(s.coupons) }) != 0 {
		t.Fatal("a faulted request executed")
	}
	// Not saved for idempotency: the same key now executes.
	cp, err := e.sc.Coupons.New(p)
	mustNoErr(t, err)
	if cp.LastResponse.Header.Get("Idempotent-Replayed") != "" {
		t.Fatal("server_error result was saved")
	}
	if got := e.sim.Count("POST /v1/coupons"); got != 3 {
		t.Fatalf("faulted requests not counted: %d", got)
	}
	// Other methods/paths were never affected.
	_, err = e.sc.Coupons.Get(cp.ID, nil)
	mustNoErr(t, err)
}

func TestFaultRateLimitAndLockTimeout(t *testing.T) {
	e := newEnv(t, Options{})
	for _, tc := range []struct {
		kind FaultKind
		code stripe.ErrorCode
	}{{FaultRateLimit, stripe.ErrorCodeRateLimit}, {FaultLockTimeout, stripe.ErrorCodeLockTimeout}} {
		t.Run(string(tc.kind), func(t *testing.T) {
			e.sim.InjectFault(Fault{Kind: tc.kind, Path: "/v1/customers"})
			_, err := e.sc.Customers.New(&stripe.CustomerParams{})
			se := stripeErr(t, err, 429, stripe.ErrorTypeInvalidRequest, tc.code, "")
			if se.LastResponse.Header.Get("Stripe-Should-Retry") != "false" {
				t.Error("missing Stripe-Should-Retry: false")
			}
			// Only the next matching request.
			_, err = e.sc.Customers.New(&stripe.CustomerParams{})
			mustNoErr(t, err)
		})
	}
	// Method filter: a GET fault does not hit POSTs.
	e.sim.InjectFault(Fault{Kind: FaultRateLimit, Method: "GET"})
	c, err := e.sc.Customers.New(&stripe.CustomerParams{})
	mustNoErr(t, err)
	_, err = e.sc.Customers.Get(c.ID, nil)
	stripeErr(t, err, 429, stripe.ErrorTypeInvalidRequest, stripe.ErrorCodeRateLimit, "")
}

func TestFaultHang(t *testing.T) {
	e := newEnv(t, Options{})
	e.sim.InjectFault(Fault{Kind: FaultHang, Path: "/v1/coupons", Delay: 150 * time.Millisecond})
	start := time.Now()
	_, err := e.sc.Coupons.New(&stripe.CouponParams{PercentOff: stripe.Float64(10)})
	stripeErr(t, err, 500, stripe.ErrorTypeAPI, "", "")
	if d := time.Since(start); d < 150*time.Millisecond {
		t.Fatalf("hang returned after %v", d)
	}
	if e.sim.count(func(s *Server) int { return len(s.coupons) }) != 0 {
		t.Fatal("hung request executed")
	}
	// A client timeout cuts the default 60s hang short.
	e.sim.InjectFault(Fault{Kind: FaultHang, Path: "/v1/coupons"})
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	p := &stripe.CouponParams{PercentOff: stripe.Float64(10)}
	p.Context = ctx
	start = time.Now()
	_, err = e.sc.Coupons.New(p)
	if err == nil || !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("expected deadline exceeded, got %v", err)
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Fatalf("client timeout took %v", d)
	}
	// The hang fault is consumed; the next request works.
	_, err = e.sc.Coupons.New(&stripe.CouponParams{PercentOff: stripe.Float64(10)})
	mustNoErr(t, err)
}

func TestFaultCommitThen500(t *testing.T) {
	e := newEnv(t, Options{})
	e.sim.InjectFault(Fault{Kind: FaultCommitThenError, Method: "POST", Path: "/v1/coupons"})
	p := &stripe.CouponParams{ID: stripe.String("COMMITTED"), PercentOff: stripe.Float64(10)}
	p.SetIdempotencyKey("commit-key")
	_, err := e.sc.Coupons.New(p)
	stripeErr(t, err, 500, stripe.ErrorTypeAPI, "", "")
	// The operation really happened.
	got, err := e.sc.Coupons.Get("COMMITTED", nil)
	mustNoErr(t, err)
	if got.PercentOff != 10 {
		t.Fatalf("coupon = %+v", got)
	}
	if countEvents(e.sim, "coupon.created") != 1 {
		t.Fatal("event not emitted")
	}
	// Same key: the saved 500 is replayed (as Stripe does).
	_, err = e.sc.Coupons.New(p)
	se := stripeErr(t, err, 500, stripe.ErrorTypeAPI, "", "")
	if se.LastResponse.Header.Get("Idempotent-Replayed") != "true" {
		t.Fatal("500 was not replayed")
	}
	// A new key sees the conflict the first call created.
	p2 := &stripe.CouponParams{ID: stripe.String("COMMITTED"), PercentOff: stripe.Float64(10)}
	_, err = e.sc.Coupons.New(p2)
	stripeErr(t, err, 400, stripe.ErrorTypeInvalidRequest, stripe.ErrorCodeResourceAlreadyExists, "id")
}

func TestFaultsOverHTTP(t *testing.T) {
	e := newEnv(t, Options{})
	r := e.raw(http.MethodPost, "/_sim/faults", "", `{"kind":"server_error"}`, nil)
	if r.status != 401 {
		t.Fatalf("unauthenticated /_sim: %d", r.status)
	}
	r = e.raw(http.MethodPost, "/_sim/faults", testKey, `{"kind":"rate_limit","method":"GET","path":"/v1/coupons","count":2}`,
		map[string]string{"Content-Type": "application/json"})
	if r.status != 200 {
		t.Fatalf("inject: %d %s", r.status, r.raw)
	}
	for i := 0; i < 2; i++ {
		_, err := e.sc.Coupons.Get("X", nil)
		stripeErr(t, err, 429, stripe.ErrorTypeInvalidRequest, stripe.ErrorCodeRateLimit, "")
	}
	_, err := e.sc.Coupons.Get("X", nil)
	stripeErr(t, err, 404, stripe.ErrorTypeInvalidRequest, stripe.ErrorCodeResourceMissing, "id")

	r = e.raw(http.MethodPost, "/_sim/faults", testKey, `{"kind":"hang","delay":"50ms"}`, map[string]string{"Content-Type": "application/json"})
	if r.status != 200 {
		t.Fatalf("inject hang: %d %s", r.status, r.raw)
	}
	start := time.Now()
	_, err = e.sc.Coupons.Get("X", nil)
	stripeErr(t, err, 500, stripe.ErrorTypeAPI, "", "")
	if time.Since(start) < 50*time.Millisecond {
		t.Fatal("hang delay from JSON ignored")
	}
	r = e.raw(http.MethodPost, "/_sim/faults", testKey, `{"kind":"explode"}`, map[string]string{"Content-Type": "application/json"})
	if r.status != 400 {
		t.Fatalf("bad kind accepted: %d", r.status)
	}

	r = e.raw(http.MethodGet, "/_sim/counts", testKey, "", nil)
	if r.status != 200 || r.body["GET /v1/coupons/{id}"] == nil {
		t.Fatalf("counts: %d %s", r.status, r.raw)
	}
	r = e.raw(http.MethodPost, "/_sim/counts/reset", testKey, "", nil)
	if r.status != 200 || len(e.sim.Counts()) != 0 {
		t.Fatalf("reset: %d %v", r.status, e.sim.Counts())
	}
}
