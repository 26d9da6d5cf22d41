package promo

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
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
	// Audit, when set, records every admin change (audit.go); NewAuditID
	// makes its event IDs ("ev_" + sortable unique suffix).
	Audit      AuditStore
	NewAuditID func() string
}

// Create checks in, claims the code text, creates the Stripe coupon and
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
		// Part of checking the request: the prices it names must exist. A
		// refusal here is a parameter error (nothing was read or written
		// that the create decides on), so it saves no idempotent answer.
		if draft.PlanProducts, err = c.Gateway.ResolvePlans(ctx, draft.PlanIDs); err != nil {
			return nil, err
		}
	}
	Began(ctx)
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
	p, err = c.provision(ctx, p, requestKey)
	if err == nil {
		c.audit(ctx, AuditCreate, nil, p)
	}
	return p, err
}

// provision creates whatever Stripe objects p still lacks, then marks it
// ready. p.Stripe names what exists: an empty CouponID or PromotionCodeID is
// an object not made yet (as far as the store knows), whatever ID it would
// get. A failed call is followed by a lookup, because the object may exist
// although its answer was lost (or Stripe replays a saved 500 for the key).
func (c *Catalog) provision(ctx context.Context, p *PromoCode, requestKey string) (*PromoCode, error) {
	if p.Stripe.State == SyncReady {
		return p, c.Store.FinishCreate(ctx, p)
	}
	if p.Stripe.CouponID == "" {
		id, err := c.Gateway.CreateCoupon(ctx, couponSpec(p), StripeKey(requestKey, "coupon:"+p.ID))
		if err != nil {
			if found, ferr := c.Gateway.GetCoupon(ctx, p.ID); ferr != nil || !found {
				return nil, c.release(ctx, p, requestKey, err)
			}
			c.Log.InfoContext(ctx, "coupon exists although its create failed; using it", "promo_code_id", p.ID, "err", err.Error())
			id = p.ID
		}
		p.Stripe.CouponID = id
		if err := c.Store.SaveStripeRefs(ctx, p.ID, p.Stripe); err != nil {
			return nil, c.release(ctx, p, requestKey, err)
		}
	}
	if p.Stripe.PromotionCodeID == "" {
		spec := PromotionCodeSpec{
			PromoCodeID: p.ID, Code: p.Code, CouponID: p.Stripe.CouponID, ExpiresAt: p.ExpiresAt,
			FirstTimeTransaction: p.NewUsersOnly, Active: p.WantStripeActive(), Metadata: stripeMetadata(p),
		}
		id, err := c.Gateway.CreatePromotionCode(ctx, spec, StripeKey(requestKey, "promotion_code:"+p.ID))
		if err != nil {
			if id, err = c.recoverPromotionCode(ctx, p, err); err != nil {
				return nil, c.release(ctx, p, requestKey, err)
			}
		}
		p.Stripe.PromotionCodeID = id
		p.Stripe.Active, p.Stripe.ExpiresAt = spec.Active, p.ExpiresAt
	}
	p.Stripe.State, p.Stripe.Owner, p.Stripe.LeaseUntil = SyncReady, "", time.Time{}
	if err := c.Store.FinishCreate(ctx, p); err != nil {
		return nil, c.release(ctx, p, requestKey, err)
	}
	return p, nil
}

// release gives up this request's lease on an unfinished code so that a retry
// (with any Idempotency-Key) can finish it now, and returns err.
func (c *Catalog) release(ctx context.Context, p *PromoCode, owner string, err error) error {
	rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 2*time.Second)
	defer cancel()
	if rerr := c.Store.ReleaseProvision(rctx, p.Code, owner); rerr != nil {
		c.Log.WarnContext(ctx, "could not release provisioning lease; it ends by itself", "promo_code_id", p.ID, "err", rerr.Error())
	}
	return err
}

// recoverPromotionCode runs after Stripe refused or did not answer a
// promotion code create: if a promotion code with this text on our coupon
// exists (made by an earlier attempt whose answer was lost), adopt it;
// if another active one holds the text, the text is taken in Stripe.
func (c *Catalog) recoverPromotionCode(ctx context.Context, p *PromoCode, cause error) (string, error) {
	id, _, found, err := c.Gateway.FindPromotionCode(ctx, p.Code, p.Stripe.CouponID)
	if err != nil {
		return "", cause
	}
	if found {
		c.Log.InfoContext(ctx, "adopted promotion code created by an earlier attempt", "promo_code_id", p.ID, "promotion_code_id", id)
		return id, nil
	}
	if errors.Is(cause, ErrPromotionCodeTaken) {
		return "", &Error{Code: CodeConflict, Param: "code",
			Message: "Stripe already has an active promotion code " + p.Code + " that this service does not own; deactivate it in Stripe or choose another code",
			Err:     cause}
	}
	return "", cause
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
	if f.Code != "" {
		return c.findByText(ctx, f)
	}
	if f.StartingAfter != "" {
		if _, err := c.Store.Get(ctx, f.StartingAfter); errors.Is(err, ErrNotFound) {
			return Page[*PromoCode]{}, errUnknownCursor(f.StartingAfter, "promo code")
		} else if err != nil {
			return Page[*PromoCode]{}, err
		}
	}
	return c.Store.List(ctx, f)
}

// findByText answers a list filtered by code text: the non-archived code
// with that text, if it is ready and its status passes the filter.
func (c *Catalog) findByText(ctx context.Context, f ListFilter) (Page[*PromoCode], error) {
	var page Page[*PromoCode]
	norm := NormalizeCode(f.Code)
	if CheckCodeText(norm) != nil || f.StartingAfter != "" {
		return page, nil // no code can have this text; a single result has no next page
	}
	p, err := c.Store.GetByCode(ctx, norm)
	if errors.Is(err, ErrNotFound) {
		return page, nil
	}
	if err != nil {
		return page, err
	}
	if p.Stripe.State != SyncReady {
		return page, nil
	}
	switch f.Status {
	case "", StatusAll:
		if f.Status == "" && p.Status == StatusArchived {
			return page, nil
		}
	default:
		if p.Status != f.Status {
			return page, nil
		}
	}
	page.Data = []*PromoCode{p}
	return page, nil
}

// errUnknownCursor refuses a starting_after that names no object of the
// list: paging from it would silently return a page of something else.
func errUnknownCursor(id, what string) *Error {
	return Invalid("starting_after", "starting_after must be the ID of a %s of this list (the last one of the previous page); there is no %s", what, id)
}

// Update applies an admin change and keeps the Stripe promotion code in step:
// it is active exactly while the code is active with stock left; when an
// active code's expiration differs from the promotion code's, it is replaced (Stripe cannot change expires_at) with a new
// promotion code of the same text.
func (c *Catalog) Update(ctx context.Context, id string, in UpdateInput, requestKey string) (*PromoCode, error) {
	if strings.HasPrefix(id, "cmp_") {
		// A campaign's code record is read here (its terms, uses and ledger)
		// but changed only through its campaign, which changes every code.
		return nil, &Error{Code: CodeNotFound, Param: "id",
			Message: "no promo code " + id + "; it is a campaign: update it with POST /v1/campaigns/" + id}
	}
	if err := in.Check(c.Clock.Now()); err != nil {
		return nil, err
	}
	Began(ctx)
	unlock, err := c.Store.Lock(ctx, id, UpdateLockTTL)
	if err != nil {
		return nil, err
	}
	defer unlock()
	prev, err := c.Get(ctx, id)
	if err != nil {
		return nil, err
	}
	if prev.Stripe.State == SyncProvisioning && in.Status != nil && *in.Status == StatusArchived && len(in.Immutable) == 0 {
		return c.abandon(ctx, prev, requestKey)
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
	c.audit(ctx, auditAction(prev, next), prev, next)
	return next, nil
}

func auditAction(prev, next *PromoCode) string {
	if next.Status == StatusArchived && prev.Status != StatusArchived {
		return AuditArchive
	}
	return AuditUpdate
}

// abandon archives a code whose create never finished (e.g. it failed and
// the admin wants the text for other terms): whatever Stripe objects it got
// are made unredeemable and the text is freed.
func (c *Catalog) abandon(ctx context.Context, p *PromoCode, requestKey string) (*PromoCode, error) {
	now := c.Clock.Now()
	if p.Stripe.Owner != requestKey && now.Before(p.Stripe.LeaseUntil) {
		return nil, Errorf(CodeConflict, "code %s is being created by another request right now; retry shortly", p.ID)
	}
	found, err := c.Gateway.GetCoupon(ctx, p.ID)
	if err != nil {
		return nil, err
	}
	n := *p
	if found {
		n.Stripe.CouponID = p.ID
		id, active, ok, err := c.Gateway.FindPromotionCode(ctx, p.Code, p.ID)
		if err != nil {
			return nil, err
		}
		if ok && active {
			off := false
			if err := c.Gateway.UpdatePromotionCode(ctx, id, PromotionCodeUpdate{Active: &off},
				StripeKey(requestKey, "promotion_code.abandon:"+id)); err != nil {
				return nil, err
			}
		}
		n.Stripe.PromotionCodeID = id
	}
	n.Status, n.UpdatedAt, n.Stripe.Active, n.Stripe.Owner = StatusArchived, now, false, ""
	if found {
		md := map[string]string{MetaConfig: StripeConfigOf(&n).Encode()}
		if err := c.Gateway.UpdateCouponMetadata(ctx, p.ID, md, StripeKey(requestKey, "coupon.abandon:"+p.ID)); err != nil {
			return nil, err
		}
	}
	if err := c.Store.SaveUpdate(ctx, p, &n, false); err != nil {
		return nil, err
	}
	c.audit(ctx, AuditArchive, p, &n)
	c.Log.InfoContext(ctx, "archived an unfinished promo code", "promo_code_id", p.ID, "code", p.Code)
	return &n, nil
}

// syncStripe makes Stripe follow an admin change: the coupon's metadata
// (the code's metadata and its StripeConfig) and the promotion code.
func (c *Catalog) syncStripe(ctx context.Context, prev, next *PromoCode, requestKey string) error {
	cfg := StripeConfigOf(next).Encode()
	couponGone := next.StatusReason == ReasonCouponDeleted
	if !couponGone && (cfg != StripeConfigOf(prev).Encode() || !metadataEqual(prev.Metadata, next.Metadata)) {
		md := stripeMetadataUpdate(prev, next)
		md[MetaConfig] = cfg
		if err := c.Gateway.UpdateCouponMetadata(ctx, next.Stripe.CouponID, md, StripeKey(requestKey, "coupon.update:"+next.ID)); err != nil {
			return err
		}
	}
	return c.syncPromotionCode(ctx, prev, next, requestKey)
}

func (c *Catalog) syncPromotionCode(ctx context.Context, prev, next *PromoCode, requestKey string) error {
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
		ID: p.ID, PromoCodeID: p.ID, Name: p.Code, Duration: p.Duration, Months: p.DurationMonths,
		ProductIDs: p.PlanProducts, Metadata: stripeMetadata(p),
	}
	s.Metadata[MetaConfig] = StripeConfigOf(p).Encode()
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

// SyncStripeActive switches the Stripe promotion code of code id on or off
// to match WantStripeActive, after stock or reservations crossed zero. It is
// what keeps Stripe Checkout from redeeming an exhausted code. A no-op when
// Stripe already matches.
func (c *Catalog) SyncStripeActive(ctx context.Context, id string) error {
	unlock, err := c.Store.Lock(ctx, id, UpdateLockTTL)
	if err != nil {
		return err
	}
	defer unlock()
	p, err := c.Get(ctx, id)
	if err != nil {
		return err
	}
	want := p.WantStripeActive()
	if p.Stripe.State != SyncReady || want == p.Stripe.Active || p.Stripe.PromotionCodeID == "" {
		return nil
	}
	key := StripeKey("stripe_active:"+id, fmt.Sprintf("%t:%d", want, p.Stripe.ActiveSwitches))
	if err := c.Gateway.UpdatePromotionCode(ctx, p.Stripe.PromotionCodeID, PromotionCodeUpdate{Active: &want}, key); err != nil {
		return err
	}
	next := *p
	next.Stripe.Active = want
	next.Stripe.ActiveSwitches++
	if err := c.Store.SaveUpdate(ctx, p, &next, false); err != nil {
		return err
	}
	c.Log.InfoContext(ctx, "switched the Stripe promotion code", "promo_code_id", id, "active", want,
		"stock", p.Stock, "reserved", p.Reserved)
	return nil
}

// ObservePromotionCode records whether the code's Stripe promotion code is
// active, as Stripe reports it now (read back, so a stale event cannot win).
func (c *Catalog) ObservePromotionCode(ctx context.Context, id, promotionCodeID string) error {
	unlock, err := c.Store.Lock(ctx, id, UpdateLockTTL)
	if err != nil {
		return err
	}
	defer unlock()
	p, err := c.Get(ctx, id)
	if err != nil || promotionCodeID != p.Stripe.PromotionCodeID {
		return err // an older promotion code of a rotated code: not ours to follow
	}
	active, err := c.Gateway.GetPromotionCode(ctx, promotionCodeID)
	if err != nil || active == p.Stripe.Active {
		return err
	}
	if active != p.WantStripeActive() {
		c.Log.WarnContext(ctx, "the Stripe promotion code was switched outside the adapter", "promo_code_id", id,
			"stripe_active", active, "adapter_wants", p.WantStripeActive())
	}
	next := *p
	next.Stripe.Active = active
	return c.Store.SaveUpdate(ctx, p, &next, false)
}

// CouponDeleted makes a code whose Stripe coupon was deleted inactive for
// good: Stripe cannot apply it any more.
func (c *Catalog) CouponDeleted(ctx context.Context, id string) error {
	unlock, err := c.Store.Lock(ctx, id, UpdateLockTTL)
	if err != nil {
		return err
	}
	defer unlock()
	p, err := c.Get(ctx, id)
	if err != nil || p.StatusReason == ReasonCouponDeleted {
		return err
	}
	next := *p
	if next.Status == StatusActive {
		next.Status = StatusInactive
	}
	next.StatusReason, next.Stripe.Active, next.UpdatedAt = ReasonCouponDeleted, false, c.Clock.Now()
	c.Log.WarnContext(ctx, "the Stripe coupon of a promo code was deleted; the code is inactive for good", "promo_code_id", id)
	return c.Store.SaveUpdate(ctx, p, &next, false)
}
