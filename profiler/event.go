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
const commLen = uintptr(bpf.SamplerLimitLIMIT_COMM)

// Field offsets of struct stack_event, taken from the generated Go type so
// they cannot drift from the C layout.
var (
	offKind      = unsafe.Offsetof(bpf.StackEvent{}.Kind)
	offFlags     = unsafe.Offsetof(bpf.StackEvent{}.Flags)
	offTs        = unsafe.Offsetof(bpf.StackEvent{}.Ts)
	offPid       = unsafe.Offsetof(bpf.StackEvent{}.Pid)
	offTid       = unsafe.Offsetof(bpf.StackEvent{}.Tid)
	offCPU       = unsafe.Offsetof(bpf.StackEvent{}.Cpu)
	offKstackLen = unsafe.Offsetof(bpf.StackEvent{}.KstackLen)
	offUstackLen = unsafe.Offsetof(bpf.StackEvent{}.UstackLen)
	offCopyLen   = unsafe.Offsetof(bpf.StackEvent{}.CopyLen)
	offValue     = unsafe.Offsetof(bpf.StackEvent{}.Value)
	offAux       = unsafe.Offsetof(bpf.StackEvent{}.Aux)
	offPeerPid   = unsafe.Offsetof(bpf.StackEvent{}.PeerPid)
	offPeerTid   = unsafe.Offsetof(bpf.StackEvent{}.PeerTid)
	offIP        = unsafe.Offsetof(bpf.StackEvent{}.Ip)
	offSP        = unsafe.Offsetof(bpf.StackEvent{}.Sp)
	offBP        = unsafe.Offsetof(bpf.StackEvent{}.Bp)
	offComm      = unsafe.Offsetof(bpf.StackEvent{}.Comm)
	offData      = unsafe.Offsetof(bpf.StackEvent{}.Data)

	offExecPid  = unsafe.Offsetof(bpf.ExecEvent{}.Pid)
	offExecComm = unsafe.Offsetof(bpf.ExecEvent{}.Comm)
)

// recordKind reads the kind of a ring-buffer record.
func recordKind(rec []byte) (bpf.RecordKind, bool) {
	if len(rec) < 4 {
		return 0, false
	}
	return bpf.RecordKind(binary.LittleEndian.Uint32(rec[offKind:])), true
}

// decodeExecEvent parses a RECORD_EXEC record.
func decodeExecEvent(rec []byte) (pid uint32, comm string, ok bool) {
	if uintptr(len(rec)) < offExecComm+commLen {
		return 0, "", false
	}
	return binary.LittleEndian.Uint32(rec[offExecPid:]), cString(rec[offExecComm : offExecComm+commLen]), true
}

// stackEvent is a decoded struct stack_event. Its slices alias the record.
// What value, aux and the peer fields mean depends on the record kind and
// the program: read them through the accessors below.
type stackEvent struct {
	Kind               bpf.RecordKind
	Flags              bpf.EventFlag
	Ts                 uint64
	PID, TID, CPU      uint32
	KstackLen          uint32 // bytes
	UstackLen          uint32
	IP, SP, BP         uint64
	Comm               string
	Kstack, Ustack     []uint64
	Copy               []byte
	KTruncated, UTrunc bool

	value, aux       uint64
	peerPID, peerTID uint32
}

// has reports whether the record carries flag f.
func (e *stackEvent) has(f bpf.EventFlag) bool { return e.Flags&f != 0 }

// weight is a sample's value as its program set it: 1 (cpu, tracepoints),
// the event's period (cpi) or the bytes allocated (mem).
func (e *stackEvent) weight() uint64 { return e.value }

// offTimes are an off-CPU interval's times (offcpu.c, RECORD_SAMPLE): ns off
// CPU in all, and of those ns blocked before the wakeup.
func (e *stackEvent) offTimes() (total, blocked uint64) { return e.value, e.aux }

// waker is the thread that woke an off-CPU interval's thread (offcpu.c,
// RECORD_SAMPLE); 0 when unknown or an interrupt.
func (e *stackEvent) waker() (pid, tid uint32) { return e.peerPID, e.peerTID }

// wakee is the thread a waker woke (offcpu.c, RECORD_WAKER).
func (e *stackEvent) wakee() (tid uint32) { return e.peerTID }

// alloc is the allocating function and the address it returned (mem.c; the
// address is 0 for the brk and mmap syscalls).
func (e *stackEvent) alloc() (fn bpf.MemAllocFn, addr uint64) {
	return bpf.MemAllocFn(e.peerPID), e.aux
}

// instructions are the instructions retired in a cpi sample's period
// (event.c's sample_cpi).
func (e *stackEvent) instructions() uint64 { return e.aux }

// decodeStackEvent parses a ring-buffer record. kbuf and ubuf are reused.
func decodeStackEvent(b []byte, e *stackEvent, kbuf, ubuf []uint64) error {
	if uintptr(len(b)) < offData {
		return fmt.Errorf("short stack record: %d bytes", len(b))
	}
	le := binary.LittleEndian
	e.Kind = bpf.RecordKind(le.Uint32(b[offKind:]))
	e.Flags = bpf.EventFlag(le.Uint32(b[offFlags:]))
	e.Ts = le.Uint64(b[offTs:])
	e.PID = le.Uint32(b[offPid:])
	e.TID = le.Uint32(b[offTid:])
	e.CPU = le.Uint32(b[offCPU:])
	e.KstackLen = le.Uint32(b[offKstackLen:])
	e.UstackLen = le.Uint32(b[offUstackLen:])
	copyLen := le.Uint32(b[offCopyLen:])
	e.value = le.Uint64(b[offValue:])
	e.aux = le.Uint64(b[offAux:])
	e.peerPID = le.Uint32(b[offPeerPid:])
	e.peerTID = le.Uint32(b[offPeerTid:])
	e.IP = le.Uint64(b[offIP:])
	e.SP = le.Uint64(b[offSP:])
	e.BP = le.Uint64(b[offBP:])
	e.Comm = cString(b[offComm : offComm+commLen])
	data := b[offData:]
	k := uint64(e.KstackLen)
	u := uint64(e.UstackLen)
	if k+u+uint64(copyLen) > uint64(len(data)) || k > uint64(maxStack)*8 || u > uint64(maxStack)*8 {
		return fmt.Errorf("stack record lengths %d+%d+%d exceed its %d bytes", k, u, copyLen, len(data))
	}
	e.Kstack = readStack(data[:k], kbuf)
	e.Ustack = readStack(data[k:k+u], ubuf)
	e.KTruncated = len(e.Kstack) == maxStack
	e.UTrunc = len(e.Ustack) == maxStack
	e.Copy = data[k+u : k+u+uint64(copyLen)]
	return nil
}

func readStack(b []byte, buf []uint64) []uint64 {
	buf = buf[:0]
	for i := 0; i+8 <= len(b); i += 8 {
		pc := binary.LittleEndian.Uint64(b[i:])
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
