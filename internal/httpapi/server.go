package httpapi

import (
	"context"
	"log/slog"
	"net/http"
	"time"

	"github.com/billing-adapter/billing-adapter/config"
	"github.com/billing-adapter/billing-adapter/internal/promo"
	"github.com/billing-adapter/billing-adapter/internal/telemetry"
	"github.com/labstack/echo/v4"
	"github.com/labstack/echo/v4/middleware"
)

// Limits of the HTTP layer.
const (
	// BodyLimit caps request bodies under /v1.
	BodyLimit = "1M"
	// DefaultRequestTimeout is Options.RequestTimeout when unset.
	DefaultRequestTimeout = 45 * time.Second
	// MaxIdempotencyKeyLength is the longest Idempotency-Key accepted.
	MaxIdempotencyKeyLength = 255
)

// Options are the dependencies of the HTTP layer.
type Options struct {
	Catalog        *promo.Catalog
	Campaigns      *promo.Campaigns // the /v1/campaigns routes (not routed when nil)
	Guard          *Guard           // the brute-force guard of validate, subscribe and apply (none when nil)
	Redeemer       *promo.Redeemer
	Idempotency    promo.IdempotencyStore
	IdempotencyTTL time.Duration
	// RequestTimeout bounds one /v1 request, Stripe calls included, and
	// IdempotencyLease is how long a running request holds its key (longer,
	// so only a crashed request's lease runs out).
	RequestTimeout   time.Duration
	IdempotencyLease time.Duration
	APIKeys          []config.APIKey
	// Plans expands plan IDs for expand[]=plans (a promo.PlanCache).
	Plans promo.PlanReader
	// Ready reports whether the service can serve (Redis reachable).
	Ready    func(context.Context) error
	Webhooks WebhookReceiver // POST /webhooks/stripe (not routed when nil)
	// Console is the admin console, served at /admin and below (not routed
	// when nil). It is outside /v1: its pages have their own session auth.
	Console http.Handler
	Metrics *telemetry.Metrics
	Log     *slog.Logger
}

type server struct {
	Options
	log  *slog.Logger
	keys *Keys
}

// New builds the HTTP handler with every route.
func New(o Options) http.Handler {
	s := &server{Options: o, log: o.Log, keys: NewKeys(o.APIKeys)}
	if s.log == nil {
		s.log = slog.New(slog.DiscardHandler)
	}
	if s.RequestTimeout <= 0 {
		s.RequestTimeout = DefaultRequestTimeout
	}
	if s.IdempotencyLease <= s.RequestTimeout {
		s.IdempotencyLease = s.RequestTimeout + s.RequestTimeout/3
	}
	e := echo.New()
	e.HideBanner, e.HidePort = true, true
	e.HTTPErrorHandler = s.errorHandler
	// identify, then logRequest, as one middleware (echo composes its
	// global middleware anew on every request, a closure each). Recover,
	// the next one in, is composed into every route's handler once, below
	// (routes' middleware given to echo is composed per request too):
	// only a handler can panic, echo's own 404 and 405 cannot.
	e.Use(s.observe)
	recoverMW := middleware.Recover()

	e.GET("/healthz", recoverMW(func(c echo.Context) error { return c.JSON(http.StatusOK, map[string]string{"status": "ok"}) }))
	e.GET("/readyz", recoverMW(s.readyz))
	e.GET("/openapi.json", recoverMW(serveOpenAPI))
	if o.Metrics != nil {
		e.GET("/metrics", recoverMW(echo.WrapHandler(o.Metrics.Handler())))
	}
	if o.Console != nil {
		e.Any("/admin", recoverMW(echo.WrapHandler(o.Console)))
		e.Any("/admin/*", recoverMW(echo.WrapHandler(o.Console)))
	}
	if o.Webhooks != nil {
		e.POST("/webhooks/stripe", recoverMW(func(c echo.Context) error { return o.Webhooks.Receive(c.Response(), c.Request()) }))
	}

	// Auth and scope come before the idempotency record, so refused requests
	// never occupy a key. The /v1 middleware is attached per route, not to an
	// echo Group: a Group's catch-all route would turn a wrong method on a
	// known path into a 404 instead of the router's 405 with Allow.
	// Each route's chain is composed once, here: echo applies route-level
	// middleware anew on every request (a closure per middleware).
	bodyLimit := middleware.BodyLimit(BodyLimit)
	v1 := func(method, path string, h echo.HandlerFunc, m ...echo.MiddlewareFunc) {
		chain := append([]echo.MiddlewareFunc{recoverMW, bodyLimit, s.authenticate}, m...)
		for i := len(chain) - 1; i >= 0; i-- {
			h = chain[i](h)
		}
		e.Add(method, "/v1"+path, h)
	}
	admin := s.requireScope(config.ScopeAdmin)
	v1(http.MethodPost, "/promo_codes", s.createPromoCode, admin, s.idempotency)
	v1(http.MethodGet, "/promo_codes", s.listPromoCodes, admin)
	v1(http.MethodGet, "/promo_codes/:id", s.getPromoCode, admin)
	v1(http.MethodPost, "/promo_codes/:id", s.updatePromoCode, admin, s.idempotency)
	v1(http.MethodGet, "/promo_codes/:id/redemptions", s.listRedemptions, admin)
	v1(http.MethodGet, "/promo_codes/:id/events", s.listEvents, admin)
	if o.Campaigns != nil {
		v1(http.MethodPost, "/campaigns", s.createCampaign, admin, s.idempotency)
		v1(http.MethodGet, "/campaigns", s.listCampaigns, admin)
		v1(http.MethodGet, "/campaigns/:id", s.getCampaign, admin)
		v1(http.MethodPost, "/campaigns/:id", s.updateCampaign, admin, s.idempotency)
		v1(http.MethodGet, "/campaigns/:id/codes", s.listCampaignCodes, admin)
		v1(http.MethodGet, "/campaigns/:id/codes.csv", s.exportCampaignCodes, admin)
		v1(http.MethodPost, "/campaigns/:id/promotion_codes", s.mirrorCampaignCodes, admin, s.idempotency)
	}

	checkout := s.requireScope(config.ScopeCheckout)
	// validate has no side effects, so it needs no Idempotency-Key (one is
	// accepted and ignored): a payment page calls it as the customer types.
	v1(http.MethodPost, "/promo_codes/validate", s.validatePromoCode, checkout)
	v1(http.MethodPost, "/subscriptions", s.createSubscription, checkout, s.idempotency)
	v1(http.MethodGet, "/subscriptions/:id/promo_code", s.getSubscriptionPromoCode, checkout)
	v1(http.MethodPost, "/subscriptions/:id/promo_code", s.applyPromoCode, checkout, s.idempotency)
	v1(http.MethodDelete, "/subscriptions/:id/promo_code", s.removePromoCode, checkout, s.idempotency)
	return e
}

func (s *server) readyz(c echo.Context) error {
	ctx, cancel := context.WithTimeout(c.Request().Context(), 2*time.Second)
	defer cancel()
	if s.Ready != nil {
		if err := s.Ready(ctx); err != nil {
			c.Response().Header().Set("Retry-After", retryAfterUnavailable) // every 503 says when to retry
			return c.JSON(http.StatusServiceUnavailable, map[string]string{"status": "unavailable", "reason": "redis unreachable"})
		}
	}
	return c.JSON(http.StatusOK, map[string]string{"status": "ready"})
}
