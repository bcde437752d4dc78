package symbolizer

import (
	"os"
	"testing"
)

// execBias takes the bias from the executable segment a mapping maps, also
// when the segment's file offset is not page aligned (the mapping starts at
// the page below it), and reports mappings of no executable segment.
func TestExecBias(t *testing.T) {
	segs := []loadSeg{
		{off: 0, vaddr: 0, filesz: 0x5a0},                        // headers, read-only
		{off: 0x1000, vaddr: 0x1000, filesz: 0x2345, exec: true}, // .text, aligned
		{off: 0x3f10, vaddr: 0x4f10, filesz: 0x200},              // data
	}
	unaligned := []loadSeg{
		{off: 0, vaddr: 0, filesz: 0x7a0},
		{off: 0x7a0, vaddr: 0x17a0, filesz: 0x3000, exec: true}, // .text 0x7a0 into its page
	}
	for _, tc := range []struct {
		name            string
		segs            []loadSeg
		start, end, off uint64
		want            uint64
		ok              bool
	}{
		{"aligned", segs, 0x7f0000001000, 0x7f0000004000, 0x1000, 0x7f0000000000, true},
		{"unaligned", unaligned, 0x7f0000001000, 0x7f0000005000, 0, 0x7f0000001000 - 0x1000, true},
		{"not executable", segs, 0x7f0000005000, 0x7f0000006000, 0x4000, 0, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, ok := execBias(tc.segs, tc.start, tc.end, tc.off)
			if ok != tc.ok || got != tc.want {
				t.Fatalf("execBias = %#x, %v; want %#x, %v", got, ok, tc.want, tc.ok)
			}
			if ok {
				// A pc in the segment maps to its ELF address.
				pc := tc.start + 0x800
				fileOff := pc - tc.start + tc.off
				for _, s := range tc.segs {
					if s.exec && fileOff >= s.off && fileOff < s.off+s.filesz && pc-got != fileOff-s.off+s.vaddr {
						t.Fatalf("pc %#x: ELF address %#x, want %#x", pc, pc-got, fileOff-s.off+s.vaddr)
					}
				}
			}
		})
	}
}

// The test binary's own executable mapping: its bias takes a pc to the
// ELF address of the same code (the one a return address has in the file).
func TestExecMappingsBias(t *testing.T) {
	s := New(Options{})
	defer s.Close()
	p, err := s.Snapshot(os.Getpid())
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	exe, _ := os.Executable()
	n := 0
	for _, m := range p.ExecMappings() {
		if m.Path != exe {
			continue
		}
		n++
		if !m.BiasOK {
			t.Fatalf("%s %#x-%#x: no bias", m.Path, m.Start, m.End)
		}
		_, bias, _, ok := p.ModuleFor(m.Start + (m.End-m.Start)/2)
		if !ok || bias != m.Bias {
			t.Fatalf("%s %#x-%#x: bias %#x, ModuleFor's %#x (%v)", m.Path, m.Start, m.End, m.Bias, bias, ok)
		}
	}
	if n == 0 {
		t.Fatalf("no executable mapping of %s", exe)
	}
}
