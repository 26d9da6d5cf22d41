package main

import (
	"net/http"
	"testing"
	"time"

	"github.com/stripe/stripe-go/v76"
)

// One clock per ledger line (README "Webhooks", ledger times): under a Stripe
// test clock whose frozen time is far from the wall clock, a line the
// adapter made and Stripe confirmed is on Stripe's clock only: created_at =
// confirmed_at = the discount's start, never a mix with the adapter's
// clock, whichever of the apply and the webhook confirms first.
func TestLedgerLineTimesUnderATestClock(t *testing.T) {
	for _, webhooks := range []bool{false, true} {
		name := map[bool]string{false: "confirmed by the apply", true: "with webhooks"}[webhooks]
		t.Run(name, func(t *testing.T) {
			var st *stack
			var s *service
			if webhooks {
				st, s = webhookStack(t, "", nil)
			} else {
				s = startService(t, nil)
				st = s.stack
			}
			frozen := time.Now().UTC().Add(-45 * 24 * time.Hour).Truncate(time.Second)
			clock, err := st.Stripe.TestHelpersTestClocks.New(&stripe.TestHelpersTestClockParams{FrozenTime: stripe.Int64(frozen.Unix())})
			if err != nil {
				t.Fatal(err)
			}
			pl := st.newPlan(t, "usd", 2000)
			codeID := s.createCode(t, map[string]any{"code": "CLOCK", "promo_type": "percentage", "amount_off": 10,
				"promo_duration_months": 2, "stock": 10})["id"].(string)

			// An existing subscription, and a new one made by the adapter.
			member := st.newCustomer(t, clock.ID)
			sub := st.newSubscription(t, member, pl.Price)
			applied := s.apply(t, sub.ID, "CLOCK", member, newKey())
			mustStatus(t, applied, http.StatusOK)
			payer := st.newCustomer(t, clock.ID)
			created := s.call(t, "POST", "/v1/subscriptions", checkoutSecret, newKey(),
				map[string]any{"customer": payer, "price": pl.Price, "promo_code": "CLOCK"})
			mustStatus(t, created, http.StatusCreated)
			if webhooks {
				st.settle(t)
			}

			for _, answer := range []map[string]any{applied.json(t), created.json(t)} {
				start := answer["discount"].(map[string]any)["start"].(string)
				if ts, _ := time.Parse(time.RFC3339, start); !ts.Equal(frozen) {
					t.Fatalf("the simulator's discount started at %s, want the clock's %s", start, frozen)
				}
				rd := answer["redemption"].(map[string]any)
				if rd["created_at"] != start || rd["confirmed_at"] != start {
					t.Fatalf("answer: created_at %v, confirmed_at %v; want both the discount's start %s", rd["created_at"], rd["confirmed_at"], start)
				}
			}
			lines := s.redemptions(t, codeID)
			if len(lines) != 2 {
				t.Fatalf("%d ledger lines", len(lines))
			}
			want := frozen.Format(time.RFC3339)
			for _, l := range lines {
				if l["created_at"] != want || l["confirmed_at"] != want {
					t.Fatalf("ledger line %s: created_at %v, confirmed_at %v; want both %s (Stripe's clock)",
						l["id"], l["created_at"], l["confirmed_at"], want)
				}
			}

			// A month later (on the clock) the discounted invoice is paid;
			// the adapter's removal then ends the line.
			st.advance(t, clock.ID, frozen.AddDate(0, 1, 1))
			mustStatus(t, s.call(t, "DELETE", "/v1/subscriptions/"+sub.ID+"/promo_code", checkoutSecret, newKey(), nil), http.StatusOK)
			if !webhooks {
				return
			}
			st.settle(t)
			for _, l := range s.redemptions(t, codeID) {
				if l["subscription"] != sub.ID {
					continue
				}
				created, _ := time.Parse(time.RFC3339, l["created_at"].(string))
				activated, _ := time.Parse(time.RFC3339, l["activated_at"].(string))
				ended, _ := time.Parse(time.RFC3339, l["ended_at"].(string))
				if l["ended_in_stripe"] != true || !created.Before(activated) || activated.After(ended) ||
					ended.After(frozen.AddDate(0, 1, 2)) {
					t.Fatalf("ended line on two clocks: created %v activated %v ended %v (in Stripe: %v)",
						created, activated, ended, l["ended_in_stripe"])
				}
			}
		})
	}
}
