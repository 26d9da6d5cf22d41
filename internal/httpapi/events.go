package httpapi

import (
	"encoding/json"
	"net/http"

	"github.com/billing-adapter/billing-adapter/internal/promo"
	"github.com/labstack/echo/v4"
)

// eventResponse is one entry of a code's audit trail.
type eventResponse struct {
	ID          string            `json:"id"`
	Object      string            `json:"object"`
	PromoCodeID string            `json:"promo_code_id"`
	Action      string            `json:"action"`
	APIKey      string            `json:"api_key"`
	RequestID   *string           `json:"request_id"`
	CreatedAt   string            `json:"created_at"`
	Changes     []fieldChangeJSON `json:"changes"`
}

type fieldChangeJSON struct {
	Field  string          `json:"field"`
	Before json.RawMessage `json:"before"`
	After  json.RawMessage `json:"after"`
}

// listEvents answers GET /v1/promo_codes/{id}/events: the code's audit
// trail, newest first.
func (s *server) listEvents(c echo.Context) error {
	limit, err := parseLimit(c)
	if err != nil {
		return err
	}
	id := c.Param("id")
	page, err := s.Catalog.Events(c.Request().Context(), id, limit, c.QueryParam("starting_after"))
	if err != nil {
		return err
	}
	out := listResponse[eventResponse]{Object: "list", Data: make([]eventResponse, 0, len(page.Data)),
		HasMore: page.HasMore, URL: "/v1/promo_codes/" + id + "/events"}
	for _, e := range page.Data {
		out.Data = append(out.Data, toEventResponse(e))
	}
	return c.JSON(http.StatusOK, out)
}

func toEventResponse(e *promo.AuditEvent) eventResponse {
	r := eventResponse{ID: e.ID, Object: "promo_code_event", PromoCodeID: e.PromoCodeID, Action: e.Action,
		APIKey: e.APIKey, RequestID: optString(e.RequestID), CreatedAt: rfc3339(e.At),
		Changes: make([]fieldChangeJSON, 0, len(e.Changes))}
	for _, ch := range e.Changes {
		r.Changes = append(r.Changes, fieldChangeJSON{Field: ch.Field, Before: ch.Before, After: ch.After})
	}
	return r
}
