package redisstore

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/billing-adapter/billing-adapter/internal/promo"
	"github.com/billing-adapter/billing-adapter/internal/telemetry"
	"github.com/billing-adapter/billing-adapter/internal/testutil/redistest"
	"github.com/redis/go-redis/v9"
)

// failoverWindow is the longest the store may keep failing after a replica took over a killed master.
const failoverWindow = 5 * time.Second

// clusterWorkload is a steady stream of store calls, through one Store, that touch the catalog's slot ({catalog}:
// the status lists a code creation indexes), each code text's own slot (creation, lookup by code text) and many others (each code's {pc_ID}, each idempotency record's {idem:H}).
// It remembers every acknowledged write (a call that returned nil) and the time of every failed round.
type clusterWorkload struct {
	s    *Store
	seed *promo.PromoCode // an existing code, read by every round

	mu        sync.Mutex
	codes     map[string]ackedCode // code text -> acknowledged create
	idem      map[string]time.Time // idempotency key -> acknowledgement time
	firstErr  time.Time
	lastErr   time.Time
	lastErrIs error
	errs      int // failed rounds: an error, or slower than slowRound
	okAfter   int // successful rounds since the last failed one

	rounds atomic.Int64
}

type ackedCode struct {
	id string
	at time.Time
}

func newClusterWorkload(s *Store) *clusterWorkload {
	return &clusterWorkload{s: s, codes: map[string]ackedCode{}, idem: map[string]time.Time{}}
}

func failoverDraft(code string, n int64) *promo.PromoCode {
	stock := int64(3)
	p, err := promo.NewPromoCode(promo.CreateInput{Code: code, PromoType: promo.FlatAmount, AmountOff: "1.00",
		Currency: "usd", Stock: &stock}, now)
	if err != nil {
		panic(err) // the input is constant and valid
	}
	p.ID = fmt.Sprintf("pc_fo%08d", n)
	p.CreatedAt, p.UpdatedAt = now, now
	p.Stripe.State = promo.SyncProvisioning
	return p
}

// create makes and finishes one promo code; it is acknowledged when both steps returned nil.
func (w *clusterWorkload) create(ctx context.Context, n int64) error {
	p := failoverDraft(fmt.Sprintf("FAILOVER%d", n), n)
	got, _, err := w.s.BeginCreate(ctx, p, "failover", now, time.Minute)
	if err != nil {
		return err
	}
	got.Stripe = promo.StripeRefs{CouponID: "co_" + got.ID, PromotionCodeID: "promo_" + got.ID, Active: true,
		State: promo.SyncReady}
	if err := w.s.FinishCreate(ctx, got); err != nil {
		return err
	}
	w.mu.Lock()
	w.codes[got.Code] = ackedCode{id: got.ID, at: time.Now()}
	w.mu.Unlock()
	return nil
}

// request runs one idempotent request's record to completion.
func (w *clusterWorkload) request(ctx context.Context, n int64) error {
	key := fmt.Sprintf("failover\x00key-%d", n)
	b, err := w.s.BeginRequest(ctx, key, "fp", time.Minute)
	if err != nil {
		return err
	}
	if b.Outcome != promo.IdempotencyProceed {
		return fmt.Errorf("BeginRequest %q: outcome %v", key, b.Outcome)
	}
	if err := w.s.CompleteRequest(ctx, key, b.Token, promo.StoredResponse{Status: 201, ContentType: "application/json",
		Body: []byte(fmt.Sprintf(`{"n":%d}`, n))}, time.Hour); err != nil {
		return err
	}
	w.mu.Lock()
	w.idem[key] = time.Now()
	w.mu.Unlock()
	return nil
}

// read looks the seed code up by text (catalog slot) and by ID (its own slot).
func (w *clusterWorkload) read(ctx context.Context) error {
	p, err := w.s.GetByCode(ctx, w.seed.Code)
	if err != nil {
		return err
	}
	if p.ID != w.seed.ID {
		return fmt.Errorf("GetByCode(%s) = %s, want %s", w.seed.Code, p.ID, w.seed.ID)
	}
	_, err = w.s.Get(ctx, w.seed.ID)
	return err
}

// slowRound is how long a round may take before it counts as a failure: rounds take milliseconds, and a service
// answering after seconds is down for its clients.
const slowRound = time.Second

// round is one create, one request and one read.
func (w *clusterWorkload) round(ctx context.Context, n int64) {
	opCtx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	start := time.Now()
	err := errors.Join(named("create", w.create(opCtx, n)), named("request", w.request(opCtx, n)),
		named("read", w.read(opCtx)))
	if ctx.Err() != nil {
		return // stopping
	}
	if d := time.Since(start); err == nil && d > slowRound {
		err = fmt.Errorf("round took %v", d.Round(time.Millisecond))
	}
	w.rounds.Add(1)
	w.mu.Lock()
	defer w.mu.Unlock()
	if err != nil {
		t := time.Now()
		if w.errs == 0 {
			w.firstErr = t
		}
		w.errs++
		w.lastErr, w.lastErrIs, w.okAfter = t, err, 0
		return
	}
	w.okAfter++
}

// named prefixes a failed step's error with the step.
func named(step string, err error) error {
	if err != nil {
		return fmt.Errorf("%s: %w", step, err)
	}
	return nil
}

// run starts workers rounds in parallel, each paced to one round per interval, until ctx ends.
func (w *clusterWorkload) run(ctx context.Context, workers int, interval time.Duration) *sync.WaitGroup {
	var seq atomic.Int64
	var wg sync.WaitGroup
	for i := 0; i < workers; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			tick := time.NewTicker(interval)
			defer tick.Stop()
			for {
				w.round(ctx, seq.Add(1))
				select {
				case <-ctx.Done():
					return
				case <-tick.C:
				}
			}
		}()
	}
	return &wg
}

func (w *clusterWorkload) snapshot() (errs, okAfter int, firstErr, lastErr time.Time, lastErrIs error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.errs, w.okAfter, w.firstErr, w.lastErr, w.lastErrIs
}

// TestClusterFailoverWindow takes the master of the catalog's slot away under a steady stream of store calls and
// checks that the calls stop failing within failoverWindow of its replica's promotion, and that every acknowledged
// write, before and after, is readable afterwards. The master is either killed (SIGKILL: connections are refused at
// once) or frozen (SIGSTOP: connections stay open and nothing answers, as with a hung host or a partition).
func TestClusterFailoverWindow(t *testing.T) {
	t.Run("kill", func(t *testing.T) { testClusterFailover(t, (*redistest.Server).Kill) })
	t.Run("freeze", func(t *testing.T) { testClusterFailover(t, (*redistest.Server).Pause) })
}

func testClusterFailover(t *testing.T, takeDown func(*redistest.Server) error) {
	c := redistest.StartCluster(t, 3, 1)
	rdb, err := Connect("", c.Addrs(), "")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { rdb.Close() })
	s := New(rdb, nil)
	ctx := context.Background()

	w := newClusterWorkload(s)
	w.seed = failoverDraft("FAILOVERSEED", 0)
	if _, _, err := s.BeginCreate(ctx, w.seed, "failover", now, time.Minute); err != nil {
		t.Fatal(err)
	}
	finish(t, s, w.seed)

	runCtx, stop := context.WithCancel(ctx)
	wg := w.run(runCtx, 4, 5*time.Millisecond)
	stopped := false
	stopWorkload := func() {
		if !stopped {
			stopped = true
			stop()
			wg.Wait()
		}
	}
	t.Cleanup(stopWorkload)

	// Warm up: the workload runs cleanly against the healthy cluster.
	waitFor(t, 20*time.Second, "50 clean rounds before the kill", func() bool {
		errs, okAfter, _, _, lastErrIs := w.snapshot()
		if errs > 0 {
			t.Fatalf("errors before the kill: %v", lastErrIs)
		}
		return okAfter >= 50
	})

	old := c.MasterOf(t, activeList)
	killed := time.Now()
	if err := takeDown(old); err != nil {
		t.Fatal(err)
	}
	promoted, promotedAt := c.WaitFailover(t, old, 30*time.Second)
	t.Logf("took down master %s of %s; replica %s promoted %v later", old.Addr, activeList, promoted.Addr,
		promotedAt.Sub(killed).Round(time.Millisecond))

	// Recovered: one second of clean rounds after the last error, or give up well after the window.
	giveUp := promotedAt.Add(failoverWindow + 10*time.Second)
	for {
		errs, okAfter, _, lastErr, _ := w.snapshot()
		if errs > 0 && okAfter >= 20 && time.Since(lastErr) > time.Second {
			break
		}
		if time.Now().After(giveUp) {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	stopWorkload()

	errs, _, firstErr, lastErr, lastErrIs := w.snapshot()
	if errs == 0 {
		t.Fatal("no round failed: losing the master was not noticed (wrong node?)")
	}
	window := lastErr.Sub(promotedAt)
	t.Logf("%d rounds, %d failed: first failure %v after the master went, last %v after the promotion (%v); limit %v",
		w.rounds.Load(), errs, firstErr.Sub(killed).Round(time.Millisecond), window.Round(time.Millisecond),
		lastErrIs, failoverWindow)
	if window > failoverWindow {
		t.Errorf("rounds kept failing %v after the promotion (last: %v), want at most %v",
			window.Round(time.Millisecond), lastErrIs, failoverWindow)
	}

	// Every acknowledged write is there, read through the same client.
	w.mu.Lock()
	defer w.mu.Unlock()
	var before, after, lost int
	report := func(format string, args ...any) {
		if lost++; lost <= 5 {
			t.Errorf(format, args...)
		}
	}
	for code, a := range w.codes {
		if a.at.Before(killed) {
			before++
		} else {
			after++
		}
		p, err := s.GetByCode(ctx, code)
		if err != nil || p.ID != a.id {
			report("code %s acknowledged %v after the kill: GetByCode = %v, %v", code, a.at.Sub(killed), p, err)
			continue
		}
		if _, err := s.Get(ctx, a.id); err != nil {
			report("code %s (%s) acknowledged %v after the kill: Get: %v", code, a.id, a.at.Sub(killed), err)
		}
	}
	for key, at := range w.idem {
		b, err := s.BeginRequest(ctx, key, "fp", time.Minute)
		if err != nil || b.Outcome != promo.IdempotencyReplay || b.Response.Status != 201 {
			report("request %q acknowledged %v after the kill: BeginRequest = %+v, %v", key, at.Sub(killed), b, err)
		}
	}
	if lost > 0 {
		t.Errorf("%d acknowledged writes not readable after the failover", lost)
	}
	t.Logf("checked %d codes acknowledged before the kill, %d after, %d request records", before, after, len(w.idem))
	if before == 0 || after == 0 {
		t.Errorf("want acknowledged creates before and after the failover (before %d, after %d)", before, after)
	}
}

// TestClusterAcknowledgesWritesOnceReplicated: with the only replica of the catalog's master frozen, a write to the
// catalog is applied by the master but not reported done; it is once the replica runs again and has it. Then the
// replica's copy survives the master's death.
func TestClusterAcknowledgesWritesOnceReplicated(t *testing.T) {
	// Long enough that the replica's confirmation, not the timeout, ends the wait however loaded the machine.
	defer func(d time.Duration) { replicaAckTimeout = d }(replicaAckTimeout)
	replicaAckTimeout = 20 * time.Second

	c := redistest.StartCluster(t, 3, 1)
	rdb, err := Connect("", c.Addrs(), "")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { rdb.Close() })
	s := New(rdb, nil)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()

	p := failoverDraft("REPLICATED", 1)
	// FinishCreate's first write is the code's record: no earlier write of it can wait on the paused replica.
	master := c.MasterOf(t, codeKey(p.ID))
	replicas := c.ReplicasOf(t, master)
	if len(replicas) != 1 {
		t.Fatalf("%d replicas of %s, want 1", len(replicas), master.Addr)
	}
	replica := replicas[0]
	if _, _, err := s.BeginCreate(ctx, p, "replicated", now, time.Minute); err != nil {
		t.Fatal(err)
	}
	p.Stripe = promo.StripeRefs{CouponID: "co_1", PromotionCodeID: "promo_1", Active: true, State: promo.SyncReady}

	if err := replica.Pause(); err != nil {
		t.Fatal(err)
	}
	resumed := false
	defer func() {
		if !resumed {
			_ = replica.Resume()
		}
	}()
	done := make(chan error, 1)
	go func() { done <- s.FinishCreate(ctx, p) }()

	// The master applies the record (FinishCreate's first write) ...
	appliedBy := time.Now().Add(20 * time.Second)
	for {
		if st, _ := c.Client(master).HGet(ctx, codeKey(p.ID), "state").Result(); st == string(promo.SyncReady) {
			break
		}
		select {
		case err := <-done:
			t.Fatalf("FinishCreate returned %v before the master had the record", err)
		default:
		}
		if time.Now().After(appliedBy) {
			t.Fatal("the master never got the record")
		}
		time.Sleep(2 * time.Millisecond)
	}
	// ... but FinishCreate does not return while no replica has it.
	select {
	case err := <-done:
		t.Fatalf("FinishCreate returned (%v) while the only replica was frozen: a write acknowledged before any "+
			"replica had it is lost if the master dies now", err)
	case <-time.After(500 * time.Millisecond):
	}

	resumed = true
	if err := replica.Resume(); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("FinishCreate after the replica came back: %v", err)
		}
	case <-time.After(20 * time.Second):
		t.Fatal("FinishCreate did not return after the replica came back")
	}
	if err := c.Client(replica).ReadOnly(ctx).Err(); err != nil {
		t.Fatal(err)
	}
	if st, err := c.Client(replica).HGet(ctx, codeKey(p.ID), "state").Result(); err != nil || st != string(promo.SyncReady) {
		t.Fatalf("acknowledged, but the replica has state %q, %v", st, err)
	}

	// The master dies at once: the promoted replica serves the acknowledged write.
	if err := master.Kill(); err != nil {
		t.Fatal(err)
	}
	c.WaitFailover(t, master, 30*time.Second)
	waitFor(t, 20*time.Second, "the code readable after the failover", func() bool {
		got, err := s.GetByCode(ctx, p.Code)
		return err == nil && got.ID == p.ID
	})
}

// TestClusterWritesWithoutReplica: a master with no replica left still takes writes; only the first of a burst
// waits for a confirmation that cannot come, and every write is counted as unconfirmed.
func TestClusterWritesWithoutReplica(t *testing.T) {
	c := redistest.StartCluster(t, 3, 1)
	rdb, err := Connect("", c.Addrs(), "")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { rdb.Close() })
	m := telemetry.New()
	s := New(rdb, m)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()

	master := c.MasterOf(t, codeTextKey("NOREPLICA"))
	for _, r := range c.ReplicasOf(t, master) {
		if err := r.Kill(); err != nil {
			t.Fatal(err)
		}
	}
	waitFor(t, 20*time.Second, "the master to see its replica gone", func() bool {
		info, err := c.Client(master).Info(ctx, "replication").Result()
		return err == nil && strings.Contains(info, "connected_slaves:0\r\n")
	})

	const writes = 10
	start := time.Now()
	for i := 0; i < writes; i++ {
		if err := s.ReleaseProvision(ctx, "NOREPLICA", "owner"); err != nil { // one text: one slot, of that master
			t.Fatalf("write %d: %v", i, err)
		}
	}
	took := time.Since(start)
	t.Logf("%d writes to a master without replica took %v", writes, took.Round(time.Millisecond))
	if limit := replicaAckTimeout + time.Second; took > limit {
		t.Errorf("%d writes took %v, want under %v (one wait for the missing replica, not one per write)",
			writes, took.Round(time.Millisecond), limit)
	}
	if got := redisErrorCounts(t, m)["wait"]; got != writes {
		t.Errorf("billing_redis_errors_total{command=\"wait\"} = %v, want %d (every write unconfirmed)", got, writes)
	}
}

func TestTopologyChanged(t *testing.T) {
	rdb := redis.NewClient(&redis.Options{Addr: srv.Addr})
	defer rdb.Close()
	// redisErr is the error go-redis returns when Redis answers msg.
	redisErr := func(msg string) error {
		err := rdb.Eval(context.Background(), "return redis.error_reply(ARGV[1])", nil, msg).Err()
		if err == nil || err.Error() != msg {
			t.Fatalf("error reply %q came back as %v", msg, err)
		}
		return err
	}
	for _, c := range []struct {
		err  error
		want bool
	}{
		{nil, false},
		{redis.Nil, false},
		{context.Canceled, false},
		{redis.ErrClosed, false},
		{rdb.Eval(context.Background(), "return redis.call('NOSUCHCOMMAND')", nil).Err(), false},
		{redisErr("WRONGTYPE Operation against a key holding the wrong kind of value"), false},
		{redisErr("MOVED 3999 127.0.0.1:6381"), false}, // go-redis reloads by itself
		{redisErr("CLUSTERDOWN The cluster is down"), true},
		{redisErr("MASTERDOWN Link with MASTER is down"), true},
		{redisErr("LOADING Redis is loading the dataset in memory"), true},
		{redisErr("READONLY You can't write against a read only replica."), true},
		{io.EOF, true},
		{syscall.ECONNREFUSED, true},
		{context.DeadlineExceeded, true},
	} {
		if got := topologyChanged(c.err); got != c.want {
			t.Errorf("topologyChanged(%v) = %v, want %v", c.err, got, c.want)
		}
	}
}

// waitFor polls cond every 20 ms until it holds, failing the test after timeout.
func waitFor(t *testing.T, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for %s", timeout, what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}
