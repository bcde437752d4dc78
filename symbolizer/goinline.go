package symbolizer

import (
	"bytes"
	"debug/elf"
	"encoding/binary"

	"github.com/scorch-dev/scorch/internal/gopclntab"
	"github.com/scorch-dev/scorch/internal/mapped"
)

// goInline decodes the inline trees of a Go 1.20+ binary, which live in
// the linker's "go:func.*" data outside the pclntab; it finds that data
// through the runtime's moduledata, located by its first word (the pclntab address),
// so stripped binaries work too.
type goInline struct {
	bo      binary.ByteOrder
	tab     *gopclntab.Table
	gofunc  []byte // go:func.* from its start to the end of its section
	inPlace bool   // gofunc is in the mapped file, not a copy
}

const (
	pcdataInlTreeIndex  = 2
	funcdataInlTree     = 3
	moduledataGofuncIdx = 40 // word index of moduledata.gofunc (go1.20+, 64-bit)
	moduledataTextIdx   = 22
)

// newGoInline finds the inline trees of the pclntab tab (the .gopclntab
// at pclnAddr), in the mapped file mf when it is not nil.
func newGoInline(f *elf.File, mf *mapped.File, tab *gopclntab.Table, pclnAddr uint64) *goInline {
	g := &goInline{bo: f.ByteOrder, tab: tab}
	// moduledata is in .noptrdata up to Go 1.25 and in .go.module since.
	for _, name := range []string{".go.module", ".noptrdata"} {
		if g.findGofunc(f, mf, f.Section(name), pclnAddr) {
			return g
		}
	}
	return nil
}

// findGofunc looks for moduledata in sec and sets g.gofunc from it.
func (g *goInline) findGofunc(f *elf.File, mf *mapped.File, sec *elf.Section, pclnAddr uint64) bool {
	if sec == nil {
		return false
	}
	data, err := mf.Section(sec)
	if err != nil {
		data, err = sectionData(sec)
	}
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
		if bo.Uint64(md[8*moduledataTextIdx:]) != g.tab.TextStart {
			continue
		}
		gofunc := bo.Uint64(md[8*moduledataGofuncIdx:])
		for _, s := range f.Sections {
			if s.Type != elf.SHT_PROGBITS || gofunc < s.Addr || gofunc >= s.Addr+s.Size {
				continue
			}
			if sd, err := mf.Section(s); err == nil {
				g.gofunc, g.inPlace = sd[gofunc-s.Addr:], true
				return true
			}
			sd, err := sectionData(s)
			if err != nil {
				return false
			}
			// A copy: the section around it (all of .rodata) is not kept.
			g.gofunc = bytes.Clone(sd[gofunc-s.Addr:])
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
func (g *goInline) inlined(fn gopclntab.Func, pc uint64) []inlineFrame {
	if g == nil {
		return nil
	}
	pcdata := fn.PCData(pcdataInlTreeIndex)
	treeOff, ok := fn.FuncData(funcdataInlTree)
	if pcdata == 0 || !ok || uint64(treeOff) >= uint64(len(g.gofunc)) {
		return nil
	}
	tree := g.gofunc[treeOff:]
	index := func(pc uint64) int64 {
		if v, ok := g.tab.Value(pcdata, fn.Entry, pc); ok {
			return v
		}
		return -1
	}
	var out []inlineFrame
	for idx := index(pc); idx >= 0 && len(out) < 64; {
		rec := uint64(idx) * 16
		if rec+16 > uint64(len(tree)) {
			break
		}
		nameOff := g.bo.Uint32(tree[rec+4:])
		parent := fn.Entry + uint64(int64(int32(g.bo.Uint32(tree[rec+8:]))))
		out = append(out, inlineFrame{name: g.tab.Name(nameOff), callPC: parent})
		next := index(parent)
		if next >= idx { // the tree only points to outer calls
			break
		}
		idx = next
	}
	return out
}
