package unwind

import (
	"encoding/binary"
	"errors"
	"fmt"
	"math"

	dframe "github.com/go-delve/delve/pkg/dwarf/frame"
)

// JITCode is one piece of JIT code with the .eh_frame its JIT gave for it
// (a jitdump's unwinding record): the code at [Addr, Addr+Size), the
// eh_frame laid out at EhAddr (its pc-relative pointers count from there).
type JITCode struct {
	Addr, Size uint64
	EhFrame    []byte
	EhAddr     uint64
}

// BuildCompactJIT compiles the eh_frames of JIT code into one compact
// table, with the same builder and CFI interpreter as BuildCompact. Its
// Base is the lowest code address: Entries count from there, and a pc's
// offset in it is pc - Base (the addresses are the process's own). An FDE
// outside its code's range is left out (a JIT's record describes only that
// code); pcs without an FDE get rule 0 (frame pointers). Malformed CFI is
// an error only when no code has usable CFI.
func BuildCompactJIT(arch Arch, code []JITCode) (t *CompactTable, err error) {
	defer func() {
		if r := recover(); r != nil {
			t, err = nil, fmt.Errorf("parsing JIT CFI: %v", r)
		}
	}()
	var fdes dframe.FrameDescriptionEntries
	var errs []error
	for _, c := range code {
		if len(c.EhFrame) == 0 || c.Size == 0 || c.Addr+c.Size < c.Addr {
			continue
		}
		more, err := dframe.Parse(c.EhFrame, binary.LittleEndian, 0, 8, c.EhAddr)
		if err != nil {
			errs = append(errs, fmt.Errorf("eh_frame of JIT code at %#x: %w", c.Addr, err))
			continue
		}
		var in dframe.FrameDescriptionEntries
		for _, fde := range more {
			if fde.Begin() >= c.Addr && fde.End() <= c.Addr+c.Size && fde.End() > fde.Begin() {
				in = append(in, fde)
			}
		}
		// Append sorts by address and drops duplicates.
		fdes = fdes.Append(in)
	}
	if len(fdes) == 0 {
		if len(errs) > 0 {
			return nil, errors.Join(errs...)
		}
		return nil, errNoCFI
	}
	base := uint64(math.MaxUint64)
	for _, fde := range fdes {
		base = min(base, fde.Begin())
	}
	b := &builder{arch: arch, base: base, end: base, ids: map[Rule]uint32{{}: 0}, rules: []Rule{{}}}
	for _, fde := range fdes {
		if err := b.addFDE(fde); err != nil {
			return nil, err
		}
	}
	if err := b.add(b.end, Rule{}); err != nil {
		return nil, err
	}
	t = &CompactTable{Key: "", Arch: arch, Base: base, Entries: b.entries, Rules: b.rules}
	for _, e := range t.Entries {
		if t.Rules[e.Rule].CFA == CFAUnsupported {
			t.Unsupported++
		}
	}
	return t, nil
}
