package stripesim

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

func simDo(t testing.TB, s *Server, method, path string, form url.Values, out any) {
	var body *strings.Reader
	target := path
	if method == "GET" {
		target += "?" + form.Encode()
		body = strings.NewReader("")
	} else {
		body = strings.NewReader(form.Encode())
	}
	req := httptest.NewRequest(method, target, body)
	req.Header.Set("Authorization", "Bearer "+testKey)
	if method != "GET" {
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	}
	w := httptest.NewRecorder()
	s.ServeHTTP(w, req)
	if w.Code != http.StatusOK {
		t.Fatalf("%s %s: %d %s", method, path, w.Code, w.Body.String())
	}
	if out != nil {
		if err := json.Unmarshal(w.Body.Bytes(), out); err != nil {
			t.Fatal(err)
		}
	}
}

func cpuNow() time.Duration {
	var ru syscall.Rusage
	syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// TestScaleCost measures (it asserts no timing) what the reconcile bench
// asks of the simulator, at STRIPESIM_SCALE subscriptions (skipped when
// unset): customers and subscriptions with a promotion code on test clocks
// of 1,000, every clock advanced a year (13 paid invoices each), then the
// paid invoices read in 8 created ranges, 100 a page. It logs the CPU per
// create in fifths of the creates, per clock advance (first to last), and
// per page, so a cost that grows with the state shows:
//
//	STRIPESIM_SCALE=10000 go test ./internal/stripesim -run TestScaleCost -v
func TestScaleCost(t *testing.T) {
	n, _ := strconv.Atoi(os.Getenv("STRIPESIM_SCALE"))
	if n < 5 {
		t.Skip("set STRIPESIM_SCALE to a number of subscriptions (e.g. 10000) to measure")
	}
	s := New(Options{MaxEvents: 20000})
	defer s.Close()
	var pr struct{ ID string }
	simDo(t, s, "POST", "/v1/prices", url.Values{"currency": {"usd"}, "unit_amount": {"1000"}, "recurring[interval]": {"month"}, "product_data[name]": {"P"}}, &pr)
	var cp struct{ ID string }
	simDo(t, s, "POST", "/v1/coupons", url.Values{"percent_off": {"10"}, "duration": {"forever"}}, &cp)
	var pc struct{ ID string }
	simDo(t, s, "POST", "/v1/promotion_codes", url.Values{"coupon": {cp.ID}, "code": {"RECON"}}, &pc)
	start := time.Now().AddDate(-1, 0, -40).Truncate(time.Hour)
	clocks := make([]string, max(1, (n+999)/1000))
	for i := range clocks {
		var c struct{ ID string }
		simDo(t, s, "POST", "/v1/test_helpers/test_clocks", url.Values{"frozen_time": {strconv.FormatInt(start.Unix(), 10)}}, &c)
		clocks[i] = c.ID
	}
	t0 := time.Now()
	step := cpuNow()
	for i := 0; i < n; i++ {
		var cu struct{ ID string }
		simDo(t, s, "POST", "/v1/customers", url.Values{"test_clock": {clocks[i%len(clocks)]}}, &cu)
		simDo(t, s, "POST", "/v1/subscriptions", url.Values{"customer": {cu.ID}, "items[0][price]": {pr.ID}, "promotion_code": {pc.ID}}, nil)
		if (i+1)%(n/5) == 0 {
			t.Logf("create %d: %.1f µs CPU per customer+subscription", i+1, float64((cpuNow()-step).Microseconds())/float64(n/5))
			step = cpuNow()
		}
	}
	t.Logf("creates: %s", time.Since(t0))
	end := start.AddDate(1, 0, 0).Add(time.Hour)
	t0 = time.Now()
	for i, c := range clocks {
		a := cpuNow()
		simDo(t, s, "POST", "/v1/test_helpers/test_clocks/"+c+"/advance", url.Values{"frozen_time": {strconv.FormatInt(end.Unix(), 10)}}, nil)
		t.Logf("advance of clock %d (%d subscriptions, a year): %s CPU", i+1, n/len(clocks), (cpuNow() - a).Round(time.Millisecond))
	}
	t.Logf("advances: %s", time.Since(t0))
	// Read paid invoices in 8 created ranges.
	t0 = time.Now()
	c0 := cpuNow()
	pages := 0
	lo, hi := start.Unix(), end.Unix()+1
	stepR := (hi - lo) / 8
	for k := int64(0); k < 8; k++ {
		after := ""
		for {
			f := url.Values{"status": {"paid"}, "limit": {"100"}, "created[gte]": {strconv.FormatInt(lo+k*stepR, 10)}, "created[lt]": {strconv.FormatInt(lo+(k+1)*stepR, 10)}}
			if after != "" {
				f.Set("starting_after", after)
			}
			var page struct {
				Data    []struct{ ID string }
				HasMore bool `json:"has_more"`
			}
			simDo(t, s, "GET", "/v1/invoices", f, &page)
			pages++
			if !page.HasMore || len(page.Data) == 0 {
				break
			}
			after = page.Data[len(page.Data)-1].ID
		}
	}
	t.Logf("invoice pages: %d in %s (%.2f ms CPU/page)", pages, time.Since(t0), float64((cpuNow()-c0).Milliseconds())/float64(pages))
}

// BenchmarkInvoicePage measures one GET /v1/invoices page of 100 paid
// invoices of a created range (what reconcile reads), on a simulator of
// 200 subscriptions with a year of invoices each (2,600 invoices): the
// request through ServeHTTP, the render and the JSON encoding.
//
//	go test ./internal/stripesim -run '^$' -bench InvoicePage -cpuprofile cpu.out
func BenchmarkInvoicePage(b *testing.B) {
	s := New(Options{MaxEvents: 2000})
	defer s.Close()
	var pr struct{ ID string }
	simDo(b, s, "POST", "/v1/prices", url.Values{"currency": {"usd"}, "unit_amount": {"1000"}, "recurring[interval]": {"month"}, "product_data[name]": {"P"}}, &pr)
	var cp struct{ ID string }
	simDo(b, s, "POST", "/v1/coupons", url.Values{"percent_off": {"10"}, "duration": {"forever"}}, &cp)
	var pc struct{ ID string }
	simDo(b, s, "POST", "/v1/promotion_codes", url.Values{"coupon": {cp.ID}, "code": {"RECON"}}, &pc)
	start := time.Now().AddDate(-1, 0, -40).Truncate(time.Hour)
	var clk struct{ ID string }
	simDo(b, s, "POST", "/v1/test_helpers/test_clocks", url.Values{"frozen_time": {strconv.FormatInt(start.Unix(), 10)}}, &clk)
	for i := 0; i < 200; i++ {
		var cu struct{ ID string }
		simDo(b, s, "POST", "/v1/customers", url.Values{"test_clock": {clk.ID}, "email": {"a@example.com"}}, &cu)
		simDo(b, s, "POST", "/v1/subscriptions", url.Values{"customer": {cu.ID}, "items[0][price]": {pr.ID}, "promotion_code": {pc.ID}}, nil)
	}
	end := start.AddDate(1, 0, 0).Add(time.Hour)
	simDo(b, s, "POST", "/v1/test_helpers/test_clocks/"+clk.ID+"/advance", url.Values{"frozen_time": {strconv.FormatInt(end.Unix(), 10)}}, nil)
	var first struct{ Data []struct{ ID string } }
	f := url.Values{"status": {"paid"}, "limit": {"100"}, "created[gte]": {strconv.FormatInt(start.Unix(), 10)}}
	simDo(b, s, "GET", "/v1/invoices", f, &first)
	f.Set("starting_after", first.Data[len(first.Data)-1].ID)
	target := "/v1/invoices?" + f.Encode()
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		req := httptest.NewRequest("GET", target, nil)
		req.Header.Set("Authorization", "Bearer "+testKey)
		w := httptest.NewRecorder()
		s.ServeHTTP(w, req)
		if w.Code != http.StatusOK {
			b.Fatal(w.Code, w.Body.String())
		}
	}
}
