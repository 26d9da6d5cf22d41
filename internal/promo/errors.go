package promo

import (
	"errors"
	"fmt"
)

// Code is the closed set of machine-readable error codes the service returns.
// httpapi maps each one to an HTTP status in a single table.
type Code string

// Request and platform errors.
const (
	CodeInvalidRequest       Code = "invalid_request"         // 400: malformed or invalid input (Param names the field)
	CodeIdempotencyKeyNeeded Code = "idempotency_key_invalid" // 400: header missing or too long
	CodeUnauthorized         Code = "unauthorized"            // 401
	CodeForbidden            Code = "forbidden"               // 403: key lacks the scope
	CodeNotFound             Code = "resource_missing"        // 404
	CodeMethodNotAllowed     Code = "method_not_allowed"      // 405: known path, another method (Allow lists them)
	CodeConflict             Code = "conflict"                // 409: state conflict (code taken, update in progress)
	CodeIdempotencyInFlight  Code = "idempotency_key_in_use"  // 409: same key still running
	CodeBodyTooLarge         Code = "body_too_large"          // 413
	CodeIdempotencyMismatch  Code = "idempotency_key_reused"  // 422: same key, another request
	CodeRateLimited          Code = "rate_limited"            // 429
	CodeStripeError          Code = "stripe_error"            // 502: Stripe refused or failed
	CodeUnavailable          Code = "service_unavailable"     // 503: Redis unreachable
	CodeInternal             Code = "internal_error"          // 500
)

// Redemption error codes (DESIGN.md "Redemption rules").
const (
	CodeCodeNotFound              Code = "code_not_found"
	CodeCodeInactive              Code = "code_inactive"
	CodeCodeExpired               Code = "code_expired"
	CodeCodeExhausted             Code = "code_exhausted"
	CodePlanNotEligible           Code = "plan_not_eligible"
	CodeNewUsersOnly              Code = "new_users_only"
	CodeExistingMembershipsOnly   Code = "existing_memberships_only"
	CodeAlreadyRedeemedByCustomer Code = "already_redeemed_by_customer"
	CodeSubscriptionHasPromoCode  Code = "subscription_has_promo_code"
	CodeSubscriptionNotFound      Code = "subscription_not_found"
	CodeCustomerMismatch          Code = "customer_mismatch"
)

// Codes is the closed set: every Code the service may return.
var Codes = []Code{
	CodeInvalidRequest, CodeIdempotencyKeyNeeded, CodeUnauthorized, CodeForbidden, CodeNotFound,
	CodeMethodNotAllowed, CodeConflict,
	CodeIdempotencyInFlight, CodeBodyTooLarge, CodeIdempotencyMismatch, CodeRateLimited, CodeStripeError,
	CodeUnavailable, CodeInternal,
	CodeCodeNotFound, CodeCodeInactive, CodeCodeExpired, CodeCodeExhausted, CodePlanNotEligible, CodeNewUsersOnly,
	CodeExistingMembershipsOnly, CodeAlreadyRedeemedByCustomer, CodeSubscriptionHasPromoCode,
	CodeSubscriptionNotFound, CodeCustomerMismatch,
}

// Error is the service's one error type. Message is safe to show to API
// callers; Err (if any) is the internal cause and is only logged.
type Error struct {
	Code    Code
	Message string
	Param   string // the request field at fault, when there is one
	// StripeRequestID and StripeCode are set when Stripe refused or failed.
	StripeRequestID string
	StripeCode      string
	Err             error
}

func (e *Error) Error() string {
	s := string(e.Code) + ": " + e.Message
	if e.Param != "" {
		s += " (param " + e.Param + ")"
	}
	if e.Err != nil {
		s += ": " + e.Err.Error()
	}
	return s
}

func (e *Error) Unwrap() error { return e.Err }

// Errorf builds an *Error with a formatted message.
func Errorf(code Code, format string, args ...any) *Error {
	return &Error{Code: code, Message: fmt.Sprintf(format, args...)}
}

// Invalid reports a 400 on one request field.
func Invalid(param, format string, args ...any) *Error {
	return &Error{Code: CodeInvalidRequest, Param: param, Message: fmt.Sprintf(format, args...)}
}

// Unavailable wraps an infrastructure failure (Redis) as a 503.
func Unavailable(what string, err error) *Error {
	return &Error{Code: CodeUnavailable, Message: what + " is unavailable, retry later", Err: err}
}

// CodeOf returns the Code of err, or CodeInternal when err is not an *Error.
func CodeOf(err error) Code {
	var e *Error
	if errors.As(err, &e) {
		return e.Code
	}
	return CodeInternal
}

// ErrNotFound is returned by stores for a missing object; services turn it into
// a 404 naming the object.
var ErrNotFound = errors.New("not found")

// ErrPromotionCodeTaken is returned by the Gateway when Stripe already has an
// active promotion code with the same customer-facing code.
var ErrPromotionCodeTaken = errors.New("stripe already has an active promotion code with this code")
