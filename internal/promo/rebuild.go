package promo

import (
	"context"
	"fmt"
	"maps"
	"slices"
	"strings"
	"time"
)

// StripeSnapshot is what reconcile read of Stripe, kept to what concerns the
// adapter's codes.
type StripeSnapshot struct {
	// Coupons are ours, by ID: a promo code's (ID = promo code ID, metadata
	// promo_code_id) and a campaign's (ID = campaign ID, metadata
	// campaign_id).
	Coupons        map[string]StripeCoupon
	PromotionCodes map[string][]StripePromotionCode // by coupon ID
	Subscriptions  map[string]StripeSubscription    // with one of our discounts or our metadata, by ID
	// Paid adds up the paid invoices carrying one of our discounts, by
	// coupon ID and discount ID: a sum per discount, not every invoice, so
	// a year of invoices costs what its discounts do.
	Paid          map[string]map[string]*PaidDiscount
	PaidCustomers map[string]time.Time // customers with a paid invoice above zero: the latest paid_at
	Since         time.Time
	ReadAt        time.Time // when the read started
}

// PaidDiscount is what the paid invoices that carried one discount add up to.
type PaidDiscount struct {
	Discount            StripeDiscount // as the first of its invoices read showed it
	Cycles              int
	Discounted          map[string]int64 // by currency, minor units
	FirstPaid, LastPaid time.Time
	// Recent are the IDs of its invoices paid within EventKeep before the
	// read: the only ones a redelivered event can still bring, so the only
	// counted marks a rebuild writes (older marks have expired anyway).
	Recent []string
}

// add counts one paid invoice carrying the discount.
func (a *PaidDiscount) add(in StripeInvoice, recentSince time.Time) {
	a.Cycles++
	if a.Discounted == nil {
		a.Discounted = map[string]int64{}
	}
	a.Discounted[in.Currency] += in.DiscountAmount
	if a.FirstPaid.IsZero() || in.PaidAt.Before(a.FirstPaid) {
		a.FirstPaid = in.PaidAt
	}
	a.LastPaid = maxTime(a.LastPaid, in.PaidAt)
	if !in.PaidAt.Before(recentSince) {
		a.Recent = append(a.Recent, in.ID)
	}
}

// ReadStripe walks Stripe's lists into a snapshot. progress (may be nil) is
// told every 100 objects read and at the end of each list.
func ReadStripe(ctx context.Context, rd StripeReader, since time.Time, progress func(list string, read, kept int)) (*StripeSnapshot, error) {
	s := &StripeSnapshot{Coupons: map[string]StripeCoupon{}, PromotionCodes: map[string][]StripePromotionCode{},
		Subscriptions: map[string]StripeSubscription{}, Paid: map[string]map[string]*PaidDiscount{},
		PaidCustomers: map[string]time.Time{}, Since: since, ReadAt: time.Now().UTC()}
	recentSince := s.ReadAt.Add(-EventKeep)
	var list string
	var read, kept int
	start := func(name string) { list, read, kept = name, 0, 0 }
	step := func(keep bool) {
		read++
		if keep {
			kept++
		}
		if progress != nil && read%100 == 0 {
			progress(list, read, kept)
		}
	}
	done := func(err error) error {
		if err == nil && progress != nil {
			progress(list, read, kept)
		}
		return err
	}

	start("coupons")
	if err := done(rd.EachCoupon(ctx, func(c StripeCoupon) error {
		ours := ourCoupon(c)
		if ours {
			s.Coupons[c.ID] = c
		}
		step(ours)
		return nil
	})); err != nil {
		return nil, err
	}
	start("promotion codes")
	if err := done(rd.EachPromotionCode(ctx, func(p StripePromotionCode) error {
		_, ours := s.Coupons[p.CouponID]
		if ours {
			s.PromotionCodes[p.CouponID] = append(s.PromotionCodes[p.CouponID], p)
		}
		step(ours)
		return nil
	})); err != nil {
		return nil, err
	}
	start("subscriptions")
	if err := done(rd.EachSubscription(ctx, func(sub StripeSubscription) error {
		_, ourDiscount := s.Coupons[couponOf(sub.Discount)]
		_, ourMeta := s.Coupons[sub.Metadata[MetaPromoCodeID]]
		if ourDiscount || ourMeta {
			s.Subscriptions[sub.ID] = sub
		}
		step(ourDiscount || ourMeta)
		return nil
	})); err != nil {
		return nil, err
	}
	start("paid invoices")
	if err := done(rd.EachPaidInvoice(ctx, since, func(in StripeInvoice) error {
		if in.AmountPaid > 0 && in.Customer != "" && in.PaidAt.After(s.PaidCustomers[in.Customer]) {
			s.PaidCustomers[in.Customer] = in.PaidAt
		}
		coupon := couponOf(in.Discount)
		_, ours := s.Coupons[coupon]
		if ours {
			byDiscount := s.Paid[coupon]
			if byDiscount == nil {
				byDiscount = map[string]*PaidDiscount{}
				s.Paid[coupon] = byDiscount
			}
			a := byDiscount[in.Discount.ID]
			if a == nil {
				a = &PaidDiscount{Discount: *in.Discount}
				byDiscount[in.Discount.ID] = a
			}
			a.add(in, recentSince)
		}
		step(ours)
		return nil
	})); err != nil {
		return nil, err
	}
	return s, nil
}

// ourCoupon reports whether a Stripe coupon is one the adapter made: a
// promo code's (its ID the code's, metadata promo_code_id naming it) or a
// campaign's (its ID the campaign's, metadata campaign_id naming it).
func ourCoupon(c StripeCoupon) bool {
	switch {
	case strings.HasPrefix(c.ID, "pc_"):
		return c.Metadata[MetaPromoCodeID] == c.ID
	case strings.HasPrefix(c.ID, "cmp_"):
		return c.Metadata[MetaCampaignID] == c.ID
	}
	return false
}

func couponOf(d *StripeDiscount) string {
	if d == nil {
		return ""
	}
	return d.CouponID
}

// Rebuilt is the adapter's state as Stripe shows it.
type Rebuilt struct {
	Codes []*PromoCode
	// Ledgers holds each code's redemptions in ID order, with the paid
	// invoices counted for them.
	Ledgers map[string][]RebuiltRedemption
	// Problems are Stripe objects of ours that could not be rebuilt.
	Problems []string
	// Campaigns are the campaigns whose coupon Stripe has, in ID order;
	// their ledgers are in Ledgers under the campaign ID.
	Campaigns []*RebuiltCampaign
}

// RebuiltRedemption is one ledger line with the invoices it counted that
// were paid within EventKeep before the read (PaidDiscount.Recent).
type RebuiltRedemption struct {
	*Redemption
	Invoices []string
	// IDKnown: Stripe names the line's ID (the subscription's
	// promo_redemption_id). It does not for a discount made outside the
	// adapter, nor for an adapter's redemption whose subscription took
	// another code since (its metadata names the newer one): such a line
	// gets RedemptionIDFor and source stripe, and Redis' ID and source stand.
	IDKnown bool
}

// Rebuild derives the catalog, the ledger and the counters from Stripe, and
// each campaign's ledger, used codes, counters and promotion codes
// (rebuildCampaign; see campaign_rebuild.go).
//
// Codes: the coupon gives the amount and duration, its promotion code (the
// active one, else the newest) the text, expiry and new_users_only, and the
// coupon's MetaConfig the status, stock limit, plan_ids and
// existing_memberships_only. Redemptions are Stripe's discounts of a code:
// live on a subscription, or seen on paid invoices. Their IDs come from the
// subscription's promo_redemption_id when the adapter made them, else from
// RedemptionIDFor. Stock is the limit less the units the redemptions hold.
//
// Not rebuilt, because Stripe does not know them: reservations in flight,
// released redemptions and ones that ended before a paid invoice, the flags
// of outside redemptions other than stock_exhausted and
// customer_already_redeemed, and exact ledger timestamps (the discount's
// start and the invoices' payment times stand in).
func Rebuild(s *StripeSnapshot, now time.Time) *Rebuilt {
	out := &Rebuilt{Ledgers: map[string][]RebuiltRedemption{}}
	for _, id := range slices.Sorted(maps.Keys(s.Coupons)) {
		if strings.HasPrefix(id, "cmp_") {
			c, err := rebuildCampaign(s, s.Coupons[id])
			if err != nil {
				out.Problems = append(out.Problems, fmt.Sprintf("%s: %v", id, err))
				continue
			}
			out.Campaigns = append(out.Campaigns, c)
			out.Ledgers[id] = c.ledger
			c.ledger = nil
			continue
		}
		p, err := rebuildCode(s.Coupons[id], s.PromotionCodes[id])
		if err != nil {
			out.Problems = append(out.Problems, fmt.Sprintf("%s: %v", id, err))
			continue
		}
		ledger := rebuildLedger(s, p, nil)
		countLedger(p, ledger)
		// The switch counter restarts from a fresh base, so the idempotency
		// keys of later switches (StripeKey of the counter) never repeat
		// one Stripe may still replay from before the rebuild.
		p.Stripe.ActiveSwitches = int(now.Unix())
		out.Codes = append(out.Codes, p)
		out.Ledgers[p.ID] = ledger
	}
	return out
}

func rebuildCode(c StripeCoupon, pcs []StripePromotionCode) (*PromoCode, error) {
	cfg, err := ParseStripeConfig(c.Metadata[MetaConfig])
	if err != nil {
		return nil, err
	}
	if len(pcs) == 0 {
		return nil, fmt.Errorf("coupon has no promotion code: its create never finished")
	}
	pc := pcs[0]
	for _, x := range pcs[1:] {
		if (x.Active && !pc.Active) || (x.Active == pc.Active && x.Created.After(pc.Created)) {
			pc = x
		}
	}
	p := &PromoCode{
		ID: c.ID, Code: NormalizeCode(pc.Code), Duration: c.Duration, ExpiresAt: pc.ExpiresAt,
		NewUsersOnly: pc.FirstTimeTransaction, ExistingMembershipsOnly: cfg.ExistingMembershipsOnly,
		PlanIDs: cfg.PlanIDs, PlanProducts: c.ProductIDs, UnlimitedStock: cfg.Limit == nil,
		Status: cfg.Status, StatusReason: cfg.StatusReason, CreatedAt: cfg.CreatedAt, UpdatedAt: cfg.CreatedAt,
		Metadata: map[string]string{},
		Stripe: StripeRefs{CouponID: c.ID, PromotionCodeID: pc.ID, Active: pc.Active, ExpiresAt: pc.ExpiresAt,
			State: SyncReady, TimesRedeemed: c.TimesRedeemed},
	}
	if t := c.Metadata[MetaPromoCode]; t != "" {
		p.Code = t
	}
	if err := couponTerms(p, c); err != nil {
		return nil, err
	}
	if cfg.Limit != nil {
		p.Stock = *cfg.Limit // less the units held, once the ledger is known
	}
	for k, v := range c.Metadata {
		if !slices.Contains(reservedMetadataKeys, k) {
			p.Metadata[k] = v
		}
	}
	return p, nil
}

// couponTerms sets p's discount terms from its coupon: type, amount,
// currency, duration and months.
func couponTerms(p *PromoCode, c StripeCoupon) error {
	p.Duration = c.Duration
	if c.Duration == Repeating {
		p.DurationMonths = c.Months
	}
	if c.PercentOff != "" {
		v, msg := ParseDecimal(c.PercentOff, 2, 100_00)
		if msg != "" {
			return fmt.Errorf("percent_off %q %s", c.PercentOff, msg)
		}
		p.PromoType, p.AmountOff = Percentage, v
	} else {
		p.PromoType, p.AmountOff, p.Currency = FlatAmount, c.AmountOff, c.Currency
	}
	return nil
}

// madeByAdapter reports whether the discount d on code codeID's coupon was
// applied by the adapter: the subscription's metadata names the code and
// a redemption. A campaign's codes go onto subscriptions with the coupon,
// never with a promotion code, so a campaign's discount that names a
// promotion code came from Stripe Checkout or the Dashboard whatever the
// subscription's metadata says (an earlier adapter redemption's).
func madeByAdapter(codeID string, d *StripeDiscount, sub StripeSubscription) bool {
	if sub.Metadata[MetaPromoCodeID] != codeID || sub.Metadata[MetaRedemptionID] == "" {
		return false
	}
	return !strings.HasPrefix(codeID, "cmp_") || d.PromotionCodeID == ""
}

// rebuildLedger gathers the code's discounts from invoices and subscriptions.
// A campaign's line names its unique code (CampaignCodeOf; promos: the
// campaign's promotion codes by ID).
func rebuildLedger(s *StripeSnapshot, p *PromoCode, promos map[string]StripePromotionCode) []RebuiltRedemption {
	byDiscount := map[string]*RebuiltRedemption{}
	lastPaid := map[string]time.Time{}
	line := func(d *StripeDiscount) *RebuiltRedemption {
		if l := byDiscount[d.ID]; l != nil {
			return l
		}
		l := &RebuiltRedemption{Redemption: &Redemption{
			ID: RedemptionIDFor(d.ID, d.Start), PromoCodeID: p.ID, Customer: d.Customer, Subscription: d.Subscription,
			DiscountID: d.ID, Source: SourceStripe, State: RedemptionPending, CreatedAt: d.Start, ConfirmedAt: d.Start,
			EffectiveAt: d.Start,
		}}
		sub, hasSub := s.Subscriptions[d.Subscription]
		if hasSub && madeByAdapter(p.ID, d, sub) {
			// Made by the adapter: its own ID, and how it was made.
			l.ID, l.Source, l.IDKnown = sub.Metadata[MetaRedemptionID], RedemptionSource(sub.Metadata[MetaRedemptionSource]), true
			if l.Source != SourceNewSubscription {
				l.Source = SourceExistingSubscription
			}
		}
		if p.IsCampaignCode() {
			var sp *StripeSubscription
			if hasSub {
				sp = &sub
			}
			l.UniqueCode = CampaignCodeOf(p.ID, d, sp, promos)
		}
		byDiscount[d.ID] = l
		return l
	}
	for _, a := range s.Paid[p.ID] {
		l := line(&a.Discount)
		l.Cycles += a.Cycles
		if l.Discounted == nil {
			l.Discounted = map[string]int64{}
		}
		for cur, v := range a.Discounted {
			l.Discounted[cur] += v
		}
		l.Invoices = append(l.Invoices, a.Recent...)
		if l.ActivatedAt.IsZero() || a.FirstPaid.Before(l.ActivatedAt) {
			l.ActivatedAt = a.FirstPaid
		}
		lastPaid[l.DiscountID] = maxTime(lastPaid[l.DiscountID], a.LastPaid)
	}
	live := map[string]bool{}
	for _, sub := range s.Subscriptions {
		if sub.Discount == nil || sub.Discount.CouponID != p.ID {
			continue
		}
		l := line(sub.Discount)
		switch sub.Status {
		case "canceled", "incomplete_expired":
			l.State, l.EndReason, l.EndedAt = RedemptionEnded, ReasonCanceled, maxTime(lastPaid[l.DiscountID], l.CreatedAt)
			if !sub.CanceledAt.IsZero() {
				l.EndedAt, l.EndedInStripe = sub.CanceledAt, true
			}
		default:
			live[l.DiscountID] = true
		}
	}
	out := make([]RebuiltRedemption, 0, len(byDiscount))
	for _, l := range byDiscount {
		switch {
		case l.State == RedemptionEnded:
		case live[l.DiscountID] && l.Cycles > 0:
			l.State = RedemptionActive
		case live[l.DiscountID]:
			l.State = RedemptionPending
		default: // only on past invoices: the discount is gone
			l.State, l.EndReason, l.EndedAt = RedemptionEnded, ReasonDeleted, lastPaid[l.DiscountID]
			// It ended because its duration was over if it got every cycle
			// it was good for.
			if (p.Duration == Once && l.Cycles > 0) || (p.Duration == Repeating && l.Cycles >= p.DurationMonths) {
				l.EndReason = ReasonDuration
			}
		}
		out = append(out, *l)
	}
	slices.SortFunc(out, func(a, b RebuiltRedemption) int { return strings.Compare(a.ID, b.ID) })
	return out
}

// countLedger sets the code's counters from its rebuilt ledger: uses, the
// discounted totals, and stock (the limit less the units held, oldest
// redemptions first; one beyond the limit is flagged). A customer's first
// redemption holds their use of the code; a later one is flagged (not on a
// code without the rule: ManyPerCustomer). Only a
// line that holds a use (Redemption.HoldsUse, the webhook path's rule) holds
// a unit and the customer: one canceled before its first discounted
// invoice gave both back.
func countLedger(p *PromoCode, ledger []RebuiltRedemption) {
	limit := p.Stock
	customers := map[string]bool{}
	for _, l := range ledger {
		if !l.ActivatedAt.IsZero() {
			p.Uses++
		}
		for cur, v := range l.Discounted {
			if p.Discounted == nil {
				p.Discounted = map[string]int64{}
			}
			p.Discounted[cur] += v
		}
		if !l.HoldsUse() {
			l.StockReturned = !p.UnlimitedStock
			continue
		}
		if p.OncePerCustomer() {
			if customers[l.Customer] {
				l.Flags = append(l.Flags, "customer_already_redeemed")
			}
			customers[l.Customer] = true
		}
		if p.UnlimitedStock {
			continue
		}
		if p.Held < limit {
			p.Held++
			l.HoldsStock = true
		} else {
			l.Flags = append(l.Flags, "stock_exhausted")
		}
	}
	if !p.UnlimitedStock {
		p.Stock = limit - p.Held
	}
	for _, l := range ledger {
		slices.Sort(l.Flags) // a sorted set, as the webhook path keeps them
	}
}

func maxTime(a, b time.Time) time.Time {
	if a.After(b) {
		return a
	}
	return b
}
