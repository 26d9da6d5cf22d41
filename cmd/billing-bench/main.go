// Command billing-bench measures billing-adapter: throughput, latency,
// Stripe calls and Redis commands per operation under load, allocations per
// request, Redis memory per code and per redemption, and the limit (a bare
// baseline server doing the same Redis round trips) on the same machine.
//
//	billing-bench [-scenario validate|apply|create-promo|webhook|memory|all] [-n 10000] [-c 64] [-json] ...
//	billing-bench baseline-server -kind validate|webhook -addr ... -redis-url ... -trips N
//
// It starts its own stack on loopback, each part as its own process: a
// redis-server on a free port (no persistence), bin/stripe-sim (no webhook
// delivery), bin/billing-adapter serve (JSON logs at info level to a file)
// and, for validate and webhook, the baseline server. `make bench` builds
// the binaries with -trimpath, runs the handler benchmarks and then this.
// It prints numbers; it asserts none.
package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"math"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"time"
)

type options struct {
	scenario    string
	n, conc     int
	stripeN     int
	warmup      int // -1: n/10, at most 1000
	json        bool
	binDir      string
	gobench     string
	baseline    bool
	redisServer string
	memCodes    int
	memRedeem   int
	memRedis    string
	workDir     string
	keep        bool
	cluster     bool
	simArgs     []string
	// -reconcile: subscription counts to reconcile, the rate and ranges.
	reconcileSizes      []int
	reconcileRate       float64
	reconcilePartitions int
}

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	var err error
	if len(os.Args) > 1 && os.Args[1] == "baseline-server" {
		err = baselineServer(os.Args[2:])
	} else {
		err = run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	}
	if err != nil {
		if !errors.Is(err, errUsage) {
			fmt.Fprintln(os.Stderr, "billing-bench:", err)
		}
		os.Exit(1)
	}
}

func parseFlags(args []string, stderr io.Writer) (options, error) {
	var o options
	fs := flag.NewFlagSet("billing-bench", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.StringVar(&o.scenario, "scenario", "all", "validate, validate-campaign, apply, create-promo, webhook, memory, campaigns, all, or none (comma-separated list allowed)")
	fs.IntVar(&o.n, "n", 10000, "measured requests per scenario")
	fs.IntVar(&o.stripeN, "stripe-n", 2000, "measured requests for the scenarios that call Stripe (apply, create-promo): the simulator slows as its state grows (docs/BENCHMARKS.md); 0 = -n")
	fs.IntVar(&o.conc, "c", 64, "concurrent requests (workers, one keep-alive connection each)")
	fs.IntVar(&o.warmup, "warmup", -1, "warm-up requests per scenario before measuring (-1: a tenth of its n, at most 1000)")
	fs.BoolVar(&o.json, "json", false, "print the report as JSON instead of a table")
	fs.StringVar(&o.binDir, "bin", "bin", "directory with billing-adapter and stripe-sim (make build)")
	fs.StringVar(&o.gobench, "gobench", "", "output of `go test -bench -benchmem ./cmd/billing-adapter` for allocs/op (and the baseline's round trips)")
	fs.BoolVar(&o.baseline, "baseline", true, "measure the baseline servers for validate and webhook")
	fs.StringVar(&o.redisServer, "redis-server", "redis-server", "redis-server binary")
	fs.IntVar(&o.memCodes, "mem-codes", 100000, "promo codes for the memory measurement")
	fs.IntVar(&o.memRedeem, "mem-redemptions", 100000, "redemptions for the memory measurement")
	fs.StringVar(&o.memRedis, "mem-redis-args", "", "extra redis-server arguments for the memory measurement, e.g. \"--hash-max-listpack-value 1024\"")
	fs.StringVar(&o.workDir, "dir", "", "directory for logs and Redis files (default: a new temporary one)")
	fs.BoolVar(&o.keep, "keep", false, "keep the temporary directory (logs) after the run")
	sizes := fs.String("reconcile", "", "also measure reconcile -fix against the simulator holding this many subscriptions with a year of\n"+
		"invoices each, comma-separated (e.g. 1000,10000)")
	fs.Float64Var(&o.reconcileRate, "reconcile-rate", 200, "reconcile's -rate (Stripe list requests per second)")
	fs.IntVar(&o.reconcilePartitions, "reconcile-partitions", 8, "reconcile's -partitions")
	fs.BoolVar(&o.cluster, "cluster", false, "run the service on a real Redis Cluster (3 masters + 3 replicas, redis-cli needed) and print\n"+
		"the share of round trips (MONITOR), keys and memory per master and per slot; no baselines")
	fs.Usage = func() {
		fmt.Fprintln(stderr, "usage: billing-bench [flags]\n       billing-bench baseline-server -kind validate|webhook -addr ADDR -redis-url URL -trips N\nflags:")
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		return o, errUsage
	}
	if fs.NArg() > 0 || o.n < 1 || o.conc < 1 {
		fs.Usage()
		return o, errUsage
	}
	if o.stripeN <= 0 {
		o.stripeN = o.n
	}
	if o.cluster {
		o.baseline = false // the baseline servers speak to one Redis
	}
	var err error
	if o.reconcileSizes, err = parseSizes(*sizes); err != nil {
		fmt.Fprintln(stderr, err)
		return o, errUsage
	}
	return o, nil
}

// selected returns the load scenarios and whether memory and campaigns
// are measured.
func selected(spec string) ([]scenario, bool, bool, error) {
	if spec == "all" {
		return scenarios, true, true, nil
	}
	if spec == "none" { // e.g. -scenario none -reconcile 1000
		return nil, false, false, nil
	}
	var out []scenario
	memory, campaigns := false, false
	for name := range strings.SplitSeq(spec, ",") {
		name = strings.TrimSpace(name)
		if name == "memory" {
			memory = true
			continue
		}
		if name == "campaigns" {
			campaigns = true
			continue
		}
		found := false
		for _, s := range scenarios {
			if s.name == name {
				out, found = append(out, s), true
			}
		}
		if !found {
			return nil, false, false, fmt.Errorf("unknown scenario %q (validate, validate-campaign, apply, create-promo, webhook, memory, campaigns, all)", name)
		}
	}
	return out, memory, campaigns, nil
}

func run(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	o, err := parseFlags(args, stderr)
	if err != nil {
		return err
	}
	list, withMemory, withCampaigns, err := selected(o.scenario)
	if err != nil {
		return err
	}
	var gb map[string]GoBench
	if o.gobench != "" {
		f, err := os.Open(o.gobench)
		if err != nil {
			return err
		}
		gb = parseGoBench(f)
		f.Close()
	}
	if o.workDir == "" {
		if o.workDir, err = os.MkdirTemp("", "billing-bench-"); err != nil {
			return err
		}
		if !o.keep {
			defer os.RemoveAll(o.workDir)
		}
	}
	if o.workDir, err = filepath.Abs(o.workDir); err != nil {
		return err
	}
	if err := os.MkdirAll(o.workDir, 0o755); err != nil {
		return err
	}
	rep := &Report{Machine: machineInfo(), Started: time.Now().UTC(), Command: "billing-bench " + strings.Join(args, " ")}
	if len(list) > 0 {
		fmt.Fprintf(stderr, "starting redis-server, stripe-sim and billing-adapter (logs in %s)...\n", o.workDir)
		st, err := startStack(ctx, o)
		if err != nil {
			return err
		}
		defer st.stop()
		e, err := newEnv(ctx, o, st)
		if err != nil {
			return err
		}
		for _, sc := range list {
			sr, err := e.measure(ctx, sc, gb, stderr)
			if err != nil {
				return fmt.Errorf("%s: %w", sc.name, err)
			}
			rep.Scenarios = append(rep.Scenarios, *sr)
			if sr.Cluster != nil {
				if rep.Cluster == nil {
					rep.Cluster = &ClusterShares{}
				}
				rep.Cluster.add(sr.Cluster)
			}
		}
		if rep.Cluster != nil {
			if rep.Cluster.KeysMemory, err = keysAndMemory(ctx, st.masters); err != nil {
				return err
			}
		}
	}
	for _, n := range o.reconcileSizes {
		r, err := measureReconcile(ctx, o, n, stderr)
		if err != nil {
			return fmt.Errorf("reconcile %d: %w", n, err)
		}
		rep.Reconcile = append(rep.Reconcile, *r)
	}
	if withMemory {
		if rep.Memory, err = runMemory(ctx, o, stderr); err != nil {
			return fmt.Errorf("memory: %w", err)
		}
	}
	if withCampaigns {
		if rep.Campaigns, err = runCampaigns(ctx, o, stderr); err != nil {
			return fmt.Errorf("campaigns: %w", err)
		}
	}
	rep.Targets = evaluate(rep)
	if o.json {
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		return enc.Encode(rep)
	}
	writeTable(stdout, rep)
	return nil
}

// runCampaigns measures campaigns on their own fresh redis-server.
func runCampaigns(ctx context.Context, o options, stderr io.Writer) (*CampaignBench, error) {
	port, err := freePort()
	if err != nil {
		return nil, err
	}
	p, err := startProc(o.workDir, "redis-campaigns", o.redisServer, []string{"--port", fmt.Sprint(port), "--bind", "127.0.0.1",
		"--save", "", "--appendonly", "no", "--dir", o.workDir}, nil)
	if err != nil {
		return nil, err
	}
	defer p.stop()
	url := fmt.Sprintf("redis://127.0.0.1:%d/0", port)
	if err := p.waitFor(func() error { return pingURL(ctx, url) }); err != nil {
		return nil, err
	}
	return measureCampaigns(ctx, url, campaignSizes, stderr)
}

// runMemory measures on its own fresh redis-server.
func runMemory(ctx context.Context, o options, stderr io.Writer) (*Memory, error) {
	port, err := freePort()
	if err != nil {
		return nil, err
	}
	args := append([]string{"--port", fmt.Sprint(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
		"--dir", o.workDir}, strings.Fields(o.memRedis)...)
	p, err := startProc(o.workDir, "redis-memory", o.redisServer, args, nil)
	if err != nil {
		return nil, err
	}
	defer p.stop()
	url := fmt.Sprintf("redis://127.0.0.1:%d/0", port)
	st := &stack{RedisURL: url}
	if err := p.waitFor(func() error { return pingURL(ctx, st.RedisURL) }); err != nil {
		return nil, err
	}
	return measureMemory(ctx, url, o.memCodes, o.memRedeem, 16, stderr)
}

// measure runs one scenario: fixtures, warm-up, the measured run with the
// counters read before and after, then the baseline with the same requests.
func (e *env) measure(ctx context.Context, sc scenario, gb map[string]GoBench, stderr io.Writer) (*ScenarioReport, error) {
	o := e.o
	n := o.n
	if sc.stripeTarget > 0 {
		n = o.stripeN
	}
	warmup := o.warmup
	if warmup < 0 {
		warmup = min(n/10, 1000)
	}
	fmt.Fprintf(stderr, "%s: preparing %d requests...\n", sc.name, warmup+n)
	reqs, err := sc.prepare(ctx, e, warmup+n)
	if err != nil {
		return nil, err
	}
	warm, measured := reqs[:warmup], reqs[warmup:]
	client := newClient(o.conc)
	defer client.CloseIdleConnections()
	fmt.Fprintf(stderr, "%s: warm-up %d, then %d requests at concurrency %d...\n", sc.name, len(warm), len(measured), o.conc)
	if w := runLoad(ctx, client, e.st.URL, warm, o.conc); w.Errors > 0 {
		fmt.Fprintf(stderr, "%s: %d errors during warm-up: %v %v\n", sc.name, w.Errors, w.Statuses, w.Failures)
	}
	simBefore, err := e.sim.Counts(ctx)
	if err != nil {
		return nil, err
	}
	csBefore, err := e.st.commandStats(ctx)
	if err != nil {
		return nil, err
	}
	cpu0 := procCPU(e.st.service)
	var mon *monitor
	if e.st.masters != nil {
		if mon, err = startMonitor(e.st.masters); err != nil {
			return nil, err
		}
	}
	res := runLoad(ctx, client, e.st.URL, measured, o.conc)
	cpu1 := procCPU(e.st.service)
	var shares *ClusterShares
	if mon != nil {
		mon.stop()
		shares = mon.shares(e.st.masters)
	}
	csAfter, err := e.st.commandStats(ctx)
	if err != nil {
		return nil, err
	}
	simAfter, err := e.sim.Counts(ctx)
	if err != nil {
		return nil, err
	}
	if ctx.Err() != nil {
		return nil, ctx.Err()
	}
	sr := &ScenarioReport{Scenario: sc.name, N: n, Concurrency: o.conc, Warmup: len(warm), RPS: math.Round(res.RPS()),
		Latency: toMS(res.Latency), Errors: res.Errors, TransportErrors: res.Failures, StripeTarget: sc.stripeTarget,
		StripeCalls: map[string]float64{}}
	if len(res.Statuses) > 0 {
		sr.ErrorStatuses = map[string]int{}
		for st, c := range res.Statuses {
			sr.ErrorStatuses[fmt.Sprint(st)] = c
		}
	}
	if len(sr.TransportErrors) == 0 {
		sr.TransportErrors = nil
	}
	calls := 0
	for k, v := range simAfter {
		if d := v - simBefore[k]; d > 0 {
			calls += d
			sr.StripeCalls[k] = float64(d) / float64(n)
		}
	}
	sr.StripeCallsPerOp = float64(calls) / float64(n)
	delta := commandDelta(csBefore, csAfter)
	sr.RedisCmdsPerOp = float64(delta.Total()) / float64(n)
	sr.RedisCommands = delta.top(n, 8)
	sr.Handler = handlerCost(gb, sc.gobench)
	sr.Cluster = shares
	if cpu0 >= 0 && cpu1 >= 0 {
		sr.CPUPerReq = math.Round(float64(cpu1-cpu0) / float64(time.Microsecond) / float64(n))
	}
	if sr.IdempotencyRecordBytes, sr.IdempotencyRecords, err = idempotencyRecordBytes(ctx, e.st.nodes()); err != nil {
		return nil, err
	}

	if sc.baseline != "" && o.baseline {
		trips, dupTrips := baselineTrips(sc.baseline, gb)
		fmt.Fprintf(stderr, "%s: baseline server (%d Redis round trips per request), same requests...\n", sc.name, trips)
		p, url, err := startBaseline(o, e.st, sc.baseline, trips, dupTrips)
		if err != nil {
			return nil, err
		}
		bclient := newClient(o.conc)
		runLoad(ctx, bclient, url, warm, o.conc)
		bcpu0 := procCPU(p)
		b := runLoad(ctx, bclient, url, measured, o.conc)
		bcpu1 := procCPU(p)
		bclient.CloseIdleConnections()
		p.stop()
		sr.Baseline = &Baseline{Kind: sc.baseline, Trips: trips, RPS: math.Round(b.RPS()), Latency: toMS(b.Latency),
			Errors: b.Errors}
		if sc.baseline == "webhook" {
			sr.Baseline.DupTrips = dupTrips
		}
		if bcpu0 >= 0 && bcpu1 >= 0 {
			sr.Baseline.CPUPerReq = math.Round(float64(bcpu1-bcpu0) / float64(time.Microsecond) / float64(n))
		}
		if b.RPS() > 0 {
			sr.Baseline.PercentOfB = math.Round(1000*res.RPS()/b.RPS()) / 10
		}
	}
	fmt.Fprintf(stderr, "%s: %.0f req/s, p99 %.2f ms, %d errors\n", sc.name, sr.RPS, sr.Latency.P99, sr.Errors)
	return sr, nil
}

// baselineTrips is how many Redis round trips the baseline makes per
// request: what the handler benchmarks counted on the real path (a go-redis
// hook), else the counts of the current code.
func baselineTrips(kind string, gb map[string]GoBench) (int, int) {
	get := func(name string, def int) int {
		if b, ok := gb[name]; ok {
			if v, ok := b.Metrics["redis-rt/op"]; ok && v > 0 {
				return int(math.Round(v))
			}
		}
		return def
	}
	if kind == "webhook" {
		return get("WebhookInvoicePaid", 3), get("WebhookDuplicate", 1)
	}
	return get("Validate", 1), 0
}
