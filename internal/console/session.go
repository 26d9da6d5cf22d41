package console

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"net/http"
	"strings"
	"time"

	"github.com/billing-adapter/billing-adapter/config"
)

// Cookie names. The session cookie holds no secret of the API key: only its
// name, an expiry, a random session ID and the CSRF token, signed with a MAC
// key derived from the key's secret (httpapi.Keys.Derive), so a cookie
// cannot be forged without the key, and rotating or removing the key signs
// every session of it out.
const (
	sessionCookie = "ba_console_session"
	loginCookie   = "ba_console_login" // the sign-in form's CSRF token (double submit)
	csrfField     = "csrf_token"
	macPurpose    = "console-session"
)

// session is the signed content of the session cookie.
type session struct {
	Key     string `json:"k"` // API key name
	Expires int64  `json:"e"` // unix seconds
	ID      string `json:"i"`
	CSRF    string `json:"c"`
	scope   config.Scope
}

func randomToken() string {
	var b [18]byte
	_, _ = rand.Read(b[:])
	return base64.RawURLEncoding.EncodeToString(b[:])
}

func (h *Handler) macKey(name string) ([]byte, config.Scope, bool) {
	return h.keys.Derive(name, macPurpose)
}

func sign(key, payload []byte) string {
	m := hmac.New(sha256.New, key)
	m.Write(payload)
	return hex.EncodeToString(m.Sum(nil))
}

// newSession issues a session for key name and sets its cookie.
func (h *Handler) newSession(w http.ResponseWriter, r *http.Request, name string) error {
	key, _, ok := h.macKey(name)
	if !ok {
		return errors.New("unknown key")
	}
	s := session{Key: name, Expires: h.now().Add(h.ttl).Unix(), ID: randomToken(), CSRF: randomToken()}
	payload, _ := json.Marshal(s)
	value := base64.RawURLEncoding.EncodeToString(payload) + "." + sign(key, payload)
	http.SetCookie(w, h.cookie(r, sessionCookie, value, int(h.ttl.Seconds())))
	return nil
}

// readSession returns the request's valid session: signature, expiry, and a
// key that still exists with the admin scope.
func (h *Handler) readSession(r *http.Request) (*session, bool) {
	c, err := r.Cookie(sessionCookie)
	if err != nil || len(c.Value) > 1024 {
		return nil, false
	}
	enc, mac, ok := strings.Cut(c.Value, ".")
	if !ok {
		return nil, false
	}
	payload, err := base64.RawURLEncoding.DecodeString(enc)
	if err != nil {
		return nil, false
	}
	var s session
	if json.Unmarshal(payload, &s) != nil {
		return nil, false
	}
	key, scope, ok := h.macKey(s.Key)
	if !ok || subtle.ConstantTimeCompare([]byte(sign(key, payload)), []byte(mac)) != 1 {
		return nil, false
	}
	if scope != config.ScopeAdmin || h.now().Unix() >= s.Expires || s.CSRF == "" || s.ID == "" {
		return nil, false
	}
	if h.opts.Sessions != nil {
		// Fails closed: when Redis cannot say, the session is not trusted.
		if out, err := h.opts.Sessions.SessionRevoked(r.Context(), s.ID); err != nil || out {
			if err != nil {
				h.log.Warn("console session check failed; signing the browser out", "err", err.Error())
			}
			return nil, false
		}
	}
	s.scope = scope
	return &s, true
}

// cookie builds one of the console's cookies: httpOnly, SameSite=Strict,
// Secure when the console is reached over https, limited to /admin.
func (h *Handler) cookie(r *http.Request, name, value string, maxAge int) *http.Cookie {
	return &http.Cookie{
		Name: name, Value: value, Path: "/admin", MaxAge: maxAge,
		HttpOnly: true, SameSite: http.SameSiteStrictMode, Secure: h.secure(r),
	}
}

// secure reports whether the console is served over https (directly, or
// behind a proxy that says so).
func (h *Handler) secure(r *http.Request) bool {
	return r.TLS != nil || strings.EqualFold(r.Header.Get("X-Forwarded-Proto"), "https") || h.opts.SecureCookies
}

func (h *Handler) clearCookie(w http.ResponseWriter, r *http.Request, name string) {
	http.SetCookie(w, h.cookie(r, name, "", -1))
}

// checkCSRF verifies a form post: the token in the form must equal want
// (compared in constant time), and an Origin header, when sent, must be this
// host's.
func checkCSRF(r *http.Request, want string) bool {
	if o := r.Header.Get("Origin"); o != "" {
		host := o
		if i := strings.Index(host, "://"); i >= 0 {
			host = host[i+3:]
		}
		if host != r.Host {
			return false
		}
	}
	got := r.PostFormValue(csrfField)
	return want != "" && subtle.ConstantTimeCompare([]byte(got), []byte(want)) == 1
}

func (h *Handler) now() time.Time {
	if h.opts.Now != nil {
		return h.opts.Now()
	}
	return time.Now()
}
