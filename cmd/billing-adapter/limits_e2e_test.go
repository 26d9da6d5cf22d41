package main

import (
	"context"
	"fmt"
	"net/http"
	"reflect"
	"strings"
	"testing"

	"github.com/stripe/stripe-go/v76"
)

// The documented maxima ("Rules at create" and the subscribe request in the
// README). Every code within them works on every path.
const (
	maxCodeKeys         = 23  // a code's metadata keys
	maxRequestKeys      = 23  // a subscribe request's metadata keys
	maxKeyLength        = 40  // a metadata key
	maxValueLength      = 500 // a metadata value
	maxPlanIDs          = 10
	maxCodeLength       = 64
	adapterSubscription = 4  // keys the adapter writes on a subscription
	stripeMaxKeys       = 50 // per Stripe object
)

// fullMetadata is n keys of maxKeyLength characters, each starting with
// prefix, with values of maxValueLength characters.
func fullMetadata(prefix string, n int) map[string]string {
	md := make(map[string]string, n)
	for i := range n {
		k := fmt.Sprintf("%s%02d", prefix, i)
		md[k+strings.Repeat("k", maxKeyLength-len(k))] = fmt.Sprintf("%02d", i) + strings.Repeat("v", maxValueLength-2)
	}
	return md
}

// maxCode is a code at every maximum at once.
func maxCode(text string, md map[string]string, plans []string) map[string]any {
	return map[string]any{"code": text, "promo_type": "percentage", "amount_off": 10, "stock": 100,
		"plan_ids": plans, "metadata": md}
}

// A code at every documented maximum is created, mirrored to Stripe, updated,
// validated, subscribed with a request at its own maximum, applied to a
// subscription whose Stripe metadata is nearly full, followed by webhooks,
// and rebuilt by reconcile; one more than each maximum is refused at create.
func TestEveryCodeAtTheLimitsIsUsable(t *testing.T) {
	st, s := webhookStack(t, "", nil)
	var plans []string
	for range maxPlanIDs {
		plans = append(plans, st.newPlan(t, "usd", 2000).Price)
	}
	price := plans[maxPlanIDs-1]
	text1 := strings.Repeat("A1", maxCodeLength/2)
	text2 := strings.Repeat("B2", maxCodeLength/2)
	md1 := fullMetadata("a", maxCodeKeys)
	pc1 := s.createCode(t, maxCode(text1, md1, plans))
	id1 := pc1["id"].(string)
	pc2 := s.createCode(t, maxCode(text2, fullMetadata("b", maxCodeKeys), plans))

	// Stripe holds everything: the code's keys and the adapter's.
	coupon, err := st.Stripe.Coupons.Get(id1, nil)
	if err != nil {
		t.Fatal(err)
	}
	promo, err := st.Stripe.PromotionCodes.Get(pc1["stripe"].(map[string]any)["promotion_code_id"].(string), nil)
	if err != nil {
		t.Fatal(err)
	}
	for k, v := range md1 {
		if coupon.Metadata[k] != v || promo.Metadata[k] != v {
			t.Fatalf("Stripe lost metadata key %s", k)
		}
	}
	if len(coupon.Metadata) != maxCodeKeys+3 || promo.Code != text1 {
		t.Fatalf("coupon has %d metadata keys, promotion code %q", len(coupon.Metadata), promo.Code)
	}

	// Update: every key replaced at once (the old ones are unset in the same
	// Stripe call), stock and status changed.
	md1 = fullMetadata("c", maxCodeKeys)
	patch := map[string]any{"stock": 1_000_000_000}
	mdPatch := map[string]string{}
	for k := range pc1["metadata"].(map[string]any) {
		mdPatch[k] = ""
	}
	for k, v := range md1 {
		mdPatch[k] = v
	}
	patch["metadata"] = mdPatch
	r := s.call(t, "POST", "/v1/promo_codes/"+id1, adminSecret, newKey(), patch)
	mustStatus(t, r, http.StatusOK)
	if got := r.json(t)["metadata"].(map[string]any); len(got) != maxCodeKeys {
		t.Fatalf("metadata after the update has %d keys", len(got))
	}
	if coupon, err = st.Stripe.Coupons.Get(id1, nil); err != nil || len(coupon.Metadata) != maxCodeKeys+3 {
		t.Fatalf("coupon after the update: %d keys, %v", len(coupon.Metadata), err)
	}

	// Subscribe, with request metadata at its own maximum: the subscription
	// gets every key of both and the adapter's, 50 in all.
	cus := st.newCustomer(t, "")
	v := s.validateCode(t, map[string]any{"code": text1, "customer": cus, "price": price})
	if v["valid"] != true {
		t.Fatalf("validate: %v", v)
	}
	reqMD := fullMetadata("r", maxRequestKeys)
	r = s.call(t, "POST", "/v1/subscriptions", checkoutSecret, newKey(),
		map[string]any{"customer": cus, "price": price, "promo_code": strings.ToLower(text1), "metadata": reqMD})
	mustStatus(t, r, http.StatusCreated)
	full := st.subscription(t, r.json(t)["id"].(string))
	if len(full.Metadata) != stripeMaxKeys || full.Discount == nil || full.Discount.Coupon.ID != id1 {
		t.Fatalf("subscription has %d metadata keys, discount %+v", len(full.Metadata), full.Discount)
	}

	// Apply to an existing subscription made in Stripe with 46 keys of its
	// own: the adapter's 4 fill it to 50.
	cus46 := st.newCustomer(t, "")
	sub46, err := st.Stripe.Subscriptions.New(&stripe.SubscriptionParams{Customer: stripe.String(cus46),
		Items:    []*stripe.SubscriptionItemsParams{{Price: stripe.String(price)}},
		Metadata: fullMetadata("s", stripeMaxKeys-adapterSubscription)})
	if err != nil {
		t.Fatal(err)
	}
	v = s.validateCode(t, map[string]any{"code": text2, "customer": cus46, "subscription": sub46.ID})
	if v["valid"] != true || v["preview"] == nil {
		t.Fatalf("validate on the subscription with 46 keys: %v", v)
	}
	mustStatus(t, s.apply(t, sub46.ID, text2, cus46, newKey()), http.StatusOK)
	if got := st.subscription(t, sub46.ID); len(got.Metadata) != stripeMaxKeys || got.Discount == nil || got.Discount.Coupon.ID != pc2["id"] {
		t.Fatalf("%d metadata keys, discount %+v", len(got.Metadata), got.Discount)
	}

	// A subscription with more keys of its own than leaves room for the
	// adapter's cannot take a code in Stripe: refused before anything is
	// reserved, by validate and apply alike.
	cus47 := st.newCustomer(t, "")
	sub47, err := st.Stripe.Subscriptions.New(&stripe.SubscriptionParams{Customer: stripe.String(cus47),
		Items:    []*stripe.SubscriptionItemsParams{{Price: stripe.String(price)}},
		Metadata: fullMetadata("t", stripeMaxKeys-adapterSubscription+1)})
	if err != nil {
		t.Fatal(err)
	}
	r = s.call(t, "POST", "/v1/promo_codes/validate", checkoutSecret, "", map[string]any{"code": text2, "customer": cus47, "subscription": sub47.ID})
	if code, param := r.errorCode(t); r.Status != http.StatusConflict || code != "conflict" || param != "subscription" {
		t.Fatalf("validate on a subscription with 47 keys: %d %s", r.Status, r.Body)
	}
	r = s.apply(t, sub47.ID, text2, cus47, newKey())
	if code, param := r.errorCode(t); r.Status != http.StatusConflict || code != "conflict" || param != "subscription" ||
		!strings.Contains(string(r.Body), "47") {
		t.Fatalf("apply on a subscription with 47 keys: %d %s", r.Status, r.Body)
	}
	if p := s.code(t, pc2["id"].(string)); num(p, "reserved") != 0 || num(p, "stock") != 99 {
		t.Fatalf("the refusal touched stock: %v", p)
	}

	// Webhooks have read it all; reconcile finds Stripe and Redis equal and
	// rebuilds the codes, promo_code_config included, after FLUSHALL.
	st.settle(t)
	before := catalogState(t, s)
	if stdout, _, err := s.runReconcile(t); err != nil || !strings.Contains(stdout, "0 differences") {
		t.Fatalf("reconcile found drift (%v):\n%s", err, stdout)
	}
	if err := s.Redis.FlushAll(context.Background()).Err(); err != nil {
		t.Fatal(err)
	}
	if stdout, _, err := s.runReconcile(t, "-fix"); err != nil {
		t.Fatalf("reconcile -fix: %v\n%s", err, stdout)
	}
	if after := catalogState(t, s); !reflect.DeepEqual(before, after) {
		t.Fatalf("rebuilt catalog differs:\nbefore %v\n after %v", before, after)
	}

	// One more than each maximum is refused, naming the field.
	tests := []struct {
		name, path  string
		body        map[string]any
		param, text string
	}{
		{"metadata keys", "/v1/promo_codes", maxCode("OVERKEYS", fullMetadata("d", maxCodeKeys+1), nil), "metadata", fmt.Sprintf("at most %d keys", maxCodeKeys)},
		{"metadata key length", "/v1/promo_codes", maxCode("OVERKEY", map[string]string{strings.Repeat("k", maxKeyLength+1): "v"}, nil), "metadata", "longer than 40"},
		{"metadata value length", "/v1/promo_codes", maxCode("OVERVALUE", map[string]string{"k": strings.Repeat("v", maxValueLength+1)}, nil), "metadata", "longer than 500"},
		{"plan_ids", "/v1/promo_codes", maxCode("OVERPLANS", nil, append(plans, "price_one_more")), "plan_ids", fmt.Sprintf("at most %d", maxPlanIDs)},
		{"code length", "/v1/promo_codes", maxCode(strings.Repeat("C", maxCodeLength+1), nil, nil), "code", "at most 64"},
		{"update to too many keys", "/v1/promo_codes/" + id1, map[string]any{"metadata": map[string]string{"one_more": "v"}}, "metadata", fmt.Sprintf("at most %d keys", maxCodeKeys)},
		{"subscribe request metadata keys", "/v1/subscriptions", map[string]any{"customer": st.newCustomer(t, ""), "price": price,
			"promo_code": text1, "metadata": fullMetadata("q", maxRequestKeys+1)}, "metadata", fmt.Sprintf("at most %d keys", maxRequestKeys)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			secret := adminSecret
			if tt.path == "/v1/subscriptions" {
				secret = checkoutSecret
			}
			r := s.call(t, "POST", tt.path, secret, newKey(), tt.body)
			code, param := r.errorCode(t)
			if r.Status != http.StatusBadRequest || code != "invalid_request" || param != tt.param || !strings.Contains(string(r.Body), tt.text) {
				t.Fatalf("got %d %s %s, want 400 on %s saying %q: %s", r.Status, code, param, tt.param, tt.text, r.Body)
			}
		})
	}
}
