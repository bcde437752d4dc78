package profiler

import (
	"fmt"
	"math"
	"sync"
	"unsafe"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/btf"
	"github.com/scorch-dev/scorch/bpf"
	"github.com/scorch-dev/scorch/capture"
)

// offcpuObjects are bpf/offcpu.c's: the scheduler hooks.
type offcpuObjects = objects[bpf.OffcpuPrograms, *bpf.OffcpuPrograms, struct{}]

// offcpuSource records off-CPU, wakeup or off-wake stacks: it joins the
// stacks a thread leaves the CPU with, and its waker's, to the interval
// that ends when it comes back.
type offcpuSource struct {
	offcpuObjects
	typ     capture.Type
	wakers  map[uint32]wakerRecord // by wakee tid
	noWaker uint64
	left    map[uint32]*segment // stacks of threads off CPU, by tid
	noStack uint64
	free    []*segment // segments of ended intervals, for reuse
}

// maxFree bounds the segments kept for reuse.
const maxFree = 1024

// keep copies seg (which aliases a record) into a reused segment: the
// storm of a context switch every few microseconds allocates nothing.
func (src *offcpuSource) keep(seg segment) *segment {
	var g *segment
	if n := len(src.free); n > 0 {
		g = src.free[n-1]
		src.free = src.free[:n-1]
	} else {
		g = new(segment)
	}
	k, u := g.kernel[:0], g.user[:0]
	*g = seg
	g.kernel = append(k, seg.kernel...)
	g.user = append(u, seg.user...)
	return g
}

// release returns a segment to the pool once its event is interned
// (intern copies what it keeps).
func (src *offcpuSource) release(g *segment) {
	if len(src.free) < maxFree {
		src.free = append(src.free, g)
	}
}

func loadOffCPU(p *capture.Params, cfg loadConfig) (source, error) {
	spec, err := bpf.LoadOffcpu()
	if err != nil {
		return nil, fmt.Errorf("loading off-CPU spec: %w", err)
	}
	maxBlock := uint64(math.MaxUint64)
	if p.MaxBlock > 0 {
		maxBlock = uint64(p.MaxBlock)
	}
	var vs bpf.OffcpuVariableSpecs
	if err := assignSpecs(spec, &vs); err != nil {
		return nil, err
	}
	err = setVars(
		varValue{vs.KcacheCheck, checkKernelStacks},
		varValue{vs.UseRunDelay, useRunDelay(p.Type)},
		varValue{vs.StateFilter, offState(p.State)},
		varValue{vs.MinBlockNs, uint64(p.MinBlock)},
		varValue{vs.MaxBlockNs, maxBlock},
		varValue{vs.WantBlockedStack, p.Type != capture.Wakeup},
		varValue{vs.WantWakerStack, p.Type != capture.OffCPU},
	)
	if err != nil {
		return nil, err
	}
	ring := ringBytes(cfg.opts, cfg.mode)
	if cfg.opts.RingBytes == 0 {
		ring *= 2 // scheduler events come faster than samples
	}
	// A thread blocks again where it blocked before: its user stack is
	// sent once.
	cfg.stackCache = true
	src := &offcpuSource{typ: p.Type, wakers: make(map[uint32]wakerRecord), left: make(map[uint32]*segment)}
	if err := loadObjects(spec, cfg, false, ring, &src.offcpuObjects); err != nil {
		return nil, err
	}
	return src, nil
}

// attach attaches the scheduler hooks, the one that ends intervals first.
func (src *offcpuSource) attach(c *collection, l *links) error {
	progs := []*ebpf.Program{src.Progs.OnWaking, src.Progs.OnSwitch}
	if useRunDelay(src.typ) {
		progs = progs[1:]
	}
	for _, prog := range progs {
		lk, err := attachRawTp(prog)
		if err != nil {
			return err
		}
		l.add(lk)
	}
	return nil
}

func (src *offcpuSource) decode(s *session, e *stackEvent) {
	switch e.Kind {
	case bpf.SamplerRecordKindRECORD_LEAVE:
		if e.has(bpf.SamplerEventFlagEVENT_ARRIVAL) {
			// The thread that came back as this one left: its interval
			// ends first.
			if iv, ok := arrivalOf(e); ok {
				src.end(s, iv)
			} else {
				s.stats.Lost++
			}
		}
		src.leave(s, e)
	case bpf.SamplerRecordKindRECORD_WAKER:
		src.waker(s, e)
	case bpf.SamplerRecordKindRECORD_SAMPLE:
		src.end(s, intervalOf(e))
	}
}

func (src *offcpuSource) finish(c *collection) {
	c.meta.Notes = append(c.meta.Notes, offCPUNotes(hostArch, src.typ)...)
	if src.noWaker > 0 {
		c.s.stats.Counters.Add(capture.NoWakerSeen, src.noWaker)
	}
	if src.noStack > 0 {
		c.s.stats.Counters.Add(capture.IntervalsWithoutStacks, src.noStack)
	}
}

// offState is the --state filter as bpf/offcpu.c's enum off_state.
func offState(s string) bpf.OffcpuOffState {
	switch s {
	case "S":
		return bpf.OffcpuOffStateOFF_STATE_S
	case "D":
		return bpf.OffcpuOffStateOFF_STATE_D
	}
	return bpf.OffcpuOffStateOFF_STATE_ALL
}

// useRunDelay reports whether a capture of type t splits off-CPU time into
// blocked and run-queue time with the scheduler's own run-queue accounting
// (task_struct.sched_info.run_delay, kept since Linux 5.14 when
// CONFIG_SCHED_INFO is set) instead of the sched_waking hook: offcpu does
// not need the waker, and one hook fewer is cheaper for every context
// switch on the host.
func useRunDelay(t capture.Type) bool {
	if t != capture.OffCPU {
		return false
	}
	runDelayOnce.Do(func() {
		spec, err := btf.LoadKernelSpec()
		if err != nil {
			return
		}
		// run_delay and last_queued, and the run queue's clock, reached
		// from the task's cfs_rq (CONFIG_FAIR_GROUP_SCHED).
		runDelayKept = hasMember(spec, "sched_info", "run_delay") && hasMember(spec, "sched_info", "last_queued") && hasMember(spec, "cfs_rq", "rq")
	})
	return runDelayKept
}

// checkKernelStacks makes the off-CPU programs walk every kernel stack and
// count the cached ones that differ from the walk (Stats.Counters
// "kernel_stack_cache_wrong"); for tests.
var checkKernelStacks bool

func hasMember(spec *btf.Spec, typ, member string) bool {
	var st *btf.Struct
	if err := spec.TypeByName(typ, &st); err != nil {
		return false
	}
	for _, m := range st.Members {
		if m.Name == member {
			return true
		}
	}
	return false
}

var (
	runDelayOnce sync.Once
	runDelayKept bool
)

// wakerRecord is the last waker seen for a thread.
type wakerRecord struct {
	seg segment
	pid uint32
	tid uint32
	irq bool
}

// leave keeps the stacks of a thread that went off CPU until the record
// with its times comes.
func (src *offcpuSource) leave(s *session, e *stackEvent) {
	if old := src.left[e.TID]; old != nil {
		src.release(old)
	}
	src.left[e.TID] = src.keep(s.segmentOf(e))
}

// waker keeps the stacks of the last waker of a thread.
func (src *offcpuSource) waker(s *session, e *stackEvent) {
	w := wakerRecord{pid: e.PID, tid: e.TID, irq: e.has(bpf.SamplerEventFlagEVENT_IRQ)}
	w.seg = s.segmentOf(e).clone()
	if w.irq {
		w.seg.idle = true
		w.seg.user = nil
	}
	src.wakers[e.wakee()] = w
}

// interval is the end of an off-CPU interval: a thread came back.
type interval struct {
	ts, total, blocked uint64 // when it left, ns off CPU, of those ns blocked
	pid, tid, cpu      uint32
	wpid, wtid         uint32 // the waker
	irq                bool   // woken from an interrupt
}

// intervalOf reads an interval from a RECORD_SAMPLE.
func intervalOf(e *stackEvent) interval {
	t, b := e.offTimes()
	wpid, wtid := e.waker()
	return interval{ts: e.Ts, total: t, blocked: b, pid: e.PID, tid: e.TID, cpu: e.CPU, wpid: wpid, wtid: wtid, irq: e.has(bpf.SamplerEventFlagEVENT_IRQ)}
}

// arrivalSize is the size of offcpu.c's struct arrival.
const arrivalSize = unsafe.Sizeof(bpf.OffcpuArrival{})

// arrivalOf reads the interval that rides along after a RECORD_LEAVE's
// stacks (EVENT_ARRIVAL): it ended on the same CPU in the same switch.
func arrivalOf(e *stackEvent) (interval, bool) {
	var a bpf.OffcpuArrival
	if uintptr(len(e.Tail)) < arrivalSize {
		return interval{}, false
	}
	copy(asBytes(&a, arrivalSize), e.Tail)
	irq := bpf.EventFlag(a.Flags)&bpf.SamplerEventFlagEVENT_IRQ != 0
	return interval{ts: a.Ts, total: a.Total, blocked: a.Blocked, pid: a.Pid, tid: a.Tid, cpu: e.CPU, wpid: a.WakerPid, wtid: a.WakerTid, irq: irq}, true
}

// end turns one off-CPU interval into events: for offcpu, the blocked
// and the run-queue parts of the thread's stack; for wakeup, the blocked
// time on the waker's stack; for offwake, the thread's stack joined with
// its waker's.
func (src *offcpuSource) end(s *session, iv interval) {
	start := s.since(iv.ts)
	total, blocked := int64(iv.total), int64(min(iv.blocked, iv.total))
	ev := capture.Event{Time: start, PID: iv.pid, TID: iv.tid, CPU: uint16(iv.cpu), WakerPID: iv.wpid, WakerTID: iv.wtid}
	if iv.irq {
		ev.Flags |= capture.FlagIRQ
	}
	var seg segment
	if src.typ != capture.Wakeup {
		g := src.left[iv.tid]
		if g == nil {
			// The record of its stacks was lost.
			src.noStack++
			return
		}
		delete(src.left, iv.tid)
		defer src.release(g)
		seg = *g
	}
	switch src.typ {
	case capture.OffCPU:
		if blocked > 0 {
			ev.Value = blocked
			ev.Stack = s.intern(rawStack{main: seg, leaf: capture.FrameBlocked})
			s.add(ev)
		}
		if rq := total - blocked; rq > 0 {
			ev.Time = start + blocked
			ev.Value = rq
			ev.Stack = s.intern(rawStack{main: seg, leaf: capture.FrameRunqueue})
			s.add(ev)
		}
	case capture.Wakeup, capture.OffWake:
		w, ok := src.wakers[iv.tid]
		delete(src.wakers, iv.tid)
		if !ok || blocked == 0 {
			// Preempted, or woken before the capture started: no waker to
			// charge.
			src.noWaker++
			return
		}
		if w.irq {
			ev.Flags |= capture.FlagIRQ
		}
		ev.Value = blocked
		if src.typ == capture.Wakeup {
			ev.Stack = s.intern(rawStack{main: w.seg, wakerRoot: true})
		} else {
			wseg := w.seg
			ev.Stack = s.intern(rawStack{main: seg, waker: &wseg})
		}
		s.add(ev)
	}
}
