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

// readLineTable decodes every compilation unit's line program into one
// table (split DWARF reads its module whole; tests compare the lazy
// reading with it).
func readLineTable(d *dwarf.Data) (lt *lineTable, err error) {
	defer func() {
		if p := recover(); p != nil {
			lt, err = nil, fmt.Errorf("corrupt dwarf: %v", p)
		}
	}()
	var b lineBuilder
	if err := eachUnitDIE(d, func(e *dwarf.Entry) bool { b.addUnit(d, e); return true }); err != nil {
		return nil, err
	}
	return b.finish()
}

// eachUnitDIE calls fn with the top-level DIE of each unit of d, in order,
// while it returns true.
func eachUnitDIE(d *dwarf.Data, fn func(e *dwarf.Entry) bool) error {
	r := d.Reader()
	for {
		e, err := r.Next()
		if err != nil {
			return fmt.Errorf("dwarf: %w", err)
		}
		if e == nil {
			return nil
		}
		r.SkipChildren()
		if !fn(e) {
			return nil
		}
	}
}

// lineBuilder gathers the line rows of one or more units.
type lineBuilder struct {
	rows    []lineRow
	fileIdx map[string]uint32
	names   []string
}

type lineRow struct {
	addr uint64
	line uint32
	file uint32
}

// addUnit decodes the line program of the unit whose DIE is e (a split
// DWARF skeleton unit keeps the line program); other DIEs add nothing.
func (b *lineBuilder) addUnit(d *dwarf.Data, e *dwarf.Entry) {
	if e.Tag != dwarf.TagCompileUnit && e.Tag != dwarf.TagSkeletonUnit {
		return
	}
	lr, err := d.LineReader(e)
	if err != nil || lr == nil {
		return
	}
	if b.fileIdx == nil {
		b.fileIdx = map[string]uint32{}
	}
	var le dwarf.LineEntry
	for len(b.rows) < maxLineRows {
		if err := lr.Next(&le); err != nil {
			break // io.EOF or a corrupt program: keep what was read
		}
		if le.EndSequence {
			b.rows = append(b.rows, lineRow{addr: le.Address})
			continue
		}
		name := ""
		if le.File != nil {
			name = le.File.Name
		}
		i, ok := b.fileIdx[name]
		if !ok {
			i = uint32(len(b.names))
			b.fileIdx[name] = i
			b.names = append(b.names, name)
		}
		b.rows = append(b.rows, lineRow{addr: le.Address, line: uint32(max(le.Line, 0)), file: i})
	}
}

// finish sorts the rows into a table.
func (b *lineBuilder) finish() (*lineTable, error) {
	rows := b.rows
	if len(rows) == 0 {
		return nil, errors.New("no line rows")
	}
	// At equal addresses the last row is the one that holds (an end of
	// sequence followed by the next sequence's start).
	slices.SortStableFunc(rows, func(a, b lineRow) int { return cmp.Compare(a.addr, b.addr) })
	n := 0
	for i := range rows {
		if i+1 < len(rows) && rows[i+1].addr == rows[i].addr {
			continue
		}
		n++
	}
	lt := &lineTable{names: b.names, addrs: make([]uint64, 0, n), lines: make([]uint32, 0, n), files: make([]uint32, 0, n)}
	for i, rw := range rows {
		if i+1 < len(rows) && rows[i+1].addr == rw.addr {
			continue
		}
		lt.addrs = append(lt.addrs, rw.addr)
		lt.lines = append(lt.lines, rw.line)
		lt.files = append(lt.files, rw.file)
	}
	b.rows = nil
	return lt, nil
}

// rowAddr returns the address of the row that holds at addr.
func (lt *lineTable) rowAddr(addr uint64) (uint64, bool) {
	if lt == nil {
		return 0, false
	}
	i, found := slices.BinarySearch(lt.addrs, addr)
	if !found {
		i--
	}
	if i < 0 {
		return 0, false
	}
	return lt.addrs[i], true
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
