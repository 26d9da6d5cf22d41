package httpapi

import (
	"encoding/csv"
	"encoding/json"
	"math"
	"net/http"
	"strconv"

	"github.com/billing-adapter/billing-adapter/internal/promo"
	"github.com/labstack/echo/v4"
)

// createCampaignRequest is the body of POST /v1/campaigns: the terms of a
// promo code (same names and rules) without code and stock, plus the
// campaign's own fields.
type createCampaignRequest struct {
	Name       string `json:"name"`
	Prefix     string `json:"prefix"`
	Count      *int64 `json:"count"`
	CodeLength *int64 `json:"code_length"`
	termsRequest
	// OncePerCustomer: nil (absent or null) = true, one code of the
	// campaign per customer; false lets a customer redeem several codes
	// (each single-use, each on its own subscription).
	OncePerCustomer *bool `json:"once_per_customer"`
}

// campaignResponse is the campaign resource.
type campaignResponse struct {
	ID          string  `json:"id"`
	Object      string  `json:"object"`
	Name        string  `json:"name"`
	Prefix      string  `json:"prefix"`
	Count       int     `json:"count"`
	CodeLength  int     `json:"code_length"`
	EntropyBits float64 `json:"entropy_bits"`
	State       string  `json:"state"`
	Generated   int     `json:"generated"`
	Mirrored    int     `json:"mirrored"`
	// Redeemed counts the codes whose single use a redemption holds now.
	Redeemed int `json:"redeemed"`
	termsJSON
	Status promo.Status `json:"status"`
	// StatusReason is stripe_coupon_deleted once the campaign's coupon was
	// deleted in Stripe (inactive for good), else null.
	StatusReason *string           `json:"status_reason"`
	Metadata     map[string]string `json:"metadata"`
	CreatedAt    string            `json:"created_at"`
	UpdatedAt    string            `json:"updated_at"`
	Stripe       struct {
		CouponID string `json:"coupon_id"`
	} `json:"stripe"`
}

func toCampaignResponse(c *promo.Campaign) campaignResponse {
	p := &c.Terms
	r := campaignResponse{
		ID: c.ID, Object: "campaign", Name: c.Name, Prefix: c.Prefix, Count: c.Count, CodeLength: c.CodeLength,
		EntropyBits: math.Round(promo.CodeEntropyBits(c.CodeLength)*10) / 10, State: string(c.State),
		Generated: c.Generated, Mirrored: c.Mirrored, Redeemed: c.Redeemed,
		termsJSON: toTermsJSON(p), Status: p.Status, StatusReason: optString(p.StatusReason), Metadata: p.Metadata,
		CreatedAt: rfc3339(c.CreatedAt), UpdatedAt: rfc3339(c.UpdatedAt),
	}
	r.Stripe.CouponID = p.Stripe.CouponID
	if r.Metadata == nil {
		r.Metadata = map[string]string{}
	}
	return r
}

func (s *server) createCampaign(c echo.Context) error {
	var req createCampaignRequest
	if err := decodeJSON(c, &req); err != nil {
		return err
	}
	if req.Count == nil {
		return promo.Invalid("count", "count is required: how many codes to generate (1 to %d)", promo.MaxCampaignCodes)
	}
	terms, err := req.input()
	if err != nil {
		return err
	}
	in := promo.CampaignInput{Name: req.Name, Prefix: req.Prefix, Count: *req.Count, CodeLength: req.CodeLength,
		OncePerCustomer: req.OncePerCustomer, Terms: terms}
	cmp, err := s.Campaigns.Create(c.Request().Context(), in, c.Get(ctxReqKey).(string))
	if err != nil {
		return err
	}
	c.Response().Header().Set("Location", "/v1/campaigns/"+cmp.ID)
	return c.JSON(http.StatusAccepted, toCampaignResponse(cmp))
}

func (s *server) getCampaign(c echo.Context) error {
	cmp, err := s.Campaigns.Get(c.Request().Context(), c.Param("id"))
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, toCampaignResponse(cmp))
}

func (s *server) listCampaigns(c echo.Context) error {
	limit, err := parseLimit(c)
	if err != nil {
		return err
	}
	f := promo.ListFilter{Status: promo.Status(c.QueryParam("status")), StartingAfter: c.QueryParam("starting_after"), Limit: limit}
	page, err := s.Campaigns.List(c.Request().Context(), f)
	if err != nil {
		return err
	}
	out := listResponse[campaignResponse]{Object: "list", Data: make([]campaignResponse, 0, len(page.Data)),
		HasMore: page.HasMore, URL: "/v1/campaigns"}
	for _, cmp := range page.Data {
		out.Data = append(out.Data, toCampaignResponse(cmp))
	}
	return c.JSON(http.StatusOK, out)
}

// campaignImmutable are fields of a campaign's terms an update may not
// change (its Stripe coupon is immutable).
var campaignImmutable = map[string]bool{
	"name": true, "prefix": true, "count": true, "code_length": true,
	"promo_type": true, "amount_off": true, "currency": true, "duration": true, "promo_duration_months": true,
	"new_users_only": true, "existing_memberships_only": true, "plan_ids": true, "once_per_customer": true,
}

func (s *server) updateCampaign(c echo.Context) error {
	var raw map[string]json.RawMessage
	if err := decodeJSON(c, &raw); err != nil {
		return err
	}
	var u promo.CampaignUpdate
	for field, v := range raw {
		var err error
		switch field {
		case "status":
			u.Status, err = statusField(field, v)
		case "expiration_datetime":
			u.ExpirationSet = true
			u.Expiration, err = expirationField(field, v)
		case "metadata":
			u.Metadata, err = metadataPatchField(field, v)
		default:
			if !campaignImmutable[field] {
				return promo.Invalid(field, "unknown field %q", field)
			}
			u.Immutable = append(u.Immutable, field)
		}
		if err != nil {
			return err
		}
	}
	cmp, err := s.Campaigns.Update(c.Request().Context(), c.Param("id"), u)
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, toCampaignResponse(cmp))
}

// campaignCodeResponse is one code of a campaign.
type campaignCodeResponse struct {
	Object                string  `json:"object"`
	Code                  string  `json:"code"`
	Redeemed              bool    `json:"redeemed"`
	RedemptionID          *string `json:"redemption_id"`
	Customer              *string `json:"customer"`
	Subscription          *string `json:"subscription"`
	RedeemedAt            *string `json:"redeemed_at"`
	StripePromotionCodeID *string `json:"stripe_promotion_code_id"`
	// StripePromotionCodeActive is the active flag the promotion code is
	// known to carry in Stripe (null: no promotion code, or not known).
	StripePromotionCodeActive *bool `json:"stripe_promotion_code_active"`
}

func toCampaignCode(cc promo.CampaignCode) campaignCodeResponse {
	r := campaignCodeResponse{Object: "campaign_code", Code: cc.Code, Redeemed: cc.Redeemed,
		StripePromotionCodeID: optString(cc.PromotionCodeID), StripePromotionCodeActive: cc.PromotionCodeActive}
	if rd := cc.Redemption; rd != nil {
		at := rfc3339(rd.At)
		r.RedemptionID, r.Customer, r.Subscription, r.RedeemedAt = optString(rd.ID), optString(rd.Customer),
			optString(rd.Subscription), &at
	}
	return r
}

func (s *server) listCampaignCodes(c echo.Context) error {
	limit, err := parseLimit(c)
	if err != nil {
		return err
	}
	f := promo.CampaignCodesFilter{Limit: limit, StartingAfter: c.QueryParam("starting_after")}
	if v := c.QueryParam("redeemed"); v != "" {
		b, err := strconv.ParseBool(v)
		if err != nil || (v != "true" && v != "false") {
			return promo.Invalid("redeemed", "redeemed must be true or false")
		}
		f.Redeemed = &b
	}
	cmp, page, err := s.Campaigns.Codes(c.Request().Context(), c.Param("id"), f)
	if err != nil {
		return err
	}
	out := listResponse[campaignCodeResponse]{Object: "list", Data: make([]campaignCodeResponse, 0, len(page.Data)),
		HasMore: page.HasMore, URL: "/v1/campaigns/" + cmp.ID + "/codes"}
	for _, cc := range page.Data {
		out.Data = append(out.Data, toCampaignCode(cc))
	}
	return c.JSON(http.StatusOK, out)
}

// campaignCSVHeader is the first line of the export.
var campaignCSVHeader = []string{"code", "state", "customer", "subscription", "redemption_id", "redeemed_at", "stripe_promotion_code_id"}

// exportCampaignCodes streams every code of a campaign as CSV, one chunk
// (1,000 codes) read and written at a time, so its memory does not grow
// with the campaign. The status line is sent before the first row; an
// error after it (Redis lost) aborts the connection, so the client sees a
// broken transfer, never a short file that looks complete.
func (s *server) exportCampaignCodes(c echo.Context) error {
	ctx := c.Request().Context()
	cmp, err := s.Campaigns.Get(ctx, c.Param("id"))
	if err != nil {
		return err
	}
	h := c.Response().Header()
	h.Set(echo.HeaderContentType, "text/csv; charset=utf-8")
	h.Set(echo.HeaderContentDisposition, `attachment; filename="`+cmp.ID+`-codes.csv"`)
	c.Response().WriteHeader(http.StatusOK)
	w := csv.NewWriter(c.Response())
	_ = w.Write(campaignCSVHeader)
	n := 0
	err = s.Campaigns.Store.EachCampaignCode(ctx, cmp, func(cc promo.CampaignCode) error {
		row := []string{cc.Code, "unredeemed", "", "", "", "", cc.PromotionCodeID}
		if rd := cc.Redemption; rd != nil {
			row[1], row[2], row[3], row[4], row[5] = "redeemed", rd.Customer, rd.Subscription, rd.ID, rfc3339(rd.At)
		}
		n++
		if err := w.Write(row); err != nil {
			return err
		}
		if n%promo.GenerationBatch == 0 {
			w.Flush()
			c.Response().Flush()
		}
		return w.Error()
	})
	w.Flush()
	if err != nil {
		s.log.ErrorContext(ctx, "campaign export cut short", "campaign_id", cmp.ID, "rows", n, "err", err.Error())
		panic(http.ErrAbortHandler)
	}
	c.Response().Flush()
	return nil
}

// mirrorCampaignCodes is POST /v1/campaigns/{id}/promotion_codes
// {codes: [...]}: a Stripe promotion code for each (for Stripe Checkout),
// made in the background (→ 202, progress in mirrored).
func (s *server) mirrorCampaignCodes(c echo.Context) error {
	var req struct {
		Codes []string `json:"codes"`
	}
	if err := decodeJSON(c, &req); err != nil {
		return err
	}
	cmp, err := s.Campaigns.Mirror(c.Request().Context(), c.Param("id"), req.Codes)
	if err != nil {
		return err
	}
	return c.JSON(http.StatusAccepted, toCampaignResponse(cmp))
}
