package web

import (
	"strings"

	"github.com/scorch-dev/scorch/capture"
	"github.com/scorch-dev/scorch/internal/cache"
)

// rendered is one cached answer: the body (gzipped unless the format is
// compressed already) or, for SVGs, the gzipped rendering without its
// nonce (each answer gets a nonce of its own, and a CSP naming it).
type rendered struct {
	body    [][]byte // in chunks (see chunkBuf)
	gzipped bool
	nonced  *noncedGzip
}

// cost is what the answer holds in memory.
func (r *rendered) cost() int64 {
	if r.nonced != nil {
		return r.nonced.size()
	}
	return chunksLen(r.body)
}

// renderCache keeps rendered answers per (captures, route, parameters),
// least recently used first out, within a byte budget. Concurrent requests
// for an answer being rendered wait for that rendering. A key starts with
// the ids of the captures its answer derives from, comma-separated (two for
// a diff), then "|" (see cacheKey).
type renderCache struct {
	c *cache.Cache[string, *rendered]
}

func newRenderCache(max int64) *renderCache {
	return &renderCache{cache.New[string](cache.Options[*rendered]{
		MaxCost: max,
		Cost:    (*rendered).cost,
		// One huge answer would evict everything else.
		MaxEntryCost: max / 4,
	})}
}

// get returns the cached answer, or renders it once with fn however many
// requests ask at the same time. hit says whether this request did not
// render. A rendering that panics gives its requests errAbandoned, and
// later ones render again.
func (c *renderCache) get(key string, fn func() (*rendered, error)) (val *rendered, hit bool, err error) {
	return c.c.Get(key, fn)
}

// errAbandoned is what requests get when the rendering or load they made
// or waited for panicked.
var errAbandoned = cache.ErrPanicked

// drop forgets every answer derived from one capture, diffs with another
// included. Renderings of it under way are not cached when they finish, and
// later requests render again instead of waiting for them.
func (c *renderCache) drop(id string) {
	c.c.RemoveFunc(func(key string) bool { return derivesFrom(key, id) })
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
// when many requests ask for it at the same time. onRemove is told of each
// capture it lets go of.
type captureCache struct {
	c *cache.Cache[string, *capture.Capture]
}

func newCaptureCache(max int, onRemove func(*capture.Capture)) *captureCache {
	return &captureCache{cache.New[string](cache.Options[*capture.Capture]{MaxCost: int64(max), OnRemove: onRemove})}
}

// get returns the capture when it is in memory.
func (cc *captureCache) get(id string) *capture.Capture {
	c, _ := cc.c.Peek(id)
	return c
}

// put keeps a capture decoded elsewhere (just recorded or imported).
func (cc *captureCache) put(id string, c *capture.Capture) { cc.c.Put(id, c) }

// drop forgets a capture; a load of it under way is not kept when it
// finishes, and later requests load again instead of waiting for it.
func (cc *captureCache) drop(id string) { cc.c.Remove(id) }

// load returns the capture, reading it with read once however many
// requests ask at the same time. Errors are not kept.
func (cc *captureCache) load(id string, read func(string) (*capture.Capture, error)) (*capture.Capture, error) {
	c, _, err := cc.c.Get(id, func() (*capture.Capture, error) { return read(id) })
	return c, err
}
