package stripesim

import (
	"fmt"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	stripe "github.com/stripe/stripe-go/v76"
)

var t0 = time.Date(2024, 1, 31, 10, 0, 0, 0, time.UTC) // month-end anchor, leap year

func (e *env) mkClock(at time.Time) *stripe.TestHelpersTestClock {
	e.t.Helper()
	tc, err := e.sc.TestHelpersTestClocks.New(&stripe.TestHelpersTestClockParams{FrozenTime: stripe.Int64(at.Unix()), Name: stripe.String("t")})
	mustNoErr(e.t, err)
	return tc
}

func (e *env) advance(clock string, to time.Time) {
	e.t.Helper()
	tc, err := e.sc.TestHelpersTestClocks.Advance(clock, &stripe.TestHelpersTestClockAdvanceParams{FrozenTime: stripe.Int64(to.Unix())})
	mustNoErr(e.t, err)
	if tc.Status != "ready" || tc.FrozenTime != to.Unix() {
		e.t.Fatalf("clock after advance = %+v", tc)
	}
}

func (e *env) mkSub(cust, price string, mod func(*stripe.SubscriptionParams)) (*stripe.Subscription, error) {
	p := &stripe.SubscriptionParams{
		Customer: stripe.String(cust),
		Items:    []*stripe.SubscriptionItemsParams{{Price: stripe.String(price)}},
	}
	if mod != nil {
		mod(p)
	}
	return e.sc.Subscriptions.New(p)
}

// invoices lists a subscription's invoices oldest first.
func (e *env) invoices(sub string) []*stripe.Invoice {
	e.t.Helper()
	it := e.sc.Invoices.List(&stripe.InvoiceListParams{Subscription: stripe.String(sub)})
	var out []*stripe.Invoice
	for it.Next() {
		out = append([]*stripe.Invoice{it.Invoice()}, out...)
	}
	mustNoErr(e.t, it.Err())
	return out
}

func unix(t time.Time) int64 { return t.Unix() }

func TestAddMonths(t *testing.T) {
	for _, tc := range []struct {
		anchor time.Time
		n      int
		want   time.Time
	}{
		{t0, 1, time.Date(2024, 2, 29, 10, 0, 0, 0, time.UTC)},
		{t0, 2, time.Date(2024, 3, 31, 10, 0, 0, 0, time.UTC)},
		{t0, 3, time.Date(2024, 4, 30, 10, 0, 0, 0, time.UTC)},
		{t0, 13, time.Date(2025, 2, 28, 10, 0, 0, 0, time.UTC)},
		{time.Date(2024, 12, 15, 0, 0, 0, 0, time.UTC), 1, time.Date(2025, 1, 15, 0, 0, 0, 0, time.UTC)},
		{time.Date(2024, 3, 30, 0, 0, 0, 0, time.UTC), -1, time.Date(2024, 2, 29, 0, 0, 0, 0, time.UTC)},
	} {
		if got := addMonths(tc.anchor.Unix(), tc.n); got != tc.want.Unix() {
			t.Errorf("addMonths(%v, %d) = %v, want %v", tc.anchor, tc.n, time.Unix(got, 0).UTC(), tc.want)
		}
	}
}

func TestRepeatingPromoOnExistingSubscription(t *testing.T) {
	e := newEnv(t, Options{})
	clock := e.mkClock(t0)
	cust := e.mkCustomer(clock.ID)
	if cust.Created != t0.Unix() || cust.TestClock.ID != clock.ID {
		t.Fatalf("customer on clock = created %d clock %+v", cust.Created, cust.TestClock)
	}
	pr := e.mkPrice(2000, "usd")
	sub, err := e.mkSub(cust.ID, pr.ID, nil)
	mustNoErr(t, err)
	if sub.Status != "active" || sub.CurrentPeriodStart != t0.Unix() || sub.CurrentPeriodEnd != unix(time.Date(2024, 2, 29, 10, 0, 0, 0, time.UTC)) ||
		sub.BillingCycleAnchor != t0.Unix() || sub.Discount != nil || sub.Items.Data[0].Price.ID != pr.ID || sub.Items.Data[0].Quantity != 1 ||
		sub.Items.Data[0].Price.UnitAmount != 2000 || sub.TestClock.ID != clock.ID || sub.LatestInvoice == nil {
		t.Fatalf("subscription = %+v", sub)
	}
	first, err := e.sc.Invoices.Get(sub.LatestInvoice.ID, nil)
	mustNoErr(t, err)
	if first.BillingReason != "subscription_create" || first.Status != "paid" || !first.Paid || first.AmountPaid != 2000 ||
		first.Total != 2000 || first.Subtotal != 2000 || first.AmountRemaining != 0 || first.StatusTransitions.PaidAt != t0.Unix() ||
		first.Lines.Data[0].Period.Start != t0.Unix() || first.Lines.Data[0].Period.End != sub.CurrentPeriodEnd || first.AttemptCount != 1 {
		t.Fatalf("first invoice = %+v", first)
	}

	cp := e.mkCoupon(&stripe.CouponParams{ID: stripe.String("Q3"), PercentOff: stripe.Float64(25), Duration: stripe.String("repeating"), DurationInMonths: stripe.Int64(3)})
	promo := e.mkPromo(cp.ID, "THREEMONTHS")

	applyAt := t0.Add(10 * 24 * time.Hour) // Feb 10
	e.advance(clock.ID, applyAt)
	upd, err := e.sc.Subscriptions.Update(sub.ID, &stripe.SubscriptionParams{PromotionCode: stripe.String(promo.ID), ProrationBehavior: stripe.String("none")})
	mustNoErr(t, err)
	wantEnd := unix(time.Date(2024, 5, 10, 10, 0, 0, 0, time.UTC))
	d := upd.Discount
	if d == nil || !strings.HasPrefix(d.ID, "di_") || d.Coupon.ID != "Q3" || d.PromotionCode.ID != promo.ID || d.Start != applyAt.Unix() ||
		d.End != wantEnd || d.Subscription != sub.ID || d.Customer.ID != cust.ID || d.Object != "discount" {
		t.Fatalf("discount = %+v", d)
	}
	// No proration and no invoice: the current period is untouched.
	if n := len(e.invoices(sub.ID)); n != 1 {
		t.Fatalf("applying a promotion code created invoices: %d", n)
	}
	if upd.CurrentPeriodStart != sub.CurrentPeriodStart || upd.CurrentPeriodEnd != sub.CurrentPeriodEnd {
		t.Fatal("period changed on update")
	}
	pc, _ := e.sc.PromotionCodes.Get(promo.ID, nil)
	cpNow, _ := e.sc.Coupons.Get("Q3", nil)
	if pc.TimesRedeemed != 1 || cpNow.TimesRedeemed != 1 {
		t.Fatalf("times_redeemed promo=%d coupon=%d", pc.TimesRedeemed, cpNow.TimesRedeemed)
	}

	// Upcoming invoice preview: discounted, no side effects.
	up, err := e.sc.Invoices.Upcoming(&stripe.InvoiceUpcomingParams{Subscription: stripe.String(sub.ID)})
	mustNoErr(t, err)
	if up.AmountDue != 1500 || up.Total != 1500 || up.Subtotal != 2000 || up.Discount == nil || up.Discount.ID != d.ID || up.ID != "" ||
		up.Lines.Data[0].Period.Start != sub.CurrentPeriodEnd {
		t.Fatalf("upcoming = %+v", up)
	}
	if n := len(e.invoices(sub.ID)); n != 1 {
		t.Fatal("upcoming created an invoice")
	}

	// Advance five months past the anchor.
	e.advance(clock.ID, time.Date(2024, 6, 30, 10, 0, 0, 0, time.UTC))
	invs := e.invoices(sub.ID)
	type want struct {
		created  time.Time
		total    int64
		discount int64
	}
	wants := []want{
		{t0, 2000, 0},
		{time.Date(2024, 2, 29, 10, 0, 0, 0, time.UTC), 1500, 500},
		{time.Date(2024, 3, 31, 10, 0, 0, 0, time.UTC), 1500, 500},
		{time.Date(2024, 4, 30, 10, 0, 0, 0, time.UTC), 1500, 500},
		{time.Date(2024, 5, 31, 10, 0, 0, 0, time.UTC), 2000, 0},
		{time.Date(2024, 6, 30, 10, 0, 0, 0, time.UTC), 2000, 0},
	}
	if len(invs) != len(wants) {
		t.Fatalf("got %d invoices, want %d", len(invs), len(wants))
	}
	for i, w := range wants {
		in := invs[i]
		if in.Created != w.created.Unix() || in.Total != w.total || in.AmountPaid != w.total || in.Status != "paid" || in.Subtotal != 2000 {
			t.Errorf("invoice %d: created %v total %d paid %d status %s", i, time.Unix(in.Created, 0).UTC(), in.Total, in.AmountPaid, in.Status)
		}
		line := in.Lines.Data[0]
		if i > 0 {
			if in.BillingReason != "subscription_cycle" || line.Period.Start != w.created.Unix() || in.PeriodEnd != w.created.Unix() {
				t.Errorf("invoice %d: reason %s line period %d-%d period_end %d", i, in.BillingReason, line.Period.Start, line.Period.End, in.PeriodEnd)
			}
		}
		if w.discount > 0 {
			if in.Discount == nil || in.Discount.ID != d.ID || len(in.Discounts) != 1 || in.Discounts[0].ID != d.ID ||
				len(in.TotalDiscountAmounts) != 1 || in.TotalDiscountAmounts[0].Amount != w.discount || in.TotalDiscountAmounts[0].Discount.ID != d.ID ||
				len(line.DiscountAmounts) != 1 || line.DiscountAmounts[0].Amount != w.discount || line.DiscountAmounts[0].Discount.ID != d.ID {
				t.Errorf("invoice %d discount fields wrong: %+v", i, in)
			}
		} else if in.Discount != nil || len(in.Discounts) != 0 || len(in.TotalDiscountAmounts) != 0 || len(line.DiscountAmounts) != 0 {
			t.Errorf("invoice %d should not be discounted: %+v", i, in)
		}
	}
	got, err := e.sc.Subscriptions.Get(sub.ID, nil)
	mustNoErr(t, err)
	if got.Discount != nil || got.CurrentPeriodStart != unix(time.Date(2024, 6, 30, 10, 0, 0, 0, time.UTC)) ||
		got.CurrentPeriodEnd != unix(time.Date(2024, 7, 31, 10, 0, 0, 0, time.UTC)) || got.LatestInvoice.ID != invs[5].ID {
		t.Fatalf("subscription after advance = %+v", got)
	}
	// The discount ended at its end date, recorded as customer.discount.deleted.
	evs := e.events("customer.discount.deleted")
	if len(evs) != 1 || evs[0].Created != wantEnd || evs[0].Data.Object["id"] != d.ID || evs[0].Request.ID != "" {
		t.Fatalf("discount deleted events = %+v", evs)
	}
	if n := len(e.events("invoice.paid")); n != 6 {
		t.Fatalf("invoice.paid events = %d", n)
	}
}

// events lists events of one type, oldest first.
func (e *env) events(typ string) []*stripe.Event {
	e.t.Helper()
	it := e.sc.Events.List(&stripe.EventListParams{Type: stripe.String(typ)})
	var out []*stripe.Event
	for it.Next() {
		out = append([]*stripe.Event{it.Event()}, out...)
	}
	mustNoErr(e.t, it.Err())
	return out
}

func TestOnceAndForeverDiscounts(t *testing.T) {
	e := newEnv(t, Options{})
	clock := e.mkClock(t0)
	pr := e.mkPrice(2000, "usd")
	once := e.mkCoupon(&stripe.CouponParams{ID: stripe.String("HALF1"), PercentOff: stripe.Float64(50), Duration: stripe.String("once")})
	forever := e.mkCoupon(&stripe.CouponParams{ID: stripe.String("OFF3"), AmountOff: stripe.Int64(300), Currency: stripe.String("usd"), Duration: stripe.String("forever")})
	oncePromo := e.mkPromo(once.ID, "HALFONCE")
	foreverPromo := e.mkPromo(forever.ID, "THREEOFF")

	// once at creation: the first invoice only.
	c1 := e.mkCustomer(clock.ID)
	s1, err := e.mkSub(c1.ID, pr.ID, func(p *stripe.SubscriptionParams) { p.PromotionCode = stripe.String(oncePromo.ID) })
	mustNoErr(t, err)
	if s1.Discount == nil || s1.Discount.End != 0 || s1.Discount.Coupon.Duration != "once" {
		t.Fatalf("once discount = %+v", s1.Discount)
	}
	// once applied to an existing subscription: the next invoice only.
	c2 := e.mkCustomer(clock.ID)
	s2, err := e.mkSub(c2.ID, pr.ID, nil)
	mustNoErr(t, err)
	_, err = e.sc.Subscriptions.Update(s2.ID, &stripe.SubscriptionParams{Coupon: stripe.String(once.ID)})
	mustNoErr(t, err)
	// forever amount_off.
	c3 := e.mkCustomer(clock.ID)
	s3, err := e.mkSub(c3.ID, pr.ID, func(p *stripe.SubscriptionParams) { p.PromotionCode = stripe.String(foreverPromo.ID) })
	mustNoErr(t, err)

	e.advance(clock.ID, time.Date(2024, 4, 1, 0, 0, 0, 0, time.UTC)) // crosses Feb 29 and Mar 31
	totals := func(sub string) string {
		var parts []string
		for _, in := range e.invoices(sub) {
			parts = append(parts, fmt.Sprint(in.Total))
		}
		return strings.Join(parts, ",")
	}
	if got := totals(s1.ID); got != "1000,2000,2000" {
		t.Errorf("once at create: totals %s", got)
	}
	if got := totals(s2.ID); got != "2000,1000,2000" {
		t.Errorf("once on update: totals %s", got)
	}
	if got := totals(s3.ID); got != "1700,1700,1700" {
		t.Errorf("forever: totals %s", got)
	}
	for _, id := range []string{s1.ID, s2.ID} {
		got, _ := e.sc.Subscriptions.Get(id, nil)
		if got.Discount != nil {
			t.Errorf("once discount still attached to %s", id)
		}
	}
	got3, _ := e.sc.Subscriptions.Get(s3.ID, nil)
	if got3.Discount == nil || got3.Discount.Coupon.ID != "OFF3" {
		t.Errorf("forever discount lost")
	}
	if n := len(e.events("customer.discount.deleted")); n != 2 {
		t.Errorf("customer.discount.deleted events = %d, want 2", n)
	}
	cpNow, _ := e.sc.Coupons.Get(once.ID, nil)
	if cpNow.TimesRedeemed != 2 {
		t.Errorf("once coupon times_redeemed = %d", cpNow.TimesRedeemed)
	}
}

func TestAmountOffCappedAndCurrencyMismatch(t *testing.T) {
	e := newEnv(t, Options{})
	pr := e.mkPrice(2000, "usd")
	big := e.mkCoupon(&stripe.CouponParams{AmountOff: stripe.Int64(5000), Currency: stripe.String("usd"), Duration: stripe.String("forever")})
	eur := e.mkCoupon(&stripe.CouponParams{AmountOff: stripe.Int64(500), Currency: stripe.String("eur"), Duration: stripe.String("forever")})
	c := e.mkCustomer("")
	mustNoErr(t, e.sim.SetCustomerDecline(c.ID, true)) // a $0 invoice is paid without a charge
	s, err := e.mkSub(c.ID, pr.ID, func(p *stripe.SubscriptionParams) { p.Coupon = stripe.String(big.ID) })
	mustNoErr(t, err)
	in := e.invoices(s.ID)[0]
	if in.Total != 0 || in.AmountDue != 0 || in.Status != "paid" || in.TotalDiscountAmounts[0].Amount != 2000 || s.Status != "active" || in.AttemptCount != 0 {
		t.Fatalf("capped invoice = %+v (sub %s)", in, s.Status)
	}
	c2 := e.mkCustomer("")
	s2, err := e.mkSub(c2.ID, pr.ID, func(p *stripe.SubscriptionParams) { p.Coupon = stripe.String(eur.ID) })
	mustNoErr(t, err)
	in2 := e.invoices(s2.ID)[0]
	if in2.Total != 2000 || len(in2.Lines.Data[0].DiscountAmounts) != 0 {
		t.Fatalf("currency mismatch should not discount: %+v", in2)
	}
}

func TestAppliesToMismatch(t *testing.T) {
	e := newEnv(t, Options{})
	a := e.mkPrice(2000, "usd")
	b := e.mkPrice(1000, "usd")
	cp := e.mkCoupon(&stripe.CouponParams{PercentOff: stripe.Float64(10), Duration: stripe.String("forever"),
		AppliesTo: &stripe.CouponAppliesToParams{Products: stripe.StringSlice([]string{b.Product.ID})}})
	promo := e.mkPromo(cp.ID, "ONLYB")
	// Only product A: accepted, but nothing is discounted.
	s1, err := e.mkSub(e.mkCustomer("").ID, a.ID, func(p *stripe.SubscriptionParams) { p.PromotionCode = stripe.String(promo.ID) })
	mustNoErr(t, err)
	if s1.Discount == nil {
		t.Fatal("discount should be attached even if it applies to no line")
	}
	in := e.invoices(s1.ID)[0]
	if in.Total != 2000 || len(in.Lines.Data[0].DiscountAmounts) != 0 {
		t.Fatalf("mismatched product discounted: %+v", in)
	}
	// A and B: only B's line is discounted.
	s2, err := e.mkSub(e.mkCustomer("").ID, a.ID, func(p *stripe.SubscriptionParams) {
		p.Items = append(p.Items, &stripe.SubscriptionItemsParams{Price: stripe.String(b.ID), Quantity: stripe.Int64(3)})
		p.PromotionCode = stripe.String(promo.ID)
	})
	mustNoErr(t, err)
	in2 := e.invoices(s2.ID)[0]
	if in2.Subtotal != 5000 || in2.Total != 4700 || len(in2.Lines.Data) != 2 {
		t.Fatalf("two-line invoice = %+v", in2)
	}
	for _, l := range in2.Lines.Data {
		switch l.Price.ID {
		case a.ID:
			if len(l.DiscountAmounts) != 0 || l.Amount != 2000 {
				t.Errorf("line A = %+v", l)
			}
		case b.ID:
			if len(l.DiscountAmounts) != 1 || l.DiscountAmounts[0].Amount != 300 || l.Amount != 3000 || l.Quantity != 3 {
				t.Errorf("line B = %+v", l)
			}
		}
	}
}

func TestPromotionCodeRulesOnSubscriptions(t *testing.T) {
	realNow := time.Now().UTC().Truncate(time.Second)
	e := newEnv(t, Options{})
	clock := e.mkClock(realNow)
	pr := e.mkPrice(2000, "usd")
	cust := e.mkCustomer(clock.ID)
	other := e.mkCustomer(clock.ID)

	base := e.mkCoupon(&stripe.CouponParams{ID: stripe.String("BASE"), PercentOff: stripe.Float64(10), Duration: stripe.String("forever")})
	mk := func(p *stripe.PromotionCodeParams) string {
		t.Helper()
		pc, err := e.sc.PromotionCodes.New(p)
		mustNoErr(t, err)
		return pc.ID
	}
	inactive := mk(&stripe.PromotionCodeParams{Coupon: stripe.String(base.ID), Code: stripe.String("OFF"), Active: stripe.Bool(false)})
	expiring := mk(&stripe.PromotionCodeParams{Coupon: stripe.String(base.ID), Code: stripe.String("SOON"), ExpiresAt: stripe.Int64(realNow.Add(5 * 24 * time.Hour).Unix())})
	maxed := mk(&stripe.PromotionCodeParams{Coupon: stripe.String(base.ID), Code: stripe.String("ONCEONLY"), MaxRedemptions: stripe.Int64(1)})
	restricted := mk(&stripe.PromotionCodeParams{Coupon: stripe.String(base.ID), Customer: stripe.String(other.ID)})
	minimum := mk(&stripe.PromotionCodeParams{Coupon: stripe.String(base.ID), Restrictions: &stripe.PromotionCodeRestrictionsParams{
		MinimumAmount: stripe.Int64(5000), MinimumAmountCurrency: stripe.String("usd")}})
	redeemBy := e.mkCoupon(&stripe.CouponParams{PercentOff: stripe.Float64(10), RedeemBy: stripe.Int64(realNow.Add(5 * 24 * time.Hour).Unix())})
	redeemByPromo := mk(&stripe.PromotionCodeParams{Coupon: stripe.String(redeemBy.ID)})
	couponMax := e.mkCoupon(&stripe.CouponParams{PercentOff: stripe.Float64(10), MaxRedemptions: stripe.Int64(1)})
	couponMaxPromo := mk(&stripe.PromotionCodeParams{Coupon: stripe.String(couponMax.ID)})
	doomed := e.mkCoupon(&stripe.CouponParams{PercentOff: stripe.Float64(10)})
	doomedPromo := mk(&stripe.PromotionCodeParams{Coupon: stripe.String(doomed.ID)})
	_, err := e.sc.Coupons.Del(doomed.ID, nil)
	mustNoErr(t, err)

	// Use up the single redemptions with another customer.
	_, err = e.mkSub(other.ID, pr.ID, func(p *stripe.SubscriptionParams) { p.PromotionCode = stripe.String(maxed) })
	mustNoErr(t, err)
	_, err = e.sc.Subscriptions.Update(e.subOf(other.ID), &stripe.SubscriptionParams{PromotionCode: stripe.String(couponMaxPromo)})
	mustNoErr(t, err)

	e.advance(clock.ID, realNow.Add(6*24*time.Hour)) // past expires_at and redeem_by in the customer's time

	tests := []struct {
		name, promo, msg string
		code             stripe.ErrorCode
	}{
		{"inactive", inactive, "inactive", ""},
		{"expired", expiring, "expired", ""},
		{"max redemptions", maxed, "maximum number of times", ""},
		{"other customer", restricted, "different customer", ""},
		{"minimum amount not met", minimum, "minimum amount", ""},
		{"coupon redeem_by passed", redeemByPromo, "Coupon expired", stripe.ErrorCodeCouponExpired},
		{"coupon max redemptions", couponMaxPromo, "Coupon expired", stripe.ErrorCodeCouponExpired},
		{"coupon deleted", doomedPromo, "deleted", ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := e.mkSub(cust.ID, pr.ID, func(p *stripe.SubscriptionParams) { p.PromotionCode = stripe.String(tc.promo) })
			se := stripeErr(t, err, 400, stripe.ErrorTypeInvalidRequest, tc.code, "promotion_code")
			if !strings.Contains(se.Msg, tc.msg) {
				t.Errorf("message %q does not mention %q", se.Msg, tc.msg)
			}
		})
	}
	if n := e.sim.count(func(s *Server) int { return len(s.invoices) }); n != 1 { // only other's subscription billed
		t.Fatalf("refused subscriptions created invoices: %d", n)
	}
	_, err = e.mkSub(cust.ID, pr.ID, func(p *stripe.SubscriptionParams) { p.PromotionCode = stripe.String("promo_missing") })
	stripeErr(t, err, 400, stripe.ErrorTypeInvalidRequest, stripe.ErrorCodeResourceMissing, "promotion_code")
	_, err = e.mkSub(cust.ID, pr.ID, func(p *stripe.SubscriptionParams) { p.Coupon = stripe.String("NOPE") })
	stripeErr(t, err, 400, stripe.ErrorTypeInvalidRequest, stripe.ErrorCodeResourceMissing, "coupon")
	_, err = e.mkSub(cust.ID, pr.ID, func(p *stripe.SubscriptionParams) {
		p.Coupon = stripe.String("BASE")
		p.PromotionCode = stripe.String(inactive)
	})
	stripeErr(t, err, 400, stripe.ErrorTypeInvalidRequest, stripe.ErrorCodeParametersExclusive, "promotion_code")
	// discounts[0][promotion_code] is checked with the same rules.
	_, err = e.mkSub(cust.ID, pr.ID, func(p *stripe.SubscriptionParams) {
		p.Discounts = []*stripe.SubscriptionDiscountParams{{PromotionCode: stripe.String(inactive)}}
	})
	stripeErr(t, err, 400, stripe.ErrorTypeInvalidRequest, "", "discounts[0][promotion_code]")

	// minimum_amount: met on create, refused on update.
	big := e.mkPrice(6000, "usd")
	c3 := e.mkCustomer(clock.ID)
	s3, err := e.mkSub(c3.ID, big.ID, func(p *stripe.SubscriptionParams) { p.PromotionCode = stripe.String(minimum) })
	mustNoErr(t, err)
	if s3.Discount == nil {
		t.Fatal("minimum met but no discount")
	}
	c4 := e.mkCustomer(clock.ID)
	s4, err := e.mkSub(c4.ID, big.ID, nil)
	mustNoErr(t, err)
	_, err = e.sc.Subscriptions.Update(s4.ID, &stripe.SubscriptionParams{PromotionCode: stripe.String(minimum)})
	se := stripeErr(t, err, 400, stripe.ErrorTypeInvalidRequest, "", "promotion_code")
	if !strings.Contains(se.Msg, "subscription update") {
		t.Errorf("message = %q", se.Msg)
	}
}

// subOf returns the customer's only subscription.
func (e *env) subOf(cust string) string {
	e.t.Helper()
	it := e.sc.Subscriptions.List(&stripe.SubscriptionListParams{Customer: stripe.String(cust)})
	var ids []string
	for it.Next() {
		ids = append(ids, it.Subscription().ID)
	}
	mustNoErr(e.t, it.Err())
	if len(ids) != 1 {
		e.t.Fatalf("customer %s has %d subscriptions", cust, len(ids))
	}
	return ids[0]
}

func TestFirstTimeTransaction(t *testing.T) {
	e := newEnv(t, Options{})
	pr := e.mkPrice(2000, "usd")
	cp := e.mkCoupon(&stripe.CouponParams{PercentOff: stripe.Float64(20), Duration: stripe.String("forever")})
	pc, err := e.sc.PromotionCodes.New(&stripe.PromotionCodeParams{Coupon: stripe.String(cp.ID), Code: stripe.String("NEWBIE"),
		Restrictions: &stripe.PromotionCodeRestrictionsParams{FirstTimeTransaction: stripe.Bool(true)}})
	mustNoErr(t, err)

	// A new customer can use it.
	fresh := e.mkCustomer("")
	s, err := e.mkSub(fresh.ID, pr.ID, func(p *stripe.SubscriptionParams) { p.PromotionCode = stripe.String(pc.ID) })
	mustNoErr(t, err)
	if s.Discount == nil || e.invoices(s.ID)[0].Total != 1600 {
		t.Fatal("first-time customer did not get the discount")
	}
	// A customer with a paid invoice cannot, neither on update nor create.
	veteran := e.mkCustomer("")
	vs, err := e.mkSub(veteran.ID, pr.ID, nil)
	mustNoErr(t, err)
	_, err = e.sc.Subscriptions.Update(vs.ID, &stripe.SubscriptionParams{PromotionCode: stripe.String(pc.ID)})
	se := stripeErr(t, err, 400, stripe.ErrorTypeInvalidRequest, "", "promotion_code")
	if se.Msg != "This promotion code cannot be redeemed because the associated customer has prior transactions." {
		t.Errorf("message = %q", se.Msg)
	}
	_, err = e.mkSub(veteran.ID, pr.ID, func(p *stripe.SubscriptionParams) {
		p.PromotionCode = stripe.String(pc.ID)
		p.Items[0].Quantity = stripe.Int64(2)
	})
	stripeErr(t, err, 400, stripe.ErrorTypeInvalidRequest, "", "promotion_code")
	// A customer whose only invoices were $0 is still "first time".
	free := e.mkCoupon(&stripe.CouponParams{PercentOff: stripe.Float64(100), Duration: stripe.String("once")})
	zero := e.mkCustomer("")
	zs, err := e.mkSub(zero.ID, pr.ID, func(p *stripe.SubscriptionParams) { p.Coupon = stripe.String(free.ID) })
	mustNoErr(t, err)
	_, err = e.sc.Subscriptions.Update(zs.ID, &stripe.SubscriptionParams{PromotionCode: stripe.String(pc.ID)})
	mustNoErr(t, err)
}

func TestDeclineAndRecovery(t *testing.T) {
	e := newEnv(t, Options{})
	clock := e.mkClock(t0)
	pr := e.mkPrice(2000, "usd")

	// Declined at creation: incomplete subscription, open invoice.
	c1 := e.mkCustomer(clock.ID)
	r := e.raw("POST", "/_sim/customers/"+c1.ID+"/decline", testKey, `{"decline":true}`, map[string]string{"Content-Type": "application/json"})
	if r.status != 200 {
		t.Fatalf("decline: %d %s", r.status, r.raw)
	}
	s1, err := e.mkSub(c1.ID, pr.ID, nil)
	mustNoErr(t, err)
	in1 := e.invoices(s1.ID)[0]
	if s1.Status != "incomplete" || in1.Status != "open" || in1.Paid || in1.AmountRemaining != 2000 || in1.AttemptCount != 1 || in1.AmountPaid != 0 {
		t.Fatalf("declined create: sub %s invoice %+v", s1.Status, in1)
	}
	// error_if_incomplete refuses with a card error and creates nothing.
	_, err = e.mkSub(c1.ID, pr.ID, func(p *stripe.SubscriptionParams) { p.PaymentBehavior = stripe.String("error_if_incomplete") })
	se := stripeErr(t, err, 402, stripe.ErrorTypeCard, stripe.ErrorCodeCardDeclined, "")
	if se.DeclineCode != "generic_decline" {
		t.Errorf("decline code = %q", se.DeclineCode)
	}

	// Active subscription goes past_due when a renewal fails.
	c2 := e.mkCustomer(clock.ID)
	s2, err := e.mkSub(c2.ID, pr.ID, nil)
	mustNoErr(t, err)
	mustNoErr(t, e.sim.SetCustomerDecline(c2.ID, true))
	e.advance(clock.ID, time.Date(2024, 3, 1, 0, 0, 0, 0, time.UTC))
	got, _ := e.sc.Subscriptions.Get(s2.ID, nil)
	invs := e.invoices(s2.ID)
	if got.Status != "past_due" || len(invs) != 2 || invs[1].Status != "open" || invs[1].BillingReason != "subscription_cycle" {
		t.Fatalf("after failed renewal: sub %s, invoices %d", got.Status, len(invs))
	}
	failed := e.events("invoice.payment_failed")
	if len(failed) != 2 || failed[1].Data.Object["id"] != invs[1].ID {
		t.Fatalf("payment_failed events = %d", len(failed))
	}
	// Paying again while still declining: 402 and the invoice stays open.
	_, err = e.sc.Invoices.Pay(invs[1].ID, nil)
	stripeErr(t, err, 402, stripe.ErrorTypeCard, stripe.ErrorCodeCardDeclined, "")
	// Recover.
	mustNoErr(t, e.sim.SetCustomerDecline(c2.ID, false))
	paid, err := e.sc.Invoices.Pay(invs[1].ID, nil)
	mustNoErr(t, err)
	if paid.Status != "paid" || paid.AttemptCount != 3 {
		t.Fatalf("paid invoice = %+v", paid)
	}
	got, _ = e.sc.Subscriptions.Get(s2.ID, nil)
	if got.Status != "active" {
		t.Fatalf("status after recovery = %s", got.Status)
	}
	_, err = e.sc.Invoices.Pay(invs[1].ID, nil)
	stripeErr(t, err, 400, stripe.ErrorTypeInvalidRequest, "", "")
}

func TestDiscountReplaceAndDelete(t *testing.T) {
	e := newEnv(t, Options{})
	pr := e.mkPrice(2000, "usd")
	a := e.mkPromo(e.mkCoupon(&stripe.CouponParams{PercentOff: stripe.Float64(10), Duration: stripe.String("forever")}).ID, "AAA")
	b := e.mkPromo(e.mkCoupon(&stripe.CouponParams{PercentOff: stripe.Float64(20), Duration: stripe.String("forever")}).ID, "BBB")
	cust := e.mkCustomer("")
	s, err := e.mkSub(cust.ID, pr.ID, func(p *stripe.SubscriptionParams) { p.PromotionCode = stripe.String(a.ID) })
	mustNoErr(t, err)
	first := s.Discount.ID
	// Re-applying the same code is a no-op.
	same, err := e.sc.Subscriptions.Update(s.ID, &stripe.SubscriptionParams{PromotionCode: stripe.String(a.ID)})
	mustNoErr(t, err)
	if same.Discount.ID != first {
		t.Fatal("re-applying the same code replaced the discount")
	}
	upd, err := e.sc.Subscriptions.Update(s.ID, &stripe.SubscriptionParams{PromotionCode: stripe.String(b.ID)})
	mustNoErr(t, err)
	if upd.Discount == nil || upd.Discount.ID == first || upd.Discount.PromotionCode.ID != b.ID || upd.Discount.Coupon.PercentOff != 20 {
		t.Fatalf("replaced discount = %+v", upd.Discount)
	}
	evs := e.events("customer.discount.updated")
	if len(evs) != 1 || evs[0].Data.Object["id"] != upd.Discount.ID {
		t.Fatalf("customer.discount.updated events = %+v", evs)
	}
	prevCoupon, _ := evs[0].Data.PreviousAttributes["coupon"].(map[string]any)
	if prevCoupon["percent_off"] != 10.0 {
		t.Fatalf("previous_attributes = %+v", evs[0].Data.PreviousAttributes)
	}
	bNow, _ := e.sc.PromotionCodes.Get(b.ID, nil)
	if bNow.TimesRedeemed != 1 {
		t.Fatalf("times_redeemed = %d", bNow.TimesRedeemed)
	}

	r := e.raw("DELETE", "/v1/subscriptions/"+s.ID+"/discount", testKey, "", nil)
	if r.status != 200 || r.body["object"] != "discount" || r.body["deleted"] != true || r.body["id"] != upd.Discount.ID {
		t.Fatalf("delete discount = %d %s", r.status, r.raw)
	}
	got, _ := e.sc.Subscriptions.Get(s.ID, nil)
	if got.Discount != nil {
		t.Fatal("discount still attached")
	}
	if n := len(e.events("customer.discount.deleted")); n != 1 {
		t.Fatalf("customer.discount.deleted events = %d", n)
	}
	_, err = e.sc.Subscriptions.DeleteDiscount(s.ID, nil)
	stripeErr(t, err, 404, stripe.ErrorTypeInvalidRequest, stripe.ErrorCodeResourceMissing, "discount")
	_, err = e.sc.Subscriptions.DeleteDiscount("sub_nope", nil)
	stripeErr(t, err, 404, stripe.ErrorTypeInvalidRequest, stripe.ErrorCodeResourceMissing, "id")

	// The next invoice has no discount.
	up, err := e.sc.Invoices.Upcoming(&stripe.InvoiceUpcomingParams{Customer: stripe.String(cust.ID)})
	mustNoErr(t, err)
	if up.Total != 2000 {
		t.Fatalf("upcoming total = %d", up.Total)
	}
}

func TestUpcomingInvoicePreviews(t *testing.T) {
	e := newEnv(t, Options{})
	pr := e.mkPrice(2000, "usd")
	cp := e.mkCoupon(&stripe.CouponParams{ID: stripe.String("P30"), PercentOff: stripe.Float64(30), Duration: stripe.String("once")})
	promo := e.mkPromo(cp.ID, "PREVIEW30")
	cust := e.mkCustomer("")
	s, err := e.mkSub(cust.ID, pr.ID, nil)
	mustNoErr(t, err)
	before := e.sim.Counts()

	up, err := e.sc.Invoices.Upcoming(&stripe.InvoiceUpcomingParams{Customer: stripe.String(cust.ID),
		Discounts: []*stripe.InvoiceDiscountParams{{PromotionCode: stripe.String(promo.ID)}}})
	mustNoErr(t, err)
	if up.Total != 1400 || up.Discount == nil || up.Discount.PromotionCode.ID != promo.ID || up.Lines.Data[0].DiscountAmounts[0].Amount != 600 ||
		up.Subscription.ID != s.ID || up.BillingReason != "subscription_cycle" || up.Status != "draft" {
		t.Fatalf("preview with promotion code = %+v", up)
	}
	up, err = e.sc.Invoices.Upcoming(&stripe.InvoiceUpcomingParams{Subscription: stripe.String(s.ID), Coupon: stripe.String("P30")})
	mustNoErr(t, err)
	if up.Total != 1400 {
		t.Fatalf("preview with coupon = %d", up.Total)
	}
	// Nothing was redeemed or attached.
	pc, _ := e.sc.PromotionCodes.Get(promo.ID, nil)
	got, _ := e.sc.Subscriptions.Get(s.ID, nil)
	if pc.TimesRedeemed != 0 || got.Discount != nil || len(e.invoices(s.ID)) != 1 || len(e.events("customer.discount.created")) != 0 {
		t.Fatal("upcoming had side effects")
	}
	_ = before
	// Rules apply to previews too.
	_, err = e.sc.PromotionCodes.Update(promo.ID, &stripe.PromotionCodeParams{Active: stripe.Bool(false)})
	mustNoErr(t, err)
	_, err = e.sc.Invoices.Upcoming(&stripe.InvoiceUpcomingParams{Customer: stripe.String(cust.ID),
		Discounts: []*stripe.InvoiceDiscountParams{{PromotionCode: stripe.String(promo.ID)}}})
	stripeErr(t, err, 400, stripe.ErrorTypeInvalidRequest, "", "discounts[0][promotion_code]")
	// promotion_code is not an upcoming-invoice parameter on Stripe.
	r := e.raw("GET", "/v1/invoices/upcoming", testKey, "customer="+cust.ID+"&promotion_code="+promo.ID, nil)
	if r.status != 400 || r.errField("code") != "parameter_unknown" {
		t.Fatalf("promotion_code param: %d %s", r.status, r.raw)
	}
	// No subscription: invoice_upcoming_none.
	lonely := e.mkCustomer("")
	_, err = e.sc.Invoices.Upcoming(&stripe.InvoiceUpcomingParams{Customer: stripe.String(lonely.ID)})
	stripeErr(t, err, 404, stripe.ErrorTypeInvalidRequest, stripe.ErrorCodeInvoiceUpcomingNone, "")
	_, err = e.sc.Invoices.Upcoming(&stripe.InvoiceUpcomingParams{})
	stripeErr(t, err, 400, stripe.ErrorTypeInvalidRequest, stripe.ErrorCodeParameterMissing, "customer")
}

func TestSubscriptionCRUD(t *testing.T) {
	e := newEnv(t, Options{})
	pr := e.mkPrice(2000, "usd")
	oneTime, err := e.sc.Prices.New(&stripe.PriceParams{Currency: stripe.String("usd"), UnitAmount: stripe.Int64(100), Product: stripe.String(pr.Product.ID)})
	mustNoErr(t, err)
	eur := e.mkPrice(1000, "eur")
	cust := e.mkCustomer("")

	for _, tc := range []struct {
		name  string
		mod   func(*stripe.SubscriptionParams)
		code  stripe.ErrorCode
		param string
	}{
		{"missing customer", func(p *stripe.SubscriptionParams) { p.Customer = nil }, stripe.ErrorCodeParameterMissing, "customer"},
		{"unknown customer", func(p *stripe.SubscriptionParams) { p.Customer = stripe.String("cus_nope") }, stripe.ErrorCodeResourceMissing, "customer"},
		{"missing items", func(p *stripe.SubscriptionParams) { p.Items = nil }, stripe.ErrorCodeParameterMissing, "items"},
		{"unknown price", func(p *stripe.SubscriptionParams) { p.Items[0].Price = stripe.String("price_nope") }, stripe.ErrorCodeResourceMissing, "items[0][price]"},
		{"one-time price", func(p *stripe.SubscriptionParams) { p.Items[0].Price = stripe.String(oneTime.ID) }, "", "items[0][price]"},
		{"bad quantity", func(p *stripe.SubscriptionParams) { p.Items[0].Quantity = stripe.Int64(0) }, "", "items[0][quantity]"},
		{"mixed currencies", func(p *stripe.SubscriptionParams) {
			p.Items = append(p.Items, &stripe.SubscriptionItemsParams{Price: stripe.String(eur.ID)})
		}, "", "items[1][price]"},
		{"trial not simulated", func(p *stripe.SubscriptionParams) { p.TrialPeriodDays = stripe.Int64(7) }, "", "trial_period_days"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := e.mkSub(cust.ID, pr.ID, tc.mod)
			stripeErr(t, err, 400, stripe.ErrorTypeInvalidRequest, tc.code, tc.param)
		})
	}

	p := &stripe.SubscriptionParams{Customer: stripe.String(cust.ID),
		Items:           []*stripe.SubscriptionItemsParams{{Price: stripe.String(pr.ID), Quantity: stripe.Int64(2)}},
		Metadata:        map[string]string{"order": "42"},
		PaymentBehavior: stripe.String("default_incomplete")}
	p.AddExpand("latest_invoice")
	p.AddExpand("customer")
	p.AddExpand("items.data.price.product")
	s, err := e.sc.Subscriptions.New(p)
	mustNoErr(t, err)
	if s.LatestInvoice.Total != 4000 || s.LatestInvoice.Status != "paid" || s.Customer.Email != "user@example.com" ||
		s.Items.Data[0].Price.Product.Name == "" || s.Metadata["order"] != "42" || s.Items.Data[0].Quantity != 2 {
		t.Fatalf("expanded subscription = %+v", s)
	}
	cp := &stripe.CustomerParams{}
	cp.AddExpand("subscriptions")
	withSubs, err := e.sc.Customers.Get(cust.ID, cp)
	mustNoErr(t, err)
	if withSubs.Subscriptions == nil || len(withSubs.Subscriptions.Data) != 1 || withSubs.Subscriptions.Data[0].ID != s.ID {
		t.Fatalf("customer subscriptions = %+v", withSubs.Subscriptions)
	}
	r := e.raw("GET", "/v1/subscriptions/"+s.ID, testKey, "expand[]=nonsense", nil)
	if r.status != 400 || r.errField("param") != "expand" {
		t.Fatalf("bad expand: %d %s", r.status, r.raw)
	}
	// Currency mismatch with the customer's existing subscription.
	_, err = e.mkSub(cust.ID, eur.ID, nil)
	stripeErr(t, err, 400, stripe.ErrorTypeInvalidRequest, "", "currency")

	upd, err := e.sc.Subscriptions.Update(s.ID, &stripe.SubscriptionParams{Metadata: map[string]string{"order": "", "x": "1"}})
	mustNoErr(t, err)
	if _, ok := upd.Metadata["order"]; ok || upd.Metadata["x"] != "1" {
		t.Fatalf("metadata = %v", upd.Metadata)
	}
	updEv := e.events("customer.subscription.updated")
	if len(updEv) != 1 {
		t.Fatalf("updated events = %d", len(updEv))
	}
	prevMeta, _ := updEv[0].Data.PreviousAttributes["metadata"].(map[string]any)
	if prevMeta["order"] != "42" || prevMeta["x"] != nil || len(updEv[0].Data.PreviousAttributes) != 1 {
		t.Fatalf("previous_attributes = %+v", updEv[0].Data.PreviousAttributes)
	}
	_, err = e.sc.Subscriptions.Update(s.ID, &stripe.SubscriptionParams{Items: []*stripe.SubscriptionItemsParams{{Price: stripe.String(pr.ID)}}})
	stripeErr(t, err, 400, stripe.ErrorTypeInvalidRequest, "", "items")

	// List filters.
	list := func(p *stripe.SubscriptionListParams) int {
		it := e.sc.Subscriptions.List(p)
		n := 0
		for it.Next() {
			n++
		}
		mustNoErr(t, it.Err())
		return n
	}
	if list(&stripe.SubscriptionListParams{Customer: stripe.String(cust.ID)}) != 1 ||
		list(&stripe.SubscriptionListParams{Price: stripe.String(pr.ID)}) != 1 ||
		list(&stripe.SubscriptionListParams{Status: stripe.String("past_due")}) != 0 {
		t.Fatal("list filters wrong")
	}

	// Cancel.
	cancelled, err := e.sc.Subscriptions.Cancel(s.ID, nil)
	mustNoErr(t, err)
	if cancelled.Status != "canceled" || cancelled.CanceledAt == 0 || cancelled.EndedAt == 0 {
		t.Fatalf("cancelled = %+v", cancelled)
	}
	if list(&stripe.SubscriptionListParams{Customer: stripe.String(cust.ID)}) != 0 ||
		list(&stripe.SubscriptionListParams{Customer: stripe.String(cust.ID), Status: stripe.String("all")}) != 1 ||
		list(&stripe.SubscriptionListParams{Status: stripe.String("canceled")}) != 1 {
		t.Fatal("list after cancel wrong")
	}
	if len(e.events("customer.subscription.deleted")) != 1 {
		t.Fatal("no customer.subscription.deleted")
	}
	_, err = e.sc.Subscriptions.Cancel(s.ID, nil)
	stripeErr(t, err, 400, stripe.ErrorTypeInvalidRequest, "", "")
	_, err = e.sc.Subscriptions.Update(s.ID, &stripe.SubscriptionParams{Coupon: stripe.String("x")})
	stripeErr(t, err, 400, stripe.ErrorTypeInvalidRequest, "", "coupon")
	_, err = e.sc.Invoices.Upcoming(&stripe.InvoiceUpcomingParams{Subscription: stripe.String(s.ID)})
	stripeErr(t, err, 404, stripe.ErrorTypeInvalidRequest, stripe.ErrorCodeInvoiceUpcomingNone, "")
}

func TestInvoiceListFilters(t *testing.T) {
	e := newEnv(t, Options{})
	clock := e.mkClock(t0)
	pr := e.mkPrice(2000, "usd")
	c1, c2 := e.mkCustomer(clock.ID), e.mkCustomer(clock.ID)
	s1, err := e.mkSub(c1.ID, pr.ID, nil)
	mustNoErr(t, err)
	_, err = e.mkSub(c2.ID, pr.ID, nil)
	mustNoErr(t, err)
	mustNoErr(t, e.sim.SetCustomerDecline(c2.ID, true))
	e.advance(clock.ID, time.Date(2024, 3, 1, 0, 0, 0, 0, time.UTC))
	count := func(p *stripe.InvoiceListParams) int {
		it := e.sc.Invoices.List(p)
		n := 0
		for it.Next() {
			n++
		}
		mustNoErr(t, it.Err())
		return n
	}
	feb := time.Date(2024, 2, 1, 0, 0, 0, 0, time.UTC).Unix()
	if got := count(&stripe.InvoiceListParams{Customer: stripe.String(c1.ID)}); got != 2 {
		t.Errorf("by customer = %d", got)
	}
	if got := count(&stripe.InvoiceListParams{Subscription: stripe.String(s1.ID)}); got != 2 {
		t.Errorf("by subscription = %d", got)
	}
	if got := count(&stripe.InvoiceListParams{Status: stripe.String("open")}); got != 1 {
		t.Errorf("by status = %d", got)
	}
	if got := count(&stripe.InvoiceListParams{CreatedRange: &stripe.RangeQueryParams{GreaterThanOrEqual: feb}}); got != 2 {
		t.Errorf("by created[gte] = %d", got)
	}
	_, err = e.sc.Invoices.Get("in_nope", nil)
	se := stripeErr(t, err, 404, stripe.ErrorTypeInvalidRequest, stripe.ErrorCodeResourceMissing, "id")
	if se.Msg != "No such invoice: 'in_nope'" {
		t.Errorf("message = %q", se.Msg)
	}
}

func TestTestClocks(t *testing.T) {
	e := newEnv(t, Options{})
	tc := e.mkClock(t0)
	if tc.FrozenTime != t0.Unix() || tc.Status != "ready" || !strings.HasPrefix(tc.ID, "clock_") {
		t.Fatalf("clock = %+v", tc)
	}
	_, err := e.sc.TestHelpersTestClocks.Advance(tc.ID, &stripe.TestHelpersTestClockAdvanceParams{FrozenTime: stripe.Int64(t0.Unix())})
	stripeErr(t, err, 400, stripe.ErrorTypeInvalidRequest, "", "frozen_time")
	_, err = e.sc.TestHelpersTestClocks.Advance(tc.ID, &stripe.TestHelpersTestClockAdvanceParams{FrozenTime: stripe.Int64(t0.Unix() - 10)})
	stripeErr(t, err, 400, stripe.ErrorTypeInvalidRequest, "", "frozen_time")
	_, err = e.sc.TestHelpersTestClocks.Get("clock_nope", nil)
	stripeErr(t, err, 404, stripe.ErrorTypeInvalidRequest, stripe.ErrorCodeResourceMissing, "id")
	got, err := e.sc.TestHelpersTestClocks.Get(tc.ID, nil)
	mustNoErr(t, err)
	if got.FrozenTime != t0.Unix() {
		t.Fatal("retrieve")
	}
	it := e.sc.TestHelpersTestClocks.List(&stripe.TestHelpersTestClockListParams{})
	n := 0
	for it.Next() {
		n++
	}
	mustNoErr(t, it.Err())
	if n != 1 {
		t.Fatalf("list = %d", n)
	}
	cust := e.mkCustomer(tc.ID)
	del, err := e.sc.TestHelpersTestClocks.Del(tc.ID, nil)
	mustNoErr(t, err)
	if !del.Deleted {
		t.Fatal("not deleted")
	}
	_, err = e.sc.Customers.Get(cust.ID, nil)
	stripeErr(t, err, 404, stripe.ErrorTypeInvalidRequest, stripe.ErrorCodeResourceMissing, "id")
}

func TestRealTimeBillingWithoutClock(t *testing.T) {
	var now atomic.Int64
	start := time.Date(2024, 1, 15, 12, 0, 0, 0, time.UTC)
	now.Store(start.Unix())
	e := newEnv(t, Options{Now: func() time.Time { return time.Unix(now.Load(), 0) }})
	pr := e.mkPrice(2000, "usd")
	cp := e.mkCoupon(&stripe.CouponParams{PercentOff: stripe.Float64(10), Duration: stripe.String("repeating"), DurationInMonths: stripe.Int64(1)})
	cust := e.mkCustomer("")
	s, err := e.mkSub(cust.ID, pr.ID, func(p *stripe.SubscriptionParams) { p.Coupon = stripe.String(cp.ID) })
	mustNoErr(t, err)
	if s.Created != start.Unix() {
		t.Fatalf("created = %d", s.Created)
	}
	now.Store(time.Date(2024, 3, 20, 0, 0, 0, 0, time.UTC).Unix()) // two periods later
	invs := e.invoices(s.ID)
	if len(invs) != 3 || invs[0].Total != 1800 || invs[1].Total != 2000 || invs[2].Total != 2000 ||
		invs[1].Created != time.Date(2024, 2, 15, 12, 0, 0, 0, time.UTC).Unix() {
		var totals []int64
		for _, in := range invs {
			totals = append(totals, in.Total)
		}
		t.Fatalf("lazy billing: %d invoices %v", len(invs), totals)
	}
}
