package stripesim

import "sync"

// counters counts requests per operation ("POST /v1/coupons",
// "GET /v1/subscriptions/{id}").
type counters struct {
	mu sync.Mutex
	m  map[string]int
}

func (c *counters) add(op string) {
	c.mu.Lock()
	c.m[op]++
	c.mu.Unlock()
}

// Counts returns a copy of the per-operation request counters. Requests are
// counted after authentication, including requests answered by an injected
// fault. Object IDs are templated as {id}.
func (s *Server) Counts() map[string]int {
	s.counters.mu.Lock()
	defer s.counters.mu.Unlock()
	out := make(map[string]int, len(s.counters.m))
	for k, v := range s.counters.m {
		out[k] = v
	}
	return out
}

// Count returns the counter of one operation key.
func (s *Server) Count(op string) int {
	s.counters.mu.Lock()
	defer s.counters.mu.Unlock()
	return s.counters.m[op]
}

// ResetCounts zeroes all counters.
func (s *Server) ResetCounts() {
	s.counters.mu.Lock()
	s.counters.m = map[string]int{}
	s.counters.mu.Unlock()
}
