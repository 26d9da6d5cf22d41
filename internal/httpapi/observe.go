package httpapi

import (
	"crypto/rand"
	"encoding/hex"
	"log/slog"
	"time"

	"github.com/labstack/echo/v4"
)

// Context keys set on echo.Context.
const (
	ctxRequestID = "request_id"
	ctxAPIKey    = "api_key_name"
	ctxErrorCode = "error_code"
	ctxReqKey    = "idempotency_request_key"
)

func newRequestID() string {
	var b [12]byte
	_, _ = rand.Read(b[:])
	return "req_" + hex.EncodeToString(b[:])
}

func requestID(c echo.Context) string {
	id, _ := c.Get(ctxRequestID).(string)
	return id
}

// accessLog writes one log line per request and records its metrics. It never
// logs headers, so API keys and signatures stay out of the logs.
func (s *server) accessLog(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		start := time.Now()
		err := next(c)
		if err != nil {
			c.Error(err)
		}
		d := time.Since(start)
		route := c.Path()
		if route == "" {
			route = "unmatched"
		}
		status := c.Response().Status
		s.Metrics.ObserveHTTP(c.Request().Method, route, status, d)
		level := slog.LevelInfo
		if status >= 500 {
			level = slog.LevelError
		}
		attrs := []slog.Attr{
			slog.String("request_id", requestID(c)),
			slog.String("method", c.Request().Method),
			slog.String("route", route),
			slog.String("path", c.Request().URL.Path),
			slog.Int("status", status),
			slog.Int64("bytes", c.Response().Size),
			slog.Duration("duration", d),
			slog.String("remote", c.RealIP()),
		}
		if k, ok := c.Get(ctxAPIKey).(string); ok {
			attrs = append(attrs, slog.String("api_key", k))
		}
		if code, ok := c.Get(ctxErrorCode).(string); ok {
			attrs = append(attrs, slog.String("error_code", code))
		}
		if c.Response().Header().Get(headerReplayed) != "" {
			attrs = append(attrs, slog.Bool("idempotent_replay", true))
		}
		s.log.LogAttrs(c.Request().Context(), level, "http request", attrs...)
		return nil
	}
}
