package symbolizer

import "github.com/scorch-dev/scorch/internal/cache"

// lru is the memory-bounded cache of loaded modules, a module costing what
// its tables take (module.bytes). Loads of the same key are coalesced:
// concurrent callers wait for the first one. A module that failed to load
// is a value like any other (negative caching through module.err).
type lru struct {
	limit int64
	c     *cache.Cache[string, *module]
}

// lruEntry is a cached module, which callers may keep as a fast path while
// it is not evicted (touching it now and then to keep it recent).
type lruEntry = cache.Entry[string, *module]

func newLRU(limit int64) *lru {
	return &lru{limit: limit, c: cache.New[string](cache.Options[*module]{MaxCost: limit, Cost: (*module).bytes})}
}

// get returns the module for key, loading it with load on a miss.
func (c *lru) get(key string, load func() *module) *module {
	return moduleOf(c.entry(key, load))
}

// entry is get returning the cache entry.
func (c *lru) entry(key string, load func() *module) *lruEntry {
	e, _ := c.c.GetEntry(key, func() (*module, error) { return load(), nil })
	return e
}

// moduleOf is the module of an entry; a load that panicked (and is not
// kept) gives a module carrying its error.
func moduleOf(e *lruEntry) *module {
	if m := e.Value(); m != nil {
		return m
	}
	return &module{err: e.Err()}
}

// recost charges the entry of key with what its module grew by since it
// was kept (its DWARF tables, read at its first symbolization).
func (c *lru) recost(key string) { c.c.Recost(key) }

// touch marks e as recently used.
func (c *lru) touch(e *lruEntry) { c.c.Touch(e) }

func (c *lru) stats() (entries int, used int64) {
	st := c.c.Stats()
	return st.Entries, st.Cost
}

func (c *lru) clear() { c.c.Clear() }
