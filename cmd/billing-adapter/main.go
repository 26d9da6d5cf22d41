// Command billing-adapter is the promo-code-on-Stripe service: `serve` runs
// the HTTP API; see `billing-adapter help`.
package main

import (
	"context"
	"fmt"
	"os"
	"os/signal"
	"runtime/debug"
	"syscall"
)

// reconcileMemoryLimit is the Go runtime's soft memory limit of a
// `reconcile` process (unless GOMEMLIMIT says otherwise): the collector
// works harder near it instead of letting the heap double, so a large
// account's reconcile stays near its live data (docs/BENCHMARKS.md).
const reconcileMemoryLimit = 256 << 20

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if len(os.Args) > 1 && os.Args[1] == "reconcile" && os.Getenv("GOMEMLIMIT") == "" {
		debug.SetMemoryLimit(reconcileMemoryLimit)
	}
	if err := run(ctx, os.Args[1:], os.Getenv, os.Stdout, os.Stderr); err != nil {
		fmt.Fprintln(os.Stderr, "billing-adapter:", err)
		os.Exit(exitCode(err))
	}
}
