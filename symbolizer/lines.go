package symbolizer

import (
	"cmp"
	"debug/dwarf"
	"debug/elf"
	"errors"
	"fmt"
	"slices"
)

// lineTable is a module's DWARF line table reduced to sorted rows.
type lineTable struct {
	addrs []uint64
	lines []uint32 // 0: no line (end of a sequence)
	files []uint32 // index into names
	names []string
}

// maxLineRows bounds the memory one module's line table may take.
const maxLineRows = 16 << 20

// openDWARF decodes (and decompresses) f's DWARF sections once, for both
// the line table and the inlined calls.
func openDWARF(f *elf.File) (d *dwarf.Data, err error) {
	defer func() {
		if p := recover(); p != nil {
			d, err = nil, fmt.Errorf("corrupt dwarf: %v", p)
		}
	}()
	d, err = f.DWARF()
	if err != nil {
		return nil, fmt.Errorf("dwarf: %w", err)
	}
	return d, nil
}

// readLineTable decodes every compilation unit's line program.
func readLineTable(d *dwarf.Data) (lt *lineTable, err error) {
	defer func() {
		if p := recover(); p != nil {
			lt, err = nil, fmt.Errorf("corrupt dwarf: %v", p)
		}
	}()
	type row struct {
		addr uint64
		line uint32
		file uint32
	}
	var rows []row
	fileIdx := map[string]uint32{}
	var names []string
	r := d.Reader()
	for {
		e, err := r.Next()
		if err != nil {
			return nil, fmt.Errorf("dwarf: %w", err)
		}
		if e == nil {
			break
		}
		// A split DWARF skeleton unit keeps the line program.
		if e.Tag != dwarf.TagCompileUnit && e.Tag != dwarf.TagSkeletonUnit {
			r.SkipChildren()
			continue
		}
		lr, err := d.LineReader(e)
		r.SkipChildren()
		if err != nil || lr == nil {
			continue
		}
		var le dwarf.LineEntry
		for len(rows) < maxLineRows {
			if err := lr.Next(&le); err != nil {
				break // io.EOF or a corrupt program: keep what was read
			}
			if le.EndSequence {
				rows = append(rows, row{addr: le.Address})
				continue
			}
			name := ""
			if le.File != nil {
				name = le.File.Name
			}
			i, ok := fileIdx[name]
			if !ok {
				i = uint32(len(names))
				fileIdx[name] = i
				names = append(names, name)
			}
			rows = append(rows, row{addr: le.Address, line: uint32(max(le.Line, 0)), file: i})
		}
	}
	if len(rows) == 0 {
		return nil, errors.New("no line rows")
	}
	// At equal addresses the last row is the one that holds (an end of
	// sequence followed by the next sequence's start).
	slices.SortStableFunc(rows, func(a, b row) int { return cmp.Compare(a.addr, b.addr) })
	lt = &lineTable{names: names}
	for i, rw := range rows {
		if i+1 < len(rows) && rows[i+1].addr == rw.addr {
			continue
		}
		lt.addrs = append(lt.addrs, rw.addr)
		lt.lines = append(lt.lines, rw.line)
		lt.files = append(lt.files, rw.file)
	}
	return lt, nil
}

// lookup returns the file and line of addr.
func (lt *lineTable) lookup(addr uint64) (string, int, bool) {
	if lt == nil {
		return "", 0, false
	}
	i, found := slices.BinarySearch(lt.addrs, addr)
	if !found {
		i--
	}
	if i < 0 || lt.lines[i] == 0 {
		return "", 0, false
	}
	return lt.names[lt.files[i]], int(lt.lines[i]), true
}

func (lt *lineTable) bytes() int64 {
	if lt == nil {
		return 0
	}
	n := int64(cap(lt.addrs)*8 + cap(lt.lines)*4 + cap(lt.files)*4)
	for _, s := range lt.names {
		n += int64(len(s)) + 16
	}
	return n
}

func (lt *lineTable) rows() int {
	if lt == nil {
		return 0
	}
	return len(lt.addrs)
}
