package unwind

import (
	"bytes"
	"debug/elf"
	"encoding/binary"
	"os"
	"path/filepath"
	"testing"
)

// FuzzUnwind feeds random stack bytes, registers and chains to the unwinder
// over the leaf workload's real CFI: the walk must stop cleanly.
func FuzzUnwind(f *testing.F) {
	fx, r := loadFixture(f, "leaf")
	s := fx.Sample
	f.Add(s.Stack, uint32(0), uint32(s.Regs.BP-s.Regs.SP), uint8(ModeAuto))
	f.Add(s.Stack, uint32(0), uint32(s.Regs.BP-s.Regs.SP), uint8(ModeDWARF))
	f.Add(bytes.Repeat([]byte{0xff}, 64), uint32(0x1149), uint32(8), uint8(ModeDWARF))
	var exe *mapping
	for i := range r.maps {
		if r.maps[i].Path == fx.Binary && (exe == nil || r.maps[i].End > exe.End) {
			exe = &r.maps[i]
		}
	}
	if exe == nil {
		f.Fatal("fixture does not map its binary")
	}
	base := r.maps[0].Start
	u := New(Options{CacheBytes: 1})
	f.Fuzz(func(t *testing.T, stack []byte, ipOff, bpOff uint32, mode uint8) {
		m := Mode(mode % 3)
		regs := Regs{IP: base + uint64(ipOff)%(exe.End-base), SP: s.Regs.SP, BP: s.Regs.SP + uint64(bpOff)}
		// The chain is made of stack words, as a walk over garbage gives.
		chain := []uint64{regs.IP}
		for i := 0; i+8 <= len(stack) && len(chain) < 16; i += 24 {
			chain = append(chain, binary.LittleEndian.Uint64(stack[i:]))
		}
		res := u.Unwind(r, m, regs, stack, chain)
		if len(res.PCs) == 0 || res.PCs[0] != regs.IP {
			t.Fatalf("PCs %x do not start with the IP %x", res.PCs, regs.IP)
		}
		if len(res.PCs) > MaxDepth {
			t.Fatalf("%d frames, more than %d", len(res.PCs), MaxDepth)
		}
		if res.Outcome == OutcomeEnded && res.Reason == "" {
			t.Fatal("ended without a reason")
		}
	})
}

// FuzzCFI corrupts the .eh_frame of a real binary: loading and evaluating
// its rows must fail cleanly, never panic.
func FuzzCFI(f *testing.F) {
	exe, err := os.ReadFile(filepath.Join("testdata", "leaf.bin"))
	if err != nil {
		f.Fatal(err)
	}
	ef, err := elf.NewFile(bytes.NewReader(exe))
	if err != nil {
		f.Fatal(err)
	}
	eh := ef.Section(".eh_frame")
	text := ef.Section(".text")
	if eh == nil || text == nil {
		f.Fatal("leaf.bin has no .eh_frame or .text")
	}
	f.Add(uint16(0), []byte{0})
	f.Add(uint16(0x20), []byte{0x0a, 0x0b, 0x0c, 0x41, 0x42})
	f.Add(uint16(0x40), []byte{0xff, 0xff, 0xff, 0xff})
	f.Fuzz(func(t *testing.T, at uint16, patch []byte) {
		img := bytes.Clone(exe)
		off := eh.Offset + uint64(at)%eh.Size
		copy(img[off:off+min(uint64(len(patch)), eh.Offset+eh.Size-off)], patch)
		tb, err := loadTable(bytes.NewReader(img))
		if err != nil {
			return
		}
		for pc := text.Addr; pc < text.Addr+text.Size; pc += 3 {
			tb.rowFor(pc)
		}
	})
}
