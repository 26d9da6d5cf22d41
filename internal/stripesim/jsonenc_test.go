package stripesim

import (
	"encoding/json"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"
	"time"

	stripe "github.com/stripe/stripe-go/v76"
)

// marshalJSON writes what json.Marshal writes, byte for byte: for random
// values of every kind a render holds (and some it does not), and for every
// object and event of a simulator after a billing lifecycle.
func TestMarshalJSONMatchesEncodingJSON(t *testing.T) {
	same := func(what string, v any) {
		t.Helper()
		want, werr := json.Marshal(v)
		got, gerr := marshalJSON(v)
		if (werr == nil) != (gerr == nil) || string(got) != string(want) {
			t.Fatalf("%s:\n got  %s (%v)\n want %s (%v)", what, got, gerr, want, werr)
		}
	}
	strs := []string{"", "plain", `quote"`, `back\slash`, "<b>&amp;</b>", "tab\tnl\ncr\r", "\x00\x1f\x7f", "é ü 中文",
		"\u2028\u2029", "bad\xffutf8", "emoji 🎉", "1 × Plan (at $10.00 / month)"}
	r := rand.New(rand.NewPCG(1, 2))
	var gen func(depth int) any
	gen = func(depth int) any {
		switch k := r.IntN(14); {
		case k == 0:
			return nil
		case k == 1:
			return strs[r.IntN(len(strs))]
		case k == 2:
			return r.Int64() - r.Int64()
		case k == 3:
			return r.IntN(2) == 0
		case k == 4:
			return r.Float64() * 100
		case k == 5:
			return map[string]string{strs[r.IntN(len(strs))]: strs[r.IntN(len(strs))], "k": "v"}
		case k == 6:
			var m map[string]any
			return m
		case k == 7:
			var s []any
			return s
		case k == 8:
			return json.RawMessage(`{"b": 1, "a":"<x>"}`)
		case k == 9:
			return []string{"a", "<b>"}
		case k == 10:
			return int(r.IntN(1000))
		case depth > 3:
			return "leaf"
		case k == 11 || k == 12:
			m := map[string]any{}
			for range r.IntN(6) {
				m[strs[r.IntN(len(strs))]+string(rune('a'+r.IntN(26)))] = gen(depth + 1)
			}
			return m
		default:
			s := []any{}
			for range r.IntN(5) {
				s = append(s, gen(depth+1))
			}
			return s
		}
	}
	for i := range 3000 {
		same("random value "+string(rune('0'+i%10)), map[string]any{"v": gen(0), "w": gen(0)})
	}
	same("preEncoded", map[string]any{"object": preEncoded(`{"a":"\u003c"}`)})

	e := newEnv(t, Options{})
	pr := e.mkPrice(1250, "usd")
	cp := e.mkCoupon(&stripe.CouponParams{PercentOff: stripe.Float64(12.5), Duration: stripe.String("repeating"),
		DurationInMonths: stripe.Int64(2), Name: stripe.String("Spring <sale> & more")})
	pc := e.mkPromo(cp.ID, "SPRING")
	start := time.Date(2026, 1, 31, 10, 0, 0, 0, time.UTC)
	clk, err := e.sc.TestHelpersTestClocks.New(&stripe.TestHelpersTestClockParams{FrozenTime: stripe.Int64(start.Unix())})
	mustNoErr(t, err)
	cu := e.mkCustomer(clk.ID)
	_, err = e.sc.Subscriptions.New(&stripe.SubscriptionParams{Customer: stripe.String(cu.ID),
		Items:         []*stripe.SubscriptionItemsParams{{Price: stripe.String(pr.ID)}},
		PromotionCode: stripe.String(pc.ID),
		Params:        stripe.Params{Metadata: map[string]string{"note": "ünïcode \"quoted\"", "html": "<i>"}},
		Description:   stripe.String("line\nbreak"),
	})
	mustNoErr(t, err)
	_, err = e.sc.TestHelpersTestClocks.Advance(clk.ID, &stripe.TestHelpersTestClockAdvanceParams{FrozenTime: stripe.Int64(start.AddDate(0, 4, 0).Unix())})
	mustNoErr(t, err)
	s := e.sim
	s.mu.Lock()
	defer s.mu.Unlock()
	n := 0
	for _, sub := range s.subs {
		same("subscription", s.renderSubscription(sub))
		n++
	}
	for _, in := range s.invoices {
		same("invoice", s.renderInvoice(in))
		n++
	}
	for _, c := range s.customers {
		same("customer", s.renderCustomer(c))
		n++
	}
	for _, ev := range s.events {
		var v map[string]any
		mustNoErr(t, json.Unmarshal(ev.body, &v))
		if want, _ := json.Marshal(v); string(want) != string(ev.body) && !strings.Contains(string(ev.body), "e+") {
			t.Fatalf("event %s body is not what json.Marshal writes:\n got  %s\n want %s", ev.typ, ev.body, want)
		}
		n++
	}
	if n < 20 {
		t.Fatalf("only %d objects checked", n)
	}
}

// A key order kept for one key set is not used for another with the same
// hash (keySetHash collides): the map is sorted and written as json.Marshal
// writes it, and the kept order is replaced.
func TestKeyOrderOfAnotherKeySetIsNotUsed(t *testing.T) {
	cases := []struct {
		name string
		kept []string // what keyOrders holds under the map's hash
	}{
		{"other keys, as many", []string{"a", "b", "c", "zz"}},
		{"fewer keys", []string{"a", "b", "c"}},
		{"more keys", []string{"a", "b", "c", "d", "e"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			m := map[string]any{"d": int64(4), "c": "<3>", "b": []any{true}, "a": map[string]any{"x": nil, "w": 1, "v": "", "u": false}}
			h := keySetHash(m)
			keyOrders.Store(h, tc.kept)
			t.Cleanup(func() { keyOrders.Delete(h) })
			want, _ := json.Marshal(m)
			got, err := marshalJSON(map[string]any{"k": m})
			if err != nil || string(got) != `{"k":`+string(want)+`}` {
				t.Fatalf("got %s (%v), want %s", got, err, want)
			}
			if ko, _ := keyOrders.Load(h); !slices.Equal(ko.([]string), []string{"a", "b", "c", "d"}) {
				t.Fatalf("kept order %v, want m's sorted keys", ko)
			}
		})
	}
}
