package httpapi

import (
	"context"
	"crypto/hmac"
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

// Keys are the configured API keys, kept by hash. The API's bearer auth and
// the console's sign-in both check keys with Verify: one implementation.
type Keys struct{ keys []apiKey }

// NewKeys hashes the configured keys.
func NewKeys(keys []config.APIKey) *Keys { return &Keys{keys: hashKeys(keys)} }

// Verify finds the key whose secret is presented. Every configured key is
// compared in constant time, without stopping at the first match.
func (k *Keys) Verify(secret string) (name string, scope config.Scope, ok bool) {
	presented := sha256.Sum256([]byte(secret))
	var match *apiKey
	for i := range k.keys {
		if subtle.ConstantTimeCompare(presented[:], k.keys[i].hash[:]) == 1 {
			match = &k.keys[i]
		}
	}
	if match == nil {
		return "", "", false
	}
	return match.name, match.scope, true
}

// Derive returns a secret derived from key name's secret for purpose (the
// console's session MAC key), so that rotating or removing the key ends
// whatever was derived from it. ok is false for an unknown key.
func (k *Keys) Derive(name, purpose string) (secret []byte, scope config.Scope, ok bool) {
	for i := range k.keys {
		if k.keys[i].name == name {
			m := hmac.New(sha256.New, k.keys[i].hash[:])
			m.Write([]byte("billing-adapter derive v1\x00" + purpose))
			return m.Sum(nil), k.keys[i].scope, true
		}
	}
	return nil, "", false
}

// principalKey carries an identity established in this process (the
// console's session) on a request's context.
type principalKey struct{}

type principal struct {
	name  string
	scope config.Scope
}

// WithPrincipal marks an in-process request to the API handler as made with
// the API key name of scope: the admin console, after checking its session
// cookie, calls the API this way so that every console action goes through
// the same routes, validation, idempotency (scoped per key name) and domain
// code as an API call, without the key's secret. A context value cannot come
// from the network, so this opens nothing to remote callers.
func WithPrincipal(ctx context.Context, name string, scope config.Scope) context.Context {
	return context.WithValue(ctx, principalKey{}, principal{name: name, scope: scope})
}

// authenticate requires `Authorization: Bearer <key>` (or an in-process
// principal, WithPrincipal).
func (s *server) authenticate(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		if p, ok := c.Request().Context().Value(principalKey{}).(principal); ok {
			return authenticated(c, next, p.name, p.scope)
		}
		h := c.Request().Header.Get("Authorization")
		token, ok := strings.CutPrefix(h, "Bearer ")
		if !ok || token == "" {
			return promo.Errorf(promo.CodeUnauthorized, "missing API key: send Authorization: Bearer <key>")
		}
		name, scope, ok := s.keys.Verify(token)
		if !ok {
			return promo.Errorf(promo.CodeUnauthorized, "invalid API key")
		}
		return authenticated(c, next, name, scope)
	}
}

// authenticated records who is calling: on the echo context for the logs and
// scope checks, and on the request's context for the audit trail.
func authenticated(c echo.Context, next echo.HandlerFunc, name string, scope config.Scope) error {
	c.Set(ctxAPIKey, name)
	c.Set(ctxScope, scope)
	r := c.Request()
	c.SetRequest(r.WithContext(promo.WithActor(r.Context(), promo.Actor{APIKey: name, RequestID: requestID(c)})))
	return next(c)
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
