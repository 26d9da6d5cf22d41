package promo

import (
	"errors"
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
