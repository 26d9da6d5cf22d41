package httpapi

import (
	"errors"
	"net/http"

	"github.com/billing-adapter/billing-adapter/internal/promo"
	"github.com/labstack/echo/v4"
)

// errorStatus is the one table from domain error codes to HTTP status and
// error type. Every code in promo's closed set has a row.
var errorStatus = map[promo.Code]struct {
	Status int
	Type   string
}{
	promo.CodeInvalidRequest:       {http.StatusBadRequest, "invalid_request_error"},
	promo.CodeIdempotencyKeyNeeded: {http.StatusBadRequest, "idempotency_error"},
	promo.CodeUnauthorized:         {http.StatusUnauthorized, "authentication_error"},
	promo.CodeForbidden:            {http.StatusForbidden, "permission_error"},
	promo.CodeNotFound:             {http.StatusNotFound, "invalid_request_error"},
	promo.CodeMethodNotAllowed:     {http.StatusMethodNotAllowed, "invalid_request_error"},
	promo.CodeConflict:             {http.StatusConflict, "invalid_request_error"},
	promo.CodeIdempotencyInFlight:  {http.StatusConflict, "idempotency_error"},
	promo.CodeBodyTooLarge:         {http.StatusRequestEntityTooLarge, "invalid_request_error"},
	promo.CodeIdempotencyMismatch:  {http.StatusUnprocessableEntity, "idempotency_error"},
	promo.CodeRateLimited:          {http.StatusTooManyRequests, "rate_limit_error"},
	promo.CodeStripeError:          {http.StatusBadGateway, "stripe_error"},
	promo.CodeUnavailable:          {http.StatusServiceUnavailable, "api_error"},
	promo.CodeInternal:             {http.StatusInternalServerError, "api_error"},

	promo.CodeCodeNotFound:              {http.StatusNotFound, "redemption_error"},
	promo.CodeCodeInactive:              {http.StatusUnprocessableEntity, "redemption_error"},
	promo.CodeCodeExpired:               {http.StatusUnprocessableEntity, "redemption_error"},
	promo.CodeCodeExhausted:             {http.StatusUnprocessableEntity, "redemption_error"},
	promo.CodePlanNotEligible:           {http.StatusUnprocessableEntity, "redemption_error"},
	promo.CodeNewUsersOnly:              {http.StatusUnprocessableEntity, "redemption_error"},
	promo.CodeExistingMembershipsOnly:   {http.StatusUnprocessableEntity, "redemption_error"},
	promo.CodeAlreadyRedeemedByCustomer: {http.StatusConflict, "redemption_error"},
	promo.CodeSubscriptionHasPromoCode:  {http.StatusConflict, "redemption_error"},
	promo.CodeSubscriptionNotFound:      {http.StatusNotFound, "redemption_error"},
	promo.CodeCustomerMismatch:          {http.StatusForbidden, "redemption_error"},
}

type errorBody struct {
	Error errorDetail `json:"error"`
}

type errorDetail struct {
	Type            string `json:"type"`
	Code            string `json:"code"`
	Message         string `json:"message"`
	Param           string `json:"param,omitempty"`
	StripeRequestID string `json:"stripe_request_id,omitempty"`
	RequestID       string `json:"request_id,omitempty"`
}

// WebhookReceiver is the Stripe webhook endpoint (webhooks.Handler): it
// writes the answers to deliveries it accepts and returns refusals and
// failures, which errorHandler writes like every other error.
type WebhookReceiver interface {
	Receive(w http.ResponseWriter, r *http.Request) error
}

// retryAfterUnavailable is the Retry-After of a 503 (Redis unreachable), in
// seconds: go-redis gives up on a dead address in about 2 s, and a failover
// promotes a replica within seconds.
const retryAfterUnavailable = "5"

// toDomainError turns whatever a handler or echo returned into a *promo.Error.
func toDomainError(err error) *promo.Error {
	var pe *promo.Error
	if errors.As(err, &pe) {
		return pe
	}
	var he *echo.HTTPError
	if errors.As(err, &he) {
		switch he.Code {
		case http.StatusNotFound:
			return promo.Errorf(promo.CodeNotFound, "no such route")
		case http.StatusMethodNotAllowed:
			return promo.Errorf(promo.CodeMethodNotAllowed, "this path does not serve this method; the Allow header lists those it serves")
		case http.StatusRequestEntityTooLarge:
			return promo.Errorf(promo.CodeBodyTooLarge, "request body is larger than the limit")
		case http.StatusUnauthorized:
			return promo.Errorf(promo.CodeUnauthorized, "missing or invalid API key")
		case http.StatusBadRequest:
			return promo.Errorf(promo.CodeInvalidRequest, "malformed request")
		}
	}
	return &promo.Error{Code: promo.CodeInternal, Message: "internal error", Err: err}
}

// statusOf returns the HTTP status and error type for a domain error.
func statusOf(e *promo.Error) (int, string) {
	if row, ok := errorStatus[e.Code]; ok {
		return row.Status, row.Type
	}
	return http.StatusInternalServerError, "api_error"
}

// errorHandler writes every error, of /v1 and of the webhook receiver, in
// the service's JSON shape, with Retry-After on a 503, and logs the internal
// cause of 5xx answers.
func (s *server) errorHandler(err error, c echo.Context) {
	if c.Response().Committed {
		return
	}
	e := toDomainError(err)
	status, typ := statusOf(e)
	c.Set(ctxErrorCode, string(e.Code))
	if status >= 500 && e.Err != nil {
		s.log.ErrorContext(c.Request().Context(), "request failed", "code", e.Code,
			"request_id", requestID(c), "err", e.Err.Error())
	}
	body := errorBody{Error: errorDetail{
		Type: typ, Code: string(e.Code), Message: e.Message, Param: e.Param,
		StripeRequestID: e.StripeRequestID, RequestID: requestID(c),
	}}
	if status == http.StatusServiceUnavailable {
		c.Response().Header().Set("Retry-After", retryAfterUnavailable)
	}
	if c.Request().Method == http.MethodHead {
		_ = c.NoContent(status)
		return
	}
	_ = c.JSON(status, body)
}
