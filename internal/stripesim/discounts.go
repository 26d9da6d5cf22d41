package stripesim

import (
	"fmt"
	"net/http"
)

// discount is the application of a coupon (optionally through a promotion
// code) to a subscription. Discount objects are immutable once created
// (apart from the private `used` flag); replacing a subscription's
// discount creates a new one.
type discount struct {
	ID           string
	coupon       *coupon
	customer     string
	promo        string // promotion code ID
	subscription string
	start        int64
	end          int64 // repeating: start + N months; 0 (null) for once/forever
	used         bool  // once: an invoice already consumed it
}

func (s *Server) renderDiscount(d *discount) map[string]any {
	return map[string]any{
		"id":                d.ID,
		"object":            "discount",
		"checkout_session":  nil,
		"coupon":            s.renderCoupon(d.coupon),
		"customer":          d.customer,
		"end":               nint(d.end),
		"invoice":           nil,
		"invoice_item":      nil,
		"promotion_code":    nstr(d.promo),
		"start":             d.start,
		"subscription":      nstr(d.subscription),
		"subscription_item": nil,
	}
}

// activeAt reports whether the discount applies to an invoice created at t.
func (d *discount) activeAt(t int64) bool {
	if d == nil {
		return false
	}
	switch d.coupon.duration {
	case "once":
		return !d.used
	case "repeating":
		return t < d.end
	}
	return true
}

// discountRequest is a requested discount (promotion_code, coupon or
// discounts[0][...]) before validation. param names the parameter for
// errors.
type discountRequest struct {
	present bool   // a discount parameter was sent
	clear   bool   // sent empty: remove the discount
	promo   string // promotion code ID
	coupon  string // coupon ID
	param   string
}

// readDiscountRequest parses promotion_code / coupon / discounts.
func readDiscountRequest(c *reqCtx) (discountRequest, *apiError) {
	var dr discountRequest
	pcode, hasPromo, err := c.p.scalar("promotion_code")
	if err != nil {
		return dr, err
	}
	cid, hasCoupon, err := c.p.scalar("coupon")
	if err != nil {
		return dr, err
	}
	hasDiscounts := c.p.has("discounts")
	n := 0
	for _, b := range []bool{hasPromo, hasCoupon, hasDiscounts} {
		if b {
			n++
		}
	}
	if n > 1 {
		return dr, invalidParamCode("parameters_exclusive", "promotion_code", "You may only specify one of these parameters: coupon, discounts, promotion_code.")
	}
	switch {
	case hasPromo:
		dr = discountRequest{present: true, clear: pcode == "", promo: pcode, param: "promotion_code"}
	case hasCoupon:
		dr = discountRequest{present: true, clear: cid == "", coupon: cid, param: "coupon"}
	case hasDiscounts:
		els, err := c.p.list("discounts")
		if err != nil {
			return dr, err
		}
		if len(els) == 0 {
			return discountRequest{present: true, clear: true, param: "discounts"}, nil
		}
		if len(els) > 1 {
			return dr, invalidParam("discounts", "stripe-sim supports at most one discount per subscription (the 2023-10-16 `discount` field).")
		}
		el := els[0]
		get := func(k string) (string, bool) {
			if el.kids == nil || el.kids[k] == nil || el.kids[k].val == nil {
				return "", false
			}
			return *el.kids[k].val, true
		}
		dp, okP := get("promotion_code")
		dc, okC := get("coupon")
		if _, okD := get("discount"); okD {
			return dr, invalidParam("discounts[0][discount]", "stripe-sim does not support reusing an existing discount by ID.")
		}
		switch {
		case okP && okC:
			return dr, invalidParamCode("parameters_exclusive", "discounts[0][coupon]", "You may only specify one of these parameters: coupon, promotion_code.")
		case okP && dp != "":
			dr = discountRequest{present: true, promo: dp, param: "discounts[0][promotion_code]"}
		case okC && dc != "":
			dr = discountRequest{present: true, coupon: dc, param: "discounts[0][coupon]"}
		default:
			return dr, missingParam("discounts[0][coupon]")
		}
	}
	return dr, nil
}

// redemptionContext is what promotion code rules are checked against.
type redemptionContext struct {
	cu       *customer
	at       int64 // the customer's current time
	update   bool  // applying to an existing subscription
	subtotal int64 // per-period subtotal of the subscription
	currency string
}

func ruleError(param, format string, args ...any) *apiError {
	return &apiError{Status: http.StatusBadRequest, Type: typeInvalidRequest, Param: param, Message: fmt.Sprintf(format, args...)}
}

// customerHasPaid reports whether the customer has a paid invoice with
// amount_paid > 0 (what first_time_transaction looks at).
func (s *Server) customerHasPaid(cu *customer) bool {
	for _, in := range s.customerInvoices(cu.ID) {
		if in.status == "paid" && in.amountPaid > 0 {
			return true
		}
	}
	return false
}

// checkCoupon validates that a coupon can be redeemed at time at.
func checkCoupon(cp *coupon, at int64, param string) *apiError {
	if cp.deleted {
		return ruleError(param, "The coupon %s has been deleted and can no longer be redeemed.", cp.ID)
	}
	if !cp.validAt(at) {
		e := ruleError(param, "Coupon expired: %s", cp.ID)
		e.Code = "coupon_expired"
		return e
	}
	return nil
}

// resolveDiscount validates a discount request and returns the coupon and
// promotion code to apply. It has no side effects.
func (s *Server) resolveDiscount(dr discountRequest, rc redemptionContext) (*coupon, *promoCode, *apiError) {
	if dr.promo != "" {
		pc := s.promos[dr.promo]
		if pc == nil {
			return nil, nil, noSuchParam("promotion code", dr.param, dr.promo)
		}
		if err := s.checkPromo(pc, rc, dr.param); err != nil {
			return nil, nil, err
		}
		return pc.coupon, pc, nil
	}
	cp := s.coupons[dr.coupon]
	if cp == nil {
		return nil, nil, noSuchParam("coupon", dr.param, dr.coupon)
	}
	if err := checkCoupon(cp, rc.at, dr.param); err != nil {
		return nil, nil, err
	}
	return cp, nil, nil
}

// checkPromo applies Stripe's promotion code redemption rules.
func (s *Server) checkPromo(pc *promoCode, rc redemptionContext, param string) *apiError {
	switch {
	case !pc.active:
		return ruleError(param, "This promotion code is inactive and cannot be redeemed.")
	case pc.expiresAt != 0 && rc.at >= pc.expiresAt:
		return ruleError(param, "This promotion code cannot be redeemed because it has expired.")
	case pc.maxRedemptions != 0 && pc.timesRedeemed >= pc.maxRedemptions:
		return ruleError(param, "This promotion code cannot be redeemed because it has been used the maximum number of times.")
	case pc.customer != "" && pc.customer != rc.cu.ID:
		return ruleError(param, "This promotion code cannot be redeemed because it is restricted to a different customer.")
	}
	if err := checkCoupon(pc.coupon, rc.at, param); err != nil {
		return err
	}
	if pc.firstTime && s.customerHasPaid(rc.cu) {
		return ruleError(param, "This promotion code cannot be redeemed because the associated customer has prior transactions.")
	}
	min, minCur := pc.minAmount, pc.minAmountCurrency
	if v, ok := pc.currencyOptions[rc.currency]; ok {
		min, minCur = v, rc.currency
	}
	if min > 0 {
		if rc.update {
			return ruleError(param, "This promotion code cannot be redeemed on a subscription update because it uses the `minimum_amount` restriction and the amount may change.")
		}
		if minCur != rc.currency {
			return ruleError(param, "This promotion code cannot be redeemed because its minimum amount is in %s and this purchase is in %s.", minCur, rc.currency)
		}
		if rc.subtotal < min {
			return ruleError(param, "This promotion code cannot be redeemed because the minimum amount of %s was not met.", formatAmount(min, minCur))
		}
	}
	return nil
}

// attachDiscount creates a discount for sub, counts the redemption and
// returns it. Caller emits events.
func (s *Server) attachDiscount(sub *subscription, cp *coupon, pc *promoCode, at int64) *discount {
	d := s.newDiscount(cp, pc, sub.customer, sub.ID, at)
	sub.discount = d
	return d
}

// newDiscount records a discount of cp (through pc, when set) for the
// customer (on subscription, or "" for one on the customer) starting at at,
// and counts the redemption on the coupon and the promotion code.
func (s *Server) newDiscount(cp *coupon, pc *promoCode, customer, subscription string, at int64) *discount {
	d := &discount{ID: newID("di"), coupon: cp, customer: customer, subscription: subscription, start: at}
	if pc != nil {
		d.promo = pc.ID
		pc.timesRedeemed++
	}
	cp.timesRedeemed++
	if cp.duration == "repeating" {
		d.end = addMonths(at, int(cp.months))
	}
	s.discounts[d.ID] = d
	return d
}

// removeDiscount detaches sub's discount at time at and records
// customer.discount.deleted and customer.subscription.updated.
func (s *Server) removeDiscount(sub *subscription, at int64, o eventOrigin) *discount {
	d := sub.discount
	if d == nil {
		return nil
	}
	before := s.renderSubscription(sub)
	sub.discount = nil
	s.emit("customer.discount.deleted", s.renderDiscount(d), nil, o, at)
	s.emitUpdate("customer.subscription.updated", before, s.renderSubscription(sub), o, at)
	return d
}
