package httpapi

import (
	"bytes"
	"encoding/json"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"

	"github.com/billing-adapter/billing-adapter/config"
)

type panickingReceiver struct{}

func (panickingReceiver) Receive(http.ResponseWriter, *http.Request) error { panic("boom") }

// Every request gets an X-Request-Id (the caller's, or a new one) and one
// log line; a panicking handler answers a 500 in the service's shape, with
// its line; a request refused before its handler (401, 404) has its ID and
// line too.
func TestObserveAndRecover(t *testing.T) {
	var logs bytes.Buffer
	h := New(Options{Webhooks: panickingReceiver{}, Log: slog.New(slog.NewJSONHandler(&logs, nil)),
		APIKeys: []config.APIKey{{Name: "checkout", Secret: "sk_checkout", Scope: config.ScopeCheckout}}})
	for _, tc := range []struct {
		method, path, reqID string
		status              int
		code                string
	}{
		{"POST", "/webhooks/stripe", "", http.StatusInternalServerError, "internal_error"},
		{"POST", "/webhooks/stripe", "req_caller", http.StatusInternalServerError, "internal_error"},
		{"GET", "/nope", "", http.StatusNotFound, "resource_missing"},
		{"POST", "/v1/promo_codes/validate", "", http.StatusUnauthorized, "unauthorized"},
	} {
		logs.Reset()
		req := httptest.NewRequest(tc.method, tc.path, strings.NewReader(`{}`))
		if tc.reqID != "" {
			req.Header.Set("X-Request-Id", tc.reqID)
		}
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		if rec.Code != tc.status {
			t.Errorf("%s %s: %d, want %d: %s", tc.method, tc.path, rec.Code, tc.status, rec.Body)
		}
		id := rec.Header().Values("X-Request-Id")
		if len(id) != 1 || (tc.reqID != "" && id[0] != tc.reqID) || (tc.reqID == "" && !strings.HasPrefix(id[0], "req_")) {
			t.Errorf("%s %s: X-Request-Id %q", tc.method, tc.path, id)
		}
		var line map[string]any
		for l := range strings.Lines(logs.String()) {
			var m map[string]any
			if json.Unmarshal([]byte(l), &m) == nil && m["msg"] == "http request" {
				line = m
			}
		}
		if line == nil {
			t.Errorf("%s %s: no access log line in %s", tc.method, tc.path, logs.String())
			continue
		}
		var keys []string
		for k := range line {
			keys = append(keys, k)
		}
		slices.Sort(keys)
		want := []string{"bytes", "duration", "level", "method", "msg", "path", "remote", "request_id", "route", "status", "time"}
		if tc.code != "" {
			want = append(want, "error_code")
			slices.Sort(want)
		}
		if !slices.Equal(keys, want) {
			t.Errorf("%s %s: log line's fields %v, want %v", tc.method, tc.path, keys, want)
		}
		if line["level"] != map[bool]string{true: "ERROR", false: "INFO"}[tc.status >= 500] || line["route"] == "" || line["path"] != tc.path {
			t.Errorf("%s %s: log line %v", tc.method, tc.path, line)
		}
		if line["request_id"] != id[0] || line["status"] != float64(tc.status) {
			t.Errorf("%s %s: log line %v, want request_id %s and status %d", tc.method, tc.path, line, id[0], tc.status)
		}
		if tc.code != "" {
			var body struct {
				Error struct {
					Code      string `json:"code"`
					RequestID string `json:"request_id"`
				} `json:"error"`
			}
			if err := json.Unmarshal(rec.Body.Bytes(), &body); err != nil || body.Error.Code != tc.code || body.Error.RequestID != id[0] {
				t.Errorf("%s %s: body %s, want code %s and request_id %s", tc.method, tc.path, rec.Body, tc.code, id[0])
			}
			if line["error_code"] != tc.code {
				t.Errorf("%s %s: log line's error_code %v, want %s", tc.method, tc.path, line["error_code"], tc.code)
			}
		}
	}
}
