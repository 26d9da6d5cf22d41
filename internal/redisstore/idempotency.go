package redisstore

import (
	"bytes"
	"compress/flate"
	"context"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/billing-adapter/billing-adapter/internal/promo"
)

// beginScript: lua/begin_request.lua.
var beginScript = plainScript("begin_request")

// completeScript: lua/complete_request.lua.
var completeScript = plainScript("complete_request")

// abandonScript: lua/abandon_request.lua.
var abandonScript = plainScript("abandon_request")

// BeginRequest implements promo.IdempotencyStore.
func (s *Store) BeginRequest(ctx context.Context, key, fingerprint string, lease time.Duration) (promo.IdempotencyBegin, error) {
	token := randomToken()
	res, err := beginScript.Run(ctx, s.rdb, []string{idemKey(key), legacyIdemKey(key)}, fingerprint, token,
		lease.Milliseconds()).Slice()
	if err != nil {
		return promo.IdempotencyBegin{}, unavailable(err)
	}
	switch res[0] {
	case "proceed":
		return promo.IdempotencyBegin{Outcome: promo.IdempotencyProceed, Token: token}, nil
	case "mismatch":
		return promo.IdempotencyBegin{Outcome: promo.IdempotencyMismatch}, nil
	case "inflight":
		return promo.IdempotencyBegin{Outcome: promo.IdempotencyInFlight}, nil
	}
	// "d\n<fingerprint>\n<status>\n<encoding>\n<content type>\n<body>"
	f := strings.SplitN(str(res[1]), "\n", 6)
	if len(f) != 6 || f[0] != "d" {
		return promo.IdempotencyBegin{}, unavailable(errors.New("idempotency record: unreadable stored answer"))
	}
	status, _ := strconv.Atoi(f[2])
	body := []byte(f[5])
	if f[3] == encDeflate {
		if body, err = io.ReadAll(flate.NewReader(bytes.NewReader(body))); err != nil {
			return promo.IdempotencyBegin{}, fmt.Errorf("idempotency record: stored body: %w", err)
		}
	}
	return promo.IdempotencyBegin{Outcome: promo.IdempotencyReplay, Response: &promo.StoredResponse{
		Status: status, ContentType: f[4], Body: body,
	}}, nil
}

// encDeflate marks a stored response body compressed with DEFLATE. Bodies
// of at least compressFrom bytes are stored so: an idempotency record is
// kept IDEMPOTENCY_TTL (24 h) per mutating request. The record is one
// STRING (a hash's own overhead was about a third of it).
const (
	encDeflate   = "z"
	compressFrom = 256
)

// deflaters reuses DEFLATE writers: a new one allocates about a megabyte
// of state.
var deflaters = sync.Pool{New: func() any {
	w, _ := flate.NewWriter(io.Discard, flate.BestSpeed)
	return w
}}

// storedBody returns the body as stored and its encoding ("" = as is).
func storedBody(body []byte) ([]byte, string) {
	if len(body) < compressFrom {
		return body, ""
	}
	var buf bytes.Buffer
	buf.Grow(len(body) / 2)
	w := deflaters.Get().(*flate.Writer)
	defer deflaters.Put(w)
	w.Reset(&buf)
	_, _ = w.Write(body)
	if w.Close() != nil || buf.Len() >= len(body) {
		return body, ""
	}
	return buf.Bytes(), encDeflate
}

// CompleteRequest implements promo.IdempotencyStore.
func (s *Store) CompleteRequest(ctx context.Context, key, token string, resp promo.StoredResponse, ttl time.Duration) error {
	body, enc := storedBody(resp.Body)
	return unavailable(completeScript.Run(ctx, s.rdb, []string{idemKey(key)},
		token, resp.Status, resp.ContentType, body, ttl.Milliseconds(), enc).Err())
}

// AbandonRequest implements promo.IdempotencyStore.
func (s *Store) AbandonRequest(ctx context.Context, key, token string) error {
	return unavailable(abandonScript.Run(ctx, s.rdb, []string{idemKey(key)}, token).Err())
}

func str(v any) string {
	s, _ := v.(string)
	return s
}
