package promo

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"time"
)

// GenerationBatch is how many codes one generation step makes: one list
// chunk in the store, one lease renewal.
const GenerationBatch = 1000

// GenerationLease is the default of Campaigns.Lease: how long a replica owns
// a campaign's generation after its last step; a crashed owner's campaign
// is taken over once it ends.
const GenerationLease = 15 * time.Second

// CampaignStore is the persistence of campaigns. Each method is atomic and
// safe across replicas.
type CampaignStore interface {
	// CreateCampaign stores a new campaign (state generating) and lists it.
	CreateCampaign(ctx context.Context, c *Campaign) error
	// GetCampaign returns a campaign with its progress (ErrNotFound).
	GetCampaign(ctx context.Context, id string) (*Campaign, error)
	// ListCampaigns pages campaigns newest first (Status as ListFilter's).
	ListCampaigns(ctx context.Context, f ListFilter) (Page[*Campaign], error)
	// SaveCampaign writes status, expiry and metadata and moves the
	// campaign between status lists.
	SaveCampaign(ctx context.Context, c *Campaign) error
	// Lock serializes admin changes to one campaign.
	Lock(ctx context.Context, id string, ttl time.Duration) (unlock func(), err error)

	// GeneratingCampaigns lists the campaigns whose codes are not all made.
	GeneratingCampaigns(ctx context.Context) ([]string, error)
	// LeaseGeneration takes or renews owner's lease on a campaign's
	// generation; false when another owner holds it.
	LeaseGeneration(ctx context.Context, id, owner string, ttl time.Duration) (bool, error)
	// GenerateStep makes the next batch of at most max codes of c under
	// owner's lease, drawing texts with draw; texts already taken anywhere
	// are drawn again. A step interrupted at any point is finished by the
	// next one (of any owner) without losing or duplicating a code. It
	// returns the campaign's progress after the step.
	GenerateStep(ctx context.Context, c *Campaign, owner string, max int, draw func(n int) ([]string, error)) (generated int, err error)

	// CampaignCodes pages a campaign's codes in generation order.
	CampaignCodes(ctx context.Context, c *Campaign, f CampaignCodesFilter) (Page[CampaignCode], error)
	// EachCampaignCode calls fn for every code in generation order, reading
	// a chunk at a time (constant memory).
	EachCampaignCode(ctx context.Context, c *Campaign, fn func(CampaignCode) error) error
}

// Campaigns manages campaigns: create, read, update, and the background
// generation of their codes.
type Campaigns struct {
	Store   CampaignStore
	Gateway Gateway
	Clock   Clock
	Log     *slog.Logger
	NewID   func() string // "cmp_" + sortable unique suffix
	// Wake, when set, is called after a create so this replica's worker
	// starts generating at once rather than at its next poll.
	Wake func()
	// Lease is how long a replica owns a campaign's generation after its
	// last batch (GenerationLease when zero).
	Lease time.Duration
	// Throttle, when set, waits for the right to make one Stripe promotion
	// code (a rate shared by the replicas).
	Throttle func(ctx context.Context) error
}

// Create checks in, creates the campaign's Stripe coupon (one per campaign,
// its ID the campaign's, idempotent on requestKey) and stores the campaign
// in state generating; the codes are made in the background (Generate).
func (cs *Campaigns) Create(ctx context.Context, in CampaignInput, requestKey string) (*Campaign, error) {
	now := cs.Clock.Now()
	c, err := NewCampaign(in, now)
	if err != nil {
		return nil, err
	}
	if len(c.Terms.PlanIDs) > 0 {
		if c.Terms.PlanProducts, err = cs.Gateway.ResolvePlans(ctx, c.Terms.PlanIDs); err != nil {
			return nil, err
		}
	}
	Began(ctx)
	// The idempotency middleware replays a finished create. A retry of a
	// create that crashed between the coupon and the store makes a new
	// campaign with a new coupon (the coupon's Stripe key names the
	// campaign ID); the first coupon is left unused in Stripe, named by its
	// campaign_id metadata.
	c.ID = cs.NewID()
	c.CreatedAt, c.UpdatedAt = now, now
	c.Terms.ID, c.Terms.CreatedAt, c.Terms.UpdatedAt = c.ID, now, now
	spec := campaignCouponSpec(c)
	couponID, err := cs.Gateway.CreateCoupon(ctx, spec, StripeKey(requestKey, "campaign_coupon:"+c.ID))
	if err != nil {
		if found, ferr := cs.Gateway.GetCoupon(ctx, c.ID); ferr != nil || !found {
			return nil, err
		}
		couponID = c.ID
	}
	c.Terms.Stripe = StripeRefs{CouponID: couponID, State: SyncReady}
	if err := cs.Store.CreateCampaign(ctx, c); err != nil {
		return nil, err
	}
	if cs.Wake != nil {
		cs.Wake()
	}
	return c, nil
}

// MetaCampaignID names the campaign on its Stripe coupon (and, with
// MetaPromoCode, on the subscriptions its codes are applied to).
const MetaCampaignID = "campaign_id"

// MetaOncePerCustomer records the campaign's once_per_customer ("true" or
// "false") on its Stripe coupon, beside the terms the coupon itself
// carries, so that Stripe holds every rule of the campaign.
const MetaOncePerCustomer = "once_per_customer"

func campaignCouponSpec(c *Campaign) CouponSpec {
	md := copyMetadata(c.Terms.Metadata)
	md[MetaCampaignID] = c.ID
	md[MetaOncePerCustomer] = strconv.FormatBool(c.Terms.OncePerCustomer())
	s := CouponSpec{ID: c.ID, PromoCodeID: c.ID, Name: c.Name, Duration: c.Terms.Duration,
		Months: c.Terms.DurationMonths, ProductIDs: c.Terms.PlanProducts, Metadata: md}
	if c.Terms.PromoType == Percentage {
		s.PercentOff = c.Terms.AmountOff
	} else {
		s.AmountOff, s.Currency = c.Terms.AmountOff, c.Terms.Currency
	}
	return s
}

// Get returns one campaign with its progress.
func (cs *Campaigns) Get(ctx context.Context, id string) (*Campaign, error) {
	c, err := cs.Store.GetCampaign(ctx, id)
	if errors.Is(err, ErrNotFound) {
		return nil, &Error{Code: CodeNotFound, Param: "id", Message: "no campaign " + id}
	}
	return c, err
}

// List pages campaigns, newest first.
func (cs *Campaigns) List(ctx context.Context, f ListFilter) (Page[*Campaign], error) {
	switch f.Status {
	case "", StatusAll, StatusActive, StatusInactive, StatusArchived:
	default:
		return Page[*Campaign]{}, Invalid("status", "status must be active, inactive, archived or all")
	}
	return cs.Store.ListCampaigns(ctx, f)
}

// Update changes status, expiry and metadata for every code at once.
func (cs *Campaigns) Update(ctx context.Context, id string, u CampaignUpdate) (*Campaign, error) {
	unlock, err := cs.Store.Lock(ctx, id, UpdateLockTTL)
	if err != nil {
		return nil, err
	}
	defer unlock()
	c, err := cs.Get(ctx, id)
	if err != nil {
		return nil, err
	}
	next, err := ApplyCampaignUpdate(c, u, cs.Clock.Now())
	if err != nil {
		return nil, err
	}
	Began(ctx)
	if err := cs.Store.SaveCampaign(ctx, next); err != nil {
		return nil, err
	}
	if ms, ok := cs.Store.(MirrorStore); ok && c.Mirrored > 0 && next.Terms.Status != c.Terms.Status {
		// Every mirrored code's promotion code follows the campaign's status.
		if err := ms.QueueCodeSync(ctx, c.ID, "", true); err != nil {
			return nil, err
		}
		if cs.Wake != nil {
			cs.Wake()
		}
	}
	return next, nil
}

// CouponDeleted makes a campaign whose Stripe coupon was deleted (the
// coupon.deleted webhook) inactive for good, as Catalog.CouponDeleted does a
// promo code: status inactive (an archived one stays archived), StatusReason
// ReasonCouponDeleted, so every code is refused with code_inactive and the
// status cannot become active again. Discounts already running on the
// coupon keep running in Stripe (deleting a coupon does not remove them), so
// their ledger lines are left to end by the usual rules. The mirrored
// codes' promotion codes are not switched: Stripe cannot redeem a promotion
// code of a deleted coupon. Idempotent.
func (cs *Campaigns) CouponDeleted(ctx context.Context, id string) error {
	unlock, err := cs.Store.Lock(ctx, id, UpdateLockTTL)
	if err != nil {
		return err
	}
	defer unlock()
	c, err := cs.Get(ctx, id)
	if err != nil || c.Terms.StatusReason == ReasonCouponDeleted {
		return err
	}
	next := *c
	if next.Terms.Status == StatusActive {
		next.Terms.Status = StatusInactive
	}
	next.Terms.StatusReason, next.UpdatedAt = ReasonCouponDeleted, cs.Clock.Now()
	cs.Log.WarnContext(ctx, "the Stripe coupon of a campaign was deleted; its codes are inactive for good", "campaign_id", id)
	return cs.Store.SaveCampaign(ctx, &next)
}

// Codes pages a campaign's codes.
func (cs *Campaigns) Codes(ctx context.Context, id string, f CampaignCodesFilter) (*Campaign, Page[CampaignCode], error) {
	c, err := cs.Get(ctx, id)
	if err != nil {
		return nil, Page[CampaignCode]{}, err
	}
	p, err := cs.Store.CampaignCodes(ctx, c, f)
	return c, p, err
}

// Generate makes the codes of every campaign still generating whose lease
// this owner can take, one batch at a time, renewing the lease after each,
// until they are done or ctx ends. Any replica may run it at any time; a
// campaign whose owner crashed is resumed where its progress says.
func (cs *Campaigns) Generate(ctx context.Context, owner string) error {
	ids, err := cs.Store.GeneratingCampaigns(ctx)
	if err != nil {
		return err
	}
	var errs []error
	for _, id := range ids {
		if err := cs.generateOne(ctx, id, owner); err != nil {
			errs = append(errs, err)
		}
	}
	if err := cs.mirrorAll(ctx, owner); err != nil {
		errs = append(errs, err)
	}
	return errors.Join(errs...)
}

func (cs *Campaigns) generateOne(ctx context.Context, id, owner string) error {
	c, err := cs.Store.GetCampaign(ctx, id)
	if err != nil {
		return err
	}
	gen := CodeGenerator{Prefix: c.Prefix, Length: c.CodeLength}
	for c.Generated < c.Count {
		lease := cs.Lease
		if lease <= 0 {
			lease = GenerationLease
		}
		ok, err := cs.Store.LeaseGeneration(ctx, id, owner, lease)
		if err != nil || !ok {
			return err
		}
		n, err := cs.Store.GenerateStep(ctx, c, owner, min(GenerationBatch, c.Count-c.Generated), gen.Generate)
		if err != nil {
			return err
		}
		c.Generated = n
	}
	cs.Log.InfoContext(ctx, "campaign codes generated", "campaign_id", id, "count", c.Count)
	return nil
}

// CampaignWorker generates the codes of campaigns in the background, on
// every replica: it wakes at each create on this replica and every
// Interval, so a campaign whose replica crashed is resumed by any other
// once its lease ends.
type CampaignWorker struct {
	Campaigns *Campaigns
	Owner     string // this replica's name for leases (random per process)
	Interval  time.Duration
	Log       *slog.Logger
	wake      chan struct{}
}

// NewCampaignWorker returns a worker; Wake starts a round now.
func NewCampaignWorker(cs *Campaigns, owner string, interval time.Duration, log *slog.Logger) *CampaignWorker {
	return &CampaignWorker{Campaigns: cs, Owner: owner, Interval: interval, Log: log, wake: make(chan struct{}, 1)}
}

// Wake asks for a round now; it never blocks.
func (w *CampaignWorker) Wake() {
	select {
	case w.wake <- struct{}{}:
	default:
	}
}

// Run works until ctx is done. A round in progress stops at ctx's end
// between two Redis calls: what it recorded is resumed by the next owner.
func (w *CampaignWorker) Run(ctx context.Context) {
	t := time.NewTicker(w.Interval)
	defer t.Stop()
	for {
		if err := w.Campaigns.Generate(ctx, w.Owner); err != nil && ctx.Err() == nil {
			w.Log.WarnContext(ctx, "campaign code generation paused; it resumes at the next round", "err", err.Error())
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		case <-w.wake:
		}
	}
}

// MaxMirrorCodes bounds the codes one mirror request names.
const MaxMirrorCodes = 1000

// MirrorStore is the persistence of on-demand Stripe promotion codes for
// campaign codes (the codes a campaign sends to Stripe Checkout).
type MirrorStore interface {
	// QueueMirror queues texts (codes of c, else a 400 naming codes) for a
	// Stripe promotion code each; texts already mirrored or queued are left.
	QueueMirror(ctx context.Context, c *Campaign, texts []string) error
	// MirroringCampaigns lists the campaigns with queued texts.
	MirroringCampaigns(ctx context.Context) ([]string, error)
	// DropMirrorQueue forgets the campaign's queued texts (its coupon is
	// gone: no promotion code can be made on it any more).
	DropMirrorQueue(ctx context.Context, id string) error
	// NextMirror returns up to n queued texts of the campaign, in order.
	NextMirror(ctx context.Context, id string, n int) ([]string, error)
	// RecordMirrored records text's promotion code, made with the active
	// flag active, and dequeues it (once).
	RecordMirrored(ctx context.Context, id, text, promotionCodeID string, active bool) error
	// AttributeCampaignCode names on a ledger line of the campaign the code
	// whose promotion code made its discount (a Stripe Checkout redemption),
	// and gives the line the code's single use: a line before it that holds
	// the code keeps it and the later one is flagged code_already_used.
	AttributeCampaignCode(ctx context.Context, id, redemptionID, promotionCodeID string) (*Redemption, error)
	// QueueCodeSync queues a mirrored code for its promotion code's active
	// flag to be checked (not mirrored: nothing); all=true queues every
	// mirrored code of the campaign and starts a new switch generation.
	QueueCodeSync(ctx context.Context, id, text string, all bool) error
	// QueueGivenBack queues a code given back (no redemption holds it any
	// more) for its promotion code to be switched on: only when the code is
	// mirrored and the campaign is active, in one atomic step.
	QueueGivenBack(ctx context.Context, id, text string) error
	// NextCodeSync returns up to n queued codes, in queue order, with what
	// is known of their promotion codes, and the campaign's switch
	// generation.
	NextCodeSync(ctx context.Context, id string, n int) (codes []CodeSync, gen int64, err error)
	// CodeSynced records a switch the worker made in Stripe (switched: the
	// flag active, one more switch of the code) and dequeues the code
	// unless it was queued again since NextCodeSync returned it.
	CodeSynced(ctx context.Context, id string, c CodeSync, switched, active bool) error
	// CampaignPromotionCode returns the code whose Stripe promotion code is
	// promotionCodeID, with what is known of it (ErrNotFound: none).
	CampaignPromotionCode(ctx context.Context, id, promotionCodeID string) (CodeSync, error)
	// ObservePromotionCodeActive records the active flag Stripe reported
	// for c's promotion code, unless the adapter switched it since c was
	// read (its Switches moved): recorded reports whether it was written.
	ObservePromotionCodeActive(ctx context.Context, id string, c CodeSync, active bool) (recorded bool, err error)
}

// CodeSync is a mirrored campaign code as the promotion code switches see
// it: its Stripe promotion code, the active flag it is known to carry (from
// its create, the adapter's last switch, or the last promotion_code.updated
// read back from Stripe), and how many times the adapter switched it (the
// Stripe idempotency key of each switch names it, so every switch is a new
// Stripe call and a retry of one replays it).
type CodeSync struct {
	Text            string
	PromotionCodeID string
	Known           bool // Active is known (codes mirrored before it was recorded: not)
	Active          bool
	Switches        int64
	// Score is the code's place in the switch queue: a code queued again
	// gets a new one, so the worker never dequeues a newer request.
	Score float64
}

// Mirror queues Stripe promotion codes for chosen codes of a campaign; the
// worker makes them in the background, at most MirrorRate per second over
// all replicas.
func (cs *Campaigns) Mirror(ctx context.Context, id string, texts []string) (*Campaign, error) {
	switch {
	case len(texts) == 0:
		return nil, Invalid("codes", "codes is required: the campaign codes to make Stripe promotion codes for")
	case len(texts) > MaxMirrorCodes:
		return nil, Invalid("codes", "codes may name at most %d codes per request", MaxMirrorCodes)
	}
	ms, ok := cs.Store.(MirrorStore)
	if !ok {
		return nil, Errorf(CodeInternal, "the store keeps no Stripe promotion codes for campaigns")
	}
	c, err := cs.Get(ctx, id)
	if err != nil {
		return nil, err
	}
	if c.Terms.StatusReason == ReasonCouponDeleted {
		return nil, &Error{Code: CodeConflict, Param: "id",
			Message: "campaign " + c.ID + " has no Stripe coupon any more (deleted in Stripe): no promotion code can be made for its codes"}
	}
	norm := make([]string, len(texts))
	for i, t := range texts {
		norm[i] = NormalizeCode(t)
		if !c.IsCampaignText(norm[i]) {
			return nil, Invalid("codes", "%q is not a code of campaign %s", t, c.ID)
		}
	}
	Began(ctx)
	if err := ms.QueueMirror(ctx, c, norm); err != nil {
		return nil, err
	}
	if cs.Wake != nil {
		cs.Wake()
	}
	return c, nil
}

// mirrorAll makes the queued promotion codes of every campaign whose lease
// this owner can take, throttled by cs.Throttle.
func (cs *Campaigns) mirrorAll(ctx context.Context, owner string) error {
	ms, ok := cs.Store.(MirrorStore)
	if !ok {
		return nil
	}
	ids, err := ms.MirroringCampaigns(ctx)
	if err != nil {
		return err
	}
	for _, id := range ids {
		if err := cs.mirrorOne(ctx, ms, id, owner); err != nil {
			return err
		}
	}
	return nil
}

func (cs *Campaigns) mirrorOne(ctx context.Context, ms MirrorStore, id, owner string) error {
	c, err := cs.Store.GetCampaign(ctx, id)
	if err != nil {
		return err
	}
	lease := cs.Lease
	if lease <= 0 {
		lease = GenerationLease
	}
	for {
		ok, err := cs.Store.LeaseGeneration(ctx, id, owner, lease)
		if err != nil || !ok {
			return err
		}
		if c.Terms.StatusReason == ReasonCouponDeleted {
			cs.Log.WarnContext(ctx, "the campaign's Stripe coupon was deleted: its queued promotion codes are not made", "campaign_id", id)
			if err := ms.DropMirrorQueue(ctx, id); err != nil {
				return err
			}
		}
		texts, err := ms.NextMirror(ctx, id, 100)
		if err != nil {
			return err
		}
		if len(texts) == 0 {
			return cs.syncCodes(ctx, ms, c, owner, lease)
		}
		for _, text := range texts {
			if cs.Throttle != nil {
				if err := cs.Throttle(ctx); err != nil {
					return err
				}
			}
			// Made on only while the code is free: a code already redeemed
			// through the adapter must not be redeemable in Checkout.
			want, err := cs.wantActive(ctx, c, text)
			if err != nil {
				return err
			}
			pid, active, err := cs.mirrorCode(ctx, c, text, want)
			if err != nil {
				return err
			}
			if err := ms.RecordMirrored(ctx, id, text, pid, active); err != nil {
				return err
			}
			if active != want { // found made earlier with another flag: switch it
				if err := ms.QueueCodeSync(ctx, id, text, false); err != nil {
					return err
				}
			}
		}
		// The next batch is made with the campaign's status of then.
		if c, err = cs.Store.GetCampaign(ctx, id); err != nil {
			return err
		}
	}
}

// mirrorCode creates text's promotion code on the campaign's coupon: one
// redemption in Stripe, the campaign's expiry and new-users rule, metadata
// naming the campaign and the code. Its idempotency key is a function of
// the campaign and the text, so a retry by any replica after a crash
// replays the same create; after Stripe forgot the key (or refused it for a
// create with another active flag), the existing promotion code is found by
// its text. It returns the promotion code and the active flag it carries.
func (cs *Campaigns) mirrorCode(ctx context.Context, c *Campaign, text string, active bool) (string, bool, error) {
	spec := PromotionCodeSpec{PromoCodeID: c.ID, Code: text, CouponID: c.Terms.Stripe.CouponID, ExpiresAt: c.Terms.ExpiresAt,
		FirstTimeTransaction: c.Terms.NewUsersOnly, Active: active, MaxRedemptions: 1,
		Metadata: map[string]string{MetaCampaignID: c.ID, MetaPromoCode: text}}
	id, err := cs.Gateway.CreatePromotionCode(ctx, spec, StripeKey("campaign:"+c.ID, "promotion_code:"+text))
	if err == nil {
		return id, active, nil
	}
	found, foundActive, ok, ferr := cs.Gateway.FindPromotionCode(ctx, text, spec.CouponID)
	if ferr == nil && ok {
		return found, foundActive, nil
	}
	return "", false, err
}

// syncCodes switches the Stripe promotion codes of queued mirrored codes on
// or off: on while the campaign is active and no redemption holds the code,
// so Stripe Checkout cannot redeem a code the adapter would refuse. A code
// whose promotion code is known to carry the wanted flag already costs no
// Stripe call (as a promo code's SyncStripeActive). The Stripe idempotency
// key names the code, the flag, the campaign's switch generation (a new one
// at each status change) and the code's own switch count, so a retry replays
// the same switch and every later switch (a code redeemed, given back and
// redeemed again) is a new Stripe call.
func (cs *Campaigns) syncCodes(ctx context.Context, ms MirrorStore, c *Campaign, owner string, lease time.Duration) error {
	for {
		// A batch of 100 at the default 20/s takes 5 s: well inside a lease.
		if ok, err := cs.Store.LeaseGeneration(ctx, c.ID, owner, lease); err != nil || !ok {
			return err
		}
		codes, gen, err := ms.NextCodeSync(ctx, c.ID, 100)
		if err != nil || len(codes) == 0 {
			return err
		}
		now, err := cs.Store.GetCampaign(ctx, c.ID)
		if err != nil {
			return err
		}
		for _, code := range codes {
			want, err := cs.wantActive(ctx, now, code.Text)
			if err != nil {
				return err
			}
			// A campaign whose coupon was deleted leaves its promotion codes
			// as they are: Stripe cannot redeem them any more.
			gone := now.Terms.StatusReason == ReasonCouponDeleted
			switched := !gone && code.PromotionCodeID != "" && (!code.Known || code.Active != want)
			if switched {
				if cs.Throttle != nil {
					if err := cs.Throttle(ctx); err != nil {
						return err
					}
				}
				key := StripeKey("campaign:"+c.ID, fmt.Sprintf("promotion_code.active:%s:%t:%d:%d", code.Text, want, gen, code.Switches))
				if err := cs.Gateway.UpdatePromotionCode(ctx, code.PromotionCodeID, PromotionCodeUpdate{Active: &want}, key); err != nil {
					return err
				}
			}
			if err := ms.CodeSynced(ctx, c.ID, code, switched, want); err != nil {
				return err
			}
		}
	}
}

// wantActive is the flag a mirrored code's promotion code should carry:
// on while the campaign is active and no redemption holds the code.
func (cs *Campaigns) wantActive(ctx context.Context, c *Campaign, text string) (bool, error) {
	if c.Terms.Status != StatusActive {
		return false, nil
	}
	held, err := cs.codeHeld(ctx, text)
	return !held, err
}

// codeHeld reports whether a redemption holds the campaign code.
func (cs *Campaigns) codeHeld(ctx context.Context, text string) (bool, error) {
	rs, ok := cs.Store.(interface {
		GetByCodeForCustomer(ctx context.Context, code, customer string) (*PromoCode, *Redemption, error)
	})
	if !ok {
		return false, nil
	}
	p, _, err := rs.GetByCodeForCustomer(ctx, text, "")
	if errors.Is(err, ErrNotFound) {
		return true, nil // archived: as good as used
	}
	if err != nil {
		return false, err
	}
	return p.Stock == 0, nil
}
