package promo

import (
	"context"
	"encoding/json"
	"sort"
	"strings"
	"time"
)

// The audit trail: every admin change of a code (create, update, archive;
// from the API or the console, which calls the API) is recorded with the API
// key's name, the time, the request ID and the fields changed, before →
// after. Changes the adapter makes by itself (stock switching the Stripe
// promotion code, a deleted coupon) are not admin changes and are not
// recorded. The trail lives only in Redis: reconcile cannot rebuild it from
// Stripe.

// Audit actions.
const (
	AuditCreate  = "create"
	AuditUpdate  = "update"
	AuditArchive = "archive"
)

// Actor is who makes a change: the API key's name and the request's ID.
type Actor struct {
	APIKey    string
	RequestID string
}

type actorKey struct{}

// WithActor attaches the actor of a request to its context (httpapi does it
// after authentication), so the catalog can record it in the audit trail.
func WithActor(ctx context.Context, a Actor) context.Context {
	return context.WithValue(ctx, actorKey{}, a)
}

// WithActorOf is WithActor with the actor a points to, which must not
// change afterwards: not copied into a new value, one allocation less.
func WithActorOf(ctx context.Context, a *Actor) context.Context {
	return context.WithValue(ctx, actorKey{}, a)
}

// ActorFrom returns the context's actor (zero when none).
func ActorFrom(ctx context.Context) Actor {
	switch a := ctx.Value(actorKey{}).(type) {
	case Actor:
		return a
	case *Actor:
		return *a
	}
	return Actor{}
}

// FieldChange is one field of a change; Before and After are JSON values
// (null when absent).
type FieldChange struct {
	Field  string          `json:"field"`
	Before json.RawMessage `json:"before"`
	After  json.RawMessage `json:"after"`
}

// AuditEvent is one admin change of a code.
type AuditEvent struct {
	ID          string        `json:"id"` // "ev_" + sortable unique suffix
	PromoCodeID string        `json:"promo_code_id"`
	Action      string        `json:"action"`
	APIKey      string        `json:"api_key"`
	RequestID   string        `json:"request_id"`
	At          time.Time     `json:"at"`
	Changes     []FieldChange `json:"changes"`
}

// AuditStore keeps the trail.
type AuditStore interface {
	AppendAudit(ctx context.Context, e *AuditEvent) error
	// ListAudit returns a page of one code's events, newest first, after
	// startingAfter (an event ID) when set.
	ListAudit(ctx context.Context, promoCodeID string, limit int, startingAfter string) (Page[*AuditEvent], error)
	// GetAudit returns one event (ErrNotFound).
	GetAudit(ctx context.Context, promoCodeID, id string) (*AuditEvent, error)
}

// auditedFields are the fields of a code the trail compares, as the API names
// them; metadata keys appear as "metadata.<key>".
func auditedFields(p *PromoCode) map[string]any {
	if p == nil {
		return map[string]any{}
	}
	m := map[string]any{
		"status": p.Status, "unlimited_stock": p.UnlimitedStock,
	}
	if !p.UnlimitedStock {
		m["stock"] = p.Stock
	}
	if p.ExpiresAt != nil {
		m["expiration_datetime"] = p.ExpiresAt.UTC().Format(time.RFC3339)
	}
	for k, v := range p.Metadata {
		m["metadata."+k] = v
	}
	return m
}

// createdFields adds the terms fixed at create.
func createdFields(p *PromoCode) map[string]any {
	m := auditedFields(p)
	m["code"], m["promo_type"], m["amount_off"] = p.Code, p.PromoType, json.Number(p.AmountOffDecimal())
	m["duration"], m["promo_duration_months"] = p.Duration, p.DurationMonths
	m["new_users_only"], m["existing_memberships_only"] = p.NewUsersOnly, p.ExistingMembershipsOnly
	if p.PromoType == FlatAmount {
		m["currency"] = p.Currency
	}
	if len(p.PlanIDs) > 0 {
		m["plan_ids"] = p.PlanIDs
	}
	return m
}

// Diff lists the fields that differ between before and after, sorted by name.
func diffFields(before, after map[string]any) []FieldChange {
	names := map[string]bool{}
	for k := range before {
		names[k] = true
	}
	for k := range after {
		names[k] = true
	}
	var out []FieldChange
	for k := range names {
		b, a := jsonValue(before[k]), jsonValue(after[k])
		if string(b) != string(a) {
			out = append(out, FieldChange{Field: k, Before: b, After: a})
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Field < out[j].Field })
	return out
}

func jsonValue(v any) json.RawMessage {
	if v == nil {
		return json.RawMessage("null")
	}
	b, err := json.Marshal(v)
	if err != nil {
		return json.RawMessage("null")
	}
	return b
}

// audit records an admin change of p (prev nil for a create). A change that
// changed no audited field is not recorded. Recording is best effort: the
// change is done in Stripe and Redis already, so a failure to record is
// logged, not answered.
func (c *Catalog) audit(ctx context.Context, action string, prev, next *PromoCode) {
	if c.Audit == nil {
		return
	}
	var changes []FieldChange
	if prev == nil {
		changes = diffFields(nil, createdFields(next))
	} else {
		changes = diffFields(auditedFields(prev), auditedFields(next))
	}
	if len(changes) == 0 {
		return
	}
	a := ActorFrom(ctx)
	e := &AuditEvent{PromoCodeID: next.ID, Action: action, APIKey: a.APIKey, RequestID: a.RequestID,
		At: c.Clock.Now().UTC(), Changes: changes}
	switch {
	case action == AuditCreate:
		// One create event per code, whatever retries finish it: its ID
		// comes from the code's (made earlier than any later event's ID,
		// so the trail stays in time order).
		e.ID = "ev_" + strings.TrimPrefix(next.ID, "pc_")
	case c.NewAuditID != nil:
		e.ID = c.NewAuditID()
	}
	actx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 2*time.Second)
	defer cancel()
	if err := c.Audit.AppendAudit(actx, e); err != nil {
		c.Log.ErrorContext(ctx, "could not record an admin change in the audit trail", "promo_code_id", next.ID,
			"action", action, "err", err.Error())
	}
}

// Events returns a page of a code's audit trail, newest first.
func (c *Catalog) Events(ctx context.Context, promoCodeID string, limit int, startingAfter string) (Page[*AuditEvent], error) {
	if c.Audit == nil {
		return Page[*AuditEvent]{}, nil
	}
	if _, err := c.Get(ctx, promoCodeID); err != nil {
		return Page[*AuditEvent]{}, err
	}
	if startingAfter != "" {
		if _, err := c.Audit.GetAudit(ctx, promoCodeID, startingAfter); err == ErrNotFound {
			return Page[*AuditEvent]{}, errUnknownCursor(startingAfter, "event")
		} else if err != nil {
			return Page[*AuditEvent]{}, err
		}
	}
	return c.Audit.ListAudit(ctx, promoCodeID, limit, startingAfter)
}
