package profiler

import (
	"encoding/binary"
	"slices"
	"testing"
	"unsafe"

	"github.com/scorch-dev/scorch/bpf"
)

// stackRecord builds a ring record as the programs write it: the header,
// the kernel stack and the user stack.
func stackRecord(flags bpf.EventFlag, ref uint32, kstack, ustack []uint64) []byte {
	h := bpf.StackEvent{Kind: uint32(bpf.SamplerRecordKindRECORD_SAMPLE), Flags: uint32(flags), Pid: 7, Tid: 7,
		KstackLen: uint32(8 * len(kstack)), UstackLen: uint32(8 * len(ustack)), UstackRef: ref}
	b := append([]byte(nil), unsafe.Slice((*byte)(unsafe.Pointer(&h)), headerSize)...)
	for _, pc := range append(slices.Clone(kstack), ustack...) {
		b = binary.NativeEndian.AppendUint64(b, pc)
	}
	return b
}

// A record that names a cached user stack must come out with the stack
// the record that defined it carried; one naming a stack never sent is
// refused, not given another's.
func TestUserStackReferenceResolves(t *testing.T) {
	kstack := []uint64{0xffffffff81000010, 0xffffffff81000020}
	user := []uint64{0x401000, 0x401234, 0x7f0000001000}
	other := []uint64{0x402000, 0x402345}
	s := &session{}
	var full, cached, second stackEvent
	var kb, ub [maxStack]uint64
	decodeAndResolve := func(rec []byte, e *stackEvent) bool {
		if err := decodeStackEvent(rec, e, kb[:0], ub[:0]); err != nil {
			t.Fatal(err)
		}
		return s.resolveRefs(e)
	}
	const ref = 1<<16 | 5
	if !decodeAndResolve(stackRecord(bpf.SamplerEventFlagEVENT_USTACK_DEF, ref, kstack, user), &full) {
		t.Fatal("a defining record was refused")
	}
	want := slices.Clone(full.Ustack)
	if !slices.Equal(want, user) {
		t.Fatalf("full record: user stack %x, want %x", want, user)
	}
	// Another stack under another reference, reusing the decode buffers.
	if !decodeAndResolve(stackRecord(bpf.SamplerEventFlagEVENT_USTACK_DEF, ref+1, kstack, other), &second) {
		t.Fatal("a defining record was refused")
	}
	if !decodeAndResolve(stackRecord(bpf.SamplerEventFlagEVENT_USTACK_REF, ref, kstack, nil), &cached) {
		t.Fatal("a reference to a stack sent before was refused")
	}
	if !slices.Equal(cached.Ustack, want) {
		t.Errorf("cached reference: user stack %x, want the full record's %x", cached.Ustack, want)
	}
	if !slices.Equal(cached.Kstack, kstack) {
		t.Errorf("cached reference: kernel stack %x, want %x", cached.Kstack, kstack)
	}
	// The slot is reused for another stack: references name the new one.
	if !decodeAndResolve(stackRecord(bpf.SamplerEventFlagEVENT_USTACK_DEF, ref, kstack, other), &full) ||
		!decodeAndResolve(stackRecord(bpf.SamplerEventFlagEVENT_USTACK_REF, ref, kstack, nil), &cached) {
		t.Fatal("a redefined reference was refused")
	}
	if !slices.Equal(cached.Ustack, other) {
		t.Errorf("redefined reference: user stack %x, want %x", cached.Ustack, other)
	}
	var unknown stackEvent
	if decodeAndResolve(stackRecord(bpf.SamplerEventFlagEVENT_USTACK_REF, 99, kstack, nil), &unknown) {
		t.Errorf("a reference never defined resolved to %x", unknown.Ustack)
	}
}

// leaveRefRecord builds a RECORD_LEAVE_REF as offcpu.c writes it.
func leaveRefRecord(r bpf.OffcpuLeaveRef) []byte {
	r.Kind = uint32(bpf.SamplerRecordKindRECORD_LEAVE_REF)
	return append([]byte(nil), unsafe.Slice((*byte)(unsafe.Pointer(&r)), leaveRefSize)...)
}

// A RECORD_LEAVE_REF must come out as the RECORD_LEAVE it stands for: the
// kernel and user stacks that the records defining its references
// carried, its thread, and the interval that rode along; one naming a
// kernel stack never sent is refused.
func TestLeaveRefResolves(t *testing.T) {
	kstack := []uint64{0xffffffff81000010, 0xffffffff81000020, 0xffffffff81000030}
	user := []uint64{0x401000, 0x401234}
	const kref, uref = 1<<16 | 9, 1<<16 | 3
	s := &session{}
	var e stackEvent
	var kb, ub [maxStack]uint64
	def := stackRecord(bpf.SamplerEventFlagEVENT_USTACK_DEF|bpf.SamplerEventFlagEVENT_KSTACK_DEF, uref, kstack, user)
	binary.NativeEndian.PutUint64(def[unsafe.Offsetof(bpf.StackEvent{}.Aux):], kref)
	if err := decodeStackEvent(def, &e, kb[:0], ub[:0]); err != nil || !s.resolveRefs(&e) {
		t.Fatalf("a defining record was refused: %v", err)
	}
	var comm [16]uint8
	copy(comm[:], "pinger")
	r := bpf.OffcpuLeaveRef{
		Flags: uint32(bpf.SamplerEventFlagEVENT_KSTACK_REF | bpf.SamplerEventFlagEVENT_USTACK_REF | bpf.SamplerEventFlagEVENT_ARRIVAL),
		Ts:    1000, Pid: 7, Tid: 8, Cpu: 1, KstackRef: kref, UstackRef: uref, UstackEnd: uint32(bpf.SamplerUnwindEndUNWIND_END_OK),
		Ip: 0x401000, Comm: comm,
		ArrivalTs: 400, ArrivalTotal: 500, ArrivalBlocked: 300, ArrivalPid: 7, ArrivalTid: 9, ArrivalWakerPid: 7, ArrivalWakerTid: 8,
	}
	var tail [arrivalSize]byte
	if err := decodeLeaveRef(leaveRefRecord(r), &e, tail[:0]); err != nil || !s.resolveRefs(&e) {
		t.Fatalf("a leave record by reference was refused: %v", err)
	}
	if e.Kind != bpf.SamplerRecordKindRECORD_LEAVE || e.PID != 7 || e.TID != 8 || e.CPU != 1 || e.Ts != 1000 || e.Comm != "pinger" || e.IP != 0x401000 {
		t.Errorf("decoded as kind %d, pid %d, tid %d, cpu %d, ts %d, comm %q, ip %#x; want a RECORD_LEAVE of 7/8 on cpu 1 at 1000, pinger, 0x401000",
			e.Kind, e.PID, e.TID, e.CPU, e.Ts, e.Comm, e.IP)
	}
	if !slices.Equal(e.Kstack, kstack) || !slices.Equal(e.Ustack, user) {
		t.Errorf("stacks %x / %x, want the defining record's %x / %x", e.Kstack, e.Ustack, kstack, user)
	}
	if bpf.UnwindEnd(e.hdr.UstackEnd) != bpf.SamplerUnwindEndUNWIND_END_OK {
		t.Errorf("user stack end %d, want UNWIND_END_OK", e.hdr.UstackEnd)
	}
	iv, ok := arrivalOf(&e)
	want := interval{ts: 400, total: 500, blocked: 300, pid: 7, tid: 9, cpu: 1, wpid: 7, wtid: 8}
	if !ok || iv != want {
		t.Errorf("arrival %+v (%v), want %+v", iv, ok, want)
	}
	// Without EVENT_ARRIVAL nothing rides along.
	r.Flags &^= uint32(bpf.SamplerEventFlagEVENT_ARRIVAL)
	if err := decodeLeaveRef(leaveRefRecord(r), &e, tail[:0]); err != nil || !s.resolveRefs(&e) || e.has(bpf.SamplerEventFlagEVENT_ARRIVAL) {
		t.Fatalf("a leave record without an arrival: %v", err)
	}
	if _, ok := arrivalOf(&e); ok {
		t.Error("a leave record without EVENT_ARRIVAL gave an arrival")
	}
	r.KstackRef = 77
	if err := decodeLeaveRef(leaveRefRecord(r), &e, tail[:0]); err != nil {
		t.Fatal(err)
	}
	if s.resolveRefs(&e) {
		t.Errorf("a kernel stack reference never defined resolved to %x", e.Kstack)
	}
	if err := decodeLeaveRef(leaveRefRecord(r)[:40], &e, tail[:0]); err == nil {
		t.Error("a short leave record decoded")
	}
}

func FuzzDecodeLeaveRef(f *testing.F) {
	f.Add(leaveRefRecord(bpf.OffcpuLeaveRef{Flags: uint32(bpf.SamplerEventFlagEVENT_ARRIVAL | bpf.SamplerEventFlagEVENT_KSTACK_REF), KstackRef: 3}))
	f.Add([]byte{5, 0, 0, 0})
	f.Fuzz(func(t *testing.T, b []byte) {
		var e stackEvent
		var tail [arrivalSize]byte
		s := &session{}
		if decodeLeaveRef(b, &e, tail[:0]) != nil {
			return
		}
		if e.Kind != bpf.SamplerRecordKindRECORD_LEAVE {
			t.Fatalf("decoded as kind %d", e.Kind)
		}
		if _, ok := arrivalOf(&e); ok != e.has(bpf.SamplerEventFlagEVENT_ARRIVAL) {
			t.Fatalf("arrival %v with flags %#x", ok, e.Flags)
		}
		if e.has(bpf.SamplerEventFlagEVENT_KSTACK_REF) && s.resolveRefs(&e) {
			t.Fatal("a reference resolved in a session that has none")
		}
	})
}
