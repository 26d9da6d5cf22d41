package redisstore

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/billing-adapter/billing-adapter/internal/promo"
	"github.com/redis/go-redis/v9"
)

// slotsOf returns the Cluster slot of every key in Redis.
func slotsOf(t *testing.T, s *Store) map[string]uint16 {
	t.Helper()
	keys, err := s.rdb.Keys(context.Background(), "*").Result()
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]uint16{}
	for _, k := range keys {
		out[k] = keySlot(k)
	}
	return out
}

// The request paths (validate, apply, the sweeper's marks, webhooks) touch
// per-object slots only: after many applies and paid invoices over many
// codes, subscriptions and customers, every key a request path wrote is
// tagged with its own object (or a due shard), no slot holds the keys of
// more than one object of a kind, and the fixed keys left are the admin
// paths' {catalog} lists.
func TestRequestPathsUsePerObjectSlots(t *testing.T) {
	s, ctx := newStore(t), context.Background()
	const codes, perCode = 4, 5
	for c := 0; c < codes; c++ {
		p := rdCode(t, s)
		if _, _, err := s.GetByCodeForCustomer(ctx, p.Code, "cus_x"); err != nil {
			t.Fatal(err)
		}
		for i := 0; i < perCode; i++ {
			cus, sub := fmt.Sprintf("cus_%d_%d", c, i), fmt.Sprintf("sub_%d_%d", c, i)
			r := mustReserve(t, s, p.ID, cus, "own_"+cus)
			if err := s.MarkDue(ctx, promo.DueReservation{PromoCodeID: p.ID, RedemptionID: r.ID, LeaseUntil: now}); err != nil {
				t.Fatal(err)
			}
			if err := s.SetClaim(ctx, sub, promo.Claim{PromoCodeID: p.ID, RedemptionID: r.ID}); err != nil {
				t.Fatal(err)
			}
			mustConfirm(t, s, p.ID, r.ID, sub)
			d := disc("di_"+r.ID, cus, sub, time.Second)
			mustCount(t, s, p.ID, paid("in_"+sub, d, "usd", 100))
			if err := s.MarkCustomerPaid(ctx, cus, time.Now().Add(time.Hour)); err != nil {
				t.Fatal(err)
			}
		}
	}
	bySlot := map[uint16][]string{}
	for k, slot := range slotsOf(t, s) {
		bySlot[slot] = append(bySlot[slot], k)
		tag := k[strings.IndexByte(k, '{')+1 : strings.IndexByte(k, '}')]
		switch {
		case strings.HasPrefix(tag, "catalog"):
			if !strings.HasPrefix(k, keyListPrefix) {
				t.Errorf("%s: only the admin lists may use {catalog}", k)
			}
		case strings.HasPrefix(tag, "sweep:"), strings.HasPrefix(tag, "ct:"), strings.HasPrefix(tag, "pc_"),
			strings.HasPrefix(tag, "sub_"), strings.HasPrefix(tag, "cus_"):
		default:
			t.Errorf("%s: a key of no object's slot", k)
		}
	}
	for slot, keys := range bySlot {
		owners := map[string]bool{}
		for _, k := range keys {
			owners[k[strings.IndexByte(k, '{')+1:strings.IndexByte(k, '}')]] = true
		}
		if len(owners) > 1 {
			// Distinct tags may hash to one slot by chance; with these few
			// keys that would be a coincidence worth a look.
			t.Logf("slot %d holds %v", slot, keys)
		}
	}
	for _, fixed := range []string{legacyCodes, legacyProv, legacyClaims, legacyPaid, legacyDue} {
		if n := s.rdb.Exists(ctx, fixed).Val(); n != 0 {
			t.Errorf("%s written: the request paths must not use the former fixed slots", fixed)
		}
	}
}

// The sweeper's marks spread over every shard, and Due merges the shards in
// lease order.
func TestDueMarksSpreadOverShards(t *testing.T) {
	s, ctx := newStore(t), context.Background()
	const marks = 800
	for i := 0; i < marks; i++ {
		rd := fmt.Sprintf("rd_%026d", i*7919)
		if err := s.MarkDue(ctx, promo.DueReservation{PromoCodeID: "pc_a", RedemptionID: rd,
			LeaseUntil: now.Add(time.Duration(marks-i) * time.Millisecond)}); err != nil {
			t.Fatal(err)
		}
	}
	for shard := 0; shard < dueShards; shard++ {
		n := s.rdb.ZCard(ctx, dueKey(shard)).Val()
		if n < marks/dueShards/2 || n > marks/dueShards*2 {
			t.Errorf("shard %d holds %d of %d marks", shard, n, marks)
		}
	}
	due, err := s.Due(ctx, now.Add(time.Hour), 100)
	if err != nil || len(due) != 100 {
		t.Fatalf("due: %d %v", len(due), err)
	}
	for i := range due {
		if want := now.Add(time.Duration(i+1) * time.Millisecond); !due[i].LeaseUntil.Equal(want) {
			t.Fatalf("due[%d] lease %v, want %v (earliest first across shards)", i, due[i].LeaseUntil, want)
		}
	}
}

// A text claimed by one create is refused to another, atomically on the
// text's own key; archiving frees it; validate's cache of text -> ID follows
// an archive made by another replica (another Store on the same Redis).
func TestCodeTextIndexAndCache(t *testing.T) {
	s, ctx := newStore(t), context.Background()
	other := New(redis.NewClient(&redis.Options{Addr: srv.Addr}), nil)
	t.Cleanup(func() { other.rdb.Close() })

	p := rdCode(t, s)
	if got, _, err := s.GetByCodeForCustomer(ctx, p.Code, "cus_a"); err != nil || got.ID != p.ID {
		t.Fatalf("first read: %+v %v", got, err)
	}
	if id, ok := s.texts.get(p.Code); !ok || id != p.ID {
		t.Fatalf("text not cached after a read: %q %v", id, ok)
	}
	// The cached read is one round trip.
	var trips int
	s.rdb.AddHook(countHook{&trips})
	if _, _, err := s.GetByCodeForCustomer(ctx, p.Code, "cus_a"); err != nil {
		t.Fatal(err)
	}
	if trips != 1 {
		t.Fatalf("cached read made %d round trips, want 1", trips)
	}

	dup := draft(t, strings.ToUpper(p.Code))
	if _, _, err := other.BeginCreate(ctx, dup, "admin\x00k2", now, time.Minute); promo.CodeOf(err) != promo.CodeConflict {
		t.Fatalf("second claim of the text: %v", err)
	}
	// Another replica archives the code and a new code takes the text.
	archived := *p
	archived.Status = promo.StatusArchived
	if err := other.SaveUpdate(ctx, p, &archived, false); err != nil {
		t.Fatal(err)
	}
	if _, _, err := s.GetByCodeForCustomer(ctx, p.Code, "cus_a"); promo.CodeOf(err) != promo.CodeNotFound && err != promo.ErrNotFound {
		t.Fatalf("archived code still found through the cache: %v", err)
	}
	next := draft(t, p.Code)
	if _, claim, err := other.BeginCreate(ctx, next, "admin\x00k3", now, time.Minute); err != nil || claim != promo.ClaimNew {
		t.Fatalf("text not freed by the archive: %v", err)
	}
	finish(t, other, next)
	if got, _, err := s.GetByCodeForCustomer(ctx, p.Code, "cus_a"); err != nil || got.ID != next.ID {
		t.Fatalf("after the text moved to %s: %+v %v", next.ID, got, err)
	}
	if n := s.rdb.Exists(ctx, codeTextKey(p.Code)).Val(); n != 1 {
		t.Fatal("no text key")
	}
}

type countHook struct{ n *int }

func (h countHook) DialHook(next redis.DialHook) redis.DialHook { return next }
func (h countHook) ProcessHook(next redis.ProcessHook) redis.ProcessHook {
	return func(ctx context.Context, cmd redis.Cmder) error { *h.n++; return next(ctx, cmd) }
}
func (h countHook) ProcessPipelineHook(next redis.ProcessPipelineHook) redis.ProcessPipelineHook {
	return func(ctx context.Context, cmds []redis.Cmder) error { *h.n++; return next(ctx, cmds) }
}

// migrate-keys moves every kind of legacy key to the new layout, keeps what
// the new layout already holds, deletes the legacy keys, and does nothing
// the second time.
func TestMigrateLegacyKeys(t *testing.T) {
	s, ctx := newStore(t), context.Background()
	p := rdCode(t, s)
	// The former layout, as the previous version wrote it.
	s.rdb.HSet(ctx, legacyCodes, "OLDTEXT", "pc_old", p.Code, p.ID)
	s.rdb.HSet(ctx, legacyProv, "HALFMADE", `{"id":"pc_half","owner":"o","lease":"0","terms":"t"}`)
	s.rdb.HSet(ctx, legacyClaims, "sub_1", p.ID+"|rd_1", "sub_2", p.ID+"|rd_old")
	s.rdb.Set(ctx, claimKey("sub_2"), p.ID+"|rd_new", 0) // written by the new version: kept
	s.rdb.SAdd(ctx, legacyPaid, "cus_1", "cus_2")
	s.rdb.ZAdd(ctx, legacyDue, redis.Z{Score: float64(now.UnixMilli()), Member: p.ID + "/rd_1"})
	s.rdb.SAdd(ctx, legacyInvKey(p.ID), "in_1", "in_2")

	n, err := s.MigrateLegacyKeys(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if n != (MigrateCounts{Texts: 2, Provisional: 1, Claims: 2, Paid: 2, Due: 1, Invoices: 2}) {
		t.Fatalf("counts %+v", n)
	}
	if id, _ := s.codeID(ctx, "OLDTEXT"); id != "pc_old" {
		t.Fatalf("text index: %q", id)
	}
	if raw := s.rdb.HGet(ctx, codeTextKey("HALFMADE"), "prov").Val(); !strings.Contains(raw, "pc_half") {
		t.Fatalf("provisional entry: %q", raw)
	}
	if c, err := s.Claim(ctx, "sub_1"); err != nil || c.RedemptionID != "rd_1" {
		t.Fatalf("claim: %+v %v", c, err)
	}
	if c, _ := s.Claim(ctx, "sub_2"); c.RedemptionID != "rd_new" {
		t.Fatalf("the new layout's claim was overwritten: %+v", c)
	}
	for _, c := range []string{"cus_1", "cus_2"} {
		if paid, _ := s.CustomerHasPaid(ctx, c); !paid {
			t.Fatalf("%s not paid", c)
		}
		if ttl := s.rdb.PTTL(ctx, paidKey(c)).Val(); ttl <= 0 || ttl > promo.PaidKeep {
			t.Fatalf("%s paid mark kept %v", c, ttl)
		}
	}
	if due, _ := s.Due(ctx, now, 10); len(due) != 1 || due[0].RedemptionID != "rd_1" {
		t.Fatalf("due: %+v", due)
	}
	d := disc("di_a", "cus_a", "sub_a", time.Second)
	if c, err := s.CountInvoice(ctx, p.ID, paid("in_1", d, "usd", 100)); err != nil || c.New {
		t.Fatalf("an invoice counted before the migration counted again: %+v %v", c, err)
	}
	for _, k := range []string{legacyCodes, legacyProv, legacyClaims, legacyPaid, legacyDue, legacyInvKey(p.ID)} {
		if s.rdb.Exists(ctx, k).Val() != 0 {
			t.Fatalf("%s left behind", k)
		}
	}
	if n, err := s.MigrateLegacyKeys(ctx); err != nil || n != (MigrateCounts{}) {
		t.Fatalf("second run: %+v %v", n, err)
	}
}

// The request path's decoded documents follow every change (another
// replica's update included) and are never shared with a caller.
func TestDocCacheFollowsChanges(t *testing.T) {
	s, ctx := newStore(t), context.Background()
	other := New(redis.NewClient(&redis.Options{Addr: srv.Addr}), nil)
	t.Cleanup(func() { other.rdb.Close() })
	p := rdCode(t, s)
	got, _, err := s.GetByCodeForCustomer(ctx, p.Code, "cus_a")
	if err != nil || got.Metadata["campaign"] != "winter" {
		t.Fatalf("first read: %+v %v", got, err)
	}
	got.Metadata["campaign"] = "mutated by a caller"
	again, _, _ := s.GetByCodeForCustomer(ctx, p.Code, "cus_a")
	if again.Metadata["campaign"] != "winter" {
		t.Fatalf("a caller's change leaked into the cache: %v", again.Metadata)
	}
	next := *p
	next.Metadata = map[string]string{"campaign": "spring"}
	if err := other.SaveUpdate(ctx, p, &next, false); err != nil {
		t.Fatal(err)
	}
	if got, _, _ := s.GetByCodeForCustomer(ctx, p.Code, "cus_a"); got.Metadata["campaign"] != "spring" {
		t.Fatalf("another replica's update not seen: %v", got.Metadata)
	}
}
