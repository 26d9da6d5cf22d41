package redisstore

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"maps"
	"math/rand/v2"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/billing-adapter/billing-adapter/internal/promo"
	"github.com/redis/go-redis/v9"
)

// Tests of the scripts that observe Stripe (observe.go) against the real
// redis-server started in TestMain (store_test.go). The helpers shared with
// the redemption store tests (rdCode, mustReserve, snapshot, custHolder,
// stripeTransition, ...) live in redemptions_test.go.

// disc is Stripe's discount di of customer cus on subscription sub ("" for
// a customer-level discount), as the Observer hands it to the store for
// an event at now+off: the discount starts at now, and NewID is its
// deterministic ID, the same in every event about it. A new subscription's
// reservation is matched by customer (MatchByCustomer; the matching by the
// subscription's metadata has tests of its own).
func disc(di, cus, sub string, off time.Duration) promo.ObservedDiscount {
	return promo.ObservedDiscount{DiscountID: di, Customer: cus, Subscription: sub, At: now.Add(off), Start: now,
		NewID: promo.RedemptionIDFor(di, now), MatchByCustomer: true}
}

// paid is invoice.paid for invoice id carrying d, discounting amount in cur.
func paid(id string, d promo.ObservedDiscount, cur string, amount int64) promo.PaidInvoice {
	return promo.PaidInvoice{InvoiceID: id, Discount: d, Currency: cur, Amount: amount}
}

func mustObserve(t *testing.T, s *Store, codeID string, d promo.ObservedDiscount) (*promo.Redemption, promo.ObserveOutcome, promo.StockChange) {
	t.Helper()
	r, outcome, ch, err := s.ObserveDiscount(context.Background(), codeID, d)
	if err != nil || r == nil {
		t.Fatalf("observe %s: %+v %v", d.DiscountID, r, err)
	}
	return r, outcome, ch
}

func mustEnd(t *testing.T, s *Store, codeID string, d promo.ObservedDiscount, reason string) (*promo.Redemption, promo.StockChange) {
	t.Helper()
	r, ch, err := s.EndDiscount(context.Background(), codeID, d, reason)
	if err != nil || r == nil {
		t.Fatalf("end %s: %+v %v", d.DiscountID, r, err)
	}
	return r, ch
}

func mustCount(t *testing.T, s *Store, codeID string, inv promo.PaidInvoice) (*promo.Redemption, bool, promo.StockChange) {
	t.Helper()
	c, err := s.CountInvoice(context.Background(), codeID, inv)
	if err != nil || c.Redemption == nil {
		t.Fatalf("count %s: %+v %v", inv.InvoiceID, c, err)
	}
	return c.Redemption, c.New, c.Change
}

// reserveOn reserves a redemption of the code for customer on the existing
// subscription sub, as POST /v1/subscriptions/{id}/promo_code does.
func reserveOn(t *testing.T, s *Store, codeID, customer, sub string) *promo.Redemption {
	t.Helper()
	r := newRD(codeID, customer, "owner-"+customer+"-"+sub)
	r.Subscription, r.Source = sub, promo.SourceExistingSubscription
	got, outcome, err := s.Reserve(context.Background(), r, now)
	if err != nil || outcome != promo.Reserved {
		t.Fatalf("reserve %s for %s on %s: %+v %v %v", codeID, customer, sub, got, outcome, err)
	}
	return got
}

// reserveFor reserves on sub, or for a new subscription when sub is "".
func reserveFor(t *testing.T, s *Store, codeID, customer, sub string) *promo.Redemption {
	t.Helper()
	if sub == "" {
		return mustReserve(t, s, codeID, customer, "owner-"+customer)
	}
	return reserveOn(t, s, codeID, customer, sub)
}

func getCode(t *testing.T, s *Store, codeID string) *promo.PromoCode {
	t.Helper()
	p, err := s.Get(context.Background(), codeID)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// tally is a code's stock counters.
type tally struct{ stock, reserved, held, uses int64 }

func wantTally(t *testing.T, s *Store, codeID string, want tally) {
	t.Helper()
	p := getCode(t, s, codeID)
	if got := (tally{p.Stock, p.Reserved, p.Held, p.Uses}); got != want {
		t.Fatalf("code counters %+v, want %+v", got, want)
	}
}

// discHolder returns the redemption ID the discount index names ("" if none).
func discHolder(t *testing.T, s *Store, codeID, di string) string {
	t.Helper()
	return s.rdb.HGet(context.Background(), discKey(codeID), di).Val()
}

func ledgerIDs(t *testing.T, s *Store, codeID string) []string {
	t.Helper()
	ids, err := s.rdb.ZRange(context.Background(), ledgerKey(codeID), 0, -1).Result()
	if err != nil {
		t.Fatal(err)
	}
	return ids
}

// setStatus changes the code's status as an admin update does.
func setStatus(t *testing.T, s *Store, codeID string, st promo.Status) {
	t.Helper()
	prev := getCode(t, s, codeID)
	upd := *prev
	upd.Status = st
	if err := s.SaveUpdate(context.Background(), prev, &upd, false); err != nil {
		t.Fatal(err)
	}
}

// withoutRecord drops the ledger records from a snapshot: what is left are
// the counters and indexes.
func withoutRecord(snap map[string]any, codeID string) map[string]any {
	out := map[string]any{}
	for k, v := range snap {
		if k != rdKey(codeID) {
			out[k] = v
		}
	}
	return out
}

// The adapter's apply and Stripe's customer.discount.created race: whichever
// comes first confirms the reservation, the other changes nothing (except
// that the apply fills the effective time only it knows). Stock is taken
// once, by the reservation; no outside line is adopted.
func TestObserveDiscountConfirmsOwnReservation(t *testing.T) {
	cases := []struct {
		name       string
		reserveSub string // "" for a new subscription: unknown until Stripe creates it
		applyFirst bool
	}{
		{"existing subscription, webhook first", "sub_a", false},
		{"existing subscription, apply first", "sub_a", true},
		// The new-subscription race was a real bug: the webhook adopted an
		// outside line beside the reservation and took a second unit.
		{"new subscription, webhook first", "", false},
		{"new subscription, apply first", "", true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			s, ctx := newStore(t), context.Background()
			p := rdCode(t, s, withStock(3))
			r := reserveFor(t, s, p.ID, "cus_a", tc.reserveSub)
			d := disc("di_a", "cus_a", "sub_a", time.Second)
			d.Start = now.Add(-40 * time.Minute) // a Stripe test clock behind the adapter's clock
			c := promo.Confirmation{Subscription: "sub_a", DiscountID: "di_a", EffectiveAt: now.Add(time.Hour), At: d.Start}

			confirmed := *r
			confirmed.State, confirmed.Subscription, confirmed.DiscountID = promo.RedemptionPending, "sub_a", "di_a"
			confirmed.ConfirmedAt, confirmed.LeaseUntil = d.Start, time.Time{}
			confirmed.CreatedAt = d.Start // one clock per line, whichever path confirms
			final := confirmed
			final.EffectiveAt = c.EffectiveAt

			if tc.applyFirst {
				got, _, err := s.Confirm(ctx, p.ID, r.ID, c)
				if err != nil {
					t.Fatal(err)
				}
				wantRD(t, got, &final)
				before := snapshot(t, s, p.ID)
				got, outcome, change := mustObserve(t, s, p.ID, d)
				if outcome != promo.ObservedKnown || change.StripeActiveChanged {
					t.Fatalf("webhook after the apply: outcome %v change %v", outcome, change)
				}
				wantRD(t, got, &final)
				wantUnchanged(t, before, snapshot(t, s, p.ID))
			} else {
				got, outcome, change := mustObserve(t, s, p.ID, d)
				if outcome != promo.ObservedConfirmed {
					t.Fatalf("outcome %v, want ObservedConfirmed", outcome)
				}
				if change.StripeActiveChanged {
					t.Fatal("stock 2 left: no switch")
				}
				wantRD(t, got, &confirmed)
				wantStored(t, s, got)
				wantTally(t, s, p.ID, tally{stock: 2, held: 1})

				// The apply's Confirm comes second: it fills the effective time only.
				before := withoutRecord(snapshot(t, s, p.ID), p.ID)
				got, change, err := s.Confirm(ctx, p.ID, r.ID, c)
				if err != nil || change.StripeActiveChanged {
					t.Fatalf("apply after the webhook: %v %v", change, err)
				}
				wantRD(t, got, &final)
				wantUnchanged(t, before, withoutRecord(snapshot(t, s, p.ID), p.ID))
			}
			wantStored(t, s, &final)
			wantTally(t, s, p.ID, tally{stock: 2, held: 1})
			if ids := ledgerIDs(t, s, p.ID); !slices.Equal(ids, []string{r.ID}) {
				t.Fatalf("ledger %v, want only the reservation %s", ids, r.ID)
			}
			if _, err := s.GetRedemption(ctx, p.ID, d.NewID); !errors.Is(err, promo.ErrNotFound) {
				t.Fatalf("an outside line was adopted beside the reservation: %v", err)
			}
			for what, got := range map[string]string{
				"discount":     discHolder(t, s, p.ID, "di_a"),
				"customer":     custHolder(t, s, p.ID, "cus_a"),
				"subscription": subHolder(t, s, p.ID, "sub_a"),
			} {
				if got != r.ID {
					t.Fatalf("%s index names %q, want %s", what, got, r.ID)
				}
			}
			if live, err := s.SubscriptionRedemption(ctx, p.ID, "sub_a"); err != nil {
				t.Fatal(err)
			} else {
				wantRD(t, live, &final)
			}

			// Redeliveries and repeated applies change nothing more.
			before := snapshot(t, s, p.ID)
			for i := 0; i < 3; i++ {
				got, outcome, change := mustObserve(t, s, p.ID, disc("di_a", "cus_a", "sub_a", time.Duration(i+5)*time.Minute))
				if outcome != promo.ObservedKnown || change.StripeActiveChanged {
					t.Fatalf("redelivery: %v %v", outcome, change)
				}
				wantRD(t, got, &final)
				again, change, err := s.Confirm(ctx, p.ID, r.ID, promo.Confirmation{Subscription: "sub_other", DiscountID: "di_other",
					EffectiveAt: now.Add(48 * time.Hour), At: now.Add(time.Hour)})
				if err != nil || change.StripeActiveChanged {
					t.Fatalf("confirm again: %v %v", change, err)
				}
				wantRD(t, again, &final)
			}
			wantUnchanged(t, before, snapshot(t, s, p.ID))
		})
	}
}

// invoice.paid can arrive before customer.discount.created: it confirms the
// reservation and counts it.
func TestCountInvoiceBeforeObserveConfirmsOwnReservation(t *testing.T) {
	for _, reserveSub := range []string{"sub_a", ""} {
		t.Run("reserved on "+cmp.Or(reserveSub, "a new subscription"), func(t *testing.T) {
			s, ctx := newStore(t), context.Background()
			p := rdCode(t, s, withStock(3))
			r := reserveFor(t, s, p.ID, "cus_a", reserveSub)
			inv := paid("in_1", disc("di_a", "cus_a", "sub_a", 2*time.Second), "eur", 1337)

			got, counted, change := mustCount(t, s, p.ID, inv)
			if !counted || change.StripeActiveChanged {
				t.Fatalf("counted %v change %v", counted, change)
			}
			want := *r
			want.State, want.Subscription, want.DiscountID = promo.RedemptionActive, "sub_a", "di_a"
			want.ConfirmedAt, want.ActivatedAt, want.LeaseUntil = inv.Discount.Start, inv.Discount.At, time.Time{}
			want.Cycles, want.Discounted = 1, map[string]int64{"eur": 1337}
			wantRD(t, got, &want)
			wantStored(t, s, got)
			wantTally(t, s, p.ID, tally{stock: 2, held: 1, uses: 1})
			if amt := getCode(t, s, p.ID).Discounted; !reflect.DeepEqual(amt, map[string]int64{"eur": 1337}) {
				t.Fatalf("code discounted %v", amt)
			}
			if ids := ledgerIDs(t, s, p.ID); !slices.Equal(ids, []string{r.ID}) {
				t.Fatalf("ledger %v", ids)
			}
			if h := subHolder(t, s, p.ID, "sub_a"); h != r.ID {
				t.Fatalf("subscription index names %q", h)
			}

			// The creation event then is known; the apply only fills the effective time.
			before := snapshot(t, s, p.ID)
			again, outcome, change := mustObserve(t, s, p.ID, disc("di_a", "cus_a", "sub_a", time.Second))
			if outcome != promo.ObservedKnown || change.StripeActiveChanged {
				t.Fatalf("observe after count: %v %v", outcome, change)
			}
			wantRD(t, again, &want)
			wantUnchanged(t, before, snapshot(t, s, p.ID))
			conf, _, err := s.Confirm(ctx, p.ID, r.ID, promo.Confirmation{Subscription: "sub_a", DiscountID: "di_a",
				EffectiveAt: now.Add(time.Hour), At: now.Add(3 * time.Second)})
			if err != nil {
				t.Fatal(err)
			}
			want.EffectiveAt = now.Add(time.Hour)
			wantRD(t, conf, &want)
			wantUnchanged(t, withoutRecord(before, p.ID), withoutRecord(snapshot(t, s, p.ID), p.ID))
		})
	}
}

// A discount made outside the adapter (Checkout, the Dashboard) becomes a
// pending line that takes stock; the rules it broke are flagged.
func TestObserveDiscountAdoptsOutsideDiscount(t *testing.T) {
	const expiry = time.Hour
	// startingAt is an event about a discount that started at now+off: a
	// code's expiry is checked against the discount's start.
	startingAt := func(d promo.ObservedDiscount, off time.Duration) promo.ObservedDiscount {
		d.Start = now.Add(off)
		d.NewID = promo.RedemptionIDFor(d.DiscountID, d.Start)
		return d
	}
	cases := []struct {
		name string
		opts []func(*promo.PromoCode)
		// setup runs before the event; it returns the ID of another line
		// holding cus_a's use of the code, if any.
		setup      func(t *testing.T, s *Store, codeID string) string
		d          promo.ObservedDiscount
		wantFlags  []string
		wantHolds  bool
		want       tally
		wantDelta  bool   // the Stripe promotion code's active flag must switch
		otherStays bool   // setup's line keeps cus_a
		flag       string // added with FlagRedemption after the adoption, as the Observer does
	}{
		{name: "stock left", opts: []func(*promo.PromoCode){withStock(3)},
			d: disc("di_x", "cus_a", "sub_x", time.Second), wantHolds: true, want: tally{stock: 2, held: 1}},
		{name: "last unit", opts: []func(*promo.PromoCode){withStock(1)},
			d: disc("di_x", "cus_a", "sub_x", time.Second), wantHolds: true, want: tally{held: 1}, wantDelta: true},
		{name: "customer discount without a subscription", opts: []func(*promo.PromoCode){withStock(3)},
			d: disc("di_x", "cus_a", "", time.Second), wantHolds: true, want: tally{stock: 2, held: 1}},
		{name: "unlimited", opts: []func(*promo.PromoCode){withUnlimited},
			d: disc("di_x", "cus_a", "sub_x", time.Second), want: tally{}},
		{name: "no stock", opts: []func(*promo.PromoCode){withStock(0)},
			d: disc("di_x", "cus_a", "sub_x", time.Second), wantFlags: []string{"stock_exhausted"}, want: tally{}},
		{name: "customer holds a confirmed line", opts: []func(*promo.PromoCode){withStock(3)},
			setup: func(t *testing.T, s *Store, codeID string) string {
				r := reserveOn(t, s, codeID, "cus_a", "sub_1")
				mustConfirm(t, s, codeID, r.ID, "sub_1")
				return r.ID
			},
			d: disc("di_x", "cus_a", "sub_x", time.Second), wantFlags: []string{"customer_already_redeemed"},
			wantHolds: true, want: tally{stock: 1, held: 2}, otherStays: true},
		// The customer's reservation is on another subscription: this
		// discount is not the one it waits for.
		{name: "customer's reservation on another subscription", opts: []func(*promo.PromoCode){withStock(3)},
			setup: func(t *testing.T, s *Store, codeID string) string {
				return reserveOn(t, s, codeID, "cus_a", "sub_1").ID
			},
			d: disc("di_x", "cus_a", "sub_x", time.Second), wantFlags: []string{"customer_already_redeemed"},
			wantHolds: true, want: tally{stock: 1, reserved: 1, held: 2}, otherStays: true},
		{name: "another customer's reservation is left alone", opts: []func(*promo.PromoCode){withStock(3)},
			setup: func(t *testing.T, s *Store, codeID string) string {
				mustReserve(t, s, codeID, "cus_b", "o")
				return ""
			},
			d: disc("di_x", "cus_a", "sub_x", time.Second), wantHolds: true, want: tally{stock: 1, reserved: 1, held: 2}},
		{name: "code inactive", opts: []func(*promo.PromoCode){withStock(3), withStatus(promo.StatusInactive)},
			d: disc("di_x", "cus_a", "sub_x", time.Second), wantFlags: []string{"code_inactive"}, wantHolds: true,
			want: tally{stock: 2, held: 1}},
		{name: "code expires when the discount starts", opts: []func(*promo.PromoCode){withStock(3), expiringAt(now.Add(expiry))},
			d: startingAt(disc("di_x", "cus_a", "sub_x", 3*expiry), expiry), wantFlags: []string{"code_expired"}, wantHolds: true,
			want: tally{stock: 2, held: 1}},
		{name: "code expired before the discount started", opts: []func(*promo.PromoCode){withStock(3), expiringAt(now.Add(expiry))},
			d: startingAt(disc("di_x", "cus_a", "sub_x", 3*expiry), 2*expiry), wantFlags: []string{"code_expired"}, wantHolds: true,
			want: tally{stock: 2, held: 1}},
		{name: "code expires a millisecond after the discount started, before the event", opts: []func(*promo.PromoCode){withStock(3), expiringAt(now.Add(expiry + time.Millisecond))},
			d: startingAt(disc("di_x", "cus_a", "sub_x", 3*expiry), expiry), wantHolds: true, want: tally{stock: 2, held: 1}},
		{name: "subscription carries another code (flagged by the caller)", opts: []func(*promo.PromoCode){withStock(3)},
			d: disc("di_x", "cus_a", "sub_x", time.Second), flag: "subscription_has_promo_code",
			wantFlags: []string{"subscription_has_promo_code"}, wantHolds: true, want: tally{stock: 2, held: 1}},
		{name: "every rule broken", opts: []func(*promo.PromoCode){withStock(1), expiringAt(now.Add(expiry))},
			setup: func(t *testing.T, s *Store, codeID string) string {
				r := reserveOn(t, s, codeID, "cus_a", "sub_1")
				mustConfirm(t, s, codeID, r.ID, "sub_1")
				setStatus(t, s, codeID, promo.StatusInactive)
				return r.ID
			},
			d: startingAt(disc("di_x", "cus_a", "sub_x", expiry), expiry), flag: "subscription_has_promo_code",
			wantFlags: []string{"code_expired", "code_inactive", "customer_already_redeemed", "stock_exhausted", "subscription_has_promo_code"},
			want:      tally{held: 1}, otherStays: true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			s, ctx := newStore(t), context.Background()
			p := rdCode(t, s, tc.opts...)
			other := ""
			if tc.setup != nil {
				other = tc.setup(t, s, p.ID)
			}
			otherBefore := ""
			if other != "" {
				raw, _ := s.rdb.HGet(ctx, rdKey(p.ID), other).Result()
				otherBefore = raw
			}
			var got *promo.Redemption
			var outcome promo.ObserveOutcome
			changed, _ := stripeTransition(t, s, p.ID, func() promo.StockChange {
				r, o, ch := mustObserve(t, s, p.ID, tc.d)
				got, outcome = r, o
				return ch
			})
			if outcome != promo.ObservedAdopted {
				t.Fatalf("outcome %v, want ObservedAdopted", outcome)
			}
			if tc.flag != "" {
				flagged, err := s.FlagRedemption(ctx, p.ID, got.ID, tc.flag)
				if err != nil {
					t.Fatal(err)
				}
				if again, err := s.FlagRedemption(ctx, p.ID, got.ID, tc.flag); err != nil || len(again.Flags) != len(flagged.Flags) {
					t.Fatalf("a flag added twice: %v %v", again.Flags, err)
				}
				got = flagged
			}
			if changed != tc.wantDelta {
				t.Fatalf("StripeActiveChanged %v, want %v", changed, tc.wantDelta)
			}
			want := &promo.Redemption{ID: tc.d.NewID, PromoCodeID: p.ID, Customer: "cus_a", Subscription: tc.d.Subscription,
				DiscountID: "di_x", Source: promo.SourceStripe, State: promo.RedemptionPending,
				CreatedAt: tc.d.Start, ConfirmedAt: tc.d.Start, EffectiveAt: tc.d.Start, HoldsStock: tc.wantHolds, Flags: tc.wantFlags}
			wantRD(t, got, want)
			wantStored(t, s, got)
			wantTally(t, s, p.ID, tc.want)
			if !slices.Contains(ledgerIDs(t, s, p.ID), tc.d.NewID) {
				t.Fatal("not in the ledger")
			}
			if h := discHolder(t, s, p.ID, "di_x"); h != tc.d.NewID {
				t.Fatalf("discount index names %q", h)
			}
			wantHolder := tc.d.NewID
			if tc.otherStays {
				wantHolder = other
			}
			if h := custHolder(t, s, p.ID, "cus_a"); h != wantHolder {
				t.Fatalf("cus_a held by %q, want %q", h, wantHolder)
			}
			if other != "" {
				// The other line is untouched: not confirmed by this discount.
				if raw := s.rdb.HGet(ctx, rdKey(p.ID), other).Val(); raw != otherBefore {
					t.Fatalf("the other line changed:\n%s\n%s", otherBefore, raw)
				}
			}
			if tc.d.Subscription != "" {
				live, err := s.SubscriptionRedemption(ctx, p.ID, tc.d.Subscription)
				if err != nil {
					t.Fatal(err)
				}
				wantRD(t, live, want)
			} else if s.rdb.HExists(ctx, subsKey(p.ID), "").Val() {
				t.Fatal("the empty subscription was indexed")
			}

			// Seen again: known, nothing changes.
			before := snapshot(t, s, p.ID)
			for i := 0; i < 3; i++ {
				again, outcome, change := mustObserve(t, s, p.ID, tc.d)
				if outcome != promo.ObservedKnown || change.StripeActiveChanged {
					t.Fatalf("again: %v %v", outcome, change)
				}
				wantRD(t, again, want)
			}
			wantUnchanged(t, before, snapshot(t, s, p.ID))
		})
	}
}

// Every script applied again (with a redelivery's payload, which may differ)
// changes nothing more and reports that it did nothing.
func TestReconcileScriptsAreIdempotent(t *testing.T) {
	d := disc("di_a", "cus_a", "sub_a", time.Second)
	observe := func(t *testing.T, s *Store, codeID string, i int) (*promo.Redemption, promo.StockChange, string) {
		r, outcome, ch := mustObserve(t, s, codeID, disc("di_a", "cus_a", "sub_a", time.Duration(i+1)*time.Second))
		return r, ch, []string{"known", "confirmed", "adopted"}[outcome]
	}
	count := func(id string) func(t *testing.T, s *Store, codeID string, i int) (*promo.Redemption, promo.StockChange, string) {
		return func(t *testing.T, s *Store, codeID string, i int) (*promo.Redemption, promo.StockChange, string) {
			// A redelivery may carry other values; the invoice ID decides.
			inv := paid(id, disc("di_a", "cus_a", "sub_a", time.Duration(i+2)*time.Second), []string{"eur", "usd"}[i%2], 1337+int64(i))
			r, counted, ch := mustCount(t, s, codeID, inv)
			if counted {
				return r, ch, "counted"
			}
			return r, ch, "duplicate"
		}
	}
	end := func(t *testing.T, s *Store, codeID string, i int) (*promo.Redemption, promo.StockChange, string) {
		reason := []string{promo.ReasonDeleted, promo.ReasonReplaced, promo.ReasonDuration}[i%3]
		e := disc("di_a", "cus_a", "sub_a", time.Duration(i+10)*time.Minute)
		e.Once = i%2 == 1
		r, ch := mustEnd(t, s, codeID, e, reason)
		return r, ch, string(r.State)
	}
	type step func(t *testing.T, s *Store, codeID string, i int) (*promo.Redemption, promo.StockChange, string)
	cases := []struct {
		name         string
		setup        func(t *testing.T, s *Store, codeID string)
		apply        step
		first, again string
	}{
		{"observe: adopt", nil, observe, "adopted", "known"},
		{"observe: confirm a reservation", func(t *testing.T, s *Store, codeID string) {
			reserveOn(t, s, codeID, "cus_a", "sub_a")
		}, observe, "confirmed", "known"},
		{"observe: a new subscription's reservation", func(t *testing.T, s *Store, codeID string) {
			mustReserve(t, s, codeID, "cus_a", "o")
		}, observe, "confirmed", "known"},
		{"count: adopts", nil, count("in_1"), "counted", "duplicate"},
		{"count: confirms a reservation", func(t *testing.T, s *Store, codeID string) {
			mustReserve(t, s, codeID, "cus_a", "o")
		}, count("in_1"), "counted", "duplicate"},
		{"count: activates a pending line", func(t *testing.T, s *Store, codeID string) {
			mustObserve(t, s, codeID, d)
		}, count("in_1"), "counted", "duplicate"},
		{"count: second invoice", func(t *testing.T, s *Store, codeID string) {
			mustObserve(t, s, codeID, d)
			mustCount(t, s, codeID, paid("in_1", d, "eur", 500))
		}, count("in_2"), "counted", "duplicate"},
		{"count: ended before its first invoice", func(t *testing.T, s *Store, codeID string) {
			mustObserve(t, s, codeID, d)
			mustEnd(t, s, codeID, d, promo.ReasonDeleted)
		}, count("in_1"), "counted", "duplicate"},
		{"end: pending", func(t *testing.T, s *Store, codeID string) {
			mustObserve(t, s, codeID, d)
		}, end, "ended", "ended"},
		{"end: active", func(t *testing.T, s *Store, codeID string) {
			mustObserve(t, s, codeID, d)
			mustCount(t, s, codeID, paid("in_1", d, "eur", 500))
		}, end, "ended", "ended"},
		{"end: unknown discount (tombstone)", nil, end, "ended", "ended"},
		{"end: the adapter's reservation", func(t *testing.T, s *Store, codeID string) {
			reserveOn(t, s, codeID, "cus_a", "sub_a")
		}, end, "ended", "ended"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			s, ctx := newStore(t), context.Background()
			p := rdCode(t, s, withStock(3))
			if tc.setup != nil {
				tc.setup(t, s, p.ID)
			}
			first, _, outcome := tc.apply(t, s, p.ID, 0)
			if outcome != tc.first {
				t.Fatalf("first: %s, want %s", outcome, tc.first)
			}
			stored := wantStored(t, s, first)
			before := snapshot(t, s, p.ID)
			for i := 1; i <= 5; i++ {
				got, change, outcome := tc.apply(t, s, p.ID, i)
				if outcome != tc.again || change.StripeActiveChanged {
					t.Fatalf("repeat %d: %s %v, want %s and no switch", i, outcome, change, tc.again)
				}
				wantRD(t, got, stored)
				wantUnchanged(t, before, snapshot(t, s, p.ID))
			}
			if n := s.rdb.HLen(ctx, rdKey(p.ID)).Val(); n != 1 {
				t.Fatalf("%d ledger records, want 1", n)
			}
		})
	}
}

// permutations returns every order of 0..n-1.
func permutations(n int) [][]int {
	if n == 0 {
		return [][]int{{}}
	}
	var out [][]int
	for _, p := range permutations(n - 1) {
		for i := 0; i <= len(p); i++ {
			q := slices.Insert(slices.Clone(p), i, n-1)
			out = append(out, q)
		}
	}
	return out
}

// One redemption's events {discount.created, invoice.paid ×3,
// discount.deleted (duration over)} applied in every order, some with
// redeliveries, give the same ledger line, counters and indexes.
func TestReconcileEventOrderIndependence(t *testing.T) {
	const cur = "eur"
	created := disc("di_a", "cus_a", "sub_a", time.Minute)
	invoices := []promo.PaidInvoice{
		paid("in_1", disc("di_a", "cus_a", "sub_a", 2*time.Minute), cur, 1337),
		paid("in_2", disc("di_a", "cus_a", "sub_a", 3*time.Minute), cur, 2999),
		paid("in_3", disc("di_a", "cus_a", "sub_a", 4*time.Minute), cur, 41),
	}
	const sum = 1337 + 2999 + 41
	deleted := disc("di_a", "cus_a", "sub_a", 5*time.Minute)
	events := []struct {
		name  string
		apply func(t *testing.T, s *Store, codeID string) promo.StockChange
	}{
		{"C", func(t *testing.T, s *Store, codeID string) promo.StockChange {
			_, _, ch := mustObserve(t, s, codeID, created)
			return ch
		}},
		{"I1", func(t *testing.T, s *Store, codeID string) promo.StockChange {
			_, _, ch := mustCount(t, s, codeID, invoices[0])
			return ch
		}},
		{"I2", func(t *testing.T, s *Store, codeID string) promo.StockChange {
			_, _, ch := mustCount(t, s, codeID, invoices[1])
			return ch
		}},
		{"I3", func(t *testing.T, s *Store, codeID string) promo.StockChange {
			_, _, ch := mustCount(t, s, codeID, invoices[2])
			return ch
		}},
		{"E", func(t *testing.T, s *Store, codeID string) promo.StockChange {
			_, ch := mustEnd(t, s, codeID, deleted, promo.ReasonDuration)
			return ch
		}},
	}

	variants := []struct {
		name string
		opts []func(*promo.PromoCode)
		// setup runs before the events: it returns the adapter's own
		// reservation the events are about (nil for an outside discount)
		// and the ID of another line holding cus_a, if any.
		setup     func(t *testing.T, s *Store, codeID string) (own *promo.Redemption, other string)
		wantFlags []string
		wantHolds bool
		want      tally
	}{
		{name: "outside discount", opts: []func(*promo.PromoCode){withStock(3)},
			wantHolds: true, want: tally{stock: 2, held: 1, uses: 1}},
		{name: "outside discount, no stock", opts: []func(*promo.PromoCode){withStock(0)},
			wantFlags: []string{"stock_exhausted"}, want: tally{uses: 1}},
		{name: "outside discount, customer holds another line", opts: []func(*promo.PromoCode){withStock(3)},
			setup: func(t *testing.T, s *Store, codeID string) (*promo.Redemption, string) {
				r := reserveOn(t, s, codeID, "cus_a", "sub_other")
				mustConfirm(t, s, codeID, r.ID, "sub_other")
				return nil, r.ID
			},
			wantFlags: []string{"customer_already_redeemed"}, wantHolds: true, want: tally{stock: 1, held: 2, uses: 1}},
		{name: "own reservation on the subscription", opts: []func(*promo.PromoCode){withStock(3)},
			setup: func(t *testing.T, s *Store, codeID string) (*promo.Redemption, string) {
				return reserveOn(t, s, codeID, "cus_a", "sub_a"), ""
			},
			wantHolds: true, want: tally{stock: 2, held: 1, uses: 1}},
		{name: "own reservation for a new subscription", opts: []func(*promo.PromoCode){withStock(3)},
			setup: func(t *testing.T, s *Store, codeID string) (*promo.Redemption, string) {
				return mustReserve(t, s, codeID, "cus_a", "owner-a"), ""
			},
			wantHolds: true, want: tally{stock: 2, held: 1, uses: 1}},
	}

	perms := permutations(len(events))
	if len(perms) != 120 {
		t.Fatalf("%d permutations", len(perms))
	}
	s, ctx := newStore(t), context.Background()
	for _, v := range variants {
		t.Run(v.name, func(t *testing.T) {
			for pi, perm := range perms {
				order := slices.Clone(perm)
				if pi%8 == 0 {
					// Redeliveries: three events again, anywhere.
					rng := rand.New(rand.NewPCG(uint64(pi), 42))
					for range 3 {
						order = slices.Insert(order, rng.IntN(len(order)+1), rng.IntN(len(events)))
					}
				}
				var names []string
				for _, e := range order {
					names = append(names, events[e].name)
				}
				t.Run(strings.Join(names, ","), func(t *testing.T) {
					p := rdCode(t, s, v.opts...)
					var own *promo.Redemption
					other := ""
					if v.setup != nil {
						own, other = v.setup(t, s, p.ID)
					}
					start := getCode(t, s, p.ID)
					limit := start.Stock + start.Held
					for _, e := range order {
						stripeTransition(t, s, p.ID, func() promo.StockChange { return events[e].apply(t, s, p.ID) })
					}

					want := promo.Redemption{ID: created.NewID, PromoCodeID: p.ID, Source: promo.SourceStripe}
					if own != nil {
						want = *own
						want.LeaseUntil = time.Time{}
					}
					want.Customer, want.Subscription, want.DiscountID = "cus_a", "sub_a", "di_a"
					want.State, want.EndedAt, want.EndReason = promo.RedemptionEnded, deleted.At, promo.ReasonDuration
					want.EndedInStripe = true
					want.Cycles, want.Discounted = 3, map[string]int64{cur: sum}
					want.HoldsStock, want.Flags = v.wantHolds, v.wantFlags

					got, err := s.GetRedemption(ctx, p.ID, want.ID)
					if err != nil {
						t.Fatalf("line %s: %v", want.ID, err)
					}
					// Every time is Stripe's, whatever the order: the
					// discount's start, the earliest paid invoice.
					want.ConfirmedAt, want.ActivatedAt = now, invoices[0].Discount.At
					if own == nil {
						want.CreatedAt, want.EffectiveAt = now, now
					}
					wantRD(t, got, &want)

					wantTally(t, s, p.ID, v.want)
					code := getCode(t, s, p.ID)
					if code.Stock+code.Held != limit {
						t.Fatalf("stock %d + held %d, want the limit %d", code.Stock, code.Held, limit)
					}
					if !reflect.DeepEqual(code.Discounted, map[string]int64{cur: sum}) {
						t.Fatalf("code discounted %v, want %s %d", code.Discounted, cur, sum)
					}
					wantLines := []string{want.ID}
					holder := want.ID
					if other != "" {
						wantLines, holder = append(wantLines, other), other
					}
					slices.Sort(wantLines)
					if ids := ledgerIDs(t, s, p.ID); !slices.Equal(ids, wantLines) {
						t.Fatalf("ledger %v, want %v", ids, wantLines)
					}
					if n := s.rdb.HLen(ctx, rdKey(p.ID)).Val(); n != int64(len(wantLines)) {
						t.Fatalf("%d records, want %d", n, len(wantLines))
					}
					if h := discHolder(t, s, p.ID, "di_a"); h != want.ID {
						t.Fatalf("discount index names %q, want %s", h, want.ID)
					}
					if h := custHolder(t, s, p.ID, "cus_a"); h != holder {
						t.Fatalf("cus_a held by %q, want %s", h, holder)
					}
					if _, err := s.SubscriptionRedemption(ctx, p.ID, "sub_a"); !errors.Is(err, promo.ErrNotFound) {
						t.Fatalf("ended line still live on sub_a: %v", err)
					}
					for _, inv := range invoices {
						ttl := s.rdb.PTTL(ctx, invKey(p.ID, inv.InvoiceID)).Val()
						if ttl <= 0 || ttl > InvoiceKeep {
							t.Fatalf("invoice %s: counted mark kept %v, want up to %v", inv.InvoiceID, ttl, InvoiceKeep)
						}
					}
				})
			}
		})
	}
}

// A line that ended before its first paid invoice was seen was used after
// all when that invoice arrives: it takes its unit back (or is flagged when
// none is left), holds the customer again and counts as a use.
func TestCountInvoiceAfterEndCountsTheLineAsUsed(t *testing.T) {
	d := disc("di_a", "cus_a", "sub_a", time.Second)
	cases := []struct {
		name  string
		stock int64
		own   bool // the adapter's reservation, confirmed by the webhook
		// between runs after the end; it returns the ID of a line it made.
		between       func(t *testing.T, s *Store, codeID string) string
		wantFlags     []string
		wantHolds     bool
		want          tally
		wantHolder    string // "line" or "between"
		wantSwitchEnd bool   // the end switches the Stripe promotion code
		wantSwitch    bool   // the count does
	}{
		{name: "outside line, stock left", stock: 2, wantHolds: true, want: tally{stock: 1, held: 1, uses: 1}, wantHolder: "line"},
		{name: "outside line, the last unit", stock: 1, wantHolds: true, want: tally{held: 1, uses: 1}, wantHolder: "line",
			wantSwitchEnd: true, wantSwitch: true},
		{name: "own line, stock left", stock: 2, own: true, wantHolds: true, want: tally{stock: 1, held: 1, uses: 1}, wantHolder: "line"},
		{name: "the unit was taken meanwhile", stock: 1,
			between: func(t *testing.T, s *Store, codeID string) string {
				return mustReserve(t, s, codeID, "cus_b", "o").ID
			},
			wantFlags: []string{"stock_exhausted"}, want: tally{reserved: 1, held: 1, uses: 1}, wantHolder: "line", wantSwitchEnd: true},
		{name: "the customer reserved again meanwhile", stock: 3, own: true,
			between: func(t *testing.T, s *Store, codeID string) string {
				return mustReserve(t, s, codeID, "cus_a", "owner-again").ID
			},
			wantFlags: []string{"customer_already_redeemed"}, wantHolds: true, want: tally{stock: 1, reserved: 1, held: 2, uses: 1},
			wantHolder: "between"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			s := newStore(t)
			p := rdCode(t, s, withStock(tc.stock))
			var line *promo.Redemption
			if tc.own {
				r := reserveOn(t, s, p.ID, "cus_a", "sub_a")
				line, _, _ = mustObserve(t, s, p.ID, d)
				if line.ID != r.ID {
					t.Fatalf("observe did not confirm the reservation: %+v", line)
				}
			} else {
				line, _, _ = mustObserve(t, s, p.ID, d)
			}
			e := disc("di_a", "cus_a", "sub_a", time.Minute)
			var ended *promo.Redemption
			changed, _ := stripeTransition(t, s, p.ID, func() promo.StockChange {
				var ch promo.StockChange
				ended, ch = mustEnd(t, s, p.ID, e, promo.ReasonDeleted)
				return ch
			})
			if changed != tc.wantSwitchEnd {
				t.Fatalf("end: StripeActiveChanged %v, want %v", changed, tc.wantSwitchEnd)
			}
			wantE := *line
			wantE.State, wantE.EndedAt, wantE.EndReason, wantE.EndedInStripe = promo.RedemptionEnded, e.At, promo.ReasonDeleted, true
			wantE.HoldsStock, wantE.StockReturned = false, true
			wantRD(t, ended, &wantE)
			wantTally(t, s, p.ID, tally{stock: tc.stock})
			if h := custHolder(t, s, p.ID, "cus_a"); h != "" {
				t.Fatalf("the customer is still held by %q", h)
			}
			names := map[string]string{"line": line.ID}
			if tc.between != nil {
				names["between"] = tc.between(t, s, p.ID)
			}

			inv := paid("in_1", disc("di_a", "cus_a", "sub_a", 2*time.Minute), "eur", 1999)
			var got *promo.Redemption
			var counted bool
			changed, _ = stripeTransition(t, s, p.ID, func() promo.StockChange {
				var ch promo.StockChange
				got, counted, ch = mustCount(t, s, p.ID, inv)
				return ch
			})
			if !counted || changed != tc.wantSwitch {
				t.Fatalf("count: counted %v StripeActiveChanged %v, want true %v", counted, changed, tc.wantSwitch)
			}
			want := wantE
			want.ActivatedAt, want.Cycles, want.Discounted = inv.Discount.At, 1, map[string]int64{"eur": 1999}
			want.HoldsStock, want.StockReturned, want.Flags = tc.wantHolds, false, tc.wantFlags
			wantRD(t, got, &want)
			wantStored(t, s, got)
			wantTally(t, s, p.ID, tc.want)
			if h := custHolder(t, s, p.ID, "cus_a"); h != names[tc.wantHolder] {
				t.Fatalf("cus_a held by %q, want %s (%s)", h, tc.wantHolder, names[tc.wantHolder])
			}
		})
	}
}

// An unknown discount seen ending is recorded as ended, so its late
// creation event is ignored and takes no stock.
func TestEndDiscountTombstone(t *testing.T) {
	s, ctx := newStore(t), context.Background()
	p := rdCode(t, s, withStock(1))
	e := disc("di_z", "cus_z", "sub_z", time.Minute)
	e.Once = true
	before := snapshot(t, s, p.ID)
	got, change := mustEnd(t, s, p.ID, e, promo.ReasonDeleted)
	if change.StripeActiveChanged {
		t.Fatal("a tombstone switched the Stripe promotion code")
	}
	want := &promo.Redemption{ID: e.NewID, PromoCodeID: p.ID, Customer: "cus_z", Subscription: "sub_z", DiscountID: "di_z",
		Source: promo.SourceStripe, State: promo.RedemptionEnded, CreatedAt: e.Start, ConfirmedAt: e.Start, EffectiveAt: e.Start,
		EndedAt: e.At, EndedInStripe: true, EndReason: promo.ReasonDeleted, StockReturned: true}
	wantRD(t, got, want)
	wantStored(t, s, got)
	wantTally(t, s, p.ID, tally{stock: 1})
	if ids := ledgerIDs(t, s, p.ID); !slices.Equal(ids, []string{e.NewID}) {
		t.Fatalf("ledger %v", ids)
	}
	if h := discHolder(t, s, p.ID, "di_z"); h != e.NewID {
		t.Fatalf("discount index names %q", h)
	}
	if h := custHolder(t, s, p.ID, "cus_z"); h != "" {
		t.Fatalf("a tombstone holds the customer: %q", h)
	}
	if _, err := s.SubscriptionRedemption(ctx, p.ID, "sub_z"); !errors.Is(err, promo.ErrNotFound) {
		t.Fatalf("a tombstone is live on its subscription: %v", err)
	}
	// Seen ending first, it is adopted and ended at once: a unit taken and
	// given back (held 0), as had its start been seen first.
	if after := snapshot(t, s, p.ID); !reflect.DeepEqual(withoutZeroHeld(after[codeKey(p.ID)]), before[codeKey(p.ID)]) {
		t.Fatalf("a tombstone changed the code's counters:\n%v\n%v", before[codeKey(p.ID)], after[codeKey(p.ID)])
	}

	// The late creation event (with its own time) is known: no stock taken.
	after := snapshot(t, s, p.ID)
	for _, off := range []time.Duration{0, time.Second, time.Hour} {
		r, outcome, change := mustObserve(t, s, p.ID, disc("di_z", "cus_z", "sub_z", off))
		if outcome != promo.ObservedKnown || change.StripeActiveChanged {
			t.Fatalf("late creation: %v %v", outcome, change)
		}
		wantRD(t, r, want)
		// Ending it again no earlier (the earliest Stripe end stands).
		r, change = mustEnd(t, s, p.ID, disc("di_z", "cus_z", "sub_z", time.Minute+off), promo.ReasonDeleted)
		if change.StripeActiveChanged {
			t.Fatal("ending a tombstone again switched")
		}
		wantRD(t, r, want)
	}
	wantUnchanged(t, after, snapshot(t, s, p.ID))
	// The customer may still redeem the code.
	mustReserve(t, s, p.ID, "cus_z", "o")
}

// A coupon lasting one invoice whose discount is deleted after a counted
// invoice ended because its duration was over.
func TestEndDiscountOnceCoupon(t *testing.T) {
	cases := []struct {
		name     string
		once     bool
		invoices int
		observed bool // false: the discount was never seen (tombstone)
		want     string
	}{
		{"once, after a counted invoice", true, 1, true, promo.ReasonDuration},
		{"once, before any invoice", true, 0, true, promo.ReasonDeleted},
		{"once, never seen", true, 0, false, promo.ReasonDeleted},
		{"forever, after a counted invoice", false, 1, true, promo.ReasonDeleted},
		{"forever, after two invoices", false, 2, true, promo.ReasonDeleted},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			s := newStore(t)
			p := rdCode(t, s)
			d := disc("di_a", "cus_a", "sub_a", time.Second)
			if tc.observed {
				mustObserve(t, s, p.ID, d)
			}
			for i := range tc.invoices {
				mustCount(t, s, p.ID, paid(fmt.Sprintf("in_%d", i), d, "usd", 550))
			}
			e := disc("di_a", "cus_a", "sub_a", time.Hour)
			e.Once = tc.once
			got, _ := mustEnd(t, s, p.ID, e, promo.ReasonDeleted)
			if got.State != promo.RedemptionEnded || got.EndReason != tc.want {
				t.Fatalf("ended %s with reason %q, want %q", got.State, got.EndReason, tc.want)
			}
			wantStored(t, s, got)
		})
	}
}

// The adapter's reservation whose discount is deleted before the apply's
// Confirm (or customer.discount.created) is seen: Stripe had the discount,
// so the line ended (it was not released), and the apply's late Confirm
// must not reopen it.
func TestEndDiscountBeforeConfirmEndsTheReservation(t *testing.T) {
	for _, reserveSub := range []string{"sub_a", ""} {
		t.Run("reserved on "+cmp.Or(reserveSub, "a new subscription"), func(t *testing.T) {
			s, ctx := newStore(t), context.Background()
			p := rdCode(t, s, withStock(3))
			r := reserveFor(t, s, p.ID, "cus_a", reserveSub)
			e := disc("di_a", "cus_a", "sub_a", time.Second)
			got, change := mustEnd(t, s, p.ID, e, promo.ReasonDeleted)
			if change.StripeActiveChanged {
				t.Fatal("switch with stock left")
			}
			want := *r
			want.State, want.Subscription, want.DiscountID = promo.RedemptionEnded, "sub_a", "di_a"
			want.ConfirmedAt, want.EndedAt, want.EndReason, want.LeaseUntil = e.Start, e.At, promo.ReasonDeleted, time.Time{}
			want.EndedInStripe = true
			want.HoldsStock, want.StockReturned = false, true
			wantRD(t, got, &want)
			wantStored(t, s, got)
			wantTally(t, s, p.ID, tally{stock: 3})
			if h := custHolder(t, s, p.ID, "cus_a"); h != "" {
				t.Fatalf("customer still held by %q", h)
			}
			if h := subHolder(t, s, p.ID, "sub_a"); h != "" {
				t.Fatalf("subscription index still names %q", h)
			}
			if h := discHolder(t, s, p.ID, "di_a"); h != r.ID {
				t.Fatalf("discount index names %q", h)
			}

			// The apply's Confirm lands late: the discount it reports is gone.
			before := snapshot(t, s, p.ID)
			late, change, err := s.Confirm(ctx, p.ID, r.ID, promo.Confirmation{Subscription: "sub_a", DiscountID: "di_a",
				EffectiveAt: now.Add(time.Hour), At: now.Add(2 * time.Second)})
			if err != nil || change.StripeActiveChanged {
				t.Fatalf("late confirm: %v %v", change, err)
			}
			wantRD(t, late, &want)
			wantUnchanged(t, before, snapshot(t, s, p.ID))
			// The creation event arriving last is known.
			if _, outcome, _ := mustObserve(t, s, p.ID, disc("di_a", "cus_a", "sub_a", 0)); outcome != promo.ObservedKnown {
				t.Fatalf("late creation: %v", outcome)
			}
			wantUnchanged(t, before, snapshot(t, s, p.ID))
		})
	}
}

// StripeActiveChanged reports exactly the crossings of WantStripeActive the
// observe scripts cause (stripeTransition checks each step against
// the code read back).
func TestReconcileStripeActiveChanged(t *testing.T) {
	type step struct {
		name        string
		run         func(t *testing.T, s *Store, codeID string) promo.StockChange
		wantChanged bool
		wantActive  bool
	}
	observe := func(name string, d promo.ObservedDiscount, changed, active bool) step {
		return step{name, func(t *testing.T, s *Store, codeID string) promo.StockChange {
			_, _, ch := mustObserve(t, s, codeID, d)
			return ch
		}, changed, active}
	}
	end := func(name string, d promo.ObservedDiscount, changed, active bool) step {
		return step{name, func(t *testing.T, s *Store, codeID string) promo.StockChange {
			_, ch := mustEnd(t, s, codeID, d, promo.ReasonDeleted)
			return ch
		}, changed, active}
	}
	count := func(name string, inv promo.PaidInvoice, changed, active bool) step {
		return step{name, func(t *testing.T, s *Store, codeID string) promo.StockChange {
			_, _, ch := mustCount(t, s, codeID, inv)
			return ch
		}, changed, active}
	}
	reserve := func(name, customer, sub string) step {
		return step{name, func(t *testing.T, s *Store, codeID string) promo.StockChange {
			reserveFor(t, s, codeID, customer, sub)
			return promo.StockChange{}
		}, false, true}
	}
	da := disc("di_a", "cus_a", "sub_a", time.Second)
	db := disc("di_b", "cus_b", "sub_b", time.Second)
	cases := []struct {
		name  string
		opts  []func(*promo.PromoCode)
		steps []step
	}{
		{"outside line takes and gives the last unit", []func(*promo.PromoCode){withStock(1)}, []step{
			observe("adopt the last unit", da, true, false),
			observe("seen again", da, false, false),
			count("first invoice", paid("in_1", da, "usd", 550), false, false),
			count("first invoice again", paid("in_1", da, "usd", 550), false, false),
			end("end an active line: the unit stays held", da, false, false),
			end("tombstone", db, false, false),
		}},
		{"pending line ends, then its invoice takes the unit back", []func(*promo.PromoCode){withStock(1)}, []step{
			observe("adopt the last unit", da, true, false),
			end("end before any invoice: unit back", da, true, true),
			end("end again", da, false, true),
			count("its invoice arrives: unit taken again", paid("in_1", da, "usd", 550), true, false),
			count("second invoice", paid("in_2", da, "usd", 550), false, false),
		}},
		{"adopt by invoice", []func(*promo.PromoCode){withStock(1)}, []step{
			count("invoice of an unknown discount adopts the last unit", paid("in_1", da, "usd", 550), true, false),
		}},
		{"stock left", []func(*promo.PromoCode){withStock(2)}, []step{
			observe("adopt", da, false, true),
			observe("adopt the last unit", db, true, false),
			end("end b", db, true, true),
		}},
		{"no stock: already off", []func(*promo.PromoCode){withStock(0)}, []step{
			observe("adopt (flagged)", da, false, false),
			end("end", da, false, false),
			count("invoice after the end", paid("in_1", da, "usd", 550), false, false),
		}},
		{"webhook confirms the reservation of the last unit", []func(*promo.PromoCode){withStock(1)}, []step{
			reserve("reserve on sub_a", "cus_a", "sub_a"),
			observe("confirm: reserved 1 → 0 at stock 0", da, true, false),
		}},
		{"invoice confirms a new subscription's reservation of the last unit", []func(*promo.PromoCode){withStock(1)}, []step{
			reserve("reserve for a new subscription", "cus_a", ""),
			count("invoice confirms it", paid("in_1", da, "usd", 550), true, false),
		}},
		{"a reservation in flight keeps the code on", []func(*promo.PromoCode){withStock(2)}, []step{
			reserve("reserve a", "cus_a", "sub_a"),
			reserve("reserve b", "cus_b", "sub_b"),
			observe("confirm a", da, false, true),
			count("confirm b by its invoice", paid("in_b", db, "usd", 550), true, false),
		}},
		{"reservation ended by Stripe before its confirmation", []func(*promo.PromoCode){withStock(1)}, []step{
			reserve("reserve the last unit", "cus_a", "sub_a"),
			end("discount deleted: unit back, no reservation", da, false, true),
		}},
		{"unlimited never switches", []func(*promo.PromoCode){withUnlimited}, []step{
			observe("adopt", da, false, true),
			count("invoice", paid("in_1", da, "usd", 550), false, true),
			end("end", da, false, true),
			end("tombstone", db, false, true),
		}},
		{"inactive code is off either way", []func(*promo.PromoCode){withStock(1), withStatus(promo.StatusInactive)}, []step{
			observe("adopt the last unit", da, false, false),
			end("end: unit back", da, false, false),
			count("invoice: unit taken again", paid("in_1", da, "usd", 550), false, false),
		}},
	}
	s := newStore(t)
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			p := rdCode(t, s, tc.opts...)
			for _, st := range tc.steps {
				changed, active := stripeTransition(t, s, p.ID, func() promo.StockChange { return st.run(t, s, p.ID) })
				if changed != st.wantChanged || active != st.wantActive {
					t.Fatalf("%s: changed %v active %v, want %v %v", st.name, changed, active, st.wantChanged, st.wantActive)
				}
			}
		})
	}
}

func TestCouponTimesRedeemedKeepsTheMaximum(t *testing.T) {
	s, ctx := newStore(t), context.Background()
	p := rdCode(t, s)
	for i, step := range []struct{ n, want int64 }{{5, 5}, {3, 5}, {5, 5}, {0, 5}, {7, 7}, {6, 7}} {
		d := disc(fmt.Sprintf("di_tr%d", i), fmt.Sprintf("cus_tr%d", i), "", time.Second)
		d.CouponTimesRedeemed = step.n
		mustObserve(t, s, p.ID, d)
		if got := getCode(t, s, p.ID).Stripe.TimesRedeemed; got != step.want {
			t.Fatalf("after %d: times redeemed %d, want %d", step.n, got, step.want)
		}
	}
	// An unknown code is not found and gets no hash.
	d := disc("di_unknown", "cus_x", "", time.Second)
	d.CouponTimesRedeemed = 9
	if _, _, _, err := s.ObserveDiscount(ctx, "pc_nosuch", d); !errors.Is(err, promo.ErrNotFound) {
		t.Fatalf("unknown code: %v, want ErrNotFound", err)
	}
	if _, err := s.CountInvoice(ctx, "pc_nosuch", promo.PaidInvoice{InvoiceID: "in_x", Discount: d, Currency: "usd", Amount: 1}); !errors.Is(err, promo.ErrNotFound) {
		t.Fatalf("unknown code: %v, want ErrNotFound", err)
	}
	for _, k := range redemptionKeys("pc_nosuch") {
		if n := s.rdb.Exists(ctx, k).Val(); n != 0 {
			t.Fatalf("%s was created for an unknown code", k)
		}
	}
}

func TestFlagRedemption(t *testing.T) {
	s, ctx := newStore(t), context.Background()
	p := rdCode(t, s)
	if _, err := s.FlagRedemption(ctx, p.ID, "rd_nosuch", "x"); !errors.Is(err, promo.ErrNotFound) {
		t.Fatalf("unknown line: %v", err)
	}
}

func TestMarkCustomerPaid(t *testing.T) {
	s, ctx := newStore(t), context.Background()
	wall := time.Now()
	later, sooner := wall.Add(48*time.Hour), wall.Add(24*time.Hour)
	for i := 0; i < 2; i++ { // twice: still paid
		if err := s.MarkCustomerPaid(ctx, "cus_a", later); err != nil {
			t.Fatal(err)
		}
		if paid, err := s.CustomerHasPaid(ctx, "cus_a"); err != nil || !paid {
			t.Fatalf("marked customer: %v %v", paid, err)
		}
	}
	// An older invoice seen later does not shorten the mark: the latest
	// paid invoice decides, whatever the order.
	if err := s.MarkCustomerPaid(ctx, "cus_a", sooner); err != nil {
		t.Fatal(err)
	}
	if at := s.rdb.PExpireTime(ctx, paidKey("cus_a")).Val(); at != time.Duration(later.UnixMilli())*time.Millisecond {
		t.Fatalf("mark expires at %v, want the later %v", at, later.UnixMilli())
	}
	// A mark already over writes nothing.
	if err := s.MarkCustomerPaid(ctx, "cus_b", wall.Add(-time.Hour)); err != nil {
		t.Fatal(err)
	}
	if paid, err := s.CustomerHasPaid(ctx, "cus_b"); err != nil || paid {
		t.Fatalf("other customer: %v %v", paid, err)
	}
	if got, err := s.PaidAmong(ctx, []string{"cus_a", "cus_b", "cus_c"}); err != nil || !reflect.DeepEqual(got, map[string]bool{"cus_a": true}) {
		t.Fatalf("PaidAmong: %v %v", got, err)
	}
}

func TestSubscriptionRedemption(t *testing.T) {
	s, ctx := newStore(t), context.Background()
	p := rdCode(t, s)
	other := rdCode(t, s)
	notFound := func(codeID, sub string) {
		t.Helper()
		if r, err := s.SubscriptionRedemption(ctx, codeID, sub); !errors.Is(err, promo.ErrNotFound) {
			t.Fatalf("%s on %s: %+v %v, want ErrNotFound", codeID, sub, r, err)
		}
	}
	notFound(p.ID, "sub_a")
	notFound("pc_nosuch", "sub_a")

	// The adapter's reservation, confirmed, then active.
	r := reserveOn(t, s, p.ID, "cus_a", "sub_a")
	got, err := s.SubscriptionRedemption(ctx, p.ID, "sub_a")
	if err != nil {
		t.Fatal(err)
	}
	wantRD(t, got, r)
	da := disc("di_a", "cus_a", "sub_a", time.Second)
	confirmed, _, _ := mustObserve(t, s, p.ID, da)
	active, _, _ := mustCount(t, s, p.ID, paid("in_1", da, "usd", 550))
	got, err = s.SubscriptionRedemption(ctx, p.ID, "sub_a")
	if err != nil || got.ID != confirmed.ID {
		t.Fatalf("confirmed: %+v %v", got, err)
	}
	wantRD(t, got, active)
	notFound(other.ID, "sub_a")
	notFound(p.ID, "sub_b")

	// An outside line on another subscription.
	db := disc("di_b", "cus_b", "sub_b", time.Second)
	adopted, _, _ := mustObserve(t, s, p.ID, db)
	got, err = s.SubscriptionRedemption(ctx, p.ID, "sub_b")
	if err != nil {
		t.Fatal(err)
	}
	wantRD(t, got, adopted)

	// Ended lines are not live.
	mustEnd(t, s, p.ID, da, promo.ReasonDuration)
	notFound(p.ID, "sub_a")
	mustEnd(t, s, p.ID, db, promo.ReasonDeleted)
	notFound(p.ID, "sub_b")
	// Nor is a tombstone.
	mustEnd(t, s, p.ID, disc("di_c", "cus_c", "sub_c", time.Second), promo.ReasonDeleted)
	notFound(p.ID, "sub_c")
}

// Per-currency sums: each currency has its own counter on the line and the code.
func TestCountInvoiceSumsPerCurrency(t *testing.T) {
	s := newStore(t)
	p := rdCode(t, s)
	da := disc("di_a", "cus_a", "sub_a", time.Second)
	db := disc("di_b", "cus_b", "sub_b", time.Second)
	for _, inv := range []promo.PaidInvoice{
		paid("in_1", da, "eur", 1337), paid("in_2", da, "chf", 999), paid("in_3", da, "eur", 2999),
		paid("in_4", db, "eur", 1), paid("in_1", da, "eur", 100000), // a repeat of in_1 is not counted
	} {
		mustCount(t, s, p.ID, inv)
	}
	a, err := s.GetRedemption(context.Background(), p.ID, da.NewID)
	if err != nil {
		t.Fatal(err)
	}
	if a.Cycles != 3 || !reflect.DeepEqual(a.Discounted, map[string]int64{"eur": 4336, "chf": 999}) {
		t.Fatalf("line a: cycles %d discounted %v", a.Cycles, a.Discounted)
	}
	code := getCode(t, s, p.ID)
	if !reflect.DeepEqual(code.Discounted, map[string]int64{"eur": 4337, "chf": 999}) || code.Uses != 2 {
		t.Fatalf("code: discounted %v uses %d", code.Discounted, code.Uses)
	}
}

// withoutZeroHeld is a code hash snapshot less a held field of 0 (the same
// as none).
func withoutZeroHeld(v any) any {
	h, ok := v.(map[string]string)
	if !ok || h["held"] != "0" {
		return v
	}
	out := maps.Clone(h)
	delete(out, "held")
	return out
}

// MarkPaidAndCountInvoice (one pipeline on a single Redis) answers and
// leaves what MarkCustomerPaid then CountInvoice do, in one round trip; its
// scripts are sent again when Redis lost them (NOSCRIPT).
func TestMarkPaidAndCountInvoiceIsMarkThenCount(t *testing.T) {
	ctx, wall := context.Background(), time.Now()
	type outcome struct {
		counted        promo.Counted
		markErr, err   string
		markExpires    time.Duration // PEXPIRETIME of the paid mark (-2: none)
		uses           int64
		rdState        promo.RedemptionState
		rdCycles       int
		rdDiscounted   map[string]int64
		codeDiscounted map[string]int64
	}
	for _, tc := range []struct {
		name    string
		until   time.Time // the paid mark lasts until then
		unknown bool      // the invoice's code does not exist
		repeat  bool      // the invoice was counted before
		known   bool      // an earlier invoice of the line was counted before
		flush   bool      // Redis lost its scripts (SCRIPT FLUSH) before
		trips   int64     // round trips of MarkPaidAndCountInvoice
	}{
		// A line made outside the adapter is adopted only once the
		// customer's marker is written (markers.go): the count answers
		// "mark", the marker is added, the count runs again (2 more trips,
		// once per line). A known line's invoice is the one round trip.
		{name: "new invoice of a known line", until: wall.Add(time.Hour), known: true, trips: 1},
		{name: "new invoice adopting its line", until: wall.Add(time.Hour), trips: 3},
		{name: "repeated invoice", until: wall.Add(time.Hour), repeat: true, trips: 1},
		{name: "mark already over", until: wall.Add(-time.Hour), known: true, trips: 1},
		{name: "unknown code", until: wall.Add(time.Hour), unknown: true, trips: 1},
		{name: "scripts lost", until: wall.Add(time.Hour), known: true, flush: true, trips: 3},
	} {
		t.Run(tc.name, func(t *testing.T) {
			run := func(together bool) (outcome, int64) {
				s, trips := newCountingStore(t, 0)
				p := rdCode(t, s)
				codeID := p.ID
				if tc.unknown {
					codeID = "pc_nosuch"
				}
				d := disc("di_a", "cus_a", "sub_a", time.Second)
				inv := paid("in_1", d, "eur", 1337)
				if tc.repeat {
					mustCount(t, s, p.ID, inv)
				}
				if tc.known {
					mustCount(t, s, p.ID, paid("in_0", d, "eur", 1337))
				}
				if tc.flush {
					if err := s.rdb.ScriptFlush(ctx).Err(); err != nil {
						t.Fatal(err)
					}
				}
				// A connection in the pool first: a new one's handshake
				// would count.
				if _, err := s.rdb.Pipelined(ctx, func(p redis.Pipeliner) error { return p.Ping(ctx).Err() }); err != nil {
					t.Fatal(err)
				}
				trips.Store(0)
				var o outcome
				var markErr, err error
				if together {
					o.counted, markErr, err = s.MarkPaidAndCountInvoice(ctx, "cus_a", tc.until, codeID, inv)
				} else {
					markErr = s.MarkCustomerPaid(ctx, "cus_a", tc.until)
					o.counted, err = s.CountInvoice(ctx, codeID, inv)
				}
				n := trips.Load()
				if markErr != nil {
					o.markErr = markErr.Error()
				}
				if err != nil {
					o.err = err.Error()
				}
				if rd := o.counted.Redemption; rd != nil {
					o.rdState, o.rdCycles, o.rdDiscounted = rd.State, rd.Cycles, rd.Discounted
					o.counted.Redemption = nil
				}
				o.markExpires = s.rdb.PExpireTime(ctx, paidKey("cus_a")).Val()
				code := getCode(t, s, p.ID)
				o.uses, o.codeDiscounted = code.Uses, code.Discounted
				return o, n
			}
			want, _ := run(false)
			got, trips := run(true)
			if !reflect.DeepEqual(got, want) {
				t.Fatalf("together:\n got %+v\nwant %+v (mark then count)", got, want)
			}
			if trips != tc.trips {
				t.Fatalf("%d round trips, want %d", trips, tc.trips)
			}
		})
	}
}
