package stripesim

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	stripe "github.com/stripe/stripe-go/v76"
	"github.com/stripe/stripe-go/v76/webhook"
)

const whsec = "whsec_test_secret"

// receiver is an httptest webhook endpoint that verifies signatures with
// stripe-go and records what it got.
type receiver struct {
	t      *testing.T
	srv    *httptest.Server
	mu     sync.Mutex
	events []stripe.Event
	hits   map[string]int // event ID -> requests
	// respond decides the status for the nth (1-based) request of an event.
	respond func(ev stripe.Event, n int) int
	// gate, if set, is waited on before answering the first request.
	gate chan struct{}
	seen int
}

func newReceiver(t *testing.T) *receiver {
	rc := &receiver{t: t, hits: map[string]int{}}
	rc.srv = httptest.NewServer(http.HandlerFunc(rc.handle))
	t.Cleanup(rc.srv.Close)
	return rc
}

func (rc *receiver) handle(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(r.Body)
	ev, err := webhook.ConstructEvent(body, r.Header.Get("Stripe-Signature"), whsec)
	if err != nil {
		rc.t.Errorf("signature verification failed: %v (header %q)", err, r.Header.Get("Stripe-Signature"))
		w.WriteHeader(400)
		return
	}
	if ct := r.Header.Get("Content-Type"); ct != "application/json; charset=utf-8" {
		rc.t.Errorf("Content-Type = %q", ct)
	}
	if ua := r.Header.Get("User-Agent"); ua != "Stripe/1.0 (+https://stripe.com/docs/webhooks)" {
		rc.t.Errorf("User-Agent = %q", ua)
	}
	if r.Method != http.MethodPost {
		rc.t.Errorf("method = %s", r.Method)
	}
	rc.mu.Lock()
	rc.seen++
	first := rc.seen == 1
	gate := rc.gate
	rc.mu.Unlock()
	if first && gate != nil {
		<-gate
	}
	rc.mu.Lock()
	rc.hits[ev.ID]++
	n := rc.hits[ev.ID]
	status := 200
	if rc.respond != nil {
		status = rc.respond(ev, n)
	}
	if status/100 == 2 {
		rc.events = append(rc.events, ev)
	}
	rc.mu.Unlock()
	w.WriteHeader(status)
}

func (rc *receiver) got() ([]stripe.Event, map[string]int) {
	rc.mu.Lock()
	defer rc.mu.Unlock()
	hits := map[string]int{}
	for k, v := range rc.hits {
		hits[k] = v
	}
	return append([]stripe.Event(nil), rc.events...), hits
}

func wait(t *testing.T, s *Server) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if err := s.WaitDeliveries(ctx); err != nil {
		t.Fatalf("WaitDeliveries: %v", err)
	}
}

func TestWebhookDeliverySignedAndOrdered(t *testing.T) {
	rc := newReceiver(t)
	e := newEnv(t, Options{WebhookURL: rc.srv.URL, WebhookSecret: whsec})
	cust := e.mkCustomer("")
	_, err := e.sc.Customers.Update(cust.ID, &stripe.CustomerParams{Metadata: map[string]string{"a": "b"}})
	mustNoErr(t, err)
	pr := e.mkPrice(2000, "usd")
	_, err = e.mkSub(cust.ID, pr.ID, nil)
	mustNoErr(t, err)
	wait(t, e.sim)

	got, _ := rc.got()
	var types []string
	for _, ev := range got {
		types = append(types, string(ev.Type))
	}
	want := []string{"customer.created", "customer.updated", "product.created", "price.created",
		"customer.subscription.created", "invoice.created", "invoice.finalized", "invoice.paid", "invoice.payment_succeeded"}
	if strings.Join(types, ",") != strings.Join(want, ",") {
		t.Fatalf("delivered\n %v\nwant\n %v", types, want)
	}
	// The delivered events are the stored events.
	for _, ev := range got {
		if ev.APIVersion != "2023-10-16" || ev.Object != "event" || ev.Livemode || ev.PendingWebhooks != 1 || !strings.HasPrefix(ev.ID, "evt_") {
			t.Errorf("event envelope = %+v", ev)
		}
		stored, err := e.sc.Events.Get(ev.ID, nil)
		mustNoErr(t, err)
		if stored.Type != ev.Type || stored.Created != ev.Created {
			t.Errorf("stored event differs: %+v", stored)
		}
	}
	upd := got[1]
	if upd.Data.PreviousAttributes["metadata"] == nil || upd.GetObjectValue("metadata", "a") != "b" {
		t.Errorf("customer.updated data = %+v", upd.Data)
	}
	if !strings.HasPrefix(upd.Request.ID, "req_") || upd.Request.IdempotencyKey == "" {
		t.Errorf("request = %+v", upd.Request)
	}
	// invoice.created snapshot is the draft, invoice.paid the paid invoice.
	if got[5].GetObjectValue("status") != "draft" || got[6].GetObjectValue("status") != "open" || got[7].GetObjectValue("status") != "paid" {
		t.Errorf("invoice snapshots: %s %s %s", got[5].GetObjectValue("status"), got[6].GetObjectValue("status"), got[7].GetObjectValue("status"))
	}
}

func TestWebhookRetries(t *testing.T) {
	rc := newReceiver(t)
	rc.respond = func(ev stripe.Event, n int) int {
		if n <= 2 {
			return 500
		}
		return 204
	}
	e := newEnv(t, Options{WebhookURL: rc.srv.URL, WebhookSecret: whsec, RetryBackoff: 5 * time.Millisecond})
	c := e.mkCustomer("")
	wait(t, e.sim)
	got, hits := rc.got()
	if len(got) != 1 || got[0].GetObjectValue("id") != c.ID || hits[got[0].ID] != 3 {
		t.Fatalf("got %d events, hits %v", len(got), hits)
	}

	// A receiver that always fails gets exactly MaxDeliveryAttempts tries.
	rc2 := newReceiver(t)
	rc2.respond = func(stripe.Event, int) int { return 503 }
	e2 := newEnv(t, Options{WebhookURL: rc2.srv.URL, WebhookSecret: whsec, RetryBackoff: time.Millisecond, MaxDeliveryAttempts: 4})
	e2.mkCustomer("")
	wait(t, e2.sim)
	_, hits = rc2.got()
	if len(hits) != 1 {
		t.Fatalf("hits = %v", hits)
	}
	for _, n := range hits {
		if n != 4 {
			t.Fatalf("attempts = %d, want 4", n)
		}
	}

	// Connection errors are retried too; switching the URL recovers.
	dead := httptest.NewServer(http.NotFoundHandler())
	deadURL := dead.URL
	dead.Close()
	rc3 := newReceiver(t)
	e3 := newEnv(t, Options{WebhookURL: deadURL, WebhookSecret: whsec, RetryBackoff: 20 * time.Millisecond, MaxDeliveryAttempts: 50})
	c3 := e3.mkCustomer("")
	time.Sleep(50 * time.Millisecond)
	e3.sim.SetWebhookURL(rc3.srv.URL, whsec)
	wait(t, e3.sim)
	got3, _ := rc3.got()
	if len(got3) != 1 || got3[0].GetObjectValue("id") != c3.ID {
		t.Fatalf("after URL switch got %d events", len(got3))
	}
}

func TestWebhookChaosCopiesAndShuffle(t *testing.T) {
	rc := newReceiver(t)
	e := newEnv(t, Options{WebhookURL: rc.srv.URL, WebhookSecret: whsec})
	e.sim.SetWebhookChaos(3, false)
	c := e.mkCustomer("")
	wait(t, e.sim)
	got, _ := rc.got()
	if len(got) != 3 {
		t.Fatalf("copies: got %d deliveries", len(got))
	}
	for _, ev := range got {
		if ev.GetObjectValue("id") != c.ID || ev.ID != got[0].ID {
			t.Fatalf("copies differ: %v", ev.ID)
		}
	}

	// Shuffle: hold the first delivery until many events are pending, then
	// the pending batch arrives out of order.
	rc2 := newReceiver(t)
	rc2.gate = make(chan struct{})
	e2 := newEnv(t, Options{WebhookURL: rc2.srv.URL, WebhookSecret: whsec})
	e2.sim.SetWebhookChaos(2, true)
	var created []string
	for i := 0; i < 20; i++ {
		created = append(created, e2.mkCustomer("").ID)
	}
	close(rc2.gate)
	wait(t, e2.sim)
	got2, _ := rc2.got()
	if len(got2) != 40 {
		t.Fatalf("shuffle+copies: got %d deliveries, want 40", len(got2))
	}
	var order []string
	count := map[string]int{}
	for _, ev := range got2 {
		id := ev.GetObjectValue("id")
		count[id]++
		order = append(order, id)
	}
	for _, id := range created {
		if count[id] != 2 {
			t.Fatalf("customer %s delivered %d times", id, count[id])
		}
	}
	inOrder := sort.SliceIsSorted(order, func(i, j int) bool { return indexOf(created, order[i]) < indexOf(created, order[j]) })
	if inOrder {
		t.Fatalf("deliveries were not shuffled: %v", order)
	}
}

func indexOf(s []string, v string) int {
	for i, x := range s {
		if x == v {
			return i
		}
	}
	return -1
}

func TestWebhookDisabledAndSwitchedOn(t *testing.T) {
	rc := newReceiver(t)
	e := newEnv(t, Options{})
	before := e.mkCustomer("")
	e.sim.SetWebhookURL(rc.srv.URL, whsec)
	after := e.mkCustomer("")
	wait(t, e.sim)
	got, _ := rc.got()
	if len(got) != 1 || got[0].GetObjectValue("id") != after.ID {
		t.Fatalf("got %d events", len(got))
	}
	ev := e.events("customer.created")
	if len(ev) != 2 || ev[0].GetObjectValue("id") != before.ID || ev[0].PendingWebhooks != 0 || ev[1].PendingWebhooks != 1 {
		t.Fatalf("stored events = %+v", ev)
	}
	// Over HTTP.
	r := e.raw("POST", "/_sim/webhooks/chaos", testKey, `{"copies":2}`, map[string]string{"Content-Type": "application/json"})
	if r.status != 200 {
		t.Fatalf("chaos: %d %s", r.status, r.raw)
	}
	e.mkCustomer("")
	wait(t, e.sim)
	got, _ = rc.got()
	if len(got) != 3 {
		t.Fatalf("after HTTP chaos got %d deliveries", len(got))
	}
}

func TestWaitDeliveriesHonoursContext(t *testing.T) {
	rc := newReceiver(t)
	rc.gate = make(chan struct{})
	e := newEnv(t, Options{WebhookURL: rc.srv.URL, WebhookSecret: whsec})
	e.mkCustomer("")
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	if err := e.sim.WaitDeliveries(ctx); err == nil {
		t.Fatal("WaitDeliveries returned nil while a delivery was stuck")
	}
	close(rc.gate)
	wait(t, e.sim)
}

func TestEventsAPI(t *testing.T) {
	e := newEnv(t, Options{})
	c := e.mkCustomer("")
	cp := e.mkCoupon(&stripe.CouponParams{PercentOff: stripe.Float64(5)})
	_, err := e.sc.Coupons.Update(cp.ID, &stripe.CouponParams{Name: stripe.String("five")})
	mustNoErr(t, err)
	_, err = e.sc.Coupons.Del(cp.ID, nil)
	mustNoErr(t, err)
	if got := e.events("coupon.*"); len(got) != 3 || got[0].Type != "coupon.created" || got[1].Type != "coupon.updated" || got[2].Type != "coupon.deleted" {
		t.Fatalf("coupon.* = %d", len(got))
	}
	it := e.sc.Events.List(&stripe.EventListParams{Types: stripe.StringSlice([]string{"customer.created", "coupon.deleted"})})
	n := 0
	for it.Next() {
		n++
	}
	mustNoErr(t, it.Err())
	if n != 2 {
		t.Fatalf("types filter = %d", n)
	}
	ev := e.events("customer.created")[0]
	var obj map[string]any
	mustNoErr(t, json.Unmarshal(ev.Data.Raw, &obj))
	if obj["id"] != c.ID || obj["object"] != "customer" {
		t.Fatalf("data.object = %v", obj)
	}
	_, err = e.sc.Events.Get("evt_nope", nil)
	stripeErr(t, err, 404, stripe.ErrorTypeInvalidRequest, stripe.ErrorCodeResourceMissing, "id")
	future := time.Now().Add(time.Hour).Unix()
	it = e.sc.Events.List(&stripe.EventListParams{CreatedRange: &stripe.RangeQueryParams{GreaterThanOrEqual: future}})
	if it.Next() {
		t.Fatal("created[gte] in the future returned events")
	}
	mustNoErr(t, it.Err())
}

func TestSeedAndDeclineOverHTTP(t *testing.T) {
	e := newEnv(t, Options{})
	sd, err := e.sim.Seed()
	mustNoErr(t, err)
	pr, err := e.sc.Prices.Get(sd.PriceID, nil)
	mustNoErr(t, err)
	if pr.UnitAmount != 2000 || pr.Currency != "usd" || pr.Recurring.Interval != "month" || pr.Product.ID != sd.ProductID {
		t.Fatalf("seed price = %+v", pr)
	}
	if _, err := e.sc.Customers.Get(sd.CustomerID, nil); err != nil {
		t.Fatal(err)
	}
	r := e.raw("POST", "/_sim/customers/cus_nope/decline", testKey, `{"decline":true}`, map[string]string{"Content-Type": "application/json"})
	if r.status != 404 {
		t.Fatalf("decline unknown customer: %d", r.status)
	}
	r = e.raw("POST", "/_sim/customers/"+sd.CustomerID+"/decline", testKey, `{}`, map[string]string{"Content-Type": "application/json"})
	if r.status != 400 || r.errField("param") != "decline" {
		t.Fatalf("decline without body: %d %s", r.status, r.raw)
	}
	r = e.raw("POST", "/_sim/seed", testKey, "", nil)
	if r.status != 200 || !strings.HasPrefix(r.body["price_id"].(string), "price_") {
		t.Fatalf("seed over HTTP: %d %s", r.status, r.raw)
	}
}
