package promo

import (
	"context"
	"slices"
	"testing"
	"time"
)

type countingPlans struct{ asked [][]string }

func (c *countingPlans) Plans(_ context.Context, ids []string) ([]Plan, error) {
	c.asked = append(c.asked, append([]string(nil), ids...))
	out := make([]Plan, len(ids))
	for i, id := range ids {
		out[i] = Plan{ID: id, ProductName: "name of " + id}
	}
	return out, nil
}

type stepClock struct{ t time.Time }

func (s *stepClock) Now() time.Time { return s.t }

func TestPlanCacheReadsEachPlanOncePerTTL(t *testing.T) {
	r := &countingPlans{}
	clk := &stepClock{t: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)}
	c := &PlanCache{Reader: r, TTL: time.Minute, Clock: clk}
	ctx := context.Background()
	got, err := c.Plans(ctx, []string{"price_a", "price_b"})
	if err != nil || len(got) != 2 || got[0].ID != "price_a" || got[1].ProductName != "name of price_b" {
		t.Fatalf("first read: %+v %v", got, err)
	}
	got, _ = c.Plans(ctx, []string{"price_b", "price_c", "price_a"})
	if got[0].ID != "price_b" || got[1].ID != "price_c" || got[2].ID != "price_a" {
		t.Fatalf("order lost: %+v", got)
	}
	if len(r.asked) != 2 || !slices.Equal(r.asked[1], []string{"price_c"}) {
		t.Fatalf("Stripe asked %v, want only the missing price the second time", r.asked)
	}
	clk.t = clk.t.Add(2 * time.Minute)
	if _, err := c.Plans(ctx, []string{"price_a"}); err != nil || len(r.asked) != 3 {
		t.Fatalf("a stale plan must be read again: asked %v", r.asked)
	}
}
