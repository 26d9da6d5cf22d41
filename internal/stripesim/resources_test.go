package stripesim

import (
	"strings"
	"testing"

	stripe "github.com/stripe/stripe-go/v76"
)

func TestCustomers(t *testing.T) {
	e := newEnv(t, Options{})
	c, err := e.sc.Customers.New(&stripe.CustomerParams{
		Email: stripe.String("a@example.com"), Name: stripe.String("Ada"),
		Metadata: map[string]string{"k1": "v1", "k2": "v2"},
	})
	mustNoErr(t, err)
	if !strings.HasPrefix(c.ID, "cus_") || c.Email != "a@example.com" || c.Name != "Ada" || c.Metadata["k1"] != "v1" || c.Object != "customer" {
		t.Fatalf("created customer = %+v", c)
	}
	got, err := e.sc.Customers.Get(c.ID, nil)
	mustNoErr(t, err)
	if got.ID != c.ID || got.Created != c.Created {
		t.Fatalf("retrieve = %+v", got)
	}
	// Update: set k3, unset k1 (empty value), keep k2.
	upd, err := e.sc.Customers.Update(c.ID, &stripe.CustomerParams{Metadata: map[string]string{"k1": "", "k3": "v3"}})
	mustNoErr(t, err)
	if _, ok := upd.Metadata["k1"]; ok || upd.Metadata["k2"] != "v2" || upd.Metadata["k3"] != "v3" {
		t.Fatalf("metadata after update = %v", upd.Metadata)
	}
	_, err = e.sc.Customers.New(&stripe.CustomerParams{Email: stripe.String("not-an-email")})
	stripeErr(t, err, 400, stripe.ErrorTypeInvalidRequest, stripe.ErrorCodeEmailInvalid, "email")

	_, err = e.sc.Customers.New(&stripe.CustomerParams{TestClock: stripe.String("clock_missing")})
	stripeErr(t, err, 400, stripe.ErrorTypeInvalidRequest, stripe.ErrorCodeResourceMissing, "test_clock")
}

func TestListPagination(t *testing.T) {
	e := newEnv(t, Options{})
	var ids []string
	for i := 0; i < 7; i++ {
		ids = append(ids, e.mkCustomer("").ID)
	}
	// Newest first, limit 3.
	params := &stripe.CustomerListParams{}
	params.Limit = stripe.Int64(3)
	params.Single = true
	it := e.sc.Customers.List(params)
	var page []string
	for it.Next() {
		page = append(page, it.Customer().ID)
	}
	mustNoErr(t, it.Err())
	if want := []string{ids[6], ids[5], ids[4]}; strings.Join(page, ",") != strings.Join(want, ",") {
		t.Fatalf("first page = %v, want %v", page, want)
	}
	if !it.Meta().HasMore || it.Meta().URL != "/v1/customers" {
		t.Fatalf("meta = %+v", it.Meta())
	}
	// Auto-pagination visits everything once, newest first.
	params2 := &stripe.CustomerListParams{}
	params2.Limit = stripe.Int64(2)
	it = e.sc.Customers.List(params2)
	var all []string
	for it.Next() {
		all = append(all, it.Customer().ID)
	}
	mustNoErr(t, it.Err())
	if len(all) != 7 || all[0] != ids[6] || all[6] != ids[0] {
		t.Fatalf("auto pagination = %v", all)
	}
	// ending_before returns the newer objects closest to the cursor.
	r := e.raw("GET", "/v1/customers", testKey, "limit=2&ending_before="+ids[2], nil)
	data := r.body["data"].([]any)
	if len(data) != 2 || data[0].(map[string]any)["id"] != ids[4] || data[1].(map[string]any)["id"] != ids[3] || r.body["has_more"] != true {
		t.Fatalf("ending_before page = %s", r.raw)
	}
	// Limit bounds and bad cursors.
	for _, q := range []string{"limit=0", "limit=101"} {
		r := e.raw("GET", "/v1/customers", testKey, q, nil)
		if r.status != 400 || r.errField("param") != "limit" {
			t.Fatalf("%s: %d %s", q, r.status, r.raw)
		}
	}
	r = e.raw("GET", "/v1/customers", testKey, "starting_after=cus_nope", nil)
	if r.status != 400 || r.errField("code") != "resource_missing" || r.errField("param") != "starting_after" {
		t.Fatalf("bad cursor: %d %s", r.status, r.raw)
	}
}

func TestProductsAndPrices(t *testing.T) {
	e := newEnv(t, Options{})
	prod, err := e.sc.Products.New(&stripe.ProductParams{ID: stripe.String("gold"), Name: stripe.String("Gold")})
	mustNoErr(t, err)
	if prod.ID != "gold" || prod.Name != "Gold" || !prod.Active {
		t.Fatalf("product = %+v", prod)
	}
	_, err = e.sc.Products.New(&stripe.ProductParams{ID: stripe.String("gold"), Name: stripe.String("Again")})
	stripeErr(t, err, 400, stripe.ErrorTypeInvalidRequest, stripe.ErrorCodeResourceAlreadyExists, "id")
	_, err = e.sc.Products.New(&stripe.ProductParams{})
	stripeErr(t, err, 400, stripe.ErrorTypeInvalidRequest, stripe.ErrorCodeParameterMissing, "name")

	pr, err := e.sc.Prices.New(&stripe.PriceParams{
		Currency: stripe.String("usd"), UnitAmount: stripe.Int64(2000), Product: stripe.String("gold"),
		Recurring: &stripe.PriceRecurringParams{Interval: stripe.String("month")},
		Metadata:  map[string]string{"tier": "gold"},
	})
	mustNoErr(t, err)
	if pr.Product.ID != "gold" || pr.Product.Name != "" || pr.UnitAmount != 2000 || pr.Currency != "usd" ||
		pr.Recurring.Interval != "month" || pr.Type != stripe.PriceTypeRecurring || pr.Metadata["tier"] != "gold" {
		t.Fatalf("price = %+v (product %+v)", pr, pr.Product)
	}
	// product is an ID unless expanded.
	gp := &stripe.PriceParams{}
	gp.AddExpand("product")
	exp, err := e.sc.Prices.Get(pr.ID, gp)
	mustNoErr(t, err)
	if exp.Product.Name != "Gold" {
		t.Fatalf("expanded product = %+v", exp.Product)
	}
	// product_data creates a product.
	pr2 := e.mkPrice(500, "eur")
	if !strings.HasPrefix(pr2.Product.ID, "prod_") {
		t.Fatalf("product_data product = %q", pr2.Product.ID)
	}
	if _, err := e.sc.Products.Get(pr2.Product.ID, nil); err != nil {
		t.Fatalf("product from product_data: %v", err)
	}

	tests := []struct {
		name   string
		params *stripe.PriceParams
		code   stripe.ErrorCode
		param  string
	}{
		{"yearly refused", &stripe.PriceParams{Currency: stripe.String("usd"), UnitAmount: stripe.Int64(1), Product: stripe.String("gold"),
			Recurring: &stripe.PriceRecurringParams{Interval: stripe.String("year")}}, "", "recurring[interval]"},
		{"bad interval", &stripe.PriceParams{Currency: stripe.String("usd"), UnitAmount: stripe.Int64(1), Product: stripe.String("gold"),
			Recurring: &stripe.PriceRecurringParams{Interval: stripe.String("fortnight")}}, "", "recurring[interval]"},
		{"missing currency", &stripe.PriceParams{UnitAmount: stripe.Int64(1), Product: stripe.String("gold")}, stripe.ErrorCodeParameterMissing, "currency"},
		{"missing product", &stripe.PriceParams{Currency: stripe.String("usd"), UnitAmount: stripe.Int64(1)}, stripe.ErrorCodeParameterMissing, "product"},
		{"unknown product", &stripe.PriceParams{Currency: stripe.String("usd"), UnitAmount: stripe.Int64(1), Product: stripe.String("nope")}, stripe.ErrorCodeResourceMissing, "product"},
		{"bad currency", &stripe.PriceParams{Currency: stripe.String("xxx"), UnitAmount: stripe.Int64(1), Product: stripe.String("gold")}, "", "currency"},
		{"negative amount", &stripe.PriceParams{Currency: stripe.String("usd"), UnitAmount: stripe.Int64(-1), Product: stripe.String("gold")}, "", "unit_amount"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := e.sc.Prices.New(tc.params)
			stripeErr(t, err, 400, stripe.ErrorTypeInvalidRequest, tc.code, tc.param)
		})
	}

	lp := &stripe.PriceListParams{Product: stripe.String("gold")}
	it := e.sc.Prices.List(lp)
	n := 0
	for it.Next() {
		n++
		if it.Price().Product.ID != "gold" {
			t.Errorf("filtered list returned %s", it.Price().Product.ID)
		}
	}
	mustNoErr(t, it.Err())
	if n != 1 {
		t.Fatalf("prices for gold = %d", n)
	}
}

func TestCouponCreateValidation(t *testing.T) {
	e := newEnv(t, Options{})
	_, err := e.sc.Products.New(&stripe.ProductParams{ID: stripe.String("prod_a"), Name: stripe.String("A")})
	mustNoErr(t, err)
	tests := []struct {
		name   string
		params *stripe.CouponParams
		code   stripe.ErrorCode
		param  string
	}{
		{"neither", &stripe.CouponParams{Duration: stripe.String("once")}, stripe.ErrorCodeParameterMissing, "percent_off"},
		{"both", &stripe.CouponParams{PercentOff: stripe.Float64(10), AmountOff: stripe.Int64(100), Currency: stripe.String("usd")}, stripe.ErrorCodeParametersExclusive, "percent_off"},
		{"amount without currency", &stripe.CouponParams{AmountOff: stripe.Int64(100)}, stripe.ErrorCodeParameterMissing, "currency"},
		{"percent zero", &stripe.CouponParams{PercentOff: stripe.Float64(0)}, "", "percent_off"},
		{"percent over 100", &stripe.CouponParams{PercentOff: stripe.Float64(100.5)}, "", "percent_off"},
		{"percent 3 decimals", &stripe.CouponParams{PercentOff: stripe.Float64(12.345)}, "", "percent_off"},
		{"negative amount", &stripe.CouponParams{AmountOff: stripe.Int64(-5), Currency: stripe.String("usd")}, "", "amount_off"},
		{"bad currency", &stripe.CouponParams{AmountOff: stripe.Int64(5), Currency: stripe.String("zzz")}, "", "currency"},
		{"bad duration", &stripe.CouponParams{PercentOff: stripe.Float64(10), Duration: stripe.String("weekly")}, "", "duration"},
		{"repeating without months", &stripe.CouponParams{PercentOff: stripe.Float64(10), Duration: stripe.String("repeating")}, stripe.ErrorCodeParameterMissing, "duration_in_months"},
		{"months without repeating", &stripe.CouponParams{PercentOff: stripe.Float64(10), Duration: stripe.String("forever"), DurationInMonths: stripe.Int64(3)}, "", "duration_in_months"},
		{"max redemptions zero", &stripe.CouponParams{PercentOff: stripe.Float64(10), MaxRedemptions: stripe.Int64(-1)}, "", "max_redemptions"},
		{"redeem_by in past", &stripe.CouponParams{PercentOff: stripe.Float64(10), RedeemBy: stripe.Int64(1000)}, "", "redeem_by"},
		{"unknown product", &stripe.CouponParams{PercentOff: stripe.Float64(10), AppliesTo: &stripe.CouponAppliesToParams{Products: stripe.StringSlice([]string{"prod_a", "prod_zz"})}}, stripe.ErrorCodeResourceMissing, "applies_to[products][1]"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := e.sc.Coupons.New(tc.params)
			stripeErr(t, err, 400, stripe.ErrorTypeInvalidRequest, tc.code, tc.param)
		})
	}
	if n := e.sim.count(func(s *Server) int { return len(s.coupons) }); n != 0 {
		t.Fatalf("invalid requests created %d coupons", n)
	}
}

func TestCouponLifecycle(t *testing.T) {
	e := newEnv(t, Options{})
	_, err := e.sc.Products.New(&stripe.ProductParams{ID: stripe.String("prod_a"), Name: stripe.String("A")})
	mustNoErr(t, err)
	cp := e.mkCoupon(&stripe.CouponParams{
		ID: stripe.String("SPRING25"), PercentOff: stripe.Float64(25.5), Duration: stripe.String("repeating"),
		DurationInMonths: stripe.Int64(3), MaxRedemptions: stripe.Int64(10), Name: stripe.String("Spring"),
		AppliesTo: &stripe.CouponAppliesToParams{Products: stripe.StringSlice([]string{"prod_a"})},
		Metadata:  map[string]string{"src": "adapter"},
	})
	if cp.ID != "SPRING25" || cp.PercentOff != 25.5 || cp.Duration != "repeating" || cp.DurationInMonths != 3 ||
		cp.MaxRedemptions != 10 || !cp.Valid || cp.TimesRedeemed != 0 || cp.Name != "Spring" || cp.AmountOff != 0 {
		t.Fatalf("coupon = %+v", cp)
	}
	if cp.AppliesTo != nil {
		t.Fatalf("applies_to present without expand: %+v", cp.AppliesTo)
	}
	gp := &stripe.CouponParams{}
	gp.AddExpand("applies_to")
	got, err := e.sc.Coupons.Get("SPRING25", gp)
	mustNoErr(t, err)
	if got.AppliesTo == nil || len(got.AppliesTo.Products) != 1 || got.AppliesTo.Products[0] != "prod_a" {
		t.Fatalf("expanded applies_to = %+v", got.AppliesTo)
	}
	r := e.raw("GET", "/v1/coupons/SPRING25", testKey, "", nil)
	if _, ok := r.body["applies_to"]; ok {
		t.Fatalf("raw JSON has applies_to without expand: %s", r.raw)
	}
	if r.body["percent_off"].(interface{ String() string }).String() != "25.5" {
		t.Fatalf("percent_off JSON = %v", r.body["percent_off"])
	}

	_, err = e.sc.Coupons.New(&stripe.CouponParams{ID: stripe.String("SPRING25"), PercentOff: stripe.Float64(5)})
	stripeErr(t, err, 400, stripe.ErrorTypeInvalidRequest, stripe.ErrorCodeResourceAlreadyExists, "id")

	// Amount coupon in a zero-decimal currency.
	yen := e.mkCoupon(&stripe.CouponParams{AmountOff: stripe.Int64(500), Currency: stripe.String("JPY"), Duration: stripe.String("forever")})
	if yen.AmountOff != 500 || yen.Currency != "jpy" || yen.PercentOff != 0 || len(yen.ID) != 8 {
		t.Fatalf("yen coupon = %+v", yen)
	}

	// Update: name and metadata only.
	upd, err := e.sc.Coupons.Update("SPRING25", &stripe.CouponParams{Name: stripe.String("Spring 2"), Metadata: map[string]string{"x": "y"}})
	mustNoErr(t, err)
	if upd.Name != "Spring 2" || upd.Metadata["x"] != "y" || upd.Metadata["src"] != "adapter" || upd.PercentOff != 25.5 {
		t.Fatalf("updated coupon = %+v", upd)
	}
	for _, tc := range []struct {
		name   string
		params *stripe.CouponParams
		param  string
	}{
		{"percent_off", &stripe.CouponParams{PercentOff: stripe.Float64(50)}, "percent_off"},
		{"duration", &stripe.CouponParams{Duration: stripe.String("forever")}, "duration"},
		{"max_redemptions", &stripe.CouponParams{MaxRedemptions: stripe.Int64(3)}, "max_redemptions"},
	} {
		t.Run("update "+tc.name, func(t *testing.T) {
			_, err := e.sc.Coupons.Update("SPRING25", tc.params)
			se := stripeErr(t, err, 400, stripe.ErrorTypeInvalidRequest, stripe.ErrorCodeParameterUnknown, tc.param)
			if se.Msg != "Received unknown parameter: "+tc.param {
				t.Errorf("message = %q", se.Msg)
			}
		})
	}

	// List, newest first.
	it := e.sc.Coupons.List(&stripe.CouponListParams{})
	var ids []string
	for it.Next() {
		ids = append(ids, it.Coupon().ID)
	}
	mustNoErr(t, it.Err())
	if len(ids) != 2 || ids[0] != yen.ID || ids[1] != "SPRING25" {
		t.Fatalf("list = %v", ids)
	}

	// Delete.
	del, err := e.sc.Coupons.Del("SPRING25", nil)
	mustNoErr(t, err)
	if !del.Deleted || del.ID != "SPRING25" {
		t.Fatalf("delete = %+v", del)
	}
	r = e.raw("DELETE", "/v1/coupons/"+yen.ID, testKey, "", nil)
	if r.status != 200 || r.body["deleted"] != true || r.body["object"] != "coupon" || r.body["id"] != yen.ID || len(r.body) != 3 {
		t.Fatalf("raw delete = %s", r.raw)
	}
	_, err = e.sc.Coupons.Get("SPRING25", nil)
	se := stripeErr(t, err, 404, stripe.ErrorTypeInvalidRequest, stripe.ErrorCodeResourceMissing, "id")
	if se.Msg != "No such coupon: 'SPRING25'" {
		t.Errorf("message = %q", se.Msg)
	}
	// Coupon IDs with characters that need escaping survive the path.
	odd := e.mkCoupon(&stripe.CouponParams{ID: stripe.String("SUMMER 20/x+y"), PercentOff: stripe.Float64(20)})
	back, err := e.sc.Coupons.Get(odd.ID, nil)
	mustNoErr(t, err)
	if back.ID != "SUMMER 20/x+y" {
		t.Fatalf("escaped id = %q", back.ID)
	}
}

func TestPromotionCodes(t *testing.T) {
	e := newEnv(t, Options{})
	cp := e.mkCoupon(&stripe.CouponParams{ID: stripe.String("TEN"), PercentOff: stripe.Float64(10), Duration: stripe.String("forever"), MaxRedemptions: stripe.Int64(5)})
	cust := e.mkCustomer("")

	pc, err := e.sc.PromotionCodes.New(&stripe.PromotionCodeParams{
		Coupon: stripe.String(cp.ID), Code: stripe.String("Welcome10"), MaxRedemptions: stripe.Int64(3),
		ExpiresAt:    stripe.Int64(e.sim.realNow() + 86400),
		Restrictions: &stripe.PromotionCodeRestrictionsParams{FirstTimeTransaction: stripe.Bool(true)},
		Metadata:     map[string]string{"owner": "adapter"},
	})
	mustNoErr(t, err)
	if !strings.HasPrefix(pc.ID, "promo_") || pc.Code != "Welcome10" || !pc.Active || pc.Coupon.ID != "TEN" ||
		pc.Coupon.PercentOff != 10 || pc.Coupon.Duration != "forever" || pc.TimesRedeemed != 0 || pc.MaxRedemptions != 3 ||
		!pc.Restrictions.FirstTimeTransaction || pc.ExpiresAt == 0 || pc.Metadata["owner"] != "adapter" || pc.Customer != nil {
		t.Fatalf("promo = %+v", pc)
	}

	// Uniqueness among active codes, case-insensitive.
	_, err = e.sc.PromotionCodes.New(&stripe.PromotionCodeParams{Coupon: stripe.String("TEN"), Code: stripe.String("WELCOME10")})
	se := stripeErr(t, err, 400, stripe.ErrorTypeInvalidRequest, "", "code")
	if se.Msg != "An active promotion code with `code: WELCOME10` already exists." {
		t.Errorf("message = %q", se.Msg)
	}
	// An inactive duplicate is allowed...
	inactive, err := e.sc.PromotionCodes.New(&stripe.PromotionCodeParams{Coupon: stripe.String("TEN"), Code: stripe.String("welcome10"), Active: stripe.Bool(false)})
	mustNoErr(t, err)
	// ...but cannot be reactivated while the other is active.
	_, err = e.sc.PromotionCodes.Update(inactive.ID, &stripe.PromotionCodeParams{Active: stripe.Bool(true)})
	stripeErr(t, err, 400, stripe.ErrorTypeInvalidRequest, "", "active")
	// Deactivate the first, then reactivating the second works.
	off, err := e.sc.PromotionCodes.Update(pc.ID, &stripe.PromotionCodeParams{Active: stripe.Bool(false), Metadata: map[string]string{"x": "1"}})
	mustNoErr(t, err)
	if off.Active || off.Metadata["x"] != "1" || off.Metadata["owner"] != "adapter" {
		t.Fatalf("deactivated = %+v", off)
	}
	on, err := e.sc.PromotionCodes.Update(inactive.ID, &stripe.PromotionCodeParams{Active: stripe.Bool(true)})
	mustNoErr(t, err)
	if !on.Active {
		t.Fatal("reactivation did not stick")
	}
	// Update only accepts active/metadata/restrictions[currency_options].
	_, err = e.sc.PromotionCodes.Update(pc.ID, &stripe.PromotionCodeParams{Code: stripe.String("NEW")})
	stripeErr(t, err, 400, stripe.ErrorTypeInvalidRequest, stripe.ErrorCodeParameterUnknown, "code")
	_, err = e.sc.PromotionCodes.Update(pc.ID, &stripe.PromotionCodeParams{MaxRedemptions: stripe.Int64(9)})
	stripeErr(t, err, 400, stripe.ErrorTypeInvalidRequest, stripe.ErrorCodeParameterUnknown, "max_redemptions")
	co, err := e.sc.PromotionCodes.Update(pc.ID, &stripe.PromotionCodeParams{Restrictions: &stripe.PromotionCodeRestrictionsParams{
		CurrencyOptions: map[string]*stripe.PromotionCodeRestrictionsCurrencyOptionsParams{"eur": {MinimumAmount: stripe.Int64(700)}}}})
	mustNoErr(t, err)
	if co.Restrictions.CurrencyOptions["eur"].MinimumAmount != 700 {
		t.Fatalf("currency options = %+v", co.Restrictions.CurrencyOptions)
	}

	// Customer-restricted code and a generated code.
	restricted, err := e.sc.PromotionCodes.New(&stripe.PromotionCodeParams{Coupon: stripe.String("TEN"), Customer: stripe.String(cust.ID)})
	mustNoErr(t, err)
	if restricted.Customer == nil || restricted.Customer.ID != cust.ID || len(restricted.Code) != 8 {
		t.Fatalf("restricted = %+v", restricted)
	}

	// Create errors.
	for _, tc := range []struct {
		name   string
		params *stripe.PromotionCodeParams
		code   stripe.ErrorCode
		param  string
	}{
		{"missing coupon", &stripe.PromotionCodeParams{Code: stripe.String("X1")}, stripe.ErrorCodeParameterMissing, "coupon"},
		{"unknown coupon", &stripe.PromotionCodeParams{Coupon: stripe.String("NOPE"), Code: stripe.String("X2")}, stripe.ErrorCodeResourceMissing, "coupon"},
		{"unknown customer", &stripe.PromotionCodeParams{Coupon: stripe.String("TEN"), Customer: stripe.String("cus_nope")}, stripe.ErrorCodeResourceMissing, "customer"},
		{"max above coupon", &stripe.PromotionCodeParams{Coupon: stripe.String("TEN"), MaxRedemptions: stripe.Int64(6)}, "", "max_redemptions"},
		{"expired", &stripe.PromotionCodeParams{Coupon: stripe.String("TEN"), ExpiresAt: stripe.Int64(100)}, "", "expires_at"},
		{"bad code", &stripe.PromotionCodeParams{Coupon: stripe.String("TEN"), Code: stripe.String("has space")}, "", "code"},
		{"minimum without currency", &stripe.PromotionCodeParams{Coupon: stripe.String("TEN"),
			Restrictions: &stripe.PromotionCodeRestrictionsParams{MinimumAmount: stripe.Int64(1000)}}, stripe.ErrorCodeParameterMissing, "restrictions[minimum_amount_currency]"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := e.sc.PromotionCodes.New(tc.params)
			stripeErr(t, err, 400, stripe.ErrorTypeInvalidRequest, tc.code, tc.param)
		})
	}

	// Retrieve and list filters.
	got, err := e.sc.PromotionCodes.Get(pc.ID, nil)
	mustNoErr(t, err)
	if got.Code != "Welcome10" || got.Coupon.ID != "TEN" {
		t.Fatalf("retrieve = %+v", got)
	}
	list := func(p *stripe.PromotionCodeListParams) []string {
		t.Helper()
		var out []string
		it := e.sc.PromotionCodes.List(p)
		for it.Next() {
			out = append(out, it.PromotionCode().ID)
		}
		mustNoErr(t, it.Err())
		return out
	}
	if ids := list(&stripe.PromotionCodeListParams{Code: stripe.String("wElCoMe10")}); len(ids) != 2 || ids[0] != inactive.ID || ids[1] != pc.ID {
		t.Fatalf("by code = %v", ids)
	}
	if ids := list(&stripe.PromotionCodeListParams{Code: stripe.String("WELCOME10"), Active: stripe.Bool(true)}); len(ids) != 1 || ids[0] != inactive.ID {
		t.Fatalf("by code+active = %v", ids)
	}
	if ids := list(&stripe.PromotionCodeListParams{Customer: stripe.String(cust.ID)}); len(ids) != 1 || ids[0] != restricted.ID {
		t.Fatalf("by customer = %v", ids)
	}
	if ids := list(&stripe.PromotionCodeListParams{Coupon: stripe.String("TEN")}); len(ids) != 3 {
		t.Fatalf("by coupon = %v", ids)
	}
	if ids := list(&stripe.PromotionCodeListParams{Code: stripe.String("nothing")}); len(ids) != 0 {
		t.Fatalf("no match = %v", ids)
	}
	_, err = e.sc.PromotionCodes.Get("promo_missing", nil)
	se = stripeErr(t, err, 404, stripe.ErrorTypeInvalidRequest, stripe.ErrorCodeResourceMissing, "id")
	if se.Msg != "No such promotion code: 'promo_missing'" {
		t.Errorf("message = %q", se.Msg)
	}
}

func TestPromotionCodeUniquenessPerCustomer(t *testing.T) {
	e := newEnv(t, Options{})
	e.mkCoupon(&stripe.CouponParams{ID: stripe.String("C"), PercentOff: stripe.Float64(10)})
	a, b := e.mkCustomer(""), e.mkCustomer("")
	_, err := e.sc.PromotionCodes.New(&stripe.PromotionCodeParams{Coupon: stripe.String("C"), Code: stripe.String("VIP"), Customer: stripe.String(a.ID)})
	mustNoErr(t, err)
	// Another customer may use the same code string.
	_, err = e.sc.PromotionCodes.New(&stripe.PromotionCodeParams{Coupon: stripe.String("C"), Code: stripe.String("vip"), Customer: stripe.String(b.ID)})
	mustNoErr(t, err)
	// The same customer may not, nor may an unrestricted code.
	_, err = e.sc.PromotionCodes.New(&stripe.PromotionCodeParams{Coupon: stripe.String("C"), Code: stripe.String("Vip"), Customer: stripe.String(a.ID)})
	stripeErr(t, err, 400, stripe.ErrorTypeInvalidRequest, "", "code")
	_, err = e.sc.PromotionCodes.New(&stripe.PromotionCodeParams{Coupon: stripe.String("C"), Code: stripe.String("VIP")})
	stripeErr(t, err, 400, stripe.ErrorTypeInvalidRequest, "", "code")
}
