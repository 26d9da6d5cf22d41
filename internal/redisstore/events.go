package redisstore

import (
	"context"
	"errors"
	"time"

	"github.com/billing-adapter/billing-adapter/internal/promo"
	"github.com/redis/go-redis/v9"
)

func eventKey(id string) string { return "ba:evt:" + id }

// beginEventScript claims an event. KEYS: event. ARGV: token, lease ms.
// The value is "p:<token>" while processing (with the lease as TTL) and "d"
// once done (kept 7 days).
var beginEventScript = redis.NewScript(`
local v = redis.call('GET', KEYS[1])
if v == 'd' then return 'done' end
if v then return 'inflight' end
redis.call('SET', KEYS[1], 'p:' .. ARGV[1], 'PX', ARGV[2])
return 'new'
`)

// abortEventScript: KEYS event; ARGV token.
var abortEventScript = redis.NewScript(`
if redis.call('GET', KEYS[1]) == 'p:' .. ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
`)

// BeginEvent implements promo.EventStore.
func (s *Store) BeginEvent(ctx context.Context, id string, lease time.Duration) (promo.EventOutcome, string, error) {
	token := randomToken()
	res, err := beginEventScript.Run(ctx, s.rdb, []string{eventKey(id)}, token, lease.Milliseconds()).Text()
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
	return unavailable(s.rdb.Set(ctx, eventKey(id), "d", keep).Err())
}

// AbortEvent implements promo.EventStore.
func (s *Store) AbortEvent(ctx context.Context, id, token string) error {
	return unavailable(abortEventScript.Run(ctx, s.rdb, []string{eventKey(id)}, token).Err())
}
