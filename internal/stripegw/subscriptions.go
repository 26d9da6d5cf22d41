package stripegw

import (
	"context"
	"maps"
	"time"

	"github.com/stripe/stripe-go/v76"

	"github.com/billing-adapter/billing-adapter/internal/promo"
)

// Metric operation names of the redemption calls.
const (
	opSubscriptionRetrieve       = "subscription.retrieve"
	opSubscriptionCreate         = "subscription.create"
	opSubscriptionUpdate         = "subscription.update"
	opSubscriptionList           = "subscription.list"
	opSubscriptionDeleteDiscount = "subscription.delete_discount"
	opInvoiceUpcoming            = "invoice.upcoming"
)

var _ promo.BillingGateway = (*Gateway)(nil)

// withPromotionCode is the one place that decides how a promotion code is put
// on a subscription. API version 2023-10-16 takes the single promotion_code
// parameter on create and update; moving to discounts[] for newer versions
// changes only this function (and previewDiscount).
// A campaign's codes have no promotion code each: they go on with the
// campaign's coupon (the single coupon parameter of 2023-10-16; discounts[]
// with a coupon later), the unique code named in the subscription's
// metadata (promo.MetaPromoCode).
func withPromotionCode(p *stripe.SubscriptionParams, promotionCodeID string) {
	p.PromotionCode = stripe.String(promotionCodeID)
}

// withCoupon is withPromotionCode for a campaign's coupon.
func withCoupon(p *stripe.SubscriptionParams, couponID string) {
	p.Coupon = stripe.String(couponID)
}

// previewDiscount puts a promotion code, or else a coupon, on an
// upcoming-invoice preview (2023-10-16 has no top-level promotion_code
// there, only discounts[]).
func previewDiscount(p *stripe.InvoiceUpcomingParams, promotionCodeID, couponID string) {
	if promotionCodeID != "" {
		p.Discounts = []*stripe.InvoiceDiscountParams{{PromotionCode: stripe.String(promotionCodeID)}}
		return
	}
	p.Discounts = []*stripe.InvoiceDiscountParams{{Coupon: stripe.String(couponID)}}
}

// GetSubscription reads a subscription with its latest invoice (one call).
func (g *Gateway) GetSubscription(ctx context.Context, id string) (*promo.Subscription, error) {
	params := &stripe.SubscriptionParams{Params: stripe.Params{Context: ctx}}
	params.AddExpand("latest_invoice")
	var sub *stripe.Subscription
	err := g.call(ctx, opSubscriptionRetrieve, func() (err error) {
		sub, err = g.api.Subscriptions.Get(id, params)
		return err
	})
	if err != nil {
		return nil, g.redemptionError(ctx, err, redemption{})
	}
	return toSubscription(sub), nil
}

// CreateSubscription creates a monthly subscription, with the promotion
// code's discount on its first invoice when one is given.
func (g *Gateway) CreateSubscription(ctx context.Context, s promo.SubscriptionSpec, idempotencyKey string) (*promo.Subscription, error) {
	params := &stripe.SubscriptionParams{
		Params:   stripe.Params{Context: ctx},
		Customer: stripe.String(s.Customer),
		Items:    []*stripe.SubscriptionItemsParams{{Price: stripe.String(s.Price), Quantity: stripe.Int64(s.Quantity)}},
	}
	if len(s.Metadata) > 0 {
		params.Metadata = maps.Clone(s.Metadata)
	}
	switch {
	case s.PromotionCodeID != "":
		withPromotionCode(params, s.PromotionCodeID)
	case s.CouponID != "":
		withCoupon(params, s.CouponID)
	}
	setIdempotencyKey(&params.Params, idempotencyKey)
	var sub *stripe.Subscription
	err := g.call(ctx, opSubscriptionCreate, func() (err error) {
		sub, err = g.api.Subscriptions.New(params)
		return err
	})
	if err != nil {
		return nil, g.redemptionError(ctx, err, redemption{promotionCode: s.PromotionCodeID, customer: s.Customer})
	}
	return toSubscription(sub), nil
}

// ApplyPromotionCode puts the promotion code on an existing subscription.
// proration_behavior=none: a discount never prorates the current period, and
// saying so keeps any other change out of this call.
func (g *Gateway) ApplyPromotionCode(ctx context.Context, id, promotionCodeID string, metadata map[string]string, idempotencyKey string) (*promo.Subscription, error) {
	return g.applyDiscount(ctx, id, promotionCodeID, "", metadata, idempotencyKey)
}

// ApplyCoupon puts a campaign's coupon on an existing subscription, as
// ApplyPromotionCode does a promotion code.
func (g *Gateway) ApplyCoupon(ctx context.Context, id, couponID string, metadata map[string]string, idempotencyKey string) (*promo.Subscription, error) {
	return g.applyDiscount(ctx, id, "", couponID, metadata, idempotencyKey)
}

func (g *Gateway) applyDiscount(ctx context.Context, id, promotionCodeID, couponID string, metadata map[string]string, idempotencyKey string) (*promo.Subscription, error) {
	params := &stripe.SubscriptionParams{
		Params:            stripe.Params{Context: ctx},
		ProrationBehavior: stripe.String("none"),
	}
	if len(metadata) > 0 {
		params.Metadata = maps.Clone(metadata)
	}
	if promotionCodeID != "" {
		withPromotionCode(params, promotionCodeID)
	} else {
		withCoupon(params, couponID)
	}
	setIdempotencyKey(&params.Params, idempotencyKey)
	var sub *stripe.Subscription
	err := g.call(ctx, opSubscriptionUpdate, func() (err error) {
		sub, err = g.api.Subscriptions.Update(id, params)
		return err
	})
	if err != nil {
		return nil, g.redemptionError(ctx, err, redemption{promotionCode: promotionCodeID, subscription: id})
	}
	return toSubscription(sub), nil
}

// RemoveDiscount deletes the subscription's discount. Stripe answering that
// there is none is removed=false, not an error.
func (g *Gateway) RemoveDiscount(ctx context.Context, id, idempotencyKey string) (bool, error) {
	params := &stripe.SubscriptionDeleteDiscountParams{Params: stripe.Params{Context: ctx}}
	setIdempotencyKey(&params.Params, idempotencyKey)
	err := g.call(ctx, opSubscriptionDeleteDiscount, func() error {
		_, err := g.api.Subscriptions.DeleteDiscount(id, params)
		return err
	})
	if se := stripeErr(err); se != nil && se.Code == stripe.ErrorCodeResourceMissing && se.Param == "discount" {
		return false, nil
	}
	if err != nil {
		return false, g.redemptionError(ctx, err, redemption{})
	}
	return true, nil
}

// PreviewInvoice asks for the next invoice with the promotion code applied:
// the subscription's next one, or the first one of a new subscription of the
// customer to the price.
func (g *Gateway) PreviewInvoice(ctx context.Context, p promo.PreviewSpec) (*promo.InvoicePreview, error) {
	params := &stripe.InvoiceUpcomingParams{Params: stripe.Params{Context: ctx}}
	if p.Subscription != "" {
		// Only the subscription: the caller compares its customer, so that
		// someone else's subscription is a customer_mismatch, not a 400.
		params.Subscription = stripe.String(p.Subscription)
	} else {
		params.Customer = stripe.String(p.Customer)
		params.SubscriptionItems = []*stripe.SubscriptionItemsParams{{Price: stripe.String(p.Price), Quantity: stripe.Int64(1)}}
	}
	if p.PromotionCodeID != "" || p.CouponID != "" {
		previewDiscount(params, p.PromotionCodeID, p.CouponID)
	}
	var in *stripe.Invoice
	err := g.call(ctx, opInvoiceUpcoming, func() (err error) {
		in, err = g.api.Invoices.Upcoming(params)
		return err
	})
	if err != nil {
		rd := redemption{promotionCode: p.PromotionCodeID, subscription: p.Subscription}
		if p.Subscription == "" {
			rd.customer = p.Customer
		}
		return nil, g.redemptionError(ctx, err, rd)
	}
	pv := &promo.InvoicePreview{Currency: string(in.Currency), Subtotal: in.Subtotal, Total: in.Total,
		PeriodStart: unix(in.PeriodStart), PeriodEnd: unix(in.PeriodEnd)}
	if in.Customer != nil {
		pv.Customer = in.Customer.ID
	}
	if in.Subscription != nil {
		pv.Subscription = in.Subscription.ID
	}
	for _, d := range in.TotalDiscountAmounts {
		pv.DiscountAmount += d.Amount
	}
	if in.Lines != nil {
		for i, l := range in.Lines.Data {
			if l.Price != nil {
				pv.PriceIDs = append(pv.PriceIDs, l.Price.ID)
			}
			if i == 0 && l.Period != nil { // the service period billed
				pv.PeriodStart, pv.PeriodEnd = unix(l.Period.Start), unix(l.Period.End)
			}
		}
	}
	return pv, nil
}

// FindSubscription pages through the customer's subscriptions (every status)
// for the one whose metadata[key] is value. Recovery only.
func (g *Gateway) FindSubscription(ctx context.Context, customer, key, value string) (*promo.Subscription, error) {
	params := &stripe.SubscriptionListParams{
		ListParams: stripe.ListParams{Context: ctx, Limit: stripe.Int64(100)},
		Customer:   stripe.String(customer),
		Status:     stripe.String("all"),
	}
	var found *stripe.Subscription
	err := g.call(ctx, opSubscriptionList, func() error {
		it := g.api.Subscriptions.List(params)
		for it.Next() {
			if s := it.Subscription(); s.Metadata[key] == value {
				found = s
				break
			}
		}
		return it.Err()
	})
	if err != nil {
		return nil, g.redemptionError(ctx, err, redemption{})
	}
	if found == nil {
		return nil, nil
	}
	return toSubscription(found), nil
}

func toSubscription(s *stripe.Subscription) *promo.Subscription {
	out := &promo.Subscription{
		ID: s.ID, Status: string(s.Status), Currency: string(s.Currency), Metadata: s.Metadata,
		CurrentPeriodStart: unix(s.CurrentPeriodStart), CurrentPeriodEnd: unix(s.CurrentPeriodEnd),
	}
	if s.Customer != nil {
		out.Customer = s.Customer.ID
	}
	if s.Items != nil {
		for _, it := range s.Items.Data {
			if it.Price != nil {
				out.PriceIDs = append(out.PriceIDs, it.Price.ID)
			}
		}
	}
	if d := s.Discount; d != nil && d.ID != "" {
		out.Discount = &promo.Discount{ID: d.ID, Start: unix(d.Start), End: unix(d.End)}
		if d.Coupon != nil {
			out.Discount.CouponID = d.Coupon.ID
		}
		if d.PromotionCode != nil {
			out.Discount.PromotionCodeID = d.PromotionCode.ID
		}
	}
	if li := s.LatestInvoice; li != nil && li.Status == stripe.InvoiceStatusPaid && li.AmountPaid > 0 {
		out.LatestInvoicePaid = true
	}
	return out
}

func unix(sec int64) time.Time {
	if sec == 0 {
		return time.Time{}
	}
	return time.Unix(sec, 0).UTC()
}

// stripeInvalid is a 400 on the request's param carrying Stripe's words.
func stripeInvalid(param string, se *stripe.Error) *promo.Error {
	return &promo.Error{Code: promo.CodeInvalidRequest, Param: param, Message: "Stripe: " + se.Msg,
		StripeRequestID: se.RequestID, StripeCode: string(se.Code), Err: se}
}
