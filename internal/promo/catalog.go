package promo

import (
	"context"
	"errors"
	"log/slog"
	"time"
)

// ProvisionLease is how long a create request owns an unfinished code before
// another request with the same terms may take it over.
const ProvisionLease = 30 * time.Second

// UpdateLockTTL bounds how long an update may hold a code's lock.
const UpdateLockTTL = 30 * time.Second

// Catalog manages promo codes and their Stripe mirror.
type Catalog struct {
	Store   Store
	Gateway Gateway
	Clock   Clock
	Log     *slog.Logger
	NewID   func() string // "pc_" + sortable unique suffix
}

// Create validates in, claims the code text, creates the Stripe coupon and
// promotion code and returns the ready code. requestKey (the scoped inbound
// Idempotency-Key) makes the whole operation safe to retry: a retry with the
// same key resumes the same code and replays the same Stripe calls.
func (c *Catalog) Create(ctx context.Context, in CreateInput, requestKey string) (*PromoCode, error) {
	now := c.Clock.Now()
	draft, err := NewPromoCode(in, now)
	if err != nil {
		return nil, err
	}
	if len(draft.PlanIDs) > 0 {
		if draft.PlanProducts, err = c.Gateway.ResolvePlans(ctx, draft.PlanIDs); err != nil {
			return nil, err
		}
	}
	draft.ID = c.NewID()
	draft.CreatedAt, draft.UpdatedAt = now, now
	draft.Stripe = StripeRefs{State: SyncProvisioning}
	p, claim, err := c.Store.BeginCreate(ctx, draft, requestKey, now, ProvisionLease)
	if err != nil {
		return nil, err
	}
	if claim == ClaimResume {
		c.Log.InfoContext(ctx, "resuming unfinished promo code create", "promo_code_id", p.ID, "code", p.Code)
	}
	return c.provision(ctx, p, requestKey)
}

// provision creates whatever Stripe objects p still lacks, then marks it ready.
func (c *Catalog) provision(ctx context.Context, p *PromoCode, requestKey string) (*PromoCode, error) {
	if p.Stripe.State == SyncReady {
		return p, c.Store.FinishCreate(ctx, p)
	}
	if p.Stripe.CouponID == "" {
		id, err := c.Gateway.CreateCoupon(ctx, couponSpec(p), StripeKey(requestKey, "coupon:"+p.ID))
		if err != nil {
			return nil, err
		}
		p.Stripe.CouponID = id
		if err := c.Store.SaveStripeRefs(ctx, p.ID, p.Stripe); err != nil {
			return nil, err
		}
	}
	if p.Stripe.PromotionCodeID == "" {
		spec := PromotionCodeSpec{
			PromoCodeID: p.ID, Code: p.Code, CouponID: p.Stripe.CouponID, ExpiresAt: p.ExpiresAt,
			FirstTimeTransaction: p.NewUsersOnly, Active: p.WantStripeActive(), Metadata: stripeMetadata(p),
		}
		id, err := c.Gateway.CreatePromotionCode(ctx, spec, StripeKey(requestKey, "promotion_code:"+p.ID))
		if errors.Is(err, ErrPromotionCodeTaken) {
			id, err = c.adoptPromotionCode(ctx, p, err)
		}
		if err != nil {
			return nil, err
		}
		p.Stripe.PromotionCodeID = id
		p.Stripe.Active, p.Stripe.ExpiresAt = spec.Active, p.ExpiresAt
	}
	p.Stripe.State, p.Stripe.Owner, p.Stripe.LeaseUntil = SyncReady, "", time.Time{}
	if err := c.Store.FinishCreate(ctx, p); err != nil {
		return nil, err
	}
	return p, nil
}

// adoptPromotionCode handles Stripe refusing a promotion code because one with
// the same text is active: if it is ours (made by an earlier attempt whose
// answer was lost), adopt it; otherwise the text is taken in Stripe.
func (c *Catalog) adoptPromotionCode(ctx context.Context, p *PromoCode, cause error) (string, error) {
	id, coupon, found, err := c.Gateway.FindActivePromotionCode(ctx, p.Code)
	if err != nil {
		return "", err
	}
	if found && coupon == p.Stripe.CouponID {
		c.Log.InfoContext(ctx, "adopted promotion code created by an earlier attempt", "promo_code_id", p.ID, "promotion_code_id", id)
		return id, nil
	}
	return "", &Error{Code: CodeConflict, Param: "code",
		Message: "Stripe already has an active promotion code " + p.Code + " that this service does not own; deactivate it in Stripe or choose another code",
		Err:     cause}
}

// Get returns one code.
func (c *Catalog) Get(ctx context.Context, id string) (*PromoCode, error) {
	p, err := c.Store.Get(ctx, id)
	if errors.Is(err, ErrNotFound) {
		return nil, &Error{Code: CodeNotFound, Param: "id", Message: "no promo code " + id}
	}
	return p, err
}

// List returns a page of codes, newest first.
func (c *Catalog) List(ctx context.Context, f ListFilter) (Page[*PromoCode], error) {
	switch f.Status {
	case "", StatusActive, StatusInactive, StatusArchived, StatusAll:
	default:
		return Page[*PromoCode]{}, Invalid("status", "status must be active, inactive, archived or all")
	}
	if f.Limit == 0 {
		f.Limit = 10
	}
	if f.Limit < 1 || f.Limit > 100 {
		return Page[*PromoCode]{}, Invalid("limit", "limit must be between 1 and 100")
	}
	return c.Store.List(ctx, f)
}

// Update applies an admin change and keeps the Stripe promotion code in step:
// it is active exactly while the code is active with stock left; when an
// active code's expiration differs from the promotion code's, it is replaced (Stripe cannot change expires_at) with a new
// promotion code of the same text.
func (c *Catalog) Update(ctx context.Context, id string, in UpdateInput, requestKey string) (*PromoCode, error) {
	unlock, err := c.Store.Lock(ctx, id, UpdateLockTTL)
	if err != nil {
		return nil, err
	}
	defer unlock()
	prev, err := c.Get(ctx, id)
	if err != nil {
		return nil, err
	}
	next, err := in.Apply(prev, c.Clock.Now())
	if err != nil {
		return nil, err
	}
	if err := c.syncStripe(ctx, prev, next, requestKey); err != nil {
		return nil, err
	}
	if err := c.Store.SaveUpdate(ctx, prev, next, in.Stock != nil); err != nil {
		return nil, err
	}
	return next, nil
}

func (c *Catalog) syncStripe(ctx context.Context, prev, next *PromoCode, requestKey string) error {
	want := next.WantStripeActive()
	if want && !timesEqual(next.Stripe.ExpiresAt, next.ExpiresAt) {
		return c.rotatePromotionCode(ctx, next, requestKey)
	}
	var u PromotionCodeUpdate
	if want != next.Stripe.Active {
		u.Active = &want
	}
	if !metadataEqual(prev.Metadata, next.Metadata) {
		u.Metadata = stripeMetadataUpdate(prev, next)
	}
	if u.Active == nil && u.Metadata == nil {
		return nil
	}
	if err := c.Gateway.UpdatePromotionCode(ctx, next.Stripe.PromotionCodeID, u, StripeKey(requestKey, "promotion_code.update:"+next.ID)); err != nil {
		return err
	}
	next.Stripe.Active = want
	return nil
}

// rotatePromotionCode replaces the Stripe promotion code of an active code
// whose expiration changed: the old one is deactivated (Stripe allows one
// active promotion code per text) and a new one carries the new expires_at.
func (c *Catalog) rotatePromotionCode(ctx context.Context, p *PromoCode, requestKey string) error {
	if p.Stripe.Active {
		off := false
		if err := c.Gateway.UpdatePromotionCode(ctx, p.Stripe.PromotionCodeID, PromotionCodeUpdate{Active: &off},
			StripeKey(requestKey, "promotion_code.deactivate:"+p.Stripe.PromotionCodeID)); err != nil {
			return err
		}
	}
	spec := PromotionCodeSpec{
		PromoCodeID: p.ID, Code: p.Code, CouponID: p.Stripe.CouponID, ExpiresAt: p.ExpiresAt,
		FirstTimeTransaction: p.NewUsersOnly, Active: true, Metadata: stripeMetadata(p),
	}
	id, err := c.Gateway.CreatePromotionCode(ctx, spec, StripeKey(requestKey, "promotion_code.rotate:"+p.Stripe.PromotionCodeID))
	if err != nil {
		return err
	}
	c.Log.InfoContext(ctx, "rotated Stripe promotion code for new expiration", "promo_code_id", p.ID,
		"old_promotion_code_id", p.Stripe.PromotionCodeID, "promotion_code_id", id)
	p.Stripe.PromotionCodeID, p.Stripe.Active, p.Stripe.ExpiresAt = id, true, p.ExpiresAt
	return nil
}

func couponSpec(p *PromoCode) CouponSpec {
	s := CouponSpec{
		PromoCodeID: p.ID, Name: p.Code, Duration: p.Duration, Months: p.DurationMonths,
		ProductIDs: p.PlanProducts, Metadata: stripeMetadata(p),
	}
	if p.PromoType == Percentage {
		s.PercentOff = p.AmountOff
	} else {
		s.AmountOff, s.Currency = p.AmountOff, p.Currency
	}
	return s
}

// stripeMetadata is the code's metadata plus the adapter's links.
func stripeMetadata(p *PromoCode) map[string]string {
	md := copyMetadata(p.Metadata)
	md[MetaPromoCodeID] = p.ID
	md[MetaPromoCode] = p.Code
	return md
}

// stripeMetadataUpdate is the Stripe metadata patch from prev to next: keys
// removed are sent empty, which unsets them in Stripe.
func stripeMetadataUpdate(prev, next *PromoCode) map[string]string {
	md := stripeMetadata(next)
	for k := range prev.Metadata {
		if _, ok := next.Metadata[k]; !ok {
			md[k] = ""
		}
	}
	return md
}

func metadataEqual(a, b map[string]string) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if bv, ok := b[k]; !ok || bv != v {
			return false
		}
	}
	return true
}
