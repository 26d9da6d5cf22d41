package stripesim

import (
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"time"
)

// FaultKind selects what an injected fault does.
type FaultKind string

const (
	// FaultServerError answers 500 api_error before executing; nothing is
	// saved for idempotency, so a retry with the same key executes.
	FaultServerError FaultKind = "server_error"
	// FaultRateLimit answers 429 with code rate_limit before executing.
	FaultRateLimit FaultKind = "rate_limit"
	// FaultLockTimeout answers 429 with code lock_timeout before executing.
	FaultLockTimeout FaultKind = "lock_timeout"
	// FaultHang sleeps Delay (default 60s; cut short when the client goes
	// away or the server closes) and then answers 500 without executing.
	FaultHang FaultKind = "hang"
	// FaultCommitThenError executes the operation for real (objects are
	// created or updated and events emitted) and then answers 500. The
	// saved idempotent result is that 500, which a retry with the same key
	// replays, as real Stripe does.
	FaultCommitThenError FaultKind = "commit_then_500"
	// FaultCommitThenHang executes the operation for real and then hangs
	// like FaultHang before answering 500: the client never learns the
	// outcome (a process killed mid-call, a timeout after Stripe committed).
	FaultCommitThenHang FaultKind = "commit_then_hang"
)

// Fault makes the next Count requests matching Method and Path fail, after
// letting the first Skip of them through.
// Injected fault responses carry Stripe-Should-Retry: false so stripe-go's
// automatic retries do not hide them.
type Fault struct {
	Kind   FaultKind     `json:"kind"`
	Method string        `json:"method,omitempty"` // "" = any method
	Path   string        `json:"path,omitempty"`   // URL path prefix; "" = any
	Count  int           `json:"count,omitempty"`  // next N matching requests; <=0 means 1
	Skip   int           `json:"skip,omitempty"`   // matching requests to let through first
	Delay  time.Duration `json:"delay,omitempty"`  // for FaultHang and FaultCommitThenHang
}

// UnmarshalJSON accepts delay as nanoseconds or as a Go duration string
// ("1.5s"), and delay_ms as milliseconds.
func (f *Fault) UnmarshalJSON(b []byte) error {
	var raw struct {
		Kind    FaultKind       `json:"kind"`
		Method  string          `json:"method"`
		Path    string          `json:"path"`
		Count   int             `json:"count"`
		Skip    int             `json:"skip"`
		Delay   json.RawMessage `json:"delay"`
		DelayMS int64           `json:"delay_ms"`
	}
	if err := json.Unmarshal(b, &raw); err != nil {
		return err
	}
	*f = Fault{Kind: raw.Kind, Method: raw.Method, Path: raw.Path, Count: raw.Count, Skip: raw.Skip}
	if raw.DelayMS > 0 {
		f.Delay = time.Duration(raw.DelayMS) * time.Millisecond
	}
	if len(raw.Delay) > 0 && string(raw.Delay) != "null" {
		var ns int64
		if err := json.Unmarshal(raw.Delay, &ns); err == nil {
			f.Delay = time.Duration(ns)
		} else {
			var s string
			if err := json.Unmarshal(raw.Delay, &s); err != nil {
				return fmt.Errorf("delay: %w", err)
			}
			d, err := time.ParseDuration(s)
			if err != nil {
				return fmt.Errorf("delay: %w", err)
			}
			f.Delay = d
		}
	}
	return nil
}

func (k FaultKind) valid() bool {
	switch k {
	case FaultServerError, FaultRateLimit, FaultLockTimeout, FaultHang, FaultCommitThenError, FaultCommitThenHang:
		return true
	}
	return false
}

func (k FaultKind) apiError() *apiError {
	switch k {
	case FaultRateLimit:
		return &apiError{Status: http.StatusTooManyRequests, Type: typeInvalidRequest, Code: "rate_limit",
			Message: "Request rate limit exceeded. You can learn more about rate limits here https://stripe.com/docs/rate-limits. (injected by stripe-sim)"}
	case FaultLockTimeout:
		return &apiError{Status: http.StatusTooManyRequests, Type: typeInvalidRequest, Code: "lock_timeout",
			Message: "This object cannot be accessed right now because another API request or Stripe process is currently accessing it. If you see this error intermittently, retry the request. (injected by stripe-sim)"}
	default:
		return apiServerError("An unknown error occurred (injected by stripe-sim).")
	}
}

type faultQueue struct {
	mu sync.Mutex
	q  []*Fault
}

// take consumes one use of the first fault matching the request.
func (fq *faultQueue) take(method, path string) (Fault, bool) {
	fq.mu.Lock()
	defer fq.mu.Unlock()
	for i, f := range fq.q {
		if f.Method != "" && !strings.EqualFold(f.Method, method) {
			continue
		}
		if !strings.HasPrefix(path, f.Path) {
			continue
		}
		if f.Skip > 0 {
			f.Skip--
			continue
		}
		out := *f
		f.Count--
		if f.Count <= 0 {
			fq.q = append(fq.q[:i:i], fq.q[i+1:]...)
		}
		return out, true
	}
	return Fault{}, false
}

// InjectFault queues a fault for the next f.Count matching requests.
// Faults apply to /v1 requests only, in the order they were injected.
func (s *Server) InjectFault(f Fault) {
	if f.Count <= 0 {
		f.Count = 1
	}
	s.faults.mu.Lock()
	s.faults.q = append(s.faults.q, &f)
	s.faults.mu.Unlock()
}

// ClearFaults removes every pending fault.
func (s *Server) ClearFaults() {
	s.faults.mu.Lock()
	s.faults.q = nil
	s.faults.mu.Unlock()
}
