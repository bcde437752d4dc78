package profiler

import (
	"encoding/binary"
	"fmt"
	"unsafe"

	"github.com/scorch-dev/scorch/bpf"
	"github.com/scorch-dev/scorch/capture"
	"github.com/scorch-dev/scorch/symbolizer"
	"github.com/scorch-dev/scorch/unwind"
)

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
	// young: the process was snapshot less than a second before the
	// record and may still map the libraries its user stack is in.
	young bool
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

// stacks unwinds the user stacks of records and deduplicates the stacks
// of a capture.
type stacks struct {
	unw    *unwind.Unwinder
	tables *UnwindTables // the BPF unwinder's; nil when not used
	mode   unwind.Mode
	stats  *capture.Stats
	index  map[string]uint32
	n      uint32           // stacks interned
	added  func(r rawStack) // receives each new stack (the namer)
	key    []byte
	tramps map[*symbolizer.Process]*procTrampolines // for resolver
}

func newStacks(unw *unwind.Unwinder, mode unwind.Mode, stats *capture.Stats, added func(rawStack), tables *UnwindTables) stacks {
	return stacks{unw: unw, tables: tables, mode: mode, stats: stats, index: make(map[string]uint32), added: added}
}

// idleSegment is the kernel stack of the idle task.
func idleSegment(e *stackEvent) segment {
	return segment{comm: capture.FrameIdle, idle: true, kernel: e.Kstack, kTrunc: e.KTruncated, uTrunc: e.UTrunc}
}

// segment resolves the record's user stack in process p (unwinding it
// where the mode asks) into a segment. Its slices alias the record: intern
// copies what it keeps, so repeated stacks cost no allocation.
func (t *stacks) segment(p *proc, e *stackEvent) segment {
	seg := segment{pid: e.PID, comm: e.Comm, kTrunc: e.KTruncated, uTrunc: e.UTrunc}
	user := e.Ustack
	if !e.has(bpf.SamplerEventFlagEVENT_KTHREAD) && p.snap != nil {
		// A young process maps its libraries after the snapshot: looking
		// its addresses up now, while it is still there, makes the
		// snapshot re-read its maps. Later mappings (dlopen) are found the
		// same way when the stacks are symbolized.
		if p.young(e.Ts) {
			lookUp(p.snap, user)
		}
		user = t.unwindUser(p.snap, e)
	}
	seg.snap, seg.gen = p.snap, p.gen
	if p.comm != "" && !preExec(p, e) {
		seg.comm = p.comm
	}
	seg.kernel = e.Kstack
	seg.user = user
	seg.young = len(user) > 0 && p.snap != nil && p.young(e.Ts)
	if e.KTruncated || e.UTrunc {
		t.stats.Truncated++
	}
	return seg
}

// preExec reports whether a young process's sample ran the image its exec
// replaced (a vfork child, a shell's fork about to exec): its comm is not
// the snapshot's and its pc is in none of the snapshot's mappings. Such a
// sample is charged to the comm it had, not to the program that followed.
func preExec(p *proc, e *stackEvent) bool {
	if p.snap == nil || !p.young(e.Ts) || e.Comm == "" || e.Comm == p.comm || len(e.Ustack) == 0 {
		return false
	}
	_, _, _, ok := p.snap.ModuleFor(e.Ustack[0])
	return !ok
}

// lookUp finds the mapping of every address, which makes the snapshot
// re-read the process's maps when one is missing.
func lookUp(snap *symbolizer.Process, pcs []uint64) {
	for _, pc := range pcs {
		snap.ModuleFor(pc)
	}
}

// bpfEnds are the reasons a user stack walked in BPF ended early, as the
// user-space unwinder names them (enum unwind_end).
var bpfEnds = map[bpf.UnwindEnd]string{
	bpf.SamplerUnwindEndUNWIND_END_DEPTH:       unwind.ReasonDepth,
	bpf.SamplerUnwindEndUNWIND_END_READ:        ReasonReadFault,
	bpf.SamplerUnwindEndUNWIND_END_NO_PROGRESS: unwind.ReasonNoProgress,
	bpf.SamplerUnwindEndUNWIND_END_UNSUPPORTED: unwind.ReasonUnsupported,
	bpf.SamplerUnwindEndUNWIND_END_LOST_FP:     unwind.ReasonLostBP,
	bpf.SamplerUnwindEndUNWIND_END_NO_FP:       unwind.ReasonNoCFI,
	bpf.SamplerUnwindEndUNWIND_END_LOST_LR:     unwind.ReasonLostLR,
}

// ReasonReadFault ends a stack walked in BPF where reading the stack
// failed: unmapped memory (garbage registers) or a page not resident.
const ReasonReadFault = "stack read fault"

// bpfEnd counts how a user stack walked in BPF ended; it reports whether
// it was.
func (t *stacks) bpfEnd(snap *symbolizer.Process, e *stackEvent) bool {
	end := bpf.UnwindEnd(e.hdr.UstackEnd)
	if end == bpf.SamplerUnwindEndUNWIND_NOT_WALKED {
		if t.tables != nil && e.IP != 0 && t.tables.Refused() == nil {
			t.stats.Counters.Add(capture.UnwindTablesPending, 1)
			t.tables.waiting(e.PID, snap)
		}
		return false
	}
	t.stats.Counters.Add(capture.UnwoundInBPF, 1)
	t.tables.sampled(e.PID)
	if e.has(bpf.SamplerEventFlagEVENT_UNMAPPED_PC) {
		t.tables.unmapped(e.PID, snap)
	}
	if end == bpf.SamplerUnwindEndUNWIND_END_OK {
		t.stats.UnwindCFI++
		return true
	}
	t.stats.UnwindEnded++
	reason, ok := bpfEnds[end]
	if !ok {
		reason = fmt.Sprintf("unwinder end %d", end)
	}
	t.stats.Counters.AddReason(capture.UnwindEndedBy, reason, 1)
	return true
}

// unwindUser completes the user stack with CFI where the mode asks for it.
func (t *stacks) unwindUser(snap *symbolizer.Process, e *stackEvent) []uint64 {
	if t.bpfEnd(snap, e) {
		return e.Ustack
	}
	if t.mode == unwind.ModeFP || t.unw == nil || e.IP == 0 {
		if len(e.Ustack) > 0 {
			t.stats.UnwindFP++
		}
		return e.Ustack
	}
	res := t.unw.Unwind(t.resolver(snap, e.PID), t.mode, unwind.Regs{IP: e.IP, SP: e.SP, BP: e.BP, LR: e.LR}, e.Copy, e.Ustack)
	switch res.Outcome {
	case unwind.OutcomeCFI:
		t.stats.UnwindCFI++
	case unwind.OutcomeFP:
		t.stats.UnwindFP++
	default:
		t.stats.UnwindEnded++
		if res.Reason != "" {
			t.stats.Counters.AddReason(capture.UnwindEndedBy, res.Reason, 1)
		}
	}
	if len(res.PCs) == 0 {
		return e.Ustack
	}
	return res.PCs
}

// intern deduplicates a raw stack and returns its index.
func (t *stacks) intern(r rawStack) uint32 {
	k := appendSegmentKey(t.key[:0], &r.main)
	k = append(k, r.leaf...)
	k = append(k, 0, boolByte(r.wakerRoot))
	if r.waker != nil {
		k = append(k, 1)
		k = appendSegmentKey(k, r.waker)
	}
	t.key = k
	if id, ok := t.index[unsafe.String(unsafe.SliceData(k), len(k))]; ok {
		return id
	}
	id := t.n
	t.n++
	r.main = r.main.clone()
	if r.waker != nil {
		w := r.waker.clone()
		r.waker = &w
	}
	t.added(r)
	t.index[string(k)] = id
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
