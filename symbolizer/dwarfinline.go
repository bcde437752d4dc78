package symbolizer

import (
	"cmp"
	"debug/dwarf"
	"errors"
	"fmt"
	"slices"
)

// inlineTable holds a module's inlined calls from DWARF
// (DW_TAG_inlined_subroutine): for each one its address ranges, how deeply
// it is nested in other inlined calls, the inlined function's name and
// where it was called from.
type inlineTable struct {
	ranges []inlineRange // sorted by lo, then depth
	maxHi  []uint64      // maxHi[i]: the largest hi of ranges[:i+1]
	names  []string
	files  []string
}

type inlineRange struct {
	lo, hi   uint64
	depth    uint16
	name     uint32 // index into names
	callFile uint32 // index into files
	callLine uint32
}

// maxInlineRanges bounds one module's table.
const maxInlineRanges = 8 << 20

// inlineBuilder walks the DIEs of code (compile units, namespaces,
// functions, blocks) for inlined subroutines, skipping types and data: it
// gathers the inlined calls of one module from one or more
// DWARF sources (split DWARF: a .dwo per compilation unit).
type inlineBuilder struct {
	it      *inlineTable
	nameIdx map[string]uint32
	fileIdx map[string]uint32
}

func newInlineBuilder() *inlineBuilder {
	return &inlineBuilder{it: &inlineTable{}, nameIdx: map[string]uint32{}, fileIdx: map[string]uint32{}}
}

// add reads d's inlined calls. unitFiles, when set, are the file names of
// d's compile units (a .dwo's call_file attributes index its skeleton's
// line table); nil: each unit's own line table.
func (b *inlineBuilder) add(d *dwarf.Data, unitFiles []*dwarf.LineFile) error {
	return b.addFrom(d, 0, false, unitFiles)
}

// addUnit reads the inlined calls of the unit at off only.
func (b *inlineBuilder) addUnit(d *dwarf.Data, off dwarf.Offset, unitFiles []*dwarf.LineFile) error {
	return b.addFrom(d, off, true, unitFiles)
}

// addFrom reads the inlined calls from the unit at off on: that unit
// alone when one is set, else every unit to the end.
func (b *inlineBuilder) addFrom(d *dwarf.Data, off dwarf.Offset, one bool, unitFiles []*dwarf.LineFile) (err error) {
	defer func() {
		if p := recover(); p != nil {
			err = fmt.Errorf("corrupt dwarf: %v", p)
		}
	}()
	it := b.it
	nameIdx, fileIdx := b.nameIdx, b.fileIdx
	intern := func(m map[string]uint32, list *[]string, s string) uint32 {
		i, ok := m[s]
		if !ok {
			i = uint32(len(*list))
			m[s] = i
			*list = append(*list, s)
		}
		return i
	}
	origins := map[dwarf.Offset]string{}
	or := d.Reader()
	var originName func(off dwarf.Offset, hops int) string
	originName = func(off dwarf.Offset, hops int) string {
		if n, ok := origins[off]; ok {
			return n
		}
		or.Seek(off)
		e, err := or.Next()
		name := ""
		if err == nil && e != nil {
			if n, ok := e.Val(dwarf.AttrLinkageName).(string); ok {
				name = n
			} else if n, ok := e.Val(dwarf.AttrName).(string); ok {
				name = n
			} else if hops < 4 {
				for _, a := range []dwarf.Attr{dwarf.AttrSpecification, dwarf.AttrAbstractOrigin} {
					if o, ok := e.Val(a).(dwarf.Offset); ok {
						name = originName(o, hops+1)
						break
					}
				}
			}
		}
		origins[off] = name
		return name
	}

	r := d.Reader()
	if off != 0 {
		r.Seek(off)
	}
	units := 0
	var files []*dwarf.LineFile
	var stack []bool // per open DIE with children: is it an inlined call
	depth := 0       // inlined calls among the open DIEs
	for len(it.ranges) < maxInlineRanges {
		e, err := r.Next()
		if err != nil {
			return fmt.Errorf("dwarf: %w", err)
		}
		if e == nil {
			break
		}
		if e.Tag == 0 {
			if n := len(stack); n > 0 {
				if stack[n-1] {
					depth--
				}
				stack = stack[:n-1]
			}
			continue
		}
		switch e.Tag {
		case dwarf.TagCompileUnit, dwarf.TagPartialUnit:
			if units++; one && units > 1 {
				return nil
			}
			stack, depth, files = stack[:0], 0, unitFiles
			if unitFiles == nil {
				if lr, err := d.LineReader(e); err == nil && lr != nil {
					files = lr.Files()
				}
			}
		case dwarf.TagInlinedSubroutine:
			origin, ok := e.Val(dwarf.AttrAbstractOrigin).(dwarf.Offset)
			if !ok {
				break
			}
			rs, err := d.Ranges(e)
			if err != nil || len(rs) == 0 {
				break
			}
			name := originName(origin, 0)
			callFile := ""
			if fi, ok := e.Val(dwarf.AttrCallFile).(int64); ok && fi >= 0 && fi < int64(len(files)) && files[fi] != nil {
				callFile = files[fi].Name
			}
			callLine, _ := e.Val(dwarf.AttrCallLine).(int64)
			ni, fi := intern(nameIdx, &it.names, name), intern(fileIdx, &it.files, callFile)
			for _, rg := range rs {
				if rg[1] > rg[0] {
					it.ranges = append(it.ranges, inlineRange{lo: rg[0], hi: rg[1], depth: uint16(min(depth, 1<<16-1)),
						name: ni, callFile: fi, callLine: uint32(max(min(callLine, 1<<32-1), 0))})
				}
			}
		}
		if e.Children && !holdsCode(e) {
			r.SkipChildren()
			continue
		}
		if e.Children {
			inl := e.Tag == dwarf.TagInlinedSubroutine
			stack = append(stack, inl)
			if inl {
				depth++
			}
		}
	}
	return nil
}

// finish sorts the calls gathered.
func (b *inlineBuilder) finish() (*inlineTable, error) {
	it := b.it
	if len(it.ranges) == 0 {
		return nil, errors.New("no inlined calls")
	}
	slices.SortFunc(it.ranges, func(a, b inlineRange) int {
		return cmp.Or(cmp.Compare(a.lo, b.lo), cmp.Compare(a.depth, b.depth))
	})
	it.maxHi = make([]uint64, len(it.ranges))
	var hi uint64
	for i, rg := range it.ranges {
		hi = max(hi, rg.hi)
		it.maxHi[i] = hi
	}
	return it, nil
}

// holdsCode reports whether a DIE's children may hold inlined calls with
// addresses: not types, not abstract or declared-only functions.
func holdsCode(e *dwarf.Entry) bool {
	switch e.Tag {
	case dwarf.TagCompileUnit, dwarf.TagPartialUnit, dwarf.TagNamespace, dwarf.TagLexDwarfBlock,
		dwarf.TagInlinedSubroutine, dwarf.TagTryDwarfBlock, dwarf.TagCatchDwarfBlock:
		return true
	case dwarf.TagSubprogram:
		_, low := e.Val(dwarf.AttrLowpc).(uint64)
		return low || e.Val(dwarf.AttrRanges) != nil
	}
	return false
}

// chain returns the inlined calls covering addr, outermost first, one per
// depth.
func (it *inlineTable) chain(addr uint64) []inlineRange {
	if it == nil {
		return nil
	}
	i, _ := slices.BinarySearchFunc(it.ranges, addr+1, func(r inlineRange, a uint64) int { return cmp.Compare(r.lo, a) })
	var out []inlineRange
	for i--; i >= 0 && it.maxHi[i] > addr; i-- {
		if rg := it.ranges[i]; rg.lo <= addr && addr < rg.hi {
			out = append(out, rg)
		}
	}
	slices.SortStableFunc(out, func(a, b inlineRange) int { return cmp.Compare(a.depth, b.depth) })
	// One call per depth: the innermost range found at a depth wins.
	out = slices.CompactFunc(out, func(a, b inlineRange) bool { return a.depth == b.depth })
	return out
}

func (it *inlineTable) bytes() int64 {
	if it == nil {
		return 0
	}
	n := int64(cap(it.ranges)*32 + cap(it.maxHi)*8)
	for _, s := range it.names {
		n += int64(len(s)) + 16
	}
	for _, s := range it.files {
		n += int64(len(s)) + 16
	}
	return n
}

// inlineCall is one inlined call of a chain, its strings resolved.
type inlineCall struct {
	depth    uint16
	name     string
	callFile string
	callLine int
}

// calls returns the inlined calls covering addr, outermost first.
func (it *inlineTable) calls(addr uint64) []inlineCall {
	chain := it.chain(addr)
	if len(chain) == 0 {
		return nil
	}
	out := make([]inlineCall, len(chain))
	for i, c := range chain {
		out[i] = inlineCall{depth: c.depth, name: it.names[c.name], callFile: it.files[c.callFile], callLine: int(c.callLine)}
	}
	return out
}

// nativeFrames expands a native frame at addr into its inlined calls,
// innermost first: the innermost at addr's line, each caller at the line
// of the call it made; the physical frame (fr) last. The module's DWARF
// units it needs are read now.
func (m *module) nativeFrames(fr Frame, addr uint64) []Frame {
	if m.dwarf == nil {
		return []Frame{fr}
	}
	return m.dwarf.frames(fr, addr)
}

// expandInlined expands fr at addr with one unit's (or module's) tables.
func expandInlined(fr Frame, addr uint64, lines *lineTable, inlines *inlineTable) []Frame {
	return expandChain(fr, addr, lines, inlines.calls(addr))
}

// expandChain expands fr at addr into the inlined calls chain (outermost
// first), with file:line from lines.
func expandChain(fr Frame, addr uint64, lines *lineTable, chain []inlineCall) []Frame {
	file, line, hasLine := lines.lookup(addr)
	if len(chain) == 0 {
		if hasLine {
			fr.File, fr.Line = file, line
		}
		return []Frame{fr}
	}
	out := make([]Frame, 0, len(chain)+1)
	for j := len(chain) - 1; j >= 0; j-- {
		f := fr
		f.Inlined, f.SystemName = true, ""
		f.setName(chain[j].name)
		if f.Name == "" {
			f.Name = "[inlined]"
		}
		f.File, f.Line = "", 0
		if hasLine {
			f.File, f.Line = file, line
		}
		out = append(out, f)
		file, line = chain[j].callFile, chain[j].callLine
		hasLine = line > 0
	}
	fr.File, fr.Line = "", 0
	if hasLine {
		fr.File, fr.Line = file, line
	}
	return append(out, fr)
}
