package stripesim

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"sync"
	"time"
)

// Webhook delivery: a single background worker POSTs events in creation
// order. A failed delivery (non-2xx or connection error) is retried with
// exponential backoff (RetryBackoff, doubling, capped at 30s) up to
// MaxDeliveryAttempts without blocking later events. Chaos mode delivers
// every event `copies` times and shuffles each batch of pending deliveries.

const maxRetryBackoff = 30 * time.Second

type delivery struct {
	ev      *event
	attempt int // attempts made so far
	due     time.Time
}

type dispatcher struct {
	s *Server

	mu       sync.Mutex
	url      string
	secret   string
	copies   int
	shuffle  bool
	queue    []*delivery
	inflight int
	changed  chan struct{} // closed and replaced on every state change
	stopped  bool

	wake   chan struct{}
	ctx    context.Context
	cancel context.CancelFunc
	done   chan struct{}
	client *http.Client
}

func newDispatcher(s *Server, url, secret string) *dispatcher {
	ctx, cancel := context.WithCancel(context.Background())
	d := &dispatcher{
		s: s, url: url, secret: secret, copies: 1,
		changed: make(chan struct{}),
		wake:    make(chan struct{}, 1),
		ctx:     ctx, cancel: cancel,
		done:   make(chan struct{}),
		client: &http.Client{Timeout: 15 * time.Second},
	}
	go d.run()
	return d
}

// notifyLocked wakes WaitDeliveries callers. Caller holds d.mu.
func (d *dispatcher) notifyLocked() {
	close(d.changed)
	d.changed = make(chan struct{})
}

func (d *dispatcher) poke() {
	select {
	case d.wake <- struct{}{}:
	default:
	}
}

func (d *dispatcher) enabled() bool {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.url != "" && !d.stopped
}

func (d *dispatcher) enqueue(ev *event) {
	d.mu.Lock()
	if d.stopped {
		d.mu.Unlock()
		return
	}
	now := time.Now()
	for i := 0; i < d.copies; i++ {
		d.queue = append(d.queue, &delivery{ev: ev, due: now})
	}
	d.notifyLocked()
	d.mu.Unlock()
	d.poke()
}

func (d *dispatcher) stop() {
	d.mu.Lock()
	if d.stopped {
		d.mu.Unlock()
		return
	}
	d.stopped = true
	d.queue = nil
	d.notifyLocked()
	d.mu.Unlock()
	d.cancel()
	<-d.done
}

func (d *dispatcher) backoff(attempt int) time.Duration {
	b := d.s.opts.RetryBackoff
	for i := 1; i < attempt && b < maxRetryBackoff; i++ {
		b *= 2
	}
	if b > maxRetryBackoff {
		b = maxRetryBackoff
	}
	return b
}

func (d *dispatcher) run() {
	defer close(d.done)
	for {
		d.mu.Lock()
		if d.stopped {
			d.mu.Unlock()
			return
		}
		now := time.Now()
		var ready, rest []*delivery
		var next time.Time
		for _, dl := range d.queue {
			if !dl.due.After(now) {
				ready = append(ready, dl)
				continue
			}
			rest = append(rest, dl)
			if next.IsZero() || dl.due.Before(next) {
				next = dl.due
			}
		}
		if len(ready) == 0 {
			d.mu.Unlock()
			var timer <-chan time.Time
			var t *time.Timer
			if !next.IsZero() {
				t = time.NewTimer(time.Until(next))
				timer = t.C
			}
			select {
			case <-d.ctx.Done():
			case <-d.wake:
			case <-timer:
			}
			if t != nil {
				t.Stop()
			}
			continue
		}
		d.queue = rest
		d.inflight += len(ready)
		if d.shuffle {
			rand.Shuffle(len(ready), func(i, j int) { ready[i], ready[j] = ready[j], ready[i] })
		}
		url, secret := d.url, d.secret
		d.mu.Unlock()

		for i, dl := range ready {
			if d.ctx.Err() != nil {
				d.mu.Lock()
				d.inflight -= len(ready) - i
				d.notifyLocked()
				d.mu.Unlock()
				return
			}
			ok := url != "" && d.send(url, secret, dl)
			dl.attempt++
			d.mu.Lock()
			d.inflight--
			if !ok && url != "" && dl.attempt < d.s.opts.MaxDeliveryAttempts && !d.stopped {
				dl.due = time.Now().Add(d.backoff(dl.attempt))
				d.queue = append(d.queue, dl)
			} else if !ok && url != "" {
				d.s.log.Warn("stripesim: giving up webhook delivery", "event", dl.ev.ID, "type", dl.ev.typ, "attempts", dl.attempt)
			}
			d.notifyLocked()
			url, secret = d.url, d.secret
			d.mu.Unlock()
		}
	}
}

// signature builds the Stripe-Signature header value for body at time t.
func signature(secret string, t time.Time, body []byte) string {
	mac := hmac.New(sha256.New, []byte(secret))
	fmt.Fprintf(mac, "%d", t.Unix())
	mac.Write([]byte("."))
	mac.Write(body)
	return fmt.Sprintf("t=%d,v1=%s", t.Unix(), hex.EncodeToString(mac.Sum(nil)))
}

func (d *dispatcher) send(url, secret string, dl *delivery) bool {
	req, err := http.NewRequestWithContext(d.ctx, http.MethodPost, url, bytes.NewReader(dl.ev.body))
	if err != nil {
		d.s.log.Warn("stripesim: bad webhook URL", "url", url, "err", err)
		return false
	}
	// The signature timestamp is wall-clock time (not Options.Now or a test
	// clock): receivers check it against their own clock with a tolerance.
	req.Header.Set("Stripe-Signature", signature(secret, time.Now(), dl.ev.body))
	req.Header.Set("Content-Type", "application/json; charset=utf-8")
	req.Header.Set("User-Agent", "Stripe/1.0 (+https://stripe.com/docs/webhooks)")
	req.Header.Set("Cache-Control", "no-cache")
	req.Header.Set("Accept", "*/*; q=0.5, application/xml")
	resp, err := d.client.Do(req)
	if err != nil {
		d.s.log.Info("stripesim: webhook delivery failed", "event", dl.ev.ID, "attempt", dl.attempt+1, "err", err)
		return false
	}
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 1<<20))
	resp.Body.Close()
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		d.s.log.Info("stripesim: webhook receiver answered non-2xx", "event", dl.ev.ID, "attempt", dl.attempt+1, "status", resp.StatusCode)
		return false
	}
	return true
}

// SetWebhookURL changes the delivery target and signing secret. Pending
// deliveries go to the new target; events created while the URL is empty
// are never delivered.
func (s *Server) SetWebhookURL(url, secret string) {
	d := s.hooks
	d.mu.Lock()
	d.url, d.secret = url, secret
	d.notifyLocked()
	d.mu.Unlock()
	d.poke()
}

// SetWebhookChaos makes every future event be delivered `copies` times
// (minimum 1) and, when shuffle is set, each batch of pending deliveries be
// sent in random order.
func (s *Server) SetWebhookChaos(copies int, shuffle bool) {
	if copies < 1 {
		copies = 1
	}
	d := s.hooks
	d.mu.Lock()
	d.copies, d.shuffle = copies, shuffle
	d.mu.Unlock()
}

// WaitDeliveries blocks until no webhook delivery is pending, in flight or
// waiting for a retry, or until ctx is done.
func (s *Server) WaitDeliveries(ctx context.Context) error {
	d := s.hooks
	for {
		d.mu.Lock()
		idle := len(d.queue) == 0 && d.inflight == 0
		ch := d.changed
		d.mu.Unlock()
		if idle {
			return nil
		}
		select {
		case <-ch:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}
