package unwind

import (
	"errors"
	"fmt"
	"math"
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
	x := &cfiIndex{}
	var errs []error
	for _, c := range code {
		if len(c.EhFrame) == 0 || c.Size == 0 || c.Addr+c.Size < c.Addr {
			continue
		}
		n := len(x.fdes)
		// An eh_frame at address 0 would be read as .debug_frame, as
		// delve's parser did.
		if err := x.scan(c.EhFrame, c.EhAddr != 0, c.EhAddr); err != nil {
			errs = append(errs, fmt.Errorf("eh_frame of JIT code at %#x: %w", c.Addr, err))
			continue
		}
		in := x.fdes[:n]
		for _, fde := range x.fdes[n:] {
			if fde.begin >= c.Addr && fde.end <= c.Addr+c.Size && fde.end > fde.begin {
				in = append(in, fde)
			}
		}
		x.fdes = in
	}
	if len(x.fdes) == 0 {
		if len(errs) > 0 {
			return nil, errors.Join(errs...)
		}
		return nil, errNoCFI
	}
	x.sortFDEs()
	base := uint64(math.MaxUint64)
	for _, fde := range x.fdes {
		base = min(base, fde.begin)
	}
	b := &builder{arch: arch, base: base, end: base, ids: map[Rule]uint32{{}: 0}, rules: []Rule{{}}}
	for i := range x.fdes {
		fde := &x.fdes[i]
		if err := b.addFDE(fde.begin, fde.end, &x.cies[fde.cie], x.instructions(fde)); err != nil {
			return nil, err
		}
	}
	if err := b.add(b.end, Rule{}); err != nil {
		return nil, err
	}
	t = &CompactTable{Key: "", Arch: arch, Base: base, Entries: b.entries.slice(), Rules: b.rules}
	for _, e := range t.Entries {
		if t.Rules[e.Rule].CFA == CFAUnsupported {
			t.Unsupported++
		}
	}
	return t, nil
}
