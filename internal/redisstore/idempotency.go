package redisstore

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"strconv"
	"time"

	"github.com/billing-adapter/billing-adapter/internal/promo"
	"github.com/redis/go-redis/v9"
)

func idemKey(key string) string {
	h := sha256.Sum256([]byte(key))
	return "ba:{idem:" + hex.EncodeToString(h[:]) + "}"
}

// beginScript: KEYS record; ARGV fingerprint, token, lease ms.
var beginScript = redis.NewScript(`
local st = redis.call('HGET', KEYS[1], 'state')
if not st then
  redis.call('HSET', KEYS[1], 'state', 'running', 'fp', ARGV[1], 'token', ARGV[2])
  redis.call('PEXPIRE', KEYS[1], ARGV[3])
  return {'proceed'}
end
if redis.call('HGET', KEYS[1], 'fp') ~= ARGV[1] then return {'mismatch'} end
if st == 'running' then return {'inflight'} end
local r = redis.call('HMGET', KEYS[1], 'status', 'ctype', 'body')
return {'replay', r[1], r[2], r[3]}
`)

// completeScript: KEYS record; ARGV token, status, content type, body, ttl ms.
var completeScript = redis.NewScript(`
if redis.call('HGET', KEYS[1], 'token') ~= ARGV[1] then return 0 end
redis.call('HSET', KEYS[1], 'state', 'done', 'status', ARGV[2], 'ctype', ARGV[3], 'body', ARGV[4])
redis.call('PEXPIRE', KEYS[1], ARGV[5])
return 1
`)

// abandonScript: KEYS record; ARGV token.
var abandonScript = redis.NewScript(`
if redis.call('HGET', KEYS[1], 'token') == ARGV[1] and redis.call('HGET', KEYS[1], 'state') == 'running' then
  return redis.call('DEL', KEYS[1])
end
return 0
`)

// BeginRequest implements promo.IdempotencyStore.
func (s *Store) BeginRequest(ctx context.Context, key, fingerprint string, lease time.Duration) (promo.IdempotencyBegin, error) {
	token := randomToken()
	res, err := beginScript.Run(ctx, s.rdb, []string{idemKey(key)}, fingerprint, token, lease.Milliseconds()).Slice()
	if err != nil {
		return promo.IdempotencyBegin{}, unavailable(err)
	}
	switch res[0] {
	case "proceed":
		return promo.IdempotencyBegin{Outcome: promo.IdempotencyProceed, Token: token}, nil
	case "mismatch":
		return promo.IdempotencyBegin{Outcome: promo.IdempotencyMismatch}, nil
	case "inflight":
		return promo.IdempotencyBegin{Outcome: promo.IdempotencyInFlight}, nil
	}
	status, _ := strconv.Atoi(str(res[1]))
	return promo.IdempotencyBegin{Outcome: promo.IdempotencyReplay, Response: &promo.StoredResponse{
		Status: status, ContentType: str(res[2]), Body: []byte(str(res[3])),
	}}, nil
}

// CompleteRequest implements promo.IdempotencyStore.
func (s *Store) CompleteRequest(ctx context.Context, key, token string, resp promo.StoredResponse, ttl time.Duration) error {
	return unavailable(completeScript.Run(ctx, s.rdb, []string{idemKey(key)},
		token, resp.Status, resp.ContentType, resp.Body, ttl.Milliseconds()).Err())
}

// AbandonRequest implements promo.IdempotencyStore.
func (s *Store) AbandonRequest(ctx context.Context, key, token string) error {
	return unavailable(abandonScript.Run(ctx, s.rdb, []string{idemKey(key)}, token).Err())
}

func str(v any) string {
	s, _ := v.(string)
	return s
}
