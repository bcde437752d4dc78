// Package gopclntab reads the parts of a Go 1.20+ pclntab (64-bit) that
// debug/gosym does not expose: the function records with their pc-value
// tables (frame sizes, inline trees) and flags. The symbolizer reads inline
// trees through it, the unwinder frame sizes. The pclntab comes from the
// file being profiled, so every offset is checked and nothing panics.
package gopclntab

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
)

// Magic is the first word of a Go 1.20+ pclntab (the layout of Go 1.26
// too).
const Magic = 0xfffffff1

// Function flags (runtime/internal/abi FuncFlag).
const (
	FlagTopFrame = 1 << 0 // the outermost frame of a stack (goexit, mstart, rt0_go)
	FlagSPWrite  = 1 << 1 // writes SP other than by the frame adjustments pcsp records
	FlagAsm      = 1 << 2 // written in assembly
)

// funcSize is the size of a _func record before its pcdata offsets.
const funcSize = 44

// Table is a parsed pclntab header.
type Table struct {
	bo        binary.ByteOrder
	Quantum   uint64 // pc granularity of the pc-value tables (1 on x86-64, 4 on arm64)
	TextStart uint64 // base of the function entry offsets
	nfunc     int
	funcnames []byte
	cutab     []byte // per compilation unit, offsets into filetab
	filetab   []byte
	pctab     []byte
	functab   []byte // ftab (nfunc+1 pairs of uint32) then the _func records
}

// Parse reads the header of a pclntab. text is the start of .text, used
// where the header does not say it (Go 1.26+ leaves textStart 0).
func Parse(data []byte, bo binary.ByteOrder, text uint64) (*Table, error) {
	if len(data) < 8+8*8 {
		return nil, fmt.Errorf("pclntab of %d bytes: shorter than its header", len(data))
	}
	if m := bo.Uint32(data); m != Magic {
		return nil, fmt.Errorf("pclntab magic %#x: only Go 1.20+ (%#x) is read", m, uint32(Magic))
	}
	if data[7] != 8 {
		return nil, fmt.Errorf("pclntab pointer size %d: only 64-bit binaries are read", data[7])
	}
	word := func(i int) uint64 { return bo.Uint64(data[8+8*i:]) }
	t := &Table{bo: bo, Quantum: uint64(data[6]), TextStart: word(2)}
	if t.TextStart == 0 {
		t.TextStart = text
	}
	slice := func(off uint64) []byte {
		if off >= uint64(len(data)) {
			return nil
		}
		return data[off:]
	}
	t.funcnames, t.pctab, t.functab = slice(word(3)), slice(word(6)), slice(word(7))
	t.cutab, t.filetab = slice(word(4)), slice(word(5))
	n := word(0)
	switch {
	case t.funcnames == nil || t.pctab == nil || t.functab == nil:
		return nil, errors.New("pclntab: a table offset is past its end")
	case n == 0 || n+1 > uint64(len(t.functab))/8:
		return nil, fmt.Errorf("pclntab: %d functions do not fit in its function table", n)
	case t.Quantum == 0:
		return nil, errors.New("pclntab: pc quantum 0")
	}
	t.nfunc = int(n)
	return t, nil
}

// Func is one function record.
type Func struct {
	Entry, End uint64 // [Entry, End): End is the next function's entry
	NameOff    uint32 // into the function name table (Table.Name)
	PCSP       uint32 // pc-value table of the frame size; 0: none
	PCFile     uint32 // pc-value table of the file index (in the unit's files)
	PCLine     uint32 // pc-value table of the line
	CUOffset   uint32 // the function's compilation unit, into the cu table
	FuncID     uint8
	Flag       uint8
	bo         binary.ByteOrder
	rec        []byte // the record, from its start to the end of the table
	npcdata    uint32
	nfuncdata  uint32
}

// NumFuncs is the number of functions.
func (t *Table) NumFuncs() int { return t.nfunc }

// Func returns function i (0 ≤ i < NumFuncs), in entry order.
func (t *Table) Func(i int) (Func, bool) {
	if i < 0 || i >= t.nfunc {
		return Func{}, false
	}
	bo := t.bo
	entry, next := uint64(bo.Uint32(t.functab[8*i:])), uint64(bo.Uint32(t.functab[8*i+8:]))
	off := uint64(bo.Uint32(t.functab[8*i+4:]))
	if off+funcSize > uint64(len(t.functab)) {
		return Func{}, false
	}
	rec := t.functab[off:]
	f := Func{
		Entry: t.TextStart + uint64(bo.Uint32(rec)), End: t.TextStart + next,
		NameOff: bo.Uint32(rec[4:]), PCSP: bo.Uint32(rec[16:]),
		PCFile: bo.Uint32(rec[20:]), PCLine: bo.Uint32(rec[24:]), CUOffset: bo.Uint32(rec[32:]),
		npcdata: bo.Uint32(rec[28:]), FuncID: rec[40], Flag: rec[41], nfuncdata: uint32(rec[43]),
		bo: bo, rec: rec,
	}
	// The record's entry is the ftab's; a table where they differ is not
	// one to trust.
	if uint64(bo.Uint32(rec)) != entry || f.End < f.Entry {
		return Func{}, false
	}
	if uint64(funcSize)+4*(uint64(f.npcdata)+uint64(f.nfuncdata)) > uint64(len(rec)) {
		f.npcdata, f.nfuncdata = 0, 0
	}
	return f, true
}

// FuncAt returns the function containing pc.
func (t *Table) FuncAt(pc uint64) (Func, bool) {
	if pc < t.TextStart {
		return Func{}, false
	}
	rel := pc - t.TextStart
	lo, hi := 0, t.nfunc
	for hi-lo > 1 {
		mid := (lo + hi) / 2
		if uint64(t.bo.Uint32(t.functab[8*mid:])) <= rel {
			lo = mid
		} else {
			hi = mid
		}
	}
	f, ok := t.Func(lo)
	if !ok || pc < f.Entry || pc >= f.End {
		return Func{}, false
	}
	return f, true
}

// Covers reports whether pc is in [the first function's entry, the end of
// the last function), from the function table alone: no function record
// is read (the symbolizer filters a binary's ELF symbols with it without
// paging in every record of a mapped table).
func (t *Table) Covers(pc uint64) bool {
	if pc < t.TextStart {
		return false
	}
	rel := pc - t.TextStart
	first, end := uint64(t.bo.Uint32(t.functab)), uint64(t.bo.Uint32(t.functab[8*t.nfunc:]))
	return rel >= first && rel < end
}

// PCData returns the offset of the function's pc-value table i; 0: none.
func (f Func) PCData(i int) uint32 {
	if i < 0 || uint32(i) >= f.npcdata {
		return 0
	}
	return f.bo.Uint32(f.rec[funcSize+4*i:])
}

// FuncData returns the function's funcdata offset i (relative to the
// binary's go:func.* data); ok false when absent.
func (f Func) FuncData(i int) (uint32, bool) {
	if i < 0 || uint32(i) >= f.nfuncdata {
		return 0, false
	}
	v := f.bo.Uint32(f.rec[funcSize+4*f.npcdata+4*uint32(i):])
	return v, v != 1<<32-1
}

// Name returns the function name at off in the name table.
func (t *Table) Name(off uint32) string {
	if uint64(off) >= uint64(len(t.funcnames)) {
		return ""
	}
	b := t.funcnames[off:]
	if i := bytes.IndexByte(b, 0); i >= 0 {
		b = b[:i]
	}
	return string(b)
}

// Line returns the file and line of pc in f, as debug/gosym's PCToLine
// does: line -1 when the line table has no value at pc, file "" when the
// file table has none.
func (t *Table) Line(f Func, pc uint64) (file string, line int) {
	line = -1
	if v, ok := t.Value(f.PCLine, f.Entry, pc); ok {
		line = int(v)
	}
	fno, ok := t.Value(f.PCFile, f.Entry, pc)
	if !ok || fno < 0 {
		return "", line
	}
	i := (uint64(f.CUOffset) + uint64(fno)) * 4
	if i+4 > uint64(len(t.cutab)) {
		return "", line
	}
	off := t.bo.Uint32(t.cutab[i:])
	if off == 1<<32-1 || uint64(off) >= uint64(len(t.filetab)) {
		return "", line
	}
	b := t.filetab[off:]
	if i := bytes.IndexByte(b, 0); i >= 0 {
		b = b[:i]
	}
	return string(b), line
}

// Value returns the value of the pc-value table at off for pc in the
// function starting at entry; ok false when the table has no value there.
func (t *Table) Value(off uint32, entry, pc uint64) (v int64, ok bool) {
	t.Values(off, entry, func(lo, hi uint64, val int64) bool {
		if pc < lo {
			return false
		}
		if pc < hi {
			v, ok = val, true
			return false
		}
		return true
	})
	return v, ok
}

// Values calls yield for each run of the pc-value table at off, a function
// starting at entry: the value val over [lo, hi), in pc order, until
// yield returns false or the table ends. The encoding: pairs of a
// zig-zag varint value delta (from -1) and a varint pc delta in quantum
// units; a value delta of 0 after the first pair ends the table.
func (t *Table) Values(off uint32, entry uint64, yield func(lo, hi uint64, val int64) bool) {
	if off == 0 || uint64(off) >= uint64(len(t.pctab)) {
		return
	}
	p := t.pctab[off:]
	val, pc := int64(-1), entry
	for first := true; ; first = false {
		uv, n := binary.Uvarint(p)
		if n <= 0 || uv == 0 && !first {
			return
		}
		p = p[n:]
		if uv&1 != 0 {
			val += int64(^(uv >> 1))
		} else {
			val += int64(uv >> 1)
		}
		pcd, n := binary.Uvarint(p)
		if n <= 0 || pcd > 1<<32 {
			return
		}
		p = p[n:]
		next := pc + pcd*t.Quantum
		if next < pc {
			return
		}
		if !yield(pc, next, val) {
			return
		}
		pc = next
	}
}
