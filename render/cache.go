package render

import (
	"container/list"
	"sync"
)

// cacheEntry is a finished build: a result, or the error it failed with
// (builds are deterministic, so an unchanged broken tree is not rebuilt).
type cacheEntry struct {
	result Result
	err    error
}

// resultCache is a least-recently-used map from "root tree hash\x00path" to
// finished builds, bounded by entry count. A nil *resultCache caches nothing.
type resultCache struct {
	max int

	mu      sync.Mutex // guards entries and order
	entries map[string]*list.Element
	order   *list.List // front = most recently used; values are *cacheItem
}

type cacheItem struct {
	key   string
	entry cacheEntry
}

func newResultCache(max int) *resultCache {
	return &resultCache{max: max, entries: map[string]*list.Element{}, order: list.New()}
}

func (c *resultCache) get(key string) (cacheEntry, bool) {
	if c == nil {
		return cacheEntry{}, false
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	el, ok := c.entries[key]
	if !ok {
		return cacheEntry{}, false
	}
	c.order.MoveToFront(el)
	return el.Value.(*cacheItem).entry, true
}

func (c *resultCache) add(key string, e cacheEntry) {
	if c == nil {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if el, ok := c.entries[key]; ok {
		el.Value.(*cacheItem).entry = e
		c.order.MoveToFront(el)
		return
	}
	c.entries[key] = c.order.PushFront(&cacheItem{key: key, entry: e})
	for c.order.Len() > c.max {
		oldest := c.order.Back()
		c.order.Remove(oldest)
		delete(c.entries, oldest.Value.(*cacheItem).key)
	}
}

func (c *resultCache) len() int {
	if c == nil {
		return 0
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.order.Len()
}
