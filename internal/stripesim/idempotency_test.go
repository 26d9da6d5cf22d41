package stripesim

import (
	"errors"
	"net/http"
	"sync"
	"testing"
	"time"

	stripe "github.com/stripe/stripe-go/v76"
)

func couponParams(key string, pct float64) *stripe.CouponParams {
	p := &stripe.CouponParams{PercentOff: stripe.Float64(pct), Duration: stripe.String("once")}
	p.SetIdempotencyKey(key)
	return p
}

func TestIdempotencyReplayAndMismatch(t *testing.T) {
	e := newEnv(t, Options{})
	first, err := e.sc.Coupons.New(couponParams("key-1", 10))
	mustNoErr(t, err)
	if first.LastResponse.Header.Get("Idempotent-Replayed") != "" {
		t.Fatal("first response marked as replayed")
	}
	again, err := e.sc.Coupons.New(couponParams("key-1", 10))
	mustNoErr(t, err)
	if again.ID != first.ID || again.LastResponse.Header.Get("Idempotent-Replayed") != "true" {
		t.Fatalf("replay: id %s vs %s, header %q", again.ID, first.ID, again.LastResponse.Header.Get("Idempotent-Replayed"))
	}
	if string(again.LastResponse.RawJSON) != string(first.LastResponse.RawJSON) {
		t.Fatal("replayed body differs")
	}
	if again.LastResponse.Header.Get("Original-Request") != first.LastResponse.RequestID {
		t.Errorf("Original-Request = %q, want %q", again.LastResponse.Header.Get("Original-Request"), first.LastResponse.RequestID)
	}
	if n := e.sim.count(func(s *Server) int { return len(s.coupons) }); n != 1 {
		t.Fatalf("coupons = %d, want 1", n)
	}
	if n := countEvents(e.sim, "coupon.created"); n != 1 {
		t.Fatalf("coupon.created events = %d", n)
	}

	_, err = e.sc.Coupons.New(couponParams("key-1", 20))
	se := stripeErr(t, err, 400, stripe.ErrorTypeIdempotency, "", "")
	want := "Keys for idempotent requests can only be used with the same parameters they were first used with. Try using a key other than 'key-1' if you meant to execute a different request."
	if se.Msg != want {
		t.Errorf("message = %q", se.Msg)
	}
	var ie *stripe.IdempotencyError
	if !errors.As(err, &ie) {
		t.Errorf("stripe-go did not classify as IdempotencyError: %T", se.Err)
	}
	// The same key on another endpoint is also a mismatch.
	_, err = e.sc.Customers.New(&stripe.CustomerParams{Params: stripe.Params{IdempotencyKey: stripe.String("key-1")}})
	stripeErr(t, err, 400, stripe.ErrorTypeIdempotency, "", "")

	// Keys are scoped per secret key.
	other := newClient(e.srv.URL, "sk_test_other")
	o, err := other.Coupons.New(couponParams("key-1", 10))
	mustNoErr(t, err)
	if o.ID == first.ID {
		t.Fatal("idempotency key leaked across API keys")
	}
}

func TestIdempotencyErrorsSavedOrNot(t *testing.T) {
	e := newEnv(t, Options{})
	// A parameter validation error is not saved: the same key with fixed
	// parameters executes.
	_, err := e.sc.Coupons.New(couponParams("k-valid", 150))
	stripeErr(t, err, 400, stripe.ErrorTypeInvalidRequest, "", "percent_off")
	ok, err := e.sc.Coupons.New(couponParams("k-valid", 15))
	mustNoErr(t, err)
	if ok.LastResponse.Header.Get("Idempotent-Replayed") != "" {
		t.Fatal("should have executed, not replayed")
	}

	// An error raised while executing (unknown coupon) is saved and
	// replayed even after the coupon appears.
	p := &stripe.PromotionCodeParams{Coupon: stripe.String("LATER")}
	p.SetIdempotencyKey("k-exec")
	_, err = e.sc.PromotionCodes.New(p)
	first := stripeErr(t, err, 400, stripe.ErrorTypeInvalidRequest, stripe.ErrorCodeResourceMissing, "coupon")
	e.mkCoupon(&stripe.CouponParams{ID: stripe.String("LATER"), PercentOff: stripe.Float64(5)})
	_, err = e.sc.PromotionCodes.New(p)
	second := stripeErr(t, err, 400, stripe.ErrorTypeInvalidRequest, stripe.ErrorCodeResourceMissing, "coupon")
	if second.LastResponse.Header.Get("Idempotent-Replayed") != "true" || first.Msg != second.Msg {
		t.Fatal("execution error was not replayed")
	}

	// GET requests ignore Idempotency-Key.
	r1 := e.raw("GET", "/v1/coupons/LATER", testKey, "", map[string]string{"Idempotency-Key": "g"})
	r2 := e.raw("GET", "/v1/coupons/NOPE", testKey, "", map[string]string{"Idempotency-Key": "g"})
	if r1.status != 200 || r2.status != 404 {
		t.Fatalf("GET with idempotency key: %d %d", r1.status, r2.status)
	}
}

func TestIdempotencyConcurrent(t *testing.T) {
	e := newEnv(t, Options{})
	// Hold the state lock so the first request stays "in progress" after it
	// registered its key.
	e.sim.mu.Lock()
	var wg sync.WaitGroup
	wg.Add(1)
	var firstErr error
	go func() {
		defer wg.Done()
		_, firstErr = e.sc.Coupons.New(couponParams("busy", 10))
	}()
	deadline := time.Now().Add(5 * time.Second)
	for {
		e.sim.idem.mu.Lock()
		n := len(e.sim.idem.m)
		e.sim.idem.mu.Unlock()
		if n == 1 {
			break
		}
		if time.Now().After(deadline) {
			e.sim.mu.Unlock()
			t.Fatal("first request never registered")
		}
		time.Sleep(5 * time.Millisecond)
	}
	_, err := e.sc.Coupons.New(couponParams("busy", 10))
	e.sim.mu.Unlock()
	wg.Wait()
	mustNoErr(t, firstErr)
	stripeErr(t, err, http.StatusConflict, stripe.ErrorTypeIdempotency, stripe.ErrorCodeIdempotencyKeyInUse, "")
	// Afterwards the key replays.
	r, err := e.sc.Coupons.New(couponParams("busy", 10))
	mustNoErr(t, err)
	if r.LastResponse.Header.Get("Idempotent-Replayed") != "true" {
		t.Fatal("not replayed after completion")
	}
}

func TestConcurrentLoad(t *testing.T) {
	e := newEnv(t, Options{})
	e.mkCoupon(&stripe.CouponParams{ID: stripe.String("LOAD"), PercentOff: stripe.Float64(10)})
	var wg sync.WaitGroup
	errs := make(chan error, 400)
	for i := 0; i < 200; i++ {
		wg.Add(2)
		go func(i int) {
			defer wg.Done()
			_, err := e.sc.Customers.New(&stripe.CustomerParams{Email: stripe.String("x@example.com")})
			errs <- err
		}(i)
		go func(i int) {
			defer wg.Done()
			_, err := e.sc.Coupons.Get("LOAD", nil)
			errs <- err
		}(i)
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	if got := e.sim.Count("POST /v1/customers"); got != 200 {
		t.Fatalf("count = %d", got)
	}
	if got := e.sim.Count("GET /v1/coupons/{id}"); got != 200 {
		t.Fatalf("count = %d", got)
	}
}

func countEvents(s *Server, typ string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	n := 0
	for _, ev := range s.events {
		if ev.typ == typ {
			n++
		}
	}
	return n
}
