package promo

import (
	"context"
	"sync"
	"time"
)

// Plan is a Stripe price as the console and the payment page show it: the
// expansion of a plan ID (expand[]=plans, validate's eligible_plans).
type Plan struct {
	ID            string // the Stripe price ID
	Product       string
	ProductName   string
	UnitAmount    *int64 // minor units; nil for prices without a unit amount (tiers)
	Currency      string
	Interval      string // day, week, month, year; "" for one-time prices
	IntervalCount int64
}

// PlanReader reads plans from Stripe, in the order of ids.
type PlanReader interface {
	Plans(ctx context.Context, ids []string) ([]Plan, error)
}

// DefaultPlanCacheTTL is how long a plan read from Stripe is reused: a
// product renamed or a price changed in Stripe shows after at most this.
const DefaultPlanCacheTTL = 10 * time.Minute

// PlanCache is a PlanReader that keeps each plan it read for TTL, so reading
// codes with expand[]=plans costs no Stripe call per read. Only the IDs
// missing or stale are asked of Reader, in one call. It is safe for
// concurrent use.
type PlanCache struct {
	Reader PlanReader
	TTL    time.Duration // DefaultPlanCacheTTL when 0
	Clock  Clock

	mu      sync.Mutex
	entries map[string]planEntry
}

type planEntry struct {
	plan Plan
	at   time.Time
}

// maxPlanCacheEntries bounds the cache; past it, it starts afresh (plans are
// few: the prices codes are restricted to).
const maxPlanCacheEntries = 10_000

// Plans implements PlanReader.
func (c *PlanCache) Plans(ctx context.Context, ids []string) ([]Plan, error) {
	ttl := c.TTL
	if ttl <= 0 {
		ttl = DefaultPlanCacheTTL
	}
	now := c.Clock.Now()
	out := make([]Plan, len(ids))
	var missing []string
	var missingAt []int
	c.mu.Lock()
	for i, id := range ids {
		if e, ok := c.entries[id]; ok && now.Sub(e.at) < ttl {
			out[i] = e.plan
			continue
		}
		missing, missingAt = append(missing, id), append(missingAt, i)
	}
	c.mu.Unlock()
	if len(missing) == 0 {
		return out, nil
	}
	read, err := c.Reader.Plans(ctx, missing)
	if err != nil {
		return nil, err
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.entries == nil || len(c.entries) > maxPlanCacheEntries {
		c.entries = map[string]planEntry{}
	}
	for j, p := range read {
		out[missingAt[j]] = p
		c.entries[p.ID] = planEntry{plan: p, at: now}
	}
	return out, nil
}
