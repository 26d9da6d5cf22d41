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

// writeRebuiltCodeBatched writes what writeLedger writes for
// writeRebuiltCode (which then writes the code's text and indexes, either
// way), but the ledger keys go in batches of rebuildBatch to
// ":rebuilding" copies of those keys (same hash tag, so the same Cluster
// slot), and one final transaction replaces the code's hash and RENAMEs the
// copies over the code's keys. Readers see the old ledger until that
// transaction and the whole new one after it, as with one transaction. The
// lines hash starts as a server-side COPY of the code's, so a line of
// before that lines holds unchanged stays byte for byte, as writeLedger
// leaves it; only the other lines are written or deleted. Copies left by an
// interrupted run are deleted first; a copy is read by nothing but this
// function. Counted-invoice marks are set in batches before the swap (each
// a key of its own, idempotent).
func (s *Store) writeRebuiltCodeBatched(ctx context.Context, p *promo.PromoCode, lines, before []*promo.Redemption, invoices []string) error {
	// The code's hash, as writeLedger(withStock) writes it.
	fields, err := rebuiltCodeFields(p, lines, true)
	if err != nil {
		return err
	}
	// The keys a rebuilt ledger fills.
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
	if err := s.rdb.Do(ctx, "COPY", rdKey(p.ID), tmp[rdKey(p.ID)]).Err(); err != nil {
		return unavailable(err)
	}
	kept, ids := map[*promo.Redemption]bool{}, map[string]bool{}
	for _, r := range before {
		kept[r] = true
	}
	for _, r := range lines {
		ids[r.ID] = true
	}
	var gone []string
	for _, r := range before {
		if !ids[r.ID] {
			gone = append(gone, r.ID)
		}
	}
	for start := 0; start < len(gone); start += rebuildBatch {
		if err := s.rdb.HDel(ctx, tmp[rdKey(p.ID)], gone[start:min(start+rebuildBatch, len(gone))]...).Err(); err != nil {
			return unavailable(err)
		}
	}
	holder := map[string]bool{}
	for start := 0; start < len(lines); start += rebuildBatch {
		part := lines[start:min(start+rebuildBatch, len(lines))]
		_, err := s.rdb.Pipelined(ctx, func(pl redis.Pipeliner) error {
			for _, r := range part { // in ID order: units and customers go to the first lines that need them
				if !kept[r] {
					raw, err := encodeRedemption(r)
					if err != nil {
						return err
					}
					pl.HSet(ctx, tmp[rdKey(p.ID)], r.ID, raw)
				}
				pl.ZAdd(ctx, tmp[ledgerKey(p.ID)], redis.Z{Member: r.ID})
				if r.DiscountID != "" {
					pl.HSet(ctx, tmp[discKey(p.ID)], r.DiscountID, r.ID)
				}
				if r.State.Live() && r.Subscription != "" {
					pl.HSet(ctx, tmp[subsKey(p.ID)], r.Subscription, r.ID)
				}
				if !r.HoldsUse() {
					continue
				}
				switch {
				case r.HoldsStock:
					pl.ZAdd(ctx, tmp[heldKey(p.ID)], redis.Z{Member: r.ID})
				case !p.UnlimitedStock:
					pl.ZAdd(ctx, tmp[waitKey(p.ID)], redis.Z{Member: r.ID})
				}
				if p.ManyPerCustomer {
					continue // no customer rule, no customer index
				}
				if holder[r.Customer] {
					pl.ZAdd(ctx, tmp[cwaitKey(p.ID)], redis.Z{Member: r.Customer + "|" + r.ID})
				} else {
					holder[r.Customer] = true
					pl.HSet(ctx, tmp[custKey(p.ID)], r.Customer, r.ID)
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
	// Which copies hold anything (an empty one does not exist to rename).
	exists := make([]*redis.IntCmd, len(real))
	if _, err := s.rdb.Pipelined(ctx, func(pl redis.Pipeliner) error {
		for i, k := range real {
			exists[i] = pl.Exists(ctx, tmp[k])
		}
		return nil
	}); err != nil {
		return unavailable(err)
	}
	_, err = s.rdb.TxPipelined(ctx, func(tx redis.Pipeliner) error {
		tx.Del(ctx, codeKey(p.ID), rdKey(p.ID), custKey(p.ID), subsKey(p.ID), ledgerKey(p.ID), discKey(p.ID),
			heldKey(p.ID), waitKey(p.ID), cwaitKey(p.ID), legacyInvKey(p.ID))
		tx.HSet(ctx, codeKey(p.ID), fields...)
		for i, k := range real {
			if exists[i].Val() == 1 {
				tx.Rename(ctx, tmp[k], k)
			}
		}
		return nil
	})
	return unavailable(err)
}
