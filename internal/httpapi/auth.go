package httpapi

import (
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
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

// authenticate requires the API key, sent as Stripe accepts its own:
// `Authorization: Bearer <key>`, or HTTP Basic with the key as the user name
// and an empty password (`curl -u KEY:`). Anything else (another scheme, a
// malformed Basic value, a non-empty password) is a 401. Every configured key
// is compared in constant time, without stopping at the first match; both
// forms reach the same keys and scopes.
func (s *server) authenticate(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		token, err := presentedKey(c.Request().Header.Get("Authorization"))
		if err != nil {
			return err
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

// presentedKey reads the API key from an Authorization header: a Bearer
// token, or Basic credentials whose user name is the key and whose password
// is empty. The scheme is case-insensitive (RFC 9110).
func presentedKey(h string) (string, error) {
	scheme, value, _ := strings.Cut(h, " ")
	value = strings.TrimSpace(value)
	switch {
	case h == "":
		return "", promo.Errorf(promo.CodeUnauthorized, "missing API key: send Authorization: Bearer <key> (or HTTP Basic with the key as user name and no password, as curl -u KEY: does)")
	case strings.EqualFold(scheme, "Bearer"):
		if value == "" {
			return "", promo.Errorf(promo.CodeUnauthorized, "missing API key after Bearer")
		}
		return value, nil
	case strings.EqualFold(scheme, "Basic"):
		raw, err := base64.StdEncoding.DecodeString(value)
		user, password, ok := strings.Cut(string(raw), ":")
		switch {
		case err != nil || !ok:
			return "", promo.Errorf(promo.CodeUnauthorized, "malformed Basic credentials: send the API key as the user name with an empty password (curl -u KEY:)")
		case password != "":
			return "", promo.Errorf(promo.CodeUnauthorized, "Basic credentials must have an empty password: send the API key as the user name (curl -u KEY:)")
		case user == "":
			return "", promo.Errorf(promo.CodeUnauthorized, "missing API key: the Basic user name is empty")
		}
		return user, nil
	}
	return "", promo.Errorf(promo.CodeUnauthorized, "unsupported Authorization scheme: send Authorization: Bearer <key>, or HTTP Basic with the key as user name and no password")
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
