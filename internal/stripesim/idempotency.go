package stripesim

import (
	"fmt"
	"net/http"
	"sync"
	"time"
)

// Idempotency follows https://stripe.com/docs/api/idempotent_requests:
// keys are scoped per secret key; a result is saved once the endpoint began
// executing (including errors raised while executing and 500s); requests
// that failed parameter validation, were rejected by authentication or by a
// pre-execution fault, or conflicted with a concurrent request save nothing.
// A saved result is replayed for 24 hours to requests with the same
// parameters; different parameters get an idempotency_error.

type idemEntry struct {
	fp      string
	done    bool
	status  int
	body    []byte
	reqID   string
	created time.Time
}

type idempotencyStore struct {
	mu        sync.Mutex
	m         map[string]*idemEntry
	lastPrune time.Time
}

func idemMapKey(apiKey, key string) string { return apiKey + "\x00" + key }

// begin registers a request. It returns either a new running entry, a saved
// entry to replay, or an error (409 in progress / 400 mismatch).
func (st *idempotencyStore) begin(apiKey, key, fp, reqID string) (*idemEntry, *idemEntry, *apiError) {
	st.mu.Lock()
	defer st.mu.Unlock()
	now := time.Now()
	if now.Sub(st.lastPrune) > time.Minute {
		for k, e := range st.m {
			if e.done && now.Sub(e.created) > 24*time.Hour {
				delete(st.m, k)
			}
		}
		st.lastPrune = now
	}
	mk := idemMapKey(apiKey, key)
	if e, ok := st.m[mk]; ok {
		if !e.done {
			return nil, nil, &apiError{Status: http.StatusConflict, Type: typeIdempotency, Code: "idempotency_key_in_use",
				Message: "There is currently another in-progress request using this Stripe API key and idempotency key (the original request is currently being processed). Please try again later."}
		}
		if e.fp != fp {
			return nil, nil, &apiError{Status: http.StatusBadRequest, Type: typeIdempotency,
				Message: fmt.Sprintf("Keys for idempotent requests can only be used with the same parameters they were first used with. Try using a key other than '%s' if you meant to execute a different request.", key)}
		}
		return nil, e, nil
	}
	e := &idemEntry{fp: fp, reqID: reqID, created: now}
	st.m[mk] = e
	return e, nil, nil
}

func (st *idempotencyStore) finish(apiKey, key string, status int, body []byte) {
	st.mu.Lock()
	defer st.mu.Unlock()
	if e, ok := st.m[idemMapKey(apiKey, key)]; ok {
		e.done, e.status, e.body = true, status, body
	}
}

func (st *idempotencyStore) abandon(apiKey, key string) {
	st.mu.Lock()
	defer st.mu.Unlock()
	delete(st.m, idemMapKey(apiKey, key))
}
