package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/signal"
	"sync"
	"syscall"
	"time"

	"github.com/billing-adapter/billing-adapter/webhooks"
	"github.com/labstack/echo/v4"
	"github.com/redis/go-redis/v9"
)

// baselineKey is the small key the baseline's round trips read.
const baselineKey = "bench:baseline"

// baselineServer is `billing-bench baseline-server`: the limit the service
// is compared with. A bare echo handler on the same path that reads the
// body, makes the same number of Redis round trips as the real handler
// (each a GET of a small key) and answers a small JSON object; the webhook
// kind also checks the Stripe-Signature with the service's own HMAC-SHA256
// check (webhooks.Verify) and re-sends of an event ID make as many round
// trips as the real duplicate path. No logging, no auth, no middleware.
func baselineServer(args []string) error {
	fs := flag.NewFlagSet("baseline-server", flag.ContinueOnError)
	kind := fs.String("kind", "validate", "validate or webhook")
	addr := fs.String("addr", "127.0.0.1:0", "listen address")
	redisURL := fs.String("redis-url", "", "Redis URL")
	trips := fs.Int("trips", 3, "Redis round trips per request (a new event, for webhook)")
	dupTrips := fs.Int("dup-trips", 1, "Redis round trips per re-sent event (webhook)")
	secret := fs.String("secret", "", "webhook signing secret (webhook)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	opt, err := redis.ParseURL(*redisURL)
	if err != nil {
		return fmt.Errorf("-redis-url: %w", err)
	}
	rdb := redis.NewClient(opt)
	defer rdb.Close()
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := rdb.Set(ctx, baselineKey, "1", 0).Err(); err != nil {
		return err
	}
	roundTrips := func(ctx context.Context, n int) error {
		for range n {
			if err := rdb.Get(ctx, baselineKey).Err(); err != nil {
				return err
			}
		}
		return nil
	}

	e := echo.New()
	e.HideBanner, e.HidePort = true, true
	e.GET("/healthz", func(c echo.Context) error { return c.JSON(http.StatusOK, map[string]string{"status": "ok"}) })
	switch *kind {
	case "validate":
		e.POST("/v1/promo_codes/validate", func(c echo.Context) error {
			if _, err := io.ReadAll(c.Request().Body); err != nil {
				return err
			}
			if err := roundTrips(c.Request().Context(), *trips); err != nil {
				return err
			}
			return c.JSON(http.StatusOK, map[string]any{"object": "promo_code_validation", "valid": true})
		})
	case "webhook":
		var seen sync.Map
		secrets := []string{*secret}
		e.POST("/webhooks/stripe", func(c echo.Context) error {
			body, err := io.ReadAll(io.LimitReader(c.Request().Body, webhooks.MaxBody+1))
			if err != nil {
				return err
			}
			if err := webhooks.Verify(body, c.Request().Header.Get("Stripe-Signature"), secrets, time.Now()); err != nil {
				return c.JSON(http.StatusBadRequest, map[string]string{"error": err.Error()})
			}
			var ev struct {
				ID string `json:"id"`
			}
			if err := json.Unmarshal(body, &ev); err != nil {
				return c.JSON(http.StatusBadRequest, map[string]string{"error": "not an event"})
			}
			n := *trips
			if _, dup := seen.LoadOrStore(ev.ID, true); dup {
				n = *dupTrips
			}
			if err := roundTrips(c.Request().Context(), n); err != nil {
				return err
			}
			return c.JSON(http.StatusOK, map[string]bool{"received": true})
		})
	default:
		return fmt.Errorf("-kind must be validate or webhook, not %q", *kind)
	}
	ln, err := net.Listen("tcp", *addr)
	if err != nil {
		return err
	}
	srv := &http.Server{Handler: e, ReadHeaderTimeout: 5 * time.Second, IdleTimeout: 120 * time.Second}
	served := make(chan error, 1)
	go func() { served <- srv.Serve(ln) }()
	select {
	case err := <-served:
		return err
	case <-ctx.Done():
	}
	sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := srv.Shutdown(sctx); err != nil && !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	return nil
}
