package redisstore

import (
	"context"
	"errors"
	"strconv"
	"strings"
	"time"

	"github.com/billing-adapter/billing-adapter/internal/promo"
	"github.com/redis/go-redis/v9"
)

// clearClaimScript: lua/clear_claim.lua.
var clearClaimScript = plainScript("clear_claim")

// Claim implements promo.RedemptionStore.
func (s *Store) Claim(ctx context.Context, sub string) (promo.Claim, error) {
	v, err := s.rdb.HGet(ctx, keyClaims, sub).Result()
	if errors.Is(err, redis.Nil) {
		return promo.Claim{}, promo.ErrNotFound
	}
	if err != nil {
		return promo.Claim{}, unavailable(err)
	}
	pc, rd, ok := strings.Cut(v, "|") // "pc|rd"
	if !ok {
		return promo.Claim{}, promo.ErrNotFound
	}
	return promo.Claim{PromoCodeID: pc, RedemptionID: rd}, nil
}

// SetClaim implements promo.RedemptionStore. The value is
// "promo code ID|redemption ID".
func (s *Store) SetClaim(ctx context.Context, sub string, c promo.Claim) error {
	return unavailable(s.rdb.HSet(ctx, keyClaims, sub, c.PromoCodeID+"|"+c.RedemptionID).Err())
}

// ClearClaim implements promo.RedemptionStore.
func (s *Store) ClearClaim(ctx context.Context, sub, redemptionID string) error {
	return unavailable(clearClaimScript.Run(ctx, s.rdb, []string{keyClaims}, sub, redemptionID).Err())
}

// LockSubscription implements promo.RedemptionStore.
func (s *Store) LockSubscription(ctx context.Context, sub string, ttl time.Duration) (func(), error) {
	return s.Lock(ctx, sub, ttl)
}

func dueMember(codeID, rdID string) string { return codeID + "/" + rdID }

// MarkDue implements promo.RedemptionStore.
func (s *Store) MarkDue(ctx context.Context, d promo.DueReservation) error {
	return unavailable(s.rdb.ZAdd(ctx, keyDue, redis.Z{Score: float64(d.LeaseUntil.UnixMilli()),
		Member: dueMember(d.PromoCodeID, d.RedemptionID)}).Err())
}

// UnmarkDue implements promo.RedemptionStore.
func (s *Store) UnmarkDue(ctx context.Context, codeID, rdID string) error {
	return unavailable(s.rdb.ZRem(ctx, keyDue, dueMember(codeID, rdID)).Err())
}

// Due implements promo.RedemptionStore.
func (s *Store) Due(ctx context.Context, now time.Time, limit int) ([]promo.DueReservation, error) {
	zs, err := s.rdb.ZRangeArgsWithScores(ctx, redis.ZRangeArgs{Key: keyDue, Start: "-inf",
		Stop: strconv.FormatInt(now.UnixMilli(), 10), ByScore: true, Count: int64(limit)}).Result()
	if err != nil {
		return nil, unavailable(err)
	}
	out := make([]promo.DueReservation, 0, len(zs))
	for _, z := range zs {
		codeID, rdID, ok := strings.Cut(z.Member.(string), "/")
		if !ok {
			continue
		}
		out = append(out, promo.DueReservation{PromoCodeID: codeID, RedemptionID: rdID, LeaseUntil: fromMS(int64(z.Score))})
	}
	return out, nil
}

// CustomerHasPaid implements promo.RedemptionStore.
func (s *Store) CustomerHasPaid(ctx context.Context, customer string) (bool, error) {
	ok, err := s.rdb.SIsMember(ctx, keyPaid, customer).Result()
	return ok, unavailable(err)
}

// NeedsStripeSync implements promo.RedemptionStore.
func (s *Store) NeedsStripeSync(ctx context.Context, codeID string) error {
	return unavailable(s.rdb.SAdd(ctx, keyStripeSync, codeID).Err())
}

// StripeSyncPending implements promo.RedemptionStore.
func (s *Store) StripeSyncPending(ctx context.Context, limit int) ([]string, error) {
	ids, err := s.rdb.SRandMemberN(ctx, keyStripeSync, int64(limit)).Result()
	return ids, unavailable(err)
}

// StripeSyncDone implements promo.RedemptionStore.
func (s *Store) StripeSyncDone(ctx context.Context, codeID string) error {
	return unavailable(s.rdb.SRem(ctx, keyStripeSync, codeID).Err())
}
