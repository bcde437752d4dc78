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
	"sync"
	"sync/atomic"
)

// module is what the cache holds per file: enough to map an address to an
// ELF address and a name. A module that failed to load is cached too
// (negative caching), with err set.
type module struct {
	buildID string
	loads   []loadSeg
	table   *symTable
	// lines and inlines (only with Options.Lines) are read by dwarfOnce at
	// the first symbolization of an address of the module; dwarfRead says
	// they are there, for bytes (the cache charges them once read).
	dwarfOnce sync.Once
	dwarfRead atomic.Bool
	lines     *lineTable
	inlines   *inlineTable
	gotab     *goTable
	source    string // where the symbols came from, for logs and tests
	err       error
}

func (m *module) bytes() int64 {
	n := int64(256 + len(m.loads)*32)
	n += m.table.bytes()
	if m.dwarfRead.Load() {
		n += m.lines.bytes() + m.inlines.bytes()
	}
	if m.gotab != nil {
		n += m.gotab.bytes
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
	syms, m.gotab, err = goSymbols(f, syms)
	if err != nil {
		s.log.Debug("go symbols", "module", loc.label, "err", err)
	}
	nGo := len(syms)

	exact := true
	syms, err = elfSymbols(f, elf.SHT_SYMTAB, syms)
	if err != nil {
		s.log.Debug("symtab", "module", loc.label, "err", err)
	}
	m.source = "symtab"
	if len(syms) == nGo {
		if df, c, src := s.findDebugFile(f, m.buildID, loc); df != nil {
			syms, err = elfSymbols(df, elf.SHT_SYMTAB, syms)
			if err != nil {
				s.log.Debug("debug symtab", "module", loc.label, "err", err)
			}
			m.source = src
			c.Close()
		}
	}
	if len(syms) == nGo {
		if mini, err := miniDebugInfo(f); err == nil {
			syms, _ = elfSymbols(mini, elf.SHT_SYMTAB, syms)
			m.source = "gnu_debugdata"
		}
		// MiniDebugInfo carries only what .dynsym lacks.
		n := len(syms)
		syms, err = elfSymbols(f, elf.SHT_DYNSYM, syms)
		if err != nil {
			s.log.Debug("dynsym", "module", loc.label, "err", err)
		}
		if n == nGo {
			m.source = "dynsym"
			exact = false
		}
	}
	syms = pltSymbols(f, syms)
	if nGo > 0 {
		m.source = "gopclntab+" + m.source
	}
	if len(syms) == 0 {
		m.err = errors.New("no symbols")
	}
	m.table = newSymTable(syms, exact)
	s.log.Debug("loaded symbols", "module", loc.label, "source", m.source, "symbols", m.table.len(), "build_id", m.buildID)
	return m
}

// ensureDWARF reads m's line table and inlined calls once, from the ELF
// file r (the module's file) or its debug file, when Options.Lines is set.
// It reports whether this call read them: the caller charges them to the
// cache entries holding m.
func (s *Symbolizer) ensureDWARF(m *module, r io.ReaderAt, loc debugLocator) (read bool) {
	if s.opts.Lines && m.gotab == nil {
		m.dwarfOnce.Do(func() {
			m.lines, m.inlines = s.loadDWARF(r, loc)
			m.dwarfRead.Store(true)
			read = m.lines != nil || m.inlines != nil
		})
	}
	return read
}

// loadDWARF reads the line table and inlined calls of the ELF file r or of
// its debug file. Go binaries have file:line in their pclntab instead.
func (s *Symbolizer) loadDWARF(r io.ReaderAt, loc debugLocator) (*lineTable, *inlineTable) {
	f, err := openELF(r)
	if err != nil || f.Section(".gopclntab") != nil {
		return nil, nil
	}
	if f.Section(".debug_line") != nil {
		return s.readDWARF(f, loc)
	}
	df, c, _ := s.findDebugFile(f, buildID(f), loc)
	if df == nil {
		return nil, nil
	}
	defer c.Close()
	return s.readDWARF(df, loc)
}

// readDWARF reads f's line table and inlined calls, decoding its DWARF once.
func (s *Symbolizer) readDWARF(f *elf.File, loc debugLocator) (*lineTable, *inlineTable) {
	if f.Section(".debug_line") == nil {
		s.log.Debug("line table", "module", loc.label, "err", "no .debug_line")
		return nil, nil
	}
	d, err := openDWARF(f)
	if err != nil {
		s.log.Debug("dwarf", "module", loc.label, "err", err)
		return nil, nil
	}
	lt, err := readLineTable(d)
	if err != nil {
		s.log.Debug("line table", "module", loc.label, "err", err)
	}
	b := newInlineBuilder()
	err = b.add(d, nil)
	if err == nil && hasSkeletons(d) {
		err = s.addSplitInlines(b, f, d, loc)
	}
	var it *inlineTable
	if err == nil {
		it, err = b.finish()
	}
	if err != nil {
		s.log.Debug("inlined calls", "module", loc.label, "err", err)
	}
	return lt, it
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
