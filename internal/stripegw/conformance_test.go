package stripegw

import (
	"errors"
	"fmt"
	"maps"
	"net/http/httptest"
	"os"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/stripe/stripe-go/v76"
	"github.com/stripe/stripe-go/v76/client"

	"github.com/billing-adapter/billing-adapter/internal/promo"
	"github.com/billing-adapter/billing-adapter/internal/stripesim"
	"github.com/billing-adapter/billing-adapter/internal/telemetry"
	"github.com/billing-adapter/billing-adapter/internal/testutil/stripemock"
	"github.com/billing-adapter/billing-adapter/internal/testutil/stripespec"
)

// The conformance suite runs one set of scenarios against two backends:
//
//   - stripe-mock, which validates every request against Stripe's real
//     2023-10-16 OpenAPI spec and answers with fixtures. There a scenario
//     only asserts that each call (gateway calls and the fixtures it makes
//     with plain stripe-go) is accepted: fixture contents mean nothing.
//   - the stateful simulator (internal/stripesim), where the scenario also
//     asserts behaviour: the discount is on the subscription, the promotion
//     code is inactive, the invoice amounts are right, Stripe's refusals map
//     to the domain codes.
//
// Running the same requests through both keeps the simulator from drifting
// into accepting requests that Stripe would refuse. Scenarios that need a
// simulator control (fault injection) run on the simulator only.
//
// With STRIPE_SECRET_KEY=sk_test_... in the environment the scenarios also
// run against real Stripe in test mode, asserting behaviour as on the
// simulator (this is how to check the simulator against Stripe itself; it
// needs the network and is skipped otherwise, as on CI).

// backend is one Stripe the scenarios run against.
type backend struct {
	gw       *Gateway
	api      *client.API        // plain stripe-go on the same base URL: fixtures and reading state back
	stateful bool               // the simulator: assert behaviour, not only acceptance
	sim      *stripesim.Server  // nil on stripe-mock
	metrics  *telemetry.Metrics // the gateway's
	n        int                // makes keys, codes and coupon IDs unique within a backend
	run      string             // prefix making them unique across runs (real Stripe keeps objects)
}

// mockBackend starts stripe-mock for t.
func mockBackend(t *testing.T) *backend {
	return backendAt(stripemock.Start(t))
}

// simBackend starts a fresh simulator for t. It rewords every error message,
// so each refusal scenario proves the gateway never reads Stripe's wording.
func simBackend(t *testing.T) *backend {
	sim := stripesim.New(stripesim.Options{RewordErrors: true})
	srv := httptest.NewServer(stripespec.Handler(t, sim)) // every answer held to Stripe's OpenAPI spec
	t.Cleanup(func() {
		srv.Close()
		stripespec.Events(t, sim.EventBodies())
		sim.Close()
	})
	b := backendAt(srv.URL)
	b.stateful, b.sim = true, sim
	return b
}

// liveBackend is Stripe test mode, when STRIPE_SECRET_KEY holds a test key.
func liveBackend(t *testing.T) *backend {
	key := os.Getenv("STRIPE_SECRET_KEY")
	if !strings.HasPrefix(key, "sk_test_") {
		t.Skip("set STRIPE_SECRET_KEY=sk_test_... to run the scenarios against Stripe test mode")
	}
	m := telemetry.New()
	return &backend{
		gw:  New(Options{SecretKey: key, MaxRetries: 2, Timeout: 30 * time.Second, Metrics: m}),
		api: client.New(key, nil), metrics: m, stateful: true,
		run: fmt.Sprintf("r%d", time.Now().UnixNano()%1e9),
	}
}

// backendAt is a stateless backend at base: a gateway and a plain client.
func backendAt(base string) *backend {
	m := telemetry.New()
	return &backend{gw: newTestGateway(base, m), api: rawClient(base), metrics: m}
}

type conformanceScenario struct {
	name    string
	simOnly bool // needs a simulator control
	run     func(t *testing.T, b *backend)
}

func TestConformance(t *testing.T) {
	backends := []struct {
		name  string
		start func(*testing.T) *backend
	}{
		{"stripe-mock", mockBackend},
		{"simulator", simBackend},
		{"stripe", liveBackend},
	}
	for _, be := range backends {
		t.Run(be.name, func(t *testing.T) {
			b := be.start(t)
			for _, sc := range conformanceScenarios {
				if sc.simOnly && b.sim == nil {
					continue
				}
				t.Run(sc.name, func(t *testing.T) { sc.run(t, b) })
			}
		})
	}
}

var conformanceScenarios = []conformanceScenario{
	{name: "ResolvePlans", run: scenarioResolvePlans},
	{name: "Plans", run: scenarioPlans},
	{name: "CreateCoupon", run: scenarioCreateCoupon},
	{name: "CreateCoupon fixed ID", run: scenarioCreateCouponFixedID},
	{name: "CreatePromotionCode", run: scenarioCreatePromotionCode},
	{name: "CreatePromotionCode taken", run: scenarioPromotionCodeTaken},
	{name: "GetCoupon", run: scenarioGetCoupon},
	{name: "FindPromotionCode", run: scenarioFindPromotionCode},
	{name: "UpdatePromotionCode", run: scenarioUpdatePromotionCode},
	{name: "GetPromotionCode", run: scenarioGetPromotionCode},
	{name: "UpdateCouponMetadata", run: scenarioUpdateCouponMetadata},
	{name: "GetSubscription", run: scenarioGetSubscription},
	{name: "CreateSubscription", run: scenarioCreateSubscription},
	{name: "ApplyPromotionCode", run: scenarioApplyPromotionCode},
	{name: "RemoveDiscount", run: scenarioRemoveDiscount},
	{name: "PreviewInvoice existing subscription", run: scenarioPreviewExisting},
	{name: "PreviewInvoice new subscription", run: scenarioPreviewNew},
	{name: "FindSubscription", run: scenarioFindSubscription},
	{name: "refused inactive", run: scenarioRefusedInactive},
	{name: "refused expired", run: scenarioRefusedExpired},
	{name: "refused exhausted", run: scenarioRefusedExhausted},
	{name: "refused new users only", run: scenarioRefusedNewUsersOnly},
	{name: "refused customer mismatch", run: scenarioRefusedCustomerMismatch},
	{name: "refused coupon used up", run: scenarioRefusedCouponUsedUp},
	{name: "refused coupon expired", run: scenarioRefusedCouponExpired},
	{name: "refusal not read back", simOnly: true, run: scenarioRefusalNotReadBack},
	{name: "unknown subscription", run: scenarioUnknownSubscription},
	{name: "server errors leave the outcome unknown", simOnly: true, run: scenarioServerErrors},
}

// ---- catalog ----

func scenarioResolvePlans(t *testing.T, b *backend) {
	prodA, priceA := b.plan(t, "usd", 2000)
	prodB, priceB := b.plan(t, "eur", 900)
	got, err := b.gw.ResolvePlans(t.Context(), []string{priceB, priceA})
	must(t, "ResolvePlans", err)
	if len(got) != 2 || got[0] == "" || got[1] == "" {
		t.Fatalf("ResolvePlans = %q, want two product IDs", got)
	}
	if b.stateful {
		if want := []string{prodB, prodA}; !slices.Equal(got, want) {
			t.Errorf("ResolvePlans = %q, want %q (the prices' products, in order)", got, want)
		}
		_, err := b.gw.ResolvePlans(t.Context(), []string{priceA, "price_missing"})
		if pe := asPromo(t, err); pe.Code != promo.CodeInvalidRequest || pe.Param != "plan_ids" {
			t.Errorf("unknown price: %v, want invalid_request on plan_ids", err)
		}
	}
}

func scenarioPlans(t *testing.T, b *backend) {
	prodA, priceA := b.plan(t, "usd", 2000)
	_, priceB := b.plan(t, "eur", 900)
	got, err := b.gw.Plans(t.Context(), []string{priceB, priceA})
	must(t, "Plans", err)
	if len(got) != 2 || got[0].ID == "" || got[1].Product == "" {
		t.Fatalf("Plans = %+v, want two plans", got)
	}
	if b.stateful {
		a := got[1]
		if a.ID != priceA || a.Product != prodA || !strings.HasPrefix(a.ProductName, "Plan ") || a.UnitAmount == nil ||
			*a.UnitAmount != 2000 || a.Currency != "usd" || a.Interval != "month" || a.IntervalCount != 1 {
			t.Errorf("Plans[1] = %+v", a)
		}
		if got[0].ID != priceB || got[0].Currency != "eur" {
			t.Errorf("Plans[0] = %+v (order)", got[0])
		}
	}
}

func scenarioCreateCoupon(t *testing.T, b *backend) {
	prodA, _ := b.plan(t, "usd", 2000)
	prodB, _ := b.plan(t, "usd", 3000)
	long := "LONG" + fmt.Sprint(b.next()) + "-abcdefghijklmnopqrstuvwxyz-abcdefghijklmnopqrstuvwxyz"
	cases := []struct {
		name string
		spec promo.CouponSpec
		// what Stripe must then hold
		percent    float64
		amount     int64
		currency   string
		duration   string
		months     int64
		products   []string
		meta       map[string]string
		couponName string
	}{
		{name: "percentage 12.5% once",
			spec:    promo.CouponSpec{PromoCodeID: "pc_pct", Name: "SAVE12", PercentOff: 1250, Duration: promo.Once},
			percent: 12.5, duration: "once", meta: map[string]string{promo.MetaPromoCodeID: "pc_pct"}, couponName: "SAVE12"},
		{name: "flat usd forever",
			spec:   promo.CouponSpec{PromoCodeID: "pc_usd", Name: "FIVE50", AmountOff: 550, Currency: "USD", Duration: promo.Forever},
			amount: 550, currency: "usd", duration: "forever"},
		{name: "flat jpy once",
			spec:   promo.CouponSpec{PromoCodeID: "pc_jpy", Name: "YEN500", AmountOff: 500, Currency: "jpy", Duration: promo.Once},
			amount: 500, currency: "jpy", duration: "once"},
		{name: "repeating 3 months",
			spec:    promo.CouponSpec{PromoCodeID: "pc_rep", Name: "THREEMONTHS", PercentOff: 2000, Duration: promo.Repeating, Months: 3},
			percent: 20, duration: "repeating", months: 3},
		{name: "applies to products with metadata",
			spec: promo.CouponSpec{PromoCodeID: "pc_prod", Name: "PLANS", PercentOff: 3333, Duration: promo.Forever,
				ProductIDs: []string{prodA, prodB, prodA},
				Metadata:   map[string]string{"campaign": "spring", promo.MetaPromoCode: "PLANS"}},
			percent: 33.33, duration: "forever", products: []string{prodA, prodB},
			meta: map[string]string{"campaign": "spring", promo.MetaPromoCode: "PLANS", promo.MetaPromoCodeID: "pc_prod"}},
		{name: "long name cut to 40",
			spec:    promo.CouponSpec{PromoCodeID: "pc_long", Name: long, PercentOff: 1, Duration: promo.Once},
			percent: 0.01, duration: "once", couponName: long[:MaxCouponName]},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			id, err := b.gw.CreateCoupon(t.Context(), tc.spec, b.key())
			must(t, "CreateCoupon", err)
			if id == "" {
				t.Fatal("CreateCoupon returned an empty ID")
			}
			if !b.stateful {
				return
			}
			params := &stripe.CouponParams{}
			params.AddExpand("applies_to")
			c, err := b.api.Coupons.Get(id, params)
			must(t, "read coupon", err)
			if c.PercentOff != tc.percent || c.AmountOff != tc.amount || string(c.Currency) != tc.currency {
				t.Errorf("coupon percent_off %v amount_off %d %q, want %v %d %q",
					c.PercentOff, c.AmountOff, c.Currency, tc.percent, tc.amount, tc.currency)
			}
			if string(c.Duration) != tc.duration || c.DurationInMonths != tc.months {
				t.Errorf("coupon duration %s months %d, want %s %d", c.Duration, c.DurationInMonths, tc.duration, tc.months)
			}
			var products []string
			if c.AppliesTo != nil {
				products = c.AppliesTo.Products
			}
			if !slices.Equal(products, tc.products) {
				t.Errorf("coupon applies_to %q, want %q", products, tc.products)
			}
			for k, v := range tc.meta {
				if c.Metadata[k] != v {
					t.Errorf("coupon metadata[%s] = %q, want %q (all: %v)", k, c.Metadata[k], v, c.Metadata)
				}
			}
			if tc.couponName != "" && c.Name != tc.couponName {
				t.Errorf("coupon name %q, want %q", c.Name, tc.couponName)
			}
		})
	}
}

func scenarioCreateCouponFixedID(t *testing.T, b *backend) {
	id := b.uniq("pc_fixed")
	spec := promo.CouponSpec{ID: id, PromoCodeID: id, Name: "FIXED", PercentOff: 1000, Duration: promo.Once}
	got, err := b.gw.CreateCoupon(t.Context(), spec, b.key())
	must(t, "CreateCoupon", err)
	found, err := b.gw.GetCoupon(t.Context(), id)
	must(t, "GetCoupon", err)
	// Another create with the same ID under another idempotency key (what a
	// recovery that did not look first would do).
	_, dupErr := b.gw.CreateCoupon(t.Context(), spec, b.key())
	if !b.stateful {
		must(t, "second CreateCoupon", dupErr)
		return
	}
	if got != id || !found {
		t.Errorf("CreateCoupon = %q, GetCoupon found %v; want the coupon under its fixed ID %q", got, found, id)
	}
	if dupErr == nil {
		t.Fatal("a second coupon with the same ID was accepted")
	}
	if pe := asPromo(t, dupErr); pe.Code != promo.CodeStripeError || pe.StripeRequestID == "" {
		t.Errorf("second create: %+v, want stripe_error carrying Stripe's request ID", pe)
	}
}

func scenarioCreatePromotionCode(t *testing.T, b *backend) {
	couponID := b.coupon(t, 1250)
	expires := time.Now().Add(30 * 24 * time.Hour).Truncate(time.Second)
	code := b.uniq("WELCOME")
	spec := promo.PromotionCodeSpec{
		PromoCodeID: "pc_welcome", Code: code, CouponID: couponID, ExpiresAt: &expires,
		FirstTimeTransaction: true, Active: false, Metadata: map[string]string{"campaign": "spring"},
	}
	id, err := b.gw.CreatePromotionCode(t.Context(), spec, b.key())
	must(t, "CreatePromotionCode", err)
	plain := promo.PromotionCodeSpec{PromoCodeID: "pc_plain", Code: b.uniq("PLAIN"), CouponID: couponID, Active: true}
	plainID, err := b.gw.CreatePromotionCode(t.Context(), plain, b.key())
	must(t, "CreatePromotionCode plain", err)
	if !b.stateful {
		return
	}
	pc := b.readPromotionCode(t, id)
	if pc.Code != code || pc.Coupon == nil || pc.Coupon.ID != couponID {
		t.Errorf("promotion code %q on coupon %v, want %q on %s", pc.Code, pc.Coupon, code, couponID)
	}
	if pc.Active || pc.ExpiresAt != expires.Unix() || pc.Restrictions == nil || !pc.Restrictions.FirstTimeTransaction {
		t.Errorf("active %v expires_at %d restrictions %+v; want inactive, expiring %d, first-time only",
			pc.Active, pc.ExpiresAt, pc.Restrictions, expires.Unix())
	}
	if pc.Metadata["campaign"] != "spring" || pc.Metadata[promo.MetaPromoCodeID] != "pc_welcome" {
		t.Errorf("metadata %v, want campaign and the promo code link", pc.Metadata)
	}
	pp := b.readPromotionCode(t, plainID)
	if !pp.Active || pp.ExpiresAt != 0 || pp.Restrictions.FirstTimeTransaction || pp.Metadata[promo.MetaPromoCodeID] != "pc_plain" {
		t.Errorf("plain promotion code: active %v expires_at %d restrictions %+v metadata %v; want active, no limits",
			pp.Active, pp.ExpiresAt, pp.Restrictions, pp.Metadata)
	}
}

func scenarioPromotionCodeTaken(t *testing.T, b *backend) {
	couponID := b.coupon(t, 1000)
	code := b.uniq("TAKEN")
	spec := promo.PromotionCodeSpec{PromoCodeID: "pc_taken", Code: code, CouponID: couponID, Active: true}
	first, err := b.gw.CreatePromotionCode(t.Context(), spec, b.key())
	must(t, "first CreatePromotionCode", err)

	_, dupErr := b.gw.CreatePromotionCode(t.Context(), spec, b.key())
	// An inactive one with the same text is allowed (what a rotation leaves).
	inactive := spec
	inactive.Active = false
	inactiveID, inactiveErr := b.gw.CreatePromotionCode(t.Context(), inactive, b.key())
	must(t, "inactive CreatePromotionCode with the same text", inactiveErr)
	if !b.stateful {
		must(t, "second active CreatePromotionCode", dupErr)
		return
	}
	if !errors.Is(dupErr, promo.ErrPromotionCodeTaken) {
		t.Fatalf("second active promotion code: %v, want it to wrap ErrPromotionCodeTaken", dupErr)
	}
	if pe := asPromo(t, dupErr); pe.Code != promo.CodeConflict || pe.Param != "code" || pe.StripeRequestID == "" {
		t.Errorf("second active promotion code: %+v, want conflict on code with Stripe's request ID", pe)
	}
	if inactiveID == first || b.readPromotionCode(t, inactiveID).Active || !b.readPromotionCode(t, first).Active {
		t.Errorf("the inactive duplicate %s must be a new inactive object next to the active %s", inactiveID, first)
	}
}

func scenarioGetCoupon(t *testing.T, b *backend) {
	id := b.coupon(t, 500)
	found, err := b.gw.GetCoupon(t.Context(), id)
	must(t, "GetCoupon existing", err)
	missing, err := b.gw.GetCoupon(t.Context(), b.uniq("pc_missing"))
	must(t, "GetCoupon missing", err)
	if b.stateful && (!found || missing) {
		t.Errorf("GetCoupon: existing found %v, missing found %v; want true, false", found, missing)
	}
}

func scenarioFindPromotionCode(t *testing.T, b *backend) {
	couponID := b.coupon(t, 1500)
	otherCoupon := b.coupon(t, 1500)
	code := b.uniq("ROTATE")
	old, err := b.gw.CreatePromotionCode(t.Context(),
		promo.PromotionCodeSpec{Code: code, CouponID: couponID, Active: false}, b.key())
	must(t, "create inactive", err)

	type result struct {
		id            string
		active, found bool
	}
	find := func(code, coupon string) result {
		t.Helper()
		id, active, found, err := b.gw.FindPromotionCode(t.Context(), code, coupon)
		must(t, "FindPromotionCode", err)
		return result{id, active, found}
	}
	onlyInactive := find(code, couponID)
	cur, err := b.gw.CreatePromotionCode(t.Context(),
		promo.PromotionCodeSpec{Code: code, CouponID: couponID, Active: true}, b.key())
	must(t, "create active", err)
	withActive := find(code, couponID)
	anyCoupon := find(code, "")
	wrongCoupon := find(code, otherCoupon)
	unknown := find(b.uniq("NOSUCHCODE"), couponID)
	if !b.stateful {
		return
	}
	checks := []struct {
		name      string
		got, want result
	}{
		{"only an inactive one: falls back to it", onlyInactive, result{old, false, true}},
		{"the active one wins", withActive, result{cur, true, true}},
		{"any coupon", anyCoupon, result{cur, true, true}},
		{"another coupon", wrongCoupon, result{}},
		{"unknown text", unknown, result{}},
	}
	for _, c := range checks {
		if c.got != c.want {
			t.Errorf("%s: got %+v, want %+v", c.name, c.got, c.want)
		}
	}
}

func scenarioGetPromotionCode(t *testing.T, b *backend) {
	couponID := b.coupon(t, 1000)
	for _, want := range []bool{true, false} {
		id, err := b.gw.CreatePromotionCode(t.Context(), promo.PromotionCodeSpec{
			PromoCodeID: "pc_get", Code: b.uniq("GETPC"), CouponID: couponID, Active: want}, b.key())
		must(t, "CreatePromotionCode", err)
		active, err := b.gw.GetPromotionCode(t.Context(), id)
		must(t, "GetPromotionCode", err)
		if b.stateful && active != want {
			t.Errorf("active = %v, want %v", active, want)
		}
	}
}

// The coupon's metadata carries the code's own and promo_code_config, which
// admin changes rewrite.
func scenarioUpdateCouponMetadata(t *testing.T, b *backend) {
	id := b.couponSpec(t, promo.CouponSpec{ID: b.uniq("pc_meta"), PromoCodeID: "pc_meta", PercentOff: 1000,
		Duration: promo.Forever, Metadata: map[string]string{"campaign": "spring", promo.MetaConfig: `{"v":1,"st":"active"}`}})
	must(t, "UpdateCouponMetadata", b.gw.UpdateCouponMetadata(t.Context(), id,
		map[string]string{"campaign": "", "owner": "growth", promo.MetaConfig: `{"v":1,"st":"inactive"}`}, b.key()))
	if !b.stateful {
		return
	}
	c, err := b.api.Coupons.Get(id, nil)
	must(t, "read coupon", err)
	want := map[string]string{promo.MetaPromoCodeID: "pc_meta", "owner": "growth", promo.MetaConfig: `{"v":1,"st":"inactive"}`}
	if !maps.Equal(c.Metadata, want) {
		t.Errorf("metadata = %v, want %v", c.Metadata, want)
	}
}

func scenarioUpdatePromotionCode(t *testing.T, b *backend) {
	couponID := b.coupon(t, 1000)
	id, err := b.gw.CreatePromotionCode(t.Context(), promo.PromotionCodeSpec{
		PromoCodeID: "pc_upd", Code: b.uniq("UPDATE"), CouponID: couponID, Active: true,
		Metadata: map[string]string{"campaign": "spring"},
	}, b.key())
	must(t, "CreatePromotionCode", err)
	off, on := false, true
	steps := []struct {
		name       string
		u          promo.PromotionCodeUpdate
		wantActive bool
		wantMeta   map[string]string // the full metadata Stripe must then hold
	}{
		{"deactivate and set metadata", promo.PromotionCodeUpdate{Active: &off,
			Metadata: map[string]string{"campaign": "summer", "tier": "gold"}},
			false, map[string]string{promo.MetaPromoCodeID: "pc_upd", "campaign": "summer", "tier": "gold"}},
		{"reactivate", promo.PromotionCodeUpdate{Active: &on},
			true, map[string]string{promo.MetaPromoCodeID: "pc_upd", "campaign": "summer", "tier": "gold"}},
		{"unset a key with an empty value", promo.PromotionCodeUpdate{Metadata: map[string]string{"tier": ""}},
			true, map[string]string{promo.MetaPromoCodeID: "pc_upd", "campaign": "summer"}},
		{"nothing to change", promo.PromotionCodeUpdate{},
			true, map[string]string{promo.MetaPromoCodeID: "pc_upd", "campaign": "summer"}},
	}
	for _, st := range steps {
		t.Run(st.name, func(t *testing.T) {
			must(t, "UpdatePromotionCode", b.gw.UpdatePromotionCode(t.Context(), id, st.u, b.key()))
			if !b.stateful {
				return
			}
			pc := b.readPromotionCode(t, id)
			if pc.Active != st.wantActive {
				t.Errorf("active = %v, want %v", pc.Active, st.wantActive)
			}
			if !maps.Equal(pc.Metadata, st.wantMeta) {
				t.Errorf("metadata = %v, want %v", pc.Metadata, st.wantMeta)
			}
		})
	}
}

// ---- subscriptions ----

func scenarioGetSubscription(t *testing.T, b *backend) {
	_, priceID := b.plan(t, "usd", 2000)
	cus := b.customer(t, "")
	subID := b.subscribe(t, cus, priceID, "", map[string]string{"source": "conformance"})
	free := b.coupon(t, 10000) // 100%: the first invoice is paid with 0
	freeCus := b.customer(t, "")
	freeSub := b.subscribe(t, freeCus, priceID, free, nil)

	sub, err := b.gw.GetSubscription(t.Context(), subID)
	must(t, "GetSubscription", err)
	fs, err := b.gw.GetSubscription(t.Context(), freeSub)
	must(t, "GetSubscription free", err)
	if sub.ID == "" {
		t.Fatal("GetSubscription returned no ID")
	}
	if !b.stateful {
		return
	}
	if sub.ID != subID || sub.Customer != cus || sub.Status != "active" || sub.Currency != "usd" ||
		!slices.Equal(sub.PriceIDs, []string{priceID}) || sub.Metadata["source"] != "conformance" {
		t.Errorf("GetSubscription = %+v, want %s of %s, active, usd, price %s, with metadata", sub, subID, cus, priceID)
	}
	if sub.Discount != nil {
		t.Errorf("discount %+v on a subscription created without one", sub.Discount)
	}
	if !sub.CurrentPeriodEnd.After(sub.CurrentPeriodStart) || sub.CurrentPeriodStart.IsZero() {
		t.Errorf("period [%v, %v) is not a period", sub.CurrentPeriodStart, sub.CurrentPeriodEnd)
	}
	// Only an expanded latest_invoice tells whether it was paid.
	if !sub.LatestInvoicePaid {
		t.Error("LatestInvoicePaid = false for a subscription whose first invoice was paid (latest_invoice not expanded?)")
	}
	if fs.LatestInvoicePaid || fs.Discount == nil || fs.Discount.CouponID != free {
		t.Errorf("fully discounted subscription: LatestInvoicePaid %v discount %+v; want false (nothing was paid) and coupon %s",
			fs.LatestInvoicePaid, fs.Discount, free)
	}
}

func scenarioCreateSubscription(t *testing.T, b *backend) {
	_, priceID := b.plan(t, "usd", 2000)
	couponID := b.coupon(t, 1250)
	promoID := b.promotionCode(t, couponID, nil)
	cases := []struct {
		name      string
		promoID   string
		quantity  int64
		subtotal  int64
		total     int64
		discounts int64
	}{
		{"without a promotion code", "", 2, 4000, 4000, 0},
		{"with a promotion code", promoID, 1, 2000, 1750, 250},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			cus := b.customer(t, "")
			md := map[string]string{promo.MetaRedemptionID: b.uniq("rd_")}
			sub, err := b.gw.CreateSubscription(t.Context(), promo.SubscriptionSpec{
				Customer: cus, Price: priceID, Quantity: tc.quantity, PromotionCodeID: tc.promoID, Metadata: md,
			}, b.key())
			must(t, "CreateSubscription", err)
			if sub.ID == "" {
				t.Fatal("CreateSubscription returned no ID")
			}
			if !b.stateful {
				return
			}
			if sub.Customer != cus || sub.Status != "active" || !slices.Equal(sub.PriceIDs, []string{priceID}) ||
				sub.Metadata[promo.MetaRedemptionID] != md[promo.MetaRedemptionID] {
				t.Errorf("CreateSubscription = %+v, want an active subscription of %s to %s with metadata %v", sub, cus, priceID, md)
			}
			switch {
			case tc.promoID == "" && sub.Discount != nil:
				t.Errorf("discount %+v without a promotion code", sub.Discount)
			case tc.promoID != "" && (sub.Discount == nil || sub.Discount.ID == "" ||
				sub.Discount.PromotionCodeID != tc.promoID || sub.Discount.CouponID != couponID):
				t.Errorf("discount %+v, want one from promotion code %s on coupon %s", sub.Discount, tc.promoID, couponID)
			}
			in := b.latestInvoice(t, sub.ID)
			if in.Subtotal != tc.subtotal || in.Total != tc.total || sumDiscounts(in) != tc.discounts || in.Status != stripe.InvoiceStatusPaid {
				t.Errorf("first invoice subtotal %d total %d discounts %d status %s, want %d %d %d paid",
					in.Subtotal, in.Total, sumDiscounts(in), in.Status, tc.subtotal, tc.total, tc.discounts)
			}
		})
	}
	if b.stateful {
		if n := b.readPromotionCode(t, promoID).TimesRedeemed; n != 1 {
			t.Errorf("promotion code times_redeemed = %d, want 1", n)
		}
	}
}

func scenarioApplyPromotionCode(t *testing.T, b *backend) {
	_, priceID := b.plan(t, "usd", 2000)
	couponID := b.coupon(t, 2500)
	promoID := b.promotionCode(t, couponID, nil)
	cus := b.customer(t, "")
	subID := b.subscribe(t, cus, priceID, "", map[string]string{"source": "checkout"})
	var before []string
	if b.stateful {
		before = b.invoiceIDs(t, subID)
	}
	md := map[string]string{promo.MetaRedemptionID: "rd_apply", promo.MetaPromoCode: "APPLY"}
	sub, err := b.gw.ApplyPromotionCode(t.Context(), subID, promoID, md, b.key())
	must(t, "ApplyPromotionCode", err)
	if !b.stateful {
		return
	}
	if sub.ID != subID || sub.Discount == nil || sub.Discount.PromotionCodeID != promoID || sub.Discount.CouponID != couponID {
		t.Errorf("ApplyPromotionCode = %+v (discount %+v), want promotion code %s on %s", sub, sub.Discount, promoID, subID)
	}
	want := map[string]string{"source": "checkout", promo.MetaRedemptionID: "rd_apply", promo.MetaPromoCode: "APPLY"}
	if !maps.Equal(sub.Metadata, want) {
		t.Errorf("metadata = %v, want the old and new keys merged: %v", sub.Metadata, want)
	}
	read, err := b.gw.GetSubscription(t.Context(), subID)
	must(t, "GetSubscription", err)
	if read.Discount == nil || read.Discount.ID != sub.Discount.ID {
		t.Errorf("read back discount %+v, want %+v", read.Discount, sub.Discount)
	}
	if after := b.invoiceIDs(t, subID); !slices.Equal(after, before) {
		t.Errorf("invoices %q after applying, want %q unchanged (no proration, no new invoice)", after, before)
	}
}

func scenarioRemoveDiscount(t *testing.T, b *backend) {
	_, priceID := b.plan(t, "usd", 2000)
	couponID := b.coupon(t, 1000)
	cus := b.customer(t, "")
	created, err := b.gw.CreateSubscription(t.Context(), promo.SubscriptionSpec{
		Customer: cus, Price: priceID, Quantity: 1, PromotionCodeID: b.promotionCode(t, couponID, nil)}, b.key())
	must(t, "CreateSubscription", err)
	subID := created.ID
	if b.stateful && created.Discount == nil {
		t.Fatal("the subscription was created without its discount")
	}

	removed, err := b.gw.RemoveDiscount(t.Context(), subID, b.key())
	must(t, "RemoveDiscount", err)
	var gone *promo.Discount
	if b.stateful {
		sub, err := b.gw.GetSubscription(t.Context(), subID)
		must(t, "GetSubscription", err)
		gone = sub.Discount
	}
	again, err := b.gw.RemoveDiscount(t.Context(), subID, b.key())
	must(t, "second RemoveDiscount", err)
	if b.stateful && (!removed || gone != nil || again) {
		t.Errorf("removed %v (discount after: %+v), second removed %v; want true, none, false", removed, gone, again)
	}
}

func scenarioPreviewExisting(t *testing.T, b *backend) {
	_, priceID := b.plan(t, "usd", 2000)
	cases := []struct {
		name                      string
		percent, amount           int64
		subtotal, total, discount int64
	}{
		{"percentage", 1250, 0, 2000, 1750, 250},
		{"flat amount", 0, 550, 2000, 1450, 550},
		{"flat amount above the price", 0, 5000, 2000, 0, 2000},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			couponID := b.couponSpec(t, promo.CouponSpec{PercentOff: tc.percent, AmountOff: tc.amount, Currency: "usd", Duration: promo.Forever})
			promoID := b.promotionCode(t, couponID, nil)
			cus := b.customer(t, "")
			subID := b.subscribe(t, cus, priceID, "", nil)
			pv, err := b.gw.PreviewInvoice(t.Context(), promo.PreviewSpec{Subscription: subID, PromotionCodeID: promoID})
			must(t, "PreviewInvoice", err)
			if !b.stateful {
				return
			}
			if pv.Subtotal != tc.subtotal || pv.Total != tc.total || pv.DiscountAmount != tc.discount || pv.Currency != "usd" {
				t.Errorf("preview subtotal %d total %d discount %d %s, want %d %d %d usd",
					pv.Subtotal, pv.Total, pv.DiscountAmount, pv.Currency, tc.subtotal, tc.total, tc.discount)
			}
			if pv.Subscription != subID || pv.Customer != cus || !slices.Equal(pv.PriceIDs, []string{priceID}) {
				t.Errorf("preview of %s for %s with %q, want %s, %s, %s", pv.Subscription, pv.Customer, pv.PriceIDs, subID, cus, priceID)
			}
			sub, err := b.gw.GetSubscription(t.Context(), subID)
			must(t, "GetSubscription", err)
			if !pv.PeriodStart.Equal(sub.CurrentPeriodEnd) || !pv.PeriodEnd.After(pv.PeriodStart) {
				t.Errorf("preview bills [%v, %v), want the next period from %v", pv.PeriodStart, pv.PeriodEnd, sub.CurrentPeriodEnd)
			}
			if sub.Discount != nil || b.readPromotionCode(t, promoID).TimesRedeemed != 0 {
				t.Errorf("a preview changed state: discount %+v", sub.Discount)
			}
		})
	}
}

func scenarioPreviewNew(t *testing.T, b *backend) {
	_, priceID := b.plan(t, "usd", 2000)
	couponID := b.coupon(t, 1250)
	promoID := b.promotionCode(t, couponID, nil)
	cus := b.customer(t, "")
	pv, err := b.gw.PreviewInvoice(t.Context(), promo.PreviewSpec{Customer: cus, Price: priceID, PromotionCodeID: promoID})
	must(t, "PreviewInvoice with a promotion code", err)
	plain, err := b.gw.PreviewInvoice(t.Context(), promo.PreviewSpec{Customer: cus, Price: priceID})
	must(t, "PreviewInvoice without a promotion code", err)
	if !b.stateful {
		return
	}
	if pv.Subtotal != 2000 || pv.Total != 1750 || pv.DiscountAmount != 250 || pv.Currency != "usd" {
		t.Errorf("preview subtotal %d total %d discount %d %s, want 2000 1750 250 usd", pv.Subtotal, pv.Total, pv.DiscountAmount, pv.Currency)
	}
	if pv.Subscription != "" || pv.Customer != cus || !slices.Equal(pv.PriceIDs, []string{priceID}) || !pv.PeriodEnd.After(pv.PeriodStart) {
		t.Errorf("preview %+v, want a first invoice of a new subscription of %s to %s", pv, cus, priceID)
	}
	if plain.Total != 2000 || plain.DiscountAmount != 0 {
		t.Errorf("preview without a code: total %d discount %d, want 2000 0", plain.Total, plain.DiscountAmount)
	}
	if n := b.readPromotionCode(t, promoID).TimesRedeemed; n != 0 {
		t.Errorf("a preview redeemed the promotion code %d times", n)
	}
}

func scenarioFindSubscription(t *testing.T, b *backend) {
	_, priceID := b.plan(t, "usd", 2000)
	cus := b.customer(t, "")
	other := b.customer(t, "")
	canceled := b.subscribe(t, cus, priceID, "", map[string]string{promo.MetaRedemptionID: "rd_a"})
	_, err := b.api.Subscriptions.Cancel(canceled, nil)
	must(t, "fixture: cancel subscription", err)
	live := b.subscribe(t, cus, priceID, "", map[string]string{promo.MetaRedemptionID: "rd_b"})
	b.subscribe(t, other, priceID, "", map[string]string{promo.MetaRedemptionID: "rd_c"})

	find := func(customer, value string) *promo.Subscription {
		t.Helper()
		sub, err := b.gw.FindSubscription(t.Context(), customer, promo.MetaRedemptionID, value)
		must(t, "FindSubscription", err)
		return sub
	}
	gotLive := find(cus, "rd_b")
	gotCanceled := find(cus, "rd_a")
	gotOther := find(cus, "rd_c")
	gotNone := find(cus, "rd_none")
	if !b.stateful {
		return
	}
	if gotLive == nil || gotLive.ID != live {
		t.Errorf("rd_b: got %+v, want %s", gotLive, live)
	}
	if gotCanceled == nil || gotCanceled.ID != canceled || gotCanceled.Status != "canceled" {
		t.Errorf("rd_a: got %+v, want the canceled %s (every status is searched)", gotCanceled, canceled)
	}
	if gotOther != nil || gotNone != nil {
		t.Errorf("another customer's or no subscription: got %+v and %+v, want nil", gotOther, gotNone)
	}
}

// ---- refusals ----

// refusalTarget is a customer with a paid subscription and a promotion code
// Stripe must refuse for them.
type refusalTarget struct {
	customer, subscription, price, promo string
}

// checkRefused tries promotion code t.promo through every gateway call that
// takes one: on the subscription, on a new subscription of the customer and
// in both previews. stripe-mock must accept each request; the simulator must
// refuse each with want and leave the subscription without a discount.
func checkRefused(t *testing.T, b *backend, rt refusalTarget, want promo.Code) {
	t.Helper()
	_, err := b.gw.ApplyPromotionCode(t.Context(), rt.subscription, rt.promo, map[string]string{promo.MetaRedemptionID: "rd_refused"}, b.key())
	wantRefused(t, b, "ApplyPromotionCode", err, want)
	_, err = b.gw.CreateSubscription(t.Context(), promo.SubscriptionSpec{Customer: rt.customer, Price: rt.price, Quantity: 1, PromotionCodeID: rt.promo}, b.key())
	wantRefused(t, b, "CreateSubscription", err, want)
	_, err = b.gw.PreviewInvoice(t.Context(), promo.PreviewSpec{Subscription: rt.subscription, PromotionCodeID: rt.promo})
	wantRefused(t, b, "PreviewInvoice of the subscription", err, want)
	_, err = b.gw.PreviewInvoice(t.Context(), promo.PreviewSpec{Customer: rt.customer, Price: rt.price, PromotionCodeID: rt.promo})
	wantRefused(t, b, "PreviewInvoice of a new subscription", err, want)
	if b.stateful {
		sub, err := b.gw.GetSubscription(t.Context(), rt.subscription)
		must(t, "GetSubscription", err)
		if sub.Discount != nil || sub.Metadata[promo.MetaRedemptionID] != "" {
			t.Errorf("a refused apply changed the subscription: discount %+v metadata %v", sub.Discount, sub.Metadata)
		}
	}
}

func scenarioRefusedInactive(t *testing.T, b *backend) {
	_, priceID := b.plan(t, "usd", 2000)
	couponID := b.coupon(t, 1000)
	cus := b.customer(t, "")
	id, err := b.gw.CreatePromotionCode(t.Context(),
		promo.PromotionCodeSpec{Code: b.uniq("OFF"), CouponID: couponID, Active: false}, b.key())
	must(t, "CreatePromotionCode", err)
	checkRefused(t, b, refusalTarget{cus, b.subscribe(t, cus, priceID, "", nil), priceID, id}, promo.CodeCodeInactive)
}

func scenarioRefusedExpired(t *testing.T, b *backend) {
	_, priceID := b.plan(t, "usd", 2000)
	couponID := b.coupon(t, 1000)
	now := time.Now().Truncate(time.Second)
	clock := b.clock(t, now)
	cus := b.customer(t, clock)
	subID := b.subscribe(t, cus, priceID, "", nil)
	expires := now.Add(time.Hour)
	id, err := b.gw.CreatePromotionCode(t.Context(),
		promo.PromotionCodeSpec{Code: b.uniq("SOON"), CouponID: couponID, Active: true, ExpiresAt: &expires}, b.key())
	must(t, "CreatePromotionCode", err)
	// Still valid at the customer's time: the preview works.
	pv, err := b.gw.PreviewInvoice(t.Context(), promo.PreviewSpec{Subscription: subID, PromotionCodeID: id})
	must(t, "PreviewInvoice before expiry", err)
	if b.stateful && pv.DiscountAmount != 200 {
		t.Errorf("preview before expiry: discount %d, want 200", pv.DiscountAmount)
	}
	b.advanceClock(t, clock, now.Add(2*time.Hour))
	checkRefused(t, b, refusalTarget{cus, subID, priceID, id}, promo.CodeCodeExpired)
}

func scenarioRefusedExhausted(t *testing.T, b *backend) {
	_, priceID := b.plan(t, "usd", 2000)
	couponID := b.coupon(t, 1000)
	id := b.promotionCode(t, couponID, func(p *stripe.PromotionCodeParams) { p.MaxRedemptions = stripe.Int64(1) })
	// The one redemption.
	first, err := b.gw.CreateSubscription(t.Context(), promo.SubscriptionSpec{
		Customer: b.customer(t, ""), Price: priceID, Quantity: 1, PromotionCodeID: id}, b.key())
	must(t, "CreateSubscription with the last redemption", err)
	if b.stateful && (first.Discount == nil || first.Discount.PromotionCodeID != id) {
		t.Fatalf("the first redemption got discount %+v, want promotion code %s", first.Discount, id)
	}
	cus := b.customer(t, "")
	checkRefused(t, b, refusalTarget{cus, b.subscribe(t, cus, priceID, "", nil), priceID, id}, promo.CodeCodeExhausted)
}

func scenarioRefusedNewUsersOnly(t *testing.T, b *backend) {
	_, priceID := b.plan(t, "usd", 2000)
	couponID := b.coupon(t, 1000)
	spec := promo.PromotionCodeSpec{Code: b.uniq("NEWBIE"), CouponID: couponID, Active: true, FirstTimeTransaction: true}
	id, err := b.gw.CreatePromotionCode(t.Context(), spec, b.key())
	must(t, "CreatePromotionCode", err)
	// A customer without transactions may use it.
	pv, err := b.gw.PreviewInvoice(t.Context(), promo.PreviewSpec{Customer: b.customer(t, ""), Price: priceID, PromotionCodeID: id})
	must(t, "PreviewInvoice for a new customer", err)
	if b.stateful && pv.DiscountAmount != 200 {
		t.Errorf("new customer's preview: discount %d, want 200", pv.DiscountAmount)
	}
	// One whose first invoice was paid may not.
	cus := b.customer(t, "")
	subID := b.subscribe(t, cus, priceID, "", nil)
	checkRefused(t, b, refusalTarget{cus, subID, priceID, id}, promo.CodeNewUsersOnly)
}

func scenarioRefusedCustomerMismatch(t *testing.T, b *backend) {
	_, priceID := b.plan(t, "usd", 2000)
	couponID := b.coupon(t, 1000)
	owner := b.customer(t, "")
	id := b.promotionCode(t, couponID, func(p *stripe.PromotionCodeParams) { p.Customer = stripe.String(owner) })
	pv, err := b.gw.PreviewInvoice(t.Context(), promo.PreviewSpec{Customer: owner, Price: priceID, PromotionCodeID: id})
	must(t, "PreviewInvoice for the code's customer", err)
	if b.stateful && pv.DiscountAmount != 200 {
		t.Errorf("the code's own customer: discount %d, want 200", pv.DiscountAmount)
	}
	cus := b.customer(t, "")
	checkRefused(t, b, refusalTarget{cus, b.subscribe(t, cus, priceID, "", nil), priceID, id}, promo.CodeCustomerMismatch)
}

// The promotion code is fine but its coupon has reached max_redemptions:
// Stripe says coupon_expired, the re-read shows it used up.
func scenarioRefusedCouponUsedUp(t *testing.T, b *backend) {
	_, priceID := b.plan(t, "usd", 2000)
	cp, err := b.api.Coupons.New(&stripe.CouponParams{PercentOff: stripe.Float64(10), Duration: stripe.String("forever"),
		MaxRedemptions: stripe.Int64(1)})
	must(t, "fixture: coupon", err)
	id := b.promotionCode(t, cp.ID, nil)
	_, err = b.gw.CreateSubscription(t.Context(), promo.SubscriptionSpec{
		Customer: b.customer(t, ""), Price: priceID, Quantity: 1, PromotionCodeID: id}, b.key())
	must(t, "CreateSubscription with the coupon's last redemption", err)
	cus := b.customer(t, "")
	checkRefused(t, b, refusalTarget{cus, b.subscribe(t, cus, priceID, "", nil), priceID, id}, promo.CodeCodeExhausted)
}

// The coupon's redeem_by passed at the customer's (test clock) time.
func scenarioRefusedCouponExpired(t *testing.T, b *backend) {
	_, priceID := b.plan(t, "usd", 2000)
	now := time.Now().Truncate(time.Second)
	clock := b.clock(t, now)
	cus := b.customer(t, clock)
	subID := b.subscribe(t, cus, priceID, "", nil)
	cp, err := b.api.Coupons.New(&stripe.CouponParams{PercentOff: stripe.Float64(10), Duration: stripe.String("forever"),
		RedeemBy: stripe.Int64(now.Add(time.Hour).Unix())})
	must(t, "fixture: coupon", err)
	id := b.promotionCode(t, cp.ID, nil)
	b.advanceClock(t, clock, now.Add(2*time.Hour))
	checkRefused(t, b, refusalTarget{cus, subID, priceID, id}, promo.CodeCodeExpired)
}

// When the promotion code cannot be read back after a refusal, the refusal
// stays a stripe_error (Stripe's 400, not an unknown outcome: nothing was
// applied) rather than a guess.
func scenarioRefusalNotReadBack(t *testing.T, b *backend) {
	_, priceID := b.plan(t, "usd", 2000)
	cus := b.customer(t, "")
	subID := b.subscribe(t, cus, priceID, "", nil)
	id, err := b.gw.CreatePromotionCode(t.Context(),
		promo.PromotionCodeSpec{Code: b.uniq("OFF"), CouponID: b.coupon(t, 1000), Active: false}, b.key())
	must(t, "CreatePromotionCode", err)
	b.sim.InjectFault(stripesim.Fault{Kind: stripesim.FaultServerError, Method: "GET", Path: "/v1/promotion_codes/" + id})
	_, err = b.gw.ApplyPromotionCode(t.Context(), subID, id, nil, b.key())
	var se *stripe.Error
	if pe := asPromo(t, err); pe.Code != promo.CodeStripeError || !errors.As(err, &se) || se.HTTPStatusCode != 400 ||
		pe.StripeRequestID != se.RequestID || errors.Is(err, promo.ErrOutcomeUnknown) {
		t.Errorf("refusal with a failed read-back: %v, want Stripe's 400 as stripe_error", err)
	}
	_, err = b.gw.ApplyPromotionCode(t.Context(), subID, id, nil, b.key())
	wantRefused(t, b, "ApplyPromotionCode once the read-back works", err, promo.CodeCodeInactive)
}

func scenarioUnknownSubscription(t *testing.T, b *backend) {
	promoID := b.promotionCode(t, b.coupon(t, 1000), nil)
	missing := b.uniq("sub_missing")
	_, err := b.gw.GetSubscription(t.Context(), missing)
	wantRefused(t, b, "GetSubscription", err, promo.CodeSubscriptionNotFound)
	_, err = b.gw.ApplyPromotionCode(t.Context(), missing, promoID, nil, b.key())
	wantRefused(t, b, "ApplyPromotionCode", err, promo.CodeSubscriptionNotFound)
	_, err = b.gw.RemoveDiscount(t.Context(), missing, b.key())
	wantRefused(t, b, "RemoveDiscount", err, promo.CodeSubscriptionNotFound)
	_, err = b.gw.PreviewInvoice(t.Context(), promo.PreviewSpec{Subscription: missing, PromotionCodeID: promoID})
	wantRefused(t, b, "PreviewInvoice", err, promo.CodeSubscriptionNotFound)
}

// scenarioServerErrors needs the simulator's fault injection. A 5xx leaves
// the outcome unknown whether or not Stripe executed the call; a 429 does
// not (Stripe refused before executing).
func scenarioServerErrors(t *testing.T, b *backend) {
	_, priceID := b.plan(t, "usd", 2000)
	promoID := b.promotionCode(t, b.coupon(t, 1000), nil)
	cus := b.customer(t, "")
	subID := b.subscribe(t, cus, priceID, "", nil)
	path := "/v1/subscriptions/" + subID
	cases := []struct {
		kind         stripesim.FaultKind
		unknown      bool // must wrap ErrOutcomeUnknown
		wantDiscount bool // the simulator executed the update
	}{
		{stripesim.FaultRateLimit, false, false},
		{stripesim.FaultServerError, true, false},
		{stripesim.FaultCommitThenError, true, true},
	}
	for _, tc := range cases {
		t.Run(string(tc.kind), func(t *testing.T) {
			b.sim.InjectFault(stripesim.Fault{Kind: tc.kind, Method: "POST", Path: path})
			_, err := b.gw.ApplyPromotionCode(t.Context(), subID, promoID, nil, b.key())
			if err == nil {
				t.Fatalf("%s: ApplyPromotionCode succeeded", tc.kind)
			}
			pe := asPromo(t, err)
			if pe.Code != promo.CodeStripeError || pe.StripeRequestID == "" {
				t.Errorf("%s: %+v, want stripe_error with Stripe's request ID", tc.kind, pe)
			}
			if errors.Is(err, promo.ErrOutcomeUnknown) != tc.unknown {
				t.Errorf("%s: errors.Is(err, ErrOutcomeUnknown) = %v, want %v (%v)", tc.kind, !tc.unknown, tc.unknown, err)
			}
			sub, err := b.gw.GetSubscription(t.Context(), subID)
			must(t, "GetSubscription", err)
			if (sub.Discount != nil) != tc.wantDiscount {
				t.Errorf("%s: discount after the failure %+v, want present=%v", tc.kind, sub.Discount, tc.wantDiscount)
			}
		})
	}
	b.sim.InjectFault(stripesim.Fault{Kind: stripesim.FaultServerError, Method: "GET", Path: path})
	_, err := b.gw.GetSubscription(t.Context(), subID)
	if promo.CodeOf(err) != promo.CodeStripeError || !errors.Is(err, promo.ErrOutcomeUnknown) {
		t.Errorf("GetSubscription answered 500: %v, want stripe_error wrapping ErrOutcomeUnknown", err)
	}
}

// ---- helpers ----

func rawClient(base string) *client.API {
	be := stripe.GetBackendWithConfig(stripe.APIBackend, &stripe.BackendConfig{
		URL:               stripe.String(base),
		MaxNetworkRetries: stripe.Int64(0),
		LeveledLogger:     &stripe.LeveledLogger{Level: stripe.LevelNull},
	})
	return client.New(testKey, &stripe.Backends{API: be, Connect: be, Uploads: be})
}

func must(t *testing.T, what string, err error) {
	t.Helper()
	if err != nil {
		t.Fatalf("%s: %v", what, err)
	}
}

// wantRefused asserts a call Stripe must refuse with a domain code: on
// stripe-mock the request must be accepted (it is well formed), on the
// simulator refused with want and Stripe's request ID.
func wantRefused(t *testing.T, b *backend, what string, err error, want promo.Code) {
	t.Helper()
	if !b.stateful {
		must(t, what, err)
		return
	}
	if err == nil {
		t.Errorf("%s: accepted, want %s", what, want)
		return
	}
	var pe *promo.Error
	if !errors.As(err, &pe) || pe.Code != want || pe.StripeRequestID == "" {
		t.Errorf("%s: %v, want %s with Stripe's request ID", what, err, want)
	}
}

func (b *backend) next() int {
	b.n++
	return b.n
}

// uniq returns prefix with a number unique within the backend.
func (b *backend) uniq(prefix string) string { return fmt.Sprintf("%s%s%d", prefix, b.run, b.next()) }

// key is a fresh idempotency key.
func (b *backend) key() string { return b.uniq("conformance-") }

// plan creates a product with a monthly price.
func (b *backend) plan(t *testing.T, currency string, amount int64) (productID, priceID string) {
	t.Helper()
	prod, err := b.api.Products.New(&stripe.ProductParams{Name: stripe.String(b.uniq("Plan "))})
	must(t, "fixture: product", err)
	pr, err := b.api.Prices.New(&stripe.PriceParams{
		Product: stripe.String(prod.ID), Currency: stripe.String(currency), UnitAmount: stripe.Int64(amount),
		Recurring: &stripe.PriceRecurringParams{Interval: stripe.String("month")},
	})
	must(t, "fixture: price", err)
	return prod.ID, pr.ID
}

// customer creates a customer, on a test clock when clock is set.
func (b *backend) customer(t *testing.T, clock string) string {
	t.Helper()
	p := &stripe.CustomerParams{Email: stripe.String(b.uniq("buyer") + "@example.com")}
	if clock != "" {
		p.TestClock = stripe.String(clock)
	}
	cu, err := b.api.Customers.New(p)
	must(t, "fixture: customer", err)
	return cu.ID
}

func (b *backend) clock(t *testing.T, at time.Time) string {
	t.Helper()
	tc, err := b.api.TestHelpersTestClocks.New(&stripe.TestHelpersTestClockParams{FrozenTime: stripe.Int64(at.Unix())})
	must(t, "fixture: test clock", err)
	return tc.ID
}

func (b *backend) advanceClock(t *testing.T, id string, to time.Time) {
	t.Helper()
	_, err := b.api.TestHelpersTestClocks.Advance(id, &stripe.TestHelpersTestClockAdvanceParams{FrozenTime: stripe.Int64(to.Unix())})
	must(t, "fixture: advance test clock", err)
}

// coupon creates a forever percentage coupon (hundredths of a percent)
// through the gateway.
func (b *backend) coupon(t *testing.T, percent int64) string {
	t.Helper()
	return b.couponSpec(t, promo.CouponSpec{PercentOff: percent, Duration: promo.Forever})
}

func (b *backend) couponSpec(t *testing.T, spec promo.CouponSpec) string {
	t.Helper()
	id, err := b.gw.CreateCoupon(t.Context(), spec, b.key())
	must(t, "fixture: coupon", err)
	return id
}

// promotionCode creates an active promotion code on couponID with plain
// stripe-go, so that restrictions the gateway never sets (customer,
// max_redemptions) can be added by mod.
func (b *backend) promotionCode(t *testing.T, couponID string, mod func(*stripe.PromotionCodeParams)) string {
	t.Helper()
	p := &stripe.PromotionCodeParams{Coupon: stripe.String(couponID), Code: stripe.String(b.uniq("CODE"))}
	if mod != nil {
		mod(p)
	}
	pc, err := b.api.PromotionCodes.New(p)
	must(t, "fixture: promotion code", err)
	return pc.ID
}

func (b *backend) readPromotionCode(t *testing.T, id string) *stripe.PromotionCode {
	t.Helper()
	pc, err := b.api.PromotionCodes.Get(id, nil)
	must(t, "read promotion code", err)
	return pc
}

// subscribe creates a monthly subscription with plain stripe-go (with the
// coupon's discount when couponID is set).
func (b *backend) subscribe(t *testing.T, customer, priceID, couponID string, md map[string]string) string {
	t.Helper()
	p := &stripe.SubscriptionParams{
		Customer: stripe.String(customer),
		Items:    []*stripe.SubscriptionItemsParams{{Price: stripe.String(priceID)}},
		Metadata: md,
	}
	if couponID != "" {
		p.Coupon = stripe.String(couponID)
	}
	sub, err := b.api.Subscriptions.New(p)
	must(t, "fixture: subscription", err)
	return sub.ID
}

func (b *backend) latestInvoice(t *testing.T, subID string) *stripe.Invoice {
	t.Helper()
	p := &stripe.SubscriptionParams{}
	p.AddExpand("latest_invoice")
	sub, err := b.api.Subscriptions.Get(subID, p)
	must(t, "read subscription", err)
	if sub.LatestInvoice == nil {
		t.Fatalf("subscription %s has no latest invoice", subID)
	}
	return sub.LatestInvoice
}

func (b *backend) invoiceIDs(t *testing.T, subID string) []string {
	t.Helper()
	var ids []string
	it := b.api.Invoices.List(&stripe.InvoiceListParams{Subscription: stripe.String(subID)})
	for it.Next() {
		ids = append(ids, it.Invoice().ID)
	}
	must(t, "list invoices", it.Err())
	return ids
}

func sumDiscounts(in *stripe.Invoice) int64 {
	var n int64
	for _, d := range in.TotalDiscountAmounts {
		n += d.Amount
	}
	return n
}
