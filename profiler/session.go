package profiler

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"
	"unsafe"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/ringbuf"
	"github.com/scorch-dev/scorch/bpf"
	"github.com/scorch-dev/scorch/capture"
	"github.com/scorch-dev/scorch/symbolizer"
	"github.com/scorch-dev/scorch/unwind"
)

// proc is what the session knows of one process.
type proc struct {
	pid       uint32
	snap      *symbolizer.Process // nil when the process was gone before its snapshot
	comm      string
	gen       uint32 // snapshot generation, part of raw stack keys
	refreshed time.Time
}

// segment is one thread's stacks as addresses, leaf first.
type segment struct {
	pid    uint32
	gen    uint32
	snap   *symbolizer.Process // nil when the process was gone before its snapshot
	comm   string              // process name
	kernel []uint64
	user   []uint64
	kTrunc bool
	uTrunc bool
	idle   bool
}

// rawStack is a stack as addresses, deduplicated before symbolization.
type rawStack struct {
	main segment
	// leaf is a synthetic leaf frame ([blocked], [runqueue]) or "".
	leaf string
	// waker is the waker's segment of an off-wake stack.
	waker *segment
	// wakerRoot: main is a waker's segment (wakeup captures).
	wakerRoot bool
}

// session turns ring-buffer records into a capture: it snapshots processes
// as they appear, unwinds and deduplicates raw stacks, and symbolizes them
// at the end.
type session struct {
	log       *slog.Logger
	sym       *symbolizer.Symbolizer
	unw       *unwind.Unwinder
	mode      unwind.Mode
	monoStart uint64
	procs     map[uint32]*proc
	rawIndex  map[string]uint32
	raws      []rawStack
	events    []capture.Event
	key       []byte
	ev        stackEvent
	kbuf      [maxStack]uint64
	ubuf      [maxStack]uint64
	stats     capture.Stats
	ringBytes uint64 // bytes read from the ring buffer
	snaps     []*symbolizer.Process
	// sample turns a decoded sample record into events; nil: one event per
	// record with the record's own stacks (the CPU sampler).
	sample func(e *stackEvent)
	// waker receives decoded waker records (wakeup and offwake types).
	waker func(e *stackEvent)
	// leave receives off-CPU RECORD_LEAVE records: a thread's stacks as it
	// leaves the CPU, before the record with its times.
	leave func(e *stackEvent)
}

func newSession(log *slog.Logger, sym *symbolizer.Symbolizer, unw *unwind.Unwinder, mode unwind.Mode, monoStart uint64) *session {
	return &session{
		log:       log,
		sym:       sym,
		unw:       unw,
		mode:      mode,
		monoStart: monoStart,
		procs:     make(map[uint32]*proc),
		rawIndex:  make(map[string]uint32),
	}
}

// snapshot records a process's mappings for later symbolization.
func (s *session) snapshot(pid uint32, comm string) *proc {
	p := s.procs[pid]
	if p == nil {
		p = &proc{pid: pid, comm: comm}
		s.procs[pid] = p
	}
	snap, err := s.sym.Snapshot(int(pid))
	p.refreshed = time.Now()
	if err != nil {
		if p.snap == nil {
			s.stats.ProcsExited++
			s.log.Debug("process snapshot failed", "pid", pid, "err", err)
		}
		return p
	}
	// The old snapshot stays referenced by the raw stacks that used it.
	s.snaps = append(s.snaps, snap)
	p.snap = snap
	p.gen++
	if snap.Comm != "" {
		p.comm = snap.Comm
	}
	return p
}

// handle processes one ring-buffer record.
func (s *session) handle(rec []byte) {
	kind, ok := recordKind(rec)
	if !ok {
		return
	}
	s.ringBytes += uint64(len(rec))
	switch kind {
	case bpf.SamplerRecordKindRECORD_EXEC:
		if pid, comm, ok := decodeExecEvent(rec); ok {
			s.snapshot(pid, comm)
		}
	case bpf.SamplerRecordKindRECORD_SAMPLE, bpf.SamplerRecordKindRECORD_WAKER, bpf.SamplerRecordKindRECORD_LEAVE:
		if err := decodeStackEvent(rec, &s.ev, s.kbuf[:0], s.ubuf[:0]); err != nil {
			s.stats.Lost++
			return
		}
		switch kind {
		case bpf.SamplerRecordKindRECORD_SAMPLE:
			if s.sample != nil {
				s.sample(&s.ev)
			} else {
				s.addSample(&s.ev, s.ev.weight())
			}
		case bpf.SamplerRecordKindRECORD_WAKER:
			if s.waker != nil {
				s.waker(&s.ev)
			}
		case bpf.SamplerRecordKindRECORD_LEAVE:
			if s.leave != nil {
				s.leave(&s.ev)
			}
		}
	}
}

// segmentOf resolves the record's process and user stack (unwinding it
// where the mode asks) into a segment. Its slices alias the record: intern
// copies what it keeps, so repeated stacks cost no allocation.
func (s *session) segmentOf(e *stackEvent) segment {
	seg := segment{pid: e.PID, comm: e.Comm, kTrunc: e.KTruncated, uTrunc: e.UTrunc}
	if e.PID == 0 {
		seg.idle = true
		seg.comm = capture.FrameIdle
		seg.kernel = e.Kstack
		return seg
	}
	p := s.procs[e.PID]
	if p == nil {
		p = s.snapshot(e.PID, e.Comm)
	}
	user := e.Ustack
	if !e.has(bpf.SamplerEventFlagEVENT_KTHREAD) && p.snap != nil {
		// A young process maps its libraries after the snapshot (ld.so, right
		// after exec): looking its addresses up now, while it is still
		// there, makes the snapshot re-read its maps. Later mappings
		// (dlopen) are found the same way when the stacks are symbolized.
		if time.Since(p.refreshed) < time.Second {
			lookUp(p.snap, user)
		}
		user = s.unwindUser(p.snap, e)
	}
	seg.snap, seg.gen = p.snap, p.gen
	if p.comm != "" {
		seg.comm = p.comm
	}
	seg.kernel = e.Kstack
	seg.user = user
	if e.KTruncated || e.UTrunc {
		s.stats.Truncated++
	}
	return seg
}

// addSample adds one event of the given value with the record's stacks.
func (s *session) addSample(e *stackEvent, value uint64) {
	seg := s.segmentOf(e)
	ev := capture.Event{
		Time:  int64(e.Ts - s.monoStart),
		Value: int64(value),
		Stack: s.intern(rawStack{main: seg}),
		PID:   e.PID,
		TID:   e.TID,
		CPU:   uint16(e.CPU),
	}
	if seg.idle {
		ev.Flags |= capture.FlagIdle
	}
	if e.has(bpf.SamplerEventFlagEVENT_KERNEL_MODE) {
		ev.Flags |= capture.FlagKernel
	}
	s.events = append(s.events, ev)
}

// intern deduplicates a raw stack and returns its index.
func (s *session) intern(r rawStack) uint32 {
	k := appendSegmentKey(s.key[:0], &r.main)
	k = append(k, r.leaf...)
	k = append(k, 0, boolByte(r.wakerRoot))
	if r.waker != nil {
		k = append(k, 1)
		k = appendSegmentKey(k, r.waker)
	}
	s.key = k
	if id, ok := s.rawIndex[unsafe.String(unsafe.SliceData(k), len(k))]; ok {
		return id
	}
	id := uint32(len(s.raws))
	r.main = r.main.clone()
	if r.waker != nil {
		w := r.waker.clone()
		r.waker = &w
	}
	s.raws = append(s.raws, r)
	s.rawIndex[string(k)] = id
	return id
}

// clone copies the segment's stacks, which may alias a record.
func (g segment) clone() segment {
	g.kernel = append([]uint64(nil), g.kernel...)
	g.user = append([]uint64(nil), g.user...)
	return g
}

func appendSegmentKey(k []byte, g *segment) []byte {
	k = binary.LittleEndian.AppendUint32(k, g.pid)
	k = binary.LittleEndian.AppendUint32(k, g.gen)
	k = append(k, g.comm...)
	k = append(k, 0, boolByte(g.kTrunc), boolByte(g.uTrunc), boolByte(g.idle))
	k = binary.LittleEndian.AppendUint16(k, uint16(len(g.kernel)))
	for _, pc := range g.kernel {
		k = binary.LittleEndian.AppendUint64(k, pc)
	}
	k = binary.LittleEndian.AppendUint16(k, uint16(len(g.user)))
	for _, pc := range g.user {
		k = binary.LittleEndian.AppendUint64(k, pc)
	}
	return k
}

func boolByte(b bool) byte {
	if b {
		return 1
	}
	return 0
}

// lookUp finds the mapping of every address, which makes the snapshot
// re-read the process's maps when one is missing.
func lookUp(snap *symbolizer.Process, pcs []uint64) {
	for _, pc := range pcs {
		snap.ModuleFor(pc)
	}
}

// unwindUser completes the user stack with CFI where the mode asks for it.
func (s *session) unwindUser(snap *symbolizer.Process, e *stackEvent) []uint64 {
	if s.mode == unwind.ModeFP || s.unw == nil || e.IP == 0 {
		if len(e.Ustack) > 0 {
			s.stats.UnwindFP++
		}
		return e.Ustack
	}
	res := s.unw.Unwind(snap, s.mode, unwind.Regs{IP: e.IP, SP: e.SP, BP: e.BP}, e.Copy, e.Ustack)
	switch res.Outcome {
	case unwind.OutcomeCFI:
		s.stats.UnwindCFI++
	case unwind.OutcomeFP:
		s.stats.UnwindFP++
	default:
		s.stats.UnwindEnded++
		if res.Reason != "" {
			addExtra(&s.stats, "unwind_ended: "+res.Reason, 1)
		}
	}
	if len(res.PCs) == 0 {
		return e.Ustack
	}
	return res.PCs
}

// drain reads records until the reader has nothing more, or the deadline.
func (s *session) drain(rd *ringbuf.Reader, deadline time.Time) {
	var rec ringbuf.Record
	rd.SetDeadline(deadline)
	for {
		if err := rd.ReadInto(&rec); err != nil {
			return
		}
		s.handle(rec.RawSample)
	}
}

// pollInterval is how often the reader looks at the ring buffer: the BPF
// programs wake it only when a lot of data waits (see wakeup_bytes).
const pollInterval = 50 * time.Millisecond

// read reads records until stop is closed, calling progress about every
// 250 ms.
func (s *session) read(rd *ringbuf.Reader, stop <-chan struct{}, progress func()) error {
	var rec ringbuf.Record
	last := time.Now()
	for {
		select {
		case <-stop:
			return nil
		default:
		}
		rd.SetDeadline(time.Now().Add(pollInterval))
		err := rd.ReadInto(&rec)
		if err == nil {
			s.handle(rec.RawSample)
		} else if errors.Is(err, ringbuf.ErrClosed) {
			return nil
		} else if !errors.Is(err, os.ErrDeadlineExceeded) {
			return fmt.Errorf("reading ring buffer: %w", err)
		}
		if progress != nil && time.Since(last) > 250*time.Millisecond {
			progress()
			last = time.Now()
		}
	}
}

// build symbolizes the raw stacks and returns the capture.
func (s *session) build(meta capture.Meta) *capture.Capture {
	b := capture.NewBuilder(meta)
	ids := make([]uint32, len(s.raws))
	var frames []uint32
	for i := range s.raws {
		r := &s.raws[i]
		if r.wakerRoot {
			frames = s.appendWakerRoot(b, frames[:0], &r.main)
		} else {
			frames = s.appendSegment(b, frames[:0], &r.main)
		}
		if r.leaf != "" {
			frames = append(frames, b.Frame(capture.Frame{Name: r.leaf, Kind: capture.KindSynthetic}))
		}
		if r.waker != nil {
			frames = append(frames, b.Frame(capture.Frame{Name: capture.FrameSeparator, Kind: capture.KindSynthetic}))
			frames = s.appendWaker(b, frames, r.waker)
		}
		ids[i] = b.Stack(frames)
	}
	for i := range s.events {
		s.events[i].Stack = ids[s.events[i].Stack]
		b.Add(s.events[i])
	}
	c := b.Capture()
	c.Meta.Stats.Samples = uint64(len(c.Events))
	return c
}

// symbolize names a segment's frames, root first, without the process name.
func (s *session) symbolize(b *capture.Builder, g *segment) (user, kernel []capture.Frame) {
	if g.uTrunc {
		user = append(user, capture.Frame{Name: capture.FrameTruncated, Kind: capture.KindSynthetic})
	}
	for j := len(g.user) - 1; j >= 0; j-- {
		user = s.appendUser(user, g.snap, g.user[j], j > 0)
	}
	if g.kTrunc {
		kernel = append(kernel, capture.Frame{Name: capture.FrameTruncated, Kind: capture.KindSynthetic})
	}
	for j := len(g.kernel) - 1; j >= 0; j-- {
		f := kernelFrame(s.sym.Kernel(g.kernel[j], j > 0))
		// The tracing machinery that ran the BPF program is not part of
		// what the thread was doing.
		if isTracingFrame(f.Name) {
			continue
		}
		kernel = append(kernel, f)
	}
	return user, kernel
}

// appendSegment adds a segment root first: process name, user, kernel.
func (s *session) appendSegment(b *capture.Builder, frames []uint32, g *segment) []uint32 {
	frames = append(frames, b.Frame(capture.Frame{Name: g.comm, Kind: capture.KindProcess}))
	user, kernel := s.symbolize(b, g)
	for _, f := range user {
		frames = append(frames, b.Frame(f))
	}
	for _, f := range kernel {
		frames = append(frames, b.Frame(f))
	}
	if len(user)+len(kernel) == 0 {
		frames = append(frames, b.Frame(capture.Frame{Name: capture.FrameUnknown, Kind: capture.KindSynthetic}))
	}
	return frames
}

// appendWaker adds a waker's segment leaf first, marked as the waker's, and
// ends with its process name; a wakeup from an interrupt keeps only the
// kernel stack and is named [irq].
func (s *session) appendWaker(b *capture.Builder, frames []uint32, g *segment) []uint32 {
	user, kernel, comm := s.wakerFrames(b, g)
	for j := len(kernel) - 1; j >= 0; j-- {
		f := kernel[j]
		f.Waker = true
		frames = append(frames, b.Frame(f))
	}
	for j := len(user) - 1; j >= 0; j-- {
		f := user[j]
		f.Waker = true
		frames = append(frames, b.Frame(f))
	}
	return append(frames, b.Frame(capture.Frame{Name: comm, Kind: capture.KindProcess}))
}

// appendWakerRoot builds the frames of a wakeup capture: the waker's stack,
// root first under its process name, or [irq] and the kernel stack.
func (s *session) appendWakerRoot(b *capture.Builder, frames []uint32, g *segment) []uint32 {
	user, kernel, comm := s.wakerFrames(b, g)
	frames = append(frames, b.Frame(capture.Frame{Name: comm, Kind: capture.KindProcess}))
	for _, f := range user {
		frames = append(frames, b.Frame(f))
	}
	for _, f := range kernel {
		frames = append(frames, b.Frame(f))
	}
	return frames
}

// interruptEntries are kernel functions through which interrupts and
// softirqs enter: a wakeup below one of them was not done by the task that
// happened to be running.
var interruptEntries = []string{
	"asm_sysvec_", "sysvec_", "asm_common_interrupt", "common_interrupt",
	"handle_softirqs", "__do_softirq", "do_softirq", "irq_exit_rcu", "__irq_exit_rcu",
	"hrtimer_interrupt", "__hrtimer_run_queues", "handle_irq_event",
}

// interruptEntry returns the index of the outermost interrupt entry in a
// root-first kernel stack, or -1.
func interruptEntry(kernel []capture.Frame) int {
	for i, f := range kernel {
		for _, p := range interruptEntries {
			if strings.HasPrefix(f.Name, p) {
				return i
			}
		}
	}
	return -1
}

// wakerFrames names a waker's frames. A wakeup done from an interrupt is
// charged to [irq] with the kernel stack from the interrupt entry on: the
// task that happened to be interrupted had nothing to do with it.
func (s *session) wakerFrames(b *capture.Builder, g *segment) (user, kernel []capture.Frame, comm string) {
	user, kernel = s.symbolize(b, g)
	comm = g.comm
	if i := interruptEntry(kernel); i >= 0 {
		return nil, kernel[i:], capture.FrameIRQ
	}
	if g.idle {
		return nil, kernel, capture.FrameIRQ
	}
	return user, kernel, comm
}

// tracingPrefixes name the kernel functions that run a BPF program from a
// tracepoint or perf event: they are on the stack only because scorch is.
var tracingPrefixes = []string{
	"bpf_prog_", "__bpf_trace_", "bpf_trace_run", "__traceiter_", "bpf_get_stack", "__bpf_prog_run",
	"perf_syscall_", "perf_trace_", "syscall_trace_enter", "trace_call_bpf",
}

func isTracingFrame(name string) bool {
	for _, p := range tracingPrefixes {
		if strings.HasPrefix(name, p) {
			return true
		}
	}
	return false
}

// appendUser adds the frames of one user address, outermost first.
func (s *session) appendUser(out []capture.Frame, snap *symbolizer.Process, pc uint64, ret bool) []capture.Frame {
	if snap == nil {
		return append(out, capture.Frame{Name: capture.FrameUnknown, Kind: capture.KindSynthetic})
	}
	fs := s.sym.User(snap, pc, ret)
	// Innermost first from the symbolizer; the stack is root first.
	for j := len(fs) - 1; j >= 0; j-- {
		out = append(out, userFrame(fs[j]))
	}
	if len(fs) == 0 {
		out = append(out, capture.Frame{Name: capture.FrameUnknown, Kind: capture.KindSynthetic})
	}
	return out
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

// close releases the process snapshots.
func (s *session) close() {
	for _, sn := range s.snaps {
		sn.Close()
	}
	s.snaps = nil
}

// run reads the ring buffer until the duration ends, ctx is cancelled or a
// started command exits; then it stops the events (stopSampling) and takes
// what is still in the buffer.
func (s *session) run(ctx context.Context, p capture.Params, opts Options, tgt *target, rd *ringbuf.Reader, stats *ebpf.Map, stopSampling func()) error {
	stop := make(chan struct{})
	go func() {
		defer close(stop)
		var timer <-chan time.Time
		if p.Duration > 0 {
			t := time.NewTimer(time.Duration(p.Duration))
			defer t.Stop()
			timer = t.C
		}
		select {
		case <-ctx.Done():
		case <-timer:
		case <-tgt.exited: // nil channel when there is no command
		}
	}()
	started := time.Now()
	progress := func() {
		if opts.Progress != nil {
			opts.Progress(Progress{Elapsed: time.Since(started), Events: uint64(len(s.events)), Lost: readStats(stats)[bpf.SamplerStatSlotSTAT_DROPPED]})
		}
	}
	err := s.read(rd, stop, progress)
	stopSampling()
	s.drain(rd, time.Now().Add(200*time.Millisecond))
	if opts.Progress != nil {
		progress()
	}
	return err
}

// addBPFStats adds the BPF programs' counters to the capture's.
func (s *session) addBPFStats(st map[bpf.SamplerStatSlot]uint64) {
	s.stats.Lost += st[bpf.SamplerStatSlotSTAT_DROPPED]
	s.stats.StackErrors += st[bpf.SamplerStatSlotSTAT_KSTACK_ERR] + st[bpf.SamplerStatSlotSTAT_USTACK_ERR]
	if n := st[bpf.SamplerStatSlotSTAT_COPY_ERR]; n > 0 {
		addExtra(&s.stats, "stack_copy_errors", n)
	}
	if n := st[bpf.SamplerStatSlotSTAT_EXEC_DROPPED]; n > 0 {
		addExtra(&s.stats, "exec_notifications_lost", n)
	}
	if n := st[bpf.SamplerStatSlotSTAT_KCACHE_HIT]; n > 0 {
		addExtra(&s.stats, "kernel_stacks_cached", n)
	}
	if n := st[bpf.SamplerStatSlotSTAT_KCACHE_MISS]; n > 0 {
		addExtra(&s.stats, "kernel_stacks_walked", n)
	}
	if n := st[bpf.SamplerStatSlotSTAT_KCACHE_WRONG]; n > 0 {
		addExtra(&s.stats, "kernel_stack_cache_wrong", n)
	}
	if n := st[bpf.SamplerStatSlotSTAT_MAP_FULL]; n > 0 {
		s.stats.Lost += n
		addExtra(&s.stats, "map_full", n)
	}
}

// finish adds warnings and symbolizes.
func (s *session) finish(meta capture.Meta, opts Options) *capture.Capture {
	if s.ringBytes > 0 {
		addExtra(&s.stats, "ring_bytes", s.ringBytes)
	}
	meta.Stats = s.stats
	if ok, reason := opts.Symbolizer.KernelStatus(); !ok {
		meta.Warnings = append(meta.Warnings, "kernel frames are not named: "+reason)
	}
	if s.stats.Lost > 0 {
		meta.Warnings = append(meta.Warnings, fmt.Sprintf("%d events were lost (ring buffer or map full): use a larger --ring-size, a lower frequency or a narrower target", s.stats.Lost))
	}
	if w := UnwindSummary(s.stats); s.stats.UnwindEnded > 0 {
		meta.Warnings = append(meta.Warnings, w)
	}
	c := s.build(meta)
	c.Meta.Stats.Lost = s.stats.Lost
	return c
}

func addExtra(st *capture.Stats, name string, n uint64) {
	if st.Extra == nil {
		st.Extra = make(map[string]uint64)
	}
	st.Extra[name] += n
}

// readStats sums the per-CPU counters.
func readStats(m *ebpf.Map) map[bpf.SamplerStatSlot]uint64 {
	out := make(map[bpf.SamplerStatSlot]uint64)
	for slot := bpf.SamplerStatSlot(0); slot < bpf.SamplerStatSlotSTAT_MAX; slot++ {
		var vals []uint64
		if err := m.Lookup(uint32(slot), &vals); err != nil {
			continue
		}
		for _, v := range vals {
			out[slot] += v
		}
	}
	return out
}

// UnwindSummary says how the user stacks of a capture were obtained, so
// that users can trust or question a graph: "user stacks: 950 completed
// with CFI, 40 from frame pointers alone, 10 ended early (no CFI for pc: 6,
// end of stack copy: 4)".
func UnwindSummary(st capture.Stats) string {
	if st.UnwindCFI+st.UnwindFP+st.UnwindEnded == 0 {
		return ""
	}
	out := fmt.Sprintf("user stacks: %d completed with CFI, %d from frame pointers alone, %d ended early", st.UnwindCFI, st.UnwindFP, st.UnwindEnded)
	var reasons []string
	for k, n := range st.Extra {
		if r, ok := strings.CutPrefix(k, "unwind_ended: "); ok {
			reasons = append(reasons, fmt.Sprintf("%s: %d", r, n))
		}
	}
	if len(reasons) > 0 {
		slices.Sort(reasons)
		out += " (" + strings.Join(reasons, ", ") + ")"
	}
	return out
}
