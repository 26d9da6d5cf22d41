package redisstore

import (
	"context"
	"errors"
	"fmt"
	"net"
	"strings"

	"github.com/billing-adapter/billing-adapter/internal/promo"
	"github.com/billing-adapter/billing-adapter/internal/telemetry"
	"github.com/redis/go-redis/v9"
)

// Connect opens a client: Redis Cluster when addrs is non-empty (through
// NewClusterClient even for one seed address), else the server in url.
// password, when set, overrides the URL's password.
func Connect(url string, addrs []string, password string) (redis.UniversalClient, error) {
	if len(addrs) > 0 {
		return redis.NewClusterClient(&redis.ClusterOptions{Addrs: addrs, Password: password}), nil
	}
	opt, err := redis.ParseURL(url)
	if err != nil {
		return nil, fmt.Errorf("REDIS_URL: %w", err)
	}
	if password != "" {
		opt.Password = password
	}
	return redis.NewClient(opt), nil
}

// Store is the Redis implementation of the domain's stores.
type Store struct {
	rdb redis.UniversalClient
}

// New wraps a client. Metrics (may be nil) counts failed commands.
func New(rdb redis.UniversalClient, m *telemetry.Metrics) *Store {
	rdb.AddHook(errorHook{m})
	return &Store{rdb: rdb}
}

// Client returns the underlying client.
func (s *Store) Client() redis.UniversalClient { return s.rdb }

// Ping reports whether Redis answers (readiness).
func (s *Store) Ping(ctx context.Context) error {
	if err := s.rdb.Ping(ctx).Err(); err != nil {
		return unavailable(err)
	}
	return nil
}

// unavailable translates a Redis failure at the boundary.
func unavailable(err error) error {
	if err == nil {
		return nil
	}
	var pe *promo.Error
	if errors.As(err, &pe) || errors.Is(err, promo.ErrNotFound) {
		return err
	}
	return promo.Unavailable("Redis", err)
}

// errorHook counts failed commands by name (redis.Nil is not a failure).
type errorHook struct{ m *telemetry.Metrics }

func (h errorHook) DialHook(next redis.DialHook) redis.DialHook {
	return func(ctx context.Context, network, addr string) (net.Conn, error) {
		c, err := next(ctx, network, addr)
		if err != nil {
			h.m.RedisError("dial")
		}
		return c, err
	}
}

func (h errorHook) ProcessHook(next redis.ProcessHook) redis.ProcessHook {
	return func(ctx context.Context, cmd redis.Cmder) error {
		err := next(ctx, cmd)
		if err != nil && !errors.Is(err, redis.Nil) {
			h.m.RedisError(strings.ToLower(cmd.Name()))
		}
		return err
	}
}

func (h errorHook) ProcessPipelineHook(next redis.ProcessPipelineHook) redis.ProcessPipelineHook {
	return func(ctx context.Context, cmds []redis.Cmder) error {
		err := next(ctx, cmds)
		if err != nil && !errors.Is(err, redis.Nil) {
			h.m.RedisError("pipeline")
		}
		return err
	}
}

// Store implements every persistence port of the domain.
var (
	_ promo.Store            = (*Store)(nil)
	_ promo.IdempotencyStore = (*Store)(nil)
	_ promo.RedemptionStore  = (*Store)(nil)
)
