package redisstore

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/billing-adapter/billing-adapter/internal/promo"
	"github.com/redis/go-redis/v9"
)

// The scripts below run with KEYS = redemptionKeys(code) after the ledger
// prelude (scripts.go).

// reserveScript: lua/reserve.lua.
var reserveScript = ledgerScript("reserve")

// confirmScript: lua/confirm.lua.
var confirmScript = ledgerScript("confirm")

// finishScript: lua/finish.lua.
var finishScript = ledgerScript("finish")

// customerScript: lua/customer_redemption.lua.
var customerScript = ledgerScript("customer_redemption")

// rdRecord is the stored JSON of a redemption (a field of ba:{pc}:rd). Field
// names are short: one record per redemption adds up. Times are Unix ms.
// Stored records leave out their ID (the hash field) and code ID (the key);
// the scripts' answers carry the ID.
type rdRecord struct {
	ID         string           `json:"id,omitempty"`
	Customer   string           `json:"cus"`
	Sub        string           `json:"sub,omitempty"`
	Discount   string           `json:"di,omitempty"`
	Source     string           `json:"src"`
	State      string           `json:"st"`
	Owner      string           `json:"own,omitempty"`
	Lease      int64            `json:"lease,omitempty"`
	Created    int64            `json:"c"`
	Confirmed  int64            `json:"cf,omitempty"`
	Activated  int64            `json:"act,omitempty"`
	Ended      int64            `json:"end,omitempty"`
	Effective  int64            `json:"eff,omitempty"`
	Reason     string           `json:"why,omitempty"`
	StripeEnd  bool             `json:"es,omitempty"`
	HoldsStock bool             `json:"tk,omitempty"`
	Returned   bool             `json:"ret,omitempty"`
	Flags      []string         `json:"flags,omitempty"`
	Cycles     int              `json:"cy,omitempty"`
	Discounted map[string]int64 `json:"amt,omitempty"`
	Unique     string           `json:"uc,omitempty"` // the campaign code the redemption took
}

func ms(t time.Time) int64 {
	if t.IsZero() {
		return 0
	}
	return t.UnixMilli()
}

func fromMS(v int64) time.Time {
	if v == 0 {
		return time.Time{}
	}
	return time.UnixMilli(v).UTC()
}

// encodeRedemption renders r as stored (without its ID and code ID).
func encodeRedemption(r *promo.Redemption) ([]byte, error) {
	return json.Marshal(rdRecord{
		Customer: r.Customer, Sub: r.Subscription, Discount: r.DiscountID,
		Source: string(r.Source), State: string(r.State), Owner: r.Owner, Lease: ms(r.LeaseUntil),
		Created: ms(r.CreatedAt), Confirmed: ms(r.ConfirmedAt), Activated: ms(r.ActivatedAt), Ended: ms(r.EndedAt),
		Effective: ms(r.EffectiveAt), Reason: r.EndReason, StripeEnd: r.EndedInStripe, HoldsStock: r.HoldsStock, Returned: r.StockReturned,
		Flags: r.Flags, Cycles: r.Cycles, Discounted: r.Discounted, Unique: r.UniqueCode,
	})
}

// decodeRedemption reads a redemption of code codeID: a stored record read
// directly, named by its hash field id, or a ledger script's answer (id ""),
// which carries its ID.
func decodeRedemption(codeID, id, raw string) (*promo.Redemption, error) {
	var x rdRecord
	if err := json.Unmarshal([]byte(raw), &x); err != nil {
		return nil, fmt.Errorf("redemption record: %w", err)
	}
	if id == "" {
		id = x.ID
	}
	return &promo.Redemption{
		ID: id, PromoCodeID: codeID, Customer: x.Customer, Subscription: x.Sub, DiscountID: x.Discount,
		Source: promo.RedemptionSource(x.Source), State: promo.RedemptionState(x.State), Owner: x.Owner,
		LeaseUntil: fromMS(x.Lease), CreatedAt: fromMS(x.Created), ConfirmedAt: fromMS(x.Confirmed),
		ActivatedAt: fromMS(x.Activated), EndedAt: fromMS(x.Ended), EffectiveAt: fromMS(x.Effective),
		EndReason: x.Reason, EndedInStripe: x.StripeEnd, HoldsStock: x.HoldsStock, StockReturned: x.Returned, Flags: x.Flags,
		Cycles: x.Cycles, Discounted: x.Discounted, UniqueCode: x.Unique,
	}, nil
}

// reserveRefusals maps the reserve script's refusals to domain errors.
var reserveRefusals = map[string]promo.Code{
	"already_redeemed": promo.CodeAlreadyRedeemedByCustomer,
	"not_found":        promo.CodeCodeNotFound,
	"not_ready":        promo.CodeCodeInactive,
	"inactive":         promo.CodeCodeInactive,
	"expired":          promo.CodeCodeExpired,
	"exhausted":        promo.CodeCodeExhausted,
}

// Reserve implements promo.RedemptionStore. The customer's marker
// (markers.go) is written first, in the customer's slot.
func (s *Store) Reserve(ctx context.Context, r *promo.Redemption, now time.Time) (*promo.Redemption, promo.ReserveOutcome, error) {
	raw, err := encodeRedemption(r)
	if err != nil {
		return nil, 0, err
	}
	if err := s.markCustomers(ctx, r.PromoCodeID, r.Customer); err != nil {
		return nil, 0, err
	}
	defer s.dropSnapshot(r.PromoCodeID)
	res, err := reserveScript.Run(ctx, s.rdb, redemptionKeys(r.PromoCodeID),
		raw, r.ID, r.Customer, r.Subscription, r.Owner, now.UnixMilli()).StringSlice()
	if err != nil {
		return nil, 0, unavailable(err)
	}
	if code, refused := reserveRefusals[res[0]]; refused {
		return nil, 0, promo.Refuse(code)
	}
	got, err := decodeRedemption(r.PromoCodeID, "", res[1])
	if err != nil {
		return nil, 0, err
	}
	if res[0] == "resumed" {
		return got, promo.Resumed, nil
	}
	return got, promo.Reserved, nil
}

// Confirm implements promo.RedemptionStore.
func (s *Store) Confirm(ctx context.Context, codeID, id string, c promo.Confirmation) (*promo.Redemption, promo.StockChange, error) {
	return s.runTransition(ctx, confirmScript, codeID, id, c.Subscription, c.DiscountID, ms(c.EffectiveAt), ms(c.At))
}

// Finish implements promo.RedemptionStore.
func (s *Store) Finish(ctx context.Context, codeID, id, reason string, at time.Time) (*promo.Redemption, promo.StockChange, error) {
	return s.runTransition(ctx, finishScript, codeID, id, reason, ms(at), 0)
}

// EndFromStripe implements promo.ObserveStore.
func (s *Store) EndFromStripe(ctx context.Context, codeID, id, reason string, at time.Time) (*promo.Redemption, promo.StockChange, error) {
	return s.runTransition(ctx, finishScript, codeID, id, reason, ms(at), 1)
}

// runTransition runs a script answering {outcome, record, stripe_active_changed}.
func (s *Store) runTransition(ctx context.Context, script *redis.Script, codeID, id string, args ...any) (*promo.Redemption, promo.StockChange, error) {
	defer s.dropSnapshot(codeID)
	res, err := script.Run(ctx, s.rdb, redemptionKeys(codeID), append([]any{id}, args...)...).Slice()
	if err != nil {
		return nil, promo.StockChange{}, unavailable(err)
	}
	if res[0] == "not_found" {
		return nil, promo.StockChange{}, promo.ErrNotFound
	}
	r, err := decodeRedemption(codeID, "", str(res[1]))
	if err != nil {
		return nil, promo.StockChange{}, err
	}
	changed, _ := res[2].(int64)
	return r, promo.StockChange{StripeActiveChanged: changed == 1}, nil
}

// GetRedemption implements promo.RedemptionStore.
func (s *Store) GetRedemption(ctx context.Context, codeID, id string) (*promo.Redemption, error) {
	raw, err := s.rdb.HGet(ctx, rdKey(codeID), id).Result()
	if errors.Is(err, redis.Nil) {
		return nil, promo.ErrNotFound
	}
	if err != nil {
		return nil, unavailable(err)
	}
	return decodeRedemption(codeID, id, raw)
}

// CustomerRedemption returns the customer's redemption of a code (promo.ErrNotFound).
func (s *Store) CustomerRedemption(ctx context.Context, codeID, customer string) (*promo.Redemption, error) {
	raw, err := customerScript.Run(ctx, s.rdb, redemptionKeys(codeID), customer).Text()
	if errors.Is(err, redis.Nil) {
		return nil, promo.ErrNotFound
	}
	if err != nil {
		return nil, unavailable(err)
	}
	return decodeRedemption(codeID, "", raw)
}

// ListRedemptions implements promo.RedemptionStore.
func (s *Store) ListRedemptions(ctx context.Context, codeID string, limit int, startingAfter string) (promo.Page[*promo.Redemption], error) {
	var page promo.Page[*promo.Redemption]
	ids, hasMore, err := s.pageIDs(ctx, []string{ledgerKey(codeID)}, limit, startingAfter)
	if err != nil || len(ids) == 0 {
		return page, err
	}
	page.HasMore = hasMore
	raws, err := s.rdb.HMGet(ctx, rdKey(codeID), ids...).Result()
	if err != nil {
		return page, unavailable(err)
	}
	for i, v := range raws {
		raw, ok := v.(string)
		if !ok {
			continue
		}
		r, err := decodeRedemption(codeID, ids[i], raw)
		if err != nil {
			return page, err
		}
		page.Data = append(page.Data, r)
	}
	return page, nil
}

// pageIDs returns up to limit members of lexically ordered ZSETs (ULID-based
// IDs, so newest first), after startingAfter when set, merged across keys.
func (s *Store) pageIDs(ctx context.Context, keys []string, limit int, startingAfter string) ([]string, bool, error) {
	start := "+"
	if startingAfter != "" {
		start = "(" + startingAfter
	}
	cmds := make([]*redis.StringSliceCmd, len(keys))
	if _, err := s.rdb.Pipelined(ctx, func(p redis.Pipeliner) error {
		for i, key := range keys {
			cmds[i] = p.ZRangeArgs(ctx, redis.ZRangeArgs{Key: key, Start: start, Stop: "-", ByLex: true, Rev: true,
				Count: int64(limit + 1)})
		}
		return nil
	}); err != nil {
		return nil, false, unavailable(err)
	}
	var ids []string
	for _, c := range cmds {
		ids = append(ids, c.Val()...)
	}
	if len(keys) > 1 {
		slices.SortFunc(ids, func(a, b string) int { return strings.Compare(b, a) })
		ids = slices.Compact(ids)
	}
	if len(ids) > limit {
		return ids[:limit], true, nil
	}
	return ids, false, nil
}

// codeForCustomerScript: lua/code_for_customer.lua.
var codeForCustomerScript = plainScript("code_for_customer")

// GetByCodeForCustomer implements promo.RedemptionStore: the code's hash
// and the customer's redemption in one script on the code's slot, after the
// text is resolved to its code: from the in-process hint (textcache.go) for
// a promo code, from the campaign code index (cmpindex.go) for a code of a
// campaign this process holds, else from the text's key. One round trip
// when the text is known in the process, two otherwise (and one for a text
// that is nowhere: the text key says so). The redemption is nil when the
// customer has none.
func (s *Store) GetByCodeForCustomer(ctx context.Context, code, customer string) (*promo.PromoCode, *promo.Redemption, error) {
	if id, ok := s.texts.get(code); ok {
		if strings.HasPrefix(id, "cmp_") {
			// A campaign's texts are never freed or moved: the hint is exact.
			return s.campaignCodeForCustomer(ctx, id, code, customer)
		}
		p, rd, err := s.codeForCustomer(ctx, id, customer)
		if err == nil && p.Code == code && p.Status != promo.StatusArchived {
			return p, rd, nil
		}
		if err != nil && !errors.Is(err, promo.ErrNotFound) {
			return nil, nil, err
		}
		s.texts.forget(code) // archived, or not this text's code: ask Redis
	}
	if id, ok := s.cidx.lookup(code); ok {
		return s.campaignCodeForCustomer(ctx, id, code, customer)
	}
	return s.byTextKey(ctx, code, customer)
}

// byTextKey is GetByCodeForCustomer for a text this process does not know
// (neither the hint nor the campaign code index has it): the text's key
// names its code or campaign, then that is read and remembered.
func (s *Store) byTextKey(ctx context.Context, code, customer string) (*promo.PromoCode, *promo.Redemption, error) {
	id, batch, err := s.textOwner(ctx, code)
	if err != nil {
		return nil, nil, err
	}
	if strings.HasPrefix(id, "cmp_") {
		// The index loads the campaign (or its newer chunks) in the
		// background; only a campaign it cannot hold goes to the hint.
		indexed := s.cidx.met(id, batch)
		p, rd, err := s.campaignCodeForCustomer(ctx, id, code, customer)
		if err == nil && !indexed {
			s.texts.put(code, id)
		}
		return p, rd, err
	}
	p, rd, err := s.codeForCustomer(ctx, id, customer)
	if err != nil {
		return nil, nil, err
	}
	s.texts.put(code, id)
	return p, rd, nil
}

// codeForCustomer reads code id's hash and the customer's redemption of it.
func (s *Store) codeForCustomer(ctx context.Context, id, customer string) (*promo.PromoCode, *promo.Redemption, error) {
	res, err := s.runShared(ctx, s.shared.do, codeForCustomerScript, []string{codeKey(id), rdKey(id), custKey(id)}, customer).Slice()
	if err != nil {
		return nil, nil, unavailable(err)
	}
	if len(res) != 3 {
		return nil, nil, unavailable(fmt.Errorf("unexpected code read answer of %d items", len(res)))
	}
	flat, _ := res[0].([]any)
	p, err := s.docs.decode(id, flatHash(flat))
	if err != nil {
		return nil, nil, err
	}
	raw := str(res[1])
	if raw == "" {
		return p, nil, nil
	}
	rd, err := decodeRedemption(id, str(res[2]), raw)
	if err != nil {
		return nil, nil, err
	}
	return p, rd, nil
}
