// Command billing-adapter is the promo-code-on-Stripe service: `serve` runs
// the HTTP API; see `billing-adapter help`.
package main

import (
	"context"
	"fmt"
	"os"
	"os/signal"
	"syscall"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, os.Args[1:], os.Getenv, os.Stdout, os.Stderr); err != nil {
		fmt.Fprintln(os.Stderr, "billing-adapter:", err)
		os.Exit(exitCode(err))
	}
}
