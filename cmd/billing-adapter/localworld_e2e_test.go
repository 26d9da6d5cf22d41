package main

import (
	"context"
	"encoding/json"
	"net/http"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
)

// The local world of `make run` survives a restart: the embedded simulator
// keeps its state in STRIPE_SIM_STATE, so after a stop and start on the same
// Redis the catalog's Stripe objects are still there (validate with a preview,
// archive), with no start-up warning.
func TestLocalWorldSurvivesARestart(t *testing.T) {
	opt, _ := redis.ParseURL(redisSrv.URL())
	rdb := redis.NewClient(opt)
	defer rdb.Close()
	if err := rdb.FlushAll(context.Background()).Err(); err != nil {
		t.Fatal(err)
	}
	addr, simAddr := freeAddr(t), freeAddr(t)
	env := map[string]string{"BILLING_ADDR": addr, "REDIS_URL": redisSrv.URL(), "STRIPE_SIM_ADDR": simAddr,
		"STRIPE_SIM_STATE": filepath.Join(t.TempDir(), "local", "stripe-sim.json"), "STRIPE_WEBHOOK_SECRETS": webhookSecret,
		"BILLING_API_KEYS": "admin:admin:" + adminSecret + ",checkout:checkout:" + checkoutSecret}
	start := func() (*service, func()) {
		t.Helper()
		ctx, cancel := context.WithCancel(context.Background())
		s := &service{URL: "http://" + addr, logs: &syncBuffer{}, cancel: cancel, done: make(chan error, 1)}
		go func() { s.done <- run(ctx, []string{"serve"}, func(k string) string { return env[k] }, s.logs, s.logs) }()
		waitHealthy(t, s.URL, func() error { return nil })
		return s, func() {
			cancel()
			select {
			case err := <-s.done:
				if err != nil {
					t.Fatalf("serve: %v\n%s", err, s.logs.String())
				}
			case <-time.After(30 * time.Second):
				t.Fatal("serve did not stop")
			}
		}
	}

	s, stop := start()
	code := s.createCode(t, map[string]any{"code": "WELCOME20", "promo_type": "percentage", "amount_off": 20, "stock": 100})
	req, _ := http.NewRequest("POST", "http://"+simAddr+"/_sim/seed", nil)
	req.Header.Set("Authorization", "Bearer sk_test_anything")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	var seed struct {
		CustomerID string `json:"customer_id"`
		PriceID    string `json:"price_id"`
	}
	err = json.NewDecoder(resp.Body).Decode(&seed)
	resp.Body.Close()
	if err != nil {
		t.Fatal(err)
	}
	stop()

	s, stop = start()
	defer stop()
	r := s.call(t, "POST", "/v1/promo_codes/validate", checkoutSecret, "",
		map[string]any{"code": "welcome20", "customer": seed.CustomerID, "price": seed.PriceID})
	mustStatus(t, r, http.StatusOK)
	if v := r.json(t); v["valid"] != true || num(v["preview"].(map[string]any), "amount_after") != 1600 {
		t.Fatalf("validate after the restart: %s", r.Body)
	}
	r = s.call(t, "POST", "/v1/promo_codes", adminSecret, newKey(),
		map[string]any{"code": "WELCOME20", "promo_type": "percentage", "amount_off": 20})
	mustStatus(t, r, http.StatusConflict)
	r = s.call(t, "POST", "/v1/promo_codes/"+code["id"].(string), adminSecret, newKey(), map[string]any{"status": "archived"})
	mustStatus(t, r, http.StatusOK)
	if strings.Contains(s.logs.String(), "does not have") {
		t.Fatalf("a start on a kept world warned about missing Stripe objects:\n%s", s.logs.String())
	}
}
