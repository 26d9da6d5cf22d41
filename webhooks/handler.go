// Package webhooks receives Stripe's events: it reads the raw body within a
// size limit, verifies the Stripe-Signature against every configured secret
// (rotation), deduplicates by event ID across replicas, and hands the events
// it understands to the domain's promo.Observer, which records what Stripe reports.
//
// Delivery is at least once; the effect is exactly once. Each event is
// claimed in Redis before it is applied and marked done after, so repeats
// (sequential or concurrent, on any replica) are acknowledged without effect.
// A failed handler releases the claim and the delivery fails, so Stripe
// retries. Observing is idempotent and order-safe, so an event applied
// twice (a crash after the effect, before the done mark) or out of order
// changes nothing more.
//
// Handler.Receive writes the 200 answers (processed, duplicate, or of a type
// the service ignores) and returns every refusal and failure as a
// *promo.Error, which the HTTP layer writes in the API's error shape with its
// one error→status table: 400 bad or missing signature, malformed JSON, an
// object whose fields do not parse (param names the field; nothing stored);
// 409 the same event is being processed by another delivery right now; 413
// body over MaxBody; 503 Redis unavailable (with Retry-After), 502 Stripe
// failed, 500 anything else. Stripe retries every non-2xx answer.
package webhooks

import (
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"net/http"
	"time"

	"github.com/billing-adapter/billing-adapter/internal/bodybuf"
	"github.com/billing-adapter/billing-adapter/internal/jsonerr"
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

// Handler is the POST /webhooks/stripe endpoint (see Receive).
type Handler struct {
	Secrets  []string // whsec_ secrets; a delivery is accepted when any one verifies it
	Events   promo.EventStore
	Observer *promo.Observer
	Clock    promo.Clock
	Log      *slog.Logger
	// Metrics, when set, counts deliveries by event type and result and
	// observes the lag from the event's created to its processing.
	Metrics Metrics
}

// Metrics receives one observation per delivery. eventType is one of the
// handled types, "other" for a type the service ignores, or "unknown" when
// the delivery was refused before the event could be read; result is
// processed, duplicate, ignored, in_flight, failed or rejected.
type Metrics interface {
	ObserveWebhook(eventType, result string, lag time.Duration)
}

func (h *Handler) observe(eventType, result string, lag time.Duration) {
	if h.Metrics != nil {
		h.Metrics.ObserveWebhook(eventType, result, lag)
	}
}

// Receive handles one delivery of POST /webhooks/stripe. It writes the 200
// answers itself and returns refusals and failures (*promo.Error, or an
// internal error) for the API's error writer.
func (h *Handler) Receive(w http.ResponseWriter, r *http.Request) error {
	eventType, result, lag := "unknown", "rejected", time.Duration(-1)
	defer func() { h.observe(eventType, result, lag) }()
	if r.ContentLength > MaxBody {
		return errTooLarge()
	}
	buf := bodybuf.Get() // nothing decoded from a body refers to its bytes (encoding/json copies them)
	defer bodybuf.Put(buf)
	body, err := bodybuf.Read(buf, r.Body, r.ContentLength, MaxBody)
	if err != nil {
		return promo.Errorf(promo.CodeInvalidRequest, "the request body could not be read")
	}
	if len(body) > MaxBody {
		return errTooLarge()
	}
	ctx := r.Context()
	if err := Verify(body, r.Header.Get("Stripe-Signature"), h.Secrets, h.Clock.Now()); err != nil {
		h.Log.WarnContext(ctx, "webhook refused: bad signature", "reason", err.Error())
		return &promo.Error{Code: promo.CodeInvalidRequest, Param: "Stripe-Signature",
			Message: "signature verification failed: " + err.Error()}
	}
	var processed Result
	processed, err = h.Process(ctx, body)
	eventType, result, lag = processed.EventType, processed.Outcome, processed.Lag
	if err != nil {
		return err
	}
	switch result {
	case "ignored":
		answerJSON(w, http.StatusOK, answerIgnored)
	case "duplicate":
		answerJSON(w, http.StatusOK, answerDuplicate)
	default:
		answerJSON(w, http.StatusOK, answerReceived)
	}
	return nil
}

// Result is what Process did with one event: its type for the metrics
// ("other" for a type the service ignores, "unknown" when it could not be
// read), the outcome (processed, duplicate, ignored, in_flight, failed or
// rejected) and, when processed, the lag from its creation.
type Result struct {
	EventType, Outcome string
	Lag                time.Duration
}

// Process applies one authenticated event (the body as Stripe sends it):
// the part of a delivery after its signature, shared by the receiver and by
// `reconcile -events` (events read back from Stripe's Events API). An event
// is applied once across every delivery and replay (deduplicated by its ID
// in Redis); a failure releases its claim so the next delivery applies it.
// The error is a refusal or failure for the API's error writer.
func (h *Handler) Process(ctx context.Context, body []byte) (Result, error) {
	res := Result{EventType: "unknown", Outcome: "rejected", Lag: -1}
	ev, err := decodeEvent(body)
	if err != nil {
		return res, err
	}
	log := eventLog{h.Log, ev.ID, ev.Type}
	handle, known := handlers[ev.Type]
	res.EventType = "other"
	if known {
		res.EventType = ev.Type
	}
	if !known {
		res.Outcome = "ignored"
		log.log(ctx, slog.LevelDebug, "webhook event type ignored")
		return res, nil
	}
	if ev.APIVersion != APIVersion {
		log.log(ctx, slog.LevelWarn, "webhook event from another Stripe API version; processing it if its fields parse (create the endpoint with API version "+APIVersion+")",
			slog.String("api_version", ev.APIVersion))
	}

	outcome, token, err := h.Events.BeginEvent(ctx, ev.ID, claimLease)
	res.Outcome = "failed"
	switch {
	case err != nil:
		log.log(ctx, slog.LevelError, "webhook not processed: cannot record the event", slog.String("err", err.Error()))
		return res, err // Redis unavailable: 503
	case outcome == promo.EventDone:
		res.Outcome = "duplicate"
		return res, nil
	case outcome == promo.EventInFlight:
		res.Outcome = "in_flight"
		return res, promo.Errorf(promo.CodeConflict, "this event is being processed by another delivery; retry later")
	}

	pctx, cancel := context.WithTimeout(ctx, processTimeout)
	defer cancel()
	if err := handle(pctx, h.Observer, ev); err != nil {
		h.abort(ctx, log, ev.ID, token) // Stripe's retry applies it once
		var bad errUnprocessable
		if errors.As(err, &bad) {
			log.log(ctx, slog.LevelError, "webhook event cannot be read", slog.String("err", err.Error()))
			return res, promo.Invalid(bad.param, "%s event %s cannot be read: %s", ev.Type, ev.ID, bad.msg)
		}
		log.log(ctx, slog.LevelError, "webhook processing failed; Stripe will retry", slog.String("err", err.Error()))
		return res, err
	}
	if err := h.Events.FinishEvent(context.WithoutCancel(ctx), ev.ID, token, promo.EventKeep); err != nil {
		// The effect is in place and idempotent: a redelivery changes nothing.
		log.log(ctx, slog.LevelWarn, "could not mark the event done", slog.String("err", err.Error()))
	}
	log.log(ctx, slog.LevelInfo, "webhook processed")
	// A clock skew (or a Stripe test clock ahead of ours) makes a negative
	// lag: counted as 0.
	res.Outcome, res.Lag = "processed", max(0, h.Clock.Now().Sub(created(ev)))
	return res, nil
}

func errTooLarge() error {
	return promo.Errorf(promo.CodeBodyTooLarge, "the webhook body is larger than 512 KiB")
}

// decodeEnvelope reads the event's envelope; a refusal is a 400 naming the
// field.
func decodeEnvelope(body []byte) (*envelope, error) {
	var ev envelope
	if err := json.Unmarshal(body, &ev); err != nil {
		field, msg := jsonerr.Explain(err, &ev, "")
		if field == "" {
			return nil, promo.Errorf(promo.CodeInvalidRequest, "the body is not a Stripe event: it %s", msg)
		}
		return nil, promo.Invalid(field, "the body is not a Stripe event: %s", msg)
	}
	switch {
	case ev.ID == "":
		return nil, promo.Invalid("id", "the body is not a Stripe event: id is missing")
	case ev.Type == "":
		return nil, promo.Invalid("type", "the body is not a Stripe event: type is missing")
	}
	return &ev, nil
}

func (h *Handler) abort(ctx context.Context, log eventLog, id, token string) {
	if err := h.Events.AbortEvent(context.WithoutCancel(ctx), id, token); err != nil {
		log.log(ctx, slog.LevelWarn, "could not release the event; it is retried after its claim ends", slog.String("err", err.Error()))
	}
}

// eventLog writes the lines about one event: the handler's logger with the
// event's event_id and event_type first, as Logger.With would put them, but
// added to each line written instead of formatted into a new handler for
// every event (most events write one line, or none).
type eventLog struct {
	l       *slog.Logger
	id, typ string
}

func (e eventLog) log(ctx context.Context, level slog.Level, msg string, attrs ...slog.Attr) {
	if !e.l.Enabled(ctx, level) {
		return
	}
	var buf [4]slog.Attr
	e.l.LogAttrs(ctx, level, msg, append(append(buf[:0], slog.String("event_id", e.id), slog.String("event_type", e.typ)), attrs...)...)
}

// The answers to accepted deliveries, encoded once (as json.Encoder writes
// them: sorted keys, a newline).
var (
	answerReceived  = mustJSON(map[string]any{"received": true})
	answerDuplicate = mustJSON(map[string]any{"received": true, "duplicate": true})
	answerIgnored   = mustJSON(map[string]any{"received": true, "ignored": true})
)

func mustJSON(v any) []byte {
	b, err := json.Marshal(v)
	if err != nil {
		panic(err)
	}
	return append(b, '\n')
}

func answerJSON(w http.ResponseWriter, status int, body []byte) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_, _ = w.Write(body)
}
