package stripesim

import (
	"net/http"
	"strings"
	"testing"

	stripe "github.com/stripe/stripe-go/v76"
)

func TestAuth(t *testing.T) {
	e := newEnv(t, Options{})
	tests := []struct {
		name       string
		hdr        map[string]string
		wantStatus int
		wantMsg    string
	}{
		{"no key", nil, 401, "You did not provide an API key"},
		{"live key", map[string]string{"Authorization": "Bearer sk_live_abcdefgh1234"}, 401, "Invalid API Key provided: sk_live_********1234"},
		{"publishable key", map[string]string{"Authorization": "Bearer pk_test_abcdefgh9876"}, 401, "Invalid API Key provided: pk_test_********9876"},
		{"bearer test key", map[string]string{"Authorization": "Bearer sk_test_123"}, 200, ""},
		{"basic test key", map[string]string{"Authorization": "Basic c2tfdGVzdF8xMjM6"}, 200, ""}, // sk_test_123:
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r := e.raw("GET", "/v1/customers", "", "", tc.hdr)
			if r.status != tc.wantStatus {
				t.Fatalf("status = %d, want %d: %s", r.status, tc.wantStatus, r.raw)
			}
			if !strings.HasPrefix(r.header.Get("Request-Id"), "req_") {
				t.Errorf("missing Request-Id header: %v", r.header)
			}
			if tc.wantStatus == 401 {
				if r.errField("type") != "invalid_request_error" {
					t.Errorf("type = %q", r.errField("type"))
				}
				if !strings.HasPrefix(r.errField("message"), tc.wantMsg) {
					t.Errorf("message = %q, want prefix %q", r.errField("message"), tc.wantMsg)
				}
			}
		})
	}
	// stripe-go sees a 401 as a *stripe.Error too.
	_, err := newClient(e.srv.URL, "sk_live_nope1234").Customers.New(nil)
	stripeErr(t, err, 401, stripe.ErrorTypeInvalidRequest, "", "")
	if got := e.sim.Count("POST /v1/customers"); got != 0 {
		t.Errorf("unauthenticated request counted: %d", got)
	}
}

func TestUnknownRouteAndParams(t *testing.T) {
	e := newEnv(t, Options{})
	r := e.raw("GET", "/v1/nope", testKey, "", nil)
	if r.status != 404 || !strings.Contains(r.errField("message"), "Unrecognized request URL (GET: /v1/nope)") {
		t.Fatalf("unknown route: %d %s", r.status, r.raw)
	}

	tests := []struct {
		name, method, path, form, param string
	}{
		{"top level", "POST", "/v1/customers", "email=a%40b.c&bogus=1", "bogus"},
		{"nested", "POST", "/v1/coupons", "percent_off=10&applies_to[bogus]=x", "applies_to[bogus]"},
		{"query", "GET", "/v1/customers", "limit=3&nope=1", "nope"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r := e.raw(tc.method, tc.path, testKey, tc.form, nil)
			if r.status != 400 || r.errField("code") != "parameter_unknown" || r.errField("param") != tc.param {
				t.Fatalf("got %d %s", r.status, r.raw)
			}
			if r.errField("message") != "Received unknown parameter: "+tc.param {
				t.Errorf("message = %q", r.errField("message"))
			}
		})
	}

	// A real Stripe parameter that the simulator does not model is refused
	// with a message saying so (not silently ignored).
	_, err := e.sc.Customers.New(&stripe.CustomerParams{Balance: stripe.Int64(5)})
	se := stripeErr(t, err, 400, stripe.ErrorTypeInvalidRequest, "", "balance")
	if !strings.Contains(se.Msg, "stripe-sim does not support") {
		t.Errorf("message = %q", se.Msg)
	}

	// Unknown objects: 404 resource_missing with Stripe's wording.
	_, err = e.sc.Customers.Get("cus_missing", nil)
	se = stripeErr(t, err, 404, stripe.ErrorTypeInvalidRequest, stripe.ErrorCodeResourceMissing, "id")
	if se.Msg != "No such customer: 'cus_missing'" {
		t.Errorf("message = %q", se.Msg)
	}
	// Invalid integer.
	r = e.raw("POST", "/v1/coupons", testKey, "percent_off=10&max_redemptions=abc", nil)
	if r.status != 400 || r.errField("code") != "parameter_invalid_integer" || r.errField("param") != "max_redemptions" {
		t.Fatalf("invalid integer: %d %s", r.status, r.raw)
	}
}

func TestParseParams(t *testing.T) {
	pairs, err := formPairs("items[0][price]=p1&items[1][price]=p2&items[0][quantity]=3&expand[]=a&expand[]=b.c&metadata[k]=v&metadata[e]=&a[][x]=1&a[][y]=2&a[][x]=3")
	if err != nil {
		t.Fatal(err)
	}
	p, aerr := parseParams(pairs)
	if aerr != nil {
		t.Fatal(aerr)
	}
	items, _ := p.list("items")
	if len(items) != 2 || *items[0].kids["price"].val != "p1" || *items[0].kids["quantity"].val != "3" || *items[1].kids["price"].val != "p2" {
		t.Fatalf("items parsed wrong")
	}
	exp, _ := p.expandPaths()
	if len(exp) != 2 || exp[1][0] != "b" || exp[1][1] != "c" {
		t.Fatalf("expand = %v", exp)
	}
	mu, _ := p.metadata()
	got := mu.apply(map[string]string{"e": "old", "z": "keep"})
	if got["k"] != "v" || got["z"] != "keep" || len(got) != 2 {
		t.Fatalf("metadata = %v", got)
	}
	a, _ := p.list("a")
	if len(a) != 2 || *a[0].kids["y"].val != "2" || *a[1].kids["x"].val != "3" {
		t.Fatalf("rack arrays parsed wrong")
	}
}

func TestMoneyHelpers(t *testing.T) {
	for _, tc := range []struct {
		in   string
		bp   int64
		fail bool
	}{
		{"25.5000", 2550, false}, {"100", 10000, false}, {"0.01", 1, false}, {"33.33", 3333, false},
		{"12.345", 0, true}, {"0", 0, true}, {"100.01", 0, true}, {"-5", 0, true}, {"abc", 0, true}, {"1e2", 0, true},
	} {
		bp, err := parsePercent("percent_off", tc.in)
		if (err != nil) != tc.fail || bp != tc.bp {
			t.Errorf("parsePercent(%q) = %d, %v", tc.in, bp, err)
		}
	}
	for _, tc := range []struct{ amount, bp, want int64 }{
		{2000, 2500, 500}, {999, 3333, 333}, {1, 5000, 1}, {3, 5000, 2}, {2000, 10000, 2000}, {1999, 1250, 250},
	} {
		if got := percentOf(tc.amount, tc.bp); got != tc.want {
			t.Errorf("percentOf(%d,%d) = %d want %d", tc.amount, tc.bp, got, tc.want)
		}
	}
	if percentJSON(2550) != "25.5" || percentJSON(10000) != "100" || percentJSON(1) != "0.01" {
		t.Errorf("percentJSON wrong: %s %s %s", percentJSON(2550), percentJSON(10000), percentJSON(1))
	}
}

func TestRequestIDOnEveryResponse(t *testing.T) {
	e := newEnv(t, Options{})
	c := e.mkCustomer("")
	if id := c.LastResponse.RequestID; !strings.HasPrefix(id, "req_") {
		t.Fatalf("request id = %q", id)
	}
	r := e.raw(http.MethodGet, "/v1/customers/"+c.ID, testKey, "", nil)
	if !strings.HasPrefix(r.header.Get("Request-Id"), "req_") || r.header.Get("Stripe-Version") != "2023-10-16" {
		t.Fatalf("headers = %v", r.header)
	}
}
