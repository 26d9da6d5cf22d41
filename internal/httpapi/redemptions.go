package httpapi

import (
	"encoding/json"
	"net/http"
	"strconv"
	"time"

	"github.com/billing-adapter/billing-adapter/internal/promo"
	"github.com/labstack/echo/v4"
)

// The checkout-scoped endpoints the payment page calls, and the admin's view
// of a code's ledger.

type validateRequest struct {
	Code         string `json:"code"`
	Customer     string `json:"customer"`
	Price        string `json:"price"`
	Subscription string `json:"subscription"`
}

type validateResponse struct {
	Object    string            `json:"object"`
	Valid     bool              `json:"valid"`
	Reason    *string           `json:"reason"`
	Message   *string           `json:"message"`
	PromoCode *promoCodeRef     `json:"promo_code"`
	Discount  *discountTerms    `json:"discount"`
	Preview   *invoicePreviewJS `json:"preview"`
	// EligiblePlans: with reason plan_not_eligible, the plans the code
	// applies to (so the page can offer them); null otherwise.
	EligiblePlans []planJSON `json:"eligible_plans"`
}

type promoCodeRef struct {
	ID   string `json:"id"`
	Code string `json:"code"`
}

// discountTerms is what a code takes off, per invoice.
type discountTerms struct {
	PromoType  promo.PromoType `json:"promo_type"`
	PercentOff *json.Number    `json:"percent_off,omitempty"`
	AmountOff  *int64          `json:"amount_off,omitempty"` // minor units
	Currency   *string         `json:"currency,omitempty"`
	Duration   promo.Duration  `json:"duration"`
	// AppliesToCycles is how many monthly invoices are discounted; null = every one.
	AppliesToCycles *int `json:"applies_to_cycles"`
}

type invoicePreviewJS struct {
	Currency       string `json:"currency"`
	AmountBefore   int64  `json:"amount_before"`
	AmountAfter    int64  `json:"amount_after"`
	DiscountAmount int64  `json:"discount_amount"`
	PeriodStart    string `json:"period_start"`
	PeriodEnd      string `json:"period_end"`
}

func toDiscountTerms(p *promo.PromoCode) *discountTerms {
	var v discountValues
	return v.terms(p)
}

// discountValues holds discountTerms and what its pointers point to, so
// that one allocation (or none, on the stack) makes all of them.
type discountValues struct {
	t          discountTerms
	percentOff json.Number
	amountOff  int64
	currency   string
	cycles     int
}

// terms fills v with p's terms and returns them; they point into v.
func (v *discountValues) terms(p *promo.PromoCode) *discountTerms {
	t := &v.t
	*t = discountTerms{PromoType: p.PromoType, Duration: p.Duration}
	if p.PromoType == promo.Percentage {
		v.percentOff = json.Number(p.AmountOffDecimal())
		t.PercentOff = &v.percentOff
	} else {
		v.amountOff, v.currency = p.AmountOff, p.Currency
		t.AmountOff, t.Currency = &v.amountOff, &v.currency
	}
	switch p.Duration {
	case promo.Once:
		v.cycles = 1
		t.AppliesToCycles = &v.cycles
	case promo.Repeating:
		v.cycles = p.DurationMonths
		t.AppliesToCycles = &v.cycles
	}
	return t
}

// validateCall is one validate request and its answer, with every value the
// answer points to: one allocation instead of one per value.
type validateCall struct {
	req      validateRequest
	out      validateResponse
	ref      promoCodeRef
	discount discountValues
	reason   string
	message  string
	preview  invoicePreviewJS
}

func (s *server) validatePromoCode(c echo.Context) error {
	v := new(validateCall)
	req := &v.req
	if err := decodeJSONFast(c, req, func(body []byte) bool { return parseValidateRequest(body, req) }); err != nil {
		return err
	}
	if err := s.guard(c, req.Customer); err != nil {
		return err
	}
	res, err := s.Redeemer.Validate(c.Request().Context(), promo.ValidateInput{
		Code: req.Code, Customer: req.Customer, Price: req.Price, Subscription: req.Subscription})
	if err != nil {
		s.observeRedemption("validate", err)
		return err
	}
	if res.Reason != nil {
		s.Metrics.ObserveRedemption("validate", "refused", string(res.Reason.Code))
	} else {
		s.Metrics.ObserveRedemption("validate", "ok", "")
	}
	out := &v.out
	*out = validateResponse{Object: "promo_code_validation", Valid: res.Valid}
	if res.Code != nil {
		v.ref = promoCodeRef{ID: res.Code.ID, Code: res.Code.Code}
		out.PromoCode = &v.ref
		out.Discount = v.discount.terms(res.Code)
	}
	if res.Reason != nil {
		v.reason, v.message = string(res.Reason.Code), res.Reason.Message
		out.Reason, out.Message = &v.reason, &v.message
	}
	if res.EligiblePlans != nil {
		out.EligiblePlans = toPlansJSON(res.EligiblePlans)
	}
	if pv := res.Preview; pv != nil {
		v.preview = invoicePreviewJS{Currency: pv.Currency, AmountBefore: pv.Subtotal, AmountAfter: pv.Total,
			DiscountAmount: pv.DiscountAmount, PeriodStart: rfc3339(pv.PeriodStart), PeriodEnd: rfc3339(pv.PeriodEnd)}
		out.Preview = &v.preview
	}
	return writeValidate(c, out)
}

type createSubscriptionRequest struct {
	Customer  string            `json:"customer"`
	Price     string            `json:"price"`
	PromoCode string            `json:"promo_code"`
	Quantity  int64             `json:"quantity"`
	Metadata  map[string]string `json:"metadata"`
}

type applyPromoCodeRequest struct {
	Code     string `json:"code"`
	Customer string `json:"customer"`
}

// subscriptionResponse answers the subscription endpoints.
type subscriptionResponse struct {
	ID                 string              `json:"id"`
	Object             string              `json:"object"`
	Customer           string              `json:"customer"`
	Status             string              `json:"status"`
	CurrentPeriodStart string              `json:"current_period_start"`
	CurrentPeriodEnd   string              `json:"current_period_end"`
	Discount           *discountJSON       `json:"discount"`
	Redemption         *redemptionResponse `json:"redemption"`
	// EffectiveAt is when the discount starts to apply: the first invoice of
	// a new subscription, the next monthly invoice of an existing one.
	EffectiveAt *string `json:"effective_at"`
}

type discountJSON struct {
	ID            string         `json:"id"`
	PromoCodeID   string         `json:"promo_code_id,omitempty"`
	PromoCode     string         `json:"promo_code,omitempty"`
	Coupon        string         `json:"coupon"`
	PromotionCode string         `json:"promotion_code"`
	Start         string         `json:"start"`
	End           *string        `json:"end"`
	Terms         *discountTerms `json:"terms,omitempty"`
}

// redemptionResponse is one ledger line.
type redemptionResponse struct {
	ID                string           `json:"id"`
	Object            string           `json:"object"`
	PromoCodeID       string           `json:"promo_code_id"`
	PromoCode         string           `json:"promo_code"`
	Customer          string           `json:"customer"`
	Subscription      *string          `json:"subscription"`
	StripeDiscountID  *string          `json:"stripe_discount_id"`
	Source            string           `json:"source"`
	State             string           `json:"state"`
	CreatedAt         string           `json:"created_at"`
	ConfirmedAt       *string          `json:"confirmed_at"`
	ActivatedAt       *string          `json:"activated_at"`
	EndedAt           *string          `json:"ended_at"`
	EndedInStripe     bool             `json:"ended_in_stripe"`
	EffectiveAt       *string          `json:"effective_at"`
	EndReason         *string          `json:"end_reason"`
	StockReturned     bool             `json:"stock_returned"`
	Flags             []string         `json:"flags"`
	Cycles            int              `json:"cycles"`
	DiscountedAmounts map[string]int64 `json:"discounted_amounts"`
}

func optTime(t time.Time) *string {
	if t.IsZero() {
		return nil
	}
	s := rfc3339(t)
	return &s
}

func optString(v string) *string {
	if v == "" {
		return nil
	}
	return &v
}

func toRedemptionResponse(r *promo.Redemption, code string) *redemptionResponse {
	if r.UniqueCode != "" {
		code = r.UniqueCode // a campaign's line names the code it took (promo_code_id is the campaign)
	}
	out := &redemptionResponse{
		ID: r.ID, Object: "promo_code_redemption", PromoCodeID: r.PromoCodeID, PromoCode: code,
		Customer: r.Customer, Subscription: optString(r.Subscription), StripeDiscountID: optString(r.DiscountID),
		Source: string(r.Source), State: string(r.State), CreatedAt: rfc3339(r.CreatedAt),
		ConfirmedAt: optTime(r.ConfirmedAt), ActivatedAt: optTime(r.ActivatedAt), EndedAt: optTime(r.EndedAt),
		EndedInStripe: r.EndedInStripe, EffectiveAt: optTime(r.EffectiveAt), EndReason: optString(r.EndReason), StockReturned: r.StockReturned,
		Flags: r.Flags, Cycles: r.Cycles, DiscountedAmounts: r.Discounted,
	}
	if out.Flags == nil {
		out.Flags = []string{}
	}
	if out.DiscountedAmounts == nil {
		out.DiscountedAmounts = map[string]int64{}
	}
	return out
}

func toSubscriptionResponse(res *promo.ApplyResult) subscriptionResponse {
	sub := res.Subscription
	out := subscriptionResponse{ID: sub.ID, Object: "subscription", Customer: sub.Customer, Status: sub.Status,
		CurrentPeriodStart: rfc3339(sub.CurrentPeriodStart), CurrentPeriodEnd: rfc3339(sub.CurrentPeriodEnd)}
	if d := sub.Discount; d != nil {
		out.Discount = &discountJSON{ID: d.ID, Coupon: d.CouponID, PromotionCode: d.PromotionCodeID,
			Start: rfc3339(d.Start), End: optTime(d.End)}
		if res.Code != nil && d.CouponID == res.Code.Stripe.CouponID {
			out.Discount.PromoCodeID, out.Discount.PromoCode = res.Code.ID, res.Code.Code
			out.Discount.Terms = toDiscountTerms(res.Code)
		}
	}
	if res.Redemption != nil {
		out.Redemption = toRedemptionResponse(res.Redemption, res.Code.Code)
		out.EffectiveAt = optTime(res.Redemption.EffectiveAt)
	}
	return out
}

func (s *server) createSubscription(c echo.Context) error {
	var req createSubscriptionRequest
	if err := decodeJSON(c, &req); err != nil {
		return err
	}
	if req.PromoCode != "" { // a subscription without a code tries no code text
		if err := s.guard(c, req.Customer); err != nil {
			return err
		}
	}
	res, err := s.Redeemer.Subscribe(c.Request().Context(), promo.SubscribeInput{
		Customer: req.Customer, Price: req.Price, Quantity: req.Quantity, PromoCode: req.PromoCode, Metadata: req.Metadata,
	}, c.Get(ctxReqKey).(string))
	if req.PromoCode != "" {
		s.observeRedemption("subscribe", err)
	}
	if err != nil {
		return err
	}
	return c.JSON(http.StatusCreated, toSubscriptionResponse(res))
}

func (s *server) applyPromoCode(c echo.Context) error {
	var req applyPromoCodeRequest
	if err := decodeJSON(c, &req); err != nil {
		return err
	}
	subject := req.Customer
	if subject == "" {
		subject = c.Param("id") // the page vouches for the subscription: limit it
	}
	if err := s.guard(c, subject); err != nil {
		return err
	}
	res, err := s.Redeemer.Apply(c.Request().Context(), promo.ApplyInput{
		Subscription: c.Param("id"), Code: req.Code, Customer: req.Customer,
	}, c.Get(ctxReqKey).(string))
	s.observeRedemption("apply", err)
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, toSubscriptionResponse(res))
}

func (s *server) removePromoCode(c echo.Context) error {
	res, err := s.Redeemer.Remove(c.Request().Context(), c.Param("id"), c.Get(ctxReqKey).(string))
	s.observeRedemption("remove", err)
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, map[string]any{
		"object": "promo_code_removal", "subscription": c.Param("id"),
		"redemption": toRedemptionResponse(res.Redemption, res.Code.Code),
	})
}

func (s *server) listRedemptions(c echo.Context) error {
	limit, err := parseLimit(c)
	if err != nil {
		return err
	}
	ctx := c.Request().Context()
	p, err := s.Catalog.Get(ctx, c.Param("id"))
	if err != nil {
		return err
	}
	page, err := s.Redeemer.ListRedemptions(ctx, p.ID, limit, c.QueryParam("starting_after"))
	if err != nil {
		return err
	}
	out := listResponse[*redemptionResponse]{Object: "list", Data: make([]*redemptionResponse, 0, len(page.Data)),
		HasMore: page.HasMore, URL: "/v1/promo_codes/" + p.ID + "/redemptions"}
	for _, r := range page.Data {
		out.Data = append(out.Data, toRedemptionResponse(r, p.Code))
	}
	return c.JSON(http.StatusOK, out)
}

// observeRedemption counts one redemption request by its outcome: ok, a
// refusal of the code (reason: the refusal code) or another error (reason:
// its error code). Replays of a saved answer are not counted again.
func (s *server) observeRedemption(operation string, err error) {
	switch {
	case err == nil:
		s.Metrics.ObserveRedemption(operation, "ok", "")
	case promo.IsRefusal(promo.CodeOf(err)):
		s.Metrics.ObserveRedemption(operation, "refused", string(promo.CodeOf(err)))
	default:
		s.Metrics.ObserveRedemption(operation, "error", string(promo.CodeOf(err)))
	}
}

// parseLimit reads the list endpoints' limit (1-100, default 10).
func parseLimit(c echo.Context) (int, error) {
	l := c.QueryParam("limit")
	if l == "" {
		return 10, nil
	}
	n, err := strconv.Atoi(l)
	if err != nil || n < 1 || n > 100 {
		return 0, promo.Invalid("limit", "limit must be an integer between 1 and 100")
	}
	return n, nil
}

// getSubscriptionPromoCode answers GET /v1/subscriptions/{id}/promo_code:
// the subscription's live ledger line, or 404.
func (s *server) getSubscriptionPromoCode(c echo.Context) error {
	rd, p, err := s.Redeemer.SubscriptionRedemption(c.Request().Context(), c.Param("id"), c.QueryParam("customer"))
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, toRedemptionResponse(rd, p.Code))
}
