package stripesim

import (
	"sort"
	"strings"

	stripe "github.com/stripe/stripe-go/v76"
)

type promoCode struct {
	ID                string
	seq               int64
	created           int64
	code              string
	coupon            *coupon
	active            bool
	customer          string // restricted to this customer; "" = anyone
	expiresAt         int64  // 0 = never
	maxRedemptions    int64  // 0 = unlimited
	timesRedeemed     int64
	firstTime         bool
	minAmount         int64
	minAmountCurrency string
	currencyOptions   map[string]int64 // currency -> minimum_amount
	metadata          map[string]string
}

func (s *Server) renderPromo(pc *promoCode) map[string]any {
	opts := map[string]any{}
	for cur, min := range pc.currencyOptions {
		opts[cur] = map[string]any{"minimum_amount": min}
	}
	return map[string]any{
		"id":              pc.ID,
		"object":          "promotion_code",
		"active":          pc.active,
		"code":            pc.code,
		"coupon":          s.renderCoupon(pc.coupon),
		"created":         pc.created,
		"customer":        nstr(pc.customer),
		"expires_at":      nint(pc.expiresAt),
		"livemode":        false,
		"max_redemptions": nint(pc.maxRedemptions),
		"metadata":        metaJSON(pc.metadata),
		"restrictions": map[string]any{
			"currency_options":        opts,
			"first_time_transaction":  pc.firstTime,
			"minimum_amount":          nint(pc.minAmount),
			"minimum_amount_currency": nstr(pc.minAmountCurrency),
		},
		"times_redeemed": pc.timesRedeemed,
	}
}

var promoCreateSchema = newSchema(
	[]string{"coupon", "code", "active", "customer", "expires_at", "max_redemptions",
		"restrictions[first_time_transaction]", "restrictions[minimum_amount]", "restrictions[minimum_amount_currency]",
		"restrictions[currency_options][*][minimum_amount]", "metadata", "metadata[*]", "expand[#]"},
	nil, formNames(stripe.PromotionCodeParams{}))

// Promotion code update accepts active, metadata and
// restrictions[currency_options]; anything else is parameter_unknown.
var promoUpdateSchema = newSchema(
	[]string{"active", "metadata", "metadata[*]", "restrictions[currency_options][*][minimum_amount]", "expand[#]"},
	nil, nil)

// codeConflict finds an active promotion code with the same code
// (case-insensitive) that could be redeemed by the same customers: codes
// must be unique among active codes for each customer.
func (s *Server) codeConflict(code, customer string, except *promoCode) *promoCode {
	for _, o := range s.promosWithCode(code) {
		if o == except || !o.active || !strings.EqualFold(o.code, code) {
			continue
		}
		if o.customer != "" && customer != "" && o.customer != customer {
			continue
		}
		return o
	}
	return nil
}

func validCode(code string) bool {
	if code == "" || len(code) > 500 {
		return false
	}
	for _, r := range code {
		switch {
		case r >= 'a' && r <= 'z', r >= 'A' && r <= 'Z', r >= '0' && r <= '9', r == '-', r == '_':
		default:
			return false
		}
	}
	return true
}

func hPromoCreate(c *reqCtx) (map[string]any, *apiError) {
	if err := c.check(promoCreateSchema); err != nil {
		return nil, err
	}
	s := c.s
	pc := &promoCode{active: true, metadata: map[string]string{}, currencyOptions: map[string]int64{}}
	couponID, ok, err := c.p.scalar("coupon")
	if err != nil {
		return nil, err
	}
	if !ok || couponID == "" {
		return nil, missingParam("coupon")
	}
	code, hasCode, err := c.p.scalar("code")
	if err != nil {
		return nil, err
	}
	if hasCode && !validCode(code) {
		return nil, invalidParam("code", "Invalid code: %q. Promotion codes may only contain letters, digits, dashes and underscores, and be at most 500 characters long.", code)
	}
	if v, ok, err := c.p.bool("active"); err != nil {
		return nil, err
	} else if ok {
		pc.active = v
	}
	if v, ok, err := c.p.int64("expires_at"); err != nil {
		return nil, err
	} else if ok {
		if v <= s.realNow() {
			return nil, invalidParam("expires_at", "Invalid expires_at: must be in the future.")
		}
		pc.expiresAt = v
	}
	if v, ok, err := c.p.int64("max_redemptions"); err != nil {
		return nil, err
	} else if ok {
		if v <= 0 {
			return nil, invalidParam("max_redemptions", "Invalid max_redemptions: must be a positive integer.")
		}
		pc.maxRedemptions = v
	}
	if v, ok, err := c.p.bool("restrictions", "first_time_transaction"); err != nil {
		return nil, err
	} else if ok {
		pc.firstTime = v
	}
	if v, ok, err := c.p.int64("restrictions", "minimum_amount"); err != nil {
		return nil, err
	} else if ok {
		if v < 0 {
			return nil, invalidParam("restrictions[minimum_amount]", "Invalid restrictions[minimum_amount]: must be a non-negative integer.")
		}
		cur, hasCur := c.p.str("restrictions", "minimum_amount_currency")
		if !hasCur || cur == "" {
			return nil, invalidParamCode("parameter_missing", "restrictions[minimum_amount_currency]",
				"You must pass restrictions[minimum_amount_currency] when passing restrictions[minimum_amount].")
		}
		if pc.minAmountCurrency, err = parseCurrency("restrictions[minimum_amount_currency]", cur); err != nil {
			return nil, err
		}
		pc.minAmount = v
	} else if c.p.has("restrictions", "minimum_amount_currency") {
		return nil, invalidParam("restrictions[minimum_amount_currency]", "restrictions[minimum_amount_currency] requires restrictions[minimum_amount].")
	}
	if err := readCurrencyOptions(c, pc); err != nil {
		return nil, err
	}
	mu, err := c.p.metadata()
	if err != nil {
		return nil, err
	}
	pc.metadata = mu.apply(nil)

	// Execution: references and business rules.
	cp := s.coupons[couponID]
	if cp == nil {
		return nil, noSuchParam("coupon", "coupon", couponID)
	}
	if !cp.validAt(s.realNow()) {
		return nil, requestError("coupon", "Coupon %s is no longer valid and cannot be used for new promotion codes.", cp.ID)
	}
	pc.coupon = cp
	if cid, ok := c.p.str("customer"); ok && cid != "" {
		if s.customers[cid] == nil {
			return nil, noSuchParam("customer", "customer", cid)
		}
		pc.customer = cid
	}
	if cp.redeemBy != 0 && pc.expiresAt > cp.redeemBy {
		return nil, requestError("expires_at", "The promotion code's expires_at (%d) cannot be after the coupon's redeem_by (%d).", pc.expiresAt, cp.redeemBy)
	}
	if cp.maxRedemptions != 0 && pc.maxRedemptions > cp.maxRedemptions {
		return nil, requestError("max_redemptions", "The promotion code's max_redemptions (%d) cannot be greater than the coupon's max_redemptions (%d).", pc.maxRedemptions, cp.maxRedemptions)
	}
	if pc.minAmount > 0 && cp.amountOff > 0 && cp.currency == pc.minAmountCurrency && pc.minAmount < cp.amountOff {
		return nil, requestError("restrictions[minimum_amount]", "restrictions[minimum_amount] must be at least the coupon's amount_off.")
	}
	if !hasCode {
		for {
			code = randomString(8, "ABCDEFGHJKLMNPQRSTUVWXYZ23456789")
			if s.codeConflict(code, "", nil) == nil {
				break
			}
		}
	}
	pc.code = code
	if pc.active {
		if o := s.codeConflict(code, pc.customer, nil); o != nil {
			return nil, requestError("code", "An active promotion code with `code: %s` already exists.", code)
		}
	}
	pc.ID = newID("promo")
	pc.seq = s.nextSeq()
	pc.created = s.realNow()
	s.promos[pc.ID] = pc
	s.idx.promos.add(pc)
	s.indexPromoCode(pc)
	s.emit("promotion_code.created", s.renderPromo(pc), nil, c.origin(), pc.created)
	return s.renderPromo(pc), nil
}

func readCurrencyOptions(c *reqCtx, pc *promoCode) *apiError {
	n := c.p.node("restrictions", "currency_options")
	if n == nil {
		return nil
	}
	keys := append([]string{}, n.order...)
	sort.Strings(keys)
	for _, cur := range keys {
		param := "restrictions[currency_options][" + cur + "][minimum_amount]"
		lc, err := parseCurrency(param, cur)
		if err != nil {
			return err
		}
		v, ok, err := c.p.int64("restrictions", "currency_options", cur, "minimum_amount")
		if err != nil {
			return err
		}
		if !ok || v < 0 {
			return invalidParam(param, "Invalid %s: must be a non-negative integer.", param)
		}
		pc.currencyOptions[lc] = v
	}
	return nil
}

func (s *Server) promoByPath(id string) (*promoCode, *apiError) {
	pc := s.promos[id]
	if pc == nil {
		return nil, noSuchPath("promotion code", id)
	}
	return pc, nil
}

func hPromoRetrieve(c *reqCtx) (map[string]any, *apiError) {
	if err := c.check(retrieveSchema); err != nil {
		return nil, err
	}
	pc, err := c.s.promoByPath(c.id())
	if err != nil {
		return nil, err
	}
	return c.s.renderPromo(pc), nil
}

func hPromoUpdate(c *reqCtx) (map[string]any, *apiError) {
	if err := c.check(promoUpdateSchema); err != nil {
		return nil, err
	}
	s := c.s
	pc, err := s.promoByPath(c.id())
	if err != nil {
		return nil, err
	}
	before := s.renderPromo(pc)
	upd := *pc
	upd.currencyOptions = map[string]int64{}
	for k, v := range pc.currencyOptions {
		upd.currencyOptions[k] = v
	}
	active, hasActive, err := c.p.bool("active")
	if err != nil {
		return nil, err
	}
	if err := readCurrencyOptions(c, &upd); err != nil {
		return nil, err
	}
	mu, err := c.p.metadata()
	if err != nil {
		return nil, err
	}
	upd.metadata = mu.apply(upd.metadata)
	if hasActive && active && !pc.active {
		// Reactivation: only while the coupon is valid and the code is
		// otherwise redeemable, and the code must still be unique.
		now := s.realNow()
		switch {
		case !pc.coupon.validAt(now):
			return nil, requestError("active", "This promotion code cannot be reactivated because its coupon is no longer valid.")
		case pc.expiresAt != 0 && now >= pc.expiresAt:
			return nil, requestError("active", "This promotion code cannot be reactivated because it has expired.")
		case pc.maxRedemptions != 0 && pc.timesRedeemed >= pc.maxRedemptions:
			return nil, requestError("active", "This promotion code cannot be reactivated because it has been used the maximum number of times.")
		}
		if o := s.codeConflict(pc.code, pc.customer, pc); o != nil {
			return nil, requestError("active", "An active promotion code with `code: %s` already exists.", pc.code)
		}
	}
	if hasActive {
		upd.active = active
	}
	*pc = upd
	s.emitUpdate("promotion_code.updated", before, s.renderPromo(pc), c.origin(), s.realNow())
	return s.renderPromo(pc), nil
}

var promoListSchema = newSchema(append([]string{"code", "active", "coupon", "customer"}, listSchemaBase...), nil, nil)

func hPromoList(c *reqCtx) (map[string]any, *apiError) {
	if err := c.check(promoListSchema); err != nil {
		return nil, err
	}
	s := c.s
	code, hasCode := c.p.str("code")
	active, hasActive, err := c.p.bool("active")
	if err != nil {
		return nil, err
	}
	couponID, hasCoupon := c.p.str("coupon")
	cust, hasCust := c.p.str("customer")
	created, err := c.p.rangeFilter("created")
	if err != nil {
		return nil, err
	}
	return paginate(c, "/v1/promotion_codes", s.idx.promos.view(s.promos, func(x *promoCode) int64 { return x.seq }), func(pc *promoCode) bool {
		switch {
		case hasCode && !strings.EqualFold(pc.code, code),
			hasActive && pc.active != active,
			hasCoupon && pc.coupon.ID != couponID,
			hasCust && pc.customer != cust,
			!created.match(pc.created):
			return false
		}
		return true
	}, func(x *promoCode) int64 { return x.seq },
		func(id string) (int64, bool) {
			if x := s.promos[id]; x != nil {
				return x.seq, true
			}
			return 0, false
		}, "promotion code", s.renderPromo)
}
