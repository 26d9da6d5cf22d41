package stripesim

import (
	"net/http"
	"strings"
)

// authenticate extracts the secret key from Bearer or Basic auth. Any key
// starting with sk_test_ is accepted.
func authenticate(r *http.Request) (string, *apiError) {
	key := ""
	h := r.Header.Get("Authorization")
	switch {
	case strings.HasPrefix(h, "Bearer "):
		key = strings.TrimSpace(strings.TrimPrefix(h, "Bearer "))
	case strings.HasPrefix(h, "Basic "):
		if u, _, ok := r.BasicAuth(); ok {
			key = u
		}
	}
	if key == "" {
		return "", &apiError{Status: http.StatusUnauthorized, Type: typeInvalidRequest,
			Message: "You did not provide an API key. You need to provide your API key in the Authorization header, using Bearer auth (e.g. 'Authorization: Bearer YOUR_SECRET_KEY'). See https://stripe.com/docs/api#authentication for details, or we can help at https://support.stripe.com/."}
	}
	if !strings.HasPrefix(key, "sk_test_") {
		return "", &apiError{Status: http.StatusUnauthorized, Type: typeInvalidRequest,
			Message: "Invalid API Key provided: " + redactKey(key)}
	}
	return key, nil
}

// redactKey mimics Stripe's redaction: the prefix up to the second
// underscore, stars, and the last four characters.
func redactKey(k string) string {
	prefix := ""
	if i := strings.IndexByte(k, '_'); i >= 0 {
		if j := strings.IndexByte(k[i+1:], '_'); j >= 0 {
			prefix = k[:i+1+j+1]
		}
	}
	if len(k) <= len(prefix)+4 || len(k) < 8 {
		return strings.Repeat("*", len(k))
	}
	return prefix + strings.Repeat("*", len(k)-len(prefix)-4) + k[len(k)-4:]
}
