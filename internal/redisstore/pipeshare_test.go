package redisstore

import (
	"context"
	"errors"
	"fmt"
	"net"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/billing-adapter/billing-adapter/internal/promo"
	"github.com/redis/go-redis/v9"
)

// gateHook holds the first held pipelines of the test's commands until
// release is closed, and counts those pipelines and the commands in each
// (not the connection's own HELLO and CLIENT SETINFO).
type gateHook struct {
	held    int
	release chan struct{}
	mu      sync.Mutex
	sizes   []int
}

func (h *gateHook) DialHook(next redis.DialHook) redis.DialHook { return next }

func (h *gateHook) ProcessHook(next redis.ProcessHook) redis.ProcessHook { return next }

func (h *gateHook) ProcessPipelineHook(next redis.ProcessPipelineHook) redis.ProcessPipelineHook {
	return func(ctx context.Context, cmds []redis.Cmder) error {
		if n := cmds[0].Name(); n != "sismember" && n != "exists" && n != "evalsha" && n != "set" {
			return next(ctx, cmds)
		}
		h.mu.Lock()
		h.sizes = append(h.sizes, len(cmds))
		hold := len(h.sizes) <= h.held
		h.mu.Unlock()
		if hold {
			<-h.release
		}
		return next(ctx, cmds)
	}
}

func (h *gateHook) pipelines() []int {
	h.mu.Lock()
	defer h.mu.Unlock()
	return append([]int(nil), h.sizes...)
}

func (p *pipeShare) waitingNow() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return len(p.waiting)
}

// While maxSending pipelines are on their way, later callers wait and then
// share one pipeline; each caller gets its own replies, and a command's
// error stays its own.
func TestPipeShareCallersShareAPipeline(t *testing.T) {
	ctx := context.Background()
	s := newStore(t)
	for i := range 20 {
		if i%2 == 0 {
			if err := s.rdb.SAdd(ctx, fmt.Sprintf("ps:%d", i), "m").Err(); err != nil {
				t.Fatal(err)
			}
		}
	}
	if err := s.rdb.Set(ctx, "ps:string", "x", 0).Err(); err != nil {
		t.Fatal(err)
	}
	rdb := redis.NewClient(&redis.Options{Addr: srv.Addr})
	t.Cleanup(func() { rdb.Close() })
	gate := &gateHook{held: maxSending, release: make(chan struct{})}
	rdb.AddHook(gate)
	p := &pipeShare{rdb: rdb}

	type result struct {
		i    int
		cmds []*redis.BoolCmd
	}
	results := make(chan result, 20)
	call := func(ctx context.Context, i int, keys ...string) {
		cmds := make([]redis.Cmder, len(keys))
		bools := make([]*redis.BoolCmd, len(keys))
		for k, key := range keys {
			bools[k] = redis.NewBoolCmd(ctx, "sismember", key, "m")
			cmds[k] = bools[k]
		}
		p.do(ctx, cmds...)
		results <- result{i, bools}
	}
	// Two callers fill the pipelines on their way (held by the gate).
	for i := range maxSending {
		go call(ctx, i, fmt.Sprintf("ps:%d", i))
	}
	for len(gate.pipelines()) < maxSending {
		time.Sleep(time.Millisecond)
	}
	// Ten more wait: one with two commands, one whose command fails.
	for i := maxSending; i < maxSending+10; i++ {
		switch i {
		case 3:
			go call(ctx, i, "ps:3", "ps:4")
		case 5:
			go call(ctx, i, "ps:string")
		default:
			go call(ctx, i, fmt.Sprintf("ps:%d", i))
		}
		for p.waitingNow() < i-maxSending+1 {
			time.Sleep(time.Millisecond)
		}
	}
	close(gate.release)
	for range maxSending + 10 {
		r := <-results
		for k, c := range r.cmds {
			key := c.Args()[1].(string)
			switch {
			case r.i == 5:
				if c.Err() == nil || c.Err().Error()[:9] != "WRONGTYPE" {
					t.Errorf("caller 5: err %v, want its own WRONGTYPE", c.Err())
				}
			case c.Err() != nil:
				t.Errorf("caller %d, command %d (%s): %v", r.i, k, key, c.Err())
			default:
				var n int
				fmt.Sscanf(key, "ps:%d", &n)
				if c.Val() != (n%2 == 0) {
					t.Errorf("caller %d: %s member %v, want %v", r.i, key, c.Val(), n%2 == 0)
				}
			}
		}
	}
	sizes := gate.pipelines()
	if len(sizes) != maxSending+1 || sizes[maxSending] != 11 {
		t.Fatalf("pipelines of %v commands, want %d of one and then one of the 11 commands that waited", sizes, maxSending)
	}
	if p.sending != 0 || len(p.waiting) != 0 {
		t.Fatalf("after the calls: %d sending, %d waiting", p.sending, len(p.waiting))
	}
}

// Under load every caller gets its own replies, and callers share
// pipelines.
func TestPipeShareUnderLoad(t *testing.T) {
	ctx := context.Background()
	s := newStore(t)
	const callers, rounds = 64, 40
	for i := range callers * rounds {
		if i%3 == 0 {
			if err := s.rdb.SAdd(ctx, fmt.Sprintf("pl:%d", i), "m").Err(); err != nil {
				t.Fatal(err)
			}
		}
	}
	rdb := redis.NewClient(&redis.Options{Addr: srv.Addr})
	t.Cleanup(func() { rdb.Close() })
	gate := &gateHook{}
	rdb.AddHook(gate)
	p := &pipeShare{rdb: rdb}
	var wrong atomic.Int64
	var wg sync.WaitGroup
	for g := range callers {
		wg.Go(func() {
			for r := range rounds {
				i := g*rounds + r
				m := redis.NewBoolCmd(ctx, "sismember", fmt.Sprintf("pl:%d", i), "m")
				e := redis.NewIntCmd(ctx, "exists", fmt.Sprintf("pl:%d", i))
				p.do(ctx, m, e)
				if m.Err() != nil || e.Err() != nil || m.Val() != (i%3 == 0) || (e.Val() == 1) != (i%3 == 0) {
					wrong.Add(1)
				}
			}
		})
	}
	wg.Wait()
	if wrong.Load() != 0 {
		t.Fatalf("%d of %d calls got replies not theirs", wrong.Load(), callers*rounds)
	}
	sizes := gate.pipelines()
	total := 0
	for _, n := range sizes {
		total += n
	}
	if total != 2*callers*rounds || len(sizes) >= callers*rounds {
		t.Fatalf("%d commands in %d pipelines for %d calls: want every command once, and some pipelines shared", total, len(sizes), callers*rounds)
	}
	t.Logf("%d calls in %d pipelines", callers*rounds, len(sizes))
}

// With Redis down every caller gets the error, none hangs.
func TestPipeShareRedisDown(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close() // nothing listens there now
	rdb := redis.NewClient(&redis.Options{Addr: addr, MaxRetries: -1, DialTimeout: time.Second, DialerRetries: 1})
	t.Cleanup(func() { rdb.Close() })
	p := &pipeShare{rdb: rdb}
	var wg sync.WaitGroup
	var failed atomic.Int64
	for i := range 20 {
		wg.Go(func() {
			c := redis.NewBoolCmd(context.Background(), "sismember", fmt.Sprintf("k%d", i), "m")
			p.do(context.Background(), c)
			if c.Err() != nil {
				failed.Add(1)
			}
		})
	}
	wg.Wait()
	if failed.Load() != 20 {
		t.Fatalf("%d of 20 callers got an error", failed.Load())
	}
}

// A webhook's event claims, sent in shared pipelines by concurrent
// deliveries: of many deliveries of one event exactly one claims it, the
// others see it in flight, then done once finished; Redis without the
// script (flushed) runs it all the same; a finished event keeps its mark
// for keep.
func TestEventClaimsInSharedPipelines(t *testing.T) {
	ctx := context.Background()
	s := newStore(t)
	gate := &gateHook{}
	s.rdb.AddHook(gate)
	for _, flushed := range []bool{false, true} {
		if flushed {
			if err := s.rdb.ScriptFlush(ctx).Err(); err != nil {
				t.Fatal(err)
			}
		}
		const events, deliveries = 20, 8
		var news, inflight atomic.Int64
		var wg sync.WaitGroup
		for e := range events {
			for range deliveries {
				wg.Go(func() {
					out, token, err := s.BeginEvent(ctx, fmt.Sprintf("evt_%v_%d", flushed, e), time.Minute)
					switch {
					case err != nil:
						t.Errorf("event %d: %v", e, err)
					case out == promo.EventNew && token != "":
						news.Add(1)
					case out == promo.EventInFlight:
						inflight.Add(1)
					default:
						t.Errorf("event %d: outcome %v token %q", e, out, token)
					}
				})
			}
		}
		wg.Wait()
		if news.Load() != events || inflight.Load() != events*(deliveries-1) {
			t.Fatalf("flushed %v: %d claims, %d in flight; want %d and %d", flushed, news.Load(), inflight.Load(), events, events*(deliveries-1))
		}
		for e := range events {
			id := fmt.Sprintf("evt_%v_%d", flushed, e)
			if err := s.FinishEvent(ctx, id, "", time.Hour); err != nil {
				t.Fatal(err)
			}
			if out, _, err := s.BeginEvent(ctx, id, time.Minute); err != nil || out != promo.EventDone {
				t.Fatalf("%s after finish: %v %v", id, out, err)
			}
			if ttl := s.rdb.PTTL(ctx, eventKey(id)).Val(); ttl <= 59*time.Minute || ttl > time.Hour {
				t.Fatalf("%s kept %v, want an hour", id, ttl)
			}
		}
	}
	if n := len(gate.pipelines()); n == 0 {
		t.Fatal("no event claim went through a shared pipeline")
	}
}

// A caller whose context ends while its commands wait leaves at once, its
// commands unsent and carrying the context's error; the others are sent.
func TestPipeShareWaitingCallerLeavesOnItsDeadline(t *testing.T) {
	ctx := context.Background()
	newStore(t)
	rdb := redis.NewClient(&redis.Options{Addr: srv.Addr})
	t.Cleanup(func() { rdb.Close() })
	gate := &gateHook{held: maxSending, release: make(chan struct{})}
	rdb.AddHook(gate)
	p := &pipeShare{rdb: rdb}
	var wg sync.WaitGroup
	for i := range maxSending + 1 { // two held on their way, one waiting
		wg.Go(func() {
			c := redis.NewBoolCmd(ctx, "sismember", fmt.Sprintf("stay:%d", i), "m")
			p.do(ctx, c)
			if c.Err() != nil {
				t.Errorf("caller %d: %v", i, c.Err())
			}
		})
		for len(gate.pipelines()) < min(i+1, maxSending) || i == maxSending && p.waitingNow() < 1 {
			time.Sleep(time.Millisecond)
		}
	}
	dctx, cancel := context.WithTimeout(ctx, 20*time.Millisecond)
	defer cancel()
	leaving := redis.NewBoolCmd(ctx, "sismember", "leave", "m")
	start := time.Now()
	p.do(dctx, leaving) // waits behind the held pipelines until its deadline
	if !errors.Is(leaving.Err(), context.DeadlineExceeded) || time.Since(start) > 5*time.Second {
		t.Fatalf("after %v: %v, want its deadline", time.Since(start), leaving.Err())
	}
	if p.waitingNow() != 1 {
		t.Fatalf("%d calls waiting, want the one that stayed", p.waitingNow())
	}
	close(gate.release)
	wg.Wait()
	if sizes := gate.pipelines(); len(sizes) != maxSending+1 || sizes[maxSending] != 1 {
		t.Fatalf("pipelines of %v commands: the one that left was sent", sizes)
	}
}
