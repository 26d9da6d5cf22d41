package stripesim

import (
	"container/heap"
	"fmt"
	"math/bits"
)

// The billing engine. Subscriptions bill monthly in advance from their
// anchor. A renewal at the end of a period creates a subscription_cycle
// invoice for the next period, applies the subscription's discount
// according to its coupon duration, finalizes it and pays it (or fails
// the payment for customers set to decline).
//
// Discount durations:
//   - once: applies to the first invoice generated after it was attached;
//     the discount is removed (customer.discount.deleted) at the next
//     renewal, before that renewal's invoice is computed.
//   - repeating N: discount.end = start + N months; applies to invoices
//     created before end and is removed when time reaches end.
//   - forever: always applies.
//
// Amounts: percent_off applies to each eligible line as
// (amount*bp+5000)/10000 (nearest minor unit, halves up). amount_off
// applies once per invoice, capped at the eligible subtotal, only when the
// coupon currency equals the invoice currency, spread over eligible lines
// in proportion to their amounts (remainder to the first lines). Lines
// whose product is not in coupon.applies_to get no discount.

// invoiceFor builds (without recording) an invoice for the service period
// [ps, pe) with discount d (may be nil).
func (s *Server) invoiceFor(sub *subscription, ps, pe int64, reason string, d *discount, created int64, preview bool) *invoice {
	cu := s.customers[sub.customer]
	in := &invoice{
		customer: sub.customer, subscription: sub.ID, status: "draft", currency: sub.currency,
		billingReason: reason, created: created, clock: cu.clock, subMetadata: copyMeta(sub.metadata),
	}
	if !preview {
		in.ID = newID("in")
	}
	for _, it := range sub.items {
		pr := s.prices[it.price]
		amount := pr.unitAmount * it.quantity
		lineID := newID("il")
		if preview {
			lineID = "il_tmp_" + randomString(14, idAlphabet)
		}
		prodName := pr.product
		if p := s.products[pr.product]; p != nil {
			prodName = p.name
		}
		in.lines = append(in.lines, &invoiceLine{
			ID: lineID, amount: amount, currency: pr.currency, price: pr.ID, product: pr.product,
			quantity: it.quantity, periodStart: ps, periodEnd: pe, subItem: it.ID,
			description: fmt.Sprintf("%d × %s (at %s / month)", it.quantity, prodName, formatAmount(pr.unitAmount, pr.currency)),
		})
		in.subtotal += amount
	}
	if d != nil {
		s.applyDiscount(in, d)
	}
	var disc int64
	for _, l := range in.lines {
		for _, da := range l.discountAmounts {
			disc += da.amount
		}
	}
	if d != nil {
		in.totalDiscounts = []discAmt{{amount: disc, discount: d.ID}}
	}
	in.total = in.subtotal - disc
	if in.total < 0 {
		in.total = 0
	}
	in.amountDue = in.total
	in.amountRemaining = in.total
	return in
}

func (s *Server) applyDiscount(in *invoice, d *discount) {
	cp := d.coupon
	in.discount = d
	var eligible []*invoiceLine
	var eligibleTotal int64
	for _, l := range in.lines {
		if cp.appliesToProduct(l.product) && l.amount > 0 {
			eligible = append(eligible, l)
			eligibleTotal += l.amount
		}
	}
	if len(eligible) == 0 {
		return
	}
	if cp.percentBP != 0 {
		for _, l := range eligible {
			l.discountAmounts = []discAmt{{amount: percentOf(l.amount, cp.percentBP), discount: d.ID}}
		}
		return
	}
	if cp.currency != in.currency {
		return
	}
	total := cp.amountOff
	if total > eligibleTotal {
		total = eligibleTotal
	}
	shares := make([]int64, len(eligible))
	var given int64
	for i, l := range eligible {
		// floor(total * amount / eligibleTotal) in 128-bit integer math
		// (total <= eligibleTotal, so the quotient fits).
		hi, lo := bits.Mul64(uint64(total), uint64(l.amount))
		q, _ := bits.Div64(hi, lo, uint64(eligibleTotal))
		shares[i] = int64(q)
		if shares[i] > l.amount {
			shares[i] = l.amount
		}
		given += shares[i]
	}
	for i := 0; given < total && i < len(eligible); i++ {
		room := eligible[i].amount - shares[i]
		add := total - given
		if add > room {
			add = room
		}
		shares[i] += add
		given += add
	}
	for i, l := range eligible {
		l.discountAmounts = []discAmt{{amount: shares[i], discount: d.ID}}
	}
}

// recordInvoice stores an invoice, finalizes it and attempts payment at
// time at. It returns the invoice events (created, finalized, paid /
// payment_succeeded or payment_failed) with snapshots taken at each step.
func (s *Server) recordInvoice(in *invoice, at int64) []pendingEvent {
	cu := s.customers[in.customer]
	in.seq = s.nextSeq()
	s.invoices[in.ID] = in
	s.idx.invoices.add(in)
	s.indexInvoice(in)
	evs := []pendingEvent{{typ: "invoice.created", obj: s.renderInvoice(in), created: at}}
	in.status = "open"
	in.finalizedAt = at
	in.number = fmt.Sprintf("%s-%04d", cu.invoicePrefix, cu.nextInvoice)
	cu.nextInvoice++
	evs = append(evs, pendingEvent{typ: "invoice.finalized", obj: s.renderInvoice(in), created: at})
	return append(evs, s.attemptPayment(in, at)...)
}

// attemptPayment charges an open invoice. $0 invoices are paid without a
// charge, even for declining customers.
func (s *Server) attemptPayment(in *invoice, at int64) []pendingEvent {
	cu := s.customers[in.customer]
	if in.amountDue > 0 {
		in.attempted = true
		in.attemptCount++
	}
	if in.amountDue > 0 && (cu.decline || in.payDecline) {
		in.nextAttempt = at + 3*86400
		return []pendingEvent{{typ: "invoice.payment_failed", obj: s.renderInvoice(in), created: at}}
	}
	in.attempted = true
	in.status = "paid"
	in.paid = true
	in.amountPaid = in.amountDue
	in.amountRemaining = 0
	in.paidAt = at
	in.nextAttempt = 0
	snap := s.renderInvoice(in)
	return []pendingEvent{
		{typ: "invoice.paid", obj: snap, created: at},
		{typ: "invoice.payment_succeeded", obj: s.renderInvoice(in), created: at},
	}
}

// nextEventTime returns when the subscription next needs processing: its
// period end or its repeating discount's end.
func (s *Server) nextEventTime(sub *subscription) (int64, bool) {
	switch sub.status {
	case "canceled", "incomplete", "incomplete_expired":
		return 0, false
	}
	t := sub.periodEnd()
	if d := sub.discount; d != nil && d.coupon.duration == "repeating" && d.end < t {
		t = d.end
	}
	return t, true
}

// step processes the subscription's next event, which happens at `at`.
func (s *Server) step(sub *subscription, at int64) {
	o := eventOrigin{}
	if d := sub.discount; d != nil && d.coupon.duration == "repeating" && d.end <= at {
		s.removeDiscount(sub, d.end, o)
		return
	}
	s.renew(sub, at)
}

// renew rolls the subscription into its next period at `at` (its period
// end) and bills that period.
func (s *Server) renew(sub *subscription, at int64) {
	o := eventOrigin{}
	if d := sub.discount; d != nil && d.coupon.duration == "once" && d.used {
		s.removeDiscount(sub, at, o)
	}
	before := s.renderSubscription(sub)
	prevStart := sub.periodStart()
	sub.period++
	d := sub.discount
	if !d.activeAt(at) {
		d = nil
	}
	if d == nil && sub.discount == nil {
		d = s.customerDiscountFor(sub.customer, at) // customer_discounts.go
	}
	in := s.invoiceFor(sub, sub.periodStart(), sub.periodEnd(), "subscription_cycle", d, at, false)
	in.periodStart, in.periodEnd = prevStart, at
	if d != nil && d.coupon.duration == "once" {
		d.used = true
	}
	sub.latestInvoice = in.ID
	evs := s.recordInvoice(in, at)
	if ev := s.usedCustomerDiscount(d, at); ev != nil {
		evs = append(evs, *ev)
	}
	s.emitUpdate("customer.subscription.updated", before, s.renderSubscription(sub), o, at)
	before = s.renderSubscription(sub)
	s.flush(evs, o)
	switch {
	case in.status == "paid" && sub.status != "active":
		sub.status = "active"
	case in.status == "open" && sub.status == "active":
		sub.status = "past_due"
	}
	s.emitUpdate("customer.subscription.updated", before, s.renderSubscription(sub), o, at)
}

// advanceSubs processes, in time order, every event of subs up to and
// including time target. setTime (may be nil) is called with the time of
// each event before it is processed (test clocks move their frozen time).
// Events at the same time go in creation order (seq). The subscriptions
// wait in a heap keyed by their next event time, so each event costs
// O(log subs), not a walk of every subscription; a step changes only its
// own subscription, whose time is read again before it is processed.
func (s *Server) advanceSubs(subs []*subscription, target int64, setTime func(int64)) {
	h := make(dueHeap, 0, len(subs))
	for _, sub := range subs {
		if t, ok := s.nextEventTime(sub); ok && t <= target {
			h = append(h, dueSub{t: t, sub: sub})
		}
	}
	heap.Init(&h)
	for guard := 0; guard < 100000; {
		if len(h) == 0 {
			return
		}
		top := h[0]
		t, ok := s.nextEventTime(top.sub)
		if !ok || t > target {
			heap.Pop(&h)
			continue
		}
		if t != top.t { // changed since it was queued
			h[0].t = t
			heap.Fix(&h, 0)
			continue
		}
		if setTime != nil {
			setTime(t)
		}
		s.step(top.sub, t)
		guard++
		if t, ok := s.nextEventTime(top.sub); ok && t <= target {
			h[0].t = t
			heap.Fix(&h, 0)
		} else {
			heap.Pop(&h)
		}
	}
	s.log.Error("stripesim: billing loop guard hit")
}

// dueSub is a subscription waiting in advanceSubs's heap.
type dueSub struct {
	t   int64
	sub *subscription
}

// dueHeap orders subscriptions by next event time, then creation.
type dueHeap []dueSub

func (h dueHeap) Len() int { return len(h) }
func (h dueHeap) Less(i, j int) bool {
	if h[i].t != h[j].t {
		return h[i].t < h[j].t
	}
	return h[i].sub.seq < h[j].sub.seq
}
func (h dueHeap) Swap(i, j int) { h[i], h[j] = h[j], h[i] }
func (h *dueHeap) Push(x any)   { *h = append(*h, x.(dueSub)) }
func (h *dueHeap) Pop() any {
	old := *h
	x := old[len(old)-1]
	*h = old[:len(old)-1]
	return x
}

// catchUpRealTime bills subscriptions of customers without a test clock up
// to the real current time. It runs (lazily) before every API request.
// Caller holds s.mu.
func (s *Server) catchUpRealTime() {
	now := s.realNow()
	var due []*subscription
	for id, sub := range s.realTimeSubs() {
		switch sub.status {
		case "canceled", "incomplete_expired": // for good: never billed again
			delete(s.idx.realSubs, id)
			continue
		}
		if t, ok := s.nextEventTime(sub); ok && t <= now {
			due = append(due, sub)
		}
	}
	if len(due) > 0 {
		s.advanceSubs(due, now, nil)
	}
}
