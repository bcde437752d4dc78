package symbolizer

import (
	"bytes"
	"debug/elf"
	"encoding/binary"
)

// goInline decodes the inline trees of a Go 1.20+ binary, which live in
// the linker's "go:func.*" data outside the pclntab; it finds that data
// through the runtime's moduledata, located by its first word (the pclntab address),
// so stripped binaries work too.
type goInline struct {
	bo        binary.ByteOrder
	pcln      []byte // the whole .gopclntab
	textStart uint64
	quantum   uint64
	nfunc     int
	funcnames []byte
	pctab     []byte
	functab   []byte // pclntable: ftab then the _func records
	gofunc    []byte // go:func.* from its start to the end of its section
}

const (
	go120Magic          = 0xfffffff1
	pcdataInlTreeIndex  = 2
	funcdataInlTree     = 3
	moduledataGofuncIdx = 40 // word index of moduledata.gofunc (go1.20+, 64-bit)
	moduledataTextIdx   = 22
)

// newGoInline reads the header of pcln (the .gopclntab at pclnAddr); text
// is the start of .text, where Go 1.26+ no longer writes textStart.
func newGoInline(f *elf.File, pcln []byte, pclnAddr, text uint64) *goInline {
	bo := f.ByteOrder
	if len(pcln) < 8+8*8 || bo.Uint32(pcln) != go120Magic || pcln[7] != 8 {
		return nil
	}
	word := func(i int) uint64 { return bo.Uint64(pcln[8+8*i:]) }
	g := &goInline{bo: bo, pcln: pcln, quantum: uint64(pcln[6])}
	g.nfunc = int(word(0))
	if g.textStart = word(2); g.textStart == 0 {
		g.textStart = text
	}
	slice := func(off uint64) []byte {
		if off >= uint64(len(pcln)) {
			return nil
		}
		return pcln[off:]
	}
	g.funcnames, g.pctab, g.functab = slice(word(3)), slice(word(6)), slice(word(7))
	if g.funcnames == nil || g.pctab == nil || g.functab == nil || g.nfunc <= 0 || uint64(g.nfunc) > uint64(len(g.functab))/8 || g.quantum == 0 {
		return nil
	}
	// moduledata is in .noptrdata up to Go 1.25 and in .go.module since.
	for _, name := range []string{".go.module", ".noptrdata"} {
		if g.findGofunc(f, f.Section(name), pclnAddr) {
			return g
		}
	}
	return nil
}

// findGofunc looks for moduledata in sec and sets g.gofunc from it.
func (g *goInline) findGofunc(f *elf.File, sec *elf.Section, pclnAddr uint64) bool {
	if sec == nil {
		return false
	}
	data, err := sectionData(sec)
	if err != nil {
		return false
	}
	bo := g.bo
	var key [8]byte
	bo.PutUint64(key[:], pclnAddr)
	for off := 0; off < len(data); {
		i := bytes.Index(data[off:], key[:])
		if i < 0 {
			return false
		}
		at := off + i
		off = at + 1
		if at%8 != 0 || at+8*(moduledataGofuncIdx+1) > len(data) {
			continue
		}
		md := data[at:]
		if bo.Uint64(md[8*moduledataTextIdx:]) != g.textStart {
			continue
		}
		gofunc := bo.Uint64(md[8*moduledataGofuncIdx:])
		for _, s := range f.Sections {
			if s.Type != elf.SHT_PROGBITS || gofunc < s.Addr || gofunc >= s.Addr+s.Size {
				continue
			}
			sd, err := sectionData(s)
			if err != nil {
				return false
			}
			g.gofunc = sd[gofunc-s.Addr:]
			return true
		}
		return false
	}
	return false
}

// inlineFrame is one inlined call active at a pc, innermost first.
type inlineFrame struct {
	name   string
	callPC uint64 // a pc whose position is this call site, in the caller
}

// inlined returns the inlined calls active at pc, innermost first; the
// function that contains them is not included.
func (g *goInline) inlined(pc uint64) []inlineFrame {
	if g == nil || pc < g.textStart {
		return nil
	}
	rel := pc - g.textStart
	// ftab: nfunc+1 entries of (entryoff, funcoff) uint32.
	lo, hi := 0, g.nfunc
	for hi-lo > 1 {
		mid := (lo + hi) / 2
		if uint64(g.bo.Uint32(g.functab[8*mid:])) <= rel {
			lo = mid
		} else {
			hi = mid
		}
	}
	funcOff := uint64(g.bo.Uint32(g.functab[8*lo+4:]))
	if funcOff+44 > uint64(len(g.functab)) {
		return nil
	}
	fn := g.functab[funcOff:]
	entry := g.textStart + uint64(g.bo.Uint32(fn))
	npcdata, nfuncdata := uint64(g.bo.Uint32(fn[28:])), uint64(fn[43])
	if npcdata <= pcdataInlTreeIndex || nfuncdata <= funcdataInlTree || 44+4*(npcdata+nfuncdata) > uint64(len(fn)) {
		return nil
	}
	pcdata := uint64(g.bo.Uint32(fn[44+4*pcdataInlTreeIndex:]))
	treeOff := uint64(g.bo.Uint32(fn[44+4*npcdata+4*funcdataInlTree:]))
	if pcdata == 0 || treeOff == 1<<32-1 || treeOff >= uint64(len(g.gofunc)) {
		return nil
	}
	tree := g.gofunc[treeOff:]
	var out []inlineFrame
	for idx := g.pcvalue(pcdata, entry, pc); idx >= 0 && len(out) < 64; {
		rec := uint64(idx) * 16
		if rec+16 > uint64(len(tree)) {
			break
		}
		nameOff := uint64(g.bo.Uint32(tree[rec+4:]))
		parent := entry + uint64(int64(int32(g.bo.Uint32(tree[rec+8:]))))
		out = append(out, inlineFrame{name: g.name(nameOff), callPC: parent})
		next := g.pcvalue(pcdata, entry, parent)
		if next >= idx { // the tree only points to outer calls
			break
		}
		idx = next
	}
	return out
}

func (g *goInline) name(off uint64) string {
	if off >= uint64(len(g.funcnames)) {
		return ""
	}
	b := g.funcnames[off:]
	if i := bytes.IndexByte(b, 0); i >= 0 {
		b = b[:i]
	}
	return string(b)
}

// pcvalue decodes the pc-value table at off (zig-zag varint value deltas,
// varint pc deltas in quantum units) for targetPC; -1 when absent.
func (g *goInline) pcvalue(off, entry, targetPC uint64) int64 {
	if off >= uint64(len(g.pctab)) {
		return -1
	}
	p := g.pctab[off:]
	val, pc := int64(-1), entry
	for first := true; ; first = false {
		uv, n := binary.Uvarint(p)
		if n <= 0 || uv == 0 && !first {
			return -1
		}
		p = p[n:]
		if uv&1 != 0 {
			val += int64(^(uv >> 1))
		} else {
			val += int64(uv >> 1)
		}
		pcd, n := binary.Uvarint(p)
		if n <= 0 {
			return -1
		}
		p = p[n:]
		pc += pcd * g.quantum
		if targetPC < pc {
			return val
		}
	}
}
