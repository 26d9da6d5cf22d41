package promo

import (
	"slices"
	"testing"
	"time"
)

// The attribution rule: a discount on a campaign's coupon names its unique
// code from the subscription's metadata when the adapter applied it (with
// the coupon, no promotion code), else from the promotion code it came
// through (Stripe Checkout, the Dashboard), else none.
func TestCampaignCodeOf(t *testing.T) {
	const cmp = "cmp_01TEST"
	promos := map[string]StripePromotionCode{
		"promo_mirrored": {ID: "promo_mirrored", Code: "SPRABC", CouponID: cmp,
			Metadata: map[string]string{MetaCampaignID: cmp, MetaPromoCode: "SPRABC"}},
		"promo_lower": {ID: "promo_lower", Code: "sprdef", CouponID: cmp,
			Metadata: map[string]string{MetaCampaignID: cmp, MetaPromoCode: "sprdef"}},
		"promo_dashboard": {ID: "promo_dashboard", Code: "HANDMADE", CouponID: cmp}, // no campaign metadata
		"promo_other": {ID: "promo_other", Code: "SPRXYZ", CouponID: "cmp_02OTHER",
			Metadata: map[string]string{MetaCampaignID: "cmp_02OTHER", MetaPromoCode: "SPRXYZ"}},
	}
	adapterMeta := map[string]string{MetaPromoCodeID: cmp, MetaPromoCode: "SPRMETA", MetaRedemptionID: "rd_1"}
	sub := func(id string, md map[string]string) *StripeSubscription {
		return &StripeSubscription{ID: id, Metadata: md}
	}
	disc := func(coupon, promo, subID string) *StripeDiscount {
		return &StripeDiscount{ID: "di_1", CouponID: coupon, PromotionCodeID: promo, Subscription: subID}
	}
	for _, tc := range []struct {
		name string
		d    *StripeDiscount
		sub  *StripeSubscription
		want string
	}{
		{"adapter: the subscription's metadata", disc(cmp, "", "sub_1"), sub("sub_1", adapterMeta), "SPRMETA"},
		{"Checkout: the mirrored promotion code's metadata", disc(cmp, "promo_mirrored", "sub_1"), sub("sub_1", nil), "SPRABC"},
		{"Checkout, upper-cased", disc(cmp, "promo_lower", "sub_1"), sub("sub_1", nil), "SPRDEF"},
		{"a promotion code wins over older adapter metadata", disc(cmp, "promo_mirrored", "sub_1"), sub("sub_1", adapterMeta), "SPRABC"},
		{"customer discount through a promotion code", disc(cmp, "promo_mirrored", ""), nil, "SPRABC"},
		{"a promotion code the adapter did not make", disc(cmp, "promo_dashboard", "sub_1"), sub("sub_1", nil), ""},
		{"another campaign's promotion code", disc(cmp, "promo_other", "sub_1"), sub("sub_1", nil), ""},
		{"an unknown promotion code", disc(cmp, "promo_unknown", "sub_1"), sub("sub_1", adapterMeta), ""},
		{"the bare coupon from the Dashboard", disc(cmp, "", "sub_1"), sub("sub_1", nil), ""},
		{"metadata of another code", disc(cmp, "", "sub_1"),
			sub("sub_1", map[string]string{MetaPromoCodeID: "pc_1", MetaPromoCode: "OTHER", MetaRedemptionID: "rd_1"}), ""},
		{"metadata without a redemption", disc(cmp, "", "sub_1"),
			sub("sub_1", map[string]string{MetaPromoCodeID: cmp, MetaPromoCode: "SPRMETA"}), ""},
		{"another subscription's metadata", disc(cmp, "", "sub_2"), sub("sub_1", adapterMeta), ""},
		{"another coupon", disc("cmp_02OTHER", "promo_other", "sub_1"), sub("sub_1", nil), ""},
		{"no discount", nil, sub("sub_1", adapterMeta), ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := CampaignCodeOf(cmp, tc.d, tc.sub, promos); got != tc.want {
				t.Fatalf("CampaignCodeOf = %q, want %q", got, tc.want)
			}
		})
	}
}

// Each code's single use goes to the first line (ID order) naming it that
// holds a use; a line that ended before a paid invoice gave it back.
func TestCampaignCodeHolders(t *testing.T) {
	paid := time.Date(2027, 1, 1, 0, 0, 0, 0, time.UTC)
	lines := []*Redemption{
		{ID: "rd_1", UniqueCode: "A", State: RedemptionEnded},                     // given back
		{ID: "rd_2", UniqueCode: "A", State: RedemptionPending},                   // takes A
		{ID: "rd_3", UniqueCode: "A", State: RedemptionActive, ActivatedAt: paid}, // too late
		{ID: "rd_4", UniqueCode: "B", State: RedemptionEnded, ActivatedAt: paid},  // a paid invoice: keeps B
		{ID: "rd_5", UniqueCode: "B", State: RedemptionPending},
		{ID: "rd_6", State: RedemptionPending}, // no code known
		{ID: "rd_7", UniqueCode: "C", State: RedemptionReleased},
	}
	got := CampaignCodeHolders(lines)
	if len(got) != 2 || got["A"] != "rd_2" || got["B"] != "rd_4" {
		t.Fatalf("holders %v", got)
	}
	if len(lines[2].Flags) != 0 {
		t.Fatal("CampaignCodeHolders flagged a line it only reads")
	}
	campaignCodeHolders(lines, true)
	for i, want := range []bool{false, false, true, false, true, false, false} {
		if got := slices.Contains(lines[i].Flags, FlagCodeAlreadyUsed); got != want {
			t.Errorf("%s flagged %v, want %v", lines[i].ID, got, want)
		}
	}
	if used := MergeCampaignUsed(lines, map[string]string{"C": "rd_7", "A": "rd_1"}); used["A"] != "rd_2" || used["C"] != "rd_7" || used["B"] != "rd_4" {
		t.Fatalf("merged used %v", used)
	}
}

// A rebuild attributes an adapter redemption and a Checkout redemption of
// a mirrored code, counts the campaign, and records its promotion codes.
func TestRebuildCampaign(t *testing.T) {
	const cmp = "cmp_01TEST"
	start := time.Date(2027, 1, 15, 12, 0, 0, 0, time.UTC)
	s := &StripeSnapshot{
		Coupons: map[string]StripeCoupon{cmp: {ID: cmp, PercentOff: "15", Duration: Forever,
			Metadata: map[string]string{MetaCampaignID: cmp, MetaPromoCodeID: cmp}, TimesRedeemed: 2}},
		PromotionCodes: map[string][]StripePromotionCode{cmp: {
			{ID: "promo_b", Code: "SPRB", CouponID: cmp, Metadata: map[string]string{MetaCampaignID: cmp, MetaPromoCode: "SPRB"}, Created: start},
			{ID: "promo_c", Code: "SPRC", CouponID: cmp, Metadata: map[string]string{MetaCampaignID: cmp, MetaPromoCode: "SPRC"}, Created: start},
		}},
		Subscriptions: map[string]StripeSubscription{
			"sub_a": {ID: "sub_a", Customer: "cus_a", Status: "active",
				Discount: &StripeDiscount{ID: "di_a", CouponID: cmp, Customer: "cus_a", Subscription: "sub_a", Start: start},
				Metadata: map[string]string{MetaPromoCodeID: cmp, MetaPromoCode: "SPRA", MetaRedemptionID: "rd_01ADAPTER", MetaRedemptionSource: "new_subscription"}},
			"sub_b": {ID: "sub_b", Customer: "cus_b", Status: "active",
				Discount: &StripeDiscount{ID: "di_b", CouponID: cmp, PromotionCodeID: "promo_b", Customer: "cus_b", Subscription: "sub_b", Start: start.Add(time.Hour)}},
		},
		Paid: map[string]map[string]*PaidDiscount{cmp: {"di_a": {
			Discount: StripeDiscount{ID: "di_a", CouponID: cmp, Customer: "cus_a", Subscription: "sub_a", Start: start},
			Cycles:   1, Discounted: map[string]int64{"usd": 300}, FirstPaid: start, LastPaid: start}}},
	}
	rb := Rebuild(s, start.Add(24*time.Hour))
	if len(rb.Problems) != 0 || len(rb.Codes) != 0 || len(rb.Campaigns) != 1 {
		t.Fatalf("rebuilt %d codes, %d campaigns, problems %v", len(rb.Codes), len(rb.Campaigns), rb.Problems)
	}
	c := rb.Campaigns[0]
	if c.Code.Uses != 1 || c.Code.Discounted["usd"] != 300 || c.Code.PromoType != Percentage || c.Code.AmountOff != 1500 || !c.Code.UnlimitedStock {
		t.Fatalf("code record %+v", c.Code)
	}
	led := rb.Ledgers[cmp]
	if len(led) != 2 {
		t.Fatalf("ledger %v", led)
	}
	byCode := map[string]RebuiltRedemption{}
	for _, l := range led {
		byCode[l.UniqueCode] = l
	}
	if a := byCode["SPRA"]; a.Redemption == nil || a.ID != "rd_01ADAPTER" || !a.IDKnown || a.State != RedemptionActive || a.Source != SourceNewSubscription {
		t.Fatalf("adapter line %+v", a)
	}
	b := byCode["SPRB"]
	if b.Redemption == nil || b.ID != RedemptionIDFor("di_b", start.Add(time.Hour)) || b.IDKnown || b.Source != SourceStripe {
		t.Fatalf("Checkout line %+v", b)
	}
	if c.Holders["SPRA"] != "rd_01ADAPTER" || c.Holders["SPRB"] != b.ID || len(c.Holders) != 2 {
		t.Fatalf("holders %v", c.Holders)
	}
	if c.Mirrored() != 2 || c.PromotionCodes["SPRC"] != "promo_c" || c.PromotionCodeTexts["promo_b"] != "SPRB" {
		t.Fatalf("promotion codes %v %v", c.PromotionCodes, c.PromotionCodeTexts)
	}

	// Redis without the campaign: reported, never invented; with the
	// record and nothing else: every part reported, naming the campaign.
	cur := &LedgerState{Ledgers: map[string][]*Redemption{}, Campaigns: map[string]*CampaignLedger{}}
	drift := Diff(cur, rb, nil)
	if len(drift) != 1 || drift[0].PromoCodeID != cmp || len(Unrepairable(drift)) != 1 {
		t.Fatalf("drift without the campaign: %v", drift)
	}
	cur.Campaigns[cmp] = &CampaignLedger{Campaign: &Campaign{ID: cmp, Terms: PromoCode{ID: cmp, UnlimitedStock: true}}}
	drift = Diff(cur, rb, nil)
	if len(drift) < 5 || len(Unrepairable(drift)) != 0 || !Drifting(drift)[cmp] {
		t.Fatalf("drift of an emptied campaign: %v", drift)
	}
	// Stripe shows only the coupon: an orphan of a create cut short, not drift.
	s.Subscriptions, s.Paid, s.PromotionCodes = nil, nil, nil
	rb = Rebuild(s, start)
	delete(cur.Campaigns, cmp)
	if drift := Diff(cur, rb, nil); len(drift) != 0 || len(OrphanCampaignCoupons(cur, rb)) != 1 {
		t.Fatalf("an unused orphan coupon: drift %v", drift)
	}
}
