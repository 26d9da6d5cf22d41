package httpapi

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"regexp"
	"slices"
	"sort"
	"strings"
	"testing"

	"github.com/billing-adapter/billing-adapter/config"
	"github.com/billing-adapter/billing-adapter/internal/promo"
	"github.com/billing-adapter/billing-adapter/internal/telemetry"
	"github.com/getkin/kin-openapi/openapi3"
	"github.com/labstack/echo/v4"
)

type noWebhooks struct{}

func (noWebhooks) Receive(http.ResponseWriter, *http.Request) error { return nil }

// fullHandler builds the handler with every optional route switched on.
func fullHandler(t *testing.T) *echo.Echo {
	t.Helper()
	h := New(Options{
		Webhooks: noWebhooks{},
		Metrics:  telemetry.New(),
		APIKeys:  []config.APIKey{{Name: "admin", Scope: config.ScopeAdmin, Secret: "adm_test_secret_0123456789"}},
	})
	e, ok := h.(*echo.Echo)
	if !ok {
		t.Fatalf("New returned %T, want *echo.Echo", h)
	}
	return e
}

func loadOpenAPI(t *testing.T) *openapi3.T {
	t.Helper()
	loader := openapi3.NewLoader()
	doc, err := loader.LoadFromData(OpenAPIDocument)
	if err != nil {
		t.Fatalf("openapi.json does not load: %v", err)
	}
	if !doc.IsOpenAPI31OrLater() || doc.IsOpenAPI32OrLater() {
		t.Fatalf("openapi.json is OpenAPI %s, want 3.1", doc.OpenAPI)
	}
	if err := doc.Validate(context.Background()); err != nil {
		t.Fatalf("openapi.json is not a valid OpenAPI document: %v", err)
	}
	return doc
}

var echoParam = regexp.MustCompile(`:([a-zA-Z_]+)`)

// consoleRoute reports the admin console's routes (HTML pages and form
// posts under /admin), which are not part of the JSON API the document describes.
func consoleRoute(path string) bool { return path == "/admin" || strings.HasPrefix(path, "/admin/") }

// TestOpenAPICoversEveryRoute: the document lists exactly the registered
// routes (path and method), no more, no fewer.
func TestOpenAPICoversEveryRoute(t *testing.T) {
	doc := loadOpenAPI(t)
	var routes []string
	for _, r := range fullHandler(t).Routes() {
		if r.Method == echo.RouteNotFound || consoleRoute(r.Path) {
			continue
		}
		routes = append(routes, r.Method+" "+echoParam.ReplaceAllString(r.Path, "{$1}"))
	}
	var documented []string
	for path, item := range doc.Paths.Map() {
		for method := range item.Operations() {
			documented = append(documented, method+" "+path)
		}
	}
	sort.Strings(routes)
	sort.Strings(documented)
	routes, documented = slices.Compact(routes), slices.Compact(documented)
	for _, r := range routes {
		if !slices.Contains(documented, r) {
			t.Errorf("route %s is not in openapi.json", r)
		}
	}
	for _, d := range documented {
		if !slices.Contains(routes, d) {
			t.Errorf("openapi.json documents %s, which is not a route", d)
		}
	}
	if len(routes) < 12 {
		t.Errorf("only %d routes found: %v", len(routes), routes)
	}
}

// TestOpenAPIErrorCodes: the document's error codes and their statuses are
// the domain's closed set and the one error table.
func TestOpenAPIErrorCodes(t *testing.T) {
	doc := loadOpenAPI(t)
	var enum []string
	for _, v := range doc.Components.Schemas["ErrorCode"].Value.Enum {
		enum = append(enum, v.(string))
	}
	var codes []string
	for _, c := range promo.Codes {
		codes = append(codes, string(c))
	}
	sort.Strings(enum)
	sort.Strings(codes)
	if !slices.Equal(enum, codes) {
		t.Errorf("ErrorCode enum %v\nwant promo.Codes %v", enum, codes)
	}
	raw, ok := doc.Components.Schemas["Error"].Value.Extensions["x-error-statuses"]
	if !ok {
		t.Fatal("Error schema has no x-error-statuses")
	}
	b, _ := json.Marshal(raw)
	var statuses map[string]int
	if err := json.Unmarshal(b, &statuses); err != nil {
		t.Fatal(err)
	}
	if len(statuses) != len(errorStatus) {
		t.Errorf("x-error-statuses has %d codes, the table %d", len(statuses), len(errorStatus))
	}
	for code, row := range errorStatus {
		if statuses[string(code)] != row.Status {
			t.Errorf("%s: document says %d, the table %d", code, statuses[string(code)], row.Status)
		}
	}
	var refusals []string
	for _, v := range doc.Components.Schemas["RefusalCode"].Value.Enum {
		refusals = append(refusals, v.(string))
	}
	for _, c := range promo.Codes {
		if promo.IsRefusal(c) != slices.Contains(refusals, string(c)) {
			t.Errorf("RefusalCode enum and promo.IsRefusal disagree on %s", c)
		}
	}
}

func TestOpenAPIServed(t *testing.T) {
	srv := httptest.NewServer(fullHandler(t))
	defer srv.Close()
	resp, err := http.Get(srv.URL + "/openapi.json")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != 200 || !strings.HasPrefix(resp.Header.Get("Content-Type"), "application/json") {
		t.Fatalf("GET /openapi.json: %d %s", resp.StatusCode, resp.Header.Get("Content-Type"))
	}
	var doc struct {
		OpenAPI string `json:"openapi"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&doc); err != nil || doc.OpenAPI != "3.1.0" {
		t.Fatalf("served document: %v %q", err, doc.OpenAPI)
	}
}

// TestMethodNotAllowed: a known path with another method is a 405 naming
// the methods it serves, before authentication (the route table is public
// in openapi.json); an unknown path stays a 404.
func TestMethodNotAllowed(t *testing.T) {
	srv := httptest.NewServer(fullHandler(t))
	defer srv.Close()
	for _, tc := range []struct{ method, path, allow string }{
		{"DELETE", "/v1/promo_codes", "GET, POST"},
		{"PUT", "/v1/promo_codes/pc_1", "GET, POST"},
		{"PATCH", "/v1/subscriptions/sub_1/promo_code", "DELETE, GET, POST"},
		{"GET", "/v1/subscriptions", "POST"},
		{"GET", "/webhooks/stripe", "POST"},
		{"POST", "/healthz", "GET"},
	} {
		req, _ := http.NewRequest(tc.method, srv.URL+tc.path, nil)
		req.Header.Set("Authorization", "Bearer adm_test_secret_0123456789")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		var body errorBody
		_ = json.NewDecoder(resp.Body).Decode(&body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusMethodNotAllowed || body.Error.Code != string(promo.CodeMethodNotAllowed) {
			t.Errorf("%s %s: %d %+v, want 405 method_not_allowed", tc.method, tc.path, resp.StatusCode, body)
			continue
		}
		if got := normalizeAllow(resp.Header.Get("Allow")); got != tc.allow {
			t.Errorf("%s %s: Allow %q, want %q", tc.method, tc.path, got, tc.allow)
		}
	}
	resp, err := http.Get(srv.URL + "/v1/nothing_here")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusUnauthorized && resp.StatusCode != http.StatusNotFound {
		t.Errorf("unknown path: %d", resp.StatusCode)
	}
}

// normalizeAllow sorts an Allow header's methods, leaving out OPTIONS and HEAD.
func normalizeAllow(h string) string {
	var ms []string
	for _, m := range strings.Split(h, ",") {
		m = strings.TrimSpace(m)
		if m != "" && m != "OPTIONS" && m != "HEAD" {
			ms = append(ms, m)
		}
	}
	sort.Strings(ms)
	return strings.Join(ms, ", ")
}
