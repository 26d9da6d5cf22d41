package promo

import (
	"fmt"
	"sort"
	"strings"
	"time"
)

// PromoType says how AmountOff is read.
type PromoType string

const (
	Percentage PromoType = "percentage"  // AmountOff in hundredths of a percent
	FlatAmount PromoType = "flat_amount" // AmountOff in minor units of Currency
)

// Duration is how long a redemption discounts a subscription (Stripe's coupon
// duration).
type Duration string

const (
	Once      Duration = "once"
	Repeating Duration = "repeating"
	Forever   Duration = "forever"
)

// Status is the admin-controlled lifecycle of a code.
type Status string

const (
	StatusActive   Status = "active"
	StatusInactive Status = "inactive"
	StatusArchived Status = "archived" // terminal; frees the code text for reuse
)

// SyncState tells whether the Stripe mirror of a code is complete.
type SyncState string

const (
	// SyncProvisioning: the code text is claimed and its Stripe objects are
	// being created. It cannot be redeemed; a retry of the create finishes it.
	SyncProvisioning SyncState = "provisioning"
	// SyncReady: the coupon and promotion code exist in Stripe.
	SyncReady SyncState = "ready"
)

// PromoCode is one code of the catalog. Counters (Stock, Reserved, Uses) are
// owned by the store and changed atomically there.
type PromoCode struct {
	ID        string
	Code      string // upper-case letters and digits
	PromoType PromoType
	// AmountOff is hundredths of a percent for Percentage and minor units of
	// Currency for FlatAmount.
	AmountOff      int64
	Currency       string // lower-case ISO code; FlatAmount only
	Duration       Duration
	DurationMonths int // billing cycles for Repeating; 0 otherwise
	ExpiresAt      *time.Time

	NewUsersOnly            bool
	ExistingMembershipsOnly bool
	PlanIDs                 []string // Stripe price IDs
	PlanProducts            []string // the Stripe products of PlanIDs (coupon applies_to)
	// ManyPerCustomer lifts the rule of one use per customer: a campaign
	// created with once_per_customer: false, whose customers may each
	// redeem several of its codes (each code still single-use, one code per
	// subscription). Always false for a promo code; the zero value is the
	// rule (once per customer), so records written before the option read
	// as they were meant.
	ManyPerCustomer bool

	Stock          int64 // units left to hand out (ignored when UnlimitedStock)
	UnlimitedStock bool
	Reserved       int64 // units held by applies not yet confirmed by Stripe
	Held           int64 // units held by redemptions (reserved or not); Stock + Held is the limit
	Uses           int64 // redemptions that reached a paid discounted invoice
	// Discounted sums the discount of paid invoices per currency (minor units).
	Discounted map[string]int64

	Status Status
	// StatusReason says why the adapter made the code inactive by itself
	// (ReasonCouponDeleted); empty when an admin set the status.
	StatusReason string
	Metadata     map[string]string
	CreatedAt    time.Time
	UpdatedAt    time.Time

	Stripe StripeRefs
}

// StripeRefs links a code to its Stripe mirror.
type StripeRefs struct {
	CouponID        string
	PromotionCodeID string
	// Active and ExpiresAt are what the Stripe promotion code carries now.
	Active    bool
	ExpiresAt *time.Time
	State     SyncState
	// Owner is the request that is provisioning the code and LeaseUntil when
	// another request may take it over (SyncProvisioning only).
	Owner      string
	LeaseUntil time.Time
	// ActiveSwitches counts background switches of Active; it makes each
	// switch's Stripe idempotency key unique and stable across retries.
	ActiveSwitches int
	// TimesRedeemed is Stripe's count of the coupon's redemptions (through
	// the promotion code or not), the highest a webhook or reconcile reported.
	TimesRedeemed int64
}

// ReasonCouponDeleted is the StatusReason of a code whose Stripe coupon was
// deleted: it can never be redeemed again.
const ReasonCouponDeleted = "stripe_coupon_deleted"

// OncePerCustomer reports whether a customer may hold only one redemption
// of the code (of any of a campaign's codes): every promo code, and every
// campaign unless created with once_per_customer: false.
func (p *PromoCode) OncePerCustomer() bool { return !p.ManyPerCustomer }

// AmountExponent is the number of decimals AmountOff carries.
func (p *PromoCode) AmountExponent() int {
	if p.PromoType == Percentage {
		return 2
	}
	e, _ := CurrencyExponent(p.Currency)
	return e
}

// AmountOffDecimal renders AmountOff exactly in major units (or percent).
func (p *PromoCode) AmountOffDecimal() string {
	return FormatDecimal(p.AmountOff, p.AmountExponent())
}

// Expired reports whether the code's expiration has passed at now.
func (p *PromoCode) Expired(now time.Time) bool {
	return p.ExpiresAt != nil && !now.Before(*p.ExpiresAt)
}

// WantStripeActive is the `active` flag the Stripe promotion code must carry so
// that Stripe Checkout cannot redeem what the adapter would refuse. While
// reservations are in flight it stays on even at zero stock: they are about
// to redeem it in Stripe. The redemption scripts compute the same predicate.
func (p *PromoCode) WantStripeActive() bool {
	return p.Status == StatusActive && (p.UnlimitedStock || p.Stock > 0 || p.Reserved > 0)
}

// TermsKey is a canonical text of everything an admin set when creating the
// code. Two create requests with the same TermsKey describe the same code, so
// the second may finish an unfinished first one.
func (p *PromoCode) TermsKey() string {
	keys := make([]string, 0, len(p.Metadata))
	for k := range p.Metadata {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	var b strings.Builder
	fmt.Fprintf(&b, "%s|%s|%d|%s|%s|%d|", p.Code, p.PromoType, p.AmountOff, p.Currency, p.Duration, p.DurationMonths)
	if p.ExpiresAt != nil {
		b.WriteString(p.ExpiresAt.UTC().Format(time.RFC3339Nano))
	}
	fmt.Fprintf(&b, "|%t|%t|%s|%d|%t|%s", p.NewUsersOnly, p.ExistingMembershipsOnly, strings.Join(p.PlanIDs, ","),
		p.Stock, p.UnlimitedStock, p.Status)
	for _, k := range keys {
		fmt.Fprintf(&b, "|%q=%q", k, p.Metadata[k])
	}
	return b.String()
}

func timesEqual(a, b *time.Time) bool {
	if a == nil || b == nil {
		return a == nil && b == nil
	}
	return a.Equal(*b)
}
