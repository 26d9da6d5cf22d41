package redisstore

import (
	"context"
	"errors"
	"time"

	"github.com/billing-adapter/billing-adapter/internal/promo"
	"github.com/redis/go-redis/v9"
)

// beginEventScript: lua/begin_event.lua.
var beginEventScript = plainScript("begin_event")

// abortEventScript: lua/abort_event.lua.
var abortEventScript = plainScript("abort_event")

// BeginEvent implements promo.EventStore.
func (s *Store) BeginEvent(ctx context.Context, id string, lease time.Duration) (promo.EventOutcome, string, error) {
	token := randomToken()
	res, err := s.runShared(ctx, s.sendShared, beginEventScript, []string{eventKey(id)}, token, lease.Milliseconds()).Text()
	if err != nil {
		return 0, "", unavailable(err)
	}
	switch res {
	case "done":
		return promo.EventDone, "", nil
	case "inflight":
		return promo.EventInFlight, "", nil
	case "new":
		return promo.EventNew, token, nil
	}
	return 0, "", unavailable(errors.New("unexpected event claim answer " + res))
}

// FinishEvent implements promo.EventStore. It marks the event done even if
// this attempt's claim ended meanwhile: its effect is applied.
func (s *Store) FinishEvent(ctx context.Context, id, _ string, keep time.Duration) error {
	args := []any{"set", eventKey(id), "d"}
	if keep > 0 {
		args = append(args, "px", keep.Milliseconds())
	}
	done := redis.NewStatusCmd(ctx, args...)
	s.sendShared(ctx, done)
	return unavailable(done.Err())
}

// AbortEvent implements promo.EventStore.
func (s *Store) AbortEvent(ctx context.Context, id, token string) error {
	return unavailable(abortEventScript.Run(ctx, s.rdb, []string{eventKey(id)}, token).Err())
}
