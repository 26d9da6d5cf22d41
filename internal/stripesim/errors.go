package stripesim

import (
	"fmt"
	"net/http"
)

// apiError is an error answered in Stripe's JSON error shape.
type apiError struct {
	Status  int    `json:"-"`
	Type    string `json:"type"`
	Code    string `json:"code,omitempty"`
	Param   string `json:"param,omitempty"`
	Message string `json:"message"`
	DocURL  string `json:"doc_url,omitempty"`
	// DeclineCode is set for card errors.
	DeclineCode string `json:"decline_code,omitempty"`

	// preExec marks errors raised before the endpoint began executing
	// (parameter validation). Stripe does not save an idempotent result
	// for those, so a retry with the same key runs again.
	preExec bool
}

func (e *apiError) Error() string {
	return fmt.Sprintf("%d %s/%s: %s", e.Status, e.Type, e.Code, e.Message)
}

const (
	typeInvalidRequest = "invalid_request_error"
	typeAPI            = "api_error"
	typeIdempotency    = "idempotency_error"
	typeCard           = "card_error"
)

// invalidParam is a pre-execution validation error (not saved for
// idempotency).
func invalidParam(param, format string, args ...any) *apiError {
	return &apiError{Status: http.StatusBadRequest, Type: typeInvalidRequest, Param: param,
		Message: fmt.Sprintf(format, args...), preExec: true}
}

// invalidParamCode is invalidParam with a Stripe error code.
func invalidParamCode(code, param, format string, args ...any) *apiError {
	e := invalidParam(param, format, args...)
	e.Code = code
	return e
}

// requestError is a 400 raised while executing (saved for idempotency).
func requestError(param, format string, args ...any) *apiError {
	return &apiError{Status: http.StatusBadRequest, Type: typeInvalidRequest, Param: param,
		Message: fmt.Sprintf(format, args...)}
}

// missingParam is Stripe's "Missing required param: x." error.
func missingParam(param string) *apiError {
	return invalidParamCode("parameter_missing", param, "Missing required param: %s.", param)
}

func unknownParam(param string) *apiError {
	return invalidParamCode("parameter_unknown", param, "Received unknown parameter: %s", param)
}

// unsupportedParam is for parameters that real Stripe accepts but the
// simulator does not model. It is not a real Stripe error; it exists so a
// caller notices instead of getting silently different behaviour.
func unsupportedParam(param string) *apiError {
	return invalidParam(param, "stripe-sim does not support the parameter %s on this endpoint (it is valid on real Stripe but is not simulated).", param)
}

// noSuchPath is the 404 for an unknown object named in the URL path.
func noSuchPath(kind, id string) *apiError {
	return &apiError{Status: http.StatusNotFound, Type: typeInvalidRequest, Code: "resource_missing",
		Param: "id", Message: fmt.Sprintf("No such %s: '%s'", kind, id)}
}

// noSuchParam is the 400 for an unknown object referenced by a parameter
// (Stripe answers 400, not 404, when the missing object is a parameter).
func noSuchParam(kind, param, id string) *apiError {
	return &apiError{Status: http.StatusBadRequest, Type: typeInvalidRequest, Code: "resource_missing",
		Param: param, Message: fmt.Sprintf("No such %s: '%s'", kind, id)}
}

func apiServerError(msg string) *apiError {
	return &apiError{Status: http.StatusInternalServerError, Type: typeAPI, Message: msg}
}
