package stripesim

import (
	"fmt"
	"net/http"
	"strings"
)

// What `stripe trigger invoice.paid` and `invoice.payment_failed` call:
// attaching one of Stripe's test payment methods to a customer, an invoice
// item, a one-off invoice that takes the customer's pending items, and paying
// it with a payment method.
//
//   - POST /v1/payment_methods/{pm}/attach {customer}: {pm} is one of Stripe's
//     test payment methods (pm_card_visa, pm_card_mastercard, ...; the
//     attached copy gets a new pm_ ID, as on Stripe) or a pm_ made here.
//     pm_card_chargeCustomerFail attaches, and charges to it are declined;
//     pm_card_chargeDeclined (and its *Declined variants) cannot be attached
//     (402 card_declined), as on Stripe.
//   - POST /v1/invoiceitems {customer, amount, currency, description}: a
//     pending item; POST /v1/invoices {customer,
//     pending_invoice_items_behavior=include}: a draft one-off invoice holding
//     the pending items (exclude, the 2023-10-16 default, leaves them pending).
//     The customer's discount applies to it.
//   - POST /v1/invoices/{id}/pay {payment_method}: a draft is finalized
//     (invoice.finalized) and charged; a declining payment method answers 402
//     card_declined and records invoice.payment_failed.

type testCard struct{ brand, last4, funding string }

// testPaymentMethods are Stripe's documented test payment methods (docs:
// testing, "Cards by brand" and "Declined payments").
var testPaymentMethods = map[string]testCard{
	"pm_card_visa":               {"visa", "4242", "credit"},
	"pm_card_visa_debit":         {"visa", "5556", "debit"},
	"pm_card_mastercard":         {"mastercard", "4444", "credit"},
	"pm_card_amex":               {"amex", "8431", "credit"},
	"pm_card_discover":           {"discover", "1117", "credit"},
	"pm_card_chargeCustomerFail": {"visa", "0341", "credit"},
}

// declinedOnAttach are test payment methods whose attach fails.
var declinedOnAttach = map[string]string{
	"pm_card_chargeDeclined":                  "generic_decline",
	"pm_card_chargeDeclinedInsufficientFunds": "insufficient_funds",
	"pm_card_chargeDeclinedLostCard":          "lost_card",
	"pm_card_chargeDeclinedStolenCard":        "stolen_card",
	"pm_card_chargeDeclinedExpiredCard":       "expired_card",
	"pm_card_chargeDeclinedProcessingError":   "processing_error",
}

type paymentMethod struct {
	ID       string
	created  int64
	customer string
	card     testCard
	decline  bool // charges are declined (pm_card_chargeCustomerFail)
}

type invoiceItem struct {
	ID          string
	seq         int64
	created     int64
	customer    string
	amount      int64
	currency    string
	description string
	invoice     string // "" while pending
	metadata    map[string]string
}

func (s *Server) renderPaymentMethod(pm *paymentMethod) map[string]any {
	return map[string]any{
		"id":     pm.ID,
		"object": "payment_method",
		"billing_details": map[string]any{
			"address": map[string]any{"city": nil, "country": nil, "line1": nil, "line2": nil, "postal_code": nil, "state": nil},
			"email":   nil, "name": nil, "phone": nil,
		},
		"card": map[string]any{
			"brand":                pm.card.brand,
			"checks":               map[string]any{"address_line1_check": nil, "address_postal_code_check": nil, "cvc_check": "unchecked"},
			"country":              "US",
			"display_brand":        pm.card.brand,
			"exp_month":            12,
			"exp_year":             2034,
			"fingerprint":          "simfp" + pm.card.last4,
			"funding":              pm.card.funding,
			"generated_from":       nil,
			"last4":                pm.card.last4,
			"networks":             map[string]any{"available": []any{pm.card.brand}, "preferred": nil},
			"three_d_secure_usage": map[string]any{"supported": true},
			"wallet":               nil,
		},
		"created":  pm.created,
		"customer": nstr(pm.customer),
		"livemode": false,
		"metadata": map[string]any{},
		"type":     "card",
	}
}

var pmAttachSchema = newSchema([]string{"customer", "expand[#]"}, nil, nil)

func hPaymentMethodAttach(c *reqCtx) (map[string]any, *apiError) {
	if err := c.check(pmAttachSchema); err != nil {
		return nil, err
	}
	s := c.s
	cu, err := c.requiredCustomer()
	if err != nil {
		return nil, err
	}
	id := c.id()
	if code, ok := declinedOnAttach[id]; ok {
		return nil, &apiError{Status: http.StatusPaymentRequired, Type: typeCard, Code: "card_declined",
			DeclineCode: code, Message: "Your card was declined."}
	}
	if pm := s.paymentMethods[id]; pm != nil {
		if pm.customer != "" && pm.customer != cu.ID {
			return nil, requestError("", "The payment method you provided has already been attached to a customer.")
		}
		pm.customer = cu.ID
		return s.renderPaymentMethod(pm), nil
	}
	card, ok := testPaymentMethods[id]
	if !ok {
		return nil, noSuchPath("payment_method", id)
	}
	pm := &paymentMethod{ID: newID("pm"), created: s.customerNow(cu), customer: cu.ID, card: card,
		decline: id == "pm_card_chargeCustomerFail"}
	s.paymentMethods[pm.ID] = pm
	obj := s.renderPaymentMethod(pm)
	s.emit("payment_method.attached", obj, nil, c.origin(), pm.created)
	return obj, nil
}

func hPaymentMethodRetrieve(c *reqCtx) (map[string]any, *apiError) {
	if err := c.check(retrieveSchema); err != nil {
		return nil, err
	}
	pm := c.s.paymentMethods[c.id()]
	if pm == nil {
		return nil, noSuchPath("payment_method", c.id())
	}
	return c.s.renderPaymentMethod(pm), nil
}

func (s *Server) renderInvoiceItem(ii *invoiceItem) map[string]any {
	return map[string]any{
		"id":                  ii.ID,
		"object":              "invoiceitem",
		"amount":              ii.amount,
		"currency":            ii.currency,
		"customer":            ii.customer,
		"date":                ii.created,
		"description":         nstr(ii.description),
		"discountable":        true,
		"discounts":           []any{},
		"invoice":             nstr(ii.invoice),
		"livemode":            false,
		"metadata":            metaJSON(ii.metadata),
		"period":              map[string]any{"start": ii.created, "end": ii.created},
		"plan":                nil,
		"price":               nil,
		"proration":           false,
		"quantity":            1,
		"subscription":        nil,
		"tax_rates":           []any{},
		"test_clock":          nstr(s.customers[ii.customer].clock),
		"unit_amount":         ii.amount,
		"unit_amount_decimal": fmt.Sprint(ii.amount),
	}
}

var invoiceItemCreateSchema = newSchema([]string{"customer", "amount", "currency", "description", "metadata", "metadata[*]", "expand[#]"},
	nil, []string{"price", "price_data", "quantity", "unit_amount", "unit_amount_decimal", "subscription", "invoice", "discounts", "tax_rates", "period"})

func hInvoiceItemCreate(c *reqCtx) (map[string]any, *apiError) {
	if err := c.check(invoiceItemCreateSchema); err != nil {
		return nil, err
	}
	s := c.s
	cu, err := c.requiredCustomer()
	if err != nil {
		return nil, err
	}
	amount, ok, err := c.p.int64("amount")
	if err != nil {
		return nil, err
	}
	if !ok {
		return nil, missingParam("amount")
	}
	cur, _ := c.p.str("currency")
	cur = strings.ToLower(cur)
	if cur == "" {
		return nil, missingParam("currency")
	}
	if cu.currency != "" && cu.currency != cur {
		return nil, requestError("currency", "You cannot combine currencies on a single customer. This customer has had a subscription, coupon, or invoice item with currency %s", cu.currency)
	}
	mu, err := c.p.metadata()
	if err != nil {
		return nil, err
	}
	ii := &invoiceItem{ID: newID("ii"), seq: s.nextSeq(), created: s.customerNow(cu), customer: cu.ID, amount: amount,
		currency: cur, description: c.p.strOr("", "description"), metadata: mu.apply(map[string]string{})}
	cu.currency = cur
	s.invoiceItems[ii.ID] = ii
	obj := s.renderInvoiceItem(ii)
	s.emit("invoiceitem.created", obj, nil, c.origin(), ii.created)
	return obj, nil
}

var invoiceCreateSchema = newSchema([]string{"customer", "description", "pending_invoice_items_behavior", "auto_advance",
	"collection_method", "metadata", "metadata[*]", "expand[#]"}, nil,
	[]string{"subscription", "discounts", "default_payment_method", "days_until_due", "due_date", "currency", "account_tax_ids",
		"application_fee_amount", "automatic_tax", "custom_fields", "default_source", "default_tax_rates", "footer",
		"from_invoice", "issuer", "on_behalf_of", "payment_settings", "rendering", "shipping_cost", "shipping_details",
		"statement_descriptor", "transfer_data", "effective_at"})

func hInvoiceCreate(c *reqCtx) (map[string]any, *apiError) {
	if err := c.check(invoiceCreateSchema); err != nil {
		return nil, err
	}
	s := c.s
	cu, err := c.requiredCustomer()
	if err != nil {
		return nil, err
	}
	behavior := c.p.strOr("exclude", "pending_invoice_items_behavior")
	if behavior != "include" && behavior != "exclude" {
		return nil, invalidParam("pending_invoice_items_behavior", "Invalid pending_invoice_items_behavior: must be one of exclude or include")
	}
	if cm := c.p.strOr("charge_automatically", "collection_method"); cm != "charge_automatically" {
		return nil, invalidParam("collection_method", "stripe-sim simulates only collection_method=charge_automatically.")
	}
	at := s.customerNow(cu)
	in := &invoice{ID: newID("in"), customer: cu.ID, status: "draft", currency: cu.currency, billingReason: "manual",
		created: at, clock: cu.clock, periodStart: at, periodEnd: at, description: c.p.strOr("", "description")}
	if in.currency == "" {
		in.currency = "usd"
	}
	if behavior == "include" {
		var items []*invoiceItem
		for _, ii := range s.invoiceItems {
			if ii.customer == cu.ID && ii.invoice == "" {
				items = append(items, ii)
			}
		}
		sortBySeq(items, func(ii *invoiceItem) int64 { return ii.seq })
		for _, ii := range items {
			ii.invoice = in.ID
			in.lines = append(in.lines, &invoiceLine{ID: newID("il"), amount: ii.amount, currency: ii.currency,
				quantity: 1, periodStart: ii.created, periodEnd: ii.created, description: ii.description, invoiceItem: ii.ID})
			in.subtotal += ii.amount
		}
	}
	if d := s.customerDiscountFor(cu.ID, at); d != nil {
		s.applyDiscount(in, d)
		var disc int64
		for _, l := range in.lines {
			for _, da := range l.discountAmounts {
				disc += da.amount
			}
		}
		in.totalDiscounts = []discAmt{{amount: disc, discount: d.ID}}
		in.total = in.subtotal - disc
	} else {
		in.total = in.subtotal
	}
	in.amountDue, in.amountRemaining = in.total, in.total
	in.seq = s.nextSeq()
	s.invoices[in.ID] = in
	obj := s.renderInvoice(in)
	s.emit("invoice.created", obj, nil, c.origin(), at)
	return obj, nil
}

// finalizeDraft finalizes a draft invoice (its number, status open) and
// returns the invoice.finalized event.
func (s *Server) finalizeDraft(in *invoice, at int64) pendingEvent {
	cu := s.customers[in.customer]
	in.status = "open"
	in.finalizedAt = at
	in.number = fmt.Sprintf("%s-%04d", cu.invoicePrefix, cu.nextInvoice)
	cu.nextInvoice++
	return pendingEvent{typ: "invoice.finalized", obj: s.renderInvoice(in), created: at}
}

func sortBySeq[T any](xs []T, seq func(T) int64) {
	for i := 1; i < len(xs); i++ {
		for j := i; j > 0 && seq(xs[j]) < seq(xs[j-1]); j-- {
			xs[j], xs[j-1] = xs[j-1], xs[j]
		}
	}
}

func init() {
	addRoute("POST", "/v1/payment_methods/{id}/attach", hPaymentMethodAttach)
	addRoute("GET", "/v1/payment_methods/{id}", hPaymentMethodRetrieve)
	addRoute("POST", "/v1/invoiceitems", hInvoiceItemCreate)
	addRoute("POST", "/v1/invoices", hInvoiceCreate)
}

// renderItemLine renders a one-off invoice's line (type invoiceitem).
func (s *Server) renderItemLine(in *invoice, l *invoiceLine) map[string]any {
	discounts := []any{}
	for _, da := range l.discountAmounts {
		discounts = append(discounts, da.discount)
	}
	return map[string]any{
		"id": l.ID, "object": "line_item", "amount": l.amount, "amount_excluding_tax": l.amount,
		"currency": l.currency, "description": nstr(l.description), "discount_amounts": discAmtsJSON(l.discountAmounts),
		"discountable": true, "discounts": discounts, "invoice": nstr(in.ID), "invoice_item": l.invoiceItem, "livemode": false,
		"metadata": map[string]any{}, "period": map[string]any{"start": l.periodStart, "end": l.periodEnd},
		"plan": nil, "price": nil, "proration": false,
		"proration_details": map[string]any{"credited_items": nil}, "quantity": l.quantity,
		// No subscription_item: the spec has it optional and not nullable.
		"subscription": nil, "tax_amounts": []any{},
		"tax_rates": []any{}, "type": "invoiceitem",
		"unit_amount_excluding_tax": fmt.Sprint(l.amount),
	}
}

// requiredCustomer is the request's customer parameter: required, and a
// customer that exists.
func (c *reqCtx) requiredCustomer() (*customer, *apiError) {
	id, ok := c.p.str("customer")
	if !ok || id == "" {
		return nil, missingParam("customer")
	}
	cu := c.s.customers[id]
	if cu == nil {
		return nil, noSuchParam("customer", "customer", id)
	}
	return cu, nil
}
