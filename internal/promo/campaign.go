package promo

import (
	"crypto/rand"
	"fmt"
	"math"
	"strings"
	"time"
)

// A campaign is one set of terms (as a promo code: type, amount, duration,
// expiry, plans, audience rules, metadata, status) and many generated codes,
// each redeemable once. Its codes are texts only: no per-code record beyond
// the text's index entry and the campaign's list of texts, so a campaign of
// 100,000 codes costs Redis about 100,000 small keys (README "Campaigns").
//
// Decisions (issue 13, where DESIGN.md is silent):
//   - A campaign has one Stripe coupon (ID = the campaign ID), made when the
//     campaign is created, before the 202. Its codes get no Stripe object.
//   - Generated texts are Prefix + CodeLength characters of CodeAlphabet,
//     drawn with crypto/rand; they are unique across promo codes and every
//     campaign, claimed on the same per-text key as a promo code's text.
//   - Status, expiry and metadata are the campaign's, for all its codes at
//     once; the terms of the discount cannot change (a new campaign is needed,
//     as for a promo code's amount).
//   - One use of the campaign per customer (once_per_customer, default
//     true): a customer who holds a redemption of one of its codes is
//     refused another (already_redeemed_by_customer), as for a promo code.
//     A campaign created with once_per_customer: false lets one customer
//     redeem several of its codes, each still single-use and each on its
//     own subscription (one code per subscription). It is a term: it cannot
//     change after create (customers may already hold codes under it).
//   - Its coupon deleted in Stripe (coupon.deleted), a campaign is inactive
//     for good, as a promo code is (Terms.StatusReason ReasonCouponDeleted):
//     every code refused with code_inactive, status active refused (409),
//     no more promotion codes made. Discounts already running keep running
//     in Stripe, so their ledger lines end by the usual rules.

// CodeAlphabet is the alphabet of generated codes: digits and upper-case
// letters without the look-alikes 0/O, 1/I/L, and U (V/U): 30 characters.
// Customers may type codes in any case (texts are upper-cased on lookup).
const CodeAlphabet = "23456789ABCDEFGHJKMNPQRSTVWXYZ"

// Campaign limits.
const (
	MaxCampaignCodes = 100_000
	// MinCampaignCodeLength is 39 bits: 30^8 = 6.6e11 texts, so even a
	// full campaign of 100,000 codes fills 1.5e-7 of them (a drawn text
	// is fresh with that probability, and a guess finds a code with it).
	MinCampaignCodeLength = 8
	MaxCampaignCodeLength = 32 // with the prefix, at most MaxCodeLength
	DefaultCodeLength     = 12 // 58.9 bits
	MaxCampaignPrefix     = 16
	MaxCampaignName       = 200
)

// BitsPerCodeChar is the entropy of one generated character: log2(30).
var BitsPerCodeChar = math.Log2(float64(len(CodeAlphabet)))

// CodeEntropyBits is the entropy of a generated code of length n.
func CodeEntropyBits(n int) float64 { return float64(n) * BitsPerCodeChar }

// CampaignState tells whether a campaign's codes are all generated.
type CampaignState string

const (
	// CampaignGenerating: codes are being generated in the background; the
	// codes generated so far are already redeemable.
	CampaignGenerating CampaignState = "generating"
	// CampaignReady: every code exists.
	CampaignReady CampaignState = "ready"
)

// Campaign is a set of unique single-use codes sharing one set of terms.
type Campaign struct {
	ID         string // "cmp_" + ULID
	Name       string
	Prefix     string // upper-case letters and digits, may be empty
	Count      int    // codes asked for
	CodeLength int    // random characters after the prefix
	// Terms holds the discount, rules, status, expiry, metadata and Stripe
	// coupon of every code of the campaign (Code, stock and counters unused).
	Terms     PromoCode
	State     CampaignState
	Generated int // codes generated so far
	Mirrored  int // codes with a Stripe promotion code (on demand)
	// Redeemed counts the codes whose single use a redemption holds now
	// (Redemption.HoldsUse of the line that took the code): a code given
	// back (its redemption ended before a paid invoice) no longer counts.
	Redeemed  int
	CreatedAt time.Time
	UpdatedAt time.Time
}

// CouponGone reports whether the campaign's coupon was deleted in Stripe
// (Campaigns.CouponDeleted): inactive for good.
func (c *Campaign) CouponGone() bool {
	return c.Terms.StatusReason == ReasonCouponDeleted && c.Terms.Status != StatusActive
}

// IsCampaignCode reports whether p is a campaign code's view: ID the
// campaign's (its ledger and coupon), Code the unique text, Stock 1 while
// the text is free and 0 once a redemption holds it.
func (p *PromoCode) IsCampaignCode() bool { return strings.HasPrefix(p.ID, "cmp_") }

// uniqueCode is the text a redemption of p takes, for a campaign code.
func uniqueCode(p *PromoCode) string {
	if p.IsCampaignCode() {
		return p.Code
	}
	return ""
}

// campaignCoupon is the coupon a campaign code is applied with.
func campaignCoupon(p *PromoCode) string {
	if p.IsCampaignCode() {
		return p.Stripe.CouponID
	}
	return ""
}

// CodeTextLength is the length of every code of the campaign.
func (c *Campaign) CodeTextLength() int { return len(c.Prefix) + c.CodeLength }

// CampaignInput is a create request.
type CampaignInput struct {
	Name       string
	Prefix     string
	Count      int64
	CodeLength *int64
	// OncePerCustomer is once_per_customer: nil = true (one code of the
	// campaign per customer).
	OncePerCustomer *bool
	// Terms is checked as a promo code's create (Code, Stock and
	// UnlimitedStock must be empty: a campaign code is single-use).
	Terms CreateInput
}

// NewCampaign checks in and builds the campaign it describes (without ID,
// timestamps or Stripe refs).
func NewCampaign(in CampaignInput, now time.Time) (*Campaign, error) {
	c := &Campaign{Name: strings.TrimSpace(in.Name), Prefix: NormalizeCode(in.Prefix), State: CampaignGenerating}
	switch {
	case c.Name == "":
		return nil, Invalid("name", "name is required")
	case len(c.Name) > MaxCampaignName:
		return nil, Invalid("name", "name must be at most %d characters", MaxCampaignName)
	}
	if len(c.Prefix) > MaxCampaignPrefix {
		return nil, Invalid("prefix", "prefix must be at most %d characters", MaxCampaignPrefix)
	}
	for i := 0; i < len(c.Prefix); i++ {
		if ch := c.Prefix[i]; !(ch >= 'A' && ch <= 'Z' || ch >= '0' && ch <= '9') {
			return nil, Invalid("prefix", "prefix may contain only letters A-Z and digits 0-9")
		}
	}
	if in.Count < 1 || in.Count > MaxCampaignCodes {
		return nil, Invalid("count", "count must be between 1 and %d", MaxCampaignCodes)
	}
	c.Count = int(in.Count)
	c.CodeLength = DefaultCodeLength
	if in.CodeLength != nil {
		if *in.CodeLength < MinCampaignCodeLength || *in.CodeLength > MaxCampaignCodeLength {
			return nil, Invalid("code_length", "code_length must be between %d and %d", MinCampaignCodeLength, MaxCampaignCodeLength)
		}
		c.CodeLength = int(*in.CodeLength)
	}
	switch {
	case in.Terms.Code != "":
		return nil, Invalid("code", "a campaign's codes are generated: give prefix and code_length instead of code")
	case in.Terms.Stock != nil || in.Terms.UnlimitedStock != nil:
		return nil, Invalid("stock", "every code of a campaign is single-use: count sets how many there are")
	}
	if err := checkCampaignMetadataKeys(in.Terms.Metadata); err != nil {
		return nil, err
	}
	terms := in.Terms
	terms.Code = "CAMPAIGN" // a placeholder the checks accept; campaigns have no text of their own
	unlimited := true
	terms.UnlimitedStock = &unlimited
	p, err := NewPromoCode(terms, now)
	if err != nil {
		return nil, err
	}
	p.Code = ""
	p.ManyPerCustomer = in.OncePerCustomer != nil && !*in.OncePerCustomer
	c.Terms = *p
	return c, nil
}

// checkCampaignMetadataKeys refuses the keys the adapter writes on a
// campaign's Stripe coupon (campaign_id, once_per_customer) besides those
// reserved on every code.
func checkCampaignMetadataKeys(md map[string]string) *Error {
	for _, k := range []string{MetaCampaignID, MetaOncePerCustomer} {
		if _, ok := md[k]; ok {
			return Invalid("metadata", "metadata key %q is reserved by the adapter on a campaign", k)
		}
	}
	return nil
}

// CampaignUpdate changes a campaign's status, expiry or metadata (nil or
// unset fields stay).
type CampaignUpdate struct {
	Status        *Status
	ExpirationSet bool
	Expiration    *time.Time // nil with ExpirationSet: no expiry
	Metadata      map[string]string
	Immutable     []string // fields the request tried to change that cannot change
}

// ApplyCampaignUpdate checks u against c at now and returns the updated copy.
func ApplyCampaignUpdate(c *Campaign, u CampaignUpdate, now time.Time) (*Campaign, error) {
	if len(u.Immutable) > 0 {
		return nil, Invalid(u.Immutable[0], "%s cannot change on a campaign: its coupon in Stripe is immutable; create a new campaign", u.Immutable[0])
	}
	next := *c
	next.Terms.Metadata = copyMetadata(c.Terms.Metadata)
	if u.Status != nil {
		switch *u.Status {
		case StatusActive, StatusInactive, StatusArchived:
		default:
			return nil, Invalid("status", "status must be active, inactive or archived")
		}
		if c.Terms.Status == StatusArchived && *u.Status != StatusArchived {
			return nil, Invalid("status", "an archived campaign cannot be reactivated")
		}
		if c.Terms.StatusReason == ReasonCouponDeleted && *u.Status == StatusActive {
			return nil, &Error{Code: CodeConflict, Param: "status",
				Message: "campaign " + c.ID + " cannot be activated: its Stripe coupon was deleted; create a new campaign"}
		}
		next.Terms.Status = *u.Status
	}
	if u.ExpirationSet {
		if u.Expiration == nil {
			next.Terms.ExpiresAt = nil
		} else {
			if err := checkExpiration(*u.Expiration, now); err != nil {
				return nil, err
			}
			t := u.Expiration.UTC()
			next.Terms.ExpiresAt = &t
		}
	}
	if u.Metadata != nil {
		for k, v := range u.Metadata {
			if v == "" {
				delete(next.Terms.Metadata, k)
			} else {
				next.Terms.Metadata[k] = v
			}
		}
		if err := CheckMetadata(next.Terms.Metadata); err != nil {
			return nil, err
		}
		if err := checkCampaignMetadataKeys(next.Terms.Metadata); err != nil {
			return nil, err
		}
	}
	next.UpdatedAt = now
	return &next, nil
}

// CodeGenerator draws code texts with crypto/rand.
type CodeGenerator struct {
	Prefix string
	Length int
}

// Generate returns n texts (not necessarily distinct: the store's claim
// decides). Each character is uniform over CodeAlphabet (rejection
// sampling: bytes >= 240 are drawn again, so no character is favoured).
func (g CodeGenerator) Generate(n int) ([]string, error) {
	out := make([]string, n)
	buf := make([]byte, g.Length*n*9/8+64)
	pos := len(buf)
	next := func() (byte, error) {
		for {
			if pos == len(buf) {
				if _, err := rand.Read(buf); err != nil {
					return 0, fmt.Errorf("crypto/rand: %w", err)
				}
				pos = 0
			}
			b := buf[pos]
			pos++
			if b < 240 { // 240 = 8 * 30
				return CodeAlphabet[b%30], nil
			}
		}
	}
	text := make([]byte, len(g.Prefix)+g.Length)
	copy(text, g.Prefix)
	for i := range out {
		for j := len(g.Prefix); j < len(text); j++ {
			ch, err := next()
			if err != nil {
				return nil, err
			}
			text[j] = ch
		}
		out[i] = string(text)
	}
	return out, nil
}

// IsCampaignText reports whether text could be a code of c (prefix, length
// and alphabet), so a lookup can refuse a wrong text without a round trip.
func (c *Campaign) IsCampaignText(text string) bool {
	if len(text) != c.CodeTextLength() || !strings.HasPrefix(text, c.Prefix) {
		return false
	}
	for i := len(c.Prefix); i < len(text); i++ {
		if strings.IndexByte(CodeAlphabet, text[i]) < 0 {
			return false
		}
	}
	return true
}

// CampaignCode is one generated code as the codes list and the export show it.
type CampaignCode struct {
	Code       string
	Redeemed   bool
	Redemption *CodeRedemption // when redeemed
	// PromotionCodeID is the Stripe promotion code made on demand, if any.
	PromotionCodeID string
	// PromotionCodeActive is the active flag that promotion code is known
	// to carry (its create, the adapter's last switch, or the last
	// promotion_code.updated read back from Stripe); nil when not known.
	PromotionCodeActive *bool
}

// CodeRedemption is who holds a campaign code.
type CodeRedemption struct {
	ID           string
	Customer     string
	Subscription string
	At           time.Time
}

// CampaignCodesFilter selects a page of a campaign's codes, in generation
// order.
type CampaignCodesFilter struct {
	Redeemed      *bool
	Limit         int
	StartingAfter string // a code text of the previous page
}
