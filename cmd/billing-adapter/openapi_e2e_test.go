package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/billing-adapter/billing-adapter/internal/httpapi"
	"github.com/getkin/kin-openapi/openapi3"
	"github.com/getkin/kin-openapi/openapi3filter"
	"github.com/getkin/kin-openapi/routers"
	"github.com/getkin/kin-openapi/routers/legacy"
)

// Every response the end-to-end suite receives through service.call is
// checked against the OpenAPI document (httpapi.OpenAPIDocument): status
// code listed for the operation, body schema, required headers (Retry-After
// on every 503). A request whose path and method are not in the document
// (the tests' deliberate unknown routes) has nothing to check.

var openAPI struct {
	once      sync.Once
	doc       *openapi3.T
	router    routers.Router
	err       error
	validated atomic.Int64
}

func openAPIRouter() (routers.Router, error) {
	openAPI.once.Do(func() {
		doc, err := openapi3.NewLoader().LoadFromData(httpapi.OpenAPIDocument)
		if err != nil {
			openAPI.err = err
			return
		}
		if err := doc.Validate(context.Background()); err != nil {
			openAPI.err = err
			return
		}
		openAPI.doc = doc
		openAPI.router, openAPI.err = legacy.NewRouter(doc)
	})
	return openAPI.router, openAPI.err
}

// checkOpenAPI validates one response; it returns nil when the request has
// no documented operation.
func checkOpenAPI(req *http.Request, status int, header http.Header, body []byte) error {
	router, err := openAPIRouter()
	if err != nil {
		return err
	}
	// The router matches the path only; the host of the test server is not
	// one of the document's servers.
	r := req.Clone(context.Background())
	r.URL.Scheme, r.URL.Host, r.Host = "", "", ""
	route, params, err := router.FindRoute(r)
	var notRouted *routers.RouteError
	if errors.As(err, &notRouted) {
		// No documented operation (a deliberate unknown path or method):
		// the answer must still be an error in the one error shape.
		if status < 400 {
			return fmt.Errorf("%s %s is not documented but answered %d", req.Method, req.URL.Path, status)
		}
		var v any
		if err := json.Unmarshal(body, &v); err != nil {
			return fmt.Errorf("error answer is not JSON: %w", err)
		}
		return openAPI.doc.Components.Schemas["Error"].Value.VisitJSON(v, openapi3.EnableJSONSchema2020())
	}
	if err != nil {
		return err
	}
	in := &openapi3filter.ResponseValidationInput{
		RequestValidationInput: &openapi3filter.RequestValidationInput{
			Request: r, PathParams: params, Route: route,
			Options: &openapi3filter.Options{AuthenticationFunc: openapi3filter.NoopAuthenticationFunc},
		},
		Status: status, Header: header, Body: io.NopCloser(bytes.NewReader(body)),
		Options: &openapi3filter.Options{IncludeResponseStatus: true, MultiError: true},
	}
	if err := openapi3filter.ValidateResponse(context.Background(), in); err != nil {
		return err
	}
	openAPI.validated.Add(1)
	return nil
}

// assertOpenAPI fails t when a response does not match the document.
func assertOpenAPI(t *testing.T, req *http.Request, status int, header http.Header, body []byte) {
	t.Helper()
	if err := checkOpenAPI(req, status, header, body); err != nil {
		t.Errorf("%s %s → %d does not match openapi.json: %v\nbody: %s", req.Method, req.URL.Path, status, err, truncateBody(body))
	}
}

func truncateBody(b []byte) string {
	if len(b) > 600 {
		return string(b[:600]) + "…"
	}
	return string(b)
}

// TestOpenAPIValidationCanFail: the response check rejects what the document
// does not allow, so a passing suite means something.
func TestOpenAPIValidationCanFail(t *testing.T) {
	get := func(path string) *http.Request {
		r, _ := http.NewRequest(http.MethodGet, "http://127.0.0.1:1"+path, nil)
		return r
	}
	jsonHeader := http.Header{"Content-Type": {"application/json"}}
	cases := []struct {
		name   string
		req    *http.Request
		status int
		header http.Header
		body   string
	}{
		{"missing field", get("/v1/promo_codes/pc_1"), 200, jsonHeader, `{"id":"pc_1","object":"promo_code"}`},
		{"unknown field", get("/v1/subscriptions/sub_1/promo_code"), 404, jsonHeader,
			`{"error":{"type":"invalid_request_error","code":"resource_missing","message":"x","extra":1}}`},
		{"unknown error code", get("/v1/promo_codes"), 400, jsonHeader,
			`{"error":{"type":"invalid_request_error","code":"oops","message":"x"}}`},
		{"status not documented", get("/healthz"), 418, jsonHeader, `{"status":"ok"}`},
		{"undocumented route answering 200", get("/v1/nothing"), 200, jsonHeader, `{}`},
		{"undocumented route, not the error shape", get("/v1/nothing"), 404, jsonHeader, `{"message":"x"}`},
		{"503 without Retry-After", get("/v1/promo_codes"), 503, jsonHeader,
			`{"error":{"type":"api_error","code":"service_unavailable","message":"x"}}`},
	}
	for _, tc := range cases {
		if err := checkOpenAPI(tc.req, tc.status, tc.header, []byte(tc.body)); err == nil {
			t.Errorf("%s: accepted", tc.name)
		}
	}
	ok := http.Header{"Content-Type": {"application/json"}, "Retry-After": {"5"}}
	if err := checkOpenAPI(get("/v1/promo_codes"), 503, ok,
		[]byte(`{"error":{"type":"api_error","code":"service_unavailable","message":"x"}}`)); err != nil {
		t.Errorf("a well-formed 503 was refused: %v", err)
	}
	if !strings.Contains(string(httpapi.OpenAPIDocument), `"openapi": "3.1.0"`) {
		t.Error("the document is not OpenAPI 3.1.0")
	}
}
