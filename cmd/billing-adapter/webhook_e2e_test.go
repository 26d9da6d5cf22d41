package main

import (
	"context"
	"net/http"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/billing-adapter/billing-adapter/internal/stripesim"
	"github.com/billing-adapter/billing-adapter/internal/testutil/redistest"
	"github.com/stripe/stripe-go/v76"
)

// webhookStack is a stack whose simulator delivers signed webhooks to one
// service, retrying failed deliveries quickly.
func webhookStack(t *testing.T, redisURL string, env map[string]string) (*stack, *service) {
	t.Helper()
	st := newStack(t, redisURL, stripesim.Options{RetryBackoff: 50 * time.Millisecond, MaxDeliveryAttempts: 30})
	s := st.start(t, env)
	st.Sim.SetWebhookURL(s.URL+"/webhooks/stripe", webhookSecret)
	return st, s
}

// settle waits until the simulator has delivered every event.
func (st *stack) settle(t *testing.T) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	if err := st.Sim.WaitDeliveries(ctx); err != nil {
		t.Fatalf("webhook deliveries did not finish: %v", err)
	}
}

// reconciled is what reconciliation decides, without the IDs a run makes up.
type reconciled struct {
	Uses, Stock, Reserved, TimesRedeemed int64
	Discounted                           map[string]any
	Ledger                               []map[string]any
}

func snapshotOf(t *testing.T, s *service, codeID string) reconciled {
	t.Helper()
	p := s.code(t, codeID)
	out := reconciled{Uses: num(p, "uses"), Stock: num(p, "stock"), Reserved: num(p, "reserved"),
		TimesRedeemed: num(p["stripe"].(map[string]any), "times_redeemed"), Discounted: p["discounted_amounts"].(map[string]any)}
	for _, l := range s.redemptions(t, codeID) {
		out.Ledger = append(out.Ledger, map[string]any{"state": l["state"], "cycles": l["cycles"], "source": l["source"],
			"discounted_amounts": l["discounted_amounts"], "end_reason": l["end_reason"], "stock_returned": l["stock_returned"],
			"flags": l["flags"], "activated": l["activated_at"] != nil})
	}
	return out
}

// threeMonthsOfDiscount applies a 25% code repeating 3 months to an existing
// 20.00 USD subscription mid-period, runs between (may be nil) and moves the
// clock 5 months, then waits for every webhook.
func threeMonthsOfDiscount(t *testing.T, st *stack, s *service, between func()) reconciled {
	t.Helper()
	clock := st.newClock(t)
	pl := st.newPlan(t, "usd", 2000)
	sub := st.newSubscription(t, st.newCustomer(t, clock), pl.Price)
	codeID := s.createCode(t, map[string]any{"code": "THREEMONTHS", "promo_type": "percentage", "amount_off": 25,
		"promo_duration_months": 3, "stock": 10})["id"].(string)
	st.advance(t, clock, clockStart.Add(10*24*time.Hour))
	mustStatus(t, s.apply(t, sub.ID, "THREEMONTHS", "", newKey()), http.StatusOK)
	if between != nil {
		between()
	}
	st.advance(t, clock, clockStart.AddDate(0, 5, 0).Add(time.Hour))
	discounted := 0
	for _, in := range st.invoices(t, sub.ID) {
		if in.Status == stripe.InvoiceStatusPaid && in.Total == 1500 {
			discounted++
		}
	}
	if discounted != 3 {
		t.Fatalf("Stripe made %d discounted invoices, want 3", discounted)
	}
	st.settle(t)
	snap := snapshotOf(t, s, codeID)
	assertReconcileClean(t, s)
	return snap
}

// The whole life of a redemption comes from Stripe's webhooks: three
// discounted paid invoices counted, then ended when the duration is over;
// the same final state however the events arrive.
func TestWebhooksReconcileARepeatingCode(t *testing.T) {
	want := reconciled{Uses: 1, Stock: 9, Reserved: 0, TimesRedeemed: 1, Discounted: map[string]any{"usd": 1500.0},
		Ledger: []map[string]any{{"state": "ended", "cycles": 3.0, "source": "existing_subscription",
			"discounted_amounts": map[string]any{"usd": 1500.0}, "end_reason": "duration_over", "stock_returned": false,
			"flags": []any{}, "activated": true}}}
	check := func(t *testing.T, got reconciled) {
		t.Helper()
		if !reflect.DeepEqual(got, want) {
			t.Fatalf("reconciled state\n got %+v\nwant %+v", got, want)
		}
	}
	t.Run("in order", func(t *testing.T) {
		st, s := webhookStack(t, "", nil)
		check(t, threeMonthsOfDiscount(t, st, s, nil))
	})
	t.Run("every event three times, shuffled", func(t *testing.T) {
		st, s := webhookStack(t, "", nil)
		st.Sim.SetWebhookChaos(3, true)
		check(t, threeMonthsOfDiscount(t, st, s, nil))
	})
	t.Run("Redis down during delivery", func(t *testing.T) {
		red := redistest.StartDurable(t) // AOF: a restart keeps the data, as in production
		st, s := webhookStack(t, red.URL(), nil)
		check(t, threeMonthsOfDiscount(t, st, s, func() {
			st.settle(t)
			if err := red.Kill(); err != nil {
				t.Fatal(err)
			}
			time.AfterFunc(4*time.Second, func() { // longer than go-redis takes to give up (~2 s)
				if err := red.Restart(); err != nil {
					t.Error(err)
				}
			})
		}))
		if !containsLog(s, "webhook not processed") {
			t.Fatal("no delivery failed while Redis was down: the test did not test anything")
		}
	})
}

func containsLog(s *service, msg string) bool { return strings.Contains(s.logs.String(), msg) }
