package main

import (
	"context"
	"encoding/csv"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/billing-adapter/billing-adapter/internal/promo"
	"github.com/billing-adapter/billing-adapter/internal/stripesim"
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
	const count = 40_000
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
