package redisstore

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"time"

	"github.com/billing-adapter/billing-adapter/internal/promo"
	"github.com/redis/go-redis/v9"
)

// lockWait is how long Lock waits for a busy lock before answering 409.
const lockWait = 3 * time.Second

// unlockScript: lua/unlock.lua.
var unlockScript = plainScript("unlock")

// Lock implements promo.Store: a lease lock (SET NX PX) so that a crashed
// holder cannot block the code longer than ttl.
func (s *Store) Lock(ctx context.Context, id string, ttl time.Duration) (func(), error) {
	token := randomToken()
	key := lockKey(id)
	deadline := time.Now().Add(lockWait)
	for {
		ok, err := s.rdb.SetNX(ctx, key, token, ttl).Result()
		if err != nil {
			return nil, unavailable(err)
		}
		if !ok {
			// A SET the client sent again (its first answer was lost: a
			// slow node, a failover) finds the lock its first attempt took.
			held, err := s.rdb.Get(ctx, key).Result()
			if err != nil && !errors.Is(err, redis.Nil) {
				return nil, unavailable(err)
			}
			ok = held == token
		}
		if ok {
			return func() {
				// Unlock even if the request's context is done.
				ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 2*time.Second)
				defer cancel()
				_ = unlockScript.Run(ctx, s.rdb, []string{key}, token).Err()
			}, nil
		}
		if time.Now().After(deadline) {
			return nil, promo.Errorf(promo.CodeConflict, "another change to %s is in progress; retry shortly", id)
		}
		select {
		case <-ctx.Done():
			return nil, unavailable(errors.Join(errors.New("waiting for lock"), ctx.Err()))
		case <-time.After(25 * time.Millisecond):
		}
	}
}

func randomToken() string {
	var b [16]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}
