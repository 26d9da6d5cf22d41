package main

import (
	"context"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/billing-adapter/billing-adapter/internal/stripesim"
	"github.com/billing-adapter/billing-adapter/internal/testutil/redistest"
)

// The main flows on a real Redis Cluster (3 masters, 1 replica each): two
// service replicas with REDIS_ADDRS create a code, validate it, subscribe
// with it, apply it to an existing subscription, remove it from another,
// count the paid invoices Stripe's webhooks report, and reconcile finds no
// difference. Every master ends up holding keys (no fixed slot carries the
// data), and none of the former fixed-slot keys is written.
func TestMainFlowsOnRedisCluster(t *testing.T) {
	c := redistest.StartCluster(t, 3, 1)
	addrs := strings.Join(c.Addrs(), ",")
	st := newStack(t, "", stripesim.Options{RetryBackoff: 50 * time.Millisecond, MaxDeliveryAttempts: 30})
	env := map[string]string{"REDIS_ADDRS": addrs}
	s := st.start(t, env)
	other := st.start(t, env) // a second replica of the service
	st.Sim.SetWebhookURL(s.URL+"/webhooks/stripe", webhookSecret)

	clock := st.newClock(t)
	pl := st.newPlan(t, "usd", 2000)
	codeID := s.createCode(t, map[string]any{"code": "clusterwide", "promo_type": "percentage", "amount_off": 25,
		"promo_duration_months": 2, "stock": 10})["id"].(string)

	newCus := st.newCustomer(t, clock)
	r := other.call(t, "POST", "/v1/promo_codes/validate", checkoutSecret, "",
		map[string]any{"code": "ClusterWide", "customer": newCus, "price": pl.Price})
	mustStatus(t, r, http.StatusOK)
	if r.json(t)["valid"] != true {
		t.Fatalf("validate: %s", r.Body)
	}
	r = other.call(t, "POST", "/v1/subscriptions", checkoutSecret, newKey(),
		map[string]any{"customer": newCus, "price": pl.Price, "promo_code": "clusterwide"})
	mustStatus(t, r, http.StatusCreated)

	existing := st.newSubscription(t, st.newCustomer(t, clock), pl.Price)
	removed := st.newSubscription(t, st.newCustomer(t, clock), pl.Price)
	st.advance(t, clock, clockStart.Add(10*24*time.Hour))
	mustStatus(t, s.apply(t, existing.ID, "CLUSTERWIDE", "", newKey()), http.StatusOK)
	mustStatus(t, other.apply(t, removed.ID, "clusterwide", "", newKey()), http.StatusOK)
	// One code per subscription, across service replicas.
	if r := s.apply(t, existing.ID, "clusterwide", "", newKey()); r.Status != http.StatusConflict {
		t.Fatalf("second apply on %s: %d %s", existing.ID, r.Status, r.Body)
	}
	mustStatus(t, s.call(t, "DELETE", "/v1/subscriptions/"+removed.ID+"/promo_code", checkoutSecret, newKey(), nil),
		http.StatusOK)

	// Three months: the new subscription's 2 discounted invoices after its
	// first, the existing one's 2.
	st.advance(t, clock, clockStart.AddDate(0, 3, 0).Add(time.Hour))
	st.settle(t)
	eventually(t, "the webhooks counted every discounted invoice", func() bool {
		p := s.code(t, codeID)
		return num(p, "uses") == 2 && num(p["discounted_amounts"].(map[string]any), "usd") == 2000
	})
	if p := s.code(t, codeID); num(p, "stock") != 8 || num(p, "reserved") != 0 {
		t.Fatalf("code after the lifecycle: %v", p)
	}

	ctx := context.Background()
	for _, m := range c.Masters(t) {
		if n := c.Client(m).DBSize(ctx).Val(); n == 0 {
			t.Errorf("master %s holds no key: the data is not spread", m.Addr)
		}
		for _, legacy := range []string{"ba:{catalog}:codes", "ba:{claims}", "ba:{customers}:paid", "ba:{sweep}:due"} {
			if c.MasterOf(t, legacy) == m && c.Client(m).Exists(ctx, legacy).Val() != 0 {
				t.Errorf("%s written: a fixed slot on every request", legacy)
			}
		}
	}

	vars := map[string]string{"REDIS_ADDRS": addrs, "STRIPE_SECRET_KEY": stripeKey, "STRIPE_API_BASE": st.SimURL,
		"STRIPE_MAX_NETWORK_RETRIES": "0", "LOG_FORMAT": "text"}
	// syncBuffer: go-redis logs through a process-wide logger (redisstore.SetLogger),
	// which may write from another goroutine while the command prints.
	var out, errOut syncBuffer
	if err := run(ctx, []string{"reconcile", "-rate", "1000"}, func(k string) string { return vars[k] }, &out, &errOut); err != nil {
		t.Fatalf("reconcile on the cluster: %v\n%s%s", err, out.String(), errOut.String())
	}
	if !strings.Contains(out.String(), "; 0 differences") {
		t.Fatalf("reconcile on the cluster:\n%s", out.String())
	}
}
