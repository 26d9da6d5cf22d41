package redisstore

import (
	"context"
	"time"

	"github.com/billing-adapter/billing-adapter/config"
	"github.com/go-redis/redis_rate/v10"
)

// RateLimiter is the brute-force guard's counter store: go-redis/redis_rate
// (GCRA in one Lua script per check, its state one small key per subject,
// expiring when idle), shared by every replica. Its keys are
// "rate:ba:{rl:<subject>}" (the library's prefix, then ours: one slot per
// subject). It reads Redis's clock (TIME), so the replicas agree on it.
type RateLimiter struct{ l *redis_rate.Limiter }

// NewRateLimiter returns a guard on the store's Redis.
func (s *Store) NewRateLimiter() *RateLimiter { return &RateLimiter{l: redis_rate.NewLimiter(s.rdb)} }

// Wait blocks until subject may make one more call under limit (Redis's
// GCRA says how long), or ctx ends.
func (r *RateLimiter) Wait(ctx context.Context, subject string, limit config.RateLimit) error {
	for {
		wait, err := r.Allow(ctx, subject, limit)
		if err != nil || wait == 0 {
			return err
		}
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			return ctx.Err()
		case <-t.C:
		}
	}
}

// Allow takes one request from subject's allowance under limit; when none
// is left it answers how long until one is (> 0), and takes nothing.
func (r *RateLimiter) Allow(ctx context.Context, subject string, limit config.RateLimit) (time.Duration, error) {
	if limit.Off() {
		return 0, nil
	}
	res, err := r.l.Allow(ctx, "ba:{rl:"+subject+"}", redis_rate.Limit{Rate: limit.N, Burst: limit.N, Period: limit.Period})
	if err != nil {
		return 0, unavailable(err)
	}
	if res.Allowed > 0 {
		return 0, nil
	}
	return max(res.RetryAfter, time.Millisecond), nil
}
