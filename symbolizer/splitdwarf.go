package symbolizer

import (
	"bytes"
	"debug/dwarf"
	"debug/elf"
	"encoding/binary"
	"errors"
	"fmt"
	"io/fs"
	"path"
)

// Split DWARF (gcc/clang -gsplit-dwarf, DWARF 5): the binary keeps a
// skeleton unit per compilation unit (its line program, address table and
// the name of its .dwo); the full DIEs, with the inlined calls, are in the
// .dwo file next to the object it was compiled to. debug/dwarf reads a
// .dwo's sections given the skeleton's address table from the unit's
// address base and the offset tables without their headers, since split
// units have no base attributes of their own.

// maxDWOs bounds the .dwo files one module opens.
const maxDWOs = 1 << 16

// addSplitInlines adds the inlined calls of every skeleton unit of d from
// its .dwo, found by DW_AT_dwo_name (relative to DW_AT_comp_dir) or next to
// the binary, in the process's root, checked by DWO id. A .dwo not found
// costs its unit's inlined calls only.
func (s *Symbolizer) addSplitInlines(b *inlineBuilder, f *elf.File, d *dwarf.Data, loc debugLocator) (err error) {
	defer func() {
		if p := recover(); p != nil {
			err = fmt.Errorf("corrupt dwarf: %v", p)
		}
	}()
	if loc.open == nil {
		return fmt.Errorf("split dwarf: no root to open .dwo files in")
	}
	info, _ := sectionData(f.Section(".debug_info"))
	addr, _ := sectionData(f.Section(".debug_addr"))
	// A DWARF package (llvm-dwp, dwp) next to the binary holds every unit.
	pkg, err := s.openDWP(loc.path+".dwp", loc)
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		s.log.Debug("split dwarf package", "module", loc.label, "err", err)
	}
	r := d.Reader()
	opened, missing := 0, 0
	for opened+missing < maxDWOs {
		e, err := r.Next()
		if err != nil {
			return fmt.Errorf("dwarf: %w", err)
		}
		if e == nil {
			break
		}
		r.SkipChildren()
		if e.Tag != dwarf.TagSkeletonUnit {
			continue
		}
		name, _ := e.Val(dwarf.AttrDwoName).(string)
		dir, _ := e.Val(dwarf.AttrCompDir).(string)
		base, _ := e.Val(dwarf.AttrAddrBase).(int64)
		if name == "" || base < 0 || base > int64(len(addr)) {
			continue
		}
		// The unit's DWO id is the last 8 bytes of its 20-byte header.
		var id []byte
		if off := int(e.Offset); off >= 8 && off <= len(info) {
			id = info[off-8 : off]
		}
		var files []*dwarf.LineFile
		if lr, err := d.LineReader(e); err == nil && lr != nil {
			files = lr.Files()
		}
		candidates := []string{name}
		if !path.IsAbs(name) {
			candidates = []string{path.Join(dir, name)}
		}
		candidates = append(candidates, path.Join(path.Dir(loc.path), path.Base(name)))
		found := false
		if pkg != nil && len(id) == 8 {
			if secs, ok := pkg.unit(binary.LittleEndian.Uint64(id)); ok {
				if dd, err := secs.data(id, addr[base:]); err == nil {
					if err := b.add(dd, files); err != nil {
						s.log.Debug("split dwarf", "module", loc.label, "dwp", loc.path+".dwp", "err", err)
					}
					found = true
				}
			}
		}
		for _, c := range candidates {
			if found {
				break
			}
			dd, err := s.openDWO(c, loc, id, addr[base:])
			if err != nil {
				continue
			}
			if err := b.add(dd, files); err != nil {
				s.log.Debug("split dwarf", "module", loc.label, "dwo", c, "err", err)
			}
			found = true
			break
		}
		if found {
			opened++
		} else {
			missing++
		}
	}
	if missing > 0 {
		s.log.Debug("split dwarf: .dwo files not found", "module", loc.label, "missing", missing, "read", opened)
	}
	return nil
}

// openDWO opens a .dwo file and checks it is the skeleton's (same DWO id).
func (s *Symbolizer) openDWO(p string, loc debugLocator, id, addr []byte) (*dwarf.Data, error) {
	osf, err := loc.open(p)
	if err != nil {
		return nil, err
	}
	defer osf.Close()
	f, err := openELF(osf)
	if err != nil {
		return nil, err
	}
	secs := readDWOSections(f)
	d, err := secs.data(id, addr)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", p, err)
	}
	return d, nil
}

// dwoSections are one split unit's sections (a .dwo's, or its share of a
// .dwp's).
type dwoSections struct {
	info, abbrev, str, strOffsets, rnglists []byte
}

func readDWOSections(f *elf.File) dwoSections {
	sec := func(name string) []byte {
		b, _ := sectionData(f.Section(name))
		return b
	}
	return dwoSections{info: sec(".debug_info.dwo"), abbrev: sec(".debug_abbrev.dwo"), str: sec(".debug_str.dwo"),
		strOffsets: sec(".debug_str_offsets.dwo"), rnglists: sec(".debug_rnglists.dwo")}
}

// data checks the unit is the skeleton's (same DWO id) and opens it, with
// the skeleton's address table from the unit's address base.
func (ds dwoSections) data(id, addr []byte) (*dwarf.Data, error) {
	if len(ds.info) < 20 || len(ds.abbrev) == 0 {
		return nil, errors.New("no .debug_info.dwo")
	}
	// A 32-bit DWARF 5 split unit: length, version 5, unit type 5, the
	// address size, the abbreviation offset, then the DWO id.
	if binary.LittleEndian.Uint16(ds.info[4:]) != 5 || ds.info[6] != 5 {
		return nil, errors.New("not a DWARF 5 split unit")
	}
	if len(id) == 8 && !bytes.Equal(ds.info[12:20], id) {
		return nil, errors.New("another build's unit (DWO id differs)")
	}
	d, err := dwarf.New(ds.abbrev, nil, nil, ds.info, nil, nil, nil, ds.str)
	if err != nil {
		return nil, err
	}
	d.AddSection(".debug_addr", addr)
	// Headers: length, version, padding (8 bytes); length, version,
	// address and segment selector sizes, offset count (12 bytes).
	d.AddSection(".debug_str_offsets", skipHeader(ds.strOffsets, 8))
	d.AddSection(".debug_rnglists", skipHeader(ds.rnglists, 12))
	return d, nil
}

// dwpFile is a DWARF 5 package: the sections of every unit, and the CU
// index saying which part of each is whose (by DWO id).
type dwpFile struct {
	all  dwoSections
	rows map[uint64][]dwpPart // by DWO id: the unit's part of each section
}

type dwpPart struct {
	sect      uint32 // DW_SECT_*
	off, size uint32
}

// DW_SECT_* of a DWARF 5 unit index.
const (
	dwSectInfo       = 1
	dwSectAbbrev     = 3
	dwSectStrOffsets = 6
	dwSectRnglists   = 8
)

// openDWP reads a .dwp's sections and its .debug_cu_index.
func (s *Symbolizer) openDWP(p string, loc debugLocator) (*dwpFile, error) {
	osf, err := loc.open(p)
	if err != nil {
		return nil, err
	}
	defer osf.Close()
	f, err := openELF(osf)
	if err != nil {
		return nil, err
	}
	idx, err := sectionData(f.Section(".debug_cu_index"))
	if err != nil {
		return nil, err
	}
	rows, err := parseCUIndex(idx)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", p, err)
	}
	return &dwpFile{all: readDWOSections(f), rows: rows}, nil
}

// parseCUIndex reads a DWARF 5 unit index: version, padding, column and
// unit counts, slot count, then per slot a signature and a row number,
// the column's section ids, and per row an offset and a size per column.
func parseCUIndex(b []byte) (map[uint64][]dwpPart, error) {
	le := binary.LittleEndian
	if len(b) < 16 || le.Uint16(b) != 5 {
		return nil, errors.New("not a DWARF 5 .debug_cu_index")
	}
	cols, units, slots := uint64(le.Uint32(b[4:])), uint64(le.Uint32(b[8:])), uint64(le.Uint32(b[12:]))
	need := 16 + slots*12 + cols*4 + 2*units*cols*4
	if cols == 0 || cols > 16 || units > slots || slots > 1<<24 || uint64(len(b)) < need {
		return nil, fmt.Errorf(".debug_cu_index of %d columns, %d units, %d slots in %d bytes", cols, units, slots, len(b))
	}
	sigs, rowsAt := b[16:], b[16+slots*8:]
	ids := b[16+slots*12:]
	offs := ids[cols*4:]
	sizes := offs[units*cols*4:]
	out := make(map[uint64][]dwpPart, units)
	for i := uint64(0); i < slots; i++ {
		row := uint64(le.Uint32(rowsAt[i*4:]))
		if row == 0 || row > units {
			continue
		}
		parts := make([]dwpPart, cols)
		for c := uint64(0); c < cols; c++ {
			k := ((row-1)*cols + c) * 4
			parts[c] = dwpPart{sect: le.Uint32(ids[c*4:]), off: le.Uint32(offs[k:]), size: le.Uint32(sizes[k:])}
		}
		out[le.Uint64(sigs[i*8:])] = parts
	}
	return out, nil
}

// unit returns the sections of the unit with the DWO id, cut to its parts
// (the string table is shared).
func (p *dwpFile) unit(id uint64) (dwoSections, bool) {
	parts, ok := p.rows[id]
	if !ok {
		return dwoSections{}, false
	}
	cut := func(b []byte, pt dwpPart) []byte {
		if uint64(pt.off)+uint64(pt.size) > uint64(len(b)) {
			return nil
		}
		return b[pt.off : pt.off+pt.size]
	}
	ds := dwoSections{str: p.all.str}
	for _, pt := range parts {
		switch pt.sect {
		case dwSectInfo:
			ds.info = cut(p.all.info, pt)
		case dwSectAbbrev:
			ds.abbrev = cut(p.all.abbrev, pt)
		case dwSectStrOffsets:
			ds.strOffsets = cut(p.all.strOffsets, pt)
		case dwSectRnglists:
			ds.rnglists = cut(p.all.rnglists, pt)
		}
	}
	return ds, true
}

// skipHeader drops the n-byte header of a 32-bit DWARF 5 table, leaving
// the offsets a split unit indexes from.
func skipHeader(b []byte, n int) []byte {
	if len(b) >= n {
		return b[n:]
	}
	return nil
}
