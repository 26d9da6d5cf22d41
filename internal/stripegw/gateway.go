// Package stripegw is the Stripe adapter: it implements promo.Gateway with
// stripe-go v76 (API version 2023-10-16) and turns every Stripe failure into a
// *promo.Error at one place (translate).
//
// Files by concern:
//   - gateway.go: construction, backend, error translation, metrics wrapper;
//   - catalog.go: prices, coupons and promotion codes (promo.Gateway);
//   - refusals.go: Stripe's refusals of a redemption given their domain
//     meaning, from Stripe's structured fields and a re-read of the objects,
//     never from the words of a message.
//
// Subscription calls belong in subscriptions.go. How a promotion code is
// attached to a subscription is decided there in one helper: API version
// 2023-10-16 uses the single `promotion_code` parameter on subscription create
// and update (DESIGN.md); moving to `discounts[]` for newer API versions must
// only change that helper.
package stripegw

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"time"

	"github.com/stripe/stripe-go/v76"
	"github.com/stripe/stripe-go/v76/client"

	"github.com/billing-adapter/billing-adapter/internal/promo"
	"github.com/billing-adapter/billing-adapter/internal/telemetry"
)

// Options configure a Gateway.
type Options struct {
	SecretKey  string
	APIBase    string             // "" = Stripe's default https://api.stripe.com
	MaxRetries int                // stripe-go MaxNetworkRetries (retries reuse the idempotency key)
	Timeout    time.Duration      // HTTP client timeout per attempt; <= 0 = DefaultTimeout
	Logger     *slog.Logger       // nil = discard
	Metrics    *telemetry.Metrics // may be nil
}

// DefaultTimeout is the HTTP timeout when Options.Timeout is not set
// (stripe-go's own default).
const DefaultTimeout = 80 * time.Second

// Gateway talks to Stripe. It is safe for concurrent use.
type Gateway struct {
	api     *client.API
	log     *slog.Logger
	metrics *telemetry.Metrics
}

var _ promo.Gateway = (*Gateway)(nil)

// New builds a Gateway with its own stripe-go backend (no global state of
// stripe-go is read or changed). The secret key is only ever put in the
// Authorization header; it is never logged.
func New(o Options) *Gateway {
	log := o.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	timeout := o.Timeout
	if timeout <= 0 {
		timeout = DefaultTimeout
	}
	httpClient := &http.Client{Timeout: timeout}
	leveled := &slogLeveled{log: log.With("component", "stripe-go")}
	backend := func(t stripe.SupportedBackend, base string) stripe.Backend {
		cfg := &stripe.BackendConfig{
			HTTPClient:        httpClient,
			MaxNetworkRetries: stripe.Int64(int64(max(o.MaxRetries, 0))),
			LeveledLogger:     leveled,
		}
		if base != "" {
			cfg.URL = stripe.String(base)
		}
		return stripe.GetBackendWithConfig(t, cfg)
	}
	api := backend(stripe.APIBackend, o.APIBase)
	backends := &stripe.Backends{API: api, Connect: api, Uploads: api}
	if o.APIBase == "" {
		// Against real Stripe, OAuth and file uploads live on other hosts.
		backends.Connect = backend(stripe.ConnectBackend, "")
		backends.Uploads = backend(stripe.UploadsBackend, "")
	}
	return &Gateway{api: client.New(o.SecretKey, backends), log: log, metrics: o.Metrics}
}

// call runs one Stripe request, records it in metrics under operation and
// returns its error translated to a *promo.Error.
func (g *Gateway) call(ctx context.Context, operation string, fn func() error) error {
	start := time.Now()
	err := fn()
	outcome := "ok"
	if err != nil {
		outcome = outcomeOf(err)
	}
	g.metrics.ObserveStripe(operation, outcome, time.Since(start))
	if err == nil {
		return nil
	}
	perr := translate(err)
	g.log.DebugContext(ctx, "stripe call failed", "operation", operation, "outcome", outcome,
		"stripe_request_id", perr.StripeRequestID, "error", err)
	return perr
}

// outcomeOf is the metrics label of a failed call: the Stripe error type,
// "rate_limited" for 429s, "network" when Stripe did not answer, or
// "bad_response" when the answer could not be read.
func outcomeOf(err error) string {
	var se *stripe.Error
	switch {
	case errors.As(err, &se):
		if isRateLimited(se) {
			return "rate_limited"
		}
		if se.Type == "" {
			return "unknown_error"
		}
		return string(se.Type)
	case isNetwork(err):
		return "network"
	default:
		return "bad_response"
	}
}

// translate is the one place where Stripe errors become domain errors. Every
// result has Code CodeStripeError (502); callers refine it where an operation
// gives a Stripe answer a domain meaning (an unknown price, a taken code).
func translate(err error) *promo.Error {
	var pe *promo.Error
	if errors.As(err, &pe) {
		return pe
	}
	var se *stripe.Error
	switch {
	case errors.As(err, &se):
		msg := se.Msg
		if msg == "" {
			msg = fmt.Sprintf("request failed with HTTP status %d", se.HTTPStatusCode)
		}
		if isRateLimited(se) {
			msg = "rate limited, retry later: " + msg
		}
		var cause error = se
		if se.HTTPStatusCode >= http.StatusInternalServerError {
			// Stripe may have executed the request before failing.
			cause = fmt.Errorf("%w: %w", promo.ErrOutcomeUnknown, se)
		}
		return &promo.Error{Code: promo.CodeStripeError, Message: "Stripe: " + msg,
			StripeRequestID: se.RequestID, StripeCode: string(se.Code), Err: cause}
	case isNetwork(err):
		return &promo.Error{Code: promo.CodeStripeError, Message: "Stripe did not answer",
			Err: fmt.Errorf("%w: %w", promo.ErrOutcomeUnknown, err)}
	default:
		// Not a Stripe error body (a proxy's HTML page, truncated JSON) or a
		// request stripe-go could not build.
		return &promo.Error{Code: promo.CodeStripeError, Message: "Stripe call failed",
			Err: fmt.Errorf("%w: %w", promo.ErrOutcomeUnknown, err)}
	}
}

func isRateLimited(se *stripe.Error) bool {
	return se.HTTPStatusCode == http.StatusTooManyRequests || se.Code == stripe.ErrorCodeRateLimit ||
		se.Type == "rate_limit_error"
}

// isNetwork reports a transport failure: no HTTP answer at all (refused,
// reset, timeout, cancelled context).
func isNetwork(err error) bool {
	var ue *url.Error
	var ne net.Error
	return errors.As(err, &ue) || errors.As(err, &ne) ||
		errors.Is(err, context.DeadlineExceeded) || errors.Is(err, context.Canceled)
}

// stripeErr returns the *stripe.Error under a translated error, if any.
func stripeErr(err error) *stripe.Error {
	var se *stripe.Error
	if errors.As(err, &se) {
		return se
	}
	return nil
}

// slogLeveled adapts stripe-go's leveled logger to slog. stripe-go logs every
// error response at error level; the gateway returns those errors to callers
// that log them once with context, so they go to debug here. Only retries
// (stripe-go's warnings) are worth a warning.
type slogLeveled struct{ log *slog.Logger }

func (l *slogLeveled) Debugf(format string, v ...any) { l.logf(slog.LevelDebug, format, v) }
func (l *slogLeveled) Infof(format string, v ...any)  { l.logf(slog.LevelDebug, format, v) }
func (l *slogLeveled) Errorf(format string, v ...any) { l.logf(slog.LevelDebug, format, v) }
func (l *slogLeveled) Warnf(format string, v ...any)  { l.logf(slog.LevelWarn, format, v) }

func (l *slogLeveled) logf(level slog.Level, format string, v []any) {
	if !l.log.Enabled(context.Background(), level) {
		return // stripe-go logs whole response bodies at debug: skip formatting them
	}
	l.log.Log(context.Background(), level, fmt.Sprintf(format, v...))
}
