package main

import (
	"bufio"
	"io"
	"math"
	"slices"
	"strconv"
	"strings"
	"time"
)

// Latency summarizes a set of request latencies.
type Latency struct {
	P50 time.Duration `json:"p50_ns"`
	P90 time.Duration `json:"p90_ns"`
	P99 time.Duration `json:"p99_ns"`
	Max time.Duration `json:"max_ns"`
}

// percentile is the nearest-rank percentile (p in (0,100]) of sorted.
func percentile(sorted []time.Duration, p float64) time.Duration {
	if len(sorted) == 0 {
		return 0
	}
	rank := int(math.Ceil(p / 100 * float64(len(sorted))))
	return sorted[min(max(rank, 1), len(sorted))-1]
}

// summarize sorts d in place and returns its percentiles.
func summarize(d []time.Duration) Latency {
	slices.Sort(d)
	if len(d) == 0 {
		return Latency{}
	}
	return Latency{P50: percentile(d, 50), P90: percentile(d, 90), P99: percentile(d, 99), Max: d[len(d)-1]}
}

// CommandStats is INFO commandstats: calls per command (lower case; a
// subcommand like "client|setname" keeps its bar).
type CommandStats map[string]int64

// parseCommandStats reads the "cmdstat_<name>:calls=N,usec=..." lines.
func parseCommandStats(info string) CommandStats {
	out := CommandStats{}
	for line := range strings.SplitSeq(info, "\n") {
		line = strings.TrimSpace(line)
		name, rest, ok := strings.Cut(line, ":")
		if !ok || !strings.HasPrefix(name, "cmdstat_") {
			continue
		}
		for field := range strings.SplitSeq(rest, ",") {
			k, v, _ := strings.Cut(field, "=")
			if k == "calls" {
				if n, err := strconv.ParseInt(v, 10, 64); err == nil {
					out[strings.TrimPrefix(name, "cmdstat_")] = n
				}
			}
		}
	}
	return out
}

// ignoredCommands are the tool's own commands, left out of the deltas.
var ignoredCommands = map[string]bool{"info": true, "ping": true, "hello": true, "client|setinfo": true,
	"client|setname": true, "config|get": true, "memory|usage": true}

// commandDelta is after - before, without the tool's own commands and
// without commands whose count did not change.
func commandDelta(before, after CommandStats) CommandStats {
	out := CommandStats{}
	for k, v := range after {
		if ignoredCommands[k] {
			continue
		}
		if d := v - before[k]; d > 0 {
			out[k] = d
		}
	}
	return out
}

// Total is the sum of the calls.
func (c CommandStats) Total() int64 {
	var n int64
	for _, v := range c {
		n += v
	}
	return n
}

// CommandCount is one command's calls per operation.
type CommandCount struct {
	Command string  `json:"command"`
	PerOp   float64 `json:"per_op"`
}

// top returns the commands by calls, most first (name breaks ties), as
// calls per op over n operations.
func (c CommandStats) top(n int, k int) []CommandCount {
	out := make([]CommandCount, 0, len(c))
	for name, v := range c {
		out = append(out, CommandCount{Command: name, PerOp: float64(v) / float64(max(n, 1))})
	}
	slices.SortFunc(out, func(a, b CommandCount) int {
		if a.PerOp != b.PerOp {
			if a.PerOp > b.PerOp {
				return -1
			}
			return 1
		}
		return strings.Compare(a.Command, b.Command)
	})
	if k > 0 && len(out) > k {
		out = out[:k]
	}
	return out
}

// infoField reads one "name:value" field of an INFO answer.
func infoField(info, name string) (int64, bool) {
	for line := range strings.SplitSeq(info, "\n") {
		k, v, ok := strings.Cut(strings.TrimSpace(line), ":")
		if ok && k == name {
			n, err := strconv.ParseInt(v, 10, 64)
			return n, err == nil
		}
	}
	return 0, false
}

// GoBench is one line of `go test -bench -benchmem` output.
type GoBench struct {
	Name        string             `json:"name"`
	N           int64              `json:"n"`
	NsPerOp     float64            `json:"ns_per_op"`
	BytesPerOp  float64            `json:"bytes_per_op"`
	AllocsPerOp float64            `json:"allocs_per_op"`
	Metrics     map[string]float64 `json:"metrics,omitempty"` // custom units, e.g. redis-rt/op
}

// parseGoBench reads benchmark result lines; names lose their "Benchmark"
// prefix and "-GOMAXPROCS" suffix (BenchmarkValidate-2 → Validate).
func parseGoBench(r io.Reader) map[string]GoBench {
	out := map[string]GoBench{}
	sc := bufio.NewScanner(r)
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		if len(f) < 4 || !strings.HasPrefix(f[0], "Benchmark") {
			continue
		}
		n, err := strconv.ParseInt(f[1], 10, 64)
		if err != nil {
			continue
		}
		name := strings.TrimPrefix(f[0], "Benchmark")
		if i := strings.LastIndexByte(name, '-'); i > 0 {
			if _, err := strconv.Atoi(name[i+1:]); err == nil {
				name = name[:i]
			}
		}
		b := GoBench{Name: name, N: n, Metrics: map[string]float64{}}
		for i := 2; i+1 < len(f); i += 2 {
			v, err := strconv.ParseFloat(f[i], 64)
			if err != nil {
				continue
			}
			switch f[i+1] {
			case "ns/op":
				b.NsPerOp = v
			case "B/op":
				b.BytesPerOp = v
			case "allocs/op":
				b.AllocsPerOp = v
			default:
				b.Metrics[f[i+1]] = v
			}
		}
		out[name] = b
	}
	return out
}
