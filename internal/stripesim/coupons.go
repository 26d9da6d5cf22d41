package stripesim

import (
	"strconv"

	stripe "github.com/stripe/stripe-go/v76"
)

type coupon struct {
	ID             string
	seq            int64
	created        int64
	percentBP      int64 // hundredths of a percent; 0 for amount_off coupons
	amountOff      int64
	currency       string // only for amount_off coupons
	duration       string // once | repeating | forever
	months         int64  // duration_in_months (repeating)
	maxRedemptions int64  // 0 = unlimited
	redeemBy       int64  // 0 = none
	timesRedeemed  int64
	appliesTo      []string // product IDs; nil = every product
	name           string
	metadata       map[string]string
	deleted        bool
}

// validAt reports whether the coupon can still be redeemed at time now.
func (cp *coupon) validAt(now int64) bool {
	if cp.deleted {
		return false
	}
	if cp.redeemBy != 0 && now >= cp.redeemBy {
		return false
	}
	if cp.maxRedemptions != 0 && cp.timesRedeemed >= cp.maxRedemptions {
		return false
	}
	return true
}

// appliesToProduct reports whether a line for product is eligible.
func (cp *coupon) appliesToProduct(prod string) bool {
	if cp.appliesTo == nil {
		return true
	}
	for _, p := range cp.appliesTo {
		if p == prod {
			return true
		}
	}
	return false
}

func (s *Server) renderCoupon(cp *coupon) map[string]any {
	var pct any
	if cp.percentBP != 0 {
		pct = percentJSON(cp.percentBP)
	}
	var months any
	if cp.duration == "repeating" {
		months = cp.months
	}
	var amount any
	if cp.percentBP == 0 {
		amount = cp.amountOff
	}
	return map[string]any{
		"id":                 cp.ID,
		"object":             "coupon",
		"amount_off":         amount,
		"created":            cp.created,
		"currency":           nstr(cp.currency),
		"duration":           cp.duration,
		"duration_in_months": months,
		"livemode":           false,
		"max_redemptions":    nint(cp.maxRedemptions),
		"metadata":           metaJSON(cp.metadata),
		"name":               nstr(cp.name),
		"percent_off":        pct,
		"redeem_by":          nint(cp.redeemBy),
		"times_redeemed":     cp.timesRedeemed,
		"valid":              cp.validAt(s.realNow()),
	}
}

// couponAppliesToJSON renders applies_to, which Stripe only includes when
// expanded (expand[]=applies_to).
func (s *Server) couponAppliesToJSON(id string) map[string]any {
	prods := []any{}
	if cp := s.coupons[id]; cp != nil {
		for _, p := range cp.appliesTo {
			prods = append(prods, p)
		}
	}
	return map[string]any{"products": prods}
}

var couponCreateSchema = newSchema(
	[]string{"id", "percent_off", "amount_off", "currency", "duration", "duration_in_months", "max_redemptions",
		"redeem_by", "applies_to[products][#]", "applies_to[products]", "name", "metadata", "metadata[*]", "expand[#]"},
	nil, formNames(stripe.CouponParams{}))

// Coupon update only accepts name and metadata (and expand); Stripe answers
// parameter_unknown for anything else.
var couponUpdateSchema = newSchema([]string{"name", "metadata", "metadata[*]", "expand[#]"}, nil, nil)

func hCouponCreate(c *reqCtx) (map[string]any, *apiError) {
	if err := c.check(couponCreateSchema); err != nil {
		return nil, err
	}
	s := c.s
	cp := &coupon{duration: "once", metadata: map[string]string{}}
	id, _, err := c.p.scalar("id")
	if err != nil {
		return nil, err
	}
	if id != "" && s.coupons[id] != nil {
		return nil, &apiError{Status: 400, Type: typeInvalidRequest, Code: "resource_already_exists", Param: "id",
			Message: "Coupon already exists."}
	}
	pctStr, hasPct, err := c.p.scalar("percent_off")
	if err != nil {
		return nil, err
	}
	amt, hasAmt, err := c.p.int64("amount_off")
	if err != nil {
		return nil, err
	}
	cur, hasCur, err := c.p.scalar("currency")
	if err != nil {
		return nil, err
	}
	switch {
	case hasPct && hasAmt:
		return nil, invalidParamCode("parameters_exclusive", "percent_off", "You may only specify one of these parameters: amount_off, percent_off.")
	case !hasPct && !hasAmt:
		return nil, invalidParamCode("parameter_missing", "percent_off", "You must pass either amount_off or percent_off.")
	case hasPct:
		if cp.percentBP, err = parsePercent("percent_off", pctStr); err != nil {
			return nil, err
		}
		if hasCur && cur != "" {
			if _, err := parseCurrency("currency", cur); err != nil {
				return nil, err
			}
		}
	default:
		if amt <= 0 {
			return nil, invalidParam("amount_off", "Invalid amount_off: must be a positive integer.")
		}
		if !hasCur || cur == "" {
			return nil, invalidParamCode("parameter_missing", "currency", "You must pass currency when passing amount_off.")
		}
		if cp.currency, err = parseCurrency("currency", cur); err != nil {
			return nil, err
		}
		if amt > 99999999 {
			return nil, invalidParam("amount_off", "Invalid amount_off: must be at most 99999999.")
		}
		cp.amountOff = amt
	}
	if d, ok, err := c.p.scalar("duration"); err != nil {
		return nil, err
	} else if ok {
		switch d {
		case "once", "repeating", "forever":
			cp.duration = d
		default:
			return nil, invalidParam("duration", "Invalid duration: must be one of forever, once, or repeating")
		}
	}
	months, hasMonths, err := c.p.int64("duration_in_months")
	if err != nil {
		return nil, err
	}
	if cp.duration == "repeating" {
		if !hasMonths {
			return nil, invalidParamCode("parameter_missing", "duration_in_months", "Missing required param: duration_in_months. It is required when duration is repeating.")
		}
		if months <= 0 || months > 1200 {
			return nil, invalidParam("duration_in_months", "Invalid duration_in_months: must be a positive integer.")
		}
		cp.months = months
	} else if hasMonths {
		return nil, invalidParam("duration_in_months", "duration_in_months can only be set when duration is repeating (got duration=%s).", cp.duration)
	}
	if n, ok, err := c.p.int64("max_redemptions"); err != nil {
		return nil, err
	} else if ok {
		if n <= 0 {
			return nil, invalidParam("max_redemptions", "Invalid max_redemptions: must be a positive integer.")
		}
		cp.maxRedemptions = n
	}
	if t, ok, err := c.p.int64("redeem_by"); err != nil {
		return nil, err
	} else if ok {
		if t <= s.realNow() {
			return nil, invalidParam("redeem_by", "Invalid redeem_by: must be in the future.")
		}
		cp.redeemBy = t
	}
	if name, ok, err := c.p.scalar("name"); err != nil {
		return nil, err
	} else if ok {
		if len([]rune(name)) > 40 {
			return nil, invalidParam("name", "Invalid name: must be at most 40 characters.")
		}
		cp.name = name
	}
	mu, err := c.p.metadata()
	if err != nil {
		return nil, err
	}
	cp.metadata = mu.apply(nil)
	if c.p.has("applies_to") {
		prods, err := c.p.strList("applies_to", "products")
		if err != nil {
			return nil, err
		}
		for i, pid := range prods {
			if s.products[pid] == nil {
				return nil, noSuchParam("product", "applies_to[products]["+strconv.Itoa(i)+"]", pid)
			}
		}
		if len(prods) > 0 {
			cp.appliesTo = prods
		}
	}
	if id == "" {
		id = randomString(8, "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ")
	}
	cp.ID = id
	cp.seq = s.nextSeq()
	cp.created = s.realNow()
	s.coupons[cp.ID] = cp
	s.idx.coupons.add(cp)
	s.emit("coupon.created", s.renderCoupon(cp), nil, c.origin(), cp.created)
	return s.renderCoupon(cp), nil
}

func (s *Server) couponByPath(id string) (*coupon, *apiError) {
	cp := s.coupons[id]
	if cp == nil {
		return nil, noSuchPath("coupon", id)
	}
	return cp, nil
}

func hCouponRetrieve(c *reqCtx) (map[string]any, *apiError) {
	if err := c.check(retrieveSchema); err != nil {
		return nil, err
	}
	cp, err := c.s.couponByPath(c.id())
	if err != nil {
		return nil, err
	}
	return c.s.renderCoupon(cp), nil
}

func hCouponUpdate(c *reqCtx) (map[string]any, *apiError) {
	if err := c.check(couponUpdateSchema); err != nil {
		return nil, err
	}
	s := c.s
	cp, err := s.couponByPath(c.id())
	if err != nil {
		return nil, err
	}
	before := s.renderCoupon(cp)
	name, hasName, err := c.p.scalar("name")
	if err != nil {
		return nil, err
	}
	if hasName && len([]rune(name)) > 40 {
		return nil, invalidParam("name", "Invalid name: must be at most 40 characters.")
	}
	mu, err := c.p.metadata()
	if err != nil {
		return nil, err
	}
	if hasName {
		cp.name = name
	}
	cp.metadata = mu.apply(cp.metadata)
	s.emitUpdate("coupon.updated", before, s.renderCoupon(cp), c.origin(), s.realNow())
	return s.renderCoupon(cp), nil
}

var deleteSchema = newSchema(nil, nil, nil)

// hCouponDelete deletes a coupon. Discounts already using it keep working
// (as on Stripe); its promotion codes can no longer be redeemed.
func hCouponDelete(c *reqCtx) (map[string]any, *apiError) {
	if err := c.check(deleteSchema); err != nil {
		return nil, err
	}
	s := c.s
	cp, err := s.couponByPath(c.id())
	if err != nil {
		return nil, err
	}
	cp.deleted = true
	delete(s.coupons, cp.ID)
	s.emit("coupon.deleted", s.renderCoupon(cp), nil, c.origin(), s.realNow())
	return map[string]any{"id": cp.ID, "object": "coupon", "deleted": true}, nil
}

var couponListSchema = newSchema(listSchemaBase, nil, nil)

func hCouponList(c *reqCtx) (map[string]any, *apiError) {
	if err := c.check(couponListSchema); err != nil {
		return nil, err
	}
	s := c.s
	created, err := c.p.rangeFilter("created")
	if err != nil {
		return nil, err
	}
	return paginate(c, "/v1/coupons", s.idx.coupons.view(s.coupons, func(x *coupon) int64 { return x.seq }), func(cp *coupon) bool {
		if created.match(cp.created) {
			return true
		}
		return false
	}, func(x *coupon) int64 { return x.seq },
		func(id string) (int64, bool) {
			if x := s.coupons[id]; x != nil {
				return x.seq, true
			}
			return 0, false
		}, "coupon", s.renderCoupon)
}
