package symbolizer

import (
	"cmp"
	"debug/dwarf"
	"debug/elf"
	"fmt"
	"runtime"
	"runtime/debug"
	"slices"
	"strings"
	"sync"
	"sync/atomic"

	"github.com/scorch-dev/scorch/internal/mapped"
)

// moduleDWARF is a module's DWARF read lazily. Its sections are read in
// place from the mapped file where they are not compressed; at the first
// symbolization only the address ranges of its compilation units are read
// (from the unit DIEs, or the unit's line program where the DIE has none);
// a unit's line rows and inlined calls are read when an address in it is
// first symbolized. A whole-host capture samples a few units of libc, not
// its thousands: the eager reading of every unit took most of record's
// memory.
//
// Split DWARF (skeleton units whose inlined calls are in .dwo files) is
// read whole at the first symbolization, as before (eager).
type moduleDWARF struct {
	mu      sync.Mutex
	d       *dwarf.Data
	mapping *mapped.File // what d's sections point into; nil: on the heap
	units   []dwarfUnit
	ranges  []unitRange // sorted by lo
	maxHi   []uint64    // maxHi[i]: the largest hi of ranges[:i+1]
	eager   *unitTables // split DWARF: every unit, read at once
	// heap is what the index, the sections read onto the heap and the
	// units read so far keep; mappedN the mapped section bytes.
	heap    atomic.Int64
	mappedN int64
	grown   atomic.Bool // a unit was read since the last takeGrown
}

type dwarfUnit struct {
	off    dwarf.Offset
	loaded *unitTables // nil until read
}

type unitRange struct {
	lo, hi uint64
	unit   uint32
}

// unitTables are one unit's (or, eager, every unit's) tables.
type unitTables struct {
	lines   *lineTable
	inlines *inlineTable
}

func (u *unitTables) bytes() int64 { return u.lines.bytes() + u.inlines.bytes() }

// maxDWARFUnits bounds the units one module indexes.
const maxDWARFUnits = 1 << 20

// dwarfUnitBytes is what debug/dwarf and the index keep per unit (its unit
// record, the index entries), and dwarfAbbrevFactor what debug/dwarf keeps
// per byte of .debug_abbrev (it parses every unit's abbreviations up
// front, into maps and slices), measured by TestModuleBytesMatchHeap.
const (
	dwarfUnitBytes    = 400
	dwarfAbbrevFactor = 13
)

// dwarfSectionUsed are the DWARF sections line programs and inlined calls
// need: not the location lists, call frames, types or macros.
var dwarfSectionUsed = map[string]bool{
	"abbrev": true, "info": true, "str": true, "line": true, "ranges": true,
	"addr": true, "line_str": true, "str_offsets": true, "rnglists": true,
}

// openDWARFIn decodes f's DWARF sections, in place from mf (the mapping
// of f's file, or nil) where a section is not compressed and needs no
// relocation; it returns the data, the bytes it read onto the heap and
// the bytes it reads from the mapping.
func openDWARFIn(f *elf.File, mf *mapped.File) (d *dwarf.Data, heap, mappedN int64, err error) {
	defer func() {
		if p := recover(); p != nil {
			d, err = nil, fmt.Errorf("corrupt dwarf: %v", p)
		}
	}()
	debugSec := func(s *elf.Section) string {
		if n, ok := strings.CutPrefix(s.Name, ".debug_"); ok {
			return n
		}
		if n, ok := strings.CutPrefix(s.Name, ".zdebug_"); ok {
			return n
		}
		return ""
	}
	eager := mf == nil || f.Type == elf.ET_REL
	for _, s := range f.Sections {
		if (s.Type == elf.SHT_RELA || s.Type == elf.SHT_REL) && int(s.Info) < len(f.Sections) && debugSec(f.Sections[s.Info]) != "" {
			eager = true // relocated DWARF: debug/elf applies them
		}
	}
	if eager {
		d, err := openDWARF(f)
		if err != nil {
			return nil, 0, 0, err
		}
		for _, s := range f.Sections {
			if debugSec(s) != "" {
				heap += int64(s.Size)
			}
		}
		if s := f.Section(".debug_abbrev"); s != nil {
			heap += int64(s.Size) * dwarfAbbrevFactor
		}
		return d, heap, 0, nil
	}
	data := map[string][]byte{}
	var order []string
	for _, s := range f.Sections {
		name := debugSec(s)
		if !dwarfSectionUsed[name] {
			continue
		}
		if _, dup := data[name]; dup {
			continue
		}
		b, err := mf.Section(s)
		if err == nil {
			mappedN += int64(len(b))
		} else if b, err = sectionData(s); err == nil {
			heap += int64(len(b))
		} else {
			return nil, 0, 0, err
		}
		data[name] = b
		order = append(order, name)
	}
	heap += int64(len(data["abbrev"])) * dwarfAbbrevFactor
	d, err = dwarf.New(data["abbrev"], nil, nil, data["info"], data["line"], nil, data["ranges"], data["str"])
	if err != nil {
		return nil, 0, 0, fmt.Errorf("dwarf: %w", err)
	}
	for _, name := range order {
		switch name {
		case "abbrev", "info", "line", "ranges", "str":
			continue
		default:
			err = d.AddSection(".debug_"+name, data[name])
		}
		if err != nil {
			return nil, 0, 0, fmt.Errorf("dwarf %s: %w", name, err)
		}
	}
	return d, heap, mappedN, nil
}

// newModuleDWARF indexes the units of d.
func newModuleDWARF(d *dwarf.Data, mf *mapped.File, heap, mappedN int64) (md *moduleDWARF, err error) {
	defer func() {
		if p := recover(); p != nil {
			md, err = nil, fmt.Errorf("corrupt dwarf: %v", p)
		}
	}()
	md = &moduleDWARF{d: d, mapping: mf, mappedN: mappedN}
	r := d.Reader()
	for len(md.units) < maxDWARFUnits {
		e, err := r.Next()
		if err != nil {
			return nil, fmt.Errorf("dwarf: %w", err)
		}
		if e == nil {
			break
		}
		r.SkipChildren()
		switch e.Tag {
		case dwarf.TagCompileUnit, dwarf.TagSkeletonUnit, dwarf.TagPartialUnit:
		default:
			continue
		}
		u := uint32(len(md.units))
		md.units = append(md.units, dwarfUnit{off: e.Offset})
		rs, _ := d.Ranges(e)
		n := len(md.ranges)
		for _, rg := range rs {
			if rg[1] > rg[0] {
				md.ranges = append(md.ranges, unitRange{lo: rg[0], hi: rg[1], unit: u})
			}
		}
		// The unit DIE's ranges miss code its line program covers (glibc
		// has such units): the sequences of the line program are indexed
		// too, without keeping its rows.
		md.ranges = append(md.ranges, sequenceRanges(d, e, u)...)
		md.ranges = mergeRanges(md.ranges, n)
	}
	slices.SortFunc(md.ranges, func(a, b unitRange) int { return cmp.Compare(a.lo, b.lo) })
	md.maxHi = make([]uint64, len(md.ranges))
	var hi uint64
	for i, rg := range md.ranges {
		hi = max(hi, rg.hi)
		md.maxHi[i] = hi
	}
	md.heap.Store(heap + int64(len(md.units))*dwarfUnitBytes + int64(cap(md.ranges))*24)
	return md, nil
}

// sequenceRanges returns the address ranges of the sequences of the line
// program of unit e (none for a unit without one).
func sequenceRanges(d *dwarf.Data, e *dwarf.Entry, u uint32) []unitRange {
	if e.Tag != dwarf.TagCompileUnit && e.Tag != dwarf.TagSkeletonUnit {
		return nil
	}
	lr, err := d.LineReader(e)
	if err != nil || lr == nil {
		return nil
	}
	var out []unitRange
	var le dwarf.LineEntry
	start, open := uint64(0), false
	for rows := 0; rows < maxLineRows; rows++ {
		if err := lr.Next(&le); err != nil {
			break
		}
		switch {
		case !open:
			start, open = le.Address, true
		case le.EndSequence:
			if le.Address > start {
				out = append(out, unitRange{lo: start, hi: le.Address, unit: u})
			}
			open = false
		}
	}
	return out
}

// mergeRanges sorts the ranges of one unit, rs[from:], and merges those
// that overlap or touch.
func mergeRanges(rs []unitRange, from int) []unitRange {
	own := rs[from:]
	slices.SortFunc(own, func(a, b unitRange) int { return cmp.Compare(a.lo, b.lo) })
	out := rs[:from]
	for _, rg := range own {
		if n := len(out); n > from && rg.lo <= out[n-1].hi {
			out[n-1].hi = max(out[n-1].hi, rg.hi)
			continue
		}
		out = append(out, rg)
	}
	return out
}

// tablesAt returns the tables of the units covering addr, reading those
// not read yet. Called with md.mu held.
func (md *moduleDWARF) tablesAt(addr uint64) []*unitTables {
	if md.eager != nil {
		return []*unitTables{md.eager}
	}
	i, _ := slices.BinarySearchFunc(md.ranges, addr+1, func(r unitRange, a uint64) int { return cmp.Compare(r.lo, a) })
	var out []*unitTables
	for i--; i >= 0 && md.maxHi[i] > addr; i-- {
		rg := md.ranges[i]
		if rg.lo > addr || addr >= rg.hi {
			continue
		}
		u := &md.units[rg.unit]
		if u.loaded == nil {
			u.loaded = md.readUnit(u.off)
			md.heap.Add(u.loaded.bytes())
			md.grown.Store(true)
		}
		if !slices.Contains(out, u.loaded) {
			out = append(out, u.loaded)
		}
	}
	return out
}

// readUnit reads the line rows and inlined calls of the unit at off; a
// corrupt unit gives empty tables.
func (md *moduleDWARF) readUnit(off dwarf.Offset) (ut *unitTables) {
	ut = &unitTables{}
	defer func() {
		if recover() != nil {
			ut = &unitTables{}
		}
	}()
	r := md.d.Reader()
	r.Seek(off)
	e, err := r.Next()
	if err != nil || e == nil {
		return ut
	}
	var lb lineBuilder
	lb.addUnit(md.d, e)
	ut.lines, _ = lb.finish()
	b := newInlineBuilder()
	if b.addUnit(md.d, off, nil) == nil {
		ut.inlines, _ = b.finish()
	}
	return ut
}

// loadAll reads every unit (tests compare the lazy reading with it).
func (md *moduleDWARF) loadAll() {
	if md == nil {
		return
	}
	md.mu.Lock()
	defer md.mu.Unlock()
	for _, rg := range md.ranges {
		md.tablesAt(rg.lo)
	}
}

// frames expands a native frame at addr into its inlined calls with
// file:line, reading the units it needs; see nativeFrames.
func (md *moduleDWARF) frames(fr Frame, addr uint64) (out []Frame) {
	if md == nil {
		return []Frame{fr}
	}
	// A mapped file truncated under the mapping faults: that costs the
	// frame's lines, not the profiler.
	defer debug.SetPanicOnFault(debug.SetPanicOnFault(true))
	defer func() {
		if recover() != nil {
			out = []Frame{fr}
		}
		runtime.KeepAlive(md.mapping)
	}()
	md.mu.Lock()
	defer md.mu.Unlock()
	tabs := md.tablesAt(addr)
	if len(tabs) == 1 {
		return expandInlined(fr, addr, tabs[0].lines, tabs[0].inlines)
	}
	// Units whose ranges overlap (rare): the line row nearest below addr
	// and the inlined calls of every unit, as one table of the module
	// would give.
	var lines *lineTable
	var best uint64
	var chain []inlineCall
	for _, t := range tabs {
		if a, ok := t.lines.rowAddr(addr); ok && (lines == nil || a >= best) {
			lines, best = t.lines, a
		}
		chain = append(chain, t.inlines.calls(addr)...)
	}
	slices.SortStableFunc(chain, func(a, b inlineCall) int { return cmp.Compare(a.depth, b.depth) })
	chain = slices.CompactFunc(chain, func(a, b inlineCall) bool { return a.depth == b.depth })
	return expandChain(fr, addr, lines, chain)
}

func (md *moduleDWARF) bytes() int64 {
	if md == nil {
		return 0
	}
	return md.heap.Load()
}

func (md *moduleDWARF) mappedBytes() int64 {
	if md == nil {
		return 0
	}
	return md.mappedN
}

// takeGrown reports whether a unit was read since the last call.
func (md *moduleDWARF) takeGrown() bool {
	return md != nil && md.grown.Swap(false)
}
