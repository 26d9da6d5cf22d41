package stripesim

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
)

// The /_sim/ control API mirrors the Go test controls over HTTP (JSON in,
// JSON out). It needs the same sk_test_ authentication as /v1 and is not
// counted in Counts().
//
//	GET  /_sim/cli                       -> CLIStats (Stripe CLI sessions, acks, responses)
//	GET  /_sim/counts                    -> {"POST /v1/coupons": 2, ...}
//	POST /_sim/counts/reset
//	POST /_sim/faults                    body: Fault JSON ({"kind":"server_error","method":"POST","path":"/v1/subscriptions","count":1,"skip":0,"delay":"2s"})
//	DELETE /_sim/faults                  clears pending faults
//	POST /_sim/webhooks/chaos            body: {"copies":2,"shuffle":true}
//	POST /_sim/webhooks/endpoint         body: {"url":"http://...","secret":"whsec_..."}
//	POST /_sim/customers/{id}/decline    body: {"decline":true}
//	POST /_sim/seed                      -> SeedData

func (s *Server) serveSim(w http.ResponseWriter, r *http.Request) {
	path := strings.TrimSuffix(r.URL.Path, "/")
	decode := func(v any) bool {
		b, err := io.ReadAll(io.LimitReader(r.Body, 1<<20))
		if err == nil && len(strings.TrimSpace(string(b))) > 0 {
			err = json.Unmarshal(b, v)
		}
		if err != nil {
			s.writeAPIError(w, invalidParam("", "Invalid JSON body: %v", err))
			return false
		}
		return true
	}
	ok := func(v any) {
		if v == nil {
			v = map[string]any{"ok": true}
		}
		b, _ := json.Marshal(v)
		writeJSONBytes(w, http.StatusOK, b)
	}
	switch {
	case r.Method == http.MethodGet && path == "/_sim/cli":
		ok(s.CLIStats())
	case r.Method == http.MethodGet && path == "/_sim/counts":
		ok(s.Counts())
	case r.Method == http.MethodPost && path == "/_sim/counts/reset":
		s.ResetCounts()
		ok(nil)
	case r.Method == http.MethodPost && path == "/_sim/faults":
		var f Fault
		if !decode(&f) {
			return
		}
		if !f.Kind.valid() {
			s.writeAPIError(w, invalidParam("kind", "Unknown fault kind %q; use server_error, rate_limit, lock_timeout, hang, commit_then_500 or commit_then_hang.", f.Kind))
			return
		}
		s.InjectFault(f)
		ok(nil)
	case r.Method == http.MethodDelete && path == "/_sim/faults":
		s.ClearFaults()
		ok(nil)
	case r.Method == http.MethodPost && path == "/_sim/webhooks/chaos":
		var body struct {
			Copies  int  `json:"copies"`
			Shuffle bool `json:"shuffle"`
		}
		if !decode(&body) {
			return
		}
		s.SetWebhookChaos(body.Copies, body.Shuffle)
		ok(nil)
	case r.Method == http.MethodPost && path == "/_sim/webhooks/endpoint":
		var body struct {
			URL    string `json:"url"`
			Secret string `json:"secret"`
		}
		if !decode(&body) {
			return
		}
		s.SetWebhookURL(body.URL, body.Secret)
		ok(nil)
	case r.Method == http.MethodPost && strings.HasPrefix(path, "/_sim/customers/") && strings.HasSuffix(path, "/decline"):
		id := strings.TrimSuffix(strings.TrimPrefix(path, "/_sim/customers/"), "/decline")
		var body struct {
			Decline *bool `json:"decline"`
		}
		if !decode(&body) {
			return
		}
		if body.Decline == nil {
			s.writeAPIError(w, missingParam("decline"))
			return
		}
		if err := s.SetCustomerDecline(id, *body.Decline); err != nil {
			s.writeAPIError(w, noSuchPath("customer", id))
			return
		}
		ok(nil)
	case r.Method == http.MethodPost && path == "/_sim/seed":
		sd, err := s.Seed()
		if err != nil {
			s.writeAPIError(w, apiServerError(err.Error()))
			return
		}
		ok(sd)
	default:
		s.writeAPIError(w, &apiError{Status: http.StatusNotFound, Type: typeInvalidRequest,
			Message: fmt.Sprintf("Unrecognized request URL (%s: %s).", r.Method, r.URL.Path)})
	}
}

// SetCustomerDecline makes the customer's future invoice payments fail
// (decline=true) or succeed again.
func (s *Server) SetCustomerDecline(customerID string, decline bool) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	cu := s.customers[customerID]
	if cu == nil {
		return fmt.Errorf("stripesim: no such customer: %q", customerID)
	}
	cu.decline = decline
	s.saveLocked()
	return nil
}

// Seed creates a demo customer, product and monthly USD 20.00 price and
// returns their IDs. Events are recorded as for API calls.
func (s *Server) Seed() (SeedData, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	defer s.saveLocked()
	o := eventOrigin{}
	cu := &customer{ID: newID("cus"), email: "demo@example.com", name: "Demo Customer",
		metadata: map[string]string{"seeded_by": "stripe-sim"}, nextInvoice: 1,
		invoicePrefix: strings.ToUpper(randomString(8, "0123456789ABCDEF"))}
	cu.seq = s.nextSeq()
	cu.created = s.realNow()
	s.customers[cu.ID] = cu
	s.idx.customers.add(cu)
	s.emit("customer.created", s.renderCustomer(cu), nil, o, cu.created)
	p := s.addProduct(&product{name: "Demo Plan", active: true, metadata: map[string]string{"seeded_by": "stripe-sim"}}, o)
	pr := s.addPrice(&price{currency: "usd", unitAmount: 2000, recurring: true, product: p.ID, active: true,
		metadata: map[string]string{"seeded_by": "stripe-sim"}}, o)
	return SeedData{CustomerID: cu.ID, ProductID: p.ID, PriceID: pr.ID}, nil
}
