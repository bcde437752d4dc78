package unwind

import (
	"bytes"
	"debug/elf"
	"os"
	"path/filepath"
	"testing"
)

// FuzzBuildCompact replaces the .eh_frame of a real binary with random
// bytes: building its table must not panic, and a table built is sorted,
// merged and names only rules it has.
func FuzzBuildCompact(f *testing.F) {
	bin, err := os.ReadFile(filepath.Join("testdata", "nofp.bin"))
	if err != nil {
		f.Fatal(err)
	}
	ef, err := elf.NewFile(bytes.NewReader(bin))
	if err != nil {
		f.Fatal(err)
	}
	eh := ef.Section(".eh_frame")
	if eh == nil {
		f.Fatal("nofp.bin has no .eh_frame")
	}
	orig := bin[eh.Offset : eh.Offset+eh.Size]
	f.Add(bytes.Clone(orig))
	f.Add(bytes.Repeat([]byte{0x40}, int(eh.Size)))
	f.Fuzz(func(t *testing.T, data []byte) {
		b := bytes.Clone(bin)
		copy(b[eh.Offset:eh.Offset+eh.Size], data)
		ct, err := BuildCompact(bytes.NewReader(b))
		if err != nil {
			return
		}
		for i, e := range ct.Entries {
			if int(e.Rule) >= len(ct.Rules) {
				t.Fatalf("entry %d names rule %d of %d", i, e.Rule, len(ct.Rules))
			}
			if i > 0 && (e.PC <= ct.Entries[i-1].PC || e.Rule == ct.Entries[i-1].Rule) {
				t.Fatalf("entries %d, %d not sorted or not merged: %+v %+v", i-1, i, ct.Entries[i-1], e)
			}
		}
		if n := len(ct.Entries); n > 0 && ct.Entries[n-1].Rule != 0 {
			t.Fatalf("last entry %+v does not end the table", ct.Entries[n-1])
		}
	})
}

// FuzzWalkCompact walks random stack bytes and registers with the leaf
// fixture's compact tables: the walk must stop cleanly within MaxDepth.
func FuzzWalkCompact(f *testing.F) {
	fx, r := loadFixture(f, "leaf")
	s := fx.Sample
	f.Add(s.Stack, uint32(0), uint32(s.Regs.BP-s.Regs.SP))
	f.Add(bytes.Repeat([]byte{0xff}, 64), uint32(0x1149), uint32(8))
	base := r.maps[0].Start
	span := r.maps[len(r.maps)-1].End - base
	finder := storeFinder{r, NewCompactStore(16 << 20)}
	f.Fuzz(func(t *testing.T, stack []byte, ipOff, bpOff uint32) {
		regs := Regs{IP: base + uint64(ipOff)%span, SP: s.Regs.SP, BP: s.Regs.SP + uint64(bpOff)}
		pcs, reason := WalkCompact(finder, regs, 0, stack)
		if len(pcs) == 0 || pcs[0] != regs.IP {
			t.Fatalf("PCs %x do not start with the IP %x", pcs, regs.IP)
		}
		if len(pcs) > MaxDepth || len(pcs) == MaxDepth && reason != ReasonDepth {
			t.Fatalf("%d frames (%q)", len(pcs), reason)
		}
	})
}

// FuzzBuildCompactGo patches the .gopclntab of a stripped Go binary (no
// CFI: every rule comes from it): building the table must not panic, and a
// table built is sorted and merged.
func FuzzBuildCompactGo(f *testing.F) {
	path := buildGoWith(f, filepath.Join("testdata", "goleaf.go"), nil, "-ldflags=-s -w")
	bin, err := os.ReadFile(path)
	if err != nil {
		f.Fatal(err)
	}
	ef, err := elf.NewFile(bytes.NewReader(bin))
	if err != nil {
		f.Fatal(err)
	}
	sec := ef.Section(".gopclntab")
	if sec == nil {
		f.Fatal("no .gopclntab")
	}
	f.Add(uint32(0), []byte{})
	f.Add(uint32(8), []byte{0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x7f})
	f.Add(uint32(sec.Size/2), []byte{0x81, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 1, 0x7f})
	f.Fuzz(func(t *testing.T, at uint32, patch []byte) {
		b := bytes.Clone(bin)
		tab := b[sec.Offset : sec.Offset+sec.Size]
		copy(tab[int(at)%len(tab):], patch)
		ct, err := BuildCompact(bytes.NewReader(b))
		if err != nil {
			return
		}
		for i, e := range ct.Entries {
			if int(e.Rule) >= len(ct.Rules) {
				t.Fatalf("entry %d names rule %d of %d", i, e.Rule, len(ct.Rules))
			}
			if i > 0 && (e.PC <= ct.Entries[i-1].PC || e.Rule == ct.Entries[i-1].Rule) {
				t.Fatalf("entries %d, %d not sorted or not merged: %+v %+v", i-1, i, ct.Entries[i-1], e)
			}
		}
	})
}
