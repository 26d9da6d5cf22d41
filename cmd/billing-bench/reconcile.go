package main

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/billing-adapter/billing-adapter/internal/benchkit"
)

// Scenario reconcile (-reconcile 1000,10000,...): for each size a fresh
// stack (redis-server, stripe-sim keeping only its newest events, the
// service); one 10%-forever code made through the API; that many customers
// on test clocks (1,000 per clock, the clocks starting clockSpread apart)
// subscribed in Stripe with the code's promotion code (discounts made
// outside the adapter: Redis does not know them); every clock advanced a
// year, so each subscription has 13 paid invoices; then `billing-adapter reconcile -fix -rate R -partitions P` as
// its own process. Reported: wall time, the reconcile process's peak RSS
// (getrusage), Stripe list requests, and what the rate alone would take
// (requests / rate).

// clockSpread is the time between the starts of two test clocks (100
// clocks, 100,000 subscriptions: 25 days; the first starts a year and 40
// days ago, so every clock's year is over).
const clockSpread = 6 * time.Hour

// ReconcileRun is one size's reconcile.
type ReconcileRun struct {
	Subscriptions int     `json:"subscriptions"`
	Invoices      int     `json:"paid_invoices"`
	SetupSeconds  float64 `json:"setup_seconds"`
	Seconds       float64 `json:"seconds"`
	MaxRSSMB      float64 `json:"max_rss_mb"`
	Requests      int     `json:"stripe_list_requests"`
	Rate          float64 `json:"rate"`
	Partitions    int     `json:"partitions"`
	RateBound     float64 `json:"rate_bound_seconds"` // requests / rate
	// CPU (user + system) during the reconcile: its own process
	// (getrusage) and the simulator's (/proc/<pid>/stat delta); the load
	// average (1 minute) when it ended, as the machine is shared.
	ReconcileCPU float64 `json:"reconcile_cpu_seconds"`
	SimCPU       float64 `json:"sim_cpu_seconds"`
	LoadAvg      string  `json:"load_average,omitempty"`
	Summary      string  `json:"summary"`
}

func measureReconcile(ctx context.Context, o options, n int, stderr io.Writer) (*ReconcileRun, error) {
	setup := time.Now()
	so := o
	so.simArgs = []string{"-max-events", "20000"}
	st, err := startStack(ctx, so)
	if err != nil {
		return nil, err
	}
	defer st.stop()
	e, err := newEnv(ctx, o, st)
	if err != nil {
		return nil, err
	}
	var code struct {
		Stripe struct {
			PromotionCodeID string `json:"promotion_code_id"`
		} `json:"stripe"`
	}
	if err := e.call(ctx, "POST", "/v1/promo_codes", adminSecret, e.runID+"-recon", benchkit.CreatePromoBody("RECON"+e.runID, true), &code); err != nil {
		return nil, err
	}
	// Clock i starts clockSpread·i after the first, so the subscriptions
	// (created at their clock's time) spread over days as an account's do,
	// and reconcile can split their list by created time too.
	start := time.Now().AddDate(-1, 0, -40).Truncate(time.Hour)
	clocks := make([]string, max(1, (n+999)/1000))
	clockStart := func(i int) time.Time { return start.Add(time.Duration(i) * clockSpread) }
	for i := range clocks {
		var c struct{ ID string }
		if err := e.sim.Do(ctx, "POST", "/v1/test_helpers/test_clocks", url.Values{"frozen_time": {strconv.FormatInt(clockStart(i).Unix(), 10)}}, &c); err != nil {
			return nil, err
		}
		clocks[i] = c.ID
	}
	fmt.Fprintf(stderr, "reconcile %d: %d subscriptions with the code on %d test clocks...\n", n, n, len(clocks))
	if err := benchkit.Parallel(n, 16, func(i int) error {
		var cu struct{ ID string }
		if err := e.sim.Do(ctx, "POST", "/v1/customers", url.Values{"test_clock": {clocks[i%len(clocks)]}}, &cu); err != nil {
			return err
		}
		return e.sim.Do(ctx, "POST", "/v1/subscriptions", url.Values{"customer": {cu.ID}, "items[0][price]": {e.price},
			"promotion_code": {code.Stripe.PromotionCodeID}}, nil)
	}); err != nil {
		return nil, err
	}
	fmt.Fprintf(stderr, "reconcile %d: a year of invoices...\n", n)
	for i, c := range clocks {
		end := clockStart(i).AddDate(1, 0, 0).Add(time.Hour)
		if err := e.sim.Do(ctx, "POST", "/v1/test_helpers/test_clocks/"+c+"/advance",
			url.Values{"frozen_time": {strconv.FormatInt(end.Unix(), 10)}}, nil); err != nil {
			return nil, err
		}
	}
	run := &ReconcileRun{Subscriptions: n, Invoices: 13 * n, Rate: o.reconcileRate, Partitions: o.reconcilePartitions,
		SetupSeconds: time.Since(setup).Seconds()}
	before, err := e.sim.Counts(ctx)
	if err != nil {
		return nil, err
	}
	fmt.Fprintf(stderr, "reconcile %d: reconcile -fix -rate %g -partitions %d...\n", n, o.reconcileRate, o.reconcilePartitions)
	cmd := exec.CommandContext(ctx, filepath.Join(o.binDir, "billing-adapter"), "reconcile", "-fix",
		"-rate", strconv.FormatFloat(o.reconcileRate, 'f', -1, 64), "-partitions", strconv.Itoa(o.reconcilePartitions))
	cmd.Env = append(os.Environ(), "REDIS_URL="+st.RedisURL, "REDIS_ADDRS=", "STRIPE_SECRET_KEY="+stripeKey,
		"STRIPE_API_BASE="+st.SimURL, "STRIPE_MAX_NETWORK_RETRIES=0", "LOG_FORMAT=text")
	var out, errOut bytes.Buffer
	logPath := filepath.Join(o.workDir, fmt.Sprintf("reconcile-%d.log", n))
	logFile, err := os.Create(logPath)
	if err != nil {
		return nil, err
	}
	defer logFile.Close()
	cmd.Stdout, cmd.Stderr = &out, io.MultiWriter(&errOut, &stampWriter{w: logFile, start: time.Now()})
	simCPU0 := procCPU(st.sim)
	t0 := time.Now()
	err = cmd.Run()
	run.Seconds = time.Since(t0).Seconds()
	if c := procCPU(st.sim); c >= 0 && simCPU0 >= 0 {
		run.SimCPU = (c - simCPU0).Seconds()
	}
	if la, err := os.ReadFile("/proc/loadavg"); err == nil {
		run.LoadAvg = strings.Join(strings.Fields(string(la))[:3], " ")
	}
	if ee, ok := err.(*exec.ExitError); ok && ee.ExitCode() == 1 && strings.Contains(out.String(), "fixed:") {
		err = nil // drift found (expected: Redis knew none of it) and fixed
	}
	if err != nil {
		return nil, fmt.Errorf("reconcile: %v\n%s", err, tail(errOut.String(), 20))
	}
	if ru, ok := cmd.ProcessState.SysUsage().(*syscall.Rusage); ok {
		run.MaxRSSMB = float64(ru.Maxrss) / 1024 // KiB on Linux
	}
	run.ReconcileCPU = (cmd.ProcessState.UserTime() + cmd.ProcessState.SystemTime()).Seconds()
	after, err := e.sim.Counts(ctx)
	if err != nil {
		return nil, err
	}
	for k, v := range after {
		if strings.HasPrefix(k, "GET /v1/") && !strings.Contains(k, "{id}") {
			run.Requests += v - before[k]
		}
	}
	if run.Rate > 0 {
		run.RateBound = float64(run.Requests) / run.Rate
	}
	for _, l := range strings.Split(out.String(), "\n") {
		if strings.HasPrefix(l, "reconcile: ") {
			run.Summary += strings.TrimSpace(l) + " "
		}
	}
	fmt.Fprintf(stderr, "reconcile %d: %.1fs, peak RSS %.0f MB, %d list requests, CPU reconcile %.1fs simulator %.1fs, load %s\n",
		n, run.Seconds, run.MaxRSSMB, run.Requests, run.ReconcileCPU, run.SimCPU, run.LoadAvg)
	return run, nil
}

func tail(s string, lines int) string {
	l := strings.Split(strings.TrimRight(s, "\n"), "\n")
	if len(l) > lines {
		l = l[len(l)-lines:]
	}
	return strings.Join(l, "\n")
}

// parseSizes reads -reconcile 1000,10000.
func parseSizes(s string) ([]int, error) {
	var out []int
	for part := range strings.SplitSeq(s, ",") {
		if part = strings.TrimSpace(part); part == "" {
			continue
		}
		n, err := strconv.Atoi(part)
		if err != nil || n < 1 {
			return nil, fmt.Errorf("-reconcile %q: sizes are positive numbers, e.g. 1000,10000", s)
		}
		out = append(out, n)
	}
	return out, nil
}

// stampWriter prefixes each write (a progress line) with the seconds since start.
type stampWriter struct {
	w     io.Writer
	start time.Time
}

func (s *stampWriter) Write(p []byte) (int, error) {
	if _, err := fmt.Fprintf(s.w, "[%7.2fs] %s", time.Since(s.start).Seconds(), p); err != nil {
		return 0, err
	}
	return len(p), nil
}
