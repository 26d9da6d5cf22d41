package main

import (
	"net/http"
	"testing"
	"time"

	"github.com/stripe/stripe-go/v76"
)

// Billing fixtures made directly in the simulator, as the payment page's
// own Stripe integration would make them.

// plan is a monthly price and its product.
type plan struct{ Price, Product string }

func (st *stack) newPlan(t *testing.T, currency string, amount int64) plan {
	t.Helper()
	prod, err := st.Stripe.Products.New(&stripe.ProductParams{Name: stripe.String("Instance")})
	if err != nil {
		t.Fatal(err)
	}
	price, err := st.Stripe.Prices.New(&stripe.PriceParams{Currency: stripe.String(currency), UnitAmount: stripe.Int64(amount),
		Product: stripe.String(prod.ID), Recurring: &stripe.PriceRecurringParams{Interval: stripe.String("month")}})
	if err != nil {
		t.Fatal(err)
	}
	return plan{Price: price.ID, Product: prod.ID}
}

// clockStart is where test clocks start: the middle of a month, so that
// "the next monthly invoice" is unambiguous.
var clockStart = time.Date(2026, 11, 15, 12, 0, 0, 0, time.UTC)

// newClock creates a Stripe test clock frozen at clockStart.
func (st *stack) newClock(t *testing.T) string {
	t.Helper()
	c, err := st.Stripe.TestHelpersTestClocks.New(&stripe.TestHelpersTestClockParams{FrozenTime: stripe.Int64(clockStart.Unix())})
	if err != nil {
		t.Fatal(err)
	}
	return c.ID
}

// advance moves a test clock to at (Stripe bills every crossed period).
func (st *stack) advance(t *testing.T, clock string, at time.Time) {
	t.Helper()
	if _, err := st.Stripe.TestHelpersTestClocks.Advance(clock, &stripe.TestHelpersTestClockAdvanceParams{
		FrozenTime: stripe.Int64(at.Unix())}); err != nil {
		t.Fatal(err)
	}
}

// newCustomer creates a customer, on a test clock when clock is set.
func (st *stack) newCustomer(t *testing.T, clock string) string {
	t.Helper()
	params := &stripe.CustomerParams{Email: stripe.String("payer@example.com")}
	if clock != "" {
		params.TestClock = stripe.String(clock)
	}
	cu, err := st.Stripe.Customers.New(params)
	if err != nil {
		t.Fatal(err)
	}
	return cu.ID
}

// newSubscription subscribes a customer directly in Stripe (its first
// invoice is paid): an existing membership.
func (st *stack) newSubscription(t *testing.T, customer, price string) *stripe.Subscription {
	t.Helper()
	sub, err := st.Stripe.Subscriptions.New(&stripe.SubscriptionParams{Customer: stripe.String(customer),
		Items: []*stripe.SubscriptionItemsParams{{Price: stripe.String(price)}}})
	if err != nil {
		t.Fatal(err)
	}
	return sub
}

// subscription reads a subscription back from Stripe.
func (st *stack) subscription(t *testing.T, id string) *stripe.Subscription {
	t.Helper()
	sub, err := st.Stripe.Subscriptions.Get(id, nil)
	if err != nil {
		t.Fatal(err)
	}
	return sub
}

// invoices lists a subscription's invoices, oldest first.
func (st *stack) invoices(t *testing.T, sub string) []*stripe.Invoice {
	t.Helper()
	it := st.Stripe.Invoices.List(&stripe.InvoiceListParams{Subscription: stripe.String(sub)})
	var out []*stripe.Invoice
	for it.Next() {
		out = append([]*stripe.Invoice{it.Invoice()}, out...)
	}
	if err := it.Err(); err != nil {
		t.Fatal(err)
	}
	return out
}

// createCode creates a promo code through the admin API.
func (s *service) createCode(t *testing.T, body map[string]any) map[string]any {
	t.Helper()
	r := s.call(t, "POST", "/v1/promo_codes", adminSecret, newKey(), body)
	mustStatus(t, r, http.StatusCreated)
	return r.json(t)
}

// code reads a promo code through the admin API.
func (s *service) code(t *testing.T, id string) map[string]any {
	t.Helper()
	r := s.call(t, "GET", "/v1/promo_codes/"+id, adminSecret, "", nil)
	mustStatus(t, r, http.StatusOK)
	return r.json(t)
}

// redemptions lists a code's ledger (newest first, one page of 100).
func (s *service) redemptions(t *testing.T, id string) []map[string]any {
	t.Helper()
	r := s.call(t, "GET", "/v1/promo_codes/"+id+"/redemptions?limit=100", adminSecret, "", nil)
	mustStatus(t, r, http.StatusOK)
	var out []map[string]any
	for _, d := range r.json(t)["data"].([]any) {
		out = append(out, d.(map[string]any))
	}
	return out
}

// apply puts a code on an existing subscription through the checkout API.
func (s *service) apply(t *testing.T, sub, code, customer, idemKey string) response {
	t.Helper()
	body := map[string]any{"code": code}
	if customer != "" {
		body["customer"] = customer
	}
	return s.call(t, "POST", "/v1/subscriptions/"+sub+"/promo_code", checkoutSecret, idemKey, body)
}

// eventually polls cond until it holds or 10 s pass.
func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(25 * time.Millisecond)
	}
}

// num reads a JSON number field.
func num(m map[string]any, k string) int64 {
	f, _ := m[k].(float64)
	return int64(f)
}

// totalCalls sums the simulator's request counters.
func (st *stack) totalCalls() int {
	n := 0
	for _, c := range st.Sim.Counts() {
		n += c
	}
	return n
}
