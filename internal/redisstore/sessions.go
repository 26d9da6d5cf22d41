package redisstore

import (
	"context"
	"errors"
	"time"

	"github.com/redis/go-redis/v9"
)

// Signed-out console sessions (signedOutKey in keys.go): the console's
// cookie is stateless; signing out records its session ID until the cookie
// would have expired, so a copy of the cookie is refused on every replica.

// RevokeSession records that the session ID was signed out, until expires.
func (s *Store) RevokeSession(ctx context.Context, id string, expires time.Time) error {
	ttl := time.Until(expires)
	if ttl <= 0 {
		return nil
	}
	if err := s.rdb.Set(ctx, signedOutKey(id), "1", ttl).Err(); err != nil {
		return unavailable(err)
	}
	return nil
}

// SessionRevoked reports whether the session ID was signed out.
func (s *Store) SessionRevoked(ctx context.Context, id string) (bool, error) {
	err := s.rdb.Get(ctx, signedOutKey(id)).Err()
	switch {
	case errors.Is(err, redis.Nil):
		return false, nil
	case err != nil:
		return false, unavailable(err)
	}
	return true, nil
}
