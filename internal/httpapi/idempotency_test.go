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
