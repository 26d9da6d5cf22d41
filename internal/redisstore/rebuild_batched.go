package redisstore

import (
	"context"

	"github.com/billing-adapter/billing-adapter/internal/promo"
	"github.com/redis/go-redis/v9"
)

// rebuildBatch is how many ledger lines reconcile -fix writes per round
// trip. A code's ledger up to this size is written in one transaction
// (writeRebuiltCode); a larger one in batches (writeRebuiltCodeBatched), so
// the writer holds one batch of commands, not every line's: a single
// transaction of a 100,000-line ledger queues half a million commands
// (about 1.8 KB per line in go-redis' command objects and buffers).
var rebuildBatch = 1000 // a variable for the tests

// rebuildingSuffix names where a large ledger is built before it replaces
// the code's keys: ba:{pc_ID}:rd:rebuilding and so on, in the code's slot.
const rebuildingSuffix = ":rebuilding"

// writeRebuiltCodeBatched writes what writeRebuiltCode writes, with the
// same commands in the same order, but the ledger keys' lines go in batches
// of rebuildBatch to ":rebuilding" copies of those keys (same hash tag, so
// the same Cluster slot), and one final transaction replaces the code's
// hash and RENAMEs the copies over the code's keys. Readers see the old
// ledger until that transaction and the whole new one after it, as with
// one transaction. Copies left by an interrupted run are deleted first; a
// copy is not read by anything but this function. Counted-invoice marks are
// set in batches before the swap (each a key of its own, idempotent).
func (s *Store) writeRebuiltCodeBatched(ctx context.Context, p *promo.PromoCode, lines []*promo.Redemption, invoices []string) error {
	fields, err := codeFields(p, true)
	if err != nil {
		return err
	}
	fields = append(fields, "reserved", 0, "held", p.Held, "uses", p.Uses, "stripe_redeemed", p.Stripe.TimesRedeemed)
	for cur, v := range p.Discounted {
		fields = append(fields, amountPrefix+cur, v)
	}
	// The keys a rebuilt ledger fills, in the order DEL names them.
	real := []string{rdKey(p.ID), custKey(p.ID), subsKey(p.ID), ledgerKey(p.ID), discKey(p.ID),
		heldKey(p.ID), waitKey(p.ID), cwaitKey(p.ID)}
	tmp := make(map[string]string, len(real))
	tmpKeys := make([]string, 0, len(real))
	for _, k := range real {
		tmp[k] = k + rebuildingSuffix
		tmpKeys = append(tmpKeys, k+rebuildingSuffix)
	}
	if err := s.rdb.Del(ctx, tmpKeys...).Err(); err != nil {
		return unavailable(err)
	}
	written := map[string]bool{}
	holder := map[string]bool{}
	for start := 0; start < len(lines); start += rebuildBatch {
		part := lines[start:min(start+rebuildBatch, len(lines))]
		_, err := s.rdb.Pipelined(ctx, func(pl redis.Pipeliner) error {
			hset := func(key, field string, value any) {
				pl.HSet(ctx, tmp[key], field, value)
				written[key] = true
			}
			zadd := func(key, member string) {
				pl.ZAdd(ctx, tmp[key], redis.Z{Member: member})
				written[key] = true
			}
			for _, r := range part { // in ID order: units and customers go to the first lines that need them
				raw, err := encodeRedemption(r)
				if err != nil {
					return err
				}
				hset(rdKey(p.ID), r.ID, raw)
				zadd(ledgerKey(p.ID), r.ID)
				if r.DiscountID != "" {
					hset(discKey(p.ID), r.DiscountID, r.ID)
				}
				if r.State.Live() && r.Subscription != "" {
					hset(subsKey(p.ID), r.Subscription, r.ID)
				}
				if !r.HoldsUse() {
					continue
				}
				switch {
				case r.HoldsStock:
					zadd(heldKey(p.ID), r.ID)
				case !p.UnlimitedStock:
					zadd(waitKey(p.ID), r.ID)
				}
				if holder[r.Customer] {
					zadd(cwaitKey(p.ID), r.Customer+"|"+r.ID)
				} else {
					holder[r.Customer] = true
					hset(custKey(p.ID), r.Customer, r.ID)
				}
			}
			return nil
		})
		if err != nil {
			return unavailable(err)
		}
	}
	for start := 0; start < len(invoices); start += rebuildBatch {
		part := invoices[start:min(start+rebuildBatch, len(invoices))]
		if _, err := s.rdb.Pipelined(ctx, func(pl redis.Pipeliner) error {
			for _, id := range part {
				pl.Set(ctx, invKey(p.ID, id), "1", InvoiceKeep)
			}
			return nil
		}); err != nil {
			return unavailable(err)
		}
	}
	_, err = s.rdb.TxPipelined(ctx, func(tx redis.Pipeliner) error {
		tx.Del(ctx, codeKey(p.ID), rdKey(p.ID), custKey(p.ID), subsKey(p.ID), ledgerKey(p.ID), discKey(p.ID),
			heldKey(p.ID), waitKey(p.ID), cwaitKey(p.ID), legacyInvKey(p.ID))
		tx.HSet(ctx, codeKey(p.ID), fields...)
		for _, k := range real {
			if written[k] {
				tx.Rename(ctx, tmp[k], k)
			}
		}
		return nil
	})
	if err != nil {
		return unavailable(err)
	}
	// Then, as writeRebuiltCode: the code's text and its indexes.
	if p.Status != promo.StatusArchived {
		if err := s.rdb.HSet(ctx, codeTextKey(p.Code), "id", p.ID).Err(); err != nil {
			return unavailable(err)
		}
	}
	return s.index(ctx, p)
}
