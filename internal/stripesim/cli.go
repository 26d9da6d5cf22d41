package stripesim

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"sync"
	"time"

	"github.com/coder/websocket"
)

// The Stripe CLI's own protocol, so that the real `stripe listen` works
// offline against the simulator (as read in stripe/stripe-cli: pkg/stripeauth,
// pkg/websocket, pkg/proxy):
//
//  1. `stripe listen --api-base http://SIM --api-key sk_test_...` POSTs
//     /v1/stripecli/sessions (device_name, websocket_features[], forward_to_url, ...)
//     and gets a session: websocket_url, websocket_id,
//     websocket_authorized_feature, reconnect_delay, secret (whsec_...),
//     default_version.
//  2. It dials websocket_url?websocket_feature=FEATURE with the header
//     Websocket-Id and the subprotocol stripecli-devproxy-v1 (no API key). An
//     unknown ID is refused with {"error":{"message":"Unknown WebSocket ID."}},
//     after which the CLI creates a new session.
//  3. Every event recorded after the session was created is sent as a
//     {"type":"webhook_event", "event_payload": <the event JSON>,
//     "http_headers": {"Stripe-Signature": ...}, "endpoint":{"api_version":null},
//     "webhook_id", "webhook_conversation_id"} message, signed with the
//     session's secret exactly as a webhook endpoint's deliveries are. The CLI
//     forwards the payload with those headers, and answers with "event_ack" and
//     "webhook_response" messages. --events filtering happens in the CLI, as it
//     does against Stripe.
//  4. The CLI drops and redials the connection every reconnect_delay seconds,
//     and redials at once when the server closes it. Events recorded while no
//     connection is open wait in the session and are sent on the next one, so a
//     reconnect loses nothing.
//
// The signing secret is one per device name and stays the same across sessions
// and (with a state file) restarts, as Stripe's CLI secret does, unless
// Options.CLIWebhookSecret sets one for every device. Webhook endpoints set
// with Options.WebhookURL keep receiving every event as well.

const (
	cliWebSocketPath    = "/stripecli/websocket"
	cliSubprotocol      = "stripecli-devproxy-v1"
	cliFeature          = "webhook-payloads"
	cliUnknownIDMessage = "Unknown WebSocket ID."
	// cliSessionLimit bounds the sessions kept; the oldest is dropped first
	// (its CLI re-authorizes, as after a Stripe session expiry).
	cliSessionLimit = 64
	// cliQueueLimit bounds the events kept for a session with no connection.
	cliQueueLimit = 10000
	// cliSessionIdle is how long a session without a connection lives (a
	// `--print-secret` session never connects).
	cliSessionIdle = 10 * time.Minute
)

type cliHub struct {
	mu       sync.Mutex
	secrets  map[string]string // device name -> whsec_ (part of the persisted state)
	sessions map[string]*cliSession
	order    []string // session IDs, oldest first
	changed  chan struct{}
	// acks and responses count the CLI's event_ack and webhook_response
	// messages (for tests and /_sim/cli).
	acks      int
	responses map[int]int // status -> count
}

type cliSession struct {
	id, secret, device string
	queue              [][]byte // events (full JSON) not yet written to a connection
	wake               chan struct{}
	conns              map[*websocket.Conn]context.CancelFunc
	connected          bool      // a CLI connected at least once
	idleSince          time.Time // when its last connection closed (or it was made)
}

func newCLIHub() *cliHub {
	return &cliHub{
		secrets:   map[string]string{},
		sessions:  map[string]*cliSession{},
		changed:   make(chan struct{}),
		responses: map[int]int{},
	}
}

func (h *cliHub) notifyLocked() {
	close(h.changed)
	h.changed = make(chan struct{})
}

// secretFor returns the device's signing secret, making one on first use.
func (h *cliHub) secretFor(device, override string) string {
	if override != "" {
		return override
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	sec, ok := h.secrets[device]
	if !ok {
		sec = "whsec_" + randomString(32, idAlphabet)
		h.secrets[device] = sec
	}
	return sec
}

func (h *cliHub) newSession(device, secret string) *cliSession {
	h.mu.Lock()
	defer h.mu.Unlock()
	cs := &cliSession{id: newID("wsid"), secret: secret, device: device,
		wake: make(chan struct{}, 1), conns: map[*websocket.Conn]context.CancelFunc{}, idleSince: time.Now()}
	h.sessions[cs.id] = cs
	h.order = append(h.order, cs.id)
	for len(h.order) > cliSessionLimit {
		old := h.sessions[h.order[0]]
		h.order = h.order[1:]
		delete(h.sessions, old.id)
		for _, cancel := range old.conns {
			cancel()
		}
	}
	return cs
}

// publish queues an event for every session. Called with s.mu held, in event
// order.
func (h *cliHub) publish(body []byte) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.pruneLocked(time.Now())
	for _, cs := range h.sessions {
		if len(cs.queue) >= cliQueueLimit {
			cs.queue = cs.queue[1:]
		}
		cs.queue = append(cs.queue, body)
		select {
		case cs.wake <- struct{}{}:
		default:
		}
	}
}

// pruneLocked forgets sessions idle for longer than cliSessionIdle (their
// CLI, if any, is told the ID is unknown and makes a new session).
func (h *cliHub) pruneLocked(now time.Time) {
	keep := h.order[:0]
	for _, id := range h.order {
		cs := h.sessions[id]
		if len(cs.conns) == 0 && now.Sub(cs.idleSince) > cliSessionIdle {
			delete(h.sessions, id)
			continue
		}
		keep = append(keep, id)
	}
	h.order = keep
}

// dropConnections closes every open CLI websocket (the sessions stay), as a
// network cut or a Stripe-side close would.
func (h *cliHub) dropConnections() int {
	h.mu.Lock()
	defer h.mu.Unlock()
	n := 0
	for _, cs := range h.sessions {
		for _, cancel := range cs.conns {
			cancel()
			n++
		}
	}
	return n
}

func (h *cliHub) closeAll() {
	h.mu.Lock()
	defer h.mu.Unlock()
	for _, cs := range h.sessions {
		for _, cancel := range cs.conns {
			cancel()
		}
	}
	h.sessions = map[string]*cliSession{}
	h.order = nil
}

// CLIStats is what the connected Stripe CLIs answered.
type CLIStats struct {
	Sessions    int         `json:"sessions"`
	Connections int         `json:"connections"`
	Pending     int         `json:"pending"`   // events not yet written to a CLI that has connected
	Acks        int         `json:"acks"`      // event_ack messages received
	Responses   map[int]int `json:"responses"` // webhook_response messages by the forward target's status
}

// CLIStats reports the Stripe CLI sessions and what their CLIs answered.
func (s *Server) CLIStats() CLIStats {
	h := s.cli
	h.mu.Lock()
	defer h.mu.Unlock()
	st := CLIStats{Sessions: len(h.sessions), Acks: h.acks, Responses: map[int]int{}}
	for _, cs := range h.sessions {
		st.Connections += len(cs.conns)
		if cs.connected {
			st.Pending += len(cs.queue)
		}
	}
	for k, v := range h.responses {
		st.Responses[k] = v
	}
	return st
}

// WaitCLI blocks until cond holds for the CLI stats, or ctx is done.
func (s *Server) WaitCLI(ctx context.Context, cond func(CLIStats) bool) error {
	for {
		s.cli.mu.Lock()
		ch := s.cli.changed
		s.cli.mu.Unlock()
		if cond(s.CLIStats()) {
			return nil
		}
		select {
		case <-ch:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

// ExpireCLISessions forgets every Stripe CLI session and closes its
// connections, as Stripe does when a session expires: the CLI's redial is
// refused with "Unknown WebSocket ID." and it authorizes a new session (its
// Ready! line shows again). Events recorded before the new session are not
// sent to it. It returns how many sessions were forgotten.
func (s *Server) ExpireCLISessions() int {
	h := s.cli
	h.mu.Lock()
	n := len(h.sessions)
	h.mu.Unlock()
	h.closeAll()
	h.mu.Lock()
	h.notifyLocked()
	h.mu.Unlock()
	return n
}

// DropCLIConnections closes every Stripe CLI websocket; the CLIs redial and
// receive what was recorded meanwhile. It returns how many were closed.
func (s *Server) DropCLIConnections() int { return s.cli.dropConnections() }

var cliSessionSchema = newSchema([]string{"device_name", "websocket_features[#]", "filters",
	"forward_to_url", "forward_connect_to_url", "forward_thin_to_url", "forward_thin_connect_to_url"}, nil, nil)

func hCLISessionCreate(c *reqCtx) (map[string]any, *apiError) {
	if err := c.check(cliSessionSchema); err != nil {
		return nil, err
	}
	device := c.p.strOr("", "device_name")
	feats, err := c.p.strList("websocket_features")
	if err != nil {
		return nil, err
	}
	for _, f := range feats {
		if f != "webhooks" {
			return nil, invalidParam("websocket_features", "The simulator serves only the webhooks feature, not %q.", f)
		}
	}
	s := c.s
	cs := s.cli.newSession(device, s.cli.secretFor(device, s.opts.CLIWebhookSecret))
	scheme := "ws"
	if c.r.TLS != nil {
		scheme = "wss"
	}
	reconnect := int(s.opts.CLIReconnectDelay / time.Second)
	if reconnect <= 0 {
		reconnect = 60
	}
	return map[string]any{
		"display_connect_filter_warning": false,
		"reconnect_delay":                reconnect,
		"secret":                         cs.secret,
		"websocket_authorized_feature":   cliFeature,
		"websocket_id":                   cs.id,
		"websocket_url":                  scheme + "://" + c.r.Host + cliWebSocketPath,
		"default_version":                apiVersion,
		"latest_version":                 apiVersion,
		"device_token":                   "",
	}, nil
}

func init() {
	addRoute("POST", "/v1/stripecli/sessions", hCLISessionCreate)
}

// serveCLIWebsocket serves one Stripe CLI connection.
func (s *Server) serveCLIWebsocket(w http.ResponseWriter, r *http.Request) {
	h := s.cli
	h.mu.Lock()
	cs := h.sessions[r.Header.Get("Websocket-Id")]
	h.mu.Unlock()
	if cs == nil {
		// The CLI recognizes this exact message (pkg/websocket) and authorizes a
		// new session, so it is never reworded (Options.RewordErrors).
		b, _ := json.Marshal(map[string]any{"error": map[string]any{"type": typeInvalidRequest, "message": cliUnknownIDMessage}})
		writeJSONBytes(w, http.StatusBadRequest, b)
		return
	}
	conn, err := websocket.Accept(w, r, &websocket.AcceptOptions{Subprotocols: []string{cliSubprotocol}})
	if err != nil {
		s.log.Info("stripesim: CLI websocket handshake failed", "err", err)
		return
	}
	conn.SetReadLimit(1 << 20)
	ctx, cancel := context.WithCancel(r.Context())
	defer cancel()
	h.mu.Lock()
	cs.conns[conn] = cancel
	cs.connected = true
	h.notifyLocked()
	h.mu.Unlock()
	s.log.Info("stripesim: Stripe CLI connected", "websocket_id", cs.id, "device", cs.device)
	defer func() {
		h.mu.Lock()
		delete(cs.conns, conn)
		cs.idleSince = time.Now()
		h.notifyLocked()
		h.mu.Unlock()
		_ = conn.CloseNow()
	}()
	go func() {
		select {
		case <-ctx.Done():
		case <-s.closed:
			cancel()
		}
	}()
	go s.readCLI(ctx, cancel, conn)

	for {
		h.mu.Lock()
		var next []byte
		if len(cs.queue) > 0 {
			next = cs.queue[0]
		}
		h.mu.Unlock()
		if next == nil {
			select {
			case <-ctx.Done():
				_ = conn.Close(websocket.StatusGoingAway, "")
				return
			case <-cs.wake:
				continue
			}
		}
		msg, err := s.cliMessage(cs, next)
		if err == nil {
			wctx, wcancel := context.WithTimeout(ctx, 10*time.Second)
			err = conn.Write(wctx, websocket.MessageText, msg)
			wcancel()
		}
		if err != nil {
			// The event stays queued for the next connection.
			return
		}
		h.mu.Lock()
		if len(cs.queue) > 0 && &cs.queue[0][0] == &next[0] {
			cs.queue = cs.queue[1:]
		}
		h.notifyLocked()
		h.mu.Unlock()
	}
}

// cliMessage wraps an event for the CLI, signed now with the session secret.
func (s *Server) cliMessage(cs *cliSession, body []byte) ([]byte, error) {
	return json.Marshal(map[string]any{
		"type":                    "webhook_event",
		"webhook_id":              newID("we"),
		"webhook_conversation_id": newID("wc"),
		"event_payload":           string(body),
		"endpoint":                map[string]any{"api_version": nil},
		"http_headers": map[string]string{
			"Stripe-Signature": signature(cs.secret, time.Now(), body),
			"Content-Type":     "application/json; charset=utf-8",
			"User-Agent":       "Stripe/1.0 (+https://stripe.com/docs/webhooks)",
			"Cache-Control":    "no-cache",
			"Accept":           "*/*; q=0.5, application/xml",
		},
	})
}

// readCLI reads the CLI's acks and responses (reading also answers its pings).
func (s *Server) readCLI(ctx context.Context, cancel context.CancelFunc, conn *websocket.Conn) {
	defer cancel()
	for {
		_, data, err := conn.Read(ctx)
		if err != nil {
			if !errors.Is(err, context.Canceled) && websocket.CloseStatus(err) == -1 {
				s.log.Debug("stripesim: CLI websocket read", "err", err)
			}
			return
		}
		var m struct {
			Type   string `json:"type"`
			Status int    `json:"status"`
		}
		if json.Unmarshal(data, &m) != nil {
			continue
		}
		h := s.cli
		h.mu.Lock()
		switch m.Type {
		case "event_ack":
			h.acks++
		case "webhook_response":
			h.responses[m.Status]++
		}
		h.notifyLocked()
		h.mu.Unlock()
	}
}
