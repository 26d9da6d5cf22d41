package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"strings"

	"github.com/billing-adapter/billing-adapter/config"
)

// usageError is a command-line mistake (exit status 2).
type usageError struct{ msg string }

func (e usageError) Error() string { return e.msg }

func exitCode(err error) int {
	var u usageError
	if errors.As(err, &u) {
		return 2
	}
	return 1
}

const usage = `usage: billing-adapter <command> [flags]

commands:
  serve                 run the HTTP API (flags: -addr, -redis-url; see 'billing-adapter help config')
  reconcile [-fix] [-since DATE]
                        compare Redis with Stripe, print the drift (exit 1 if any); -fix repairs Redis from Stripe
  migrate-keys          move data from the former fixed-slot keys (code text index, claims, paid customers,
                        sweeper marks, counted invoices) to the per-object layout; once, safe to repeat
  webhooks send FILE    sign a Stripe event (JSON file, - for stdin) with STRIPE_WEBHOOK_SECRETS and post it to
                        the service (flags: -url, default http://BILLING_ADDR/webhooks/stripe)
  help                  this text; 'help config' lists every environment variable
`

// run is the whole program; main only wires the process to it, and tests call
// it directly.
func run(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	if len(args) == 0 {
		fmt.Fprint(stderr, usage)
		return usageError{"no command given"}
	}
	switch args[0] {
	case "serve":
		return serve(ctx, args[1:], getenv, stdout, stderr)
	case "reconcile":
		return reconcile(ctx, args[1:], getenv, stdout, stderr)
	case "migrate-keys":
		return migrateKeys(ctx, args[1:], getenv, stdout, stderr)
	case "webhooks":
		if len(args) < 2 || args[1] != "send" {
			fmt.Fprint(stderr, usage)
			return usageError{"usage: billing-adapter webhooks send FILE.json"}
		}
		return sendWebhook(ctx, args[2:], getenv, stdout, stderr)
	case "help", "-h", "--help":
		if len(args) > 1 && args[1] == "config" {
			printVars(stdout)
			return nil
		}
		fmt.Fprint(stdout, usage)
		return nil
	}
	fmt.Fprint(stderr, usage)
	return usageError{fmt.Sprintf("unknown command %q", args[0])}
}

func printVars(w io.Writer) {
	for _, v := range config.Vars {
		def := v.Default
		if def == "" {
			def = "(unset)"
		}
		fmt.Fprintf(w, "%-28s default %-28s %s\n", v.Name, def, v.Help)
	}
}

// newLogger builds the one logger of the process.
func newLogger(cfg config.Config, w io.Writer) *slog.Logger {
	opts := &slog.HandlerOptions{Level: cfg.LogLevel}
	if strings.EqualFold(cfg.LogFormat, "text") {
		return slog.New(slog.NewTextHandler(w, opts))
	}
	return slog.New(slog.NewJSONHandler(w, opts))
}
