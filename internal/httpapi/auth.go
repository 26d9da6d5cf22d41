package httpapi

import (
	"context"
	"crypto/hmac"
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

// authenticate requires the API key, sent as Stripe accepts its own:
// `Authorization: Bearer <key>`, or HTTP Basic with the key as the user name
// and an empty password (`curl -u KEY:`); or an in-process principal
// (WithPrincipal). Anything else (another scheme, a malformed Basic value, a
// non-empty password) is a 401. Both forms reach the same keys and scopes
// (Keys.Verify). It also bounds the rest of the request by RequestTimeout
// (Stripe calls included): one context and one copy of the request carry
// both the deadline and the caller.
func (s *server) authenticate(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		var name string
		var scope config.Scope
		if p, ok := c.Request().Context().Value(principalKey{}).(principal); ok {
			name, scope = p.name, p.scope
		} else {
			token, err := presentedKey(c.Request().Header.Get("Authorization"))
			if err != nil {
				return err
			}
			if name, scope, ok = s.keys.Verify(token); !ok {
				return promo.Errorf(promo.CodeUnauthorized, "invalid API key")
			}
		}
		ctx, cancel := context.WithTimeout(c.Request().Context(), s.RequestTimeout)
		defer cancel()
		return authenticated(ctx, c, next, name, scope)
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

// authenticated records who is calling: on the echo context for the logs and
// scope checks, and on the request's context for the audit trail.
func authenticated(ctx context.Context, c echo.Context, next echo.HandlerFunc, name string, scope config.Scope) error {
	in := requestInfoOf(c)
	if in == nil { // not through identify
		in = new(requestInfo)
		c.Set(ctxRequest, in)
	}
	in.apiKey, in.scope, in.authed = name, scope, true
	in.actor = promo.Actor{APIKey: name, RequestID: in.id}
	c.SetRequest(c.Request().WithContext(promo.WithActorOf(ctx, &in.actor)))
	return next(c)
}

// requireScope refuses keys of another scope with 403.
func (s *server) requireScope(scope config.Scope) echo.MiddlewareFunc {
	return func(next echo.HandlerFunc) echo.HandlerFunc {
		return func(c echo.Context) error {
			var got config.Scope
			if in := requestInfoOf(c); in != nil && in.authed {
				got = in.scope
			}
			if got != scope {
				return promo.Errorf(promo.CodeForbidden, "this API key has scope %q; this endpoint needs %q", got, scope)
			}
			return next(c)
		}
	}
}
