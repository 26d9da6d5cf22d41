package stripegw

import (
	"github.com/stripe/stripe-go/v76"

	"github.com/billing-adapter/billing-adapter/internal/promo"
)

// Reconcile reads every subscription of the account, as it reads every paid
// invoice (slim_invoices.go): stripe-go's Subscription decodes all of one
// (its items with their prices and plans, the discount's coupon, through
// custom decoders), slimSubscription only the fields toStripeSubscription
// reads.

// slimSubscription is a subscription as reconcile reads it.
type slimSubscription struct {
	ID         string            `json:"id"`
	Status     string            `json:"status"`
	Created    int64             `json:"created"`
	CanceledAt int64             `json:"canceled_at"`
	Metadata   map[string]string `json:"metadata"`
	Customer   idRef             `json:"customer"`
	Discount   *slimDiscount     `json:"discount"`
}

// listSlimSubscriptions is the Subscriptions.List of stripe-go (the same
// request, parameters, retries and errors) decoding slimSubscription
// (listSlim).
func (g *Gateway) listSlimSubscriptions(params *stripe.SubscriptionListParams) *stripe.Iter {
	return listSlim[slimSubscription](g, "/v1/subscriptions", params)
}

// slimToStripeSubscription is toStripeSubscription for a slimSubscription.
func slimToStripeSubscription(s *slimSubscription) promo.StripeSubscription {
	return promo.StripeSubscription{
		ID:         s.ID,
		Status:     s.Status,
		Created:    unix(s.Created),
		CanceledAt: unix(s.CanceledAt),
		Metadata:   s.Metadata,
		Customer:   string(s.Customer),
		Discount:   s.Discount.toStripe(string(s.Customer), s.ID),
	}
}

// toStripe converts a discount (nil when there is none): customer and
// subscription are its invoice's or subscription's, used when the discount
// does not name them. Every discount the Reader gives goes through it
// (toStripeDiscount too).
func (d *slimDiscount) toStripe(customer, subscription string) *promo.StripeDiscount {
	if d == nil || d.ID == "" {
		return nil
	}
	out := &promo.StripeDiscount{
		ID:              d.ID,
		Customer:        customer,
		Subscription:    d.Subscription,
		Start:           unix(d.Start),
		End:             unix(d.End),
		CouponID:        string(d.Coupon),
		PromotionCodeID: string(d.PromotionCode),
	}
	if d.Customer != "" {
		out.Customer = string(d.Customer)
	}
	if out.Subscription == "" {
		out.Subscription = subscription
	}
	return out
}
