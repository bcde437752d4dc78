// Package memgov bounds the Go heap of a batch of work that builds a large
// structure, such as an import, without costing the interactive work
// beside it: while a hold is taken, the runtime's soft memory limit follows
// the live heap, set after each collection to half as much again (at least
// Options.Headroom more) and what the runtime holds beside the heap, within
// [Floor, Ceiling]; with no hold it is the Ceiling.
//
// GOGC alone lets the heap reach twice the live heap, and the runtime keeps
// what it freed resident up to the limit: with serve's 512 MiB ceiling,
// three 64 MiB imports at once peaked at 270-400 MiB. A limit that follows
// the live heap returns the memory after each peak instead, but a process
// that then allocates as much again faults it all back in, and collects
// more often: held all the time, it doubled a 1M-sample capture's view
// times in serve and halved the renders a loaded server answered. So it is
// held only while the batch runs.
package memgov

import (
	"runtime"
	"runtime/debug"
	"runtime/metrics"
	"sync"
	"sync/atomic"
)

// Options bound the limit the governor sets.
type Options struct {
	// Ceiling is the highest limit set (a user's --memory-limit); 0: none.
	Ceiling int64
	// Floor is the lowest (default 64 MiB): below it collections would
	// come often for nothing.
	Floor int64
	// Headroom is the least room over the live heap (default 48 MiB).
	Headroom int64
}

// Governor follows the live heap after each collection.
type Governor struct {
	opts    Options
	stopped atomic.Bool
	mu      sync.Mutex
	holds   int
	limit   int64 // the limit last set
	samples []metrics.Sample
}

const (
	defaultFloor    = 64 << 20
	defaultHeadroom = 48 << 20
)

// Start sets the limit to the ceiling, and follows the live heap after
// every collection while a hold is taken, until Stop.
func Start(opts Options) *Governor {
	if opts.Floor <= 0 {
		opts.Floor = defaultFloor
	}
	if opts.Headroom <= 0 {
		opts.Headroom = defaultHeadroom
	}
	if opts.Ceiling > 0 && opts.Floor > opts.Ceiling {
		opts.Floor = opts.Ceiling
	}
	g := &Governor{opts: opts, samples: []metrics.Sample{
		{Name: "/gc/heap/live:bytes"},
		{Name: "/memory/classes/total:bytes"},
		{Name: "/memory/classes/heap/objects:bytes"},
		{Name: "/memory/classes/heap/unused:bytes"},
		{Name: "/memory/classes/heap/free:bytes"},
		{Name: "/memory/classes/heap/released:bytes"},
	}}
	g.update()
	g.arm()
	return g
}

// arm plants an object whose finalizer runs after the next collection
// that finds it unreachable, that is once per cycle, and plants the next.
func (g *Governor) arm() {
	s := new(sentinel)
	runtime.SetFinalizer(s, func(*sentinel) {
		if g.stopped.Load() {
			return
		}
		g.update()
		g.arm()
	})
}

// sentinel holds a pointer: the finalizer of a zero-sized object, or of a
// small pointer-free one that the allocator packs with others into one
// block, may never run.
type sentinel struct{ _ *byte }

// Limit is the limit last set.
func (g *Governor) Limit() int64 {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.limit
}

// Hold makes the limit follow the live heap until release is called.
func (g *Governor) Hold() (release func()) {
	g.mu.Lock()
	g.holds++
	g.mu.Unlock()
	g.update()
	var once sync.Once
	return func() {
		once.Do(func() {
			g.mu.Lock()
			g.holds--
			g.mu.Unlock()
			g.update()
		})
	}
}

// Stop sets the ceiling and follows no more collections.
func (g *Governor) Stop() {
	if g.stopped.Swap(true) {
		return
	}
	g.mu.Lock()
	defer g.mu.Unlock()
	g.setLocked(g.ceiling())
}

func (g *Governor) ceiling() int64 {
	if g.opts.Ceiling <= 0 {
		return int64(^uint64(0) >> 1) // math.MaxInt64: no limit
	}
	return g.opts.Ceiling
}

func (g *Governor) setLocked(limit int64) {
	g.limit = limit
	debug.SetMemoryLimit(limit)
}

func (g *Governor) update() {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.stopped.Load() {
		return
	}
	if g.holds == 0 {
		// Every collection ends here with no hold: set the runtime's
		// limit only when it changes.
		if c := g.ceiling(); g.limit != c {
			g.setLocked(c)
		}
		return
	}
	metrics.Read(g.samples)
	var v [6]uint64
	for i, s := range g.samples {
		if s.Value.Kind() != metrics.KindUint64 {
			return // a runtime without these: leave the limit alone
		}
		v[i] = s.Value.Uint64()
	}
	live, total := v[0], v[1]
	heap := v[2] + v[3] + v[4] + v[5]
	// What the runtime holds beside the heap (stacks, GC metadata, ...)
	// counts against the limit too.
	beside := int64(0)
	if total > heap {
		beside = int64(total - heap)
	}
	g.setLocked(limitFor(int64(live), beside, g.opts))
}

// limitFor is the limit for a live heap of live bytes with beside bytes
// of runtime memory outside the heap: live plus half, at least o.Headroom,
// within [o.Floor, o.Ceiling].
func limitFor(live, beside int64, o Options) int64 {
	room := max(live/2, o.Headroom)
	limit := max(live+room+beside, o.Floor)
	if o.Ceiling > 0 {
		limit = min(limit, o.Ceiling)
	}
	return limit
}
