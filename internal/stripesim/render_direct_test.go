package stripesim

import (
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	stripe "github.com/stripe/stripe-go/v76"
)

// An invoice written directly (invoiceJSON, what list pages use) is the
// bytes of its render (marshalJSON(renderInvoice)), for every invoice of a
// billing lifecycle (coupons of every kind, with and without a promotion
// code, names and metadata needing escapes, a customer without email or
// name, one-off invoices, drafts and paid ones), again after the objects an
// invoice shows change (price metadata and nickname, customer email and
// name, a coupon's name and metadata, a coupon deleted), and a whole list
// page (through stripe-go and the OpenAPI spec check) is the page of
// renders.
func TestDirectInvoiceJSONIsTheRendersJSON(t *testing.T) {
	e := newEnv(t, Options{})
	pr := e.mkPrice(1250, "usd")
	pr2, err := e.sc.Prices.New(&stripe.PriceParams{Currency: stripe.String("eur"), UnitAmount: stripe.Int64(999),
		Recurring: &stripe.PriceRecurringParams{Interval: stripe.String("month")}, Nickname: stripe.String("Gold <plan>"),
		LookupKey: stripe.String("gold"), ProductData: &stripe.PriceProductDataParams{Name: stripe.String("Gold")},
		Params: stripe.Params{Metadata: map[string]string{"tier": "gold & more", "b": "2", "a": "1", "c": "3"}}})
	mustNoErr(t, err)
	coupons := []*stripe.Coupon{
		e.mkCoupon(&stripe.CouponParams{PercentOff: stripe.Float64(12.5), Duration: stripe.String("repeating"),
			DurationInMonths: stripe.Int64(2), Name: stripe.String("Spring <sale> & more")}),
		e.mkCoupon(&stripe.CouponParams{AmountOff: stripe.Int64(300), Currency: stripe.String("usd"), Duration: stripe.String("once")}),
		e.mkCoupon(&stripe.CouponParams{PercentOff: stripe.Float64(10), Duration: stripe.String("forever"), MaxRedemptions: stripe.Int64(50),
			RedeemBy: stripe.Int64(time.Now().AddDate(1, 0, 0).Unix()), Params: stripe.Params{Metadata: map[string]string{"k": "v", "é": "ü"}}}),
	}
	promo := e.mkPromo(coupons[2].ID, "DIRECT")
	start := time.Date(2026, 1, 31, 10, 0, 0, 0, time.UTC)
	clk := e.mkClock(start)
	for i := range 8 {
		params := &stripe.CustomerParams{TestClock: stripe.String(clk.ID)}
		if i%2 == 0 {
			params.Email, params.Name = stripe.String("user@example.com"), stripe.String("Zoë \"Z\" <z>")
		}
		cu, err := e.sc.Customers.New(params)
		mustNoErr(t, err)
		price := pr.ID
		if i%3 == 2 {
			price = pr2.ID
		}
		_, err = e.mkSub(cu.ID, price, func(p *stripe.SubscriptionParams) {
			switch i % 4 {
			case 0:
				p.PromotionCode = stripe.String(promo.ID)
			case 1:
				p.Coupon = stripe.String(coupons[0].ID)
			case 2:
				p.Coupon = stripe.String(coupons[1].ID)
			}
			if i%2 == 1 {
				p.AddMetadata("note", "ünïcode \"quoted\" <i>")
				p.AddMetadata("ba_code", "pc_1")
				p.AddMetadata("x", "1")
				p.AddMetadata("y", "2")
			}
		})
		mustNoErr(t, err)
		if i == 7 {
			_, err = e.sc.InvoiceItems.New(&stripe.InvoiceItemParams{Customer: stripe.String(cu.ID), Amount: stripe.Int64(500),
				Currency: stripe.String("usd"), Description: stripe.String("one-off")})
			mustNoErr(t, err)
			_, err = e.sc.Invoices.New(&stripe.InvoiceParams{Customer: stripe.String(cu.ID)})
			mustNoErr(t, err)
		}
	}
	_, err = e.sc.TestHelpersTestClocks.Advance(clk.ID, &stripe.TestHelpersTestClockAdvanceParams{FrozenTime: stripe.Int64(start.AddDate(0, 3, 0).Add(30 * time.Minute).Unix())})
	mustNoErr(t, err)

	s := e.sim
	compare := func(when string) (direct int) {
		t.Helper()
		s.mu.Lock()
		defer s.mu.Unlock()
		statuses := map[string]bool{}
		for _, in := range s.invoices {
			want, err := marshalJSON(s.renderInvoice(in))
			mustNoErr(t, err)
			v := s.invoiceJSON(in)
			got, err := marshalJSON(v)
			mustNoErr(t, err)
			if string(got) != string(want) {
				t.Fatalf("%s: invoice %s (%s):\n direct %s\n render %s", when, in.ID, in.status, got, want)
			}
			if d, ok := v.(directInvoice); ok {
				direct++
				statuses[in.status] = true
				if m, _ := json.Marshal(d); string(m) != string(want) {
					t.Fatalf("%s: invoice %s through json.Marshal:\n %s\n want %s", when, in.ID, m, want)
				}
			}
		}
		if direct < 20 || !statuses["paid"] || len(statuses) < 2 {
			t.Fatalf("%s: %d of %d invoices written directly (statuses %v): the lifecycle does not cover the cases", when, direct, len(s.invoices), statuses)
		}
		return direct
	}
	compare("after a billing year")
	// What is not written directly: an upcoming invoice (no ID), a one-off
	// invoice's line.
	s.mu.Lock()
	for _, in := range s.invoices {
		up := *in
		up.ID = ""
		item := *in
		item.lines = []*invoiceLine{{ID: "il_1", amount: 500, currency: "usd", quantity: 1, invoiceItem: "ii_1"}}
		for _, x := range []*invoice{&up, &item} {
			if _, ok := s.invoiceJSON(x).(map[string]any); !ok {
				s.mu.Unlock()
				t.Fatalf("invoiceJSON of %+v is not its render", x)
			}
		}
		break
	}
	s.mu.Unlock()

	_, err = e.sc.Prices.Update(pr.ID, &stripe.PriceParams{Nickname: stripe.String("renamed"), Params: stripe.Params{Metadata: map[string]string{"new": "1"}}})
	mustNoErr(t, err)
	s.mu.Lock()
	var cust string
	for id := range s.customers {
		cust = id
		break
	}
	s.mu.Unlock()
	_, err = e.sc.Customers.Update(cust, &stripe.CustomerParams{Email: stripe.String("new@example.com"), Name: stripe.String("New <name>")})
	mustNoErr(t, err)
	_, err = e.sc.Coupons.Update(coupons[0].ID, &stripe.CouponParams{Name: stripe.String("Renamed"), Params: stripe.Params{Metadata: map[string]string{"m": "1"}}})
	mustNoErr(t, err)
	_, err = e.sc.Coupons.Del(coupons[1].ID, nil)
	mustNoErr(t, err)
	compare("after updates")

	// A page as served (ServeHTTP, stripe-go, the spec check) is the page of renders.
	it := e.sc.Invoices.List(&stripe.InvoiceListParams{ListParams: stripe.ListParams{Limit: stripe.Int64(100), Single: true}})
	for it.Next() {
	}
	mustNoErr(t, it.Err())
	req, _ := http.NewRequest("GET", e.srv.URL+"/v1/invoices?limit=100", nil)
	req.Header.Set("Authorization", "Bearer "+testKey)
	resp, err := http.DefaultClient.Do(req)
	mustNoErr(t, err)
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	s.mu.Lock()
	var data []any
	for _, in := range s.idx.invoices.view(s.invoices, func(x *invoice) int64 { return x.seq }) {
		data = append([]any{s.renderInvoice(in)}, data...)
	}
	want, err := marshalJSON(map[string]any{"object": "list", "data": data, "has_more": false, "url": "/v1/invoices"})
	s.mu.Unlock()
	mustNoErr(t, err)
	if strings.TrimSpace(string(body)) != string(want) {
		t.Fatalf("list page:\n got  %.2000s\n want %.2000s", body, want)
	}
}
