package redisstore

import (
	"context"
	"errors"
	"fmt"
	"reflect"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/billing-adapter/billing-adapter/internal/promo"
	"github.com/redis/go-redis/v9"
)

// Tests of the redemption store (redemptions.go, claims.go) against the real
// redis-server started in TestMain (store_test.go).

var (
	codeTextSeq atomic.Int64
	rdSeq       atomic.Int64
)

const testLease = 2 * time.Minute

// rdCode creates a ready code (BeginCreate + FinishCreate, as the catalog
// does) with stock 5, after applying opts to the draft.
func rdCode(t *testing.T, s *Store, opts ...func(*promo.PromoCode)) *promo.PromoCode {
	t.Helper()
	p := provisioningCode(t, s, opts...)
	finish(t, s, p)
	return p
}

// provisioningCode creates a code whose Stripe objects are not made yet
// (state provisioning), after applying opts to the draft.
func provisioningCode(t *testing.T, s *Store, opts ...func(*promo.PromoCode)) *promo.PromoCode {
	t.Helper()
	p := draft(t, fmt.Sprintf("RDM%d", codeTextSeq.Add(1)))
	for _, o := range opts {
		o(p)
	}
	if _, _, err := s.BeginCreate(context.Background(), p, "admin\x00create-"+p.ID, now, time.Minute); err != nil {
		t.Fatal(err)
	}
	return p
}

func withStock(n int64) func(*promo.PromoCode) {
	return func(p *promo.PromoCode) { p.Stock, p.UnlimitedStock = n, false }
}

func withUnlimited(p *promo.PromoCode) { p.Stock, p.UnlimitedStock = 0, true }

func withStatus(st promo.Status) func(*promo.PromoCode) {
	return func(p *promo.PromoCode) { p.Status = st }
}

func expiringAt(at time.Time) func(*promo.PromoCode) {
	return func(p *promo.PromoCode) { p.ExpiresAt = &at }
}

// newRD is a reservation as the Redeemer builds it (IDs sort by creation,
// like the service's ULIDs).
func newRD(codeID, customer, owner string) *promo.Redemption {
	return &promo.Redemption{
		ID: fmt.Sprintf("rd_%010d", rdSeq.Add(1)), PromoCodeID: codeID, Customer: customer,
		Source: promo.SourceNewSubscription, State: promo.RedemptionReserved, Owner: owner,
		CreatedAt: now, LeaseUntil: now.Add(testLease),
	}
}

// mustReserve reserves a new redemption and fails the test unless it is Reserved.
func mustReserve(t *testing.T, s *Store, codeID, customer, owner string) *promo.Redemption {
	t.Helper()
	got, outcome, err := s.Reserve(context.Background(), newRD(codeID, customer, owner), now)
	if err != nil || outcome != promo.Reserved {
		t.Fatalf("reserve %s for %s: %+v %v %v", codeID, customer, got, outcome, err)
	}
	return got
}

func mustConfirm(t *testing.T, s *Store, codeID, id, sub string) (*promo.Redemption, promo.StockChange) {
	t.Helper()
	r, ch, err := s.Confirm(context.Background(), codeID, id, promo.Confirmation{
		Subscription: sub, DiscountID: "di_" + id, EffectiveAt: now.Add(time.Hour), At: now.Add(time.Second)})
	if err != nil {
		t.Fatalf("confirm %s: %v", id, err)
	}
	return r, ch
}

func mustFinish(t *testing.T, s *Store, codeID, id, reason string) (*promo.Redemption, promo.StockChange) {
	t.Helper()
	r, ch, err := s.Finish(context.Background(), codeID, id, reason, now.Add(2*time.Second))
	if err != nil {
		t.Fatalf("finish %s: %v", id, err)
	}
	return r, ch
}

// codeCounters reads the code's stock and reserved counters.
func codeCounters(t *testing.T, s *Store, codeID string) (stock, reserved int64) {
	t.Helper()
	p, err := s.Get(context.Background(), codeID)
	if err != nil {
		t.Fatal(err)
	}
	return p.Stock, p.Reserved
}

func wantCounters(t *testing.T, s *Store, codeID string, stock, reserved int64) {
	t.Helper()
	if gs, gr := codeCounters(t, s, codeID); gs != stock || gr != reserved {
		t.Fatalf("stock %d reserved %d, want stock %d reserved %d", gs, gr, stock, reserved)
	}
}

// custHolder returns the redemption ID holding the customer's use of the code ("" if none).
func custHolder(t *testing.T, s *Store, codeID, customer string) string {
	t.Helper()
	id, err := s.rdb.HGet(context.Background(), custKey(codeID), customer).Result()
	if errors.Is(err, redis.Nil) {
		return ""
	}
	if err != nil {
		t.Fatal(err)
	}
	return id
}

// subHolder returns the redemption ID the subscription index names ("" if none).
func subHolder(t *testing.T, s *Store, codeID, sub string) string {
	t.Helper()
	id, err := s.rdb.HGet(context.Background(), subsKey(codeID), sub).Result()
	if errors.Is(err, redis.Nil) {
		return ""
	}
	if err != nil {
		t.Fatal(err)
	}
	return id
}

// snapshot captures every key the redemption scripts of a code may touch.
func snapshot(t *testing.T, s *Store, codeID string) map[string]any {
	t.Helper()
	ctx := context.Background()
	out := map[string]any{}
	for _, k := range redemptionKeys(codeID) {
		switch typ := s.rdb.Type(ctx, k).Val(); typ {
		case "none":
		case "hash":
			out[k] = s.rdb.HGetAll(ctx, k).Val()
		case "zset":
			out[k] = s.rdb.ZRangeWithScores(ctx, k, 0, -1).Val()
		case "set":
			m := s.rdb.SMembers(ctx, k).Val()
			slices.Sort(m)
			out[k] = m
		default:
			t.Fatalf("%s is a %s", k, typ)
		}
	}
	return out
}

func wantUnchanged(t *testing.T, before, after map[string]any) {
	t.Helper()
	if !reflect.DeepEqual(before, after) {
		t.Fatalf("keys changed:\nbefore %v\nafter  %v", before, after)
	}
}

func wantRD(t *testing.T, got, want *promo.Redemption) {
	t.Helper()
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("redemption\n got  %+v\n want %+v", got, want)
	}
}

// wantStored reads a redemption back and checks it equals what a call returned.
func wantStored(t *testing.T, s *Store, r *promo.Redemption) *promo.Redemption {
	t.Helper()
	back, err := s.GetRedemption(context.Background(), r.PromoCodeID, r.ID)
	if err != nil {
		t.Fatal(err)
	}
	wantRD(t, back, r)
	return back
}

// makeActive rewrites a redemption's JSON in the ba:{pc}:rd hash as active.
// The active state is set by the webhook reconciliation, which is not
// written yet, so the test crafts it directly in Redis.
func makeActive(t *testing.T, s *Store, codeID, id string) *promo.Redemption {
	t.Helper()
	ctx := context.Background()
	r, err := s.GetRedemption(ctx, codeID, id)
	if err != nil {
		t.Fatal(err)
	}
	r.State, r.ActivatedAt, r.Cycles, r.Discounted = promo.RedemptionActive, now.Add(1500*time.Millisecond), 1, map[string]int64{"usd": 550}
	raw, err := encodeRedemption(r)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.rdb.HSet(ctx, rdKey(codeID), id, raw).Err(); err != nil {
		t.Fatal(err)
	}
	return r
}

func wantRefusal(t *testing.T, err error, code promo.Code) {
	t.Helper()
	var pe *promo.Error
	if !errors.As(err, &pe) {
		t.Fatalf("want refusal %s, got %v", code, err)
	}
	want := promo.Refuse(code)
	if pe.Code != want.Code || pe.Param != want.Param || pe.Message != want.Message {
		t.Fatalf("refusal %+v, want %+v", pe, want)
	}
}

func TestReserveNewReservation(t *testing.T) {
	s, ctx := newStore(t), context.Background()
	p := rdCode(t, s)
	r := newRD(p.ID, "cus_a", "owner-a")
	r.Subscription, r.Source = "sub_a", promo.SourceExistingSubscription

	got, outcome, err := s.Reserve(ctx, r, now)
	if err != nil || outcome != promo.Reserved {
		t.Fatalf("reserve: %v %v", outcome, err)
	}
	want := *r
	want.HoldsStock = true
	wantRD(t, got, &want)
	wantStored(t, s, got)
	wantCounters(t, s, p.ID, 4, 1)

	byCustomer, err := s.CustomerRedemption(ctx, p.ID, "cus_a")
	if err != nil {
		t.Fatal(err)
	}
	wantRD(t, byCustomer, got)
	if _, err := s.CustomerRedemption(ctx, p.ID, "cus_other"); !errors.Is(err, promo.ErrNotFound) {
		t.Fatalf("other customer: %v", err)
	}
	if h := subHolder(t, s, p.ID, "sub_a"); h != r.ID {
		t.Fatalf("subscription index names %q, want %s", h, r.ID)
	}
	page, err := s.ListRedemptions(ctx, p.ID, 10, "")
	if err != nil || len(page.Data) != 1 || page.HasMore {
		t.Fatalf("ledger: %+v %v", page, err)
	}
	wantRD(t, page.Data[0], got)

	// Nothing leaks to another code.
	other := rdCode(t, s)
	if _, err := s.CustomerRedemption(ctx, other.ID, "cus_a"); !errors.Is(err, promo.ErrNotFound) {
		t.Fatalf("other code: %v", err)
	}
	if _, err := s.GetRedemption(ctx, other.ID, r.ID); !errors.Is(err, promo.ErrNotFound) {
		t.Fatalf("other code: %v", err)
	}
	wantCounters(t, s, other.ID, 5, 0)
}

func TestReserveWithoutSubscriptionWritesNoSubscriptionIndex(t *testing.T) {
	s, ctx := newStore(t), context.Background()
	p := rdCode(t, s)
	mustReserve(t, s, p.ID, "cus_a", "o")
	if n := s.rdb.Exists(ctx, subsKey(p.ID)).Val(); n != 0 {
		t.Fatalf("subscription index written for a new subscription: %v", s.rdb.HGetAll(ctx, subsKey(p.ID)).Val())
	}
}

func TestReserveUnlimitedCode(t *testing.T) {
	s := newStore(t)
	p := rdCode(t, s, withUnlimited)
	for i, cus := range []string{"cus_a", "cus_b", "cus_c"} {
		got := mustReserve(t, s, p.ID, cus, "o-"+cus)
		if got.HoldsStock {
			t.Fatalf("unlimited code: reservation holds stock: %+v", got)
		}
		wantCounters(t, s, p.ID, 0, int64(i+1))
	}
}

func TestReserveResumesTheOwnersReservation(t *testing.T) {
	s, ctx := newStore(t), context.Background()
	p := rdCode(t, s)
	first := mustReserve(t, s, p.ID, "cus_a", "owner-1")

	retry := newRD(p.ID, "cus_a", "owner-1") // a retry of the same request makes a new ID
	got, outcome, err := s.Reserve(ctx, retry, now.Add(time.Second))
	if err != nil || outcome != promo.Resumed {
		t.Fatalf("retry: %v %v", outcome, err)
	}
	wantRD(t, got, first)
	wantCounters(t, s, p.ID, 4, 1)
	if _, err := s.GetRedemption(ctx, p.ID, retry.ID); !errors.Is(err, promo.ErrNotFound) {
		t.Fatalf("the retry's ID was written: %v", err)
	}
	if n := s.rdb.ZCard(ctx, ledgerKey(p.ID)).Val(); n != 1 {
		t.Fatalf("ledger has %d lines", n)
	}

	// Once confirmed, a retry still finds it (and sees it is no longer reserved).
	confirmed, _ := mustConfirm(t, s, p.ID, first.ID, "sub_1")
	before := snapshot(t, s, p.ID)
	got, outcome, err = s.Reserve(ctx, newRD(p.ID, "cus_a", "owner-1"), now.Add(2*time.Second))
	if err != nil || outcome != promo.Resumed {
		t.Fatalf("retry after confirm: %v %v", outcome, err)
	}
	wantRD(t, got, confirmed)
	wantUnchanged(t, before, snapshot(t, s, p.ID))
}

func TestReserveRefusals(t *testing.T) {
	type setup func(t *testing.T, s *Store) (codeID string)
	ready := func(opts ...func(*promo.PromoCode)) setup {
		return func(t *testing.T, s *Store) string { return rdCode(t, s, opts...).ID }
	}
	cases := []struct {
		name     string
		setup    setup
		customer string
		owner    string
		want     promo.Code
	}{
		{"customer holds a reservation by another request", func(t *testing.T, s *Store) string {
			p := rdCode(t, s)
			mustReserve(t, s, p.ID, "cus_a", "owner-1")
			return p.ID
		}, "cus_a", "owner-2", promo.CodeAlreadyRedeemedByCustomer},
		{"customer holds a pending redemption", func(t *testing.T, s *Store) string {
			p := rdCode(t, s)
			r := mustReserve(t, s, p.ID, "cus_a", "owner-1")
			mustConfirm(t, s, p.ID, r.ID, "sub_1")
			return p.ID
		}, "cus_a", "owner-2", promo.CodeAlreadyRedeemedByCustomer},
		{"customer's redemption was active, then ended", func(t *testing.T, s *Store) string {
			p := rdCode(t, s)
			r := mustReserve(t, s, p.ID, "cus_a", "owner-1")
			mustConfirm(t, s, p.ID, r.ID, "sub_1")
			makeActive(t, s, p.ID, r.ID)
			mustFinish(t, s, p.ID, r.ID, promo.ReasonCanceled)
			return p.ID
		}, "cus_a", "owner-2", promo.CodeAlreadyRedeemedByCustomer},
		{"customer used it and the code is now exhausted", func(t *testing.T, s *Store) string {
			p := rdCode(t, s, withStock(1))
			mustReserve(t, s, p.ID, "cus_a", "owner-1")
			return p.ID
		}, "cus_a", "owner-2", promo.CodeAlreadyRedeemedByCustomer},
		{"no such code", func(t *testing.T, s *Store) string { return "pc_nosuch" }, "cus_a", "o", promo.CodeCodeNotFound},
		{"status inactive", ready(withStatus(promo.StatusInactive)), "cus_a", "o", promo.CodeCodeInactive},
		{"status archived", ready(withStatus(promo.StatusArchived)), "cus_a", "o", promo.CodeCodeInactive},
		{"Stripe objects still provisioning", func(t *testing.T, s *Store) string {
			return provisioningCode(t, s).ID
		}, "cus_a", "o", promo.CodeCodeInactive},
		{"Stripe state not ready (unknown value)", func(t *testing.T, s *Store) string {
			p := rdCode(t, s)
			if err := s.rdb.HSet(context.Background(), codeKey(p.ID), "state", "broken").Err(); err != nil {
				t.Fatal(err)
			}
			return p.ID
		}, "cus_a", "o", promo.CodeCodeInactive},
		{"expires exactly now", ready(expiringAt(now)), "cus_a", "o", promo.CodeCodeExpired},
		{"expired a millisecond ago", ready(expiringAt(now.Add(-time.Millisecond))), "cus_a", "o", promo.CodeCodeExpired},
		{"expired long ago", ready(expiringAt(now.AddDate(-1, 0, 0))), "cus_a", "o", promo.CodeCodeExpired},
		{"stock 0", ready(withStock(0)), "cus_a", "o", promo.CodeCodeExhausted},
		{"last unit reserved by another customer", func(t *testing.T, s *Store) string {
			p := rdCode(t, s, withStock(1))
			mustReserve(t, s, p.ID, "cus_other", "owner-1")
			return p.ID
		}, "cus_a", "o", promo.CodeCodeExhausted},
		{"last unit taken by a pending redemption", func(t *testing.T, s *Store) string {
			p := rdCode(t, s, withStock(1))
			r := mustReserve(t, s, p.ID, "cus_other", "owner-1")
			mustConfirm(t, s, p.ID, r.ID, "sub_1")
			return p.ID
		}, "cus_a", "o", promo.CodeCodeExhausted},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			s, ctx := newStore(t), context.Background()
			codeID := tc.setup(t, s)
			before := snapshot(t, s, codeID)
			r := newRD(codeID, tc.customer, tc.owner)
			got, _, err := s.Reserve(ctx, r, now)
			wantRefusal(t, err, tc.want)
			if got != nil {
				t.Fatalf("refusal returned a redemption: %+v", got)
			}
			wantUnchanged(t, before, snapshot(t, s, codeID))
			if _, err := s.GetRedemption(ctx, codeID, r.ID); !errors.Is(err, promo.ErrNotFound) {
				t.Fatalf("refused redemption readable: %v", err)
			}
		})
	}
}

func TestReserveBoundaries(t *testing.T) {
	s := newStore(t)
	// Expiring one millisecond after now is still redeemable.
	p := rdCode(t, s, expiringAt(now.Add(time.Millisecond)))
	mustReserve(t, s, p.ID, "cus_a", "o")
	// The last unit can be taken.
	last := rdCode(t, s, withStock(1))
	if got := mustReserve(t, s, last.ID, "cus_a", "o"); !got.HoldsStock {
		t.Fatalf("last unit: %+v", got)
	}
	wantCounters(t, s, last.ID, 0, 1)
	// An unlimited code needs no stock.
	mustReserve(t, s, rdCode(t, s, withUnlimited).ID, "cus_a", "o")
}

func TestConfirmReservedToPending(t *testing.T) {
	s, ctx := newStore(t), context.Background()
	p := rdCode(t, s)
	r := mustReserve(t, s, p.ID, "cus_a", "owner-1")

	c := promo.Confirmation{Subscription: "sub_1", DiscountID: "di_1", EffectiveAt: now.Add(time.Hour), At: now.Add(time.Second)}
	got, change, err := s.Confirm(ctx, p.ID, r.ID, c)
	if err != nil {
		t.Fatal(err)
	}
	want := *r
	want.State, want.Subscription, want.DiscountID = promo.RedemptionPending, "sub_1", "di_1"
	want.EffectiveAt, want.ConfirmedAt, want.LeaseUntil = c.EffectiveAt, c.At, time.Time{}
	want.CreatedAt = c.At // one clock per line: confirmed, it is on Stripe's
	wantRD(t, got, &want)
	if change.StripeActiveChanged {
		t.Fatal("stock 4 reserved 0: the Stripe promotion code stays active")
	}
	wantStored(t, s, got)
	wantCounters(t, s, p.ID, 4, 0)
	if h := subHolder(t, s, p.ID, "sub_1"); h != r.ID {
		t.Fatalf("subscription index names %q", h)
	}
	if h := custHolder(t, s, p.ID, "cus_a"); h != r.ID {
		t.Fatalf("customer held by %q", h)
	}

	// Confirming again, even with other values, changes nothing.
	before := snapshot(t, s, p.ID)
	again, change, err := s.Confirm(ctx, p.ID, r.ID, promo.Confirmation{Subscription: "sub_2", DiscountID: "di_2",
		EffectiveAt: now.Add(48 * time.Hour), At: now.Add(time.Minute)})
	if err != nil || change.StripeActiveChanged {
		t.Fatalf("again: %v %v", change, err)
	}
	wantRD(t, again, got)
	wantUnchanged(t, before, snapshot(t, s, p.ID))
}

func TestConfirmKeepsTheReservationsSubscription(t *testing.T) {
	s, ctx := newStore(t), context.Background()
	p := rdCode(t, s)
	r := newRD(p.ID, "cus_a", "o")
	r.Subscription = "sub_existing"
	if _, _, err := s.Reserve(ctx, r, now); err != nil {
		t.Fatal(err)
	}
	got, _, err := s.Confirm(ctx, p.ID, r.ID, promo.Confirmation{DiscountID: "di_1", At: now})
	if err != nil || got.Subscription != "sub_existing" || got.DiscountID != "di_1" || !got.EffectiveAt.IsZero() {
		t.Fatalf("confirm: %+v %v", got, err)
	}
	if h := subHolder(t, s, p.ID, "sub_existing"); h != r.ID {
		t.Fatalf("subscription index names %q", h)
	}
}

func TestConfirmActiveChangesNothing(t *testing.T) {
	s, ctx := newStore(t), context.Background()
	p := rdCode(t, s)
	r := mustReserve(t, s, p.ID, "cus_a", "o")
	mustConfirm(t, s, p.ID, r.ID, "sub_1")
	active := makeActive(t, s, p.ID, r.ID)
	before := snapshot(t, s, p.ID)
	got, change, err := s.Confirm(ctx, p.ID, r.ID, promo.Confirmation{Subscription: "sub_2", DiscountID: "di_x", At: now})
	if err != nil || change.StripeActiveChanged {
		t.Fatalf("confirm active: %v %v", change, err)
	}
	wantRD(t, got, active)
	wantUnchanged(t, before, snapshot(t, s, p.ID))
}

func TestConfirmNotFound(t *testing.T) {
	s, ctx := newStore(t), context.Background()
	p := rdCode(t, s)
	mustReserve(t, s, p.ID, "cus_a", "o")
	before := snapshot(t, s, p.ID)
	c := promo.Confirmation{Subscription: "sub_1", DiscountID: "di_1", At: now}
	if _, _, err := s.Confirm(ctx, p.ID, "rd_nosuch", c); !errors.Is(err, promo.ErrNotFound) {
		t.Fatalf("unknown redemption: %v", err)
	}
	if _, _, err := s.Confirm(ctx, "pc_nosuch", "rd_nosuch", c); !errors.Is(err, promo.ErrNotFound) {
		t.Fatalf("unknown code: %v", err)
	}
	wantUnchanged(t, before, snapshot(t, s, p.ID))
	if _, err := s.GetRedemption(ctx, p.ID, "rd_nosuch"); !errors.Is(err, promo.ErrNotFound) {
		t.Fatalf("get: %v", err)
	}
}

// A released reservation whose Stripe call landed after all is taken back.
func TestConfirmReleasedTakesItBack(t *testing.T) {
	cases := []struct {
		name string
		opts []func(*promo.PromoCode)
		// between runs after the release of A and before its confirmation;
		// it returns the ID of the redemption it made ("B"), if any.
		between                   func(t *testing.T, s *Store, codeID string) string
		wantFlags                 []string
		wantHolds                 bool
		wantStock, wantReserved   int64
		wantCustomer              string // "A" or "B": who holds cus_a's use afterwards
		wantStockAfterFinish      int64
		wantCustomerAfterFinished string
	}{
		{name: "stock left", opts: []func(*promo.PromoCode){withStock(2)},
			wantHolds: true, wantStock: 1, wantCustomer: "A", wantStockAfterFinish: 2},
		{name: "unlimited", opts: []func(*promo.PromoCode){withUnlimited},
			wantStock: 0, wantCustomer: "A", wantStockAfterFinish: 0},
		{name: "no stock left", opts: []func(*promo.PromoCode){withStock(1)},
			between: func(t *testing.T, s *Store, codeID string) string {
				return mustReserve(t, s, codeID, "cus_b", "owner-b").ID
			},
			// cus_b's reservation keeps its unit; A is flagged and holds none.
			wantFlags: []string{"stock_exhausted"}, wantStock: 0, wantReserved: 1, wantCustomer: "A", wantStockAfterFinish: 0},
		{name: "customer's use held by another redemption", opts: []func(*promo.PromoCode){withStock(5)},
			between: func(t *testing.T, s *Store, codeID string) string {
				return mustReserve(t, s, codeID, "cus_a", "owner-2").ID
			},
			wantFlags: []string{"customer_already_redeemed"}, wantHolds: true, wantStock: 3, wantReserved: 1,
			wantCustomer: "B", wantStockAfterFinish: 4, wantCustomerAfterFinished: "B"},
		{name: "no stock and customer held", opts: []func(*promo.PromoCode){withStock(1)},
			between: func(t *testing.T, s *Store, codeID string) string {
				return mustReserve(t, s, codeID, "cus_a", "owner-2").ID
			},
			wantFlags: []string{"customer_already_redeemed", "stock_exhausted"}, wantStock: 0, wantReserved: 1,
			wantCustomer: "B", wantStockAfterFinish: 0, wantCustomerAfterFinished: "B"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			s, ctx := newStore(t), context.Background()
			p := rdCode(t, s, tc.opts...)
			a := mustReserve(t, s, p.ID, "cus_a", "owner-1")
			released, _ := mustFinish(t, s, p.ID, a.ID, promo.ReasonNotApplied)
			if released.State != promo.RedemptionReleased {
				t.Fatalf("release: %+v", released)
			}
			names := map[string]string{"A": a.ID}
			if tc.between != nil {
				names["B"] = tc.between(t, s, p.ID)
			}

			// (StripeActiveChanged of a take-back is covered by TestStripeActiveChanged.)
			got, _, err := s.Confirm(ctx, p.ID, a.ID, promo.Confirmation{Subscription: "sub_late", DiscountID: "di_late",
				EffectiveAt: now.Add(time.Hour), At: now.Add(3 * time.Second)})
			if err != nil {
				t.Fatal(err)
			}
			want := *a
			want.State, want.Subscription, want.DiscountID = promo.RedemptionPending, "sub_late", "di_late"
			want.EffectiveAt, want.ConfirmedAt, want.LeaseUntil = now.Add(time.Hour), now.Add(3*time.Second), time.Time{}
			want.CreatedAt = want.ConfirmedAt
			want.HoldsStock, want.Flags = tc.wantHolds, tc.wantFlags
			// StockReturned, EndedAt and EndReason of the release are cleared.
			wantRD(t, got, &want)
			wantStored(t, s, got)
			wantCounters(t, s, p.ID, tc.wantStock, tc.wantReserved)
			if h := custHolder(t, s, p.ID, "cus_a"); h != names[tc.wantCustomer] {
				t.Fatalf("cus_a held by %q, want %s (%q)", h, tc.wantCustomer, names[tc.wantCustomer])
			}
			if h := subHolder(t, s, p.ID, "sub_late"); h != a.ID {
				t.Fatalf("subscription index names %q", h)
			}

			// Ending it (pending, never active) gives back only what it took
			// (stock_returned on a limited code: it keeps no unit, whether it had one or
			// not).
			ended, _ := mustFinish(t, s, p.ID, a.ID, promo.ReasonRemoved)
			if ended.State != promo.RedemptionEnded || ended.StockReturned != !getCode(t, s, p.ID).UnlimitedStock || ended.HoldsStock {
				t.Fatalf("ended: %+v", ended)
			}
			wantCounters(t, s, p.ID, tc.wantStockAfterFinish, tc.wantReserved)
			if h := custHolder(t, s, p.ID, "cus_a"); h != names[tc.wantCustomerAfterFinished] {
				t.Fatalf("after finish cus_a held by %q, want %q", h, names[tc.wantCustomerAfterFinished])
			}
		})
	}
}

func TestFinish(t *testing.T) {
	cases := []struct {
		name string
		// prepare brings a fresh reservation of cus_a (subscription sub_1) to the state to finish.
		prepare          func(t *testing.T, s *Store, codeID, id string)
		wantState        promo.RedemptionState
		wantReturned     bool
		wantHolds        bool
		wantStock        int64
		wantReserved     int64
		wantCustomerFree bool
	}{
		{"reserved → released", func(*testing.T, *Store, string, string) {},
			promo.RedemptionReleased, true, false, 5, 0, true},
		{"pending → ended", func(t *testing.T, s *Store, codeID, id string) { mustConfirm(t, s, codeID, id, "sub_1") },
			promo.RedemptionEnded, true, false, 5, 0, true},
		{"active → ended", func(t *testing.T, s *Store, codeID, id string) {
			mustConfirm(t, s, codeID, id, "sub_1")
			makeActive(t, s, codeID, id)
		}, promo.RedemptionEnded, false, true, 4, 0, false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			s, ctx := newStore(t), context.Background()
			p := rdCode(t, s)
			r := newRD(p.ID, "cus_a", "owner-1")
			r.Subscription, r.Source = "sub_1", promo.SourceExistingSubscription
			if _, _, err := s.Reserve(ctx, r, now); err != nil {
				t.Fatal(err)
			}
			tc.prepare(t, s, p.ID, r.ID)
			live, err := s.GetRedemption(ctx, p.ID, r.ID)
			if err != nil {
				t.Fatal(err)
			}
			at := now.Add(10 * time.Second)
			got, _, err := s.Finish(ctx, p.ID, r.ID, promo.ReasonRemoved, at)
			if err != nil {
				t.Fatal(err)
			}
			want := *live
			want.State, want.EndedAt, want.EndReason, want.LeaseUntil = tc.wantState, at, promo.ReasonRemoved, time.Time{}
			want.StockReturned, want.HoldsStock = tc.wantReturned, tc.wantHolds
			wantRD(t, got, &want)
			wantStored(t, s, got)
			wantCounters(t, s, p.ID, tc.wantStock, tc.wantReserved)
			if h := custHolder(t, s, p.ID, "cus_a"); (h == "") != tc.wantCustomerFree || (h != "" && h != r.ID) {
				t.Fatalf("cus_a held by %q, want free=%v", h, tc.wantCustomerFree)
			}
			if h := subHolder(t, s, p.ID, "sub_1"); h != "" {
				t.Fatalf("subscription index still names %q", h)
			}
			if uses := s.rdb.HGet(ctx, codeKey(p.ID), "uses").Val(); uses != "" && uses != "0" {
				t.Fatalf("finish changed uses: %q", uses)
			}
			// Still in the ledger.
			if page, err := s.ListRedemptions(ctx, p.ID, 10, ""); err != nil || len(page.Data) != 1 || page.Data[0].State != tc.wantState {
				t.Fatalf("ledger: %+v %v", page, err)
			}

			// Finishing again changes nothing.
			before := snapshot(t, s, p.ID)
			again, change, err := s.Finish(ctx, p.ID, r.ID, promo.ReasonNotApplied, at.Add(time.Hour))
			if err != nil || change.StripeActiveChanged {
				t.Fatalf("again: %v %v", change, err)
			}
			wantRD(t, again, got)
			wantUnchanged(t, before, snapshot(t, s, p.ID))

			// A freed customer may redeem again; one who had it active may not.
			_, _, err = s.Reserve(ctx, newRD(p.ID, "cus_a", "owner-2"), now)
			if tc.wantCustomerFree && err != nil {
				t.Fatalf("freed customer: %v", err)
			}
			if !tc.wantCustomerFree {
				wantRefusal(t, err, promo.CodeAlreadyRedeemedByCustomer)
			}
		})
	}
}

func TestFinishUnlimitedReservation(t *testing.T) {
	s := newStore(t)
	p := rdCode(t, s, withUnlimited)
	r := mustReserve(t, s, p.ID, "cus_a", "o")
	got, _ := mustFinish(t, s, p.ID, r.ID, promo.ReasonStripeRefused)
	if got.State != promo.RedemptionReleased || got.StockReturned || got.HoldsStock {
		t.Fatalf("released: %+v", got)
	}
	wantCounters(t, s, p.ID, 0, 0)
	if h := custHolder(t, s, p.ID, "cus_a"); h != "" {
		t.Fatalf("customer still held by %q", h)
	}
}

func TestFinishNotFound(t *testing.T) {
	s, ctx := newStore(t), context.Background()
	p := rdCode(t, s)
	mustReserve(t, s, p.ID, "cus_a", "o")
	before := snapshot(t, s, p.ID)
	if _, _, err := s.Finish(ctx, p.ID, "rd_nosuch", promo.ReasonRemoved, now); !errors.Is(err, promo.ErrNotFound) {
		t.Fatalf("unknown redemption: %v", err)
	}
	if _, _, err := s.Finish(ctx, "pc_nosuch", "rd_nosuch", promo.ReasonRemoved, now); !errors.Is(err, promo.ErrNotFound) {
		t.Fatalf("unknown code: %v", err)
	}
	wantUnchanged(t, before, snapshot(t, s, p.ID))
}

// Finishing a redemption whose customer already reserved again (after an
// earlier release) must not free the newer one's hold.
func TestFinishLeavesAnotherRedemptionsCustomerHold(t *testing.T) {
	s := newStore(t)
	p := rdCode(t, s)
	a := mustReserve(t, s, p.ID, "cus_a", "owner-1")
	mustFinish(t, s, p.ID, a.ID, promo.ReasonStripeRefused)
	b := mustReserve(t, s, p.ID, "cus_a", "owner-2")
	mustConfirm(t, s, p.ID, a.ID, "sub_a") // taken back, flagged: cus_a is B's
	mustFinish(t, s, p.ID, a.ID, promo.ReasonRemoved)
	if h := custHolder(t, s, p.ID, "cus_a"); h != b.ID {
		t.Fatalf("cus_a held by %q, want %s", h, b.ID)
	}
}

// The subscription index entry is only removed when it names the redemption.
func TestFinishLeavesAnotherRedemptionsSubscriptionEntry(t *testing.T) {
	s, ctx := newStore(t), context.Background()
	p := rdCode(t, s)
	a := newRD(p.ID, "cus_a", "o1")
	a.Subscription = "sub_1"
	if _, _, err := s.Reserve(ctx, a, now); err != nil {
		t.Fatal(err)
	}
	// The Redeemer's claim and lock keep a second live redemption off the
	// subscription; the store itself lets the later one take the entry.
	b := newRD(p.ID, "cus_b", "o2")
	b.Subscription = "sub_1"
	if _, _, err := s.Reserve(ctx, b, now); err != nil {
		t.Fatal(err)
	}
	if h := subHolder(t, s, p.ID, "sub_1"); h != b.ID {
		t.Fatalf("sub_1 names %q, want %s", h, b.ID)
	}
	mustFinish(t, s, p.ID, a.ID, promo.ReasonStripeRefused)
	if h := subHolder(t, s, p.ID, "sub_1"); h != b.ID {
		t.Fatalf("finishing A dropped B's entry: sub_1 names %q", h)
	}
	mustFinish(t, s, p.ID, b.ID, promo.ReasonStripeRefused)
	if h := subHolder(t, s, p.ID, "sub_1"); h != "" {
		t.Fatalf("sub_1 still names %q", h)
	}
}

// stripeTransition runs one step and checks that StripeActiveChanged reports
// exactly a crossing of promo.PromoCode.WantStripeActive.
func stripeTransition(t *testing.T, s *Store, codeID string, step func() promo.StockChange) (changed, active bool) {
	t.Helper()
	p, err := s.Get(context.Background(), codeID)
	if err != nil {
		t.Fatal(err)
	}
	before := p.WantStripeActive()
	ch := step()
	if p, err = s.Get(context.Background(), codeID); err != nil {
		t.Fatal(err)
	}
	after := p.WantStripeActive()
	if ch.StripeActiveChanged != (before != after) {
		t.Fatalf("StripeActiveChanged %v, but WantStripeActive went %v → %v (stock %d reserved %d)",
			ch.StripeActiveChanged, before, after, p.Stock, p.Reserved)
	}
	return ch.StripeActiveChanged, after
}

func TestStripeActiveChanged(t *testing.T) {
	s, ctx := newStore(t), context.Background()
	p := rdCode(t, s, withStock(1))
	var a, b *promo.Redemption
	steps := []struct {
		name        string
		step        func() promo.StockChange
		wantChanged bool
		wantActive  bool
		wantStock   int64
		wantRes     int64
	}{
		// Reserve reports no change: an active code has stock before it and a reservation after it.
		{"reserve A", func() promo.StockChange { a = mustReserve(t, s, p.ID, "cus_a", "o"); return promo.StockChange{} }, false, true, 0, 1},
		{"confirm A (last unit gone)", func() promo.StockChange { _, ch := mustConfirm(t, s, p.ID, a.ID, "sub_a"); return ch }, true, false, 0, 0},
		{"confirm A again", func() promo.StockChange { _, ch := mustConfirm(t, s, p.ID, a.ID, "sub_a"); return ch }, false, false, 0, 0},
		{"end A (pending: unit back)", func() promo.StockChange { _, ch := mustFinish(t, s, p.ID, a.ID, "removed"); return ch }, true, true, 1, 0},
		{"end A again", func() promo.StockChange { _, ch := mustFinish(t, s, p.ID, a.ID, "removed"); return ch }, false, true, 1, 0},
		{"reserve B", func() promo.StockChange { b = mustReserve(t, s, p.ID, "cus_b", "o"); return promo.StockChange{} }, false, true, 0, 1},
		{"release B", func() promo.StockChange { _, ch := mustFinish(t, s, p.ID, b.ID, "stripe_refused"); return ch }, false, true, 1, 0},
		{"take B back (last unit)", func() promo.StockChange { _, ch := mustConfirm(t, s, p.ID, b.ID, "sub_b"); return ch }, true, false, 0, 0},
		{"activate and end B (unit kept)", func() promo.StockChange {
			makeActive(t, s, p.ID, b.ID)
			_, ch := mustFinish(t, s, p.ID, b.ID, "subscription_canceled")
			return ch
		}, false, false, 0, 0},
	}
	for _, st := range steps {
		changed, active := stripeTransition(t, s, p.ID, st.step)
		if changed != st.wantChanged || active != st.wantActive {
			t.Fatalf("%s: changed %v active %v, want %v %v", st.name, changed, active, st.wantChanged, st.wantActive)
		}
		if gs, gr := codeCounters(t, s, p.ID); gs != st.wantStock || gr != st.wantRes {
			t.Fatalf("%s: stock %d reserved %d, want %d %d", st.name, gs, gr, st.wantStock, st.wantRes)
		}
	}
	t.Run("stock left after confirm", func(t *testing.T) {
		p := rdCode(t, s, withStock(2))
		r := mustReserve(t, s, p.ID, "cus_a", "o")
		if changed, active := stripeTransition(t, s, p.ID, func() promo.StockChange { _, ch := mustConfirm(t, s, p.ID, r.ID, "sub"); return ch }); changed || !active {
			t.Fatalf("changed %v active %v", changed, active)
		}
	})
	t.Run("confirm keeps a sold-out code on while another reservation is in flight", func(t *testing.T) {
		p := rdCode(t, s, withStock(2))
		r1 := mustReserve(t, s, p.ID, "cus_a", "o")
		r2 := mustReserve(t, s, p.ID, "cus_b", "o")
		if changed, _ := stripeTransition(t, s, p.ID, func() promo.StockChange { _, ch := mustConfirm(t, s, p.ID, r1.ID, "s1"); return ch }); changed {
			t.Fatal("confirm with another reservation in flight switched the code off")
		}
		if changed, active := stripeTransition(t, s, p.ID, func() promo.StockChange { _, ch := mustConfirm(t, s, p.ID, r2.ID, "s2"); return ch }); !changed || active {
			t.Fatalf("last confirm: changed %v active %v", changed, active)
		}
	})
	t.Run("unlimited never switches", func(t *testing.T) {
		p := rdCode(t, s, withUnlimited)
		r := mustReserve(t, s, p.ID, "cus_a", "o")
		for _, step := range []func() promo.StockChange{
			func() promo.StockChange { _, ch := mustConfirm(t, s, p.ID, r.ID, "sub"); return ch },
			func() promo.StockChange { _, ch := mustFinish(t, s, p.ID, r.ID, "removed"); return ch },
		} {
			if changed, active := stripeTransition(t, s, p.ID, step); changed || !active {
				t.Fatalf("changed %v active %v", changed, active)
			}
		}
	})
	t.Run("inactive code is off either way", func(t *testing.T) {
		p := rdCode(t, s, withStock(1))
		r := mustReserve(t, s, p.ID, "cus_a", "o")
		// Deactivated by an admin while the reservation is in flight.
		prev, err := s.Get(ctx, p.ID)
		if err != nil {
			t.Fatal(err)
		}
		upd := *prev
		upd.Status = promo.StatusInactive
		if err := s.SaveUpdate(ctx, prev, &upd, false); err != nil {
			t.Fatal(err)
		}
		for _, step := range []func() promo.StockChange{
			func() promo.StockChange { _, ch := mustConfirm(t, s, p.ID, r.ID, "sub"); return ch },
			func() promo.StockChange { _, ch := mustFinish(t, s, p.ID, r.ID, "removed"); return ch },
		} {
			if changed, active := stripeTransition(t, s, p.ID, step); changed || active {
				t.Fatalf("changed %v active %v", changed, active)
			}
		}
	})
}

func TestConcurrentReservesNeverOversell(t *testing.T) {
	s, ctx := newStore(t), context.Background()
	const n, k = 200, 7
	p := rdCode(t, s, withStock(k))
	start := make(chan struct{})
	errs := make(chan error, n)
	var wg sync.WaitGroup
	for i := 0; i < n; i++ {
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			<-start
			_, outcome, err := s.Reserve(ctx, newRD(p.ID, fmt.Sprintf("cus_%03d", i), fmt.Sprintf("owner-%03d", i)), now)
			if err == nil && outcome != promo.Reserved {
				err = fmt.Errorf("outcome %v", outcome)
			}
			errs <- err
		}(i)
	}
	close(start)
	wg.Wait()
	close(errs)
	ok, exhausted := 0, 0
	for err := range errs {
		switch {
		case err == nil:
			ok++
		case promo.CodeOf(err) == promo.CodeCodeExhausted:
			exhausted++
		default:
			t.Errorf("unexpected: %v", err)
		}
	}
	if ok != k || exhausted != n-k {
		t.Fatalf("%d reserved, %d exhausted; want %d and %d", ok, exhausted, k, n-k)
	}
	wantCounters(t, s, p.ID, 0, k)
	if got := s.rdb.ZCard(ctx, ledgerKey(p.ID)).Val(); got != k {
		t.Fatalf("ledger has %d lines", got)
	}
	if got := s.rdb.HLen(ctx, custKey(p.ID)).Val(); got != k {
		t.Fatalf("%d customers held", got)
	}
	if got := s.rdb.HLen(ctx, rdKey(p.ID)).Val(); got != k {
		t.Fatalf("%d records", got)
	}
}

func TestConcurrentReservesOneUsePerCustomer(t *testing.T) {
	s, ctx := newStore(t), context.Background()
	const m = 50
	p := rdCode(t, s, withStock(100))
	start := make(chan struct{})
	type result struct {
		r   *promo.Redemption
		out promo.ReserveOutcome
		err error
	}
	results := make(chan result, m)
	var wg sync.WaitGroup
	for i := 0; i < m; i++ {
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			<-start
			r, out, err := s.Reserve(ctx, newRD(p.ID, "cus_same", fmt.Sprintf("owner-%02d", i)), now)
			results <- result{r, out, err}
		}(i)
	}
	close(start)
	wg.Wait()
	close(results)
	var winners []string
	for res := range results {
		switch {
		case res.err == nil && res.out == promo.Reserved:
			winners = append(winners, res.r.ID)
		case promo.CodeOf(res.err) == promo.CodeAlreadyRedeemedByCustomer:
		default:
			t.Errorf("unexpected: %+v %v %v", res.r, res.out, res.err)
		}
	}
	if len(winners) != 1 {
		t.Fatalf("%d reservations for one customer", len(winners))
	}
	wantCounters(t, s, p.ID, 99, 1)
	if h := custHolder(t, s, p.ID, "cus_same"); h != winners[0] {
		t.Fatalf("customer held by %q, want %s", h, winners[0])
	}
}

// Retries of one request racing each other: one reserves, the rest resume it.
func TestConcurrentRetriesOfOneRequest(t *testing.T) {
	s, ctx := newStore(t), context.Background()
	const m = 30
	p := rdCode(t, s)
	start := make(chan struct{})
	ids := make(chan string, m)
	outcomes := make(chan promo.ReserveOutcome, m)
	var wg sync.WaitGroup
	for i := 0; i < m; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-start
			r, out, err := s.Reserve(ctx, newRD(p.ID, "cus_a", "owner-1"), now)
			if err != nil {
				t.Errorf("retry: %v", err)
				return
			}
			ids <- r.ID
			outcomes <- out
		}()
	}
	close(start)
	wg.Wait()
	close(ids)
	close(outcomes)
	seen := map[string]bool{}
	for id := range ids {
		seen[id] = true
	}
	reserved := 0
	for out := range outcomes {
		if out == promo.Reserved {
			reserved++
		}
	}
	if len(seen) != 1 || reserved != 1 {
		t.Fatalf("%d distinct redemptions, %d reserved; want 1 and 1", len(seen), reserved)
	}
	wantCounters(t, s, p.ID, 4, 1)
}

// Racing Finish and Confirm calls on one reservation settle it exactly once.
func TestConcurrentFinishesReturnStockOnce(t *testing.T) {
	s, ctx := newStore(t), context.Background()
	p := rdCode(t, s, withStock(3))
	r := mustReserve(t, s, p.ID, "cus_a", "o")
	start := make(chan struct{})
	var wg sync.WaitGroup
	for i := 0; i < 20; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-start
			if _, _, err := s.Finish(ctx, p.ID, r.ID, promo.ReasonNotApplied, now); err != nil {
				t.Errorf("finish: %v", err)
			}
		}()
	}
	close(start)
	wg.Wait()
	wantCounters(t, s, p.ID, 3, 0)
	got, err := s.GetRedemption(ctx, p.ID, r.ID)
	if err != nil || got.State != promo.RedemptionReleased || !got.StockReturned {
		t.Fatalf("%+v %v", got, err)
	}
}

func TestGetAndCustomerRedemptionNotFound(t *testing.T) {
	s, ctx := newStore(t), context.Background()
	if _, err := s.GetRedemption(ctx, "pc_nosuch", "rd_1"); !errors.Is(err, promo.ErrNotFound) {
		t.Fatalf("get: %v", err)
	}
	if _, err := s.CustomerRedemption(ctx, "pc_nosuch", "cus_a"); !errors.Is(err, promo.ErrNotFound) {
		t.Fatalf("customer: %v", err)
	}
	// Released: the customer no longer has a redemption of the code.
	p := rdCode(t, s)
	r := mustReserve(t, s, p.ID, "cus_a", "o")
	mustFinish(t, s, p.ID, r.ID, promo.ReasonStripeRefused)
	if _, err := s.CustomerRedemption(ctx, p.ID, "cus_a"); !errors.Is(err, promo.ErrNotFound) {
		t.Fatalf("released: %v", err)
	}
}

func TestListRedemptionsPaging(t *testing.T) {
	s, ctx := newStore(t), context.Background()
	p := rdCode(t, s, withStock(10))
	other := rdCode(t, s)
	mustReserve(t, s, other.ID, "cus_x", "o") // another code's ledger
	var ids []string
	for i := 0; i < 5; i++ {
		ids = append(ids, mustReserve(t, s, p.ID, fmt.Sprintf("cus_%d", i), "o").ID)
	}
	mustFinish(t, s, p.ID, ids[2], promo.ReasonStripeRefused) // released lines stay listed
	pageIDs := func(pg promo.Page[*promo.Redemption]) []string {
		var out []string
		for _, r := range pg.Data {
			out = append(out, r.ID)
		}
		return out
	}
	cases := []struct {
		limit   int
		after   string
		want    []string
		hasMore bool
	}{
		{2, "", []string{ids[4], ids[3]}, true},
		{2, ids[3], []string{ids[2], ids[1]}, true},
		{2, ids[1], []string{ids[0]}, false},
		{5, "", []string{ids[4], ids[3], ids[2], ids[1], ids[0]}, false},
		{4, "", []string{ids[4], ids[3], ids[2], ids[1]}, true},
		{10, "", []string{ids[4], ids[3], ids[2], ids[1], ids[0]}, false},
		{10, ids[0], nil, false},
	}
	for _, tc := range cases {
		pg, err := s.ListRedemptions(ctx, p.ID, tc.limit, tc.after)
		if err != nil {
			t.Fatal(err)
		}
		if got := pageIDs(pg); !slices.Equal(got, tc.want) || pg.HasMore != tc.hasMore {
			t.Errorf("limit %d after %q: %v has_more %v, want %v %v", tc.limit, tc.after, got, pg.HasMore, tc.want, tc.hasMore)
		}
	}
	pg, _ := s.ListRedemptions(ctx, p.ID, 10, "")
	for _, r := range pg.Data {
		want := promo.RedemptionReserved
		if r.ID == ids[2] {
			want = promo.RedemptionReleased
		}
		if r.State != want || r.PromoCodeID != p.ID {
			t.Errorf("%s: %+v", r.ID, r)
		}
	}
	empty, err := s.ListRedemptions(ctx, rdCode(t, s).ID, 10, "")
	if err != nil || len(empty.Data) != 0 || empty.HasMore {
		t.Fatalf("empty ledger: %+v %v", empty, err)
	}
}

func TestClaims(t *testing.T) {
	s, ctx := newStore(t), context.Background()
	if _, err := s.Claim(ctx, "sub_1"); !errors.Is(err, promo.ErrNotFound) {
		t.Fatalf("no claim: %v", err)
	}
	c := promo.Claim{PromoCodeID: "pc_1", RedemptionID: "rd_1"}
	if err := s.SetClaim(ctx, "sub_1", c); err != nil {
		t.Fatal(err)
	}
	if got, err := s.Claim(ctx, "sub_1"); err != nil || got != c {
		t.Fatalf("round trip: %+v %v", got, err)
	}
	if _, err := s.Claim(ctx, "sub_2"); !errors.Is(err, promo.ErrNotFound) {
		t.Fatalf("other subscription: %v", err)
	}

	// A later claim replaces it.
	c2 := promo.Claim{PromoCodeID: "pc_1", RedemptionID: "rd_10"}
	if err := s.SetClaim(ctx, "sub_1", c2); err != nil {
		t.Fatal(err)
	}
	// Clearing with another redemption ID (even a prefix of the claimed one) keeps it.
	for _, id := range []string{"rd_1", "rd_100", "rd_", "pc_1", ""} {
		if err := s.ClearClaim(ctx, "sub_1", id); err != nil {
			t.Fatal(err)
		}
		if got, err := s.Claim(ctx, "sub_1"); err != nil || got != c2 {
			t.Fatalf("ClearClaim(%q) removed the claim of rd_10: %+v %v", id, got, err)
		}
	}
	if err := s.ClearClaim(ctx, "sub_1", "rd_10"); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Claim(ctx, "sub_1"); !errors.Is(err, promo.ErrNotFound) {
		t.Fatalf("after clear: %v", err)
	}
	// Clearing nothing is fine.
	if err := s.ClearClaim(ctx, "sub_none", "rd_1"); err != nil {
		t.Fatal(err)
	}
}

func TestLockSubscription(t *testing.T) {
	s, ctx := newStore(t), context.Background()
	unlock, err := s.LockSubscription(ctx, "sub_1", 10*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	// Another subscription is independent.
	unlock2, err := s.LockSubscription(ctx, "sub_2", 10*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	unlock2()
	// While held, a second locker does not get it (it gives up when its context ends).
	short, cancel := context.WithTimeout(ctx, 100*time.Millisecond)
	_, err = s.LockSubscription(short, "sub_1", 10*time.Second)
	cancel()
	if err == nil {
		t.Fatal("a held subscription lock was taken twice")
	}
	unlock()
	unlock3, err := s.LockSubscription(ctx, "sub_1", 10*time.Second)
	if err != nil {
		t.Fatalf("after unlock: %v", err)
	}
	unlock3()
}

func TestDueIndex(t *testing.T) {
	s, ctx := newStore(t), context.Background()
	marks := []promo.DueReservation{
		{PromoCodeID: "pc_b", RedemptionID: "rd_4", LeaseUntil: now.Add(time.Millisecond)}, // not yet due
		{PromoCodeID: "pc_a", RedemptionID: "rd_2", LeaseUntil: now.Add(-time.Minute)},
		{PromoCodeID: "pc_a", RedemptionID: "rd_3", LeaseUntil: now},
		{PromoCodeID: "pc_b", RedemptionID: "rd_1", LeaseUntil: now.Add(-2 * time.Minute)},
		{PromoCodeID: "pc_c", RedemptionID: "rd_5", LeaseUntil: now.Add(time.Hour)},
	}
	for _, d := range marks {
		if err := s.MarkDue(ctx, d); err != nil {
			t.Fatal(err)
		}
	}
	due, err := s.Due(ctx, now, 10)
	if err != nil {
		t.Fatal(err)
	}
	want := []promo.DueReservation{marks[3], marks[1], marks[2]}
	if !reflect.DeepEqual(due, want) {
		t.Fatalf("due\n got  %+v\n want %+v", due, want)
	}
	if due, _ := s.Due(ctx, now, 2); !reflect.DeepEqual(due, want[:2]) {
		t.Fatalf("limit 2: %+v", due)
	}
	if due, _ := s.Due(ctx, now.Add(-3*time.Minute), 10); len(due) != 0 {
		t.Fatalf("nothing due yet: %+v", due)
	}
	if due, _ := s.Due(ctx, now.Add(2*time.Hour), 10); len(due) != len(marks) {
		t.Fatalf("all due later: %+v", due)
	}

	if err := s.UnmarkDue(ctx, "pc_a", "rd_2"); err != nil {
		t.Fatal(err)
	}
	if err := s.UnmarkDue(ctx, "pc_a", "rd_nosuch"); err != nil {
		t.Fatal(err)
	}
	if due, _ := s.Due(ctx, now, 10); !reflect.DeepEqual(due, []promo.DueReservation{marks[3], marks[2]}) {
		t.Fatalf("after unmark: %+v", due)
	}
	// Marking again moves the lease, it does not duplicate.
	later := marks[3]
	later.LeaseUntil = now.Add(time.Minute)
	if err := s.MarkDue(ctx, later); err != nil {
		t.Fatal(err)
	}
	if due, _ := s.Due(ctx, now, 10); !reflect.DeepEqual(due, []promo.DueReservation{marks[2]}) {
		t.Fatalf("after re-mark: %+v", due)
	}
}

func TestStripeSyncSet(t *testing.T) {
	s, ctx := newStore(t), context.Background()
	if ids, err := s.StripeSyncPending(ctx, 10); err != nil || len(ids) != 0 {
		t.Fatalf("empty: %v %v", ids, err)
	}
	for _, id := range []string{"pc_a", "pc_b", "pc_a", "pc_c"} {
		if err := s.NeedsStripeSync(ctx, id); err != nil {
			t.Fatal(err)
		}
	}
	ids, err := s.StripeSyncPending(ctx, 10)
	slices.Sort(ids)
	if err != nil || !slices.Equal(ids, []string{"pc_a", "pc_b", "pc_c"}) {
		t.Fatalf("pending: %v %v", ids, err)
	}
	if ids, _ := s.StripeSyncPending(ctx, 2); len(ids) != 2 || ids[0] == ids[1] {
		t.Fatalf("limit 2: %v", ids)
	}
	if err := s.StripeSyncDone(ctx, "pc_b"); err != nil {
		t.Fatal(err)
	}
	if err := s.StripeSyncDone(ctx, "pc_b"); err != nil {
		t.Fatal(err)
	}
	ids, _ = s.StripeSyncPending(ctx, 10)
	slices.Sort(ids)
	if !slices.Equal(ids, []string{"pc_a", "pc_c"}) {
		t.Fatalf("after done: %v", ids)
	}
}

func TestCustomerHasPaid(t *testing.T) {
	s, ctx := newStore(t), context.Background()
	if paid, err := s.CustomerHasPaid(ctx, "cus_a"); err != nil || paid {
		t.Fatalf("unknown customer: %v %v", paid, err)
	}
	// The writer (invoice.paid webhook) comes later: set the mark directly.
	if err := s.rdb.Set(ctx, paidKey("cus_a"), "1", time.Hour).Err(); err != nil {
		t.Fatal(err)
	}
	if paid, err := s.CustomerHasPaid(ctx, "cus_a"); err != nil || !paid {
		t.Fatalf("paid customer: %v %v", paid, err)
	}
	if paid, err := s.CustomerHasPaid(ctx, "cus_b"); err != nil || paid {
		t.Fatalf("other customer: %v %v", paid, err)
	}
}

// crc16 is the CRC16-CCITT (XMODEM) Redis Cluster hashes keys with.
func crc16(b []byte) uint16 {
	var crc uint16
	for _, c := range b {
		crc ^= uint16(c) << 8
		for i := 0; i < 8; i++ {
			if crc&0x8000 != 0 {
				crc = crc<<1 ^ 0x1021
			} else {
				crc <<= 1
			}
		}
	}
	return crc
}

// keySlot is CLUSTER KEYSLOT (the server started for tests runs without
// cluster support, which refuses that command).
func keySlot(key string) uint16 {
	if i := strings.IndexByte(key, '{'); i >= 0 {
		if j := strings.IndexByte(key[i+1:], '}'); j > 0 {
			key = key[i+1 : i+1+j]
		}
	}
	return crc16([]byte(key)) % 16384
}

func TestRedemptionKeysShareOneClusterSlot(t *testing.T) {
	// The values Redis documents for CLUSTER KEYSLOT.
	for key, want := range map[string]uint16{"somekey": 11058, "foo{hash_tag}": 2515, "123456789": 0x31C3 % 16384} {
		if got := keySlot(key); got != want {
			t.Fatalf("keySlot(%q) = %d, want %d", key, got, want)
		}
	}
	for _, id := range []string{"pc_01JD4Q2W8Z6V3N5M7K9P1R3T5X", "pc_1", "pc_0000000042"} {
		keys := redemptionKeys(id)
		if len(keys) != 11 || keys[0] != codeKey(id) {
			t.Fatalf("keys %v: KEYS[1] must be the code hash the catalog writes", keys)
		}
		seen := map[string]bool{}
		for _, k := range keys {
			if seen[k] {
				t.Fatalf("duplicate key %s", k)
			}
			seen[k] = true
			if !strings.Contains(k, "{"+id+"}") || keySlot(k) != keySlot(codeKey(id)) {
				t.Errorf("%s is in slot %d, the code hash %s in %d", k, keySlot(k), codeKey(id), keySlot(codeKey(id)))
			}
		}
	}
}

// A late confirmation of a redemption that was active and has ended is
// stale: it must not take a second unit or reopen the redemption (found by
// the store's test review), and finishing again must not free the customer.
func TestConfirmAfterActiveEndChangesNothing(t *testing.T) {
	s := newStore(t)
	p := rdCode(t, s)
	r := mustReserve(t, s, p.ID, "cus_a", "own_a")
	mustConfirm(t, s, p.ID, r.ID, "sub_a")
	makeActive(t, s, p.ID, r.ID)
	ended, _ := mustFinish(t, s, p.ID, r.ID, promo.ReasonDuration)
	before := snapshot(t, s, p.ID)
	again, _ := mustConfirm(t, s, p.ID, r.ID, "sub_a")
	if again.State != promo.RedemptionEnded || !again.HoldsStock {
		t.Fatalf("stale confirm reopened the redemption: %+v", again)
	}
	wantUnchanged(t, before, snapshot(t, s, p.ID))
	if _, _, err := s.Finish(context.Background(), p.ID, r.ID, promo.ReasonRemoved, now); err != nil {
		t.Fatal(err)
	}
	wantUnchanged(t, before, snapshot(t, s, p.ID))
	if custHolder(t, s, p.ID, "cus_a") != ended.ID {
		t.Fatal("the customer's use of the code was freed after a paid discounted invoice")
	}
}

// stock + held is constant through every redemption move: it is the limit
// reconcile rebuilds stock from.
func TestStockPlusHeldIsConstant(t *testing.T) {
	s := newStore(t)
	p := rdCode(t, s, withStock(4))
	limit := func() int64 {
		t.Helper()
		got, err := s.Get(context.Background(), p.ID)
		if err != nil {
			t.Fatal(err)
		}
		return got.Stock + got.Held
	}
	a := mustReserve(t, s, p.ID, "cus_a", "own_a")
	b := mustReserve(t, s, p.ID, "cus_b", "own_b")
	c := mustReserve(t, s, p.ID, "cus_c", "own_c")
	mustConfirm(t, s, p.ID, a.ID, "sub_a")
	mustFinish(t, s, p.ID, b.ID, promo.ReasonStripeRefused) // released: unit back
	mustConfirm(t, s, p.ID, b.ID, "sub_b")                  // taken back
	mustConfirm(t, s, p.ID, c.ID, "sub_c")
	makeActive(t, s, p.ID, c.ID)
	mustFinish(t, s, p.ID, c.ID, promo.ReasonDuration) // used: unit stays held
	mustFinish(t, s, p.ID, a.ID, promo.ReasonRemoved)  // never used: unit back
	if got := limit(); got != 4 {
		t.Fatalf("stock + held = %d, want the initial 4", got)
	}
	got, _ := s.Get(context.Background(), p.ID)
	if got.Held != 2 || got.Stock != 2 {
		t.Fatalf("held %d stock %d, want 2 and 2 (b pending, c used)", got.Held, got.Stock)
	}
}

// Stored ledger records leave out what their place gives (their ID, the
// code's ID).
func TestLedgerRecordsOmitWhatTheKeyGives(t *testing.T) {
	s, ctx := newStore(t), context.Background()
	p := rdCode(t, s)
	r := mustReserve(t, s, p.ID, "cus_a", "own_a")
	raw := s.rdb.HGet(ctx, rdKey(p.ID), r.ID).Val()
	if strings.Contains(raw, `"id"`) || strings.Contains(raw, `"pc"`) || strings.Contains(raw, r.ID) {
		t.Fatalf("stored record repeats its key: %s", raw)
	}
	if got, err := s.GetRedemption(ctx, p.ID, r.ID); err != nil || got.ID != r.ID || got.PromoCodeID != p.ID || got.Customer != "cus_a" {
		t.Fatalf("read back %+v %v", got, err)
	}
}

func TestGetByCodeForCustomer(t *testing.T) {
	s, ctx := newStore(t), context.Background()
	p := rdCode(t, s)
	if _, _, err := s.GetByCodeForCustomer(ctx, "NOSUCHCODE", "cus_a"); !errors.Is(err, promo.ErrNotFound) {
		t.Fatalf("unknown code: %v", err)
	}
	got, rd, err := s.GetByCodeForCustomer(ctx, p.Code, "cus_a")
	if err != nil || got.ID != p.ID || got.Stock != 5 || rd != nil {
		t.Fatalf("no redemption yet: %+v %+v %v", got, rd, err)
	}
	r := mustReserve(t, s, p.ID, "cus_a", "own_a")
	got, rd, err = s.GetByCodeForCustomer(ctx, p.Code, "cus_a")
	if err != nil || got.Stock != 4 || rd == nil || rd.ID != r.ID || rd.PromoCodeID != p.ID || rd.State != promo.RedemptionReserved {
		t.Fatalf("with the customer's redemption: %+v %+v %v", got, rd, err)
	}
	if _, rd, err := s.GetByCodeForCustomer(ctx, p.Code, "cus_b"); err != nil || rd != nil {
		t.Fatalf("another customer: %+v %v", rd, err)
	}
}
