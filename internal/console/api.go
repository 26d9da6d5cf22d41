package console

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"

	"github.com/billing-adapter/billing-adapter/internal/httpapi"
)

// apiError is the API's error shape, as the console shows it.
type apiError struct {
	Status    int
	Type      string `json:"type"`
	Code      string `json:"code"`
	Message   string `json:"message"`
	Param     string `json:"param"`
	RequestID string `json:"request_id"`
}

func (e *apiError) Error() string { return fmt.Sprintf("%d %s: %s", e.Status, e.Code, e.Message) }

// call sends one request to the API handler in this process, as the
// session's API key (httpapi.WithPrincipal): the console has no rule of its
// own, every action is an API call through the same routes, validation,
// idempotency and domain code. out receives a 2xx JSON answer; anything
// else is returned as *apiError.
func (h *Handler) call(ctx context.Context, s *session, method, path string, body any, idemKey string, out any) error {
	var rd *bytes.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			return err
		}
		rd = bytes.NewReader(b)
	} else {
		rd = bytes.NewReader(nil)
	}
	req, err := http.NewRequestWithContext(httpapi.WithPrincipal(ctx, s.Key, s.scope), method, path, rd)
	if err != nil {
		return err
	}
	req.RemoteAddr = "console"
	req.Header.Set("Content-Type", "application/json")
	if idemKey != "" {
		req.Header.Set("Idempotency-Key", idemKey)
	}
	rec := httptest.NewRecorder()
	h.opts.API.ServeHTTP(rec, req)
	if rec.Code >= 200 && rec.Code < 300 {
		if out == nil {
			return nil
		}
		return json.Unmarshal(rec.Body.Bytes(), out)
	}
	var eb struct {
		Error apiError `json:"error"`
	}
	if err := json.Unmarshal(rec.Body.Bytes(), &eb); err != nil || eb.Error.Code == "" {
		return &apiError{Status: rec.Code, Code: "internal_error", Message: fmt.Sprintf("the API answered %d", rec.Code)}
	}
	eb.Error.Status = rec.Code
	return &eb.Error
}
