package promo

import (
	"crypto/sha256"
	"encoding/hex"
	"time"
)

// RedemptionState is where a redemption is in its life:
//
//	reserved ─► pending ─► active ─► ended
//	    │          └──────────────► ended   (removed or canceled before any paid discounted invoice)
//	    └─► released                         (Stripe refused, or the apply was rolled back)
//
// reserved is the adapter's own short phase between taking a unit of stock
// and Stripe confirming the discount; it carries a lease after which the
// sweeper asks Stripe what happened.
type RedemptionState string

const (
	RedemptionReserved RedemptionState = "reserved" // stock held, Stripe not yet confirmed
	RedemptionPending  RedemptionState = "pending"  // discount attached in Stripe, no paid discounted invoice yet
	RedemptionActive   RedemptionState = "active"   // a paid invoice carried the discount (counted in uses)
	RedemptionEnded    RedemptionState = "ended"    // duration over, discount removed, or subscription canceled
	RedemptionReleased RedemptionState = "released" // never took effect; its stock unit went back
)

// Live reports whether the redemption still binds its subscription.
func (s RedemptionState) Live() bool {
	return s == RedemptionReserved || s == RedemptionPending || s == RedemptionActive
}

// HoldsUse reports whether a redemption holds a unit of its code's stock and
// its customer's one use of the code: while it is live (reserved, pending,
// active), and for good once a paid invoice carried it. One that ended or
// was released before that gave both back, and so breaks neither rule. The
// webhook path (holds_use in redisstore's ledger_prelude.lua) and the
// rebuild from Stripe (countLedger) apply this one definition.
func (r *Redemption) HoldsUse() bool { return r.State.Live() || !r.ActivatedAt.IsZero() }

// RedemptionSource says how a redemption came about.
type RedemptionSource string

const (
	SourceNewSubscription      RedemptionSource = "new_subscription"      // POST /v1/subscriptions
	SourceExistingSubscription RedemptionSource = "existing_subscription" // POST /v1/subscriptions/{id}/promo_code
	SourceStripe               RedemptionSource = "stripe"                // made outside the adapter (Checkout, Dashboard)
)

// Reasons a redemption ended or was released. When Stripe reports more than
// one end of a line (its discount deleted, replaced, its subscription
// canceled), ended_at and end_reason are the earliest by Stripe's time,
// ties broken in StripeEndPrecedence order; a once coupon's discount deleted
// after a paid invoice carried it is duration_over. The adapter's own
// removal (removed) keeps its reason and takes Stripe's time of the
// deletion once seen. So the outcome does not depend on the events' order.
const (
	ReasonStripeRefused = "stripe_refused"        // Stripe refused the discount
	ReasonNotApplied    = "not_applied"           // the sweeper found no discount in Stripe after the lease
	ReasonRemoved       = "removed"               // DELETE /v1/subscriptions/{id}/promo_code
	ReasonDuration      = "duration_over"         // Stripe removed the discount when its duration ended
	ReasonCanceled      = "subscription_canceled" // the subscription was canceled
	ReasonReplaced      = "discount_replaced"     // another discount replaced it in Stripe
	ReasonDeleted       = "discount_deleted"      // the discount was deleted in Stripe
)

// StripeEndPrecedence orders Stripe's reasons for ends at the same time (a
// cancellation also deletes the discount: the cancellation is the reason).
var StripeEndPrecedence = []string{ReasonDuration, ReasonReplaced, ReasonCanceled, ReasonDeleted}

// Redemption binds one promo code to one customer and one subscription: the
// ledger line. Stock and the rules are enforced when it is reserved.
type Redemption struct {
	ID           string // rd_ + ULID (sortable by creation)
	PromoCodeID  string
	Customer     string
	Subscription string // empty until Stripe created the subscription (new subscriptions)
	DiscountID   string // Stripe discount (di_...)
	Source       RedemptionSource
	State        RedemptionState
	// Owner identifies the request that made the reservation (a hash of its
	// scoped Idempotency-Key), so a retry of that request resumes it.
	Owner string
	// LeaseUntil is when the sweeper may resolve a reserved redemption.
	LeaseUntil time.Time
	// One clock per line. A reservation is on the adapter's clock: CreatedAt
	// is its request's time (and EndedAt of a release the adapter's). Once
	// Stripe confirms the discount (the apply's answer or the webhook,
	// whichever comes first) the line is on Stripe's clock: CreatedAt and
	// ConfirmedAt become the discount's start, as for a discount made outside
	// the adapter, so CreatedAt <= ConfirmedAt holds under a test clock too.
	// The one exception is EndedAt of the adapter's own removal until Stripe's
	// deletion event shows its time (EndedInStripe false until then).
	CreatedAt   time.Time
	ConfirmedAt time.Time // the discount's start in Stripe
	ActivatedAt time.Time // the earliest paid_at of its paid discounted invoices
	EndedAt     time.Time // Stripe's time of the end once Stripe reported it (EndedInStripe), else the adapter's
	// EndedInStripe: EndedAt is Stripe's time of the end.
	EndedInStripe bool
	// EffectiveAt is when the discount starts to apply: now for a new
	// subscription, the current period end for an existing one.
	EffectiveAt time.Time
	EndReason   string
	// HoldsStock is true while the redemption holds one unit of the code's
	// stock (never for unlimited codes). StockReturned records that the unit
	// went back because the discount never took effect.
	HoldsStock    bool
	StockReturned bool
	// Flags name rules a redemption made outside the adapter broke, sorted.
	Flags []string
	// Cycles counts paid discounted invoices; Discounted sums their discount
	// per currency in minor units (filled from webhook events).
	Cycles     int
	Discounted map[string]int64
}

// RequestOwner turns a scoped inbound Idempotency-Key into the owner stored
// on a reservation. It is a hash: the key itself never reaches Redis values.
func RequestOwner(requestKey string) string {
	h := sha256.Sum256([]byte("owner\x00" + requestKey))
	return hex.EncodeToString(h[:8]) // 64 bits: compared only among one customer's uses of one code
}

// Claim marks a subscription as carrying a live adapter redemption (rule 2:
// one promo code per subscription).
type Claim struct {
	PromoCodeID  string
	RedemptionID string
}

// DueReservation points at a reservation whose lease the sweeper watches.
type DueReservation struct {
	PromoCodeID  string
	RedemptionID string
	LeaseUntil   time.Time
}

// Subscription is what the adapter reads of a Stripe subscription.
type Subscription struct {
	ID                 string
	Customer           string
	Status             string
	Currency           string
	PriceIDs           []string
	CurrentPeriodStart time.Time
	CurrentPeriodEnd   time.Time
	Discount           *Discount
	// LatestInvoicePaid is true when the latest invoice is paid with an
	// amount above zero: the customer is not new.
	LatestInvoicePaid bool
	Metadata          map[string]string
}

// Discount is a Stripe discount on a subscription.
type Discount struct {
	ID              string
	CouponID        string
	PromotionCodeID string
	Start           time.Time
	End             time.Time // zero unless the coupon repeats
}

// InvoicePreview is Stripe's upcoming invoice with a discount applied.
type InvoicePreview struct {
	Customer       string
	Subscription   string
	Currency       string
	PriceIDs       []string
	Subtotal       int64 // before discounts, minor units
	Total          int64 // after discounts
	DiscountAmount int64
	PeriodStart    time.Time
	PeriodEnd      time.Time
}
