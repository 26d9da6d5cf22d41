package redistest

import (
	"context"
	"sync/atomic"

	"github.com/redis/go-redis/v9"
)

// TripCounter is a go-redis hook counting Redis round trips: one per
// command or pipeline sent (the handler benchmarks' redis-rt/op, and the
// store's tests of how many trips a path makes). Add it with
// client.AddHook(redistest.TripCounter{N: &n}).
type TripCounter struct{ N *atomic.Int64 }

func (h TripCounter) DialHook(next redis.DialHook) redis.DialHook { return next }

func (h TripCounter) ProcessHook(next redis.ProcessHook) redis.ProcessHook {
	return func(ctx context.Context, cmd redis.Cmder) error { h.N.Add(1); return next(ctx, cmd) }
}

func (h TripCounter) ProcessPipelineHook(next redis.ProcessPipelineHook) redis.ProcessPipelineHook {
	return func(ctx context.Context, cmds []redis.Cmder) error { h.N.Add(1); return next(ctx, cmds) }
}
