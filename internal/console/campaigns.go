package console

import (
	"encoding/json"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/billing-adapter/billing-adapter/internal/httpapi"
)

// campaignJSON is the API's campaign resource, as the console shows it.
type campaignJSON struct {
	ID                  string            `json:"id"`
	Name                string            `json:"name"`
	Prefix              string            `json:"prefix"`
	Count               int               `json:"count"`
	CodeLength          int               `json:"code_length"`
	EntropyBits         float64           `json:"entropy_bits"`
	State               string            `json:"state"`
	Generated           int               `json:"generated"`
	Mirrored            int               `json:"mirrored"`
	Redeemed            int               `json:"redeemed"`
	OncePerCustomer     bool              `json:"once_per_customer"`
	PromoType           string            `json:"promo_type"`
	AmountOff           json.Number       `json:"amount_off"`
	Currency            *string           `json:"currency"`
	Duration            string            `json:"duration"`
	PromoDurationMonths int               `json:"promo_duration_months"`
	ExpirationDatetime  *string           `json:"expiration_datetime"`
	Status              string            `json:"status"`
	Metadata            map[string]string `json:"metadata"`
	CreatedAt           string            `json:"created_at"`
	Stripe              struct {
		CouponID string `json:"coupon_id"`
	} `json:"stripe"`
}

// Amount renders the discount as the codes list does.
func (c campaignJSON) Amount() string { return discountText(c.PromoType, c.AmountOff, c.Currency) }

// Percent is the generation's progress, 0–100.
func (c campaignJSON) Percent() int {
	if c.Count == 0 {
		return 0
	}
	return c.Generated * 100 / c.Count
}

type campaignsContent struct {
	Campaigns []campaignJSON
	NextURL   string
	Form      formContent
}

// campaignFields are the create form's fields, in the API's names.
var campaignFields = []string{"name", "prefix", "count", "code_length", "promo_type", "amount_off", "currency",
	"promo_duration_months", "expiration_datetime", "once_per_customer"}

func (h *Handler) campaigns(w http.ResponseWriter, r *http.Request, s *session) {
	f := newForm()
	f.Values["promo_type"], f.Values["code_length"] = "percentage", "12"
	f.Values["once_per_customer"] = "on" // the API's default: one code of the campaign per customer
	h.campaignsPage(w, r, s, http.StatusOK, f)
}

func (h *Handler) campaignsPage(w http.ResponseWriter, r *http.Request, s *session, status int, f formContent) {
	params := url.Values{"limit": {"20"}, "status": {"all"}}
	if after := r.URL.Query().Get("starting_after"); after != "" {
		params.Set("starting_after", after)
	}
	var page listJSON[campaignJSON]
	if err := h.call(r.Context(), s, http.MethodGet, "/v1/campaigns?"+params.Encode(), nil, "", &page); err != nil {
		h.failAPI(w, r, s, err)
		return
	}
	c := campaignsContent{Campaigns: page.Data, Form: f}
	if page.HasMore && len(page.Data) > 0 {
		c.NextURL = "/admin/campaigns?starting_after=" + url.QueryEscape(page.Data[len(page.Data)-1].ID)
	}
	h.render(w, status, "campaigns", h.view(s, "Campaigns", c))
}

func (h *Handler) createCampaign(w http.ResponseWriter, r *http.Request, s *session) {
	f := newForm()
	for _, k := range campaignFields {
		f.Values[k] = strings.TrimSpace(r.PostFormValue(k))
	}
	// An unchecked box is not sent by the browser: the form always says
	// which it is.
	body := map[string]any{"name": f.Values["name"], "promo_type": f.Values["promo_type"],
		"once_per_customer": f.Values["once_per_customer"] == "on"}
	if v := f.Values["amount_off"]; v != "" {
		body["amount_off"] = v
	}
	for _, k := range []string{"prefix", "currency"} {
		if v := f.Values[k]; v != "" {
			body[k] = v
		}
	}
	for _, k := range []string{"count", "code_length", "promo_duration_months"} {
		if v := f.Values[k]; v != "" {
			body[k] = numberOrText(v)
		}
	}
	if v := f.Values["expiration_datetime"]; v != "" {
		body["expiration_datetime"] = formTime(v)
	}
	var created campaignJSON
	if err := h.call(r.Context(), s, http.MethodPost, "/v1/campaigns", body, r.PostFormValue("idempotency_key"), &created); err != nil {
		if !f.take(err, campaignFields) {
			h.failAPI(w, r, s, err)
			return
		}
		h.campaignsPage(w, r, s, statusOf(err), f)
		return
	}
	http.Redirect(w, r, "/admin/campaigns/"+url.PathEscape(created.ID), http.StatusSeeOther)
}

type campaignPageContent struct {
	Campaign campaignJSON
	Redeemed []campaignCodeJSON
	Edit     formContent
	Archived bool
	// Reload: the page reloads itself every 2 s (a campaign generating its
	// codes shows its progress), unless the admin asked to edit (?edit=1)
	// or the page shows a refused edit: a reload would clear the form.
	Reload bool
}

type campaignCodeJSON struct {
	Code         string  `json:"code"`
	Customer     *string `json:"customer"`
	Subscription *string `json:"subscription"`
	RedeemedAt   *string `json:"redeemed_at"`
}

func (h *Handler) campaignPage(w http.ResponseWriter, r *http.Request, s *session) {
	notice := ""
	if r.URL.Query().Get("notice") == "updated" {
		notice = "Changes saved: they apply to every code of the campaign."
	}
	h.showCampaign(w, r, s, http.StatusOK, newForm(), notice)
}

func (h *Handler) showCampaign(w http.ResponseWriter, r *http.Request, s *session, status int, f formContent, notice string) {
	id := r.PathValue("id")
	var c campaignPageContent
	if err := h.call(r.Context(), s, http.MethodGet, "/v1/campaigns/"+url.PathEscape(id), nil, "", &c.Campaign); err != nil {
		h.failAPI(w, r, s, err)
		return
	}
	c.Archived = c.Campaign.Status == "archived"
	// The edit form, filled with the campaign's values unless re-shown
	// after a refusal.
	if len(f.Values) == 0 {
		f.Values["status"] = c.Campaign.Status
		f.Values["expiration_datetime"] = formExpiry(c.Campaign.ExpirationDatetime)
		f.Values["metadata"] = metadataText(c.Campaign.Metadata)
	}
	c.Edit = f
	c.Reload = c.Campaign.State == "generating" && status == http.StatusOK && r.URL.Query().Get("edit") == ""
	var red listJSON[campaignCodeJSON]
	if err := h.call(r.Context(), s, http.MethodGet, "/v1/campaigns/"+url.PathEscape(id)+"/codes?redeemed=true&limit=20", nil, "", &red); err != nil {
		h.failAPI(w, r, s, err)
		return
	}
	c.Redeemed = red.Data
	v := h.view(s, "Campaign "+c.Campaign.Name, c)
	v.Notice = notice
	h.render(w, status, "campaign", v)
}

// formExpiry is an API timestamp as a datetime-local field shows it (UTC).
func formExpiry(ts *string) string {
	if ts == nil {
		return ""
	}
	t, err := time.Parse(time.RFC3339, *ts)
	if err != nil {
		return ""
	}
	return t.UTC().Format("2006-01-02T15:04")
}

// campaignUpdateFields are the campaign edit form's fields, in the API's
// names.
var campaignUpdateFields = []string{"status", "expiration_datetime", "metadata"}

// updateCampaign sends POST /v1/campaigns/{id} with the fields the admin
// changed (status, expiry, metadata: for every code at once), as the code
// page's edit form does for a promo code.
func (h *Handler) updateCampaign(w http.ResponseWriter, r *http.Request, s *session) {
	id := r.PathValue("id")
	var cur campaignJSON
	if err := h.call(r.Context(), s, http.MethodGet, "/v1/campaigns/"+url.PathEscape(id), nil, "", &cur); err != nil {
		h.failAPI(w, r, s, err)
		return
	}
	f := newForm()
	for _, k := range campaignUpdateFields {
		f.Values[k] = r.PostFormValue(k)
	}
	body := map[string]any{}
	if st := f.Values["status"]; st != "" && st != cur.Status {
		body["status"] = st
	}
	if v := strings.TrimSpace(f.Values["expiration_datetime"]); v != formExpiry(cur.ExpirationDatetime) {
		if v == "" {
			body["expiration_datetime"] = nil
		} else {
			body["expiration_datetime"] = formTime(v)
		}
	}
	md, perr := parseMetadata(f.Values["metadata"])
	if perr != "" {
		f.Errors["metadata"] = perr
		h.showCampaign(w, r, s, http.StatusBadRequest, f, "")
		return
	}
	if patch := metadataPatch(cur.Metadata, md); len(patch) > 0 {
		body["metadata"] = patch
	}
	if len(body) == 0 {
		http.Redirect(w, r, "/admin/campaigns/"+url.PathEscape(id), http.StatusSeeOther)
		return
	}
	if err := h.call(r.Context(), s, http.MethodPost, "/v1/campaigns/"+url.PathEscape(id), body, r.PostFormValue("idempotency_key"), nil); err != nil {
		if !f.take(err, campaignUpdateFields) {
			h.failAPI(w, r, s, err)
			return
		}
		h.showCampaign(w, r, s, statusOf(err), f, "")
		return
	}
	http.Redirect(w, r, "/admin/campaigns/"+url.PathEscape(id)+"?notice=updated", http.StatusSeeOther)
}

// exportCampaign streams the API's codes.csv to the browser as the
// session's key: the API handler writes straight to the response, so the
// export stays a thousand codes at a time.
func (h *Handler) exportCampaign(w http.ResponseWriter, r *http.Request, s *session) {
	req, err := http.NewRequestWithContext(httpapi.WithPrincipal(r.Context(), s.Key, s.scope), http.MethodGet,
		"/v1/campaigns/"+url.PathEscape(r.PathValue("id"))+"/codes.csv", nil)
	if err != nil {
		h.fail(w, r, s, http.StatusBadRequest, "No such campaign.")
		return
	}
	req.RemoteAddr = "console"
	h.opts.API.ServeHTTP(w, req)
}
