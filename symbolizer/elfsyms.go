package symbolizer

import (
	"bytes"
	"debug/elf"
	"debug/gosym"
	"errors"
	"fmt"
	"io"

	"github.com/ulikunitz/xz"

	"github.com/scorch-dev/scorch/internal/elfnote"
	"github.com/scorch-dev/scorch/internal/gopclntab"
	"github.com/scorch-dev/scorch/internal/mapped"
)

// maxSectionBytes bounds what one section may make us allocate; real symbol
// tables are far smaller, bogus section sizes in a hostile file are not.
const maxSectionBytes = 1 << 30

// maxMiniDebugInfo bounds the decompressed .gnu_debugdata (real ones are a
// few hundred KiB; an xz bomb is not).
const maxMiniDebugInfo = 64 << 20

// loadSeg is one PT_LOAD program header.
type loadSeg struct {
	off, vaddr, filesz, memsz uint64
	exec                      bool // PF_X
}

// execBias is the bias (ELF virtual address = pc - bias) of the mapping
// [start, end) at file offset off, from the first executable segment whose
// file bytes it maps; false when it maps none.
func execBias(segs []loadSeg, start, end, off uint64) (uint64, bool) {
	for _, s := range segs {
		if s.exec && max(s.off, off) < min(s.off+s.filesz, off+(end-start)) {
			return start - off + s.off - s.vaddr, true
		}
	}
	return 0, false
}

// openELF parses an ELF header defensively: debug/elf has had panics on
// corrupt input, and a profiler must survive any file it finds mapped.
func openELF(r io.ReaderAt) (f *elf.File, err error) {
	defer func() {
		if p := recover(); p != nil {
			f, err = nil, fmt.Errorf("corrupt elf: %v", p)
		}
	}()
	f, err = elf.NewFile(r)
	if err != nil {
		return nil, fmt.Errorf("parse elf: %w", err)
	}
	return f, nil
}

func sectionData(s *elf.Section) (data []byte, err error) {
	if s == nil || s.Type == elf.SHT_NOBITS {
		return nil, errors.New("no data")
	}
	if s.Size > maxSectionBytes {
		return nil, fmt.Errorf("section %s: size %d too large", s.Name, s.Size)
	}
	defer func() {
		if p := recover(); p != nil {
			data, err = nil, fmt.Errorf("section %s: corrupt: %v", s.Name, p)
		}
	}()
	data, err = s.Data()
	if err != nil {
		return nil, fmt.Errorf("section %s: %w", s.Name, err)
	}
	return data, nil
}

// buildID returns the hex GNU build ID of f, or "".
func buildID(f *elf.File) string { return elfnote.BuildID(f) }

func align4(n uint64) uint64 { return (n + 3) &^ 3 }

// debugLink returns the .gnu_debuglink file name and CRC.
func debugLink(f *elf.File) (string, uint32, bool) {
	data, err := sectionData(f.Section(".gnu_debuglink"))
	if err != nil {
		return "", 0, false
	}
	i := bytes.IndexByte(data, 0)
	if i <= 0 {
		return "", 0, false
	}
	crcOff := align4(uint64(i + 1))
	if crcOff+4 > uint64(len(data)) {
		return "", 0, false
	}
	name := string(data[:i])
	if bytes.ContainsAny(data[:i], "/\\") || name == "." || name == ".." {
		return "", 0, false
	}
	return name, f.ByteOrder.Uint32(data[crcOff:]), true
}

func loadSegments(f *elf.File) []loadSeg {
	var segs []loadSeg
	for _, p := range f.Progs {
		if p.Type == elf.PT_LOAD {
			segs = append(segs, loadSeg{off: p.Off, vaddr: p.Vaddr, filesz: p.Filesz, memsz: p.Memsz, exec: p.Flags&elf.PF_X != 0})
		}
	}
	return segs
}

// elfSymbols appends the defined function symbols of the symbol table
// section typ (SHT_SYMTAB or SHT_DYNSYM). Names alias the section data,
// newSymTable copies them.
func elfSymbols(f *elf.File, typ elf.SectionType, out []symbol) ([]symbol, error) {
	out, _, err := elfSymbolsIn(f, nil, typ, out, nil)
	return out, err
}

// elfSymbolsIn is elfSymbols reading the sections in place from mf (the
// mapped file f was parsed from, or nil), leaving out the symbols skip
// says (nil: none); found counts the function symbols seen, skipped ones
// too. Names alias the mapping: the caller keeps mf alive while it uses
// them.
func elfSymbolsIn(f *elf.File, mf *mapped.File, typ elf.SectionType, out []symbol, skip func(addr uint64) bool) (_ []symbol, found int, err error) {
	var sec *elf.Section
	for _, s := range f.Sections {
		if s.Type == typ {
			sec = s
			break
		}
	}
	if sec == nil {
		return out, 0, nil
	}
	if int(sec.Link) >= len(f.Sections) || sec.Link == 0 {
		return out, 0, fmt.Errorf("%s: bad string table link %d", sec.Name, sec.Link)
	}
	read := func(s *elf.Section) ([]byte, error) {
		if b, err := mf.Section(s); err == nil {
			return b, nil
		}
		return sectionData(s)
	}
	data, err := read(sec)
	if err != nil {
		return out, 0, err
	}
	strtab, err := read(f.Sections[sec.Link])
	if err != nil {
		return out, 0, err
	}
	bo := f.ByteOrder
	entSize := 24
	if f.Class == elf.ELFCLASS32 {
		entSize = 16
	}
	// Entry 0 is the undefined symbol.
	for off := entSize; off+entSize <= len(data); off += entSize {
		e := data[off : off+entSize]
		var nameOff uint32
		var info byte
		var shndx uint16
		var value, size uint64
		if entSize == 24 {
			nameOff, info, shndx = bo.Uint32(e), e[4], bo.Uint16(e[6:])
			value, size = bo.Uint64(e[8:]), bo.Uint64(e[16:])
		} else {
			nameOff = bo.Uint32(e)
			value, size = uint64(bo.Uint32(e[4:])), uint64(bo.Uint32(e[8:]))
			info, shndx = e[12], bo.Uint16(e[14:])
		}
		st := elf.SymType(info & 0xf)
		if shndx == uint16(elf.SHN_UNDEF) || value == 0 {
			continue
		}
		// Hand-written assembly labels its entry points without a type or
		// size (ld.so's _start and _dl_start_user): such a label in code
		// names the code up to the next symbol, unless it sits inside a
		// sized function (uniqueSymbols drops it then).
		label := st == elf.STT_NOTYPE && size == 0 && isCode(f, shndx)
		if st != elf.STT_FUNC && st != elf.STT_GNU_IFUNC && !label {
			continue
		}
		found++
		if skip != nil && skip(value) {
			continue
		}
		if uint64(nameOff) >= uint64(len(strtab)) {
			continue
		}
		name := strtab[nameOff:]
		end := bytes.IndexByte(name, 0)
		if end <= 0 || label && (name[0] == '$' || name[0] == '.') {
			continue // mapping symbols ($x, $d) and local labels (.L1)
		}
		// Versioned aliases (clock_nanosleep@GLIBC_2.2.5 in libc's debug
		// symbols) are named as users call them.
		if at := bytes.IndexByte(name[:end], '@'); at > 0 {
			end = at
		}
		var bind uint8
		switch elf.SymBind(info >> 4) {
		case elf.STB_GLOBAL:
			bind = 2
		case elf.STB_WEAK:
			bind = 1
		}
		out = append(out, symbol{addr: value, size: size, name: name[:end:end], bind: bind, label: label})
	}
	return out, found, nil
}

// isCode reports whether section index i holds instructions.
func isCode(f *elf.File, i uint16) bool {
	return int(i) < len(f.Sections) && f.Sections[i].Flags&elf.SHF_EXECINSTR != 0
}

// miniDebugInfo returns the ELF embedded xz-compressed in .gnu_debugdata.
func miniDebugInfo(f *elf.File) (*elf.File, error) {
	data, err := sectionData(f.Section(".gnu_debugdata"))
	if err != nil {
		return nil, err
	}
	zr, err := xz.NewReader(bytes.NewReader(data))
	if err != nil {
		return nil, fmt.Errorf("gnu_debugdata: %w", err)
	}
	raw, err := io.ReadAll(io.LimitReader(zr, maxMiniDebugInfo+1))
	if err != nil {
		return nil, fmt.Errorf("gnu_debugdata: %w", err)
	}
	if len(raw) > maxMiniDebugInfo {
		return nil, fmt.Errorf("gnu_debugdata: more than %d bytes uncompressed", maxMiniDebugInfo)
	}
	return openELF(bytes.NewReader(raw))
}

// goTable holds a Go binary's pclntab for function names and file:line.
// A Go 1.20+ pclntab is read in place (tab), from the mapped file when it
// could be mapped: its names are not copied into the symbol table and the
// section is not copied onto the heap. Older tables go through
// debug/gosym (table), which copies every function.
type goTable struct {
	tab     *gopclntab.Table
	table   *gosym.Table
	inline  *goInline    // nil when the binary has no usable inline trees
	mapping *mapped.File // what tab and inline point into, when mapped
	heap    int64        // bytes on the heap
	mapped  int64        // bytes of the mapping the tables read
}

// goFuncBytes is what debug/gosym keeps per function besides the pclntab
// (its Func and Sym, the name and the maps of names and files), measured by
// TestModuleBytesMatchHeap.
const goFuncBytes = 260

// goSymbols reads .gopclntab (present also in stripped Go binaries). A
// table read in place names functions itself (goTable.name); an older one
// appends one symbol per Go function. mf, when not nil, is the mapped
// file f was parsed from.
func goSymbols(f *elf.File, mf *mapped.File, out []symbol) (_ []symbol, gt *goTable, err error) {
	sec := f.Section(".gopclntab")
	if sec == nil {
		return out, nil, nil
	}
	var text uint64
	if t := f.Section(".text"); t != nil {
		text = t.Addr
	}
	data, merr := mf.Section(sec)
	inPlace := merr == nil
	if !inPlace {
		if data, err = sectionData(sec); err != nil {
			return out, nil, err
		}
	}
	if tab, err := gopclntab.Parse(data, f.ByteOrder, text); err == nil {
		gt = &goTable{tab: tab, heap: 512}
		if inPlace {
			gt.mapping, gt.mapped = mf, int64(len(data))
		} else {
			gt.heap += int64(len(data))
		}
		if gt.inline = newGoInline(f, mf, tab, sec.Addr); gt.inline != nil {
			if gt.inline.inPlace {
				gt.mapped += int64(len(gt.inline.gofunc))
			} else {
				gt.heap += int64(len(gt.inline.gofunc))
			}
		}
		return out, gt, nil
	}
	if inPlace {
		// debug/gosym keeps slices of the data: not of a mapping it does
		// not hold.
		if data, err = sectionData(sec); err != nil {
			return out, nil, err
		}
	}
	defer func() {
		if p := recover(); p != nil {
			gt, err = nil, fmt.Errorf("corrupt gopclntab: %v", p)
		}
	}()
	tab, err := gosym.NewTable(nil, gosym.NewLineTable(data, text))
	if err != nil {
		return out, nil, fmt.Errorf("gopclntab: %w", err)
	}
	for i := range tab.Funcs {
		fn := &tab.Funcs[i]
		if fn.End <= fn.Entry {
			continue
		}
		out = append(out, symbol{addr: fn.Entry, size: fn.End - fn.Entry, name: []byte(fn.Name), bind: 3})
	}
	gt = &goTable{table: tab, heap: int64(len(data)) + int64(len(tab.Funcs))*goFuncBytes}
	return out, gt, nil
}

// funcs is the number of functions a table read in place names.
func (gt *goTable) funcs() int {
	if gt == nil || gt.tab == nil {
		return 0
	}
	return gt.tab.NumFuncs()
}

// covers reports whether addr is in the text a table read in place names
// (the Go functions are contiguous: cgo and assembly outside Go's text
// keep their ELF symbols).
func (gt *goTable) covers(addr uint64) bool {
	return gt != nil && gt.tab != nil && gt.tab.Covers(addr)
}

// pltSymbols names the PLT stubs of an x86-64 ELF "func@plt", as perf and
// gdb do: otherwise an address in .plt takes the name of whatever symbol
// precedes the section (often _init). Entry k of .rela.plt is the stub at
// .plt.sec + 16k when the binary has IBT stubs, else at .plt + 16(k+1).
func pltSymbols(f *elf.File, out []symbol) []symbol {
	rela := f.Section(".rela.plt")
	if f.Machine != elf.EM_X86_64 || f.Class != elf.ELFCLASS64 || rela == nil {
		return out
	}
	var base uint64
	if sec := f.Section(".plt.sec"); sec != nil {
		base = sec.Addr
	} else if plt := f.Section(".plt"); plt != nil {
		base = plt.Addr + 16
	} else {
		return out
	}
	data, err := sectionData(rela)
	if err != nil {
		return out
	}
	// The names of the relocations' symbols, read from .dynsym as the
	// relocations name them: not every dynamic symbol decoded and copied
	// (debug/elf's DynamicSymbols took megabytes per library).
	var dynsym *elf.Section
	for _, sec := range f.Sections {
		if sec.Type == elf.SHT_DYNSYM {
			dynsym = sec
			break
		}
	}
	if dynsym == nil || dynsym.Link == 0 || int(dynsym.Link) >= len(f.Sections) {
		return out
	}
	syms, err := sectionData(dynsym)
	if err != nil {
		return out
	}
	strtab, err := sectionData(f.Sections[dynsym.Link])
	if err != nil {
		return out
	}
	const relaSize, stubSize, symSize = 24, 16, 24
	for k := 0; (k+1)*relaSize <= len(data) && k < 1<<16; k++ {
		info := f.ByteOrder.Uint64(data[k*relaSize+8:])
		idx := info >> 32
		if uint32(info) != uint32(elf.R_X86_64_JMP_SLOT) || idx == 0 || (idx+1)*symSize > uint64(len(syms)) {
			continue
		}
		nameOff := uint64(f.ByteOrder.Uint32(syms[idx*symSize:]))
		if nameOff >= uint64(len(strtab)) {
			continue
		}
		name := strtab[nameOff:]
		if end := bytes.IndexByte(name, 0); end >= 0 {
			name = name[:end]
		}
		if at := bytes.IndexByte(name, '@'); at > 0 {
			name = name[:at]
		}
		if len(name) == 0 {
			continue
		}
		out = append(out, symbol{addr: base + uint64(k)*stubSize, size: stubSize, name: append(name[:len(name):len(name)], "@plt"...)})
	}
	return out
}
