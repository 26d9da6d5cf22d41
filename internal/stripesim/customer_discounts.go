package stripesim

// Discounts on a customer (coupon / promotion_code on POST /v1/customers and
// POST /v1/customers/{id}, API 2023-10-16), as `stripe trigger
// customer.discount.*` makes them. As on Stripe:
//   - the discount has customer set and subscription null, and shows as the
//     customer's `discount`;
//   - creating a customer with one records customer.created then
//     customer.discount.created; setting another coupon replaces it
//     (customer.discount.updated, previous_attributes naming the old discount);
//     coupon="" removes it (customer.discount.deleted); each change also
//     records customer.updated;
//   - it applies to the customer's invoices that have no discount of their
//     own: subscription invoices of subscriptions without a discount, and
//     one-off invoices. A `once` customer discount is removed after the first
//     invoice that used it (customer.discount.deleted).
//
// Simplification: a repeating customer discount stops applying at its end but
// is not removed with an event at that moment (Stripe removes it then).

// readCustomerDiscount parses coupon / promotion_code on a customer request.
func readCustomerDiscount(c *reqCtx) (discountRequest, *apiError) {
	var dr discountRequest
	pcode, hasPromo, err := c.p.scalar("promotion_code")
	if err != nil {
		return dr, err
	}
	cid, hasCoupon, err := c.p.scalar("coupon")
	if err != nil {
		return dr, err
	}
	switch {
	case hasPromo && hasCoupon:
		return dr, invalidParamCode("parameters_exclusive", "promotion_code", "You may only specify one of these parameters: coupon, promotion_code.")
	case hasPromo:
		dr = discountRequest{present: true, clear: pcode == "", promo: pcode, param: "promotion_code"}
	case hasCoupon:
		dr = discountRequest{present: true, clear: cid == "", coupon: cid, param: "coupon"}
	}
	return dr, nil
}

// customerDiscountChange validates a customer's requested discount (no side
// effects) and returns a function that applies it and returns its event (nil
// when nothing changed), for the caller to record.
func (s *Server) customerDiscountChange(cu *customer, dr discountRequest) (func() *pendingEvent, *apiError) {
	if !dr.present {
		return func() *pendingEvent { return nil }, nil
	}
	at := s.customerNow(cu)
	if dr.clear {
		return func() *pendingEvent {
			old := cu.discount
			if old == nil {
				return nil
			}
			cu.discount = nil
			return &pendingEvent{typ: "customer.discount.deleted", obj: s.renderDiscount(old), created: at}
		}, nil
	}
	cp, pc, err := s.resolveDiscount(dr, redemptionContext{cu: cu, at: at})
	if err != nil {
		return nil, err
	}
	return func() *pendingEvent {
		old := cu.discount
		d := s.newDiscount(cp, pc, cu.ID, "", at)
		cu.discount = d
		if old == nil {
			return &pendingEvent{typ: "customer.discount.created", obj: s.renderDiscount(d), created: at}
		}
		return &pendingEvent{typ: "customer.discount.updated", obj: s.renderDiscount(d),
			prev: previousAttributes(s.renderDiscount(old), s.renderDiscount(d)), created: at}
	}, nil
}

// customerDiscountFor is the customer's discount that applies to an invoice
// created at `at`, or nil.
func (s *Server) customerDiscountFor(customerID string, at int64) *discount {
	cu := s.customers[customerID]
	if cu == nil || cu.discount == nil || cu.discount.coupon.deleted || !cu.discount.activeAt(at) {
		return nil
	}
	return cu.discount
}

// usedCustomerDiscount records that an invoice used d: a once customer
// discount is removed. It returns the event to record (nil if none).
func (s *Server) usedCustomerDiscount(d *discount, at int64) *pendingEvent {
	if d == nil || d.subscription != "" || d.coupon.duration != "once" {
		return nil
	}
	d.used = true
	cu := s.customers[d.customer]
	if cu == nil || cu.discount != d {
		return nil
	}
	cu.discount = nil
	return &pendingEvent{typ: "customer.discount.deleted", obj: s.renderDiscount(d), created: at}
}

func (s *Server) renderCustomerDiscount(cu *customer) any {
	if cu.discount == nil {
		return nil
	}
	return s.renderDiscount(cu.discount)
}
