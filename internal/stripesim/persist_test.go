package stripesim

import (
	"encoding/json"
	"net/http/httptest"
	"path/filepath"
	"reflect"
	"testing"
	"time"

	stripe "github.com/stripe/stripe-go/v76"
	"github.com/stripe/stripe-go/v76/client"
)

func apiFor(url string) *client.API {
	b := stripe.GetBackendWithConfig(stripe.APIBackend, &stripe.BackendConfig{URL: stripe.String(url),
		MaxNetworkRetries: stripe.Int64(0), LeveledLogger: &stripe.LeveledLogger{Level: stripe.LevelNull}})
	return client.New("sk_test_persist", &stripe.Backends{API: b, Connect: b, Uploads: b})
}

// A simulator opened on the same state file continues where the first one
// stopped: every object, discount, invoice, clock and event is there, the
// billing goes on from the saved period, and an idempotent retry replays.
func TestOpenContinuesFromTheStateFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "state", "stripe-sim.json")
	s1, err := Open(Options{StatePath: path})
	if err != nil {
		t.Fatal(err)
	}
	h1 := httptest.NewServer(s1)
	api := apiFor(h1.URL)
	start := time.Date(2027, 1, 15, 12, 0, 0, 0, time.UTC)
	clk, err := api.TestHelpersTestClocks.New(&stripe.TestHelpersTestClockParams{FrozenTime: stripe.Int64(start.Unix())})
	if err != nil {
		t.Fatal(err)
	}
	cu, _ := api.Customers.New(&stripe.CustomerParams{Email: stripe.String("p@example.com"), TestClock: stripe.String(clk.ID)})
	prod, _ := api.Products.New(&stripe.ProductParams{Name: stripe.String("P")})
	pr, _ := api.Prices.New(&stripe.PriceParams{Currency: stripe.String("usd"), UnitAmount: stripe.Int64(2000), Product: stripe.String(prod.ID),
		Recurring: &stripe.PriceRecurringParams{Interval: stripe.String("month")}})
	cp, _ := api.Coupons.New(&stripe.CouponParams{PercentOff: stripe.Float64(25), Duration: stripe.String("repeating"), DurationInMonths: stripe.Int64(3)})
	promo, _ := api.PromotionCodes.New(&stripe.PromotionCodeParams{Coupon: stripe.String(cp.ID), Code: stripe.String("KEEP25")})
	subParams := &stripe.SubscriptionParams{Customer: stripe.String(cu.ID), Items: []*stripe.SubscriptionItemsParams{{Price: stripe.String(pr.ID)}},
		PromotionCode: stripe.String(promo.ID)}
	subParams.SetIdempotencyKey("persist-sub-1")
	sub, err := api.Subscriptions.New(subParams)
	if err != nil {
		t.Fatal(err)
	}
	read := func(api *client.API) map[string]any {
		t.Helper()
		out := map[string]any{}
		for name, get := range map[string]func() (any, error){
			"customer": func() (any, error) { return api.Customers.Get(cu.ID, nil) },
			"sub":      func() (any, error) { return api.Subscriptions.Get(sub.ID, nil) },
			"promo":    func() (any, error) { return api.PromotionCodes.Get(promo.ID, nil) },
			"coupon":   func() (any, error) { return api.Coupons.Get(cp.ID, nil) },
			"price":    func() (any, error) { return api.Prices.Get(pr.ID, nil) },
			"clock":    func() (any, error) { return api.TestHelpersTestClocks.Get(clk.ID, nil) },
		} {
			v, err := get()
			if err != nil {
				t.Fatalf("%s after restart: %v", name, err)
			}
			b, _ := json.Marshal(v)
			var m map[string]any
			_ = json.Unmarshal(b, &m)
			delete(m, "LastResponse")
			out[name] = m
		}
		var evs []string
		it := api.Events.List(&stripe.EventListParams{})
		for it.Next() {
			evs = append(evs, it.Event().ID+" "+string(it.Event().Type))
		}
		out["events"] = evs
		var ins []string
		iit := api.Invoices.List(&stripe.InvoiceListParams{Subscription: stripe.String(sub.ID)})
		for iit.Next() {
			ins = append(ins, iit.Invoice().ID+" "+string(iit.Invoice().Status))
		}
		out["invoices"] = ins
		return out
	}
	before := read(api)
	h1.Close()
	s1.Close()

	s2, err := Open(Options{StatePath: path})
	if err != nil {
		t.Fatal(err)
	}
	h2 := httptest.NewServer(s2)
	t.Cleanup(func() { h2.Close(); s2.Close() })
	api2 := apiFor(h2.URL)
	if after := read(api2); !reflect.DeepEqual(before, after) {
		t.Fatalf("state after restart differs:\nbefore %v\n after %v", before, after)
	}
	again, err := api2.Subscriptions.New(subParams)
	if err != nil || again.ID != sub.ID {
		t.Fatalf("idempotent retry after restart: %v %v, want the same subscription %s", again, err, sub.ID)
	}
	// Billing continues: two more months, both discounted.
	if _, err := api2.TestHelpersTestClocks.Advance(clk.ID, &stripe.TestHelpersTestClockAdvanceParams{
		FrozenTime: stripe.Int64(start.AddDate(0, 2, 0).Add(time.Hour).Unix())}); err != nil {
		t.Fatal(err)
	}
	n := 0
	it := api2.Invoices.List(&stripe.InvoiceListParams{Subscription: stripe.String(sub.ID)})
	for it.Next() {
		if it.Invoice().Total != 1500 || it.Invoice().Status != "paid" {
			t.Fatalf("invoice %s total %d status %s, want 1500 paid", it.Invoice().ID, it.Invoice().Total, it.Invoice().Status)
		}
		n++
	}
	if n != 3 {
		t.Fatalf("%d invoices after the restart and two months, want 3", n)
	}
}

// A state file that is not the simulator's is refused with a message naming it.
func TestOpenRefusesABadStateFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "bad.json")
	if err := writeFileAtomic(path, []byte("not json")); err != nil {
		t.Fatal(err)
	}
	if _, err := Open(Options{StatePath: path}); err == nil {
		t.Fatal("Open accepted a broken state file")
	}
}
