package promo

import (
	"math"
	"strconv"
	"strings"
	"testing"
	"time"
)

func TestCodeAlphabetHasNoLookAlikes(t *testing.T) {
	for _, ch := range "01OILU" {
		if strings.ContainsRune(CodeAlphabet, ch) {
			t.Errorf("alphabet holds look-alike %q", ch)
		}
	}
	seen := map[rune]bool{}
	for _, ch := range CodeAlphabet {
		if seen[ch] || !(ch >= 'A' && ch <= 'Z' || ch >= '2' && ch <= '9') {
			t.Errorf("alphabet character %q repeated or not upper-case alphanumeric", ch)
		}
		seen[ch] = true
	}
	if got := CodeEntropyBits(DefaultCodeLength); math.Abs(got-58.88) > 0.01 {
		t.Errorf("entropy of %d characters = %.2f bits, want 58.88", DefaultCodeLength, got)
	}
}

func TestGenerateShapeAndUniformity(t *testing.T) {
	g := CodeGenerator{Prefix: "SPRING", Length: 10}
	codes, err := g.Generate(30000)
	if err != nil {
		t.Fatal(err)
	}
	c := &Campaign{Prefix: "SPRING", CodeLength: 10}
	counts := map[byte]int{}
	distinct := map[string]bool{}
	for _, code := range codes {
		if !c.IsCampaignText(code) {
			t.Fatalf("%q is not a code of the campaign", code)
		}
		if CheckCodeText(code) != nil {
			t.Fatalf("%q is not a valid code text", code)
		}
		distinct[code] = true
		for i := len("SPRING"); i < len(code); i++ {
			counts[code[i]]++
		}
	}
	if len(distinct) != len(codes) {
		t.Errorf("%d distinct of %d codes (a repeat among 30^10 is astronomically unlikely)", len(distinct), len(codes))
	}
	// 300,000 characters over 30 symbols: 10,000 each, sd ~98. A modulo
	// bias (256 % 30 = 16 favoured symbols) would put some at ~10,600.
	if len(counts) != len(CodeAlphabet) {
		t.Fatalf("%d symbols used, want %d", len(counts), len(CodeAlphabet))
	}
	for ch, n := range counts {
		if n < 9500 || n > 10500 {
			t.Errorf("symbol %q drawn %d times of 300,000, want about 10,000", ch, n)
		}
	}
}

func campaignInput() CampaignInput {
	return CampaignInput{Name: "Spring cards", Prefix: "sp", Count: 1000,
		Terms: CreateInput{PromoType: Percentage, AmountOff: "15", PromoDurationMonths: ptr64(3),
			Metadata: map[string]string{"channel": "mail"}}}
}

func ptr64(n int64) *int64 { return &n }

func TestNewCampaign(t *testing.T) {
	now := time.Date(2026, 12, 1, 0, 0, 0, 0, time.UTC)
	c, err := NewCampaign(campaignInput(), now)
	if err != nil {
		t.Fatal(err)
	}
	if c.Prefix != "SP" || c.CodeLength != DefaultCodeLength || c.State != CampaignGenerating ||
		c.Terms.AmountOff != 1500 || c.Terms.Duration != Repeating || c.Terms.Status != StatusActive ||
		c.Terms.Code != "" || c.Terms.Metadata["channel"] != "mail" {
		t.Fatalf("campaign %+v", c)
	}
	past := now.Add(-time.Hour)
	for _, tc := range []struct {
		name, param string
		edit        func(*CampaignInput)
	}{
		{"no name", "name", func(in *CampaignInput) { in.Name = " " }},
		{"long name", "name", func(in *CampaignInput) { in.Name = strings.Repeat("n", MaxCampaignName+1) }},
		{"prefix symbol", "prefix", func(in *CampaignInput) { in.Prefix = "SP-" }},
		{"long prefix", "prefix", func(in *CampaignInput) { in.Prefix = strings.Repeat("P", MaxCampaignPrefix+1) }},
		{"zero count", "count", func(in *CampaignInput) { in.Count = 0 }},
		{"too many", "count", func(in *CampaignInput) { in.Count = MaxCampaignCodes + 1 }},
		{"short", "code_length", func(in *CampaignInput) { in.CodeLength = ptr64(MinCampaignCodeLength - 1) }},
		{"long", "code_length", func(in *CampaignInput) { in.CodeLength = ptr64(MaxCampaignCodeLength + 1) }},
		{"code given", "code", func(in *CampaignInput) { in.Terms.Code = "X" }},
		{"stock given", "stock", func(in *CampaignInput) { in.Terms.Stock = ptr64(3) }},
		{"amount", "amount_off", func(in *CampaignInput) { in.Terms.AmountOff = "101" }},
		{"expired", "expiration_datetime", func(in *CampaignInput) { in.Terms.ExpirationDatetime = &past }},
		{"metadata", "metadata", func(in *CampaignInput) { in.Terms.Metadata = map[string]string{"promo_code_id": "x"} }},
		{"metadata naming the campaign", "metadata", func(in *CampaignInput) { in.Terms.Metadata = map[string]string{MetaCampaignID: "x"} }},
		{"metadata naming the rule", "metadata", func(in *CampaignInput) { in.Terms.Metadata = map[string]string{MetaOncePerCustomer: "x"} }},
	} {
		in := campaignInput()
		tc.edit(&in)
		_, err := NewCampaign(in, now)
		var e *Error
		if err == nil || !asError(err, &e) || e.Code != CodeInvalidRequest || e.Param != tc.param {
			t.Errorf("%s: got %v, want 400 on %s", tc.name, err, tc.param)
		}
	}
	if !c.Terms.OncePerCustomer() {
		t.Errorf("once_per_customer defaults to true")
	}
	for _, once := range []bool{true, false} {
		in := campaignInput()
		in.OncePerCustomer = &once
		c, err := NewCampaign(in, now)
		if err != nil || c.Terms.OncePerCustomer() != once {
			t.Errorf("once_per_customer %v: %+v %v", once, c, err)
		}
		if spec := campaignCouponSpec(c); spec.Metadata[MetaOncePerCustomer] != strconv.FormatBool(once) {
			t.Errorf("coupon metadata %v, want once_per_customer %v", spec.Metadata, once)
		}
	}
	in := campaignInput()
	in.Count, in.CodeLength = MaxCampaignCodes, ptr64(MinCampaignCodeLength)
	if _, err := NewCampaign(in, now); err != nil {
		t.Errorf("the shortest codes, as many as allowed: %v", err)
	}
}

func asError(err error, e **Error) bool {
	x, ok := err.(*Error)
	*e = x
	return ok
}

func TestApplyCampaignUpdate(t *testing.T) {
	now := time.Date(2026, 12, 1, 0, 0, 0, 0, time.UTC)
	c, err := NewCampaign(campaignInput(), now)
	if err != nil {
		t.Fatal(err)
	}
	inactive, archived, active := StatusInactive, StatusArchived, StatusActive
	later := now.Add(48 * time.Hour)
	next, err := ApplyCampaignUpdate(c, CampaignUpdate{Status: &inactive, ExpirationSet: true, Expiration: &later,
		Metadata: map[string]string{"channel": "", "wave": "2"}}, now)
	if err != nil {
		t.Fatal(err)
	}
	if next.Terms.Status != StatusInactive || !next.Terms.ExpiresAt.Equal(later) || next.Terms.Metadata["wave"] != "2" ||
		next.Terms.Metadata["channel"] != "" || c.Terms.Metadata["channel"] != "mail" || c.Terms.Status != StatusActive {
		t.Fatalf("update %+v (original %+v)", next.Terms, c.Terms)
	}
	arch, err := ApplyCampaignUpdate(next, CampaignUpdate{Status: &archived}, now)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := ApplyCampaignUpdate(arch, CampaignUpdate{Status: &active}, now); CodeOf(err) != CodeInvalidRequest {
		t.Errorf("reactivating an archived campaign: %v", err)
	}
	if _, err := ApplyCampaignUpdate(c, CampaignUpdate{Immutable: []string{"amount_off"}}, now); CodeOf(err) != CodeInvalidRequest {
		t.Errorf("changing amount_off: %v", err)
	}
	bogus := Status("paused")
	if _, err := ApplyCampaignUpdate(c, CampaignUpdate{Status: &bogus}, now); CodeOf(err) != CodeInvalidRequest {
		t.Errorf("status paused: %v", err)
	}
}
