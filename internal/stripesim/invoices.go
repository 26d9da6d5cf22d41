package stripesim

import (
	"maps"
	"net/http"
	"strconv"

	stripe "github.com/stripe/stripe-go/v76"
)

type discAmt struct {
	amount   int64
	discount string
}

type invoiceLine struct {
	ID              string
	amount          int64
	currency        string
	price           string
	product         string
	quantity        int64
	periodStart     int64
	periodEnd       int64
	subItem         string
	description     string
	discountAmounts []discAmt
	invoiceItem     string // a one-off invoice's line (oneoff.go); price is empty
}

// invoice follows Stripe's period semantics: for subscription_create
// invoices period_start == period_end == creation time; for
// subscription_cycle invoices [period_start, period_end] is the period that
// just ended. The service period billed is on each line's period.
type invoice struct {
	ID              string
	seq             int64
	created         int64
	customer        string
	subscription    string
	status          string // draft | open | paid | uncollectible
	paid            bool
	attempted       bool
	attemptCount    int64
	amountDue       int64
	amountPaid      int64
	amountRemaining int64
	subtotal        int64
	total           int64
	currency        string
	periodStart     int64
	periodEnd       int64
	billingReason   string
	discount        *discount
	totalDiscounts  []discAmt
	lines           []*invoiceLine
	finalizedAt     int64
	paidAt          int64
	nextAttempt     int64
	number          string
	clock           string
	subMetadata     map[string]string
	description     string // one-off invoices (oneoff.go)
	payDecline      bool   // charged to a declining payment method (oneoff.go)
}

func discAmtsJSON(das []discAmt) []any {
	out := make([]any, 0, len(das))
	for _, da := range das {
		out = append(out, map[string]any{"amount": da.amount, "discount": da.discount})
	}
	return out
}

func (s *Server) renderInvoice(in *invoice) map[string]any {
	cu := s.customers[in.customer]
	lines := make([]any, 0, len(in.lines))
	for _, l := range in.lines {
		if l.invoiceItem != "" {
			lines = append(lines, s.renderItemLine(in, l))
			continue
		}
		pr := s.prices[l.price]
		var discounts []any
		for _, da := range l.discountAmounts {
			discounts = append(discounts, da.discount)
		}
		if discounts == nil {
			discounts = []any{}
		}
		lines = append(lines, map[string]any{
			"id": l.ID, "object": "line_item", "amount": l.amount, "amount_excluding_tax": l.amount,
			"currency": l.currency, "description": l.description, "discount_amounts": discAmtsJSON(l.discountAmounts),
			"discountable": true, "discounts": discounts, "invoice": nstr(in.ID), "livemode": false,
			"metadata": map[string]any{}, "period": map[string]any{"start": l.periodStart, "end": l.periodEnd},
			"plan": s.renderPlan(pr), "price": s.renderPrice(pr), "proration": false,
			"proration_details": map[string]any{"credited_items": nil}, "quantity": l.quantity,
			"subscription": in.subscription, "subscription_item": l.subItem, "tax_amounts": []any{},
			"tax_rates": []any{}, "type": "subscription",
			"unit_amount_excluding_tax": strconv.FormatInt(l.amount/max(l.quantity, 1), 10),
		})
	}
	var disc any
	discIDs := []any{}
	if in.discount != nil {
		disc = s.renderDiscount(in.discount)
		discIDs = append(discIDs, in.discount.ID)
	}
	var endingBalance any
	if in.status != "draft" {
		endingBalance = 0
	}
	var number, hosted, pdf any
	if in.number != "" {
		number = in.number
	}
	if in.ID != "" && in.status != "draft" {
		hosted = "https://invoice.stripe.com/i/stripe-sim/" + in.ID
		pdf = "https://pay.stripe.com/invoice/stripe-sim/" + in.ID + "/pdf"
	}
	email, name := "", ""
	if cu != nil {
		email, name = cu.email, cu.name
	}
	out := map[string]any{
		"amount_due":           in.amountDue,
		"amount_paid":          in.amountPaid,
		"amount_remaining":     in.amountRemaining,
		"attempt_count":        in.attemptCount,
		"attempted":            in.attempted,
		"auto_advance":         in.status == "draft" || in.status == "open",
		"billing_reason":       in.billingReason,
		"created":              in.created,
		"currency":             in.currency,
		"customer":             in.customer,
		"customer_email":       nstr(email),
		"customer_name":        nstr(name),
		"description":          nstr(in.description),
		"discount":             disc,
		"discounts":            discIDs,
		"effective_at":         nint(in.finalizedAt),
		"ending_balance":       endingBalance,
		"hosted_invoice_url":   hosted,
		"invoice_pdf":          pdf,
		"lines":                map[string]any{"object": "list", "data": lines, "has_more": false, "total_count": len(lines), "url": "/v1/invoices/" + in.ID + "/lines"},
		"next_payment_attempt": nint(in.nextAttempt),
		"number":               number,
		"paid":                 in.paid,
		"period_end":           in.periodEnd,
		"period_start":         in.periodStart,
		"status":               in.status,
		"status_transitions": map[string]any{
			"finalized_at": nint(in.finalizedAt), "marked_uncollectible_at": nil, "paid_at": nint(in.paidAt), "voided_at": nil,
		},
		"subscription":           nstr(in.subscription),
		"subscription_details":   map[string]any{"metadata": metaJSON(in.subMetadata)},
		"subtotal":               in.subtotal,
		"subtotal_excluding_tax": in.subtotal,
		"test_clock":             nstr(in.clock),
		"total":                  in.total,
		"total_discount_amounts": discAmtsJSON(in.totalDiscounts),
		"total_excluding_tax":    in.total,
		"webhooks_delivered_at":  nint(in.finalizedAt),
	}
	maps.Copy(out, invoiceConsts) // the fields every invoice has alike (render_direct.go)
	if in.ID != "" {
		out["id"] = in.ID
	} else {
		out["lines"].(map[string]any)["url"] = "/v1/invoices/upcoming/lines"
	}
	return out
}

func (s *Server) invoiceByPath(id string) (*invoice, *apiError) {
	in := s.invoices[id]
	if in == nil {
		return nil, noSuchPath("invoice", id)
	}
	return in, nil
}

func hInvoiceRetrieve(c *reqCtx) (map[string]any, *apiError) {
	if err := c.check(retrieveSchema); err != nil {
		return nil, err
	}
	in, err := c.s.invoiceByPath(c.id())
	if err != nil {
		return nil, err
	}
	return c.s.renderInvoice(in), nil
}

var invoiceListSchema = newSchema(append([]string{"customer", "subscription", "status", "collection_method"}, listSchemaBase...),
	nil, formNames(stripe.InvoiceListParams{}))

func hInvoiceList(c *reqCtx) (map[string]any, *apiError) {
	if err := c.check(invoiceListSchema); err != nil {
		return nil, err
	}
	s := c.s
	cust, hasCust := c.p.str("customer")
	subID, hasSub := c.p.str("subscription")
	status, hasStatus := c.p.str("status")
	if hasStatus {
		switch status {
		case "draft", "open", "paid", "uncollectible", "void":
		default:
			return nil, invalidParam("status", "Invalid status: must be one of draft, open, paid, uncollectible, or void")
		}
	}
	created, err := c.p.rangeFilter("created")
	if err != nil {
		return nil, err
	}
	all := listSource(c, &s.idx.invoices, s.idx.invoices.view(s.invoices, func(x *invoice) int64 { return x.seq }), created,
		func(x *invoice) int64 { return x.created })
	return paginate(c, "/v1/invoices", all, func(in *invoice) bool {
		switch {
		case hasCust && in.customer != cust,
			hasSub && in.subscription != subID,
			hasStatus && in.status != status,
			!created.match(in.created):
			return false
		}
		return true
	}, func(x *invoice) int64 { return x.seq },
		func(id string) (int64, bool) {
			if x := s.invoices[id]; x != nil {
				return x.seq, true
			}
			return 0, false
		}, "invoice", func(in *invoice) any {
			if len(c.expand) > 0 {
				return s.renderInvoice(in) // expanded in the rendered maps
			}
			return s.invoiceJSON(in) // written directly (render_direct.go)
		})
}

var invoiceUpcomingSchema = newSchema(
	[]string{"customer", "subscription", "coupon", "discounts", "discounts[#][coupon]", "discounts[#][promotion_code]",
		"discounts[#][discount]", "subscription_items[#][price]", "subscription_items[#][quantity]", "expand[#]"},
	nil, formNames(stripe.InvoiceUpcomingParams{}))

// hInvoiceUpcoming previews the subscription's next invoice without side
// effects. coupon / discounts[0][coupon|promotion_code] preview applying
// that discount now (validated like a subscription update); discounts=
// (empty) previews without any discount.
func hInvoiceUpcoming(c *reqCtx) (map[string]any, *apiError) {
	if err := c.check(invoiceUpcomingSchema); err != nil {
		return nil, err
	}
	s := c.s
	custID, hasCust := c.p.str("customer")
	subID, hasSub := c.p.str("subscription")
	if (!hasCust || custID == "") && (!hasSub || subID == "") {
		return nil, missingParam("customer")
	}
	dr, err := readDiscountRequest(c)
	if err != nil {
		return nil, err
	}
	if c.p.has("subscription_items") {
		if hasSub && subID != "" {
			return nil, invalidParam("subscription_items", "stripe-sim does not preview item changes of an existing subscription; omit subscription to preview a new one.")
		}
		return s.previewNewSubscription(c, custID, dr)
	}
	var sub *subscription
	if hasSub && subID != "" {
		sub = s.subs[subID]
		if sub == nil {
			return nil, noSuchParam("subscription", "subscription", subID)
		}
		if hasCust && custID != "" && sub.customer != custID {
			return nil, requestError("subscription", "The subscription %s does not belong to customer %s.", subID, custID)
		}
	} else {
		cu := s.customers[custID]
		if cu == nil {
			return nil, noSuchParam("customer", "customer", custID)
		}
		for _, x := range s.subs {
			if x.customer == cu.ID && x.status != "canceled" && x.status != "incomplete_expired" && (sub == nil || x.seq > sub.seq) {
				sub = x
			}
		}
	}
	if sub == nil || sub.status == "canceled" || sub.status == "incomplete_expired" {
		who := custID
		if who == "" {
			who = subID
		}
		return nil, &apiError{Status: http.StatusNotFound, Type: typeInvalidRequest, Code: "invoice_upcoming_none",
			Message: "No upcoming invoices for customer: " + who}
	}
	cu := s.customers[sub.customer]
	now := s.customerNow(cu)
	next := sub.periodEnd()
	var d *discount
	switch {
	case dr.present && dr.clear:
	case dr.present:
		var subtotal int64
		for _, it := range sub.items {
			subtotal += s.prices[it.price].unitAmount * it.quantity
		}
		cp, pc, err := s.resolveDiscount(dr, redemptionContext{cu: cu, at: now, update: true, subtotal: subtotal, currency: sub.currency})
		if err != nil {
			return nil, err
		}
		d = &discount{ID: "di_preview_" + randomString(10, idAlphabet), coupon: cp, customer: cu.ID, subscription: sub.ID, start: now}
		if pc != nil {
			d.promo = pc.ID
		}
		if cp.duration == "repeating" {
			d.end = addMonths(now, int(cp.months))
		}
	default:
		d = sub.discount
	}
	if !d.activeAt(next) {
		d = nil
	}
	in := s.invoiceFor(sub, next, addMonths(sub.anchor, sub.period+2), "subscription_cycle", d, next, true)
	in.periodStart, in.periodEnd = sub.periodStart(), next
	in.nextAttempt = next + 3600
	return s.renderInvoice(in), nil
}

var invoicePaySchema = newSchema([]string{"expand[#]", "payment_method"}, []string{"off_session", "source", "paid_out_of_band", "forgive", "mandate"}, nil)

// hInvoicePay retries payment of an open invoice (e.g. after the customer
// stopped declining). A declined attempt answers 402 card_declined.
func hInvoicePay(c *reqCtx) (map[string]any, *apiError) {
	if err := c.check(invoicePaySchema); err != nil {
		return nil, err
	}
	s := c.s
	in, err := s.invoiceByPath(c.id())
	if err != nil {
		return nil, err
	}
	var pm *paymentMethod
	if id, ok := c.p.str("payment_method"); ok && id != "" {
		if pm = s.paymentMethods[id]; pm == nil || pm.customer != in.customer {
			return nil, noSuchParam("payment_method", "payment_method", id)
		}
	}
	if in.status != "open" && in.status != "draft" {
		return nil, requestError("", "Invoice is already %s.", in.status)
	}
	cu := s.customers[in.customer]
	at := s.customerNow(cu)
	var evs []pendingEvent
	if in.status == "draft" { // paying a draft finalizes it first (oneoff.go)
		evs = append(evs, s.finalizeDraft(in, at))
	}
	if pm != nil {
		in.payDecline = pm.decline
	}
	evs = append(evs, s.attemptPayment(in, at)...)
	o := c.origin()
	s.flush(evs, o)
	if in.status != "paid" {
		return nil, &apiError{Status: http.StatusPaymentRequired, Type: typeCard, Code: "card_declined",
			DeclineCode: "generic_decline", Message: "Your card was declined."}
	}
	if sub := s.subs[in.subscription]; sub != nil && sub.latestInvoice == in.ID && (sub.status == "past_due" || sub.status == "incomplete") {
		before := s.renderSubscription(sub)
		sub.status = "active"
		s.emitUpdate("customer.subscription.updated", before, s.renderSubscription(sub), o, at)
	}
	return s.renderInvoice(in), nil
}

// previewNewSubscription answers an upcoming-invoice request with customer
// and subscription_items but no subscription: the first invoice of a new
// monthly subscription starting now, with the requested discount checked as
// on subscription create. Nothing is stored.
func (s *Server) previewNewSubscription(c *reqCtx, custID string, dr discountRequest) (map[string]any, *apiError) {
	cu := s.customers[custID]
	if custID == "" {
		return nil, missingParam("customer")
	}
	if cu == nil {
		return nil, noSuchParam("customer", "customer", custID)
	}
	els, err := c.p.list("subscription_items")
	if err != nil {
		return nil, err
	}
	now := s.customerNow(cu)
	sub := &subscription{customer: cu.ID, status: "incomplete", anchor: now, created: now}
	for i, el := range els {
		param := "subscription_items[" + strconv.Itoa(i) + "]"
		if el.kids["price"] == nil || el.kids["price"].val == nil || *el.kids["price"].val == "" {
			return nil, missingParam(param + "[price]")
		}
		pr := s.prices[*el.kids["price"].val]
		switch {
		case pr == nil:
			return nil, noSuchParam("price", param+"[price]", *el.kids["price"].val)
		case !pr.recurring || !pr.active:
			return nil, requestError(param+"[price]", "The price specified must be an active recurring price.")
		case sub.currency != "" && pr.currency != sub.currency:
			return nil, requestError(param+"[price]", "All prices on a subscription must have the same currency.")
		}
		qty := int64(1)
		if q := el.kids["quantity"]; q != nil && q.val != nil {
			n, perr := strconv.ParseInt(*q.val, 10, 64)
			if perr != nil || n < 1 {
				return nil, invalidParamCode("parameter_invalid_integer", param+"[quantity]", "Invalid integer: %s", *q.val)
			}
			qty = n
		}
		sub.currency = pr.currency
		sub.items = append(sub.items, &subItem{ID: "si_preview_" + strconv.Itoa(i), price: pr.ID, quantity: qty, created: now})
	}
	if len(sub.items) == 0 {
		return nil, missingParam("subscription_items")
	}
	var d *discount
	if dr.present && !dr.clear {
		var subtotal int64
		for _, it := range sub.items {
			subtotal += s.prices[it.price].unitAmount * it.quantity
		}
		cp, pc, err := s.resolveDiscount(dr, redemptionContext{cu: cu, at: now, subtotal: subtotal, currency: sub.currency})
		if err != nil {
			return nil, err
		}
		d = &discount{ID: "di_preview_" + randomString(10, idAlphabet), coupon: cp, customer: cu.ID, start: now}
		if pc != nil {
			d.promo = pc.ID
		}
	}
	in := s.invoiceFor(sub, sub.periodStart(), sub.periodEnd(), "subscription_create", d, now, true)
	in.subscription = ""
	in.periodStart, in.periodEnd = now, now
	return s.renderInvoice(in), nil
}

// invoiceConsts are the fields every rendered invoice has alike (the map
// render and the direct encoder, render_direct.go, take them from here).
// Nothing writes into a rendered invoice's nested maps, so they are shared.
var invoiceConsts = map[string]any{
	"object":                           "invoice",
	"account_country":                  "US",
	"account_name":                     "stripe-sim",
	"account_tax_ids":                  nil,
	"amount_shipping":                  0,
	"application":                      nil,
	"application_fee_amount":           nil,
	"automatic_tax":                    map[string]any{"enabled": false, "liability": nil, "status": nil},
	"charge":                           nil,
	"collection_method":                "charge_automatically",
	"custom_fields":                    nil,
	"customer_address":                 nil,
	"customer_phone":                   nil,
	"customer_shipping":                nil,
	"customer_tax_exempt":              "none",
	"customer_tax_ids":                 []any{},
	"default_payment_method":           nil,
	"default_source":                   nil,
	"default_tax_rates":                []any{},
	"due_date":                         nil,
	"footer":                           nil,
	"from_invoice":                     nil,
	"issuer":                           map[string]any{"type": "self"},
	"last_finalization_error":          nil,
	"latest_revision":                  nil,
	"livemode":                         false,
	"metadata":                         map[string]any{},
	"on_behalf_of":                     nil,
	"paid_out_of_band":                 false,
	"payment_intent":                   nil,
	"payment_settings":                 map[string]any{"default_mandate": nil, "payment_method_options": nil, "payment_method_types": nil},
	"post_payment_credit_notes_amount": 0,
	"pre_payment_credit_notes_amount":  0,
	"quote":                            nil,
	"receipt_number":                   nil,
	"rendering":                        nil,
	"shipping_cost":                    nil,
	"shipping_details":                 nil,
	"starting_balance":                 0,
	"statement_descriptor":             nil,
	"tax":                              nil,
	"total_tax_amounts":                []any{},
	"transfer_data":                    nil,
}
