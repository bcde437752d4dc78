package unwind

import (
	"bytes"
	"debug/elf"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"sync/atomic"

	dframe "github.com/go-delve/delve/pkg/dwarf/frame"
)

type rowKind uint8

const (
	rowUnsupported rowKind = iota
	rowCFASP               // CFA = sp + cfaOff
	rowCFABP               // CFA = fp + cfaOff: the function has set up its frame pointer
	rowPLT                 // the PLT's CFA expression; cfaOff is the threshold of pc&15
	// rowSignal is a signal trampoline (__restore_rt): the interrupted
	// context's rsp, rip and rbp are saved at rsp + cfaOff, raOff and bpOff.
	rowSignal
)

// row is the part of a CFI table row that unwinding the pc, the stack
// pointer and the frame pointer needs.
type row struct {
	kind        rowKind
	miss        bool // no CFI covers the address (a cached miss)
	raUndefined bool // outermost frame (_start, clone): nothing to return to
	raInLink    bool // the return address is still in the link register (arm64 x30)
	bpSaved     bool // the frame pointer is saved at CFA + bpOff; otherwise unchanged
	cfaOff      int32
	raOff       int32
	bpOff       int32
}

// rowSlots is the size of each table's cache of evaluated rows.
const rowSlots = 4096

// table is the CFI of one ELF file. The unwinder's tables are compact
// tables (ct), the ones the BPF walker reads: a binary search over 8-byte
// entries, a few MiB for the largest binaries, where delve's parsed FDEs,
// the section they point into and a Go binary's pclntab spans were tens
// of MiB of a whole-host capture's heap. loadTable's tables interpret the
// CFI with delve instead (the tests' oracle), with a cache of the rows
// evaluated so far: a direct-mapped array of immutable entries, read
// without locks; a colliding address replaces the entry.
type table struct {
	arch Arch // of the file: its registers and return-address rules
	ct   *CompactTable
	fdes dframe.FrameDescriptionEntries // sorted by begin
	gos  *goRules                       // a Go binary's pclntab rules, for pcs no FDE covers
	rows *[rowSlots]atomic.Pointer[rowEntry]
}

// rowOfRule is the row of a compact rule; false where no CFI covers the pc.
func rowOfRule(r Rule) (row, bool) {
	var rw row
	switch r.CFA {
	case CFANone:
		return row{}, false
	case CFASP:
		rw.kind = rowCFASP
	case CFAFP, CFAFPSwitch:
		// A stack switch's frame is on the other stack, which the stack
		// copy does not hold: the walk ends there.
		rw.kind = rowCFABP
	case CFAPLT:
		rw.kind = rowPLT
	case CFASignal:
		rw.kind = rowSignal
	default:
		return row{kind: rowUnsupported}, true
	}
	rw.cfaOff = r.CFAOffset
	switch r.RA {
	case RAAtCFA:
		rw.raOff = r.RAOffset
	case RAInLink:
		rw.raInLink = true
	case RAUndefined:
		rw.raUndefined = true
	}
	if r.FP == FPAtCFA {
		rw.bpSaved, rw.bpOff = true, r.FPOffset
	}
	return rw, true
}

type rowEntry struct {
	pc uint64
	rw row
}

// rowFor returns the CFI row at an ELF virtual address.
func (t *table) rowFor(pc uint64) (row, bool) {
	if t.ct != nil {
		return rowOfRule(t.ct.Lookup(pc))
	}
	slot := &t.rows[(pc*0x9e3779b97f4a7c15)>>52] // Fibonacci hashing to 12 bits
	if e := slot.Load(); e != nil && e.pc == pc {
		return e.rw, !e.rw.miss
	}
	rw, ok := t.evaluate(pc)
	if !ok {
		rw = row{miss: true}
	}
	slot.Store(&rowEntry{pc: pc, rw: rw})
	return rw, ok
}

// evaluate runs the CFI program up to pc. delve's interpreter panics on
// some malformed programs; a file is not trusted, so that is a miss.
func (t *table) evaluate(pc uint64) (rw row, ok bool) {
	defer func() {
		if recover() != nil {
			rw, ok = row{}, false
		}
	}()
	fde, err := t.fdes.FDEForPC(pc)
	if err != nil {
		return t.gos.row(pc)
	}
	fc, err := fde.EstablishFrame(pc)
	if err != nil {
		return row{}, false
	}
	rw = rowOf(t.arch, fc)
	var i int
	if t.gos.isTop(pc, &i) { // Go's outermost functions, which .debug_frame does not mark
		rw.raUndefined = true
	}
	return rw, true
}

// rowOf reduces a frame context to a row; rules other than the common ones
// make it rowUnsupported.
func rowOf(a Arch, fc *dframe.FrameContext) row {
	var rw row
	switch {
	case fc.CFA.Rule == dframe.RuleCFA && fc.CFA.Reg == a.SP:
		rw.kind, rw.cfaOff = rowCFASP, int32(fc.CFA.Offset)
	case fc.CFA.Rule == dframe.RuleCFA && fc.CFA.Reg == a.FP:
		rw.kind, rw.cfaOff = rowCFABP, int32(fc.CFA.Offset)
	case fc.CFA.Rule == dframe.RuleExpression && a.X86Exprs:
		if th, ok := pltThreshold(fc.CFA.Expression); ok {
			rw.kind, rw.cfaOff = rowPLT, int32(th)
		} else if off, ok := spOffset(fc.CFA.Expression, true); ok {
			return signalRow(a, fc, off)
		}
	}
	if fc.CFA.Offset != int64(int32(fc.CFA.Offset)) {
		rw.kind = rowUnsupported // no stack frame is 2 GiB
	}
	ra, ok := fc.Regs[fc.RetAddrReg]
	switch {
	case fc.RetAddrReg != a.RA:
		rw.kind = rowUnsupported
	case a.LinkReg && (!ok || ra.Rule == dframe.RuleSameVal):
		// Not saved yet (a leaf, a prologue): still in the link register.
		rw.raInLink = true
	case !ok:
		// x86-64 CIEs always give the return address; a missing rule is
		// the one the CIE set up, at CFA-8.
		rw.raOff = -8
	case ok && ra.Rule == dframe.RuleOffset && ra.Offset == int64(int32(ra.Offset)):
		rw.raOff = int32(ra.Offset)
	case ok && ra.Rule == dframe.RuleUndefined:
		rw.raUndefined = true
	default:
		rw.kind = rowUnsupported
	}
	if bp, ok := fc.Regs[a.FP]; ok {
		switch bp.Rule {
		case dframe.RuleOffset:
			if bp.Offset != int64(int32(bp.Offset)) {
				rw.kind = rowUnsupported
			}
			rw.bpSaved, rw.bpOff = true, int32(bp.Offset)
		case dframe.RuleUndefined, dframe.RuleSameVal:
		default:
			rw.kind = rowUnsupported
		}
	}
	return rw
}

// signalRow reads the rules of a signal trampoline, where every register of
// the interrupted context is saved at an offset from rsp.
func signalRow(a Arch, fc *dframe.FrameContext, spOff int32) row {
	rw := row{kind: rowSignal, cfaOff: spOff}
	ra, ok := fc.Regs[fc.RetAddrReg]
	if !ok || ra.Rule != dframe.RuleExpression {
		return row{}
	}
	if rw.raOff, ok = spOffset(ra.Expression, false); !ok {
		return row{}
	}
	if bp, ok := fc.Regs[a.FP]; ok && bp.Rule == dframe.RuleExpression {
		if rw.bpOff, ok = spOffset(bp.Expression, false); ok {
			rw.bpSaved = true
		}
	}
	return rw
}

// spOffset recognizes the expression "rsp + N" (with deref: "*(rsp + N)"),
// as signal trampolines describe the saved context, and returns N.
func spOffset(expr []byte, deref bool) (int32, bool) {
	const (
		opBreg7 = 0x77
		opDeref = 0x06
	)
	if len(expr) < 2 || expr[0] != opBreg7 {
		return 0, false
	}
	var v int64
	var shift uint
	i, done := 1, false
	for ; i < len(expr) && i < 6 && !done; i++ { // SLEB128, at most 5 bytes
		b := expr[i]
		v |= int64(b&0x7f) << shift
		shift += 7
		if b&0x80 == 0 {
			done = true
			if b&0x40 != 0 {
				v |= -1 << shift // sign-extend
			}
		}
	}
	if !done {
		return 0, false
	}
	rest := expr[i:]
	switch {
	case deref && len(rest) == 1 && rest[0] == opDeref, !deref && len(rest) == 0:
	default:
		return 0, false
	}
	if v != int64(int32(v)) || v < 0 {
		return 0, false
	}
	return int32(v), true
}

// pltThreshold recognizes the CFA expression of x86-64 PLT entries,
// "rsp + 8 + ((rip & 15) >= N) << 3", and returns N.
func pltThreshold(expr []byte) (int64, bool) {
	const (
		opBreg7  = 0x77
		opBreg16 = 0x80
		opLit0   = 0x30
		opAnd    = 0x1a
		opGe     = 0x2a
		opShl    = 0x24
		opPlus   = 0x22
	)
	want := []byte{opBreg7, 8, opBreg16, 0, opLit0 + 15, opAnd, 0, opGe, opLit0 + 3, opShl, opPlus}
	if len(expr) != len(want) {
		return 0, false
	}
	for i, b := range want {
		if i == 6 {
			if b := expr[i]; b < opLit0 || b > opLit0+15 {
				return 0, false
			}
			continue
		}
		if expr[i] != b {
			return 0, false
		}
	}
	return int64(expr[6] - opLit0), true
}

// loadTable parses the CFI of an ELF file: .eh_frame, and .debug_frame
// where there is one (binaries built with -fno-asynchronous-unwind-tables
// keep only the C runtime's entries in .eh_frame).
func loadTable(ra io.ReaderAt) (t *table, err error) {
	// debug/elf and delve's parser have panicked on corrupt input, and a
	// profiler must survive any file it finds mapped.
	defer func() {
		if r := recover(); r != nil {
			t, err = nil, fmt.Errorf("parsing CFI: %v", r)
		}
	}()
	f, err := elf.NewFile(ra)
	if err != nil {
		return nil, fmt.Errorf("reading elf: %w", err)
	}
	arch, err := archFor(f.Machine)
	if err != nil {
		return nil, err
	}
	fdes, err := readFDEs(f)
	gos, _ := readGoRules(f, arch)
	if err != nil && (gos == nil || len(gos.spans) == 0) {
		return nil, err
	}
	if gos != nil && len(gos.spans) == 0 {
		gos = nil
	}
	if arch.PAC {
		// delve's interpreter stops at the opcode; where the return
		// address is does not change, and RAMask strips the signature.
		cies := map[*dframe.CommonInformationEntry]bool{}
		for _, fde := range fdes {
			fde.Instructions = withoutNegateRAState(fde.Instructions)
			if c := fde.CIE; c != nil && !cies[c] {
				cies[c] = true
				c.InitialInstructions = withoutNegateRAState(c.InitialInstructions)
			}
		}
	}
	return &table{arch: arch, fdes: fdes, gos: gos, rows: new([rowSlots]atomic.Pointer[rowEntry])}, nil
}

// withoutNegateRAState returns a CFI program with its
// DW_CFA_AARCH64_negate_ra_state opcodes (0x2d) made DW_CFA_nop; prog is
// not modified. It stops at the first opcode it does not know, leaving the
// rest to the interpreter.
func withoutNegateRAState(prog []byte) []byte {
	if !bytes.Contains(prog, []byte{0x2d}) {
		return prog
	}
	out := bytes.Clone(prog)
	i := 0
	leb := func() {
		for i < len(out) && out[i]&0x80 != 0 {
			i++
		}
		i++
	}
	block := func() {
		n, w := uint64(0), uint(0)
		for i < len(out) {
			b := out[i]
			i++
			n |= uint64(b&0x7f) << w
			w += 7
			if b&0x80 == 0 || w > 63 {
				break
			}
		}
		if n > uint64(len(out)-min(i, len(out))) {
			i = len(out)
			return
		}
		i += int(n)
	}
	for i < len(out) {
		op := out[i]
		i++
		switch op & 0xc0 {
		case 0x40, 0xc0: // advance_loc, restore: the operand is in the opcode
			continue
		case 0x80: // offset
			leb()
			continue
		}
		switch op {
		case 0x00, 0x0a, 0x0b: // nop, remember_state, restore_state
		case 0x2d:
			out[i-1] = 0x00
		case 0x02:
			i++
		case 0x03:
			i += 2
		case 0x04:
			i += 4
		case 0x06, 0x07, 0x08, 0x0d, 0x0e, 0x13, 0x2e: // one LEB128 operand
			leb()
		case 0x05, 0x09, 0x0c, 0x11, 0x12, 0x14, 0x15, 0x2f: // two
			leb()
			leb()
		case 0x0f: // def_cfa_expression
			block()
		case 0x10, 0x16: // expression, val_expression
			leb()
			block()
		default: // set_loc (its size depends on the CIE), unknown opcodes
			return out
		}
	}
	return out
}

// readFDEs parses the FDEs of .eh_frame and .debug_frame, sorted by address
// without duplicates. Both x86-64 and arm64 are little-endian with 8-byte
// pointers.
func readFDEs(f *elf.File) (dframe.FrameDescriptionEntries, error) {
	var fdes dframe.FrameDescriptionEntries
	for _, name := range []string{".eh_frame", ".debug_frame"} {
		s := f.Section(name)
		if s == nil || s.Type == elf.SHT_NOBITS || s.Size == 0 {
			continue
		}
		data, err := s.Data()
		if err != nil {
			return nil, fmt.Errorf("reading %s: %w", name, err)
		}
		ehAddr := uint64(0) // .debug_frame
		if name == ".eh_frame" {
			if s.Addr == 0 {
				continue // not loaded: pointers relative to it mean nothing
			}
			ehAddr = s.Addr
		}
		more, err := dframe.Parse(data, binary.LittleEndian, 0, 8, ehAddr)
		if err != nil {
			if len(fdes) > 0 {
				continue // a broken .debug_frame does not spoil .eh_frame
			}
			return nil, fmt.Errorf("parsing %s: %w", name, err)
		}
		// Append sorts by address (FDEForPC searches) and drops duplicates.
		fdes = fdes.Append(more)
	}
	if len(fdes) == 0 {
		return nil, errNoCFI
	}
	return fdes, nil
}

var errNoCFI = errors.New("no .eh_frame or .debug_frame")

// tableCache is the unwinder's access to the tables of its store: it
// keeps none of its own.
type tableCache struct {
	log   *slog.Logger
	store *CompactStore // where the compact tables are built and kept, shared
}

func newTableCache(log *slog.Logger, store *CompactStore) *tableCache {
	return &tableCache{log: log, store: store}
}

// get returns the table of a file, or nil when it cannot be had. Without
// open, only a table already built is returned.
func (c *tableCache) get(key string, open func() (io.ReaderAt, io.Closer, error)) *table {
	if open == nil {
		if t, ok := c.store.c.Peek(key); ok && t != nil {
			return &t.wt
		}
		return nil
	}
	t, hit, err := c.store.get(key, c.store.opened(key, open))
	if err != nil {
		if !hit {
			c.log.Debug("no CFI", "key", key, "err", err)
		}
		return nil
	}
	return &t.wt
}
