package redisstore

import (
	"context"
	"errors"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/billing-adapter/billing-adapter/internal/telemetry"
	"github.com/redis/go-redis/v9"
)

// The campaign code index: which campaign holds a code text, known in this
// process, so that validate, subscribe and apply of a campaign code make one
// Redis round trip (the script on the campaign's slot) instead of two (the
// text key ba:{ct:CODE} on its own slot, then that script).
//
// Exact, not a hint: a campaign's texts are never freed or moved (a text
// key claimed by a campaign keeps naming it, archived or not), and the
// index holds only texts of committed chunks (ba:{cmp_ID}:codes:<B>, each
// written once, every text in it claimed by the campaign before the
// commit). So a text found here belongs to that campaign for good; only the
// text -> campaign mapping is cached, the campaign's status, expiry and the
// code's holder are read from Redis by the one script as before. A text not
// found here (a guess, a promo code, a code of a campaign not held, or one
// committed after the campaign was loaded) takes the text key path, exactly
// as without the index: the brute-force path stays one round trip.
//
// Filling it: when the text key path answers with a campaign's text, the
// campaign is loaded in the background (its committed chunks, 16 per round
// trip), one load per campaign at a time and one load in the whole process
// at a time; the request itself never waits for it. A campaign held but
// missing a text of a batch it has not loaded (the campaign was loaded while
// it was still generating) is refreshed the same way, reading only the new
// chunks, at most every cidxRefreshEvery.
//
// Memory: each campaign is one string of its texts, sorted, without the
// campaign's prefix (every text has it), fixed width: one byte per code
// character, 1.2 MB per 100,000 codes of 12 characters (a Go map of the
// same texts would take several times that), found by binary search
// (BenchmarkCampaignIndexLookup: under 0.2 µs in 100,000; a lookup searches
// every held campaign of the text's length and prefix). A load needs about
// 3 MB more per 100,000 codes while it runs (the chunks as read, one string
// header per text while sorting). The total is bounded by
// max texts (CAMPAIGN_CODE_INDEX): loading a campaign evicts whole
// campaigns, least recently used first; a campaign larger than max is not
// held (its texts keep the text key path and the promo code hint); an
// evicted campaign is not loaded again for cidxEvictedPause, so a working
// set larger than max costs at most one load per campaign per pause.
type campaignIndex struct {
	max     int // texts held at most; 0 = off
	metrics *telemetry.Metrics
	// read reads a campaign's committed chunks from batch from on.
	read func(ctx context.Context, id string, from int) (campaignLoad, error)
	now  func() time.Time

	mu      sync.RWMutex
	sets    []*campaignTexts          // the campaigns held, in no order
	byID    map[string]*campaignTexts // the same, by campaign ID
	held    int                       // texts held
	loading map[string]bool           // campaigns with a load in flight
	// pause: campaigns not to load before the time (zero: never, too large).
	pause map[string]time.Time

	tick  atomic.Int64  // use counter for least-recently-used eviction
	slot  chan struct{} // one load at a time in the process
	loads sync.WaitGroup
}

// campaignTexts is one campaign's committed texts. Immutable once
// published, except the atomics loadedAt and used.
type campaignTexts struct {
	id       string
	prefix   string // the campaign's prefix: every text starts with it
	width    int    // bytes per text after prefix
	sorted   string // n texts without prefix, ascending, width bytes each
	n        int
	batches  int          // chunks 0..batches-1 are held
	loadedAt atomic.Int64 // when it was last read from Redis (Unix ns)
	used     atomic.Int64 // ix.tick at its last hit
}

// campaignLoad is what a load reads from Redis.
type campaignLoad struct {
	prefix  string   // the campaign's prefix
	width   int      // the length of its texts, prefix included
	batches int      // chunks committed: 0..batches-1
	texts   []string // the texts of chunks from..batches-1, prefix included
}

const (
	cidxRefreshEvery  = 250 * time.Millisecond // a held campaign is read again at most this often
	cidxRetryAfter    = 5 * time.Second        // a failed load is not tried again before
	cidxEvictedPause  = 30 * time.Second       // an evicted campaign is not loaded again before
	cidxLoadTimeout   = 30 * time.Second
	cidxChunksPerTrip = 16     // chunks of 1,000 codes read per round trip
	cidxPauseMax      = 10_000 // pause entries kept (forgotten beyond: at worst a campaign is tried again)
)

func newCampaignIndex(max int, m *telemetry.Metrics,
	read func(ctx context.Context, id string, from int) (campaignLoad, error)) *campaignIndex {
	return &campaignIndex{max: max, metrics: m, read: read, now: time.Now,
		byID: map[string]*campaignTexts{}, loading: map[string]bool{}, pause: map[string]time.Time{},
		slot: make(chan struct{}, 1)}
}

// has reports whether t (a text without the prefix, width bytes) is held.
func (c *campaignTexts) has(t string) bool {
	w := c.width
	lo, hi := 0, c.n
	for lo < hi {
		m := int(uint(lo+hi) >> 1)
		if c.sorted[m*w:m*w+w] < t {
			lo = m + 1
		} else {
			hi = m
		}
	}
	return lo < c.n && c.sorted[lo*w:lo*w+w] == t
}

// lookup returns the campaign holding text, if a held campaign does.
func (ix *campaignIndex) lookup(text string) (string, bool) {
	if ix == nil || ix.max == 0 {
		return "", false
	}
	ix.mu.RLock()
	for _, c := range ix.sets {
		if len(text) != len(c.prefix)+c.width || !strings.HasPrefix(text, c.prefix) {
			continue
		}
		if c.has(text[len(c.prefix):]) {
			c.used.Store(ix.tick.Add(1))
			ix.mu.RUnlock()
			ix.metrics.CampaignIndexLookup(true)
			return c.id, true
		}
	}
	ix.mu.RUnlock()
	ix.metrics.CampaignIndexLookup(false)
	return "", false
}

// met is told that the text key of one of campaign id's texts, committed
// or to be committed in batch, names the campaign (the text was not in the
// index). It starts a load of the campaign, or a refresh when the campaign
// is held without that batch, unless one runs, ran less than
// cidxRefreshEvery ago, or the campaign is paused. It reports whether the
// index holds or may come to hold the campaign (false: off, or the
// campaign is too large for it).
func (ix *campaignIndex) met(id string, batch int) bool {
	if ix == nil || ix.max == 0 {
		return false
	}
	now := ix.now()
	ix.mu.Lock()
	defer ix.mu.Unlock()
	c := ix.byID[id]
	switch until, paused := ix.pause[id]; {
	case paused && until.IsZero():
		return false
	case ix.loading[id], c != nil && batch < c.batches:
		return true // a load runs; or the batch is held (then the text is in it)
	case c != nil && now.Sub(time.Unix(0, c.loadedAt.Load())) < cidxRefreshEvery:
		return true
	case paused && now.Before(until):
		return true
	}
	delete(ix.pause, id)
	from := 0
	if c != nil {
		from = c.batches
	}
	ix.loading[id] = true
	ix.loads.Add(1)
	go ix.load(id, c, from)
	return true
}

// load reads campaign id's chunks from batch from on and adds them to old
// (nil: a first load), then publishes the result.
func (ix *campaignIndex) load(id string, old *campaignTexts, from int) {
	defer ix.loads.Done()
	ix.slot <- struct{}{}
	got, err := func() (campaignLoad, error) {
		defer func() { <-ix.slot }()
		ctx, cancel := context.WithTimeout(context.Background(), cidxLoadTimeout)
		defer cancel()
		return ix.read(ctx, id, from)
	}()
	var next *campaignTexts
	outcome := "loaded"
	switch {
	case err != nil:
		outcome = "failed"
	case old != nil && (got.width-len(got.prefix) != old.width || got.prefix != old.prefix):
		outcome = "failed" // cannot happen: a campaign's prefix and length never change
	case old != nil && got.batches <= old.batches:
		outcome = "unchanged"
	default:
		next = merge(id, old, got)
		if old != nil {
			outcome = "refreshed"
		}
	}
	now := ix.now()
	ix.mu.Lock()
	defer ix.mu.Unlock()
	delete(ix.loading, id)
	cur := ix.byID[id]
	switch {
	case cur != old:
		outcome = "stale" // evicted while it loaded: dropped, loaded again when met again
	case outcome == "failed":
		ix.setPause(id, now.Add(cidxRetryAfter))
	case outcome == "unchanged":
		old.loadedAt.Store(now.UnixNano())
	case next.n > ix.max:
		outcome = "too_large"
		if old != nil {
			ix.remove(old)
		}
		ix.setPause(id, time.Time{})
	default:
		next.loadedAt.Store(now.UnixNano())
		next.used.Store(ix.tick.Add(1))
		if old != nil {
			next.used.Store(old.used.Load())
		}
		ix.evictFor(next.n-old.size(), old)
		ix.replace(old, next)
	}
	ix.metrics.CampaignIndexLoad(outcome)
	ix.metrics.CampaignIndexSize(len(ix.sets), ix.held)
}

func (c *campaignTexts) size() int {
	if c == nil {
		return 0
	}
	return c.n
}

// merge returns old's texts plus got's (prefix stripped), sorted.
func merge(id string, old *campaignTexts, got campaignLoad) *campaignTexts {
	p, w := got.prefix, got.width-len(got.prefix)
	fresh := make([]string, 0, len(got.texts))
	for _, t := range got.texts {
		if len(t) == got.width && strings.HasPrefix(t, p) {
			fresh = append(fresh, t[len(p):])
		}
	}
	slices.Sort(fresh)
	var b strings.Builder
	b.Grow((old.size() + len(fresh)) * w)
	n, last := 0, ""
	add := func(t string) {
		if n > 0 && t == last {
			return // cannot happen: a text is in one chunk only
		}
		b.WriteString(t)
		n, last = n+1, t
	}
	i := 0
	if old != nil {
		for j := 0; j < old.n; j++ {
			o := old.sorted[j*w : j*w+w]
			for i < len(fresh) && fresh[i] < o {
				add(fresh[i])
				i++
			}
			add(o)
		}
	}
	for ; i < len(fresh); i++ {
		add(fresh[i])
	}
	return &campaignTexts{id: id, prefix: p, width: w, sorted: b.String(), n: n, batches: got.batches}
}

// evictFor makes room for grow more texts, evicting the least recently
// used campaigns other than keep. Called with mu held.
func (ix *campaignIndex) evictFor(grow int, keep *campaignTexts) {
	for ix.held+grow > ix.max {
		var lru *campaignTexts
		for _, c := range ix.sets {
			if c != keep && (lru == nil || c.used.Load() < lru.used.Load()) {
				lru = c
			}
		}
		if lru == nil {
			return
		}
		ix.remove(lru)
		ix.setPause(lru.id, ix.now().Add(cidxEvictedPause))
		ix.metrics.CampaignIndexLoad("evicted")
	}
}

// replace publishes next in old's place (old nil: added). mu held.
func (ix *campaignIndex) replace(old, next *campaignTexts) {
	if old != nil {
		ix.remove(old)
	}
	ix.sets = append(ix.sets, next)
	ix.byID[next.id] = next
	ix.held += next.n
}

// remove drops c. mu held.
func (ix *campaignIndex) remove(c *campaignTexts) {
	if i := slices.Index(ix.sets, c); i >= 0 {
		ix.sets = slices.Delete(ix.sets, i, i+1)
		ix.held -= c.n
	}
	if ix.byID[c.id] == c {
		delete(ix.byID, c.id)
	}
}

// setPause records that id is not to be loaded before until. mu held.
func (ix *campaignIndex) setPause(id string, until time.Time) {
	if len(ix.pause) >= cidxPauseMax {
		now := ix.now()
		for k, t := range ix.pause {
			if !t.IsZero() && !now.Before(t) {
				delete(ix.pause, k)
			}
		}
		if len(ix.pause) >= cidxPauseMax {
			clear(ix.pause)
		}
	}
	ix.pause[id] = until
}

// wait waits for the loads in flight (tests).
func (ix *campaignIndex) wait() { ix.loads.Wait() }

// stats reports the campaigns and texts held (tests).
func (ix *campaignIndex) stats() (campaigns, texts int) {
	ix.mu.RLock()
	defer ix.mu.RUnlock()
	return len(ix.sets), ix.held
}

// readCampaignTexts reads campaign id's committed chunks from batch from
// on (the index's loader): its record (prefix, text length, the batch
// cursor) in one round trip, then the chunks, cidxChunksPerTrip per
// pipeline. Chunks below the cursor are written once and never change.
func (s *Store) readCampaignTexts(ctx context.Context, id string, from int) (campaignLoad, error) {
	h, err := s.rdb.HGetAll(ctx, campaignKey(id)).Result()
	if err != nil {
		return campaignLoad{}, unavailable(err)
	}
	c, err := decodeCampaign(id, h)
	if err != nil {
		return campaignLoad{}, err
	}
	out := campaignLoad{prefix: c.Prefix, width: int(atoi(h["len"])), batches: int(atoi(h["batch"]))}
	if out.width != c.CodeTextLength() {
		return campaignLoad{}, errors.New("campaign " + id + ": text length does not match its prefix and code length")
	}
	for b := from; b < out.batches; b += cidxChunksPerTrip {
		cmds := make([]*redis.StringCmd, 0, cidxChunksPerTrip)
		if _, err := s.rdb.Pipelined(ctx, func(p redis.Pipeliner) error {
			for k := b; k < min(b+cidxChunksPerTrip, out.batches); k++ {
				cmds = append(cmds, p.Get(ctx, campaignChunkKey(id, k)))
			}
			return nil
		}); err != nil && !errors.Is(err, redis.Nil) {
			return campaignLoad{}, unavailable(err)
		}
		for _, cmd := range cmds {
			out.texts = append(out.texts, splitTexts(cmd.Val(), out.width)...)
		}
	}
	return out, nil
}
