package main

import (
	"bytes"
	"context"
	"io"
	"net/http"
	"sync"
	"sync/atomic"
	"time"
)

// request is one request of a scenario, built before the load starts
// (headers that depend on the send time, like a webhook signature, are
// made by sign at send time).
type request struct {
	method string
	path   string
	header http.Header
	body   []byte
	sign   func(body []byte) (string, string) // optional: header name and value set at send time
}

// runResult is one measured run.
type runResult struct {
	N        int
	Elapsed  time.Duration
	Latency  Latency
	Errors   int            // transport errors plus non-2xx answers
	Statuses map[int]int    // non-2xx answers by status
	Failures map[string]int // transport errors by message (first 80 chars)
}

// RPS is requests per second over the run.
func (r runResult) RPS() float64 {
	if r.Elapsed <= 0 {
		return 0
	}
	return float64(r.N) / r.Elapsed.Seconds()
}

// newClient is a keep-alive client with one connection per worker.
func newClient(conc int) *http.Client {
	return &http.Client{Timeout: 60 * time.Second, Transport: &http.Transport{
		MaxIdleConns: conc * 2, MaxIdleConnsPerHost: conc * 2, MaxConnsPerHost: conc,
		IdleConnTimeout: 90 * time.Second, DisableCompression: true,
	}}
}

// runLoad sends reqs to base with conc workers (a fixed pool pulling the
// next request), each request once, and measures each latency from just
// before the send to the end of the response body.
func runLoad(ctx context.Context, client *http.Client, base string, reqs []request, conc int) runResult {
	lat := make([]time.Duration, len(reqs))
	var (
		next     atomic.Int64
		errs     atomic.Int64
		mu       sync.Mutex
		statuses = map[int]int{}
		failures = map[string]int{}
		wg       sync.WaitGroup
	)
	start := time.Now()
	for range min(conc, max(len(reqs), 1)) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				i := int(next.Add(1)) - 1
				if i >= len(reqs) || ctx.Err() != nil {
					return
				}
				r := &reqs[i]
				req, _ := http.NewRequestWithContext(ctx, r.method, base+r.path, bytes.NewReader(r.body))
				for k, v := range r.header {
					req.Header[k] = v
				}
				if r.sign != nil {
					k, v := r.sign(r.body)
					req.Header.Set(k, v)
				}
				t0 := time.Now()
				resp, err := client.Do(req)
				if err == nil {
					_, err = io.Copy(io.Discard, resp.Body)
					resp.Body.Close()
				}
				lat[i] = time.Since(t0)
				switch {
				case err != nil:
					errs.Add(1)
					msg := err.Error()
					mu.Lock()
					failures[msg[:min(len(msg), 80)]]++
					mu.Unlock()
				case resp.StatusCode/100 != 2:
					errs.Add(1)
					mu.Lock()
					statuses[resp.StatusCode]++
					mu.Unlock()
				}
			}
		}()
	}
	wg.Wait()
	elapsed := time.Since(start)
	return runResult{N: len(reqs), Elapsed: elapsed, Latency: summarize(lat), Errors: int(errs.Load()),
		Statuses: statuses, Failures: failures}
}
