package httpapi

import (
	"encoding/json"
	"net/http"
	"time"

	"github.com/billing-adapter/billing-adapter/internal/promo"
	"github.com/labstack/echo/v4"
)

// createPromoCodeRequest is the body of POST /v1/promo_codes (field names from
// the source API reference).
type createPromoCodeRequest struct {
	Code string `json:"code"`
	termsRequest
	Stock          *int64 `json:"stock"`
	UnlimitedStock *bool  `json:"unlimited_stock"`
}

// termsRequest are a code's terms as a create request gives them, for a
// promo code and a campaign alike (embedded: the fields stand at the
// embedding's place).
type termsRequest struct {
	PromoType               string            `json:"promo_type"`
	AmountOff               decimalText       `json:"amount_off"`
	Currency                string            `json:"currency"`
	Duration                string            `json:"duration"`
	PromoDurationMonths     *int64            `json:"promo_duration_months"`
	ExpirationDatetime      *string           `json:"expiration_datetime"`
	NewUsersOnly            bool              `json:"new_users_only"`
	ExistingMembershipsOnly bool              `json:"existing_memberships_only"`
	PlanIDs                 []string          `json:"plan_ids"`
	Status                  string            `json:"status"`
	Metadata                map[string]string `json:"metadata"`
}

// input is t as the domain's create input (without code and stock).
func (t *termsRequest) input() (promo.CreateInput, error) {
	in := promo.CreateInput{
		PromoType: promo.PromoType(t.PromoType), AmountOff: string(t.AmountOff), Currency: t.Currency,
		Duration: promo.Duration(t.Duration), PromoDurationMonths: t.PromoDurationMonths,
		NewUsersOnly: t.NewUsersOnly, ExistingMembershipsOnly: t.ExistingMembershipsOnly,
		PlanIDs: t.PlanIDs, Status: promo.Status(t.Status), Metadata: t.Metadata,
	}
	if t.ExpirationDatetime != nil {
		at, err := parseTime("expiration_datetime", *t.ExpirationDatetime)
		if err != nil {
			return in, err
		}
		in.ExpirationDatetime = &at
	}
	return in, nil
}

// promoCodeResponse is the promo code resource.
type promoCodeResponse struct {
	ID     string `json:"id"`
	Object string `json:"object"`
	Code   string `json:"code"`
	termsJSON
	Plans             []planJSON        `json:"plans,omitempty"` // expand[]=plans only
	Stock             *int64            `json:"stock"`
	UnlimitedStock    bool              `json:"unlimited_stock"`
	Reserved          int64             `json:"reserved"`
	Uses              int64             `json:"uses"`
	DiscountedAmounts map[string]int64  `json:"discounted_amounts"`
	Status            promo.Status      `json:"status"`
	StatusReason      *string           `json:"status_reason"`
	Metadata          map[string]string `json:"metadata"`
	CreatedAt         string            `json:"created_at"`
	UpdatedAt         string            `json:"updated_at"`
	Stripe            stripeRefsJSON    `json:"stripe"`
}

// termsJSON are a code's terms as the API shows them, for a promo code and a
// campaign alike (embedded: the fields stand at the embedding's place).
type termsJSON struct {
	PromoType               promo.PromoType `json:"promo_type"`
	AmountOff               json.Number     `json:"amount_off"`
	AmountOffMinor          *int64          `json:"amount_off_minor,omitempty"`
	Currency                *string         `json:"currency"`
	Duration                promo.Duration  `json:"duration"`
	PromoDurationMonths     int             `json:"promo_duration_months"`
	ExpirationDatetime      *string         `json:"expiration_datetime"`
	NewUsersOnly            bool            `json:"new_users_only"`
	ExistingMembershipsOnly bool            `json:"existing_memberships_only"`
	// OncePerCustomer: one use of the code per customer account; always
	// true for a promo code, a campaign's once_per_customer otherwise.
	OncePerCustomer bool     `json:"once_per_customer"`
	PlanIDs         []string `json:"plan_ids"`
}

func toTermsJSON(p *promo.PromoCode) termsJSON {
	t := termsJSON{PromoType: p.PromoType, AmountOff: json.Number(p.AmountOffDecimal()), Duration: p.Duration,
		PromoDurationMonths: p.DurationMonths, NewUsersOnly: p.NewUsersOnly,
		ExistingMembershipsOnly: p.ExistingMembershipsOnly, OncePerCustomer: p.OncePerCustomer(), PlanIDs: p.PlanIDs}
	if p.PromoType == promo.FlatAmount {
		minor, cur := p.AmountOff, p.Currency
		t.AmountOffMinor, t.Currency = &minor, &cur
	}
	if p.ExpiresAt != nil {
		s := rfc3339(*p.ExpiresAt)
		t.ExpirationDatetime = &s
	}
	if t.PlanIDs == nil {
		t.PlanIDs = []string{}
	}
	return t
}

type stripeRefsJSON struct {
	CouponID        string          `json:"coupon_id"`
	PromotionCodeID string          `json:"promotion_code_id"`
	Active          bool            `json:"active"`
	State           promo.SyncState `json:"state"`
	TimesRedeemed   int64           `json:"times_redeemed"`
}

type listResponse[T any] struct {
	Object  string `json:"object"`
	Data    []T    `json:"data"`
	HasMore bool   `json:"has_more"`
	URL     string `json:"url"`
}

func rfc3339(t time.Time) string { return t.UTC().Format(time.RFC3339) }

func toPromoCodeResponse(p *promo.PromoCode) promoCodeResponse {
	r := promoCodeResponse{
		ID: p.ID, Object: "promo_code", Code: p.Code, termsJSON: toTermsJSON(p), UnlimitedStock: p.UnlimitedStock, Reserved: p.Reserved, Uses: p.Uses,
		DiscountedAmounts: p.Discounted, Status: p.Status, StatusReason: optString(p.StatusReason),
		Metadata: p.Metadata, CreatedAt: rfc3339(p.CreatedAt), UpdatedAt: rfc3339(p.UpdatedAt),
		Stripe: stripeRefsJSON{CouponID: p.Stripe.CouponID, PromotionCodeID: p.Stripe.PromotionCodeID,
			Active: p.Stripe.Active, State: p.Stripe.State, TimesRedeemed: p.Stripe.TimesRedeemed},
	}
	if r.DiscountedAmounts == nil {
		r.DiscountedAmounts = map[string]int64{}
	}
	if !p.UnlimitedStock {
		stock := p.Stock
		r.Stock = &stock
	}
	if r.Metadata == nil {
		r.Metadata = map[string]string{}
	}
	return r
}

func (s *server) createPromoCode(c echo.Context) error {
	var req createPromoCodeRequest
	if err := decodeJSON(c, &req); err != nil {
		return err
	}
	in, err := req.input()
	if err != nil {
		return err
	}
	in.Code, in.Stock, in.UnlimitedStock = req.Code, req.Stock, req.UnlimitedStock
	p, err := s.Catalog.Create(c.Request().Context(), in, c.Get(ctxReqKey).(string))
	if err != nil {
		return err
	}
	return c.JSON(http.StatusCreated, toPromoCodeResponse(p))
}

func (s *server) getPromoCode(c echo.Context) error {
	expandPlans, err := parseExpand(c)
	if err != nil {
		return err
	}
	p, err := s.Catalog.Get(c.Request().Context(), c.Param("id"))
	if err != nil {
		return err
	}
	out := []promoCodeResponse{toPromoCodeResponse(p)}
	if expandPlans {
		if err := s.expandPlans(c, out); err != nil {
			return err
		}
	}
	return c.JSON(http.StatusOK, out[0])
}

// planJSON is a plan ID expanded (expand[]=plans, eligible_plans).
type planJSON struct {
	ID            string  `json:"id"`
	Object        string  `json:"object"`
	Product       string  `json:"product"`
	ProductName   string  `json:"product_name"`
	UnitAmount    *int64  `json:"unit_amount"`
	Currency      string  `json:"currency"`
	Interval      *string `json:"interval"`
	IntervalCount *int64  `json:"interval_count"`
}

func toPlansJSON(plans []promo.Plan) []planJSON {
	out := make([]planJSON, len(plans))
	for i, p := range plans {
		out[i] = planJSON{ID: p.ID, Object: "plan", Product: p.Product, ProductName: p.ProductName,
			UnitAmount: p.UnitAmount, Currency: p.Currency, Interval: optString(p.Interval)}
		if p.Interval != "" {
			n := p.IntervalCount
			out[i].IntervalCount = &n
		}
	}
	return out
}

// parseExpand reads expand[] (Stripe's spelling; "expand" is accepted too):
// only "plans" can be expanded.
func parseExpand(c echo.Context) (bool, error) {
	q := c.QueryParams()
	plans := false
	for _, name := range []string{"expand[]", "expand"} {
		for _, v := range q[name] {
			if v != "plans" {
				return false, promo.Invalid("expand[]", "only plans can be expanded (expand[]=plans), not %q", v)
			}
			plans = true
		}
	}
	return plans, nil
}

// expandPlans fills Plans of every code, with one cached read of all their
// plan IDs together.
func (s *server) expandPlans(c echo.Context, codes []promoCodeResponse) error {
	if s.Plans == nil {
		return promo.Errorf(promo.CodeInternal, "plan expansion is not configured")
	}
	var ids []string
	seen := map[string]bool{}
	for _, pc := range codes {
		for _, id := range pc.PlanIDs {
			if !seen[id] {
				seen[id] = true
				ids = append(ids, id)
			}
		}
	}
	byID := map[string]planJSON{}
	if len(ids) > 0 {
		plans, err := s.Plans.Plans(c.Request().Context(), ids)
		if err != nil {
			return err
		}
		for _, p := range toPlansJSON(plans) {
			byID[p.ID] = p
		}
	}
	for i := range codes {
		codes[i].Plans = make([]planJSON, 0, len(codes[i].PlanIDs))
		for _, id := range codes[i].PlanIDs {
			codes[i].Plans = append(codes[i].Plans, byID[id])
		}
	}
	return nil
}

func (s *server) listPromoCodes(c echo.Context) error {
	limit, err := parseLimit(c)
	if err != nil {
		return err
	}
	expand, err := parseExpand(c)
	if err != nil {
		return err
	}
	f := promo.ListFilter{Status: promo.Status(c.QueryParam("status")), StartingAfter: c.QueryParam("starting_after"), Limit: limit,
		Code: c.QueryParam("code")}
	page, err := s.Catalog.List(c.Request().Context(), f)
	if err != nil {
		return err
	}
	out := listResponse[promoCodeResponse]{Object: "list", Data: make([]promoCodeResponse, 0, len(page.Data)),
		HasMore: page.HasMore, URL: "/v1/promo_codes"}
	for _, p := range page.Data {
		out.Data = append(out.Data, toPromoCodeResponse(p))
	}
	if expand {
		if err := s.expandPlans(c, out.Data); err != nil {
			return err
		}
	}
	return c.JSON(http.StatusOK, out)
}

// updatableFields may change on an existing code; immutableFields are refused
// with a message that a new code is needed.
var immutableFields = map[string]bool{
	"code": true, "promo_type": true, "amount_off": true, "currency": true, "duration": true,
	"promo_duration_months": true, "new_users_only": true, "existing_memberships_only": true, "plan_ids": true,
}

func (s *server) updatePromoCode(c echo.Context) error {
	var raw map[string]json.RawMessage
	if err := decodeJSON(c, &raw); err != nil {
		return err
	}
	in, err := parseUpdate(raw)
	if err != nil {
		return err
	}
	p, err := s.Catalog.Update(c.Request().Context(), c.Param("id"), in, c.Get(ctxReqKey).(string))
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, toPromoCodeResponse(p))
}

func parseUpdate(raw map[string]json.RawMessage) (promo.UpdateInput, error) {
	var in promo.UpdateInput
	for field, v := range raw {
		var err error
		switch field {
		case "status":
			in.Status, err = statusField(field, v)
		case "expiration_datetime":
			in.ExpirationSet = true
			in.Expiration, err = expirationField(field, v)
		case "stock":
			var n int64
			err = strictField(field, v, &n)
			in.Stock = &n
		case "unlimited_stock":
			var b bool
			err = strictField(field, v, &b)
			in.UnlimitedStock = &b
		case "metadata":
			in.Metadata, err = metadataPatchField(field, v)
		default:
			if !immutableFields[field] {
				return in, promo.Invalid(field, "unknown field %q", field)
			}
			in.Immutable = append(in.Immutable, field)
		}
		if err != nil {
			return in, err
		}
	}
	return in, nil
}

// statusField, expirationField and metadataPatchField read the fields an
// update of a promo code and of a campaign share.
func statusField(field string, v json.RawMessage) (*promo.Status, error) {
	var st promo.Status
	err := strictField(field, v, &st)
	return &st, err
}

// expirationField reads an RFC 3339 time or null (no expiry: nil).
func expirationField(field string, v json.RawMessage) (*time.Time, error) {
	var ts *string
	if err := strictField(field, v, &ts); err != nil || ts == nil {
		return nil, err
	}
	t, err := parseTime(field, *ts)
	return &t, err
}

// metadataPatchField reads a metadata patch: a null value (or "") deletes
// its key.
func metadataPatchField(field string, v json.RawMessage) (map[string]string, error) {
	var md map[string]*string
	err := strictField(field, v, &md)
	out := map[string]string{}
	for k, val := range md {
		if val != nil {
			out[k] = *val
		} else {
			out[k] = ""
		}
	}
	return out, err
}

// strictField decodes one field's JSON; null is refused except for pointers.
func strictField(field string, raw json.RawMessage, dst any) error {
	if string(raw) == "null" {
		if _, isPtr := dst.(**string); !isPtr {
			return promo.Invalid(field, "%s must not be null", field)
		}
	}
	if err := json.Unmarshal(raw, dst); err != nil {
		return jsonError(err, dst, field)
	}
	return nil
}
