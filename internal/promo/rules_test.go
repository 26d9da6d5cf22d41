package promo

import (
	"errors"
	"slices"
	"strings"
	"testing"
	"time"
)

func readyCode(mod func(p *PromoCode)) *PromoCode {
	p := &PromoCode{ID: "pc_1", Code: "SAVE", Status: StatusActive, UnlimitedStock: true,
		Stripe: StripeRefs{State: SyncReady, CouponID: "pc_1", PromotionCodeID: "promo_1"}}
	if mod != nil {
		mod(p)
	}
	return p
}

// campaignCode is one code of a campaign as the store reads it (Stock 1
// while free), with the customer rule lifted when many.
func campaignCode(many bool, mods ...func(p *PromoCode)) *PromoCode {
	return readyCode(func(p *PromoCode) {
		p.ID, p.Code, p.UnlimitedStock, p.Stock, p.ManyPerCustomer = "cmp_1", "CMPX", false, 1, many
		p.Stripe.CouponID, p.Stripe.PromotionCodeID = "cmp_1", ""
		for _, m := range mods {
			m(p)
		}
	})
}

func TestCheckRedeemable(t *testing.T) {
	past, future := testNow.Add(-time.Second), testNow.Add(time.Hour)
	tests := []struct {
		name string
		mod  func(p *PromoCode)
		want Code // "" = redeemable
	}{
		{"active unlimited", nil, ""},
		{"stock left", func(p *PromoCode) { p.UnlimitedStock, p.Stock = false, 1 }, ""},
		{"future expiry", func(p *PromoCode) { p.ExpiresAt = &future }, ""},
		{"provisioning", func(p *PromoCode) { p.Stripe.State = SyncProvisioning }, CodeCodeInactive},
		{"inactive", func(p *PromoCode) { p.Status = StatusInactive }, CodeCodeInactive},
		{"archived", func(p *PromoCode) { p.Status = StatusArchived }, CodeCodeInactive},
		{"expired", func(p *PromoCode) { p.ExpiresAt = &past }, CodeCodeExpired},
		{"expires exactly now", func(p *PromoCode) { p.ExpiresAt = &testNow }, CodeCodeExpired},
		{"no stock", func(p *PromoCode) { p.UnlimitedStock, p.Stock = false, 0 }, CodeCodeExhausted},
		{"no stock but reserved units", func(p *PromoCode) { p.UnlimitedStock, p.Stock, p.Reserved = false, 0, 2 }, CodeCodeExhausted},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := CheckRedeemable(readyCode(tt.mod), testNow)
			if tt.want == "" {
				if err != nil {
					t.Fatalf("unexpected %v", err)
				}
				return
			}
			if err == nil || err.Code != tt.want || err.Param != "code" || err.Message == "" {
				t.Fatalf("got %v, want %s on param code", err, tt.want)
			}
		})
	}
}

func TestCheckPlanAndAudience(t *testing.T) {
	plans := readyCode(func(p *PromoCode) { p.PlanIDs = []string{"price_a", "price_b"} })
	tests := []struct {
		name string
		err  *Error
		want Code
	}{
		{"no restriction", CheckPlan(readyCode(nil), []string{"price_x"}), ""},
		{"listed price", CheckPlan(plans, []string{"price_b"}), ""},
		{"one of several items listed", CheckPlan(plans, []string{"price_x", "price_a"}), ""},
		{"unlisted price", CheckPlan(plans, []string{"price_x"}), CodePlanNotEligible},
		{"no price at all", CheckPlan(plans, nil), CodePlanNotEligible},
		{"new users only, new", CheckAudience(readyCode(func(p *PromoCode) { p.NewUsersOnly = true }), false, false), ""},
		{"new users only, has paid", CheckAudience(readyCode(func(p *PromoCode) { p.NewUsersOnly = true }), true, true), CodeNewUsersOnly},
		{"members only, existing subscription", CheckAudience(readyCode(func(p *PromoCode) { p.ExistingMembershipsOnly = true }), true, true), ""},
		{"members only, new subscription", CheckAudience(readyCode(func(p *PromoCode) { p.ExistingMembershipsOnly = true }), false, false), CodeExistingMembershipsOnly},
		{"no audience rule", CheckAudience(readyCode(nil), true, false), ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			switch {
			case tt.want == "" && tt.err != nil:
				t.Fatalf("unexpected %v", tt.err)
			case tt.want != "" && (tt.err == nil || tt.err.Code != tt.want):
				t.Fatalf("got %v, want %s", tt.err, tt.want)
			}
		})
	}
}

func TestCheckOwner(t *testing.T) {
	tests := []struct {
		name, status, customer string
		want                   Code // "" = owned and open
	}{
		{"owner", "active", "cus_a", ""},
		{"no customer given", "active", "", ""},
		{"past due is still billed", "past_due", "cus_a", ""},
		{"someone else's", "active", "cus_b", CodeCustomerMismatch},
		{"someone else's canceled", "canceled", "cus_b", CodeCustomerMismatch},
		{"canceled", "canceled", "cus_a", CodeSubscriptionNotFound},
		{"incomplete_expired", "incomplete_expired", "", CodeSubscriptionNotFound},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := CheckOwner(&Subscription{ID: "sub_1", Customer: "cus_a", Status: tt.status}, tt.customer)
			if (err == nil) != (tt.want == "") || (err != nil && (err.Code != tt.want || err.Message == "")) {
				t.Fatalf("got %v, want %q", err, tt.want)
			}
		})
	}
}

// Decide gives the first refusal in the README's order, whatever else holds.
func TestDecide(t *testing.T) {
	past := testNow.Add(-time.Second)
	sub := func(mod func(s *Subscription)) *Subscription {
		s := &Subscription{ID: "sub_1", Customer: "cus_a", Status: "active", PriceIDs: []string{"price_a"}}
		if mod != nil {
			mod(s)
		}
		return s
	}
	withDiscount := func(coupon string) func(s *Subscription) {
		return func(s *Subscription) { s.Discount = &Discount{ID: "di_1", CouponID: coupon} }
	}
	tests := []struct {
		name string
		f    Facts
		want Code
	}{
		{"new subscription, nothing against it", Facts{Code: readyCode(nil), Prices: []string{"price_a"}, PricesKnown: true}, ""},
		{"existing subscription, nothing against it", Facts{Code: readyCode(nil), Subscription: sub(nil), PricesKnown: true, Prices: []string{"price_a"}}, ""},
		{"inactive beats everything after it", Facts{Code: readyCode(func(p *PromoCode) { p.Status = StatusInactive; p.PlanIDs = []string{"price_z"} }),
			Subscription: sub(withDiscount("co_x")), SubscriptionClaimed: true, UsedByCustomer: true, Prices: []string{"price_a"}, PricesKnown: true}, CodeCodeInactive},
		{"expired before exhausted", Facts{Code: readyCode(func(p *PromoCode) { p.ExpiresAt = &past; p.UnlimitedStock = false })}, CodeCodeExpired},
		{"exhausted", Facts{Code: readyCode(func(p *PromoCode) { p.UnlimitedStock = false })}, CodeCodeExhausted},
		{"plan before audience and use", Facts{Code: readyCode(func(p *PromoCode) { p.PlanIDs = []string{"price_z"}; p.NewUsersOnly = true }),
			CustomerHasPaid: true, UsedByCustomer: true, Prices: []string{"price_a"}, PricesKnown: true}, CodePlanNotEligible},
		{"plan unknown is not checked", Facts{Code: readyCode(func(p *PromoCode) { p.PlanIDs = []string{"price_z"} })}, ""},
		{"new users only before use", Facts{Code: readyCode(func(p *PromoCode) { p.NewUsersOnly = true }), CustomerHasPaid: true, UsedByCustomer: true}, CodeNewUsersOnly},
		{"members only on a new subscription", Facts{Code: readyCode(func(p *PromoCode) { p.ExistingMembershipsOnly = true }), UsedByCustomer: true}, CodeExistingMembershipsOnly},
		{"members only on an existing one", Facts{Code: readyCode(func(p *PromoCode) { p.ExistingMembershipsOnly = true }), Subscription: sub(nil)}, ""},
		{"used before subscription has a code", Facts{Code: readyCode(nil), UsedByCustomer: true, Subscription: sub(nil), SubscriptionClaimed: true}, CodeAlreadyRedeemedByCustomer},
		{"claimed in Redis", Facts{Code: readyCode(nil), Subscription: sub(nil), SubscriptionClaimed: true}, CodeSubscriptionHasPromoCode},
		{"campaign once per customer: a second code refused", Facts{Code: campaignCode(false), UsedByCustomer: true, Subscription: sub(nil)}, CodeAlreadyRedeemedByCustomer},
		{"campaign not once per customer: a second code accepted", Facts{Code: campaignCode(true), UsedByCustomer: true, Subscription: sub(nil)}, ""},
		{"campaign not once per customer: still one code per subscription", Facts{Code: campaignCode(true), UsedByCustomer: true,
			Subscription: sub(nil), SubscriptionClaimed: true}, CodeSubscriptionHasPromoCode},
		{"campaign not once per customer: a taken code stays used up", Facts{Code: campaignCode(true, func(p *PromoCode) { p.Stock = 0 }),
			UsedByCustomer: true, Subscription: sub(nil)}, CodeCodeExhausted},
		{"discount made in Stripe", Facts{Code: readyCode(nil), Subscription: sub(withDiscount("co_x"))}, CodeSubscriptionHasPromoCode},
		{"resuming skips the rules", Facts{Code: readyCode(func(p *PromoCode) { p.UnlimitedStock = false; p.NewUsersOnly = true }), Resuming: true,
			CustomerHasPaid: true, Subscription: sub(withDiscount("pc_1"))}, ""},
		{"resuming onto someone else's discount", Facts{Code: readyCode(nil), Resuming: true, Subscription: sub(withDiscount("co_x"))}, CodeSubscriptionHasPromoCode},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := Decide(tt.f, testNow)
			switch {
			case tt.want == "" && err != nil:
				t.Fatalf("unexpected %v", err)
			case tt.want != "" && (err == nil || err.Code != tt.want || err.Message == ""):
				t.Fatalf("got %v, want %s", err, tt.want)
			}
		})
	}
}

func TestCheckStripeID(t *testing.T) {
	for id, ok := range map[string]bool{
		"cus_123": true, "sub_1NvX": true, "": false, "cus 1": false, "sub_1/../x": false, "a?b": false, "a#b": false,
		"a%20b": false, strings.Repeat("x", 255): true, strings.Repeat("x", 256): false,
	} {
		err := CheckStripeID("customer", id)
		if (err == nil) != ok {
			t.Errorf("%q: got %v, want ok=%v", id, err, ok)
		}
		if err != nil && (err.Code != CodeInvalidRequest || err.Param != "customer") {
			t.Errorf("%q: %+v", id, err)
		}
	}
}

func TestLookupCodeText(t *testing.T) {
	tests := []struct {
		in, want string
		code     Code
	}{
		{" save10 ", "SAVE10", ""},
		{"Save10", "SAVE10", ""},
		{"", "", CodeInvalidRequest},
		{"save-10", "", CodeCodeNotFound}, // a typo is not found, not a malformed request
		{strings.Repeat("A", 65), "", CodeCodeNotFound},
	}
	for _, tt := range tests {
		got, err := lookupCodeText(tt.in)
		switch {
		case tt.code == "" && (err != nil || got != tt.want):
			t.Errorf("%q: got %q %v, want %q", tt.in, got, err, tt.want)
		case tt.code != "" && (err == nil || err.Code != tt.code):
			t.Errorf("%q: got %v, want %s", tt.in, err, tt.code)
		}
	}
}

// Every redemption code has a message and a status row; refusals become
// invalid results of validate, anything else stays an error.
func TestRefusals(t *testing.T) {
	for _, c := range []Code{CodeCodeNotFound, CodeCodeInactive, CodeCodeExpired, CodeCodeExhausted, CodePlanNotEligible,
		CodeNewUsersOnly, CodeExistingMembershipsOnly, CodeAlreadyRedeemedByCustomer, CodeSubscriptionHasPromoCode,
		CodeSubscriptionNotFound, CodeCustomerMismatch} {
		e := Refuse(c)
		if e.Code != c || e.Message == "" || e.Param == "" {
			t.Errorf("Refuse(%s) = %+v", c, e)
		}
		res, err := refused(nil, e)
		if err != nil || res.Valid || res.Reason != e {
			t.Errorf("refused(%s) = %+v, %v", c, res, err)
		}
	}
	for _, e := range []error{Unavailable("Redis", errors.New("down")), Errorf(CodeStripeError, "Stripe: boom"), Invalid("customer", "bad")} {
		if res, err := refused(nil, e); err == nil || res != nil {
			t.Errorf("refused(%v) = %+v, %v: want the error back", e, res, err)
		}
	}
}

func TestWantStripeActive(t *testing.T) {
	tests := []struct {
		name string
		mod  func(p *PromoCode)
		want bool
	}{
		{"active unlimited", nil, true},
		{"active with stock", func(p *PromoCode) { p.UnlimitedStock, p.Stock = false, 3 }, true},
		{"active, no stock, reservations in flight", func(p *PromoCode) { p.UnlimitedStock, p.Reserved = false, 1 }, true},
		{"active, exhausted", func(p *PromoCode) { p.UnlimitedStock = false }, false},
		{"inactive with stock", func(p *PromoCode) { p.Status, p.Stock = StatusInactive, 3 }, false},
		{"archived", func(p *PromoCode) { p.Status = StatusArchived }, false},
	}
	for _, tt := range tests {
		if got := readyCode(tt.mod).WantStripeActive(); got != tt.want {
			t.Errorf("%s: %v, want %v", tt.name, got, tt.want)
		}
	}
}

func TestRequestOwnerAndStripeKeyHideTheKey(t *testing.T) {
	key := "admin\x00my-secret-idempotency-key"
	for _, v := range []string{RequestOwner(key), StripeKey(key, "step")} {
		if strings.Contains(v, "my-secret") {
			t.Fatalf("%q leaks the inbound key", v)
		}
	}
	if RequestOwner(key) != RequestOwner(key) || RequestOwner(key) == RequestOwner(key+"x") {
		t.Fatal("owner must be deterministic and distinct per key")
	}
	if StripeKey(key, "a") == StripeKey(key, "b") || len(StripeKey(key, "a")) > 255 {
		t.Fatal("Stripe keys must differ per step and fit Stripe's limit")
	}
}

// The rebuild's count applies the customer rule as the scripts do: a
// customer's second line holding a use is flagged, unless the code lifts
// the rule (a campaign with once_per_customer: false).
func TestCountLedgerCustomerRule(t *testing.T) {
	for _, many := range []bool{false, true} {
		p := campaignCode(many, func(p *PromoCode) { p.UnlimitedStock = true })
		lines := []RebuiltRedemption{
			{Redemption: &Redemption{ID: "rd_1", Customer: "cus_a", State: RedemptionPending}},
			{Redemption: &Redemption{ID: "rd_2", Customer: "cus_a", State: RedemptionPending}},
		}
		countLedger(p, lines)
		flagged := slices.Contains(lines[1].Flags, "customer_already_redeemed")
		if flagged == many || len(lines[0].Flags) != 0 {
			t.Errorf("many per customer %v: flags %v %v", many, lines[0].Flags, lines[1].Flags)
		}
	}
}
