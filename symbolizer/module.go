package symbolizer

import (
	"debug/elf"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"os"
	"path"
	"path/filepath"
	"runtime"
	"runtime/debug"
	"slices"
	"sync"
	"sync/atomic"

	"github.com/scorch-dev/scorch/internal/mapped"
)

// module is what the cache holds per file: enough to map an address to an
// ELF address and a name. A module that failed to load is cached too
// (negative caching), with err set.
type module struct {
	buildID string
	loads   []loadSeg
	table   *symTable
	// dwarf (only with Options.Lines) is indexed by dwarfOnce at the
	// first symbolization of an address of the module, and reads its units
	// as addresses in them are symbolized; dwarfRead says it is there, for
	// bytes (the cache charges it).
	dwarfOnce sync.Once
	dwarfRead atomic.Bool
	dwarf     *moduleDWARF
	gotab     *goTable
	// mappings are the mapped files the table's names are read in (the
	// file's and its debug file's string tables).
	mappings []*mapped.File
	source   string // where the symbols came from, for logs and tests
	err      error
}

// bytes is what the cache charges for m: what it keeps on the heap and the
// bytes of its mapped file that its tables read (pages of the page cache
// that count in the process's resident set once touched).
func (m *module) bytes() int64 {
	return m.heapBytes() + m.mappedBytes()
}

func (m *module) heapBytes() int64 {
	n := int64(256 + len(m.loads)*32)
	n += m.table.bytes()
	if m.dwarfRead.Load() {
		n += m.dwarf.bytes()
	}
	if m.gotab != nil {
		n += m.gotab.heap
	}
	return n
}

func (m *module) mappedBytes() int64 {
	var n int64
	if m.dwarfRead.Load() {
		n += m.dwarf.mappedBytes()
	}
	if m.gotab != nil {
		n += m.gotab.mapped
	}
	return n
}

// elfAddr converts a file offset into an ELF virtual address through the
// PT_LOAD headers.
func (m *module) elfAddr(fileOff uint64) uint64 {
	for _, s := range m.loads {
		if fileOff >= s.off && fileOff-s.off < max(s.filesz, s.memsz) {
			return fileOff - s.off + s.vaddr
		}
	}
	return fileOff
}

// FileBuildID is the hex GNU build ID of the ELF file r, "" when it has
// none or is not ELF; it reads only the headers and notes.
func FileBuildID(r io.ReaderAt) string { return fileBuildIDOf(r) }

// fileBuildIDOf reads only the ELF headers and notes of r for its build ID.
func fileBuildIDOf(r io.ReaderAt) string {
	f, err := openELF(r)
	if err != nil {
		return ""
	}
	return buildID(f)
}

// debugLocator tells loadModule where the module lives, so that debug files
// next to it are found inside the process's root.
type debugLocator struct {
	open  func(path string) (*os.File, error) // opens a path in the target's root
	path  string                              // the module's path in the target's namespace
	label string
}

// loadModule parses the ELF in r and finds its best symbol source.
func (s *Symbolizer) loadModule(r io.ReaderAt, loc debugLocator) *module {
	s.loads.Add(1)
	m := &module{}
	f, err := openELF(r)
	if err != nil {
		m.err = err
		return m
	}
	m.buildID = buildID(f)
	m.loads = loadSegments(f)

	var syms []symbol
	var mf *mapped.File
	if osf, ok := r.(*os.File); ok {
		// A Go binary's pclntab, and the symbol tables, are read in place.
		if mf, err = mapped.Map(osf); err != nil {
			s.log.Debug("map", "module", loc.label, "err", err)
		}
	}
	// A file truncated under the mapping faults: a panic the cache's load
	// turns into this module's error.
	defer debug.SetPanicOnFault(debug.SetPanicOnFault(true))
	defer runtime.KeepAlive(mf) // the symbols' names alias it until packed
	syms, m.gotab, err = goSymbols(f, mf, syms)
	if err != nil {
		s.log.Debug("go symbols", "module", loc.label, "err", err)
	}
	nGo := len(syms)
	// The pclntab read in place names its functions: the ELF symbols of
	// the same functions are not kept a second time.
	var skip func(uint64) bool
	if m.gotab.funcs() > 0 {
		skip = m.gotab.covers
	}

	exact := true
	// The string tables read in place, where the table's names stay.
	srcs := mappedStrtabs(f, mf)
	if len(srcs) > 0 {
		m.mappings = append(m.mappings, mf)
	}
	syms, found, err := elfSymbolsIn(f, mf, elf.SHT_SYMTAB, syms, skip)
	if err != nil {
		s.log.Debug("symtab", "module", loc.label, "err", err)
	}
	m.source = "symtab"
	if found == 0 {
		if df, c, src := s.findDebugFile(f, m.buildID, loc); df != nil {
			var dmf *mapped.File
			if osf, ok := c.(*os.File); ok {
				dmf, _ = mapped.Map(osf)
			}
			syms, found, err = elfSymbolsIn(df, dmf, elf.SHT_SYMTAB, syms, skip)
			if err != nil {
				s.log.Debug("debug symtab", "module", loc.label, "err", err)
			}
			m.source = src
			c.Close()
			defer runtime.KeepAlive(dmf)
			if found > 0 {
				if tabs := mappedStrtabs(df, dmf); len(tabs) > 0 {
					srcs = append(srcs, tabs...)
					m.mappings = append(m.mappings, dmf)
				}
			}
		}
	}
	if found == 0 {
		if mini, err := miniDebugInfo(f); err == nil {
			syms, _, _ = elfSymbolsIn(mini, nil, elf.SHT_SYMTAB, syms, skip)
			m.source = "gnu_debugdata"
		}
		// MiniDebugInfo carries only what .dynsym lacks.
		n := len(syms)
		syms, _, err = elfSymbolsIn(f, mf, elf.SHT_DYNSYM, syms, skip)
		if err != nil {
			s.log.Debug("dynsym", "module", loc.label, "err", err)
		}
		if n == nGo {
			m.source = "dynsym"
			exact = false
		}
	}
	syms = pltSymbols(f, syms)
	if nGo > 0 || m.gotab.funcs() > 0 {
		m.source = "gopclntab+" + m.source
	}
	if skip != nil {
		syms = slices.DeleteFunc(syms, func(sym symbol) bool { return skip(sym.addr) })
	}
	if len(syms) == 0 && m.gotab.funcs() == 0 {
		m.err = errors.New("no symbols")
	}
	m.table = newSymTable(syms, exact, srcs...)
	if m.table.srcs != nil {
		m.table.owners = m.mappings
	}
	// The load read every symbol and name: only the pages lookups read
	// again stay resident.
	for _, mm := range m.mappings {
		mm.DropResident()
	}
	if m.gotab != nil && m.gotab.mapping != nil {
		m.gotab.mapping.DropResident()
	}
	s.log.Debug("loaded symbols", "module", loc.label, "source", m.source, "symbols", m.table.len()+m.gotab.funcs(), "build_id", m.buildID)
	return m
}

// mappedStrtabs are the string tables of f's symbol tables that mf (f's
// mapping) holds in place.
func mappedStrtabs(f *elf.File, mf *mapped.File) [][]byte {
	if mf == nil {
		return nil
	}
	var out [][]byte
	for _, s := range f.Sections {
		if s.Type != elf.SHT_SYMTAB && s.Type != elf.SHT_DYNSYM || s.Link == 0 || int(s.Link) >= len(f.Sections) {
			continue
		}
		if b, err := mf.Section(f.Sections[s.Link]); err == nil && len(b) > 0 {
			out = append(out, b)
		}
	}
	return out
}

// ensureDWARF indexes m's DWARF once, from the ELF file r (the module's
// file) or its debug file, when Options.Lines is set. It reports whether
// this call indexed it: the caller charges it to the cache entries holding
// m (and again as units are read, see moduleDWARF.takeGrown).
func (s *Symbolizer) ensureDWARF(m *module, r io.ReaderAt, loc debugLocator) (read bool) {
	if s.opts.Lines && m.gotab == nil {
		m.dwarfOnce.Do(func() {
			m.dwarf = s.loadDWARF(r, loc)
			m.dwarfRead.Store(true)
			read = m.dwarf != nil
		})
	}
	return read
}

// loadDWARF indexes the DWARF of the ELF file r or of its debug file. Go
// binaries have file:line in their pclntab instead.
func (s *Symbolizer) loadDWARF(r io.ReaderAt, loc debugLocator) *moduleDWARF {
	f, err := openELF(r)
	if err != nil || f.Section(".gopclntab") != nil {
		return nil
	}
	if f.Section(".debug_line") != nil {
		return s.readDWARF(f, r, loc)
	}
	df, c, _ := s.findDebugFile(f, buildID(f), loc)
	if df == nil {
		return nil
	}
	defer c.Close()
	return s.readDWARF(df, c, loc)
}

// readDWARF indexes f's DWARF, read in place from its file r when r is
// one that can be mapped.
func (s *Symbolizer) readDWARF(f *elf.File, r any, loc debugLocator) *moduleDWARF {
	if f.Section(".debug_line") == nil {
		s.log.Debug("line table", "module", loc.label, "err", "no .debug_line")
		return nil
	}
	var mf *mapped.File
	if osf, ok := r.(*os.File); ok {
		var err error
		if mf, err = mapped.Map(osf); err != nil {
			s.log.Debug("map", "module", loc.label, "err", err)
		}
	}
	// A fault on a truncated mapping is a panic the readers recover from.
	defer debug.SetPanicOnFault(debug.SetPanicOnFault(true))
	ds, full, heap, mappedN, err := openDWARFIn(f, mf, s.dcache, buildID(f))
	if err != nil {
		s.log.Debug("dwarf", "module", loc.label, "err", err)
		return nil
	}
	md, err := newModuleDWARF(ds, full, mf, heap, mappedN)
	if err != nil {
		s.log.Debug("dwarf", "module", loc.label, "err", err)
		return nil
	}
	// Indexing read the units' headers and line programs through: only the
	// pages of the units read later stay resident (libc's cached DWARF was
	// 8.3 of its 8.5 MiB resident for the capture's life).
	defer ds.cached.DropResident()
	defer mf.DropResident()
	if len(md.units) == 0 || !md.split() {
		return md
	}
	// Split DWARF: every unit with its .dwo, read at once.
	d, err := md.fullData()
	if err != nil {
		s.log.Debug("dwarf", "module", loc.label, "err", err)
		return nil
	}
	lt, err := readLineTable(d)
	if err != nil {
		s.log.Debug("line table", "module", loc.label, "err", err)
	}
	b := newInlineBuilder()
	err = b.add(d, nil)
	if err == nil {
		err = s.addSplitInlines(b, f, d, loc)
	}
	var it *inlineTable
	if err == nil {
		it, err = b.finish()
	}
	if err != nil {
		s.log.Debug("inlined calls", "module", loc.label, "err", err)
	}
	md.eager = &unitTables{lines: lt, inlines: it}
	md.heap.Add(md.eager.bytes())
	md.dropFull()
	return md
}

// findDebugFile looks for separate debuginfo: by build ID in the debug
// dirs, then .gnu_debuglink next to the file and under the debug dirs, then
// debuginfod. It returns the opened ELF (caller closes) and a label.
func (s *Symbolizer) findDebugFile(f *elf.File, id string, loc debugLocator) (*elf.File, io.Closer, string) {
	var osf *os.File
	try := func(open func() (*os.File, error), check func(*elf.File, *os.File) bool) *elf.File {
		var err error
		osf, err = open()
		if err != nil {
			return nil
		}
		df, err := openELF(osf)
		if err != nil || !check(df, osf) {
			osf.Close()
			return nil
		}
		return df
	}
	sameID := func(df *elf.File, _ *os.File) bool { return id == "" || buildID(df) == id }
	if len(id) > 2 {
		rel := filepath.Join(".build-id", id[:2], id[2:]+".debug")
		for _, d := range s.opts.DebugDirs {
			p := filepath.Join(d, rel)
			if df := try(func() (*os.File, error) { return os.Open(p) }, sameID); df != nil {
				return df, osf, "build-id"
			}
		}
		// The same directories inside the process's root (a container's
		// own debug packages).
		for _, d := range s.opts.DebugDirs {
			if loc.open == nil {
				break
			}
			if df := try(func() (*os.File, error) { return loc.open(path.Join(d, rel)) }, sameID); df != nil {
				return df, osf, "build-id"
			}
		}
	}
	if name, crc, ok := debugLink(f); ok && loc.path != "" {
		check := func(df *elf.File, osf *os.File) bool {
			if id != "" {
				if did := buildID(df); did != "" {
					return did == id
				}
			}
			h := crc32.NewIEEE()
			if _, err := io.Copy(h, io.NewSectionReader(osf, 0, 1<<40)); err != nil {
				return false
			}
			return h.Sum32() == crc
		}
		dir := path.Dir(loc.path)
		if loc.open != nil {
			for _, p := range []string{path.Join(dir, name), path.Join(dir, ".debug", name)} {
				if p == loc.path {
					continue
				}
				if df := try(func() (*os.File, error) { return loc.open(p) }, check); df != nil {
					return df, osf, "debuglink"
				}
			}
		}
		for _, d := range s.opts.DebugDirs {
			p := filepath.Join(d, dir, name)
			if df := try(func() (*os.File, error) { return os.Open(p) }, check); df != nil {
				return df, osf, "debuglink"
			}
		}
	}
	if id != "" && s.dinfo != nil {
		if p, err := s.dinfo.fetch(id); err == nil {
			if df := try(func() (*os.File, error) { return os.Open(p) }, sameID); df != nil {
				return df, osf, "debuginfod"
			}
		} else {
			s.log.Debug("debuginfod", "build_id", id, "err", err)
		}
	}
	return nil, nil, ""
}

func fmtKey(dev, ino uint64, size int64, mtime int64) string {
	return fmt.Sprintf("%x:%x:%x:%x", dev, ino, size, mtime)
}
