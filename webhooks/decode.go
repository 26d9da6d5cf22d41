package webhooks

import (
	"context"
	"encoding/json"
	"time"
	"unicode/utf8"

	"github.com/stripe/stripe-go/v76"

	"github.com/billing-adapter/billing-adapter/internal/jsonerr"
	"github.com/billing-adapter/billing-adapter/internal/promo"
)

// envelope is the part of a Stripe event every handler needs.
type envelope struct {
	ID         string `json:"id"`
	Type       string `json:"type"`
	APIVersion string `json:"api_version"`
	Created    int64  `json:"created"`
	Data       struct {
		Object             json.RawMessage `json:"object"`
		PreviousAttributes json.RawMessage `json:"previous_attributes"`
	} `json:"data"`
	// paid is data.object of an invoice.paid event when decodeEvent read
	// it together with the envelope (Data.Object is then empty).
	paid *paidInvoice
}

// invoicePaidEnvelope is an event read with data.object as an invoice:
// invoice.paid, most of the webhook traffic, is decoded in one
// json.Unmarshal of the body instead of the envelope and then the object
// (each a validity scan and a decode).
type invoicePaidEnvelope struct {
	ID         string `json:"id"`
	Type       string `json:"type"`
	APIVersion string `json:"api_version"`
	Created    int64  `json:"created"`
	Data       struct {
		Object *paidInvoice `json:"object"`
	} `json:"data"`
}

// decodeEvent reads an event: an invoice.paid in one pass when it reads as
// one; any other event, and any invoice.paid the one pass cannot read, the
// general way (decodeEnvelope, then the handler's decodeObject), so every
// refusal is worded exactly as before.
func decodeEvent(body []byte) (*envelope, error) {
	var fast invoicePaidEnvelope
	if json.Unmarshal(body, &fast) == nil && fast.Type == "invoice.paid" && fast.ID != "" && fast.Data.Object != nil {
		return &envelope{ID: fast.ID, Type: fast.Type, APIVersion: fast.APIVersion, Created: fast.Created,
			paid: fast.Data.Object}, nil
	}
	return decodeEnvelope(body)
}

// handler applies one event type. It decodes data.object (a decode error
// means the event is unprocessable) and calls the domain (promo.Observer).
type handler func(ctx context.Context, ob *promo.Observer, ev *envelope) error

// handlers are the event types the service reacts to; any other type is
// acknowledged and ignored.
var handlers = map[string]handler{
	"customer.discount.created": func(ctx context.Context, ob *promo.Observer, ev *envelope) error {
		d, err := decodeDiscount(ev)
		if err != nil {
			return err
		}
		return ob.DiscountCreated(ctx, d)
	},
	"customer.discount.updated": func(ctx context.Context, ob *promo.Observer, ev *envelope) error {
		d, err := decodeDiscount(ev)
		if err != nil {
			return err
		}
		return ob.DiscountUpdated(ctx, d, previousDiscount(ev, d))
	},
	"customer.discount.deleted": func(ctx context.Context, ob *promo.Observer, ev *envelope) error {
		d, err := decodeDiscount(ev)
		if err != nil {
			return err
		}
		return ob.DiscountDeleted(ctx, d)
	},
	"invoice.paid": func(ctx context.Context, ob *promo.Observer, ev *envelope) error {
		in := ev.paid
		if in == nil {
			var full stripeInvoice
			if err := decodeObject(ev, &full); err != nil {
				return err
			}
			in = full.paid()
		}
		e := promo.InvoicePaidEvent{InvoiceID: in.ID, Currency: in.Currency, AmountPaid: in.AmountPaid, At: created(ev),
			Customer: in.Customer.ID, Subscription: in.Subscription.ID}
		if in.StatusTransitions.PaidAt != 0 {
			e.PaidAt = time.Unix(in.StatusTransitions.PaidAt, 0).UTC()
		}
		if in.Discount != nil && in.Discount.ID != "" {
			d := in.Discount.event(ev)
			if d.Subscription == "" {
				d.Subscription = e.Subscription
			}
			if md := in.SubscriptionDetails; md != nil && md.Metadata != nil && d.Subscription == e.Subscription {
				d.SubscriptionRead, d.SubscriptionRedemptionID = true, md.Metadata[promo.MetaRedemptionID]
			}
			e.Discount = &d
			for _, a := range in.TotalDiscountAmounts {
				if a.Discount.ID != "" && a.Discount.ID == in.Discount.ID {
					e.DiscountAmount += a.Amount
				}
			}
		}
		return ob.InvoicePaid(ctx, e)
	},
	// A failed payment changes nothing: only a paid invoice activates a
	// redemption. It is handled (and deduplicated) so the log shows it.
	"invoice.payment_failed": func(ctx context.Context, ob *promo.Observer, ev *envelope) error {
		var in stripe.Invoice
		if err := decodeObject(ev, &in); err != nil {
			return err
		}
		ob.Log.InfoContext(ctx, "invoice payment failed; its discount is not counted until it is paid", "invoice", in.ID)
		return nil
	},
	"customer.subscription.deleted": func(ctx context.Context, ob *promo.Observer, ev *envelope) error {
		var sub stripe.Subscription
		if err := decodeObject(ev, &sub); err != nil {
			return err
		}
		e := promo.SubscriptionDeletedEvent{Subscription: sub.ID, Metadata: sub.Metadata, At: created(ev)}
		if sub.CanceledAt != 0 {
			e.CanceledAt = time.Unix(sub.CanceledAt, 0).UTC()
		}
		if sub.Discount != nil && sub.Discount.Coupon != nil {
			e.CouponID = sub.Discount.Coupon.ID
			d := discountEvent(sub.Discount, ev)
			if d.Subscription == "" {
				d.Subscription = sub.ID
			}
			e.Discount = &d
		}
		return ob.SubscriptionDeleted(ctx, e)
	},
	"promotion_code.updated": func(ctx context.Context, ob *promo.Observer, ev *envelope) error {
		var pc stripe.PromotionCode
		if err := decodeObject(ev, &pc); err != nil {
			return err
		}
		if pc.Coupon == nil {
			return errUnprocessable{"data.object.coupon", "data.object.coupon is missing: a promotion code has one"}
		}
		return ob.PromotionCodeUpdated(ctx, pc.ID, pc.Coupon.ID)
	},
	"coupon.deleted": func(ctx context.Context, ob *promo.Observer, ev *envelope) error {
		var c stripe.Coupon
		if err := decodeObject(ev, &c); err != nil {
			return err
		}
		return ob.CouponDeleted(ctx, c.ID)
	},
}

// paidInvoice is the part of an invoice that invoice.paid reads. Decoding
// just these fields, instead of a whole stripe.Invoice with its lines,
// prices, plans and other nested objects, is most of the webhook's CPU
// saved (docs/BENCHMARKS.md); as the package says, an event is processed
// when the fields it reads parse.
type paidInvoice struct {
	invoiceFields
	Discount *paidDiscount `json:"discount"`
}

// invoiceFields are the invoice's fields invoice.paid reads besides its
// discount, the same whichever way the discount is read.
type invoiceFields struct {
	ID                   string       `json:"id"`
	Currency             string       `json:"currency"`
	AmountPaid           int64        `json:"amount_paid"`
	Customer             expandableID `json:"customer"`
	Subscription         expandableID `json:"subscription"`
	TotalDiscountAmounts []struct {
		Amount   int64        `json:"amount"`
		Discount expandableID `json:"discount"`
	} `json:"total_discount_amounts"`
	StatusTransitions struct {
		PaidAt int64 `json:"paid_at"`
	} `json:"status_transitions"`
	// SubscriptionDetails carries the subscription's metadata at the
	// invoice's finalization (its promo_redemption_id).
	SubscriptionDetails *struct {
		Metadata map[string]string `json:"metadata"`
	} `json:"subscription_details"`
}

// stripeInvoice is paidInvoice with the discount read as stripe-go reads
// it: the general way of reading an invoice.paid (decodeObject), for the
// events the one pass into paidInvoice cannot read, so that they are
// accepted or refused, and worded, as before.
type stripeInvoice struct {
	invoiceFields
	Discount *stripe.Discount `json:"discount"`
}

// paid is the same invoice as a paidInvoice.
func (in *stripeInvoice) paid() *paidInvoice {
	out := &paidInvoice{invoiceFields: in.invoiceFields}
	if d := in.Discount; d != nil {
		out.Discount = &paidDiscount{ID: d.ID, Subscription: d.Subscription, Start: d.Start, End: d.End}
		if d.Coupon != nil {
			out.Discount.Coupon = &paidCoupon{ID: d.Coupon.ID, Duration: string(d.Coupon.Duration), TimesRedeemed: d.Coupon.TimesRedeemed}
		}
		if d.Customer != nil {
			out.Discount.Customer.ID = d.Customer.ID
		}
		if d.PromotionCode != nil {
			out.Discount.PromotionCode.ID = d.PromotionCode.ID
		}
	}
	return out
}

// paidDiscount is the part of an invoice's discount that invoice.paid reads:
// what discountEvent reads of a stripe.Discount, decoded without
// stripe-go's UnmarshalJSON methods (each decodes its object again, and the
// discount's coupon, customer and promotion code are large structs). It
// reads the discount and coupon objects only: a discount or coupon sent as
// an ID alone (which stripe.Discount accepts) fails the one-pass decode, and
// the event is read the general way (stripeInvoice), as before.
type paidDiscount struct {
	ID            string       `json:"id"`
	Subscription  string       `json:"subscription"`
	Start         int64        `json:"start"`
	End           int64        `json:"end"`
	Coupon        *paidCoupon  `json:"coupon"`
	Customer      expandableID `json:"customer"`
	PromotionCode expandableID `json:"promotion_code"`
}

// paidCoupon is the part of a discount's coupon that is read.
type paidCoupon struct {
	ID            string `json:"id"`
	Duration      string `json:"duration"`
	TimesRedeemed int64  `json:"times_redeemed"`
}

// event is discountEvent of the same discount read as a stripe.Discount.
func (d *paidDiscount) event(ev *envelope) promo.DiscountEvent {
	e := promo.DiscountEvent{DiscountID: d.ID, Subscription: d.Subscription, At: created(ev),
		Customer: d.Customer.ID, PromotionCodeID: d.PromotionCode.ID}
	if d.Start != 0 {
		e.Start = time.Unix(d.Start, 0).UTC()
	}
	if d.End != 0 {
		e.End = time.Unix(d.End, 0).UTC()
	}
	if d.Coupon != nil {
		e.CouponID, e.CouponDuration, e.CouponTimesRedeemed = d.Coupon.ID, promo.Duration(d.Coupon.Duration), d.Coupon.TimesRedeemed
	}
	return e
}

// expandableID is a Stripe expandable field: an ID string, or the expanded
// object (of which only the id is kept), or null.
type expandableID struct{ ID string }

func (x *expandableID) UnmarshalJSON(b []byte) error {
	if len(b) > 0 && b[0] == '"' {
		if id, ok := plainString(b); ok {
			x.ID = id
			return nil
		}
		return json.Unmarshal(b, &x.ID)
	}
	if string(b) == "null" {
		x.ID = ""
		return nil
	}
	var obj struct {
		ID string `json:"id"`
	}
	if err := json.Unmarshal(b, &obj); err != nil {
		return err
	}
	x.ID = obj.ID
	return nil
}

// plainString reads a JSON string without escapes (an ID always is one) as
// json.Unmarshal does, without its second validity scan and decoder: b is
// a string the enclosing json.Unmarshal has already checked, so with no
// backslash its text is the bytes between the quotes, provided they are
// valid UTF-8 (json.Unmarshal would replace invalid bytes with U+FFFD). Any
// other string is left to json.Unmarshal (ok false).
func plainString(b []byte) (string, bool) {
	if len(b) < 2 || b[0] != '"' || b[len(b)-1] != '"' {
		return "", false
	}
	in := b[1 : len(b)-1]
	for _, c := range in {
		if c == '\\' || c == '"' || c < ' ' {
			return "", false
		}
	}
	if !utf8.Valid(in) {
		return "", false
	}
	return string(in), true
}

// HandledTypes lists the event types the receiver acts on (for the README
// and the Stripe endpoint's enabled_events).
func HandledTypes() []string {
	out := make([]string, 0, len(handlers))
	for t := range handlers {
		out = append(out, t)
	}
	return out
}

// errUnprocessable marks an event whose object cannot be read: a 400
// naming the field (param) in plain words.
type errUnprocessable struct{ param, msg string }

func (e errUnprocessable) Error() string { return "unprocessable event: " + e.msg }

func decodeObject(ev *envelope, dst any) error {
	if len(ev.Data.Object) == 0 || string(ev.Data.Object) == "null" {
		return errUnprocessable{"data.object", "data.object is missing"}
	}
	if err := json.Unmarshal(ev.Data.Object, dst); err != nil {
		param, msg := jsonerr.Explain(err, dst, "data.object")
		return errUnprocessable{param, msg}
	}
	return nil
}

func created(ev *envelope) time.Time { return time.Unix(ev.Created, 0).UTC() }

func decodeDiscount(ev *envelope) (promo.DiscountEvent, error) {
	var d stripe.Discount
	if err := decodeObject(ev, &d); err != nil {
		return promo.DiscountEvent{}, err
	}
	switch {
	case d.ID == "":
		return promo.DiscountEvent{}, errUnprocessable{"data.object.id", "data.object.id is missing: a discount has one"}
	case d.Coupon == nil:
		return promo.DiscountEvent{}, errUnprocessable{"data.object.coupon", "data.object.coupon is missing: a discount has one"}
	}
	return discountEvent(&d, ev), nil
}

func discountEvent(d *stripe.Discount, ev *envelope) promo.DiscountEvent {
	e := promo.DiscountEvent{DiscountID: d.ID, Subscription: d.Subscription, At: created(ev)}
	if d.Start != 0 {
		e.Start = time.Unix(d.Start, 0).UTC()
	}
	if d.End != 0 {
		e.End = time.Unix(d.End, 0).UTC()
	}
	if d.Coupon != nil {
		e.CouponID, e.CouponDuration, e.CouponTimesRedeemed = d.Coupon.ID, promo.Duration(d.Coupon.Duration), d.Coupon.TimesRedeemed
	}
	if d.Customer != nil {
		e.Customer = d.Customer.ID
	}
	if d.PromotionCode != nil {
		e.PromotionCodeID = d.PromotionCode.ID
	}
	return e
}

// previousDiscount is the discount a customer.discount.updated replaced, from
// data.previous_attributes (its id and coupon changed); nil when absent.
func previousDiscount(ev *envelope, now promo.DiscountEvent) *promo.DiscountEvent {
	if len(ev.Data.PreviousAttributes) == 0 {
		return nil
	}
	var prev stripe.Discount
	if json.Unmarshal(ev.Data.PreviousAttributes, &prev) != nil || prev.ID == "" {
		return nil
	}
	p := now
	p.DiscountID, p.End = prev.ID, time.Time{}
	if prev.Start != 0 { // absent: it started when the new one did
		p.Start = time.Unix(prev.Start, 0).UTC()
	}
	if prev.Coupon != nil {
		p.CouponID, p.CouponDuration, p.CouponTimesRedeemed = prev.Coupon.ID, promo.Duration(prev.Coupon.Duration), 0
	}
	if prev.End != 0 {
		p.End = time.Unix(prev.End, 0).UTC()
	}
	return &p
}
