package redisstore

import (
	"context"
	"errors"
	"slices"
	"testing"
	"time"

	"github.com/billing-adapter/billing-adapter/internal/promo"
)

// Every ledger field is a function of Stripe's facts: these tests deliver
// the events of one line in every order and want the same line.

// eachOrder runs the steps in every order on a fresh code and returns the
// lines they left, one per order.
func eachOrder(t *testing.T, s *Store, opts []func(*promo.PromoCode), setup func(t *testing.T, codeID string) string,
	steps ...func(t *testing.T, codeID string)) []*promo.Redemption {
	t.Helper()
	var out []*promo.Redemption
	for _, perm := range permutations(len(steps)) {
		p := rdCode(t, s, opts...)
		id := setup(t, p.ID)
		for _, i := range perm {
			steps[i](t, p.ID)
		}
		r, err := s.GetRedemption(context.Background(), p.ID, id)
		if err != nil {
			t.Fatal(err)
		}
		r.PromoCodeID = ""
		out = append(out, r)
	}
	return out
}

func wantSameLines(t *testing.T, lines []*promo.Redemption, want *promo.Redemption) {
	t.Helper()
	for i, r := range lines {
		wantRD(t, r, want)
		if t.Failed() {
			t.Fatalf("order %d", i)
		}
	}
}

func TestEndReasonAndTimeDoNotDependOnOrder(t *testing.T) {
	s := newStore(t)
	outside := func(t *testing.T, codeID string) string { return disc("di_a", "cus_a", "sub_a", 0).NewID }
	created := disc("di_a", "cus_a", "sub_a", time.Minute)
	t.Run("a once coupon's discount deleted after its paid invoice: duration_over", func(t *testing.T) {
		once := created
		once.Once = true
		inv := once
		inv.At = now.Add(2 * time.Minute)
		del := once
		del.At = now.Add(2 * time.Minute) // Stripe removes it as the invoice is made
		lines := eachOrder(t, s, nil, outside,
			func(t *testing.T, id string) { mustObserve(t, s, id, once) },
			func(t *testing.T, id string) { mustCount(t, s, id, paid("in_1", inv, "eur", 500)) },
			func(t *testing.T, id string) { mustEnd(t, s, id, del, promo.ReasonDeleted) })
		wantSameLines(t, lines, &promo.Redemption{ID: once.NewID, Customer: "cus_a", Subscription: "sub_a",
			DiscountID: "di_a", Source: promo.SourceStripe, State: promo.RedemptionEnded, CreatedAt: now,
			ConfirmedAt: now, EffectiveAt: now, ActivatedAt: inv.At, EndedAt: del.At, EndedInStripe: true,
			EndReason: promo.ReasonDuration, HoldsStock: true, Cycles: 1, Discounted: map[string]int64{"eur": 500}})
	})
	t.Run("a once coupon's discount deleted after its paid invoice as the subscription is canceled: duration_over", func(t *testing.T) {
		// The renewal deletes the once discount and the cancellation comes at
		// the same Stripe time: duration_over precedes subscription_canceled,
		// also when the deletion and the cancellation are seen before the
		// paid invoice that makes the deletion duration_over.
		once := created
		once.Once = true
		inv := once
		inv.At = now.Add(2 * time.Minute)
		del := once
		del.At = now.Add(time.Hour)
		canceled := del
		lines := eachOrder(t, s, nil, outside,
			func(t *testing.T, id string) { mustObserve(t, s, id, once) },
			func(t *testing.T, id string) { mustCount(t, s, id, paid("in_1", inv, "eur", 500)) },
			func(t *testing.T, id string) { mustEnd(t, s, id, del, promo.ReasonDeleted) },
			func(t *testing.T, id string) { mustEnd(t, s, id, canceled, promo.ReasonCanceled) })
		wantSameLines(t, lines, &promo.Redemption{ID: once.NewID, Customer: "cus_a", Subscription: "sub_a",
			DiscountID: "di_a", Source: promo.SourceStripe, State: promo.RedemptionEnded, CreatedAt: now,
			ConfirmedAt: now, EffectiveAt: now, ActivatedAt: inv.At, EndedAt: del.At, EndedInStripe: true,
			EndReason: promo.ReasonDuration, HoldsStock: true, Cycles: 1, Discounted: map[string]int64{"eur": 500}})
	})
	t.Run("canceled and its discount deleted at the same time: subscription_canceled", func(t *testing.T) {
		del := created
		del.At = now.Add(time.Hour)
		lines := eachOrder(t, s, []func(*promo.PromoCode){withStock(3)}, outside,
			func(t *testing.T, id string) { mustObserve(t, s, id, created) },
			func(t *testing.T, id string) { mustEnd(t, s, id, del, promo.ReasonDeleted) },
			func(t *testing.T, id string) {
				// customer.subscription.deleted: its discount ends at canceled_at.
				canceled := created
				canceled.At = now.Add(time.Hour)
				mustEnd(t, s, id, canceled, promo.ReasonCanceled)
			})
		wantSameLines(t, lines, &promo.Redemption{ID: created.NewID, Customer: "cus_a", Subscription: "sub_a",
			DiscountID: "di_a", Source: promo.SourceStripe, State: promo.RedemptionEnded, CreatedAt: now,
			ConfirmedAt: now, EffectiveAt: now, EndedAt: del.At, EndedInStripe: true,
			EndReason: promo.ReasonCanceled, StockReturned: true})
	})
	t.Run("the earliest of two Stripe ends wins", func(t *testing.T) {
		early, late := created, created
		early.At, late.At = now.Add(time.Hour), now.Add(2*time.Hour)
		lines := eachOrder(t, s, []func(*promo.PromoCode){withStock(3)}, outside,
			func(t *testing.T, id string) { mustEnd(t, s, id, late, promo.ReasonDeleted) },
			func(t *testing.T, id string) { mustEnd(t, s, id, early, promo.ReasonReplaced) })
		wantSameLines(t, lines, &promo.Redemption{ID: created.NewID, Customer: "cus_a", Subscription: "sub_a",
			DiscountID: "di_a", Source: promo.SourceStripe, State: promo.RedemptionEnded, CreatedAt: now,
			ConfirmedAt: now, EffectiveAt: now, EndedAt: early.At, EndedInStripe: true,
			EndReason: promo.ReasonReplaced, StockReturned: true})
	})
	t.Run("removed by the adapter, then deleted in Stripe, either order", func(t *testing.T) {
		var own *promo.Redemption
		del := created
		del.At = now.Add(time.Hour)
		lines := eachOrder(t, s, []func(*promo.PromoCode){withStock(3)},
			func(t *testing.T, id string) string {
				own = reserveOn(t, s, id, "cus_a", "sub_a")
				mustConfirmAt(t, s, id, own.ID, "sub_a", now)
				return own.ID
			},
			func(t *testing.T, id string) {
				if _, _, err := s.Finish(context.Background(), id, own.ID, promo.ReasonRemoved, now.Add(time.Minute)); err != nil {
					t.Fatal(err)
				}
			},
			func(t *testing.T, id string) { mustEnd(t, s, id, del, promo.ReasonDeleted) })
		for _, r := range lines {
			if r.EndReason != promo.ReasonRemoved || !r.EndedAt.Equal(del.At) || !r.EndedInStripe || r.State != promo.RedemptionEnded {
				t.Fatalf("line %+v: want removed at Stripe's deletion time %v", r, del.At)
			}
		}
	})
}

// mustConfirmAt confirms a reservation with the discount di_a that
// started at at.
func mustConfirmAt(t *testing.T, s *Store, codeID, id, sub string, at time.Time) {
	t.Helper()
	if _, _, err := s.Confirm(context.Background(), codeID, id, promo.Confirmation{Subscription: sub, DiscountID: "di_a",
		EffectiveAt: at, At: at}); err != nil {
		t.Fatal(err)
	}
}

// A new subscription's reservation has no subscription until the apply's
// answer: a discount of the same customer is matched to it only when the
// discount's subscription is the one the reservation made (its metadata).
func TestNewSubscriptionReservationMatchesItsOwnSubscription(t *testing.T) {
	s, ctx := newStore(t), context.Background()
	p := rdCode(t, s, withStock(5))
	r := mustReserve(t, s, p.ID, "cus_a", "owner-a")
	other := disc("di_other", "cus_a", "sub_other", time.Second)
	other.MatchByCustomer = false

	if _, _, _, err := s.ObserveDiscount(ctx, p.ID, other); !errors.Is(err, promo.ErrSubscriptionUnread) {
		t.Fatalf("unknown subscription: %v, want ErrSubscriptionUnread", err)
	}
	if _, err := s.CountInvoice(ctx, p.ID, paid("in_1", other, "eur", 100)); !errors.Is(err, promo.ErrSubscriptionUnread) {
		t.Fatalf("count, unknown subscription: %v, want ErrSubscriptionUnread", err)
	}
	// The other subscription was not made by the reservation: adopted.
	other.SubscriptionRead, other.SubscriptionRedemptionID = true, ""
	got, how, _ := mustObserve(t, s, p.ID, other)
	if how != promo.ObservedAdopted || got.ID == r.ID || got.Source != promo.SourceStripe {
		t.Fatalf("outside discount on another subscription: %v %+v", how, got)
	}
	if len(got.Flags) != 1 || got.Flags[0] != "customer_already_redeemed" {
		t.Fatalf("flags %v, want customer_already_redeemed", got.Flags)
	}
	// The reservation's own subscription names it: confirmed.
	own := disc("di_own", "cus_a", "sub_own", 2*time.Second)
	own.MatchByCustomer, own.SubscriptionRead, own.SubscriptionRedemptionID = false, true, r.ID
	got, how, _ = mustObserve(t, s, p.ID, own)
	if how != promo.ObservedConfirmed || got.ID != r.ID || got.Subscription != "sub_own" {
		t.Fatalf("own discount: %v %+v", how, got)
	}
}

// The one definition of units held: the Lua scripts and the domain agree
// on which lines hold a unit and the customer's use.
func TestHoldsUseAgrees(t *testing.T) {
	s, ctx := newStore(t), context.Background()
	cases := []struct {
		name string
		make func(codeID string) string
	}{
		{"reserved", func(id string) string { return reserveOn(t, s, id, "cus_a", "sub_a").ID }},
		{"pending", func(id string) string {
			r := reserveOn(t, s, id, "cus_a", "sub_a")
			mustConfirm(t, s, id, r.ID, "sub_a")
			return r.ID
		}},
		{"active", func(id string) string {
			d := disc("di_a", "cus_a", "sub_a", time.Minute)
			r, _, _ := mustCount(t, s, id, paid("in_1", d, "eur", 100))
			return r.ID
		}},
		{"ended after a paid invoice", func(id string) string {
			d := disc("di_a", "cus_a", "sub_a", time.Minute)
			r, _, _ := mustCount(t, s, id, paid("in_1", d, "eur", 100))
			mustEnd(t, s, id, d, promo.ReasonDeleted)
			return r.ID
		}},
		{"ended before a paid invoice", func(id string) string {
			d := disc("di_a", "cus_a", "sub_a", time.Minute)
			r, _ := mustEnd(t, s, id, d, promo.ReasonDeleted)
			return r.ID
		}},
		{"released", func(id string) string {
			r := reserveOn(t, s, id, "cus_a", "sub_a")
			if _, _, err := s.Finish(ctx, id, r.ID, promo.ReasonStripeRefused, now); err != nil {
				t.Fatal(err)
			}
			return r.ID
		}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			p := rdCode(t, s, withStock(3))
			id := tc.make(p.ID)
			r, err := s.GetRedemption(ctx, p.ID, id)
			if err != nil {
				t.Fatal(err)
			}
			code := getCode(t, s, p.ID)
			holder := custHolder(t, s, p.ID, "cus_a")
			if luaHolds := r.HoldsStock && code.Held == 1 && holder == id; luaHolds != r.HoldsUse() {
				t.Fatalf("Lua: holds stock %v (held %d), customer holder %q; domain HoldsUse %v", r.HoldsStock, code.Held, holder, r.HoldsUse())
			}
		})
	}
}

// Units of stock and a customer's one use go to the lines that need them in
// ID order (the rebuild's order), whatever order their events come in.
func TestUnitsAndCustomerUseGoInIDOrder(t *testing.T) {
	s, ctx := newStore(t), context.Background()
	// Three outside discounts of one code with one unit left: a and b of
	// one customer, c of another; a starts first, then b, then c.
	mk := func(di, cus, sub string, start time.Duration) promo.ObservedDiscount {
		d := disc(di, cus, sub, start+time.Minute)
		d.Start = now.Add(start)
		d.NewID = promo.RedemptionIDFor(di, d.Start)
		return d
	}
	a, b, c := mk("di_a", "cus_1", "sub_a", 0), mk("di_b", "cus_1", "sub_b", time.Hour), mk("di_c", "cus_2", "sub_c", 2*time.Hour)
	aEnd := a
	aEnd.At = now.Add(3 * time.Hour)
	type want struct {
		holds bool
		flags []string
	}
	check := func(t *testing.T, codeID string, wants map[string]want) {
		t.Helper()
		for id, w := range wants {
			r, err := s.GetRedemption(ctx, codeID, id)
			if err != nil {
				t.Fatal(err)
			}
			if r.HoldsStock != w.holds || !slices.Equal(r.Flags, w.flags) {
				t.Fatalf("%s: holds %v flags %v, want %v %v", id, r.HoldsStock, r.Flags, w.holds, w.flags)
			}
		}
	}
	steps := []func(t *testing.T, codeID string){
		func(t *testing.T, id string) { mustObserve(t, s, id, a) },
		func(t *testing.T, id string) { mustObserve(t, s, id, b) },
		func(t *testing.T, id string) { mustObserve(t, s, id, c) },
	}
	t.Run("all live: the first line holds the unit and the customer", func(t *testing.T) {
		for _, perm := range permutations(len(steps)) {
			p := rdCode(t, s, withStock(1))
			for _, i := range perm {
				steps[i](t, p.ID)
			}
			check(t, p.ID, map[string]want{
				a.NewID: {true, nil},
				b.NewID: {false, []string{"customer_already_redeemed", "stock_exhausted"}},
				c.NewID: {false, []string{"stock_exhausted"}},
			})
			if h := custHolder(t, s, p.ID, "cus_1"); h != a.NewID {
				t.Fatalf("order %v: cus_1 held by %s, want a", perm, h)
			}
			wantTally(t, s, p.ID, tally{stock: 0, held: 1})
		}
	})
	t.Run("the first ends before use: the next takes the unit and the customer", func(t *testing.T) {
		all := append(slices.Clone(steps), func(t *testing.T, id string) { mustEnd(t, s, id, aEnd, promo.ReasonDeleted) })
		for _, perm := range permutations(len(all)) {
			p := rdCode(t, s, withStock(1))
			for _, i := range perm {
				all[i](t, p.ID)
			}
			check(t, p.ID, map[string]want{
				a.NewID: {false, nil},
				b.NewID: {true, nil},
				c.NewID: {false, []string{"stock_exhausted"}},
			})
			if h := custHolder(t, s, p.ID, "cus_1"); h != b.NewID {
				t.Fatalf("order %v: cus_1 held by %s, want b", perm, h)
			}
			wantTally(t, s, p.ID, tally{stock: 0, held: 1})
		}
	})
}

// Stock the admin adds goes first to the lines waiting for a unit, in ID
// order, as had it been there when they came (what reconcile would pick).
func TestRestockServesWaitingLinesFirst(t *testing.T) {
	s, ctx := newStore(t), context.Background()
	p := rdCode(t, s, withStock(1))
	var lines []promo.ObservedDiscount
	for i, di := range []string{"di_1", "di_2", "di_3"} {
		d := disc(di, "cus_"+di, "sub_"+di, time.Minute)
		d.Start = now.Add(time.Duration(i) * time.Hour)
		d.NewID = promo.RedemptionIDFor(di, d.Start)
		mustObserve(t, s, p.ID, d)
		lines = append(lines, d)
	}
	wantTally(t, s, p.ID, tally{stock: 0, held: 1})

	prev := getCode(t, s, p.ID)
	next := *prev
	next.Stock = 1
	if err := s.SaveUpdate(ctx, prev, &next, true); err != nil {
		t.Fatal(err)
	}
	if next.Stock != 0 || next.Held != 2 {
		t.Fatalf("the update's answer: stock %d held %d, want 0 and 2", next.Stock, next.Held)
	}
	wantTally(t, s, p.ID, tally{stock: 0, held: 2})
	for i, d := range lines {
		r, err := s.GetRedemption(ctx, p.ID, d.NewID)
		if err != nil {
			t.Fatal(err)
		}
		wantHolds := i < 2
		if r.HoldsStock != wantHolds || slices.Contains(r.Flags, "stock_exhausted") == wantHolds {
			t.Fatalf("line %d: holds %v flags %v, want holds %v", i, r.HoldsStock, r.Flags, wantHolds)
		}
	}
	if ids, err := s.StripeSyncPending(ctx, 10); err != nil || !slices.Contains(ids, p.ID) {
		t.Fatalf("Stripe switch not queued: %v %v", ids, err)
	}

	// Unlimited: nobody waits.
	prev = getCode(t, s, p.ID)
	next = *prev
	next.UnlimitedStock = true
	if err := s.SaveUpdate(ctx, prev, &next, false); err != nil {
		t.Fatal(err)
	}
	r, err := s.GetRedemption(ctx, p.ID, lines[2].NewID)
	if err != nil || len(r.Flags) != 0 {
		t.Fatalf("on an unlimited code: %+v %v", r, err)
	}
}
