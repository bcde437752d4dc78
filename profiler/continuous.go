package profiler

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/cilium/ebpf/ringbuf"
	"github.com/scorch-dev/scorch/bpf"
	"github.com/scorch-dev/scorch/capture"
	"github.com/scorch-dev/scorch/symbolizer"
)

// Continuous is one collector loaded, verified and attached once and read
// without a stop, its events cut into windows: an agent's windows share the
// programs, maps, ring buffer, unwind tables, process snapshots and
// symbolizer caches instead of loading and attaching them every window
// (most of an agent's CPU at a low rate). A window's capture is what
// happened between two cuts; each cut reads what the ring holds first, so
// no event is lost between windows or counted twice.
//
// Processes are snapshot as their first sample comes (new pids only: the
// snapshots of those seen before are kept), and those that exited are
// forgotten at the cut after their exit, so memory is bounded by the
// processes alive, not by those the host ever ran.
type Continuous struct {
	p       capture.Params
	opts    Options
	r       *started
	cleanup func()
	meta    capture.Meta // every window's, before its own times and stats

	mu      sync.Mutex    // serializes Cut and Close
	stop    chan struct{} // closed by a cut: the reader swaps windows
	swapped chan window   // the reader's answer to a cut
	done    chan struct{} // the reader ended
	closing bool          // set before the last stop is closed
	closed  bool

	// The reader's, between cuts.
	start    time.Time // wall clock of the window's start
	bpfPrev  map[bpf.StatSlot]uint64
	lostPrev []uint64
	readErr  error
	windows  int

	// retired are the snapshots the last cut forgot (exited or replaced
	// processes): the window it ended and the next one's off-CPU
	// intervals that began before it may still name them, so they are
	// closed once the next window is finished.
	retired []*symbolizer.Process
}

// window is one window's state, detached from the session by a cut.
type window struct {
	s       *session
	meta    capture.Meta
	err     error
	retired []*symbolizer.Process
}

// continuousWait is a continuous capture's longest wait for the ring and
// the mapping records: new processes' samples (and so their unwind tables)
// are seen within it.
const continuousWait = time.Second

// StartContinuous loads and attaches the collector of p.Type on the host
// or targets of p; its windows are read with Cut until Close. p.Duration
// is ignored: the windows are as long as the time between cuts. A `-- CMD`
// target is not supported.
func StartContinuous(ctx context.Context, p capture.Params, opts Options) (*Continuous, error) {
	if len(p.Command) > 0 {
		return nil, fmt.Errorf("%w: a continuous capture does not run a command", ErrBadTarget)
	}
	if p.Duration == 0 {
		p.Duration = capture.Duration(time.Second) // Validate's range; the cuts end the windows
	}
	// A window of a low-rate host profile is read as the BPF programs
	// wake the reader (1/8 of the ring, an exec) or once a second, and a
	// cut flushes the ring: the agent's CPU went to waking up.
	opts.idleWait = continuousWait
	opts.BoostNice = 0 // no window to lower it for
	mode, cleanup, err := prepare(&p, &opts)
	if err != nil {
		cleanup()
		return nil, err
	}
	col, ok := collectorFor(p.Type)
	if !ok {
		cleanup()
		return nil, fmt.Errorf("%w: capture type %s is not implemented yet", ErrUnavailable, p.Type)
	}
	r, err := start(col, p, newTarget(p), mode, opts)
	if err != nil {
		cleanup()
		return nil, err
	}
	go opts.Symbolizer.KernelStatus() // see collector.record
	c := &Continuous{p: p, opts: opts, r: r, cleanup: cleanup, meta: r.c.meta,
		stop: make(chan struct{}), swapped: make(chan window), done: make(chan struct{})}
	c.start = r.c.meta.Start
	c.bpfPrev = readStats(r.c.m.Stats)
	c.lostPrev = readLostPerCPU(r.c.m.Stats)
	for _, pid := range r.c.tgt.pids {
		r.c.s.procs.get(uint32(pid), "")
	}
	go c.read()
	return c, nil
}

// read is the reader's goroutine: records until a cut, then the swap.
func (c *Continuous) read() {
	defer close(c.done)
	s := c.r.c.s
	progress := func() {
		s.lostTimes.mark(&s.stats, readLostPerCPU(c.r.c.m.Stats), s.stats.Lost, s.since(monotonicNow()))
	}
	for {
		err := s.read(c.r.c.rd, c.r.src, c.stop, progress, c.opts.idleWait)
		if err != nil && c.readErr == nil {
			c.readErr = err
			c.opts.Logger.Warn("continuous capture: reading the ring buffer failed; the capture stops at the next window", "err", err)
			<-c.stop
		}
		c.readAvailable()
		w := c.swap()
		closing := c.closing
		c.stop = make(chan struct{})
		c.swapped <- w
		if closing || c.readErr != nil {
			return
		}
	}
}

// readAvailable reads what the ring holds now, without waiting: the
// events of the window being cut that the programs have written.
func (c *Continuous) readAvailable() {
	rd := c.r.c.rd
	rd.SetDeadline(time.Now())
	var rec ringbuf.Record
	for rd.ReadInto(&rec) == nil {
		c.r.c.s.handle(rec.RawSample, c.r.src)
	}
}

// swap detaches the window that ends now from the session and starts the
// next one; on the reader's goroutine, which owns the session's window
// state.
func (c *Continuous) swap() window {
	s := c.r.c.s
	now, mono := time.Now(), monotonicNow()
	w := window{meta: c.meta, err: c.readErr}
	w.meta.Start = c.start
	w.meta.Duration = now.Sub(c.start)
	// The BPF counters are the programs' since the load: the window's are
	// what they grew by.
	cur := readStats(c.r.c.m.Stats)
	delta := make(map[bpf.StatSlot]uint64, len(cur))
	for k, v := range cur {
		if v > c.bpfPrev[k] {
			delta[k] = v - c.bpfPrev[k]
		}
	}
	c.bpfPrev = cur
	lost := readLostPerCPU(c.r.c.m.Stats)
	lostDelta := make([]uint64, len(lost))
	for cpu, n := range lost {
		if cpu < len(c.lostPrev) && n >= c.lostPrev[cpu] {
			lostDelta[cpu] = n - c.lostPrev[cpu]
		}
	}
	c.lostPrev = lost
	s.addBPFStats(delta)
	s.addLostPerCPU(lostDelta)
	if f, ok := c.r.src.(finisher); ok {
		col := &collection{p: c.p, opts: c.opts, tgt: c.r.c.tgt, m: c.r.c.m, meta: w.meta, s: s}
		f.finish(col)
		w.meta = col.meta
	}
	if c.windows > 0 {
		// The attach was the first window's.
		delete(s.stats.Counters, capture.CounterKey{Counter: capture.AttachMicros})
	}
	c.windows++
	w.s = &session{log: s.log, sym: s.sym, monoStart: s.monoStart, namer: s.namer, events: s.events,
		tables: s.tables, tablesBase: s.tablesBase, stats: s.stats, ringBytes: s.ringBytes, ringSize: s.ringSize}

	// The next window.
	s.namer = newNamer(c.meta, s.sym)
	if s.maps != nil {
		s.namer.tracked()
	}
	s.stacks.index = make(map[string]uint32)
	s.stacks.n = 0
	s.stacks.added = s.namer.add
	s.stacks.tramps = nil
	s.stats = capture.Stats{}
	s.events = eventLog{}
	s.ringBytes = 0
	s.lostTimes = lostTimes{prev: s.lostTimes.prev}
	s.monoStart = mono
	if s.tables != nil {
		s.tablesBase = s.tables.stats()
	}
	if m, ok := c.r.src.(*memSource); ok {
		clear(m.byAlloc) // indexes of this window's events
	}
	c.start = now
	w.retired = s.procs.forget()
	return w
}

// forget drops the processes that exited (their exit recorded, or gone
// from /proc) and returns the snapshots no process holds any more, to be
// closed once no stack can name them.
func (m *procs) forget() []*symbolizer.Process {
	m.mu.Lock()
	defer m.mu.Unlock()
	for pid := range m.byPID {
		if r := m.rec[pid]; r != nil && r.exited != 0 || !processExists(int(pid)) {
			delete(m.byPID, pid)
			m.tables.exited(pid)
		}
	}
	held := make(map[*symbolizer.Process]bool, len(m.byPID))
	for _, p := range m.byPID {
		if p.snap != nil {
			held[p.snap] = true
		}
	}
	var out []*symbolizer.Process
	kept := m.snaps[:0]
	for _, sn := range m.snaps {
		if held[sn] {
			kept = append(kept, sn)
		} else {
			out = append(out, sn)
		}
	}
	clear(m.snaps[len(kept):])
	m.snaps = kept
	return out
}

// ErrClosed: the continuous capture was closed.
var ErrClosed = errors.New("continuous capture closed")

// Cut ends the current window and returns its capture; the next window
// starts at once. The events are symbolized while the window runs, so a
// cut waits only for the stacks of the last moments.
func (c *Continuous) Cut() (*capture.Capture, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed {
		return nil, ErrClosed
	}
	return c.cutLocked()
}

func (c *Continuous) cutLocked() (*capture.Capture, error) {
	select {
	case <-c.done:
		return nil, fmt.Errorf("continuous capture stopped: %w", c.readErrOr())
	default:
	}
	close(c.stop)
	_ = c.r.c.rd.Flush() // ends the reader's wait
	w := <-c.swapped
	cp := c.finish(w)
	if w.err != nil {
		return cp, w.err
	}
	return cp, nil
}

func (c *Continuous) readErrOr() error {
	if c.readErr != nil {
		return c.readErr
	}
	return ErrClosed
}

// finish symbolizes a detached window and releases what the window before
// it retired.
func (c *Continuous) finish(w window) *capture.Capture {
	cp := w.s.finish(w.meta, c.opts)
	completeRoots(cp)
	for _, sn := range c.retired {
		sn.Close()
	}
	c.retired = w.retired
	return cp
}

// Windows is how many windows were cut.
func (c *Continuous) Windows() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.windows
}

// Close ends the last window, returns its capture and releases the
// collector; later cuts fail with ErrClosed.
func (c *Continuous) Close() (*capture.Capture, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed {
		return nil, ErrClosed
	}
	var cp *capture.Capture
	var err error
	select {
	case <-c.done:
	default:
		c.closing = true
		cp, err = c.cutLocked()
	}
	<-c.done
	c.closed = true
	c.r.links.close()
	c.r.Close()
	for _, sn := range c.retired {
		sn.Close()
	}
	c.retired = nil
	c.cleanup()
	return cp, err
}
