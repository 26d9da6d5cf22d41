package stripegw

import (
	"context"
	"errors"
	"sync"
	"time"

	"github.com/stripe/stripe-go/v76"
	"golang.org/x/time/rate"

	"github.com/billing-adapter/billing-adapter/internal/promo"
)

// ReadOptions tune how reconcile reads Stripe (Reader).
type ReadOptions struct {
	// Rate bounds the list requests per second of the whole read (a token
	// bucket from golang.org/x/time/rate, burst 1); 0 = no bound.
	Rate float64
	// Partitions is how many created-time ranges of the subscription and
	// invoice lists are read at once (1 = one walk, as Gateway does).
	Partitions int
}

// Reader is promo.StripeReader over a Gateway that reads the large lists
// (subscriptions, paid invoices) concurrently, split into Partitions ranges
// of their created time, under one request rate shared by every walk. The
// ranges split [oldest, newest] of the list, found first with a few
// one-object requests (the newest, then a binary search on created for the
// oldest: about 30 requests); the first range is open below and the last
// open above, so objects created during the read are not missed. Callbacks
// run one at a time (the caller's fn needs no locking), in no particular
// order across ranges.
type Reader struct {
	g   *Gateway
	o   ReadOptions
	lim *rate.Limiter

	mu sync.Mutex // serializes callbacks

	// cmu guards ranges and their progress. It is not mu, so a callback
	// may ask Covered (progress lines).
	cmu    sync.Mutex
	ranges map[string][]*span
}

// span is one created-time range of a list being read.
type span struct {
	lo, hi int64 // [lo, hi): the share of the list it stands for
	floor  int64 // below: reads down to floor (0: everything older)
	below  bool  // open below: also reads what was created before lo
	open   bool  // open above: also reads what was created at or after hi
	last   int64 // created of the last object read (lists are newest first)
	done   bool
}

// NewReader builds a Reader.
func NewReader(g *Gateway, o ReadOptions) *Reader {
	if o.Partitions < 1 {
		o.Partitions = 1
	}
	lim := rate.NewLimiter(rate.Inf, 1)
	if o.Rate > 0 {
		lim = rate.NewLimiter(rate.Limit(o.Rate), 1)
	}
	return &Reader{g: g, o: o, lim: lim, ranges: map[string][]*span{}}
}

var _ promo.StripeReader = (*Reader)(nil)

// Covered is the share (0-1) of the list's created range read so far; -1
// when that is not known (the list is not partitioned, or not started).
func (r *Reader) Covered(list string) float64 {
	r.cmu.Lock()
	defer r.cmu.Unlock()
	var total, read float64
	for _, s := range r.ranges[list] {
		if s.hi <= s.lo {
			continue
		}
		w := float64(s.hi - s.lo)
		total += w
		switch {
		case s.done:
			read += w
		case s.last > 0:
			read += min(w, max(0, float64(s.hi-s.last)))
		}
	}
	if total == 0 {
		return -1
	}
	return read / total
}

// EachCoupon walks every coupon (one walk: coupons are few).
func (r *Reader) EachCoupon(ctx context.Context, fn func(promo.StripeCoupon) error) error {
	params := &stripe.CouponListParams{}
	params.AddExpand("data.applies_to") // applies_to is only sent when expanded
	return walk(r, ctx, opCouponList, &params.ListParams, nil,
		func() *stripe.Iter { return r.g.api.Coupons.List(params).Iter },
		func(c *stripe.Coupon) string { return c.ID }, func(c *stripe.Coupon) int64 { return c.Created },
		func(c *stripe.Coupon) error { return fn(toStripeCoupon(c)) })
}

// EachPromotionCode walks every promotion code, active or not (one walk).
func (r *Reader) EachPromotionCode(ctx context.Context, fn func(promo.StripePromotionCode) error) error {
	params := &stripe.PromotionCodeListParams{}
	return walk(r, ctx, opPromotionCodeList, &params.ListParams, nil,
		func() *stripe.Iter { return r.g.api.PromotionCodes.List(params).Iter },
		func(pc *stripe.PromotionCode) string { return pc.ID }, func(pc *stripe.PromotionCode) int64 { return pc.Created },
		func(pc *stripe.PromotionCode) error { return fn(toStripePromotionCode(pc)) })
}

// EachSubscription walks the subscriptions of every status, canceled ones
// included, in created ranges read concurrently.
func (r *Reader) EachSubscription(ctx context.Context, fn func(promo.StripeSubscription) error) error {
	// Subscriptions are decoded as slimSubscription (slim_subscriptions.go):
	// only what reconcile reads of them.
	list := func(s *span) (*stripe.ListParams, func() *stripe.Iter) {
		params := &stripe.SubscriptionListParams{Status: stripe.String("all")}
		params.CreatedRange = createdRange(s)
		return &params.ListParams, func() *stripe.Iter { return r.g.listSlimSubscriptions(params) }
	}
	created := func(x *slimSubscription) int64 { return x.Created }
	return r.partitioned(ctx, "subscriptions", 0, probe(r, opSubscriptionList, list, created), func(ctx context.Context, s *span) error {
		params := &stripe.SubscriptionListParams{Status: stripe.String("all")}
		params.CreatedRange = createdRange(s)
		return walk(r, ctx, opSubscriptionList, &params.ListParams, s,
			func() *stripe.Iter { return r.g.listSlimSubscriptions(params) },
			func(x *slimSubscription) string { return x.ID }, created,
			func(x *slimSubscription) error { return fn(slimToStripeSubscription(x)) })
	})
}

// EachPaidInvoice walks the paid invoices created at or after since (all
// when since is zero), in created ranges read concurrently.
func (r *Reader) EachPaidInvoice(ctx context.Context, since time.Time, fn func(promo.StripeInvoice) error) error {
	var floor int64
	if !since.IsZero() {
		floor = ceilUnix(since)
	}
	// Invoices are decoded as slimInvoice (slim_invoices.go): only what
	// reconcile reads of them.
	list := func(s *span) (*stripe.ListParams, func() *stripe.Iter) {
		params := &stripe.InvoiceListParams{Status: stripe.String(string(stripe.InvoiceStatusPaid))}
		params.CreatedRange = createdRange(s)
		return &params.ListParams, func() *stripe.Iter { return r.g.listSlimInvoices(params) }
	}
	created := func(x *slimInvoice) int64 { return x.Created }
	return r.partitioned(ctx, "paid invoices", floor, probe(r, opInvoiceList, list, created), func(ctx context.Context, s *span) error {
		params := &stripe.InvoiceListParams{Status: stripe.String(string(stripe.InvoiceStatusPaid))}
		params.CreatedRange = createdRange(s)
		return walk(r, ctx, opInvoiceList, &params.ListParams, s,
			func() *stripe.Iter { return r.g.listSlimInvoices(params) },
			func(x *slimInvoice) string { return x.ID }, created,
			func(x *slimInvoice) error { return fn(slimToStripeInvoice(x)) })
	})
}

// createdRange is created >= lo (floor when open below) and < hi (unless
// open above).
func createdRange(s *span) *stripe.RangeQueryParams {
	rq := &stripe.RangeQueryParams{}
	switch {
	case s.below && s.floor > 0:
		rq.GreaterThanOrEqual = s.floor
	case !s.below && s.lo > 0:
		rq.GreaterThanOrEqual = s.lo
	}
	if s.hi > 0 && !s.open {
		rq.LesserThan = s.hi
	}
	if rq.GreaterThanOrEqual == 0 && rq.LesserThan == 0 {
		return nil // stripe-go leaves out zero bounds
	}
	return rq
}

// prober lists the newest object created in [lo, hi) (hi 0: no upper
// bound): its created time, and whether there is one.
type prober func(ctx context.Context, lo, hi int64) (int64, bool, error)

// probe makes a prober from a list: one request for one object, under the
// Reader's rate.
func probe[T any](r *Reader, operation string, list func(*span) (*stripe.ListParams, func() *stripe.Iter),
	created func(T) int64) prober {
	return func(ctx context.Context, lo, hi int64) (int64, bool, error) {
		lp, iter := list(&span{lo: lo, hi: hi, open: hi == 0})
		// (lo is floor here: a probe reads [floor, hi).)
		lp.Context, lp.Limit, lp.Single = ctx, stripe.Int64(1), true
		if err := r.lim.Wait(ctx); err != nil {
			return 0, false, err
		}
		var at int64
		found := false
		err := r.g.call(ctx, operation, func() error {
			it := iter()
			if it.Next() {
				at, found = created(it.Current().(T)), true
			}
			return it.Err()
		})
		return at, found, err
	}
}

// partitioned reads a list in Partitions created ranges at once: the
// newest object and, by binary search, the oldest (objects at or after
// floor) bound the ranges; the first is open below (down to floor), the
// last open above.
func (r *Reader) partitioned(ctx context.Context, list string, floor int64, first prober, read func(context.Context, *span) error) error {
	n := int64(r.o.Partitions)
	spans := []*span{{floor: floor, below: true, open: true}}
	if n > 1 {
		newest, found, err := first(ctx, floor, 0)
		if err != nil {
			return err
		}
		if !found {
			return nil // nothing to read
		}
		// The oldest: the least t with an object created before t.
		lo, hi := floor, newest+1 // no object in [floor, lo); one in [floor, hi)
		for hi-lo > 1 {
			mid := lo + (hi-lo)/2
			_, any, err := first(ctx, floor, mid)
			if err != nil {
				return err
			}
			if any {
				hi = mid
			} else {
				lo = mid
			}
		}
		oldest := hi - 1
		if step := (newest + 1 - oldest) / n; step > 0 {
			spans = spans[:0]
			for k := int64(0); k < n; k++ {
				spans = append(spans, &span{lo: oldest + k*step, hi: oldest + (k+1)*step})
			}
			spans[0].below, spans[0].floor = true, floor
			spans[len(spans)-1].hi, spans[len(spans)-1].open = newest+1, true
		}
	}
	r.cmu.Lock()
	r.ranges[list] = spans
	r.cmu.Unlock()
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	errs := make([]error, len(spans))
	var wg sync.WaitGroup
	for i, s := range spans {
		wg.Go(func() {
			if errs[i] = read(ctx, s); errs[i] != nil {
				cancel() // the first failure stops the other ranges
			}
		})
	}
	wg.Wait()
	for _, err := range errs {
		if err != nil && !errors.Is(err, context.Canceled) {
			return err
		}
	}
	return errors.Join(errs...)
}

// walk is eachPage under the Reader's rate, its callbacks serialized, the
// range s (nil: none) following each object's created time.
func walk[T any](r *Reader, ctx context.Context, operation string, lp *stripe.ListParams, s *span,
	list func() *stripe.Iter, id func(T) string, created func(T) int64, fn func(T) error) error {
	err := eachPage(ctx, r.g, r.lim, operation, lp, list, id, func(x T) error {
		if s != nil {
			r.cmu.Lock()
			s.last = created(x)
			r.cmu.Unlock()
		}
		r.mu.Lock()
		defer r.mu.Unlock()
		return fn(x)
	})
	if err == nil && s != nil {
		r.cmu.Lock()
		s.done = true
		r.cmu.Unlock()
	}
	return err
}
