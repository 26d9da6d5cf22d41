package promo

import (
	"context"
	"time"
)

// Clock is the source of time; tests inject a fixed or stepping clock.
type Clock interface{ Now() time.Time }

// SystemClock is the real clock.
type SystemClock struct{}

// Now returns the current time in UTC.
func (SystemClock) Now() time.Time { return time.Now().UTC() }

// ListFilter selects a page of codes, newest first.
type ListFilter struct {
	Status        Status // "" = active and inactive; "all" lists archived too
	Limit         int
	StartingAfter string // an ID from the previous page
	// Code, when set, finds the non-archived code with this text (any case):
	// a page of at most one code (the console's search).
	Code string
}

// StatusAll lists every code, archived included.
const StatusAll Status = "all"

// Page is one page of a list.
type Page[T any] struct {
	Data    []T
	HasMore bool
}

// ClaimResult says what BeginCreate found for a code text.
type ClaimResult int

const (
	ClaimNew    ClaimResult = iota // a new code was claimed; provision it
	ClaimResume                    // an unfinished create of the same code was taken over; finish it
)

// Store is the persistence the catalog needs. Implementations must make each
// method atomic and safe across replicas.
type Store interface {
	// BeginCreate claims draft.Code among non-archived codes for a new code
	// with draft.ID, owned by owner until lease ends. If the text belongs to
	// an unfinished code with the same terms whose owner is owner, or whose
	// lease has ended, the caller takes it over and gets that code back
	// (ClaimResume). Otherwise it fails with CodeConflict.
	BeginCreate(ctx context.Context, draft *PromoCode, owner string, now time.Time, lease time.Duration) (*PromoCode, ClaimResult, error)
	// SaveStripeRefs records Stripe progress of an unfinished code.
	SaveStripeRefs(ctx context.Context, id string, refs StripeRefs) error
	// ReleaseProvision ends owner's lease on an unfinished code at once (the
	// request failed and is no longer working on it), so any retry may resume.
	ReleaseProvision(ctx context.Context, code, owner string) error
	// FinishCreate marks the code ready and makes it visible in lists.
	FinishCreate(ctx context.Context, p *PromoCode) error
	// Get returns a code by ID (ErrNotFound when missing).
	Get(ctx context.Context, id string) (*PromoCode, error)
	// GetByCode returns the non-archived code with this text (ErrNotFound).
	GetByCode(ctx context.Context, code string) (*PromoCode, error)
	// List returns a page of ready codes.
	List(ctx context.Context, f ListFilter) (Page[*PromoCode], error)
	// Lock serializes changes to one code across replicas; unlock releases it.
	Lock(ctx context.Context, id string, ttl time.Duration) (unlock func(), err error)
	// SaveUpdate writes the admin-changeable fields of p (status, expiration,
	// stock when stockChanged, unlimited stock, metadata, Stripe refs) and
	// moves it between status lists; archiving frees its code text.
	SaveUpdate(ctx context.Context, prev, p *PromoCode, stockChanged bool) error
}

// CouponSpec is the Stripe coupon mirroring a code. Its Stripe ID is the
// promo code's ID, so a retry after an unanswered create can find it.
type CouponSpec struct {
	ID          string
	PromoCodeID string
	Name        string
	PercentOff  int64 // hundredths of a percent; 0 for flat
	AmountOff   int64 // minor units; 0 for percentage
	Currency    string
	Duration    Duration
	Months      int
	ProductIDs  []string // applies_to.products; empty = every product
	Metadata    map[string]string
}

// PromotionCodeSpec is the Stripe promotion code mirroring a code.
type PromotionCodeSpec struct {
	PromoCodeID          string
	Code                 string
	CouponID             string
	ExpiresAt            *time.Time
	FirstTimeTransaction bool
	Active               bool
	Metadata             map[string]string
}

// PromotionCodeUpdate changes a Stripe promotion code; nil fields stay.
type PromotionCodeUpdate struct {
	Active   *bool
	Metadata map[string]string // full desired user metadata ("" values unset keys in Stripe)
}

// Gateway is the Stripe the catalog needs. Every mutating call carries a
// deterministic idempotency key so a retry cannot create a second object.
// Errors are *Error (CodeStripeError, or CodeInvalidRequest naming the param
// for an unknown price); CreatePromotionCode wraps ErrPromotionCodeTaken when
// Stripe already has an active promotion code with that text.
//
// Stripe saves and replays even a 500 for an idempotency key once the call
// began executing, so after a failed create the catalog looks the object up
// (GetCoupon by its fixed ID, FindPromotionCode by text and coupon) rather
// than relying on a replay.
type Gateway interface {
	// ResolvePlans checks that every price exists and returns its product,
	// in the order of priceIDs.
	ResolvePlans(ctx context.Context, priceIDs []string) ([]string, error)
	CreateCoupon(ctx context.Context, c CouponSpec, idempotencyKey string) (couponID string, err error)
	CreatePromotionCode(ctx context.Context, p PromotionCodeSpec, idempotencyKey string) (promotionCodeID string, err error)
	// GetCoupon reports whether the coupon exists (recovery only).
	GetCoupon(ctx context.Context, id string) (found bool, err error)
	// FindPromotionCode looks up the promotion code with this text on this
	// coupon, active or not (recovery only, never on a request's hot path).
	FindPromotionCode(ctx context.Context, code, couponID string) (id string, active, found bool, err error)
	UpdatePromotionCode(ctx context.Context, id string, u PromotionCodeUpdate, idempotencyKey string) error
	// UpdateCouponMetadata replaces the coupon's metadata keys given ("" unsets).
	UpdateCouponMetadata(ctx context.Context, id string, metadata map[string]string, idempotencyKey string) error
	// GetPromotionCode reads a promotion code's active flag.
	GetPromotionCode(ctx context.Context, id string) (active bool, err error)
}
