package console

import (
	"net/http/httptest"
	"strings"
	"testing"
	"time"
)

func TestFormatMinor(t *testing.T) {
	for _, tc := range []struct {
		v    int64
		cur  string
		want string
	}{
		{600, "usd", "6.00"}, {5, "usd", "0.05"}, {0, "eur", "0.00"}, {1234, "jpy", "1234"},
		{1500, "kwd", "1.500"}, {-250, "usd", "-2.50"},
	} {
		if got := formatMinor(tc.v, tc.cur); got != tc.want {
			t.Errorf("formatMinor(%d, %s) = %q, want %q", tc.v, tc.cur, got, tc.want)
		}
	}
}

func TestFormFields(t *testing.T) {
	md, msg := parseMetadata("campaign = summer\n\nteam=growth=x\n")
	if msg != "" || md["campaign"] != "summer" || md["team"] != "growth=x" || len(md) != 2 {
		t.Errorf("parseMetadata: %v %q", md, msg)
	}
	if _, msg := parseMetadata("no equals sign"); !strings.Contains(msg, "key=value") {
		t.Errorf("a line without = : %q", msg)
	}
	if got := formTime("2027-01-31T23:59"); got != "2027-01-31T23:59:00Z" {
		t.Errorf("formTime = %q", got)
	}
	if got := formTime("tomorrow"); got != "tomorrow" {
		t.Errorf("formTime passes text it cannot read to the API as typed: %q", got)
	}
	if got := numberOrText("12"); got != int64(12) {
		t.Errorf("numberOrText(12) = %#v", got)
	}
	if got := numberOrText("1.5"); got != "1.5" {
		t.Errorf("numberOrText(1.5) = %#v", got)
	}
	if got := splitList("price_a, price_b\nprice_c"); len(got) != 3 || got[2] != "price_c" {
		t.Errorf("splitList = %q", got)
	}
}

func TestMonthlyChart(t *testing.T) {
	now := time.Date(2026, 12, 10, 0, 0, 0, 0, time.UTC)
	act := "2026-11-20T00:00:00Z"
	lines := []redemptionJSON{
		{CreatedAt: "2026-11-02T10:00:00Z", ActivatedAt: &act, DiscountedAmounts: map[string]int64{"usd": 500, "eur": 100}},
		{CreatedAt: "2026-11-15T10:00:00Z"},
		{CreatedAt: "2026-12-01T10:00:00Z"},
		{CreatedAt: "2025-10-01T10:00:00Z"}, // older than 12 months
	}
	c := monthlyChart(lines, now, false)
	if len(c.Months) != 12 || c.Months[11].Label != "Dec 26" || c.Months[0].Label != "Jan 26" {
		t.Fatalf("months: %+v", c.Months)
	}
	if c.Months[10].Count != 2 || c.Months[11].Count != 1 || c.Total() != "3" {
		t.Errorf("counts: Nov %d Dec %d total %s", c.Months[10].Count, c.Months[11].Count, c.Total())
	}
	if c.Currency != "usd" || c.Months[10].Amount != 500 || c.Months[10].AmountText != "5.00" || len(c.Others) != 1 {
		t.Errorf("amounts: %s %+v %v", c.Currency, c.Months[10], c.Others)
	}
	if c.Months[10].CountH <= c.Months[11].CountH || c.Months[11].CountH == 0 {
		t.Errorf("bar heights do not follow the counts: %d %d", c.Months[10].CountH, c.Months[11].CountH)
	}
}

// TestPagesRender: every template executes with empty content (a template
// error would otherwise show only when a page is visited).
func TestPagesRender(t *testing.T) {
	h := New(Options{})
	contents := map[string]any{
		"login": loginContent{}, "codes": codesContent{}, "new": newForm(), "code": codePageContent{Edit: newForm()},
		"archive": archiveContent{}, "drift": driftContent{Report: &DriftReport{Lines: []string{"x"}}}, "error": nil,
		"campaigns": campaignsContent{Form: newForm()}, "campaign": campaignPageContent{Edit: newForm()},
	}
	for _, name := range pageNames {
		w := httptest.NewRecorder()
		h.render(w, 200, name, view{Title: name, Key: "admin", CSRF: "tok", Content: contents[name]})
		if w.Code != 200 || !strings.Contains(w.Body.String(), "</html>") {
			t.Errorf("%s: %d %s", name, w.Code, w.Body.String())
		}
	}
}

// The campaign pages show the rule of one code per customer and the count of
// redeemed codes; the create form's box is checked by default (the API's
// default) and the campaign page has an edit form with the session's CSRF
// token, gone once the campaign is archived.
func TestCampaignPagesRender(t *testing.T) {
	h := New(Options{})
	render := func(name string, content any) string {
		t.Helper()
		w := httptest.NewRecorder()
		h.render(w, 200, name, view{Title: name, Key: "admin", CSRF: "tok", Content: content})
		return w.Body.String()
	}
	f := newForm()
	f.Values["once_per_customer"] = "on"
	page := render("campaigns", campaignsContent{Form: f, Campaigns: []campaignJSON{{ID: "cmp_1", Name: "Cards", Count: 10, Generated: 10, Redeemed: 4}}})
	if !strings.Contains(page, `id="once_per_customer" name="once_per_customer" checked`) || !strings.Contains(page, `<td class="num">4</td>`) {
		t.Errorf("campaigns page:\n%s", page)
	}
	f.Values["once_per_customer"] = ""
	if page := render("campaigns", campaignsContent{Form: f}); strings.Contains(page, `name="once_per_customer" checked`) {
		t.Errorf("the box is checked after the admin unchecked it")
	}
	edit := newForm()
	edit.Values["status"], edit.Errors["expiration_datetime"] = "inactive", "expiration_datetime must be in the future"
	c := campaignPageContent{Campaign: campaignJSON{ID: "cmp_1", Name: "Cards", Status: "active", Count: 10, Generated: 10,
		Redeemed: 3, Metadata: map[string]string{"owner": "growth"}}, Edit: edit}
	page = render("campaign", c)
	for _, want := range []string{`3 of 10 codes`, `several codes`, `action="/admin/campaigns/cmp_1"`, `name="csrf_token" value="tok"`,
		`value="inactive" selected`, `expiration_datetime must be in the future`, `owner</span>=growth`} {
		if !strings.Contains(page, want) {
			t.Errorf("campaign page lacks %q", want)
		}
	}
	c.Campaign.OncePerCustomer = true
	if page := render("campaign", c); !strings.Contains(page, "one code of the campaign per customer") {
		t.Errorf("campaign page without the rule")
	}
	// A generating campaign's page reloads itself, unless the admin asked
	// to edit (a reload would clear the form).
	c.Campaign.State = "generating"
	if page := render("campaign", c); strings.Contains(page, `http-equiv="refresh"`) || !strings.Contains(page, "follow the progress") {
		t.Errorf("a page without Reload reloads itself:\n%s", page)
	}
	c.Reload = true
	if page := render("campaign", c); !strings.Contains(page, `http-equiv="refresh"`) || !strings.Contains(page, `href="/admin/campaigns/cmp_1?edit=1"`) {
		t.Errorf("a generating campaign's page neither reloads nor offers to stop:\n%s", page)
	}
	c.Archived = true
	if page := render("campaign", c); strings.Contains(page, "campaign-edit-form") {
		t.Errorf("an archived campaign has an edit form")
	}
}
