// Package webhooks receives Stripe's events: it reads the raw body within a
// size limit, verifies the Stripe-Signature against every configured secret
// (rotation), deduplicates by event ID across replicas, and hands the events
// it understands to the domain's promo.Observer, which records what Stripe reports.
//
// Delivery is at least once; the effect is exactly once. Each event is
// claimed in Redis before it is applied and marked done after, so repeats
// (sequential or concurrent, on any replica) are acknowledged without effect.
// A failed handler releases the claim and answers 500, and Stripe retries.
// Observing is idempotent and order-safe, so an event applied
// twice (a crash after the effect, before the done mark) or out of order
// changes nothing more.
//
// Answers: 200 processed, duplicate, or of a type the service ignores; 400
// bad or missing signature, malformed JSON, an object whose fields do not
// parse (nothing stored); 405 not a POST; 409 the same event is being
// processed by another delivery right now (Stripe retries); 413 body over
// MaxBody; 500 processing failed (Redis or Stripe unavailable; retried).
package webhooks

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"time"

	"github.com/billing-adapter/billing-adapter/internal/promo"
)

const (
	// MaxBody caps a webhook body; Stripe's events are far smaller.
	MaxBody = 512 << 10
	// APIVersion is the Stripe API version the handlers are written for.
	APIVersion = "2023-10-16"
	// processTimeout bounds one event's processing; the dedup claim lasts a
	// little longer, so a crashed replica's claim ends soon after.
	processTimeout = 30 * time.Second
	claimLease     = processTimeout + 10*time.Second
)

// Handler is the POST /webhooks/stripe endpoint.
type Handler struct {
	Secrets  []string // whsec_ secrets; a delivery is accepted when any one verifies it
	Events   promo.EventStore
	Observer *promo.Observer
	Clock    promo.Clock
	Log      *slog.Logger
}

func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodPost {
		w.Header().Set("Allow", http.MethodPost)
		answer(w, http.StatusMethodNotAllowed, "method not allowed")
		return
	}
	if r.ContentLength > MaxBody {
		answer(w, http.StatusRequestEntityTooLarge, "body larger than 512 KiB")
		return
	}
	body, err := readBody(r.Body, r.ContentLength)
	if err != nil {
		answer(w, http.StatusBadRequest, "could not read the body")
		return
	}
	if len(body) > MaxBody {
		answer(w, http.StatusRequestEntityTooLarge, "body larger than 512 KiB")
		return
	}
	ctx := r.Context()
	if err := Verify(body, r.Header.Get("Stripe-Signature"), h.Secrets, h.Clock.Now()); err != nil {
		h.Log.WarnContext(ctx, "webhook refused: bad signature", "reason", err.Error())
		answer(w, http.StatusBadRequest, "signature verification failed: "+err.Error())
		return
	}
	var ev envelope
	if err := json.Unmarshal(body, &ev); err != nil || ev.ID == "" || ev.Type == "" {
		answer(w, http.StatusBadRequest, "body is not a Stripe event")
		return
	}
	log := h.Log.With("event_id", ev.ID, "event_type", ev.Type)
	handle, known := handlers[ev.Type]
	if !known {
		log.DebugContext(ctx, "webhook event type ignored")
		answerJSON(w, http.StatusOK, map[string]any{"received": true, "ignored": true})
		return
	}
	if ev.APIVersion != APIVersion {
		log.WarnContext(ctx, "webhook event from another Stripe API version; processing it if its fields parse (create the endpoint with API version "+APIVersion+")",
			"api_version", ev.APIVersion)
	}

	outcome, token, err := h.Events.BeginEvent(ctx, ev.ID, claimLease)
	switch {
	case err != nil:
		log.ErrorContext(ctx, "webhook not processed: cannot record the event", "err", err.Error())
		answer(w, http.StatusInternalServerError, "temporarily unable to process the event")
		return
	case outcome == promo.EventDone:
		answerJSON(w, http.StatusOK, map[string]any{"received": true, "duplicate": true})
		return
	case outcome == promo.EventInFlight:
		answer(w, http.StatusConflict, "this event is being processed by another delivery")
		return
	}

	pctx, cancel := context.WithTimeout(ctx, processTimeout)
	defer cancel()
	if err := handle(pctx, h.Observer, &ev); err != nil {
		h.abort(ctx, log, ev.ID, token)
		var bad errUnprocessable
		if errors.As(err, &bad) {
			log.ErrorContext(ctx, "webhook event cannot be read", "err", err.Error())
			answer(w, http.StatusBadRequest, bad.Error())
			return
		}
		log.ErrorContext(ctx, "webhook processing failed; Stripe will retry", "err", err.Error())
		answer(w, http.StatusInternalServerError, "processing failed; retry later")
		return
	}
	if err := h.Events.FinishEvent(context.WithoutCancel(ctx), ev.ID, token, promo.EventKeep); err != nil {
		// The effect is in place and idempotent: a redelivery changes nothing.
		log.WarnContext(ctx, "could not mark the event done", "err", err.Error())
	}
	log.InfoContext(ctx, "webhook processed")
	answerJSON(w, http.StatusOK, map[string]any{"received": true})
}

// readBody reads at most MaxBody+1 bytes of the body. With a known length
// it reads into one buffer of that size (io.ReadAll would grow its buffer
// step by step, allocating about four times the body).
func readBody(body io.Reader, length int64) ([]byte, error) {
	var buf bytes.Buffer
	if length > 0 && length <= MaxBody {
		buf.Grow(int(length) + bytes.MinRead) // room for the whole body and the read that sees EOF
	}
	_, err := buf.ReadFrom(io.LimitReader(body, MaxBody+1))
	return buf.Bytes(), err
}

func (h *Handler) abort(ctx context.Context, log *slog.Logger, id, token string) {
	if err := h.Events.AbortEvent(context.WithoutCancel(ctx), id, token); err != nil {
		log.WarnContext(ctx, "could not release the event; it is retried after its claim ends", "err", err.Error())
	}
}

func answer(w http.ResponseWriter, status int, msg string) {
	answerJSON(w, status, map[string]any{"error": map[string]string{"message": msg}})
}

func answerJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}
