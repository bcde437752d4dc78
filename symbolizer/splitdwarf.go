package symbolizer

import (
	"bytes"
	"debug/dwarf"
	"debug/elf"
	"encoding/binary"
	"fmt"
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
		for _, c := range candidates {
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
	sec := func(name string) []byte {
		b, _ := sectionData(f.Section(name))
		return b
	}
	info, abbrev, str := sec(".debug_info.dwo"), sec(".debug_abbrev.dwo"), sec(".debug_str.dwo")
	if len(info) < 20 || len(abbrev) == 0 {
		return nil, fmt.Errorf("%s: no .debug_info.dwo", p)
	}
	// A 32-bit DWARF 5 split unit: length, version 5, unit type 5, the
	// address size, the abbreviation offset, then the DWO id.
	if binary.LittleEndian.Uint16(info[4:]) != 5 || info[6] != 5 {
		return nil, fmt.Errorf("%s: not a DWARF 5 split unit", p)
	}
	if len(id) == 8 && !bytes.Equal(info[12:20], id) {
		return nil, fmt.Errorf("%s: another build's .dwo (DWO id differs)", p)
	}
	d, err := dwarf.New(abbrev, nil, nil, info, nil, nil, nil, str)
	if err != nil {
		return nil, err
	}
	d.AddSection(".debug_addr", addr)
	// Headers: length, version, padding (8 bytes); length, version,
	// address and segment selector sizes, offset count (12 bytes).
	d.AddSection(".debug_str_offsets", skipHeader(sec(".debug_str_offsets.dwo"), 8))
	d.AddSection(".debug_rnglists", skipHeader(sec(".debug_rnglists.dwo"), 12))
	return d, nil
}

// skipHeader drops the n-byte header of a 32-bit DWARF 5 table, leaving
// the offsets a split unit indexes from.
func skipHeader(b []byte, n int) []byte {
	if len(b) >= n {
		return b[n:]
	}
	return nil
}

// hasSkeletons reports whether d's first unit is a split DWARF skeleton.
func hasSkeletons(d *dwarf.Data) bool {
	e, err := d.Reader().Next()
	return err == nil && e != nil && e.Tag == dwarf.TagSkeletonUnit
}
