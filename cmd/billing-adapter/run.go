package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"runtime/debug"
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
  version               the build's version
  help [TOPIC]          this text; 'help config' lists every environment variable; 'help serve', 'help reconcile',
                        'help webhooks' print that command's usage (as does -h/--help after any command)
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
		if len(args) == 2 && isHelpFlag(args[1]) {
			fmt.Fprint(stdout, webhooksUsage)
			return nil
		}
		if len(args) < 2 || args[1] != "send" {
			fmt.Fprint(stderr, usage)
			return usageError{"usage: billing-adapter webhooks send FILE.json"}
		}
		return sendWebhook(ctx, args[2:], getenv, stdout, stderr)
	case "version", "--version":
		fmt.Fprintln(stdout, "billing-adapter", buildVersion())
		return nil
	case "help", "-h", "--help":
		if len(args) == 1 || args[0] != "help" {
			fmt.Fprint(stdout, usage)
			return nil
		}
		switch args[1] {
		case "config":
			printVars(stdout)
			return nil
		case "serve", "reconcile":
			return run(ctx, []string{args[1], "-h"}, getenv, stdout, stderr)
		case "webhooks":
			fmt.Fprint(stdout, webhooksUsage)
			return nil
		case "version":
			fmt.Fprintln(stdout, "billing-adapter version: prints the build's version (module version and VCS revision)")
			return nil
		}
		fmt.Fprint(stderr, usage)
		return usageError{fmt.Sprintf("no help topic %q (topics: config, serve, reconcile, webhooks, version)", args[1])}
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
	return slog.New(newHandler(cfg, w))
}

// newHandler writes log lines to w at LOG_LEVEL in LOG_FORMAT.
func newHandler(cfg config.Config, w io.Writer) slog.Handler {
	opts := &slog.HandlerOptions{Level: cfg.LogLevel}
	if strings.EqualFold(cfg.LogFormat, "text") {
		return slog.NewTextHandler(w, opts)
	}
	return slog.NewJSONHandler(w, opts)
}

const webhooksUsage = `usage: billing-adapter webhooks send [-url URL] FILE.json
  sign a Stripe event (JSON file, - for stdin) with the first of STRIPE_WEBHOOK_SECRETS and post it to the service
  -url string
    	receiver URL (default http://BILLING_ADDR/webhooks/stripe)
`

func isHelpFlag(a string) bool { return a == "-h" || a == "-help" || a == "--help" }

// errHelpShown: -h/--help printed the command's usage; the command exits 0.
var errHelpShown = errors.New("help shown")

// parseFlags parses a command's flags. -h/--help prints usageLine and the
// flags on stdout (errHelpShown); a mistake prints them on stderr (usageError).
func parseFlags(fs *flag.FlagSet, args []string, usageLine string, stdout, stderr io.Writer) error {
	fs.SetOutput(io.Discard)
	fs.Usage = func() {}
	err := fs.Parse(args)
	if err == nil {
		return nil
	}
	out := stderr
	if errors.Is(err, flag.ErrHelp) {
		out = stdout
	}
	fmt.Fprintln(out, usageLine)
	fs.SetOutput(out)
	fs.PrintDefaults()
	if errors.Is(err, flag.ErrHelp) {
		return errHelpShown
	}
	return usageError{err.Error()}
}

// buildVersion is the module's version and VCS revision from the build info
// ("(devel)" for a plain go build in a work tree).
func buildVersion() string {
	bi, ok := debug.ReadBuildInfo()
	if !ok {
		return "unknown"
	}
	v := bi.Main.Version
	var rev, modified string
	for _, s := range bi.Settings {
		switch s.Key {
		case "vcs.revision":
			rev = s.Value
		case "vcs.modified":
			if s.Value == "true" {
				modified = "+dirty"
			}
		}
	}
	if rev != "" {
		v += " " + rev + modified
	}
	return v + " " + bi.GoVersion
}
