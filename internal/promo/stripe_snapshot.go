package promo

import (
	"context"
	"time"
)

// What reconcile reads of Stripe to rebuild and check the adapter's state.

// StripeCoupon is a coupon.
type StripeCoupon struct {
	ID         string
	Name       string
	PercentOff string // exact decimal text such as "12.5"; "" for an amount-off coupon
	AmountOff  int64  // minor units
	Currency   string
	Duration   Duration
	Months     int      // duration_in_months
	ProductIDs []string // applies_to.products
	Metadata   map[string]string
	// TimesRedeemed is Stripe's count of the coupon's redemptions.
	TimesRedeemed int64
	Created       time.Time
}

// StripePromotionCode is a promotion code.
type StripePromotionCode struct {
	ID                   string
	Code                 string
	CouponID             string
	Active               bool
	ExpiresAt            *time.Time
	FirstTimeTransaction bool
	Metadata             map[string]string
	Created              time.Time
}

// StripeDiscount is a discount as a subscription or an invoice shows it.
type StripeDiscount struct {
	ID              string
	CouponID        string
	PromotionCodeID string
	Customer        string
	Subscription    string
	Start           time.Time
	End             time.Time // zero unless the coupon repeats
}

// StripeSubscription is a subscription of any status.
type StripeSubscription struct {
	ID       string
	Customer string
	Status   string
	Created  time.Time
	// CanceledAt is when a canceled subscription was canceled.
	CanceledAt time.Time
	Discount   *StripeDiscount
	Metadata   map[string]string
}

// StripeInvoice is a paid invoice.
type StripeInvoice struct {
	ID           string
	Customer     string
	Subscription string
	Currency     string
	AmountPaid   int64
	PaidAt       time.Time
	Discount     *StripeDiscount
	// DiscountAmount is the invoice's total_discount_amounts entry for
	// Discount, minor units.
	DiscountAmount int64
}

// StripeReader pages through Stripe's lists for reconcile, calling fn for
// each object in Stripe's order; fn's error stops the walk and is returned.
type StripeReader interface {
	EachCoupon(ctx context.Context, fn func(StripeCoupon) error) error
	EachPromotionCode(ctx context.Context, fn func(StripePromotionCode) error) error
	EachSubscription(ctx context.Context, fn func(StripeSubscription) error) error
	// EachPaidInvoice walks paid invoices created at or after since.
	EachPaidInvoice(ctx context.Context, since time.Time, fn func(StripeInvoice) error) error
}
