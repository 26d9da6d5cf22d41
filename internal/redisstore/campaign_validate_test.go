package redisstore

import (
	"context"
	"errors"
	"fmt"
	"reflect"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/billing-adapter/billing-adapter/internal/promo"
	"github.com/redis/go-redis/v9"
)

// cmdLog records every command sent (each command of a pipeline too) as
// its lower-case name and string arguments.
type cmdLog struct {
	mu   sync.Mutex
	cmds [][]string
}

func (h *cmdLog) DialHook(next redis.DialHook) redis.DialHook { return next }

func (h *cmdLog) ProcessHook(next redis.ProcessHook) redis.ProcessHook {
	return func(ctx context.Context, cmd redis.Cmder) error {
		h.add(cmd)
		return next(ctx, cmd)
	}
}

func (h *cmdLog) ProcessPipelineHook(next redis.ProcessPipelineHook) redis.ProcessPipelineHook {
	return func(ctx context.Context, cmds []redis.Cmder) error {
		for _, c := range cmds {
			h.add(c)
		}
		return next(ctx, cmds)
	}
}

func (h *cmdLog) add(c redis.Cmder) {
	args := make([]string, 0, len(c.Args()))
	for _, a := range c.Args() {
		args = append(args, strings.ToLower(fmt.Sprint(a)))
	}
	h.mu.Lock()
	h.cmds = append(h.cmds, args)
	h.mu.Unlock()
}

func (h *cmdLog) take() [][]string {
	h.mu.Lock()
	defer h.mu.Unlock()
	out := h.cmds
	h.cmds = nil
	return out
}

// readsCodeHash reports whether cmds read a code hash: an HGETALL, or any
// command naming key (the campaign's code hash, lower-case).
func readsCodeHash(cmds [][]string, key string) bool {
	for _, c := range cmds {
		if len(c) > 0 && c[0] == "hgetall" || slices.Contains(c, strings.ToLower(key)) {
			return true
		}
	}
	return false
}

// newCampaignValidateStore is newValidateStore (snapshot on, markers
// trusted, round trips counted in all and per hash tag) with every command
// recorded, on a client of its own to the test Redis (not flushed).
func newCampaignValidateStore(t *testing.T, maxAge time.Duration) (*Store, *atomic.Int64, *slotTrips, *cmdLog) {
	t.Helper()
	rdb := redis.NewClient(&redis.Options{Addr: srv.Addr})
	t.Cleanup(func() { rdb.Close() })
	log := &cmdLog{}
	rdb.AddHook(log)
	s, trips, tags := newValidateStore(t, rdb, maxAge)
	return s, trips, tags, log
}

// generatedCampaign is a campaign of n codes (once_per_customer as once;
// nil: the default), generated.
func generatedCampaign(t *testing.T, s *Store, n int, prefix string, once *bool) (*promo.Campaign, []string) {
	t.Helper()
	c := newCampaignOnce(t, s, n, prefix, once)
	generateAll(t, s, c, "w", promo.CodeGenerator{Prefix: prefix, Length: c.CodeLength}.Generate)
	return c, allCodes(t, s, c)
}

// Validate of a campaign code with the campaign's snapshot fresh: one round
// trip, to the campaign's slot, that does not read the campaign's code
// hash (no HGETALL, no command naming it); the snapshot is read once. The
// campaign found by the text hint or by the campaign code index alike, and
// with the customer markers not trusted too. With the snapshot off: the
// full read, as before.
func TestCampaignValidateReadsTheSnapshot(t *testing.T) {
	ctx := context.Background()
	base := newStore(t)
	c, codes := generatedCampaign(t, base, 20, "SN", nil)
	for _, index := range []int{0, 100_000} {
		t.Run(fmt.Sprintf("index %d", index), func(t *testing.T) {
			s, trips, tags, log := newCampaignValidateStore(t, time.Hour)
			s.SetCampaignIndex(index)
			read := func(code, cus string) (promo.ValidateRead, int64, map[string]int, [][]string) {
				t.Helper()
				tags.take()
				log.take()
				before := trips.Load()
				got, err := s.ReadForValidate(ctx, code, cus)
				if err != nil {
					t.Fatalf("%s for %s: %v", code, cus, err)
				}
				return got, trips.Load() - before, tags.take(), log.take()
			}
			// The first read learns the text (and loads the index), the
			// second loads the snapshot and the new script. Without the
			// index, each text is learned on its first read (the hint).
			read(codes[0], "cus_0")
			if index > 0 {
				s.cidx.wait()
			} else {
				for _, code := range codes[1:] {
					read(code, "cus_0")
				}
			}
			if _, _, _, cmds := read(codes[0], "cus_0"); !readsCodeHash(cmds, codeKey(c.ID)) {
				t.Fatalf("the snapshot was not loaded: %v", cmds)
			}
			read(codes[1], "cus_0") // the script loaded into Redis (EVAL after NOSCRIPT)
			for i := range 6 {
				if i == 3 {
					s.markersOK.Store(false) // campaigns do not wait for the markers
				}
				cus, code := fmt.Sprintf("cus_%d", i+1), codes[i+2]
				got, n, perTag, cmds := read(code, cus)
				if got.Code == nil || got.Code.ID != c.ID || got.Code.Code != code || !got.Code.IsCampaignCode() ||
					got.Code.Stock != 1 || got.Code.Status != promo.StatusActive || got.Held != nil {
					t.Fatalf("%s: %+v", code, got)
				}
				if n != 1 || len(perTag) != 1 || perTag[c.ID] != 1 {
					t.Fatalf("%s: %d trips %v, want one to the campaign's slot", code, n, perTag)
				}
				if readsCodeHash(cmds, codeKey(c.ID)) {
					t.Fatalf("%s: the campaign's code hash was read with a fresh snapshot: %v", code, cmds)
				}
			}
			s.markersOK.Store(true)
			s.SetValidateCodeMaxAge(0)
			if _, n, _, cmds := read(codes[9], "cus_9"); n != 1 || !readsCodeHash(cmds, codeKey(c.ID)) {
				t.Fatalf("snapshot off: %d trips %v, want the full read", n, cmds)
			}
		})
	}
}

// The customer's own use and the code's holder are never stale: another
// store's reservations, confirmation and release (which cannot drop this
// store's snapshot) show in this store's next validate, while the campaign's
// snapshot is kept (no read of its code hash).
func TestCampaignValidateUsesAreNeverStale(t *testing.T) {
	ctx := context.Background()
	other := newStore(t)
	c, codes := generatedCampaign(t, other, 4, "NS", nil)
	manyOff := false
	m, mcodes := generatedCampaign(t, other, 4, "NM", &manyOff)
	s, trips, _, log := newCampaignValidateStore(t, time.Hour)
	s.snaps.now = func() time.Time { return now } // the snapshot never ages
	read := func(code, cus string) promo.ValidateRead {
		t.Helper()
		log.take()
		before := trips.Load()
		got, err := s.ReadForValidate(ctx, code, cus)
		if err != nil {
			t.Fatalf("%s for %s: %v", code, cus, err)
		}
		if n := trips.Load() - before; n != 1 {
			t.Fatalf("%s for %s: %d trips", code, cus, n)
		}
		if cmds := log.take(); readsCodeHash(cmds, codeKey(c.ID)) || readsCodeHash(cmds, codeKey(m.ID)) {
			t.Fatalf("%s for %s: the snapshot was read again: %v", code, cus, cmds)
		}
		return got
	}
	for range 3 { // learn the texts, load the snapshots (and the script)
		for _, text := range append(slices.Clone(codes), mcodes...) {
			if _, err := s.ReadForValidate(ctx, text, "cus_warm"); err != nil {
				t.Fatal(err)
			}
		}
	}
	reserve := func(codeID, text, cus string) *promo.Redemption {
		t.Helper()
		rd := newRD(codeID, cus, "own_"+cus+text)
		rd.UniqueCode = text
		got, _, err := other.Reserve(ctx, rd, now)
		if err != nil {
			t.Fatal(err)
		}
		return got
	}
	if got := read(codes[0], "cus_a"); got.Code.Stock != 1 || got.Held != nil {
		t.Fatalf("a free code: %+v %+v", got.Code, got.Held)
	}
	b := reserve(c.ID, codes[0], "cus_b")
	if got := read(codes[0], "cus_a"); got.Code.Stock != 0 || got.Held != nil {
		t.Fatalf("a code another customer took: stock %d held %+v", got.Code.Stock, got.Held)
	}
	if got := read(codes[0], "cus_b"); got.Held == nil || got.Held.ID != b.ID || got.Held.State != promo.RedemptionReserved {
		t.Fatalf("the holder's own code: %+v", got.Held)
	}
	if got := read(codes[1], "cus_b"); got.Code.Stock != 1 || got.Held == nil || got.Held.ID != b.ID {
		t.Fatalf("another code of a campaign the customer used: %+v %+v", got.Code, got.Held)
	}
	mustConfirm(t, other, c.ID, b.ID, "sub_b")
	if got := read(codes[1], "cus_b"); got.Held == nil || got.Held.State != promo.RedemptionPending {
		t.Fatalf("after the confirmation: %+v", got.Held)
	}
	mustFinish(t, other, c.ID, b.ID, promo.ReasonStripeRefused)
	if got := read(codes[0], "cus_a"); got.Code.Stock != 1 || got.Held != nil {
		t.Fatalf("a code given back: stock %d held %+v", got.Code.Stock, got.Held)
	}

	// Many per customer: the customer's redemption is the one holding the code.
	mb := reserve(m.ID, mcodes[0], "cus_b")
	if got := read(mcodes[0], "cus_b"); got.Code.Stock != 0 || got.Held == nil || got.Held.ID != mb.ID {
		t.Fatalf("many per customer, the holder: %+v %+v", got.Code, got.Held)
	}
	if got := read(mcodes[1], "cus_b"); got.Code.Stock != 1 || got.Held != nil {
		t.Fatalf("many per customer, another code: %+v %+v", got.Code, got.Held)
	}
	if got := read(mcodes[0], "cus_c"); got.Code.Stock != 0 || got.Held != nil {
		t.Fatalf("many per customer, another customer: %+v %+v", got.Code, got.Held)
	}
}

// setCampaignStatus changes c's status through s, from c as the caller
// holds it (not read through s).
func setCampaignStatus(t *testing.T, s *Store, c *promo.Campaign, st promo.Status) *promo.Campaign {
	t.Helper()
	next, err := promo.ApplyCampaignUpdate(c, promo.CampaignUpdate{Status: &st}, now)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.SaveCampaign(context.Background(), next); err != nil {
		t.Fatal(err)
	}
	return next
}

// A change of the campaign's status by another store shows in a replica's
// validate once its snapshot is max age old, not before; the store that
// made it sees it at once (the snapshots' clock moved by hand). Archived:
// not found, the same way.
func TestCampaignValidateSnapshotAge(t *testing.T) {
	ctx := context.Background()
	base := newStore(t)
	c, codes := generatedCampaign(t, base, 3, "AG", nil)
	const maxAge = 100 * time.Millisecond
	clock := newHandClock()
	replica := func() *Store {
		s, _, _, _ := newCampaignValidateStore(t, maxAge)
		s.snaps.now = clock.now
		return s
	}
	advance := clock.advance
	a, b := replica(), replica()
	status := func(s *Store) promo.Status {
		t.Helper()
		got, err := s.ReadForValidate(ctx, codes[0], "cus_x")
		if errors.Is(err, promo.ErrNotFound) {
			return "not found"
		}
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
	for _, st := range []promo.Status{promo.StatusInactive, promo.StatusActive, promo.StatusArchived} {
		want := st
		if st == promo.StatusArchived {
			want = "not found"
		}
		before := status(b)
		c = setCampaignStatus(t, a, c, st)
		if got := status(a); got != want {
			t.Fatalf("%s: the store that made the change validates it as %s", st, got)
		}
		advance(maxAge - time.Millisecond)
		if got := status(b); got != before {
			t.Fatalf("%s: replica B refreshed its snapshot before its max age: %s", st, got)
		}
		advance(time.Millisecond)
		if got := status(b); got != want {
			t.Fatalf("%s: replica B still sees %s once its snapshot is max age old", st, got)
		}
		if got := status(a); got != want {
			t.Fatalf("%s: store A sees %s later", st, got)
		}
	}
}

// Validate's answer equals GetByCodeForCustomer's (apply's full read) for
// the same inputs: unknown text, active, inactive and archived campaign,
// the code held by another customer and by this customer, a many per
// customer campaign, a customer who already used the campaign once.
// Answered from the snapshot (checked: no read of the code hash).
func TestCampaignValidateEqualsTheFullRead(t *testing.T) {
	ctx := context.Background()
	full := newStore(t)
	act, acodes := generatedCampaign(t, full, 4, "EA", nil)
	inact, icodes := generatedCampaign(t, full, 2, "EI", nil)
	arch, xcodes := generatedCampaign(t, full, 2, "EX", nil)
	late, lcodes := generatedCampaign(t, full, 2, "EL", nil) // archived once validate knows it
	manyOff := false
	many, mcodes := generatedCampaign(t, full, 3, "EM", &manyOff)
	setCampaignStatus(t, full, inact, promo.StatusInactive)
	setCampaignStatus(t, full, arch, promo.StatusArchived)
	reserve := func(codeID, text, cus string) *promo.Redemption {
		t.Helper()
		rd := newRD(codeID, cus, "own_"+cus+text)
		rd.UniqueCode = text
		got, _, err := full.Reserve(ctx, rd, now)
		if err != nil {
			t.Fatal(err)
		}
		return got
	}
	held := reserve(act.ID, acodes[0], "cus_holder")
	mustConfirm(t, full, act.ID, held.ID, "sub_holder")
	reserve(many.ID, mcodes[0], "cus_holder")

	// unknown: a text no process can learn (an unknown one; an archived
	// campaign's, never remembered): the full read, whatever the snapshot.
	// want: what the answer is ("not found", or "<status> stock <n>" and
	// "held" when the customer's redemption is there), so that each case
	// is the one it says.
	cases := []struct {
		name, code, customer string
		unknown              bool
		want                 string
	}{
		{"unknown text", "EANOSUCHCODE", "cus_a", true, "not found"},
		{"active campaign", acodes[1], "cus_a", false, "active stock 1"},
		{"inactive campaign", icodes[0], "cus_a", false, "inactive stock 1"},
		{"archived campaign", xcodes[0], "cus_a", true, "not found"},
		{"campaign archived once known", lcodes[0], "cus_a", false, "not found"},
		{"code held by another customer", acodes[0], "cus_a", false, "active stock 0"},
		{"code held by this customer", acodes[0], "cus_holder", false, "active stock 0 held"},
		{"customer who already used the campaign", acodes[2], "cus_holder", false, "active stock 1 held"},
		{"many per customer, free code", mcodes[1], "cus_holder", false, "active stock 1"},
		{"many per customer, the customer's code", mcodes[0], "cus_holder", false, "active stock 0 held"},
		{"many per customer, another's code", mcodes[0], "cus_a", false, "active stock 0"},
	}
	s, _, _, log := newCampaignValidateStore(t, time.Hour)
	s.snaps.now = func() time.Time { return now }
	for i := range 3 { // learn the texts, load the snapshots (and the script)
		if i == 2 {
			setCampaignStatus(t, s, late, promo.StatusArchived)
		}
		for _, tc := range cases {
			s.ReadForValidate(ctx, tc.code, tc.customer)
		}
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			wantP, wantRD, wantErr := full.GetByCodeForCustomer(ctx, tc.code, tc.customer)
			log.take()
			got, err := s.ReadForValidate(ctx, tc.code, tc.customer)
			cmds := log.take()
			if !errors.Is(err, wantErr) && (err == nil || wantErr == nil || err.Error() != wantErr.Error()) {
				t.Fatalf("error %v, the full read's %v", err, wantErr)
			}
			if !reflect.DeepEqual(got.Code, wantP) {
				t.Fatalf("code\n%+v\nthe full read's\n%+v", got.Code, wantP)
			}
			if !reflect.DeepEqual(got.Held, wantRD) {
				t.Fatalf("redemption %+v, the full read's %+v", got.Held, wantRD)
			}
			what := "not found"
			if err == nil {
				what = fmt.Sprintf("%s stock %d", got.Code.Status, got.Code.Stock)
				if got.Held != nil {
					what += " held"
				}
			}
			if what != tc.want {
				t.Fatalf("%s, want %s", what, tc.want)
			}
			if got.PaidRead {
				t.Fatalf("paid read for a campaign: %+v", got)
			}
			for _, id := range []string{act.ID, inact.ID, arch.ID, late.ID, many.ID} {
				if !tc.unknown && readsCodeHash(cmds, codeKey(id)) {
					t.Fatalf("the code hash of %s was read: %v", id, cmds)
				}
			}
		})
	}
}

// Every write of this store to a campaign's code record or ledger drops its
// snapshot of the campaign, so its next validate reads it again.
func TestCampaignWritesDropTheSnapshot(t *testing.T) {
	ctx := context.Background()
	newStore(t) // flushes
	s, _, _, _ := newCampaignValidateStore(t, time.Hour)
	s.snaps.now = func() time.Time { return now }
	c, codes := generatedCampaign(t, s, 4, "DR", nil)
	if err := s.RecordMirrored(ctx, c.ID, codes[3], "promo_dr", true); err != nil {
		t.Fatal(err)
	}
	held := func() bool {
		s.snaps.mu.Lock()
		defer s.snaps.mu.Unlock()
		return s.snaps.m[c.ID] != nil
	}
	load := func() {
		t.Helper()
		for range 2 {
			if _, err := s.ReadForValidate(ctx, codes[0], "cus_v"); err != nil {
				t.Fatal(err)
			}
		}
		if !held() {
			t.Fatal("no snapshot after validates")
		}
	}
	var rd *promo.Redemption
	out := disc("di_dr_out", "cus_out", "sub_out", time.Second)
	out.NewID = "rd_9999999998"
	steps := []struct {
		name string
		run  func() error
	}{
		{"reserve", func() error {
			r := newRD(c.ID, "cus_a", "own_a")
			r.UniqueCode = codes[1]
			var err error
			rd, _, err = s.Reserve(ctx, r, now)
			return err
		}},
		{"confirm", func() error {
			_, _, err := s.Confirm(ctx, c.ID, rd.ID, promo.Confirmation{Subscription: "sub_a", At: now})
			return err
		}},
		{"observe discount", func() error {
			_, _, _, err := s.ObserveDiscount(ctx, c.ID, disc("di_"+rd.ID, "cus_a", "sub_a", time.Second))
			return err
		}},
		{"count invoice", func() error {
			_, err := s.CountInvoice(ctx, c.ID, paid("in_dr1", disc("di_"+rd.ID, "cus_a", "sub_a", time.Second), "usd", 100))
			return err
		}},
		{"mark paid and count invoice", func() error {
			_, _, err := s.MarkPaidAndCountInvoice(ctx, "cus_a", now.Add(time.Hour), c.ID,
				paid("in_dr2", disc("di_"+rd.ID, "cus_a", "sub_a", 2*time.Second), "usd", 100))
			return err
		}},
		{"flag", func() error { _, err := s.FlagRedemption(ctx, c.ID, rd.ID, "test_flag"); return err }},
		{"outside discount", func() error { _, _, _, err := s.ObserveDiscount(ctx, c.ID, out); return err }},
		{"attribute a promotion code", func() error { _, err := s.AttributeCampaignCode(ctx, c.ID, out.NewID, "promo_dr"); return err }},
		{"end discount", func() error {
			_, _, err := s.EndDiscount(ctx, c.ID, disc("di_"+rd.ID, "cus_a", "sub_a", 3*time.Second), promo.ReasonDeleted)
			return err
		}},
		{"finish", func() error { _, _, err := s.Finish(ctx, c.ID, out.NewID, "removed", now.Add(time.Hour)); return err }},
		{"read the redeemed count", func() error { _, err := s.GetCampaign(ctx, c.ID); return err }},
		{"status change", func() error {
			c = setCampaignStatus(t, s, c, promo.StatusInactive)
			c = setCampaignStatus(t, s, c, promo.StatusActive)
			return nil
		}},
		{"rebuild", func() error {
			return s.writeRebuiltCampaign(ctx, getCode(t, s, c.ID), nil, nil, nil, nil, &promo.RebuiltCampaign{ID: c.ID})
		}},
	}
	for _, st := range steps {
		load()
		if err := st.run(); err != nil {
			t.Fatalf("%s: %v", st.name, err)
		}
		if held() {
			t.Fatalf("%s: the campaign's snapshot was kept", st.name)
		}
	}
}
