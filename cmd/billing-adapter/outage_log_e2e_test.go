package main

import (
	"encoding/json"
	"net/http"
	"strings"
	"testing"

	"github.com/billing-adapter/billing-adapter/internal/stripesim"
	"github.com/billing-adapter/billing-adapter/internal/testutil/redistest"
)

// During a Redis outage everything the service prints, on stdout and
// stderr, stays one JSON object per line: go-redis's own complaints
// ("connection pool: failed to dial after 5 attempts") included. The
// service runs as a process of its own so that its real stderr is seen.
func TestRedisOutageKeepsTheLogJSON(t *testing.T) {
	red := redistest.Start(t) // its own Redis: this test stops it
	st := newStack(t, red.URL(), stripesim.Options{})
	c := st.startChild(t, nil)
	mustStatus(t, c.call(t, "GET", "/v1/promo_codes", adminSecret, "", nil), http.StatusOK)

	if err := red.Stop(); err != nil {
		t.Fatal(err)
	}
	mustStatus(t, c.call(t, "GET", "/v1/promo_codes", adminSecret, "", nil), http.StatusServiceUnavailable)
	mustStatus(t, c.call(t, "POST", "/v1/promo_codes", adminSecret, newKey(), percentBody("OUTAGE")), http.StatusServiceUnavailable)
	c.kill() // waits until all of its output is read

	out := c.logs.String()
	sawDial := false
	for i, line := range strings.Split(strings.TrimRight(out, "\n"), "\n") {
		var obj map[string]any
		if err := json.Unmarshal([]byte(line), &obj); err != nil {
			t.Fatalf("line %d is not JSON: %q", i+1, line)
		}
		if obj["component"] == "redis" && strings.Contains(obj["detail"].(string), "failed to dial") {
			sawDial = true
		}
	}
	if !sawDial {
		t.Fatal("go-redis's failed dial is not in the log: the test did not test anything")
	}
}
