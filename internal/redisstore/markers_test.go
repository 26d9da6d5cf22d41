package redisstore

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/billing-adapter/billing-adapter/internal/promo"
	"github.com/billing-adapter/billing-adapter/internal/testutil/redistest"
	"github.com/redis/go-redis/v9"
)

// unmarkedLines lists every ledger line in Redis (every ba:{X}:rd hash)
// whose customer lacks the marker ba:{cus}:codes ∋ X.
func unmarkedLines(t *testing.T, s *Store) []string {
	t.Helper()
	ctx := context.Background()
	var missing []string
	iter := s.rdb.Scan(ctx, 0, "ba:{*}:rd", 1000).Iterator()
	for iter.Next(ctx) {
		key := iter.Val()
		codeID := strings.TrimSuffix(strings.TrimPrefix(key, "ba:{"), "}:rd")
		if err := s.EachRedemption(ctx, codeID, func(r *promo.Redemption) error {
			ok, err := s.rdb.SIsMember(ctx, customerCodesKey(r.Customer), codeID).Result()
			if err != nil {
				return err
			}
			if !ok {
				missing = append(missing, codeID+"/"+r.ID+" of "+r.Customer)
			}
			return nil
		}); err != nil {
			t.Fatal(err)
		}
	}
	if err := iter.Err(); err != nil {
		t.Fatal(err)
	}
	return missing
}

// Every path that makes a ledger line naming a customer writes the
// customer's marker first: apply (a new subscription) and subscribe (an
// existing one) reserve, a discount made outside the adapter is adopted by
// the discount, invoice or end event that shows it first, and reconcile -fix
// writes rebuilt ledgers; for a promo code and for a campaign (a code of the
// same ledger).
func TestEveryLedgerLineHasItsCustomerMarker(t *testing.T) {
	ctx := context.Background()
	rebuild := func(t *testing.T, s *Store, p *promo.PromoCode) {
		lines := []promo.RebuiltRedemption{{Redemption: &promo.Redemption{ID: "rd_rebuilt", PromoCodeID: p.ID, Customer: "cus_rebuilt",
			Subscription: "sub_rebuilt", DiscountID: "di_rebuilt", Source: promo.SourceStripe, State: promo.RedemptionPending,
			CreatedAt: now, ConfirmedAt: now, EffectiveAt: now}}}
		rb := &promo.Rebuilt{Codes: []*promo.PromoCode{p}, Ledgers: map[string][]promo.RebuiltRedemption{p.ID: lines}}
		cur := &promo.LedgerState{Codes: []*promo.PromoCode{p}, Ledgers: map[string][]*promo.Redemption{}}
		if _, err := s.ApplyRebuild(ctx, rb, cur, nil, map[string]bool{p.ID: true}, now); err != nil {
			t.Fatal(err)
		}
	}
	cases := []struct {
		name string
		run  func(t *testing.T, s *Store, codeID string)
	}{
		{"apply", func(t *testing.T, s *Store, id string) { mustReserve(t, s, id, "cus_apply", "owner-apply") }},
		{"subscribe", func(t *testing.T, s *Store, id string) { reserveOn(t, s, id, "cus_sub", "sub_1") }},
		{"outside discount created", func(t *testing.T, s *Store, id string) {
			mustObserve(t, s, id, disc("di_out", "cus_out", "sub_out", 0))
		}},
		{"outside discount first seen paid", func(t *testing.T, s *Store, id string) {
			mustCount(t, s, id, paid("in_out", disc("di_paid", "cus_paid", "sub_paid", time.Minute), "usd", 550))
		}},
		{"outside discount first seen ending", func(t *testing.T, s *Store, id string) {
			mustEnd(t, s, id, disc("di_end", "cus_end", "sub_end", time.Hour), promo.ReasonDeleted)
		}},
		{"reconcile -fix rebuild", func(t *testing.T, s *Store, id string) { rebuild(t, s, getCode(t, s, id)) }},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			s := newStore(t)
			p := rdCode(t, s)
			c.run(t, s, p.ID)
			if n := len(ledgerIDs(t, s, p.ID)); n == 0 {
				t.Fatal("the flow made no ledger line")
			}
			if missing := unmarkedLines(t, s); len(missing) > 0 {
				t.Fatalf("lines without their customer's marker: %v", missing)
			}
		})
	}
	t.Run("campaign apply", func(t *testing.T) {
		s := newStore(t)
		c := newCampaign(t, s, 10, "MK")
		r := newRD(c.ID, "cus_cmp", "owner-cmp")
		r.UniqueCode = "MKCODE"
		if _, _, err := s.Reserve(ctx, r, now); err != nil {
			t.Fatal(err)
		}
		if missing := unmarkedLines(t, s); len(missing) > 0 || len(ledgerIDs(t, s, c.ID)) == 0 {
			t.Fatalf("lines without their customer's marker: %v", missing)
		}
	})
}

// migrate-keys marks the customers of lines written before markers existed
// and sets the layout, after which a store trusts the markers; a store with
// codes but no layout key does not, an empty one writes the key itself.
func TestMigrateWritesMarkersAndLayout(t *testing.T) {
	ctx := context.Background()
	s := newStore(t)
	if ok, err := s.CheckLayout(ctx); err != nil || !ok || !s.MarkersInUse() {
		t.Fatalf("an empty store: %v %v", ok, err)
	}
	if v := s.rdb.Get(ctx, keyLayout).Val(); v != "2" {
		t.Fatalf("layout %q after an empty start", v)
	}
	s = newStore(t)
	p := rdCode(t, s)
	for i := range 3 {
		mustReserve(t, s, p.ID, fmt.Sprintf("cus_%d", i), fmt.Sprintf("owner-%d", i))
	}
	// As an older version left them: no markers, no layout key.
	s.rdb.Del(ctx, customerCodesKey("cus_0"), customerCodesKey("cus_1"), customerCodesKey("cus_2"))
	if ok, err := s.CheckLayout(ctx); err != nil || ok {
		t.Fatalf("a store with codes and no layout key: %v %v", ok, err)
	}
	if got := unmarkedLines(t, s); len(got) != 3 {
		t.Fatalf("unmarked before migrating: %v", got)
	}
	n, err := s.MigrateLegacyKeys(ctx)
	if err != nil || n.Markers != 3 {
		t.Fatalf("migrate: %+v %v", n, err)
	}
	if got := unmarkedLines(t, s); len(got) != 0 {
		t.Fatalf("unmarked after migrating: %v", got)
	}
	other := New(s.rdb, nil)
	if ok, err := other.CheckLayout(ctx); err != nil || !ok {
		t.Fatalf("after migrate-keys: %v %v", ok, err)
	}
	if n, err := s.MigrateLegacyKeys(ctx); err != nil || n != (MigrateCounts{}) {
		t.Fatalf("second run: %+v %v", n, err)
	}
}

// slotTrips counts round trips by the hash tags of the keys they touch.
type slotTrips struct {
	mu   sync.Mutex
	tags map[string]int
}

func (h *slotTrips) DialHook(next redis.DialHook) redis.DialHook { return next }

func (h *slotTrips) ProcessHook(next redis.ProcessHook) redis.ProcessHook {
	return func(ctx context.Context, cmd redis.Cmder) error {
		h.add([]redis.Cmder{cmd})
		return next(ctx, cmd)
	}
}

func (h *slotTrips) ProcessPipelineHook(next redis.ProcessPipelineHook) redis.ProcessPipelineHook {
	return func(ctx context.Context, cmds []redis.Cmder) error {
		h.add(cmds)
		return next(ctx, cmds)
	}
}

// add counts one trip per hash tag among cmds' key arguments.
func (h *slotTrips) add(cmds []redis.Cmder) {
	seen := map[string]bool{}
	for _, c := range cmds {
		for _, a := range c.Args() {
			s, ok := a.(string)
			if !ok || !strings.HasPrefix(s, "ba:{") {
				continue
			}
			tag, _, _ := strings.Cut(strings.TrimPrefix(s, "ba:{"), "}")
			seen[tag] = true
		}
	}
	h.mu.Lock()
	for tag := range seen {
		h.tags[tag]++
	}
	h.mu.Unlock()
}

func (h *slotTrips) take() map[string]int {
	h.mu.Lock()
	defer h.mu.Unlock()
	out := h.tags
	h.tags = map[string]int{}
	return out
}

// newValidateStore is a store with the snapshot on (maxAge) and the markers
// trusted, counting round trips in all and per hash tag.
func newValidateStore(t *testing.T, rdb *redis.Client, maxAge time.Duration) (*Store, *atomic.Int64, *slotTrips) {
	t.Helper()
	trips := &atomic.Int64{}
	tags := &slotTrips{tags: map[string]int{}}
	rdb.AddHook(redistest.TripCounter{N: trips})
	rdb.AddHook(tags)
	s := New(rdb, nil)
	s.SetValidateCodeMaxAge(maxAge)
	s.markersOK.Store(true)
	return s, trips, tags
}

// Validate of a hot promo code: one round trip, to the customer's slot,
// none to the code's while its snapshot is fresh; the customer who has a
// line (the marker) reads it from the code's slot; a new_users_only code
// reads the paid mark in the same trip; with the markers not trusted, or
// the snapshot off, validate reads the code's slot as before.
func TestValidateReadsTheCustomersSlot(t *testing.T) {
	ctx := context.Background()
	base := newStore(t)
	hot := rdCode(t, base)
	nu := rdCode(t, base, func(p *promo.PromoCode) { p.NewUsersOnly = true })
	held := mustReserve(t, base, hot.ID, "cus_held", "owner-held")
	if err := base.rdb.Set(ctx, paidKey("cus_paid"), "1", 0).Err(); err != nil {
		t.Fatal(err)
	}
	rdb := redis.NewClient(&redis.Options{Addr: srv.Addr})
	t.Cleanup(func() { rdb.Close() })
	s, trips, tags := newValidateStore(t, rdb, time.Hour)
	read := func(code, cus string) (promo.ValidateRead, int64, map[string]int) {
		t.Helper()
		tags.take()
		before := trips.Load()
		got, err := s.ReadForValidate(ctx, code, cus)
		if err != nil {
			t.Fatal(err)
		}
		return got, trips.Load() - before, tags.take()
	}
	// The first read learns the text, the second loads the snapshot.
	for range 2 {
		read(hot.Code, "cus_0")
		read(nu.Code, "cus_0")
	}
	for i := range 5 {
		cus := fmt.Sprintf("cus_%d", i+1)
		got, n, perTag := read(hot.Code, cus)
		if got.Code == nil || got.Code.ID != hot.ID || got.Held != nil || got.PaidRead {
			t.Fatalf("%s: %+v", cus, got)
		}
		if n != 1 || perTag[cus] != 1 || perTag[hot.ID] != 0 {
			t.Fatalf("%s: %d trips %v, want one to the customer's slot", cus, n, perTag)
		}
	}
	got, n, perTag := read(hot.Code, "cus_held")
	if got.Held == nil || got.Held.ID != held.ID || n != 2 || perTag["cus_held"] != 1 || perTag[hot.ID] != 1 {
		t.Fatalf("a customer with a line: %+v in %d trips %v", got.Held, n, perTag)
	}
	for cus, want := range map[string]bool{"cus_paid": true, "cus_new": false} {
		got, n, perTag := read(nu.Code, cus)
		if !got.PaidRead || got.Paid != want || n != 1 || perTag[cus] != 1 || perTag[nu.ID] != 0 {
			t.Fatalf("new_users_only, %s: %+v in %d trips %v", cus, got, n, perTag)
		}
	}
	s.markersOK.Store(false)
	if got, n, perTag := read(hot.Code, "cus_1"); got.Code.ID != hot.ID || n != 1 || perTag[hot.ID] != 1 || perTag["cus_1"] != 0 {
		t.Fatalf("markers not trusted: %d trips %v", n, perTag)
	}
	s.markersOK.Store(true)
	s.SetValidateCodeMaxAge(0)
	if got, n, perTag := read(hot.Code, "cus_1"); got.Code.ID != hot.ID || n != 1 || perTag[hot.ID] != 1 || perTag["cus_1"] != 0 {
		t.Fatalf("snapshot off: %d trips %v", n, perTag)
	}
}

// Concurrent validates of a code whose snapshot is stale share one read of
// the code's hash.
func TestCodeSnapshotReadIsShared(t *testing.T) {
	c := &codeSnaps{maxAge: time.Hour, m: map[string]*codeSnap{}, now: time.Now}
	var loads atomic.Int64
	release := make(chan struct{})
	load := func(context.Context) (*promo.PromoCode, error) {
		loads.Add(1)
		<-release
		return &promo.PromoCode{ID: "pc_1"}, nil
	}
	var wg sync.WaitGroup
	started := make(chan struct{}, 8)
	for range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			started <- struct{}{}
			if p, err := c.get(context.Background(), "pc_1", load); err != nil || p.ID != "pc_1" {
				t.Errorf("%+v %v", p, err)
			}
		}()
	}
	for range 8 {
		<-started
	}
	// Wait until the read is in flight before letting it answer.
	for loads.Load() == 0 {
		time.Sleep(time.Millisecond)
	}
	close(release)
	wg.Wait()
	if n := loads.Load(); n != 1 {
		t.Fatalf("%d reads of the code for concurrent validates, want 1", n)
	}
	c.drop("pc_1")
	if _, err := c.get(context.Background(), "pc_1", load); err != nil || loads.Load() != 2 {
		t.Fatalf("after drop: %d reads, %v", loads.Load(), err)
	}
}

// handClock is the time the snapshots of several stores read (codeSnaps.now),
// moved by hand.
type handClock struct {
	mu sync.Mutex
	t  time.Time
}

func newHandClock() *handClock { return &handClock{t: time.Now()} }

func (c *handClock) now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *handClock) advance(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

// The replica that changes a code sees the change in its next validate;
// another replica sees it once its snapshot is max age old, not before:
// with the snapshots' clock moved by hand, then on the real clock (polled
// for, with no upper bound but the test's own: the machine may be loaded).
func TestValidateSnapshotAge(t *testing.T) {
	ctx := context.Background()
	base := newStore(t)
	p := rdCode(t, base)
	const maxAge = 100 * time.Millisecond
	clock := newHandClock()
	replica := func() *Store {
		rdb := redis.NewClient(&redis.Options{Addr: srv.Addr})
		t.Cleanup(func() { rdb.Close() })
		s, _, _ := newValidateStore(t, rdb, maxAge)
		s.snaps.now = clock.now
		return s
	}
	advance := clock.advance
	a, b := replica(), replica()
	status := func(s *Store) promo.Status {
		t.Helper()
		got, err := s.ReadForValidate(ctx, p.Code, "cus_x")
		if err != nil {
			t.Fatal(err)
		}
		return got.Code.Status
	}
	for range 2 { // learn the text, then load the snapshot
		if status(a) != promo.StatusActive || status(b) != promo.StatusActive {
			t.Fatal("not active at first")
		}
	}
	setStatus(t, a, p.ID, promo.StatusInactive)
	if got := status(a); got != promo.StatusInactive {
		t.Fatalf("the replica that made the change validates it as %s", got)
	}
	advance(maxAge - time.Millisecond)
	if got := status(b); got != promo.StatusActive {
		t.Fatalf("replica B refreshed its snapshot before its max age: %s", got)
	}
	advance(time.Millisecond)
	if got := status(b); got != promo.StatusInactive {
		t.Fatalf("replica B still sees %s once its snapshot is max age old", got)
	}

	// The real clock: B's snapshot, read before A's change, is used for at
	// most maxAge.
	b.snaps.now = time.Now
	a.snaps.now = time.Now
	setStatus(t, a, p.ID, promo.StatusActive)
	changed := time.Now()
	for status(b) != promo.StatusActive {
		time.Sleep(maxAge / 20)
	}
	t.Logf("replica B saw the change after %s (max age %s)", time.Since(changed), maxAge)
}
