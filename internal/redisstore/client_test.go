package redisstore

import (
	"bytes"
	"context"
	"encoding/json"
	"log/slog"
	"net/http/httptest"
	"strconv"
	"strings"
	"testing"

	"github.com/billing-adapter/billing-adapter/internal/telemetry"
	"github.com/redis/go-redis/v9"
)

// redisErrorCounts scrapes billing_redis_errors_total by command.
func redisErrorCounts(t *testing.T, m *telemetry.Metrics) map[string]float64 {
	t.Helper()
	rec := httptest.NewRecorder()
	m.Handler().ServeHTTP(rec, httptest.NewRequest("GET", "/metrics", nil))
	out := map[string]float64{}
	for line := range strings.SplitSeq(rec.Body.String(), "\n") {
		rest, ok := strings.CutPrefix(line, `billing_redis_errors_total{command="`)
		if !ok {
			continue
		}
		cmd, val, _ := strings.Cut(rest, `"} `)
		v, err := strconv.ParseFloat(val, 64)
		if err != nil {
			t.Fatalf("metrics line %q: %v", line, err)
		}
		out[cmd] = v
	}
	return out
}

// The error hook counts Redis failures, and only them: the error replies
// go-redis expects and handles itself are part of normal work.
func TestErrorHookCountsOnlyFailures(t *testing.T) {
	probe := redis.NewScript(`return 1`)
	tests := []struct {
		name string
		// identity leaves CLIENT SETINFO on (go-redis's default), as a
		// client not made by Connect does.
		identity bool
		run      func(ctx context.Context, rdb redis.UniversalClient) error
		want     map[string]float64
	}{
		{name: "a script's first run (NOSCRIPT, then EVAL)", run: func(ctx context.Context, rdb redis.UniversalClient) error {
			if err := rdb.ScriptFlush(ctx).Err(); err != nil {
				return err
			}
			return probe.Run(ctx, rdb, []string{"k"}).Err()
		}, want: map[string]float64{}},
		{name: "a missing key (redis.Nil)", run: func(ctx context.Context, rdb redis.UniversalClient) error {
			if err := rdb.Get(ctx, "missing").Err(); err != redis.Nil {
				return err
			}
			return nil
		}, want: map[string]float64{}},
		{name: "new connections with CLIENT SETINFO (refused before Redis 7.2)", identity: true,
			run: func(ctx context.Context, rdb redis.UniversalClient) error {
				return rdb.Ping(ctx).Err()
			}, want: map[string]float64{}},
		{name: "a caller that gave up", run: func(ctx context.Context, rdb redis.UniversalClient) error {
			cctx, cancel := context.WithCancel(ctx)
			cancel()
			_ = rdb.Get(cctx, "k").Err()
			return nil
		}, want: map[string]float64{}},
		{name: "a wrong type", run: func(ctx context.Context, rdb redis.UniversalClient) error {
			_ = rdb.HSet(ctx, "h", "f", "v").Err()
			_ = rdb.Get(ctx, "h").Err()
			return nil
		}, want: map[string]float64{"get": 1}},
		{name: "an unknown SCRIPT subcommand", run: func(ctx context.Context, rdb redis.UniversalClient) error {
			_ = rdb.Do(ctx, "SCRIPT", "NOSUCH").Err()
			return nil
		}, want: map[string]float64{"script": 1}},
		{name: "an unknown CLIENT subcommand of ours", run: func(ctx context.Context, rdb redis.UniversalClient) error {
			_ = rdb.Do(ctx, "CLIENT", "NOSUCH").Err()
			return nil
		}, want: map[string]float64{"client": 1}},
		{name: "a pipeline with a failed command", run: func(ctx context.Context, rdb redis.UniversalClient) error {
			_ = rdb.HSet(ctx, "h", "f", "v").Err()
			_, _ = rdb.Pipelined(ctx, func(p redis.Pipeliner) error {
				p.Get(ctx, "missing")
				p.Get(ctx, "h")
				return nil
			})
			return nil
		}, want: map[string]float64{"pipeline": 1}},
		{name: "a pipeline with only a missing key", run: func(ctx context.Context, rdb redis.UniversalClient) error {
			_, _ = rdb.Pipelined(ctx, func(p redis.Pipeliner) error {
				p.Get(ctx, "missing")
				return nil
			})
			return nil
		}, want: map[string]float64{}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var rdb redis.UniversalClient
			if tt.identity {
				rdb = redis.NewClient(&redis.Options{Addr: srv.Addr})
			} else {
				c, err := Connect(srv.URL(), nil, "")
				if err != nil {
					t.Fatal(err)
				}
				rdb = c
			}
			t.Cleanup(func() { rdb.Close() })
			m := telemetry.New()
			New(rdb, m) // before the first command: the hook sees the connection being set up
			ctx := context.Background()
			if err := rdb.FlushAll(ctx).Err(); err != nil {
				t.Fatal(err)
			}
			if err := tt.run(ctx, rdb); err != nil {
				t.Fatal(err)
			}
			if got := redisErrorCounts(t, m); !equalCounts(got, tt.want) {
				t.Fatalf("billing_redis_errors_total %v, want %v", got, tt.want)
			}
		})
	}
}

func equalCounts(a, b map[string]float64) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if b[k] != v {
			return false
		}
	}
	return true
}

// A stopped Redis counts: the dial and the command.
func TestErrorHookCountsAnOutage(t *testing.T) {
	rdb := redis.NewClient(&redis.Options{Addr: "127.0.0.1:1", MaxRetries: -1, DialerRetries: 1})
	t.Cleanup(func() { rdb.Close() })
	m := telemetry.New()
	New(rdb, m)
	if rdb.Ping(context.Background()).Err() == nil {
		t.Fatal("ping to a closed port succeeded")
	}
	if got := redisErrorCounts(t, m); got["dial"] == 0 || got["ping"] != 1 {
		t.Fatalf("billing_redis_errors_total %v", got)
	}
}

// go-redis's own log lines (one process-wide logger) go to the service's
// structured log.
func TestSetLoggerRoutesGoRedisLines(t *testing.T) {
	var buf bytes.Buffer
	SetLogger(slog.New(slog.NewJSONHandler(&buf, nil)))
	t.Cleanup(func() { SetLogger(nil) })
	rdb := redis.NewClient(&redis.Options{Addr: "127.0.0.1:1", MaxRetries: -1, DialerRetries: 1})
	t.Cleanup(func() { rdb.Close() })
	_ = rdb.Ping(context.Background()).Err() // go-redis logs the failed dial
	var line map[string]any
	if err := json.Unmarshal(bytes.TrimSpace(buf.Bytes()), &line); err != nil {
		t.Fatalf("not one JSON line: %q", buf.String())
	}
	if line["component"] != "redis" || line["level"] != "WARN" || !strings.Contains(line["detail"].(string), "failed to dial") {
		t.Fatalf("line %v", line)
	}
}
