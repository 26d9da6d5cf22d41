// Command stripe-sim serves the offline Stripe simulator
// (internal/stripesim) over HTTP for local runs and end-to-end tests.
//
//	stripe-sim -addr 127.0.0.1:12111 -webhook-url http://localhost:8080/webhooks/stripe -seed
//
// Point stripe-go at it with BackendConfig.URL = "http://127.0.0.1:12111"
// and any sk_test_ key.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/billing-adapter/billing-adapter/internal/stripesim"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, os.Args[1:], os.Getenv, os.Stdout, os.Stderr); err != nil {
		fmt.Fprintln(os.Stderr, "stripe-sim:", err)
		os.Exit(1)
	}
}

// run parses flags, serves until ctx is done and then shuts down
// gracefully.
func run(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("stripe-sim", flag.ContinueOnError)
	fs.SetOutput(stderr)
	addr := fs.String("addr", "127.0.0.1:12111", "listen address")
	webhookURL := fs.String("webhook-url", "", "URL that receives signed webhook events (empty: no delivery)")
	webhookSecret := fs.String("webhook-secret", "", "webhook signing secret whsec_... (default $STRIPE_WEBHOOK_SECRET)")
	seed := fs.Bool("seed", false, "create a demo customer, product and monthly price and print their IDs")
	reword := fs.Bool("reword-errors", false, "replace every error message with a neutral numbered sentence (type, code and param stay), so a client test proves it never reads the wording")
	verbose := fs.Bool("v", false, "debug logging")
	statePath := fs.String("state", "", "JSON file to load the whole state from and save it to after every change (empty: in memory)")
	cliSecret := fs.String("cli-webhook-secret", "", "signing secret of every Stripe CLI session (stripe listen); default: one random whsec_ per device name")
	maxEvents := fs.Int("max-events", 0, "keep only about the newest N events (0: all); for load runs that bill years of invoices")
	fs.Usage = func() {
		out := fs.Output()
		fmt.Fprintf(out, "Usage of stripe-sim:\n")
		fs.PrintDefaults()
		fmt.Fprintf(out, "\n%s", stripesim.ControlHelp)
	}
	for _, a := range args {
		if a == "-h" || a == "-help" || a == "--help" {
			fs.SetOutput(stdout) // asked-for help goes to stdout; mistakes stay on stderr
		}
	}
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return nil // -h/--help: the usage went to stdout
		}
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("unexpected arguments: %v", fs.Args())
	}
	secret := *webhookSecret
	if secret == "" {
		secret = getenv("STRIPE_WEBHOOK_SECRET")
	}
	if *webhookURL != "" && secret == "" {
		return errors.New("-webhook-url needs -webhook-secret or STRIPE_WEBHOOK_SECRET to sign deliveries")
	}
	level := slog.LevelInfo
	if *verbose {
		level = slog.LevelDebug
	}
	logger := slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: level}))

	ln, err := net.Listen("tcp", *addr)
	if err != nil {
		return err
	}
	sim, err := stripesim.Open(stripesim.Options{WebhookURL: *webhookURL, WebhookSecret: secret, Logger: logger,
		RewordErrors: *reword, CLIWebhookSecret: *cliSecret, StatePath: *statePath, MaxEvents: *maxEvents})
	if err != nil {
		ln.Close()
		return err
	}
	defer sim.Close()
	if *seed {
		sd, err := sim.Seed()
		if err != nil {
			ln.Close()
			return err
		}
		fmt.Fprintf(stdout, "seeded customer=%s product=%s price=%s\n", sd.CustomerID, sd.ProductID, sd.PriceID)
	}
	srv := &http.Server{Handler: sim, ReadHeaderTimeout: 10 * time.Second}
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	fmt.Fprintf(stdout, "stripe-sim listening on http://%s\n", ln.Addr())
	if *webhookURL != "" {
		fmt.Fprintf(stdout, "delivering webhooks to %s\n", *webhookURL)
	}

	select {
	case err := <-errc:
		return err
	case <-ctx.Done():
	}
	shutdownCtx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	sim.Close() // wakes requests hung by injected faults
	if err := srv.Shutdown(shutdownCtx); err != nil {
		return err
	}
	if err := <-errc; err != nil && !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	return nil
}
