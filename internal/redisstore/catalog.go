package redisstore

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"strings"
	"time"

	"github.com/billing-adapter/billing-adapter/internal/promo"
	"github.com/redis/go-redis/v9"
)

// beginCreateScript: lua/begin_create.lua.
var beginCreateScript = plainScript("begin_create")

// releaseScript: lua/release_provision.lua.
var releaseScript = plainScript("release_provision")

// indexScript: lua/index_code.lua.
var indexScript = plainScript("index_code")

// indexTextScript: lua/index_text.lua.
var indexTextScript = plainScript("index_text")

func statusLists(status promo.Status) []string {
	switch status {
	case "":
		return []string{activeList, inactiveList}
	case promo.StatusAll:
		return []string{activeList, inactiveList, archivedList}
	}
	return []string{keyListPrefix + string(status)}
}

// BeginCreate implements promo.Store.
func (s *Store) BeginCreate(ctx context.Context, draft *promo.PromoCode, owner string, now time.Time, lease time.Duration) (*promo.PromoCode, promo.ClaimResult, error) {
	terms := sha256.Sum256([]byte(draft.TermsKey()))
	res, err := beginCreateScript.Run(ctx, s.rdb, []string{codeTextKey(draft.Code)},
		draft.Code, draft.ID, owner, now.UnixMilli(), lease.Milliseconds(), hex.EncodeToString(terms[:])).StringSlice()
	if err != nil {
		return nil, 0, unavailable(err)
	}
	outcome, id := res[0], res[1]
	switch outcome {
	case "taken":
		return nil, 0, &promo.Error{Code: promo.CodeConflict, Param: "code",
			Message: "code " + draft.Code + " is already used by promo code " + id + " (codes are unique among non-archived codes, ignoring case)"}
	case "busy":
		return nil, 0, &promo.Error{Code: promo.CodeConflict, Param: "code",
			Message: "code " + draft.Code + " is being created by another request; retry in a few seconds"}
	}
	draft.Stripe.Owner, draft.Stripe.LeaseUntil = owner, now.Add(lease)
	if outcome == "resume" {
		p, err := s.Get(ctx, id)
		switch {
		case err == nil:
			p.Stripe.Owner, p.Stripe.LeaseUntil = owner, draft.Stripe.LeaseUntil
			return p, promo.ClaimResume, nil
		case !errors.Is(err, promo.ErrNotFound):
			return nil, 0, err
		}
		draft.ID = id // the earlier attempt stopped before writing its record
	}
	if err := s.writeCode(ctx, draft, true); err != nil {
		return nil, 0, err
	}
	if outcome == "resume" {
		return draft, promo.ClaimResume, nil
	}
	return draft, promo.ClaimNew, nil
}

func (s *Store) writeCode(ctx context.Context, p *promo.PromoCode, withStock bool) error {
	defer s.dropSnapshot(p.ID)
	f, err := codeFields(p, withStock)
	if err != nil {
		return err
	}
	return unavailable(s.rdb.HSet(ctx, codeKey(p.ID), f...).Err())
}

// SaveStripeRefs implements promo.Store.
func (s *Store) SaveStripeRefs(ctx context.Context, id string, refs promo.StripeRefs) error {
	p, err := s.Get(ctx, id)
	if err != nil {
		return err
	}
	p.Stripe = refs
	return s.writeCode(ctx, p, false)
}

// ReleaseProvision implements promo.Store.
func (s *Store) ReleaseProvision(ctx context.Context, code, owner string) error {
	return unavailable(releaseScript.Run(ctx, s.rdb, []string{codeTextKey(code)}, code, owner).Err())
}

// FinishCreate implements promo.Store.
func (s *Store) FinishCreate(ctx context.Context, p *promo.PromoCode) error {
	if err := s.writeCode(ctx, p, false); err != nil {
		return err
	}
	return s.index(ctx, p)
}

// index puts a ready code in its status list ({catalog}) and settles its
// text's entry (its own slot): two scripts, each idempotent.
func (s *Store) index(ctx context.Context, p *promo.PromoCode) error {
	defer s.dropSnapshot(p.ID)
	if err := indexTextScript.Run(ctx, s.rdb, []string{codeTextKey(p.Code)}, p.ID, string(p.Status)).Err(); err != nil {
		return unavailable(err)
	}
	if p.Status == promo.StatusArchived {
		s.texts.forget(p.Code)
	}
	return unavailable(indexScript.Run(ctx, s.rdb, listKeys, p.ID, string(p.Status)).Err())
}

// codeID returns the ID of the non-archived code with this text.
func (s *Store) codeID(ctx context.Context, code string) (string, error) {
	id, err := s.rdb.HGet(ctx, codeTextKey(code), "id").Result()
	if errors.Is(err, redis.Nil) {
		return "", promo.ErrNotFound
	}
	if err != nil {
		return "", unavailable(err)
	}
	if !strings.HasPrefix(id, "pc_") {
		return "", promo.ErrNotFound // a campaign code's text (see keys.go)
	}
	return id, nil
}

// Get implements promo.Store.
func (s *Store) Get(ctx context.Context, id string) (*promo.PromoCode, error) {
	h, err := s.rdb.HGetAll(ctx, codeKey(id)).Result()
	if err != nil {
		return nil, unavailable(err)
	}
	return decodeCode(id, h)
}

// GetByCode implements promo.Store.
func (s *Store) GetByCode(ctx context.Context, code string) (*promo.PromoCode, error) {
	id, err := s.codeID(ctx, code)
	if err != nil {
		return nil, err
	}
	return s.Get(ctx, id)
}

// List implements promo.Store.
func (s *Store) List(ctx context.Context, f promo.ListFilter) (promo.Page[*promo.PromoCode], error) {
	var page promo.Page[*promo.PromoCode]
	ids, hasMore, err := s.pageIDs(ctx, statusLists(f.Status), f.Limit, f.StartingAfter)
	if err != nil {
		return page, err
	}
	page.HasMore = hasMore
	cmds := make([]*redis.MapStringStringCmd, len(ids))
	_, err = s.rdb.Pipelined(ctx, func(p redis.Pipeliner) error {
		for i, id := range ids {
			cmds[i] = p.HGetAll(ctx, codeKey(id))
		}
		return nil
	})
	if err != nil {
		return page, unavailable(err)
	}
	for i, c := range cmds {
		p, err := decodeCode(ids[i], c.Val())
		if errors.Is(err, promo.ErrNotFound) {
			continue
		}
		if err != nil {
			return page, err
		}
		page.Data = append(page.Data, p)
	}
	return page, nil
}

// SaveUpdate implements promo.Store.
func (s *Store) SaveUpdate(ctx context.Context, prev, p *promo.PromoCode, stockChanged bool) error {
	var err error
	if stockChanged || (prev != nil && prev.UnlimitedStock != p.UnlimitedStock) {
		err = s.restock(ctx, p, stockChanged)
	} else {
		err = s.writeCode(ctx, p, false)
	}
	if err != nil {
		return err
	}
	return s.index(ctx, p)
}

// restock writes p and, in the same script, serves the lines waiting for a
// unit from its new stock (lua/restock.lua); p's counters then say what is
// left, and the worker is asked to check the Stripe promotion code's active
// flag.
func (s *Store) restock(ctx context.Context, p *promo.PromoCode, withStock bool) error {
	defer s.dropSnapshot(p.ID)
	f, err := codeFields(p, withStock)
	if err != nil {
		return err
	}
	served, err := restockScript.Run(ctx, s.rdb, redemptionKeys(p.ID), f...).Int()
	if err != nil || served == 0 {
		return unavailable(err)
	}
	now, err := s.Get(ctx, p.ID)
	if err != nil {
		return err
	}
	p.Stock, p.Held = now.Stock, now.Held
	return s.NeedsStripeSync(ctx, p.ID)
}

// restockScript: lua/restock.lua.
var restockScript = ledgerScript("restock")
