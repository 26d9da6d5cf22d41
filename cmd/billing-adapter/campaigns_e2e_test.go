package main

import (
	"context"
	"encoding/csv"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/billing-adapter/billing-adapter/internal/promo"
	"github.com/billing-adapter/billing-adapter/internal/stripesim"
	"github.com/stripe/stripe-go/v76"
)

// campaignBody is a create request for count codes.
func campaignBody(count int, extra map[string]any) map[string]any {
	b := map[string]any{"name": "Spring cards", "prefix": "spr", "count": count, "promo_type": "percentage",
		"amount_off": 15, "promo_duration_months": 3, "metadata": map[string]string{"channel": "mail"}}
	for k, v := range extra {
		b[k] = v
	}
	return b
}

// waitCampaign polls the campaign until pred holds (generation has no
// other signal for an API client) and returns its last answer.
func waitCampaign(t *testing.T, s *service, id string, pred func(map[string]any) bool) map[string]any {
	t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	for {
		r := s.call(t, "GET", "/v1/campaigns/"+id, adminSecret, "", nil)
		mustStatus(t, r, 200)
		m := r.json(t)
		if pred(m) {
			return m
		}
		if time.Now().After(deadline) {
			t.Fatalf("campaign %s never reached the state wanted: %s", id, r.Body)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func ready(m map[string]any) bool { return m["state"] == "ready" }

// exportCSV downloads codes.csv and returns its rows (header first).
func exportCSV(t *testing.T, s *service, id string) [][]string {
	t.Helper()
	req, _ := http.NewRequest("GET", s.URL+"/v1/campaigns/"+id+"/codes.csv", nil)
	req.Header.Set("Authorization", "Bearer "+adminSecret)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != 200 || !strings.HasPrefix(resp.Header.Get("Content-Type"), "text/csv") {
		t.Fatalf("export: %d %s", resp.StatusCode, resp.Header.Get("Content-Type"))
	}
	rows, err := csv.NewReader(resp.Body).ReadAll()
	if err != nil {
		t.Fatalf("export is not CSV: %v", err)
	}
	return rows
}

// checkCodes asserts rows hold n distinct well-formed codes of the campaign.
func checkCodes(t *testing.T, rows [][]string, n int, prefix string, length int) map[string]bool {
	t.Helper()
	if len(rows) != n+1 || strings.Join(rows[0], ",") != "code,state,customer,subscription,redemption_id,redeemed_at,stripe_promotion_code_id" {
		t.Fatalf("export has %d rows (want %d and a header), first %v", len(rows), n+1, rows[0])
	}
	c := &promo.Campaign{Prefix: prefix, CodeLength: length}
	seen := map[string]bool{}
	for _, row := range rows[1:] {
		if seen[row[0]] {
			t.Fatalf("code %s exported twice", row[0])
		}
		if !c.IsCampaignText(row[0]) {
			t.Fatalf("code %q is not prefix %s + %d characters of the alphabet", row[0], prefix, length)
		}
		seen[row[0]] = true
	}
	return seen
}

func TestCampaignsEndToEnd(t *testing.T) {
	s := startService(t, nil)
	// Bad requests name their field.
	for _, tc := range []struct {
		body  map[string]any
		param string
	}{
		{campaignBody(0, nil), "count"},
		{campaignBody(100_001, nil), "count"},
		{campaignBody(5, map[string]any{"prefix": "sp-1"}), "prefix"},
		{campaignBody(5, map[string]any{"code_length": 7}), "code_length"},
		{campaignBody(5, map[string]any{"name": ""}), "name"},
		{campaignBody(5, map[string]any{"amount_off": 0}), "amount_off"},
		{campaignBody(5, map[string]any{"stock": 3}), "stock"},
		{campaignBody(5, map[string]any{"code": "X"}), "code"},
	} {
		r := s.call(t, "POST", "/v1/campaigns", adminSecret, newKey(), tc.body)
		if code, param := r.errorCode(t); r.Status != 400 || code != "invalid_request" || param != tc.param {
			t.Errorf("%v: %d %s %s, want 400 on %s", tc.body, r.Status, code, param, tc.param)
		}
	}
	if r := s.call(t, "POST", "/v1/campaigns", checkoutSecret, newKey(), campaignBody(5, nil)); r.Status != 403 {
		t.Errorf("checkout key creates a campaign: %d", r.Status)
	}

	key := newKey()
	r := s.call(t, "POST", "/v1/campaigns", adminSecret, key, campaignBody(2500, nil))
	mustStatus(t, r, 202)
	created := r.json(t)
	id, _ := created["id"].(string)
	if !strings.HasPrefix(id, "cmp_") || created["count"] != 2500.0 || created["code_length"] != 12.0 ||
		created["prefix"] != "SPR" || created["entropy_bits"] != 58.9 || created["amount_off"] != 15.0 ||
		r.Header.Get("Location") != "/v1/campaigns/"+id {
		t.Fatalf("create answered %s", r.Body)
	}
	// The same request again replays the same campaign.
	again := s.call(t, "POST", "/v1/campaigns", adminSecret, key, campaignBody(2500, nil))
	if again.Status != 202 || again.json(t)["id"] != id || again.Header.Get("Idempotent-Replayed") != "true" {
		t.Fatalf("replay: %d %s", again.Status, again.Body)
	}
	// One Stripe coupon for the whole campaign, named after it.
	coupon, err := s.Stripe.Coupons.Get(id, nil)
	if err != nil || coupon.PercentOff != 15 || coupon.DurationInMonths != 3 || coupon.Metadata["campaign_id"] != id {
		t.Fatalf("coupon %+v %v", coupon, err)
	}
	done := waitCampaign(t, s, id, ready)
	if done["generated"] != 2500.0 {
		t.Fatalf("ready campaign %v", done)
	}
	rows := exportCSV(t, s, id)
	codes := checkCodes(t, rows, 2500, "SPR", 12)
	for _, row := range rows[1:] {
		if row[1] != "unredeemed" || row[2] != "" {
			t.Fatalf("fresh code %v", row)
		}
	}
	// Pages walk the same codes in the same order, case-insensitively.
	var paged []string
	after := ""
	for {
		path := "/v1/campaigns/" + id + "/codes?limit=100&redeemed=false"
		if after != "" {
			path += "&starting_after=" + strings.ToLower(after)
		}
		r := s.call(t, "GET", path, adminSecret, "", nil)
		mustStatus(t, r, 200)
		m := r.json(t)
		data, _ := m["data"].([]any)
		for _, d := range data {
			paged = append(paged, d.(map[string]any)["code"].(string))
		}
		if m["has_more"] != true {
			break
		}
		after = paged[len(paged)-1]
	}
	if len(paged) != 2500 || paged[0] != rows[1][0] || paged[2499] != rows[2500][0] {
		t.Fatalf("pages gave %d codes", len(paged))
	}
	if r := s.call(t, "GET", "/v1/campaigns/"+id+"/codes?redeemed=true", adminSecret, "", nil); r.Status != 200 ||
		len(r.json(t)["data"].([]any)) != 0 {
		t.Fatalf("redeemed codes of a fresh campaign: %s", r.Body)
	}
	if r := s.call(t, "GET", "/v1/campaigns/"+id+"/codes?redeemed=maybe", adminSecret, "", nil); r.Status != 400 {
		t.Errorf("redeemed=maybe: %d", r.Status)
	}

	// A promo code cannot take a campaign code's text, in any case.
	var one string
	for c := range codes {
		one = c
		break
	}
	pc := s.call(t, "POST", "/v1/promo_codes", adminSecret, newKey(), map[string]any{"code": strings.ToLower(one),
		"promo_type": "percentage", "amount_off": 5, "stock": 1})
	if code, param := pc.errorCode(t); pc.Status != 409 || code != "conflict" || param != "code" {
		t.Errorf("promo code with a campaign code's text: %d %s", pc.Status, pc.Body)
	}

	// Update: status, expiry and metadata for all codes at once.
	exp := time.Now().Add(72 * time.Hour).UTC().Truncate(time.Second).Format(time.RFC3339)
	u := s.call(t, "POST", "/v1/campaigns/"+id, adminSecret, newKey(), map[string]any{"status": "inactive",
		"expiration_datetime": exp, "metadata": map[string]any{"channel": nil, "wave": "2"}})
	mustStatus(t, u, 200)
	um := u.json(t)
	if um["status"] != "inactive" || um["expiration_datetime"] != exp || fmt.Sprint(um["metadata"]) != "map[wave:2]" {
		t.Fatalf("update answered %s", u.Body)
	}
	if r := s.call(t, "POST", "/v1/campaigns/"+id, adminSecret, newKey(), map[string]any{"amount_off": 20}); r.Status != 400 {
		t.Errorf("changing amount_off: %d %s", r.Status, r.Body)
	}
	if r := s.call(t, "POST", "/v1/campaigns/"+id, adminSecret, newKey(), map[string]any{"colour": "red"}); r.Status != 400 {
		t.Errorf("unknown field: %d", r.Status)
	}
	// Lists by status, newest first.
	second := s.call(t, "POST", "/v1/campaigns", adminSecret, newKey(), campaignBody(3, map[string]any{"prefix": "", "code_length": 8}))
	mustStatus(t, second, 202)
	secondID := second.json(t)["id"].(string)
	l := s.call(t, "GET", "/v1/campaigns?limit=1", adminSecret, "", nil).json(t)
	if d := l["data"].([]any); len(d) != 1 || d[0].(map[string]any)["id"] != secondID || l["has_more"] != true {
		t.Fatalf("first page %v", l)
	}
	l = s.call(t, "GET", "/v1/campaigns?status=inactive", adminSecret, "", nil).json(t)
	if d := l["data"].([]any); len(d) != 1 || d[0].(map[string]any)["id"] != id {
		t.Fatalf("inactive list %v", l)
	}
	if r := s.call(t, "GET", "/v1/campaigns/cmp_nosuch", adminSecret, "", nil); r.Status != 404 {
		t.Errorf("unknown campaign: %d", r.Status)
	}
	small := waitCampaign(t, s, secondID, ready)
	checkCodes(t, exportCSV(t, s, secondID), 3, "", 8)
	if small["entropy_bits"] != 39.3 {
		t.Errorf("entropy of 8 characters: %v", small["entropy_bits"])
	}
}

// A replica SIGKILLed while generating: another replica resumes once the
// lease ends, and every code exists exactly once (no text key left over).
func TestCampaignGenerationResumesAfterReplicaCrash(t *testing.T) {
	st := newStack(t, "", stripesim.Options{})
	env := map[string]string{"CAMPAIGN_GENERATION_LEASE": "1s"}
	a := st.startChild(t, env)
	const count = 100_000 // the most a campaign may have: the longest window for the kill
	r := a.call(t, "POST", "/v1/campaigns", adminSecret, newKey(), campaignBody(count, nil))
	mustStatus(t, r, 202)
	id := r.json(t)["id"].(string)
	mid := waitCampaign(t, a.service, id, func(m map[string]any) bool { return m["generated"].(float64) > 0 })
	a.kill()
	if mid["state"] != "generating" {
		t.Fatalf("generation finished before the crash: %v", mid)
	}
	at, _ := st.Redis.HGet(context.Background(), "ba:{"+id+"}:campaign", "generated").Int()
	if at >= count {
		t.Fatalf("generation finished before the crash (%d)", at)
	}
	b := st.start(t, env)
	done := waitCampaign(t, b, id, ready)
	if done["generated"] != float64(count) {
		t.Fatalf("after resume %v", done)
	}
	checkCodes(t, exportCSV(t, b, id), count, "SPR", 12)
	keys := 0
	iter := st.Redis.Scan(context.Background(), 0, "ba:{ct:*", 1000).Iterator()
	for iter.Next(context.Background()) {
		keys++
	}
	if keys != count {
		t.Fatalf("%d code text keys for %d codes: a claim was lost or left over", keys, count)
	}
	t.Logf("killed at %d of %d codes; resumed by another replica", at, count)
}

// newReadyCampaign creates a campaign and waits until its codes exist;
// it returns the campaign's ID and codes.
func newReadyCampaign(t *testing.T, s *service, count int, extra map[string]any) (string, []string) {
	t.Helper()
	r := s.call(t, "POST", "/v1/campaigns", adminSecret, newKey(), campaignBody(count, extra))
	mustStatus(t, r, 202)
	id := r.json(t)["id"].(string)
	waitCampaign(t, s, id, ready)
	var codes []string
	for _, row := range exportCSV(t, s, id)[1:] {
		codes = append(codes, row[0])
	}
	return id, codes
}

// Validate, subscribe, apply and remove take a campaign code like any code:
// single-use across replicas, the campaign's terms and rules, one coupon in
// Stripe with the code named in the subscription's metadata, and the
// ledger's line attributed to the code.
func TestCampaignCodesRedeemOnce(t *testing.T) {
	st := newStack(t, "", stripesim.Options{})
	a, b := st.start(t, nil), st.start(t, nil)
	pl := st.newPlan(t, "usd", 2000)
	id, codes := newReadyCampaign(t, a, 5, map[string]any{"plan_ids": []string{pl.Price}})
	cus1, cus2 := st.newCustomer(t, ""), st.newCustomer(t, "")

	// Validate (any case) with a preview of the discount, through the coupon.
	v := a.call(t, "POST", "/v1/promo_codes/validate", checkoutSecret, "", map[string]any{
		"code": strings.ToLower(codes[0]), "customer": cus1, "price": pl.Price})
	mustStatus(t, v, 200)
	if vm := v.json(t); vm["valid"] != true || num(vm["preview"].(map[string]any), "amount_after") != 1700 {
		t.Fatalf("validate %s", v.Body)
	}
	// Subscribe with it on replica a.
	st.Sim.ResetCounts()
	r := a.call(t, "POST", "/v1/subscriptions", checkoutSecret, newKey(), map[string]any{
		"customer": cus1, "price": pl.Price, "promo_code": codes[0]})
	mustStatus(t, r, 201)
	if n := st.Sim.Count("POST /v1/promotion_codes"); n != 0 {
		t.Errorf("a campaign redemption made %d promotion codes", n)
	}
	out := r.json(t)
	subID := out["id"].(string)
	sub := st.subscription(t, subID)
	if sub.Discount == nil || sub.Discount.Coupon.ID != id || sub.Discount.PromotionCode != nil ||
		sub.Metadata["promo_code"] != codes[0] || sub.Metadata["promo_code_id"] != id {
		t.Fatalf("Stripe subscription discount %+v metadata %v", sub.Discount, sub.Metadata)
	}
	if inv := st.invoices(t, subID); len(inv) != 1 || inv[0].Total != 1700 {
		t.Fatalf("first invoice %+v", inv)
	}
	// The same code again, on the other replica: refused, before Stripe.
	st.Sim.ResetCounts()
	sub2 := st.newSubscription(t, cus2, pl.Price)
	again := b.apply(t, sub2.ID, codes[0], cus2, newKey())
	if code, _ := again.errorCode(t); again.Status != 422 || code != "code_exhausted" {
		t.Fatalf("second redemption of a code: %d %s", again.Status, again.Body)
	}
	if v := b.call(t, "POST", "/v1/promo_codes/validate", checkoutSecret, "", map[string]any{"code": codes[0], "customer": cus2}); v.json(t)["reason"] != "code_exhausted" {
		t.Fatalf("validate of a used code: %s", v.Body)
	}
	// One code of the campaign per customer.
	if r := b.call(t, "POST", "/v1/subscriptions", checkoutSecret, newKey(), map[string]any{
		"customer": cus1, "price": pl.Price, "promo_code": codes[1]}); r.Status != 409 {
		t.Fatalf("the customer's second code of the campaign: %d %s", r.Status, r.Body)
	}
	// Another code of the campaign on the existing subscription.
	ap := b.apply(t, sub2.ID, codes[1], cus2, newKey())
	mustStatus(t, ap, 200)
	if s2 := st.subscription(t, sub2.ID); s2.Discount == nil || s2.Discount.Coupon.ID != id || s2.Metadata["promo_code"] != codes[1] {
		t.Fatalf("applied subscription %+v", s2.Metadata)
	}
	// Removed before any discounted invoice: the code is free again.
	rm := a.call(t, "DELETE", "/v1/subscriptions/"+sub2.ID+"/promo_code", checkoutSecret, newKey(), nil)
	mustStatus(t, rm, 200)
	if v := a.call(t, "POST", "/v1/promo_codes/validate", checkoutSecret, "", map[string]any{"code": codes[1], "customer": st.newCustomer(t, "")}); v.json(t)["valid"] != true {
		t.Fatalf("a code given back: %s", v.Body)
	}

	// Webhooks: the ledger's line on the campaign names the code.
	a.deliverRecordedEvents(t)
	// The campaign's code record: its uses and amounts, read-only here.
	if r := a.call(t, "POST", "/v1/promo_codes/"+id, adminSecret, newKey(), map[string]any{"status": "inactive"}); r.Status != 404 {
		t.Fatalf("updating a campaign as a promo code: %d %s", r.Status, r.Body)
	}
	if cm := a.code(t, id); num(cm, "uses") != 1 || cm["unlimited_stock"] != true {
		t.Fatalf("campaign's code record %v", cm)
	}
	led := a.redemptions(t, id) // newest first
	if len(led) != 2 || led[1]["promo_code"] != codes[0] || led[1]["customer"] != cus1 || led[1]["subscription"] != subID ||
		led[1]["state"] != "active" || led[0]["promo_code"] != codes[1] || led[0]["stock_returned"] != false {
		t.Fatalf("ledger %v", led)
	}
	page := a.call(t, "GET", "/v1/campaigns/"+id+"/codes?redeemed=true", adminSecret, "", nil).json(t)
	data := page["data"].([]any)
	if len(data) != 1 || data[0].(map[string]any)["code"] != codes[0] || data[0].(map[string]any)["customer"] != cus1 ||
		data[0].(map[string]any)["subscription"] != subID {
		t.Fatalf("redeemed codes %v", page)
	}
	assertReconcileClean(t, a)
	rows := exportCSV(t, b, id)
	if rows[1][0] != codes[0] || rows[1][1] != "redeemed" || rows[1][2] != cus1 || rows[1][3] != subID || rows[2][1] != "unredeemed" {
		t.Fatalf("export %v", rows[:3])
	}

	// Deactivating the campaign refuses every code, on every replica: apply
	// at once, validate once the other replica's snapshot of the campaign
	// is VALIDATE_CODE_MAX_AGE old (100ms here), as for a promo code.
	mustStatus(t, a.call(t, "POST", "/v1/campaigns/"+id, adminSecret, newKey(), map[string]any{"status": "inactive"}), 200)
	if r := b.apply(t, sub2.ID, codes[2], cus2, newKey()); r.Status != 422 {
		t.Fatalf("apply of an inactive campaign's code: %d", r.Status)
	}
	validateOnB := func(code string) map[string]any {
		return b.call(t, "POST", "/v1/promo_codes/validate", checkoutSecret, "", map[string]any{"code": code, "customer": cus2}).json(t)
	}
	for _, code := range codes[1:] {
		eventually(t, "code "+code+" of an inactive campaign refused on b", func() bool { return validateOnB(code)["reason"] == "code_inactive" })
	}
	mustStatus(t, a.call(t, "POST", "/v1/campaigns/"+id, adminSecret, newKey(), map[string]any{"status": "archived"}), 200)
	eventually(t, "a code of an archived campaign not found on b", func() bool { return validateOnB(codes[3])["reason"] == "code_not_found" })
	if v := validateOnB(codes[1]); v["reason"] != "code_not_found" {
		t.Fatalf("another code of the archived campaign on b: %v", v)
	}
}

// 100 customers race for one campaign code over 3 replicas: exactly one
// gets it, and Stripe holds exactly one discount.
func TestCampaignCodeRaceAcrossReplicas(t *testing.T) {
	st := newStack(t, "", stripesim.Options{})
	replicas := []*service{st.start(t, nil), st.start(t, nil), st.start(t, nil)}
	pl := st.newPlan(t, "usd", 2000)
	id, codes := newReadyCampaign(t, replicas[0], 1, nil)
	const n = 100
	subs := make([]string, n)
	for i := range subs {
		subs[i] = st.newSubscription(t, st.newCustomer(t, ""), pl.Price).ID
	}
	statuses := make([]string, n)
	var wg sync.WaitGroup
	start := make(chan struct{})
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-start
			r := replicas[i%3].apply(t, subs[i], codes[0], "", newKey())
			statuses[i] = fmt.Sprint(r.Status)
			if r.Status != 200 {
				code, _ := r.errorCode(t)
				statuses[i] += " " + code
			}
		}()
	}
	close(start)
	wg.Wait()
	tally := map[string]int{}
	for _, s := range statuses {
		tally[s]++
	}
	if tally["200"] != 1 || tally["422 code_exhausted"] != n-1 {
		t.Fatalf("outcomes %v, want one 200 and %d code_exhausted", tally, n-1)
	}
	discounted := 0
	it := st.Stripe.Subscriptions.List(&stripe.SubscriptionListParams{ListParams: stripe.ListParams{Limit: stripe.Int64(100)}})
	for it.Next() {
		if d := it.Subscription().Discount; d != nil && d.Coupon.ID == id {
			discounted++
		}
	}
	if it.Err() != nil || discounted != 1 {
		t.Fatalf("Stripe holds %d discounts of the campaign (%v)", discounted, it.Err())
	}
	replicas[0].deliverRecordedEvents(t) // this stack has no webhook endpoint
	assertReconcileClean(t, replicas[0])
}

// Chosen codes get a Stripe promotion code each, made in the background;
// a Stripe Checkout-style redemption of one (a subscription made in Stripe
// with the promotion code) is recorded on the campaign's ledger against
// that code, which is then used up for the adapter too.
func TestCampaignCheckoutRedemptionOfAMirroredCode(t *testing.T) {
	st := newStack(t, "", stripesim.Options{})
	s := st.start(t, nil)
	pl := st.newPlan(t, "usd", 2000)
	id, codes := newReadyCampaign(t, s, 3, nil)
	if r := s.call(t, "POST", "/v1/campaigns/"+id+"/promotion_codes", adminSecret, newKey(), map[string]any{"codes": []string{"NOTACODE"}}); r.Status != 400 {
		t.Fatalf("mirroring a text that is no code of the campaign: %d", r.Status)
	}
	r := s.call(t, "POST", "/v1/campaigns/"+id+"/promotion_codes", adminSecret, newKey(),
		map[string]any{"codes": []string{strings.ToLower(codes[0]), codes[1]}})
	mustStatus(t, r, 202)
	waitCampaign(t, s, id, func(m map[string]any) bool { return m["mirrored"] == 2.0 })
	page := s.call(t, "GET", "/v1/campaigns/"+id+"/codes", adminSecret, "", nil).json(t)["data"].([]any)
	promoOf := map[string]string{}
	for _, d := range page {
		m := d.(map[string]any)
		if p, _ := m["stripe_promotion_code_id"].(string); p != "" {
			promoOf[m["code"].(string)] = p
		}
	}
	if len(promoOf) != 2 || promoOf[codes[0]] == "" || promoOf[codes[1]] == "" {
		t.Fatalf("promotion codes %v", promoOf)
	}
	pc, err := st.Stripe.PromotionCodes.Get(promoOf[codes[0]], nil)
	if err != nil || pc.Code != codes[0] || pc.Coupon.ID != id || pc.MaxRedemptions != 1 || !pc.Active ||
		pc.Metadata["campaign_id"] != id || pc.Metadata["promo_code"] != codes[0] {
		t.Fatalf("Stripe promotion code %+v %v", pc, err)
	}
	// Mirroring the same code again makes nothing more.
	mustStatus(t, s.call(t, "POST", "/v1/campaigns/"+id+"/promotion_codes", adminSecret, newKey(), map[string]any{"codes": []string{codes[0]}}), 202)

	// Stripe Checkout redeems the first code: the subscription is made in
	// Stripe with the promotion code, the adapter learns it from webhooks.
	cus := st.newCustomer(t, "")
	sub, err := st.Stripe.Subscriptions.New(&stripe.SubscriptionParams{Customer: stripe.String(cus),
		Items: []*stripe.SubscriptionItemsParams{{Price: stripe.String(pl.Price)}}, PromotionCode: stripe.String(promoOf[codes[0]])})
	if err != nil {
		t.Fatal(err)
	}
	s.deliverRecordedEvents(t)
	s.deliverRecordedEvents(t) // twice: nothing changes
	led := s.redemptions(t, id)
	if len(led) != 1 || led[0]["source"] != "stripe" || led[0]["promo_code"] != codes[0] || led[0]["customer"] != cus ||
		led[0]["subscription"] != sub.ID || len(led[0]["flags"].([]any)) != 0 {
		t.Fatalf("ledger %v", led)
	}
	red := s.call(t, "GET", "/v1/campaigns/"+id+"/codes?redeemed=true", adminSecret, "", nil).json(t)["data"].([]any)
	if len(red) != 1 || red[0].(map[string]any)["code"] != codes[0] || red[0].(map[string]any)["customer"] != cus {
		t.Fatalf("redeemed codes %v", red)
	}
	v := s.call(t, "POST", "/v1/promo_codes/validate", checkoutSecret, "", map[string]any{"code": codes[0], "customer": st.newCustomer(t, "")})
	if v.json(t)["reason"] != "code_exhausted" {
		t.Fatalf("validate of a code Checkout redeemed: %s", v.Body)
	}
	assertReconcileClean(t, s) // reconcile attributes the Checkout redemption to the same code
}

// The console: the campaigns list, a create form (errors next to their
// field), the campaign's page with its progress and the export link,
// streamed through the API as the signed-in key.
func TestConsoleCampaigns(t *testing.T) {
	s := startService(t, nil)
	cc := newConsoleClient(t, s.URL)
	if st := cc.signIn(adminSecret); st != http.StatusSeeOther {
		t.Fatalf("sign in: %d", st)
	}
	st, _, page := cc.do("GET", "/admin/campaigns", nil, nil)
	if st != 200 || !strings.Contains(page, `id="no-campaigns"`) {
		t.Fatalf("empty list: %d", st)
	}
	form := url.Values{"csrf_token": {fields(page)["csrf_token"]}, "idempotency_key": {fields(page)["idempotency_key"]},
		"name": {"Console cards"}, "prefix": {"con"}, "count": {"0"}, "code_length": {"10"}, "promo_type": {"percentage"}, "amount_off": {"10"}}
	st, _, page = cc.do("POST", "/admin/campaigns", form, nil)
	if st != 400 || !strings.Contains(page, "count must be between 1 and 100000") {
		t.Fatalf("count 0: %d", st)
	}
	form.Set("count", "25")
	form.Set("idempotency_key", fields(page)["idempotency_key"])
	st, h, _ := cc.do("POST", "/admin/campaigns", form, nil)
	id := strings.TrimPrefix(h.Get("Location"), "/admin/campaigns/")
	if st != http.StatusSeeOther || !strings.HasPrefix(id, "cmp_") {
		t.Fatalf("create: %d %v", st, h)
	}
	waitCampaign(t, s, id, ready)
	st, _, page = cc.do("GET", "/admin/campaigns/"+id, nil, nil)
	if st != 200 || !strings.Contains(page, "25 / 25 (100%), ready") || !strings.Contains(page, `href="/admin/campaigns/`+id+`/codes.csv"`) {
		t.Fatalf("campaign page: %d", st)
	}
	st, h, csvBody := cc.do("GET", "/admin/campaigns/"+id+"/codes.csv", nil, nil)
	rows, err := csv.NewReader(strings.NewReader(csvBody)).ReadAll()
	if st != 200 || !strings.HasPrefix(h.Get("Content-Type"), "text/csv") || err != nil {
		t.Fatalf("export: %d %v", st, err)
	}
	checkCodes(t, rows, 25, "CON", 10)
	if st, _, page = cc.do("GET", "/admin/campaigns", nil, nil); st != 200 || !strings.Contains(page, "Console cards") {
		t.Fatalf("list: %d", st)
	}
	// Signed out, nothing is shown.
	if st, h, _ := newConsoleClient(t, s.URL).do("GET", "/admin/campaigns/"+id+"/codes.csv", nil, nil); st != http.StatusSeeOther || h.Get("Location") != "/admin/login" {
		t.Fatalf("export without a session: %d", st)
	}
}

// A mirrored code's Stripe promotion code follows the adapter: switched off
// once the adapter redeems the code, and with the campaign's status for the
// others, so Stripe Checkout cannot redeem what the adapter would refuse.
func TestCampaignPromotionCodesFollowTheAdapter(t *testing.T) {
	st := newStack(t, "", stripesim.Options{})
	s := st.start(t, nil)
	pl := st.newPlan(t, "usd", 2000)
	id, codes := newReadyCampaign(t, s, 2, nil)
	mustStatus(t, s.call(t, "POST", "/v1/campaigns/"+id+"/promotion_codes", adminSecret, newKey(), map[string]any{"codes": codes}), 202)
	waitCampaign(t, s, id, func(m map[string]any) bool { return m["mirrored"] == 2.0 })
	promoOf := map[string]string{}
	for _, d := range s.call(t, "GET", "/v1/campaigns/"+id+"/codes", adminSecret, "", nil).json(t)["data"].([]any) {
		m := d.(map[string]any)
		promoOf[m["code"].(string)] = m["stripe_promotion_code_id"].(string)
	}
	active := func(code string) bool {
		pc, err := st.Stripe.PromotionCodes.Get(promoOf[code], nil)
		if err != nil {
			t.Fatal(err)
		}
		return pc.Active
	}
	sub := st.newSubscription(t, st.newCustomer(t, ""), pl.Price)
	mustStatus(t, s.apply(t, sub.ID, codes[0], "", newKey()), 200)
	eventually(t, "the redeemed code's promotion code switched off", func() bool { return !active(codes[0]) })
	if !active(codes[1]) {
		t.Fatal("the other code's promotion code was switched off")
	}
	mustStatus(t, s.call(t, "POST", "/v1/campaigns/"+id, adminSecret, newKey(), map[string]any{"status": "inactive"}), 200)
	eventually(t, "every promotion code off with the campaign", func() bool { return !active(codes[1]) })
	mustStatus(t, s.call(t, "POST", "/v1/campaigns/"+id, adminSecret, newKey(), map[string]any{"status": "active"}), 200)
	eventually(t, "the free code's promotion code on again", func() bool { return active(codes[1]) })
	if active(codes[0]) {
		t.Fatal("the redeemed code's promotion code came back with the campaign")
	}
	s.deliverRecordedEvents(t)
	assertReconcileClean(t, s)
}

// once_per_customer: false lets one customer redeem several codes of a
// campaign, each on its own subscription, each still single-use; the
// default (true) refuses a customer's second code. Validate answers what
// subscribe and apply do, on either replica; redeemed counts the codes held.
func TestCampaignOncePerCustomerOption(t *testing.T) {
	st := newStack(t, "", stripesim.Options{})
	a, b := st.start(t, nil), st.start(t, nil)
	pl := st.newPlan(t, "usd", 2000)

	// Bad requests name the field; the option cannot change later.
	r := a.call(t, "POST", "/v1/campaigns", adminSecret, newKey(), campaignBody(2, map[string]any{"once_per_customer": "no"}))
	if code, param := r.errorCode(t); r.Status != 400 || code != "invalid_request" || param != "once_per_customer" {
		t.Fatalf("once_per_customer \"no\": %d %s", r.Status, r.Body)
	}
	r = a.call(t, "POST", "/v1/campaigns", adminSecret, newKey(), campaignBody(2, map[string]any{"metadata": map[string]string{"once_per_customer": "x"}}))
	if _, param := r.errorCode(t); r.Status != 400 || param != "metadata" {
		t.Fatalf("metadata naming the rule: %d %s", r.Status, r.Body)
	}
	r = a.call(t, "POST", "/v1/campaigns", adminSecret, newKey(), campaignBody(4, map[string]any{"once_per_customer": false, "plan_ids": []string{pl.Price}}))
	mustStatus(t, r, 202)
	if m := r.json(t); m["once_per_customer"] != false || m["redeemed"] != 0.0 {
		t.Fatalf("create answered %s", r.Body)
	}
	many, codes := newReadyCampaign(t, a, 4, map[string]any{"once_per_customer": false, "plan_ids": []string{pl.Price}})
	if r := a.call(t, "POST", "/v1/campaigns/"+many, adminSecret, newKey(), map[string]any{"once_per_customer": true}); r.Status != 400 {
		t.Fatalf("changing once_per_customer: %d %s", r.Status, r.Body)
	} else if _, param := r.errorCode(t); param != "once_per_customer" {
		t.Fatalf("changing once_per_customer names %q", param)
	}
	if cm := a.code(t, many); cm["once_per_customer"] != false {
		t.Fatalf("the campaign's code record %v", cm)
	}
	if coupon, err := st.Stripe.Coupons.Get(many, nil); err != nil || coupon.Metadata["once_per_customer"] != "false" {
		t.Fatalf("coupon %+v %v", coupon, err)
	}
	once, onceCodes := newReadyCampaign(t, a, 3, nil)
	if m := waitCampaign(t, a, once, ready); m["once_per_customer"] != true {
		t.Fatalf("default campaign %v", m)
	}

	cus := st.newCustomer(t, "")
	// First code: a new subscription, on replica a.
	r = a.call(t, "POST", "/v1/subscriptions", checkoutSecret, newKey(), map[string]any{
		"customer": cus, "price": pl.Price, "promo_code": codes[0]})
	mustStatus(t, r, 201)
	sub1 := r.json(t)["id"].(string)
	// Second code: validate, then apply on another subscription of the same
	// customer, on replica b.
	sub2 := st.newSubscription(t, cus, pl.Price).ID
	if v := b.validateCode(t, map[string]any{"code": codes[1], "customer": cus, "subscription": sub2}); v["valid"] != true {
		t.Fatalf("validate of the customer's second code: %v", v)
	}
	mustStatus(t, b.apply(t, sub2, codes[1], cus, newKey()), 200)
	for sub, code := range map[string]string{sub1: codes[0], sub2: codes[1]} {
		s := st.subscription(t, sub)
		if s.Discount == nil || s.Discount.Coupon.ID != many || s.Metadata["promo_code"] != code {
			t.Fatalf("subscription %s: discount %+v metadata %v", sub, s.Discount, s.Metadata)
		}
		got := a.call(t, "GET", "/v1/subscriptions/"+sub+"/promo_code?customer="+cus, checkoutSecret, "", nil)
		mustStatus(t, got, 200)
		if m := got.json(t); m["promo_code"] != code || m["promo_code_id"] != many || m["customer"] != cus {
			t.Fatalf("the redemption of %s: %s", sub, got.Body)
		}
	}
	// Each code is still single-use (for the same customer too), and a
	// subscription still takes one code; validate agrees with apply.
	sub3 := st.newSubscription(t, cus, pl.Price).ID
	other := st.newCustomer(t, "")
	otherSub := st.newSubscription(t, other, pl.Price).ID
	for _, tc := range []struct {
		name, code, customer, sub, want string
		status                          int
	}{
		{"a code the customer holds, another subscription", codes[0], cus, sub3, "code_exhausted", 422},
		{"a code another customer holds", codes[1], other, otherSub, "code_exhausted", 422},
		{"a third code on a subscription that has one", codes[2], cus, sub2, "subscription_has_promo_code", 409},
		{"the default campaign: the customer's second code", onceCodes[1], cus, sub3, "already_redeemed_by_customer", 409},
	} {
		if tc.code == onceCodes[1] {
			// The customer's first code of the default campaign.
			mustStatus(t, a.call(t, "POST", "/v1/subscriptions", checkoutSecret, newKey(), map[string]any{
				"customer": cus, "price": pl.Price, "promo_code": onceCodes[0]}), 201)
		}
		v := a.validateCode(t, map[string]any{"code": tc.code, "customer": tc.customer, "subscription": tc.sub})
		ap := b.apply(t, tc.sub, tc.code, tc.customer, newKey())
		if code, _ := ap.errorCode(t); v["reason"] != tc.want || code != tc.want || ap.Status != tc.status {
			t.Errorf("%s: validate %v, apply %d %s; want %d %s", tc.name, v["reason"], ap.Status, code, tc.status, tc.want)
		}
	}
	if r := b.call(t, "POST", "/v1/subscriptions", checkoutSecret, newKey(), map[string]any{
		"customer": cus, "price": pl.Price, "promo_code": onceCodes[2]}); r.Status != 409 {
		t.Fatalf("the default campaign's second code, subscribing: %d %s", r.Status, r.Body)
	}
	if m := waitCampaign(t, b, many, ready); m["redeemed"] != 2.0 {
		t.Fatalf("redeemed %v, want 2", m["redeemed"])
	}
	if m := waitCampaign(t, b, once, ready); m["redeemed"] != 1.0 {
		t.Fatalf("default campaign redeemed %v, want 1", m["redeemed"])
	}

	// Stripe's events: both lines on the campaign's ledger, neither flagged.
	a.deliverRecordedEvents(t)
	led := a.redemptions(t, many)
	if len(led) != 2 {
		t.Fatalf("ledger %v", led)
	}
	for _, l := range led {
		if l["customer"] != cus || len(l["flags"].([]any)) != 0 || (l["state"] != "pending" && l["state"] != "active") {
			t.Fatalf("ledger line %v", l)
		}
	}
	// Removed before a discounted invoice: the code is given back.
	mustStatus(t, a.call(t, "DELETE", "/v1/subscriptions/"+sub2+"/promo_code", checkoutSecret, newKey(), nil), 200)
	if m := waitCampaign(t, a, many, ready); m["redeemed"] != 1.0 {
		t.Fatalf("redeemed %v after a give-back, want 1", m["redeemed"])
	}
	if v := b.validateCode(t, map[string]any{"code": codes[1], "customer": other, "subscription": otherSub}); v["valid"] != true {
		t.Fatalf("a given-back code: %v", v)
	}
	list := a.call(t, "GET", "/v1/campaigns?limit=10", adminSecret, "", nil).json(t)["data"].([]any)
	for _, c := range list {
		if m := c.(map[string]any); m["id"] == many && m["redeemed"] != 1.0 {
			t.Fatalf("listed campaign %v", m)
		}
	}
	assertReconcileClean(t, a)
}

// The campaign code index (CAMPAIGN_CODE_INDEX) on two replicas: replica b
// meets a campaign while replica a generates it, so b's index is loaded
// with the codes committed so far; every code committed after that still
// validates on b (through its text key, which refreshes b's index), and
// once b's index has caught up b answers from it (lookup hits).
func TestCampaignCodeIndexDuringGeneration(t *testing.T) {
	st := newStack(t, "", stripesim.Options{})
	a, b := st.start(t, nil), st.start(t, nil)
	ctx := context.Background()
	const count = 100_000 // the longest generation: the widest window
	r := a.call(t, "POST", "/v1/campaigns", adminSecret, newKey(), campaignBody(count, nil))
	mustStatus(t, r, 202)
	id := r.json(t)["id"].(string)
	width := len("SPR") + 12
	batch := func() int {
		n, _ := st.Redis.HGet(ctx, "ba:{"+id+"}:campaign", "batch").Int()
		return n
	}
	chunk := func(n int) []string {
		raw := st.Redis.Get(ctx, fmt.Sprintf("ba:{%s}:codes:%d", id, n)).Val()
		var out []string
		for i := 0; i+width <= len(raw); i += width {
			out = append(out, raw[i:i+width])
		}
		return out
	}
	metric := func(name string, labels map[string]string) float64 {
		v, _ := metricValue(string(b.call(t, "GET", "/metrics", "", "", nil).Body), name, labels)
		return v
	}
	cus := st.newCustomer(t, "")
	validate := func(code string) {
		t.Helper()
		v := b.call(t, "POST", "/v1/promo_codes/validate", checkoutSecret, "", map[string]any{"code": code, "customer": cus})
		mustStatus(t, v, 200)
		if m := v.json(t); m["valid"] != true {
			t.Fatalf("code %s on replica b: %s", code, v.Body)
		}
	}
	for deadline := time.Now().Add(30 * time.Second); batch() < 1; time.Sleep(2 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("no batch generated")
		}
	}
	validate(chunk(0)[0]) // b meets the campaign: its index loads what is committed now
	var held float64
	for deadline := time.Now().Add(10 * time.Second); held == 0; time.Sleep(5 * time.Millisecond) {
		if held = metric("billing_campaign_index_codes", nil); time.Now().After(deadline) {
			t.Fatal("replica b's index never loaded the campaign")
		}
	}
	if held >= count {
		t.Fatalf("generation ended before b's index was loaded (%v codes): nothing to test", held)
	}
	// While a generates: the newest committed codes validate on b.
	during, seen := 0, 0
	for {
		n := batch()
		if n > seen {
			codes := chunk(n - 1)
			validate(codes[len(codes)-1])
			validate(strings.ToLower(codes[0]))
			seen = n
			if n < count/promo.GenerationBatch {
				during++
			}
		}
		if n >= count/promo.GenerationBatch {
			break
		}
		time.Sleep(time.Millisecond)
	}
	if during == 0 {
		t.Fatal("no code validated while the campaign was generating")
	}
	// Codes of batches b has not loaded still validate, and the misses
	// refresh its index until it holds the whole campaign.
	last := chunk(count/promo.GenerationBatch - 1)
	for deadline := time.Now().Add(20 * time.Second); metric("billing_campaign_index_codes", nil) < count; time.Sleep(300 * time.Millisecond) {
		validate(last[0])
		if time.Now().After(deadline) {
			t.Fatalf("b's index holds %v codes of %d", metric("billing_campaign_index_codes", nil), count)
		}
	}
	hits := metric("billing_campaign_index_lookups_total", map[string]string{"result": "hit"})
	for _, code := range last[1:21] {
		validate(code)
	}
	if got := metric("billing_campaign_index_lookups_total", map[string]string{"result": "hit"}) - hits; got != 20 {
		t.Fatalf("%v of 20 codes answered from b's index", got)
	}
	// A guess of the campaign's shape is still unknown.
	v := b.call(t, "POST", "/v1/promo_codes/validate", checkoutSecret, "", map[string]any{"code": "SPR222222222222", "customer": cus})
	if v.json(t)["reason"] != "code_not_found" {
		t.Fatalf("a guess: %s", v.Body)
	}
	t.Logf("b's index loaded %v of %d codes; %d batches validated on b while a generated", held, count, during)
}

// A code given back (its redemption ended before any paid invoice: the text
// is free again) gets its Stripe promotion code switched on again while the
// campaign is active, and off again when the next redemption takes it:
// every switch is a new Stripe call (its idempotency key names the code's
// switch count), whether the end came from the adapter (remove) or from
// Stripe (customer.discount.deleted).
func TestCampaignGivenBackCodeSwitchesItsPromotionCodeOn(t *testing.T) {
	st, s := webhookStack(t, "", nil)
	pl := st.newPlan(t, "usd", 2000)
	id, codes := newReadyCampaign(t, s, 2, nil)
	mustStatus(t, s.call(t, "POST", "/v1/campaigns/"+id+"/promotion_codes", adminSecret, newKey(), map[string]any{"codes": codes[:1]}), 202)
	waitCampaign(t, s, id, func(m map[string]any) bool { return m["mirrored"] == 1.0 })
	promo := s.call(t, "GET", "/v1/campaigns/"+id+"/codes", adminSecret, "", nil).json(t)["data"].([]any)[0].(map[string]any)["stripe_promotion_code_id"].(string)
	active := func() bool {
		pc, err := st.Stripe.PromotionCodes.Get(promo, nil)
		if err != nil {
			t.Fatal(err)
		}
		return pc.Active
	}
	for round := 0; round < 2; round++ {
		// Applied to an existing subscription: the discount waits for the
		// next debit, so removing it gives the code back.
		sub := st.newSubscription(t, st.newCustomer(t, ""), pl.Price)
		mustStatus(t, s.apply(t, sub.ID, codes[0], "", newKey()), 200)
		eventually(t, fmt.Sprintf("round %d: the redeemed code's promotion code off", round), func() bool { return !active() })
		if round == 0 {
			mustStatus(t, s.call(t, "DELETE", "/v1/subscriptions/"+sub.ID+"/promo_code", checkoutSecret, newKey(), nil), 200)
		} else { // removed in Stripe (the Dashboard): the webhook ends the line
			if _, err := st.Stripe.Subscriptions.DeleteDiscount(sub.ID, nil); err != nil {
				t.Fatal(err)
			}
		}
		st.settle(t)
		v := s.call(t, "POST", "/v1/promo_codes/validate", checkoutSecret, "", map[string]any{"code": codes[0], "customer": st.newCustomer(t, "")})
		if v.json(t)["valid"] != true {
			t.Fatalf("round %d: the code was given back: %s", round, v.Body)
		}
		eventually(t, fmt.Sprintf("round %d: the given-back code's promotion code on again", round), active)
	}
	// An inactive campaign's given-back code stays off.
	sub := st.newSubscription(t, st.newCustomer(t, ""), pl.Price)
	mustStatus(t, s.apply(t, sub.ID, codes[0], "", newKey()), 200)
	eventually(t, "the redeemed code's promotion code off", func() bool { return !active() })
	mustStatus(t, s.call(t, "POST", "/v1/campaigns/"+id, adminSecret, newKey(), map[string]any{"status": "inactive"}), 200)
	mustStatus(t, s.call(t, "DELETE", "/v1/subscriptions/"+sub.ID+"/promo_code", checkoutSecret, newKey(), nil), 200)
	st.settle(t)
	time.Sleep(300 * time.Millisecond)
	if active() {
		t.Fatal("an inactive campaign's given-back code was switched on")
	}
}

// A campaign's coupon deleted in Stripe (coupon.deleted) makes the campaign
// inactive for good, as a promo code: every code refused with the answer an
// inactive promo code gets, status active refused, no more promotion codes;
// a discount already running keeps running and its line ends by the usual
// rules.
func TestCampaignCouponDeletedInStripe(t *testing.T) {
	st, s := webhookStack(t, "", nil)
	pl := st.newPlan(t, "usd", 2000)
	id, codes := newReadyCampaign(t, s, 3, nil)
	mustStatus(t, s.call(t, "POST", "/v1/campaigns/"+id+"/promotion_codes", adminSecret, newKey(), map[string]any{"codes": codes[2:]}), 202)
	waitCampaign(t, s, id, func(m map[string]any) bool { return m["mirrored"] == 1.0 })
	sub := st.newSubscription(t, st.newCustomer(t, ""), pl.Price)
	mustStatus(t, s.apply(t, sub.ID, codes[0], "", newKey()), 200)
	if _, err := st.Stripe.Coupons.Del(id, nil); err != nil {
		t.Fatal(err)
	}
	st.settle(t)
	got := s.call(t, "GET", "/v1/campaigns/"+id, adminSecret, "", nil).json(t)
	if got["status"] != "inactive" || got["status_reason"] != "stripe_coupon_deleted" {
		t.Fatalf("campaign after coupon.deleted: %v", got)
	}
	if c := s.code(t, id); c["status"] != "inactive" || c["status_reason"] != "stripe_coupon_deleted" {
		t.Fatalf("the campaign's code record after coupon.deleted: %v", c)
	}
	v := s.call(t, "POST", "/v1/promo_codes/validate", checkoutSecret, "", map[string]any{"code": codes[1], "customer": st.newCustomer(t, "")})
	if vm := v.json(t); vm["valid"] != false || vm["reason"] != "code_inactive" {
		t.Fatalf("validate after coupon.deleted: %s", v.Body)
	}
	other := st.newSubscription(t, st.newCustomer(t, ""), pl.Price)
	r := s.apply(t, other.ID, codes[1], "", newKey())
	if code, _ := r.errorCode(t); r.Status != 422 || code != "code_inactive" {
		t.Fatalf("apply after coupon.deleted: %d %s", r.Status, r.Body)
	}
	r = s.call(t, "POST", "/v1/campaigns/"+id, adminSecret, newKey(), map[string]any{"status": "active"})
	if code, _ := r.errorCode(t); r.Status != 409 || code != "conflict" {
		t.Fatalf("re-activating a campaign without coupon: %d %s", r.Status, r.Body)
	}
	r = s.call(t, "POST", "/v1/campaigns/"+id+"/promotion_codes", adminSecret, newKey(), map[string]any{"codes": codes[1:2]})
	if code, _ := r.errorCode(t); r.Status != 409 || code != "conflict" {
		t.Fatalf("promotion codes for a campaign without coupon: %d %s", r.Status, r.Body)
	}
	// The running discount is untouched: its line is live until it ends.
	led := s.redemptions(t, id)
	if len(led) != 1 || led[0]["state"] != "pending" || led[0]["promo_code"] != codes[0] {
		t.Fatalf("ledger after coupon.deleted %v", led)
	}
	mustStatus(t, s.call(t, "DELETE", "/v1/subscriptions/"+sub.ID+"/promo_code", checkoutSecret, newKey(), nil), 200)
	st.settle(t)
	if led = s.redemptions(t, id); led[0]["state"] != "ended" || led[0]["end_reason"] != "removed" {
		t.Fatalf("ledger after the removal %v", led)
	}
	// Archiving is still allowed; the reason stays, and the mirrored code's
	// promotion code is left as it is (Stripe cannot redeem it any more).
	st.Sim.ResetCounts()
	mustStatus(t, s.call(t, "POST", "/v1/campaigns/"+id, adminSecret, newKey(), map[string]any{"status": "archived"}), 200)
	if got := s.call(t, "GET", "/v1/campaigns/"+id, adminSecret, "", nil).json(t); got["status_reason"] != "stripe_coupon_deleted" {
		t.Fatalf("archived campaign %v", got)
	}
	eventually(t, "the switch queue worked", func() bool {
		n, err := st.Redis.ZCard(context.Background(), "ba:{"+id+"}:psync").Result()
		return err == nil && n == 0
	})
	if n := st.Sim.Count("POST /v1/promotion_codes/{id}"); n != 0 {
		t.Fatalf("%d promotion code switches for a campaign without coupon", n)
	} // What the webhook did is what Stripe shows: no drift.
	assertReconcileClean(t, s)
}

// A mirrored code's promotion code switched off in Stripe (the Dashboard)
// is followed as a promo code's: the adapter reads it back and records the
// flag (stripe_promotion_code_active), warns, and otherwise keeps its own
// answers: the code is refused by Stripe Checkout only and still redeemed
// through the adapter (applied with the campaign's coupon).
func TestCampaignPromotionCodeSwitchedInStripe(t *testing.T) {
	st, s := webhookStack(t, "", nil)
	pl := st.newPlan(t, "usd", 2000)
	id, codes := newReadyCampaign(t, s, 2, nil)
	mustStatus(t, s.call(t, "POST", "/v1/campaigns/"+id+"/promotion_codes", adminSecret, newKey(), map[string]any{"codes": codes[:1]}), 202)
	waitCampaign(t, s, id, func(m map[string]any) bool { return m["mirrored"] == 1.0 })
	first := func() map[string]any {
		return s.call(t, "GET", "/v1/campaigns/"+id+"/codes", adminSecret, "", nil).json(t)["data"].([]any)[0].(map[string]any)
	}
	code := first()
	if code["code"] != codes[0] || code["stripe_promotion_code_active"] != true {
		t.Fatalf("mirrored code %v", code)
	}
	promo := code["stripe_promotion_code_id"].(string)
	if _, err := st.Stripe.PromotionCodes.Update(promo, &stripe.PromotionCodeParams{Active: stripe.Bool(false)}); err != nil {
		t.Fatal(err)
	}
	st.settle(t)
	if code = first(); code["stripe_promotion_code_active"] != false {
		t.Fatalf("code after promotion_code.updated: %v", code)
	}
	if !strings.Contains(s.logs.String(), "switched outside the adapter") {
		t.Error("no warning about the promotion code switched in Stripe")
	}
	if c := s.call(t, "GET", "/v1/campaigns/"+id, adminSecret, "", nil).json(t); c["status"] != "active" {
		t.Fatalf("campaign after promotion_code.updated: %v", c)
	}
	// Stripe Checkout refuses it ...
	if _, err := st.Stripe.Subscriptions.New(&stripe.SubscriptionParams{Customer: stripe.String(st.newCustomer(t, "")),
		Items: []*stripe.SubscriptionItemsParams{{Price: stripe.String(pl.Price)}}, PromotionCode: stripe.String(promo)}); err == nil {
		t.Fatal("Stripe redeemed a promotion code switched off")
	}
	// ... the adapter still redeems it.
	sub := st.newSubscription(t, st.newCustomer(t, ""), pl.Price)
	mustStatus(t, s.apply(t, sub.ID, codes[0], "", newKey()), 200)
	st.settle(t)
	if led := s.redemptions(t, id); len(led) != 1 || led[0]["promo_code"] != codes[0] || led[0]["source"] != "existing_subscription" {
		t.Fatalf("ledger %v", led)
	}
}
