// Package stripespec holds the simulator to Stripe's own OpenAPI spec: the
// 2023-10-16 spec3.json that stripe-mock v0.183.0 embeds (the version
// stripe-go v76 speaks), read with kin-openapi. Handler wraps the simulator in
// tests and validates every API response it gives (status, required fields,
// types, enums, nullability); Events validates every event and its
// data.object against the schema of its object type.
package stripespec

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"

	"github.com/getkin/kin-openapi/openapi3"
	"github.com/getkin/kin-openapi/openapi3filter"
	"github.com/getkin/kin-openapi/routers"
	"github.com/getkin/kin-openapi/routers/gorillamux"
	"github.com/stripe/stripe-mock/embedded"
)

var (
	once   sync.Once
	doc    *openapi3.T
	router routers.Router
	errDoc error
)

// Spec loads the embedded spec once.
func Spec() (*openapi3.T, routers.Router, error) {
	once.Do(func() {
		loader := openapi3.NewLoader()
		doc, errDoc = loader.LoadFromData(embedded.OpenAPISpec)
		if errDoc != nil {
			return
		}
		doc.Servers = openapi3.Servers{{URL: "/"}} // match any host: the simulator listens on loopback
		router, errDoc = gorillamux.NewRouter(doc)
	})
	return doc, router, errDoc
}

func findRoute(method, target string) (*routers.Route, map[string]string, error) {
	_, rt, err := Spec()
	if err != nil {
		return nil, nil, err
	}
	return rt.FindRoute(httptest.NewRequest(method, target, nil))
}

// ValidateResponse checks one answer to method path?query against the spec.
// A path the spec does not have is an error too.
func ValidateResponse(method, target string, status int, header http.Header, body []byte) error {
	_, rt, err := Spec()
	if err != nil {
		return err
	}
	req := httptest.NewRequest(method, target, nil)
	route, params, err := rt.FindRoute(req)
	if err != nil {
		return fmt.Errorf("%s %s is not in Stripe's spec: %v", method, target, err)
	}
	in := &openapi3filter.RequestValidationInput{Request: req, PathParams: params, Route: route,
		Options: &openapi3filter.Options{ExcludeRequestBody: true, AuthenticationFunc: openapi3filter.NoopAuthenticationFunc}}
	h := header.Clone()
	if h.Get("Content-Type") == "" {
		h.Set("Content-Type", "application/json")
	}
	return openapi3filter.ValidateResponse(context.Background(), &openapi3filter.ResponseValidationInput{
		RequestValidationInput: in, Status: status, Header: h, Body: io.NopCloser(bytes.NewReader(body)),
		Options: &openapi3filter.Options{IncludeResponseStatus: true, MultiError: true},
	})
}

// ValidateObject checks a JSON object against the schema named by its
// "object" field (customer, invoice, discount, test_helpers.test_clock, ...).
func ValidateObject(raw []byte) error {
	d, _, err := Spec()
	if err != nil {
		return err
	}
	var v map[string]any
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.UseNumber()
	if err := dec.Decode(&v); err != nil {
		return err
	}
	name, _ := v["object"].(string)
	ref := d.Components.Schemas[name]
	if ref == nil || ref.Value == nil {
		return fmt.Errorf("no schema for object %q in Stripe's spec", name)
	}
	var plain any
	_ = json.Unmarshal(raw, &plain)
	return ref.Value.VisitJSON(plain, openapi3.MultiErrors())
}

// ValidateEvent checks an event (its envelope) and its data.object.
func ValidateEvent(raw []byte) error {
	var ev struct {
		ID, Type string
		Data     struct {
			Object json.RawMessage `json:"object"`
		} `json:"data"`
	}
	if err := json.Unmarshal(raw, &ev); err != nil {
		return err
	}
	var errs []string
	if err := ValidateObject(raw); err != nil {
		errs = append(errs, "event: "+err.Error())
	}
	if err := ValidateObject(ev.Data.Object); err != nil {
		errs = append(errs, "data.object: "+err.Error())
	}
	if len(errs) > 0 {
		return fmt.Errorf("%s %s: %s", ev.Type, ev.ID, strings.Join(errs, "; "))
	}
	return nil
}

// recorder keeps the status, header and body of one answer.
type recorder struct {
	http.ResponseWriter
	status int
	body   bytes.Buffer
}

func (r *recorder) WriteHeader(s int) { r.status = s; r.ResponseWriter.WriteHeader(s) }
func (r *recorder) Write(b []byte) (int, error) {
	if r.status == 0 {
		r.status = http.StatusOK
	}
	r.body.Write(b)
	return r.ResponseWriter.Write(b)
}

// Handler validates every API answer of next (the simulator) against the
// spec and reports each mismatch with t.Errorf. The simulator's own controls
// (/_sim/) and the Stripe CLI's private protocol (/v1/stripecli/sessions and
// its websocket) are not in Stripe's public spec and are left out, as are
// answers it does not describe (5xx faults).
func Handler(t testing.TB, next http.Handler) http.Handler {
	if _, _, err := Spec(); err != nil {
		t.Fatalf("Stripe's OpenAPI spec: %v", err)
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if strings.HasPrefix(r.URL.Path, "/_sim/") || strings.HasPrefix(r.URL.Path, "/stripecli/") ||
			strings.HasPrefix(r.URL.Path, "/v1/stripecli/") {
			next.ServeHTTP(w, r)
			return
		}
		rec := &recorder{ResponseWriter: w}
		next.ServeHTTP(rec, r)
		if rec.status >= 500 || rec.status == 0 { // a fault, or no answer (the client went away)
			return
		}
		target := r.URL.RequestURI()
		if _, _, err := findRoute(r.Method, target); err != nil && rec.status == http.StatusNotFound {
			return // a path Stripe does not have, answered 404 as Stripe does
		}
		if err := ValidateResponse(r.Method, target, rec.status, w.Header(), rec.body.Bytes()); err != nil {
			t.Errorf("the simulator's answer to %s %s (%d) breaks Stripe's spec: %v\nbody: %.600s", r.Method, r.URL.Path, rec.status, err, rec.body.String())
		}
	})
}

// Events validates every event body.
func Events(t testing.TB, bodies [][]byte) {
	t.Helper()
	for _, b := range bodies {
		if err := ValidateEvent(b); err != nil {
			t.Errorf("an event breaks Stripe's spec: %v", err)
		}
	}
}
