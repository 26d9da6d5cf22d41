package stripegw

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"net/http"
	"net/url"
	"reflect"
	"slices"
	"strconv"
	"testing"
	"time"

	"github.com/stripe/stripe-go/v76"

	"github.com/billing-adapter/billing-adapter/internal/promo"
	"github.com/billing-adapter/billing-adapter/internal/stripesim"
	"github.com/billing-adapter/billing-adapter/internal/testutil/stripemock"
)

// The reconcile reads (promo.StripeReader): request validity against
// stripe-mock, behaviour against a fresh simulator per test (so that every
// list holds exactly the test's fixtures).

// collect walks a reader to the end and returns what fn saw, in order.
func collect[T any](t *testing.T, what string, walk func(context.Context, func(T) error) error) []T {
	t.Helper()
	var out []T
	err := walk(t.Context(), func(x T) error {
		out = append(out, x)
		return nil
	})
	must(t, what, err)
	return out
}

func paidSince(gw *Gateway, since time.Time) func(context.Context, func(promo.StripeInvoice) error) error {
	return func(ctx context.Context, fn func(promo.StripeInvoice) error) error {
		return gw.EachPaidInvoice(ctx, since, fn)
	}
}

// TestReaderStripeMock sends every list request of the reader to stripe-mock,
// which validates it (parameters and expansions) against Stripe's 2023-10-16
// spec; the recorder shows the exact parameters sent.
func TestReaderStripeMock(t *testing.T) {
	base, rec := recordingProxy(t, stripemock.Start(t))
	b := backendAt(base)
	since := time.Date(2024, 1, 10, 12, 0, 0, 0, time.UTC)
	cases := []struct {
		name, path, op string
		walk           func(t *testing.T) int // objects seen
		want           url.Values             // the list request's parameters, all of them
	}{
		{"EachCoupon", "/v1/coupons", opCouponList,
			func(t *testing.T) int { return len(collect(t, "EachCoupon", b.gw.EachCoupon)) },
			url.Values{"limit": {"100"}, "expand[0]": {"data.applies_to"}}},
		{"EachPromotionCode", "/v1/promotion_codes", opPromotionCodeList,
			func(t *testing.T) int { return len(collect(t, "EachPromotionCode", b.gw.EachPromotionCode)) },
			url.Values{"limit": {"100"}}}, // no active filter: inactive codes too
		{"EachSubscription", "/v1/subscriptions", opSubscriptionList,
			func(t *testing.T) int { return len(collect(t, "EachSubscription", b.gw.EachSubscription)) },
			url.Values{"limit": {"100"}, "status": {"all"}}},
		{"EachPaidInvoice", "/v1/invoices", opInvoiceList,
			func(t *testing.T) int { return len(collect(t, "EachPaidInvoice", paidSince(b.gw, time.Time{}))) },
			url.Values{"limit": {"100"}, "status": {"paid"}}},
		{"EachEvent", "/v1/events", opEventList,
			func(t *testing.T) int {
				return len(collect(t, "EachEvent", func(ctx context.Context, fn func([]byte) error) error {
					return b.gw.EachEvent(ctx, since, []string{"invoice.paid", "customer.discount.created"}, fn)
				}))
			},
			url.Values{"limit": {"100"}, "types[0]": {"invoice.paid"}, "types[1]": {"customer.discount.created"},
				"created[gte]": {strconv.FormatInt(since.Unix(), 10)}}},
		{"EachPaidInvoice since", "/v1/invoices", opInvoiceList,
			func(t *testing.T) int { return len(collect(t, "EachPaidInvoice", paidSince(b.gw, since))) },
			url.Values{"limit": {"100"}, "status": {"paid"}, "created[gte]": {strconv.FormatInt(since.Unix(), 10)}}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			before := len(rec.all())
			if n := tc.walk(t); n < 1 {
				t.Errorf("%s called fn %d times, want at least once", tc.name, n)
			}
			reqs := rec.all()[before:]
			if len(reqs) != 1 { // stripe-mock answers one page with has_more=false
				t.Fatalf("%s sent %d requests, want 1: %+v", tc.name, len(reqs), reqs)
			}
			if r := reqs[0]; r.Method != "GET" || r.Path != tc.path || !reflect.DeepEqual(r.Form, tc.want) {
				t.Errorf("%s sent %s %s %v, want GET %s %v", tc.name, r.Method, r.Path, r.Form, tc.path, tc.want)
			}
			assertMetric(t, b.metrics, tc.op, "ok")
		})
	}
}

// readerFixtures is what TestReaderSimulator creates.
type readerFixtures struct {
	t0, t1                                  time.Time // the test clock's start and its time a month later
	start, end                              time.Time // real time around the creation of coupons and promotion codes
	prodA                                   string
	couponPct, couponThird, couponFull      string
	couponFlat                              string
	pcNew, pcFlat, pcOld                    string
	expires                                 time.Time
	cusA, cusB, cusC, cusD                  string
	subPct, subFlat, subPlain, subCancelled string
	subUnpaid                               string
	discPct, discFlat                       string // the subscriptions' discount IDs
}

// newReaderFixtures creates, through plain stripe-go on the simulator:
// coupons (12.5% forever on product A, 33.33% once, 100% once, 550 usd
// repeating 3 months), promotion codes (one first-time-only with an expiry,
// one plain, one inactive), four customers on a test clock starting at t0
// with a subscription each (12.5% through a promotion code, 550 off through
// a promotion code, none, and a declined one left incomplete) plus a
// canceled one, and advances the clock to t1 = t0 + 1 month, which bills the
// three live ones again.
func newReaderFixtures(t *testing.T, b *backend) *readerFixtures {
	t.Helper()
	api := b.api
	f := &readerFixtures{
		t0: time.Date(2024, 1, 10, 12, 0, 0, 0, time.UTC),
		t1: time.Date(2024, 2, 10, 12, 0, 0, 0, time.UTC),
	}
	f.start = time.Now().Truncate(time.Second)
	var priceA, priceB string
	f.prodA, priceA = b.plan(t, "usd", 2000)
	_, priceB = b.plan(t, "usd", 3000)

	coupon := func(p *stripe.CouponParams) string {
		t.Helper()
		c, err := api.Coupons.New(p)
		must(t, "fixture: coupon", err)
		return c.ID
	}
	f.couponPct = coupon(&stripe.CouponParams{PercentOff: stripe.Float64(12.5), Duration: stripe.String("forever"),
		Name: stripe.String("TWELVE"), AppliesTo: &stripe.CouponAppliesToParams{Products: stripe.StringSlice([]string{f.prodA})},
		Metadata: map[string]string{"campaign": "spring"}})
	f.couponThird = coupon(&stripe.CouponParams{PercentOff: stripe.Float64(33.33), Duration: stripe.String("once")})
	f.couponFull = coupon(&stripe.CouponParams{ID: stripe.String("FULL100"), PercentOff: stripe.Float64(100), Duration: stripe.String("once")})
	f.couponFlat = coupon(&stripe.CouponParams{AmountOff: stripe.Int64(550), Currency: stripe.String("usd"),
		Duration: stripe.String("repeating"), DurationInMonths: stripe.Int64(3), Name: stripe.String("FIVE50")})

	f.expires = time.Now().Add(30 * 24 * time.Hour).Truncate(time.Second).UTC()
	f.pcNew = b.promotionCode(t, f.couponPct, func(p *stripe.PromotionCodeParams) {
		p.Code = stripe.String("NEWBIE")
		p.ExpiresAt = stripe.Int64(f.expires.Unix())
		p.Restrictions = &stripe.PromotionCodeRestrictionsParams{FirstTimeTransaction: stripe.Bool(true)}
		p.Metadata = map[string]string{"promo_code_id": "pc_new"}
	})
	f.pcFlat = b.promotionCode(t, f.couponFlat, func(p *stripe.PromotionCodeParams) { p.Code = stripe.String("FLAT") })
	f.pcOld = b.promotionCode(t, f.couponFlat, func(p *stripe.PromotionCodeParams) {
		p.Code = stripe.String("OLD")
		p.Active = stripe.Bool(false)
	})
	f.end = time.Now()

	clock := b.clock(t, f.t0)
	f.cusA, f.cusB, f.cusC, f.cusD = b.customer(t, clock), b.customer(t, clock), b.customer(t, clock), b.customer(t, clock)
	subscribe := func(customer, price, promotionCode string, md map[string]string) string {
		t.Helper()
		p := &stripe.SubscriptionParams{Customer: stripe.String(customer),
			Items: []*stripe.SubscriptionItemsParams{{Price: stripe.String(price)}}, Metadata: md}
		if promotionCode != "" {
			p.PromotionCode = stripe.String(promotionCode)
		}
		sub, err := api.Subscriptions.New(p)
		must(t, "fixture: subscription", err)
		return sub.ID
	}
	f.subPct = subscribe(f.cusA, priceA, f.pcNew, map[string]string{"redemption_id": "rd_1"})
	f.subFlat = subscribe(f.cusB, priceA, f.pcFlat, nil)
	f.subPlain = subscribe(f.cusC, priceB, "", nil)
	f.subCancelled = subscribe(f.cusC, priceA, "", nil)
	_, err := api.Subscriptions.Cancel(f.subCancelled, nil)
	must(t, "fixture: cancel subscription", err)
	must(t, "fixture: decline", b.sim.SetCustomerDecline(f.cusD, true))
	f.subUnpaid = subscribe(f.cusD, priceA, "", nil)
	b.advanceClock(t, clock, f.t1)

	discountOf := func(subID string) string {
		t.Helper()
		sub, err := api.Subscriptions.Get(subID, nil)
		must(t, "read subscription", err)
		if sub.Discount == nil || sub.Discount.ID == "" {
			t.Fatalf("fixture: subscription %s has no discount", subID)
		}
		return sub.Discount.ID
	}
	f.discPct, f.discFlat = discountOf(f.subPct), discountOf(f.subFlat)
	return f
}

func (f *readerFixtures) discountPct() *promo.StripeDiscount {
	return &promo.StripeDiscount{ID: f.discPct, CouponID: f.couponPct, PromotionCodeID: f.pcNew,
		Customer: f.cusA, Subscription: f.subPct, Start: f.t0}
}

func (f *readerFixtures) discountFlat() *promo.StripeDiscount {
	return &promo.StripeDiscount{ID: f.discFlat, CouponID: f.couponFlat, PromotionCodeID: f.pcFlat,
		Customer: f.cusB, Subscription: f.subFlat, Start: f.t0, End: time.Date(2024, 4, 10, 12, 0, 0, 0, time.UTC)}
}

// inWindow checks a creation time taken from the simulator's real clock.
func inWindow(t *testing.T, what string, created, start, end time.Time) {
	t.Helper()
	if created.Before(start) || created.After(end) {
		t.Errorf("%s created %v, want within [%v, %v]", what, created, start, end)
	}
}

// normMeta makes empty metadata nil, for comparison.
func normMeta(m map[string]string) map[string]string {
	if len(m) == 0 {
		return nil
	}
	return maps.Clone(m)
}

func TestReaderSimulator(t *testing.T) {
	b := simBackend(t)
	f := newReaderFixtures(t, b)

	t.Run("EachCoupon", func(t *testing.T) {
		got := collect(t, "EachCoupon", b.gw.EachCoupon)
		want := []promo.StripeCoupon{ // Stripe's order: newest first
			{ID: f.couponFlat, Name: "FIVE50", AmountOff: 550, Currency: "usd", Duration: promo.Repeating, Months: 3, TimesRedeemed: 1},
			{ID: f.couponFull, PercentOff: "100", Duration: promo.Once},
			{ID: f.couponThird, PercentOff: "33.33", Duration: promo.Once},
			{ID: f.couponPct, Name: "TWELVE", PercentOff: "12.5", Duration: promo.Forever, ProductIDs: []string{f.prodA},
				Metadata: map[string]string{"campaign": "spring"}, TimesRedeemed: 1},
		}
		for i := range got {
			inWindow(t, "coupon "+got[i].ID, got[i].Created, f.start, f.end)
			got[i].Created = time.Time{}
			got[i].Metadata = normMeta(got[i].Metadata)
		}
		if !reflect.DeepEqual(got, want) {
			t.Errorf("EachCoupon:\n got %+v\nwant %+v", got, want)
		}
	})

	t.Run("EachPromotionCode", func(t *testing.T) {
		got := collect(t, "EachPromotionCode", b.gw.EachPromotionCode)
		want := []promo.StripePromotionCode{
			{ID: f.pcOld, Code: "OLD", CouponID: f.couponFlat, Active: false},
			{ID: f.pcFlat, Code: "FLAT", CouponID: f.couponFlat, Active: true},
			{ID: f.pcNew, Code: "NEWBIE", CouponID: f.couponPct, Active: true, ExpiresAt: &f.expires,
				FirstTimeTransaction: true, Metadata: map[string]string{"promo_code_id": "pc_new"}},
		}
		for i := range got {
			inWindow(t, "promotion code "+got[i].ID, got[i].Created, f.start, f.end)
			got[i].Created = time.Time{}
			got[i].Metadata = normMeta(got[i].Metadata)
		}
		if !reflect.DeepEqual(got, want) {
			t.Errorf("EachPromotionCode:\n got %s\nwant %s", fmtPromos(got), fmtPromos(want))
		}
	})

	t.Run("EachSubscription", func(t *testing.T) {
		got := collect(t, "EachSubscription", b.gw.EachSubscription)
		want := []promo.StripeSubscription{
			{ID: f.subUnpaid, Customer: f.cusD, Status: "incomplete", Created: f.t0},
			{ID: f.subCancelled, Customer: f.cusC, Status: "canceled", Created: f.t0, CanceledAt: f.t0},
			{ID: f.subPlain, Customer: f.cusC, Status: "active", Created: f.t0},
			{ID: f.subFlat, Customer: f.cusB, Status: "active", Created: f.t0, Discount: f.discountFlat()},
			{ID: f.subPct, Customer: f.cusA, Status: "active", Created: f.t0, Discount: f.discountPct(),
				Metadata: map[string]string{"redemption_id": "rd_1"}},
		}
		for i := range got {
			got[i].Metadata = normMeta(got[i].Metadata)
		}
		if !reflect.DeepEqual(got, want) {
			t.Errorf("EachSubscription:\n got %s\nwant %s", fmtSubs(got), fmtSubs(want))
		}
	})

	t.Run("EachPaidInvoice", func(t *testing.T) {
		// The expected paid invoices by subscription and payment time; the
		// declined customer's open invoice is not among them.
		type key struct {
			sub    string
			paidAt time.Time
		}
		first := map[string]promo.StripeInvoice{
			f.subPct:       {Customer: f.cusA, AmountPaid: 1750, Discount: f.discountPct(), DiscountAmount: 250},
			f.subFlat:      {Customer: f.cusB, AmountPaid: 1450, Discount: f.discountFlat(), DiscountAmount: 550},
			f.subPlain:     {Customer: f.cusC, AmountPaid: 3000},
			f.subCancelled: {Customer: f.cusC, AmountPaid: 2000},
		}
		want := map[key]promo.StripeInvoice{}
		for sub, in := range first {
			in.Subscription, in.Currency = sub, "usd"
			in.PaidAt = f.t0
			want[key{sub, f.t0}] = in
			if sub != f.subCancelled { // renewed at t1
				in.PaidAt = f.t1
				want[key{sub, f.t1}] = in
			}
		}
		// Every invoice of those subscriptions is paid; subUnpaid's is not.
		var allPaid []string
		for _, sub := range []string{f.subPct, f.subFlat, f.subPlain, f.subCancelled} {
			allPaid = append(allPaid, b.invoiceIDs(t, sub)...)
		}
		if unpaid := b.invoiceIDs(t, f.subUnpaid); len(unpaid) != 1 {
			t.Fatalf("fixture: the declined subscription has invoices %v, want one open invoice", unpaid)
		}

		cases := []struct {
			name  string
			since time.Time
			want  int // invoices: all 7, or the 3 renewals at t1
		}{
			{"all (since zero)", time.Time{}, 7},
			{"since t0", f.t0, 7},
			{"since t0+1s", f.t0.Add(time.Second), 3},
			{"since t1 (inclusive)", f.t1, 3},
			{"since t1+0.5s", f.t1.Add(500 * time.Millisecond), 0},
			{"since t1+1s", f.t1.Add(time.Second), 0},
		}
		for _, tc := range cases {
			t.Run(tc.name, func(t *testing.T) {
				got := collect(t, "EachPaidInvoice", paidSince(b.gw, tc.since))
				if len(got) != tc.want {
					t.Errorf("EachPaidInvoice(%v): %d invoices, want %d: %s", tc.since, len(got), tc.want, fmtInvoices(got))
				}
				seen := map[string]bool{}
				for _, in := range got {
					if seen[in.ID] || !slices.Contains(allPaid, in.ID) {
						t.Errorf("invoice %s repeated or not one of the paid invoices %v", in.ID, allPaid)
					}
					seen[in.ID] = true
					if in.PaidAt.Before(tc.since) {
						t.Errorf("invoice %s paid at %v, before since %v", in.ID, in.PaidAt, tc.since)
					}
					w, ok := want[key{in.Subscription, in.PaidAt}]
					if !ok {
						t.Errorf("unexpected invoice %s", fmtInvoices([]promo.StripeInvoice{in}))
						continue
					}
					w.ID = in.ID
					if !reflect.DeepEqual(in, w) {
						t.Errorf("invoice:\n got %s\nwant %s", fmtInvoices([]promo.StripeInvoice{in}), fmtInvoices([]promo.StripeInvoice{w}))
					}
				}
			})
		}
	})

	// A callback error stops the walk at once and comes back as is.
	t.Run("callback error", func(t *testing.T) {
		stop := errors.New("stop here")
		walks := []struct {
			name string
			walk func(ctx context.Context, fn func() error) error
		}{
			{"EachCoupon", func(ctx context.Context, fn func() error) error {
				return b.gw.EachCoupon(ctx, func(promo.StripeCoupon) error { return fn() })
			}},
			{"EachPromotionCode", func(ctx context.Context, fn func() error) error {
				return b.gw.EachPromotionCode(ctx, func(promo.StripePromotionCode) error { return fn() })
			}},
			{"EachSubscription", func(ctx context.Context, fn func() error) error {
				return b.gw.EachSubscription(ctx, func(promo.StripeSubscription) error { return fn() })
			}},
			{"EachPaidInvoice", func(ctx context.Context, fn func() error) error {
				return b.gw.EachPaidInvoice(ctx, time.Time{}, func(promo.StripeInvoice) error { return fn() })
			}},
		}
		for _, w := range walks {
			calls := 0
			err := w.walk(t.Context(), func() error {
				calls++
				if calls == 2 {
					return stop
				}
				return nil
			})
			if err != stop || !errors.Is(err, stop) {
				t.Errorf("%s: error %v (%T), want the callback's error unchanged", w.name, err, err)
			}
			if calls != 2 {
				t.Errorf("%s: fn called %d times, want 2 (the walk stops at the error)", w.name, calls)
			}
		}
	})
}

// TestReaderPaging walks more objects than one page holds (stripe-go and the
// reader use limit=100).
func TestReaderPaging(t *testing.T) {
	b := simBackend(t)
	const n = 120
	var ids []string // newest first, as Stripe lists them
	for i := range n {
		c, err := b.api.Coupons.New(&stripe.CouponParams{ID: stripe.String(fmt.Sprintf("PAGE%03d", i)),
			PercentOff: stripe.Float64(10), Duration: stripe.String("once")})
		must(t, "fixture: coupon", err)
		ids = append([]string{c.ID}, ids...)
	}
	const listOp = "GET /v1/coupons"

	t.Run("all pages", func(t *testing.T) {
		before := b.sim.Count(listOp)
		got := collect(t, "EachCoupon", b.gw.EachCoupon)
		var gotIDs []string
		for _, c := range got {
			gotIDs = append(gotIDs, c.ID)
			if c.PercentOff != "10" {
				t.Errorf("coupon %s percent_off %q, want \"10\"", c.ID, c.PercentOff)
			}
		}
		if !slices.Equal(gotIDs, ids) {
			t.Errorf("EachCoupon returned %d coupons %v, want the %d coupons %v in order", len(gotIDs), gotIDs, n, ids)
		}
		if reqs := b.sim.Count(listOp) - before; reqs != 2 {
			t.Errorf("EachCoupon sent %d list requests, want 2 pages", reqs)
		}
		assertMetric(t, b.metrics, opCouponList, "ok")
	})

	t.Run("callback error on the first page requests no other page", func(t *testing.T) {
		before := b.sim.Count(listOp)
		stop := &promo.Error{Code: promo.CodeInternal, Message: "redis down"} // a domain error: not re-translated
		calls := 0
		err := b.gw.EachCoupon(t.Context(), func(promo.StripeCoupon) error {
			calls++
			if calls == 50 {
				return stop
			}
			return nil
		})
		if err != error(stop) {
			t.Errorf("error %v, want the callback's *promo.Error unchanged", err)
		}
		if calls != 50 {
			t.Errorf("fn called %d times, want 50", calls)
		}
		if reqs := b.sim.Count(listOp) - before; reqs != 1 {
			t.Errorf("%d list requests, want 1", reqs)
		}
	})

	t.Run("callback error on the second page", func(t *testing.T) {
		stop := errors.New("stop")
		calls := 0
		err := b.gw.EachCoupon(t.Context(), func(promo.StripeCoupon) error {
			calls++
			if calls == 101 {
				return fmt.Errorf("wrapped: %w", stop)
			}
			return nil
		})
		if !errors.Is(err, stop) || promo.CodeOf(err) == promo.CodeStripeError {
			t.Errorf("error %v, want the callback's error, not a Stripe error", err)
		}
		if calls != 101 {
			t.Errorf("fn called %d times, want 101", calls)
		}
	})

	t.Run("Stripe error on the second page", func(t *testing.T) {
		b.sim.InjectFault(stripesim.Fault{Kind: stripesim.FaultServerError, Method: "GET", Path: "/v1/coupons", Skip: 1})
		calls := 0
		err := b.gw.EachCoupon(t.Context(), func(promo.StripeCoupon) error {
			calls++
			return nil
		})
		pe := asPromo(t, err)
		if pe.Code != promo.CodeStripeError || pe.StripeRequestID == "" || !errors.Is(err, promo.ErrOutcomeUnknown) {
			t.Errorf("error %+v, want stripe_error with Stripe's request ID wrapping ErrOutcomeUnknown", pe)
		}
		if calls != 100 {
			t.Errorf("fn called %d times before the failed page, want 100", calls)
		}
		assertMetric(t, b.metrics, opCouponList, "api_error")
	})

	t.Run("context is passed on", func(t *testing.T) {
		ctx, cancel := context.WithCancel(t.Context())
		cancel()
		walks := map[string]func(context.Context) error{
			"EachCoupon": func(ctx context.Context) error {
				return b.gw.EachCoupon(ctx, func(promo.StripeCoupon) error { return nil })
			},
			"EachPromotionCode": func(ctx context.Context) error {
				return b.gw.EachPromotionCode(ctx, func(promo.StripePromotionCode) error { return nil })
			},
			"EachSubscription": func(ctx context.Context) error {
				return b.gw.EachSubscription(ctx, func(promo.StripeSubscription) error { return nil })
			},
			"EachPaidInvoice": func(ctx context.Context) error {
				return b.gw.EachPaidInvoice(ctx, time.Time{}, func(promo.StripeInvoice) error { return nil })
			},
		}
		for name, walk := range walks {
			if err := walk(ctx); !errors.Is(err, context.Canceled) || promo.CodeOf(err) != promo.CodeStripeError {
				t.Errorf("%s with a canceled context: %v, want a stripe_error wrapping context.Canceled", name, err)
			}
		}
	})
}

func fmtPromos(ps []promo.StripePromotionCode) string {
	s := ""
	for _, p := range ps {
		exp := "nil"
		if p.ExpiresAt != nil {
			exp = p.ExpiresAt.String()
		}
		s += fmt.Sprintf("\n  {ID:%s Code:%s Coupon:%s Active:%v ExpiresAt:%s FirstTime:%v Metadata:%v}",
			p.ID, p.Code, p.CouponID, p.Active, exp, p.FirstTimeTransaction, p.Metadata)
	}
	return s
}

func fmtDiscount(d *promo.StripeDiscount) string {
	if d == nil {
		return "nil"
	}
	return fmt.Sprintf("%+v", *d)
}

func fmtSubs(ss []promo.StripeSubscription) string {
	s := ""
	for _, x := range ss {
		s += fmt.Sprintf("\n  {ID:%s Customer:%s Status:%s Created:%v CanceledAt:%v Metadata:%v Discount:%s}",
			x.ID, x.Customer, x.Status, x.Created, x.CanceledAt, x.Metadata, fmtDiscount(x.Discount))
	}
	return s
}

func fmtInvoices(ins []promo.StripeInvoice) string {
	s := ""
	for _, x := range ins {
		s += fmt.Sprintf("\n  {ID:%s Customer:%s Subscription:%s %d %s PaidAt:%v DiscountAmount:%d Discount:%s}",
			x.ID, x.Customer, x.Subscription, x.AmountPaid, x.Currency, x.PaidAt, x.DiscountAmount, fmtDiscount(x.Discount))
	}
	return s
}

// TestReaderConversions covers answers the simulator never gives: an
// invoice whose total_discount_amounts also names another discount, a
// discount without customer and subscription, no paid_at, a discount-less
// invoice with discount amounts, upper-case currencies.
func TestReaderConversions(t *testing.T) {
	base, _ := fakeStripe(t, func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/v1/invoices":
			writeJSON(w, `{"object":"list","url":"/v1/invoices","has_more":false,"data":[
				{"id":"in_1","object":"invoice","customer":"cus_1","subscription":"sub_1","currency":"USD",
				 "amount_paid":1470,"created":1700000000,"status":"paid",
				 "status_transitions":{"finalized_at":1700000000,"paid_at":null},
				 "discount":{"id":"di_1","object":"discount","coupon":{"id":"CPN","object":"coupon","percent_off":25},
				   "customer":null,"subscription":null,"promotion_code":"promo_1","start":1690000000,"end":null},
				 "total_discount_amounts":[{"amount":500,"discount":"di_1"},{"amount":200,"discount":"di_other"},{"amount":30,"discount":"di_1"}]},
				{"id":"in_2","object":"invoice","customer":{"id":"cus_2","object":"customer"},"subscription":"sub_2","currency":"eur",
				 "amount_paid":900,"created":1700000100,"status":"paid",
				 "status_transitions":{"paid_at":1700000500},
				 "discount":{"id":"di_2","object":"discount","coupon":{"id":"FLAT","object":"coupon","amount_off":100,"currency":"eur"},
				   "customer":"cus_9","subscription":"sub_9","promotion_code":null,"start":1690000000,"end":1699999999},
				 "total_discount_amounts":[{"amount":100,"discount":"di_2"}]},
				{"id":"in_3","object":"invoice","customer":"cus_3","subscription":null,"currency":"usd",
				 "amount_paid":1000,"created":1700000200,"status":"paid","status_transitions":{"paid_at":1700000300},
				 "discount":null,"total_discount_amounts":[{"amount":100,"discount":"di_x"}]}]}`)
		case "/v1/coupons":
			writeJSON(w, `{"object":"list","url":"/v1/coupons","has_more":false,"data":[
				{"id":"A","object":"coupon","percent_off":0.01,"duration":"once","created":1700000000},
				{"id":"B","object":"coupon","percent_off":null,"amount_off":500,"currency":"JPY","duration":"forever","created":1700000000,
				 "applies_to":{"products":[]}}]}`)
		default:
			stripeError(w, http.StatusNotFound, "req_404", `{"error":{"type":"invalid_request_error","message":"unexpected"}}`)
		}
	})
	gw := newTestGateway(base, nil)

	got := collect(t, "EachPaidInvoice", paidSince(gw, time.Time{}))
	want := []promo.StripeInvoice{
		{ID: "in_1", Customer: "cus_1", Subscription: "sub_1", Currency: "usd", AmountPaid: 1470,
			PaidAt: time.Unix(1700000000, 0).UTC(), // no paid_at: created
			Discount: &promo.StripeDiscount{ID: "di_1", CouponID: "CPN", PromotionCodeID: "promo_1",
				Customer: "cus_1", Subscription: "sub_1", Start: time.Unix(1690000000, 0).UTC()},
			DiscountAmount: 530}, // not di_other's 200
		{ID: "in_2", Customer: "cus_2", Subscription: "sub_2", Currency: "eur", AmountPaid: 900,
			PaidAt: time.Unix(1700000500, 0).UTC(),
			Discount: &promo.StripeDiscount{ID: "di_2", CouponID: "FLAT", Customer: "cus_9", Subscription: "sub_9",
				Start: time.Unix(1690000000, 0).UTC(), End: time.Unix(1699999999, 0).UTC()},
			DiscountAmount: 100},
		{ID: "in_3", Customer: "cus_3", Currency: "usd", AmountPaid: 1000, PaidAt: time.Unix(1700000300, 0).UTC()},
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("EachPaidInvoice:\n got %s\nwant %s", fmtInvoices(got), fmtInvoices(want))
	}

	coupons := collect(t, "EachCoupon", gw.EachCoupon)
	wantCoupons := []promo.StripeCoupon{
		{ID: "A", PercentOff: "0.01", Duration: promo.Once, Created: time.Unix(1700000000, 0).UTC()},
		{ID: "B", AmountOff: 500, Currency: "jpy", Duration: promo.Forever, Created: time.Unix(1700000000, 0).UTC()},
	}
	if !reflect.DeepEqual(coupons, wantCoupons) {
		t.Errorf("EachCoupon:\n got %+v\nwant %+v", coupons, wantCoupons)
	}
}

func TestCeilUnix(t *testing.T) {
	base := time.Date(2024, 1, 10, 12, 0, 0, 0, time.UTC)
	for _, tc := range []struct {
		in   time.Time
		want int64
	}{
		{base, base.Unix()},
		{base.Add(time.Nanosecond), base.Unix() + 1},
		{base.Add(999 * time.Millisecond), base.Unix() + 1},
		{base.Add(-time.Nanosecond), base.Unix()},
	} {
		if got := ceilUnix(tc.in); got != tc.want {
			t.Errorf("ceilUnix(%v) = %d, want %d", tc.in, got, tc.want)
		}
	}
}
