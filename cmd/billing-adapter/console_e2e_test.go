package main

import (
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/billing-adapter/billing-adapter/internal/stripesim"
)

// The console's protections, over plain HTTP (the browser test drives the
// happy path): sessions, CSRF, Origin, body limit, headers.

var hiddenField = regexp.MustCompile(`name="(csrf_token|idempotency_key)" value="([^"]*)"`)

type consoleClient struct {
	t    *testing.T
	base string
	c    *http.Client
}

func newConsoleClient(t *testing.T, base string) *consoleClient {
	jar, _ := cookiejar.New(nil)
	return &consoleClient{t: t, base: base, c: &http.Client{Jar: jar,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}}
}

func (cc *consoleClient) do(method, path string, form url.Values, header map[string]string) (int, http.Header, string) {
	cc.t.Helper()
	var body io.Reader
	if form != nil {
		body = strings.NewReader(form.Encode())
	}
	req, _ := http.NewRequest(method, cc.base+path, body)
	if form != nil {
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	}
	for k, v := range header {
		req.Header.Set(k, v)
	}
	resp, err := cc.c.Do(req)
	if err != nil {
		cc.t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, resp.Header, string(b)
}

// fields reads the hidden fields of a page.
func fields(page string) map[string]string {
	out := map[string]string{}
	for _, m := range hiddenField.FindAllStringSubmatch(page, -1) {
		out[m[1]] = m[2]
	}
	return out
}

func (cc *consoleClient) signIn(key string) int {
	cc.t.Helper()
	_, _, page := cc.do("GET", "/admin/login", nil, nil)
	st, _, _ := cc.do("POST", "/admin/login", url.Values{"csrf_token": {fields(page)["csrf_token"]}, "api_key": {key}}, nil)
	return st
}

func TestConsoleProtections(t *testing.T) {
	s := startService(t, nil)
	anon := newConsoleClient(t, s.URL)

	// Headers, and nothing shown before sign-in.
	st, h, _ := anon.do("GET", "/admin/codes", nil, nil)
	if st != http.StatusSeeOther || h.Get("Location") != "/admin/login" {
		t.Errorf("anonymous list: %d %s", st, h.Get("Location"))
	}
	st, h, page := anon.do("GET", "/admin/login", nil, nil)
	if st != 200 || !strings.Contains(h.Get("Content-Security-Policy"), "default-src 'none'") ||
		h.Get("X-Frame-Options") != "DENY" || h.Get("Cache-Control") != "no-store" {
		t.Errorf("login page headers: %d %v", st, h)
	}
	if strings.Contains(page, "<script") || strings.Contains(page, "http://") || strings.Contains(page, "https://") {
		t.Error("the console loads a script or something from another origin")
	}
	st, _, _ = anon.do("POST", "/admin/codes", url.Values{"code": {"X"}}, nil)
	if st != http.StatusSeeOther {
		t.Errorf("anonymous form post: %d", st)
	}

	// Sign-in needs the login form's token; a wrong or checkout key is refused.
	if st, _, _ := anon.do("POST", "/admin/login", url.Values{"api_key": {adminSecret}}, nil); st != http.StatusForbidden {
		t.Errorf("sign-in without the form's token: %d", st)
	}
	if st := newConsoleClient(t, s.URL).signIn("nope"); st != http.StatusUnauthorized {
		t.Errorf("wrong key: %d", st)
	}
	if st := newConsoleClient(t, s.URL).signIn(checkoutSecret); st != http.StatusForbidden {
		t.Errorf("checkout key: %d", st)
	}
	admin := newConsoleClient(t, s.URL)
	if st := admin.signIn(adminSecret); st != http.StatusSeeOther {
		t.Fatalf("admin sign-in: %d", st)
	}
	u, _ := url.Parse(s.URL + "/admin/")
	var session *http.Cookie
	for _, c := range admin.c.Jar.Cookies(u) {
		if c.Name == "ba_console_session" {
			session = c
		}
	}
	if session == nil || strings.Contains(session.Value, adminSecret) {
		t.Fatalf("session cookie: %+v", session)
	}

	// A forged or altered cookie is no session.
	forged := newConsoleClient(t, s.URL)
	forged.c.Jar.SetCookies(u, []*http.Cookie{{Name: "ba_console_session", Value: session.Value[:len(session.Value)-2] + "00", Path: "/admin"}})
	if st, _, _ := forged.do("GET", "/admin/codes", nil, nil); st != http.StatusSeeOther {
		t.Errorf("altered cookie: %d", st)
	}

	// Form posts need the session's CSRF token and this Origin.
	_, _, page = admin.do("GET", "/admin/codes/new", nil, nil)
	f := fields(page)
	form := url.Values{"csrf_token": {f["csrf_token"]}, "idempotency_key": {f["idempotency_key"]},
		"code": {"CSRF1"}, "promo_type": {"percentage"}, "amount_off": {"5"}, "unlimited_stock": {"on"}, "status": {"active"}}
	bad := url.Values{}
	for k, v := range form {
		bad[k] = v
	}
	bad.Set("csrf_token", "wrong")
	if st, _, _ := admin.do("POST", "/admin/codes", bad, nil); st != http.StatusForbidden {
		t.Errorf("wrong CSRF token: %d", st)
	}
	if st, _, _ := admin.do("POST", "/admin/codes", form, map[string]string{"Origin": "http://evil.example"}); st != http.StatusForbidden {
		t.Errorf("foreign Origin: %d", st)
	}
	big := url.Values{"csrf_token": {f["csrf_token"]}, "metadata": {strings.Repeat("x", 70<<10)}}
	if st, _, _ := admin.do("POST", "/admin/codes", big, nil); st != http.StatusRequestEntityTooLarge {
		t.Errorf("oversized form: %d", st)
	}
	if r := s.call(t, "GET", "/v1/promo_codes?code=CSRF1", adminSecret, "", nil); len(r.json(t)["data"].([]any)) != 0 {
		t.Fatal("a refused form post created the code")
	}

	// The same form posted twice is one create (the form's Idempotency-Key).
	st1, h1, _ := admin.do("POST", "/admin/codes", form, map[string]string{"Origin": s.URL})
	st2, h2, _ := admin.do("POST", "/admin/codes", form, nil)
	if st1 != http.StatusSeeOther || st2 != http.StatusSeeOther || h1.Get("Location") != h2.Get("Location") {
		t.Errorf("double submit: %d %s / %d %s", st1, h1.Get("Location"), st2, h2.Get("Location"))
	}
	r := s.call(t, "GET", "/v1/promo_codes?code=csrf1", adminSecret, "", nil)
	if data := r.json(t)["data"].([]any); len(data) != 1 {
		t.Fatalf("codes after a double submit: %s", r.Body)
	}

	// Sign out clears the cookie, and a copy of it taken before no longer
	// signs anyone in.
	copied := newConsoleClient(t, s.URL)
	copied.c.Jar.SetCookies(u, []*http.Cookie{{Name: "ba_console_session", Value: session.Value, Path: "/admin"}})
	if st, _, _ := copied.do("GET", "/admin/codes", nil, nil); st != http.StatusOK {
		t.Fatalf("a copy of a live session cookie: %d", st)
	}
	_, _, page = admin.do("GET", "/admin/codes", nil, nil)
	if st, _, _ := admin.do("POST", "/admin/logout", url.Values{"csrf_token": {fields(page)["csrf_token"]}}, nil); st != http.StatusSeeOther {
		t.Errorf("sign out: %d", st)
	}
	if st, _, _ := admin.do("GET", "/admin/codes", nil, nil); st != http.StatusSeeOther {
		t.Errorf("after sign-out: %d", st)
	}
	if st, _, _ := copied.do("GET", "/admin/codes", nil, nil); st != http.StatusSeeOther {
		t.Errorf("a copy of a signed-out session cookie still works: %d", st)
	}
}

// TestConsolePagingAndFieldErrors: the list pages through the API's
// cursor, and an edit refused by the API shows its message by the field.
func TestConsolePagingAndFieldErrors(t *testing.T) {
	s := startService(t, nil)
	var last string
	for i := range 22 {
		last = s.createCode(t, map[string]any{"code": "PAGE" + strconv.Itoa(i), "promo_type": "percentage", "amount_off": 5, "stock": 4})["id"].(string)
	}
	cc := newConsoleClient(t, s.URL)
	if st := cc.signIn(adminSecret); st != http.StatusSeeOther {
		t.Fatalf("sign in: %d", st)
	}
	rows := regexp.MustCompile(`<a class="code" href="/admin/codes/(pc_[A-Z0-9]+)">`)
	next := regexp.MustCompile(`href="([^"]+)" id="next-page"`)
	_, _, page := cc.do("GET", "/admin/codes", nil, nil)
	first := rows.FindAllStringSubmatch(page, -1)
	m := next.FindStringSubmatch(page)
	if len(first) != 20 || m == nil || first[0][1] != last {
		t.Fatalf("first page: %d rows, next %v, newest %v", len(first), m, first[0])
	}
	_, _, page = cc.do("GET", strings.ReplaceAll(m[1], "&amp;", "&"), nil, nil)
	if second := rows.FindAllStringSubmatch(page, -1); len(second) != 2 || next.MatchString(page) {
		t.Errorf("second page: %d rows", len(second))
	}

	_, _, page = cc.do("GET", "/admin/codes/"+last, nil, nil)
	f := fields(page)
	form := url.Values{"csrf_token": {f["csrf_token"]}, "idempotency_key": {f["idempotency_key"]}, "status": {"active"},
		"stock": {"-3"}, "expiration_datetime": {"2001-01-01T00:00"}, "metadata": {""}}
	st, _, page := cc.do("POST", "/admin/codes/"+last, form, nil)
	if st != http.StatusBadRequest || !regexp.MustCompile(`id="err-(stock|expiration_datetime)"`).MatchString(page) {
		t.Errorf("refused edit: %d, no message by the field:\n%s", st, page)
	}
	if pc := s.code(t, last); num(pc, "stock") != 4 {
		t.Errorf("a refused edit changed the code: %v", pc["stock"])
	}
}

// The campaign pages: create with "one code per customer" unchecked, the
// count of redeemed codes, and the edit form (status, expiry, metadata)
// posting POST /v1/campaigns/{id} through the API with the session's CSRF
// token.
func TestConsoleCampaignEditAndOncePerCustomer(t *testing.T) {
	st := newStack(t, "", stripesim.Options{})
	s := st.start(t, nil)
	cc := newConsoleClient(t, s.URL)
	if code := cc.signIn(adminSecret); code != http.StatusSeeOther {
		t.Fatalf("sign in: %d", code)
	}
	_, _, page := cc.do("GET", "/admin/campaigns", nil, nil)
	if !strings.Contains(page, `name="once_per_customer" checked`) {
		t.Fatalf("the create form's box is not checked by default")
	}
	// The box unchecked: the browser sends no field.
	form := url.Values{"csrf_token": {fields(page)["csrf_token"]}, "idempotency_key": {fields(page)["idempotency_key"]},
		"name": {"Family cards"}, "count": {"3"}, "code_length": {"10"}, "promo_type": {"percentage"}, "amount_off": {"10"}}
	code, h, _ := cc.do("POST", "/admin/campaigns", form, nil)
	id := strings.TrimPrefix(h.Get("Location"), "/admin/campaigns/")
	if code != http.StatusSeeOther || !strings.HasPrefix(id, "cmp_") {
		t.Fatalf("create: %d %v", code, h)
	}
	if m := waitCampaign(t, s, id, ready); m["once_per_customer"] != false {
		t.Fatalf("created %v", m)
	}
	// One customer redeems two of its codes.
	pl := st.newPlan(t, "usd", 1000)
	cus := st.newCustomer(t, "")
	rows := exportCSV(t, s, id)
	for _, c := range []string{rows[1][0], rows[2][0]} {
		mustStatus(t, s.call(t, "POST", "/v1/subscriptions", checkoutSecret, newKey(),
			map[string]any{"customer": cus, "price": pl.Price, "promo_code": c}), 201)
	}
	_, _, page = cc.do("GET", "/admin/campaigns/"+id, nil, nil)
	if !strings.Contains(page, "2 of 3 codes") || !strings.Contains(page, "several codes") {
		t.Fatalf("campaign page:\n%s", page)
	}
	if _, _, list := cc.do("GET", "/admin/campaigns", nil, nil); !strings.Contains(list, `<td class="num">2</td>`) {
		t.Fatalf("campaigns list without the redeemed count")
	}

	// The edit form: without the CSRF token nothing changes.
	edit := url.Values{"idempotency_key": {fields(page)["idempotency_key"]}, "status": {"inactive"},
		"expiration_datetime": {""}, "metadata": {"owner=growth"}}
	if code, _, _ := cc.do("POST", "/admin/campaigns/"+id, edit, nil); code != http.StatusForbidden {
		t.Fatalf("edit without CSRF: %d", code)
	}
	// A past expiry: the API's refusal shown on its field.
	edit.Set("csrf_token", fields(page)["csrf_token"])
	edit.Set("expiration_datetime", "2020-01-01T00:00")
	code, _, page = cc.do("POST", "/admin/campaigns/"+id, edit, nil)
	if code != 400 || !strings.Contains(page, "expiration_datetime must be in the future") {
		t.Fatalf("past expiry: %d", code)
	}
	if m := waitCampaign(t, s, id, ready); m["status"] != "active" {
		t.Fatalf("a refused edit changed the campaign: %v", m)
	}
	future := time.Now().UTC().Add(48 * time.Hour).Truncate(time.Minute)
	edit.Set("expiration_datetime", future.Format("2006-01-02T15:04"))
	edit.Set("idempotency_key", fields(page)["idempotency_key"])
	code, h, _ = cc.do("POST", "/admin/campaigns/"+id, edit, nil)
	if code != http.StatusSeeOther || h.Get("Location") != "/admin/campaigns/"+id+"?notice=updated" {
		t.Fatalf("edit: %d %v", code, h)
	}
	m := waitCampaign(t, s, id, ready)
	if md, _ := m["metadata"].(map[string]any); m["status"] != "inactive" || m["expiration_datetime"] != future.Format(time.RFC3339) || md["owner"] != "growth" {
		t.Fatalf("after the edit: %v", m)
	}
	_, _, page = cc.do("GET", "/admin/campaigns/"+id+"?notice=updated", nil, nil)
	if !strings.Contains(page, `id="notice"`) || !strings.Contains(page, `value="inactive" selected`) {
		t.Fatalf("campaign page after the edit:\n%s", page)
	}
	// Metadata line removed, expiry cleared: the key is deleted, no expiry.
	edit = url.Values{"csrf_token": {fields(page)["csrf_token"]}, "idempotency_key": {fields(page)["idempotency_key"]},
		"status": {"archived"}, "expiration_datetime": {""}, "metadata": {""}}
	if code, _, _ := cc.do("POST", "/admin/campaigns/"+id, edit, nil); code != http.StatusSeeOther {
		t.Fatalf("archive: %d", code)
	}
	m = waitCampaign(t, s, id, ready)
	if md, _ := m["metadata"].(map[string]any); m["status"] != "archived" || m["expiration_datetime"] != nil || len(md) != 0 {
		t.Fatalf("after archiving: %v", m)
	}
	if _, _, page = cc.do("GET", "/admin/campaigns/"+id, nil, nil); strings.Contains(page, "campaign-edit-form") {
		t.Fatalf("an archived campaign's page has an edit form")
	}
}
