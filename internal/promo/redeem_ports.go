package promo

import (
	"context"
	"errors"
	"time"
)

// ReserveOutcome says what RedemptionStore.Reserve did.
type ReserveOutcome int

const (
	Reserved ReserveOutcome = iota // a unit of stock was taken for the new redemption
	Resumed                        // the request's own earlier reservation was found and is returned
)

// Confirmation is what Stripe confirmed for a reservation.
type Confirmation struct {
	Subscription string
	DiscountID   string
	EffectiveAt  time.Time
	At           time.Time
}

// StockChange reports that a script moved a code across the line where its
// Stripe promotion code must be switched on or off (see WantStripeActive).
type StockChange struct {
	StripeActiveChanged bool
}

// RedemptionStore keeps the ledger, stock and the redemption indexes. Every
// method is atomic; Reserve, Confirm and Finish run as one script each on the
// code's keys, so their checks hold across any number of replicas.
type RedemptionStore interface {
	// Get returns a code by ID and GetByCode the non-archived code with this
	// text (ErrNotFound).
	Get(ctx context.Context, id string) (*PromoCode, error)
	GetByCode(ctx context.Context, code string) (*PromoCode, error)
	// Reserve checks the code (ready, active, not expired at now, stock left)
	// and that r.Customer has no redemption of it (not for a code that is
	// not once per customer: PromoCode.ManyPerCustomer), then takes a unit
	// of stock and writes r as reserved. If r.Customer already holds a
	// redemption of this code made by r.Owner (of such a code: the one
	// holding r.UniqueCode), that one is returned with Resumed. Refusals
	// are *Error with a redemption code (code_inactive, code_expired,
	// code_exhausted, already_redeemed_by_customer, code_not_found).
	Reserve(ctx context.Context, r *Redemption, now time.Time) (*Redemption, ReserveOutcome, error)
	// Confirm moves a reserved redemption to pending. Confirming a pending or
	// active one changes nothing and returns it.
	Confirm(ctx context.Context, promoCodeID, redemptionID string, c Confirmation) (*Redemption, StockChange, error)
	// Finish ends a live redemption: a reserved one becomes released, a
	// pending or active one ended. One that never reached active gives its
	// unit of stock back and frees the customer's use of the code. Finishing
	// an ended or released one changes nothing.
	Finish(ctx context.Context, promoCodeID, redemptionID, reason string, at time.Time) (*Redemption, StockChange, error)
	// GetRedemption returns one ledger line (ErrNotFound).
	GetRedemption(ctx context.Context, promoCodeID, redemptionID string) (*Redemption, error)
	// GetByCodeForCustomer returns the non-archived code with this text
	// (ErrNotFound) and the customer's redemption of it (nil when none),
	// read together: validate's path. For a campaign code the redemption is
	// the customer's of the campaign (any of its codes) or, when the
	// campaign is not once per customer, the customer's live or used
	// redemption of this very code.
	GetByCodeForCustomer(ctx context.Context, code, customer string) (*PromoCode, *Redemption, error)
	// ListRedemptions returns a page of one code's ledger, newest first.
	ListRedemptions(ctx context.Context, promoCodeID string, limit int, startingAfter string) (Page[*Redemption], error)

	// Claim returns the subscription's claim (ErrNotFound when it has none).
	Claim(ctx context.Context, subscription string) (Claim, error)
	// SetClaim records that the subscription carries the redemption.
	SetClaim(ctx context.Context, subscription string, c Claim) error
	// ClearClaim removes the claim if it still names redemptionID.
	ClearClaim(ctx context.Context, subscription, redemptionID string) error
	// LockSubscription serializes applies to one subscription across replicas.
	LockSubscription(ctx context.Context, subscription string, ttl time.Duration) (unlock func(), err error)

	// MarkDue records, before a reservation is made, that the sweeper must
	// look at it after its lease; UnmarkDue removes the mark once resolved.
	MarkDue(ctx context.Context, d DueReservation) error
	UnmarkDue(ctx context.Context, promoCodeID, redemptionID string) error
	// Due returns up to limit marks whose lease ended at now.
	Due(ctx context.Context, now time.Time, limit int) ([]DueReservation, error)

	// CustomerHasPaid reports whether a paid invoice of the customer was seen.
	CustomerHasPaid(ctx context.Context, customer string) (bool, error)
	// NeedsStripeSync records that a code's Stripe promotion code must be
	// switched on or off (StockChange); StripeSyncPending lists them.
	NeedsStripeSync(ctx context.Context, promoCodeID string) error
	StripeSyncPending(ctx context.Context, limit int) ([]string, error)
	StripeSyncDone(ctx context.Context, promoCodeID string) error
}

// ValidateReader is an optional read of a RedemptionStore for validate
// alone (Validate uses it when the store has it; apply and subscribe never
// do). ReadForValidate returns what GetByCodeForCustomer returns, but the
// code's record may come from a per-replica snapshot up to a configured
// age old (another replica's change of status, stock or expiry is seen that
// much later; this replica's own writes at once). The customer's redemption
// is never stale. When PaidRead is set, Paid is CustomerHasPaid read in the
// same round trip.
type ValidateReader interface {
	ReadForValidate(ctx context.Context, code, customer string) (ValidateRead, error)
}

// ValidateRead is ValidateReader's answer.
type ValidateRead struct {
	Code     *PromoCode
	Held     *Redemption // the customer's redemption of the code, nil when none
	Paid     bool        // the customer has paid (new_users_only), when PaidRead
	PaidRead bool
}

// SubscriptionSpec is a new Stripe subscription.
type SubscriptionSpec struct {
	Customer        string
	Price           string
	Quantity        int64
	PromotionCodeID string // "" = no discount
	CouponID        string // a campaign's coupon, when PromotionCodeID is ""
	Metadata        map[string]string
}

// PreviewSpec asks Stripe for the next invoice with a promotion code applied:
// of Subscription when set, else of a new subscription of Customer to Price.
type PreviewSpec struct {
	Customer        string
	Subscription    string
	Price           string
	PromotionCodeID string
	CouponID        string // a campaign's coupon, when PromotionCodeID is ""
}

// BillingGateway is the Stripe the redemption flows need. Mutating calls
// carry a deterministic idempotency key. Errors are *Error: Stripe refusing a
// promotion code maps to the redemption codes (code_inactive, code_expired,
// code_exhausted, new_users_only, customer_mismatch), an unknown subscription
// to subscription_not_found, anything else to stripe_error. A failure whose
// outcome Stripe did not tell (5xx, timeout, no answer) also wraps
// ErrOutcomeUnknown.
type BillingGateway interface {
	GetSubscription(ctx context.Context, id string) (*Subscription, error)
	CreateSubscription(ctx context.Context, s SubscriptionSpec, idempotencyKey string) (*Subscription, error)
	// ApplyPromotionCode sets the subscription's discount without proration
	// and merges metadata into the subscription's.
	ApplyPromotionCode(ctx context.Context, subscription, promotionCodeID string, metadata map[string]string, idempotencyKey string) (*Subscription, error)
	// ApplyCoupon is ApplyPromotionCode with a campaign's coupon.
	ApplyCoupon(ctx context.Context, subscription, couponID string, metadata map[string]string, idempotencyKey string) (*Subscription, error)
	// RemoveDiscount deletes the subscription's discount; removed is false
	// when it had none.
	RemoveDiscount(ctx context.Context, subscription, idempotencyKey string) (removed bool, err error)
	PreviewInvoice(ctx context.Context, p PreviewSpec) (*InvoicePreview, error)
	// FindSubscription returns the customer's subscription (any status)
	// whose metadata[key] is value, or nil (recovery only).
	FindSubscription(ctx context.Context, customer, key, value string) (*Subscription, error)
}

// ErrOutcomeUnknown marks a Stripe failure after which the call may or may
// not have taken effect; the caller must look before concluding.
var ErrOutcomeUnknown = errors.New("stripe outcome unknown")

// Subscription metadata keys naming the redemption that applied the discount
// and how it was made (with MetaPromoCodeID and MetaPromoCode): reconcile
// rebuilds the ledger from them.
const (
	MetaRedemptionID     = "promo_redemption_id"
	MetaRedemptionSource = "promo_redemption_source"
)
