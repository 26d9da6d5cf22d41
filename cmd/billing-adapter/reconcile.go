package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"strings"
	"time"

	"github.com/billing-adapter/billing-adapter/config"
	"github.com/billing-adapter/billing-adapter/internal/promo"
	"github.com/billing-adapter/billing-adapter/internal/redisstore"
	"github.com/billing-adapter/billing-adapter/internal/stripegw"
	"github.com/billing-adapter/billing-adapter/internal/telemetry"
	"github.com/billing-adapter/billing-adapter/webhooks"
	"github.com/oklog/ulid/v2"
)

// errDrift makes reconcile exit non-zero when Redis and Stripe differ.
var errDrift = errors.New("Redis differs from Stripe; run with -fix to repair Redis from Stripe")

// reconcile compares Redis with Stripe, prints every difference and, with
// -fix, repairs Redis with Stripe as the truth. Progress goes to stderr, the
// drift report to stdout.
func reconcile(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("reconcile", flag.ContinueOnError)
	fix := fs.Bool("fix", false, "repair Redis with Stripe as the truth (refused while reservations are in flight)")
	rate := fs.Float64("rate", 0, "Stripe list requests per second, all walks together (default 80 with a live key, 20 with a test key:\n"+
		"below Stripe's 100/s live and 25/s test mode limits)")
	events := fs.Duration("events", 0, "incremental mode for daily runs: replay Stripe's events of this last period (at most 720h:\n"+
		"Stripe keeps events 30 days) through the webhook handlers, skipping events already processed, instead of a full comparison")
	partitions := fs.Int("partitions", 8, "created-time ranges of the subscription and invoice lists read at once (1 = one walk)")
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

	if *rate <= 0 {
		*rate = defaultReadRate(cfg.StripeSecretKey)
	}
	if *events != 0 {
		if *events < 0 || *events > 720*time.Hour {
			return usageError{fmt.Sprintf("-events %s: use a period up to 720h (Stripe keeps events 30 days)", *events)}
		}
		if *fix || !since.IsZero() {
			return usageError{"-events replays events; it takes neither -fix nor -since"}
		}
		return replayEvents(ctx, cfg, log, store, gw, time.Now().Add(-*events), stdout, stderr)
	}
	if *partitions < 1 || *partitions > 64 {
		return usageError{fmt.Sprintf("-partitions %d: use 1 to 64", *partitions)}
	}
	reader := stripegw.NewReader(gw, stripegw.ReadOptions{Rate: *rate, Partitions: *partitions})
	started := map[string]time.Time{}
	progress := func(list string, read, kept int) {
		if _, ok := started[list]; !ok {
			started[list] = time.Now()
		}
		line := fmt.Sprintf("reconcile: %s: %d read, %d of ours", list, read, kept)
		if f := reader.Covered(list); f > 0 && f < 1 {
			elapsed := time.Since(started[list])
			left := time.Duration(float64(elapsed) * (1 - f) / f)
			line += fmt.Sprintf(", %.0f%% of the created range, about %s left", 100*f, left.Round(time.Second))
		}
		fmt.Fprintln(stderr, line)
	}
	fmt.Fprintf(stderr, "reconcile: reading Stripe (%g list requests/s, %d ranges at once)\n", *rate, *partitions)
	snap, err := promo.ReadStripe(ctx, reader, since, progress)
	if err != nil {
		return fmt.Errorf("reading Stripe: %w", err)
	}
	now := time.Now().UTC()
	rebuilt := promo.Rebuild(snap, now)
	for _, p := range rebuilt.Problems {
		fmt.Fprintf(stdout, "PROBLEM   %s\n", p)
	}
	fmt.Fprintln(stderr, "reconcile: reading Redis")
	paid := promo.PaidMarks(snap.PaidCustomers, now) // customers whose paid mark is not over
	current, err := loadRedisState(ctx, store, rebuilt, paid)
	if err != nil {
		return fmt.Errorf("reading Redis: %w", err)
	}
	for _, n := range driftNotes(current, rebuilt) {
		fmt.Fprintln(stdout, n)
	}
	drift := promo.Diff(current, rebuilt, paid)
	for _, d := range drift {
		fmt.Fprintln(stdout, d)
	}
	fmt.Fprintln(stdout, "reconcile: "+driftSummary(rebuilt, current, drift))
	if !*fix {
		if len(drift) > 0 {
			return errDrift
		}
		return nil
	}
	if n := current.InFlight(); n > 0 {
		return fmt.Errorf("%d reservations are in flight: wait until they settle (the service's sweeper resolves them within RESERVATION_LEASE) and run again", n)
	}
	counts, err := store.ApplyRebuild(ctx, rebuilt, current, paid, promo.Drifting(drift), now)
	if err != nil {
		return fmt.Errorf("repairing Redis: %w", err)
	}
	fmt.Fprintf(stdout, "reconcile: fixed: wrote %d codes and %d campaigns with %d redemptions, made %d codes Stripe no longer has inactive, recorded %d paid customers\n",
		counts.Codes, counts.Campaigns, counts.Redemptions, counts.Deactivated, counts.Paid)
	if left := promo.Unrepairable(drift); len(left) > 0 {
		return fmt.Errorf("%d differences cannot be repaired from Stripe (see the lines above): %s", len(left), strings.Join(left, "; "))
	}
	return nil
}

// loadRedisState reads what reconcile compares with Stripe's rebuilt state:
// every listed code and campaign, and the campaigns Stripe has that Redis
// has a record of but does not list (a create cut short).
func loadRedisState(ctx context.Context, store *redisstore.Store, rebuilt *promo.Rebuilt, paid map[string]time.Time) (*promo.LedgerState, error) {
	current, err := store.LoadState(ctx, paid)
	if err != nil {
		return nil, err
	}
	ids := make([]string, len(rebuilt.Campaigns))
	for i, c := range rebuilt.Campaigns {
		ids[i] = c.ID
	}
	return current, store.LoadCampaigns(ctx, current, ids)
}

// driftNotes are the report's lines about what is not drift: unused
// campaign coupons no campaign names (promo.OrphanCampaignCoupons).
func driftNotes(current *promo.LedgerState, rebuilt *promo.Rebuilt) []string {
	var out []string
	for _, id := range promo.OrphanCampaignCoupons(current, rebuilt) {
		out = append(out, fmt.Sprintf("NOTE      %s: a campaign coupon no campaign in Redis names and nothing in Stripe uses "+
			"(left by a campaign create cut short; its retry made a new campaign): not drift", id))
	}
	return out
}

// driftSummary is the report's last line (reconcile and the console's
// drift page).
func driftSummary(rebuilt *promo.Rebuilt, current *promo.LedgerState, drift []promo.Drift) string {
	lines := 0
	for _, l := range rebuilt.Ledgers {
		lines += len(l)
	}
	return fmt.Sprintf("Stripe has %d codes, %d campaigns and %d redemptions of ours; Redis has %d codes and %d campaigns; %d differences",
		len(rebuilt.Codes), len(rebuilt.Campaigns), lines, len(current.Codes), len(current.Campaigns), len(drift))
}

// defaultReadRate is reconcile's Stripe request rate without -rate: below
// Stripe's read limits (100 requests/s in live mode, 25 in test mode), with
// room for the service's own calls.
func defaultReadRate(secretKey string) float64 {
	if strings.HasPrefix(secretKey, "sk_live_") || strings.HasPrefix(secretKey, "rk_live_") {
		return 80
	}
	return 20
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

// replayEvents is reconcile's incremental mode: Stripe's events since the
// given time, of the types the receiver handles, go through the same
// processing as a webhook delivery (webhooks.Handler.Process: deduplicated
// by event ID, so what the webhooks already applied is skipped, and every
// handler is order independent). It repairs what missed webhooks left out
// (an endpoint down longer than Stripe's 3 days of retries, a deleted
// endpoint) for the cost of reading the events, not every object.
func replayEvents(ctx context.Context, cfg config.Config, log *slog.Logger, store *redisstore.Store, gw *stripegw.Gateway,
	since time.Time, stdout, stderr io.Writer) error {
	catalog := &promo.Catalog{Store: store, Gateway: gw, Clock: promo.SystemClock{}, Log: log,
		NewID: func() string { return "pc_" + ulid.Make().String() },
		Audit: store, NewAuditID: func() string { return "ev_" + ulid.Make().String() }}
	h := &webhooks.Handler{Events: store, Clock: promo.SystemClock{}, Log: log.With("component", "webhooks"),
		Observer: &promo.Observer{Store: store, Catalog: catalog, Log: log.With("component", "webhooks"), Billing: gw}}
	fmt.Fprintf(stderr, "reconcile: replaying Stripe's events since %s\n", since.UTC().Format(time.RFC3339))
	counts := map[string]int{}
	read, failed := 0, 0
	err := gw.EachEvent(ctx, since, webhooks.HandledTypes(), func(body []byte) error {
		read++
		res, err := h.Process(ctx, body)
		counts[res.Outcome]++
		if err != nil {
			failed++
			fmt.Fprintf(stdout, "FAILED    %s\n", err)
		}
		if read%1000 == 0 {
			fmt.Fprintf(stderr, "reconcile: events: %d read\n", read)
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("reading Stripe's events: %w", err)
	}
	fmt.Fprintf(stdout, "reconcile: %d events replayed: %d applied now, %d already applied, %d ignored, %d failed\n",
		read, counts["processed"], counts["duplicate"], counts["ignored"], failed)
	if failed > 0 {
		return fmt.Errorf("%d events could not be applied; run again (each is applied once)", failed)
	}
	return nil
}
