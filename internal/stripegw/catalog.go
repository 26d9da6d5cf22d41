package stripegw

import (
	"context"
	"fmt"
	"maps"
	"net/http"
	"slices"
	"strconv"
	"strings"

	"github.com/stripe/stripe-go/v76"

	"github.com/billing-adapter/billing-adapter/internal/promo"
)

// Metric operation names.
const (
	opPriceRetrieve       = "price.retrieve"
	opCouponCreate        = "coupon.create"
	opCouponRetrieve      = "coupon.retrieve"
	opCouponUpdate        = "coupon.update"
	opPromotionCodeGet    = "promotion_code.retrieve"
	opPromotionCodeCreate = "promotion_code.create"
	opPromotionCodeList   = "promotion_code.list"
	opPromotionCodeUpdate = "promotion_code.update"
)

// MaxCouponName is Stripe's limit on a coupon's name; longer codes are cut
// (the full code is in the promotion code and in metadata).
const MaxCouponName = 40

// ResolvePlans retrieves each price and returns its product, in order. Any
// kind of price is accepted (one-time, yearly, ...): the catalog only needs
// the product for applies_to. A price Stripe does not know is a 400 on
// plan_ids.
func (g *Gateway) ResolvePlans(ctx context.Context, priceIDs []string) ([]string, error) {
	products := make([]string, len(priceIDs))
	for i, id := range priceIDs {
		if strings.TrimSpace(id) == "" {
			return nil, promo.Invalid("plan_ids", "plan_ids[%d] is empty", i)
		}
		var price *stripe.Price
		err := g.call(ctx, opPriceRetrieve, func() (err error) {
			price, err = g.api.Prices.Get(id, &stripe.PriceParams{Params: stripe.Params{Context: ctx}})
			return err
		})
		if err != nil {
			if se := stripeErr(err); se != nil && se.Code == stripe.ErrorCodeResourceMissing {
				e := promo.Invalid("plan_ids", "no Stripe price %s", id)
				e.StripeRequestID, e.StripeCode, e.Err = se.RequestID, string(se.Code), se
				return nil, e
			}
			return nil, err
		}
		if price.Product == nil || price.Product.ID == "" {
			return nil, &promo.Error{Code: promo.CodeStripeError, Message: "Stripe: price " + id + " has no product"}
		}
		products[i] = price.Product.ID
	}
	return products, nil
}

// CreateCoupon creates the coupon mirroring a code, with the fixed ID c.ID
// when given (Stripe then refuses a second coupon with that ID).
//
// percent_off is sent as the shortest decimal text of the percentage (1250 →
// "12.5", 3333 → "33.33"). stripe-go would format CouponParams.PercentOff
// with 4 fixed decimals ("12.5000"), so the value goes through Params.Extra
// instead.
func (g *Gateway) CreateCoupon(ctx context.Context, c promo.CouponSpec, idempotencyKey string) (string, error) {
	params := &stripe.CouponParams{
		Params:   stripe.Params{Context: ctx},
		Duration: stripe.String(string(c.Duration)),
		Metadata: withPromoCodeID(c.Metadata, c.PromoCodeID),
	}
	if c.ID != "" {
		params.ID = stripe.String(c.ID) // a fixed ID lets recovery find it (GetCoupon)
	}
	switch {
	case c.PercentOff > 0 && c.AmountOff == 0:
		params.AddExtra("percent_off", percentText(c.PercentOff))
	case c.AmountOff > 0 && c.PercentOff == 0 && c.Currency != "":
		params.AmountOff = stripe.Int64(c.AmountOff)
		params.Currency = stripe.String(strings.ToLower(c.Currency))
	default:
		return "", promo.Errorf(promo.CodeInternal,
			"coupon needs exactly one of percent_off or amount_off with currency (percent %d, amount %d %q)",
			c.PercentOff, c.AmountOff, c.Currency)
	}
	switch c.Duration {
	case promo.Once, promo.Forever:
	case promo.Repeating:
		if c.Months < 1 {
			return "", promo.Errorf(promo.CodeInternal, "repeating coupon needs at least 1 month, got %d", c.Months)
		}
		params.DurationInMonths = stripe.Int64(int64(c.Months))
	default:
		return "", promo.Errorf(promo.CodeInternal, "unknown coupon duration %q", c.Duration)
	}
	if c.Name != "" {
		params.Name = stripe.String(truncate(c.Name, MaxCouponName))
	}
	if len(c.ProductIDs) > 0 {
		params.AppliesTo = &stripe.CouponAppliesToParams{Products: stripe.StringSlice(dedup(c.ProductIDs))}
	}
	setIdempotencyKey(&params.Params, idempotencyKey)

	var coupon *stripe.Coupon
	err := g.call(ctx, opCouponCreate, func() (err error) {
		coupon, err = g.api.Coupons.New(params)
		return err
	})
	if err != nil {
		return "", err
	}
	return coupon.ID, nil
}

// CreatePromotionCode creates the customer-facing promotion code. When Stripe
// already has an active promotion code with this text the error is a 409
// (CodeConflict, param code) that wraps promo.ErrPromotionCodeTaken and the
// *stripe.Error.
func (g *Gateway) CreatePromotionCode(ctx context.Context, p promo.PromotionCodeSpec, idempotencyKey string) (string, error) {
	params := &stripe.PromotionCodeParams{
		Params:   stripe.Params{Context: ctx},
		Coupon:   stripe.String(p.CouponID),
		Code:     stripe.String(p.Code),
		Active:   stripe.Bool(p.Active), // a *bool: false is sent as "false"
		Metadata: withPromoCodeID(p.Metadata, p.PromoCodeID),
	}
	if p.ExpiresAt != nil {
		params.ExpiresAt = stripe.Int64(p.ExpiresAt.Unix())
	}
	if p.FirstTimeTransaction {
		params.Restrictions = &stripe.PromotionCodeRestrictionsParams{FirstTimeTransaction: stripe.Bool(true)}
	}
	if p.MaxRedemptions > 0 {
		params.MaxRedemptions = stripe.Int64(p.MaxRedemptions)
	}
	setIdempotencyKey(&params.Params, idempotencyKey)

	var pc *stripe.PromotionCode
	err := g.call(ctx, opPromotionCodeCreate, func() (err error) {
		pc, err = g.api.PromotionCodes.New(params)
		return err
	})
	if err != nil {
		if se := stripeErr(err); se != nil && p.Active && g.codeTaken(ctx, se, p.Code) {
			return "", &promo.Error{
				Code:            promo.CodeConflict,
				Param:           "code",
				Message:         "Stripe already has an active promotion code " + p.Code,
				StripeRequestID: se.RequestID,
				StripeCode:      string(se.Code),
				Err:             fmt.Errorf("%w: %w", promo.ErrPromotionCodeTaken, se),
			}
		}
		return "", err
	}
	return pc.ID, nil
}

// codeTaken explains Stripe refusing an active promotion code (a 400
// invalid_request_error on param code, which Stripe gives no error code) by
// looking: the text is taken when Stripe has an active promotion code with
// it, as Stripe keeps codes unique among active ones regardless of case.
// Another refusal on code (a malformed text) finds none. A failed look is
// not taken.
func (g *Gateway) codeTaken(ctx context.Context, se *stripe.Error, code string) bool {
	if se.Type != stripe.ErrorTypeInvalidRequest || se.HTTPStatusCode != http.StatusBadRequest || se.Param != "code" {
		return false
	}
	pc, err := g.firstPromotionCode(ctx, code, "", true)
	return err == nil && pc != nil
}

// GetCoupon reports whether the coupon exists; Stripe's resource_missing
// (which also covers a deleted coupon) is found=false, not an error.
func (g *Gateway) GetCoupon(ctx context.Context, id string) (bool, error) {
	if strings.TrimSpace(id) == "" {
		return false, nil
	}
	err := g.call(ctx, opCouponRetrieve, func() error {
		_, err := g.api.Coupons.Get(id, &stripe.CouponParams{Params: stripe.Params{Context: ctx}})
		return err
	})
	if err != nil {
		if se := stripeErr(err); se != nil && se.Code == stripe.ErrorCodeResourceMissing {
			return false, nil
		}
		return false, err
	}
	return true, nil
}

// FindPromotionCode looks up a promotion code with this text (Stripe matches
// it case-insensitively) on couponID ("" = any coupon), active or not. Stripe
// allows several promotion codes with one text as long as at most one is
// active (a rotation leaves inactive ones behind), so the active one wins;
// otherwise the newest is returned. That takes one list call, or two when no
// active one exists.
func (g *Gateway) FindPromotionCode(ctx context.Context, code, couponID string) (id string, active, found bool, err error) {
	pc, err := g.firstPromotionCode(ctx, code, couponID, true)
	if err == nil && pc == nil {
		pc, err = g.firstPromotionCode(ctx, code, couponID, false)
	}
	if err != nil || pc == nil {
		return "", false, false, err
	}
	return pc.ID, pc.Active, true, nil
}

// firstPromotionCode returns the newest promotion code with this text on
// couponID, only among active ones when onlyActive, or nil.
func (g *Gateway) firstPromotionCode(ctx context.Context, code, couponID string, onlyActive bool) (*stripe.PromotionCode, error) {
	params := &stripe.PromotionCodeListParams{
		ListParams: stripe.ListParams{Context: ctx, Limit: stripe.Int64(1), Single: true},
		Code:       stripe.String(code),
	}
	if couponID != "" {
		params.Coupon = stripe.String(couponID)
	}
	if onlyActive {
		params.Active = stripe.Bool(true)
	}
	var pc *stripe.PromotionCode
	err := g.call(ctx, opPromotionCodeList, func() error {
		it := g.api.PromotionCodes.List(params)
		if it.Next() {
			pc = it.PromotionCode()
		}
		return it.Err()
	})
	return pc, err
}

// UpdatePromotionCode changes active and/or metadata. Metadata is sent as
// given: a key with an empty value is sent as "metadata[key]=" which unsets
// it in Stripe (stripe-go encodes map entries even when empty). An update
// with nothing to change makes no call.
func (g *Gateway) UpdatePromotionCode(ctx context.Context, id string, u promo.PromotionCodeUpdate, idempotencyKey string) error {
	if u.Active == nil && len(u.Metadata) == 0 {
		return nil
	}
	if strings.TrimSpace(id) == "" {
		return promo.Errorf(promo.CodeInternal, "promotion code update without an ID")
	}
	params := &stripe.PromotionCodeParams{
		Params: stripe.Params{Context: ctx},
		Active: u.Active,
	}
	if len(u.Metadata) > 0 {
		params.Metadata = maps.Clone(u.Metadata)
	}
	setIdempotencyKey(&params.Params, idempotencyKey)
	return g.call(ctx, opPromotionCodeUpdate, func() error {
		_, err := g.api.PromotionCodes.Update(id, params)
		return err
	})
}

// percentText renders hundredths of a percent as the shortest decimal text
// of the nearest float64 (1250 → "12.5", 3333 → "33.33", 10000 → "100").
func percentText(hundredths int64) string {
	f, err := strconv.ParseFloat(promo.FormatDecimal(hundredths, 2), 64)
	if err != nil { // cannot happen: FormatDecimal writes plain decimals
		panic(err)
	}
	return strconv.FormatFloat(f, 'f', -1, 64)
}

// withPromoCodeID copies md and adds the promo code link when missing.
func withPromoCodeID(md map[string]string, promoCodeID string) map[string]string {
	out := maps.Clone(md)
	if promoCodeID != "" {
		if out == nil {
			out = map[string]string{}
		}
		if _, ok := out[promo.MetaPromoCodeID]; !ok {
			out[promo.MetaPromoCodeID] = promoCodeID
		}
	}
	if len(out) == 0 {
		return nil
	}
	return out
}

func setIdempotencyKey(p *stripe.Params, key string) {
	if key != "" {
		p.SetIdempotencyKey(key)
	}
}

func truncate(s string, n int) string {
	r := []rune(s)
	if len(r) <= n {
		return s
	}
	return string(r[:n])
}

func dedup(ids []string) []string {
	out := make([]string, 0, len(ids))
	for _, id := range ids {
		if !slices.Contains(out, id) {
			out = append(out, id)
		}
	}
	return out
}

// UpdateCouponMetadata sets the coupon's metadata keys given; an empty value
// unsets its key. Coupons allow no other change that matters here.
func (g *Gateway) UpdateCouponMetadata(ctx context.Context, id string, metadata map[string]string, idempotencyKey string) error {
	if len(metadata) == 0 {
		return nil
	}
	params := &stripe.CouponParams{Params: stripe.Params{Context: ctx}, Metadata: maps.Clone(metadata)}
	setIdempotencyKey(&params.Params, idempotencyKey)
	return g.call(ctx, opCouponUpdate, func() error {
		_, err := g.api.Coupons.Update(id, params)
		return err
	})
}

// GetPromotionCode reads a promotion code's active flag.
func (g *Gateway) GetPromotionCode(ctx context.Context, id string) (bool, error) {
	var pc *stripe.PromotionCode
	err := g.call(ctx, opPromotionCodeGet, func() (err error) {
		pc, err = g.api.PromotionCodes.Get(id, &stripe.PromotionCodeParams{Params: stripe.Params{Context: ctx}})
		return err
	})
	if err != nil {
		return false, err
	}
	return pc.Active, nil
}
