package main

import (
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/billing-adapter/billing-adapter/internal/stripesim"
	"github.com/billing-adapter/billing-adapter/internal/testutil/stripespec"
)

// A catalog whose Stripe objects the configured Stripe does not have (a
// fresh simulator, Redis kept) is reported at start, naming reconcile; a
// catalog that agrees with Stripe is not.
func TestStartReportsACatalogStripeDoesNotHave(t *testing.T) {
	st := newStack(t, "", stripesim.Options{})
	s := st.start(t, nil)
	s.createCode(t, map[string]any{"code": "KEPTINREDIS", "promo_type": "percentage", "amount_off": 10})
	if err := s.stop(); err != nil {
		t.Fatal(err)
	}

	again := st.start(t, nil) // same Stripe: nothing to say
	again.call(t, "GET", "/healthz", "", "", nil)
	if err := again.stop(); err != nil {
		t.Fatal(err)
	}
	if strings.Contains(again.logs.String(), "reconcile") {
		t.Fatalf("a catalog that agrees with Stripe was reported:\n%s", again.logs.String())
	}

	fresh := stripesim.New(stripesim.Options{}) // the simulator's world was lost; Redis kept the catalog
	freshSrv := httptest.NewServer(stripespec.Handler(t, fresh))
	t.Cleanup(func() { freshSrv.Close(); stripespec.Events(t, fresh.EventBodies()); fresh.Close() })
	st2 := &stack{Sim: fresh, SimURL: freshSrv.URL, Stripe: st.Stripe, Redis: st.Redis, RedisURL: st.RedisURL}
	lost := st2.start(t, nil)
	eventually(t, "the start-up warning", func() bool {
		return strings.Contains(lost.logs.String(), "billing-adapter reconcile -fix")
	})
	for _, want := range []string{`"missing":1`, "KEPTINREDIS", "does not have"} {
		if !strings.Contains(lost.logs.String(), want) {
			t.Fatalf("the warning lacks %q:\n%s", want, lost.logs.String())
		}
	}
}
