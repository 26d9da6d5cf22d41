package redisstore

import (
	"context"
	"encoding/json"
	"errors"

	"github.com/billing-adapter/billing-adapter/internal/promo"
	"github.com/redis/go-redis/v9"
)

// The audit trail of one code (auditKey, auditEvKey in keys.go) is written
// with MULTI (one slot); an event written twice with the same ID (a create
// finished by a retry) is one event.

// AppendAudit implements promo.AuditStore.
func (s *Store) AppendAudit(ctx context.Context, e *promo.AuditEvent) error {
	doc, err := json.Marshal(e)
	if err != nil {
		return err
	}
	_, err = s.rdb.TxPipelined(ctx, func(p redis.Pipeliner) error {
		p.HSet(ctx, auditEvKey(e.PromoCodeID), e.ID, doc)
		p.ZAdd(ctx, auditKey(e.PromoCodeID), redis.Z{Member: e.ID})
		return nil
	})
	if err != nil {
		return unavailable(err)
	}
	return nil
}

// GetAudit implements promo.AuditStore.
func (s *Store) GetAudit(ctx context.Context, codeID, id string) (*promo.AuditEvent, error) {
	doc, err := s.rdb.HGet(ctx, auditEvKey(codeID), id).Result()
	if errors.Is(err, redis.Nil) {
		return nil, promo.ErrNotFound
	}
	if err != nil {
		return nil, unavailable(err)
	}
	var e promo.AuditEvent
	if err := json.Unmarshal([]byte(doc), &e); err != nil {
		return nil, err
	}
	return &e, nil
}

// ListAudit implements promo.AuditStore: newest first.
func (s *Store) ListAudit(ctx context.Context, codeID string, limit int, startingAfter string) (promo.Page[*promo.AuditEvent], error) {
	var page promo.Page[*promo.AuditEvent]
	start := "+"
	if startingAfter != "" {
		start = "(" + startingAfter
	}
	ids, err := s.rdb.ZRangeArgs(ctx, redis.ZRangeArgs{Key: auditKey(codeID), Start: start, Stop: "-", ByLex: true, Rev: true,
		Count: int64(limit + 1)}).Result()
	if err != nil {
		return page, unavailable(err)
	}
	if len(ids) > limit {
		ids, page.HasMore = ids[:limit], true
	}
	if len(ids) == 0 {
		return page, nil
	}
	docs, err := s.rdb.HMGet(ctx, auditEvKey(codeID), ids...).Result()
	if err != nil {
		return page, unavailable(err)
	}
	for _, d := range docs {
		str, ok := d.(string)
		if !ok {
			continue
		}
		var e promo.AuditEvent
		if err := json.Unmarshal([]byte(str), &e); err != nil {
			return page, err
		}
		page.Data = append(page.Data, &e)
	}
	return page, nil
}
