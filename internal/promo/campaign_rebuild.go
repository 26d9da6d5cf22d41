package promo

import (
	"fmt"
	"maps"
	"slices"
	"strings"
)

// Reconcile of campaigns (README "Reconcile", "Campaigns").
//
// A campaign is a code of the ledger: its ID is the code ID of its
// redemptions and its code record (the terms every code is redeemed under,
// with the campaign's counters) is kept beside the campaign's own record.
// Stripe knows the campaign's coupon (ID = campaign ID, metadata
// campaign_id), the discounts on it (subscriptions and paid invoices) and
// the promotion codes made on demand for Stripe Checkout (metadata
// campaign_id and promo_code). From these reconcile rebuilds, exactly as for
// a promo code, the campaign's ledger (same rules, same deterministic IDs
// for discounts made outside the adapter), each line naming its unique code
// (CampaignCodeOf); the code's single use (which line holds each text,
// CampaignCodeHolders); the code record's counters (uses, discounted
// amounts); and the promotion codes recorded both ways with the mirrored
// count.
//
// What Stripe has no object for is not rebuilt: the campaign record (name,
// prefix, status, expiry, plans, audience rules, metadata) and its generated
// texts exist only in Redis. A campaign whose coupon Stripe has but Redis
// does not is reported (CampaignNotInRedis) and never invented.

// FlagCodeAlreadyUsed marks a campaign's line whose code another line,
// before it in ID order, holds (lua/campaign_attribute.lua sets it too).
const FlagCodeAlreadyUsed = "code_already_used"

// RebuiltCampaign is what Stripe shows of one campaign.
type RebuiltCampaign struct {
	ID string
	// Code is the campaign's code record as far as Stripe determines it:
	// the coupon's discount terms (type, amount, currency, duration,
	// months, products) and the counters over all its codes (uses,
	// discounted amounts, Stripe's times_redeemed).
	Code *PromoCode
	// Holders: code text -> the ID of the line holding its single use
	// (CampaignCodeHolders over the rebuilt ledger).
	Holders map[string]string
	// PromotionCodes: code text -> its Stripe promotion code (ba:{cmp}:ptext:
	// the first made when Stripe has more than one); PromotionCodeTexts:
	// every promotion code of the campaign -> its code text (ba:{cmp}:pcodes).
	PromotionCodes     map[string]string
	PromotionCodeTexts map[string]string

	ledger []RebuiltRedemption // moved to Rebuilt.Ledgers
}

// Mirrored is the campaign's count of codes with a Stripe promotion code.
func (c *RebuiltCampaign) Mirrored() int { return len(c.PromotionCodes) }

// shows reports whether Stripe shows anything of the campaign besides its
// coupon (ledger: its rebuilt lines): a redemption or a promotion code.
func (c *RebuiltCampaign) shows(ledger []RebuiltRedemption) bool {
	return len(ledger) > 0 || len(c.PromotionCodeTexts) > 0
}

func rebuildCampaign(s *StripeSnapshot, c StripeCoupon) (*RebuiltCampaign, error) {
	p := &PromoCode{ID: c.ID, UnlimitedStock: true, PlanProducts: c.ProductIDs,
		Stripe: StripeRefs{CouponID: c.ID, State: SyncReady, TimesRedeemed: c.TimesRedeemed}}
	if err := couponTerms(p, c); err != nil {
		return nil, err
	}
	// The customer rule is on the coupon (NewCampaign writes it).
	p.ManyPerCustomer = c.Metadata[MetaOncePerCustomer] == "false"
	out := &RebuiltCampaign{ID: c.ID, Code: p, PromotionCodes: map[string]string{}, PromotionCodeTexts: map[string]string{}}
	promos := map[string]StripePromotionCode{}
	first := map[string]StripePromotionCode{}
	for _, pc := range s.PromotionCodes[c.ID] {
		text := campaignPromotionText(c.ID, pc)
		if text == "" {
			continue // not one the adapter made for a code (a Dashboard one on the coupon)
		}
		promos[pc.ID] = pc
		out.PromotionCodeTexts[pc.ID] = text
		if f, ok := first[text]; !ok || pc.Created.Before(f.Created) || (pc.Created.Equal(f.Created) && pc.ID < f.ID) {
			first[text] = pc
		}
	}
	for text, pc := range first {
		out.PromotionCodes[text] = pc.ID
	}
	out.ledger = rebuildLedger(s, p, promos)
	countLedger(p, out.ledger)
	out.Holders = campaignCodeHolders(lines(out.ledger), true)
	return out, nil
}

func lines(rs []RebuiltRedemption) []*Redemption {
	out := make([]*Redemption, len(rs))
	for i := range rs {
		out[i] = rs[i].Redemption
	}
	return out
}

// campaignPromotionText is the code text a campaign's promotion code was
// made for (metadata promo_code, set by the mirror worker), or "" for a
// promotion code on the coupon that the adapter did not make.
func campaignPromotionText(campaignID string, pc StripePromotionCode) string {
	if pc.CouponID != campaignID || pc.Metadata[MetaCampaignID] != campaignID {
		return ""
	}
	return NormalizeCode(pc.Metadata[MetaPromoCode])
}

// CampaignCodeOf is the unique code a discount on campaign campaignID's
// coupon redeemed, whichever way it reached Stripe:
//   - applied by the adapter (madeByAdapter: the subscription's metadata
//     names the campaign and a redemption, and the discount names no
//     promotion code: the adapter applies a campaign code with the
//     coupon): the subscription's metadata promo_code;
//   - made with one of the campaign's promotion codes (Stripe Checkout or
//     the Dashboard redeeming a mirrored code): that promotion code's
//     metadata promo_code;
//   - otherwise (the bare coupon applied in the Dashboard, a promotion code
//     the adapter did not make, a discount only on past invoices of a
//     subscription whose metadata now names another code): "", unknown.
//
// sub is the discount's subscription as Stripe lists it (nil when none or
// not read); promos are the campaign's promotion codes by ID.
func CampaignCodeOf(campaignID string, d *StripeDiscount, sub *StripeSubscription, promos map[string]StripePromotionCode) string {
	if d == nil || d.CouponID != campaignID {
		return ""
	}
	if d.PromotionCodeID != "" {
		pc, ok := promos[d.PromotionCodeID]
		if !ok {
			return ""
		}
		return campaignPromotionText(campaignID, pc)
	}
	if sub != nil && sub.ID == d.Subscription && madeByAdapter(campaignID, d, *sub) {
		return NormalizeCode(sub.Metadata[MetaPromoCode])
	}
	return ""
}

// CampaignCodeHolders is which line holds each code's single use, by the
// rule of the scripts (lua/reserve.lua, lua/campaign_attribute.lua): among
// the lines naming a code that hold a use (Redemption.HoldsUse: live, or
// carried by a paid invoice, for good), the first in ID order (the
// discounts' start order); the later ones are flagged code_already_used. A
// line that ended before a paid invoice holds nothing: its code was given
// back. lines must be in ID order.
func CampaignCodeHolders(lines []*Redemption) map[string]string {
	return campaignCodeHolders(lines, false)
}

// campaignCodeHolders is CampaignCodeHolders; flag: set code_already_used
// on the later lines (a rebuild's own lines, never Redis' kept ones).
func campaignCodeHolders(lines []*Redemption, flag bool) map[string]string {
	out := map[string]string{}
	for _, l := range lines {
		if l.UniqueCode == "" || !l.HoldsUse() {
			continue
		}
		if _, taken := out[l.UniqueCode]; taken {
			if flag && !slices.Contains(l.Flags, FlagCodeAlreadyUsed) {
				l.Flags = append(l.Flags, FlagCodeAlreadyUsed)
				slices.Sort(l.Flags)
			}
			continue
		}
		out[l.UniqueCode] = l.ID
	}
	return out
}

// CampaignLedger is one campaign as Redis holds it, for reconcile (its
// ledger lines are in LedgerState.Ledgers under the campaign ID).
type CampaignLedger struct {
	Campaign *Campaign
	// Code is the campaign's code record (nil when Redis lacks it).
	Code *PromoCode
	// Used: code text -> the line that took it (ba:{cmp}:used).
	Used map[string]string
	// PromotionCodes (ba:{cmp}:ptext) and PromotionCodeTexts
	// (ba:{cmp}:pcodes), as RebuiltCampaign's.
	PromotionCodes     map[string]string
	PromotionCodeTexts map[string]string
}

// CampaignNotInRedis is the report of a campaign whose coupon Stripe has
// and Redis does not.
const CampaignNotInRedis = "campaign in Stripe (its coupon), not in Redis: its record and generated codes exist only in Redis " +
	"and cannot be rebuilt from Stripe; restore Redis from a backup (the campaign's codes are also in its CSV export) and run reconcile -fix"

// OrphanCampaignCoupons lists the campaign coupons Stripe has that name no
// campaign Redis knows and that Stripe shows nothing else of (no
// redemption, no promotion code): left by a create interrupted between
// its coupon and its record (its retry made a new campaign). Not drift.
func OrphanCampaignCoupons(current *LedgerState, rebuilt *Rebuilt) []string {
	var out []string
	for _, c := range rebuilt.Campaigns {
		if cur := current.Campaigns[c.ID]; (cur == nil || cur.Campaign == nil) && !c.shows(rebuilt.Ledgers[c.ID]) {
			out = append(out, c.ID)
		}
	}
	return out
}

// campaignDrift compares one campaign.
func campaignDrift(want *RebuiltCampaign, cur *CampaignLedger, got []*Redemption, ledger []RebuiltRedemption) []Drift {
	id := want.ID
	if cur == nil || cur.Campaign == nil {
		if !want.shows(ledger) {
			return nil // OrphanCampaignCoupons
		}
		return []Drift{{id, "", "missing", fmt.Sprintf("%s (Stripe shows %d redemptions and %d promotion codes of it)",
			CampaignNotInRedis, len(ledger), len(want.PromotionCodeTexts))}}
	}
	var out []Drift
	add := func(kind, what string) { out = append(out, Drift{id, "", kind, what}) }
	if cur.Code == nil {
		add("missing", "the campaign's code record (its terms and counters) is not in Redis")
	} else {
		for _, w := range campaignCodeDifferences(cur.Campaign, cur.Code, want.Code) {
			add("different", w)
		}
	}
	lineDrift := ledgerDrift(&PromoCode{ID: id}, got, ledger)
	out = append(out, lineDrift...)

	// The codes' single use: who holds each code, by Stripe's discount.
	byID := map[string]*Redemption{}
	for _, r := range got {
		byID[r.ID] = r
	}
	wantDisc := map[string]string{}
	for _, l := range ledger {
		if h := want.Holders[l.UniqueCode]; h == l.ID {
			wantDisc[l.UniqueCode] = l.DiscountID
		}
	}
	gotDisc := map[string]string{}
	for text, rid := range cur.Used {
		r := byID[rid]
		switch {
		case r == nil || !r.HoldsUse():
			// Points at a line that gave the code back (or at none): free.
		case r.DiscountID == "":
			gotDisc[text] = "*" // a reservation in flight: not drift
		default:
			gotDisc[text] = r.DiscountID
		}
	}
	for _, text := range slices.Sorted(maps.Keys(union(wantDisc, gotDisc))) {
		g, w := gotDisc[text], wantDisc[text]
		if g == w || g == "*" {
			continue
		}
		add("different", fmt.Sprintf("code %s: held by redis=%s stripe=%s", text, holderText(g), holderText(w)))
	}

	if d := mapDifferences(cur.PromotionCodes, want.PromotionCodes); d != "" {
		add("different", "promotion codes by code (ptext): "+d)
	}
	if d := mapDifferences(cur.PromotionCodeTexts, want.PromotionCodeTexts); d != "" {
		add("different", "codes by promotion code (pcodes): "+d)
	}
	if cur.Campaign.Mirrored != want.Mirrored() {
		add("different", fmt.Sprintf("mirrored: redis=%d stripe=%d", cur.Campaign.Mirrored, want.Mirrored()))
	}
	return out
}

func holderText(discountID string) string {
	if discountID == "" {
		return "none"
	}
	return "discount " + discountID
}

func union(a, b map[string]string) map[string]bool {
	out := map[string]bool{}
	for k := range a {
		out[k] = true
	}
	for k := range b {
		out[k] = true
	}
	return out
}

// mapDifferences summarizes how got differs from want: counts and the
// first few keys ("" when they agree). A campaign may have 100,000
// mirrored codes: the report stays one line.
func mapDifferences(got, want map[string]string) string {
	var missing, extra, different []string
	for k, w := range want {
		g, ok := got[k]
		switch {
		case !ok:
			missing = append(missing, k)
		case g != w:
			different = append(different, fmt.Sprintf("%s redis=%s stripe=%s", k, g, w))
		}
	}
	for k := range got {
		if _, ok := want[k]; !ok {
			extra = append(extra, k)
		}
	}
	var parts []string
	for _, x := range []struct {
		what string
		keys []string
	}{{"missing in Redis", missing}, {"not in Stripe", extra}, {"different", different}} {
		if len(x.keys) == 0 {
			continue
		}
		slices.Sort(x.keys)
		ex := x.keys[:min(3, len(x.keys))]
		parts = append(parts, fmt.Sprintf("%d %s (%s)", len(x.keys), x.what, strings.Join(ex, ", ")))
	}
	return strings.Join(parts, "; ")
}

// campaignCodeDifferences lists how the campaign's code record differs
// from what it must be: the coupon's terms and Stripe's counters (want),
// and the campaign record's own terms (status, expiry, plans, audience
// rules), which only Redis knows and the code record repeats for the
// redemption scripts.
func campaignCodeDifferences(c *Campaign, got, want *PromoCode) []string {
	var out []string
	cmpf := func(field string, g, w any) {
		if gs, ws := fmt.Sprint(g), fmt.Sprint(w); gs != ws {
			out = append(out, fmt.Sprintf("%s: redis=%s stripe=%s", field, gs, ws))
		}
	}
	cmpf("promo_type", got.PromoType, want.PromoType)
	cmpf("amount_off", got.AmountOffDecimal(), want.AmountOffDecimal())
	cmpf("currency", got.Currency, want.Currency)
	cmpf("duration", got.Duration, want.Duration)
	cmpf("promo_duration_months", got.DurationMonths, want.DurationMonths)
	cmpf("uses", got.Uses, want.Uses)
	cmpf("discounted_amounts", amountsText(got.Discounted), amountsText(want.Discounted))
	rec := func(field string, g, w any) {
		if gs, ws := fmt.Sprint(g), fmt.Sprint(w); gs != ws {
			out = append(out, fmt.Sprintf("%s: code record=%s campaign=%s", field, gs, ws))
		}
	}
	t := &c.Terms
	rec("status", got.Status, t.Status)
	rec("expiration_datetime", timeText(got.ExpiresAt), timeText(t.ExpiresAt))
	rec("new_users_only", got.NewUsersOnly, t.NewUsersOnly)
	rec("existing_memberships_only", got.ExistingMembershipsOnly, t.ExistingMembershipsOnly)
	rec("plan_ids", got.PlanIDs, t.PlanIDs)
	rec("unlimited_stock", got.UnlimitedStock, true)
	return out
}

// MergeCampaignCode is the campaign's code record -fix writes: the
// campaign record's terms (what the service writes, see
// redisstore.writeCampaignCode) with Stripe's counters.
func MergeCampaignCode(c *Campaign, rebuilt *PromoCode) *PromoCode {
	out := c.Terms
	out.ID, out.Code, out.UnlimitedStock, out.Stock, out.Held = c.ID, "", true, 0, 0
	out.Stripe.State, out.Stripe.PromotionCodeID = SyncReady, ""
	out.Uses, out.Discounted = rebuilt.Uses, maps.Clone(rebuilt.Discounted)
	out.Stripe.TimesRedeemed = rebuilt.Stripe.TimesRedeemed
	return &out
}

// MergeCampaignUsed is the used map -fix writes for the merged ledger
// (lines in ID order): each code the lines hold goes to its holder
// (CampaignCodeHolders); a code Redis records for a line that holds
// nothing any more (given back) keeps that entry, as the scripts leave it.
func MergeCampaignUsed(lines []*Redemption, redisUsed map[string]string) map[string]string {
	out := CampaignCodeHolders(lines)
	for text, id := range redisUsed {
		if _, ok := out[text]; !ok {
			out[text] = id
		}
	}
	return out
}
