package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"os/signal"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/billing-adapter/billing-adapter/config"
	"github.com/billing-adapter/billing-adapter/internal/benchkit"
	"github.com/billing-adapter/billing-adapter/internal/redisstore"
	"github.com/billing-adapter/billing-adapter/internal/stripesim"
	"github.com/billing-adapter/billing-adapter/internal/telemetry"
	"github.com/billing-adapter/billing-adapter/internal/testutil/redistest"
	"github.com/billing-adapter/billing-adapter/webhooks"
	"github.com/redis/go-redis/v9"
)

// Handler benchmarks (make bench): the service's real handler, wired by
// newApp exactly as serve wires it (JSON access log at info level, metrics,
// auth, idempotency), called in-process with ServeHTTP against the
// package's redis-server and a Stripe simulator running as its own process
// (so its allocations are not counted). Requests are built before the timer
// starts, so allocs/op and B/op are the service's own work per request,
// go-redis client included. Besides ns/op, B/op and allocs/op each reports:
//
//	redis-rt/op    Redis round trips per request (commands and pipelines sent)
//	stripe-calls/op  requests the simulator received per request
//	cpu-us/op      CPU time of this process per request (user + system,
//	               getrusage), GC and background goroutines included: less
//	               sensitive than ns/op to other load on the machine
//
// No timing is asserted: these print numbers only.

// simChildEnv makes the test binary serve the Stripe simulator instead of
// running tests (the benchmarks' Stripe, in its own process).
const simChildEnv = "BILLING_BENCH_SIM_ADDR"

func init() {
	addr := os.Getenv(simChildEnv)
	if addr == "" {
		return
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	sim := stripesim.New(stripesim.Options{})
	srv := &http.Server{Handler: sim, ReadHeaderTimeout: 10 * time.Second}
	go func() { _ = srv.Serve(ln) }()
	<-ctx.Done()
	_ = srv.Close()
	os.Exit(0)
}

// benchApp is the service's handler on a fresh Redis and simulator.
type benchApp struct {
	app    *app
	store  *redisstore.Store
	sim    *benchkit.Sim
	rdb    *redis.Client
	trips  *atomic.Int64
	price  string
	events []byte // an invoice.paid template
}

func newBenchApp(b *testing.B) *benchApp {
	b.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	simAddr := ln.Addr().String()
	ln.Close()
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), simChildEnv+"="+simAddr)
	cmd.Stdout, cmd.Stderr = os.Stderr, os.Stderr
	if err := cmd.Start(); err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { _ = cmd.Process.Signal(syscall.SIGTERM); _ = cmd.Wait() })
	sim := benchkit.NewSim("http://"+simAddr, stripeKey, 16)
	deadline := time.Now().Add(10 * time.Second)
	for {
		if _, err := sim.Counts(context.Background()); err == nil {
			break
		} else if time.Now().After(deadline) {
			b.Fatalf("simulator did not start: %v", err)
		}
		time.Sleep(20 * time.Millisecond)
	}

	env := map[string]string{
		"BILLING_ADDR": "127.0.0.1:0", "REDIS_URL": redisSrv.URL(), "STRIPE_SECRET_KEY": stripeKey,
		"STRIPE_API_BASE": sim.URL, "STRIPE_MAX_NETWORK_RETRIES": "0", "STRIPE_WEBHOOK_SECRETS": webhookSecret,
		"BILLING_API_KEYS": "admin:admin:" + adminSecret + ",checkout:checkout:" + checkoutSecret,
		// One key and a few customers send every request: no guard.
		"RATE_LIMIT_PER_API_KEY": "off", "RATE_LIMIT_PER_CUSTOMER": "off",
	}
	cfg, err := config.Load(func(k string) string { return env[k] })
	if err != nil {
		b.Fatal(err)
	}
	opt, _ := redis.ParseURL(redisSrv.URL())
	rdb := redis.NewClient(opt)
	b.Cleanup(func() { rdb.Close() })
	if err := rdb.FlushAll(context.Background()).Err(); err != nil {
		b.Fatal(err)
	}
	trips := &atomic.Int64{}
	rdb.AddHook(redistest.TripCounter{N: trips})
	metrics := telemetry.New()
	store := redisstore.New(rdb, metrics)
	store.SetCampaignIndex(cfg.CampaignIndex)
	store.SetValidateCodeMaxAge(cfg.ValidateCodeAge)
	// As serve does: a store started empty has the customer markers.
	if _, err := store.CheckLayout(context.Background()); err != nil {
		b.Fatal(err)
	}
	// The access log is real (JSON, info level: one line per request), as in
	// production, written to io.Discard instead of a file.
	log := newLogger(cfg, io.Discard)
	ba := &benchApp{app: newApp(cfg, log, metrics, store, stripeKey, sim.URL, cfg.WebhookSecrets),
		store: store, sim: sim, rdb: rdb, trips: trips}
	if ba.price, err = sim.NewPlan(context.Background(), "usd", 2000); err != nil {
		b.Fatal(err)
	}
	return ba
}

// prepared is one request built before the timer starts.
type prepared struct {
	req  *http.Request
	body []byte
}

func (ba *benchApp) prepare(method, path, secret, idemKey string, body []byte, hdr map[string]string) prepared {
	req, _ := http.NewRequest(method, path, nil)
	req.RemoteAddr = "127.0.0.1:40000"
	if secret != "" {
		req.Header.Set("Authorization", "Bearer "+secret)
	}
	if idemKey != "" {
		req.Header.Set("Idempotency-Key", idemKey)
	}
	req.Header.Set("Content-Type", "application/json")
	for k, v := range hdr {
		req.Header.Set(k, v)
	}
	req.ContentLength = int64(len(body))
	return prepared{req: req, body: body}
}

// discardWriter is a reusable http.ResponseWriter that keeps the status.
type discardWriter struct {
	h      http.Header
	status int
	body   bytes.Buffer
}

func (w *discardWriter) Header() http.Header { return w.h }
func (w *discardWriter) WriteHeader(s int)   { w.status = s }
func (w *discardWriter) Write(p []byte) (int, error) {
	if w.status == 0 {
		w.status = http.StatusOK
	}
	return w.body.Write(p)
}

type readCloser struct{ bytes.Reader }

func (readCloser) Close() error { return nil }

// serve runs the prepared requests, b.N of them in the timed loop, and
// reports the per-request Redis round trips and Stripe calls.
func (ba *benchApp) serve(b *testing.B, reqs func(i int) prepared, wantStatus int) {
	b.Helper()
	w := &discardWriter{h: http.Header{}}
	body := &readCloser{}
	run := func(p prepared) {
		clear(w.h)
		w.status = 0
		w.body.Reset()
		body.Reset(p.body)
		p.req.Body = body
		ba.app.handler.ServeHTTP(w, p.req)
		if w.status != wantStatus {
			b.Fatalf("%s %s: %d, want %d: %s", p.req.Method, p.req.URL.Path, w.status, wantStatus, w.body.String())
		}
	}
	all := make([]prepared, b.N)
	for i := range all {
		all[i] = reqs(i)
	}
	ctx := context.Background()
	before, err := ba.sim.Counts(ctx)
	if err != nil {
		b.Fatal(err)
	}
	ba.trips.Store(0)
	b.ReportAllocs()
	cpu0 := processCPU(b)
	b.ResetTimer()
	for i := range b.N {
		run(all[i])
	}
	b.StopTimer()
	b.ReportMetric(float64((processCPU(b)-cpu0).Microseconds())/float64(b.N), "cpu-us/op")
	trips := ba.trips.Load()
	after, err := ba.sim.Counts(ctx)
	if err != nil {
		b.Fatal(err)
	}
	b.ReportMetric(float64(trips)/float64(b.N), "redis-rt/op")
	b.ReportMetric(float64(benchkit.TotalCalls(after)-benchkit.TotalCalls(before))/float64(b.N), "stripe-calls/op")
}

// processCPU is this process's CPU time so far (user + system).
func processCPU(b *testing.B) time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		b.Fatal(err)
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// createCode creates an unlimited code through the handler.
func (ba *benchApp) createCode(b *testing.B, code string) string {
	b.Helper()
	body := benchkit.CreatePromoBody(code, true)
	var out struct {
		ID string `json:"id"`
	}
	ba.do(b, ba.prepare("POST", "/v1/promo_codes", adminSecret, "create-"+code, body, nil), http.StatusCreated, &out)
	return out.ID
}

func (ba *benchApp) do(b *testing.B, p prepared, want int, out any) {
	b.Helper()
	p.req.Body = io.NopCloser(bytes.NewReader(p.body))
	w := &discardWriter{h: http.Header{}}
	ba.app.handler.ServeHTTP(w, p.req)
	if w.status != want {
		b.Fatalf("%s %s: %d, want %d: %s", p.req.Method, p.req.URL.Path, w.status, want, w.body.String())
	}
	if out != nil {
		if err := json.Unmarshal(w.body.Bytes(), out); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkValidate(b *testing.B) {
	ba := newBenchApp(b)
	ba.createCode(b, "HOTCODE")
	ba.serve(b, func(i int) prepared {
		return ba.prepare("POST", "/v1/promo_codes/validate", checkoutSecret, "",
			benchkit.ValidateBody("hotcode", benchkit.FakeCustomer(i%1000)), nil)
	}, http.StatusOK)
}

// campaignCodes creates a campaign of n codes through the handler, runs
// the code generator until they exist, and returns them.
func (ba *benchApp) campaignCodes(b *testing.B, n int) []string {
	b.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); ba.app.generator.Run(ctx) }()
	defer func() { cancel(); <-done }()
	var c struct {
		ID string `json:"id"`
	}
	body := fmt.Appendf(nil, `{"name":"bench","count":%d,"promo_type":"percentage","amount_off":10}`, n)
	ba.do(b, ba.prepare("POST", "/v1/campaigns", adminSecret, "create-campaign", body, nil), http.StatusAccepted, &c)
	key := "ba:{" + c.ID + "}:campaign"
	for deadline := time.Now().Add(time.Minute); ba.rdb.HGet(ctx, key, "state").Val() != "ready"; time.Sleep(10 * time.Millisecond) {
		if time.Now().After(deadline) {
			b.Fatalf("campaign %s not generated after a minute", c.ID)
		}
	}
	width, _ := ba.rdb.HGet(ctx, key, "len").Int()
	batches, _ := ba.rdb.HGet(ctx, key, "batch").Int()
	var codes []string
	for i := range batches {
		raw := ba.rdb.Get(ctx, fmt.Sprintf("ba:{%s}:codes:%d", c.ID, i)).Val()
		for j := 0; j+width <= len(raw); j += width {
			codes = append(codes, raw[j:j+width])
		}
	}
	return codes
}

// BenchmarkValidateCampaign: validate of campaign codes (a campaign of
// 10,000, customers from a pool of 1,000), as billing-bench's
// validate-campaign: the campaign code index resolves the text in the
// process (the first request meets the campaign and loads it), so one
// round trip, the campaign's script.
func BenchmarkValidateCampaign(b *testing.B) {
	benchValidateCampaign(b, newBenchApp(b))
}

// BenchmarkValidateCampaignIndexOff: the same with CAMPAIGN_CODE_INDEX=off:
// each code's first validate reads its text key first (two round trips).
func BenchmarkValidateCampaignIndexOff(b *testing.B) {
	ba := newBenchApp(b)
	ba.store.SetCampaignIndex(0)
	benchValidateCampaign(b, ba)
}

func benchValidateCampaign(b *testing.B, ba *benchApp) {
	codes := ba.campaignCodes(b, 10_000)
	ba.serve(b, func(i int) prepared {
		return ba.prepare("POST", "/v1/promo_codes/validate", checkoutSecret, "",
			benchkit.ValidateBody(codes[i%len(codes)], benchkit.FakeCustomer(i%1000)), nil)
	}, http.StatusOK)
}

// applyFixtures makes n existing subscriptions of distinct customers.
func (ba *benchApp) applyFixtures(b *testing.B, n int) []benchkit.Subscribed {
	b.Helper()
	subs, err := ba.sim.NewSubscribedMany(context.Background(), ba.price, n, 8)
	if err != nil {
		b.Fatal(err)
	}
	return subs
}

func BenchmarkApply(b *testing.B) {
	ba := newBenchApp(b)
	ba.createCode(b, "APPLYCODE")
	subs := ba.applyFixtures(b, b.N)
	ba.serve(b, func(i int) prepared {
		return ba.prepare("POST", "/v1/subscriptions/"+subs[i].Subscription+"/promo_code", checkoutSecret,
			fmt.Sprintf("apply-%d", i), benchkit.ApplyBody("applycode"), nil)
	}, http.StatusOK)
}

func BenchmarkCreatePromo(b *testing.B) {
	ba := newBenchApp(b)
	ba.serve(b, func(i int) prepared {
		return ba.prepare("POST", "/v1/promo_codes", adminSecret, fmt.Sprintf("create-%d", i),
			benchkit.CreatePromoBody(fmt.Sprintf("BENCH%d", i), false), nil)
	}, http.StatusCreated)
}

// webhookFixtures applies a code to k subscriptions and returns their
// discounts, and an invoice.paid template.
func (ba *benchApp) webhookFixtures(b *testing.B, k int) []benchkit.Discount {
	b.Helper()
	ba.createCode(b, "PAIDCODE")
	subs := ba.applyFixtures(b, k)
	ctx := context.Background()
	out := make([]benchkit.Discount, k)
	for i, s := range subs {
		ba.do(b, ba.prepare("POST", "/v1/subscriptions/"+s.Subscription+"/promo_code", checkoutSecret,
			fmt.Sprintf("fixture-%d", i), benchkit.ApplyBody("paidcode"), nil), http.StatusOK, nil)
		d, err := ba.sim.SubscriptionDiscount(ctx, s.Subscription)
		if err != nil {
			b.Fatal(err)
		}
		out[i] = d
	}
	var err error
	if ba.events, err = ba.sim.InvoicePaidTemplate(ctx); err != nil {
		b.Fatal(err)
	}
	return out
}

func (ba *benchApp) webhookRequest(b *testing.B, eventID, invoiceID string, d benchkit.Discount) prepared {
	body, err := benchkit.InvoicePaid(ba.events, eventID, invoiceID, d, 1800, 200, time.Now())
	if err != nil {
		b.Fatal(err)
	}
	return ba.prepare("POST", "/webhooks/stripe", "", "", body,
		map[string]string{"Stripe-Signature": webhooks.Sign(body, webhookSecret, time.Now())})
}

// BenchmarkWebhookInvoicePaid: each request is a new invoice.paid event
// (a new invoice) carrying one of 100 applied discounts: the counting path.
func BenchmarkWebhookInvoicePaid(b *testing.B) {
	ba := newBenchApp(b)
	discounts := ba.webhookFixtures(b, 100)
	ba.serve(b, func(i int) prepared {
		return ba.webhookRequest(b, fmt.Sprintf("evt_bench_%d", i), fmt.Sprintf("in_bench_%d", i), discounts[i%len(discounts)])
	}, http.StatusOK)
}

// BenchmarkWebhookDuplicate: re-sends of an event already processed.
func BenchmarkWebhookDuplicate(b *testing.B) {
	ba := newBenchApp(b)
	discounts := ba.webhookFixtures(b, 1)
	p := ba.webhookRequest(b, "evt_bench_dup", "in_bench_dup", discounts[0])
	ba.do(b, p, http.StatusOK, nil)
	ba.serve(b, func(int) prepared {
		q := ba.prepare("POST", "/webhooks/stripe", "", "", p.body, map[string]string{"Stripe-Signature": p.req.Header.Get("Stripe-Signature")})
		return q
	}, http.StatusOK)
}
