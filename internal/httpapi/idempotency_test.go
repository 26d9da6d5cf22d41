package httpapi

import (
	"net/http/httptest"
	"testing"

	"github.com/billing-adapter/billing-adapter/internal/promo"
)

func TestFingerprint(t *testing.T) {
	fp := func(method, target, body string) string {
		return fingerprint(httptest.NewRequest(method, target, nil), []byte(body))
	}
	base := fp("POST", "/v1/promo_codes", `{"code":"A","amount_off":12.50,"metadata":{"x":"1","y":"2"}}`)
	same := []string{
		`{ "metadata": {"y":"2", "x":"1"}, "amount_off": 12.50, "code": "A" }`,
		"{\"code\":\"A\",\n\"amount_off\":12.50,\"metadata\":{\"x\":\"1\",\"y\":\"2\"}}",
	}
	for _, b := range same {
		if fp("POST", "/v1/promo_codes", b) != base {
			t.Errorf("same request, other encoding, got another fingerprint: %s", b)
		}
	}
	other := map[string]string{
		"number written differently": `{"code":"A","amount_off":12.5,"metadata":{"x":"1","y":"2"}}`,
		"other value":                `{"code":"B","amount_off":12.50,"metadata":{"x":"1","y":"2"}}`,
		"extra field":                `{"code":"A","amount_off":12.50,"metadata":{"x":"1","y":"2"},"stock":1}`,
		"not json":                   `code=A`,
	}
	for name, b := range other {
		if fp("POST", "/v1/promo_codes", b) == base {
			t.Errorf("%s: same fingerprint", name)
		}
	}
	if fp("POST", "/v1/promo_codes/pc_1", `{"code":"A","amount_off":12.50,"metadata":{"x":"1","y":"2"}}`) == base ||
		fp("DELETE", "/v1/promo_codes", `{"code":"A","amount_off":12.50,"metadata":{"x":"1","y":"2"}}`) == base ||
		fp("POST", "/v1/promo_codes?x=1", `{"code":"A","amount_off":12.50,"metadata":{"x":"1","y":"2"}}`) == base {
		t.Error("method, path and query must be part of the fingerprint")
	}
}

func TestEveryErrorCodeHasAStatus(t *testing.T) {
	if len(errorStatus) != len(promo.Codes) {
		t.Errorf("table has %d rows for %d codes", len(errorStatus), len(promo.Codes))
	}
	for _, code := range promo.Codes {
		row, ok := errorStatus[code]
		if !ok || row.Status < 400 || row.Type == "" {
			t.Errorf("%s: %+v", code, row)
		}
	}
}

// Which answers an Idempotency-Key keeps, by status class and by whether
// the operation began executing (README "Idempotency").
func TestSaveAnswer(t *testing.T) {
	tests := []struct {
		name   string
		status int
		began  bool
		saved  bool
	}{
		{"200 ok", 200, true, true},
		{"201 created", 201, true, true},
		{"2xx without a mark is still saved", 200, false, true},
		{"400 request validation (decoding, parameter checks)", 400, false, false},
		{"400 decided after it began (Stripe: unknown price)", 400, true, true},
		{"403 customer_mismatch (after it began)", 403, true, true},
		{"404 code_not_found, subscription_not_found, no such promo code", 404, true, true},
		{"404 before it began", 404, false, false},
		{"413 before it began", 413, false, false},
		{"422 code_exhausted, code_expired, plan_not_eligible ...", 422, true, true},
		{"422 before it began", 422, false, false},
		{"409 idempotency_key_in_use or a conflict", 409, true, false},
		{"409 before it began", 409, false, false},
		{"429 rate limited", 429, true, false},
		{"500 internal", 500, true, false},
		{"502 Stripe failed", 502, true, false},
		{"503 Redis unreachable", 503, true, false},
		{"503 before it began", 503, false, false},
	}
	for _, tt := range tests {
		if got := saveAnswer(tt.status, tt.began); got != tt.saved {
			t.Errorf("%s: saveAnswer(%d, began=%v) = %v, want %v", tt.name, tt.status, tt.began, got, tt.saved)
		}
	}
}
