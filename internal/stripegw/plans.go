package stripegw

import (
	"context"

	"github.com/billing-adapter/billing-adapter/internal/promo"
	"github.com/stripe/stripe-go/v76"
)

// Plans implements promo.PlanReader: each price retrieved with its product
// expanded (one call per price; promo.PlanCache keeps the answers). A price
// Stripe does not know is a 502: the code names a plan Stripe lost.
func (g *Gateway) Plans(ctx context.Context, priceIDs []string) ([]promo.Plan, error) {
	out := make([]promo.Plan, len(priceIDs))
	for i, id := range priceIDs {
		params := &stripe.PriceParams{Params: stripe.Params{Context: ctx}}
		params.AddExpand("product")
		var price *stripe.Price
		if err := g.call(ctx, opPriceRetrieve, func() (err error) {
			price, err = g.api.Prices.Get(id, params)
			return err
		}); err != nil {
			return nil, err
		}
		p := promo.Plan{ID: price.ID, Currency: string(price.Currency)}
		if price.Product != nil {
			p.Product, p.ProductName = price.Product.ID, price.Product.Name
		}
		if price.UnitAmount != 0 || price.BillingScheme != stripe.PriceBillingSchemeTiered {
			amount := price.UnitAmount
			p.UnitAmount = &amount
		}
		if price.Recurring != nil {
			p.Interval, p.IntervalCount = string(price.Recurring.Interval), price.Recurring.IntervalCount
		}
		out[i] = p
	}
	return out, nil
}
