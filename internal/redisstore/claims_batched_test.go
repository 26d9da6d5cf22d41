package redisstore

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/billing-adapter/billing-adapter/internal/promo"
)

// -fix writes a code's claims (set and cleared) and the paid marks in
// batches of pipelined commands (rebuildClaims, runScriptBatches): the keys,
// values and expiries are those the one-call-each writes (SetClaim,
// ClearClaim, MarkCustomerPaid) leave, in one batch or many, and when Redis
// does not have the scripts yet (NOSCRIPT, then EVAL).
func TestBatchedClaimsAndPaidMarksAreTheOneByOnes(t *testing.T) {
	ctx := context.Background()
	const codeID = "pc_claims"
	var lines, before []*promo.Redemption
	for i := range 7 {
		r := &promo.Redemption{ID: fmt.Sprintf("rd_%03d", i), Subscription: fmt.Sprintf("sub_%03d", i), State: promo.RedemptionActive}
		if i == 5 {
			r.State = promo.RedemptionEnded // not live: its claim is cleared
		}
		lines = append(lines, r)
		before = append(before, &promo.Redemption{ID: r.ID, Subscription: r.Subscription})
	}
	// A redemption gone from the ledger (its claim is cleared), and one
	// whose subscription's claim names another redemption (left as it is).
	before = append(before, &promo.Redemption{ID: "rd_gone", Subscription: "sub_gone"},
		&promo.Redemption{ID: "rd_other", Subscription: "sub_other"})
	until := time.Now().Add(time.Hour).Truncate(time.Millisecond)
	paid := map[string]time.Time{"cus_a": until, "cus_b": until.Add(time.Minute), "cus_c": time.Now().Add(-time.Hour), "cus_d": until}
	seed := func(s *Store) {
		for _, r := range before {
			if err := s.SetClaim(ctx, r.Subscription, promo.Claim{PromoCodeID: codeID, RedemptionID: r.ID}); err != nil {
				t.Fatal(err)
			}
		}
		s.rdb.Set(ctx, claimKey("sub_other"), "pc_x|rd_x", 0)
		// cus_d's mark already lasts longer: kept.
		s.rdb.Set(ctx, paidKey("cus_d"), "1", 0)
		s.rdb.PExpireAt(ctx, paidKey("cus_d"), until.Add(time.Hour))
	}
	state := func(s *Store) map[string]string {
		out := map[string]string{}
		keys, err := s.rdb.Keys(ctx, "*").Result()
		if err != nil {
			t.Fatal(err)
		}
		for _, k := range keys {
			out[k] = s.rdb.Get(ctx, k).Val() + " until " + fmt.Sprint(s.rdb.PExpireTime(ctx, k).Val())
		}
		return out
	}

	one := newStore(t)
	seed(one)
	live := map[string]bool{}
	for _, r := range lines {
		if r.State.Live() {
			live[r.ID] = true
			if err := one.SetClaim(ctx, r.Subscription, promo.Claim{PromoCodeID: codeID, RedemptionID: r.ID}); err != nil {
				t.Fatal(err)
			}
		}
	}
	for _, r := range before {
		if !live[r.ID] {
			if err := one.ClearClaim(ctx, r.Subscription, r.ID); err != nil {
				t.Fatal(err)
			}
		}
	}
	for c, u := range paid {
		if err := one.MarkCustomerPaid(ctx, c, u); err != nil {
			t.Fatal(err)
		}
	}
	want := state(one)
	_, gone := want[claimKey("sub_gone")]
	_, ended := want[claimKey("sub_005")]
	if len(want) != 10 || gone || ended { // 6 live claims, sub_other's, 3 paid marks (cus_c's is over)
		t.Fatalf("one by one left %v", want)
	}

	for _, tc := range []struct {
		name     string
		batch    int
		noScript bool
	}{
		{"one batch", 1000, false},
		{"batches of 2", 2, false},
		{"batches of 3, scripts not loaded", 3, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			defer func(was int) { rebuildBatch = was }(rebuildBatch)
			s := newStore(t)
			seed(s)
			if tc.noScript {
				s.rdb.ScriptFlush(ctx)
			}
			rebuildBatch = tc.batch
			if err := s.rebuildClaims(ctx, codeID, lines, before); err != nil {
				t.Fatal(err)
			}
			var marks []scriptCall
			for c, u := range paid {
				marks = append(marks, scriptCall{key: paidKey(c), args: []any{u.UnixMilli(), time.Now().UnixMilli()}})
			}
			if err := s.runScriptBatches(ctx, markPaidScript, marks); err != nil {
				t.Fatal(err)
			}
			got := state(s)
			for k, v := range want {
				if got[k] != v {
					t.Errorf("%s: %q, one by one %q", k, got[k], v)
				}
			}
			if len(got) != len(want) {
				t.Errorf("%d keys, one by one %d: %v", len(got), len(want), got)
			}
		})
	}
}
