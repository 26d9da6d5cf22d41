package stripesim

import (
	"fmt"
	"slices"
	"testing"

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
