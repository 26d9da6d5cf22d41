package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"time"

	"github.com/billing-adapter/billing-adapter/config"
	"github.com/billing-adapter/billing-adapter/internal/promo"
	"github.com/billing-adapter/billing-adapter/internal/redisstore"
	"github.com/billing-adapter/billing-adapter/internal/stripegw"
	"github.com/billing-adapter/billing-adapter/internal/telemetry"
)

// errDrift makes reconcile exit non-zero when Redis and Stripe differ.
var errDrift = errors.New("Redis differs from Stripe; run with -fix to repair Redis from Stripe")

// reconcile compares Redis with Stripe, prints every difference and, with
// -fix, repairs Redis with Stripe as the truth. Progress goes to stderr, the
// drift report to stdout.
func reconcile(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("reconcile", flag.ContinueOnError)
	fix := fs.Bool("fix", false, "repair Redis with Stripe as the truth (refused while reservations are in flight)")
	sinceText := fs.String("since", "", "read only paid invoices created on or after this date (2026-01-02 or RFC 3339);\n"+
		"cycles, uses and discounted totals are complete only without it")
	if err := parseFlags(fs, args, "usage: billing-adapter reconcile [-fix] [-since DATE]  (Stripe and Redis from the environment; see 'help config')", stdout, stderr); err != nil {
		if errors.Is(err, errHelpShown) {
			return nil
		}
		return err
	}
	if fs.NArg() > 0 {
		return usageError{fmt.Sprintf("reconcile takes no arguments, got %q", fs.Args())}
	}
	since, err := parseSince(*sinceText)
	if err != nil {
		return usageError{err.Error()}
	}
	cfg, err := config.LoadTool(getenv)
	if err != nil {
		return fmt.Errorf("invalid configuration:\n%w", err)
	}
	if cfg.UsesSimulator() {
		return usageError{"reconcile reads Stripe: set STRIPE_SECRET_KEY (and STRIPE_API_BASE to reconcile against stripe-sim)"}
	}
	log := newLogger(cfg, stderr)
	redisstore.SetLogger(log) // go-redis's own lines too, structured
	rdb, err := redisstore.Connect(cfg.RedisURL, cfg.RedisAddrs, cfg.RedisPassword)
	if err != nil {
		return err
	}
	defer rdb.Close()
	store := redisstore.New(rdb, telemetry.New())
	gw := stripegw.New(stripegw.Options{SecretKey: cfg.StripeSecretKey, APIBase: cfg.StripeAPIBase,
		MaxRetries: cfg.StripeMaxRetries, Timeout: cfg.StripeTimeout, Logger: log})

	progress := func(list string, read, kept int) {
		fmt.Fprintf(stderr, "reconcile: %s: %d read, %d of ours\n", list, read, kept)
	}
	fmt.Fprintln(stderr, "reconcile: reading Stripe")
	snap, err := promo.ReadStripe(ctx, gw, since, progress)
	if err != nil {
		return fmt.Errorf("reading Stripe: %w", err)
	}
	now := time.Now().UTC()
	rebuilt := promo.Rebuild(snap, now)
	for _, p := range rebuilt.Problems {
		fmt.Fprintf(stdout, "PROBLEM   %s\n", p)
	}
	fmt.Fprintln(stderr, "reconcile: reading Redis")
	current, err := store.LoadState(ctx)
	if err != nil {
		return fmt.Errorf("reading Redis: %w", err)
	}
	drift := promo.Diff(current, rebuilt, snap.PaidCustomers)
	for _, d := range drift {
		fmt.Fprintln(stdout, d)
	}
	lines := 0
	for _, l := range rebuilt.Ledgers {
		lines += len(l)
	}
	fmt.Fprintf(stdout, "reconcile: Stripe has %d codes and %d redemptions of ours; Redis has %d codes; %d differences\n",
		len(rebuilt.Codes), lines, len(current.Codes), len(drift))
	if !*fix {
		if len(drift) > 0 {
			return errDrift
		}
		return nil
	}
	if n := current.InFlight(); n > 0 {
		return fmt.Errorf("%d reservations are in flight: wait until they settle (the service's sweeper resolves them within RESERVATION_LEASE) and run again", n)
	}
	counts, err := store.ApplyRebuild(ctx, rebuilt, current, snap.PaidCustomers, promo.Drifting(drift), now)
	if err != nil {
		return fmt.Errorf("repairing Redis: %w", err)
	}
	fmt.Fprintf(stdout, "reconcile: fixed: wrote %d codes with %d redemptions, made %d codes Stripe no longer has inactive, recorded %d paid customers\n",
		counts.Codes, counts.Redemptions, counts.Deactivated, counts.Paid)
	return nil
}

func parseSince(s string) (time.Time, error) {
	if s == "" {
		return time.Time{}, nil
	}
	for _, layout := range []string{time.DateOnly, time.RFC3339} {
		if t, err := time.Parse(layout, s); err == nil {
			return t.UTC(), nil
		}
	}
	return time.Time{}, fmt.Errorf("-since %q: use a date such as 2026-01-02 or an RFC 3339 time", s)
}
