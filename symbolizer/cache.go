package symbolizer

import (
	"container/list"
	"sync"
	"sync/atomic"
)

// lru is a memory-bounded LRU of loaded modules. Loads of the same key are
// coalesced: concurrent callers wait for the first one.
type lru struct {
	mu    sync.Mutex
	limit int64
	used  int64
	ll    *list.List // front: most recent
	items map[string]*list.Element
}

type lruEntry struct {
	key     string
	mod     *module
	size    int64
	ready   chan struct{}
	el      *list.Element
	evicted atomic.Bool
}

func newLRU(limit int64) *lru {
	return &lru{limit: limit, ll: list.New(), items: make(map[string]*list.Element)}
}

// get returns the module for key, loading it with load on a miss.
func (c *lru) get(key string, load func() *module) *module {
	return c.entry(key, load).mod
}

// entry is get returning the cache entry, which callers may keep as a fast
// path while it is not evicted (and touch now and then to keep it recent).
func (c *lru) entry(key string, load func() *module) *lruEntry {
	c.mu.Lock()
	if el, ok := c.items[key]; ok {
		c.ll.MoveToFront(el)
		e := el.Value.(*lruEntry)
		c.mu.Unlock()
		<-e.ready
		return e
	}
	e := &lruEntry{key: key, ready: make(chan struct{})}
	el := c.ll.PushFront(e)
	e.el = el
	c.items[key] = el
	c.mu.Unlock()

	mod := load()
	c.mu.Lock()
	e.mod, e.size = mod, mod.bytes()
	c.used += e.size
	for tries := c.ll.Len(); c.used > c.limit && tries > 0; tries-- {
		back := c.ll.Back()
		if back == nil || back == el {
			break
		}
		old := back.Value.(*lruEntry)
		select {
		case <-old.ready:
		default:
			// Still loading: it will be accounted when done.
			c.ll.MoveToFront(back)
			continue
		}
		c.ll.Remove(back)
		delete(c.items, old.key)
		c.used -= old.size
		old.evicted.Store(true)
	}
	c.mu.Unlock()
	close(e.ready)
	return e
}

// touch marks e as recently used.
func (c *lru) touch(e *lruEntry) {
	c.mu.Lock()
	if !e.evicted.Load() {
		c.ll.MoveToFront(e.el)
	}
	c.mu.Unlock()
}

func (c *lru) stats() (entries int, used int64) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.ll.Len(), c.used
}

func (c *lru) clear() {
	c.mu.Lock()
	defer c.mu.Unlock()
	for el := c.ll.Front(); el != nil; el = el.Next() {
		el.Value.(*lruEntry).evicted.Store(true)
	}
	c.ll.Init()
	c.items = make(map[string]*list.Element)
	c.used = 0
}
