package console

import (
	"encoding/json"
	"net/http"
	"net/url"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/billing-adapter/billing-adapter/internal/promo"
)

type codePageContent struct {
	Code       codeJSON
	Amount     string
	Stock      string
	Discounted []moneyLine
	Plans      []planLine
	Ledger     []redemptionJSON
	LedgerNext string
	LedgerTop  string
	Chart      *chart
	Edit       formContent
	Archived   bool
	Events     []eventJSON
}

type eventJSON struct {
	ID        string  `json:"id"`
	Action    string  `json:"action"`
	APIKey    string  `json:"api_key"`
	RequestID *string `json:"request_id"`
	CreatedAt string  `json:"created_at"`
	Changes   []struct {
		Field  string          `json:"field"`
		Before json.RawMessage `json:"before"`
		After  json.RawMessage `json:"after"`
	} `json:"changes"`
}

type moneyLine struct{ Currency, Amount string }

type planLine struct{ ID, Name, Price string }

// maxChartLines bounds the ledger lines read for the monthly chart.
const maxChartLines = 1000

func (h *Handler) codePage(w http.ResponseWriter, r *http.Request, s *session) {
	f := newForm()
	h.showCode(w, r, s, http.StatusOK, f, noticeText(r.URL.Query().Get("notice")))
}

func noticeText(n string) string {
	switch n {
	case "created":
		return "Promo code created and mirrored to Stripe."
	case "updated":
		return "Changes saved."
	case "archived":
		return "Promo code archived."
	}
	return ""
}

func (h *Handler) loadCode(r *http.Request, s *session, id string) (codeJSON, error) {
	var pc codeJSON
	path := "/v1/promo_codes/" + url.PathEscape(id)
	err := h.call(r.Context(), s, http.MethodGet, path, nil, "", &pc)
	if err == nil && len(pc.PlanIDs) > 0 {
		err = h.call(r.Context(), s, http.MethodGet, path+"?expand[]=plans", nil, "", &pc)
	}
	return pc, err
}

func (h *Handler) showCode(w http.ResponseWriter, r *http.Request, s *session, status int, f formContent, notice string) {
	id := r.PathValue("id")
	pc, err := h.loadCode(r, s, id)
	if err != nil {
		h.failAPI(w, r, s, err)
		return
	}
	c := codePageContent{Code: pc, Amount: amountText(pc), Stock: stockText(pc), Archived: pc.Status == "archived"}
	for cur, v := range pc.DiscountedAmounts {
		c.Discounted = append(c.Discounted, moneyLine{Currency: strings.ToUpper(cur), Amount: formatMinor(v, cur)})
	}
	sort.Slice(c.Discounted, func(i, j int) bool { return c.Discounted[i].Currency < c.Discounted[j].Currency })
	for _, p := range pc.Plans {
		pl := planLine{ID: p.ID, Name: p.ProductName}
		if p.UnitAmount != nil {
			pl.Price = formatMinor(*p.UnitAmount, p.Currency) + " " + strings.ToUpper(p.Currency)
			if p.Interval != nil {
				pl.Price += " / " + *p.Interval
			}
		}
		c.Plans = append(c.Plans, pl)
	}
	if len(pc.Plans) == 0 {
		for _, id := range pc.PlanIDs {
			c.Plans = append(c.Plans, planLine{ID: id})
		}
	}

	// The ledger, one page at a time.
	params := url.Values{"limit": {"20"}}
	if after := r.URL.Query().Get("ledger_after"); after != "" {
		params.Set("starting_after", after)
		c.LedgerTop = "/admin/codes/" + url.PathEscape(pc.ID)
	}
	var page listJSON[redemptionJSON]
	if err := h.call(r.Context(), s, http.MethodGet, "/v1/promo_codes/"+url.PathEscape(pc.ID)+"/redemptions?"+params.Encode(), nil, "", &page); err != nil {
		h.failAPI(w, r, s, err)
		return
	}
	c.Ledger = page.Data
	if page.HasMore && len(page.Data) > 0 {
		c.LedgerNext = "/admin/codes/" + url.PathEscape(pc.ID) + "?ledger_after=" + url.QueryEscape(page.Data[len(page.Data)-1].ID)
	}

	// The monthly chart, from the ledger (up to maxChartLines lines).
	var all []redemptionJSON
	after := ""
	for len(all) < maxChartLines {
		p := url.Values{"limit": {"100"}}
		if after != "" {
			p.Set("starting_after", after)
		}
		var pg listJSON[redemptionJSON]
		if err := h.call(r.Context(), s, http.MethodGet, "/v1/promo_codes/"+url.PathEscape(pc.ID)+"/redemptions?"+p.Encode(), nil, "", &pg); err != nil {
			h.failAPI(w, r, s, err)
			return
		}
		all = append(all, pg.Data...)
		if !pg.HasMore || len(pg.Data) == 0 {
			break
		}
		after = pg.Data[len(pg.Data)-1].ID
	}
	c.Chart = monthlyChart(all, h.now(), len(all) >= maxChartLines)

	// The audit trail (newest 20).
	var events listJSON[eventJSON]
	if err := h.call(r.Context(), s, http.MethodGet, "/v1/promo_codes/"+url.PathEscape(pc.ID)+"/events?limit=20", nil, "", &events); err != nil {
		h.failAPI(w, r, s, err)
		return
	}
	c.Events = events.Data

	// The edit form, filled with the code's values unless re-shown after a refusal.
	if len(f.Values) == 0 {
		f.Values["status"] = pc.Status
		if pc.ExpirationDatetime != nil {
			if t, err := time.Parse(time.RFC3339, *pc.ExpirationDatetime); err == nil {
				f.Values["expiration_datetime"] = t.UTC().Format("2006-01-02T15:04")
			}
		}
		if pc.Stock != nil {
			f.Values["stock"] = strconv.FormatInt(*pc.Stock, 10)
		}
		if pc.UnlimitedStock {
			f.Values["unlimited_stock"] = "on"
		}
		f.Values["metadata"] = metadataText(pc.Metadata)
	}
	c.Edit = f
	v := h.view(s, pc.Code, c)
	v.Notice = notice
	h.render(w, status, "code", v)
}

// formatMinor renders minor units in major units of cur, with the domain's
// exponents (2 for a currency it does not know).
func formatMinor(v int64, cur string) string {
	exp, ok := promo.CurrencyExponent(strings.ToLower(cur))
	if !ok {
		exp = 2
	}
	return promo.FormatDecimal(v, exp)
}

var updateFields = []string{"status", "expiration_datetime", "stock", "unlimited_stock", "metadata"}

// updateCode sends the fields the admin changed (a field left as it was is
// not sent, so an expired code can still be restocked or switched off).
func (h *Handler) updateCode(w http.ResponseWriter, r *http.Request, s *session) {
	id := r.PathValue("id")
	pc, err := h.loadCode(r, s, id)
	if err != nil {
		h.failAPI(w, r, s, err)
		return
	}
	f := newForm()
	for _, k := range updateFields {
		f.Values[k] = r.PostFormValue(k)
	}
	body := map[string]any{}
	if st := f.Values["status"]; st != "" && st != pc.Status {
		body["status"] = st
	}
	oldExp := ""
	if pc.ExpirationDatetime != nil {
		if t, err := time.Parse(time.RFC3339, *pc.ExpirationDatetime); err == nil {
			oldExp = t.UTC().Format("2006-01-02T15:04")
		}
	}
	if v := strings.TrimSpace(f.Values["expiration_datetime"]); v != oldExp {
		if v == "" {
			body["expiration_datetime"] = nil
		} else {
			body["expiration_datetime"] = formTime(v)
		}
	}
	unlimited := f.Values["unlimited_stock"] == "on"
	if unlimited != pc.UnlimitedStock {
		body["unlimited_stock"] = unlimited
	}
	oldStock := ""
	if pc.Stock != nil {
		oldStock = strconv.FormatInt(*pc.Stock, 10)
	}
	if v := strings.TrimSpace(f.Values["stock"]); !unlimited && (v != oldStock || (pc.UnlimitedStock && v != "")) && v != "" {
		body["stock"] = numberOrText(v)
	}
	md, perr := parseMetadata(f.Values["metadata"])
	if perr != "" {
		f.Errors["metadata"] = perr
		h.showCode(w, r, s, http.StatusBadRequest, f, "")
		return
	}
	if patch := metadataPatch(pc.Metadata, md); len(patch) > 0 {
		body["metadata"] = patch
	}
	if len(body) == 0 {
		http.Redirect(w, r, "/admin/codes/"+url.PathEscape(id), http.StatusSeeOther)
		return
	}
	if err := h.call(r.Context(), s, http.MethodPost, "/v1/promo_codes/"+url.PathEscape(id), body, r.PostFormValue("idempotency_key"), nil); err != nil {
		if !f.take(err, updateFields) {
			h.failAPI(w, r, s, err)
			return
		}
		h.showCode(w, r, s, statusOf(err), f, "")
		return
	}
	http.Redirect(w, r, "/admin/codes/"+url.PathEscape(id)+"?notice=updated", http.StatusSeeOther)
}

// Archive, with a confirmation page.

type archiveContent struct {
	Code codeJSON
	Idem string
}

func (h *Handler) archivePage(w http.ResponseWriter, r *http.Request, s *session) {
	pc, err := h.loadCode(r, s, r.PathValue("id"))
	if err != nil {
		h.failAPI(w, r, s, err)
		return
	}
	h.render(w, http.StatusOK, "archive", h.view(s, "Archive "+pc.Code, archiveContent{Code: pc, Idem: randomToken()}))
}

func (h *Handler) archiveCode(w http.ResponseWriter, r *http.Request, s *session) {
	id := r.PathValue("id")
	if r.PostFormValue("confirm") != "yes" {
		http.Redirect(w, r, "/admin/codes/"+url.PathEscape(id)+"/archive", http.StatusSeeOther)
		return
	}
	if err := h.call(r.Context(), s, http.MethodPost, "/v1/promo_codes/"+url.PathEscape(id),
		map[string]any{"status": "archived"}, r.PostFormValue("idempotency_key"), nil); err != nil {
		h.failAPI(w, r, s, err)
		return
	}
	http.Redirect(w, r, "/admin/codes/"+url.PathEscape(id)+"?notice=archived", http.StatusSeeOther)
}

// Drift.

type driftContent struct {
	Enabled bool
	Ran     bool
	Report  *DriftReport
	Error   string
}

func (h *Handler) driftPage(w http.ResponseWriter, r *http.Request, s *session) {
	h.render(w, http.StatusOK, "drift", h.view(s, "Drift", driftContent{Enabled: h.opts.Drift != nil}))
}

func (h *Handler) runDrift(w http.ResponseWriter, r *http.Request, s *session) {
	c := driftContent{Enabled: h.opts.Drift != nil, Ran: true}
	if h.opts.Drift == nil {
		h.fail(w, r, s, http.StatusNotFound, "The drift report is not available on this service.")
		return
	}
	rep, err := h.opts.Drift(r.Context())
	if err != nil {
		h.log.Error("console drift report failed", "err", err.Error())
		c.Error = "The report could not be made (Stripe or Redis did not answer); see the service log."
	}
	c.Report = rep
	h.log.Info("console drift report", "api_key", s.Key)
	h.render(w, http.StatusOK, "drift", h.view(s, "Drift", c))
}

// metadataPatch is the API's metadata update that turns cur into next:
// changed and new keys with their values, removed keys as null (the API
// deletes keys sent as null).
func metadataPatch(cur, next map[string]string) map[string]any {
	patch := map[string]any{}
	for k, v := range next {
		if cur[k] != v {
			patch[k] = v
		}
	}
	for k := range cur {
		if _, ok := next[k]; !ok {
			patch[k] = nil
		}
	}
	return patch
}
