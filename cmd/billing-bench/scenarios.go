package main

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"time"

	"github.com/billing-adapter/billing-adapter/internal/benchkit"
	"github.com/billing-adapter/billing-adapter/webhooks"
)

// scenario is one measured workload.
type scenario struct {
	name string
	// prepare makes the fixtures and returns total requests (warm-up first).
	prepare func(ctx context.Context, e *env, total int) ([]request, error)
	// stripeTarget is the expected Stripe calls per operation.
	stripeTarget float64
	// baseline is the baseline-server kind to compare with ("" = none).
	baseline string
	// gobench names the handler benchmarks that make one request of the
	// scenario, with their weights in the mix.
	gobench []weighted
}

type weighted struct {
	name   string
	weight float64
}

var scenarios = []scenario{
	{name: "validate", prepare: prepareValidate, stripeTarget: 0, baseline: "validate",
		gobench: []weighted{{"Validate", 1}}},
	{name: "validate-campaign", prepare: prepareValidateCampaign, stripeTarget: 0, baseline: "validate",
		gobench: []weighted{{"ValidateCampaign", 1}}},
	{name: "apply", prepare: prepareApply, stripeTarget: 2, gobench: []weighted{{"Apply", 1}}},
	{name: "create-promo", prepare: prepareCreatePromo, stripeTarget: 2, gobench: []weighted{{"CreatePromo", 1}}},
	{name: "webhook", prepare: prepareWebhook, stripeTarget: 0, baseline: "webhook",
		gobench: []weighted{{"WebhookInvoicePaid", 1 - webhookDupShare}, {"WebhookDuplicate", webhookDupShare}}},
}

// webhookDupShare is the share of webhook deliveries that re-send an event
// already delivered (same event ID).
const webhookDupShare = 0.3

// env is what the scenarios share: the stack, clients and the run's ID.
type env struct {
	o     options
	st    *stack
	sim   *benchkit.Sim
	http  *http.Client
	runID string
	price string
}

func newEnv(ctx context.Context, o options, st *stack) (*env, error) {
	var b [4]byte
	_, _ = rand.Read(b[:])
	e := &env{o: o, st: st, sim: benchkit.NewSim(st.SimURL, stripeKey, 32), http: newClient(32),
		runID: hex.EncodeToString(b[:])}
	var err error
	e.price, err = e.sim.NewPlan(ctx, "usd", 2000)
	return e, err
}

// call sends one fixture request to the service and decodes a 2xx answer.
func (e *env) call(ctx context.Context, method, path, secret, idemKey string, body []byte, out any) error {
	req, err := http.NewRequestWithContext(ctx, method, e.st.URL+path, bytes.NewReader(body))
	if err != nil {
		return err
	}
	req.Header = jsonHeader(secret, idemKey)
	resp, err := e.http.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	if resp.StatusCode/100 != 2 {
		return fmt.Errorf("%s %s: %d %s", method, path, resp.StatusCode, bytes.TrimSpace(raw))
	}
	if out != nil {
		return json.Unmarshal(raw, out)
	}
	return nil
}

func jsonHeader(secret, idemKey string) http.Header {
	h := http.Header{"Content-Type": {"application/json"}}
	if secret != "" {
		h.Set("Authorization", "Bearer "+secret)
	}
	if idemKey != "" {
		h.Set("Idempotency-Key", idemKey)
	}
	return h
}

// createCode creates an unlimited 10%-forever code through the API.
func (e *env) createCode(ctx context.Context, code string) error {
	return e.call(ctx, "POST", "/v1/promo_codes", adminSecret, e.runID+"-create-"+code,
		benchkit.CreatePromoBody(code, true), nil)
}

// validate: one hot code, no preview, customers from a pool of 10,000.
func prepareValidate(ctx context.Context, e *env, total int) ([]request, error) {
	code := "HOT" + e.runID
	if err := e.createCode(ctx, code); err != nil {
		return nil, err
	}
	h := jsonHeader(checkoutSecret, "")
	out := make([]request, total)
	for i := range out {
		out[i] = request{method: "POST", path: "/v1/promo_codes/validate", header: h,
			body: benchkit.ValidateBody(code, benchkit.FakeCustomer(i%10000))}
	}
	return out, nil
}

// apply: one unlimited code applied to existing subscriptions of distinct
// customers, one request each.
func prepareApply(ctx context.Context, e *env, total int) ([]request, error) {
	code := "APPLY" + e.runID
	if err := e.createCode(ctx, code); err != nil {
		return nil, err
	}
	subs, err := e.sim.NewSubscribedMany(ctx, e.price, total, 16)
	if err != nil {
		return nil, err
	}
	out := make([]request, total)
	for i, s := range subs {
		out[i] = request{method: "POST", path: "/v1/subscriptions/" + s.Subscription + "/promo_code",
			header: jsonHeader(checkoutSecret, fmt.Sprintf("%s-apply-%d", e.runID, i)), body: benchkit.ApplyBody(code)}
	}
	return out, nil
}

// create-promo: distinct codes with a stock, each with its own key.
func prepareCreatePromo(_ context.Context, e *env, total int) ([]request, error) {
	out := make([]request, total)
	for i := range out {
		out[i] = request{method: "POST", path: "/v1/promo_codes",
			header: jsonHeader(adminSecret, fmt.Sprintf("%s-cp-%d", e.runID, i)),
			body:   benchkit.CreatePromoBody(fmt.Sprintf("C%s%d", e.runID, i), false)}
	}
	return out, nil
}

// webhook: signed invoice.paid events, each a new monthly invoice of one of
// the subscriptions a code was applied to (the first one activates the
// redemption, later ones count cycles); webhookDupShare of the deliveries
// re-send an earlier event (same ID, as Stripe retries do).
func prepareWebhook(ctx context.Context, e *env, total int) ([]request, error) {
	code := "PAID" + e.runID
	if err := e.createCode(ctx, code); err != nil {
		return nil, err
	}
	k := min(max(total/10, 1), 1000)
	subs, err := e.sim.NewSubscribedMany(ctx, e.price, k, 16)
	if err != nil {
		return nil, err
	}
	discounts := make([]benchkit.Discount, k)
	if err := benchkit.Parallel(k, 16, func(i int) error {
		if err := e.call(ctx, "POST", "/v1/subscriptions/"+subs[i].Subscription+"/promo_code", checkoutSecret,
			fmt.Sprintf("%s-wh-%d", e.runID, i), benchkit.ApplyBody(code), nil); err != nil {
			return err
		}
		discounts[i], err = e.sim.SubscriptionDiscount(ctx, subs[i].Subscription)
		return err
	}); err != nil {
		return nil, err
	}
	template, err := e.sim.InvoicePaidTemplate(ctx)
	if err != nil {
		return nil, err
	}
	plan := webhookPlan(total, e.o.conc, webhookDupShare)
	bodies := make([][]byte, 0, total)
	out := make([]request, total)
	h := http.Header{"Content-Type": {"application/json"}}
	sign := func(body []byte) (string, string) {
		return "Stripe-Signature", webhooks.Sign(body, webhookSecret, time.Now())
	}
	now := time.Now()
	for i, src := range plan {
		var body []byte
		if src >= 0 {
			body = bodies[src]
		} else {
			u := len(bodies)
			d := discounts[u%k]
			body, err = benchkit.InvoicePaid(template, fmt.Sprintf("evt_%s_%d", e.runID, u),
				fmt.Sprintf("in_%s_%d", e.runID, u), d, 1800, 200, now)
			if err != nil {
				return nil, err
			}
			bodies = append(bodies, body)
		}
		out[i] = request{method: "POST", path: "/webhooks/stripe", header: h, body: body, sign: sign}
	}
	return out, nil
}

// webhookPlan decides, for each of total deliveries, whether it is a new
// event (-1) or a re-send of the src-th new event. Re-sends are spread
// evenly (share of them in every 10 deliveries) and only repeat events
// sent at least 2*conc deliveries earlier, so the first delivery has
// normally finished (a re-send during processing is answered 409).
func webhookPlan(total, conc int, share float64) []int {
	out := make([]int, total)
	unique := 0
	firstAt := []int{} // delivery index of each new event
	dupsPer10 := int(share*10 + 0.5)
	for i := range out {
		out[i] = -1
		gap := 2 * max(conc, 1)
		if i%10 < dupsPer10 && unique > 0 && i-firstAt[0] >= gap {
			// the newest new event old enough, stepping back through the
			// eligible ones so repeats spread over many events
			last := 0
			for j := len(firstAt) - 1; j >= 0; j-- {
				if i-firstAt[j] >= gap {
					last = j
					break
				}
			}
			out[i] = (i * 7919) % (last + 1)
			continue
		}
		firstAt = append(firstAt, i)
		unique++
	}
	return out
}
