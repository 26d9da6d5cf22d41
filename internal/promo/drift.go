package promo

import (
	"fmt"
	"maps"
	"slices"
	"strings"
	"time"
)

// LedgerState is the adapter's state as Redis holds it, for reconcile.
type LedgerState struct {
	Codes   []*PromoCode
	Ledgers map[string][]*Redemption // by promo code ID
	Paid    map[string]bool          // of the customers Stripe shows paying, those recorded as having paid
	// Campaigns are the campaigns Redis has, by ID (their ledgers are in
	// Ledgers under the campaign ID).
	Campaigns map[string]*CampaignLedger
}

// InFlight counts reservations not yet confirmed or released.
func (s *LedgerState) InFlight() int {
	n := 0
	for _, l := range s.Ledgers {
		for _, r := range l {
			if r.State == RedemptionReserved {
				n++
			}
		}
	}
	return n
}

// Drift is one difference between Redis and Stripe.
type Drift struct {
	PromoCodeID string
	Code        string // the code text, when known
	Kind        string // missing | extra | different
	What        string
}

func (d Drift) String() string {
	return fmt.Sprintf("%-9s %s %s: %s", strings.ToUpper(d.Kind), d.PromoCodeID, d.Code, d.What)
}

// Diff compares Redis (current) with Stripe's truth (rebuilt): codes and
// campaigns (campaignDrift; a campaign's drift names the campaign ID).
// Codes still being created and reservations in flight are not drift;
// released redemptions and ones that ended before a paid invoice are Redis'
// own history, which Stripe cannot show; an unused campaign coupon no
// campaign names is not drift (OrphanCampaignCoupons).
func Diff(current *LedgerState, rebuilt *Rebuilt, paid map[string]time.Time) []Drift {
	var out []Drift
	have := map[string]*PromoCode{}
	for _, p := range current.Codes {
		have[p.ID] = p
	}
	seen := map[string]bool{}
	for _, want := range rebuilt.Codes {
		seen[want.ID] = true
		got := have[want.ID]
		if got == nil {
			out = append(out, Drift{want.ID, want.Code, "missing", "in Stripe, not in Redis"})
			continue
		}
		for _, w := range codeDifferences(got, want) {
			out = append(out, Drift{want.ID, want.Code, "different", w})
		}
		out = append(out, ledgerDrift(want, current.Ledgers[want.ID], rebuilt.Ledgers[want.ID])...)
	}
	for _, p := range current.Codes {
		// A code whose coupon.deleted was seen is inactive for good: that is
		// what Stripe shows, not drift.
		gone := p.StatusReason == ReasonCouponDeleted && p.Status != StatusActive
		if !seen[p.ID] && p.Stripe.State == SyncReady && !gone {
			out = append(out, Drift{p.ID, p.Code, "extra", "in Redis, not in Stripe (its coupon is gone)"})
		}
	}
	inStripe := map[string]bool{}
	for _, c := range rebuilt.Campaigns {
		inStripe[c.ID] = true
		out = append(out, campaignDrift(c, current.Campaigns[c.ID], current.Ledgers[c.ID], rebuilt.Ledgers[c.ID])...)
	}
	for _, id := range slices.Sorted(maps.Keys(current.Campaigns)) {
		// A campaign whose coupon.deleted was seen is inactive for good, as
		// a promo code: what Stripe shows, not drift.
		if c := current.Campaigns[id]; !inStripe[id] && c.Campaign != nil && !c.Campaign.CouponGone() {
			out = append(out, Drift{id, "", "extra", campaignCouponGone})
		}
	}
	var unpaid []string
	for c := range paid {
		if !current.Paid[c] {
			unpaid = append(unpaid, c)
		}
	}
	if len(unpaid) > 0 {
		slices.Sort(unpaid)
		out = append(out, Drift{"-", "", "missing", fmt.Sprintf("%d customers with paid invoices are not recorded as paid (e.g. %s)",
			len(unpaid), unpaid[0])})
	}
	return out
}

// codeDifferences lists the fields of got that differ from want.
func codeDifferences(got, want *PromoCode) []string {
	var out []string
	cmp := func(field string, g, w any) {
		if gs, ws := fmt.Sprint(g), fmt.Sprint(w); gs != ws {
			out = append(out, fmt.Sprintf("%s: redis=%s stripe=%s", field, gs, ws))
		}
	}
	cmp("code", got.Code, want.Code)
	cmp("promo_type", got.PromoType, want.PromoType)
	cmp("amount_off", got.AmountOffDecimal(), want.AmountOffDecimal())
	cmp("currency", got.Currency, want.Currency)
	cmp("duration", got.Duration, want.Duration)
	cmp("promo_duration_months", got.DurationMonths, want.DurationMonths)
	cmp("expiration_datetime", timeText(got.ExpiresAt), timeText(want.ExpiresAt))
	cmp("new_users_only", got.NewUsersOnly, want.NewUsersOnly)
	cmp("existing_memberships_only", got.ExistingMembershipsOnly, want.ExistingMembershipsOnly)
	cmp("once_per_customer", got.OncePerCustomer(), want.OncePerCustomer())
	cmp("plan_ids", got.PlanIDs, want.PlanIDs)
	cmp("status", got.Status, want.Status)
	cmp("unlimited_stock", got.UnlimitedStock, want.UnlimitedStock)
	if !want.UnlimitedStock {
		cmp("stock", got.Stock, want.Stock)
	}
	cmp("uses", got.Uses, want.Uses)
	cmp("discounted_amounts", amountsText(got.Discounted), amountsText(want.Discounted))
	cmp("metadata", metadataText(got.Metadata), metadataText(want.Metadata))
	cmp("stripe.promotion_code_id", got.Stripe.PromotionCodeID, want.Stripe.PromotionCodeID)
	cmp("stripe.active", got.Stripe.Active, want.Stripe.Active)
	return out
}

// ledgerDrift compares one code's ledger lines by their Stripe discount.
func ledgerDrift(p *PromoCode, got []*Redemption, want []RebuiltRedemption) []Drift {
	var out []Drift
	byDiscount := byDiscountID(got)
	wanted := map[string]bool{}
	for _, w := range want {
		wanted[w.DiscountID] = true
		g := byDiscount[w.DiscountID]
		who := fmt.Sprintf("redemption %s (discount %s, %s, %s)", w.ID, w.DiscountID, w.Customer, w.Subscription)
		if g == nil {
			out = append(out, Drift{p.ID, p.Code, "missing", who + ": in Stripe, not in Redis"})
			continue
		}
		if diffs := lineDifferences(g, w); len(diffs) > 0 {
			out = append(out, Drift{p.ID, p.Code, "different", who + ": " + strings.Join(diffs, ", ")})
		}
	}
	for _, r := range got {
		if r.DiscountID != "" && !wanted[r.DiscountID] && (r.State == RedemptionPending || r.State == RedemptionActive) {
			out = append(out, Drift{p.ID, p.Code, "extra", fmt.Sprintf("redemption %s (discount %s) is %s in Redis, Stripe has no such discount",
				r.ID, r.DiscountID, r.State)})
		}
	}
	return out
}

// byDiscountID indexes ledger lines by their Stripe discount.
func byDiscountID(lines []*Redemption) map[string]*Redemption {
	out := map[string]*Redemption{}
	for _, r := range lines {
		if r.DiscountID != "" {
			out[r.DiscountID] = r
		}
	}
	return out
}

// lineDifferences lists the fields of a ledger line that Stripe determines
// and that differ. The others (the adapter's request times, effective_at,
// how and when a line ended, flags) are history only Redis has, or Stripe
// shows only approximately; reconcile neither reports nor rewrites them.
func lineDifferences(g *Redemption, w RebuiltRedemption) []string {
	var diffs []string
	cmp := func(field string, gv, wv any) {
		if gs, ws := fmt.Sprint(gv), fmt.Sprint(wv); gs != ws {
			diffs = append(diffs, fmt.Sprintf("%s redis=%s stripe=%s", field, gs, ws))
		}
	}
	if w.IDKnown || g.Source == SourceStripe {
		cmp("id", g.ID, w.ID)
	}
	cmp("state", g.State, w.State)
	cmp("customer", g.Customer, w.Customer)
	cmp("subscription", g.Subscription, w.Subscription)
	cmp("cycles", g.Cycles, w.Cycles)
	cmp("discounted_amounts", amountsText(g.Discounted), amountsText(w.Discounted))
	if w.UniqueCode != "" { // a campaign's line whose code Stripe names (CampaignCodeOf)
		cmp("promo_code", g.UniqueCode, w.UniqueCode)
	}
	return diffs
}

// campaignCouponGone reports a campaign whose coupon Stripe no longer has.
const campaignCouponGone = "campaign in Redis, its coupon is not in Stripe (deleted there?): " +
	"reconcile -fix makes it inactive for good, as coupon.deleted does"

// Unrepairable lists the campaigns of a drift list that reconcile -fix
// cannot repair from Stripe: one Redis does not have (CampaignNotInRedis:
// restore it from a backup).
func Unrepairable(drift []Drift) []string {
	var out []string
	for _, d := range drift {
		if strings.HasPrefix(d.What, CampaignNotInRedis) {
			out = append(out, d.PromoCodeID+": not in Redis, restore it from a backup")
		}
	}
	return out
}

// Drifting is the set of codes a drift list names: the codes reconcile
// -fix rewrites. A code without drift is left byte for byte as it is.
func Drifting(drift []Drift) map[string]bool {
	out := map[string]bool{}
	for _, d := range drift {
		out[d.PromoCodeID] = true
	}
	return out
}

// MergeCode is the code -fix writes: Stripe's truth (rebuilt), with what
// only Redis knows kept from the current record when there is one: its
// created and updated times and the counter of Stripe switches (the base of
// their idempotency keys).
func MergeCode(current, rebuilt *PromoCode) *PromoCode {
	out := *rebuilt
	if current != nil {
		out.CreatedAt, out.UpdatedAt = current.CreatedAt, current.UpdatedAt
		out.Stripe.ActiveSwitches = current.Stripe.ActiveSwitches
	}
	return &out
}

// MergeLedger is the ledger -fix writes: Stripe's lines, where a Redis line
// of the same discount that agrees with Stripe on every field Stripe
// determines (lineDifferences) stays exactly as it is, and one that does
// not takes Stripe's facts but keeps its history (request times, effective
// time, flags, and how it ended when both say it ended); plus the history
// only Redis has (released lines, ones that ended before a paid invoice).
// A line live in Redis whose discount Stripe does not show is ended.
func MergeLedger(stripeLines []RebuiltRedemption, redisLines []*Redemption, now time.Time) ([]*Redemption, []string) {
	var out []*Redemption
	var invoices []string
	byDiscount := byDiscountID(redisLines)
	known := map[string]bool{}
	for _, l := range stripeLines {
		known[l.DiscountID] = true
		invoices = append(invoices, l.Invoices...)
		r := byDiscount[l.DiscountID]
		switch {
		case r == nil:
			out = append(out, l.Redemption)
		case len(lineDifferences(r, l)) == 0:
			out = append(out, r)
		default:
			m := *l.Redemption
			if !l.IDKnown {
				m.ID = r.ID
			}
			m.Owner, m.CreatedAt, m.EffectiveAt, m.Flags = r.Owner, r.CreatedAt, r.EffectiveAt, r.Flags
			if m.UniqueCode == "" { // Stripe does not name the campaign code: Redis' stands
				m.UniqueCode = r.UniqueCode
			}
			if r.Source != "" {
				m.Source = r.Source
			}
			if m.State == RedemptionEnded && r.State == RedemptionEnded {
				m.EndedAt, m.EndReason, m.EndedInStripe = r.EndedAt, r.EndReason, r.EndedInStripe
			}
			out = append(out, &m)
		}
	}
	for _, r := range redisLines {
		if r.DiscountID != "" && known[r.DiscountID] {
			continue
		}
		if r.State == RedemptionPending || r.State == RedemptionActive {
			c := *r
			c.State, c.EndedAt, c.EndReason, c.HoldsStock = RedemptionEnded, now, "not_in_stripe", false
			r = &c
		}
		out = append(out, r)
	}
	slices.SortFunc(out, func(a, b *Redemption) int { return strings.Compare(a.ID, b.ID) })
	return out, invoices
}

func timeText(t *time.Time) string {
	if t == nil {
		return "none"
	}
	return t.UTC().Format(time.RFC3339)
}

func amountsText(m map[string]int64) string {
	var parts []string
	for _, k := range slices.Sorted(maps.Keys(m)) {
		if m[k] != 0 {
			parts = append(parts, fmt.Sprintf("%s:%d", k, m[k]))
		}
	}
	return "{" + strings.Join(parts, " ") + "}"
}

func metadataText(m map[string]string) string {
	var parts []string
	for _, k := range slices.Sorted(maps.Keys(m)) {
		parts = append(parts, fmt.Sprintf("%q=%q", k, m[k]))
	}
	return "{" + strings.Join(parts, " ") + "}"
}
