package stripesim

import (
	"cmp"
	"maps"
	"slices"
	"sort"
	"strings"
)

// listSchemaBase are the pagination parameters every list endpoint takes.
var listSchemaBase = []string{"limit", "starting_after", "ending_before", "expand[#]", "created", "created[*]"}

// seqIndex keeps one kind's objects in creation order (seq ascending), so a
// list page is found by binary search and read in O(page) instead of
// sorting every object on every page. Objects are appended as they are made
// (add, under s.mu, right after their seq is drawn); when the map's size
// says otherwise (deletions, state restored without add), view rebuilds it
// once from the map.
type seqIndex[T any] struct {
	items []T
	gen   int // bumped when items is rebuilt (createdRanges start over)
	// ranges are the objects of a few created ranges (createdRanges).
	ranges []*createdRange[T]
	tick   int64
}

func (x *seqIndex[T]) add(v T) { x.items = append(x.items, v) }

func (x *seqIndex[T]) view(m map[string]T, seq func(T) int64) []T {
	if len(x.items) != len(m) {
		x.items = slices.SortedFunc(maps.Values(m), func(a, b T) int { return cmp.Compare(seq(a), seq(b)) })
		x.gen++
	}
	return x.items
}

// seqIndexes are the Server's list indexes (guarded by s.mu).
type seqIndexes struct {
	customers seqIndex[*customer]
	products  seqIndex[*product]
	prices    seqIndex[*price]
	coupons   seqIndex[*coupon]
	promos    seqIndex[*promoCode]
	subs      seqIndex[*subscription]
	invoices  seqIndex[*invoice]
	clocks    seqIndex[*testClock]
	// promosByCode holds the promotion codes by upper-case code, so a
	// create checks uniqueness without scanning every code; byCodeN is
	// how many it holds (rebuilt from s.promos when that differs).
	promosByCode map[string][]*promoCode
	byCodeN      int
	// invoicesByCustomer holds each customer's invoices (customer
	// rendering and first_time_transaction look at them); byCustN is how
	// many it holds (rebuilt from s.invoices when that differs).
	invoicesByCustomer map[string][]*invoice
	byCustN            int
	// realSubs are the subscriptions billed in real time (their customer
	// has no test clock) that may still be billed, so the catch-up before
	// every request does not walk every subscription; realSeen is how many
	// subscriptions were sorted into it (rebuilt when s.subs differs).
	realSubs map[string]*subscription
	realSeen int
	// clockSubs holds each test clock's subscriptions (those of its
	// customers), so advancing a clock does not walk every subscription;
	// clockSeen is how many subscriptions were sorted into it (rebuilt
	// when s.subs differs).
	clockSubs map[string][]*subscription
	clockSeen int
}

// subsOnClock returns the subscriptions of the test clock's customers, in
// no particular order.
func (s *Server) subsOnClock(clock string) []*subscription {
	x := &s.idx
	if x.clockSubs == nil || x.clockSeen != len(s.subs) {
		x.clockSubs, x.clockSeen = map[string][]*subscription{}, 0
		for _, sub := range s.subs {
			s.indexClockSub(sub)
		}
	}
	return x.clockSubs[clock]
}

// indexClockSub sorts a new subscription into clockSubs.
func (s *Server) indexClockSub(sub *subscription) {
	x := &s.idx
	if x.clockSubs == nil {
		return // built on first use
	}
	x.clockSeen++
	if cu := s.customers[sub.customer]; cu != nil && cu.clock != "" {
		x.clockSubs[cu.clock] = append(x.clockSubs[cu.clock], sub)
	}
}

// realTimeSubs returns the subscriptions catchUpRealTime looks at.
func (s *Server) realTimeSubs() map[string]*subscription {
	x := &s.idx
	if x.realSubs == nil || x.realSeen != len(s.subs) {
		x.realSubs, x.realSeen = map[string]*subscription{}, 0
		for _, sub := range s.subs {
			s.indexRealTime(sub)
		}
	}
	return x.realSubs
}

// indexRealTime sorts a new subscription into realSubs.
func (s *Server) indexRealTime(sub *subscription) {
	x := &s.idx
	if x.realSubs == nil {
		return // built on first use
	}
	x.realSeen++
	if cu := s.customers[sub.customer]; cu != nil && cu.clock == "" {
		x.realSubs[sub.ID] = sub
	}
}

// customerInvoices returns the customer's invoices.
func (s *Server) customerInvoices(customer string) []*invoice {
	x := &s.idx
	if x.invoicesByCustomer == nil || x.byCustN != len(s.invoices) {
		x.invoicesByCustomer, x.byCustN = map[string][]*invoice{}, 0
		for _, in := range s.invoices {
			s.indexInvoice(in)
		}
	}
	return x.invoicesByCustomer[customer]
}

// indexInvoice records a new invoice in invoicesByCustomer.
func (s *Server) indexInvoice(in *invoice) {
	x := &s.idx
	if x.invoicesByCustomer == nil {
		return // built on first use
	}
	x.invoicesByCustomer[in.customer] = append(x.invoicesByCustomer[in.customer], in)
	x.byCustN++
}

// promosWithCode returns the promotion codes with this code (any case).
func (s *Server) promosWithCode(code string) []*promoCode {
	x := &s.idx
	if x.promosByCode == nil || x.byCodeN != len(s.promos) {
		x.promosByCode, x.byCodeN = map[string][]*promoCode{}, 0
		for _, pc := range s.promos {
			s.indexPromoCode(pc)
		}
	}
	return x.promosByCode[strings.ToUpper(code)]
}

// indexPromoCode records a new promotion code in promosByCode.
func (s *Server) indexPromoCode(pc *promoCode) {
	x := &s.idx
	if x.promosByCode == nil {
		return // built on first use
	}
	k := strings.ToUpper(pc.code)
	x.promosByCode[k] = append(x.promosByCode[k], pc)
	x.byCodeN++
}

// paginate implements Stripe's cursor pagination over all (seq ascending,
// as seqIndex.view gives it) restricted to the objects keep accepts: newest
// first; starting_after returns older objects, ending_before the newer
// objects closest to the cursor (still newest first). It reads from the
// cursor outwards and stops after limit+1 kept objects.
func paginate[T, R any](c *reqCtx, url string, all []T, keep func(T) bool, seqOf func(T) int64, cursor func(id string) (int64, bool), kind string, render func(T) R) (map[string]any, *apiError) {
	limit := int64(10)
	if v, ok, err := c.p.int64("limit"); err != nil {
		return nil, err
	} else if ok {
		if v < 1 {
			return nil, invalidParam("limit", "This value must be greater than or equal to 1.")
		}
		if v > 100 {
			return nil, invalidParam("limit", "This value must be less than or equal to 100.")
		}
		limit = v
	}
	sa, hasSA := c.p.str("starting_after")
	eb, hasEB := c.p.str("ending_before")
	if hasSA && sa != "" && hasEB && eb != "" {
		return nil, invalidParam("starting_after", "You may only specify one of these parameters: ending_before, starting_after.")
	}
	// pos is the index of the first object with seq >= cs.
	pos := func(cs int64) int { return sort.Search(len(all), func(i int) bool { return seqOf(all[i]) >= cs }) }
	var page []T
	hasMore := false
	older := func(from int) { // from all[from] down, newest first
		for i := from; i >= 0; i-- {
			if !keep(all[i]) {
				continue
			}
			if int64(len(page)) == limit {
				hasMore = true
				return
			}
			page = append(page, all[i])
		}
	}
	switch {
	case hasSA && sa != "":
		cs, ok := cursor(sa)
		if !ok {
			return nil, noSuchParam(kind, "starting_after", sa)
		}
		older(pos(cs) - 1)
	case hasEB && eb != "":
		cs, ok := cursor(eb)
		if !ok {
			return nil, noSuchParam(kind, "ending_before", eb)
		}
		i := pos(cs)
		if i < len(all) && seqOf(all[i]) == cs {
			i++
		}
		for ; i < len(all); i++ { // oldest first from the cursor
			if !keep(all[i]) {
				continue
			}
			if int64(len(page)) == limit {
				hasMore = true
				break
			}
			page = append(page, all[i])
		}
		slices.Reverse(page)
	default:
		older(len(all) - 1)
	}
	data := make([]any, 0, len(page))
	for _, it := range page {
		data = append(data, render(it))
	}
	return map[string]any{"object": "list", "data": data, "has_more": hasMore, "url": url}, nil
}
