package stripespec

import (
	"net/http"
	"strings"
	"testing"
)

// The validator itself: it accepts Stripe-shaped objects and finds missing
// required fields, wrong types, values outside an enum and nulls where the
// spec does not allow them.
func TestValidatorFindsWhatBreaksTheSpec(t *testing.T) {
	coupon := `{"id":"c1","object":"coupon","amount_off":null,"created":1,"currency":null,"duration":"once",
		"duration_in_months":null,"livemode":false,"max_redemptions":null,"metadata":{},"name":null,"percent_off":20,
		"redeem_by":null,"times_redeemed":0,"valid":true}`
	if err := ValidateObject([]byte(coupon)); err != nil {
		t.Fatalf("a valid coupon was refused: %v", err)
	}
	for name, tc := range map[string]struct{ body, want string }{
		"missing required": {strings.Replace(coupon, `"valid":true`, `"x":1`, 1), "valid"},
		"wrong type":       {strings.Replace(coupon, `"times_redeemed":0`, `"times_redeemed":"0"`, 1), "times_redeemed"},
		"not in the enum":  {strings.Replace(coupon, `"duration":"once"`, `"duration":"twice"`, 1), "duration"},
		"null not allowed": {strings.Replace(coupon, `"livemode":false`, `"livemode":null`, 1), "livemode"},
	} {
		err := ValidateObject([]byte(tc.body))
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: %v, want an error naming %s", name, err, tc.want)
		}
	}
	ev := `{"id":"evt_1","object":"event","account":null,"api_version":"2023-10-16","created":1,"data":{"object":` + coupon +
		`},"livemode":false,"pending_webhooks":0,"request":{"id":null,"idempotency_key":null},"type":"coupon.created"}`
	if err := ValidateEvent([]byte(ev)); err == nil || !strings.Contains(err.Error(), "account") {
		t.Errorf(`an event with "account": null passed: %v`, err)
	}
	if err := ValidateResponse("GET", "/v1/coupons/c1", 200, http.Header{}, []byte(coupon)); err != nil {
		t.Errorf("a valid coupon answer was refused: %v", err)
	}
	if err := ValidateResponse("GET", "/v1/coupons/c1", 200, http.Header{}, []byte(strings.Replace(coupon, `"id":"c1",`, ``, 1))); err == nil {
		t.Error("a coupon answer without id passed")
	}
	if err := ValidateResponse("GET", "/v1/nosuch", 200, http.Header{}, []byte(`{}`)); err == nil {
		t.Error("a path Stripe does not have passed")
	}
}
