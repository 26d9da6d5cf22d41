package httpapi

import (
	"bytes"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/billing-adapter/billing-adapter/internal/promo"
	"github.com/labstack/echo/v4"
)

func ptr[T any](v T) *T { return &v }

// The hand-written validate answer is byte for byte what c.JSON writes
// (body and headers), and every answer it does not write itself is
// c.JSON's.
func TestWriteValidateIsCJSON(t *testing.T) {
	amount := &discountTerms{PromoType: promo.FlatAmount, AmountOff: ptr(int64(550)), Currency: ptr("usd"),
		Duration: promo.Repeating, AppliesToCycles: ptr(3)}
	percent := &discountTerms{PromoType: promo.Percentage, PercentOff: ptr(json.Number("12.5")), Duration: promo.Once,
		AppliesToCycles: ptr(1)}
	forever := &discountTerms{PromoType: promo.Percentage, PercentOff: ptr(json.Number("100")), Duration: promo.Forever}
	ref := &promoCodeRef{ID: "pc_01M8RYHNN2MFNN1RTHHD8JJRSS", Code: "SUMMER25"}
	preview := &invoicePreviewJS{Currency: "usd", AmountBefore: 1800, AmountAfter: 1250, DiscountAmount: 550,
		PeriodStart: "2026-12-01T00:00:00Z", PeriodEnd: "2027-01-01T00:00:00Z"}
	for _, tc := range []struct {
		name  string
		out   validateResponse
		query string
		hand  bool // appendValidate writes it (writeValidate still leaves a request with a query to c.JSON)
	}{
		{name: "valid, amount off", out: validateResponse{Valid: true, PromoCode: ref, Discount: amount}, hand: true},
		{name: "valid, percent off once", out: validateResponse{Valid: true, PromoCode: ref, Discount: percent}, hand: true},
		{name: "valid, forever", out: validateResponse{Valid: true, PromoCode: ref, Discount: forever}, hand: true},
		{name: "valid with a preview", out: validateResponse{Valid: true, PromoCode: ref, Discount: amount, Preview: preview}, hand: true},
		{name: "refused", out: validateResponse{PromoCode: ref, Discount: amount, Reason: ptr("already_redeemed"),
			Message: ptr("This customer has already used this code.")}, hand: true},
		{name: "unknown code", out: validateResponse{Reason: ptr("not_found"), Message: ptr("No such promo code: 'NOPE'.")}, hand: true},
		{name: "a message with HTML characters", out: validateResponse{Reason: ptr("x"), Message: ptr("<b> & \"quoted\"")}},
		{name: "a message in UTF-8", out: validateResponse{Reason: ptr("x"), Message: ptr("Code déjà utilisé \u2028")}},
		{name: "a control character", out: validateResponse{PromoCode: &promoCodeRef{ID: "pc_1", Code: "A\tB"}}},
		{name: "an odd percent", out: validateResponse{Discount: &discountTerms{PromoType: promo.Percentage, PercentOff: ptr(json.Number("1e2"))}}},
		{name: "eligible plans", out: validateResponse{Reason: ptr("plan_not_eligible"), EligiblePlans: []planJSON{{ID: "price_1",
			Object: "plan", UnitAmount: ptr(int64(1800)), Currency: "usd", Interval: ptr("month"), IntervalCount: ptr(int64(1))}}}},
		{name: "eligible plans, none", out: validateResponse{Reason: ptr("plan_not_eligible"), EligiblePlans: []planJSON{}}},
		{name: "pretty", out: validateResponse{Valid: true, PromoCode: ref, Discount: amount}, query: "?pretty", hand: true},
		{name: "another query", out: validateResponse{Valid: true, PromoCode: ref, Discount: amount}, query: "?a=1", hand: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tc.out.Object = "promo_code_validation"
			e := echo.New() // as New (server.go) makes it
			serve := func(write func(echo.Context) error) *httptest.ResponseRecorder {
				rec := httptest.NewRecorder()
				req := httptest.NewRequest(http.MethodPost, "/v1/promo_codes/validate"+tc.query, nil)
				c := e.NewContext(req, rec)
				c.Response().Header().Set("X-Request-Id", "req_1")
				if err := write(c); err != nil {
					t.Fatal(err)
				}
				return rec
			}
			want := serve(func(c echo.Context) error { return c.JSON(http.StatusOK, tc.out) })
			got := serve(func(c echo.Context) error { return writeValidate(c, &tc.out) })
			if got.Code != want.Code || !bytes.Equal(got.Body.Bytes(), want.Body.Bytes()) {
				t.Fatalf("got %d %q\nwant %d %q", got.Code, got.Body, want.Code, want.Body)
			}
			if g, w := got.Header(), want.Header(); len(g) != len(w) || g.Get("Content-Type") != w.Get("Content-Type") ||
				g.Get("X-Request-Id") != w.Get("X-Request-Id") {
				t.Fatalf("headers %v, want %v", g, w)
			}
			if _, hand := appendValidate(nil, &tc.out); hand != tc.hand {
				t.Fatalf("written by hand: %v, want %v", hand, tc.hand)
			}
			// writeValidate takes the hand-written way for a request
			// without a query, with the server's echo.
			c := e.NewContext(httptest.NewRequest(http.MethodPost, "/v1/promo_codes/validate"+tc.query, nil), httptest.NewRecorder())
			if got, want := plainJSON(c), tc.query == ""; got != want {
				t.Fatalf("plainJSON %v, want %v", got, want)
			}
		})
	}
}

// appendString writes a string as encoding/json does, or leaves it.
func FuzzAppendString(f *testing.F) {
	for _, s := range []string{"", "SUMMER25", "a<b", "é", "\u2028", "\x00", "a\"b", "\xff"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		want, _ := json.Marshal(s)
		if got, ok := appendString(nil, s); ok && !bytes.Equal(got, want) {
			t.Fatalf("%q: got %s, want %s", s, got, want)
		}
	})
}

// plainNumber accepts only numbers that encoding/json writes as they are.
func FuzzPlainNumber(f *testing.F) {
	for _, s := range []string{"0", "12.5", "100", "01", "1.", ".5", "1e2", "-1", "", "0.25"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		if !plainNumber(s) {
			return
		}
		got, err := json.Marshal(json.Number(s))
		if err != nil || string(got) != s {
			t.Fatalf("%q: encoding/json gives %s %v", s, got, err)
		}
	})
}

// BenchmarkWriteValidate: the hand-written answer against c.JSON, for a
// valid code's answer.
func BenchmarkWriteValidate(b *testing.B) {
	out := validateResponse{Object: "promo_code_validation", Valid: true,
		PromoCode: &promoCodeRef{ID: "pc_01M8RYHNN2MFNN1RTHHD8JJRSS", Code: "HOTCODE"},
		Discount:  &discountTerms{PromoType: promo.Percentage, PercentOff: ptr(json.Number("10")), Duration: promo.Forever}}
	e := echo.New()
	req := httptest.NewRequest(http.MethodPost, "/v1/promo_codes/validate", nil)
	for _, bc := range []struct {
		name  string
		write func(echo.Context) error
	}{
		{"hand", func(c echo.Context) error { return writeValidate(c, &out) }},
		{"c.JSON", func(c echo.Context) error { return c.JSON(http.StatusOK, out) }},
	} {
		b.Run(bc.name, func(b *testing.B) {
			w := &nullWriter{h: http.Header{}}
			b.ReportAllocs()
			for b.Loop() {
				clear(w.h)
				c := e.AcquireContext()
				c.Reset(req, w)
				if err := bc.write(c); err != nil {
					b.Fatal(err)
				}
				e.ReleaseContext(c)
			}
		})
	}
}

type nullWriter struct{ h http.Header }

func (w *nullWriter) Header() http.Header         { return w.h }
func (w *nullWriter) Write(p []byte) (int, error) { return len(p), nil }
func (w *nullWriter) WriteHeader(int)             {}
