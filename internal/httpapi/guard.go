package httpapi

import (
	"context"
	"math"
	"strconv"
	"time"

	"github.com/billing-adapter/billing-adapter/config"
	"github.com/billing-adapter/billing-adapter/internal/promo"
	"github.com/labstack/echo/v4"
)

// Limiter counts requests against a limit per subject, across replicas
// (redisstore.RateLimiter): it answers how long until the subject may send
// another request, 0 when this one is allowed.
type Limiter interface {
	Allow(ctx context.Context, subject string, limit config.RateLimit) (retryAfter time.Duration, err error)
}

// Guard is the brute-force guard of the requests that try a code text:
// validate, subscribe with a code, and apply. Each is counted against its
// API key's limit and its customer's (apply without customer: its
// subscription's); over either, 429 rate_limited with Retry-After.
type Guard struct {
	Limiter     Limiter
	PerKey      config.RateLimit
	PerCustomer config.RateLimit
}

// guard checks the request's allowance. A refused request is not counted
// against the customer when its key's allowance is spent; a replayed
// idempotent request never reaches it.
func (s *server) guard(c echo.Context, customer string) error {
	g := s.Guard
	if g == nil || g.Limiter == nil {
		return nil
	}
	ctx := c.Request().Context()
	var wait time.Duration
	var err error
	if !g.PerKey.Off() { // an off limit allows everything: no subject to build
		key, _ := apiKeyName(c)
		wait, err = g.Limiter.Allow(ctx, "key:"+key, g.PerKey)
	}
	if err == nil && wait == 0 && customer != "" && !g.PerCustomer.Off() {
		wait, err = g.Limiter.Allow(ctx, "cus:"+customer, g.PerCustomer)
	}
	if err != nil {
		return err
	}
	if wait > 0 {
		secs := int(math.Ceil(wait.Seconds()))
		c.Response().Header().Set("Retry-After", strconv.Itoa(secs))
		return &promo.Error{Code: promo.CodeRateLimited,
			Message: "Too many attempts with promo codes; retry after " + strconv.Itoa(secs) + " s."}
	}
	return nil
}
