package promo

import (
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"
)

var testNow = time.Date(2026, 11, 21, 12, 0, 0, 0, time.UTC)

func ptr[T any](v T) *T { return &v }

func okPercentage() CreateInput {
	return CreateInput{Code: "summer25", PromoType: Percentage, AmountOff: "25"}
}

func okFlat(cur, amount string) CreateInput {
	return CreateInput{Code: "FLAT", PromoType: FlatAmount, AmountOff: amount, Currency: cur}
}

func TestNewPromoCodeAccepts(t *testing.T) {
	tests := []struct {
		name  string
		in    CreateInput
		check func(t *testing.T, p *PromoCode)
	}{
		{"percentage upper-cases code, defaults forever unlimited active", okPercentage(), func(t *testing.T, p *PromoCode) {
			want := PromoCode{Code: "SUMMER25", PromoType: Percentage, AmountOff: 2500, Duration: Forever, UnlimitedStock: true, Status: StatusActive}
			if p.Code != want.Code || p.AmountOff != want.AmountOff || p.Duration != want.Duration ||
				!p.UnlimitedStock || p.Status != StatusActive || p.PromoType != Percentage {
				t.Fatalf("got %+v", p)
			}
		}},
		{"percentage two decimals", CreateInput{Code: "A1", PromoType: Percentage, AmountOff: "12.55"}, func(t *testing.T, p *PromoCode) {
			if p.AmountOff != 1255 || p.AmountOffDecimal() != "12.55" {
				t.Fatalf("amount %d %s", p.AmountOff, p.AmountOffDecimal())
			}
		}},
		{"percentage 100", CreateInput{Code: "FREE", PromoType: Percentage, AmountOff: "100"}, func(t *testing.T, p *PromoCode) {
			if p.AmountOff != 10000 {
				t.Fatal(p.AmountOff)
			}
		}},
		{"usd 5.50 is 550 cents", okFlat("usd", "5.50"), func(t *testing.T, p *PromoCode) {
			if p.AmountOff != 550 || p.Currency != "usd" || p.AmountOffDecimal() != "5.50" {
				t.Fatalf("%d %s %s", p.AmountOff, p.Currency, p.AmountOffDecimal())
			}
		}},
		{"usd 5.5", okFlat("USD", "5.5"), func(t *testing.T, p *PromoCode) {
			if p.AmountOff != 550 || p.Currency != "usd" {
				t.Fatal(p.AmountOff, p.Currency)
			}
		}},
		{"jpy zero decimals", okFlat("jpy", "500"), func(t *testing.T, p *PromoCode) {
			if p.AmountOff != 500 || p.AmountOffDecimal() != "500" {
				t.Fatal(p.AmountOff)
			}
		}},
		{"kwd three decimals ending in 0", okFlat("kwd", "1.230"), func(t *testing.T, p *PromoCode) {
			if p.AmountOff != 1230 || p.AmountOffDecimal() != "1.230" {
				t.Fatal(p.AmountOff)
			}
		}},
		{"kwd whole", okFlat("kwd", "2"), func(t *testing.T, p *PromoCode) {
			if p.AmountOff != 2000 {
				t.Fatal(p.AmountOff)
			}
		}},
		{"months 3 means repeating", func() CreateInput { in := okPercentage(); in.PromoDurationMonths = ptr(int64(3)); return in }(), func(t *testing.T, p *PromoCode) {
			if p.Duration != Repeating || p.DurationMonths != 3 {
				t.Fatal(p.Duration, p.DurationMonths)
			}
		}},
		{"once with 1 cycle", func() CreateInput {
			in := okPercentage()
			in.Duration, in.PromoDurationMonths = Once, ptr(int64(1))
			return in
		}(), func(t *testing.T, p *PromoCode) {
			if p.Duration != Once || p.DurationMonths != 0 {
				t.Fatal(p.Duration, p.DurationMonths)
			}
		}},
		{"forever explicit", func() CreateInput { in := okPercentage(); in.Duration = Forever; return in }(), func(t *testing.T, p *PromoCode) {
			if p.Duration != Forever {
				t.Fatal(p.Duration)
			}
		}},
		{"stock 0 allowed", func() CreateInput { in := okPercentage(); in.Stock = ptr(int64(0)); return in }(), func(t *testing.T, p *PromoCode) {
			if p.UnlimitedStock || p.Stock != 0 || p.WantStripeActive() {
				t.Fatal(p.UnlimitedStock, p.Stock)
			}
		}},
		{"unlimited without stock", func() CreateInput {
			in := okPercentage()
			in.UnlimitedStock = ptr(true)
			return in
		}(), func(t *testing.T, p *PromoCode) {
			if !p.UnlimitedStock {
				t.Fatal("want unlimited")
			}
		}},
		{"future expiration", func() CreateInput {
			in := okPercentage()
			in.ExpirationDatetime = ptr(testNow.Add(time.Hour))
			return in
		}(), func(t *testing.T, p *PromoCode) {
			if p.ExpiresAt == nil || !p.ExpiresAt.Equal(testNow.Add(time.Hour)) || p.Expired(testNow) || !p.Expired(testNow.Add(time.Hour)) {
				t.Fatal(p.ExpiresAt)
			}
		}},
		{"plan ids deduplicated and sorted", func() CreateInput {
			in := okPercentage()
			in.PlanIDs = []string{"price_b", "price_a", "price_b"}
			return in
		}(), func(t *testing.T, p *PromoCode) {
			if strings.Join(p.PlanIDs, ",") != "price_a,price_b" {
				t.Fatal(p.PlanIDs)
			}
		}},
		{"metadata at every maximum", func() CreateInput {
			in := okPercentage()
			in.Metadata = metadataOf(MaxMetadataKeys, MaxMetadataKeyLength, MaxMetadataValueLength)
			return in
		}(), func(t *testing.T, p *PromoCode) {
			if len(p.Metadata) != MaxMetadataKeys {
				t.Fatal(len(p.Metadata))
			}
		}},
		{"as many Stripe price IDs as allowed", func() CreateInput { in := okPercentage(); in.PlanIDs = manyPrices(MaxPlanIDs); return in }(), func(t *testing.T, p *PromoCode) {
			if len(p.PlanIDs) != MaxPlanIDs {
				t.Fatal(p.PlanIDs)
			}
		}},
		{"code of 64 chars", func() CreateInput { in := okPercentage(); in.Code = strings.Repeat("A", 64); return in }(), nil},
		{"inactive at create", func() CreateInput { in := okPercentage(); in.Status = StatusInactive; return in }(), func(t *testing.T, p *PromoCode) {
			if p.Status != StatusInactive || p.WantStripeActive() {
				t.Fatal(p.Status)
			}
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p, err := NewPromoCode(tt.in, testNow)
			if err != nil {
				t.Fatalf("unexpected error: %v", err)
			}
			if tt.check != nil {
				tt.check(t, p)
			}
		})
	}
}

func metadataOf(n, keyLen, valLen int) map[string]string {
	md := map[string]string{}
	for i := 0; i < n; i++ {
		k := strings.Repeat("k", keyLen-3) + string(rune('a'+i/26)) + string(rune('a'+i%26)) + "x"
		md[k[:keyLen]] = strings.Repeat("v", valLen)
	}
	return md
}

func TestNewPromoCodeRefuses(t *testing.T) {
	mod := func(f func(*CreateInput)) CreateInput { in := okPercentage(); f(&in); return in }
	tests := []struct {
		name, param, msg string
		in               CreateInput
	}{
		{"empty code", "code", "required", mod(func(in *CreateInput) { in.Code = "" })},
		{"stock with unlimited", "stock", "together with unlimited_stock", mod(func(in *CreateInput) {
			in.Stock, in.UnlimitedStock = ptr(int64(5)), ptr(true)
		})},
		{"code with dash", "code", "letters", mod(func(in *CreateInput) { in.Code = "SUMMER-25" })},
		{"code with space inside", "code", "letters", mod(func(in *CreateInput) { in.Code = "SUM MER" })},
		{"code non-ascii", "code", "letters", mod(func(in *CreateInput) { in.Code = "ÉTÉ" })},
		{"code too long", "code", "64", mod(func(in *CreateInput) { in.Code = strings.Repeat("A", 65) })},
		{"missing type", "promo_type", "required", mod(func(in *CreateInput) { in.PromoType = "" })},
		{"bad type", "promo_type", "percentage or flat_amount", mod(func(in *CreateInput) { in.PromoType = "bogo" })},
		{"percentage zero", "amount_off", "greater than 0", mod(func(in *CreateInput) { in.AmountOff = "0" })},
		{"percentage missing", "amount_off", "required", mod(func(in *CreateInput) { in.AmountOff = "" })},
		{"percentage over 100", "amount_off", "at most 100", mod(func(in *CreateInput) { in.AmountOff = "100.01" })},
		{"percentage 3 decimals", "amount_off", "2 decimal", mod(func(in *CreateInput) { in.AmountOff = "12.345" })},
		{"percentage negative", "amount_off", "must be positive", mod(func(in *CreateInput) { in.AmountOff = "-5" })},
		{"percentage exponent", "amount_off", "plain decimal", mod(func(in *CreateInput) { in.AmountOff = "1e1" })},
		{"percentage with currency", "currency", "flat_amount", mod(func(in *CreateInput) { in.Currency = "usd" })},
		{"flat without currency", "currency", "required", okFlat("", "5")},
		{"flat eth", "currency", "crypto", okFlat("eth", "5")},
		{"flat ape", "currency", "crypto", okFlat("ape", "5")},
		{"flat bgn", "currency", "withdrawn", okFlat("bgn", "5")},
		{"flat unknown currency", "currency", "not supported", okFlat("xyz", "5")},
		{"usd 3 decimals", "amount_off", "2 decimal", okFlat("usd", "5.555")},
		{"jpy decimals", "amount_off", "whole number", okFlat("jpy", "500.5")},
		{"kwd not ending in 0", "amount_off", "multiple of 0.010", okFlat("kwd", "1.235")},
		{"kwd 4 decimals", "amount_off", "3 decimal", okFlat("kwd", "1.2300")},
		{"flat zero", "amount_off", "greater than 0", okFlat("usd", "0.00")},
		{"flat too large", "amount_off", "at most 999999.99 USD", okFlat("usd", "1000000.00")},
		{"flat garbage", "amount_off", "plain decimal", okFlat("usd", "five")},
		{"flat trailing dot", "amount_off", "plain decimal", okFlat("usd", "5.")},
		{"months negative", "promo_duration_months", "between", mod(func(in *CreateInput) { in.PromoDurationMonths = ptr(int64(-1)) })},
		{"months huge", "promo_duration_months", "between", mod(func(in *CreateInput) { in.PromoDurationMonths = ptr(int64(1201)) })},
		{"once with 2 months", "promo_duration_months", "0 or 1", mod(func(in *CreateInput) { in.Duration, in.PromoDurationMonths = Once, ptr(int64(2)) })},
		{"repeating without months", "promo_duration_months", "at least 1", mod(func(in *CreateInput) { in.Duration = Repeating })},
		{"forever with months", "promo_duration_months", "0", mod(func(in *CreateInput) { in.Duration, in.PromoDurationMonths = Forever, ptr(int64(3)) })},
		{"bad duration", "duration", "once, repeating or forever", mod(func(in *CreateInput) { in.Duration = "weekly" })},
		{"past expiration", "expiration_datetime", "future", mod(func(in *CreateInput) { in.ExpirationDatetime = ptr(testNow.Add(-time.Second)) })},
		{"expiration now", "expiration_datetime", "future", mod(func(in *CreateInput) { in.ExpirationDatetime = ptr(testNow) })},
		{"negative stock", "stock", "between", mod(func(in *CreateInput) { in.Stock = ptr(int64(-1)) })},
		{"limited without stock", "stock", "required", mod(func(in *CreateInput) { in.UnlimitedStock = ptr(false) })},
		{"both audience rules", "existing_memberships_only", "cannot be combined", mod(func(in *CreateInput) { in.NewUsersOnly, in.ExistingMembershipsOnly = true, true })},
		{"empty plan id", "plan_ids", "price IDs", mod(func(in *CreateInput) { in.PlanIDs = []string{""} })},
		{"plan id with slash", "plan_ids", "price IDs", mod(func(in *CreateInput) { in.PlanIDs = []string{"price_1/../x"} })},
		{"archived at create", "status", "archived", mod(func(in *CreateInput) { in.Status = StatusArchived })},
		{"unknown status", "status", "active or inactive", mod(func(in *CreateInput) { in.Status = "paused" })},
		{"too many metadata keys", "metadata", "at most 23 keys", mod(func(in *CreateInput) { in.Metadata = metadataOf(MaxMetadataKeys+1, 10, 1) })},
		{"metadata config key reserved", "metadata", "reserved", mod(func(in *CreateInput) { in.Metadata = map[string]string{MetaConfig: "x"} })},
		{"too many plan ids", "plan_ids", "at most 10", mod(func(in *CreateInput) { in.PlanIDs = manyPrices(MaxPlanIDs + 1) })},
		{"plan ids too long for Stripe metadata", "plan_ids", "too long to record in Stripe", mod(func(in *CreateInput) { in.PlanIDs = longPrices(MaxPlanIDs, 60) })},
		{"metadata key too long", "metadata", "longer than 40", mod(func(in *CreateInput) { in.Metadata = metadataOf(1, 41, 1) })},
		{"metadata key with bracket", "metadata", "[ or ]", mod(func(in *CreateInput) { in.Metadata = map[string]string{"a[b]": "x"} })},
		{"metadata empty key", "metadata", "empty", mod(func(in *CreateInput) { in.Metadata = map[string]string{"": "x"} })},
		{"metadata value too long", "metadata", "longer than 500", mod(func(in *CreateInput) { in.Metadata = metadataOf(1, 5, 501) })},
		{"metadata empty value", "metadata", "empty", mod(func(in *CreateInput) { in.Metadata = map[string]string{"a": ""} })},
		{"metadata reserved key", "metadata", "reserved", mod(func(in *CreateInput) { in.Metadata = map[string]string{MetaPromoCodeID: "x"} })},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := NewPromoCode(tt.in, testNow)
			var pe *Error
			if !errors.As(err, &pe) {
				t.Fatalf("want *Error, got %v", err)
			}
			if pe.Code != CodeInvalidRequest || pe.Param != tt.param {
				t.Fatalf("got code %s param %q (%s); want param %q", pe.Code, pe.Param, pe.Message, tt.param)
			}
			if !strings.Contains(pe.Message, tt.msg) {
				t.Fatalf("message %q does not mention %q", pe.Message, tt.msg)
			}
		})
	}
}

func TestUpdateApply(t *testing.T) {
	base := func() *PromoCode {
		p, err := NewPromoCode(CreateInput{Code: "X1", PromoType: Percentage, AmountOff: "10", Stock: ptr(int64(5)),
			Metadata: map[string]string{"a": "1", "b": "2"}}, testNow)
		if err != nil {
			t.Fatal(err)
		}
		p.ID, p.Stripe.State = "pc_1", SyncReady
		return p
	}
	tests := []struct {
		name    string
		in      UpdateInput
		prep    func(*PromoCode)
		param   string // "" = expect success
		errCode Code
		check   func(t *testing.T, n *PromoCode)
	}{
		{name: "deactivate", in: UpdateInput{Status: ptr(StatusInactive)}, check: func(t *testing.T, n *PromoCode) {
			if n.Status != StatusInactive || n.WantStripeActive() {
				t.Fatal(n.Status)
			}
		}},
		{name: "archive", in: UpdateInput{Status: ptr(StatusArchived)}, check: func(t *testing.T, n *PromoCode) {
			if n.Status != StatusArchived {
				t.Fatal(n.Status)
			}
		}},
		{name: "bad status", in: UpdateInput{Status: ptr(Status("gone"))}, param: "status", errCode: CodeInvalidRequest},
		{name: "from archived", in: UpdateInput{Status: ptr(StatusActive)}, prep: func(p *PromoCode) { p.Status = StatusArchived }, errCode: CodeConflict},
		{name: "while provisioning", in: UpdateInput{Stock: ptr(int64(1))}, prep: func(p *PromoCode) { p.Stripe.State = SyncProvisioning }, errCode: CodeConflict},
		{name: "stock to zero", in: UpdateInput{Stock: ptr(int64(0))}, check: func(t *testing.T, n *PromoCode) {
			if n.Stock != 0 || n.WantStripeActive() {
				t.Fatal(n.Stock)
			}
		}},
		{name: "negative stock", in: UpdateInput{Stock: ptr(int64(-1))}, param: "stock", errCode: CodeInvalidRequest},
		{name: "stock with unlimited", in: UpdateInput{Stock: ptr(int64(3)), UnlimitedStock: ptr(true)}, param: "stock", errCode: CodeInvalidRequest},
		{name: "unlimited on", in: UpdateInput{UnlimitedStock: ptr(true)}, check: func(t *testing.T, n *PromoCode) {
			if !n.UnlimitedStock {
				t.Fatal("want unlimited")
			}
		}},
		{name: "unlimited off needs stock", in: UpdateInput{UnlimitedStock: ptr(false)}, prep: func(p *PromoCode) { p.UnlimitedStock = true }, param: "stock", errCode: CodeInvalidRequest},
		{name: "expiration set", in: UpdateInput{ExpirationSet: true, Expiration: ptr(testNow.Add(48 * time.Hour))}, check: func(t *testing.T, n *PromoCode) {
			if n.ExpiresAt == nil || !n.ExpiresAt.Equal(testNow.Add(48*time.Hour)) {
				t.Fatal(n.ExpiresAt)
			}
		}},
		{name: "expiration past", in: UpdateInput{ExpirationSet: true, Expiration: ptr(testNow.Add(-time.Hour))}, param: "expiration_datetime", errCode: CodeInvalidRequest},
		{name: "expiration removed", in: UpdateInput{ExpirationSet: true}, prep: func(p *PromoCode) { p.ExpiresAt = ptr(testNow.Add(time.Hour)) }, check: func(t *testing.T, n *PromoCode) {
			if n.ExpiresAt != nil {
				t.Fatal(n.ExpiresAt)
			}
		}},
		{name: "metadata merge and delete", in: UpdateInput{Metadata: map[string]string{"a": "", "c": "3"}}, check: func(t *testing.T, n *PromoCode) {
			if len(n.Metadata) != 2 || n.Metadata["b"] != "2" || n.Metadata["c"] != "3" {
				t.Fatal(n.Metadata)
			}
		}},
		{name: "metadata reserved", in: UpdateInput{Metadata: map[string]string{MetaPromoCode: "x"}}, param: "metadata", errCode: CodeInvalidRequest},
		{name: "metadata over the maximum", in: UpdateInput{Metadata: metadataOf(MaxMetadataKeys-1, 10, 1)}, param: "metadata", errCode: CodeInvalidRequest},
		{name: "a code made before the maximum was lowered can still be archived", in: UpdateInput{Status: ptr(StatusArchived)},
			prep: func(p *PromoCode) { p.Metadata = metadataOf(47, 40, 500) }, check: func(t *testing.T, n *PromoCode) {
				if n.Status != StatusArchived || len(n.Metadata) != 47 {
					t.Fatal(n.Status, len(n.Metadata))
				}
			}},
		{name: "immutable amount", in: UpdateInput{Immutable: []string{"amount_off", "currency"}}, param: "amount_off", errCode: CodeInvalidRequest},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := base()
			if tt.prep != nil {
				tt.prep(p)
			}
			before := p.Metadata["a"]
			n, err := tt.in.Apply(p, testNow)
			if p.Metadata["a"] != before {
				t.Fatal("Apply changed its input")
			}
			if tt.errCode != "" {
				var pe *Error
				if !errors.As(err, &pe) || pe.Code != tt.errCode || pe.Param != tt.param {
					t.Fatalf("want %s param %q, got %v", tt.errCode, tt.param, err)
				}
				if len(tt.in.Immutable) > 0 && !strings.Contains(pe.Message, "new code") {
					t.Fatalf("immutable message should say a new code is needed: %s", pe.Message)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			tt.check(t, n)
		})
	}
}

func TestDecimalRoundTrip(t *testing.T) {
	tests := []struct {
		in   string
		exp  int
		want int64
		back string
	}{
		{"0.01", 2, 1, "0.01"}, {"10", 2, 1000, "10.00"}, {"007.5", 2, 750, "7.50"},
		{"99999999", 0, 99999999, "99999999"}, {"0.010", 3, 10, "0.010"}, {"12.5", 2, 1250, "12.50"},
	}
	for _, tt := range tests {
		got, msg := ParseDecimal(tt.in, tt.exp, MaxAmountMinor)
		if msg != "" || got != tt.want || FormatDecimal(got, tt.exp) != tt.back {
			t.Errorf("ParseDecimal(%q,%d) = %d %q, format %q", tt.in, tt.exp, got, msg, FormatDecimal(got, tt.exp))
		}
	}
	if _, msg := ParseDecimal("99999999999999999999", 2, MaxAmountMinor); msg != "is too large" {
		t.Errorf("overflow: %q", msg)
	}
}

func TestStripeKeyIsDeterministicAndHidesTheInboundKey(t *testing.T) {
	a, b := StripeKey("admin\x00key-1", "coupon:pc_1"), StripeKey("admin\x00key-1", "coupon:pc_1")
	if a != b || a == StripeKey("admin\x00key-1", "promotion_code:pc_1") || a == StripeKey("other\x00key-1", "coupon:pc_1") {
		t.Fatal("keys must depend exactly on request key and step")
	}
	if strings.Contains(a, "key-1") || len(a) > 255 {
		t.Fatal(a)
	}
}

// longPrices returns n distinct price IDs of length characters.
func longPrices(n, length int) []string {
	out := make([]string, n)
	for i := range out {
		id := fmt.Sprintf("price_%03d", i)
		out[i] = id + strings.Repeat("x", length-len(id))
	}
	return out
}

// A code's promo_code_config is checked at create in the longest form it can
// take, so no later update (status, stock, a reason) makes it too long for
// Stripe: whatever plan IDs are accepted, the config still fits after them.
func TestStripeConfigFitsAfterAnyUpdate(t *testing.T) {
	for length := 10; length <= 80; length++ {
		for n := 1; n <= MaxPlanIDs; n++ {
			in := okPercentage()
			in.PlanIDs, in.ExistingMembershipsOnly = longPrices(n, length), true
			p, err := NewPromoCode(in, testNow)
			if err != nil {
				continue // refused at create: fine
			}
			p.Status, p.StatusReason = StatusArchived, ReasonCouponDeleted
			p.UnlimitedStock, p.Stock, p.Held = false, MaxStock, MaxStock
			p.CreatedAt = time.Date(2026, 11, 21, 12, 0, 0, 123_456_789, time.UTC)
			if got := len(StripeConfigOf(p).Encode()); got > maxMetadataValue {
				t.Fatalf("%d plan IDs of %d characters were accepted, but the config grows to %d characters", n, length, got)
			}
		}
	}
}

// The budget in checks.go holds for the adapter's actual keys.
func TestMetadataBudget(t *testing.T) {
	if n := MaxMetadataKeys + MaxSubscriptionMetadataKeys + len(subscriptionMetadataKeys); n > StripeMetadataKeys {
		t.Errorf("a subscription made by subscribe may need %d keys", n)
	}
	if n := 2*MaxMetadataKeys + len(reservedMetadataKeys); n > StripeMetadataKeys {
		t.Errorf("an update replacing every key sends the coupon %d keys", n)
	}
}

// A subscription takes a code while its own metadata and the adapter's 4 keys
// fit Stripe's 50; keys the adapter wrote there before count once.
func TestCheckMetadataRoom(t *testing.T) {
	withAdapterKeys := func(md map[string]string, n int) map[string]string {
		for _, k := range subscriptionMetadataKeys[:n] {
			md[k] = "x"
		}
		return md
	}
	tests := []struct {
		name string
		md   map[string]string
		ok   bool
	}{
		{"none", nil, true},
		{"46 of its own", metadataOf(46, 10, 1), true},
		{"47 of its own", metadataOf(47, 10, 1), false},
		{"46 of its own and the adapter's from an earlier code", withAdapterKeys(metadataOf(46, 10, 1), 4), true},
		{"47 with one of the adapter's", withAdapterKeys(metadataOf(46, 10, 1), 1), true},
		{"48 with one of the adapter's", withAdapterKeys(metadataOf(47, 10, 1), 1), false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := checkMetadataRoom(&Subscription{ID: "sub_1", Metadata: tt.md})
			if (err == nil) != tt.ok || (err != nil && (err.Code != CodeConflict || err.Param != "subscription")) {
				t.Fatalf("got %v, want ok=%v", err, tt.ok)
			}
		})
	}
}

// manyPrices returns n distinct Stripe-length price IDs.
func manyPrices(n int) []string {
	out := make([]string, n)
	for i := range out {
		out[i] = fmt.Sprintf("price_1MoBy5LkdIwHu7ixZhnat%03d", i)
	}
	return out
}

func TestStripeConfigRoundTrip(t *testing.T) {
	p, err := NewPromoCode(CreateInput{Code: "CFG", PromoType: Percentage, AmountOff: "5", Stock: ptr(int64(7)),
		ExistingMembershipsOnly: true, PlanIDs: manyPrices(MaxPlanIDs)}, testNow)
	if err != nil {
		t.Fatalf("%d Stripe-length plan IDs must fit: %v", MaxPlanIDs, err)
	}
	p.Held, p.CreatedAt = 3, testNow
	got, err := ParseStripeConfig(StripeConfigOf(p).Encode())
	if err != nil {
		t.Fatal(err)
	}
	if got.Status != StatusActive || got.Limit == nil || *got.Limit != 10 || !got.ExistingMembershipsOnly ||
		len(got.PlanIDs) != MaxPlanIDs || !got.CreatedAt.Equal(testNow) {
		t.Fatalf("config %+v", got)
	}
	p.UnlimitedStock = true
	if c := StripeConfigOf(p); c.Limit != nil {
		t.Fatalf("unlimited code has a limit %v", *c.Limit)
	}
	for _, bad := range []string{"", "{", `{"v":2,"st":"active"}`} {
		if _, err := ParseStripeConfig(bad); err == nil {
			t.Errorf("ParseStripeConfig(%q) accepted", bad)
		}
	}
}
