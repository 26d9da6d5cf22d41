// Package console is the admin console at /admin: web pages for the people
// who run promotions (sign in with an admin API key, list, search, create,
// edit and archive codes, a code's ledger and chart, the drift report).
//
// It holds no rule of its own. Every action is a call to the JSON API in the
// same process (httpapi.WithPrincipal, as the signed-in key), so it goes
// through the same routes, validation, idempotency and domain code as an API
// client, and the API's error messages are shown next to the field they name.
//
// Security: the API key is only ever sent in the sign-in form's body; the
// browser keeps an httpOnly, SameSite=Strict session cookie (Secure under
// https) that names the key and is signed with a MAC key derived from the
// key's secret. Every form post carries a CSRF token (the session's, or for
// sign-in a double-submit cookie), compared in constant time, and a foreign
// Origin is refused. Pages and files are embedded in the binary (no CDN) and
// served with a strict Content-Security-Policy; no script runs on them.
package console

import (
	"context"
	"embed"
	"html/template"
	"io/fs"
	"log/slog"
	"net/http"
	"time"

	"github.com/billing-adapter/billing-adapter/internal/httpapi"
)

//go:embed templates/*.html
var templateFS embed.FS

//go:embed static
var staticFS embed.FS

// MaxFormBytes bounds a console form post.
const MaxFormBytes = 64 << 10

// DefaultSessionTTL is how long a sign-in lasts.
const DefaultSessionTTL = 8 * time.Hour

// DriftReport is what `reconcile` (report only) finds.
type DriftReport struct {
	Summary  string
	Lines    []string
	Problems []string
}

// Options are the console's dependencies.
type Options struct {
	// API is the service's whole HTTP handler (httpapi.New); set it before
	// serving (the API routes /admin to this console, so they are built in
	// turn).
	API  http.Handler
	Keys *httpapi.Keys
	// Sessions records signed-out sessions (redisstore), so that signing
	// out ends the session on every replica even if a copy of the cookie
	// exists. Nil: signing out only deletes the cookie.
	Sessions SessionStore
	// Drift runs reconcile in report-only mode; nil hides the drift page's button.
	Drift func(ctx context.Context) (*DriftReport, error)
	// SessionTTL is DefaultSessionTTL when 0.
	SessionTTL time.Duration
	// SecureCookies marks cookies Secure even when the request does not look
	// like https (a TLS-terminating proxy that sends no X-Forwarded-Proto).
	SecureCookies bool
	Log           *slog.Logger
	Now           func() time.Time
}

// SessionStore keeps the IDs of signed-out sessions until they would expire.
type SessionStore interface {
	RevokeSession(ctx context.Context, id string, expires time.Time) error
	SessionRevoked(ctx context.Context, id string) (bool, error)
}

// Handler serves the console.
type Handler struct {
	opts  Options
	keys  *httpapi.Keys
	ttl   time.Duration
	log   *slog.Logger
	mux   *http.ServeMux
	pages map[string]*template.Template
}

// New builds the console.
func New(o Options) *Handler {
	h := &Handler{opts: o, keys: o.Keys, ttl: o.SessionTTL, log: o.Log, mux: http.NewServeMux()}
	if h.ttl <= 0 {
		h.ttl = DefaultSessionTTL
	}
	if h.log == nil {
		h.log = slog.New(slog.DiscardHandler)
	}
	h.pages = parsePages()
	static, _ := fs.Sub(staticFS, "static")
	h.mux.Handle("GET /admin/static/", http.StripPrefix("/admin/static/", http.FileServerFS(static)))
	h.mux.HandleFunc("GET /admin", h.home)
	h.mux.HandleFunc("GET /admin/{$}", h.home)
	h.mux.HandleFunc("GET /admin/login", h.loginPage)
	h.mux.HandleFunc("POST /admin/login", h.login)
	h.mux.HandleFunc("POST /admin/logout", h.form(h.logout))
	h.mux.HandleFunc("GET /admin/codes", h.page(h.codes))
	h.mux.HandleFunc("GET /admin/codes/new", h.page(h.newCodePage))
	h.mux.HandleFunc("POST /admin/codes", h.form(h.createCode))
	h.mux.HandleFunc("GET /admin/codes/{id}", h.page(h.codePage))
	h.mux.HandleFunc("POST /admin/codes/{id}", h.form(h.updateCode))
	h.mux.HandleFunc("GET /admin/codes/{id}/archive", h.page(h.archivePage))
	h.mux.HandleFunc("POST /admin/codes/{id}/archive", h.form(h.archiveCode))
	h.mux.HandleFunc("GET /admin/campaigns", h.page(h.campaigns))
	h.mux.HandleFunc("POST /admin/campaigns", h.form(h.createCampaign))
	h.mux.HandleFunc("GET /admin/campaigns/{id}", h.page(h.campaignPage))
	h.mux.HandleFunc("POST /admin/campaigns/{id}", h.form(h.updateCampaign))
	h.mux.HandleFunc("GET /admin/campaigns/{id}/codes.csv", h.page(h.exportCampaign))
	h.mux.HandleFunc("GET /admin/drift", h.page(h.driftPage))
	h.mux.HandleFunc("POST /admin/drift", h.form(h.runDrift))
	return h
}

// ServeHTTP implements http.Handler, with the console's security headers.
func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	hd := w.Header()
	hd.Set("Content-Security-Policy", "default-src 'none'; style-src 'self'; img-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'")
	hd.Set("X-Content-Type-Options", "nosniff")
	hd.Set("X-Frame-Options", "DENY")
	// same-origin, not no-referrer: with no-referrer a browser sends
	// "Origin: null" on form posts, which the CSRF check refuses.
	hd.Set("Referrer-Policy", "same-origin")
	hd.Set("Cache-Control", "no-store")
	h.mux.ServeHTTP(w, r)
}

// SetAPI sets Options.API; call it before serving.
func (h *Handler) SetAPI(api http.Handler) { h.opts.API = api }

type pageFunc func(w http.ResponseWriter, r *http.Request, s *session)

// page requires a session for a GET page; without one the browser goes to
// the sign-in page and nothing about the state is shown.
func (h *Handler) page(fn pageFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		s, ok := h.readSession(r)
		if !ok {
			http.Redirect(w, r, "/admin/login", http.StatusSeeOther)
			return
		}
		fn(w, r, s)
	}
}

// form requires a session and its CSRF token on a form post, with a bounded body.
func (h *Handler) form(fn pageFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		r.Body = http.MaxBytesReader(w, r.Body, MaxFormBytes)
		s, ok := h.readSession(r)
		if !ok {
			http.Redirect(w, r, "/admin/login", http.StatusSeeOther)
			return
		}
		if err := r.ParseForm(); err != nil {
			h.fail(w, r, s, http.StatusRequestEntityTooLarge, "The form is too large or malformed.")
			return
		}
		if !checkCSRF(r, s.CSRF) {
			h.fail(w, r, s, http.StatusForbidden, "This form expired or did not come from this console. Reload the page and try again.")
			return
		}
		fn(w, r, s)
	}
}

func (h *Handler) home(w http.ResponseWriter, r *http.Request) {
	if _, ok := h.readSession(r); ok {
		http.Redirect(w, r, "/admin/codes", http.StatusSeeOther)
		return
	}
	http.Redirect(w, r, "/admin/login", http.StatusSeeOther)
}
