package stripesim

import (
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/billing-adapter/billing-adapter/internal/testutil/stripespec"
	stripe "github.com/stripe/stripe-go/v76"
	"github.com/stripe/stripe-go/v76/client"
)

const testKey = "sk_test_simulator"

type env struct {
	t   *testing.T
	sim *Server
	srv *httptest.Server
	sc  *client.API
}

func newEnv(t *testing.T, opts Options) *env {
	t.Helper()
	sim := New(opts)
	srv := httptest.NewServer(stripespec.Handler(t, sim)) // every answer held to Stripe's OpenAPI spec
	t.Cleanup(func() {
		srv.Close()
		stripespec.Events(t, sim.EventBodies())
		sim.Close()
	})
	return &env{t: t, sim: sim, srv: srv, sc: newClient(srv.URL, testKey)}
}

func newClient(url, key string) *client.API {
	backend := stripe.GetBackendWithConfig(stripe.APIBackend, &stripe.BackendConfig{
		URL:               stripe.String(url),
		MaxNetworkRetries: stripe.Int64(0),
		LeveledLogger:     &stripe.LeveledLogger{Level: stripe.LevelNull},
	})
	return client.New(key, &stripe.Backends{API: backend, Connect: backend, Uploads: backend})
}

// stripeErr asserts err is a *stripe.Error with the given fields ("" skips a
// field check).
func stripeErr(t *testing.T, err error, status int, typ stripe.ErrorType, code stripe.ErrorCode, param string) *stripe.Error {
	t.Helper()
	if err == nil {
		t.Fatalf("expected a Stripe error (status %d, type %s, code %s, param %s), got nil", status, typ, code, param)
	}
	var se *stripe.Error
	if !errors.As(err, &se) {
		t.Fatalf("expected *stripe.Error, got %T: %v", err, err)
	}
	if se.HTTPStatusCode != status {
		t.Errorf("status = %d, want %d (%s)", se.HTTPStatusCode, status, se.Msg)
	}
	if se.Type != typ {
		t.Errorf("type = %q, want %q (%s)", se.Type, typ, se.Msg)
	}
	if se.Code != code {
		t.Errorf("code = %q, want %q (%s)", se.Code, code, se.Msg)
	}
	if se.Param != param {
		t.Errorf("param = %q, want %q (%s)", se.Param, param, se.Msg)
	}
	if !strings.HasPrefix(se.RequestID, "req_") {
		t.Errorf("error request id = %q, want req_...", se.RequestID)
	}
	return se
}

func mustNoErr(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatalf("unexpected error: %v", err)
	}
}

type rawResp struct {
	status int
	header http.Header
	body   map[string]any
	raw    string
}

// raw sends a request without stripe-go. form is an encoded body (or query
// for GET).
func (e *env) raw(method, path, key, form string, hdr map[string]string) rawResp {
	e.t.Helper()
	url := e.srv.URL + path
	var body io.Reader
	if method == http.MethodGet && form != "" {
		url += "?" + form
	} else if form != "" {
		body = strings.NewReader(form)
	}
	req, err := http.NewRequest(method, url, body)
	if err != nil {
		e.t.Fatal(err)
	}
	if key != "" {
		req.Header.Set("Authorization", "Bearer "+key)
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	}
	for k, v := range hdr {
		req.Header.Set(k, v)
	}
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		e.t.Fatal(err)
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	out := rawResp{status: res.StatusCode, header: res.Header, raw: string(b)}
	if len(b) > 0 {
		d := json.NewDecoder(strings.NewReader(string(b)))
		d.UseNumber()
		if err := d.Decode(&out.body); err != nil {
			e.t.Fatalf("response is not JSON (%v): %s", err, b)
		}
	}
	return out
}

func (r rawResp) errField(k string) string {
	m, _ := r.body["error"].(map[string]any)
	s, _ := m[k].(string)
	return s
}

// mkProductPrice creates a product and a monthly price.
func (e *env) mkPrice(amount int64, currency string) *stripe.Price {
	e.t.Helper()
	p, err := e.sc.Prices.New(&stripe.PriceParams{
		Currency:    stripe.String(currency),
		UnitAmount:  stripe.Int64(amount),
		Recurring:   &stripe.PriceRecurringParams{Interval: stripe.String("month")},
		ProductData: &stripe.PriceProductDataParams{Name: stripe.String("Plan " + currency)},
	})
	mustNoErr(e.t, err)
	return p
}

func (e *env) mkCustomer(clock string) *stripe.Customer {
	e.t.Helper()
	params := &stripe.CustomerParams{Email: stripe.String("user@example.com")}
	if clock != "" {
		params.TestClock = stripe.String(clock)
	}
	c, err := e.sc.Customers.New(params)
	mustNoErr(e.t, err)
	return c
}

func (e *env) mkCoupon(p *stripe.CouponParams) *stripe.Coupon {
	e.t.Helper()
	c, err := e.sc.Coupons.New(p)
	mustNoErr(e.t, err)
	return c
}

func (e *env) mkPromo(coupon, code string) *stripe.PromotionCode {
	e.t.Helper()
	pc, err := e.sc.PromotionCodes.New(&stripe.PromotionCodeParams{Coupon: stripe.String(coupon), Code: stripe.String(code)})
	mustNoErr(e.t, err)
	return pc
}

// count reads simulator state under its lock.
func (s *Server) count(f func(*Server) int) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return f(s)
}
