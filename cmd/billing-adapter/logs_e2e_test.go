package main

import (
	"net/http"
	"strings"
	"testing"
	"time"
)

// Log lines wait up to LOG_FLUSH_INTERVAL to be written together, and
// shutdown writes what is held: no line is lost by batching.
func TestLogFlushInterval(t *testing.T) {
	const access = `"msg":"http request","request_id":"req_`
	accessLines := func(s *service) int {
		return strings.Count(s.logs.String(), `"route":"/v1/promo_codes"`)
	}
	t.Run("held lines are written at shutdown", func(t *testing.T) {
		s := startService(t, map[string]string{"LOG_FLUSH_INTERVAL": "10s"})
		mustStatus(t, s.call(t, "GET", "/v1/promo_codes", adminSecret, "", nil), http.StatusOK)
		if n := accessLines(s); n != 0 {
			t.Fatalf("%d access lines written before the 10s interval", n)
		}
		if err := s.stop(); err != nil {
			t.Fatal(err)
		}
		if n := accessLines(s); n != 1 || !strings.Contains(s.logs.String(), access) || !strings.Contains(s.logs.String(), `"msg":"stopped"`) {
			t.Fatalf("after shutdown: %d access lines, want 1, and the stop:\n%s", n, s.logs.String())
		}
	})
	t.Run("the default writes them within 100ms", func(t *testing.T) {
		s := startService(t, nil)
		mustStatus(t, s.call(t, "GET", "/v1/promo_codes", adminSecret, "", nil), http.StatusOK)
		sent := time.Now()
		for accessLines(s) == 0 {
			if time.Since(sent) > 5*time.Second {
				t.Fatal("the access line was not written within 5 s")
			}
			time.Sleep(10 * time.Millisecond)
		}
	})
	t.Run("0 writes each line at once", func(t *testing.T) {
		s := startService(t, map[string]string{"LOG_FLUSH_INTERVAL": "0"})
		mustStatus(t, s.call(t, "GET", "/v1/promo_codes", adminSecret, "", nil), http.StatusOK)
		if n := accessLines(s); n != 1 {
			t.Fatalf("%d access lines right after the answer, want 1", n)
		}
	})
}
