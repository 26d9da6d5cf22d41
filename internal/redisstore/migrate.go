package redisstore

import (
	"context"
	"strconv"
	"strings"

	"github.com/billing-adapter/billing-adapter/internal/promo"
	"github.com/redis/go-redis/v9"
)

// The keys of the layout before per-object slots (keys.go, "Before this
// layout"): each was one fixed slot that every validate, apply or webhook
// touched.
const (
	legacyCodes  = "ba:{catalog}:codes"  // HASH code text -> promo code ID
	legacyProv   = "ba:{catalog}:prov"   // HASH code text -> provisional JSON
	legacyClaims = "ba:{claims}"         // HASH subscription -> "pc|rd"
	legacyPaid   = "ba:{customers}:paid" // SET customers
	legacyDue    = "ba:{sweep}:due"      // ZSET "pc/rd" by lease end
	legacyBatch  = 1000                  // entries per SCAN call and per pipelined write
)

// legacyInvKey is a code's former SET of counted invoice IDs.
func legacyInvKey(codeID string) string { return "ba:{" + codeID + "}:inv" }

// MigrateCounts says what MigrateLegacyKeys moved.
type MigrateCounts struct {
	Texts, Provisional, Claims, Paid, Due, Invoices int
	Markers                                         int // customer markers added (markers.go)
}

// MigrateLegacyKeys moves data from the former fixed-slot keys to the
// per-object layout (`billing-adapter migrate-keys`, once, before or right
// after the new version starts): code texts and unfinished creates to
// ba:{ct:CODE}, claims to ba:{sub}:claim, paid customers to ba:{cus}:paid
// (kept promo.PaidKeep from now: the paid time is not recorded there;
// `reconcile -fix` sets it from Stripe), due marks to their shards, and each
// code's counted invoice IDs to per-invoice marks kept InvoiceKeep. What the
// new layout already holds wins (a key written by the new version is never
// overwritten). Each legacy key is read with SCAN commands, a thousand
// entries a call, and deleted once copied, so running it again does nothing.
// Last, every ledger line's customer gets its marker (ba:{cus_ID}:codes,
// markers.go) and ba:{catalog}:layout is set, so that validate reads the
// customer's slot; run it once every replica runs a version that writes
// markers (a line an older replica writes afterwards would have none).
func (s *Store) MigrateLegacyKeys(ctx context.Context) (MigrateCounts, error) {
	var n MigrateCounts
	var err error
	if n.Texts, err = s.migrateHash(ctx, legacyCodes, func(p redis.Pipeliner, code, id string) {
		p.HSetNX(ctx, codeTextKey(code), "id", id)
	}); err != nil {
		return n, err
	}
	if n.Provisional, err = s.migrateHash(ctx, legacyProv, func(p redis.Pipeliner, code, raw string) {
		p.HSetNX(ctx, codeTextKey(code), "prov", raw)
	}); err != nil {
		return n, err
	}
	if n.Claims, err = s.migrateHash(ctx, legacyClaims, func(p redis.Pipeliner, sub, v string) {
		p.SetNX(ctx, claimKey(sub), v, 0)
	}); err != nil {
		return n, err
	}
	if n.Paid, err = s.migrateSet(ctx, legacyPaid, func(p redis.Pipeliner, c string) {
		p.SetNX(ctx, paidKey(c), "1", promo.PaidKeep)
	}); err != nil {
		return n, err
	}
	if n.Due, err = s.migrateZSet(ctx, legacyDue, func(p redis.Pipeliner, member string, score float64) {
		_, rd, _ := strings.Cut(member, "/")
		p.ZAddNX(ctx, dueKey(dueShard(rd)), redis.Z{Score: score, Member: member})
	}); err != nil {
		return n, err
	}
	for _, list := range listKeys {
		ids, err := s.rdb.ZRange(ctx, list, 0, -1).Result()
		if err != nil {
			return n, unavailable(err)
		}
		for _, id := range ids {
			k, err := s.migrateSet(ctx, legacyInvKey(id), func(p redis.Pipeliner, inv string) {
				p.SetNX(ctx, invKey(id, inv), "1", InvoiceKeep)
			})
			if err != nil {
				return n, err
			}
			n.Invoices += k
		}
	}
	if n.Markers, err = s.MarkAllCustomers(ctx); err != nil {
		return n, err
	}
	return n, s.setLayout(ctx)
}

// MarkAllCustomers adds the marker of every ledger line's customer, for
// every promo code and campaign of the status lists, and returns how many
// were missing. Idempotent.
func (s *Store) MarkAllCustomers(ctx context.Context) (int, error) {
	added := 0
	for _, list := range append(append([]string{}, listKeys...), campaignListKeys...) {
		ids, err := s.rdb.ZRange(ctx, list, 0, -1).Result()
		if err != nil {
			return added, unavailable(err)
		}
		for _, id := range ids {
			var cmds []*redis.IntCmd
			var customers []string
			flush := func() error {
				if len(customers) == 0 {
					return nil
				}
				cmds = cmds[:0]
				err := s.flush(ctx, func(p redis.Pipeliner) {
					for _, c := range customers {
						cmds = append(cmds, p.SAdd(ctx, customerCodesKey(c), id))
					}
				})
				for _, c := range cmds {
					added += int(c.Val())
				}
				customers = customers[:0]
				return err
			}
			if err := s.EachRedemption(ctx, id, func(r *promo.Redemption) error {
				if r.Customer != "" {
					customers = append(customers, r.Customer)
				}
				if len(customers) >= legacyBatch {
					return flush()
				}
				return nil
			}); err != nil {
				return added, err
			}
			if err := flush(); err != nil {
				return added, err
			}
		}
	}
	return added, nil
}

// flush runs the queued writes of one batch in one pipeline.
func (s *Store) flush(ctx context.Context, queue func(redis.Pipeliner)) error {
	_, err := s.rdb.Pipelined(ctx, func(p redis.Pipeliner) error {
		queue(p)
		return nil
	})
	return unavailable(err)
}

func (s *Store) migrateHash(ctx context.Context, key string, put func(redis.Pipeliner, string, string)) (int, error) {
	n := 0
	var cursor uint64
	for {
		kv, next, err := s.rdb.HScan(ctx, key, cursor, "", legacyBatch).Result()
		if err != nil {
			return n, unavailable(err)
		}
		if err := s.flush(ctx, func(p redis.Pipeliner) {
			for i := 0; i+1 < len(kv); i += 2 {
				put(p, kv[i], kv[i+1])
			}
		}); err != nil {
			return n, err
		}
		n += len(kv) / 2
		if cursor = next; cursor == 0 {
			return n, unavailable(s.rdb.Del(ctx, key).Err())
		}
	}
}

func (s *Store) migrateSet(ctx context.Context, key string, put func(redis.Pipeliner, string)) (int, error) {
	n := 0
	var cursor uint64
	for {
		members, next, err := s.rdb.SScan(ctx, key, cursor, "", legacyBatch).Result()
		if err != nil {
			return n, unavailable(err)
		}
		if err := s.flush(ctx, func(p redis.Pipeliner) {
			for _, m := range members {
				put(p, m)
			}
		}); err != nil {
			return n, err
		}
		n += len(members)
		if cursor = next; cursor == 0 {
			return n, unavailable(s.rdb.Del(ctx, key).Err())
		}
	}
}

func (s *Store) migrateZSet(ctx context.Context, key string, put func(redis.Pipeliner, string, float64)) (int, error) {
	n := 0
	var cursor uint64
	for {
		kv, next, err := s.rdb.ZScan(ctx, key, cursor, "", legacyBatch).Result()
		if err != nil {
			return n, unavailable(err)
		}
		var err2 error
		if err := s.flush(ctx, func(p redis.Pipeliner) {
			for i := 0; i+1 < len(kv); i += 2 {
				score, perr := parseScore(kv[i+1])
				if perr != nil {
					err2 = perr
					return
				}
				put(p, kv[i], score)
			}
		}); err != nil {
			return n, err
		}
		if err2 != nil {
			return n, err2
		}
		n += len(kv) / 2
		if cursor = next; cursor == 0 {
			return n, unavailable(s.rdb.Del(ctx, key).Err())
		}
	}
}

func parseScore(s string) (float64, error) { return strconv.ParseFloat(s, 64) }
