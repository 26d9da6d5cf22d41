package stripegw

import (
	"cmp"
	"fmt"
	"net/http"
	"net/http/httptest"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/stripe/stripe-go/v76"

	"github.com/billing-adapter/billing-adapter/internal/promo"
	"github.com/billing-adapter/billing-adapter/internal/stripesim"
)

// The Reader decodes subscriptions as slimSubscription: it gives what
// stripe-go's Subscription gives (Gateway.EachSubscription), for a
// hand-written page with every shape of the fields it reads (expanded or
// not, null, absent), and for every subscription of a simulator (with a
// promotion code, a coupon, none, canceled, with metadata).
func TestSlimSubscriptionsReadAsStripeGoDoes(t *testing.T) {
	base, _ := fakeStripe(t, func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, `{"object":"list","url":"/v1/subscriptions","has_more":false,"data":[
			{"id":"sub_1","object":"subscription","customer":"cus_1","status":"active","created":1700000000,"canceled_at":null,
			 "metadata":{},"discount":{"id":"di_1","object":"discount","coupon":{"id":"CPN","object":"coupon","percent_off":25,"metadata":{}},
			   "customer":null,"subscription":null,"promotion_code":"promo_1","start":1690000000,"end":null},
			 "items":{"object":"list","data":[{"id":"si_1","price":{"id":"price_1","unit_amount":1000,"recurring":{"interval":"month"}},
			   "plan":{"id":"price_1","amount":1000}}]}},
			{"id":"sub_2","object":"subscription","customer":{"id":"cus_2","object":"customer","email":"a@example.com"},
			 "status":"canceled","created":1700000100,"canceled_at":1700000900,"metadata":{"ba_code":"pc_1","k":"v"},
			 "discount":{"id":"di_2","object":"discount","coupon":{"id":"FLAT","object":"coupon","amount_off":100,"currency":"eur"},
			   "customer":{"id":"cus_9","object":"customer"},"subscription":"sub_9","promotion_code":{"id":"promo_2","object":"promotion_code"},
			   "start":1690000000,"end":1699999999}},
			{"id":"sub_3","object":"subscription","customer":"cus_3","status":"past_due","created":1700000200,
			 "metadata":null,"discount":null},
			{"id":"sub_4","object":"subscription","status":"incomplete","created":1700000300,
			 "discount":{"id":"","object":"discount"}},
			{"id":"sub_5","object":"subscription","customer":"cus_5","status":"active","created":1700000400,
			 "discount":{"id":"di_5","object":"discount","coupon":null,"customer":"cus_5","promotion_code":null,"start":1690000000}}]}`)
	})
	gw := newTestGateway(base, nil)
	want := collect(t, "Gateway.EachSubscription", gw.EachSubscription)
	got := collect(t, "Reader.EachSubscription", NewReader(gw, ReadOptions{Partitions: 1}).EachSubscription)
	if len(want) != 5 || !reflect.DeepEqual(got, want) {
		t.Fatalf("slim:\n got  %s\n want %s", fmtSubs(got), fmtSubs(want))
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
	pc, err := b.api.PromotionCodes.New(&stripe.PromotionCodeParams{Coupon: stripe.String(cp.ID), Code: stripe.String("SLIMSUB")})
	must(t, "promotion code", err)
	clk, err := b.api.TestHelpersTestClocks.New(&stripe.TestHelpersTestClockParams{FrozenTime: stripe.Int64(time.Now().AddDate(0, -2, 0).Unix())})
	must(t, "clock", err)
	for i := range 8 {
		cu, err := b.api.Customers.New(&stripe.CustomerParams{TestClock: stripe.String(clk.ID), Email: stripe.String(fmt.Sprintf("c%d@example.com", i))})
		must(t, "customer", err)
		params := &stripe.SubscriptionParams{Customer: stripe.String(cu.ID), Items: []*stripe.SubscriptionItemsParams{{Price: stripe.String(price.ID)}}}
		switch i % 3 {
		case 0:
			params.PromotionCode = stripe.String(pc.ID)
		case 1:
			params.Coupon = stripe.String(cp.ID)
		}
		if i%2 == 0 {
			params.AddMetadata("ba_code", fmt.Sprintf("pc_%d", i))
		}
		sub, err := b.api.Subscriptions.New(params)
		must(t, "subscription", err)
		if i == 3 || i == 6 {
			_, err = b.api.Subscriptions.Cancel(sub.ID, nil)
			must(t, "cancel", err)
		}
	}
	byID := func(a, b promo.StripeSubscription) int { return cmp.Compare(a.ID, b.ID) }
	want = collect(t, "Gateway.EachSubscription", b.gw.EachSubscription)
	got = collect(t, "Reader.EachSubscription", NewReader(b.gw, ReadOptions{Partitions: 4}).EachSubscription)
	slices.SortFunc(want, byID)
	slices.SortFunc(got, byID)
	discounted, canceled := 0, 0
	for _, s := range want {
		if s.Discount != nil {
			discounted++
		}
		if !s.CanceledAt.IsZero() {
			canceled++
		}
	}
	if len(want) != 8 || discounted < 5 || canceled != 2 || !reflect.DeepEqual(got, want) {
		t.Fatalf("%d subscriptions (%d discounted, %d canceled); slim:\n got  %s\n want %s", len(want), discounted, canceled,
			fmtSubs(got), fmtSubs(want))
	}
}

// A slim page (listSlim) is the request stripe-go's List sends: the same
// method, path, query (in the same order) and headers, for every shape of
// the list parameters reconcile uses.
func TestSlimListSendsTheListsRequest(t *testing.T) {
	type req struct{ method, path, query, auth, version, account string }
	var got []req
	base, _ := fakeStripe(t, func(w http.ResponseWriter, r *http.Request) {
		got = append(got, req{r.Method, r.URL.Path, r.URL.RawQuery, r.Header.Get("Authorization"), r.Header.Get("Stripe-Version"),
			r.Header.Get("Stripe-Account")})
		writeJSON(w, `{"object":"list","url":"`+r.URL.Path+`","has_more":false,"data":[]}`)
	})
	gw := newTestGateway(base, nil)
	for _, tc := range []struct {
		name     string
		created  *stripe.RangeQueryParams
		after    string
		limit    int64
		expand   string
		account  string
		wantPart string // a part of the query, so a test that sent nothing cannot pass
	}{
		{name: "first page", limit: 100, wantPart: "limit=100"},
		{name: "created range, cursor", created: &stripe.RangeQueryParams{GreaterThanOrEqual: 1700000000, LesserThan: 1700100000},
			after: "in_123", limit: 100, wantPart: "created[gte]=1700000000"},
		{name: "open above, one object", created: &stripe.RangeQueryParams{GreaterThanOrEqual: 5}, limit: 1, wantPart: "limit=1"},
		{name: "expand, connected account", limit: 10, expand: "data.customer", account: "acct_1", wantPart: "expand[0]=data.customer"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got = nil
			for _, slim := range []bool{false, true} {
				ip := &stripe.InvoiceListParams{Status: stripe.String("paid")}
				sp := &stripe.SubscriptionListParams{Status: stripe.String("all")}
				for _, lp := range []*stripe.ListParams{&ip.ListParams, &sp.ListParams} {
					lp.Limit, lp.Single = stripe.Int64(tc.limit), true
					if tc.after != "" {
						lp.StartingAfter = stripe.String(tc.after)
					}
					if tc.expand != "" {
						lp.AddExpand(tc.expand)
					}
					if tc.account != "" {
						lp.SetStripeAccount(tc.account)
					}
				}
				ip.CreatedRange, sp.CreatedRange = tc.created, tc.created
				var its []*stripe.Iter
				if slim {
					its = []*stripe.Iter{gw.listSlimInvoices(ip), gw.listSlimSubscriptions(sp)}
				} else {
					its = []*stripe.Iter{gw.api.Invoices.List(ip).Iter, gw.api.Subscriptions.List(sp).Iter}
				}
				for _, it := range its {
					for it.Next() {
					}
					must(t, "list", it.Err())
				}
			}
			if len(got) != 4 || !strings.Contains(strings.ReplaceAll(got[0].query, "%5B", "["), strings.ReplaceAll(tc.wantPart, "%5B", "[")) {
				t.Fatalf("requests: %+v", got)
			}
			if got[2] != got[0] || got[3] != got[1] {
				t.Fatalf("slim requests differ from stripe-go's:\n slim %+v\n      %+v\n want %+v\n      %+v", got[2], got[3], got[0], got[1])
			}
		})
	}
}
