package promo

import (
	"context"
	"errors"
	"time"
)

// Stripe events as the webhooks package decodes them: only the fields the
// Observer reads.

// DiscountEvent is a customer.discount.* event's discount.
type DiscountEvent struct {
	DiscountID      string
	CouponID        string
	CouponDuration  Duration
	PromotionCodeID string
	Customer        string
	Subscription    string
	Start           time.Time
	End             time.Time // zero unless the coupon repeats
	// CouponTimesRedeemed is Stripe's count on the coupon in the event.
	CouponTimesRedeemed int64
	At                  time.Time // the event's creation time
	// SubscriptionRedemptionID is the subscription's promo_redemption_id
	// metadata when the event carries it (an invoice's subscription_details);
	// SubscriptionRead says it does (an empty ID then means none).
	SubscriptionRedemptionID string
	SubscriptionRead         bool
}

// InvoicePaidEvent is an invoice.paid event's invoice.
type InvoicePaidEvent struct {
	InvoiceID    string
	Customer     string
	Subscription string
	Currency     string
	AmountPaid   int64
	Discount     *DiscountEvent // the invoice's discount, if any
	// DiscountAmount is the invoice's total_discount_amounts entry for
	// Discount (minor units).
	DiscountAmount int64
	At             time.Time // the event's creation time
	// PaidAt is the invoice's status_transitions.paid_at (zero: At stands in).
	PaidAt time.Time
}

// SubscriptionDeletedEvent is a customer.subscription.deleted event.
type SubscriptionDeletedEvent struct {
	Subscription string
	CouponID     string // the discount's coupon, when it still had one
	// Discount is the subscription's discount at the cancellation (nil
	// when it had none).
	Discount *DiscountEvent
	Metadata map[string]string
	At       time.Time // the event's creation time
	// CanceledAt is the subscription's canceled_at (zero: At stands in).
	CanceledAt time.Time
}

// ObservedDiscount is a Stripe discount on one of our codes, as observed.
type ObservedDiscount struct {
	DiscountID   string
	Customer     string
	Subscription string
	// At is Stripe's time of what is observed: the event's creation, or a
	// paid invoice's paid_at. Start is the discount's start.
	At    time.Time
	Start time.Time
	// NewID names the ledger line if the discount was made outside the
	// adapter (or is seen ending before it was seen starting).
	NewID string
	// CouponTimesRedeemed is Stripe's count on the coupon in the event; the
	// code keeps the highest seen.
	CouponTimesRedeemed int64
	// Once: the coupon lasts one invoice, so its discount deleted after a
	// paid discounted invoice ended because its duration was over.
	Once bool
	// Which adapter redemption made the discount's subscription, from its
	// promo_redemption_id metadata: a reservation for a new subscription is
	// matched to a discount on the subscription it made, never to another
	// discount of the same customer. SubscriptionRead: the metadata was
	// read (an empty ID means none); MatchByCustomer: match a new
	// subscription's reservation by customer alone (no Stripe to read).
	SubscriptionRedemptionID string
	SubscriptionRead         bool
	MatchByCustomer          bool
}

// ErrSubscriptionUnread: a discount may be the one a new subscription's
// reservation made, which only the subscription's metadata can tell; read
// it (ObservedDiscount.SubscriptionRead) and try again.
var ErrSubscriptionUnread = errors.New("the subscription's promo_redemption_id is needed")

// ObserveOutcome says what ObserveDiscount did.
type ObserveOutcome int

const (
	ObservedKnown     ObserveOutcome = iota // already recorded: nothing to do
	ObservedConfirmed                       // the adapter's own reservation, now confirmed
	ObservedAdopted                         // made outside the adapter: a new ledger line
)

// Counted is what CountInvoice did.
type Counted struct {
	Redemption *Redemption
	New        bool           // the invoice was counted now (false: counted before)
	How        ObserveOutcome // how its line was found: known, confirmed now, or adopted now
	Change     StockChange
}

// PaidInvoice is one paid invoice that carried a discount of one of our codes.
type PaidInvoice struct {
	InvoiceID string
	Discount  ObservedDiscount
	Currency  string
	Amount    int64 // discounted on this invoice, minor units
}

// ObserveStore is what observing Stripe (webhook events) needs on top of the
// redemption store. Each method is one atomic script on the code's keys and
// is idempotent, so a redelivered or reordered event changes nothing more.
type ObserveStore interface {
	RedemptionStore
	// The observe methods fail with ErrNotFound when the code does
	// not exist, and keep the highest CouponTimesRedeemed seen.
	//
	// ObserveDiscount records that Stripe attached a discount of the code:
	// it confirms the adapter's reservation on that subscription, or adopts
	// a discount made outside the adapter (taking stock, flagging broken
	// rules). A discount seen before (even one seen ending) is left alone.
	ObserveDiscount(ctx context.Context, promoCodeID string, d ObservedDiscount) (*Redemption, ObserveOutcome, StockChange, error)
	// EndDiscount ends the redemption holding the discount. An unknown
	// discount is recorded as if its start had been seen first (adopted,
	// then ended), so its late creation event changes nothing. ended_at and
	// end_reason are the earliest Stripe end (ReasonPrecedence).
	EndDiscount(ctx context.Context, promoCodeID string, d ObservedDiscount, reason string) (*Redemption, StockChange, error)
	// CountInvoice counts a paid invoice once per invoice ID: cycles and the
	// discounted amount per currency grow, and the first one moves the
	// redemption to active (uses grows). counted is false for a repeat.
	CountInvoice(ctx context.Context, promoCodeID string, inv PaidInvoice) (Counted, error)
	// EndFromStripe ends a redemption as Stripe reported (the subscription
	// was canceled at Stripe's time at). On a line that already ended, it
	// only moves ended_at and end_reason to the earliest Stripe end.
	EndFromStripe(ctx context.Context, promoCodeID, redemptionID, reason string, at time.Time) (*Redemption, StockChange, error)
	// FlagRedemption adds a broken rule to a ledger line (once).
	FlagRedemption(ctx context.Context, promoCodeID, redemptionID, flag string) (*Redemption, error)
	// SubscriptionRedemption returns the code's live redemption on sub.
	SubscriptionRedemption(ctx context.Context, promoCodeID, sub string) (*Redemption, error)
	// MarkCustomerPaid records a customer with a paid invoice
	// (new_users_only) until until (its paid_at + PaidKeep); an earlier call
	// with a later until wins.
	MarkCustomerPaid(ctx context.Context, customer string, until time.Time) error
}

// PaidCounter is an ObserveStore that can mark an invoice's paying customer
// and count the invoice in one round trip (the two writes touch independent
// keys). The observer uses it when the store has it, in place of
// MarkCustomerPaid then CountInvoice.
type PaidCounter interface {
	// MarkPaidAndCountInvoice does MarkCustomerPaid(customer, until) and
	// CountInvoice(promoCodeID, inv). markErr is the mark's failure and err
	// the count's; when the store sends them one after the other, a failed
	// mark stops there and is both (the count was not attempted).
	MarkPaidAndCountInvoice(ctx context.Context, customer string, until time.Time, promoCodeID string, inv PaidInvoice) (c Counted, markErr, err error)
}

// EventOutcome says what BeginEvent found for an event ID.
type EventOutcome int

const (
	EventNew      EventOutcome = iota // first delivery (or an earlier attempt failed): process it
	EventDone                         // processed before: acknowledge
	EventInFlight                     // another delivery is being processed now
)

// EventStore deduplicates webhook events by ID across replicas.
type EventStore interface {
	// BeginEvent claims the event for processing for at most lease.
	BeginEvent(ctx context.Context, id string, lease time.Duration) (EventOutcome, string, error)
	// FinishEvent marks it processed, remembered for keep.
	FinishEvent(ctx context.Context, id, token string, keep time.Duration) error
	// AbortEvent forgets a failed attempt so the next delivery processes it.
	AbortEvent(ctx context.Context, id, token string) error
}

// PaidKeep is how long a paid invoice keeps its customer from counting as
// new (new_users_only) when no later invoice is paid: about 13 months, so a
// customer who pays monthly or yearly never counts as new, while customers
// who stopped paying more than PaidKeep ago no longer take Redis memory.
// It bounds the paid-customer marks, which otherwise grow with every
// customer forever.
const PaidKeep = 400 * 24 * time.Hour

// PaidMarks are the paid-customer marks the latest paid invoices (customer
// -> paid_at) call for at now: customer -> until, for the marks not yet over.
func PaidMarks(paid map[string]time.Time, now time.Time) map[string]time.Time {
	out := make(map[string]time.Time, len(paid))
	for c, at := range paid {
		if until := at.Add(PaidKeep); until.After(now) {
			out[c] = until
		}
	}
	return out
}

// EventKeep is how long processed event IDs are remembered: longer than the
// 3 days Stripe retries a delivery.
const EventKeep = 7 * 24 * time.Hour
