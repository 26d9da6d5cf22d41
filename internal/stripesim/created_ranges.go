package stripesim

import "slices"

// A walk of a list filtered on created (reconcile reads subscriptions and
// invoices in created ranges) pages from a cursor: each page reads the
// objects older than the cursor until it has a page of matching ones. When
// the range's objects are spread over the creation order (test clocks bill
// a year for one clock, then a year for the next), a page reads past every
// other range's objects in between. So the pages after the first read from
// the range's own objects, in creation order: built once per range with
// one pass (O(n)), then extended with the objects created since, so each
// later page costs O(page size + log n).

// maxCreatedRanges bounds the ranges kept per kind (each holds at most one
// pointer per object of the kind); the least recently used one goes.
const maxCreatedRanges = 16

// rangeKey identifies a created filter.
type rangeKey struct {
	set                  uint8 // which of eq, gt, gte, lt, lte are set (bits in that order)
	eq, gt, gte, lt, lte int64
}

func keyOf(rf rangeFilter) rangeKey {
	var k rangeKey
	for i, p := range []*int64{rf.eq, rf.gt, rf.gte, rf.lt, rf.lte} {
		if p == nil {
			continue
		}
		k.set |= 1 << i
		switch i {
		case 0:
			k.eq = *p
		case 1:
			k.gt = *p
		case 2:
			k.gte = *p
		case 3:
			k.lt = *p
		case 4:
			k.lte = *p
		}
	}
	return k
}

// createdRange is the objects of one created range, in creation order.
type createdRange[T any] struct {
	key   rangeKey
	items []T
	gen   int // the seqIndex generation items were taken from
	seen  int // how many of that generation's objects were looked at
	used  int64
}

// listSource is what paginate reads for a list filtered on created: all
// (the kind's seqIndex view) for a first page, the range's own objects for
// a page after a cursor. Both give the same pages: paginate keeps only
// objects in the range either way.
func listSource[T any](c *reqCtx, x *seqIndex[T], all []T, rf rangeFilter, created func(T) int64) []T {
	if !rf.set {
		return all
	}
	sa, _ := c.p.str("starting_after")
	eb, _ := c.p.str("ending_before")
	if sa == "" && eb == "" {
		return all // a first page (or a one-object probe): read from the newest, as without the filter
	}
	key := keyOf(rf)
	x.tick++
	var r *createdRange[T]
	for _, e := range x.ranges {
		if e.key == key {
			r = e
			break
		}
	}
	if r == nil {
		if len(x.ranges) >= maxCreatedRanges {
			lru := 0
			for i, e := range x.ranges {
				if e.used < x.ranges[lru].used {
					lru = i
				}
			}
			x.ranges = slices.Delete(x.ranges, lru, lru+1)
		}
		r = &createdRange[T]{key: key, gen: -1}
		x.ranges = append(x.ranges, r)
	}
	r.used = x.tick
	if r.gen != x.gen { // the index was rebuilt (deletions): start over
		r.items, r.seen, r.gen = nil, 0, x.gen
	}
	for _, v := range all[r.seen:] { // objects are appended in creation order
		if rf.match(created(v)) {
			r.items = append(r.items, v)
		}
	}
	r.seen = len(all)
	return r.items
}
