package main

import (
	"context"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/cdproto/network"
	"github.com/chromedp/chromedp"
)

// The admin console in a real browser: Debian's chromium (installed by
// scripts/ensure-chromium.sh, which `make test` runs), driven with chromedp.
// One browser for the whole test; every wait is on a selector.
//
// CONSOLE_SCREENSHOTS=docs writes the screenshots into docs/ (make
// screenshots); otherwise they go to a temporary directory.

func chromiumPath(t *testing.T) string {
	t.Helper()
	for _, name := range []string{"chromium", "chromium-browser"} {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	if os.Getenv("SKIP_BROWSER_TESTS") == "1" {
		t.Skip("chromium is not installed and SKIP_BROWSER_TESTS=1")
	}
	t.Fatal("chromium is not installed: run scripts/ensure-chromium.sh (make test does), or set SKIP_BROWSER_TESTS=1")
	return ""
}

// newBrowser starts headless chromium with a fresh profile and no network
// of its own (no background, component or sync traffic).
func newBrowser(t *testing.T) context.Context {
	t.Helper()
	opts := []chromedp.ExecAllocatorOption{
		chromedp.ExecPath(chromiumPath(t)),
		chromedp.Flag("headless", true),
		chromedp.NoSandbox,
		chromedp.DisableGPU,
		chromedp.NoFirstRun,
		chromedp.NoDefaultBrowserCheck,
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.Flag("disable-extensions", true),
		chromedp.Flag("disable-dev-shm-usage", true),
		chromedp.UserDataDir(t.TempDir()),
		chromedp.WindowSize(1280, 900),
	}
	actx, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	bctx, cancelCtx := chromedp.NewContext(actx)
	if err := chromedp.Do(bctx); err != nil { // starts the browser (no timeout on this first call)
		cancelCtx()
		cancelAlloc()
		t.Fatalf("starting chromium: %v", err)
	}
	ctx, cancelTimeout := context.WithTimeout(bctx, 90*time.Second)
	t.Cleanup(func() { cancelTimeout(); cancelCtx(); cancelAlloc() })
	return ctx
}

func screenshotDir(t *testing.T) string {
	if d := os.Getenv("CONSOLE_SCREENSHOTS"); d != "" {
		if !filepath.IsAbs(d) {
			d = filepath.Join("..", "..", d) // relative to the repository root
		}
		return d
	}
	return t.TempDir()
}

func do(t *testing.T, ctx context.Context, step string, steps ...chromedp.Action[chromedp.Void]) {
	t.Helper()
	sctx, cancel := context.WithTimeout(ctx, 15*time.Second)
	defer cancel()
	if err := chromedp.Do(sctx, steps...); err != nil {
		t.Fatalf("%s: %v", step, err)
	}
}

// get runs one action that returns a value.
func get[T any](t *testing.T, ctx context.Context, step string, a chromedp.Action[T]) T {
	t.Helper()
	sctx, cancel := context.WithTimeout(ctx, 15*time.Second)
	defer cancel()
	v, err := chromedp.Run(sctx, a)
	if err != nil {
		t.Fatalf("%s: %v", step, err)
	}
	return v
}

func textOf(t *testing.T, ctx context.Context, sel string) string {
	t.Helper()
	return strings.TrimSpace(get(t, ctx, "read "+sel, chromedp.Text(chromedp.CSS(sel))))
}

func shot(t *testing.T, ctx context.Context, dir, name string) {
	t.Helper()
	png := get(t, ctx, "screenshot "+name, chromedp.FullScreenshot(100))
	if err := os.WriteFile(filepath.Join(dir, name), png, 0o644); err != nil {
		t.Fatal(err)
	}
}

func signIn(t *testing.T, ctx context.Context, base, key string) {
	t.Helper()
	do(t, ctx, "sign in",
		chromedp.Navigate(base+"/admin/login"),
		chromedp.WaitVisible(chromedp.CSS("#api_key")),
		chromedp.SetValue(chromedp.CSS("#api_key"), key),
		chromedp.Click(chromedp.CSS("#sign-in")),
	)
}

func TestConsoleInABrowser(t *testing.T) {
	st, s := webhookStack(t, "", nil) // webhooks delivered, so the ledger follows paid invoices
	ctx := newBrowser(t)
	shots := screenshotDir(t)
	base := s.URL
	pl := s.newPlan(t, "usd", 2000)
	// A code with some history, so the list and the chart have something to show.
	s.createCode(t, map[string]any{"code": "SPRING15", "promo_type": "flat_amount", "amount_off": "15.00", "currency": "usd",
		"duration": "repeating", "promo_duration_months": 3, "stock": 100})

	// Not signed in: every page leads to the sign-in form, and shows nothing.
	do(t, ctx, "anonymous", chromedp.Navigate(base+"/admin/codes"), chromedp.WaitVisible(chromedp.CSS("#sign-in")))
	loc := get(t, ctx, "location", chromedp.Location())
	if !strings.HasSuffix(loc, "/admin/login") {
		t.Fatalf("anonymous visit ended at %s", loc)
	}

	// A wrong key and a checkout key are refused.
	signIn(t, ctx, base, "adm_wrong_key_0123456789")
	do(t, ctx, "wrong key", chromedp.WaitVisible(chromedp.CSS("#login-error")))
	if msg := textOf(t, ctx, "#login-error"); !strings.Contains(msg, "not valid") {
		t.Errorf("wrong key: %q", msg)
	}
	signIn(t, ctx, base, checkoutSecret)
	do(t, ctx, "checkout key", chromedp.WaitVisible(chromedp.CSS("#login-error")))
	if msg := textOf(t, ctx, "#login-error"); !strings.Contains(msg, "checkout scope") {
		t.Errorf("checkout key: %q", msg)
	}
	shot(t, ctx, shots, "console-sign-in.png")

	// The admin key signs in; the browser keeps only an httpOnly,
	// SameSite=Strict cookie, and no script or storage sees the key.
	signIn(t, ctx, base, adminSecret)
	do(t, ctx, "signed in", chromedp.WaitVisible(chromedp.CSS("#signed-in-as")))
	if who := textOf(t, ctx, "#signed-in-as"); who != "admin" {
		t.Errorf("signed in as %q", who)
	}
	res, err := chromedp.Call(ctx, network.GetCookies, network.GetCookiesParams{})
	if err != nil {
		t.Fatal(err)
	}
	cookies := res.Cookies
	var session *network.Cookie
	for _, c := range cookies {
		if strings.Contains(c.Value, adminSecret) {
			t.Errorf("cookie %s holds the API key", c.Name)
		}
		if c.Name == "ba_console_session" {
			session = c
		}
	}
	if session == nil || !session.HTTPOnly || session.SameSite != network.CookieSameSiteStrict || session.Path != "/admin" {
		t.Fatalf("session cookie: %+v", session)
	}
	visible := get(t, ctx, "storage", chromedp.Evaluate[string](`document.cookie + "|" + JSON.stringify(localStorage) + "|" + JSON.stringify(sessionStorage)`))
	if visible != "|{}|{}" {
		t.Errorf("script-visible cookies or storage: %q", visible)
	}

	// Create: the API's own message appears next to the field it names,
	// then a corrected form makes the code.
	do(t, ctx, "new code form",
		chromedp.Click(chromedp.CSS("#nav-new")),
		chromedp.WaitVisible(chromedp.CSS("#create-form")),
		chromedp.SetValue(chromedp.CSS("#code"), "browser10"),
		chromedp.SetValue(chromedp.CSS("#amount_off"), "150"),
		chromedp.SetValue(chromedp.CSS("#metadata"), "campaign=browser"),
		chromedp.Click(chromedp.CSS("#create")),
		chromedp.WaitVisible(chromedp.CSS("#err-amount_off")),
	)
	if msg := textOf(t, ctx, "#err-amount_off"); !strings.Contains(msg, "at most 100") {
		t.Errorf("amount_off message: %q", msg)
	}
	shot(t, ctx, shots, "console-new-code.png")
	do(t, ctx, "create",
		chromedp.SetValue(chromedp.CSS("#amount_off"), "10"),
		chromedp.Click(chromedp.CSS("#unlimited_stock")),
		chromedp.SetValue(chromedp.CSS("#stock"), "3"),
		chromedp.Click(chromedp.CSS("#create")),
		chromedp.WaitVisible(chromedp.CSS("#notice")),
	)
	loc = get(t, ctx, "location", chromedp.Location())
	if got := textOf(t, ctx, "#stat-stock"); got != "3" {
		t.Errorf("stock after create: %q", got)
	}
	id := loc[strings.LastIndex(loc, "/")+1:]
	id = strings.SplitN(id, "?", 2)[0]
	if pc := s.code(t, id); pc["code"] != "BROWSER10" || num(pc, "stock") != 3 || pc["metadata"].(map[string]any)["campaign"] != "browser" {
		t.Fatalf("the API does not show the created code: %v", pc)
	}

	// Find it from the list by its text (any case).
	do(t, ctx, "search",
		chromedp.Navigate(base+"/admin/codes"),
		chromedp.WaitVisible(chromedp.CSS("#search")),
		chromedp.SetValue(chromedp.CSS("#search"), "Browser10"),
		chromedp.Click(chromedp.CSS("#search-go")),
		chromedp.WaitVisible(chromedp.CSS(`#codes[data-query="Browser10"] a[href="/admin/codes/`+id+`"]`)),
	)
	rows := get(t, ctx, "rows", chromedp.Evaluate[int](`document.querySelectorAll("#codes tbody tr").length`))
	if rows != 1 {
		t.Errorf("search found %d rows", rows)
	}
	do(t, ctx, "full list", chromedp.Navigate(base+"/admin/codes"), chromedp.WaitVisible(chromedp.CSS(`#codes[data-query=""] a[href="/admin/codes/`+id+`"]`)))
	shot(t, ctx, shots, "console-codes.png")

	// Change its stock.
	do(t, ctx, "edit stock",
		chromedp.Click(chromedp.CSS(`#codes a[href="/admin/codes/`+id+`"]`)),
		chromedp.WaitVisible(chromedp.CSS("#edit-form")),
		chromedp.SetValue(chromedp.CSS("#stock"), "7"),
		chromedp.Click(chromedp.CSS("#save")),
		chromedp.WaitVisible(chromedp.CSS("#notice")),
	)
	if got := textOf(t, ctx, "#stat-stock"); got != "7" {
		t.Errorf("stock after edit: %q", got)
	}
	if pc := s.code(t, id); num(pc, "stock") != 7 {
		t.Errorf("the API shows stock %v after the console's edit", pc["stock"])
	}

	// A subscription redeems it through the checkout API; the ledger shows it.
	clock := s.newClock(t)
	cus := s.newCustomer(t, clock)
	sub := s.newSubscription(t, cus, pl.Price)
	mustStatus(t, s.apply(t, sub.ID, "BROWSER10", cus, newKey()), http.StatusOK)
	s.advance(t, clock, clockStart.AddDate(0, 3, 1)) // three discounted monthly invoices, paid
	st.settle(t)
	do(t, ctx, "ledger",
		chromedp.Navigate(base+"/admin/codes/"+id),
		chromedp.WaitVisible(chromedp.CSS("#ledger .ledger-line")),
	)
	if line := textOf(t, ctx, "#ledger .ledger-line"); !strings.Contains(line, cus) || !strings.Contains(line, sub.ID) {
		t.Errorf("ledger line: %q", line)
	}
	if got := textOf(t, ctx, "#stat-stock"); got != "6" {
		t.Errorf("stock after a redemption: %q", got)
	}
	if got := textOf(t, ctx, "#stat-uses"); got != "1" {
		t.Errorf("uses after paid invoices: %q", got)
	}
	if line := textOf(t, ctx, "#ledger .ledger-line"); !strings.Contains(line, "active") || !strings.Contains(line, "6.00 USD") {
		t.Errorf("ledger line after three paid invoices of 20.00 at 10%%: %q", line)
	}
	shot(t, ctx, shots, "console-code.png")

	// Archive, after a confirmation.
	do(t, ctx, "archive",
		chromedp.Click(chromedp.CSS("#archive")),
		chromedp.WaitVisible(chromedp.CSS("#confirm-archive")),
		chromedp.Click(chromedp.CSS("#confirm-archive")),
		chromedp.WaitVisible(chromedp.CSS("#notice")),
	)
	if got := textOf(t, ctx, "#code-status"); got != "archived" {
		t.Errorf("status after archive: %q", got)
	}
	// The audit trail shows the console's three changes, as the signed-in key.
	if n := get(t, ctx, "events", chromedp.Evaluate[int](`document.querySelectorAll("#events tr.event").length`)); n != 3 {
		t.Errorf("%d audit events on the page, want create, update, archive", n)
	}
	if ev := textOf(t, ctx, "#events tr.event"); !strings.Contains(ev, "archive") || !strings.Contains(ev, "admin") ||
		!strings.Contains(ev, `"archived"`) {
		t.Errorf("newest audit event: %q", ev)
	}
	if pc := s.code(t, id); pc["status"] != "archived" {
		t.Errorf("the API shows status %v after the console's archive", pc["status"])
	}

	// The drift report runs on demand.
	do(t, ctx, "drift",
		chromedp.Navigate(base+"/admin/drift"),
		chromedp.WaitVisible(chromedp.CSS("#run-drift")),
		chromedp.Click(chromedp.CSS("#run-drift")),
		chromedp.WaitVisible(chromedp.CSS("#drift-summary")),
	)
	if sum := textOf(t, ctx, "#drift-summary"); !strings.Contains(sum, "Stripe has 2 codes, 0 campaigns and 1 redemptions of ours; Redis has 2 codes and 0 campaigns; 0 differences") {
		t.Errorf("drift summary: %q", sum)
	}
	do(t, ctx, "no drift", chromedp.WaitVisible(chromedp.CSS("#no-drift")))
	shot(t, ctx, shots, "console-drift.png")

	// Sign out: the session is gone and pages lead to the sign-in form again.
	do(t, ctx, "sign out",
		chromedp.Click(chromedp.CSS("#sign-out")),
		chromedp.WaitVisible(chromedp.CSS("#sign-in")),
		chromedp.Navigate(base+"/admin/codes/"+id),
		chromedp.WaitVisible(chromedp.CSS("#sign-in")),
	)

	// The key never appeared in a URL.
	hist := get(t, ctx, "history", chromedp.NavigationEntries())
	if len(hist.Entries) < 10 {
		t.Errorf("only %d history entries", len(hist.Entries))
	}
	for _, e := range hist.Entries {
		for _, secret := range []string{adminSecret, checkoutSecret} {
			if strings.Contains(e.URL, secret) {
				t.Errorf("an API key is in the URL %s", e.URL)
			}
		}
	}
}
