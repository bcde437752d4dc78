package symbolizer

import (
	"cmp"
	"debug/dwarf"
	"debug/elf"
	"encoding/binary"
	"errors"
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
	ds      *dwarfSections // nil: relocated DWARF, read through full
	full    *dwarf.Data    // every unit; made only when needed (see dwarfUnit.refAddr)
	mapping *mapped.File   // what the sections point into; nil: on the heap
	units   []dwarfUnit
	ranges  []unitRange // sorted by lo
	maxHi   []uint64    // maxHi[i]: the largest hi of ranges[:i+1]
	eager   *unitTables // split DWARF: every unit, read at once
	skel    bool        // the first unit is a split DWARF skeleton
	// fromAranges counts the units indexed from .debug_aranges.
	fromAranges int
	// heap is what the index, the sections read onto the heap and the
	// units read so far keep; mappedN the mapped section bytes.
	heap    atomic.Int64
	mappedN int64
	grown   atomic.Bool // a unit was read since the last takeGrown
}

// dwarfUnit is a unit of .debug_info: [start, end) in the section, and
// the offset of its DIE in the data it is read with (relative to start
// when read alone). A unit is read alone, its bytes only given to
// debug/dwarf, which then parses only its abbreviations: a module's data
// with every unit parses all of them up front and keeps them (12 MiB for
// libc). A unit referring into other units (DW_FORM_ref_addr: LTO, dwz)
// is read with every unit.
type dwarfUnit struct {
	start, end uint64
	off        dwarf.Offset
	refAddr    bool
	// refKnown: refAddr was read (a unit indexed from .debug_aranges
	// reads its abbreviations when it is first read).
	refKnown bool
	loaded   *unitTables // nil until read
}

// refersAcross reports whether unit u refers into other units (see
// refersAcross), reading its abbreviations the first time. Called with
// md.mu held, or before md is shared.
func (md *moduleDWARF) refersAcross(u *dwarfUnit) bool {
	if !u.refKnown {
		_, abbrevOff, ok := unitBounds(md.ds.sec["info"], u.start)
		u.refAddr, u.refKnown = !ok || refersAcross(md.ds.sec["abbrev"], abbrevOff), true
	}
	return u.refAddr
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

// dwarfSections are a module's DWARF sections, in place or on the heap.
type dwarfSections struct {
	sec   map[string][]byte
	order []string
	// aranges is .debug_aranges, the units' address ranges, kept apart:
	// debug/dwarf is not given it.
	aranges []byte
	// cached is the file of decompressed sections some of sec are in.
	cached *mapped.File
}

// newData gives debug/dwarf the sections with info as .debug_info.
func (ds *dwarfSections) newData(info []byte) (*dwarf.Data, error) {
	d, err := dwarf.New(ds.sec["abbrev"], nil, nil, info, ds.sec["line"], nil, ds.sec["ranges"], ds.sec["str"])
	if err != nil {
		return nil, fmt.Errorf("dwarf: %w", err)
	}
	for _, name := range ds.order {
		switch name {
		case "abbrev", "info", "line", "ranges", "str":
			continue
		}
		if err := d.AddSection(".debug_"+name, ds.sec[name]); err != nil {
			return nil, fmt.Errorf("dwarf %s: %w", name, err)
		}
	}
	return d, nil
}

// openDWARFIn reads f's DWARF sections, in place from mf (the mapping of
// f's file, or nil) where a section is not compressed; it returns them,
// the bytes it read onto the heap and the bytes it reads from the
// mapping. Relocated DWARF (an object file) is decoded whole by debug/elf
// instead (full). Compressed sections are read from cache (nil: none),
// the decompressed sections of the file with build ID id, or decompressed
// and added to it.
func openDWARFIn(f *elf.File, mf *mapped.File, cache *dwarfCache, id string) (ds *dwarfSections, full *dwarf.Data, heap, mappedN int64, err error) {
	defer func() {
		if p := recover(); p != nil {
			ds, full, err = nil, nil, fmt.Errorf("corrupt dwarf: %v", p)
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
	relocated := f.Type == elf.ET_REL
	for _, s := range f.Sections {
		if (s.Type == elf.SHT_RELA || s.Type == elf.SHT_REL) && int(s.Info) < len(f.Sections) && debugSec(f.Sections[s.Info]) != "" {
			relocated = true
		}
	}
	if relocated {
		d, err := openDWARF(f)
		if err != nil {
			return nil, nil, 0, 0, err
		}
		for _, s := range f.Sections {
			if debugSec(s) != "" {
				heap += int64(s.Size)
			}
		}
		if s := f.Section(".debug_abbrev"); s != nil {
			heap += int64(s.Size) * dwarfAbbrevFactor
		}
		return nil, d, heap, 0, nil
	}
	ds = &dwarfSections{sec: map[string][]byte{}}
	// The sections read: the first of each name.
	var secs []*elf.Section
	var names []string
	for _, s := range f.Sections {
		name := debugSec(s)
		if !dwarfSectionUsed[name] && (name != "aranges" || !useAranges) || slices.Contains(names, name) {
			continue
		}
		secs, names = append(secs, s), append(names, name)
	}
	// Compressed ones come from the cache of decompressed sections, or
	// are decompressed and cached.
	var want map[string]uint64
	for i, s := range secs {
		if s.Flags&elf.SHF_COMPRESSED != 0 && s.Type != elf.SHT_NOBITS {
			if want == nil {
				want = map[string]uint64{}
			}
			want[names[i]] = s.Size
		}
	}
	var cached, fresh map[string][]byte
	if cache != nil && want != nil {
		cached, ds.cached = cache.load(id, want)
		fresh = map[string][]byte{}
	}
	for i, s := range secs {
		name := names[i]
		b, err := mf.Section(s)
		if err == nil {
			mappedN += int64(len(b))
		} else if c, ok := cached[name]; ok {
			b, mappedN = c, mappedN+int64(len(c))
		} else if b, err = sectionData(s); err == nil {
			heap += int64(len(b))
			if _, ok := want[name]; ok && fresh != nil {
				fresh[name] = b
			}
		} else if name == "aranges" {
			continue // the units are indexed from their DIEs
		} else {
			return nil, nil, 0, 0, err
		}
		if name == "aranges" {
			ds.aranges = b
			continue
		}
		ds.sec[name] = b
		ds.order = append(ds.order, name)
	}
	if len(ds.sec["info"]) == 0 {
		return nil, nil, 0, 0, errors.New("dwarf: no .debug_info")
	}
	if cached == nil && len(fresh) > 0 && len(fresh) == len(want) {
		cache.store(id, fresh)
	}
	return ds, nil, heap, mappedN, nil
}

// newModuleDWARF indexes the units of ds (or of full).
func newModuleDWARF(ds *dwarfSections, full *dwarf.Data, mf *mapped.File, heap, mappedN int64) (md *moduleDWARF, err error) {
	defer func() {
		if p := recover(); p != nil {
			md, err = nil, fmt.Errorf("corrupt dwarf: %v", p)
		}
	}()
	md = &moduleDWARF{ds: ds, full: full, mapping: mf, mappedN: mappedN}
	index := func(d *dwarf.Data, e *dwarf.Entry, u dwarfUnit) {
		switch e.Tag {
		case dwarf.TagCompileUnit, dwarf.TagSkeletonUnit, dwarf.TagPartialUnit:
		default:
			return
		}
		if len(md.units) == 0 {
			md.skel = e.Tag == dwarf.TagSkeletonUnit
		}
		n := len(md.ranges)
		ui := uint32(len(md.units))
		md.units = append(md.units, u)
		rs, _ := d.Ranges(e)
		for _, rg := range rs {
			if rg[1] > rg[0] {
				md.ranges = append(md.ranges, unitRange{lo: rg[0], hi: rg[1], unit: ui})
			}
		}
		// The unit DIE's ranges miss code its line program covers (glibc
		// has such units): the sequences of the line program are indexed
		// too, without keeping its rows.
		md.ranges = append(md.ranges, sequenceRanges(d, e, ui)...)
		md.ranges = mergeRanges(md.ranges, n)
	}
	if ds == nil {
		if err := eachUnitDIE(full, func(e *dwarf.Entry) bool {
			index(full, e, dwarfUnit{off: e.Offset, refAddr: true, refKnown: true})
			return len(md.units) < maxDWARFUnits
		}); err != nil {
			return nil, err
		}
	} else {
		info, abbrev := ds.sec["info"], ds.sec["abbrev"]
		// The units .debug_aranges lists are indexed from it, without
		// reading their DIEs and line programs (most of the index's time:
		// 125 ms for libc's 2063 units); the others as below.
		aranges := parseAranges(ds.aranges)
		for start := uint64(0); start < uint64(len(info)) && len(md.units) < maxDWARFUnits; {
			end, abbrevOff, ok := unitBounds(info, start)
			if !ok {
				break
			}
			if rs := aranges[start]; len(rs) > 0 {
				if off, skel, ok := unitDIEOffset(info[start:end]); ok {
					if len(md.units) == 0 {
						md.skel = skel
					}
					n, ui := len(md.ranges), uint32(len(md.units))
					md.units = append(md.units, dwarfUnit{start: start, end: end, off: off})
					for _, rg := range rs {
						md.ranges = append(md.ranges, unitRange{lo: rg[0], hi: rg[1], unit: ui})
					}
					md.ranges = mergeRanges(md.ranges, n)
					md.fromAranges++
					start = end
					continue
				}
			}
			if d, err := ds.newData(info[start:end]); err == nil {
				if e, err := d.Reader().Next(); err == nil && e != nil {
					index(d, e, dwarfUnit{start: start, end: end, off: e.Offset, refAddr: refersAcross(abbrev, abbrevOff), refKnown: true})
				}
			}
			start = end
		}
	}
	slices.SortFunc(md.ranges, func(a, b unitRange) int { return cmp.Compare(a.lo, b.lo) })
	md.maxHi = make([]uint64, len(md.ranges))
	var hi uint64
	for i, rg := range md.ranges {
		hi = max(hi, rg.hi)
		md.maxHi[i] = hi
	}
	md.heap.Store(heap + int64(cap(md.units))*dwarfUnitBytes + int64(cap(md.ranges))*24 + int64(cap(md.maxHi))*8)
	return md, nil
}

// useAranges: units listed in .debug_aranges are indexed from it (tests
// compare that with the index read from every unit).
var useAranges = true

// parseAranges reads .debug_aranges: the address ranges of each unit, by
// the unit's offset in .debug_info. A set it cannot read ends the reading:
// the units of the sets read so far keep their ranges, the others are
// indexed from their DIEs.
func parseAranges(b []byte) map[uint64][][2]uint64 {
	if len(b) == 0 {
		return nil
	}
	out := map[uint64][][2]uint64{}
	for len(b) >= 4 {
		length, hdr, offSize := uint64(binary.LittleEndian.Uint32(b)), uint64(4), uint64(4)
		if length == 0xffffffff {
			if len(b) < 12 {
				break
			}
			length, hdr, offSize = binary.LittleEndian.Uint64(b[4:]), 12, 8
		} else if length >= 0xfffffff0 {
			break
		}
		if length > uint64(len(b))-hdr || length < 2+offSize+2 {
			break
		}
		set := b[:hdr+length]
		b = b[hdr+length:]
		v := set[hdr:]
		if binary.LittleEndian.Uint16(v) != 2 {
			break
		}
		var unit uint64
		if offSize == 8 {
			unit = binary.LittleEndian.Uint64(v[2:])
		} else {
			unit = uint64(binary.LittleEndian.Uint32(v[2:]))
		}
		addrSize, segSize := uint64(v[2+offSize]), v[3+offSize]
		if addrSize != 8 && addrSize != 4 || segSize != 0 {
			break
		}
		// The tuples start at a multiple of their size from the set's start.
		tuple := 2 * addrSize
		at := (hdr + 2 + offSize + 2 + tuple - 1) / tuple * tuple
		for ; at+tuple <= uint64(len(set)); at += tuple {
			var lo, n uint64
			if addrSize == 8 {
				lo, n = binary.LittleEndian.Uint64(set[at:]), binary.LittleEndian.Uint64(set[at+8:])
			} else {
				lo, n = uint64(binary.LittleEndian.Uint32(set[at:])), uint64(binary.LittleEndian.Uint32(set[at+4:]))
			}
			if lo == 0 && n == 0 {
				break
			}
			if n > 0 && lo+n > lo {
				out[unit] = append(out[unit], [2]uint64{lo, lo + n})
			}
		}
	}
	return out
}

// unitDIEOffset is the offset of the first DIE of unit u (its bytes in
// .debug_info) and whether it is a split DWARF skeleton, from the unit's
// header; ok false for a unit that is not a compile, partial or skeleton
// unit, or a header it does not know.
func unitDIEOffset(u []byte) (off dwarf.Offset, skel, ok bool) {
	hdr, offSize := 4, 4
	if len(u) >= 4 && binary.LittleEndian.Uint32(u) == 0xffffffff {
		hdr, offSize = 12, 8
	}
	if len(u) < hdr+4 {
		return 0, false, false
	}
	switch v := binary.LittleEndian.Uint16(u[hdr:]); {
	case v >= 2 && v <= 4:
		off = dwarf.Offset(hdr + 2 + offSize + 1)
	case v == 5:
		switch u[hdr+2] { // unit type
		case 0x01, 0x03: // compile, partial
			off = dwarf.Offset(hdr + 4 + offSize)
		case 0x04: // skeleton: and its dwo id
			off, skel = dwarf.Offset(hdr+4+offSize+8), true
		default:
			return 0, false, false
		}
	default:
		return 0, false, false
	}
	return off, skel, int(off) < len(u)
}

// unitBounds reads the header of the unit at start of .debug_info: its
// end and the offset of its abbreviations.
func unitBounds(info []byte, start uint64) (end, abbrevOff uint64, ok bool) {
	b := info[start:]
	if len(b) < 4 {
		return 0, 0, false
	}
	length, hdr, offSize := uint64(binary.LittleEndian.Uint32(b)), uint64(4), uint64(4)
	if length == 0xffffffff {
		if len(b) < 12 {
			return 0, 0, false
		}
		length, hdr, offSize = binary.LittleEndian.Uint64(b[4:]), 12, 8
	} else if length >= 0xfffffff0 {
		return 0, 0, false
	}
	if length > uint64(len(b))-hdr || length < 2+offSize+1 {
		return 0, 0, false
	}
	end = start + hdr + length
	v := b[hdr:]
	at := uint64(2) // version
	if binary.LittleEndian.Uint16(v) >= 5 {
		at = 4 // unit type, address size
	}
	if at+offSize > length {
		return 0, 0, false
	}
	if offSize == 8 {
		abbrevOff = binary.LittleEndian.Uint64(v[at:])
	} else {
		abbrevOff = uint64(binary.LittleEndian.Uint32(v[at:]))
	}
	return end, abbrevOff, true
}

// refersAcross reports whether the abbreviations at off use a form that
// refers into other units (DW_FORM_ref_addr, dwz's DW_FORM_GNU_ref_alt)
// or whose form is only known per DIE (DW_FORM_indirect); a table it
// cannot read counts as one that does.
func refersAcross(abbrev []byte, off uint64) bool {
	if off >= uint64(len(abbrev)) {
		return true
	}
	b := abbrev[off:]
	uleb := func() (uint64, bool) {
		v, n := binary.Uvarint(b)
		if n <= 0 {
			return 0, false
		}
		b = b[n:]
		return v, true
	}
	for decls := 0; decls < 1<<16; decls++ {
		code, ok := uleb()
		if !ok {
			return true
		}
		if code == 0 {
			return false
		}
		if _, ok := uleb(); !ok || len(b) < 1 { // tag, children
			return true
		}
		b = b[1:]
		for {
			attr, ok1 := uleb()
			form, ok2 := uleb()
			if !ok1 || !ok2 {
				return true
			}
			if attr == 0 && form == 0 {
				break
			}
			switch form {
			case 0x10, 0x1f20, 0x16: // ref_addr, GNU_ref_alt, indirect
				return true
			case 0x21: // implicit_const: a value in the declaration
				if _, n := binary.Varint(b); n <= 0 {
					return true
				} else {
					b = b[n:]
				}
			}
		}
	}
	return true
}

// split reports whether the module's DWARF is split (skeleton units).
func (md *moduleDWARF) split() bool { return md.skel }

// dropFull forgets the data with every unit (split DWARF, once read).
func (md *moduleDWARF) dropFull() {
	if md.full != nil && md.ds != nil {
		md.full = nil
		md.heap.Add(-int64(len(md.ds.sec["abbrev"])) * dwarfAbbrevFactor)
	}
}

// fullData is the data with every unit, made once. Called with md.mu
// held.
func (md *moduleDWARF) fullData() (*dwarf.Data, error) {
	if md.full != nil {
		return md.full, nil
	}
	d, err := md.ds.newData(md.ds.sec["info"])
	if err != nil {
		return nil, err
	}
	md.full = d
	md.heap.Add(int64(len(md.ds.sec["abbrev"])) * dwarfAbbrevFactor)
	return d, nil
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
			u.loaded = md.readUnit(u)
			md.heap.Add(u.loaded.bytes())
			md.grown.Store(true)
			md.dropResident()
		}
		if !slices.Contains(out, u.loaded) {
			out = append(out, u.loaded)
		}
	}
	return out
}

// dropResident takes the pages of the sections read so far out of the
// resident set: a unit's rows and inlined calls are on the heap once read,
// and the pages of its DIEs and line program were kept resident for the
// module's life (libpython's 9 MB .debug_info and 2.5 MB .debug_line most
// of a capture's mapped pages).
func (md *moduleDWARF) dropResident() {
	md.mapping.DropResident()
	if md.ds != nil {
		md.ds.cached.DropResident()
	}
}

// readUnit reads the line rows and inlined calls of unit u; a corrupt
// unit gives empty tables. Called with md.mu held.
func (md *moduleDWARF) readUnit(u *dwarfUnit) (ut *unitTables) {
	ut = &unitTables{}
	defer func() {
		if recover() != nil {
			ut = &unitTables{}
		}
	}()
	var d *dwarf.Data
	var err error
	off := u.off
	if md.ds != nil && !md.refersAcross(u) {
		d, err = md.ds.newData(md.ds.sec["info"][u.start:u.end])
	} else {
		d, err = md.fullData()
		off += dwarf.Offset(u.start)
	}
	if err != nil {
		return ut
	}
	r := d.Reader()
	r.Seek(off)
	e, err := r.Next()
	if err != nil || e == nil {
		return ut
	}
	var lb lineBuilder
	lb.addUnit(d, e)
	ut.lines, _ = lb.finish()
	b := newInlineBuilder()
	if b.addUnit(d, off, nil) == nil {
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
