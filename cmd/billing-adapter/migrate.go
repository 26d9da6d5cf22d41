package main

import (
	"context"
	"fmt"
	"io"

	"github.com/billing-adapter/billing-adapter/config"
	"github.com/billing-adapter/billing-adapter/internal/redisstore"
	"github.com/billing-adapter/billing-adapter/internal/telemetry"
)

// migrateKeys moves data from the former fixed-slot keys to the per-object
// key layout (redisstore.MigrateLegacyKeys). It needs Redis only.
func migrateKeys(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	if len(args) > 0 {
		return usageError{fmt.Sprintf("migrate-keys takes no arguments, got %q", args)}
	}
	cfg, err := config.LoadTool(getenv)
	if err != nil {
		return fmt.Errorf("invalid configuration:\n%w", err)
	}
	log := newLogger(cfg, stderr)
	redisstore.SetLogger(log)
	rdb, err := redisstore.Connect(cfg.RedisURL, cfg.RedisAddrs, cfg.RedisPassword)
	if err != nil {
		return err
	}
	defer rdb.Close()
	n, err := redisstore.New(rdb, telemetry.New()).MigrateLegacyKeys(ctx)
	if err != nil {
		return fmt.Errorf("migrating keys: %w", err)
	}
	fmt.Fprintf(stdout, "migrate-keys: moved %d code texts, %d unfinished creates, %d subscription claims, %d paid customers, %d sweeper marks, %d counted invoices; added %d customer markers\n",
		n.Texts, n.Provisional, n.Claims, n.Paid, n.Due, n.Invoices, n.Markers)
	return nil
}
