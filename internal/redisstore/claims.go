package redisstore

import (
	"cmp"
	"context"
	"errors"
	"slices"
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
	v, err := s.rdb.Get(ctx, claimKey(sub)).Result()
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
	return unavailable(s.rdb.Set(ctx, claimKey(sub), claimValue(c), 0).Err())
}

// claimValue is a claim key's value (keys.go: "promo code ID|redemption ID").
func claimValue(c promo.Claim) string { return c.PromoCodeID + "|" + c.RedemptionID }

// ClearClaim implements promo.RedemptionStore.
func (s *Store) ClearClaim(ctx context.Context, sub, redemptionID string) error {
	return unavailable(clearClaimScript.Run(ctx, s.rdb, []string{claimKey(sub)}, redemptionID).Err())
}

// LockSubscription implements promo.RedemptionStore.
func (s *Store) LockSubscription(ctx context.Context, sub string, ttl time.Duration) (func(), error) {
	return s.Lock(ctx, sub, ttl)
}

func dueMember(codeID, rdID string) string { return codeID + "/" + rdID }

// MarkDue implements promo.RedemptionStore.
func (s *Store) MarkDue(ctx context.Context, d promo.DueReservation) error {
	return unavailable(s.rdb.ZAdd(ctx, dueKey(dueShard(d.RedemptionID)), redis.Z{Score: float64(d.LeaseUntil.UnixMilli()),
		Member: dueMember(d.PromoCodeID, d.RedemptionID)}).Err())
}

// UnmarkDue implements promo.RedemptionStore.
func (s *Store) UnmarkDue(ctx context.Context, codeID, rdID string) error {
	return unavailable(s.rdb.ZRem(ctx, dueKey(dueShard(rdID)), dueMember(codeID, rdID)).Err())
}

// Due implements promo.RedemptionStore: the earliest marks of every shard
// (one pipelined read per shard), merged by lease end.
func (s *Store) Due(ctx context.Context, now time.Time, limit int) ([]promo.DueReservation, error) {
	cmds := make([]*redis.ZSliceCmd, dueShards)
	if _, err := s.rdb.Pipelined(ctx, func(p redis.Pipeliner) error {
		for i := range cmds {
			cmds[i] = p.ZRangeArgsWithScores(ctx, redis.ZRangeArgs{Key: dueKey(i), Start: "-inf",
				Stop: strconv.FormatInt(now.UnixMilli(), 10), ByScore: true, Count: int64(limit)})
		}
		return nil
	}); err != nil {
		return nil, unavailable(err)
	}
	var zs []redis.Z
	for _, c := range cmds {
		zs = append(zs, c.Val()...)
	}
	slices.SortFunc(zs, func(a, b redis.Z) int {
		if c := cmp.Compare(a.Score, b.Score); c != 0 {
			return c
		}
		return strings.Compare(a.Member.(string), b.Member.(string))
	})
	out := make([]promo.DueReservation, 0, min(len(zs), limit))
	for _, z := range zs {
		codeID, rdID, ok := strings.Cut(z.Member.(string), "/")
		if !ok {
			continue
		}
		if len(out) == limit {
			break
		}
		out = append(out, promo.DueReservation{PromoCodeID: codeID, RedemptionID: rdID, LeaseUntil: fromMS(int64(z.Score))})
	}
	return out, nil
}

// CustomerHasPaid implements promo.RedemptionStore.
func (s *Store) CustomerHasPaid(ctx context.Context, customer string) (bool, error) {
	n, err := s.rdb.Exists(ctx, paidKey(customer)).Result()
	return n == 1, unavailable(err)
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
