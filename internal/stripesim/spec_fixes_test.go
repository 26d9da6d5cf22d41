package stripesim

import (
	"testing"

	stripe "github.com/stripe/stripe-go/v76"
)

// What Stripe accepts and the simulator once refused or misread: the
// deprecated items[][plan], customer search (not a customer ID), and
// invoice_now on cancel. Every answer here is also checked against Stripe's
// spec by newEnv.
func TestStripeAcceptsWhatTheSimulatorOnceRefused(t *testing.T) {
	e := newEnv(t, Options{})
	cu, err := e.sc.Customers.New(&stripe.CustomerParams{Email: stripe.String("find.me@example.com"), Name: stripe.String("Find Me"),
		Params: stripe.Params{Metadata: map[string]string{"team": "blue"}}})
	if err != nil {
		t.Fatal(err)
	}
	other, _ := e.sc.Customers.New(&stripe.CustomerParams{Email: stripe.String("other@example.com")})
	prod, _ := e.sc.Products.New(&stripe.ProductParams{Name: stripe.String("P")})
	pr, _ := e.sc.Prices.New(&stripe.PriceParams{Currency: stripe.String("usd"), UnitAmount: stripe.Int64(1000), Product: stripe.String(prod.ID),
		Recurring: &stripe.PriceRecurringParams{Interval: stripe.String("month")}})

	// items[][plan]: the deprecated name of the price.
	sub, err := e.sc.Subscriptions.New(&stripe.SubscriptionParams{Customer: stripe.String(cu.ID),
		Items: []*stripe.SubscriptionItemsParams{{Plan: stripe.String(pr.ID)}}})
	if err != nil {
		t.Fatalf("items[][plan]: %v", err)
	}
	if sub.Items.Data[0].Price.ID != pr.ID {
		t.Fatalf("items[][plan] subscribed to %s, want %s", sub.Items.Data[0].Price.ID, pr.ID)
	}
	_, err = e.sc.Subscriptions.New(&stripe.SubscriptionParams{Customer: stripe.String(cu.ID),
		Items: []*stripe.SubscriptionItemsParams{{Plan: stripe.String(pr.ID), Price: stripe.String(pr.ID)}}})
	stripeErr(t, err, 400, stripe.ErrorTypeInvalidRequest, "parameters_exclusive", "items[0][plan]")

	// Customer search.
	for q, want := range map[string][]string{
		"email:'find.me@example.com'":                              {cu.ID},
		"metadata['team']:'blue' AND name~'Find'":                  {cu.ID},
		"email:'find.me@example.com' OR email:'other@example.com'": {other.ID, cu.ID},
		"email:'nobody@example.com'":                               nil,
	} {
		it := e.sc.Customers.Search(&stripe.CustomerSearchParams{SearchParams: stripe.SearchParams{Query: q}})
		var got []string
		for it.Next() {
			got = append(got, it.Customer().ID)
		}
		if err := it.Err(); err != nil {
			t.Fatalf("search %q: %v", q, err)
		}
		if len(got) != len(want) || (len(got) > 0 && (got[0] != want[0] || got[len(got)-1] != want[len(want)-1])) {
			t.Errorf("search %q found %v, want %v", q, got, want)
		}
	}
	it := e.sc.Customers.Search(&stripe.CustomerSearchParams{SearchParams: stripe.SearchParams{Query: "created>0"}})
	it.Next()
	stripeErr(t, it.Err(), 400, stripe.ErrorTypeInvalidRequest, "", "query")

	// Paging through search results.
	it = e.sc.Customers.Search(&stripe.CustomerSearchParams{SearchParams: stripe.SearchParams{Query: "email~'example.com'", Limit: stripe.Int64(1)}})
	n := 0
	for it.Next() {
		n++
	}
	if it.Err() != nil || n != 2 {
		t.Fatalf("paged search found %d customers (%v), want 2", n, it.Err())
	}

	// invoice_now on cancel: accepted; nothing is left to invoice, so no final invoice.
	before := len(e.sim.EventBodies())
	canceled, err := e.sc.Subscriptions.Cancel(sub.ID, &stripe.SubscriptionCancelParams{InvoiceNow: stripe.Bool(true)})
	if err != nil || canceled.Status != "canceled" {
		t.Fatalf("cancel with invoice_now: %v %v", canceled, err)
	}
	n = 0
	iit := e.sc.Invoices.List(&stripe.InvoiceListParams{Subscription: stripe.String(sub.ID)})
	for iit.Next() {
		n++
	}
	if n != 1 || len(e.sim.EventBodies()) != before+1 {
		t.Fatalf("cancel with invoice_now made %d invoices and %d events, want the first invoice only and one event", n, len(e.sim.EventBodies())-before)
	}
}
