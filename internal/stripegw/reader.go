package stripegw

import (
	"context"
	"encoding/json"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/stripe/stripe-go/v76"
	"golang.org/x/time/rate"

	"github.com/billing-adapter/billing-adapter/internal/promo"
)

// The reads of reconcile (promo.StripeReader): every coupon, promotion code,
// subscription and paid invoice, page by page.

// Metric operation names of the list calls (opPromotionCodeList and
// opSubscriptionList are shared with the lookups).
const (
	opCouponList  = "coupon.list"
	opInvoiceList = "invoice.list"
	opEventList   = "event.list"
)

// listPageSize is the page size of every walk: Stripe's maximum.
const listPageSize = 100

var _ promo.StripeReader = (*Gateway)(nil)

// EachCoupon walks every coupon, with applies_to expanded.
func (g *Gateway) EachCoupon(ctx context.Context, fn func(promo.StripeCoupon) error) error {
	params := &stripe.CouponListParams{}
	params.AddExpand("data.applies_to") // applies_to is only sent when expanded
	return eachPage(ctx, g, nil, opCouponList, &params.ListParams,
		func() *stripe.Iter { return g.api.Coupons.List(params).Iter },
		func(c *stripe.Coupon) string { return c.ID },
		func(c *stripe.Coupon) error { return fn(toStripeCoupon(c)) })
}

// EachPromotionCode walks every promotion code, active or not.
func (g *Gateway) EachPromotionCode(ctx context.Context, fn func(promo.StripePromotionCode) error) error {
	params := &stripe.PromotionCodeListParams{}
	return eachPage(ctx, g, nil, opPromotionCodeList, &params.ListParams,
		func() *stripe.Iter { return g.api.PromotionCodes.List(params).Iter },
		func(pc *stripe.PromotionCode) string { return pc.ID },
		func(pc *stripe.PromotionCode) error { return fn(toStripePromotionCode(pc)) })
}

// EachSubscription walks the subscriptions of every status, canceled ones
// included.
func (g *Gateway) EachSubscription(ctx context.Context, fn func(promo.StripeSubscription) error) error {
	params := &stripe.SubscriptionListParams{Status: stripe.String("all")}
	return eachPage(ctx, g, nil, opSubscriptionList, &params.ListParams,
		func() *stripe.Iter { return g.api.Subscriptions.List(params).Iter },
		func(s *stripe.Subscription) string { return s.ID },
		func(s *stripe.Subscription) error { return fn(toStripeSubscription(s)) })
}

// EachPaidInvoice walks the paid invoices created at or after since (every
// paid invoice when since is zero, or not after the Unix epoch).
func (g *Gateway) EachPaidInvoice(ctx context.Context, since time.Time, fn func(promo.StripeInvoice) error) error {
	params := &stripe.InvoiceListParams{Status: stripe.String(string(stripe.InvoiceStatusPaid))}
	if !since.IsZero() {
		if gte := ceilUnix(since); gte > 0 { // stripe-go leaves out a zero bound
			params.CreatedRange = &stripe.RangeQueryParams{GreaterThanOrEqual: gte}
		}
	}
	return eachPage(ctx, g, nil, opInvoiceList, &params.ListParams,
		func() *stripe.Iter { return g.api.Invoices.List(params).Iter },
		func(in *stripe.Invoice) string { return in.ID },
		func(in *stripe.Invoice) error { return fn(toStripeInvoice(in)) })
}

// EachEvent walks the events of the given types created at or after since
// (Stripe keeps events 30 days), newest first, each as the JSON body Stripe
// delivers to a webhook endpoint (id, type, api_version, created, data with
// object and previous_attributes), for `reconcile -events`.
func (g *Gateway) EachEvent(ctx context.Context, since time.Time, types []string, fn func([]byte) error) error {
	params := &stripe.EventListParams{}
	for _, t := range types {
		params.Types = append(params.Types, stripe.String(t))
	}
	if gte := ceilUnix(since); !since.IsZero() && gte > 0 {
		params.CreatedRange = &stripe.RangeQueryParams{GreaterThanOrEqual: gte}
	}
	return eachPage(ctx, g, nil, opEventList, &params.ListParams,
		func() *stripe.Iter { return g.api.Events.List(params).Iter },
		func(e *stripe.Event) string { return e.ID },
		func(e *stripe.Event) error {
			body, err := eventBody(e)
			if err != nil {
				return err
			}
			return fn(body)
		})
}

// eventBody renders an event as Stripe delivers it.
func eventBody(e *stripe.Event) ([]byte, error) {
	data := map[string]any{"object": json.RawMessage("null")}
	if e.Data != nil {
		if len(e.Data.Raw) > 0 {
			data["object"] = e.Data.Raw
		}
		if e.Data.PreviousAttributes != nil {
			data["previous_attributes"] = e.Data.PreviousAttributes
		}
	}
	return json.Marshal(map[string]any{"id": e.ID, "object": "event", "api_version": e.APIVersion,
		"created": e.Created, "type": e.Type, "livemode": e.Livemode, "data": data})
}

// eachPage walks a Stripe list (newest first, as Stripe orders it) one page
// at a time: one request, and so one g.call (metrics, error translation), per
// page of up to listPageSize objects, the next page starting after the last
// object of the previous one, as stripe-go's auto-paging does. fn runs
// outside g.call, so its time is not counted as Stripe's and its error comes
// back as is; it stops the walk before another page is requested.
//
// lim (nil: none) paces the page requests.
//
// lp is the ListParams embedded in the params that list sends; list builds a
// fresh single-page iterator from them (stripe-go reads the params when the
// iterator is created).
func eachPage[T any](ctx context.Context, g *Gateway, lim *rate.Limiter, operation string, lp *stripe.ListParams,
	list func() *stripe.Iter, id func(T) string, fn func(T) error) error {
	lp.Context = ctx
	lp.Limit = stripe.Int64(listPageSize)
	lp.Single = true
	for {
		if lim != nil {
			if err := lim.Wait(ctx); err != nil {
				return err
			}
		}
		var page []T
		more := false
		err := g.call(ctx, operation, func() error {
			it := list()
			for it.Next() {
				page = append(page, it.Current().(T))
			}
			if err := it.Err(); err != nil {
				return err
			}
			more = it.Meta() != nil && it.Meta().HasMore
			return nil
		})
		if err != nil {
			return err
		}
		for _, x := range page {
			if err := fn(x); err != nil {
				return err
			}
		}
		if !more || len(page) == 0 {
			return nil
		}
		lp.StartingAfter = stripe.String(id(page[len(page)-1]))
	}
}

// ceilUnix is the first whole second at or after t: created >= t holds for a
// whole-second created exactly when created >= ceilUnix(t).
func ceilUnix(t time.Time) int64 {
	s := t.Unix()
	if t.After(time.Unix(s, 0)) {
		s++
	}
	return s
}

func toStripeCoupon(c *stripe.Coupon) promo.StripeCoupon {
	out := promo.StripeCoupon{
		ID:            c.ID,
		Name:          c.Name,
		AmountOff:     c.AmountOff,
		Currency:      strings.ToLower(string(c.Currency)),
		Duration:      promo.Duration(c.Duration),
		Months:        int(c.DurationInMonths),
		Metadata:      c.Metadata,
		TimesRedeemed: c.TimesRedeemed,
		Created:       unix(c.Created),
	}
	if c.PercentOff != 0 {
		// The shortest text that reads back as Stripe's float64: the decimal
		// Stripe holds (12.5, 33.33, 100).
		out.PercentOff = strconv.FormatFloat(c.PercentOff, 'f', -1, 64)
	}
	if c.AppliesTo != nil && len(c.AppliesTo.Products) > 0 {
		out.ProductIDs = slices.Clone(c.AppliesTo.Products)
	}
	return out
}

func toStripePromotionCode(pc *stripe.PromotionCode) promo.StripePromotionCode {
	out := promo.StripePromotionCode{
		ID:       pc.ID,
		Code:     pc.Code,
		Active:   pc.Active,
		Metadata: pc.Metadata,
		Created:  unix(pc.Created),
	}
	if pc.Coupon != nil {
		out.CouponID = pc.Coupon.ID
	}
	if pc.ExpiresAt != 0 {
		t := unix(pc.ExpiresAt)
		out.ExpiresAt = &t
	}
	if pc.Restrictions != nil {
		out.FirstTimeTransaction = pc.Restrictions.FirstTimeTransaction
	}
	return out
}

func toStripeSubscription(s *stripe.Subscription) promo.StripeSubscription {
	out := promo.StripeSubscription{
		ID:         s.ID,
		Status:     string(s.Status),
		Created:    unix(s.Created),
		CanceledAt: unix(s.CanceledAt),
		Metadata:   s.Metadata,
	}
	if s.Customer != nil {
		out.Customer = s.Customer.ID
	}
	out.Discount = toStripeDiscount(s.Discount, out.Customer, s.ID)
	return out
}

func toStripeInvoice(in *stripe.Invoice) promo.StripeInvoice {
	out := promo.StripeInvoice{
		ID:         in.ID,
		Currency:   strings.ToLower(string(in.Currency)),
		AmountPaid: in.AmountPaid,
		PaidAt:     unix(in.Created),
	}
	if in.Customer != nil {
		out.Customer = in.Customer.ID
	}
	if in.Subscription != nil {
		out.Subscription = in.Subscription.ID
	}
	if st := in.StatusTransitions; st != nil && st.PaidAt != 0 {
		out.PaidAt = unix(st.PaidAt)
	}
	// 2023-10-16 invoices carry at most one discount, in `discount`.
	out.Discount = toStripeDiscount(in.Discount, out.Customer, out.Subscription)
	if out.Discount != nil {
		for _, da := range in.TotalDiscountAmounts {
			if da != nil && da.Discount != nil && da.Discount.ID == out.Discount.ID {
				out.DiscountAmount += da.Amount
			}
		}
	}
	return out
}

// toStripeDiscount converts a stripe-go discount as slimDiscount.toStripe
// does (nil when there is none); customer and subscription fill in what the
// discount object itself lacks.
func toStripeDiscount(d *stripe.Discount, customer, subscription string) *promo.StripeDiscount {
	if d == nil {
		return nil
	}
	s := &slimDiscount{ID: d.ID, Subscription: d.Subscription, Start: d.Start, End: d.End}
	if d.Coupon != nil {
		s.Coupon = idRef(d.Coupon.ID)
	}
	if d.PromotionCode != nil {
		s.PromotionCode = idRef(d.PromotionCode.ID)
	}
	if d.Customer != nil {
		s.Customer = idRef(d.Customer.ID)
	}
	return s.toStripe(customer, subscription)
}
