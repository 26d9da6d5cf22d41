package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"github.com/billing-adapter/billing-adapter/internal/testutil/redistest"
	"os"
	"slices"
	"strings"
	"testing"
	"time"
)

// Unit tests of the tool's own logic. None of them measures or asserts a
// duration of anything: they check arithmetic, parsing and formatting.

func TestPercentileNearestRank(t *testing.T) {
	var d []time.Duration
	for i := 100; i >= 1; i-- { // unsorted on purpose
		d = append(d, time.Duration(i)*time.Millisecond)
	}
	l := summarize(d)
	want := Latency{P50: 50 * time.Millisecond, P90: 90 * time.Millisecond, P99: 99 * time.Millisecond, Max: 100 * time.Millisecond}
	if l != want {
		t.Fatalf("summarize = %+v, want %+v", l, want)
	}
	if got := percentile([]time.Duration{7}, 99); got != 7 {
		t.Fatalf("one sample: %v", got)
	}
	if got := summarize(nil); got != (Latency{}) {
		t.Fatalf("no samples: %+v", got)
	}
	if got := percentile([]time.Duration{1, 2, 3, 4}, 50); got != 2 {
		t.Fatalf("p50 of 4 = %v, want 2 (nearest rank)", got)
	}
}

const commandStatsInfo = "# Commandstats\r\n" +
	"cmdstat_hget:calls=10,usec=20,usec_per_call=2.00,rejected_calls=0,failed_calls=0\r\n" +
	"cmdstat_evalsha:calls=4,usec=40,usec_per_call=10.00,rejected_calls=0,failed_calls=0\r\n" +
	"cmdstat_info:calls=3,usec=90,usec_per_call=30.00,rejected_calls=0,failed_calls=0\r\n" +
	"cmdstat_client|setinfo:calls=2,usec=1,usec_per_call=0.50,rejected_calls=0,failed_calls=0\r\n"

func TestParseCommandStatsAndDelta(t *testing.T) {
	before := parseCommandStats(commandStatsInfo)
	if before["hget"] != 10 || before["evalsha"] != 4 || before["client|setinfo"] != 2 {
		t.Fatalf("parsed %v", before)
	}
	after := parseCommandStats(strings.NewReplacer("calls=10,", "calls=30,", "calls=3,", "calls=5,").Replace(commandStatsInfo) +
		"cmdstat_hgetall:calls=10,usec=5\r\n")
	d := commandDelta(before, after)
	if len(d) != 2 || d["hget"] != 20 || d["hgetall"] != 10 {
		t.Fatalf("delta %v (info and unchanged commands must be left out)", d)
	}
	if d.Total() != 30 {
		t.Fatalf("total %d", d.Total())
	}
	top := d.top(10, 1)
	if len(top) != 1 || top[0].Command != "hget" || top[0].PerOp != 2 {
		t.Fatalf("top %+v", top)
	}
	ties := CommandStats{"b": 1, "a": 1}.top(1, 0)
	if ties[0].Command != "a" || ties[1].Command != "b" {
		t.Fatalf("ties are broken by name: %+v", ties)
	}
}

func TestInfoField(t *testing.T) {
	info := "# Memory\r\nused_memory:1048576\r\nused_memory_human:1.00M\r\n"
	if n, ok := infoField(info, "used_memory"); !ok || n != 1048576 {
		t.Fatalf("used_memory = %d %v", n, ok)
	}
	if _, ok := infoField(info, "used_memory_peak"); ok {
		t.Fatal("absent field found")
	}
}

const goBenchOutput = `goos: linux
goarch: amd64
pkg: github.com/billing-adapter/billing-adapter/cmd/billing-adapter
cpu: AMD EPYC
BenchmarkValidate-2             	    1000	    232801 ns/op	         3.000 redis-rt/op	         0 stripe-calls/op	    8995 B/op	     148 allocs/op
BenchmarkWebhookInvoicePaid-2   	    1000	    589196 ns/op	         9.000 redis-rt/op	         0 stripe-calls/op	   47680 B/op	     424 allocs/op
BenchmarkWebhookDuplicate-2     	    1000	    126234 ns/op	         1.000 redis-rt/op	         0 stripe-calls/op	   19316 B/op	      79 allocs/op
PASS
ok  	github.com/billing-adapter/billing-adapter/cmd/billing-adapter	7.785s
`

func TestParseGoBench(t *testing.T) {
	gb := parseGoBench(strings.NewReader(goBenchOutput))
	v, ok := gb["Validate"]
	if !ok || len(gb) != 3 {
		t.Fatalf("parsed %v", gb)
	}
	if v.N != 1000 || v.NsPerOp != 232801 || v.BytesPerOp != 8995 || v.AllocsPerOp != 148 || v.Metrics["redis-rt/op"] != 3 {
		t.Fatalf("Validate = %+v", v)
	}
	mix := handlerCost(gb, []weighted{{"WebhookInvoicePaid", 0.7}, {"WebhookDuplicate", 0.3}})
	if mix == nil || int(mix.AllocsPerOp+0.5) != 320 || int(mix.RedisRoundTripsPerOp*10+0.5) != 66 {
		t.Fatalf("mix = %+v", mix)
	}
	if handlerCost(gb, []weighted{{"Apply", 1}}) != nil {
		t.Fatal("a missing benchmark must give no handler cost")
	}
	if a, b := baselineTrips("webhook", gb); a != 9 || b != 1 {
		t.Fatalf("webhook trips %d/%d", a, b)
	}
	if a, _ := baselineTrips("validate", nil); a != 1 { // validate makes 1 round trip (the text hint)
		t.Fatalf("default validate trips %d", a)
	}
}

func TestWebhookPlan(t *testing.T) {
	const total, conc = 1000, 8
	plan := webhookPlan(total, conc, 0.3)
	var firstAt []int
	dups := 0
	for i, src := range plan {
		if src < 0 {
			firstAt = append(firstAt, i)
			continue
		}
		dups++
		if src >= len(firstAt) {
			t.Fatalf("delivery %d re-sends event %d that was not sent yet", i, src)
		}
		if i-firstAt[src] < 2*conc {
			t.Fatalf("delivery %d re-sends event %d only %d deliveries later", i, src, i-firstAt[src])
		}
	}
	if dups < 280 || dups > 300 {
		t.Fatalf("%d re-sends of %d, want about 30%%", dups, total)
	}
}

func TestSelected(t *testing.T) {
	all, mem, camp, err := selected("all")
	if err != nil || len(all) != 5 || !mem || !camp {
		t.Fatalf("all: %d %v %v %v", len(all), mem, camp, err)
	}
	two, mem, camp, err := selected("validate, memory,webhook")
	if err != nil || len(two) != 2 || two[0].name != "validate" || two[1].name != "webhook" || !mem || camp {
		t.Fatalf("list: %v %v %v %v", two, mem, camp, err)
	}
	if _, _, camp, err := selected("campaigns,validate-campaign"); err != nil || !camp {
		t.Fatalf("campaigns: %v %v", camp, err)
	}
	if _, _, _, err := selected("nope"); err == nil {
		t.Fatal("unknown scenario accepted")
	}
}

func TestParseFlagsDefaults(t *testing.T) {
	o, err := parseFlags([]string{"-n", "500"}, &bytes.Buffer{})
	if err != nil || o.n != 500 || o.conc != 64 || o.warmup != -1 || o.stripeN != 2000 || o.scenario != "all" {
		t.Fatalf("%+v %v", o, err)
	}
	if o, _ := parseFlags([]string{"-n", "300", "-stripe-n", "0"}, &bytes.Buffer{}); o.stripeN != 300 {
		t.Fatalf("-stripe-n 0 = %d, want -n", o.stripeN)
	}
	if _, err := parseFlags([]string{"-n", "0"}, &bytes.Buffer{}); err == nil {
		t.Fatal("-n 0 accepted")
	}
}

func sampleReport() *Report {
	r := &Report{Machine: Machine{CPU: "Test CPU", Cores: 2, MemoryGiB: "4.0", Go: "go1.26", OS: "linux/amd64"},
		Command: "billing-bench -n 100", Started: time.Date(2026, 11, 21, 12, 0, 0, 0, time.UTC),
		Scenarios: []ScenarioReport{
			{Scenario: "validate", N: 100, Concurrency: 64, RPS: 6000, Latency: LatencyMS{P50: 10, P90: 15, P99: 20, Max: 30},
				RedisCmdsPerOp: 4, RedisCommands: []CommandCount{{"hget", 2}, {"evalsha", 1}, {"hgetall", 1}},
				Handler:   &HandlerCost{AllocsPerOp: 125, BytesPerOp: 8200, RedisRoundTripsPerOp: 2, Benchmarks: "BenchmarkValidate"},
				CPUPerReq: 130,
				Baseline:  &Baseline{Kind: "validate", Trips: 2, RPS: 9000, Latency: LatencyMS{P99: 11}, PercentOfB: 66.7, CPUPerReq: 80}},
			{Scenario: "apply", N: 100, Concurrency: 64, RPS: 400, StripeCallsPerOp: 2, StripeTarget: 2,
				StripeCalls: map[string]float64{"GET /v1/subscriptions/{id}": 1, "POST /v1/subscriptions/{id}": 1},
				Errors:      1, ErrorStatuses: map[string]int{"409": 1}},
			{Scenario: "webhook", N: 100, Concurrency: 64, RPS: 3000, CPUPerReq: 200,
				Baseline: &Baseline{Kind: "webhook", RPS: 3900, PercentOfB: 76.9, CPUPerReq: 160}},
		},
		Cluster: clusterSample(),
		Memory:  &Memory{Codes: 10, Redemptions: 10, RedemptionCodes: 1, CodeKeyBytes: 900, RedemptionKeyBytes: 600},
	}
	r.Targets = evaluate(r)
	return r
}

func TestEvaluateTargets(t *testing.T) {
	got := map[string]bool{}
	for _, tg := range sampleReport().Targets {
		got[tg.Name] = tg.Met
	}
	want := map[string]bool{
		"validate Stripe calls per op": true, "validate errors": true, "validate throughput vs baseline": false,
		"webhook throughput vs baseline": true, "validate service CPU per request vs baseline": false,
		"webhook service CPU per request vs baseline":  true,
		"cluster: busiest slot's share of round trips": false, "cluster: busiest master's share of round trips": false,
		"validate p99 at 64 concurrent": false, "apply Stripe calls per op": true, "apply errors": false,
		"webhook events/s": false, "Redis memory per promo code (MEMORY USAGE)": true,
		"Redis memory per redemption (MEMORY USAGE)": false,
	}
	for name, met := range want {
		if m, ok := got[name]; !ok || m != met {
			t.Errorf("target %q: met=%v present=%v, want met=%v", name, m, ok, met)
		}
	}
}

func TestWriteTable(t *testing.T) {
	var b bytes.Buffer
	writeTable(&b, sampleReport())
	out := b.String()
	for _, want := range []string{
		"Test CPU, 2 cores, 4.0 GiB RAM", "command: billing-bench -n 100",
		"scenario", "req/s", "p99", "allocs/op", "vs baseline",
		"validate", "6000", "10.00ms", "20.00ms", "125", "8200", "67%",
		"baseline-validate", "9000",
		"hget 2.00, evalsha 1.00, hgetall 1.00",
		"GET /v1/subscriptions/{id} 1.00, POST /v1/subscriptions/{id} 1.00",
		"apply: 1 answers with status 409",
		"per promo code", "900 B", "<= 1024 B",
		"[MISSED] validate p99 at 64 concurrent", "[MISSED] validate throughput vs baseline",
		"validate      service 130 µs, baseline 80 µs (1.62x)",
		"50.0% (ba:{pc_hot}:code)", "whole run", "127.0.0.1:7001 50.0%",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("table lacks %q:\n%s", want, out)
		}
	}
	// Rows line up: every data row of the main table has the same width.
	lines := strings.Split(out, "\n")
	width := -1
	for _, l := range lines[3:7] {
		if width == -1 {
			width = len(l)
		} else if len(l) != width {
			t.Errorf("ragged table row %q", l)
		}
	}
}

func TestReportJSON(t *testing.T) {
	raw, err := json.Marshal(sampleReport())
	if err != nil {
		t.Fatal(err)
	}
	var back map[string]any
	if err := json.Unmarshal(raw, &back); err != nil {
		t.Fatal(err)
	}
	sc := back["scenarios"].([]any)[0].(map[string]any)
	if sc["requests_per_second"].(float64) != 6000 || sc["latency"].(map[string]any)["p99_ms"].(float64) != 20 {
		t.Fatalf("scenario JSON %v", sc)
	}
	if sc["baseline"].(map[string]any)["ours_percent_of_baseline"].(float64) != 66.7 {
		t.Fatalf("baseline JSON %v", sc["baseline"])
	}
	if back["memory"].(map[string]any)["code_memory_usage_bytes"].(float64) != 900 {
		t.Fatalf("memory JSON %v", back["memory"])
	}
}

func TestToMS(t *testing.T) {
	l := toMS(Latency{P50: 1500 * time.Microsecond, P99: 2*time.Millisecond + 345678*time.Nanosecond})
	if l.P50 != 1.5 || l.P99 != 2.346 {
		t.Fatalf("%+v", l)
	}
}

// clusterSample is what a monitor counted: the lines MONITOR prints, Lua's
// own commands and keyless commands left out of the shares.
func clusterSample() *ClusterShares {
	m := &monitor{byNode: map[string]int64{}, bySlot: map[int]int64{}, sample: map[int]string{}}
	for _, l := range []string{
		`1700000000.1 [0 127.0.0.1:5000] "EVALSHA" "abc" "3" "ba:{pc_hot}:code" "ba:{pc_hot}:rd" "ba:{pc_hot}:cust" "cus_1"`,
		`1700000000.1 [0 lua] "HGETALL" "ba:{pc_hot}:code"`,
		`1700000000.2 [0 127.0.0.1:5000] "GET" "ba:{sub_1}:claim"`,
		`1700000000.3 [0 127.0.0.1:5000] "WAIT" "1" "250"`,
	} {
		m.count("127.0.0.1:7001", l)
	}
	m.count("127.0.0.1:7002", `1700000000.4 [0 127.0.0.1:5001] "SET" "ba:evt:evt_1" "d" "PX" "1000"`)
	m.count("127.0.0.1:7002", `1700000000.5 [0 127.0.0.1:5001] "EVALSHA" "abc" "3" "ba:{pc_hot}:code" "x" "y"`)
	c := &ClusterShares{}
	c.add(m.shares(nil))
	c.masterOrder = []string{"127.0.0.1:7001", "127.0.0.1:7002"}
	c.finish()
	return c
}

func TestMonitorShares(t *testing.T) {
	c := clusterSample()
	if c.RoundTrips != 4 || c.NoKey != 1 {
		t.Fatalf("round trips %d (want 4: Lua's own command is not one), without key %d (want 1: WAIT)", c.RoundTrips, c.NoKey)
	}
	hot := redistest.KeySlot("ba:{pc_hot}:code")
	if c.TopSlots[0].Slot != hot || c.TopSlots[0].Share != 0.5 || c.MaxSlot != 0.5 {
		t.Fatalf("top slot %+v, want %d at 50%%", c.TopSlots[0], hot)
	}
	if c.MaxMaster != 0.5 || len(c.Masters) != 2 {
		t.Fatalf("masters %+v", c.Masters)
	}
	if got := quotedArgs(` "SET" "a\"b" "c"`); len(got) != 3 || got[1] != `a"b` {
		t.Fatalf("quotedArgs: %q", got)
	}
}

// The benchmark write-up's newest run (its first baseline-webhook row)
// states the round trips the baseline makes as the tool makes them (a doc
// check: the webhook baseline once said 9). Older runs keep what held then.
func TestBenchmarksDocStatesTheBaselineTrips(t *testing.T) {
	doc, err := os.ReadFile("../../docs/BENCHMARKS.md")
	if err != nil {
		t.Fatal(err)
	}
	trips, dup := baselineTrips("webhook", nil)
	want := fmt.Sprintf("%d/%d", trips, dup)
	found := false
	for _, line := range strings.Split(string(doc), "\n") {
		fields := strings.Fields(line)
		if len(fields) > 0 && fields[0] == "baseline-webhook" {
			found = true
			if !slices.Contains(fields, want) {
				t.Errorf("docs/BENCHMARKS.md: %q does not state the tool's %s round trips", line, want)
			}
			break
		}
	}
	if !found {
		t.Fatal("docs/BENCHMARKS.md has no baseline-webhook row")
	}
}
