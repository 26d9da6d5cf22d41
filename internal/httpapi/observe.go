package httpapi

import (
	"crypto/rand"
	"encoding/hex"
	"log/slog"
	"time"

	"github.com/billing-adapter/billing-adapter/config"
	"github.com/billing-adapter/billing-adapter/internal/promo"
	"github.com/labstack/echo/v4"
)

// Context keys set on echo.Context.
const (
	ctxRequest   = "request" // *requestInfo (requestIDs)
	ctxErrorCode = "error_code"
	ctxReqKey    = "idempotency_request_key"
)

// requestInfo is what the middleware learn of a request: its ID (set by
// requestIDs) and its caller (set by authenticate). It is one value on the
// echo context, so its fields cost no allocation each.
type requestInfo struct {
	id       string
	idHeader [1]string // the X-Request-Id answer header's value: id
	apiKey   string    // the API key's name, once authenticated
	scope    config.Scope
	authed   bool
	actor    promo.Actor // the request context's (promo.WithActorOf)
}

func requestInfoOf(c echo.Context) *requestInfo {
	in, _ := c.Get(ctxRequest).(*requestInfo)
	return in
}

// observe is the service's outermost middleware: identify, then
// logRequest. It is one middleware, not two, because echo applies its
// global middleware anew on every request (a closure each).
func (s *server) observe(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		identify(c)
		return s.logRequest(c, next)
	}
}

// identify gives the request an ID, as echo's RequestID middleware did:
// the caller's X-Request-Id when it sends one, else a new one; the answer
// carries it in X-Request-Id.
func identify(c echo.Context) {
	in := new(requestInfo)
	id := c.Request().Header.Get(echo.HeaderXRequestID)
	if id == "" {
		id = newRequestID()
	}
	in.id, in.idHeader[0] = id, id
	c.Response().Header()[echo.HeaderXRequestID] = in.idHeader[:] // as Header.Set, without its slice
	c.Set(ctxRequest, in)
}

func newRequestID() string {
	var b [12]byte
	_, _ = rand.Read(b[:])
	var out [4 + 2*len(b)]byte // "req_" and the hex: one allocation, the string
	copy(out[:], "req_")
	hex.Encode(out[4:], b[:])
	return string(out[:])
}

func requestID(c echo.Context) string {
	if in := requestInfoOf(c); in != nil {
		return in.id
	}
	return ""
}

// apiKeyName is the name of the request's API key ("" before authenticate).
func apiKeyName(c echo.Context) (string, bool) {
	if in := requestInfoOf(c); in != nil && in.authed {
		return in.apiKey, true
	}
	return "", false
}

// logRequest runs next, writes the request's log line and records its
// metrics. It never logs headers, so API keys and signatures stay out of
// the logs. The line's attributes are built in an array on the stack, and
// not at all when its level is disabled.
func (s *server) logRequest(c echo.Context, next echo.HandlerFunc) error {
	start := time.Now()
	err := next(c)
	if err != nil {
		c.Error(err)
	}
	d := time.Since(start)
	req, res := c.Request(), c.Response()
	route := c.Path()
	if route == "" {
		route = "unmatched"
	}
	status := res.Status
	s.Metrics.ObserveHTTP(req.Method, route, status, d)
	level := slog.LevelInfo
	if status >= 500 {
		level = slog.LevelError
	}
	ctx := req.Context()
	if !s.log.Enabled(ctx, level) {
		return nil
	}
	var buf [11]slog.Attr
	attrs := append(buf[:0],
		slog.String("request_id", requestID(c)),
		slog.String("method", req.Method),
		slog.String("route", route),
		slog.String("path", req.URL.Path),
		slog.Int("status", status),
		slog.Int64("bytes", res.Size),
		slog.Duration("duration", d),
		slog.String("remote", c.RealIP()),
	)
	if k, ok := apiKeyName(c); ok {
		attrs = append(attrs, slog.String("api_key", k))
	}
	if code, ok := c.Get(ctxErrorCode).(string); ok {
		attrs = append(attrs, slog.String("error_code", code))
	}
	if res.Header().Get(headerReplayed) != "" {
		attrs = append(attrs, slog.Bool("idempotent_replay", true))
	}
	// What LogAttrs does, without its runtime.Callers: the line's source
	// (not written: the service's handlers do not AddSource) would be this
	// line, whatever the request.
	r := slog.NewRecord(time.Now(), level, "http request", 0)
	r.AddAttrs(attrs...)
	_ = s.log.Handler().Handle(ctx, r)
	return nil
}
