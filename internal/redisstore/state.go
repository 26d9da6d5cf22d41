package redisstore

import (
	"context"
	"errors"
	"maps"
	"slices"
	"strings"
	"time"

	"github.com/billing-adapter/billing-adapter/internal/promo"
	"github.com/redis/go-redis/v9"
)

// LoadState reads every ready code with its ledger and every listed
// campaign (LoadCampaigns) for reconcile, and which
// of the customers Stripe shows paying (paid: customer -> until, from
// promo.PaidMarks) are recorded as paid. Ledgers are read with HSCAN, a
// thousand lines a call, so no single command blocks Redis on a large
// ledger.
func (s *Store) LoadState(ctx context.Context, paid map[string]time.Time) (*promo.LedgerState, error) {
	st := &promo.LedgerState{Ledgers: map[string][]*promo.Redemption{}, Paid: map[string]bool{},
		Campaigns: map[string]*promo.CampaignLedger{}}
	var ids []string
	for _, key := range statusLists(promo.StatusAll) {
		part, err := s.rdb.ZRange(ctx, key, 0, -1).Result()
		if err != nil {
			return nil, unavailable(err)
		}
		ids = append(ids, part...)
	}
	const batch = 200
	for start := 0; start < len(ids); start += batch {
		part := ids[start:min(start+batch, len(ids))]
		codes := make([]*redis.MapStringStringCmd, len(part))
		if _, err := s.rdb.Pipelined(ctx, func(p redis.Pipeliner) error {
			for i, id := range part {
				codes[i] = p.HGetAll(ctx, codeKey(id))
			}
			return nil
		}); err != nil {
			return nil, unavailable(err)
		}
		for i := range part {
			p, err := decodeCode(part[i], codes[i].Val())
			if err != nil {
				continue // listed but gone: not a code any more
			}
			st.Codes = append(st.Codes, p)
			if err := s.EachRedemption(ctx, p.ID, func(r *promo.Redemption) error {
				st.Ledgers[p.ID] = append(st.Ledgers[p.ID], r)
				return nil
			}); err != nil {
				return nil, err
			}
		}
	}
	var campaigns []string
	for _, key := range campaignListKeys {
		part, err := s.rdb.ZRange(ctx, key, 0, -1).Result()
		if err != nil {
			return nil, unavailable(err)
		}
		campaigns = append(campaigns, part...)
	}
	if err := s.LoadCampaigns(ctx, st, campaigns); err != nil {
		return nil, err
	}
	recorded, err := s.PaidAmong(ctx, slices.Collect(maps.Keys(paid)))
	if err != nil {
		return nil, err
	}
	st.Paid = recorded
	return st, nil
}

// EachRedemption calls fn for every ledger line of a code, read with HSCAN
// (a thousand lines a call), in no particular order.
func (s *Store) EachRedemption(ctx context.Context, codeID string, fn func(*promo.Redemption) error) error {
	var cursor uint64
	for {
		kv, next, err := s.rdb.HScan(ctx, rdKey(codeID), cursor, "", 1000).Result()
		if err != nil {
			return unavailable(err)
		}
		for i := 0; i+1 < len(kv); i += 2 {
			r, err := decodeRedemption(codeID, kv[i], kv[i+1])
			if err != nil {
				return err
			}
			if err := fn(r); err != nil {
				return err
			}
		}
		if cursor = next; cursor == 0 {
			return nil
		}
	}
}

// PaidAmong reports which of the customers are recorded as paid, checking
// a thousand per pipelined round trip.
func (s *Store) PaidAmong(ctx context.Context, customers []string) (map[string]bool, error) {
	out := map[string]bool{}
	const batch = 1000
	for start := 0; start < len(customers); start += batch {
		part := customers[start:min(start+batch, len(customers))]
		cmds := make([]*redis.IntCmd, len(part))
		if _, err := s.rdb.Pipelined(ctx, func(p redis.Pipeliner) error {
			for i, c := range part {
				cmds[i] = p.Exists(ctx, paidKey(c))
			}
			return nil
		}); err != nil {
			return nil, unavailable(err)
		}
		for i, c := range cmds {
			if c.Val() == 1 {
				out[part[i]] = true
			}
		}
	}
	return out, nil
}

// FixCounts says what ApplyRebuild wrote.
type FixCounts struct{ Codes, Campaigns, Redemptions, Deactivated, Paid int }

// ApplyRebuild makes Redis hold what Stripe shows (reconcile -fix) for the
// drifting codes and campaigns (promo.Drifting; the others stay byte for
// byte): each code with its counters (promo.MergeCode), its ledger
// (promo.MergeLedger), the indexes and subscription claims; each campaign
// Redis has with its code record (promo.MergeCampaignCode), ledger, the
// codes' single use (promo.MergeCampaignUsed), its promotion codes and
// the claims (a campaign Redis does not have is not invented); codes
// Stripe no longer has are made inactive; paid customers are recorded. The caller must make sure no
// reservation is in flight (LedgerState.InFlight). It consumes the codes'
// ledgers of rb and current: each code's are dropped once written.
func (s *Store) ApplyRebuild(ctx context.Context, rb *promo.Rebuilt, current *promo.LedgerState, paid map[string]time.Time,
	drifting map[string]bool, now time.Time) (FixCounts, error) {
	var n FixCounts
	inStripe := map[string]bool{}
	have := map[string]*promo.PromoCode{}
	for _, p := range current.Codes {
		have[p.ID] = p
	}
	for _, p := range rb.Codes {
		inStripe[p.ID] = true
		if !drifting[p.ID] {
			continue
		}
		p = promo.MergeCode(have[p.ID], p)
		lines, invoices := promo.MergeLedger(rb.Ledgers[p.ID], current.Ledgers[p.ID], now)
		if err := s.markLines(ctx, p.ID, lines); err != nil {
			return n, err
		}
		if err := s.writeRebuiltCode(ctx, p, lines, current.Ledgers[p.ID], invoices); err != nil {
			return n, err
		}
		if err := s.rebuildClaims(ctx, p.ID, lines, current.Ledgers[p.ID]); err != nil {
			return n, err
		}
		n.Codes++
		n.Redemptions += len(lines)
		// Written: its ledgers are not needed any more (a large account's
		// are not all held until the end).
		delete(rb.Ledgers, p.ID)
		delete(current.Ledgers, p.ID)
	}
	for _, c := range rb.Campaigns {
		inStripe[c.ID] = true
		cur := current.Campaigns[c.ID]
		if !drifting[c.ID] || cur == nil || cur.Campaign == nil {
			continue // agreeing; or not in Redis: never invented (promo.CampaignNotInRedis)
		}
		p := promo.MergeCampaignCode(cur.Campaign, c.Code)
		lines, invoices := promo.MergeLedger(rb.Ledgers[c.ID], current.Ledgers[c.ID], now)
		used := promo.MergeCampaignUsed(lines, cur.Used)
		if err := s.markLines(ctx, c.ID, lines); err != nil {
			return n, err
		}
		if err := s.writeRebuiltCampaign(ctx, p, lines, current.Ledgers[c.ID], invoices, used, c); err != nil {
			return n, err
		}
		if err := s.rebuildClaims(ctx, c.ID, lines, current.Ledgers[c.ID]); err != nil {
			return n, err
		}
		n.Campaigns++
		n.Redemptions += len(lines)
	}
	for _, id := range slices.Sorted(maps.Keys(current.Campaigns)) {
		// A campaign whose coupon Stripe no longer has: inactive for good,
		// as the coupon.deleted webhook makes it (promo.Campaigns.CouponDeleted).
		c := current.Campaigns[id].Campaign
		if inStripe[id] || c == nil || c.Terms.StatusReason == promo.ReasonCouponDeleted {
			continue
		}
		next := *c
		if next.Terms.Status == promo.StatusActive {
			next.Terms.Status = promo.StatusInactive
		}
		next.Terms.StatusReason, next.UpdatedAt = promo.ReasonCouponDeleted, now
		if err := s.SaveCampaign(ctx, &next); err != nil {
			return n, err
		}
		n.Deactivated++
	}
	for _, p := range current.Codes {
		if inStripe[p.ID] || p.Stripe.State != promo.SyncReady || p.StatusReason == promo.ReasonCouponDeleted {
			continue
		}
		next := *p
		if next.Status == promo.StatusActive {
			next.Status = promo.StatusInactive
		}
		next.StatusReason, next.Stripe.Active = promo.ReasonCouponDeleted, false
		if err := s.SaveUpdate(ctx, p, &next, false); err != nil {
			return n, err
		}
		n.Deactivated++
	}
	// The paid marks (MarkCustomerPaid), in batches of pipelined calls.
	var marks []scriptCall
	for c, until := range paid {
		if current.Paid[c] {
			continue
		}
		keys, args := markPaidKeysArgs(c, until)
		marks = append(marks, scriptCall{key: keys[0], args: args})
	}
	if err := s.runScriptBatches(ctx, markPaidScript, marks); err != nil {
		return n, err
	}
	n.Paid = len(marks)
	return n, nil
}

// markLines writes the markers of the customers of lines (markers.go)
// before the lines are written.
func (s *Store) markLines(ctx context.Context, codeID string, lines []*promo.Redemption) error {
	customers := make([]string, 0, len(lines))
	for _, r := range lines {
		customers = append(customers, r.Customer)
	}
	return s.markCustomers(ctx, codeID, customers...)
}

// writeRebuiltCode replaces one code's hash and ledger keys in one
// transaction on the code's slot, then indexes the code.
func (s *Store) writeRebuiltCode(ctx context.Context, p *promo.PromoCode, lines, before []*promo.Redemption, invoices []string) error {
	defer s.dropSnapshot(p.ID)
	var err error
	if len(lines) > rebuildBatch {
		err = s.writeRebuiltCodeBatched(ctx, p, lines, before, invoices) // rebuild_batched.go
	} else {
		_, err = s.rdb.TxPipelined(ctx, func(tx redis.Pipeliner) error {
			return writeLedger(ctx, tx, p, lines, before, invoices, true)
		})
		err = unavailable(err)
	}
	if err != nil {
		return err
	}
	if p.Status != promo.StatusArchived {
		if err := s.rdb.HSet(ctx, codeTextKey(p.Code), "id", p.ID).Err(); err != nil {
			return unavailable(err)
		}
	}
	return s.index(ctx, p)
}

// writeRebuiltCampaign replaces one campaign's code record, ledger keys,
// used codes (with the lines waiting for one) and promotion code records in one transaction on the
// campaign's slot, and sets its mirrored count. The campaign record, its
// chunks of codes and its queues stay.
func (s *Store) writeRebuiltCampaign(ctx context.Context, p *promo.PromoCode, lines, before []*promo.Redemption, invoices []string,
	used map[string]string, c *promo.RebuiltCampaign) error {
	defer s.dropSnapshot(c.ID)
	_, err := s.rdb.TxPipelined(ctx, func(tx redis.Pipeliner) error {
		tx.Del(ctx, campaignUsedKey(c.ID), campaignPTextKey(c.ID), campaignPCodesKey(c.ID))
		if err := writeLedger(ctx, tx, p, lines, before, invoices, false); err != nil {
			return err
		}
		if len(used) > 0 {
			tx.HSet(ctx, campaignUsedKey(c.ID), flatten(used)...)
		}
		// The lines that need a code another line holds wait for it, in ID
		// order (lines is): "w|" + text, as ledger_prelude.lua's holdCode.
		waiting := map[string][]string{}
		for _, r := range lines {
			if r.UniqueCode != "" && r.HoldsUse() && used[r.UniqueCode] != r.ID {
				waiting[r.UniqueCode] = append(waiting[r.UniqueCode], r.ID)
			}
		}
		for text, ids := range waiting {
			tx.HSet(ctx, campaignUsedKey(c.ID), codeWaitersField(text), strings.Join(ids, ","))
		}
		if len(c.PromotionCodes) > 0 {
			tx.HSet(ctx, campaignPTextKey(c.ID), flatten(c.PromotionCodes)...)
		}
		if len(c.PromotionCodeTexts) > 0 {
			tx.HSet(ctx, campaignPCodesKey(c.ID), flatten(c.PromotionCodeTexts)...)
		}
		tx.HSet(ctx, campaignKey(c.ID), "mirrored", c.Mirrored())
		return nil
	})
	return unavailable(err)
}

func flatten(m map[string]string) []any {
	out := make([]any, 0, 2*len(m))
	for _, k := range slices.Sorted(maps.Keys(m)) {
		out = append(out, k, m[k])
	}
	return out
}

// writeLedger queues, in tx, the replacement of a code's hash (with its
// counters; withStock: the stock field too) and of its ledger keys by
// lines (in ID order) and the counted marks of invoices. A line of before
// (Redis' lines as read) that lines holds unchanged (the same record,
// promo.MergeLedger keeps it) is not written again: it stays byte for byte.
func writeLedger(ctx context.Context, tx redis.Pipeliner, p *promo.PromoCode, lines, before []*promo.Redemption, invoices []string, withStock bool) error {
	fields, err := rebuiltCodeFields(p, lines, withStock)
	if err != nil {
		return err
	}
	tx.Del(ctx, codeKey(p.ID), custKey(p.ID), subsKey(p.ID), ledgerKey(p.ID), discKey(p.ID),
		heldKey(p.ID), waitKey(p.ID), cwaitKey(p.ID), legacyInvKey(p.ID))
	tx.HSet(ctx, codeKey(p.ID), fields...)
	kept, ids := map[*promo.Redemption]bool{}, map[string]bool{}
	for _, r := range before {
		kept[r] = true
	}
	for _, r := range lines {
		ids[r.ID] = true
	}
	for _, r := range before {
		if !ids[r.ID] {
			tx.HDel(ctx, rdKey(p.ID), r.ID)
		}
	}
	holder := map[string]bool{}
	for _, r := range lines { // in ID order: units and customers go to the first lines that need them
		if !kept[r] {
			raw, err := encodeRedemption(r)
			if err != nil {
				return err
			}
			tx.HSet(ctx, rdKey(p.ID), r.ID, raw)
		}
		tx.ZAdd(ctx, ledgerKey(p.ID), redis.Z{Member: r.ID})
		if r.DiscountID != "" {
			tx.HSet(ctx, discKey(p.ID), r.DiscountID, r.ID)
		}
		if r.State.Live() && r.Subscription != "" {
			tx.HSet(ctx, subsKey(p.ID), r.Subscription, r.ID)
		}
		if !r.HoldsUse() {
			continue
		}
		switch {
		case r.HoldsStock:
			tx.ZAdd(ctx, heldKey(p.ID), redis.Z{Member: r.ID})
		case !p.UnlimitedStock:
			tx.ZAdd(ctx, waitKey(p.ID), redis.Z{Member: r.ID})
		}
		if p.ManyPerCustomer {
			continue // no customer rule, no customer index
		}
		if holder[r.Customer] {
			tx.ZAdd(ctx, cwaitKey(p.ID), redis.Z{Member: r.Customer + "|" + r.ID})
		} else {
			holder[r.Customer] = true
			tx.HSet(ctx, custKey(p.ID), r.Customer, r.ID)
		}
	}
	for _, id := range invoices {
		tx.Set(ctx, invKey(p.ID, id), "1", InvoiceKeep)
	}
	return nil
}

// rebuiltCodeFields is a rebuilt code's hash (withStock: the stock field
// too) with the counters its ledger lines give, as both ledger writers
// (writeLedger, writeRebuiltCodeBatched) write it.
func rebuiltCodeFields(p *promo.PromoCode, lines []*promo.Redemption, withStock bool) ([]any, error) {
	fields, err := codeFields(p, withStock)
	if err != nil {
		return nil, err
	}
	fields = append(fields, "reserved", 0, "uses", p.Uses, "stripe_redeemed", p.Stripe.TimesRedeemed)
	if !p.UnlimitedStock || p.Held != 0 { // the scripts never count units of an unlimited code
		fields = append(fields, "held", p.Held)
	}
	for cur, v := range p.Discounted {
		fields = append(fields, amountPrefix+cur, v)
	}
	if p.IsCampaignCode() {
		fields = append(fields, "redeemed", campaignRedeemed(lines))
	}
	return fields, nil
}

// campaignRedeemed is a campaign's redeemed count (ledger_prelude.lua's
// count_code keeps it) for its ledger lines: the codes some line holds the
// use of (the first such line in ID order holds the code, the others wait
// for it, so each held code counts once).
func campaignRedeemed(lines []*promo.Redemption) int {
	held := map[string]bool{}
	for _, r := range lines {
		if r.UniqueCode != "" && r.HoldsUse() {
			held[r.UniqueCode] = true
		}
	}
	return len(held)
}

// rebuildClaims points each live line's subscription at it and clears the
// claims of lines that are no longer live.
func (s *Store) rebuildClaims(ctx context.Context, codeID string, lines, before []*promo.Redemption) error {
	live := map[string]bool{}
	var set []scriptCall
	for _, r := range lines {
		if r.State.Live() && r.Subscription != "" {
			live[r.ID] = true
			set = append(set, scriptCall{key: claimKey(r.Subscription), args: []any{claimValue(promo.Claim{PromoCodeID: codeID, RedemptionID: r.ID})}})
		}
	}
	var clear []scriptCall
	for _, r := range before {
		if r.Subscription != "" && !live[r.ID] {
			clear = append(clear, scriptCall{key: claimKey(r.Subscription), args: []any{r.ID}})
		}
	}
	// The claims set (SetClaim), then the ones cleared (ClearClaim): in that
	// order, batches of pipelined commands.
	for start := 0; start < len(set); start += rebuildBatch {
		part := set[start:min(start+rebuildBatch, len(set))]
		if _, err := s.rdb.Pipelined(ctx, func(pl redis.Pipeliner) error {
			for _, c := range part {
				pl.Set(ctx, c.key, c.args[0], 0)
			}
			return nil
		}); err != nil {
			return unavailable(err)
		}
	}
	return s.runScriptBatches(ctx, clearClaimScript, clear)
}

// scriptCall is one run of a one-key script.
type scriptCall struct {
	key  string
	args []any
}

// runScriptBatches runs script once for each call, rebuildBatch calls a
// pipeline (on a cluster, go-redis splits a pipeline per node), EVALSHA: a
// call answered NOSCRIPT (a node that does not have the script yet) is run
// again alone, with Script.Run (which sends EVAL). Each call's answer is
// not read; the first error stops.
func (s *Store) runScriptBatches(ctx context.Context, script *redis.Script, calls []scriptCall) error {
	for start := 0; start < len(calls); start += rebuildBatch {
		part := calls[start:min(start+rebuildBatch, len(calls))]
		cmds := make([]*redis.Cmd, len(part))
		_, err := s.rdb.Pipelined(ctx, func(pl redis.Pipeliner) error {
			for i, c := range part {
				cmds[i] = script.EvalSha(ctx, pl, []string{c.key}, c.args...)
			}
			return nil
		})
		if err == nil {
			continue
		}
		for i, cmd := range cmds {
			err := evalIfNoScript(ctx, s.rdb, script, cmd, []string{part[i].key}, part[i].args...).Err()
			if err != nil && !errors.Is(err, redis.Nil) {
				return unavailable(err)
			}
		}
	}
	return nil
}

// LoadCampaigns adds to st each of the campaigns (IDs) Redis has a record
// of and st does not hold yet: the record, its code record (nil when
// missing), its used codes and promotion codes (read with HSCAN, a
// thousand a call) and its ledger. A campaign without a record is left
// out.
func (s *Store) LoadCampaigns(ctx context.Context, st *promo.LedgerState, ids []string) error {
	for _, id := range ids {
		if _, ok := st.Campaigns[id]; ok {
			continue
		}
		c, err := s.GetCampaign(ctx, id)
		if errors.Is(err, promo.ErrNotFound) {
			continue
		}
		if err != nil {
			return err
		}
		cl := &promo.CampaignLedger{Campaign: c}
		h, err := s.rdb.HGetAll(ctx, codeKey(id)).Result()
		if err != nil {
			return unavailable(err)
		}
		if len(h) > 0 {
			if cl.Code, err = decodeCode(id, h); err != nil {
				return err
			}
		}
		for _, x := range []struct {
			key string
			out *map[string]string
		}{{campaignUsedKey(id), &cl.Used}, {campaignPTextKey(id), &cl.PromotionCodes}, {campaignPCodesKey(id), &cl.PromotionCodeTexts}} {
			if *x.out, err = s.scanHash(ctx, x.key); err != nil {
				return err
			}
		}
		maps.DeleteFunc(cl.Used, func(k, _ string) bool { return strings.HasPrefix(k, codeWaitersPrefix) })
		st.Campaigns[id] = cl
		if err := s.EachRedemption(ctx, id, func(r *promo.Redemption) error {
			st.Ledgers[id] = append(st.Ledgers[id], r)
			return nil
		}); err != nil {
			return err
		}
		slices.SortFunc(st.Ledgers[id], func(a, b *promo.Redemption) int { return strings.Compare(a.ID, b.ID) })
	}
	return nil
}

// scanHash reads a whole hash with HSCAN, a thousand fields a call.
func (s *Store) scanHash(ctx context.Context, key string) (map[string]string, error) {
	out := map[string]string{}
	var cursor uint64
	for {
		kv, next, err := s.rdb.HScan(ctx, key, cursor, "", 1000).Result()
		if err != nil {
			return nil, unavailable(err)
		}
		for i := 0; i+1 < len(kv); i += 2 {
			out[kv[i]] = kv[i+1]
		}
		if cursor = next; cursor == 0 {
			return out, nil
		}
	}
}
