package profiler

import (
	"encoding/binary"
	"fmt"
	"unsafe"

	"github.com/scorch-dev/scorch/bpf"
)

// maxStack is the deepest stack a record holds (MAX_STACK in bpf/common.h).
const maxStack = int(bpf.SamplerLimitLIMIT_MAX_STACK)

// commLen is TASK_COMM_LEN.
const commLen = int(bpf.SamplerLimitLIMIT_COMM)

// headerSize is the size of struct stack_event's header: all but data.
const headerSize = unsafe.Offsetof(bpf.StackEvent{}.Data)

// execSize is the size of struct exec_event.
const execSize = unsafe.Sizeof(bpf.ExecEvent{})

// asBytes is the memory of a generated record type, for copying a record
// into it: the programs write host-endian structs of the same layout.
func asBytes[T any](v *T, n uintptr) []byte {
	return unsafe.Slice((*byte)(unsafe.Pointer(v)), n)
}

// recordKind reads the kind of a ring-buffer record.
func recordKind(rec []byte) (bpf.RecordKind, bool) {
	if len(rec) < 4 {
		return 0, false
	}
	return bpf.RecordKind(binary.NativeEndian.Uint32(rec)), true
}

// decodeExecEvent parses a RECORD_EXEC record.
func decodeExecEvent(rec []byte) (pid uint32, comm string, ts uint64, ok bool) {
	var x bpf.ExecEvent
	if uintptr(len(rec)) < execSize {
		return 0, "", 0, false
	}
	copy(asBytes(&x, execSize), rec)
	return x.Pid, cString(x.Comm[:]), x.Ts, true
}

// stackEvent is a decoded struct stack_event. Its slices alias the record.
// What value, aux and the peer fields of the header mean depends on the
// record kind and the program: read them through the accessors below.
type stackEvent struct {
	hdr                *bpf.StackEvent // the header only: data is not copied
	Kind               bpf.RecordKind
	Flags              bpf.EventFlag
	Ts                 uint64
	PID, TID, CPU      uint32
	IP, SP, BP, LR     uint64 // user registers (bpf/arch.h); LR is 0 where there is no link register
	Comm               string
	Kstack, Ustack     []uint64
	Copy               []byte
	Tail               []byte // what follows the stacks and the copy (offcpu.c's struct arrival)
	KTruncated, UTrunc bool
}

// has reports whether the record carries flag f.
func (e *stackEvent) has(f bpf.EventFlag) bool { return e.Flags&f != 0 }

// weight is a sample's value as its program set it: 1 (cpu, tracepoints),
// the event's period (cpi) or the bytes allocated (mem).
func (e *stackEvent) weight() uint64 { return e.hdr.Value }

// offTimes are an off-CPU interval's times (offcpu.c, RECORD_SAMPLE): ns off
// CPU in all, and of those ns blocked before the wakeup.
func (e *stackEvent) offTimes() (total, blocked uint64) { return e.hdr.Value, e.hdr.Aux }

// waker is the thread that woke an off-CPU interval's thread (offcpu.c,
// RECORD_SAMPLE); 0 when unknown or an interrupt.
func (e *stackEvent) waker() (pid, tid uint32) { return e.hdr.PeerPid, e.hdr.PeerTid }

// wakee is the thread a waker woke (offcpu.c, RECORD_WAKER).
func (e *stackEvent) wakee() (tid uint32) { return e.hdr.PeerTid }

// alloc is the allocating function and the address it returned (mem.c; the
// address is 0 for the brk and mmap syscalls).
func (e *stackEvent) alloc() (fn bpf.MemAllocFn, addr uint64) {
	return bpf.MemAllocFn(e.hdr.PeerPid), e.hdr.Aux
}

// instructions are the instructions retired in a cpi sample's period
// (event.c's sample_cpi).
func (e *stackEvent) instructions() uint64 { return e.hdr.Aux }

// decodeStackEvent parses a ring-buffer record. kbuf and ubuf are reused.
func decodeStackEvent(b []byte, e *stackEvent, kbuf, ubuf []uint64) error {
	if uintptr(len(b)) < headerSize {
		return fmt.Errorf("short stack record: %d bytes", len(b))
	}
	h := e.hdr
	if h == nil {
		h = new(bpf.StackEvent)
	}
	copy(asBytes(h, headerSize), b)
	*e = stackEvent{
		hdr: h, Kind: bpf.RecordKind(h.Kind), Flags: bpf.EventFlag(h.Flags), Ts: h.Ts,
		PID: h.Pid, TID: h.Tid, CPU: h.Cpu, IP: h.Ip, SP: h.Sp, BP: h.Bp, LR: h.Lr, Comm: cString(h.Comm[:]),
	}
	data := b[headerSize:]
	k, u, n := uint64(h.KstackLen), uint64(h.UstackLen), uint64(h.CopyLen)
	if k+u+n > uint64(len(data)) || k > uint64(maxStack)*8 || u > uint64(maxStack)*8 {
		return fmt.Errorf("stack record lengths %d+%d+%d exceed its %d bytes", k, u, n, len(data))
	}
	e.Kstack = readStack(data[:k], kbuf)
	e.Ustack = readStack(data[k:k+u], ubuf)
	e.KTruncated = len(e.Kstack) == maxStack
	e.UTrunc = len(e.Ustack) == maxStack
	e.Copy = data[k+u : k+u+n]
	e.Tail = data[k+u+n:]
	return nil
}

// leaveRefSize is the size of offcpu.c's struct leave_ref.
const leaveRefSize = unsafe.Sizeof(bpf.OffcpuLeaveRef{})

// decodeLeaveRef parses a RECORD_LEAVE_REF as the RECORD_LEAVE it stands
// for: its stacks are references (resolveRefs fills them in), and the
// interval that rode along becomes its Tail, a struct arrival written into
// tail's room (reused).
func decodeLeaveRef(b []byte, e *stackEvent, tail []byte) error {
	var r bpf.OffcpuLeaveRef
	if uintptr(len(b)) < leaveRefSize {
		return fmt.Errorf("short leave record: %d bytes", len(b))
	}
	copy(asBytes(&r, leaveRefSize), b)
	h := e.hdr
	if h == nil {
		h = new(bpf.StackEvent)
	}
	// Field by field: the type's data array is 18 KiB, too much to clear
	// per record. What a RECORD_LEAVE's header does not carry here is 0.
	h.Kind, h.Flags, h.Ts, h.Pid, h.Tid, h.Cpu = uint32(bpf.SamplerRecordKindRECORD_LEAVE), r.Flags, r.Ts, r.Pid, r.Tid, r.Cpu
	h.KstackLen, h.UstackLen, h.CopyLen, h.Value, h.Aux, h.PeerPid, h.PeerTid = 0, 0, 0, 0, uint64(r.KstackRef), 0, 0
	h.UstackEnd, h.UstackRef, h.Ip, h.Sp, h.Bp, h.Lr, h.Comm = r.UstackEnd, r.UstackRef, r.Ip, 0, 0, 0, r.Comm
	*e = stackEvent{
		hdr: h, Kind: bpf.SamplerRecordKindRECORD_LEAVE, Flags: bpf.EventFlag(r.Flags), Ts: r.Ts,
		PID: r.Pid, TID: r.Tid, CPU: r.Cpu, IP: r.Ip, Comm: cString(r.Comm[:]),
	}
	if e.has(bpf.SamplerEventFlagEVENT_ARRIVAL) {
		a := bpf.OffcpuArrival{
			Ts: r.ArrivalTs, Total: r.ArrivalTotal, Blocked: r.ArrivalBlocked, Pid: r.ArrivalPid, Tid: r.ArrivalTid,
			WakerPid: r.ArrivalWakerPid, WakerTid: r.ArrivalWakerTid, Flags: r.ArrivalFlags,
		}
		e.Tail = append(tail[:0], asBytes(&a, arrivalSize)...)
	}
	return nil
}

func readStack(b []byte, buf []uint64) []uint64 {
	buf = buf[:0]
	for i := 0; i+8 <= len(b); i += 8 {
		pc := binary.NativeEndian.Uint64(b[i:])
		if pc == 0 {
			break
		}
		buf = append(buf, pc)
	}
	return buf
}

func cString(b []byte) string {
	for i, c := range b {
		if c == 0 {
			return string(b[:i])
		}
	}
	return string(b)
}
