package main

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"time"

	"github.com/billing-adapter/billing-adapter/config"
	"github.com/billing-adapter/billing-adapter/internal/console"
	"github.com/billing-adapter/billing-adapter/internal/httpapi"
	"github.com/billing-adapter/billing-adapter/internal/promo"
	"github.com/billing-adapter/billing-adapter/internal/redisstore"
	"github.com/billing-adapter/billing-adapter/internal/stripegw"
	"github.com/billing-adapter/billing-adapter/internal/stripesim"
	"github.com/billing-adapter/billing-adapter/internal/telemetry"
	"github.com/billing-adapter/billing-adapter/webhooks"
	"github.com/oklog/ulid/v2"
)

// HTTP server timeouts. The write timeout (REQUEST_TIMEOUT plus
// writeTimeoutMargin) exceeds the per-request budget so a slow Stripe call
// ends with our JSON error rather than a cut connection.
const (
	readHeaderTimeout  = 5 * time.Second
	readTimeout        = 15 * time.Second
	writeTimeoutMargin = 15 * time.Second
	idleTimeout        = 120 * time.Second
)

// loadConfig reads the environment, applies the command's flags over it and
// validates the result once.
func loadConfig(name string, args []string, getenv func(string) string, stdout, stderr io.Writer) (config.Config, error) {
	cfg, loadErr := config.Load(getenv)
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	addr := fs.String("addr", "", "listen address host:port (overrides BILLING_ADDR)")
	redisURL := fs.String("redis-url", "", "Redis URL (overrides REDIS_URL)")
	if err := parseFlags(fs, args, "usage: billing-adapter "+name+" [-addr HOST:PORT] [-redis-url URL]  (configuration from the environment; see 'help config')", stdout, stderr); err != nil {
		return cfg, err
	}
	if fs.NArg() > 0 {
		return cfg, usageError{fmt.Sprintf("%s takes no arguments, got %q", name, fs.Args())}
	}
	if *addr == "" && *redisURL == "" {
		return cfg, loadErr
	}
	if *addr != "" {
		cfg.Addr = *addr
	}
	if *redisURL != "" {
		cfg.RedisURL = *redisURL
	}
	return cfg, cfg.Validate()
}

// serve runs the HTTP API until ctx is done, then shuts down gracefully:
// in-flight requests finish, then the simulator and Redis close.
func serve(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	cfg, err := loadConfig("serve", args, getenv, stdout, stderr)
	if errors.Is(err, errHelpShown) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("invalid configuration:\n%w", err)
	}
	// Log lines wait up to LOG_FLUSH_INTERVAL to be written together;
	// warnings and errors at once. Deferred first, so it runs last: every
	// line, "stopped" included, is out when serve returns.
	logs := telemetry.NewLogBuffer(stdout, cfg.LogFlush)
	defer logs.Close()
	log := slog.New(telemetry.FlushAbove(newHandler(cfg, logs), logs))
	redisstore.SetLogger(log) // go-redis's own lines too, structured
	metrics := telemetry.New()
	ln, err := net.Listen("tcp", cfg.Addr)
	if err != nil {
		return fmt.Errorf("BILLING_ADDR %s: %w", cfg.Addr, err)
	}
	defer ln.Close()

	stripeKey, stripeBase, webhookSecrets := cfg.StripeSecretKey, cfg.StripeAPIBase, cfg.WebhookSecrets
	if cfg.UsesSimulator() {
		base, secret, stop, err := startSimulator(cfg, "http://"+webhookHost(ln.Addr().String())+"/webhooks/stripe", log)
		if err != nil {
			return err
		}
		if len(webhookSecrets) == 0 {
			webhookSecrets = []string{secret} // the simulator signs with a secret made up for this run
		}
		defer stop()
		stripeKey, stripeBase = "sk_test_embedded_simulator", base
		log.Warn("STRIPE_SECRET_KEY is unset: using the embedded Stripe simulator, no real Stripe calls are made",
			"simulator_url", base)
	}
	log.Info("configuration", "config", cfg)

	rdb, err := redisstore.Connect(cfg.RedisURL, cfg.RedisAddrs, cfg.RedisPassword)
	if err != nil {
		return err
	}
	store := redisstore.New(rdb, metrics)
	store.SetCampaignIndex(cfg.CampaignIndex)
	store.SetValidateCodeMaxAge(cfg.ValidateCodeAge)
	defer rdb.Close()
	pingCtx, cancel := context.WithTimeout(ctx, 3*time.Second)
	if err := store.Ping(pingCtx); err != nil {
		log.Warn("Redis is not reachable yet; /readyz answers 503 until it is", "err", err.Error())
	}
	cancel()
	// Validate reads the customer's slot once the data has customer markers
	// (migrate-keys, or a store this version started empty): checked before
	// serving, then in the background until it is so (markers.go).
	layoutCtx, cancel := context.WithTimeout(ctx, 3*time.Second)
	if ok, err := store.CheckLayout(layoutCtx); err == nil && !ok && cfg.ValidateCodeAge > 0 {
		log.Warn("the ledger has no customer markers yet: validate reads each code's slot until `billing-adapter migrate-keys` has run")
	}
	cancel()

	a := newApp(cfg, log, metrics, store, stripeKey, stripeBase, webhookSecrets)
	worker, handler := a.worker, a.handler

	srv := &http.Server{
		Handler: handler, ReadHeaderTimeout: readHeaderTimeout, ReadTimeout: readTimeout,
		WriteTimeout: cfg.RequestTimeout + writeTimeoutMargin, IdleTimeout: idleTimeout,
		ErrorLog: slog.NewLogLogger(log.Handler(), slog.LevelWarn),
	}
	workerCtx, stopWorker := context.WithCancel(context.WithoutCancel(ctx))
	workerDone := make(chan struct{})
	go func() { defer close(workerDone); worker.Run(workerCtx) }()
	checkDone := make(chan struct{})
	go func() { defer close(checkDone); checkCatalog(workerCtx, store, a.gw, log) }() // catalogcheck.go
	defer func() { stopWorker(); <-checkDone }()
	defer func() { stopWorker(); <-workerDone }()
	layoutDone := make(chan struct{})
	go func() { defer close(layoutDone); store.WatchLayout(workerCtx) }()
	defer func() { stopWorker(); <-layoutDone }()
	generatorDone := make(chan struct{})
	go func() { defer close(generatorDone); a.generator.Run(workerCtx) }()
	defer func() { stopWorker(); <-generatorDone }()
	served := make(chan error, 1)
	go func() { served <- srv.Serve(ln) }()
	log.Info("billing-adapter listening", "addr", ln.Addr().String(), "url", "http://"+ln.Addr().String())

	select {
	case err := <-served:
		return fmt.Errorf("http server: %w", err)
	case <-ctx.Done():
	}
	log.Info("shutting down: finishing in-flight requests", "timeout", cfg.ShutdownTimeout)
	sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), cfg.ShutdownTimeout)
	defer cancel()
	if err := srv.Shutdown(sctx); err != nil {
		return fmt.Errorf("graceful shutdown: %w", err)
	}
	if err := <-served; err != nil && !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	log.Info("stopped")
	return nil
}

// app is the service's wiring: the HTTP handler (API and webhook receiver)
// and the background worker, on one Redis store and one Stripe gateway.
// serve runs it; the handler benchmarks build exactly the same one.
type app struct {
	handler   http.Handler
	worker    *promo.Worker
	generator *promo.CampaignWorker
	catalog   *promo.Catalog
	redeemer  *promo.Redeemer
	gw        *stripegw.Gateway
}

func newApp(cfg config.Config, log *slog.Logger, metrics *telemetry.Metrics, store *redisstore.Store,
	stripeKey, stripeBase string, webhookSecrets []string) *app {
	gw := stripegw.New(stripegw.Options{
		SecretKey: stripeKey, APIBase: stripeBase, MaxRetries: cfg.StripeMaxRetries,
		Timeout: cfg.StripeTimeout, Logger: log, Metrics: metrics,
	})
	catalog := &promo.Catalog{
		Store: store, Gateway: gw, Clock: promo.SystemClock{}, Log: log,
		NewID: func() string { return "pc_" + ulid.Make().String() },
		Audit: store, NewAuditID: func() string { return "ev_" + ulid.Make().String() },
	}
	plans := &promo.PlanCache{Reader: gw, Clock: promo.SystemClock{}}
	redeemer := &promo.Redeemer{
		Store: store, Stripe: gw, Clock: promo.SystemClock{}, Log: log,
		NewID: func() string { return "rd_" + ulid.Make().String() },
		Lease: cfg.SweepLease, LockTTL: cfg.RequestLease(), Plans: plans,
	}
	worker := promo.NewWorker(redeemer, catalog, workerInterval(cfg.SweepLease), log.With("component", "worker"))
	redeemer.Kick = worker.Kick
	campaigns := &promo.Campaigns{
		Store: store, Gateway: gw, Clock: promo.SystemClock{}, Log: log.With("component", "campaigns"),
		NewID: func() string { return "cmp_" + ulid.Make().String() }, Lease: cfg.CampaignLease,
	}
	// Each process is its own lease owner: a restarted replica resumes its
	// own unfinished campaigns like any other replica, once the lease ends.
	generator := promo.NewCampaignWorker(campaigns, "gen_"+ulid.Make().String(),
		min(max(cfg.CampaignLease/3, 250*time.Millisecond), 5*time.Second), log.With("component", "campaigns"))
	campaigns.Wake = generator.Wake
	redeemer.CampaignKick = generator.Wake
	limiter := store.NewRateLimiter()
	campaigns.Throttle = func(ctx context.Context) error { return limiter.Wait(ctx, "stripe:promotion_codes", cfg.MirrorRate) }
	receiver := &webhooks.Handler{
		Secrets: webhookSecrets, Events: store, Clock: promo.SystemClock{}, Log: log.With("component", "webhooks"),
		Metrics: metrics,
		Observer: &promo.Observer{Store: store, Catalog: catalog, Log: log.With("component", "webhooks"),
			Kick: worker.Kick, Billing: redeemer.Stripe, CampaignKick: generator.Wake, Campaigns: campaigns},
	}
	if cfg.MetricsCodeStock {
		metrics.EnableCodeStock(codeStockLister(catalog))
	}
	con := console.New(console.Options{Keys: httpapi.NewKeys(cfg.APIKeys), Drift: consoleDrift(gw, store), Sessions: store,
		Log: log.With("component", "console")})
	handler := httpapi.New(httpapi.Options{
		Catalog: catalog, Campaigns: campaigns, Redeemer: redeemer,
		Guard: &httpapi.Guard{Limiter: limiter, PerKey: cfg.RateLimitKey, PerCustomer: cfg.RateLimitCust}, Idempotency: store, IdempotencyTTL: cfg.IdempotencyTTL,
		RequestTimeout: cfg.RequestTimeout, IdempotencyLease: cfg.RequestLease(), APIKeys: cfg.APIKeys,
		Ready: store.Ping, Webhooks: receiver, Metrics: metrics, Log: log, Plans: plans, Console: con,
	})
	con.SetAPI(handler)
	con.SetAPI(handler)
	return &app{handler: handler, worker: worker, generator: generator, catalog: catalog, redeemer: redeemer, gw: gw}
}

// startSimulator runs the in-process Stripe simulator on a loopback port. Its
// webhooks go to this service, signed with the first configured secret, and
// `stripe listen` sessions against it get that secret too, so the events the
// Stripe CLI forwards are accepted without a restart.
func startSimulator(cfg config.Config, webhookURL string, log *slog.Logger) (string, string, func(), error) {
	ln, err := net.Listen("tcp", cfg.SimAddr)
	if err != nil {
		return "", "", nil, fmt.Errorf("embedded Stripe simulator on STRIPE_SIM_ADDR %s: %w (set STRIPE_SIM_ADDR to a free address, or 127.0.0.1:0)", cfg.SimAddr, err)
	}
	secret := ""
	if len(cfg.WebhookSecrets) > 0 {
		secret = cfg.WebhookSecrets[0]
	} else {
		var b [16]byte
		_, _ = rand.Read(b[:])
		secret = "whsec_" + hex.EncodeToString(b[:])
	}
	sim, err := stripesim.Open(stripesim.Options{
		StatePath:     cfg.SimState, // STRIPE_SIM_STATE: the local world survives restarts
		WebhookURL:    webhookURL,
		WebhookSecret: secret,
		// The Stripe CLI's sessions sign with the same secret (README: the Stripe CLI, offline).
		CLIWebhookSecret: secret,
		Logger:           log.With("component", "stripe-sim"),
	})
	if err != nil {
		ln.Close()
		return "", "", nil, fmt.Errorf("STRIPE_SIM_STATE: %w", err)
	}
	srv := &http.Server{Handler: sim, ReadHeaderTimeout: readHeaderTimeout}
	go func() { _ = srv.Serve(ln) }()
	stop := func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = srv.Shutdown(ctx)
		sim.Close()
	}
	return "http://" + ln.Addr().String(), secret, stop, nil
}

// webhookHost is where the embedded simulator reaches this service.
func webhookHost(addr string) string {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return addr
	}
	if host == "" || host == "0.0.0.0" || host == "::" {
		host = "127.0.0.1"
	}
	return net.JoinHostPort(host, port)
}

// workerInterval is how often the background worker looks for expired
// reservations: a quarter of their lease, between 1s and 30s.
func workerInterval(lease time.Duration) time.Duration {
	return min(max(lease/4, time.Second), 30*time.Second)
}

// codeStockLister reads the active codes' counters for the opt-in per-code
// gauges (METRICS_CODE_STOCK), newest first, up to max codes.
func codeStockLister(catalog *promo.Catalog) func(ctx context.Context, max int) ([]telemetry.CodeStock, error) {
	return func(ctx context.Context, max int) ([]telemetry.CodeStock, error) {
		var out []telemetry.CodeStock
		after := ""
		for len(out) < max {
			page, err := catalog.List(ctx, promo.ListFilter{Status: promo.StatusActive, Limit: 100, StartingAfter: after})
			if err != nil {
				return out, err
			}
			for _, p := range page.Data {
				if len(out) == max {
					break
				}
				out = append(out, telemetry.CodeStock{Code: p.Code, Stock: p.Stock, Reserved: p.Reserved, Uses: p.Uses,
					Unlimited: p.UnlimitedStock})
			}
			if !page.HasMore || len(page.Data) == 0 {
				break
			}
			after = page.Data[len(page.Data)-1].ID
		}
		return out, nil
	}
}
