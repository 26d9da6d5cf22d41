package promo

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"time"
)

// StoredResponse is the answer saved for an idempotency key and replayed to
// retries.
type StoredResponse struct {
	Status      int    `json:"status"`
	ContentType string `json:"content_type"`
	Body        []byte `json:"body"`
}

// IdempotencyOutcome is what BeginRequest decided.
type IdempotencyOutcome int

const (
	IdempotencyProceed  IdempotencyOutcome = iota // first sight (or a failed/expired attempt): run it
	IdempotencyReplay                             // finished before: replay Response
	IdempotencyInFlight                           // the same request is running now
	IdempotencyMismatch                           // the key was used for another request
)

// IdempotencyBegin is the answer of BeginRequest. Token identifies this
// attempt's lease and must be passed to Complete or Abandon.
type IdempotencyBegin struct {
	Outcome  IdempotencyOutcome
	Token    string
	Response *StoredResponse
}

// IdempotencyStore keeps one record per (API key, Idempotency-Key).
type IdempotencyStore interface {
	// BeginRequest starts an attempt holding a lease; a crashed attempt's
	// lease ends and the key can be retried then.
	BeginRequest(ctx context.Context, key, fingerprint string, lease time.Duration) (IdempotencyBegin, error)
	// CompleteRequest saves the response for ttl if token still holds the lease.
	CompleteRequest(ctx context.Context, key, token string, resp StoredResponse, ttl time.Duration) error
	// AbandonRequest drops the attempt so that a retry runs again.
	AbandonRequest(ctx context.Context, key, token string) error
}

// StripeKey derives the idempotency key of one outbound Stripe call from the
// inbound request key and the step, so that a retry of the request makes the
// same Stripe call and Stripe replays instead of creating a second object.
// The inbound key is hashed: it never reaches Stripe or the logs.
func StripeKey(requestKey, step string) string {
	h := sha256.Sum256([]byte(requestKey + "\x00" + step))
	return "ba-" + hex.EncodeToString(h[:20])
}
