package redisstore

import "sync"

// textCacheMax bounds the text cache; when full it starts over.
const textCacheMax = 100_000

// textCache maps code texts to promo code IDs in this process, so validate
// and apply resolve a text without a round trip to the text's slot: one
// round trip (the code's slot) instead of two. Campaign codes have their
// own exact index (cmpindex.go); a campaign's text comes here only when
// that index is off or the campaign is too large for it.
//
// An entry is only a hint and needs no invalidation from other replicas: a
// text belongs to at most one non-archived code and a code's text never
// changes, so the reader (GetByCodeForCustomer) checks that the code it
// reads has this text and is not archived, and otherwise drops the entry and
// asks Redis. Archiving through this process drops the entry at once.
type textCache struct {
	mu sync.RWMutex
	m  map[string]string
}

func newTextCache() *textCache { return &textCache{m: map[string]string{}} }

func (c *textCache) get(text string) (string, bool) {
	c.mu.RLock()
	id, ok := c.m[text]
	c.mu.RUnlock()
	return id, ok
}

func (c *textCache) put(text, id string) {
	c.mu.Lock()
	if len(c.m) >= textCacheMax {
		clear(c.m)
	}
	c.m[text] = id
	c.mu.Unlock()
}

func (c *textCache) forget(text string) {
	c.mu.Lock()
	delete(c.m, text)
	c.mu.Unlock()
}
