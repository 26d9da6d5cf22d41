package stripesim

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"runtime/debug"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// apiVersion is the only Stripe API version the simulator speaks.
const apiVersion = "2023-10-16"

// Options configures a Server.
type Options struct {
	// WebhookURL is where events are POSTed; empty means no delivery.
	WebhookURL string
	// WebhookSecret (whsec_...) signs deliveries.
	WebhookSecret string
	// Logger receives diagnostics; nil discards them.
	Logger *slog.Logger
	// Now is the real-time source for objects without a test clock; nil
	// means time.Now.
	Now func() time.Time
	// RetryBackoff is the first webhook retry delay (it doubles, capped at
	// 30s); default 200ms.
	RetryBackoff time.Duration
	// MaxDeliveryAttempts bounds webhook delivery attempts; default 8.
	MaxDeliveryAttempts int
	// RewordErrors replaces the message of every error the simulator answers
	// with a neutral numbered sentence; type, code and param stay. Tests turn
	// it on to prove that no client logic reads the simulator's (or Stripe's)
	// wording.
	RewordErrors bool
	// CLIWebhookSecret, when set, is the signing secret of every Stripe CLI
	// session (`stripe listen`); otherwise each device name gets its own
	// random whsec_, kept with the state (see cli.go).
	CLIWebhookSecret string
	// CLIReconnectDelay is the reconnect_delay given to the Stripe CLI (it
	// redials its websocket that often); default 60s, Stripe's own.
	CLIReconnectDelay time.Duration
	// StatePath, with Open, is the JSON file the whole state is loaded from
	// and saved to after every change (persist.go); empty keeps it in memory.
	StatePath string
	// MaxEvents, when positive, keeps only about the newest MaxEvents events
	// (between MaxEvents and twice that): Stripe keeps events 30 days, and a
	// load run that bills a year of invoices would otherwise hold every
	// event's body. Webhook delivery is not affected.
	MaxEvents int
}

// SeedData holds the IDs created by Seed.
type SeedData struct {
	CustomerID string `json:"customer_id"`
	ProductID  string `json:"product_id"`
	PriceID    string `json:"price_id"`
}

// Server is the simulator. It implements http.Handler.
type Server struct {
	opts Options
	log  *slog.Logger
	now  func() time.Time

	// mu guards all Stripe state below. It is never held while sleeping or
	// while delivering webhooks.
	mu        sync.Mutex
	seq       int64
	customers map[string]*customer
	products  map[string]*product
	prices    map[string]*price
	coupons   map[string]*coupon // live (not deleted) coupons by ID
	promos    map[string]*promoCode
	subs      map[string]*subscription
	discounts map[string]*discount
	invoices  map[string]*invoice
	clocks    map[string]*testClock
	// payment methods and invoice items (oneoff.go)
	paymentMethods map[string]*paymentMethod
	invoiceItems   map[string]*invoiceItem
	events         []*event
	eventByID      map[string]*event
	idx            seqIndexes // list and lookup indexes (list.go)

	counters counters
	reworded atomic.Int64 // messages replaced under Options.RewordErrors
	faults   faultQueue
	idem     idempotencyStore
	hooks    *dispatcher
	cli      *cliHub

	persist bool // save to opts.StatePath after changes (Open)

	closeOnce sync.Once
	closed    chan struct{}
}

// New builds a simulator and starts its webhook delivery worker.
func New(opts Options) *Server {
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.RetryBackoff <= 0 {
		opts.RetryBackoff = 200 * time.Millisecond
	}
	if opts.MaxDeliveryAttempts <= 0 {
		opts.MaxDeliveryAttempts = 8
	}
	log := opts.Logger
	if log == nil {
		log = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	s := &Server{
		opts:           opts,
		log:            log,
		now:            opts.Now,
		customers:      map[string]*customer{},
		products:       map[string]*product{},
		prices:         map[string]*price{},
		coupons:        map[string]*coupon{},
		promos:         map[string]*promoCode{},
		subs:           map[string]*subscription{},
		discounts:      map[string]*discount{},
		invoices:       map[string]*invoice{},
		clocks:         map[string]*testClock{},
		paymentMethods: map[string]*paymentMethod{},
		invoiceItems:   map[string]*invoiceItem{},
		eventByID:      map[string]*event{},
		closed:         make(chan struct{}),
	}
	s.counters.m = map[string]int{}
	s.idem.m = map[string]*idemEntry{}
	s.hooks = newDispatcher(s, opts.WebhookURL, opts.WebhookSecret)
	s.cli = newCLIHub()
	return s
}

// Close stops webhook delivery goroutines and wakes hung requests. It is
// safe to call more than once.
func (s *Server) Close() {
	s.closeOnce.Do(func() {
		close(s.closed)
		s.hooks.stop()
		s.cli.closeAll()
	})
}

// realNow is the simulator's real-time clock in Unix seconds.
func (s *Server) realNow() int64 { return s.now().Unix() }

// nextSeq orders objects by creation (lists are newest first). Caller holds
// s.mu.
func (s *Server) nextSeq() int64 {
	s.seq++
	return s.seq
}

// reqCtx is the per-request execution context handed to endpoint handlers.
type reqCtx struct {
	s       *Server
	r       *http.Request
	p       *params
	ids     []string // path parameters, in order
	reqID   string
	idemKey string
	expand  [][]string
	dirty   bool // the request may have changed the state (saved with Options.StatePath)
}

func (c *reqCtx) id() string { return c.ids[0] }

// check validates parameters against the endpoint schema and parses
// expand[].
func (c *reqCtx) check(sc *schema) *apiError {
	if err := sc.check(c.p); err != nil {
		return err
	}
	exp, err := c.p.expandPaths()
	if err != nil {
		return err
	}
	c.expand = exp
	return nil
}

// origin describes what caused an event (an API request or the
// simulator's own clock).
func (c *reqCtx) origin() eventOrigin {
	return eventOrigin{reqID: c.reqID, idemKey: c.idemKey}
}

// handlerFunc executes one endpoint while s.mu is held and returns the
// rendered object.
type handlerFunc func(c *reqCtx) (map[string]any, *apiError)

// ServeHTTP implements http.Handler.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	reqID := newID("req")
	h := w.Header()
	h.Set("Request-Id", reqID)
	h.Set("Stripe-Version", apiVersion)
	h.Set("Access-Control-Allow-Origin", "*")
	s.setDate(h)

	if r.URL.Path == cliWebSocketPath {
		s.serveCLIWebsocket(w, r) // the CLI authenticates with its session's Websocket-Id
		return
	}
	apiKey, aerr := authenticate(r)
	if aerr != nil {
		h.Set("Www-Authenticate", `Bearer realm="Stripe"`)
		s.writeAPIError(w, aerr)
		return
	}
	if strings.HasPrefix(r.URL.Path, "/_sim/") {
		s.serveSim(w, r)
		return
	}

	rt, ids := matchRoute(r.Method, r.URL.EscapedPath())
	if rt == nil {
		s.counters.add(r.Method + " " + r.URL.Path)
		s.writeAPIError(w, &apiError{Status: http.StatusNotFound, Type: typeInvalidRequest,
			Message: fmt.Sprintf("Unrecognized request URL (%s: %s). Please see https://stripe.com/docs or we can help at https://support.stripe.com/.", r.Method, r.URL.Path)})
		return
	}
	s.counters.add(rt.op)

	// Read the body before any fault sleeps, so the server notices a client
	// that goes away while a request hangs.
	pairs, perr := requestPairs(r)
	if perr != nil {
		s.writeAPIError(w, invalidParam("", "Invalid request body: %v", perr))
		return
	}
	p, perrParse := parseParams(pairs)

	commitThen500 := false
	var hangAfter time.Duration // commit_then_hang: hang this long after executing
	if f, ok := s.faults.take(r.Method, r.URL.Path); ok {
		s.log.Info("stripesim: injecting fault", "kind", f.Kind, "op", rt.op, "request_id", reqID)
		switch f.Kind {
		case FaultCommitThenError:
			commitThen500 = true
		case FaultCommitThenHang:
			commitThen500, hangAfter = true, hangDelay(f.Delay)
		case FaultHang:
			if !s.hang(r, hangDelay(f.Delay)) {
				return
			}
			h.Set("Stripe-Should-Retry", "false")
			s.writeAPIError(w, apiServerError("stripe-sim: injected hang fault; the request was not executed."))
			return
		default:
			h.Set("Stripe-Should-Retry", "false")
			s.writeAPIError(w, f.Kind.apiError())
			return
		}
	}

	if perrParse != nil {
		s.writeAPIError(w, perrParse)
		return
	}
	c := &reqCtx{s: s, r: r, p: p, ids: ids, reqID: reqID}

	var entry *idemEntry
	if r.Method == http.MethodPost || r.Method == http.MethodDelete {
		c.idemKey = strings.TrimSpace(r.Header.Get("Idempotency-Key"))
	}
	if c.idemKey != "" {
		h.Set("Idempotency-Key", c.idemKey)
		fp := r.Method + " " + r.URL.Path + "?" + p.fingerprint()
		var replay *idemEntry
		var ierr *apiError
		entry, replay, ierr = s.idem.begin(apiKey, c.idemKey, fp, reqID)
		if ierr != nil {
			s.writeAPIError(w, ierr)
			return
		}
		if replay != nil {
			h.Set("Idempotent-Replayed", "true")
			h.Set("Original-Request", replay.reqID)
			writeJSONBytes(w, replay.status, replay.body)
			return
		}
	}

	status, body, preExec := s.execute(rt, c)
	if commitThen500 {
		// The operation ran (unless its parameters were invalid, in which
		// case nothing is saved); the client only sees a 500.
		h.Set("Stripe-Should-Retry", "false")
		e := apiServerError("stripe-sim: injected commit fault; the operation was executed but the response was replaced by this error.")
		status, body = e.Status, s.errorBody(e)
	}
	s.log.Debug("stripesim: request", "op", rt.op, "status", status, "request_id", reqID, "idempotency_key", c.idemKey)
	if entry != nil {
		if preExec {
			s.idem.abandon(apiKey, c.idemKey)
		} else {
			s.idem.finish(apiKey, c.idemKey, status, body)
		}
	}
	if c.dirty && s.persist { // after the idempotency record is final, so a replay survives a restart
		s.mu.Lock()
		s.saveLocked()
		s.mu.Unlock()
	}
	if hangAfter > 0 && !s.hang(r, hangAfter) {
		return
	}
	s.setDate(h) // the time the request was answered, as Stripe's Date
	writeJSONBytes(w, status, body)
	if r.Method == http.MethodGet {
		putRespBuf(body)
	}
}

// setDate sets the Date header from the simulator's clock (Options.Now), as
// Stripe's Date header is Stripe's time.
func (s *Server) setDate(h http.Header) {
	h.Set("Date", s.now().UTC().Format(http.TimeFormat))
}

func hangDelay(d time.Duration) time.Duration {
	if d <= 0 {
		return 60 * time.Second
	}
	return d
}

// hang waits d, or until the server closes; it reports false when the client
// went away first (there is nobody left to answer).
func (s *Server) hang(r *http.Request, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
	case <-r.Context().Done():
		return false
	case <-s.closed:
	}
	return true
}

// execute runs the handler under the state lock.
func (s *Server) execute(rt *route, c *reqCtx) (status int, body []byte, preExec bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	defer func() {
		if rec := recover(); rec != nil {
			s.log.Error("stripesim: handler panic", "op", rt.op, "panic", rec, "stack", string(debug.Stack()))
			e := apiServerError("An unknown error occurred (stripe-sim internal error).")
			status, body, preExec = e.Status, s.errorBody(e), false
		}
	}()
	seq := s.seq
	defer func() {
		c.dirty = c.r.Method != http.MethodGet || s.seq != seq
	}()
	s.catchUpRealTime()
	obj, aerr := rt.h(c)
	if aerr == nil && obj != nil && len(c.expand) > 0 {
		aerr = s.expandObject(obj, c.expand)
	}
	if aerr != nil {
		return aerr.Status, s.errorBody(aerr), aerr.preExec
	}
	var b []byte
	var err error
	if c.r.Method == http.MethodGet {
		b, err = appendJSON(getRespBuf(), obj) // given back by ServeHTTP once written
	} else {
		b, err = marshalJSON(obj) // may be kept (idempotency)
	}
	if err != nil {
		e := apiServerError("An unknown error occurred while encoding the response.")
		return e.Status, s.errorBody(e), false
	}
	return http.StatusOK, b, false
}

// respBufs are the buffers GET answers are encoded into (a list page of
// invoices is ~0.5 MB: growing a new buffer to that size for every page was
// a third of what a page allocated). A GET answer is written and dropped,
// never kept.
var respBufs = sync.Pool{New: func() any { return new([]byte) }}

func getRespBuf() []byte { return (*respBufs.Get().(*[]byte))[:0] }

func putRespBuf(b []byte) {
	if cap(b) > 0 && cap(b) <= 8<<20 {
		respBufs.Put(&b)
	}
}

// requestPairs collects the query string and (for non-GET) the form body.
func requestPairs(r *http.Request) ([][2]string, error) {
	pairs, err := formPairs(r.URL.RawQuery)
	if err != nil {
		return nil, err
	}
	if r.Method == http.MethodGet || r.Body == nil {
		return pairs, nil
	}
	ct := r.Header.Get("Content-Type")
	if ct != "" && !strings.HasPrefix(ct, "application/x-www-form-urlencoded") {
		return nil, fmt.Errorf("unsupported Content-Type %q; Stripe expects application/x-www-form-urlencoded", ct)
	}
	b, err := io.ReadAll(io.LimitReader(r.Body, 1<<20))
	if err != nil {
		return nil, err
	}
	bp, err := formPairs(string(bytes.TrimSpace(b)))
	if err != nil {
		return nil, err
	}
	return append(pairs, bp...), nil
}

// errorBody renders e in Stripe's error JSON. As on Stripe, an error with a
// code links to that code's documentation (doc_url). Under
// Options.RewordErrors the message is replaced by a numbered neutral sentence.
func (s *Server) errorBody(e *apiError) []byte {
	out := *e
	if out.Code != "" && out.DocURL == "" {
		out.DocURL = "https://stripe.com/docs/error-codes/" + strings.ReplaceAll(out.Code, "_", "-")
	}
	if s.opts.RewordErrors {
		out.Message = fmt.Sprintf("Reworded by stripe-sim (message %d); the type, code and param fields tell what happened.",
			s.reworded.Add(1))
	}
	b, _ := json.Marshal(map[string]any{"error": &out})
	return b
}

func (s *Server) writeAPIError(w http.ResponseWriter, e *apiError) {
	writeJSONBytes(w, e.Status, s.errorBody(e))
}

func writeJSONBytes(w http.ResponseWriter, status int, body []byte) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_, _ = w.Write(body)
	_, _ = w.Write([]byte("\n"))
}
