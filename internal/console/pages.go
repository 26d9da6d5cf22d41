package console

import (
	"bytes"
	"encoding/json"
	"errors"
	"html/template"
	"net/http"
	"net/url"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/billing-adapter/billing-adapter/config"
)

// The API's JSON, as far as the pages show it.

type codeJSON struct {
	ID                      string            `json:"id"`
	Code                    string            `json:"code"`
	PromoType               string            `json:"promo_type"`
	AmountOff               json.Number       `json:"amount_off"`
	Currency                *string           `json:"currency"`
	Duration                string            `json:"duration"`
	PromoDurationMonths     int               `json:"promo_duration_months"`
	ExpirationDatetime      *string           `json:"expiration_datetime"`
	NewUsersOnly            bool              `json:"new_users_only"`
	ExistingMembershipsOnly bool              `json:"existing_memberships_only"`
	PlanIDs                 []string          `json:"plan_ids"`
	Plans                   []planJSON        `json:"plans"`
	Stock                   *int64            `json:"stock"`
	UnlimitedStock          bool              `json:"unlimited_stock"`
	Reserved                int64             `json:"reserved"`
	Uses                    int64             `json:"uses"`
	DiscountedAmounts       map[string]int64  `json:"discounted_amounts"`
	Status                  string            `json:"status"`
	StatusReason            *string           `json:"status_reason"`
	Metadata                map[string]string `json:"metadata"`
	CreatedAt               string            `json:"created_at"`
	UpdatedAt               string            `json:"updated_at"`
	Stripe                  struct {
		CouponID        string `json:"coupon_id"`
		PromotionCodeID string `json:"promotion_code_id"`
		Active          bool   `json:"active"`
		State           string `json:"state"`
		TimesRedeemed   int64  `json:"times_redeemed"`
	} `json:"stripe"`
}

type planJSON struct {
	ID          string  `json:"id"`
	ProductName string  `json:"product_name"`
	UnitAmount  *int64  `json:"unit_amount"`
	Currency    string  `json:"currency"`
	Interval    *string `json:"interval"`
}

type redemptionJSON struct {
	ID                string           `json:"id"`
	Customer          string           `json:"customer"`
	Subscription      *string          `json:"subscription"`
	Source            string           `json:"source"`
	State             string           `json:"state"`
	CreatedAt         string           `json:"created_at"`
	ActivatedAt       *string          `json:"activated_at"`
	EndedAt           *string          `json:"ended_at"`
	EndReason         *string          `json:"end_reason"`
	Cycles            int              `json:"cycles"`
	Flags             []string         `json:"flags"`
	DiscountedAmounts map[string]int64 `json:"discounted_amounts"`
}

type listJSON[T any] struct {
	Data    []T  `json:"data"`
	HasMore bool `json:"has_more"`
}

// view is what every page template gets.
type view struct {
	Title   string
	Key     string // the signed-in API key's name
	CSRF    string
	Notice  string
	Error   string
	Content any
}

func (h *Handler) render(w http.ResponseWriter, status int, name string, v view) {
	var buf bytes.Buffer
	if err := h.pages[name].ExecuteTemplate(&buf, "layout", v); err != nil {
		h.log.Error("console template failed", "page", name, "err", err.Error())
		http.Error(w, "internal error", http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.WriteHeader(status)
	_, _ = w.Write(buf.Bytes())
}

func (h *Handler) view(s *session, title string, content any) view {
	v := view{Title: title, Content: content}
	if s != nil {
		v.Key, v.CSRF = s.Key, s.CSRF
	}
	return v
}

// fail shows an error page.
func (h *Handler) fail(w http.ResponseWriter, r *http.Request, s *session, status int, msg string) {
	v := h.view(s, "Error", nil)
	v.Error = msg
	h.render(w, status, "error", v)
}

// failAPI shows an API error that no form field owns.
func (h *Handler) failAPI(w http.ResponseWriter, r *http.Request, s *session, err error) {
	var ae *apiError
	if errors.As(err, &ae) {
		msg := ae.Message
		if ae.RequestID != "" {
			msg += " (request " + ae.RequestID + ")"
		}
		h.fail(w, r, s, ae.Status, msg)
		return
	}
	h.log.Error("console call failed", "err", err.Error())
	h.fail(w, r, s, http.StatusInternalServerError, "Something went wrong; see the service log.")
}

// Sign in and out.

type loginContent struct {
	LoginCSRF string
	Error     string
}

func (h *Handler) loginPage(w http.ResponseWriter, r *http.Request) {
	if _, ok := h.readSession(r); ok {
		http.Redirect(w, r, "/admin/codes", http.StatusSeeOther)
		return
	}
	h.showLogin(w, r, http.StatusOK, "")
}

func (h *Handler) showLogin(w http.ResponseWriter, r *http.Request, status int, msg string) {
	token := randomToken()
	http.SetCookie(w, h.cookie(r, loginCookie, token, 3600))
	h.render(w, status, "login", view{Title: "Sign in", Content: loginContent{LoginCSRF: token, Error: msg}})
}

// login checks the admin API key posted in the form (never in a URL) and
// issues the session cookie. A checkout key or an unknown key is refused.
func (h *Handler) login(w http.ResponseWriter, r *http.Request) {
	r.Body = http.MaxBytesReader(w, r.Body, MaxFormBytes)
	if err := r.ParseForm(); err != nil {
		h.showLogin(w, r, http.StatusRequestEntityTooLarge, "The form is too large.")
		return
	}
	c, err := r.Cookie(loginCookie)
	if err != nil || !checkCSRF(r, c.Value) {
		h.showLogin(w, r, http.StatusForbidden, "The sign-in form expired. Try again.")
		return
	}
	name, scope, ok := h.keys.Verify(strings.TrimSpace(r.PostFormValue("api_key")))
	switch {
	case !ok:
		h.log.Warn("console sign-in refused: unknown API key", "remote", r.RemoteAddr)
		h.showLogin(w, r, http.StatusUnauthorized, "This API key is not valid.")
		return
	case scope != config.ScopeAdmin:
		h.log.Warn("console sign-in refused: not an admin key", "api_key", name, "scope", scope)
		h.showLogin(w, r, http.StatusForbidden, "This API key has the "+string(scope)+" scope; the console needs an admin key.")
		return
	}
	if err := h.newSession(w, r, name); err != nil {
		h.showLogin(w, r, http.StatusInternalServerError, "Could not sign in.")
		return
	}
	h.clearCookie(w, r, loginCookie)
	h.log.Info("console sign-in", "api_key", name)
	http.Redirect(w, r, "/admin/codes", http.StatusSeeOther)
}

func (h *Handler) logout(w http.ResponseWriter, r *http.Request, s *session) {
	if h.opts.Sessions != nil {
		if err := h.opts.Sessions.RevokeSession(r.Context(), s.ID, time.Unix(s.Expires, 0)); err != nil {
			h.fail(w, r, s, http.StatusServiceUnavailable, "Could not sign out: the session store is unavailable. Try again.")
			return
		}
	}
	h.clearCookie(w, r, sessionCookie)
	h.log.Info("console sign-out", "api_key", s.Key)
	http.Redirect(w, r, "/admin/login", http.StatusSeeOther)
}

// The list of codes.

type codesContent struct {
	Codes     []codeRow
	Status    string
	Query     string
	Statuses  []string
	NextURL   string
	FirstURL  string
	IsSubPage bool
}

type codeRow struct {
	codeJSON
	Amount string
	Stock  string
}

func (h *Handler) codes(w http.ResponseWriter, r *http.Request, s *session) {
	q := r.URL.Query()
	status, text, after := q.Get("status"), strings.TrimSpace(q.Get("q")), q.Get("starting_after")
	params := url.Values{"limit": {"20"}}
	if status != "" {
		params.Set("status", status)
	}
	if text != "" {
		params.Set("code", text)
	}
	if after != "" {
		params.Set("starting_after", after)
	}
	var page listJSON[codeJSON]
	if err := h.call(r.Context(), s, http.MethodGet, "/v1/promo_codes?"+params.Encode(), nil, "", &page); err != nil {
		h.failAPI(w, r, s, err)
		return
	}
	c := codesContent{Status: status, Query: text, Statuses: []string{"", "active", "inactive", "archived", "all"}, IsSubPage: after != ""}
	for _, pc := range page.Data {
		c.Codes = append(c.Codes, codeRow{codeJSON: pc, Amount: amountText(pc), Stock: stockText(pc)})
	}
	base := url.Values{}
	if status != "" {
		base.Set("status", status)
	}
	if text != "" {
		base.Set("q", text)
	}
	c.FirstURL = "/admin/codes?" + base.Encode()
	if page.HasMore && len(page.Data) > 0 {
		base.Set("starting_after", page.Data[len(page.Data)-1].ID)
		c.NextURL = "/admin/codes?" + base.Encode()
	}
	h.render(w, http.StatusOK, "codes", h.view(s, "Promo codes", c))
}

func amountText(pc codeJSON) string { return discountText(pc.PromoType, pc.AmountOff, pc.Currency) }

// discountText renders a discount's amount as the pages show it: "15%" or
// "5.00 USD".
func discountText(promoType string, amount json.Number, currency *string) string {
	if promoType == "percentage" {
		return amount.String() + "%"
	}
	cur := ""
	if currency != nil {
		cur = " " + strings.ToUpper(*currency)
	}
	return amount.String() + cur
}

func stockText(pc codeJSON) string {
	if pc.UnlimitedStock || pc.Stock == nil {
		return "unlimited"
	}
	return strconv.FormatInt(*pc.Stock, 10)
}

// Create.

type formContent struct {
	Values map[string]string
	Errors map[string]string
	// General is an error no field owns.
	General string
	Idem    string
}

func newForm() formContent {
	return formContent{Values: map[string]string{}, Errors: map[string]string{}, Idem: randomToken()}
}

func (h *Handler) newCodePage(w http.ResponseWriter, r *http.Request, s *session) {
	f := newForm()
	f.Values["promo_type"], f.Values["status"], f.Values["unlimited_stock"] = "percentage", "active", "on"
	h.render(w, http.StatusOK, "new", h.view(s, "New promo code", f))
}

// createFields are the create form's fields, in the API's names.
var createFields = []string{"code", "promo_type", "amount_off", "currency", "duration", "promo_duration_months",
	"expiration_datetime", "new_users_only", "existing_memberships_only", "plan_ids", "stock", "unlimited_stock",
	"status", "metadata"}

func (h *Handler) createCode(w http.ResponseWriter, r *http.Request, s *session) {
	f := newForm()
	for _, k := range createFields {
		f.Values[k] = r.PostFormValue(k)
	}
	body := map[string]any{"code": f.Values["code"], "promo_type": f.Values["promo_type"]}
	if v := strings.TrimSpace(f.Values["amount_off"]); v != "" {
		body["amount_off"] = v // decimal text: the API converts it exactly
	}
	for _, k := range []string{"currency", "duration", "status"} {
		if v := strings.TrimSpace(f.Values[k]); v != "" {
			body[k] = v
		}
	}
	for _, k := range []string{"promo_duration_months", "stock"} {
		if v := strings.TrimSpace(f.Values[k]); v != "" {
			body[k] = numberOrText(v)
		}
	}
	if v := strings.TrimSpace(f.Values["expiration_datetime"]); v != "" {
		body["expiration_datetime"] = formTime(v)
	}
	body["new_users_only"] = f.Values["new_users_only"] == "on"
	body["existing_memberships_only"] = f.Values["existing_memberships_only"] == "on"
	if f.Values["unlimited_stock"] == "on" {
		body["unlimited_stock"] = true
	} else {
		body["unlimited_stock"] = false
	}
	if ids := splitList(f.Values["plan_ids"]); len(ids) > 0 {
		body["plan_ids"] = ids
	}
	md, err := parseMetadata(f.Values["metadata"])
	if err != "" {
		f.Errors["metadata"] = err
		h.render(w, http.StatusBadRequest, "new", h.view(s, "New promo code", f))
		return
	}
	if len(md) > 0 {
		body["metadata"] = md
	}
	var created codeJSON
	if err := h.call(r.Context(), s, http.MethodPost, "/v1/promo_codes", body, r.PostFormValue("idempotency_key"), &created); err != nil {
		if !f.take(err, createFields) {
			h.failAPI(w, r, s, err)
			return
		}
		h.render(w, statusOf(err), "new", h.view(s, "New promo code", f))
		return
	}
	http.Redirect(w, r, "/admin/codes/"+url.PathEscape(created.ID)+"?notice=created", http.StatusSeeOther)
}

// take puts an API refusal next to the field it names (or at the top of
// the form) and gives the form a new Idempotency-Key, since the refused body
// is kept under the old one. It reports false for failures that are not the
// form's to show (a 5xx).
func (f *formContent) take(err error, fields []string) bool {
	var ae *apiError
	if !errors.As(err, &ae) || ae.Status >= 500 {
		return false
	}
	f.Idem = randomToken()
	for _, k := range fields {
		if ae.Param == k {
			f.Errors[k] = ae.Message
			return true
		}
	}
	f.General = ae.Message
	return true
}

func statusOf(err error) int {
	var ae *apiError
	if errors.As(err, &ae) {
		return ae.Status
	}
	return http.StatusInternalServerError
}

// numberOrText sends a whole number as a JSON number and anything else as
// text, so the API's own message says what is wrong with it.
func numberOrText(v string) any {
	if n, err := strconv.ParseInt(v, 10, 64); err == nil {
		return n
	}
	return v
}

// formTime reads a datetime-local value as UTC ("2027-01-31T23:59"); text
// that is not one goes to the API as typed, which names the field.
func formTime(v string) string {
	for _, layout := range []string{"2006-01-02T15:04", "2006-01-02T15:04:05"} {
		if t, err := time.Parse(layout, v); err == nil {
			return t.UTC().Format(time.RFC3339)
		}
	}
	return v
}

func splitList(v string) []string {
	return strings.FieldsFunc(v, func(r rune) bool { return r == ',' || r == ' ' || r == '\n' || r == '\r' || r == '\t' })
}

// parseMetadata reads "key=value" lines (the form's notation, not a rule).
func parseMetadata(v string) (map[string]string, string) {
	md := map[string]string{}
	for _, line := range strings.Split(v, "\n") {
		line = strings.TrimSpace(line)
		if line == "" {
			continue
		}
		k, val, ok := strings.Cut(line, "=")
		if !ok {
			return nil, "write one key=value per line (" + strconv.Quote(line) + " has no =)"
		}
		md[strings.TrimSpace(k)] = strings.TrimSpace(val)
	}
	return md, ""
}

func metadataText(md map[string]string) string {
	keys := make([]string, 0, len(md))
	for k := range md {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	var b strings.Builder
	for _, k := range keys {
		b.WriteString(k + "=" + md[k] + "\n")
	}
	return b.String()
}

var _ = template.HTML("")
