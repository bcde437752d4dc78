package profiler

import (
	"encoding/binary"
	"testing"
	"unsafe"

	"github.com/scorch-dev/scorch/bpf"
)

// record builds a stack record as the BPF programs write it.
func record(kernel, user []uint64, copyLen int) []byte {
	b := make([]byte, int(headerSize)+8*(len(kernel)+len(user))+copyLen)
	h := bpf.StackEvent{
		Kind: uint32(bpf.SamplerRecordKindRECORD_SAMPLE), Pid: 42, Tid: 43,
		KstackLen: uint32(8 * len(kernel)), UstackLen: uint32(8 * len(user)), CopyLen: uint32(copyLen),
	}
	copy(h.Comm[:], "app")
	copy(b, asBytes(&h, headerSize))
	le := binary.LittleEndian
	off := int(headerSize)
	for _, pc := range append(append([]uint64{}, kernel...), user...) {
		le.PutUint64(b[off:], pc)
		off += 8
	}
	return b
}

func TestDecodeStackEvent(t *testing.T) {
	var e stackEvent
	var kbuf, ubuf [maxStack]uint64
	b := record([]uint64{0xffffffff81000010, 0xffffffff81000020}, []uint64{0x401000, 0x401100, 0x401200}, 64)
	if err := decodeStackEvent(b, &e, kbuf[:0], ubuf[:0]); err != nil {
		t.Fatal(err)
	}
	if e.PID != 42 || e.TID != 43 || e.Comm != "app" {
		t.Errorf("header: %+v", e)
	}
	if len(e.Kstack) != 2 || e.Kstack[1] != 0xffffffff81000020 || len(e.Ustack) != 3 || e.Ustack[0] != 0x401000 || len(e.Copy) != 64 {
		t.Errorf("stacks: k=%x u=%x copy=%d", e.Kstack, e.Ustack, len(e.Copy))
	}
	// Lengths past the record are refused, not read.
	binary.LittleEndian.PutUint32(b[unsafe.Offsetof(bpf.StackEvent{}.UstackLen):], 4000)
	if err := decodeStackEvent(b, &e, kbuf[:0], ubuf[:0]); err == nil {
		t.Error("a record claiming more bytes than it has was accepted")
	}
	if err := decodeStackEvent(b[:10], &e, kbuf[:0], ubuf[:0]); err == nil {
		t.Error("a short record was accepted")
	}
}

func FuzzDecodeStackEvent(f *testing.F) {
	f.Add(record([]uint64{1, 2}, []uint64{3}, 16))
	f.Add(record(nil, nil, 0))
	f.Fuzz(func(t *testing.T, b []byte) {
		var e stackEvent
		var kbuf, ubuf [maxStack]uint64
		if decodeStackEvent(b, &e, kbuf[:0], ubuf[:0]) == nil {
			if len(e.Kstack) > maxStack || len(e.Ustack) > maxStack {
				t.Fatalf("stack longer than %d frames", maxStack)
			}
		}
	})
}
