package stripesim

import (
	"fmt"
	"slices"
	"testing"
	"time"

	stripe "github.com/stripe/stripe-go/v76"
)

// Lists read from a creation-order index: with filters, deletions and both
// cursors, every page holds the right objects, newest first, and walking
// the pages visits every matching object once.
func TestListIndexPagesWithFiltersAndDeletions(t *testing.T) {
	e := newEnv(t, Options{})
	var ids, active []string
	for i := 0; i < 60; i++ {
		id := fmt.Sprintf("pc_list%03d", i)
		if _, err := e.sc.Coupons.New(&stripe.CouponParams{ID: stripe.String(id), PercentOff: stripe.Float64(5),
			Duration: stripe.String("forever")}); err != nil {
			t.Fatal(err)
		}
		pc, err := e.sc.PromotionCodes.New(&stripe.PromotionCodeParams{Coupon: stripe.String(id),
			Code: stripe.String(fmt.Sprintf("List%03d", i)), Active: stripe.Bool(i%3 != 0)})
		if err != nil {
			t.Fatal(err)
		}
		ids = append(ids, id)
		if i%3 != 0 {
			active = append(active, pc.ID)
		}
	}
	slices.Reverse(active) // newest first
	// Filtered walk, 7 a page.
	params := &stripe.PromotionCodeListParams{Active: stripe.Bool(true)}
	params.Limit = stripe.Int64(7)
	var got []string
	it := e.sc.PromotionCodes.List(params)
	for it.Next() {
		got = append(got, it.PromotionCode().ID)
	}
	mustNoErr(t, it.Err())
	if !slices.Equal(got, active) {
		t.Fatalf("active promotion codes, paged\n got  %v\n want %v", got, active)
	}
	// ending_before: the newer matching objects closest to the cursor.
	r := e.raw("GET", "/v1/promotion_codes", testKey, "active=true&limit=3&ending_before="+active[10], nil)
	data := r.body["data"].([]any)
	if len(data) != 3 || data[0].(map[string]any)["id"] != active[7] || data[2].(map[string]any)["id"] != active[9] || r.body["has_more"] != true {
		t.Fatalf("ending_before page = %s", r.raw)
	}
	// A code's text is unique among active codes, whatever its case.
	if _, err := e.sc.PromotionCodes.New(&stripe.PromotionCodeParams{Coupon: stripe.String(ids[1]), Code: stripe.String("LIST001")}); err == nil {
		t.Fatal("a second active LIST001 was accepted")
	}
	if _, err := e.sc.PromotionCodes.New(&stripe.PromotionCodeParams{Coupon: stripe.String(ids[0]), Code: stripe.String("list000")}); err != nil {
		t.Fatalf("LIST000 is inactive, its text may be reused: %v", err)
	}
	// Deleted coupons leave the list; later ones join it.
	for _, id := range ids[10:20] {
		if _, err := e.sc.Coupons.Del(id, nil); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := e.sc.Coupons.New(&stripe.CouponParams{ID: stripe.String("pc_listlast"), PercentOff: stripe.Float64(5),
		Duration: stripe.String("forever")}); err != nil {
		t.Fatal(err)
	}
	want := slices.Concat(ids[:10], ids[20:], []string{"pc_listlast"})
	slices.Reverse(want) // newest first
	var coupons []string
	cl := e.sc.Coupons.List(&stripe.CouponListParams{ListParams: stripe.ListParams{Limit: stripe.Int64(11)}})
	for cl.Next() {
		coupons = append(coupons, cl.Coupon().ID)
	}
	mustNoErr(t, cl.Err())
	if !slices.Equal(coupons, want) {
		t.Fatalf("coupons after deletions\n got  %v\n want %v", coupons, want)
	}
}

// MaxEvents keeps the newest events: older ones are gone from the list and
// by ID, newer ones page as before.
func TestMaxEventsKeepsTheNewest(t *testing.T) {
	e := newEnv(t, Options{MaxEvents: 5})
	var ids []string
	for i := 0; i < 23; i++ {
		cu, err := e.sc.Customers.New(&stripe.CustomerParams{})
		if err != nil {
			t.Fatal(err)
		}
		ids = append(ids, cu.ID)
	}
	var got []string
	it := e.sc.Events.List(&stripe.EventListParams{})
	for it.Next() {
		got = append(got, it.Event().ID)
	}
	mustNoErr(t, it.Err())
	if len(got) < 5 || len(got) >= 10 {
		t.Fatalf("%d events kept, want between 5 and 9", len(got))
	}
	if r := e.raw("GET", "/v1/events/"+got[0], testKey, "", nil); r.status != 200 {
		t.Fatalf("newest event: %d", r.status)
	}
}

// Pages of a list filtered on created, read after a cursor from the range's
// own objects (created_ranges.go), are the pages the unfiltered walk gives
// less the objects outside the range: with invoices of several clocks
// interleaved, objects created between pages, and a clock deleted.
func TestCreatedRangePagesMatchTheFilteredWalk(t *testing.T) {
	e := newEnv(t, Options{})
	pr := e.mkPrice(1000, "usd")
	start := time.Date(2026, 1, 15, 0, 0, 0, 0, time.UTC)
	var clocks []string
	for range 3 {
		clk, err := e.sc.TestHelpersTestClocks.New(&stripe.TestHelpersTestClockParams{FrozenTime: stripe.Int64(start.Unix())})
		mustNoErr(t, err)
		clocks = append(clocks, clk.ID)
		for range 3 {
			_, err := e.sc.Subscriptions.New(&stripe.SubscriptionParams{Customer: stripe.String(e.mkCustomer(clk.ID).ID),
				Items: []*stripe.SubscriptionItemsParams{{Price: stripe.String(pr.ID)}}})
			mustNoErr(t, err)
		}
	}
	advance := func(clk string, months int) {
		_, err := e.sc.TestHelpersTestClocks.Advance(clk, &stripe.TestHelpersTestClockAdvanceParams{
			FrozenTime: stripe.Int64(start.AddDate(0, months, 1).Unix())})
		mustNoErr(t, err)
	}
	advance(clocks[0], 6)
	advance(clocks[1], 6)
	lo, hi := start.AddDate(0, 2, 0).Unix(), start.AddDate(0, 5, 0).Unix()
	// want: every invoice, newest first, in [lo, hi).
	want := func() []string {
		var out []string
		it := e.sc.Invoices.List(&stripe.InvoiceListParams{ListParams: stripe.ListParams{Limit: stripe.Int64(100)}})
		for it.Next() {
			if c := it.Invoice().Created; c >= lo && c < hi {
				out = append(out, it.Invoice().ID)
			}
		}
		mustNoErr(t, it.Err())
		return out
	}
	paged := func(limit int64) []string {
		params := &stripe.InvoiceListParams{CreatedRange: &stripe.RangeQueryParams{GreaterThanOrEqual: lo, LesserThan: hi}}
		params.Limit = stripe.Int64(limit)
		var out []string
		it := e.sc.Invoices.List(params)
		for it.Next() {
			out = append(out, it.Invoice().ID)
		}
		mustNoErr(t, it.Err())
		return out
	}
	check := func(when string) {
		t.Helper()
		w := want()
		if len(w) == 0 {
			t.Fatalf("%s: no invoice in the range", when)
		}
		for _, limit := range []int64{1, 2, 5} {
			if got := paged(limit); !slices.Equal(got, w) {
				t.Fatalf("%s, %d a page:\n got  %v\n want %v", when, limit, got, w)
			}
		}
		// ending_before from the oldest: the newer ones closest to it.
		r := e.raw("GET", "/v1/invoices", testKey, fmt.Sprintf("created[gte]=%d&created[lt]=%d&limit=2&ending_before=%s", lo, hi, w[len(w)-1]), nil)
		data := r.body["data"].([]any)
		if len(w) >= 3 && (len(data) != 2 || data[0].(map[string]any)["id"] != w[len(w)-3] || data[1].(map[string]any)["id"] != w[len(w)-2]) {
			t.Fatalf("%s: ending_before page = %s", when, r.raw)
		}
	}
	check("two clocks billed")
	advance(clocks[2], 6) // new invoices in the range, after the range was first read
	check("a third clock billed")
	_, err := e.sc.TestHelpersTestClocks.Del(clocks[0], nil) // its customers' invoices go
	mustNoErr(t, err)
	check("a clock deleted")
}
