package main

import (
	"bufio"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"os/exec"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/billing-adapter/billing-adapter/internal/stripesim"
	"github.com/billing-adapter/billing-adapter/internal/testutil/stripecli"
	"github.com/stripe/stripe-go/v76"
)

// The real Stripe CLI (npm @stripe/cli, pinned) against the simulator: no
// network, no Stripe account.

// handledEvents are the event types the adapter handles (README, Webhooks).
var handledEvents = []string{"customer.discount.created", "customer.discount.updated", "customer.discount.deleted",
	"invoice.paid", "invoice.payment_failed", "customer.subscription.deleted", "promotion_code.updated", "coupon.deleted"}

// cliOutput collects a process's output lines and wakes waiters on each.
type cliOutput struct {
	mu      sync.Mutex
	lines   []string
	changed chan struct{}
	closed  bool
}

func newCLIOutput() *cliOutput { return &cliOutput{changed: make(chan struct{})} }

func (o *cliOutput) read(r io.Reader) {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 1<<16), 1<<20)
	for sc.Scan() {
		o.mu.Lock()
		o.lines = append(o.lines, sc.Text())
		close(o.changed)
		o.changed = make(chan struct{})
		o.mu.Unlock()
	}
	o.mu.Lock()
	o.closed = true
	close(o.changed)
	o.changed = make(chan struct{})
	o.mu.Unlock()
}

func (o *cliOutput) String() string {
	o.mu.Lock()
	defer o.mu.Unlock()
	return strings.Join(o.lines, "\n")
}

// wait blocks until a line contains every one of parts and returns it.
func (o *cliOutput) wait(t *testing.T, what string, parts ...string) string {
	t.Helper()
	timer := time.NewTimer(30 * time.Second)
	defer timer.Stop()
	for {
		o.mu.Lock()
		ch, closed := o.changed, o.closed
		for _, l := range o.lines {
			ok := true
			for _, p := range parts {
				if !strings.Contains(l, p) {
					ok = false
					break
				}
			}
			if ok {
				o.mu.Unlock()
				return l
			}
		}
		o.mu.Unlock()
		if closed {
			t.Fatalf("the Stripe CLI exited before %s:\n%s", what, o.String())
		}
		select {
		case <-ch:
		case <-timer.C:
			t.Fatalf("timed out waiting for %s; CLI output:\n%s", what, o.String())
		}
	}
}

// runCLI runs the Stripe CLI to completion against the stack's simulator
// and returns its combined output.
func (st *stack) runCLI(t *testing.T, args ...string) (string, error) {
	t.Helper()
	args = append(args, "--api-base", st.SimURL, "--api-key", stripeKey)
	cmd := exec.Command(stripecli.Bin(t), args...)
	cmd.Env = stripecli.Env(t)
	out, err := cmd.CombinedOutput()
	return string(out), err
}

// listener is a running `stripe listen`.
type listener struct {
	cmd    *exec.Cmd
	stdout *cliOutput
	stderr *cliOutput
}

// listen starts `stripe listen` against the stack's simulator, forwarding
// to forwardTo, and waits for its Ready! line.
func (st *stack) listen(t *testing.T, forwardTo string, extra ...string) *listener {
	t.Helper()
	args := append([]string{"listen", "--api-base", st.SimURL, "--api-key", stripeKey, "--skip-update",
		"--forward-to", forwardTo}, extra...)
	cmd := exec.Command(stripecli.Bin(t), args...)
	cmd.Env = stripecli.Env(t)
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	stderr, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	l := &listener{cmd: cmd, stdout: newCLIOutput(), stderr: newCLIOutput()}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go l.stdout.read(stdout)
	go l.stderr.read(stderr)
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
		if t.Failed() {
			t.Logf("stripe listen stdout:\n%s\nstderr:\n%s", l.stdout.String(), l.stderr.String())
		}
	})
	return l
}

// eventIDs lists the simulator's events of one type, oldest first.
func (st *stack) eventIDs(t *testing.T, typ string) []string {
	t.Helper()
	it := st.Stripe.Events.List(&stripe.EventListParams{Type: stripe.String(typ)})
	var ids []string
	for it.Next() {
		ids = append([]string{it.Event().ID}, ids...)
	}
	if err := it.Err(); err != nil {
		t.Fatal(err)
	}
	return ids
}

// `stripe listen` offline: the session's secret, the Ready! line, each event
// shown and forwarded signed with that secret, the adapter accepting it,
// --events filtering, a dropped connection losing nothing, and a webhook
// endpoint configured in the simulator receiving everything as well.
func TestStripeCLIListenForwardsToTheAdapter(t *testing.T) {
	st := newStack(t, "", stripesim.Options{})

	out, err := st.runCLI(t, "listen", "--print-secret")
	if err != nil {
		t.Fatalf("stripe listen --print-secret: %v\n%s", err, out)
	}
	secret := strings.TrimSpace(out)
	if !strings.HasPrefix(secret, "whsec_") || strings.Contains(secret, "\n") {
		t.Fatalf("--print-secret printed %q, want one whsec_ secret", out)
	}
	if again, _ := st.runCLI(t, "listen", "--print-secret"); strings.TrimSpace(again) != secret {
		t.Fatalf("the device's secret changed between sessions: %q then %q", secret, again)
	}

	// A webhook endpoint configured in the simulator keeps receiving every event.
	var endpointHits atomic.Int64
	endpoint := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
		endpointHits.Add(1)
	}))
	t.Cleanup(endpoint.Close)
	st.Sim.SetWebhookURL(endpoint.URL, "whsec_other_endpoint")

	s := st.start(t, map[string]string{"STRIPE_WEBHOOK_SECRETS": secret})
	l := st.listen(t, s.URL+"/webhooks/stripe", "--events", strings.Join(handledEvents, ","))
	ready := l.stderr.wait(t, "the Ready! line", "Ready!")
	for _, want := range []string{"You are using Stripe API Version [2023-10-16]", "Your webhook signing secret is " + secret} {
		if !strings.Contains(ready, want) {
			t.Fatalf("Ready! line %q lacks %q", ready, want)
		}
	}

	clock := st.newClock(t)
	pl := st.newPlan(t, "usd", 2000)
	customer := st.newCustomer(t, clock)
	codeID := s.createCode(t, map[string]any{"code": "CLIWELCOME", "promo_type": "percentage", "amount_off": 20,
		"promo_duration_months": 3, "stock": 10})["id"].(string)
	r := s.call(t, "POST", "/v1/subscriptions", checkoutSecret, newKey(),
		map[string]any{"customer": customer, "price": pl.Price, "promo_code": "CLIWELCOME"})
	mustStatus(t, r, http.StatusCreated)

	waitForwarded := func(typ string) {
		t.Helper()
		for _, id := range st.eventIDs(t, typ) {
			l.stdout.wait(t, typ+" shown", "--> "+typ+" ["+id+"]")
			l.stdout.wait(t, typ+" accepted by the adapter", "<--  [200] POST "+s.URL+"/webhooks/stripe ["+id+"]")
		}
	}
	waitForwarded("customer.discount.created")
	waitForwarded("invoice.paid")
	p := s.code(t, codeID)
	if num(p, "uses") != 1 || num(p, "stock") != 9 {
		t.Fatalf("after the first paid invoice via stripe listen: uses %d stock %d, want 1 and 9", num(p, "uses"), num(p, "stock"))
	}
	if red := s.redemptions(t, codeID); len(red) != 1 || red[0]["state"] != "active" || num(red[0], "cycles") != 1 {
		t.Fatalf("ledger after the first invoice: %v", red)
	}

	// --events: a customer.created reached the CLI (acknowledged) but was
	// neither shown nor forwarded.
	st.newCustomer(t, "")
	created := st.eventIDs(t, "customer.created")
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := st.Sim.WaitCLI(ctx, func(c stripesim.CLIStats) bool { return c.Pending == 0 && c.Acks >= len(st.allEvents(t)) }); err != nil {
		t.Fatalf("the CLI did not acknowledge every event: %v (%+v)", err, st.Sim.CLIStats())
	}
	if strings.Contains(l.stdout.String(), created[len(created)-1]) {
		t.Fatalf("customer.created was shown although --events leaves it out:\n%s", l.stdout.String())
	}

	// The connection drops; the CLI redials and the next month's events arrive.
	if n := st.Sim.DropCLIConnections(); n < 1 {
		t.Fatalf("DropCLIConnections closed %d connections, want at least 1", n)
	}
	st.advance(t, clock, clockStart.AddDate(0, 1, 0).Add(time.Hour))
	waitForwarded("invoice.paid")
	if red := s.redemptions(t, codeID); num(red[0], "cycles") != 2 {
		t.Fatalf("ledger after the second invoice: %v", red)
	}
	st.settle(t)
	if endpointHits.Load() < int64(len(st.allEvents(t))) {
		t.Fatalf("the configured webhook endpoint got %d deliveries for %d events", endpointHits.Load(), len(st.allEvents(t)))
	}
}

// allEvents lists every event ID the simulator recorded.
func (st *stack) allEvents(t *testing.T) []string {
	t.Helper()
	it := st.Stripe.Events.List(&stripe.EventListParams{})
	var ids []string
	for it.Next() {
		ids = append(ids, it.Event().ID)
	}
	if err := it.Err(); err != nil {
		t.Fatal(err)
	}
	return ids
}

// cliStack is a stack with a service that trusts the CLI session's secret
// and a running `stripe listen` forwarding the handled events to it.
func cliStack(t *testing.T) (*stack, *service, *listener) {
	t.Helper()
	st := newStack(t, "", stripesim.Options{})
	out, err := st.runCLI(t, "listen", "--print-secret")
	if err != nil {
		t.Fatalf("stripe listen --print-secret: %v\n%s", err, out)
	}
	s := st.start(t, map[string]string{"STRIPE_WEBHOOK_SECRETS": strings.TrimSpace(out)})
	l := st.listen(t, s.URL+"/webhooks/stripe", "--events", strings.Join(handledEvents, ","))
	l.stderr.wait(t, "the Ready! line", "Ready!")
	return st, s, l
}

// forwarded waits until every event of typ the simulator recorded was shown
// by the CLI and accepted (200) by the service.
func (l *listener) forwarded(t *testing.T, st *stack, s *service, typ string) int {
	t.Helper()
	ids := st.eventIDs(t, typ)
	for _, id := range ids {
		l.stdout.wait(t, typ+" accepted by the adapter", "<--  [200] POST "+s.URL+"/webhooks/stripe ["+id+"]")
	}
	return len(ids)
}

// `stripe trigger` for every event the adapter handles runs offline and
// each event reaches the adapter through `stripe listen` and is accepted.
func TestStripeCLITriggersEveryHandledEvent(t *testing.T) {
	st, s, l := cliStack(t)
	for _, typ := range handledEvents {
		out, err := st.runCLI(t, "trigger", typ)
		if err != nil || !strings.Contains(out, "Trigger succeeded!") {
			t.Fatalf("stripe trigger %s: %v\n%s", typ, err, out)
		}
		if n := l.forwarded(t, st, s, typ); n < 1 {
			t.Fatalf("stripe trigger %s made no %s event", typ, typ)
		}
	}
	// The triggers' coupons are not the adapter's: nothing enters its catalog.
	r := s.call(t, "GET", "/v1/promo_codes", adminSecret, "", nil)
	mustStatus(t, r, http.StatusOK)
	if data := r.json(t)["data"].([]any); len(data) != 0 {
		t.Fatalf("the catalog has %d codes after the triggers, want 0", len(data))
	}
	// invoice.payment_failed's fixture declines with a card_error, as on Stripe.
	failed := st.eventIDs(t, "invoice.payment_failed")
	ev, err := st.Stripe.Events.Get(failed[len(failed)-1], nil)
	if err != nil {
		t.Fatal(err)
	}
	if ev.Data.Object["status"] != "open" || ev.Data.Object["attempted"] != true {
		t.Fatalf("invoice.payment_failed carries status %v attempted %v", ev.Data.Object["status"], ev.Data.Object["attempted"])
	}
}

// The checked-in fixture file walks the promo flow with one of our codes,
// made in Stripe outside the adapter; and a discount on a customer with one
// of our codes is recorded (see README: a discount on a customer).
func TestStripeCLIFixturePromoFlow(t *testing.T) {
	st, s, l := cliStack(t)
	p := s.createCode(t, map[string]any{"code": "FLOW20", "promo_type": "percentage", "amount_off": 20,
		"promo_duration_months": 3, "stock": 5})
	codeID := p["id"].(string)
	promoID := p["stripe"].(map[string]any)["promotion_code_id"].(string)

	cmd := exec.Command(stripecli.Bin(t), "fixtures", "../../tools/stripe-cli/fixtures/promo-flow.json",
		"--api-base", st.SimURL, "--api-key", stripeKey)
	cmd.Env = append(stripecli.Env(t), "PROMO_CODE_ID="+promoID)
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("stripe fixtures: %v\n%s", err, out)
	}
	l.forwarded(t, st, s, "customer.discount.created")
	if n := l.forwarded(t, st, s, "invoice.paid"); n != 2 {
		t.Fatalf("the fixture made %d paid invoices, want 2 (the first and the advanced month)", n)
	}
	got := s.code(t, codeID)
	if num(got, "uses") != 1 || num(got, "stock") != 4 {
		t.Fatalf("after the fixture: uses %d stock %d, want 1 and 4", num(got, "uses"), num(got, "stock"))
	}
	red := s.redemptions(t, codeID)
	if len(red) != 1 || red[0]["source"] != "stripe" || red[0]["state"] != "active" || num(red[0], "cycles") != 2 {
		t.Fatalf("ledger after the fixture: %v", red)
	}
	if amt := red[0]["discounted_amounts"].(map[string]any)["usd"]; amt != 800.0 {
		t.Fatalf("discounted_amounts %v, want 800 (2 × 20%% of 20.00)", amt)
	}

	// A discount on a customer (not a subscription) with the same code: a
	// ledger line without a subscription, taking a unit, flagged; the
	// customer's subscription invoices carry it; removing it ends the line.
	var cu struct{ ID string }
	st.runCLIJSON(t, &cu, "customers", "create", "-d", "promotion_code="+promoID, "-d", "email=whole@example.com")
	l.forwarded(t, st, s, "customer.discount.created")
	line := func() map[string]any {
		t.Helper()
		for _, r := range s.redemptions(t, codeID) {
			if r["customer"] == cu.ID {
				return r
			}
		}
		t.Fatalf("no ledger line for the customer discount of %s: %v", cu.ID, s.redemptions(t, codeID))
		return nil
	}
	if r := line(); r["subscription"] != nil || r["source"] != "stripe" || r["state"] != "pending" ||
		len(r["flags"].([]any)) != 1 || r["flags"].([]any)[0] != "customer_discount" {
		t.Fatalf("customer discount line: %v", r)
	}
	if got := s.code(t, codeID); num(got, "stock") != 3 {
		t.Fatalf("stock %d after the customer discount, want 3", num(got, "stock"))
	}
	var price struct{ ID string }
	st.runCLIJSON(t, &price, "prices", "create", "-d", "currency=usd", "-d", "unit_amount=1000",
		"-d", "recurring[interval]=month", "-d", "product_data[name]=Extra")
	st.runCLIJSON(t, &struct{}{}, "subscriptions", "create", "-d", "customer="+cu.ID, "-d", "items[0][price]="+price.ID)
	l.forwarded(t, st, s, "invoice.paid")
	if r := line(); r["state"] != "active" || num(r, "cycles") != 1 || r["discounted_amounts"].(map[string]any)["usd"] != 200.0 {
		t.Fatalf("customer discount line after the subscription's first invoice: %v", r)
	}
	st.runCLIJSON(t, &struct{}{}, "customers", "update", cu.ID, "-d", "coupon=")
	l.forwarded(t, st, s, "customer.discount.deleted")
	if r := line(); r["state"] != "ended" || r["end_reason"] != "discount_deleted" {
		t.Fatalf("customer discount line after its removal: %v", r)
	}
	if got := s.code(t, codeID); num(got, "uses") != 2 || num(got, "stock") != 3 {
		t.Fatalf("after the customer discount: uses %d stock %d, want 2 and 3", num(got, "uses"), num(got, "stock"))
	}
}

// runCLIJSON runs a CLI resource command and decodes its JSON answer.
func (st *stack) runCLIJSON(t *testing.T, v any, args ...string) {
	t.Helper()
	out, err := st.runCLI(t, args...)
	if err != nil {
		t.Fatalf("stripe %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	if i := strings.Index(out, "{"); i < 0 || json.Unmarshal([]byte(out[i:]), v) != nil {
		t.Fatalf("stripe %s answered no JSON object:\n%s", strings.Join(args, " "), out)
	}
}

// --all-snapshot forwards every event, and the adapter acknowledges the types
// it does not handle with 200, as Stripe expects.
func TestStripeCLIListenAllSnapshot(t *testing.T) {
	st := newStack(t, "", stripesim.Options{})
	out, err := st.runCLI(t, "listen", "--print-secret")
	if err != nil {
		t.Fatalf("stripe listen --print-secret: %v\n%s", err, out)
	}
	s := st.start(t, map[string]string{"STRIPE_WEBHOOK_SECRETS": strings.TrimSpace(out)})
	l := st.listen(t, s.URL+"/webhooks/stripe", "--all-snapshot")
	l.stderr.wait(t, "the Ready! line", "Ready!")
	st.newCustomer(t, "")
	st.newPlan(t, "usd", 1500)
	for _, typ := range []string{"customer.created", "product.created", "price.created"} {
		id := st.eventIDs(t, typ)[0]
		l.stdout.wait(t, typ+" shown", "--> "+typ+" ["+id+"]")
		l.stdout.wait(t, typ+" acknowledged by the adapter", "<--  [200] POST "+s.URL+"/webhooks/stripe ["+id+"]")
	}
}

// An expired session: the CLI's redial is refused as an unknown WebSocket ID,
// it says "Session expired, reconnecting...", authorizes a new session (same
// secret) and events flow again. The CLI waits its own 10 s before
// re-authorizing, as against Stripe.
func TestStripeCLIListenRenewsAnExpiredSession(t *testing.T) {
	st, s, l := cliStack(t)
	if n := st.Sim.ExpireCLISessions(); n < 1 {
		t.Fatalf("ExpireCLISessions forgot %d sessions", n)
	}
	l.stderr.wait(t, "the CLI to notice the expired session", "Session expired, reconnecting")
	ctx, cancel := context.WithTimeout(context.Background(), 40*time.Second)
	defer cancel()
	if err := st.Sim.WaitCLI(ctx, func(c stripesim.CLIStats) bool { return c.Sessions == 1 && c.Connections == 1 }); err != nil {
		t.Fatalf("the CLI did not come back with a new session: %v\n%s", err, l.stderr.String())
	}
	clock := st.newClock(t)
	pl := st.newPlan(t, "usd", 2000)
	st.newSubscription(t, st.newCustomer(t, clock), pl.Price)
	if n := l.forwarded(t, st, s, "invoice.paid"); n != 1 {
		t.Fatalf("%d invoice.paid events after the new session, want 1", n)
	}
}
