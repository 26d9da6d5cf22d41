// Package benchkit makes the fixtures that the load tool (cmd/billing-bench)
// and the handler benchmarks (cmd/billing-adapter/bench_test.go) share:
// Stripe objects in the simulator (plans, customers, subscriptions), real
// invoice.paid events carrying one of the adapter's discounts, and the
// request bodies of each scenario. It only talks HTTP to the simulator; it
// is not used by the service.
package benchkit

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"time"
)

// Sim is a small client of the Stripe simulator's HTTP API (the /v1 subset
// the fixtures need, and the /_sim/ control API), with form bodies like
// Stripe's.
type Sim struct {
	URL  string // e.g. http://127.0.0.1:12111
	Key  string // sk_test_...
	HTTP *http.Client
}

// NewSim returns a client with a keep-alive pool sized for conc callers.
func NewSim(base, key string, conc int) *Sim {
	tr := &http.Transport{MaxIdleConns: conc * 2, MaxIdleConnsPerHost: conc * 2, IdleConnTimeout: time.Minute}
	return &Sim{URL: strings.TrimRight(base, "/"), Key: key, HTTP: &http.Client{Transport: tr, Timeout: 60 * time.Second}}
}

// Do sends one request (form-encoded when form is non-nil, JSON when body is
// a []byte) and decodes a 2xx JSON answer into out (when non-nil).
func (s *Sim) Do(ctx context.Context, method, path string, form url.Values, out any) error {
	var body io.Reader
	if form != nil {
		body = strings.NewReader(form.Encode())
	}
	req, err := http.NewRequestWithContext(ctx, method, s.URL+path, body)
	if err != nil {
		return err
	}
	req.Header.Set("Authorization", "Bearer "+s.Key)
	if form != nil {
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	}
	resp, err := s.HTTP.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(resp.Body)
	if err != nil {
		return err
	}
	if resp.StatusCode/100 != 2 {
		return fmt.Errorf("stripe-sim %s %s: %d %s", method, path, resp.StatusCode, bytes.TrimSpace(raw))
	}
	if out != nil {
		return json.Unmarshal(raw, out)
	}
	return nil
}

// Counts returns the simulator's per-operation request counters.
func (s *Sim) Counts(ctx context.Context) (map[string]int, error) {
	var m map[string]int
	return m, s.Do(ctx, http.MethodGet, "/_sim/counts", nil, &m)
}

// TotalCalls is the sum of the simulator's counters.
func TotalCalls(m map[string]int) int {
	n := 0
	for _, v := range m {
		n += v
	}
	return n
}

type idObject struct {
	ID string `json:"id"`
}

// NewPlan creates a product and a monthly price; it returns the price ID.
func (s *Sim) NewPlan(ctx context.Context, currency string, amount int64) (string, error) {
	var prod idObject
	if err := s.Do(ctx, http.MethodPost, "/v1/products", url.Values{"name": {"Bench plan"}}, &prod); err != nil {
		return "", err
	}
	var price idObject
	err := s.Do(ctx, http.MethodPost, "/v1/prices", url.Values{"currency": {currency},
		"unit_amount": {strconv.FormatInt(amount, 10)}, "product": {prod.ID}, "recurring[interval]": {"month"}}, &price)
	return price.ID, err
}

// Subscribed is one customer with an existing, paid monthly subscription.
type Subscribed struct {
	Customer     string
	Subscription string
}

// NewSubscribed creates a customer and subscribes it to price directly in
// Stripe (its first invoice is paid): an existing membership.
func (s *Sim) NewSubscribed(ctx context.Context, price string) (Subscribed, error) {
	var cu idObject
	if err := s.Do(ctx, http.MethodPost, "/v1/customers", url.Values{"email": {"bench@example.com"}}, &cu); err != nil {
		return Subscribed{}, err
	}
	var sub idObject
	err := s.Do(ctx, http.MethodPost, "/v1/subscriptions", url.Values{"customer": {cu.ID}, "items[0][price]": {price}}, &sub)
	return Subscribed{Customer: cu.ID, Subscription: sub.ID}, err
}

// NewSubscribedMany makes n subscriptions with conc parallel callers.
func (s *Sim) NewSubscribedMany(ctx context.Context, price string, n, conc int) ([]Subscribed, error) {
	out := make([]Subscribed, n)
	err := Parallel(n, conc, func(i int) error {
		var err error
		out[i], err = s.NewSubscribed(ctx, price)
		return err
	})
	return out, err
}

// Parallel runs f(0..n-1) on conc goroutines and returns the first error.
func Parallel(n, conc int, f func(i int) error) error {
	if conc < 1 {
		conc = 1
	}
	var (
		mu    sync.Mutex
		next  int
		first error
		wg    sync.WaitGroup
	)
	for range min(conc, max(n, 1)) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				mu.Lock()
				i := next
				next++
				stop := first != nil
				mu.Unlock()
				if stop || i >= n {
					return
				}
				if err := f(i); err != nil {
					mu.Lock()
					if first == nil {
						first = err
					}
					mu.Unlock()
				}
			}
		}()
	}
	wg.Wait()
	return first
}

// Discount is a subscription's discount as Stripe renders it (a raw JSON
// object, embedded as is into the invoices the events carry).
type Discount struct {
	ID           string
	Customer     string
	Subscription string
	Raw          json.RawMessage
}

// SubscriptionDiscount reads a subscription back and returns its discount.
func (s *Sim) SubscriptionDiscount(ctx context.Context, sub string) (Discount, error) {
	var got struct {
		Discount json.RawMessage `json:"discount"`
	}
	if err := s.Do(ctx, http.MethodGet, "/v1/subscriptions/"+sub, nil, &got); err != nil {
		return Discount{}, err
	}
	var d struct {
		ID       string `json:"id"`
		Customer string `json:"customer"`
	}
	if err := json.Unmarshal(got.Discount, &d); err != nil || d.ID == "" {
		return Discount{}, fmt.Errorf("subscription %s has no discount", sub)
	}
	return Discount{ID: d.ID, Customer: d.Customer, Subscription: sub, Raw: got.Discount}, nil
}

// InvoicePaidTemplate returns one real invoice.paid event of the simulator
// (the first invoice of a subscription made by NewSubscribed), used as the
// shape of the events the benchmarks send.
func (s *Sim) InvoicePaidTemplate(ctx context.Context) ([]byte, error) {
	var list struct {
		Data []json.RawMessage `json:"data"`
	}
	if err := s.Do(ctx, http.MethodGet, "/v1/events?type=invoice.paid&limit=1", nil, &list); err != nil {
		return nil, err
	}
	if len(list.Data) == 0 {
		return nil, fmt.Errorf("stripe-sim has no invoice.paid event yet (create a subscription first)")
	}
	return list.Data[0], nil
}

// InvoicePaid builds an invoice.paid event from a template event: invoice
// invoiceID of d's customer and subscription, paid, carrying discount d that
// took amountOff off amountPaid+amountOff.
func InvoicePaid(template []byte, eventID, invoiceID string, d Discount, amountPaid, amountOff int64, created time.Time) ([]byte, error) {
	var ev map[string]any
	if err := json.Unmarshal(template, &ev); err != nil {
		return nil, err
	}
	data, _ := ev["data"].(map[string]any)
	obj, _ := data["object"].(map[string]any)
	if obj == nil {
		return nil, fmt.Errorf("template event has no data.object")
	}
	ev["id"], ev["created"] = eventID, created.Unix()
	obj["id"], obj["customer"], obj["subscription"] = invoiceID, d.Customer, d.Subscription
	obj["amount_paid"], obj["amount_due"], obj["total"] = amountPaid, amountPaid, amountPaid
	obj["subtotal"] = amountPaid + amountOff
	obj["discount"] = d.Raw
	obj["discounts"] = []any{d.ID}
	obj["total_discount_amounts"] = []any{map[string]any{"amount": amountOff, "discount": d.ID}}
	obj["billing_reason"] = "subscription_cycle"
	return json.Marshal(ev)
}

// FakeCustomer is a customer ID that validate accepts without Stripe (the
// validate scenario makes no Stripe call, so it need not exist).
func FakeCustomer(i int) string { return fmt.Sprintf("cus_bench%06d", i) }

// ValidateBody is a POST /v1/promo_codes/validate body without preview.
func ValidateBody(code, customer string) []byte {
	b, _ := json.Marshal(map[string]string{"code": code, "customer": customer})
	return b
}

// ApplyBody is a POST /v1/subscriptions/{id}/promo_code body.
func ApplyBody(code string) []byte {
	b, _ := json.Marshal(map[string]string{"code": code})
	return b
}

// CreatePromoBody is a POST /v1/promo_codes body: 10% off forever, with
// unlimited stock or a stock of 1000, and a little metadata.
func CreatePromoBody(code string, unlimited bool) []byte {
	m := map[string]any{"code": code, "promo_type": "percentage", "amount_off": 10, "duration": "forever",
		"metadata": map[string]string{"campaign": "bench"}}
	if unlimited {
		m["unlimited_stock"] = true
	} else {
		m["stock"] = 1000
	}
	b, _ := json.Marshal(m)
	return b
}
