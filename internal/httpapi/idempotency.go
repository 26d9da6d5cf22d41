package httpapi

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"io"
	"net/http"
	"time"

	"github.com/billing-adapter/billing-adapter/internal/promo"
	"github.com/labstack/echo/v4"
)

const (
	headerIdempotencyKey = "Idempotency-Key"
	headerReplayed       = "Idempotent-Replayed"
)

// idempotency makes a mutating request safe to retry (IETF Idempotency-Key
// draft, with Stripe's behaviour):
//   - the header is required (400 when missing or longer than 255 chars);
//   - keys are scoped per API key;
//   - a repeat with the same method, path and body replays the saved status
//     and body with Idempotent-Replayed: true;
//   - a repeat while the first is running gets 409, and the same key with
//     another request 422;
//   - which answers are kept for the configured TTL is saveAnswer's table:
//     as Stripe does, nothing is saved for a request that never began
//     executing (refused while its parameters were checked), and 5xx, 409
//     and 429 answers (failures and "retry later") are not saved either, so
//     a retry runs again and resumes where the failed attempt stopped.
//
// The running attempt holds a lease (IdempotencyLease), so a crashed process
// blocks its key only until the lease ends.
func (s *server) idempotency(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		key := c.Request().Header.Get(headerIdempotencyKey)
		switch {
		case key == "":
			return &promo.Error{Code: promo.CodeIdempotencyKeyNeeded, Param: headerIdempotencyKey,
				Message: "Idempotency-Key header is required on POST and DELETE requests; send a unique value (e.g. a UUID) per operation and reuse it when retrying"}
		case len(key) > MaxIdempotencyKeyLength:
			return &promo.Error{Code: promo.CodeIdempotencyKeyNeeded, Param: headerIdempotencyKey,
				Message: "Idempotency-Key must be at most 255 characters"}
		}
		body, err := io.ReadAll(c.Request().Body)
		if err != nil {
			return err // body limit → 413
		}
		c.Request().Body = io.NopCloser(bytes.NewReader(body))
		name, _ := apiKeyName(c)
		scoped := name + "\x00" + key
		ctx := c.Request().Context()
		begin, err := s.Idempotency.BeginRequest(ctx, scoped, fingerprint(c.Request(), body), s.IdempotencyLease)
		if err != nil {
			return err
		}
		switch begin.Outcome {
		case promo.IdempotencyReplay:
			r := begin.Response
			c.Response().Header().Set(headerReplayed, "true")
			return c.Blob(r.Status, r.ContentType, r.Body)
		case promo.IdempotencyInFlight:
			c.Response().Header().Set("Retry-After", "1")
			return promo.Errorf(promo.CodeIdempotencyInFlight, "a request with this Idempotency-Key is still being processed; retry shortly")
		case promo.IdempotencyMismatch:
			return &promo.Error{Code: promo.CodeIdempotencyMismatch, Param: headerIdempotencyKey,
				Message: "this Idempotency-Key was already used with another request (method, path or body differ); use a new key for a new request"}
		}

		rec := &recorder{ResponseWriter: c.Response().Writer}
		c.Response().Writer = rec
		c.Set(ctxReqKey, scoped)
		tracked, began := promo.TrackExecution(ctx)
		c.SetRequest(c.Request().WithContext(tracked))
		herr := next(c)
		if herr != nil {
			c.Error(herr) // render now so the answer can be recorded
		}
		// Save or drop the record even if the client went away.
		sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
		defer cancel()
		status := c.Response().Status
		if !saveAnswer(status, began()) {
			err = s.Idempotency.AbandonRequest(sctx, scoped, begin.Token)
		} else {
			err = s.Idempotency.CompleteRequest(sctx, scoped, begin.Token, promo.StoredResponse{
				Status: status, ContentType: c.Response().Header().Get(echo.HeaderContentType), Body: rec.body.Bytes(),
			}, s.IdempotencyTTL)
		}
		if err != nil {
			s.log.ErrorContext(ctx, "could not record idempotent response; a retry will run again",
				"request_id", requestID(c), "err", err.Error())
		}
		return nil
	}
}

// saveAnswer reports whether an answer with this status is saved against
// its Idempotency-Key (and replayed to a repeat), given whether the domain
// began executing the operation (promo.Began):
//   - 2xx: saved;
//   - 4xx before the operation began (the body could not be decoded, or a
//     parameter was refused before any state was read: 400 invalid_request):
//     not saved, so the corrected request with the same key simply runs.
//     Refusals made before this middleware (400 for a missing
//     Idempotency-Key, 401, 403 of the scope, 404 and 405 of the route, 413)
//     never create a record in the first place;
//   - 4xx after it began (a refusal decided from state: code_exhausted,
//     code_not_found, customer_mismatch, a 400 from Stripe refusing the
//     write such as an unknown price on subscribe, 404 of an unknown promo
//     code): saved, as Stripe saves the result
//     of an endpoint that began executing;
//   - 409 (idempotency_key_in_use, conflict, already_redeemed_by_customer,
//     subscription_has_promo_code) and 429: not saved: they depend on other
//     requests and mean "try again";
//   - 5xx (502 Stripe failed, 503 Redis unreachable, 500): not saved, so a
//     retry resumes the operation where it stopped (the operation's own
//     state, keyed by the request's key, makes that exactly once). Stripe
//     saves its 500s; here the retry is what repairs the failure.
func saveAnswer(status int, began bool) bool {
	switch {
	case status >= 500, status == http.StatusConflict, status == http.StatusTooManyRequests:
		return false
	case status >= 400:
		return began
	}
	return true
}

// fingerprint identifies a request for idempotency: method, path with query,
// and the body. A JSON body is canonicalized (numbers kept as written, object
// keys sorted, no white space), so the same request encoded differently is
// still the same request.
func fingerprint(r *http.Request, body []byte) string {
	h := sha256.New()
	io.WriteString(h, r.Method+" "+r.URL.RequestURI()+"\n")
	h.Write(canonicalJSON(body))
	return hex.EncodeToString(h.Sum(nil))
}

func canonicalJSON(body []byte) []byte {
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.UseNumber()
	var v any
	if dec.Decode(&v) != nil || dec.More() {
		return body
	}
	out, err := json.Marshal(v)
	if err != nil {
		return body
	}
	return out
}

// recorder keeps a copy of the response body for the idempotency record.
type recorder struct {
	http.ResponseWriter
	body bytes.Buffer
}

func (r *recorder) Write(b []byte) (int, error) {
	r.body.Write(b)
	return r.ResponseWriter.Write(b)
}

func (r *recorder) Unwrap() http.ResponseWriter { return r.ResponseWriter }
