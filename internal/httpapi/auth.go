package httpapi

import (
	"crypto/sha256"
	"crypto/subtle"
	"strings"

	"github.com/billing-adapter/billing-adapter/config"
	"github.com/billing-adapter/billing-adapter/internal/promo"
	"github.com/labstack/echo/v4"
)

// apiKey holds a configured key by the SHA-256 of its secret, so comparisons
// take the same time whatever the length or content of the presented key.
type apiKey struct {
	name  string
	scope config.Scope
	hash  [32]byte
}

func hashKeys(keys []config.APIKey) []apiKey {
	out := make([]apiKey, len(keys))
	for i, k := range keys {
		out[i] = apiKey{name: k.Name, scope: k.Scope, hash: sha256.Sum256([]byte(k.Secret))}
	}
	return out
}

// authenticate requires `Authorization: Bearer <key>`. Every configured key is
// compared in constant time, without stopping at the first match.
func (s *server) authenticate(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		h := c.Request().Header.Get("Authorization")
		token, ok := strings.CutPrefix(h, "Bearer ")
		if !ok || token == "" {
			return promo.Errorf(promo.CodeUnauthorized, "missing API key: send Authorization: Bearer <key>")
		}
		presented := sha256.Sum256([]byte(token))
		var match *apiKey
		for i := range s.keys {
			if subtle.ConstantTimeCompare(presented[:], s.keys[i].hash[:]) == 1 {
				match = &s.keys[i]
			}
		}
		if match == nil {
			return promo.Errorf(promo.CodeUnauthorized, "invalid API key")
		}
		c.Set(ctxAPIKey, match.name)
		c.Set(ctxScope, match.scope)
		return next(c)
	}
}

const ctxScope = "api_key_scope"

// requireScope refuses keys of another scope with 403.
func (s *server) requireScope(scope config.Scope) echo.MiddlewareFunc {
	return func(next echo.HandlerFunc) echo.HandlerFunc {
		return func(c echo.Context) error {
			if got, _ := c.Get(ctxScope).(config.Scope); got != scope {
				return promo.Errorf(promo.CodeForbidden, "this API key has scope %q; this endpoint needs %q", got, scope)
			}
			return next(c)
		}
	}
}
