package profiler

import (
	"cmp"
	"encoding/hex"
	"fmt"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"
	"unsafe"

	"github.com/scorch-dev/scorch/capture"
	"github.com/scorch-dev/scorch/symbolizer"
)

// frames names the frames of a capture's raw stacks as it is built.
type frames struct {
	sym *symbolizer.Symbolizer
	b   *capture.Builder
	// mapped are the addresses whose mapping is recorded: stacks share
	// most of their addresses.
	mapped map[mappedPC]struct{}
}

type mappedPC struct {
	snap *symbolizer.Process
	pc   uint64
}

// namer names a capture's raw stacks in the background as they are
// interned, into a capture.Builder its goroutine owns, so that the end of
// a capture only waits for the stacks of its last moments. The reader
// never waits for it: the queue grows instead.
type namer struct {
	f      frames
	mu     sync.Mutex
	queue  []queuedStack
	closed bool
	wake   chan struct{}
	done   chan struct{}
	added  int      // raw stacks queued
	ids    []uint32 // the builder's stack of each raw stack, in intern order
	named  atomic.Int64
	delay  time.Duration // nameAfter, or nameAfterTracked
}

type queuedStack struct {
	r   rawStack
	at  time.Time // when it was interned
	idx int       // its index among the capture's raw stacks
}

// nameAfter is how long a stack of a young process (proc.young) waits
// before it is named: such a process maps its libraries after its
// snapshot, which is read again meanwhile (rereadAfterExec, and at lookups
// of unknown addresses); a stack named earlier misses them. The stacks of
// the others are named as they come, so the end of a capture names only
// the last second's stacks of young processes.
const nameAfter = time.Second

// nameAfterTracked replaces nameAfter when the kernel's mapping records
// reach the snapshots (the tracker reads them every 5 ms): what a young
// process maps is in its snapshot long before, and the end of a capture
// has a quarter as many stacks left to name.
const nameAfterTracked = 250 * time.Millisecond

// young: one of the stack's processes may still map its libraries.
func (r *rawStack) young() bool { return r.main.young || (r.waker != nil && r.waker.young) }

func newNamer(meta capture.Meta, sym *symbolizer.Symbolizer) *namer {
	n := &namer{f: frames{sym: sym, b: capture.NewBuilder(meta), mapped: make(map[mappedPC]struct{})}, wake: make(chan struct{}, 1), done: make(chan struct{}), delay: nameAfter}
	go n.run()
	return n
}

// tracked: the kernel's mapping records keep the snapshots up to date, so
// young processes' stacks wait less.
func (n *namer) tracked() {
	n.mu.Lock()
	n.delay = nameAfterTracked
	n.mu.Unlock()
}

// add queues the next raw stack.
func (n *namer) add(r rawStack) {
	var at time.Time // the zero time: to be named now
	if r.young() {
		at = time.Now()
	}
	n.mu.Lock()
	n.queue = append(n.queue, queuedStack{r: r, at: at, idx: n.added})
	n.added++
	n.mu.Unlock()
	select {
	case n.wake <- struct{}{}:
	default:
	}
}

func (n *namer) run() {
	defer close(n.done)
	var fs []uint32
	timer := time.NewTimer(time.Hour)
	defer timer.Stop()
	for {
		// The stacks old enough to be named (all of them once closed).
		n.mu.Lock()
		closed := n.closed
		var batch []queuedStack
		if closed {
			batch = n.queue
			n.queue = nil
		} else {
			// The young processes' stacks wait, in the order they came;
			// the others go now.
			now := time.Now()
			kept := n.queue[:0]
			for _, q := range n.queue {
				if now.Sub(q.at) >= n.delay {
					batch = append(batch, q)
				} else {
					kept = append(kept, q)
				}
			}
			clear(n.queue[len(kept):])
			n.queue = kept
		}
		var next time.Duration = -1
		if len(n.queue) > 0 {
			next = n.delay - time.Since(n.queue[0].at)
		}
		n.mu.Unlock()
		// A process's stacks one after the other: its modules are looked
		// up together, not evicted from the cache and parsed again between
		// two of its stacks when the cache holds less than the host runs.
		slices.SortStableFunc(batch, func(a, b queuedStack) int {
			return cmp.Compare(uintptr(unsafe.Pointer(a.r.main.snap)), uintptr(unsafe.Pointer(b.r.main.snap)))
		})
		for i := range batch {
			fs = n.f.name(fs[:0], &batch[i].r)
			for len(n.ids) <= batch[i].idx {
				n.ids = append(n.ids, 0)
			}
			n.ids[batch[i].idx] = n.f.b.Stack(fs)
		}
		n.named.Add(int64(len(batch)))
		if closed && next < 0 {
			return
		}
		if len(batch) > 0 {
			continue
		}
		if next >= 0 {
			timer.Reset(max(next, time.Millisecond))
			select {
			case <-timer.C:
			case <-n.wake:
				timer.Stop()
			}
		} else {
			<-n.wake
		}
	}
}

// wait names what is still queued and returns the builder and the stack
// of each raw stack; the namer is done (waiting again returns the same).
func (n *namer) wait() (*capture.Builder, []uint32) {
	n.mu.Lock()
	n.closed = true
	n.mu.Unlock()
	select {
	case n.wake <- struct{}{}:
	default:
	}
	<-n.done
	return n.f.b, n.ids
}

// name appends the frames of a raw stack, root first.
func (f *frames) name(fs []uint32, r *rawStack) []uint32 {
	if r.wakerRoot {
		fs = f.appendWakerRoot(fs, &r.main)
	} else {
		fs = f.appendSegment(fs, &r.main)
	}
	if r.leaf != "" {
		fs = append(fs, f.synthetic(r.leaf))
	}
	if r.waker != nil {
		fs = append(fs, f.synthetic(capture.FrameSeparator))
		fs = f.appendWaker(fs, r.waker)
	}
	return fs
}

// buildCapture returns the capture of the events, whose Stack fields index
// the raw stacks the namer named.
func buildCapture(meta capture.Meta, b *capture.Builder, ids []uint32, events *eventLog) *capture.Capture {
	if meta.Version == 0 {
		meta.Version = capture.FormatVersion
	}
	*b.Meta() = meta
	c := b.Capture()
	c.Events = events.take(func(e *capture.Event) { e.Stack = ids[e.Stack] })
	c.Meta.Stats.Samples = uint64(len(c.Events))
	return c
}

func (f *frames) synthetic(name string) uint32 {
	return f.b.Frame(capture.Frame{Name: name, Kind: capture.KindSynthetic})
}

func (f *frames) process(comm string) uint32 {
	return f.b.Frame(capture.Frame{Name: comm, Kind: capture.KindProcess})
}

// symbolize names a segment's frames, root first, without the process name.
func (f *frames) symbolize(g *segment) (user, kernel []capture.Frame) {
	if g.uTrunc {
		user = append(user, capture.Frame{Name: capture.FrameTruncated, Kind: capture.KindSynthetic})
	}
	for j := len(g.user) - 1; j >= 0; j-- {
		user = f.appendUser(user, g.snap, g.user[j], j > 0)
		f.mapping(g, g.user[j], j > 0)
	}
	if g.kTrunc {
		kernel = append(kernel, capture.Frame{Name: capture.FrameTruncated, Kind: capture.KindSynthetic})
	}
	for j := len(g.kernel) - 1; j >= 0; j-- {
		kf := kernelFrame(f.sym.Kernel(g.kernel[j], j > 0))
		// The tracing machinery that ran the BPF program is not part of
		// what the thread was doing.
		if isTracingFrame(kf.Name) {
			continue
		}
		kernel = append(kernel, kf)
	}
	return user, kernel
}

// appendRootFirst adds frames root first.
func (f *frames) appendRootFirst(out []uint32, fs ...[]capture.Frame) []uint32 {
	for _, list := range fs {
		for _, fr := range list {
			out = append(out, f.b.Frame(fr))
		}
	}
	return out
}

// appendSegment adds a segment root first: process name, user, kernel.
func (f *frames) appendSegment(out []uint32, g *segment) []uint32 {
	out = append(out, f.process(g.comm))
	user, kernel := f.symbolize(g)
	out = f.appendRootFirst(out, user, kernel)
	if len(user)+len(kernel) == 0 {
		out = append(out, f.synthetic(capture.FrameUnknown))
	}
	return out
}

// appendWaker adds a waker's segment leaf first, marked as the waker's, and
// ends with its process name; a wakeup from an interrupt keeps only the
// kernel stack and is named [irq].
func (f *frames) appendWaker(out []uint32, g *segment) []uint32 {
	user, kernel, comm := f.wakerFrames(g)
	for _, list := range [][]capture.Frame{kernel, user} {
		for j := len(list) - 1; j >= 0; j-- {
			fr := list[j]
			fr.Waker = true
			out = append(out, f.b.Frame(fr))
		}
	}
	return append(out, f.process(comm))
}

// appendWakerRoot builds the frames of a wakeup capture: the waker's stack,
// root first under its process name, or [irq] and the kernel stack.
func (f *frames) appendWakerRoot(out []uint32, g *segment) []uint32 {
	user, kernel, comm := f.wakerFrames(g)
	out = append(out, f.process(comm))
	return f.appendRootFirst(out, user, kernel)
}

// interruptEntries are kernel functions through which interrupts and
// softirqs enter: a wakeup below one of them was not done by the task that
// happened to be running. x86-64's and arm64's exception entries (el1h_64_irq
// from the kernel, el0t_64_irq from user space) and the common ones: each
// kernel has only its own architecture's names.
var interruptEntries = []string{
	"asm_sysvec_", "sysvec_", "asm_common_interrupt", "common_interrupt",
	"el1h_64_irq", "el0t_64_irq", "el1h_64_fiq", "el0t_64_fiq", "el1_interrupt", "el0_interrupt",
	"handle_softirqs", "__do_softirq", "do_softirq", "irq_exit_rcu", "__irq_exit_rcu",
	"hrtimer_interrupt", "__hrtimer_run_queues", "handle_irq_event",
}

// interruptEntry returns the index of the outermost interrupt entry in a
// root-first kernel stack, or -1.
func interruptEntry(kernel []capture.Frame) int {
	for i, f := range kernel {
		if hasAnyPrefix(f.Name, interruptEntries) {
			return i
		}
	}
	return -1
}

// wakerFrames names a waker's frames. A wakeup done from an interrupt is
// charged to [irq] with the kernel stack from the interrupt entry on: the
// task that happened to be interrupted had nothing to do with it.
func (f *frames) wakerFrames(g *segment) (user, kernel []capture.Frame, comm string) {
	user, kernel = f.symbolize(g)
	if i := interruptEntry(kernel); i >= 0 {
		return nil, kernel[i:], capture.FrameIRQ
	}
	if g.idle {
		return nil, kernel, capture.FrameIRQ
	}
	return user, kernel, g.comm
}

// tracingPrefixes name the kernel functions that run a BPF program from a
// tracepoint or perf event: they are on the stack only because scorch is.
var tracingPrefixes = []string{
	"bpf_prog_", "__bpf_trace_", "bpf_trace_run", "__traceiter_", "bpf_get_stack", "__bpf_prog_run",
	"perf_syscall_", "perf_trace_", "syscall_trace_enter", "trace_call_bpf",
}

func isTracingFrame(name string) bool { return hasAnyPrefix(name, tracingPrefixes) }

func hasAnyPrefix(s string, prefixes []string) bool {
	for _, p := range prefixes {
		if strings.HasPrefix(s, p) {
			return true
		}
	}
	return false
}

// appendUser adds the frames of one user address, outermost first.
func (f *frames) appendUser(out []capture.Frame, snap *symbolizer.Process, pc uint64, ret bool) []capture.Frame {
	unknown := capture.Frame{Name: capture.FrameUnknown, Kind: capture.KindSynthetic}
	if snap == nil {
		return append(out, unknown)
	}
	fs := f.sym.User(snap, pc, ret)
	// Innermost first from the symbolizer; the stack is root first.
	for j := len(fs) - 1; j >= 0; j-- {
		out = append(out, userFrame(fs[j]))
	}
	if len(fs) == 0 {
		out = append(out, unknown)
	}
	return out
}

// mapping records where the process had the module of a user address
// mapped, for pprof's real mappings.
func (f *frames) mapping(g *segment, pc uint64, ret bool) {
	if g.snap == nil {
		return
	}
	if ret && pc > 0 {
		pc-- // as the symbolizer looks it up: within the call
	}
	k := mappedPC{g.snap, pc}
	if _, ok := f.mapped[k]; ok {
		return
	}
	f.mapped[k] = struct{}{}
	m, vaddr, ok := g.snap.MappingAt(pc)
	if !ok {
		return
	}
	f.b.Mapping(capture.Mapping{PID: g.pid, Start: m.Start, Limit: m.End, Offset: m.Offset, VAddr: vaddr,
		Module: m.Path, BuildID: hex.EncodeToString(m.BuildID)})
}

func userFrame(f symbolizer.Frame) capture.Frame {
	cf := capture.Frame{
		Name: f.Name, Module: f.Module, BuildID: f.BuildID, Offset: f.Offset,
		File: f.File, Line: f.Line, SystemName: f.SystemName, Kind: capture.KindUser,
	}
	switch {
	case f.JIT:
		cf.Kind = capture.KindJIT
	case f.Inlined:
		cf.Kind = capture.KindInlined
	}
	if cf.Name == "" {
		if f.Module == "" {
			cf.Name, cf.Kind = capture.FrameUnknown, capture.KindSynthetic
		} else {
			cf.Name = fmt.Sprintf("%s+0x%x", filepath.Base(f.Module), f.Offset)
		}
	}
	return cf
}

func kernelFrame(f symbolizer.Frame) capture.Frame {
	cf := capture.Frame{Name: f.Name, Module: f.Module, Offset: f.Offset, Kind: capture.KindKernel, SystemName: f.SystemName}
	if cf.Module == "" {
		cf.Module = "[kernel.kallsyms]"
	}
	if cf.Name == "" {
		cf.Name = capture.FrameUnknown
	}
	return cf
}
