package main

import (
	"net/http"
	"strings"
	"testing"
	"time"
)

// reconcile -events (the incremental mode for daily runs): with no webhook
// delivered at all, replaying Stripe's events of the period brings Redis to
// what the webhooks would have made (reconcile then finds no difference),
// and a second replay applies nothing again.
func TestReconcileEventsReplaysMissedWebhooks(t *testing.T) {
	s := startService(t, nil) // no webhook endpoint: Stripe's events are only recorded
	clock := s.newClock(t)
	pl := s.newPlan(t, "usd", 2000)
	sub := s.newSubscription(t, s.newCustomer(t, clock), pl.Price)
	id := s.createCode(t, map[string]any{"code": "REPLAYME", "promo_type": "percentage", "amount_off": 50,
		"promo_duration_months": 2, "stock": 5})["id"].(string)
	s.advance(t, clock, clockStart.Add(10*24*time.Hour))
	mustStatus(t, s.apply(t, sub.ID, "REPLAYME", "", newKey()), http.StatusOK)
	s.advance(t, clock, clockStart.AddDate(0, 3, 0).Add(time.Hour)) // two discounted invoices, then the end
	if p := s.code(t, id); num(p, "uses") != 0 {
		t.Fatalf("uses %d before any event was seen", num(p, "uses"))
	}

	stdout, stderr, err := s.runReconcile(t, "-events", "720h")
	if err != nil {
		t.Fatalf("reconcile -events: %v\n%s%s", err, stdout, stderr)
	}
	if !strings.Contains(stdout, " 0 already applied") || strings.Contains(stdout, " 0 applied now") {
		t.Fatalf("first replay: %s", stdout)
	}
	p := s.code(t, id)
	if num(p, "uses") != 1 || num(p["discounted_amounts"].(map[string]any), "usd") != 2000 {
		t.Fatalf("after the replay: uses %v, discounted %v", p["uses"], p["discounted_amounts"])
	}
	led := s.redemptions(t, id)
	if len(led) != 1 || led[0]["state"] != "ended" || num(led[0], "cycles") != 2 {
		t.Fatalf("ledger after the replay: %v", led)
	}
	again, _, err := s.runReconcile(t, "-events", "720h")
	if err != nil || !strings.Contains(again, " 0 applied now") {
		t.Fatalf("second replay: %v %s", err, again)
	}
	assertReconcileClean(t, s)
	if _, _, err := s.runReconcile(t, "-events", "721h"); err == nil {
		t.Fatal("-events beyond Stripe's 30 days accepted")
	}
}
