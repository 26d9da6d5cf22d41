package stripegw

import (
	"net/http/httptest"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/stripe/stripe-go/v76"

	"github.com/billing-adapter/billing-adapter/internal/promo"
	"github.com/billing-adapter/billing-adapter/internal/stripesim"
)

// The partitioned Reader finds the oldest and newest subscription, reads
// every subscription exactly once across its created ranges, with callbacks
// one at a time, and reports the share of the range read.
func TestReaderPartitionsByCreated(t *testing.T) {
	var mu sync.Mutex
	clock := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	now := func() time.Time { mu.Lock(); defer mu.Unlock(); return clock }
	set := func(t time.Time) { mu.Lock(); clock = t; mu.Unlock() }
	sim := stripesim.New(stripesim.Options{Now: now})
	srv := httptest.NewServer(sim)
	t.Cleanup(func() { srv.Close(); sim.Close() })
	b := backendAt(srv.URL)

	prod, err := b.api.Products.New(&stripe.ProductParams{Name: stripe.String("plan")})
	must(t, "product", err)
	price, err := b.api.Prices.New(&stripe.PriceParams{Product: stripe.String(prod.ID), Currency: stripe.String("usd"),
		UnitAmount: stripe.Int64(1000), Recurring: &stripe.PriceRecurringParams{Interval: stripe.String("month")}})
	must(t, "price", err)
	start := clock
	var want []string
	sub := func(at time.Time) {
		set(at)
		cu, err := b.api.Customers.New(&stripe.CustomerParams{})
		must(t, "customer", err)
		s, err := b.api.Subscriptions.New(&stripe.SubscriptionParams{Customer: stripe.String(cu.ID),
			Items: []*stripe.SubscriptionItemsParams{{Price: stripe.String(price.ID)}}})
		must(t, "subscription", err)
		want = append(want, s.ID)
	}
	sub(start.Add(-48 * time.Hour)) // the oldest
	set(start)
	_, err = b.api.Coupons.New(&stripe.CouponParams{ID: stripe.String("pc_oldest"), PercentOff: stripe.Float64(10),
		Duration: stripe.String("forever")})
	must(t, "coupon", err)
	for i := range 230 {
		sub(start.Add(time.Duration(i) * 17 * time.Minute))
	}
	sub(clock.Add(time.Hour)) // the newest

	r := NewReader(b.gw, ReadOptions{Partitions: 4})
	collect(t, "EachCoupon", r.EachCoupon)
	if f := r.Covered("subscriptions"); f != -1 {
		t.Fatalf("covered %v before the walk, want -1 (unknown)", f)
	}
	before := sim.Count("GET /v1/subscriptions")
	inFn := false
	var got []string
	err = r.EachSubscription(t.Context(), func(s promo.StripeSubscription) error {
		if inFn {
			t.Error("callbacks overlap")
		}
		inFn = true
		_ = r.Covered("subscriptions") // progress lines ask from inside the callback
		got = append(got, s.ID)
		inFn = false
		return nil
	})
	must(t, "EachSubscription", err)
	slices.Sort(got)
	slices.Sort(want)
	if !slices.Equal(got, want) {
		t.Fatalf("read %d subscriptions, want the %d made, each once", len(got), len(want))
	}
	if reqs := sim.Count("GET /v1/subscriptions") - before; reqs < 4+2 {
		t.Fatalf("%d list requests: want the probes (newest, oldest) and one walk per range (4)", reqs)
	}
	if f := r.Covered("subscriptions"); f != 1 {
		t.Fatalf("covered %v after the walk, want 1", f)
	}
	// One range (Partitions 1) is the plain walk.
	one := NewReader(b.gw, ReadOptions{Partitions: 1})
	collect(t, "EachCoupon", one.EachCoupon)
	if n := len(collect(t, "EachSubscription", one.EachSubscription)); n != len(want) {
		t.Fatalf("one range read %d, want %d", n, len(want))
	}
}
