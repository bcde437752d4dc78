package web

import (
	"container/list"
	"errors"
	"strings"
	"sync"

	"github.com/scorch-dev/scorch/capture"
)

// rendered is one cached answer: the body (gzipped unless the format is
// compressed already) and, for SVGs, the CSP naming the rendering's nonce.
type rendered struct {
	body    []byte
	gzipped bool
	csp     string
}

// renderCache keeps rendered answers per (captures, route, parameters),
// least recently used first out, within a byte budget. Concurrent requests
// for an answer being rendered wait for that rendering. A key starts with
// the ids of the captures its answer derives from, comma-separated (two for
// a diff), then "|" (see cacheKey).
type renderCache struct {
	mu      sync.Mutex
	max     int64
	size    int64
	ll      *list.List
	items   map[string]*list.Element
	pending map[string]*renderCall
}

type cacheEntry struct {
	key string
	val *rendered
}

type renderCall struct {
	done    chan struct{}
	val     *rendered
	err     error
	dropped bool // a capture it derives from was deleted meanwhile: not cached
}

func newRenderCache(max int64) *renderCache {
	return &renderCache{max: max, ll: list.New(), items: make(map[string]*list.Element), pending: make(map[string]*renderCall)}
}

// get returns the cached answer, or renders it once with fn however many
// requests ask at the same time. hit says whether it came from the cache.
func (c *renderCache) get(key string, fn func() (*rendered, error)) (val *rendered, hit bool, err error) {
	c.mu.Lock()
	if e, ok := c.items[key]; ok {
		c.ll.MoveToFront(e)
		c.mu.Unlock()
		return e.Value.(*cacheEntry).val, true, nil
	}
	if call, ok := c.pending[key]; ok {
		c.mu.Unlock()
		<-call.done
		return call.val, true, call.err
	}
	// The error stands until fn returns: if it panics, the requests
	// waiting get it and later ones render again, instead of hanging.
	call := &renderCall{done: make(chan struct{}), err: errAbandoned}
	c.pending[key] = call
	c.mu.Unlock()
	defer func() {
		c.mu.Lock()
		if c.pending[key] == call {
			delete(c.pending, key)
		}
		c.mu.Unlock()
		close(call.done)
	}()

	call.val, call.err = fn()
	if call.err == nil {
		c.mu.Lock()
		if !call.dropped {
			c.putLocked(key, call.val)
		}
		c.mu.Unlock()
	}
	return call.val, false, call.err
}

// errAbandoned is what requests waiting for a rendering or a load get when
// it panicked.
var errAbandoned = errors.New("internal error: the request this one waited for failed")

func (c *renderCache) put(key string, val *rendered) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.putLocked(key, val)
}

func (c *renderCache) putLocked(key string, val *rendered) {
	if int64(len(val.body)) > c.max/4 {
		return // one huge answer would evict everything else
	}
	if e, ok := c.items[key]; ok {
		c.size -= int64(len(e.Value.(*cacheEntry).val.body))
		c.ll.Remove(e)
	}
	c.items[key] = c.ll.PushFront(&cacheEntry{key: key, val: val})
	c.size += int64(len(val.body))
	for c.size > c.max {
		e := c.ll.Back()
		ent := e.Value.(*cacheEntry)
		c.ll.Remove(e)
		delete(c.items, ent.key)
		c.size -= int64(len(ent.val.body))
	}
}

// drop forgets every answer derived from one capture, diffs with another
// included. Renderings of it under way are not cached when they finish, and
// later requests render again instead of waiting for them.
func (c *renderCache) drop(id string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for k, e := range c.items {
		if derivesFrom(k, id) {
			c.size -= int64(len(e.Value.(*cacheEntry).val.body))
			c.ll.Remove(e)
			delete(c.items, k)
		}
	}
	for k, call := range c.pending {
		if derivesFrom(k, id) {
			call.dropped = true
			delete(c.pending, k)
		}
	}
}

// derivesFrom says whether the answer of a cache key is derived from the
// capture id: whether id is one of the ids before the key's first "|".
func derivesFrom(key, id string) bool {
	ids, _, _ := strings.Cut(key, "|")
	for ids != "" {
		var one string
		one, ids, _ = strings.Cut(ids, ",")
		if one == id {
			return true
		}
	}
	return false
}

// captureCache keeps the last few decoded captures, loading each once even
// when many requests ask for it at the same time.
type captureCache struct {
	mu      sync.Mutex
	max     int
	order   []string
	items   map[string]*capture.Capture
	loading map[string]*loadCall
}

type loadCall struct {
	done    chan struct{}
	c       *capture.Capture
	err     error
	dropped bool // the capture was deleted meanwhile: not kept
}

func newCaptureCache(max int) *captureCache {
	return &captureCache{max: max, items: make(map[string]*capture.Capture), loading: make(map[string]*loadCall)}
}

func (cc *captureCache) get(id string) *capture.Capture {
	cc.mu.Lock()
	defer cc.mu.Unlock()
	return cc.items[id]
}

func (cc *captureCache) put(id string, c *capture.Capture) {
	cc.mu.Lock()
	defer cc.mu.Unlock()
	cc.putLocked(id, c)
}

func (cc *captureCache) putLocked(id string, c *capture.Capture) {
	if _, ok := cc.items[id]; !ok {
		cc.order = append(cc.order, id)
	}
	cc.items[id] = c
	for len(cc.order) > cc.max {
		delete(cc.items, cc.order[0])
		cc.order = cc.order[1:]
	}
}

// drop forgets a capture; a load of it under way is not kept when it
// finishes, and later requests load again instead of waiting for it.
func (cc *captureCache) drop(id string) {
	cc.mu.Lock()
	defer cc.mu.Unlock()
	delete(cc.items, id)
	if call, ok := cc.loading[id]; ok {
		call.dropped = true
		delete(cc.loading, id)
	}
	for i, o := range cc.order {
		if o == id {
			cc.order = append(cc.order[:i:i], cc.order[i+1:]...)
			break
		}
	}
}

func (cc *captureCache) load(id string, read func(string) (*capture.Capture, error)) (*capture.Capture, error) {
	cc.mu.Lock()
	if c, ok := cc.items[id]; ok {
		cc.mu.Unlock()
		return c, nil
	}
	if call, ok := cc.loading[id]; ok {
		cc.mu.Unlock()
		<-call.done
		return call.c, call.err
	}
	call := &loadCall{done: make(chan struct{}), err: errAbandoned}
	cc.loading[id] = call
	cc.mu.Unlock()
	defer func() {
		cc.mu.Lock()
		if cc.loading[id] == call {
			delete(cc.loading, id)
		}
		if call.err == nil && !call.dropped {
			cc.putLocked(id, call.c)
		}
		cc.mu.Unlock()
		close(call.done)
	}()

	call.c, call.err = read(id)
	return call.c, call.err
}
