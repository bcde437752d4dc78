package profiler

import (
	"context"
	"fmt"
	"math"
	"os"
	"sync"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/btf"
	"github.com/cilium/ebpf/link"
	"github.com/scorch-dev/scorch/bpf"
	"github.com/scorch-dev/scorch/capture"
	"github.com/scorch-dev/scorch/unwind"
)

func init() {
	for _, t := range []capture.Type{capture.OffCPU, capture.Wakeup, capture.OffWake} {
		collectors[t] = recordOffCPU
	}
	probes["offcpu"] = probeOffCPU
	probes["wakeup"] = probeOffCPU
	probes["offwake"] = probeOffCPU
}

// schedPrograms are the scheduler hooks in attach order: the hook that ends
// intervals first, the one that starts them last.
func schedPrograms(objs *bpf.OffcpuObjects) []*ebpf.Program {
	return []*ebpf.Program{objs.OnWaking, objs.OnSwitch}
}

func loadOffCPU(p capture.Params, mode unwind.Mode, opts Options, tgt *target, ring uint32) (*bpf.OffcpuObjects, error) {
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
	var objs bpf.OffcpuObjects
	if err := loadObjects(spec, tgt, mode, opts, false, ring, &objs); err != nil {
		return nil, err
	}
	return &objs, nil
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
// count the cached ones that differ from the walk (Stats.Extra
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

// recordOffCPU records off-CPU, wakeup or off-wake stacks.
func recordOffCPU(ctx context.Context, p capture.Params, mode unwind.Mode, opts Options) (*capture.Capture, error) {
	tgt := newTarget(p)
	ring := ringBytes(opts, mode)
	if opts.RingBytes == 0 {
		ring *= 2 // scheduler events come faster than samples
	}
	objs, err := loadOffCPU(p, mode, opts, tgt, ring)
	if err != nil {
		return nil, err
	}
	defer objs.Close()
	c, err := newCollection(p, mode, opts, tgt, commonObjects{objs.Events, objs.Stats, objs.FilterPids, objs.FilterTids, objs.OnExec})
	if err != nil {
		return nil, err
	}
	defer c.Close()
	oc := &offcpuState{s: c.s, typ: p.Type, wakers: make(map[uint32]wakerRecord), left: make(map[uint32]segment)}
	c.s.sample = oc.sample
	c.s.waker = oc.waker
	c.s.leave = oc.leave

	var links []link.Link
	detach := func() {
		for _, l := range links {
			l.Close()
		}
		links = nil
	}
	defer detach()
	for _, prog := range schedPrograms(objs) {
		if prog == objs.OnWaking && useRunDelay(p.Type) {
			continue
		}
		l, err := link.AttachTracing(link.TracingOptions{Program: prog, AttachType: ebpf.AttachTraceRawTp})
		if err != nil {
			return nil, fmt.Errorf("%w: attaching %s: %v", ErrUnavailable, prog, err)
		}
		links = append(links, l)
	}
	if err := c.run(ctx, detach); err != nil {
		return nil, err
	}
	if oc.noWaker > 0 {
		addExtra(&c.s.stats, "no_waker_seen", oc.noWaker)
	}
	if oc.noStack > 0 {
		addExtra(&c.s.stats, "intervals_without_stacks", oc.noStack)
	}
	return c.finish(), nil
}

// wakerRecord is the last waker seen for a thread.
type wakerRecord struct {
	seg segment
	pid uint32
	tid uint32
	irq bool
}

// offcpuState joins waker records with the off-CPU intervals they ended.
type offcpuState struct {
	s       *session
	typ     capture.Type
	wakers  map[uint32]wakerRecord // by wakee tid
	noWaker uint64
	left    map[uint32]segment // stacks of threads off CPU, by tid
	noStack uint64
}

// leave keeps the stacks of a thread that went off CPU until the record
// with its times comes.
func (o *offcpuState) leave(e *stackEvent) {
	o.left[e.TID] = o.s.segmentOf(e).clone()
}

func (o *offcpuState) waker(e *stackEvent) {
	w := wakerRecord{pid: e.PID, tid: e.TID, irq: e.has(bpf.SamplerEventFlagEVENT_IRQ)}
	w.seg = o.s.segmentOf(e).clone()
	if w.irq {
		w.seg.idle = true
		w.seg.user = nil
	}
	o.wakers[e.wakee()] = w
}

// sample turns one off-CPU interval into events: for offcpu, the blocked
// and the run-queue parts of the thread's stack; for wakeup, the blocked
// time on the waker's stack; for offwake, the thread's stack joined with
// its waker's.
func (o *offcpuState) sample(e *stackEvent) {
	s := o.s
	start := int64(e.Ts - s.monoStart)
	t, b := e.offTimes()
	total, blocked := int64(t), int64(min(b, t))
	wpid, wtid := e.waker()
	ev := capture.Event{Time: start, PID: e.PID, TID: e.TID, CPU: uint16(e.CPU), WakerPID: wpid, WakerTID: wtid}
	if e.has(bpf.SamplerEventFlagEVENT_IRQ) {
		ev.Flags |= capture.FlagIRQ
	}
	var seg segment
	if o.typ != capture.Wakeup {
		var ok bool
		seg, ok = o.left[e.TID]
		delete(o.left, e.TID)
		if !ok {
			// The record of its stacks was lost.
			o.noStack++
			return
		}
	}
	switch o.typ {
	case capture.OffCPU:
		if blocked > 0 {
			ev.Value = blocked
			ev.Stack = s.intern(rawStack{main: seg, leaf: capture.FrameBlocked})
			s.events = append(s.events, ev)
		}
		if rq := total - blocked; rq > 0 {
			ev.Time = start + blocked
			ev.Value = rq
			ev.Stack = s.intern(rawStack{main: seg, leaf: capture.FrameRunqueue})
			s.events = append(s.events, ev)
		}
	case capture.Wakeup, capture.OffWake:
		w, ok := o.wakers[e.TID]
		delete(o.wakers, e.TID)
		if !ok || blocked == 0 {
			// Preempted, or woken before the capture started: no waker to
			// charge.
			o.noWaker++
			return
		}
		if w.irq {
			ev.Flags |= capture.FlagIRQ
		}
		ev.Value = blocked
		if o.typ == capture.Wakeup {
			ev.Stack = s.intern(rawStack{main: w.seg, wakerRoot: true})
		} else {
			wseg := w.seg
			ev.Stack = s.intern(rawStack{main: seg, waker: &wseg})
		}
		s.events = append(s.events, ev)
	}
}

// probeOffCPU loads the scheduler hooks and attaches them for a moment.
func probeOffCPU(ctx context.Context) error {
	tgt := &target{mode: bpf.SamplerTargetModeTARGET_PID}
	objs, err := loadOffCPU(capture.Params{Type: capture.OffWake}, unwind.ModeFP, Options{}, tgt, uint32(os.Getpagesize()))
	if err != nil {
		return fmt.Errorf("the kernel refused the scheduler programs: %w", err)
	}
	defer objs.Close()
	for _, prog := range append(schedPrograms(objs), objs.OnExec) {
		l, err := link.AttachTracing(link.TracingOptions{Program: prog, AttachType: ebpf.AttachTraceRawTp})
		if err != nil {
			return fmt.Errorf("tp_btf program %s cannot be attached: %w", prog, err)
		}
		l.Close()
	}
	return nil
}
