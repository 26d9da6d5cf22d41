package stripegw

import (
	"cmp"
	"context"
	"net/http"
	"net/http/httptest"
	"reflect"
	"slices"
	"testing"
	"time"

	"github.com/stripe/stripe-go/v76"

	"github.com/billing-adapter/billing-adapter/internal/promo"
	"github.com/billing-adapter/billing-adapter/internal/stripesim"
)

// The Reader decodes paid invoices as slimInvoice: it gives what stripe-go's
// Invoice gives (Gateway.EachPaidInvoice), for hand-written pages with every
// shape of the fields it reads (expanded or not, null, absent), and for every
// invoice of a billing year in the simulator.
func TestSlimInvoicesReadAsStripeGoDoes(t *testing.T) {
	base, _ := fakeStripe(t, func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, `{"object":"list","url":"/v1/invoices","has_more":false,"data":[
			{"id":"in_1","object":"invoice","customer":"cus_1","subscription":"sub_1","currency":"USD",
			 "amount_paid":1470,"created":1700000000,"status":"paid",
			 "status_transitions":{"finalized_at":1700000000,"paid_at":null},
			 "discount":{"id":"di_1","object":"discount","coupon":{"id":"CPN","object":"coupon","percent_off":25},
			   "customer":null,"subscription":null,"promotion_code":"promo_1","start":1690000000,"end":null},
			 "total_discount_amounts":[{"amount":500,"discount":"di_1"},{"amount":200,"discount":"di_other"},{"amount":30,"discount":"di_1"}]},
			{"id":"in_2","object":"invoice","customer":{"id":"cus_2","object":"customer"},"subscription":{"id":"sub_2","object":"subscription"},
			 "currency":"eur","amount_paid":900,"created":1700000100,"status":"paid",
			 "status_transitions":{"paid_at":1700000500},
			 "discount":{"id":"di_2","object":"discount","coupon":{"id":"FLAT","object":"coupon","amount_off":100,"currency":"eur"},
			   "customer":{"id":"cus_9","object":"customer"},"subscription":"sub_9","promotion_code":{"id":"promo_2","object":"promotion_code"},
			   "start":1690000000,"end":1699999999},
			 "total_discount_amounts":[{"amount":100,"discount":{"id":"di_2","object":"discount"}}],
			 "lines":{"object":"list","data":[{"id":"il_1","amount":1000,"price":{"id":"price_1","unit_amount":1000}}]}},
			{"id":"in_3","object":"invoice","customer":"cus_3","subscription":null,"currency":"usd",
			 "amount_paid":1000,"created":1700000200,"status":"paid","status_transitions":{"paid_at":1700000300},
			 "discount":null,"total_discount_amounts":[{"amount":100,"discount":"di_x"}]},
			{"id":"in_4","object":"invoice","currency":"usd","amount_paid":0,"created":1700000300,"status":"paid",
			 "discount":{"id":"","object":"discount"},"total_discount_amounts":null}]}`)
	})
	gw := newTestGateway(base, nil)
	want := collect(t, "Gateway.EachPaidInvoice", paidSince(gw, time.Time{}))
	got := collect(t, "Reader.EachPaidInvoice", paidSince2(NewReader(gw, ReadOptions{Partitions: 1})))
	if len(want) != 4 || !reflect.DeepEqual(got, want) {
		t.Fatalf("slim:\n got  %s\n want %s", fmtInvoices(got), fmtInvoices(want))
	}

	sim := stripesim.New(stripesim.Options{})
	srv := httptest.NewServer(sim)
	t.Cleanup(func() { srv.Close(); sim.Close() })
	b := backendAt(srv.URL)
	price, err := b.api.Prices.New(&stripe.PriceParams{Currency: stripe.String("usd"), UnitAmount: stripe.Int64(1250),
		Recurring: &stripe.PriceRecurringParams{Interval: stripe.String("month")}, ProductData: &stripe.PriceProductDataParams{Name: stripe.String("plan")}})
	must(t, "price", err)
	cp, err := b.api.Coupons.New(&stripe.CouponParams{PercentOff: stripe.Float64(12.5), Duration: stripe.String("repeating"),
		DurationInMonths: stripe.Int64(3)})
	must(t, "coupon", err)
	pc, err := b.api.PromotionCodes.New(&stripe.PromotionCodeParams{Coupon: stripe.String(cp.ID), Code: stripe.String("SLIM")})
	must(t, "promotion code", err)
	start := time.Now().AddDate(-1, 0, -10)
	clk, err := b.api.TestHelpersTestClocks.New(&stripe.TestHelpersTestClockParams{FrozenTime: stripe.Int64(start.Unix())})
	must(t, "clock", err)
	for i := range 6 {
		cu, err := b.api.Customers.New(&stripe.CustomerParams{TestClock: stripe.String(clk.ID)})
		must(t, "customer", err)
		params := &stripe.SubscriptionParams{Customer: stripe.String(cu.ID), Items: []*stripe.SubscriptionItemsParams{{Price: stripe.String(price.ID)}}}
		switch i % 3 {
		case 0:
			params.PromotionCode = stripe.String(pc.ID)
		case 1:
			params.Coupon = stripe.String(cp.ID)
		}
		_, err = b.api.Subscriptions.New(params)
		must(t, "subscription", err)
	}
	_, err = b.api.TestHelpersTestClocks.Advance(clk.ID, &stripe.TestHelpersTestClockAdvanceParams{FrozenTime: stripe.Int64(start.AddDate(0, 6, 0).Unix())})
	must(t, "advance", err)
	byID := func(a, b promo.StripeInvoice) int { return cmp.Compare(a.ID, b.ID) }
	want = collect(t, "Gateway.EachPaidInvoice", paidSince(b.gw, time.Time{}))
	got = collect(t, "Reader.EachPaidInvoice", paidSince2(NewReader(b.gw, ReadOptions{Partitions: 4})))
	slices.SortFunc(want, byID)
	slices.SortFunc(got, byID)
	discounted := 0
	for _, in := range want {
		if in.Discount != nil && in.DiscountAmount > 0 {
			discounted++
		}
	}
	if len(want) < 30 || discounted < 10 || !reflect.DeepEqual(got, want) {
		t.Fatalf("%d invoices (%d discounted); slim:\n got  %s\n want %s", len(want), discounted, fmtInvoices(got), fmtInvoices(want))
	}
}

func paidSince2(r *Reader) func(ctx context.Context, fn func(promo.StripeInvoice) error) error {
	return func(ctx context.Context, fn func(promo.StripeInvoice) error) error {
		return r.EachPaidInvoice(ctx, time.Time{}, fn)
	}
}
