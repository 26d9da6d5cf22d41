package stripesim

import (
	"net/http"
	"strconv"

	stripe "github.com/stripe/stripe-go/v76"
)

type subItem struct {
	ID       string
	price    string
	quantity int64
	created  int64
	metadata map[string]string
}

type subscription struct {
	ID            string
	seq           int64
	created       int64
	customer      string
	status        string // active | past_due | incomplete | canceled
	anchor        int64
	period        int // index of the current period counted from the anchor
	items         []*subItem
	discount      *discount
	metadata      map[string]string
	latestInvoice string
	canceledAt    int64
	endedAt       int64
	cancelComment string
	cancelFeedbk  string
	description   string
	currency      string
}

func (sub *subscription) periodStart() int64 { return addMonths(sub.anchor, sub.period) }
func (sub *subscription) periodEnd() int64   { return addMonths(sub.anchor, sub.period+1) }

// renderPlan renders the legacy plan view of a monthly price that Stripe
// still includes on subscription items and invoice lines.
func (s *Server) renderPlan(p *price) map[string]any {
	return map[string]any{
		"id": p.ID, "object": "plan", "active": p.active, "aggregate_usage": nil,
		"amount": p.unitAmount, "amount_decimal": strconv.FormatInt(p.unitAmount, 10),
		"billing_scheme": "per_unit", "created": p.created, "currency": p.currency,
		"interval": "month", "interval_count": 1, "livemode": false, "metadata": metaJSON(p.metadata),
		"nickname": nstr(p.nickname), "product": p.product, "tiers_mode": nil, "transform_usage": nil,
		"trial_period_days": nil, "usage_type": "licensed",
	}
}

func (s *Server) renderSubscription(sub *subscription) map[string]any {
	items := make([]any, 0, len(sub.items))
	for _, it := range sub.items {
		pr := s.prices[it.price]
		items = append(items, map[string]any{
			"id": it.ID, "object": "subscription_item", "billing_thresholds": nil, "created": it.created,
			"discounts": []any{}, "metadata": metaJSON(it.metadata), "plan": s.renderPlan(pr),
			"price": s.renderPrice(pr), "quantity": it.quantity, "subscription": sub.ID, "tax_rates": []any{},
		})
	}
	var disc any
	discIDs := []any{}
	if sub.discount != nil {
		disc = s.renderDiscount(sub.discount)
		discIDs = append(discIDs, sub.discount.ID)
	}
	cancellation := map[string]any{"comment": nstr(sub.cancelComment), "feedback": nstr(sub.cancelFeedbk), "reason": nil}
	if sub.status == "canceled" {
		cancellation["reason"] = "cancellation_requested"
	}
	cu := s.customers[sub.customer]
	clock := ""
	if cu != nil {
		clock = cu.clock
	}
	return map[string]any{
		"id":                                sub.ID,
		"object":                            "subscription",
		"application":                       nil,
		"application_fee_percent":           nil,
		"automatic_tax":                     map[string]any{"enabled": false, "liability": nil},
		"billing_cycle_anchor":              sub.anchor,
		"billing_cycle_anchor_config":       nil,
		"billing_thresholds":                nil,
		"cancel_at":                         nil,
		"cancel_at_period_end":              false,
		"canceled_at":                       nint(sub.canceledAt),
		"cancellation_details":              cancellation,
		"collection_method":                 "charge_automatically",
		"created":                           sub.created,
		"currency":                          sub.currency,
		"current_period_end":                sub.periodEnd(),
		"current_period_start":              sub.periodStart(),
		"customer":                          sub.customer,
		"days_until_due":                    nil,
		"default_payment_method":            nil,
		"default_source":                    nil,
		"default_tax_rates":                 []any{},
		"description":                       nstr(sub.description),
		"discount":                          disc,
		"discounts":                         discIDs,
		"ended_at":                          nint(sub.endedAt),
		"items":                             map[string]any{"object": "list", "data": items, "has_more": false, "total_count": len(items), "url": "/v1/subscription_items?subscription=" + sub.ID},
		"latest_invoice":                    nstr(sub.latestInvoice),
		"livemode":                          false,
		"metadata":                          metaJSON(sub.metadata),
		"next_pending_invoice_item_invoice": nil,
		"on_behalf_of":                      nil,
		"pause_collection":                  nil,
		"payment_settings":                  map[string]any{"payment_method_options": nil, "payment_method_types": nil, "save_default_payment_method": "off"},
		"pending_invoice_item_interval":     nil,
		"pending_setup_intent":              nil,
		"pending_update":                    nil,
		"schedule":                          nil,
		"start_date":                        sub.created,
		"status":                            sub.status,
		"test_clock":                        nstr(clock),
		"transfer_data":                     nil,
		"trial_end":                         nil,
		"trial_settings":                    map[string]any{"end_behavior": map[string]any{"missing_payment_method": "create_invoice"}},
		"trial_start":                       nil,
	}
}

var subIgnored = []string{"payment_behavior", "proration_behavior", "off_session", "default_payment_method",
	"payment_settings[**]", "automatic_tax[enabled]", "collection_method"}

var subCreateSchema = newSchema(
	[]string{"customer", "items[#][price]", "items[#][plan]", "items[#][quantity]", "items[#][metadata]", "items[#][metadata][*]",
		"promotion_code", "coupon", "discounts", "discounts[#][coupon]", "discounts[#][promotion_code]", "discounts[#][discount]",
		"metadata", "metadata[*]", "description", "expand[#]"},
	subIgnored, formNames(stripe.SubscriptionParams{}))

var subUpdateSchema = newSchema(
	[]string{"promotion_code", "coupon", "discounts", "discounts[#][coupon]", "discounts[#][promotion_code]", "discounts[#][discount]",
		"metadata", "metadata[*]", "description", "cancellation_details[comment]", "cancellation_details[feedback]", "expand[#]"},
	append([]string{"proration_date"}, subIgnored...), formNames(stripe.SubscriptionParams{}))

func checkEnums(c *reqCtx) *apiError {
	for _, f := range []struct {
		name string
		ok   []string
	}{
		{"payment_behavior", []string{"allow_incomplete", "default_incomplete", "error_if_incomplete", "pending_if_incomplete"}},
		{"proration_behavior", []string{"create_prorations", "none", "always_invoice"}},
		{"collection_method", []string{"charge_automatically"}},
	} {
		v, ok := c.p.str(f.name)
		if !ok {
			continue
		}
		valid := false
		for _, o := range f.ok {
			valid = valid || v == o
		}
		if !valid {
			return invalidParam(f.name, "Invalid %s: %q is not supported (stripe-sim accepts %v).", f.name, v, f.ok)
		}
	}
	return nil
}

func hSubCreate(c *reqCtx) (map[string]any, *apiError) {
	if err := c.check(subCreateSchema); err != nil {
		return nil, err
	}
	if err := checkEnums(c); err != nil {
		return nil, err
	}
	s := c.s
	custID, ok, err := c.p.scalar("customer")
	if err != nil {
		return nil, err
	}
	if !ok || custID == "" {
		return nil, missingParam("customer")
	}
	els, err := c.p.list("items")
	if err != nil {
		return nil, err
	}
	if len(els) == 0 {
		return nil, missingParam("items")
	}
	type itemReq struct {
		price    string
		quantity int64
		meta     map[string]string
	}
	var reqs []itemReq
	for i, el := range els {
		param := "items[" + strconv.Itoa(i) + "]"
		ir := itemReq{quantity: 1, meta: map[string]string{}}
		// items[][plan] is the deprecated name of items[][price] (a plan ID is its price's ID); Stripe still accepts it.
		if (el.kids["price"] == nil || el.kids["price"].val == nil) && el.kids["plan"] != nil && el.kids["plan"].val != nil {
			el.kids["price"] = el.kids["plan"]
		} else if el.kids["plan"] != nil && el.kids["plan"].val != nil {
			return nil, invalidParamCode("parameters_exclusive", param+"[plan]", "You may only specify one of these parameters: plan, price.")
		}
		if el.kids["price"] == nil || el.kids["price"].val == nil || *el.kids["price"].val == "" {
			return nil, missingParam(param + "[price]")
		}
		ir.price = *el.kids["price"].val
		if q := el.kids["quantity"]; q != nil && q.val != nil {
			n, perr := strconv.ParseInt(*q.val, 10, 64)
			if perr != nil {
				return nil, invalidParamCode("parameter_invalid_integer", param+"[quantity]", "Invalid integer: %s", *q.val)
			}
			if n < 1 {
				return nil, invalidParam(param+"[quantity]", "Invalid %s[quantity]: must be at least 1.", param)
			}
			ir.quantity = n
		}
		if m := el.kids["metadata"]; m != nil {
			for _, k := range m.order {
				if v := m.kids[k].val; v != nil && *v != "" {
					ir.meta[k] = *v
				}
			}
		}
		reqs = append(reqs, ir)
	}
	dr, err := readDiscountRequest(c)
	if err != nil {
		return nil, err
	}
	mu, err := c.p.metadata()
	if err != nil {
		return nil, err
	}
	desc, _ := c.p.str("description")
	behavior, _ := c.p.str("payment_behavior")

	// Execution.
	cu := s.customers[custID]
	if cu == nil {
		return nil, noSuchParam("customer", "customer", custID)
	}
	at := s.customerNow(cu)
	sub := &subscription{ID: newID("sub"), customer: cu.ID, status: "incomplete", anchor: at, created: at,
		metadata: mu.apply(nil), description: desc}
	for i, ir := range reqs {
		param := "items[" + strconv.Itoa(i) + "][price]"
		pr := s.prices[ir.price]
		switch {
		case pr == nil:
			return nil, noSuchParam("price", param, ir.price)
		case !pr.recurring:
			return nil, requestError(param, "The price specified is set to `type=one_time` but this field only accepts prices with `type=recurring`.")
		case !pr.active:
			return nil, requestError(param, "The price specified is inactive. This field only accepts active prices.")
		case sub.currency != "" && pr.currency != sub.currency:
			return nil, requestError(param, "All prices on a subscription must have the same currency (%s vs %s).", sub.currency, pr.currency)
		}
		for _, it := range sub.items {
			if it.price == pr.ID {
				return nil, requestError(param, "Cannot add multiple subscription items with the same price: %s", pr.ID)
			}
		}
		sub.currency = pr.currency
		sub.items = append(sub.items, &subItem{ID: newID("si"), price: pr.ID, quantity: ir.quantity, created: at, metadata: ir.meta})
	}
	if cu.currency != "" && cu.currency != sub.currency {
		return nil, requestError("currency", "You cannot combine currencies on a single customer. This customer has had a subscription, coupon, or invoice item with currency %s", cu.currency)
	}
	var cp *coupon
	var pc *promoCode
	if dr.present && !dr.clear {
		var subtotal int64
		for _, it := range sub.items {
			subtotal += s.prices[it.price].unitAmount * it.quantity
		}
		cp, pc, err = s.resolveDiscount(dr, redemptionContext{cu: cu, at: at, subtotal: subtotal, currency: sub.currency})
		if err != nil {
			return nil, err
		}
	}
	if behavior == "error_if_incomplete" && cu.decline {
		var d *discount
		if cp != nil {
			d = &discount{ID: "di_preview", coupon: cp}
		}
		if s.invoiceFor(sub, sub.periodStart(), sub.periodEnd(), "subscription_create", d, at, true).amountDue > 0 {
			return nil, &apiError{Status: http.StatusPaymentRequired, Type: typeCard, Code: "card_declined",
				DeclineCode: "generic_decline", Message: "Your card was declined."}
		}
	}

	sub.seq = s.nextSeq()
	s.subs[sub.ID] = sub
	s.idx.subs.add(sub)
	s.indexRealTime(sub)
	s.indexClockSub(sub)
	cu.currency = sub.currency
	var d *discount
	if cp != nil {
		d = s.attachDiscount(sub, cp, pc, at)
	} else {
		d = s.customerDiscountFor(cu.ID, at) // customer_discounts.go
	}
	in := s.invoiceFor(sub, sub.periodStart(), sub.periodEnd(), "subscription_create", d, at, false)
	in.periodStart, in.periodEnd = at, at
	if d != nil && d.coupon.duration == "once" {
		d.used = true
	}
	sub.latestInvoice = in.ID
	evs := s.recordInvoice(in, at)
	if ev := s.usedCustomerDiscount(d, at); ev != nil {
		evs = append(evs, *ev)
	}
	if in.status == "paid" {
		sub.status = "active"
	}
	o := c.origin()
	s.emit("customer.subscription.created", s.renderSubscription(sub), nil, o, at)
	if d != nil {
		s.emit("customer.discount.created", s.renderDiscount(d), nil, o, at)
	}
	s.flush(evs, o)
	return s.renderSubscription(sub), nil
}

func (s *Server) subByPath(id string) (*subscription, *apiError) {
	sub := s.subs[id]
	if sub == nil {
		return nil, noSuchPath("subscription", id)
	}
	return sub, nil
}

func hSubRetrieve(c *reqCtx) (map[string]any, *apiError) {
	if err := c.check(retrieveSchema); err != nil {
		return nil, err
	}
	sub, err := c.s.subByPath(c.id())
	if err != nil {
		return nil, err
	}
	return c.s.renderSubscription(sub), nil
}

// hSubUpdate changes metadata/description and the discount. Applying a
// promotion code or coupon to an existing subscription does not prorate
// and does not invoice: the discount applies from the next invoice.
func hSubUpdate(c *reqCtx) (map[string]any, *apiError) {
	if err := c.check(subUpdateSchema); err != nil {
		return nil, err
	}
	if err := checkEnums(c); err != nil {
		return nil, err
	}
	s := c.s
	dr, err := readDiscountRequest(c)
	if err != nil {
		return nil, err
	}
	mu, err := c.p.metadata()
	if err != nil {
		return nil, err
	}
	sub, err := s.subByPath(c.id())
	if err != nil {
		return nil, err
	}
	cu := s.customers[sub.customer]
	at := s.customerNow(cu)
	if sub.status == "canceled" {
		for _, kv := range c.p.pairs {
			segs, _ := splitKey(kv[0])
			switch segs[0] {
			case "metadata", "cancellation_details", "expand":
			default:
				return nil, requestError(segs[0], "A canceled subscription can only update its cancellation_details and metadata.")
			}
		}
	}
	var cp *coupon
	var pc *promoCode
	if dr.present && !dr.clear {
		same := sub.discount != nil && ((dr.promo != "" && sub.discount.promo == dr.promo) ||
			(dr.coupon != "" && sub.discount.promo == "" && sub.discount.coupon.ID == dr.coupon && !sub.discount.coupon.deleted))
		if same {
			dr.present = false // re-applying the current discount is a no-op
		} else {
			var subtotal int64
			for _, it := range sub.items {
				subtotal += s.prices[it.price].unitAmount * it.quantity
			}
			cp, pc, err = s.resolveDiscount(dr, redemptionContext{cu: cu, at: at, update: true, subtotal: subtotal, currency: sub.currency})
			if err != nil {
				return nil, err
			}
		}
	}

	o := c.origin()
	before := s.renderSubscription(sub)
	sub.metadata = mu.apply(sub.metadata)
	if v, ok := c.p.str("description"); ok {
		sub.description = v
	}
	if v, ok := c.p.str("cancellation_details", "comment"); ok {
		sub.cancelComment = v
	}
	if v, ok := c.p.str("cancellation_details", "feedback"); ok {
		sub.cancelFeedbk = v
	}
	var discEvent *pendingEvent
	switch {
	case dr.present && dr.clear:
		if old := sub.discount; old != nil {
			sub.discount = nil
			discEvent = &pendingEvent{typ: "customer.discount.deleted", obj: s.renderDiscount(old), created: at}
		}
	case dr.present:
		old := sub.discount
		d := s.attachDiscount(sub, cp, pc, at)
		if old == nil {
			discEvent = &pendingEvent{typ: "customer.discount.created", obj: s.renderDiscount(d), created: at}
		} else {
			discEvent = &pendingEvent{typ: "customer.discount.updated", obj: s.renderDiscount(d),
				prev: previousAttributes(s.renderDiscount(old), s.renderDiscount(d)), created: at}
		}
	}
	if discEvent != nil {
		s.emit(discEvent.typ, discEvent.obj, discEvent.prev, o, at)
	}
	s.emitUpdate("customer.subscription.updated", before, s.renderSubscription(sub), o, at)
	return s.renderSubscription(sub), nil
}

var subCancelSchema = newSchema(
	[]string{"cancellation_details[comment]", "cancellation_details[feedback]", "invoice_now", "prorate", "expand[#]"}, nil,
	formNames(stripe.SubscriptionCancelParams{}))

func hSubCancel(c *reqCtx) (map[string]any, *apiError) {
	if err := c.check(subCancelSchema); err != nil {
		return nil, err
	}
	// invoice_now=true makes Stripe invoice un-invoiced metered usage and pending
	// proration items at once. The simulator has neither (licensed prices only,
	// prorate refused below), so there is nothing to invoice and, as on Stripe
	// in that case, no final invoice is made.
	if _, _, err := c.p.bool("invoice_now"); err != nil {
		return nil, err
	}
	if v, ok, err := c.p.bool("prorate"); err != nil {
		return nil, err
	} else if ok && v {
		return nil, invalidParam("prorate", "stripe-sim does not simulate prorate=true on cancel (no proration credit is created).")
	}
	s := c.s
	sub, err := s.subByPath(c.id())
	if err != nil {
		return nil, err
	}
	if sub.status == "canceled" {
		return nil, requestError("", "This subscription has already been canceled: %s", sub.ID)
	}
	at := s.customerNow(s.customers[sub.customer])
	if v, ok := c.p.str("cancellation_details", "comment"); ok {
		sub.cancelComment = v
	}
	if v, ok := c.p.str("cancellation_details", "feedback"); ok {
		sub.cancelFeedbk = v
	}
	sub.status = "canceled"
	sub.canceledAt, sub.endedAt = at, at
	s.emit("customer.subscription.deleted", s.renderSubscription(sub), nil, c.origin(), at)
	return s.renderSubscription(sub), nil
}

func hSubDeleteDiscount(c *reqCtx) (map[string]any, *apiError) {
	if err := c.check(deleteSchema); err != nil {
		return nil, err
	}
	s := c.s
	sub, err := s.subByPath(c.id())
	if err != nil {
		return nil, err
	}
	if sub.discount == nil {
		return nil, &apiError{Status: http.StatusNotFound, Type: typeInvalidRequest, Code: "resource_missing", Param: "discount",
			Message: "No active discount for subscription: '" + sub.ID + "'"}
	}
	at := s.customerNow(s.customers[sub.customer])
	d := s.removeDiscount(sub, at, c.origin())
	out := s.renderDiscount(d)
	out["deleted"] = true
	return out, nil
}

var subListSchema = newSchema(append([]string{"customer", "status", "price", "plan", "test_clock"}, listSchemaBase...),
	nil, formNames(stripe.SubscriptionListParams{}))

func hSubList(c *reqCtx) (map[string]any, *apiError) {
	if err := c.check(subListSchema); err != nil {
		return nil, err
	}
	s := c.s
	cust, hasCust := c.p.str("customer")
	status, hasStatus := c.p.str("status")
	if hasStatus {
		switch status {
		case "active", "past_due", "unpaid", "canceled", "incomplete", "incomplete_expired", "trialing", "paused", "all", "ended":
		default:
			return nil, invalidParam("status", "Invalid status: must be one of active, past_due, unpaid, canceled, incomplete, incomplete_expired, trialing, paused, all, or ended")
		}
	}
	priceID, hasPrice := c.p.str("price")
	if plan, ok := c.p.str("plan"); ok {
		priceID, hasPrice = plan, true
	}
	clock, hasClock := c.p.str("test_clock")
	created, err := c.p.rangeFilter("created")
	if err != nil {
		return nil, err
	}
	all := listSource(c, &s.idx.subs, s.idx.subs.view(s.subs, func(x *subscription) int64 { return x.seq }), created,
		func(x *subscription) int64 { return x.created })
	return paginate(c, "/v1/subscriptions", all, func(sub *subscription) bool {
		if hasCust && sub.customer != cust {
			return false
		}
		switch {
		case !hasStatus:
			if sub.status == "canceled" || sub.status == "incomplete_expired" {
				return false
			}
		case status == "all":
		case status == "ended":
			if sub.status != "canceled" && sub.status != "incomplete_expired" {
				return false
			}
		default:
			if sub.status != status {
				return false
			}
		}
		if hasPrice {
			found := false
			for _, it := range sub.items {
				found = found || it.price == priceID
			}
			if !found {
				return false
			}
		}
		if hasClock {
			cu := s.customers[sub.customer]
			if cu == nil || cu.clock != clock {
				return false
			}
		}
		if !created.match(sub.created) {
			return false
		}
		return true
	}, func(x *subscription) int64 { return x.seq },
		func(id string) (int64, bool) {
			if x := s.subs[id]; x != nil {
				return x.seq, true
			}
			return 0, false
		}, "subscription", s.renderSubscription)
}
