package stripegw

import (
	"bytes"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/billing-adapter/billing-adapter/internal/promo"
	"github.com/billing-adapter/billing-adapter/internal/telemetry"
)

const testKey = "sk_test_123"

// captured is one request as the server saw it.
type captured struct {
	Method, Path   string
	Form           url.Values // body for POST, query for GET
	IdempotencyKey string
	Authorization  string
}

// recorder keeps every request that reached a test server.
type recorder struct {
	mu   sync.Mutex
	reqs []captured
}

// capture records r and restores its body for the next handler.
func (rec *recorder) capture(t testing.TB, r *http.Request) {
	body, err := io.ReadAll(r.Body)
	if err != nil {
		t.Errorf("read request body: %v", err)
	}
	r.Body = io.NopCloser(bytes.NewReader(body))
	form := r.URL.Query()
	if r.Method == http.MethodPost {
		if form, err = url.ParseQuery(string(body)); err != nil {
			t.Errorf("request body is not a form: %v", err)
		}
	}
	rec.mu.Lock()
	defer rec.mu.Unlock()
	rec.reqs = append(rec.reqs, captured{
		Method: r.Method, Path: r.URL.Path, Form: form,
		IdempotencyKey: r.Header.Get("Idempotency-Key"), Authorization: r.Header.Get("Authorization"),
	})
}

func (rec *recorder) all() []captured {
	rec.mu.Lock()
	defer rec.mu.Unlock()
	return append([]captured(nil), rec.reqs...)
}

func (rec *recorder) last(t testing.TB) captured {
	t.Helper()
	all := rec.all()
	if len(all) == 0 {
		t.Fatal("no request reached the server")
	}
	return all[len(all)-1]
}

// recordingProxy puts a recorder in front of target (stripe-mock).
func recordingProxy(t testing.TB, target string) (string, *recorder) {
	u, err := url.Parse(target)
	if err != nil {
		t.Fatal(err)
	}
	rec := &recorder{}
	proxy := httputil.NewSingleHostReverseProxy(u)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		rec.capture(t, r)
		proxy.ServeHTTP(w, r)
	}))
	t.Cleanup(srv.Close)
	return srv.URL, rec
}

// fakeStripe serves handler behind a recorder.
func fakeStripe(t testing.TB, handler http.HandlerFunc) (string, *recorder) {
	rec := &recorder{}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		rec.capture(t, r)
		handler(w, r)
	}))
	t.Cleanup(srv.Close)
	return srv.URL, rec
}

// stripeError writes an error in Stripe's JSON shape with a Request-Id.
func stripeError(w http.ResponseWriter, status int, requestID, body string) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Request-Id", requestID)
	w.WriteHeader(status)
	io.WriteString(w, body)
}

func writeJSON(w http.ResponseWriter, body string) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Request-Id", "req_ok")
	io.WriteString(w, body)
}

func newTestGateway(base string, m *telemetry.Metrics) *Gateway {
	return New(Options{SecretKey: testKey, APIBase: base, MaxRetries: 0, Timeout: 5 * time.Second, Metrics: m})
}

// asPromo returns err as *promo.Error or fails.
func asPromo(t testing.TB, err error) *promo.Error {
	t.Helper()
	var pe *promo.Error
	if !errors.As(err, &pe) {
		t.Fatalf("error %v (%T) is not a *promo.Error", err, err)
	}
	return pe
}

// scrape returns the Prometheus text of m.
func scrape(t testing.TB, m *telemetry.Metrics) string {
	t.Helper()
	rr := httptest.NewRecorder()
	m.Handler().ServeHTTP(rr, httptest.NewRequest(http.MethodGet, "/metrics", nil))
	return rr.Body.String()
}

func assertMetric(t testing.TB, m *telemetry.Metrics, operation, outcome string) {
	t.Helper()
	want := `billing_stripe_calls_total{operation="` + operation + `",outcome="` + outcome + `"}`
	if text := scrape(t, m); !strings.Contains(text, want) {
		t.Errorf("metrics lack %s:\n%s", want, grepLines(text, "billing_stripe_calls_total"))
	}
}

func grepLines(text, sub string) string {
	var out []string
	for _, l := range strings.Split(text, "\n") {
		if strings.Contains(l, sub) {
			out = append(out, l)
		}
	}
	return strings.Join(out, "\n")
}
