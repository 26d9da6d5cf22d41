package main

import (
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/billing-adapter/billing-adapter/webhooks"
)

// goInternals are fragments of Go's own error texts (encoding/json, strconv,
// fmt, reflect): none may reach an API caller.
var goInternals = []string{"Go struct", "Go value", "json:", "unmarshal", "Unmarshal", "%!", "strconv", "Number",
	"invalid character", "literal", "struct {", "int64", "float64", "map[", "[]string", "interface", "reflect",
	"main.", "promo.", "httpapi", "webhooks.", "expandableID", "paidInvoice", "stripe.", "<nil>"}

// A table of malformed requests across every /v1 endpoint and the webhook
// receiver: each is a 400 (never a 5xx) in the documented error shape, names
// the field at fault in param where there is one, and its message is plain
// language, without Go's internals.
func TestMalformedInputIsAPlain400(t *testing.T) {
	st, s := webhookStack(t, "", nil)
	codeID := s.createCode(t, map[string]any{"code": "MALFORMED", "promo_type": "percentage", "amount_off": 10})["id"].(string)
	pl := st.newPlan(t, "usd", 2000)
	cus := st.newCustomer(t, "")
	sub := st.newSubscription(t, cus, pl.Price).ID
	st.settle(t)

	const (
		create   = "/v1/promo_codes"
		validate = "/v1/promo_codes/validate"
		subs     = "/v1/subscriptions"
		hook     = "/webhooks/stripe"
	)
	update, apply, list, ledger := create+"/"+codeID, subs+"/"+sub+"/promo_code", create, create+"/"+codeID+"/redemptions"
	// pct is a valid percentage code's body with one field replaced (raw JSON).
	pct := func(field, raw string) string {
		body := map[string]string{"code": `"BADBODY"`, "promo_type": `"percentage"`, "amount_off": `10`}
		body[field] = raw
		parts := make([]string, 0, len(body))
		for k, v := range body {
			parts = append(parts, fmt.Sprintf("%q:%s", k, v))
		}
		return "{" + strings.Join(parts, ",") + "}"
	}
	flat := func(amount, currency string) string {
		return `{"code":"BADFLAT","promo_type":"flat_amount","amount_off":` + amount + `,"currency":"` + currency + `"}`
	}
	// ev is an event of type typ whose data.object is raw JSON.
	ev := func(typ, object string) string {
		return `{"id":"evt_bad_` + strings.ReplaceAll(typ, ".", "_") + `_` + fmt.Sprint(len(object)) + `","object":"event","type":"` + typ +
			`","api_version":"` + webhooks.APIVersion + `","created":` + fmt.Sprint(time.Now().Unix()) + `,"data":{"object":` + object + `}}`
	}

	tests := []struct {
		name, method, path, body string
		param                    string // the field the answer must name ("" = none expected)
		msg                      string // a fragment the message must contain
	}{
		// POST /v1/promo_codes: amount_off in every shape but a decimal.
		{"amount_off NaN", "POST", create, pct("amount_off", `"NaN"`), "amount_off", "plain decimal number"},
		{"amount_off leading space", "POST", create, pct("amount_off", `" 5"`), "amount_off", "plain decimal number"},
		{"amount_off Infinity", "POST", create, pct("amount_off", `"Infinity"`), "amount_off", "plain decimal number"},
		{"amount_off exponent string", "POST", create, pct("amount_off", `"1e3"`), "amount_off", "plain decimal number"},
		{"amount_off exponent number", "POST", create, pct("amount_off", `1e3`), "amount_off", "plain decimal number"},
		{"amount_off huge exponent", "POST", create, pct("amount_off", `1e400`), "amount_off", "plain decimal number"},
		{"amount_off empty string", "POST", create, pct("amount_off", `""`), "amount_off", "required"},
		{"amount_off format verbs", "POST", create, pct("amount_off", `"%s%n%x"`), "amount_off", "plain decimal number"},
		{"amount_off negative", "POST", create, pct("amount_off", `-5`), "amount_off", "must be positive"},
		{"amount_off boolean", "POST", create, pct("amount_off", `true`), "amount_off", "amount_off must be"},
		{"amount_off object", "POST", create, pct("amount_off", `{}`), "amount_off", "amount_off must be"},
		{"amount_off array", "POST", create, pct("amount_off", `[5]`), "amount_off", "amount_off must be"},
		{"usd with 3 decimals", "POST", create, flat(`"5.555"`, "usd"), "amount_off", "at most 2 decimal places for USD"},
		{"jpy with decimals", "POST", create, flat(`500.5`, "jpy"), "amount_off", "JPY has no decimal places"},
		{"code a number", "POST", create, pct("code", `5`), "code", "code must be a string"},
		{"stock a word", "POST", create, pct("stock", `"ten"`), "stock", "stock must be a whole number"},
		{"stock a fraction", "POST", create, pct("stock", `1.5`), "stock", "stock must be a whole number"},
		{"stock out of range", "POST", create, pct("stock", `99999999999999999999`), "stock", "stock"},
		{"unlimited_stock a word", "POST", create, pct("unlimited_stock", `"yes"`), "unlimited_stock", "true or false"},
		{"new_users_only a string", "POST", create, pct("new_users_only", `"true"`), "new_users_only", "true or false"},
		{"metadata value a number", "POST", create, pct("metadata", `{"a":5}`), "metadata", "metadata must be an object whose values are strings"},
		{"metadata an array", "POST", create, pct("metadata", `[1]`), "metadata", "metadata must be an object"},
		{"plan_ids a string", "POST", create, pct("plan_ids", `"price_1"`), "plan_ids", "plan_ids must be an array of strings"},
		{"plan_ids of numbers", "POST", create, pct("plan_ids", `[5]`), "plan_ids", "plan_ids must be an array of strings"},
		{"promo_duration_months a string", "POST", create, pct("promo_duration_months", `"3"`), "promo_duration_months", "whole number"},
		{"expiration_datetime not a time", "POST", create, pct("expiration_datetime", `"tomorrow"`), "expiration_datetime", "RFC 3339"},
		{"expiration_datetime a number", "POST", create, pct("expiration_datetime", `5`), "expiration_datetime", "must be a string"},
		{"unknown field", "POST", create, pct("bogus", `1`), "bogus", "unknown field"},
		{"truncated", "POST", create, `{"code":"A1"`, "", "JSON"},
		{"trailing comma", "POST", create, `{"code":"A1",}`, "", "not valid JSON"},
		{"bare word", "POST", create, `nul`, "", "JSON"},
		{"two objects", "POST", create, `{"code":"A1"}{"code":"B2"}`, "", "single JSON object"},
		{"an array", "POST", create, `[]`, "", "JSON object"},
		{"a string", "POST", create, `"promo"`, "", "JSON object"},
		{"empty body", "POST", create, ``, "", "JSON object"},

		// POST /v1/promo_codes/{id}
		{"update stock a word", "POST", update, `{"stock":"x"}`, "stock", "stock"},
		{"update status a number", "POST", update, `{"status":5}`, "status", "status"},
		{"update stock null", "POST", update, `{"stock":null}`, "stock", "null"},
		{"update expiration not a time", "POST", update, `{"expiration_datetime":"soon"}`, "expiration_datetime", "RFC 3339"},
		{"update metadata value a number", "POST", update, `{"metadata":{"a":5}}`, "metadata", "metadata"},
		{"update amount_off NaN", "POST", update, `{"amount_off":"NaN"}`, "amount_off", "new code"},
		{"update unknown field", "POST", update, `{"bogus":true}`, "bogus", "unknown field"},
		{"update an array", "POST", update, `[1]`, "", "JSON object"},
		{"update syntax", "POST", update, `{"stock":}`, "", "not valid JSON"},

		// POST /v1/promo_codes/validate
		{"validate code a number", "POST", validate, `{"code":5,"customer":"` + cus + `"}`, "code", "code must be a string"},
		{"validate customer an array", "POST", validate, `{"code":"MALFORMED","customer":["x"]}`, "customer", "customer must be a string"},
		{"validate price an object", "POST", validate, `{"code":"MALFORMED","customer":"` + cus + `","price":{}}`, "price", "price must be a string"},
		{"validate unknown field", "POST", validate, `{"code":"MALFORMED","customer":"` + cus + `","amount":1}`, "amount", "unknown field"},
		{"validate truncated", "POST", validate, `{"code":"MALF`, "", "JSON"},

		// POST /v1/subscriptions
		{"subscribe quantity a word", "POST", subs, `{"customer":"` + cus + `","price":"` + pl.Price + `","quantity":"two"}`, "quantity", "whole number"},
		{"subscribe quantity a fraction", "POST", subs, `{"customer":"` + cus + `","price":"` + pl.Price + `","quantity":1.5}`, "quantity", "whole number"},
		{"subscribe metadata a string", "POST", subs, `{"customer":"` + cus + `","price":"` + pl.Price + `","metadata":"x"}`, "metadata", "object"},
		{"subscribe promo_code a boolean", "POST", subs, `{"customer":"` + cus + `","price":"` + pl.Price + `","promo_code":true}`, "promo_code", "string"},

		// POST and DELETE /v1/subscriptions/{id}/promo_code
		{"apply code a number", "POST", apply, `{"code":1}`, "code", "code must be a string"},
		{"apply customer a boolean", "POST", apply, `{"code":"MALFORMED","customer":false}`, "customer", "customer must be a string"},
		{"apply syntax", "POST", apply, `{"code" "MALFORMED"}`, "", "not valid JSON"},
		{"remove with an overlong Idempotency-Key", "DELETE", apply, ``, "Idempotency-Key", "255"},

		// GET lists
		{"list limit a word", "GET", list + "?limit=ten", ``, "limit", "limit"},
		{"list limit an exponent", "GET", list + "?limit=1e3", ``, "limit", "limit"},
		{"list status unknown", "GET", list + "?status=%25s%25n", ``, "status", "status"},
		{"ledger limit negative", "GET", ledger + "?limit=-1", ``, "limit", "limit"},

		// POST /webhooks/stripe, signed
		{"hook invoice customer a number", "POST", hook, ev("invoice.paid", `{"id":"in_1","customer":5,"amount_paid":100}`), "data.object.customer", "data.object.customer"},
		{"hook invoice amount_paid a word", "POST", hook, ev("invoice.paid", `{"id":"in_2","customer":"cus_1","amount_paid":"lots"}`), "data.object.amount_paid", "whole number"},
		{"hook invoice amount_paid a fraction", "POST", hook, ev("invoice.paid", `{"id":"in_3","amount_paid":1.5}`), "data.object.amount_paid", "whole number"},
		{"hook invoice discounts a string", "POST", hook, ev("invoice.paid", `{"id":"in_4","total_discount_amounts":"x"}`), "data.object.total_discount_amounts", "array"},
		{"hook invoice discount a number", "POST", hook, ev("invoice.paid", `{"id":"in_5","discount":5}`), "data.object.discount", "object"},
		{"hook discount coupon a number", "POST", hook, ev("customer.discount.created", `{"id":"di_1","coupon":5}`), "data.object.coupon", "data.object.coupon"},
		{"hook discount without id", "POST", hook, ev("customer.discount.created", `{"coupon":{"id":"c_1"}}`), "data.object.id", "id"},
		{"hook subscription metadata a string", "POST", hook, ev("customer.subscription.deleted", `{"id":"sub_1","metadata":"x"}`), "data.object.metadata", "object"},
		{"hook promotion code without coupon", "POST", hook, ev("promotion_code.updated", `{"id":"promo_1"}`), "data.object.coupon", "coupon"},
		{"hook coupon percent_off a word", "POST", hook, ev("coupon.deleted", `{"id":"c_1","percent_off":"half"}`), "data.object.percent_off", "number"},
		{"hook object a number", "POST", hook, ev("invoice.paid", `5`), "data.object", "object"},
		{"hook id a number", "POST", hook, `{"id":5,"type":"invoice.paid","data":{"object":{}}}`, "id", "id must be a string"},
		{"hook created a word", "POST", hook, `{"id":"evt_c","type":"invoice.paid","created":"today","data":{"object":{}}}`, "created", "created"},
		{"hook without type", "POST", hook, `{"id":"evt_t","data":{"object":{}}}`, "type", "type"},
		{"hook an array", "POST", hook, `[]`, "", "Stripe event"},
		{"hook truncated", "POST", hook, `{"id":"evt_`, "", "Stripe event"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var r response
			switch {
			case tc.path == hook:
				body := []byte(tc.body)
				r = s.signed(t, body, webhookSecret, time.Now())
			case tc.method == "DELETE":
				r = s.call(t, tc.method, tc.path, checkoutSecret, strings.Repeat("k", 300), nil)
			case tc.method == "GET":
				r = s.call(t, tc.method, tc.path, adminSecret, "", nil)
			default:
				secret := checkoutSecret
				if tc.path == create || tc.path == update {
					secret = adminSecret
				}
				r = s.call(t, tc.method, tc.path, secret, newKey(), tc.body)
			}
			if r.Status != http.StatusBadRequest {
				t.Fatalf("status %d, want 400: %s", r.Status, r.Body)
			}
			var body struct {
				Error map[string]any `json:"error"`
			}
			if err := json.Unmarshal(r.Body, &body); err != nil || body.Error == nil {
				t.Fatalf("not the error shape: %s", r.Body)
			}
			e := body.Error
			for _, k := range []string{"type", "code", "message", "request_id"} {
				if v, _ := e[k].(string); v == "" {
					t.Errorf("error.%s is missing: %s", k, r.Body)
				}
			}
			msg, _ := e["message"].(string)
			if param, _ := e["param"].(string); param != tc.param {
				t.Errorf("param %q, want %q (message %q)", param, tc.param, msg)
			}
			if !strings.Contains(msg, tc.msg) {
				t.Errorf("message %q does not say %q", msg, tc.msg)
			}
			for _, bad := range goInternals {
				if strings.Contains(msg, bad) {
					t.Errorf("message %q shows Go internals (%q)", msg, bad)
				}
			}
		})
	}
}
