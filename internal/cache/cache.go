// Package cache is scorch's one load-once cache: least recently used out
// first within a bound on the sum of its entries' costs (bytes, or a number
// of entries), each key loaded once however many callers ask for it at the
// same time, failed loads optionally kept as negative entries, and a loader
// that panics turned into an error that is not kept, so the key is loaded
// again by the next caller instead of hanging or failing for ever.
package cache

import (
	"container/list"
	"errors"
	"fmt"
	"runtime/debug"
	"sync"
	"sync/atomic"
)

// Options configure a Cache. V is the type of the values.
type Options[V any] struct {
	// MaxCost bounds the sum of the costs of the entries kept. The entry
	// just added is never evicted to make room for itself: one value
	// costing more than MaxCost is kept alone (unless MaxEntryCost says
	// otherwise).
	MaxCost int64
	// Cost is what keeping a value costs; nil: 1, so that MaxCost is a
	// number of entries. It is called without the cache's lock held.
	Cost func(V) int64
	// MaxEntryCost, when positive, is the largest cost of a value that is
	// kept: a costlier one is returned to its callers and forgotten, so
	// that one huge value does not evict everything else.
	MaxEntryCost int64
	// KeepErrors keeps failed loads as negative entries costing 1: the
	// key is not loaded again while its entry stays, and callers get the
	// error. A loader that panicked is never kept.
	KeepErrors bool
	// OnRemove, when set, is called with every value the cache lets go of
	// (evicted, removed, or replaced by a Put of its key), after the cache's
	// lock is released, so it may use other caches: values derived from
	// this one's can be dropped with it instead of outliving it.
	OnRemove func(V)
}

// Stats are a cache's counters since it was made.
type Stats struct {
	Hits      uint64 // Get calls answered without loading: cached, or waiting for another caller's load
	Misses    uint64 // Get calls that loaded
	Evictions uint64 // entries dropped to stay within MaxCost
	Entries   int    // entries kept now
	Cost      int64  // sum of their costs
}

// ErrPanicked is what a load that panicked returns, to its caller and to
// the callers waiting for it (errors.Is; the error is a *PanicError).
var ErrPanicked = errors.New("the load panicked")

// PanicError is a panic of a loader, with the stack where it happened.
type PanicError struct {
	Value any
	Stack []byte
}

func (e *PanicError) Error() string        { return fmt.Sprintf("%v: %v", ErrPanicked, e.Value) }
func (e *PanicError) Is(target error) bool { return target == ErrPanicked }

// Entry is one loaded value. Callers may keep it as a fast path that skips
// the cache's lock while it is not Evicted (calling Touch now and then to
// keep it recent).
type Entry[K comparable, V any] struct {
	key     K
	val     V
	err     error
	cost    int64
	el      *list.Element // nil until kept
	evicted atomic.Bool   // set once the cache no longer holds it, or never did
}

// Value is the loaded value (the zero value when the load failed).
func (e *Entry[K, V]) Value() V { return e.val }

// Err is the error of the load, nil when it succeeded.
func (e *Entry[K, V]) Err() error { return e.err }

// Evicted says whether the cache has let go of the entry (or never kept it):
// its value is still good, but the next Get of its key loads again.
func (e *Entry[K, V]) Evicted() bool { return e.evicted.Load() }

// call is a load under way, which callers of the same key wait for.
type call[K comparable, V any] struct {
	done    chan struct{}
	ent     *Entry[K, V]
	dropped bool // removed meanwhile: the result is not kept
}

// Cache is a load-once LRU cache, safe for concurrent use.
type Cache[K comparable, V any] struct {
	opts Options[V]

	mu      sync.Mutex
	ll      list.List // of *Entry; front: most recent
	items   map[K]*list.Element
	pending map[K]*call[K, V]
	cost    int64
	hits    uint64
	misses  uint64
	evicted uint64
	removed []V // let go of under the lock, for OnRemove after it
}

// New returns an empty cache.
func New[K comparable, V any](opts Options[V]) *Cache[K, V] {
	return &Cache[K, V]{opts: opts, items: make(map[K]*list.Element), pending: make(map[K]*call[K, V])}
}

// Get returns the value of key, calling load on a miss; callers asking for
// a key being loaded wait for that load. hit says whether this call did not
// load. A failed load's error is returned (and kept only with KeepErrors).
func (c *Cache[K, V]) Get(key K, load func() (V, error)) (v V, hit bool, err error) {
	e, hit := c.GetEntry(key, load)
	return e.val, hit, e.err
}

// GetEntry is Get returning the entry, for callers that keep it.
func (c *Cache[K, V]) GetEntry(key K, load func() (V, error)) (e *Entry[K, V], hit bool) {
	c.mu.Lock()
	if el, ok := c.items[key]; ok {
		c.ll.MoveToFront(el)
		c.hits++
		c.mu.Unlock()
		return el.Value.(*Entry[K, V]), true
	}
	if cl, ok := c.pending[key]; ok {
		c.hits++
		c.mu.Unlock()
		<-cl.done
		return cl.ent, true
	}
	c.misses++
	cl := &call[K, V]{done: make(chan struct{}), ent: &Entry[K, V]{key: key}}
	c.pending[key] = cl
	c.mu.Unlock()
	c.load(cl, load)
	return cl.ent, false
}

// load runs the loader of a call and keeps its result unless it failed
// (without KeepErrors), panicked, or was removed while it ran.
func (c *Cache[K, V]) load(cl *call[K, V], load func() (V, error)) {
	e := cl.ent
	panicked := true
	defer func() {
		if panicked {
			var zero V
			e.val, e.err = zero, &PanicError{Value: recover(), Stack: debug.Stack()}
		}
		keep := !panicked && (e.err == nil || c.opts.KeepErrors)
		if keep {
			e.cost = 1
			if e.err == nil {
				e.cost = c.costOf(e.val)
			}
		}
		c.mu.Lock()
		if c.pending[e.key] == cl {
			delete(c.pending, e.key)
		}
		if keep && !cl.dropped {
			c.insertLocked(e)
		} else {
			e.evicted.Store(true)
			if !panicked && e.err == nil && c.opts.OnRemove != nil {
				c.removed = append(c.removed, e.val)
			}
		}
		c.unlock()
		close(cl.done)
	}()
	e.val, e.err = load()
	panicked = false
}

func (c *Cache[K, V]) costOf(v V) int64 {
	if c.opts.Cost == nil {
		return 1
	}
	return c.opts.Cost(v)
}

// insertLocked keeps e as the most recent entry, replacing one of the same
// key, and evicts the least recent ones beyond MaxCost.
func (c *Cache[K, V]) insertLocked(e *Entry[K, V]) {
	if c.opts.MaxEntryCost > 0 && e.cost > c.opts.MaxEntryCost {
		e.evicted.Store(true)
		if c.opts.OnRemove != nil && e.err == nil {
			c.removed = append(c.removed, e.val)
		}
		return
	}
	if el, ok := c.items[e.key]; ok {
		c.removeLocked(el)
	}
	e.el = c.ll.PushFront(e)
	c.items[e.key] = e.el
	c.cost += e.cost
	c.evictLocked(e.el)
}

// evictLocked evicts the least recent entries beyond MaxCost, never keep.
func (c *Cache[K, V]) evictLocked(keep *list.Element) {
	for c.cost > c.opts.MaxCost {
		back := c.ll.Back()
		if back == keep {
			break
		}
		c.removeLocked(back)
		c.evicted++
	}
}

// Recost computes the cost of key's value again, for a value that grew (or
// shrank) after it was kept, such as tables read lazily, and evicts the
// least recent other entries beyond MaxCost (or the value itself, beyond
// MaxEntryCost).
func (c *Cache[K, V]) Recost(key K) {
	c.mu.Lock()
	el, ok := c.items[key]
	c.mu.Unlock()
	if !ok {
		return
	}
	e := el.Value.(*Entry[K, V])
	if e.err != nil {
		return
	}
	cost := c.costOf(e.val)
	c.mu.Lock()
	defer c.unlock()
	if cur, ok := c.items[key]; !ok || cur != el {
		return // evicted or replaced meanwhile
	}
	c.cost += cost - e.cost
	e.cost = cost
	if c.opts.MaxEntryCost > 0 && cost > c.opts.MaxEntryCost {
		c.removeLocked(el)
		return
	}
	c.evictLocked(el)
}

func (c *Cache[K, V]) removeLocked(el *list.Element) {
	e := el.Value.(*Entry[K, V])
	c.ll.Remove(el)
	delete(c.items, e.key)
	c.cost -= e.cost
	e.evicted.Store(true)
	if c.opts.OnRemove != nil && e.err == nil {
		c.removed = append(c.removed, e.val)
	}
}

// unlock releases the lock, then calls OnRemove with what was let go of
// while it was held.
func (c *Cache[K, V]) unlock() {
	removed := c.removed
	c.removed = nil
	c.mu.Unlock()
	for _, v := range removed {
		c.opts.OnRemove(v)
	}
}

// Put keeps a value loaded elsewhere, as Get would have.
func (c *Cache[K, V]) Put(key K, v V) {
	e := &Entry[K, V]{key: key, val: v, cost: c.costOf(v)}
	c.mu.Lock()
	defer c.unlock()
	c.insertLocked(e)
}

// Peek returns the value of key when it is cached (not a negative entry),
// marking it recently used; it never loads and counts neither a hit nor a
// miss.
func (c *Cache[K, V]) Peek(key K) (v V, ok bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	el, ok := c.items[key]
	if !ok {
		return v, false
	}
	e := el.Value.(*Entry[K, V])
	if e.err != nil {
		return v, false
	}
	c.ll.MoveToFront(el)
	return e.val, true
}

// Touch marks an entry kept by a caller as recently used.
func (c *Cache[K, V]) Touch(e *Entry[K, V]) {
	c.mu.Lock()
	if !e.evicted.Load() {
		c.ll.MoveToFront(e.el)
	}
	c.mu.Unlock()
}

// Remove forgets key. A load of it under way is not kept when it finishes,
// and later callers load again instead of waiting for it.
func (c *Cache[K, V]) Remove(key K) {
	c.RemoveFunc(func(k K) bool { return k == key })
}

// RemoveFunc forgets every key for which match is true, as Remove does.
func (c *Cache[K, V]) RemoveFunc(match func(K) bool) {
	c.mu.Lock()
	defer c.unlock()
	for k, el := range c.items {
		if match(k) {
			c.removeLocked(el)
		}
	}
	for k, cl := range c.pending {
		if match(k) {
			cl.dropped = true
			delete(c.pending, k)
		}
	}
}

// Clear forgets everything, loads under way included.
func (c *Cache[K, V]) Clear() {
	c.RemoveFunc(func(K) bool { return true })
}

// Keys lists the keys kept, most recent first.
func (c *Cache[K, V]) Keys() []K {
	c.mu.Lock()
	defer c.mu.Unlock()
	keys := make([]K, 0, c.ll.Len())
	for el := c.ll.Front(); el != nil; el = el.Next() {
		keys = append(keys, el.Value.(*Entry[K, V]).key)
	}
	return keys
}

// Stats returns the cache's counters.
func (c *Cache[K, V]) Stats() Stats {
	c.mu.Lock()
	defer c.mu.Unlock()
	return Stats{Hits: c.hits, Misses: c.misses, Evictions: c.evicted, Entries: c.ll.Len(), Cost: c.cost}
}
