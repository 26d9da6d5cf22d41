package stripesim

import (
	"maps"
	"slices"
	"strconv"
)

// A list page of invoices (reconcile reads every paid invoice of the
// account, 100 a page) was mostly building each invoice's maps (renderInvoice:
// ~10 maps, ~180 keys, every integer boxed) and the collector's work on
// them. invoiceJSON writes an invoice's JSON directly, the bytes
// marshalJSON(renderInvoice(in)) gives (TestDirectInvoiceJSONIsTheRendersJSON
// compares them for every invoice of a billing lifecycle), for the invoices
// of subscriptions; a one-off invoice, an upcoming one (no ID) or a line
// without its price is rendered as before. The field lists below follow the
// render functions (renderInvoice, renderPrice, renderPlan, renderDiscount,
// renderCoupon): a field added there must be added here (the test fails
// otherwise).

// directInvoice is an invoice encoded by invoiceJSON when marshalJSON
// reaches it (under s.mu, as the render would be).
type directInvoice struct {
	s  *Server
	in *invoice
}

func (d directInvoice) appendJSONTo(b []byte) []byte { return invoiceEnc.append(b, d.s, d.in) }

// MarshalJSON gives the same bytes to encoding/json.
func (d directInvoice) MarshalJSON() ([]byte, error) { return d.appendJSONTo(nil), nil }

// invoiceJSON is in's list entry: a directInvoice when it can be written
// directly, else its render.
func (s *Server) invoiceJSON(in *invoice) any {
	if in.ID == "" {
		return s.renderInvoice(in)
	}
	for _, l := range in.lines {
		if l.invoiceItem != "" || s.prices[l.price] == nil {
			return s.renderInvoice(in)
		}
	}
	return directInvoice{s, in}
}

// objEnc writes one kind of object as marshalJSON writes its render's map:
// the fields in key order, the constant ones encoded once.
type objEnc[T any] struct{ fields []fieldEnc[T] }

type fieldEnc[T any] struct {
	prefix []byte                                // `,"key":` (no comma first), and the value when constant
	value  func(b []byte, s *Server, x T) []byte // nil: constant
}

func newObjEnc[T any](consts map[string]any, values map[string]func([]byte, *Server, T) []byte) *objEnc[T] {
	e := &objEnc[T]{}
	keys := slices.Sorted(maps.Keys(values))
	for k := range consts {
		if _, dup := values[k]; dup {
			panic("stripesim: field " + k + " both constant and not")
		}
		keys = append(keys, k)
	}
	slices.Sort(keys)
	for i, k := range keys {
		var p []byte
		if i > 0 {
			p = append(p, ',')
		}
		p, _ = appendJSONString(p, k)
		p = append(p, ':')
		f := fieldEnc[T]{value: values[k]}
		if f.value == nil {
			var err error
			if p, err = appendJSON(p, consts[k]); err != nil {
				panic(err)
			}
		}
		f.prefix = p
		e.fields = append(e.fields, f)
	}
	return e
}

func (e *objEnc[T]) append(b []byte, s *Server, x T) []byte {
	b = append(b, '{')
	for _, f := range e.fields {
		b = append(b, f.prefix...)
		if f.value != nil {
			b = f.value(b, s, x)
		}
	}
	return append(b, '}')
}

// Values as the render's map holds them and appendJSON writes them.
func jStr(b []byte, v string) []byte {
	b, _ = appendJSONString(b, v) // never fails: json.Marshal of a string
	return b
}

func jNstr(b []byte, v string) []byte { // nstr
	if v == "" {
		return append(b, "null"...)
	}
	return jStr(b, v)
}

func jInt(b []byte, v int64) []byte { return strconv.AppendInt(b, v, 10) }

func jNint(b []byte, v int64) []byte { // nint
	if v == 0 {
		return append(b, "null"...)
	}
	return jInt(b, v)
}

func jBool(b []byte, v bool) []byte { return strconv.AppendBool(b, v) }

func jMeta(b []byte, m map[string]string) []byte { // metaJSON: never null
	if len(m) == 0 {
		return append(b, "{}"...)
	}
	b, _ = appendJSONObject(b, m, appendJSONString)
	return b
}

func jDiscAmts(b []byte, das []discAmt) []byte { // discAmtsJSON
	b = append(b, '[')
	for i, da := range das {
		if i > 0 {
			b = append(b, ',')
		}
		b = append(b, `{"amount":`...)
		b = jInt(b, da.amount)
		b = append(b, `,"discount":`...)
		b = jStr(b, da.discount)
		b = append(b, '}')
	}
	return append(b, ']')
}

type fieldFns[T any] = map[string]func([]byte, *Server, T) []byte

// invoiceEnc is renderInvoice for an invoice with an ID and subscription lines.
var invoiceEnc = newObjEnc(invoiceConsts, fieldFns[*invoice]{
	"id":               func(b []byte, _ *Server, in *invoice) []byte { return jStr(b, in.ID) },
	"amount_due":       func(b []byte, _ *Server, in *invoice) []byte { return jInt(b, in.amountDue) },
	"amount_paid":      func(b []byte, _ *Server, in *invoice) []byte { return jInt(b, in.amountPaid) },
	"amount_remaining": func(b []byte, _ *Server, in *invoice) []byte { return jInt(b, in.amountRemaining) },
	"attempt_count":    func(b []byte, _ *Server, in *invoice) []byte { return jInt(b, in.attemptCount) },
	"attempted":        func(b []byte, _ *Server, in *invoice) []byte { return jBool(b, in.attempted) },
	"auto_advance": func(b []byte, _ *Server, in *invoice) []byte {
		return jBool(b, in.status == "draft" || in.status == "open")
	},
	"billing_reason": func(b []byte, _ *Server, in *invoice) []byte { return jStr(b, in.billingReason) },
	"created":        func(b []byte, _ *Server, in *invoice) []byte { return jInt(b, in.created) },
	"currency":       func(b []byte, _ *Server, in *invoice) []byte { return jStr(b, in.currency) },
	"customer":       func(b []byte, _ *Server, in *invoice) []byte { return jStr(b, in.customer) },
	"customer_email": func(b []byte, s *Server, in *invoice) []byte {
		if cu := s.customers[in.customer]; cu != nil {
			return jNstr(b, cu.email)
		}
		return append(b, "null"...)
	},
	"customer_name": func(b []byte, s *Server, in *invoice) []byte {
		if cu := s.customers[in.customer]; cu != nil {
			return jNstr(b, cu.name)
		}
		return append(b, "null"...)
	},
	"description": func(b []byte, _ *Server, in *invoice) []byte { return jNstr(b, in.description) },
	"discount": func(b []byte, s *Server, in *invoice) []byte {
		if in.discount == nil {
			return append(b, "null"...)
		}
		return discountEnc.append(b, s, in.discount)
	},
	"discounts": func(b []byte, _ *Server, in *invoice) []byte {
		if in.discount == nil {
			return append(b, "[]"...)
		}
		return append(jStr(append(b, '['), in.discount.ID), ']')
	},
	"effective_at": func(b []byte, _ *Server, in *invoice) []byte { return jNint(b, in.finalizedAt) },
	"ending_balance": func(b []byte, _ *Server, in *invoice) []byte {
		if in.status != "draft" {
			return append(b, '0')
		}
		return append(b, "null"...)
	},
	"hosted_invoice_url": func(b []byte, _ *Server, in *invoice) []byte {
		if in.status == "draft" {
			return append(b, "null"...)
		}
		return jStr(b, "https://invoice.stripe.com/i/stripe-sim/"+in.ID)
	},
	"invoice_pdf": func(b []byte, _ *Server, in *invoice) []byte {
		if in.status == "draft" {
			return append(b, "null"...)
		}
		return jStr(b, "https://pay.stripe.com/invoice/stripe-sim/"+in.ID+"/pdf")
	},
	"lines": func(b []byte, s *Server, in *invoice) []byte {
		b = append(b, `{"data":[`...)
		for i, l := range in.lines {
			if i > 0 {
				b = append(b, ',')
			}
			b = lineEnc.append(b, s, lineOf{in, l})
		}
		b = append(b, `],"has_more":false,"object":"list","total_count":`...)
		b = jInt(b, int64(len(in.lines)))
		b = append(b, `,"url":`...)
		return append(jStr(b, "/v1/invoices/"+in.ID+"/lines"), '}')
	},
	"next_payment_attempt": func(b []byte, _ *Server, in *invoice) []byte { return jNint(b, in.nextAttempt) },
	"number":               func(b []byte, _ *Server, in *invoice) []byte { return jNstr(b, in.number) },
	"paid":                 func(b []byte, _ *Server, in *invoice) []byte { return jBool(b, in.paid) },
	"period_end":           func(b []byte, _ *Server, in *invoice) []byte { return jInt(b, in.periodEnd) },
	"period_start":         func(b []byte, _ *Server, in *invoice) []byte { return jInt(b, in.periodStart) },
	"status":               func(b []byte, _ *Server, in *invoice) []byte { return jStr(b, in.status) },
	"status_transitions": func(b []byte, _ *Server, in *invoice) []byte {
		b = append(b, `{"finalized_at":`...)
		b = jNint(b, in.finalizedAt)
		b = append(b, `,"marked_uncollectible_at":null,"paid_at":`...)
		b = jNint(b, in.paidAt)
		return append(b, `,"voided_at":null}`...)
	},
	"subscription": func(b []byte, _ *Server, in *invoice) []byte { return jNstr(b, in.subscription) },
	"subscription_details": func(b []byte, _ *Server, in *invoice) []byte {
		return append(jMeta(append(b, `{"metadata":`...), in.subMetadata), '}')
	},
	"subtotal":               func(b []byte, _ *Server, in *invoice) []byte { return jInt(b, in.subtotal) },
	"subtotal_excluding_tax": func(b []byte, _ *Server, in *invoice) []byte { return jInt(b, in.subtotal) },
	"test_clock":             func(b []byte, _ *Server, in *invoice) []byte { return jNstr(b, in.clock) },
	"total":                  func(b []byte, _ *Server, in *invoice) []byte { return jInt(b, in.total) },
	"total_discount_amounts": func(b []byte, _ *Server, in *invoice) []byte { return jDiscAmts(b, in.totalDiscounts) },
	"total_excluding_tax":    func(b []byte, _ *Server, in *invoice) []byte { return jInt(b, in.total) },
	"webhooks_delivered_at":  func(b []byte, _ *Server, in *invoice) []byte { return jNint(b, in.finalizedAt) },
})

// lineOf is a subscription line of its invoice.
type lineOf struct {
	in *invoice
	l  *invoiceLine
}

// lineEnc is renderInvoice's subscription line.
var lineEnc = newObjEnc(map[string]any{
	"object":            "line_item",
	"discountable":      true,
	"livemode":          false,
	"metadata":          map[string]any{},
	"proration":         false,
	"proration_details": map[string]any{"credited_items": nil},
	"tax_amounts":       []any{},
	"tax_rates":         []any{},
	"type":              "subscription",
}, fieldFns[lineOf]{
	"id":                   func(b []byte, _ *Server, x lineOf) []byte { return jStr(b, x.l.ID) },
	"amount":               func(b []byte, _ *Server, x lineOf) []byte { return jInt(b, x.l.amount) },
	"amount_excluding_tax": func(b []byte, _ *Server, x lineOf) []byte { return jInt(b, x.l.amount) },
	"currency":             func(b []byte, _ *Server, x lineOf) []byte { return jStr(b, x.l.currency) },
	"description":          func(b []byte, _ *Server, x lineOf) []byte { return jStr(b, x.l.description) },
	"discount_amounts":     func(b []byte, _ *Server, x lineOf) []byte { return jDiscAmts(b, x.l.discountAmounts) },
	"discounts": func(b []byte, _ *Server, x lineOf) []byte {
		b = append(b, '[')
		for i, da := range x.l.discountAmounts {
			if i > 0 {
				b = append(b, ',')
			}
			b = jStr(b, da.discount)
		}
		return append(b, ']')
	},
	"invoice": func(b []byte, _ *Server, x lineOf) []byte { return jNstr(b, x.in.ID) },
	"period": func(b []byte, _ *Server, x lineOf) []byte {
		b = jInt(append(b, `{"end":`...), x.l.periodEnd)
		return append(jInt(append(b, `,"start":`...), x.l.periodStart), '}')
	},
	"plan":              func(b []byte, s *Server, x lineOf) []byte { return planEnc.append(b, s, s.prices[x.l.price]) },
	"price":             func(b []byte, s *Server, x lineOf) []byte { return priceEnc.append(b, s, s.prices[x.l.price]) },
	"quantity":          func(b []byte, _ *Server, x lineOf) []byte { return jInt(b, x.l.quantity) },
	"subscription":      func(b []byte, _ *Server, x lineOf) []byte { return jStr(b, x.in.subscription) },
	"subscription_item": func(b []byte, _ *Server, x lineOf) []byte { return jStr(b, x.l.subItem) },
	"unit_amount_excluding_tax": func(b []byte, _ *Server, x lineOf) []byte {
		return jStr(b, strconv.FormatInt(x.l.amount/max(x.l.quantity, 1), 10))
	},
})

// recurringJSON is renderPrice's recurring of a monthly price, encoded.
const recurringJSON = `{"aggregate_usage":null,"interval":"month","interval_count":1,"trial_period_days":null,"usage_type":"licensed"}`

// priceEnc is renderPrice.
var priceEnc = newObjEnc(map[string]any{
	"object":             "price",
	"billing_scheme":     "per_unit",
	"custom_unit_amount": nil,
	"livemode":           false,
	"tax_behavior":       "unspecified",
	"tiers_mode":         nil,
	"transform_quantity": nil,
}, fieldFns[*price]{
	"id":         func(b []byte, _ *Server, p *price) []byte { return jStr(b, p.ID) },
	"active":     func(b []byte, _ *Server, p *price) []byte { return jBool(b, p.active) },
	"created":    func(b []byte, _ *Server, p *price) []byte { return jInt(b, p.created) },
	"currency":   func(b []byte, _ *Server, p *price) []byte { return jStr(b, p.currency) },
	"lookup_key": func(b []byte, _ *Server, p *price) []byte { return jNstr(b, p.lookupKey) },
	"metadata":   func(b []byte, _ *Server, p *price) []byte { return jMeta(b, p.metadata) },
	"nickname":   func(b []byte, _ *Server, p *price) []byte { return jNstr(b, p.nickname) },
	"product":    func(b []byte, _ *Server, p *price) []byte { return jStr(b, p.product) },
	"recurring": func(b []byte, _ *Server, p *price) []byte {
		if p.recurring {
			return append(b, recurringJSON...)
		}
		return append(b, "null"...)
	},
	"type": func(b []byte, _ *Server, p *price) []byte {
		if p.recurring {
			return jStr(b, "recurring")
		}
		return jStr(b, "one_time")
	},
	"unit_amount":         func(b []byte, _ *Server, p *price) []byte { return jInt(b, p.unitAmount) },
	"unit_amount_decimal": func(b []byte, _ *Server, p *price) []byte { return jStr(b, strconv.FormatInt(p.unitAmount, 10)) },
})

// planEnc is renderPlan.
var planEnc = newObjEnc(map[string]any{
	"object":            "plan",
	"aggregate_usage":   nil,
	"billing_scheme":    "per_unit",
	"interval":          "month",
	"interval_count":    1,
	"livemode":          false,
	"tiers_mode":        nil,
	"transform_usage":   nil,
	"trial_period_days": nil,
	"usage_type":        "licensed",
}, fieldFns[*price]{
	"id":             func(b []byte, _ *Server, p *price) []byte { return jStr(b, p.ID) },
	"active":         func(b []byte, _ *Server, p *price) []byte { return jBool(b, p.active) },
	"amount":         func(b []byte, _ *Server, p *price) []byte { return jInt(b, p.unitAmount) },
	"amount_decimal": func(b []byte, _ *Server, p *price) []byte { return jStr(b, strconv.FormatInt(p.unitAmount, 10)) },
	"created":        func(b []byte, _ *Server, p *price) []byte { return jInt(b, p.created) },
	"currency":       func(b []byte, _ *Server, p *price) []byte { return jStr(b, p.currency) },
	"metadata":       func(b []byte, _ *Server, p *price) []byte { return jMeta(b, p.metadata) },
	"nickname":       func(b []byte, _ *Server, p *price) []byte { return jNstr(b, p.nickname) },
	"product":        func(b []byte, _ *Server, p *price) []byte { return jStr(b, p.product) },
})

// discountEnc is renderDiscount.
var discountEnc = newObjEnc(map[string]any{
	"object":            "discount",
	"checkout_session":  nil,
	"invoice":           nil,
	"invoice_item":      nil,
	"subscription_item": nil,
}, fieldFns[*discount]{
	"id":             func(b []byte, _ *Server, d *discount) []byte { return jStr(b, d.ID) },
	"coupon":         func(b []byte, s *Server, d *discount) []byte { return couponEnc.append(b, s, d.coupon) },
	"customer":       func(b []byte, _ *Server, d *discount) []byte { return jStr(b, d.customer) },
	"end":            func(b []byte, _ *Server, d *discount) []byte { return jNint(b, d.end) },
	"promotion_code": func(b []byte, _ *Server, d *discount) []byte { return jNstr(b, d.promo) },
	"start":          func(b []byte, _ *Server, d *discount) []byte { return jInt(b, d.start) },
	"subscription":   func(b []byte, _ *Server, d *discount) []byte { return jNstr(b, d.subscription) },
})

// couponEnc is renderCoupon.
var couponEnc = newObjEnc(map[string]any{
	"object":   "coupon",
	"livemode": false,
}, fieldFns[*coupon]{
	"id": func(b []byte, _ *Server, cp *coupon) []byte { return jStr(b, cp.ID) },
	"amount_off": func(b []byte, _ *Server, cp *coupon) []byte {
		if cp.percentBP == 0 {
			return jInt(b, cp.amountOff)
		}
		return append(b, "null"...)
	},
	"created":  func(b []byte, _ *Server, cp *coupon) []byte { return jInt(b, cp.created) },
	"currency": func(b []byte, _ *Server, cp *coupon) []byte { return jNstr(b, cp.currency) },
	"duration": func(b []byte, _ *Server, cp *coupon) []byte { return jStr(b, cp.duration) },
	"duration_in_months": func(b []byte, _ *Server, cp *coupon) []byte {
		if cp.duration == "repeating" {
			return jInt(b, cp.months)
		}
		return append(b, "null"...)
	},
	"max_redemptions": func(b []byte, _ *Server, cp *coupon) []byte { return jNint(b, cp.maxRedemptions) },
	"metadata":        func(b []byte, _ *Server, cp *coupon) []byte { return jMeta(b, cp.metadata) },
	"name":            func(b []byte, _ *Server, cp *coupon) []byte { return jNstr(b, cp.name) },
	"percent_off": func(b []byte, _ *Server, cp *coupon) []byte {
		if cp.percentBP == 0 {
			return append(b, "null"...)
		}
		b, _ = appendJSON(b, percentJSON(cp.percentBP)) // a number json.Marshal writes as it is
		return b
	},
	"redeem_by":      func(b []byte, _ *Server, cp *coupon) []byte { return jNint(b, cp.redeemBy) },
	"times_redeemed": func(b []byte, _ *Server, cp *coupon) []byte { return jInt(b, cp.timesRedeemed) },
	"valid":          func(b []byte, s *Server, cp *coupon) []byte { return jBool(b, cp.validAt(s.realNow())) },
})
