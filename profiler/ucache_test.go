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
		return s.resolveUserRef(e)
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
