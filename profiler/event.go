package profiler

import (
	"encoding/binary"
	"fmt"
	"unsafe"

	"github.com/scorch-dev/scorch/bpf"
)

// Record kinds and flags, mirrored from bpf/common.h.
const (
	recordSample = 1
	recordExec   = 2
	recordWaker  = 3
	recordLeave  = 4

	eventKernelMode = 1
	eventKthread    = 2
	eventIRQ        = 4
	eventLeft       = 8

	maxStack = 127
)

// Target modes of bpf/common.h.
const (
	targetAll  = 0
	targetPID  = 1
	targetTID  = 2
	targetComm = 3
)

// Field offsets of struct stack_event, taken from the generated Go type so
// they cannot drift from the C layout.
var (
	offFlags     = unsafe.Offsetof(bpf.SamplerStackEvent{}.Flags)
	offTs        = unsafe.Offsetof(bpf.SamplerStackEvent{}.Ts)
	offPid       = unsafe.Offsetof(bpf.SamplerStackEvent{}.Pid)
	offTid       = unsafe.Offsetof(bpf.SamplerStackEvent{}.Tid)
	offCPU       = unsafe.Offsetof(bpf.SamplerStackEvent{}.Cpu)
	offKstackLen = unsafe.Offsetof(bpf.SamplerStackEvent{}.KstackLen)
	offUstackLen = unsafe.Offsetof(bpf.SamplerStackEvent{}.UstackLen)
	offCopyLen   = unsafe.Offsetof(bpf.SamplerStackEvent{}.CopyLen)
	offValue     = unsafe.Offsetof(bpf.SamplerStackEvent{}.Value)
	offAux       = unsafe.Offsetof(bpf.SamplerStackEvent{}.Aux)
	offPeerPid   = unsafe.Offsetof(bpf.SamplerStackEvent{}.PeerPid)
	offPeerTid   = unsafe.Offsetof(bpf.SamplerStackEvent{}.PeerTid)
	offIP        = unsafe.Offsetof(bpf.SamplerStackEvent{}.Ip)
	offSP        = unsafe.Offsetof(bpf.SamplerStackEvent{}.Sp)
	offBP        = unsafe.Offsetof(bpf.SamplerStackEvent{}.Bp)
	offComm      = unsafe.Offsetof(bpf.SamplerStackEvent{}.Comm)
	offData      = unsafe.Offsetof(bpf.SamplerStackEvent{}.Data)

	offExecPid  = unsafe.Offsetof(bpf.SamplerExecEvent{}.Pid)
	offExecComm = unsafe.Offsetof(bpf.SamplerExecEvent{}.Comm)
)

// stackEvent is a decoded struct stack_event. Its slices alias the record.
type stackEvent struct {
	Flags              uint32
	Ts                 uint64
	PID, TID, CPU      uint32
	KstackLen          uint32 // bytes
	UstackLen          uint32
	Value, Aux         uint64
	PeerPID, PeerTID   uint32
	IP, SP, BP         uint64
	Comm               string
	Kstack, Ustack     []uint64
	Copy               []byte
	KTruncated, UTrunc bool
}

// decodeStackEvent parses a ring-buffer record. kbuf and ubuf are reused.
func decodeStackEvent(b []byte, e *stackEvent, kbuf, ubuf []uint64) error {
	if uintptr(len(b)) < offData {
		return fmt.Errorf("short stack record: %d bytes", len(b))
	}
	le := binary.LittleEndian
	e.Flags = le.Uint32(b[offFlags:])
	e.Ts = le.Uint64(b[offTs:])
	e.PID = le.Uint32(b[offPid:])
	e.TID = le.Uint32(b[offTid:])
	e.CPU = le.Uint32(b[offCPU:])
	e.KstackLen = le.Uint32(b[offKstackLen:])
	e.UstackLen = le.Uint32(b[offUstackLen:])
	copyLen := le.Uint32(b[offCopyLen:])
	e.Value = le.Uint64(b[offValue:])
	e.Aux = le.Uint64(b[offAux:])
	e.PeerPID = le.Uint32(b[offPeerPid:])
	e.PeerTID = le.Uint32(b[offPeerTid:])
	e.IP = le.Uint64(b[offIP:])
	e.SP = le.Uint64(b[offSP:])
	e.BP = le.Uint64(b[offBP:])
	e.Comm = cString(b[offComm : offComm+16])
	data := b[offData:]
	k := uint64(e.KstackLen)
	u := uint64(e.UstackLen)
	if k+u+uint64(copyLen) > uint64(len(data)) || k > maxStack*8 || u > maxStack*8 {
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
