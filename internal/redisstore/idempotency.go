package redisstore

import (
	"context"
	"strconv"
	"time"

	"github.com/billing-adapter/billing-adapter/internal/promo"
)

// beginScript: lua/begin_request.lua.
var beginScript = plainScript("begin_request")

// completeScript: lua/complete_request.lua.
var completeScript = plainScript("complete_request")

// abandonScript: lua/abandon_request.lua.
var abandonScript = plainScript("abandon_request")

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
