package telemetry

import (
	"sync"

	"github.com/prometheus/client_golang/prometheus"
)

// maxCachedChildren bounds each children cache. Every label of the service's
// metrics comes from a closed set except the HTTP method of a request that
// matched no route, so the caches stay far below it; past it, children are
// looked up in the vector as before (same series, no cache).
const maxCachedChildren = 1024

// labels3 is a key of up to three label values.
type labels3 struct{ a, b, c string }

// httpLabels is the key of the HTTP metrics (the status as a number, so a
// hit formats nothing).
type httpLabels struct {
	method, route string
	status        int
}

// children keeps the children of metric vectors resolved once per distinct
// label values. client_golang's WithLabelValues hashes the values, takes the
// vector's lock and compares the values on every call (and the HTTP status
// was formatted with strconv on every request); a hit here is one map read
// under a read lock. The series and their names are the vector's own: only
// the lookup is cached.
type children[K comparable, V any] struct {
	mu sync.RWMutex
	m  map[K]V
}

func (c *children[K, V]) get(k K, resolve func() V) V {
	c.mu.RLock()
	v, ok := c.m[k]
	c.mu.RUnlock()
	if ok {
		return v
	}
	v = resolve()
	c.mu.Lock()
	if c.m == nil {
		c.m = map[K]V{}
	}
	if len(c.m) < maxCachedChildren {
		c.m[k] = v
	}
	c.mu.Unlock()
	return v
}

// httpChild is one (method, route, status) of the HTTP metrics.
type httpChild struct {
	requests prometheus.Counter
	latency  prometheus.Observer
}

// webhookChild is one (type, result) of the webhook metrics; lag is nil
// unless result is "processed" (the only result whose lag is recorded).
type webhookChild struct {
	events prometheus.Counter
	lag    prometheus.Observer
}
