package main

import (
	"fmt"
	"io"
	"maps"
	"math"
	"os"
	"runtime"
	"slices"
	"sort"
	"strings"
	"text/tabwriter"
	"time"
)

// Report is one run of the tool (printed as a table, or as JSON with -json).
type Report struct {
	Machine   Machine          `json:"machine"`
	Command   string           `json:"command"`
	Started   time.Time        `json:"started"`
	Scenarios []ScenarioReport `json:"scenarios"`
	Memory    *Memory          `json:"memory,omitempty"`
	Campaigns *CampaignBench   `json:"campaigns,omitempty"`
	// Cluster: the whole run's spread over the cluster (-cluster only).
	Cluster *ClusterShares `json:"cluster,omitempty"`
	// Reconcile: reconcile -fix at each size of -reconcile.
	Reconcile []ReconcileRun `json:"reconcile,omitempty"`
	Targets   []Target       `json:"targets"`
}

// Machine says where the numbers come from.
type Machine struct {
	CPU       string `json:"cpu"`
	Cores     int    `json:"cores"`
	MemoryGiB string `json:"memory_gib"`
	Go        string `json:"go"`
	OS        string `json:"os"`
}

func machineInfo() Machine {
	m := Machine{CPU: "unknown", Cores: runtime.NumCPU(), MemoryGiB: "?", Go: runtime.Version(),
		OS: runtime.GOOS + "/" + runtime.GOARCH}
	if b, err := os.ReadFile("/proc/cpuinfo"); err == nil {
		for line := range strings.SplitSeq(string(b), "\n") {
			if k, v, ok := strings.Cut(line, ":"); ok && strings.TrimSpace(k) == "model name" {
				m.CPU = strings.TrimSpace(v)
				break
			}
		}
	}
	if b, err := os.ReadFile("/proc/meminfo"); err == nil {
		if kb, ok := infoField(strings.ReplaceAll(strings.ReplaceAll(string(b), " kB", ""), " ", ""), "MemTotal"); ok {
			m.MemoryGiB = fmt.Sprintf("%.1f", float64(kb)/(1<<20))
		}
	}
	return m
}

// LatencyMS is Latency in milliseconds.
type LatencyMS struct {
	P50 float64 `json:"p50_ms"`
	P90 float64 `json:"p90_ms"`
	P99 float64 `json:"p99_ms"`
	Max float64 `json:"max_ms"`
}

func toMS(l Latency) LatencyMS {
	ms := func(d time.Duration) float64 { return math.Round(float64(d)/1e3) / 1e3 }
	return LatencyMS{P50: ms(l.P50), P90: ms(l.P90), P99: ms(l.P99), Max: ms(l.Max)}
}

// ScenarioReport is one scenario's numbers.
type ScenarioReport struct {
	Scenario    string    `json:"scenario"`
	N           int       `json:"n"`
	Concurrency int       `json:"concurrency"`
	Warmup      int       `json:"warmup"`
	RPS         float64   `json:"requests_per_second"`
	Latency     LatencyMS `json:"latency"`
	Errors      int       `json:"errors"`
	// ErrorStatuses counts non-2xx answers by status; TransportErrors
	// failed requests by message.
	ErrorStatuses   map[string]int `json:"error_statuses,omitempty"`
	TransportErrors map[string]int `json:"transport_errors,omitempty"`
	// Stripe requests the simulator received per operation, by endpoint.
	StripeCallsPerOp float64            `json:"stripe_calls_per_op"`
	StripeCalls      map[string]float64 `json:"stripe_calls_by_endpoint_per_op,omitempty"`
	StripeTarget     float64            `json:"stripe_calls_per_op_target"`
	// Redis commands per operation (INFO commandstats delta / n; commands
	// run inside Lua scripts are counted too).
	RedisCmdsPerOp float64        `json:"redis_commands_per_op"`
	RedisCommands  []CommandCount `json:"redis_commands_per_op_by_command"`
	// From the handler benchmarks (go test -bench -benchmem), weighted by
	// the scenario's mix; nil without -gobench.
	Handler  *HandlerCost `json:"handler,omitempty"`
	Baseline *Baseline    `json:"baseline,omitempty"`
	// IdempotencyRecordBytes is the mean MEMORY USAGE of the idempotency
	// records in Redis after the scenario (IdempotencyRecords of them; kept
	// IDEMPOTENCY_TTL, one per mutating request); 0 when it made none.
	IdempotencyRecordBytes float64 `json:"idempotency_record_bytes,omitempty"`
	IdempotencyRecords     int     `json:"idempotency_records,omitempty"`
	// CPUPerReq is the service's CPU time per request in the measured run
	// (µs, /proc/<pid>/stat utime+stime delta / n).
	CPUPerReq float64 `json:"cpu_us_per_request,omitempty"`
	// Cluster: how the measured run's round trips spread (-cluster only).
	Cluster *ClusterShares `json:"cluster,omitempty"`
}

// HandlerCost is the in-process cost of one request of the scenario.
type HandlerCost struct {
	AllocsPerOp          float64 `json:"allocs_per_op"`
	BytesPerOp           float64 `json:"bytes_per_op"`
	NsPerOp              float64 `json:"ns_per_op"`
	RedisRoundTripsPerOp float64 `json:"redis_round_trips_per_op"`
	Benchmarks           string  `json:"benchmarks"`
}

// Baseline is the bare server measured with the same requests and settings.
type Baseline struct {
	Kind string `json:"kind"`
	// CPUPerReq is the baseline server's CPU time per request (µs,
	// /proc/<pid>/stat utime+stime delta / n).
	CPUPerReq  float64   `json:"cpu_us_per_request,omitempty"`
	Trips      int       `json:"redis_round_trips"`
	DupTrips   int       `json:"redis_round_trips_duplicate,omitempty"`
	RPS        float64   `json:"requests_per_second"`
	Latency    LatencyMS `json:"latency"`
	Errors     int       `json:"errors"`
	PercentOfB float64   `json:"ours_percent_of_baseline"`
}

// Target is one goal of the issue, met or missed.
type Target struct {
	Name string `json:"name"`
	Want string `json:"want"`
	Got  string `json:"got"`
	Met  bool   `json:"met"`
}

// handlerCost mixes the named benchmarks by weight; nil when one is missing.
func handlerCost(gb map[string]GoBench, mix []weighted) *HandlerCost {
	if len(gb) == 0 || len(mix) == 0 {
		return nil
	}
	h := &HandlerCost{}
	var names []string
	for _, w := range mix {
		b, ok := gb[w.name]
		if !ok {
			return nil
		}
		h.AllocsPerOp += w.weight * b.AllocsPerOp
		h.BytesPerOp += w.weight * b.BytesPerOp
		h.NsPerOp += w.weight * b.NsPerOp
		h.RedisRoundTripsPerOp += w.weight * b.Metrics["redis-rt/op"]
		if w.weight == 1 {
			names = append(names, "Benchmark"+w.name)
		} else {
			names = append(names, fmt.Sprintf("%.0f%% Benchmark%s", w.weight*100, w.name))
		}
	}
	h.Benchmarks = strings.Join(names, " + ")
	return h
}

// evaluate checks the targets against the report.
func evaluate(r *Report) []Target {
	var out []Target
	for _, s := range r.Scenarios {
		out = append(out, Target{Name: s.Scenario + " Stripe calls per op", Want: fmt.Sprintf("%g", s.StripeTarget),
			Got: fmt.Sprintf("%.2f", s.StripeCallsPerOp), Met: math.Abs(s.StripeCallsPerOp-s.StripeTarget) < 0.005})
		out = append(out, Target{Name: s.Scenario + " errors", Want: "0", Got: fmt.Sprint(s.Errors), Met: s.Errors == 0})
		switch s.Scenario {
		case "validate":
			if s.Baseline != nil {
				out = append(out, Target{Name: "validate throughput vs baseline", Want: ">= 85%",
					Got: fmt.Sprintf("%.0f%%", s.Baseline.PercentOfB), Met: s.Baseline.PercentOfB >= 85})
			}
			out = append(out, Target{Name: fmt.Sprintf("validate p99 at %d concurrent", s.Concurrency), Want: "< 5 ms",
				Got: fmt.Sprintf("%.2f ms", s.Latency.P99), Met: s.Latency.P99 < 5})
		case "webhook":
			out = append(out, Target{Name: "webhook events/s", Want: ">= 5000", Got: fmt.Sprintf("%.0f", s.RPS),
				Met: s.RPS >= 5000})
			if s.Baseline != nil {
				out = append(out, Target{Name: "webhook throughput vs baseline", Want: ">= 75%",
					Got: fmt.Sprintf("%.0f%%", s.Baseline.PercentOfB), Met: s.Baseline.PercentOfB >= 75})
			}
		}
		if b := s.Baseline; b != nil && b.CPUPerReq > 0 && s.CPUPerReq > 0 {
			ratio := s.CPUPerReq / b.CPUPerReq
			out = append(out, Target{Name: s.Scenario + " service CPU per request vs baseline", Want: "<= 1.3x",
				Got: fmt.Sprintf("%.2fx", ratio), Met: ratio <= 1.3})
		}
	}
	for _, rc := range r.Reconcile {
		if rc.Subscriptions >= 100_000 {
			out = append(out, Target{Name: fmt.Sprintf("reconcile of %d subscriptions: peak memory", rc.Subscriptions),
				Want: "<= 300 MB", Got: fmt.Sprintf("%.0f MB", rc.MaxRSSMB), Met: rc.MaxRSSMB <= 300})
		}
	}
	if c := r.Cluster; c != nil && c.RoundTrips > 0 {
		out = append(out, Target{Name: "cluster: busiest slot's share of round trips", Want: "<= 10%",
			Got: fmt.Sprintf("%.1f%%", 100*c.MaxSlot), Met: c.MaxSlot <= 0.10})
		out = append(out, Target{Name: "cluster: busiest master's share of round trips", Want: "<= 40%",
			Got: fmt.Sprintf("%.1f%%", 100*c.MaxMaster), Met: c.MaxMaster <= 0.40})
	}
	var promoRPS, campaignRPS float64
	for _, s := range r.Scenarios {
		switch s.Scenario {
		case "validate":
			promoRPS = s.RPS
		case "validate-campaign":
			campaignRPS = s.RPS
		}
	}
	if promoRPS > 0 && campaignRPS > 0 {
		out = append(out, Target{Name: "validate of a campaign code vs a promo code (same run)", Want: ">= 90%",
			Got: fmt.Sprintf("%.0f%%", 100*campaignRPS/promoRPS), Met: campaignRPS >= 0.9*promoRPS})
	}
	if c := r.Campaigns; c != nil {
		var small, large *CampaignRun
		for i := range c.Runs {
			run := &c.Runs[i]
			if run.Codes == 100_000 {
				large = run
				out = append(out, Target{Name: "generate 100,000 campaign codes", Want: "<= 10 s",
					Got: fmt.Sprintf("%.2f s", run.GenerateSeconds), Met: run.GenerateSeconds <= 10})
				out = append(out, Target{Name: "Redis memory per unredeemed campaign code (used_memory)", Want: "<= 150 B",
					Got: fmt.Sprintf("%.0f B", run.UsedBytesPerCode), Met: run.UsedBytesPerCode <= 150})
			}
			if small == nil || run.Codes < small.Codes {
				small = run
			}
		}
		if large != nil && small != nil && small != large {
			// Constant memory: the export of 10x the codes peaks no higher
			// than the small one's plus 4 MB of noise (GC timing).
			out = append(out, Target{Name: "CSV export heap peak, 100,000 vs 10,000 codes", Want: "no growth (+4 MB)",
				Got: fmt.Sprintf("%.1f vs %.1f MB", large.ExportPeakHeapMB, small.ExportPeakHeapMB),
				Met: large.ExportPeakHeapMB <= small.ExportPeakHeapMB+4})
		}
	}
	if m := r.Memory; m != nil {
		out = append(out, Target{Name: "Redis memory per promo code (MEMORY USAGE)", Want: "<= 1024 B",
			Got: fmt.Sprintf("%.0f B", m.CodeKeyBytes), Met: m.CodeKeyBytes <= 1024})
		out = append(out, Target{Name: "Redis memory per redemption (MEMORY USAGE)", Want: "<= 512 B",
			Got: fmt.Sprintf("%.0f B", m.RedemptionKeyBytes), Met: m.RedemptionKeyBytes <= 512})
	}
	return out
}

func fmtMS(v float64) string {
	if v >= 100 {
		return fmt.Sprintf("%.0fms", v)
	}
	return fmt.Sprintf("%.2fms", v)
}

func fmtOpt(h *HandlerCost, f func(*HandlerCost) float64, format string) string {
	if h == nil {
		return "-"
	}
	return fmt.Sprintf(format, f(h))
}

// writeTable prints the report for people.
func writeTable(w io.Writer, r *Report) {
	m := r.Machine
	fmt.Fprintf(w, "billing-bench  %s  |  %s, %d cores, %s GiB RAM, %s, %s\n", r.Started.Format(time.RFC3339), m.CPU,
		m.Cores, m.MemoryGiB, m.OS, m.Go)
	fmt.Fprintf(w, "command: %s\n\n", r.Command)
	if len(r.Scenarios) > 0 {
		tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
		fmt.Fprintln(tw, "scenario\tn\tc\treq/s\tp50\tp90\tp99\tmax\terrors\tstripe/op\tredis cmd/op\tredis rt/op\tallocs/op\tB/op\tvs baseline\t")
		for _, s := range r.Scenarios {
			vs := "-"
			if s.Baseline != nil {
				vs = fmt.Sprintf("%.0f%%", s.Baseline.PercentOfB)
			}
			fmt.Fprintf(tw, "%s\t%d\t%d\t%.0f\t%s\t%s\t%s\t%s\t%d\t%.2f\t%.2f\t%s\t%s\t%s\t%s\t\n", s.Scenario, s.N,
				s.Concurrency, s.RPS, fmtMS(s.Latency.P50), fmtMS(s.Latency.P90), fmtMS(s.Latency.P99),
				fmtMS(s.Latency.Max), s.Errors, s.StripeCallsPerOp, s.RedisCmdsPerOp,
				fmtOpt(s.Handler, func(h *HandlerCost) float64 { return h.RedisRoundTripsPerOp }, "%.1f"),
				fmtOpt(s.Handler, func(h *HandlerCost) float64 { return h.AllocsPerOp }, "%.0f"),
				fmtOpt(s.Handler, func(h *HandlerCost) float64 { return h.BytesPerOp }, "%.0f"), vs)
			if b := s.Baseline; b != nil {
				trips := fmt.Sprintf("%d", b.Trips)
				if b.DupTrips > 0 {
					trips = fmt.Sprintf("%d/%d", b.Trips, b.DupTrips)
				}
				fmt.Fprintf(tw, "  baseline-%s\t%d\t%d\t%.0f\t%s\t%s\t%s\t%s\t%d\t-\t-\t%s\t-\t-\t100%%\t\n", b.Kind, s.N,
					s.Concurrency, b.RPS, fmtMS(b.Latency.P50), fmtMS(b.Latency.P90), fmtMS(b.Latency.P99),
					fmtMS(b.Latency.Max), b.Errors, trips)
			}
		}
		tw.Flush()
		for _, s := range r.Scenarios {
			if s.IdempotencyRecords > 0 {
				fmt.Fprintf(w, "Redis memory per idempotency record after %s: %.0f B (MEMORY USAGE, mean of %d records, kept IDEMPOTENCY_TTL)\n",
					s.Scenario, s.IdempotencyRecordBytes, s.IdempotencyRecords)
			}
		}
		fmt.Fprintln(w, "\nRedis commands per op (INFO commandstats delta / n, Lua-internal calls included):")
		for _, s := range r.Scenarios {
			var parts []string
			for _, c := range s.RedisCommands {
				parts = append(parts, fmt.Sprintf("%s %.2f", c.Command, c.PerOp))
			}
			fmt.Fprintf(w, "  %-13s %s\n", s.Scenario, strings.Join(parts, ", "))
		}
		fmt.Fprintln(w, "\nStripe calls per op (simulator counters delta / n):")
		for _, s := range r.Scenarios {
			keys := make([]string, 0, len(s.StripeCalls))
			for k := range s.StripeCalls {
				keys = append(keys, k)
			}
			sort.Strings(keys)
			var parts []string
			for _, k := range keys {
				parts = append(parts, fmt.Sprintf("%s %.2f", k, s.StripeCalls[k]))
			}
			if len(parts) == 0 {
				parts = []string{"none"}
			}
			fmt.Fprintf(w, "  %-13s %s\n", s.Scenario, strings.Join(parts, ", "))
		}
		for _, s := range r.Scenarios {
			for st, n := range s.ErrorStatuses {
				fmt.Fprintf(w, "  %s: %d answers with status %s\n", s.Scenario, n, st)
			}
			for msg, n := range s.TransportErrors {
				fmt.Fprintf(w, "  %s: %d transport errors: %s\n", s.Scenario, n, msg)
			}
		}
		var hs []string
		for _, s := range r.Scenarios {
			if s.Handler != nil {
				hs = append(hs, fmt.Sprintf("  %-13s %s", s.Scenario, s.Handler.Benchmarks))
			}
		}
		if len(hs) > 0 {
			fmt.Fprintln(w, "\nallocs/op, B/op, redis rt/op from the handler benchmarks (go test -bench -benchmem, in-process):")
			fmt.Fprintln(w, strings.Join(hs, "\n"))
		}
	}
	if c := r.Campaigns; c != nil {
		fmtCampaigns(w, c)
	}
	if mem := r.Memory; mem != nil {
		fmt.Fprintf(w, "\nRedis memory (%d codes; %d redemptions over %d codes; fresh redis-server; %.0fs):\n",
			mem.Codes, mem.Redemptions, mem.RedemptionCodes, mem.Elapsed)
		tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
		fmt.Fprintln(tw, "\tMEMORY USAGE\tused_memory delta\ttarget\t")
		fmt.Fprintf(tw, "per promo code\t%.0f B\t%.0f B\t<= 1024 B\t\n", mem.CodeKeyBytes, mem.CodeUsedBytes)
		fmt.Fprintf(tw, "per redemption (as apply leaves it)\t%.0f B\t%.0f B\t<= 512 B\t\n", mem.RedemptionKeyBytes, mem.RedemptionUsedBytes)
		fmt.Fprintf(tw, "+ its first paid invoice\t%.0f B\t%.0f B\t\t\n", mem.InvoiceKeyBytes, mem.InvoiceUsedBytes)
		tw.Flush()
		for _, b := range []struct {
			what  string
			parts map[string]float64
		}{{"per promo code", mem.CodeBreakdown}, {"per redemption", mem.RedemptionBreakdown}} {
			if len(b.parts) == 0 {
				continue
			}
			fmt.Fprintf(w, "  %s, by kind of key:", b.what)
			for _, k := range slices.Sorted(maps.Keys(b.parts)) {
				fmt.Fprintf(w, " %s %.0f B;", k, b.parts[k])
			}
			fmt.Fprintln(w)
		}
	}
	writeCPU(w, r)
	writeCluster(w, r)
	writeReconcile(w, r)
	if len(r.Targets) > 0 {
		fmt.Fprintln(w, "\nTargets:")
		for _, t := range r.Targets {
			mark := "met   "
			if !t.Met {
				mark = "MISSED"
			}
			fmt.Fprintf(w, "  [%s] %-46s want %-10s got %s\n", mark, t.Name, t.Want, t.Got)
		}
	}
}

// writeCPU prints the service's and the baselines' CPU per request.
func writeCPU(w io.Writer, r *Report) {
	var lines []string
	for _, s := range r.Scenarios {
		if s.CPUPerReq == 0 {
			continue
		}
		line := fmt.Sprintf("  %-13s service %.0f µs", s.Scenario, s.CPUPerReq)
		if b := s.Baseline; b != nil && b.CPUPerReq > 0 {
			line += fmt.Sprintf(", baseline %.0f µs (%.2fx)", b.CPUPerReq, s.CPUPerReq/b.CPUPerReq)
		}
		lines = append(lines, line)
	}
	if len(lines) > 0 {
		fmt.Fprintln(w, "\nCPU per request (/proc/<pid>/stat utime+stime over the measured run / n):")
		fmt.Fprintln(w, strings.Join(lines, "\n"))
	}
}

// writeCluster prints the spread over the cluster (-cluster).
func writeCluster(w io.Writer, r *Report) {
	shares := func(name string, c *ClusterShares) {
		if c == nil || c.RoundTrips == 0 {
			return
		}
		var ms []string
		for _, m := range c.Masters {
			ms = append(ms, fmt.Sprintf("%s %.1f%%", m.Addr, 100*m.RoundTrips))
		}
		var ss []string
		for _, s := range c.TopSlots {
			ss = append(ss, fmt.Sprintf("%d %.1f%% (%s)", s.Slot, 100*s.Share, s.Key))
		}
		fmt.Fprintf(w, "  %-13s %d round trips; masters: %s\n                busiest slots: %s\n", name, c.RoundTrips,
			strings.Join(ms, ", "), strings.Join(ss, ", "))
	}
	if r.Cluster == nil {
		return
	}
	fmt.Fprintln(w, "\nRedis Cluster (3 masters + 3 replicas): client commands with a key per master and per slot (MONITOR):")
	for _, s := range r.Scenarios {
		shares(s.Scenario, s.Cluster)
	}
	shares("whole run", r.Cluster)
	var km []string
	for _, n := range r.Cluster.KeysMemory {
		km = append(km, fmt.Sprintf("%s %d keys (%.1f%%), %.1f MB (%.1f%%)", n.Addr, n.Keys, 100*n.KeysShare,
			float64(n.Memory)/1e6, 100*n.MemShare))
	}
	fmt.Fprintf(w, "  keys and memory at the end: %s\n", strings.Join(km, "; "))
}

// writeReconcile prints the reconcile curve (-reconcile).
func writeReconcile(w io.Writer, r *Report) {
	if len(r.Reconcile) == 0 {
		return
	}
	fmt.Fprintln(w, "\nreconcile -fix against the simulator (each subscription with 13 paid invoices; Redis empty before):")
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "subscriptions\tpaid invoices\twall time\tpeak RSS\tlist requests\trate\tranges\trequests/rate\tsetup\treconcile CPU\tsimulator CPU\tload average\t")
	for _, rc := range r.Reconcile {
		fmt.Fprintf(tw, "%d\t%d\t%.1fs\t%.0f MB\t%d\t%g/s\t%d\t%.1fs\t%.0fs\t%.1fs\t%.1fs\t%s\t\n", rc.Subscriptions, rc.Invoices, rc.Seconds,
			rc.MaxRSSMB, rc.Requests, rc.Rate, rc.Partitions, rc.RateBound, rc.SetupSeconds, rc.ReconcileCPU, rc.SimCPU, rc.LoadAvg)
	}
	tw.Flush()
}
