package redisstore

import (
	"context"
	"errors"
	"fmt"
	"runtime"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/billing-adapter/billing-adapter/internal/promo"
	"github.com/billing-adapter/billing-adapter/internal/testutil/redistest"
	"github.com/redis/go-redis/v9"
)

// fakeCampaigns is the index's loader over campaigns kept in memory: each
// a prefix, a text length and its committed chunks.
type fakeCampaigns struct {
	mu    sync.Mutex
	camps map[string]*fakeCampaign
	reads atomic.Int64
	fail  atomic.Bool
	gate  chan struct{} // when set, each read waits for it
}

type fakeCampaign struct {
	prefix string
	width  int
	chunks [][]string
}

func (f *fakeCampaigns) add(id, prefix string, width int, chunks ...[]string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.camps == nil {
		f.camps = map[string]*fakeCampaign{}
	}
	c := f.camps[id]
	if c == nil {
		c = &fakeCampaign{prefix: prefix, width: width}
		f.camps[id] = c
	}
	c.chunks = append(c.chunks, chunks...)
}

func (f *fakeCampaigns) read(_ context.Context, id string, from int) (campaignLoad, error) {
	f.reads.Add(1)
	if f.gate != nil {
		<-f.gate
	}
	if f.fail.Load() {
		return campaignLoad{}, errors.New("redis down")
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	c := f.camps[id]
	if c == nil {
		return campaignLoad{}, promo.ErrNotFound
	}
	out := campaignLoad{prefix: c.prefix, width: c.width, batches: len(c.chunks)}
	for _, ch := range c.chunks[from:] {
		out.texts = append(out.texts, ch...)
	}
	return out, nil
}

func newTestIndex(max int, f *fakeCampaigns) *campaignIndex {
	return newCampaignIndex(max, nil, f.read)
}

// meet is the text key path naming campaign id for a text of batch: it
// starts a load and waits for it.
func meet(ix *campaignIndex, id string, batch int) bool {
	ok := ix.met(id, batch)
	ix.wait()
	return ok
}

func TestCampaignIndexLookups(t *testing.T) {
	f := &fakeCampaigns{}
	f.add("cmp_a", "SPR", 6, []string{"SPRZZZ", "SPRAAA", "SPRMMM"}, []string{"SPRBBB"})
	f.add("cmp_b", "", 4, []string{"ABCD", "WXYZ"})
	f.add("cmp_c", "SP", 6, []string{"SPQQQQ"}) // same width as cmp_a, a prefix of its prefix
	f.add("cmp_d", "LONG", 8, []string{"LONG2345"})
	ix := newTestIndex(100, f)
	for _, id := range []string{"cmp_a", "cmp_b", "cmp_c", "cmp_d"} {
		if !meet(ix, id, 0) {
			t.Fatalf("%s not indexed", id)
		}
	}
	for _, tc := range []struct {
		text, want string
	}{
		{"SPRAAA", "cmp_a"}, {"SPRZZZ", "cmp_a"}, {"SPRMMM", "cmp_a"}, {"SPRBBB", "cmp_a"}, // both chunks, first and last
		{"ABCD", "cmp_b"}, {"WXYZ", "cmp_b"}, // no prefix
		{"SPQQQQ", "cmp_c"}, {"LONG2345", "cmp_d"},
		{"SPRAAB", ""}, {"SPRAA", ""}, {"SPRAAAA", ""}, // between two texts; one short; one long
		{"SPR", ""}, {"", ""}, {"sprAAA", ""}, // the prefix alone; empty; not upper-case (texts are normalized before)
		{"XPRAAA", ""}, {"SPQQQR", ""}, {"ABC", ""}, {"ABCDE", ""}, {"AAAA", ""}, {"ZZZZ", ""}, // before the first, after the last
		{"LONG234", ""}, {"SPRAAA\x00", ""},
	} {
		got, ok := ix.lookup(tc.text)
		if got != tc.want || ok != (tc.want != "") {
			t.Errorf("lookup %q = %q %v, want %q", tc.text, got, ok, tc.want)
		}
	}
	if c, n := ix.stats(); c != 4 || n != 8 {
		t.Fatalf("held %d campaigns, %d texts", c, n)
	}
	// Memory: one byte per character after the prefix.
	if a := ix.byID["cmp_a"]; a.width != 3 || len(a.sorted) != 12 || a.sorted != "AAABBBMMMZZZ" {
		t.Fatalf("cmp_a held as %+v", a)
	}
}

func TestCampaignIndexOff(t *testing.T) {
	f := &fakeCampaigns{}
	f.add("cmp_a", "", 4, []string{"ABCD"})
	for _, ix := range []*campaignIndex{nil, newTestIndex(0, f)} {
		if ix.met("cmp_a", 0) {
			t.Fatal("an index that is off says it will hold a campaign")
		}
		if _, ok := ix.lookup("ABCD"); ok {
			t.Fatal("an index that is off answered")
		}
	}
	if f.reads.Load() != 0 {
		t.Fatal("an index that is off read Redis")
	}
}

// A campaign loaded while it was generating: a text of a batch it has not
// read is missing (the caller takes the text key path), and that miss
// refreshes it with the new chunks only; a batch already held never
// triggers a read.
func TestCampaignIndexRefresh(t *testing.T) {
	f := &fakeCampaigns{}
	f.add("cmp_a", "P", 4, []string{"PAAA", "PCCC"})
	ix := newTestIndex(100, f)
	now := time.Unix(1000, 0)
	ix.now = func() time.Time { return now }
	meet(ix, "cmp_a", 0)
	f.add("cmp_a", "", 0, []string{"PBBB", "PDDD"}, []string{"P000"})
	if _, ok := ix.lookup("PBBB"); ok {
		t.Fatal("a text committed after the load was found")
	}
	reads := f.reads.Load()
	if !meet(ix, "cmp_a", 0) || f.reads.Load() != reads {
		t.Fatal("a text of a batch held started a read")
	}
	// Within cidxRefreshEvery of the load: no read yet.
	if !meet(ix, "cmp_a", 1) || f.reads.Load() != reads {
		t.Fatal("refreshed within cidxRefreshEvery")
	}
	now = now.Add(cidxRefreshEvery)
	if !meet(ix, "cmp_a", 2) || f.reads.Load() != reads+1 {
		t.Fatalf("no refresh after a miss of batch 2 (%d reads)", f.reads.Load()-reads)
	}
	for _, text := range []string{"PAAA", "PBBB", "PCCC", "PDDD", "P000"} {
		if id, ok := ix.lookup(text); !ok || id != "cmp_a" {
			t.Errorf("%s after the refresh: %q %v", text, id, ok)
		}
	}
	if a := ix.byID["cmp_a"]; a.batches != 3 || a.n != 5 || a.sorted != "000AAABBBCCCDDD" {
		t.Fatalf("after refresh %+v", a)
	}
	// Nothing new: the refresh reads the record and keeps the texts.
	now = now.Add(cidxRefreshEvery)
	if !meet(ix, "cmp_a", 3) || f.reads.Load() != reads+2 || ix.byID["cmp_a"].n != 5 {
		t.Fatal("an unchanged refresh")
	}
}

func TestCampaignIndexEvictsLeastRecentlyUsed(t *testing.T) {
	f := &fakeCampaigns{}
	f.add("cmp_a", "A", 3, []string{"A11", "A22", "A33"})
	f.add("cmp_b", "B", 3, []string{"B11", "B22", "B33"})
	f.add("cmp_c", "C", 3, []string{"C11", "C22", "C33", "C44"})
	f.add("cmp_big", "G", 3, []string{"G11", "G22", "G33", "G44", "G55", "G66", "G77", "G88"})
	ix := newTestIndex(7, f)
	now := time.Unix(1000, 0)
	ix.now = func() time.Time { return now }
	meet(ix, "cmp_a", 0)
	meet(ix, "cmp_b", 0)
	ix.lookup("A11") // a used after b
	// c (4) does not fit next to a and b (6): b, the least recently used, goes.
	meet(ix, "cmp_c", 0)
	if _, ok := ix.lookup("B11"); ok {
		t.Fatal("b was kept")
	}
	if _, ok := ix.lookup("A22"); !ok {
		t.Fatal("a was evicted")
	}
	if c, n := ix.stats(); c != 2 || n != 7 {
		t.Fatalf("held %d campaigns, %d texts", c, n)
	}
	// An evicted campaign is not loaded again before cidxEvictedPause.
	reads := f.reads.Load()
	if !meet(ix, "cmp_b", 0) || f.reads.Load() != reads {
		t.Fatal("b loaded again at once")
	}
	now = now.Add(cidxEvictedPause)
	meet(ix, "cmp_b", 0)
	if id, ok := ix.lookup("B33"); !ok || id != "cmp_b" {
		t.Fatal("b not loaded again after the pause")
	}
	// Larger than the whole index: not held, never read again, and the
	// caller is told (its texts go to the promo code hint).
	meet(ix, "cmp_big", 0)
	if _, ok := ix.lookup("G11"); ok {
		t.Fatal("a campaign larger than the index is held")
	}
	reads = f.reads.Load()
	now = now.Add(time.Hour)
	if meet(ix, "cmp_big", 0) || f.reads.Load() != reads {
		t.Fatal("a campaign too large was read again")
	}
	if _, n := ix.stats(); n > 7 {
		t.Fatalf("holds %d texts, max 7", n)
	}
}

// A campaign that grows beyond the index on a refresh is dropped.
func TestCampaignIndexDropsACampaignThatOutgrowsIt(t *testing.T) {
	f := &fakeCampaigns{}
	f.add("cmp_a", "", 2, []string{"AA", "AB"})
	ix := newTestIndex(3, f)
	now := time.Unix(1000, 0)
	ix.now = func() time.Time { return now }
	meet(ix, "cmp_a", 0)
	f.add("cmp_a", "", 0, []string{"AC", "AD"})
	now = now.Add(time.Second)
	meet(ix, "cmp_a", 1)
	if meet(ix, "cmp_a", 1) {
		t.Fatal("a campaign grown too large: met says it is held")
	}
	if _, ok := ix.lookup("AA"); ok {
		t.Fatal("still held")
	}
	if c, n := ix.stats(); c != 0 || n != 0 {
		t.Fatalf("held %d campaigns, %d texts", c, n)
	}
}

// One load per campaign at a time, one in the process at a time; a failed
// load is retried after cidxRetryAfter.
func TestCampaignIndexLoadsOnceAndRetries(t *testing.T) {
	f := &fakeCampaigns{gate: make(chan struct{})}
	f.add("cmp_a", "", 2, []string{"AA"})
	ix := newTestIndex(10, f)
	now := time.Unix(1000, 0)
	ix.now = func() time.Time { return now }
	for range 50 {
		ix.met("cmp_a", 0)
	}
	close(f.gate)
	ix.wait()
	if n := f.reads.Load(); n != 1 {
		t.Fatalf("%d loads of one campaign met 50 times", n)
	}
	f2 := &fakeCampaigns{}
	f2.add("cmp_b", "", 2, []string{"BB"})
	f2.fail.Store(true)
	ix = newTestIndex(10, f2)
	ix.now = func() time.Time { return now }
	meet(ix, "cmp_b", 0)
	if _, ok := ix.lookup("BB"); ok {
		t.Fatal("found after a failed load")
	}
	f2.fail.Store(false)
	meet(ix, "cmp_b", 0)
	if f2.reads.Load() != 1 {
		t.Fatal("retried before cidxRetryAfter")
	}
	now = now.Add(cidxRetryAfter)
	meet(ix, "cmp_b", 0)
	if _, ok := ix.lookup("BB"); !ok {
		t.Fatal("not loaded on the retry")
	}
}

// Lookups race with loads, refreshes and evictions (go test -race).
func TestCampaignIndexConcurrent(t *testing.T) {
	f := &fakeCampaigns{}
	var all []string
	for c := range 6 {
		id := fmt.Sprintf("cmp_%d", c)
		for b := range 4 {
			var chunk []string
			for i := range 50 {
				chunk = append(chunk, fmt.Sprintf("%c%02d%03d", 'A'+c, b, i))
			}
			f.add(id, string(rune('A'+c)), 6, chunk)
			all = append(all, chunk...)
		}
	}
	ix := newTestIndex(500, f) // room for 2 of the 6 campaigns
	var wg sync.WaitGroup
	var wrong atomic.Int64
	for w := range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range 3000 {
				text := all[(i*7+w*131)%len(all)]
				want := fmt.Sprintf("cmp_%d", text[0]-'A')
				if id, ok := ix.lookup(text); ok && id != want {
					wrong.Add(1)
				} else if !ok {
					ix.met(want, 0)
				}
				if _, ok := ix.lookup(strings.ToLower(text)); ok {
					wrong.Add(1)
				}
			}
		}()
	}
	wg.Wait()
	ix.wait()
	if wrong.Load() != 0 {
		t.Fatalf("%d wrong answers", wrong.Load())
	}
	if _, n := ix.stats(); n > 500 {
		t.Fatalf("holds %d texts, max 500", n)
	}
}

// The index's memory: one byte per code character after the prefix
// (printed; README, Campaigns: 1.2 MB per 100,000 codes of 12).
func TestCampaignIndexMemory(t *testing.T) {
	gen := promo.CodeGenerator{Prefix: "SPR", Length: 12}
	f := &fakeCampaigns{}
	for range 100 {
		chunk, err := gen.Generate(1000)
		if err != nil {
			t.Fatal(err)
		}
		f.add("cmp_m", "SPR", 15, chunk)
	}
	ix := newTestIndex(1_000_000, f)
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	meet(ix, "cmp_m", 0)
	runtime.GC()
	runtime.ReadMemStats(&after)
	held := ix.byID["cmp_m"]
	if held.n != 100_000 || len(held.sorted) != 1_200_000 || !slices.IsSorted(splitTexts(held.sorted, 12)) {
		t.Fatalf("held %d texts in %d bytes", held.n, len(held.sorted))
	}
	t.Logf("100,000 codes of 12 characters (prefix SPR): %d B of texts, heap +%.2f MB after the load",
		len(held.sorted), float64(int64(after.HeapAlloc)-int64(before.HeapAlloc))/1e6)
}

func BenchmarkCampaignIndexLookup(b *testing.B) {
	gen := promo.CodeGenerator{Prefix: "SPR", Length: 12}
	f := &fakeCampaigns{}
	var texts []string
	for range 100 {
		chunk, _ := gen.Generate(1000)
		f.add("cmp_m", "SPR", 15, chunk)
		texts = append(texts, chunk...)
	}
	ix := newTestIndex(1_000_000, f)
	meet(ix, "cmp_m", 0)
	b.ResetTimer()
	for i := range b.N {
		if _, ok := ix.lookup(texts[i%len(texts)]); !ok {
			b.Fatal("miss")
		}
	}
}

// newCountingStore is newStore with the campaign code index on and a
// round-trip counter.
func newCountingStore(t *testing.T, index int) (*Store, *atomic.Int64) {
	t.Helper()
	rdb := redis.NewClient(&redis.Options{Addr: srv.Addr})
	t.Cleanup(func() { rdb.Close() })
	if err := rdb.FlushAll(context.Background()).Err(); err != nil {
		t.Fatal(err)
	}
	trips := &atomic.Int64{}
	rdb.AddHook(redistest.TripCounter{N: trips})
	s := New(rdb, nil)
	s.SetCampaignIndex(index)
	return s, trips
}

// Through the real store and redis-server: a code of a campaign the index
// holds is answered in one round trip (the campaign's script), a guess in
// one (its text key), the campaign's status and the code's holder still
// come from Redis at each read; a code committed after the campaign was
// loaded takes the text key path (two trips, right answer) and refreshes
// the campaign.
func TestCampaignCodeIndexRoundTrips(t *testing.T) {
	s, trips := newCountingStore(t, 100_000)
	ctx := context.Background()
	now := time.Unix(1000, 0)
	s.cidx.now = func() time.Time { return now }
	c := newCampaign(t, s, 2500, "RT")
	gen := promo.CodeGenerator{Prefix: "RT", Length: c.CodeLength}
	if ok, err := s.LeaseGeneration(ctx, c.ID, "w", time.Minute); err != nil || !ok {
		t.Fatal(ok, err)
	}
	if _, err := s.GenerateStep(ctx, c, "w", promo.GenerationBatch, gen.Generate); err != nil {
		t.Fatal(err)
	}
	first := allCodes(t, s, c) // batch 0 only: the campaign is generating
	p := draft(t, "RTPROMO")
	if _, _, err := s.BeginCreate(ctx, p, "req", now, time.Minute); err != nil {
		t.Fatal(err)
	}
	finish(t, s, p)

	read := func(text, cus string) (*promo.PromoCode, int64, error) {
		t.Helper()
		before := trips.Load()
		got, _, err := s.GetByCodeForCustomer(ctx, text, cus)
		return got, trips.Load() - before, err
	}
	mustRead := func(text, cus string, wantTrips int64) *promo.PromoCode {
		t.Helper()
		got, n, err := read(text, cus)
		if err != nil {
			t.Fatalf("%s: %v", text, err)
		}
		if got.ID != c.ID || got.Code != text || !got.IsCampaignCode() {
			t.Fatalf("%s read as %s %q", text, got.ID, got.Code)
		}
		if n != wantTrips {
			t.Fatalf("%s: %d round trips, want %d", text, n, wantTrips)
		}
		return got
	}
	// The first code met: its text key, then the campaign's script (loaded
	// into Redis's script cache on the way: not counted).
	if _, _, err := s.GetByCodeForCustomer(ctx, first[0], "cus_a"); err != nil {
		t.Fatal(err)
	}
	s.cidx.wait()
	if _, n := s.cidx.stats(); n != 1000 {
		t.Fatalf("index holds %d texts after batch 0", n)
	}
	for _, text := range []string{first[1], first[500], first[999], first[0]} {
		mustRead(text, "cus_a", 1)
	}
	// A guess with the campaign's prefix and length, and one with nothing
	// in common: one trip each (the text key), not found.
	for _, guess := range []string{"RT" + strings.Repeat("2", c.CodeLength), "NOPE"} {
		if _, n, err := read(guess, "cus_a"); !errors.Is(err, promo.ErrNotFound) || n != 1 {
			t.Fatalf("guess %s: %v in %d trips", guess, err, n)
		}
	}
	// The promo code: its hint, as before.
	if _, _, err := s.GetByCodeForCustomer(ctx, "RTPROMO", "cus_a"); err != nil {
		t.Fatal(err)
	}
	if got, n, err := read("RTPROMO", "cus_a"); err != nil || got.ID != p.ID || n != 1 {
		t.Fatalf("promo code: %v %v in %d trips", got, err, n)
	}

	// The rest is generated after the load: right answers through the text
	// key, and one refresh adds the new chunks.
	generateAll(t, s, c, "w", gen.Generate)
	all := allCodes(t, s, c)
	late := all[2400:]
	mustRead(late[0], "cus_a", 2)
	s.cidx.wait()
	mustRead(late[1], "cus_a", 2) // within cidxRefreshEvery of the load: not refreshed yet
	now = now.Add(cidxRefreshEvery)
	if got, _, err := read(late[2], "cus_a"); err != nil || got.ID != c.ID { // two trips and the refresh's, in flight
		t.Fatalf("%s: %v %v", late[2], got, err)
	}
	s.cidx.wait()
	if _, n := s.cidx.stats(); n != 2500 {
		t.Fatalf("index holds %d texts after the refresh", n)
	}
	for _, text := range []string{late[0], late[3], all[1500], all[0]} {
		mustRead(text, "cus_a", 1)
	}

	// State is read from Redis at each read: a code taken, then the
	// campaign inactive, then archived: refused at once, one trip each.
	rd := newRD(c.ID, "cus_b", "own_b")
	rd.UniqueCode = all[10]
	if _, _, err := s.Reserve(ctx, rd, now); err != nil {
		t.Fatal(err)
	}
	if got := mustRead(all[10], "cus_c", 1); got.Stock != 0 {
		t.Fatalf("a taken code reads stock %d", got.Stock)
	}
	for _, st := range []promo.Status{promo.StatusInactive, promo.StatusArchived} {
		next, err := promo.ApplyCampaignUpdate(c, promo.CampaignUpdate{Status: &st}, now)
		if err != nil {
			t.Fatal(err)
		}
		if err := s.SaveCampaign(ctx, next); err != nil {
			t.Fatal(err)
		}
		c = next
		got, n, err := read(all[11], "cus_c")
		switch {
		case n != 1:
			t.Fatalf("%s campaign: %d trips", st, n)
		case st == promo.StatusInactive && (err != nil || got.Status != promo.StatusInactive):
			t.Fatalf("code of an inactive campaign: %v %v", got, err)
		case st == promo.StatusArchived && !errors.Is(err, promo.ErrNotFound):
			t.Fatalf("code of an archived campaign: %v %v", got, err)
		}
	}
	if _, _, err := s.Reserve(ctx, newRD(c.ID, "cus_d", "own_d"), now); promo.CodeOf(err) != promo.CodeCodeInactive {
		t.Fatalf("reserve on an archived campaign: %v", err)
	}
}

// With the index off, every code met for the first time costs two round
// trips, as before the index (and then one, from the promo code hint).
func TestCampaignCodeIndexOffTwoRoundTrips(t *testing.T) {
	s, trips := newCountingStore(t, 0)
	ctx := context.Background()
	c := newCampaign(t, s, 20, "OF")
	generateAll(t, s, c, "w", promo.CodeGenerator{Prefix: "OF", Length: c.CodeLength}.Generate)
	codes := allCodes(t, s, c)
	if _, _, err := s.GetByCodeForCustomer(ctx, codes[0], "cus_a"); err != nil {
		t.Fatal(err)
	}
	for _, text := range codes[1:5] {
		before := trips.Load()
		if _, _, err := s.GetByCodeForCustomer(ctx, text, "cus_a"); err != nil {
			t.Fatal(err)
		}
		if n := trips.Load() - before; n != 2 {
			t.Fatalf("%d trips with the index off, want 2", n)
		}
		before = trips.Load()
		if _, _, err := s.GetByCodeForCustomer(ctx, text, "cus_a"); err != nil || trips.Load()-before != 1 {
			t.Fatalf("again: %v, %d trips", err, trips.Load()-before)
		}
	}
}

// On a real Redis Cluster: the load reads the campaign's record and chunks
// (one slot, {cmp_ID}) and a held campaign's code is then one command, the
// script on the campaign's slot.
func TestCampaignCodeIndexOnCluster(t *testing.T) {
	c := redistest.StartCluster(t, 3, 1)
	rdb, err := Connect("", c.Addrs(), "")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { rdb.Close() })
	trips := &atomic.Int64{}
	rdb.AddHook(redistest.TripCounter{N: trips})
	s := New(rdb, nil)
	s.SetCampaignIndex(100_000)
	ctx := context.Background()
	cmp := newCampaign(t, s, 2500, "CL")
	generateAll(t, s, cmp, "w", promo.CodeGenerator{Prefix: "CL", Length: cmp.CodeLength}.Generate)
	codes := allCodes(t, s, cmp)
	if _, _, err := s.GetByCodeForCustomer(ctx, codes[0], "cus_a"); err != nil {
		t.Fatal(err)
	}
	s.cidx.wait()
	if _, n := s.cidx.stats(); n != 2500 {
		t.Fatalf("index holds %d texts of 2500", n)
	}
	for _, text := range []string{codes[1], codes[1234], codes[2499]} {
		before := trips.Load()
		p, _, err := s.GetByCodeForCustomer(ctx, text, "cus_a")
		if err != nil || p.ID != cmp.ID || p.Code != text {
			t.Fatalf("%s: %v %v", text, p, err)
		}
		if n := trips.Load() - before; n != 1 {
			t.Fatalf("%s: %d commands, want 1", text, n)
		}
	}
}
