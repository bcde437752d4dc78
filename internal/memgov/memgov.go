// Package memgov keeps the Go runtime's soft memory limit a step above the
// live heap, so that a long-running process holds little garbage while its
// live heap is small and the collector never spins when it is large.
//
// GOGC alone lets the heap grow to twice the live heap before a collection
// (a service with 150 MB live resides at 300 MB or more); a fixed limit
// under the live heap makes the collector run without end, and one high
// enough for the largest capture served lets every smaller load keep that
// much garbage resident (the runtime returns freed memory to the system
// only as it nears the limit). The governor sets the limit after each
// collection to twice the live heap, Options.Headroom more and what the
// runtime holds beside the heap, within [Floor, Ceiling]: above GOGC=100's
// own target, so collections come no more often and a cycle's allocations
// do not run into the limit, while memory freed after a peak goes back to
// the system. (Limits at or under GOGC's target, half or a quarter over
// the live heap, halved the renders a loaded server answered and slowed a
// 1M-sample capture's views: the runtime then returns and faults in memory
// every cycle.)
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
	// Headroom is the room over GOGC's target, twice the live heap
	// (default 64 MiB: a server with a small live heap renders 10 MB
	// answers between collections).
	Headroom int64
}

// Governor follows the live heap after each collection.
type Governor struct {
	opts    Options
	stopped atomic.Bool
	mu      sync.Mutex
	limit   int64 // the limit last set
	samples []metrics.Sample
}

const (
	defaultFloor    = 64 << 20
	defaultHeadroom = 64 << 20
)

// Start sets the limit now and after every collection until Stop.
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

// sentinel is not empty: finalizers of zero-sized objects may never run.
type sentinel struct{ _ byte }

// Limit is the limit last set.
func (g *Governor) Limit() int64 {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.limit
}

// Stop leaves the limit where it is (the ceiling once no more collections
// are followed, so a stopped governor cannot hold a stale low limit).
func (g *Governor) Stop() {
	if g.stopped.Swap(true) {
		return
	}
	g.mu.Lock()
	defer g.mu.Unlock()
	c := g.opts.Ceiling
	if c <= 0 {
		c = int64(^uint64(0) >> 1) // math.MaxInt64: no limit
	}
	g.limit = c
	debug.SetMemoryLimit(c)
}

func (g *Governor) update() {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.stopped.Load() {
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
	limit := limitFor(int64(live), beside, g.opts)
	g.limit = limit
	debug.SetMemoryLimit(limit)
}

// limitFor is the limit for a live heap of live bytes with beside bytes
// of runtime memory outside the heap: live plus a quarter, at least
// o.Headroom, within [o.Floor, o.Ceiling].
func limitFor(live, beside int64, o Options) int64 {
	room := live + o.Headroom
	limit := max(live+room+beside, o.Floor)
	if o.Ceiling > 0 {
		limit = min(limit, o.Ceiling)
	}
	return limit
}
