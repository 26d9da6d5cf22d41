package redisstore

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/billing-adapter/billing-adapter/internal/promo"
	"github.com/redis/go-redis/v9"
)

// A ledger larger than rebuildBatch is written in batches to ":rebuilding"
// copies and renamed over the code's keys: Redis ends up holding exactly
// what the one transaction writes (every key, value and expiry): lines kept
// unchanged stay byte for byte, lines Redis had that are gone are deleted,
// others Redis has stay; an older ledger and copies left by an interrupted
// run included.
func TestRebuiltLedgerInBatchesIsTheOneTransactionsLedger(t *testing.T) {
	ctx := context.Background()
	s := newStore(t)
	p := draft(t, "BATCHED")
	finish(t, s, p)
	var lines []*promo.Redemption
	var invoices []string
	limit := int64(1500)
	for i := range 2500 {
		r := &promo.Redemption{ID: fmt.Sprintf("rd_%06d", i), PromoCodeID: p.ID, Customer: fmt.Sprintf("cus_%04d", i%2100),
			Subscription: fmt.Sprintf("sub_%06d", i), DiscountID: fmt.Sprintf("di_%06d", i), Source: promo.SourceStripe,
			State: promo.RedemptionActive, CreatedAt: now, ConfirmedAt: now, ActivatedAt: now, EffectiveAt: now, Cycles: 3,
			Discounted: map[string]int64{"usd": 300}}
		switch i % 7 {
		case 0:
			r.State, r.EndedAt, r.EndReason = promo.RedemptionEnded, now, promo.ReasonCanceled
		case 1:
			r.State, r.ActivatedAt, r.Cycles, r.Discounted = promo.RedemptionPending, time.Time{}, 0, nil
		case 2:
			r.DiscountID = ""
		}
		if r.HoldsUse() && int64(len(lines)) < limit {
			r.HoldsStock = true
		}
		lines = append(lines, r)
		if i%50 == 0 {
			invoices = append(invoices, fmt.Sprintf("in_%06d", i))
		}
	}
	// before: what Redis held, as LoadState read it; the lines MergeLedger
	// kept unchanged are the same records in lines.
	var before []*promo.Redemption
	for i, r := range lines {
		if i%5 == 0 {
			before = append(before, r)
		}
	}
	before = append(before, &promo.Redemption{ID: "rd_old", PromoCodeID: p.ID})
	p.Held, p.Uses, p.Stock = limit, 2000, 0
	p.Discounted = map[string]int64{"usd": 600000}
	write := func(batch int) map[string]string {
		t.Helper()
		if err := s.rdb.FlushAll(ctx).Err(); err != nil {
			t.Fatal(err)
		}
		finish(t, s, p)
		// An older ledger (kept lines as an older version wrote them), and
		// what an interrupted batched write left.
		for _, r := range before {
			s.rdb.HSet(ctx, rdKey(p.ID), r.ID, "as stored before: "+r.ID)
		}
		s.rdb.HSet(ctx, rdKey(p.ID), "rd_foreign", "{}")
		s.rdb.ZAdd(ctx, ledgerKey(p.ID), redis.Z{Member: "rd_old"})
		s.rdb.HSet(ctx, custKey(p.ID), "cus_old", "rd_old")
		if batch < len(lines) {
			s.rdb.HSet(ctx, rdKey(p.ID)+rebuildingSuffix, "rd_junk", "{}")
			s.rdb.ZAdd(ctx, cwaitKey(p.ID)+rebuildingSuffix, redis.Z{Member: "junk"})
		}
		defer func(was int) { rebuildBatch = was }(rebuildBatch)
		rebuildBatch = batch
		if err := s.writeRebuiltCode(ctx, p, lines, before, invoices); err != nil {
			t.Fatal(err)
		}
		return dumpAll(t, s.rdb)
	}
	one := write(len(lines))
	batched := write(300)
	if len(one) < 10 {
		t.Fatalf("only %d keys written", len(one))
	}
	rd := one[rdKey(p.ID)]
	if !strings.Contains(rd, "rd_000005:as stored before: rd_000005") || strings.Contains(rd, "rd_old") || !strings.Contains(rd, "rd_foreign") {
		t.Fatalf("the one transaction's ledger: %.500s", rd)
	}
	for k, v := range one {
		if batched[k] != v {
			t.Errorf("%s differs:\n batched %.300s\n one tx  %.300s", k, batched[k], v)
		}
	}
	for k := range batched {
		if _, ok := one[k]; !ok {
			t.Errorf("batched write left %s", k)
		}
	}
}

// dumpAll renders every key of the database with its type, content and
// whether it expires.
func dumpAll(t *testing.T, rdb redis.UniversalClient) map[string]string {
	t.Helper()
	ctx := context.Background()
	keys, err := rdb.Keys(ctx, "*").Result()
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]string{}
	for _, k := range keys {
		typ := rdb.Type(ctx, k).Val()
		var v any
		switch typ {
		case "hash":
			v = rdb.HGetAll(ctx, k).Val()
		case "zset":
			v = rdb.ZRangeWithScores(ctx, k, 0, -1).Val()
		case "set":
			m := rdb.SMembers(ctx, k).Val()
			slices.Sort(m)
			v = m
		case "string":
			v = rdb.Get(ctx, k).Val()
		}
		out[k] = fmt.Sprintf("%s %v ttl=%v", typ, v, rdb.TTL(ctx, k).Val() > 0)
	}
	return out
}
