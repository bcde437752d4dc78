package unwind

import (
	"cmp"
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"slices"
)

// The CFI of a file as the compact tables' builder reads it: an index of
// its FDEs (28 bytes each, pointing into the section's bytes) and its few
// CIEs, without an object per entry. A parsed FDE of delve's, with the
// slices and the sorted copy it lives in, was about 100 bytes of heap, and
// a large binary has 50k-100k of them.

// cieRec is what the CFI programs of a CIE's FDEs need of it.
type cieRec struct {
	codeAlign uint64
	dataAlign int64
	retReg    uint64
	initial   []byte // the initial instructions
	enc       uint8  // how FDE addresses are encoded ('R'); ptrAbs without
	aug       bool   // FDEs have augmentation data ('z')
	sec       []byte // the section the CIE and its FDEs are in
}

// fdeRec is one FDE: its pc range and its instructions, cies[cie].sec[off:off+n].
type fdeRec struct {
	begin, end uint64
	off, n     uint32
	cie        uint32
}

// cfiIndex is the FDEs of a file's sections, sorted by begin.
type cfiIndex struct {
	cies []cieRec
	fdes []fdeRec
}

func (x *cfiIndex) instructions(f *fdeRec) []byte {
	s := x.cies[f.cie].sec
	return s[f.off : f.off+f.n : f.off+f.n]
}

// Pointer encodings (DW_EH_PE_*) of .eh_frame.
const (
	ptrAbs    = 0x00
	ptrUleb   = 0x01
	ptrUdata2 = 0x02
	ptrUdata4 = 0x03
	ptrUdata8 = 0x04
	ptrSigned = 0x08
	ptrSleb   = 0x09
	ptrSdata2 = 0x0a
	ptrSdata4 = 0x0b
	ptrSdata8 = 0x0c
	ptrPCRel  = 0x10
	ptrOmit   = 0xff
)

// ptrSupported: the value formats, absolute or pc-relative (the others,
// relative to sections the file does not say, are not read).
func ptrSupported(e uint8) bool {
	if e == ptrOmit {
		return true
	}
	switch e & 0x0f {
	case ptrAbs, ptrUleb, ptrUdata2, ptrUdata4, ptrUdata8, ptrSigned, ptrSleb, ptrSdata2, ptrSdata4, ptrSdata8:
	default:
		return false
	}
	return e&0xf0 == 0 || e&0xf0 == ptrPCRel
}

// errShort is a read past the end of an entry.
var errShort = errors.New("truncated CFI entry")

// cfiReader reads little-endian DWARF values from b; a read past its end
// sets short and returns zero.
type cfiReader struct {
	b     []byte
	i     int
	short bool
}

func (r *cfiReader) left() int { return len(r.b) - r.i }

func (r *cfiReader) byte() uint8 {
	if r.i >= len(r.b) {
		r.short = true
		return 0
	}
	r.i++
	return r.b[r.i-1]
}

func (r *cfiReader) fixed(n int) uint64 {
	if r.left() < n {
		r.short, r.i = true, len(r.b)
		return 0
	}
	var v uint64
	for k := n - 1; k >= 0; k-- {
		v = v<<8 | uint64(r.b[r.i+k])
	}
	r.i += n
	return v
}

// leb reads a LEB128 number's bits, the shift past them and whether its
// sign bit (of the last byte) is set; a number cut short by the end of the
// data has no sign.
func (r *cfiReader) leb() (v uint64, shift uint, neg bool) {
	for {
		if r.i >= len(r.b) {
			r.short = true
			return v, shift, false
		}
		c := r.b[r.i]
		r.i++
		if shift < 64 {
			v |= uint64(c&0x7f) << shift
		}
		shift += 7
		if c&0x80 == 0 {
			return v, shift, c&0x40 != 0
		}
	}
}

func (r *cfiReader) uleb() uint64 {
	v, _, _ := r.leb()
	return v
}

func (r *cfiReader) sleb() int64 {
	v, shift, neg := r.leb()
	if neg && shift < 64 {
		v |= ^uint64(0) << shift
	}
	return int64(v)
}

// block reads a ULEB128 length and that many bytes.
func (r *cfiReader) block() []byte {
	n := r.uleb()
	if n > uint64(r.left()) {
		r.short, r.i = true, len(r.b)
		return nil
	}
	b := r.b[r.i : r.i+int(n) : r.i+int(n)]
	r.i += int(n)
	return b
}

// ptr reads a pointer in encoding e; at is the address of the byte it
// starts at (for pc-relative ones).
func (r *cfiReader) ptr(e uint8, at uint64) uint64 {
	if e == ptrOmit {
		return 0
	}
	var v uint64
	switch e & 0x0f {
	case ptrAbs, ptrSigned, ptrUdata8, ptrSdata8:
		v = r.fixed(8)
	case ptrUleb:
		v = r.uleb()
	case ptrUdata2:
		v = r.fixed(2)
	case ptrSdata2:
		v = uint64(int16(r.fixed(2)))
	case ptrUdata4:
		v = r.fixed(4)
	case ptrSdata4:
		v = uint64(int32(r.fixed(4)))
	case ptrSleb:
		v = uint64(r.sleb())
	}
	if e&0xf0 == ptrPCRel {
		v += at
	}
	return v
}

// scan adds the CIEs and FDEs of one section: .eh_frame (eh, addr its
// address, whose pc-relative pointers count from there) or .debug_frame.
// An error leaves the index as it was.
func (x *cfiIndex) scan(sec []byte, eh bool, addr uint64) error {
	if len(sec) > math.MaxUint32 {
		return fmt.Errorf("CFI section of %d bytes", len(sec))
	}
	ncies, nfdes := len(x.cies), len(x.fdes)
	err := x.scanEntries(sec, eh, addr)
	if err != nil {
		x.cies, x.fdes = x.cies[:ncies], x.fdes[:nfdes]
	}
	return err
}

func (x *cfiIndex) scanEntries(sec []byte, eh bool, addr uint64) error {
	// The entries, counted first: the index is then allocated once (grown
	// by append, it allocated four times its size).
	x.fdes = slices.Grow(x.fdes, countEntries(sec))
	cieAt := map[uint64]uint32{} // section offset of a CIE: its index
	for off := 0; off < len(sec); {
		start := off
		r := cfiReader{b: sec, i: off}
		length := r.fixed(4)
		idSize := 4 // .eh_frame's CIE pointers are 4 bytes in any case
		if length == 0xffffffff {
			length = r.fixed(8) // 64-bit DWARF
			if !eh {
				idSize = 8
			}
		}
		if r.short {
			return fmt.Errorf("CFI entry at %#x: %w", start, errShort)
		}
		if length == 0 {
			off = r.i // a terminator (eh_frame's last entry); the parse goes on
			continue
		}
		if length > uint64(r.left()) {
			return fmt.Errorf("CFI entry at %#x: %d bytes past the section's end", start, length-uint64(r.left()))
		}
		end := r.i + int(length)
		off = end
		idAt := r.i
		e := cfiReader{b: sec[:end], i: r.i}
		id := e.fixed(idSize)
		isCIE := id == 0
		if !eh {
			isCIE = idSize == 4 && id == 0xffffffff || idSize == 8 && id == math.MaxUint64
		}
		if isCIE {
			c, err := parseCIE(&e, eh)
			if err != nil {
				return fmt.Errorf("CIE at %#x: %w", start, err)
			}
			c.sec = sec
			cieAt[uint64(start)] = uint32(len(x.cies))
			x.cies = append(x.cies, c)
			continue
		}
		cieOff := id // .debug_frame: an offset in the section
		if eh {
			cieOff = uint64(idAt) - id // back from the pointer itself
		}
		ci, ok := cieAt[cieOff]
		if !ok {
			return fmt.Errorf("FDE at %#x: unknown CIE at %#x", start, cieOff)
		}
		c := &x.cies[ci]
		var begin, size uint64
		if eh {
			begin = e.ptr(c.enc, addr+uint64(e.i))
			size = e.ptr(c.enc&0x0f, 0)
		} else {
			begin, size = e.fixed(8), e.fixed(8)
		}
		if eh && c.aug {
			n := e.uleb()
			if n > uint64(e.left()) {
				e.short = true
			} else {
				e.i += int(n)
			}
		}
		if e.short {
			return fmt.Errorf("FDE at %#x: %w", start, errShort)
		}
		x.fdes = append(x.fdes, fdeRec{begin: begin, end: begin + size, off: uint32(e.i), n: uint32(end - e.i), cie: ci})
	}
	return nil
}

// countEntries counts the CIEs and FDEs of a section, following their
// lengths only.
func countEntries(sec []byte) int {
	n := 0
	for off := 0; off+4 <= len(sec); {
		length := uint64(binary.LittleEndian.Uint32(sec[off:]))
		off += 4
		if length == 0xffffffff {
			if off+8 > len(sec) {
				break
			}
			length = binary.LittleEndian.Uint64(sec[off:])
			off += 8
		}
		if length > uint64(len(sec)-off) {
			break
		}
		if length > 0 {
			n++
		}
		off += int(length)
	}
	return n
}

// parseCIE reads a CIE's fields after its id.
func parseCIE(r *cfiReader, eh bool) (cieRec, error) {
	var c cieRec
	version := r.byte()
	augAt := r.i
	for r.i < len(r.b) && r.b[r.i] != 0 {
		r.i++
	}
	aug := r.b[augAt:r.i]
	r.byte() // its NUL
	if eh && len(aug) > 0 && aug[0] != 'z' {
		return c, fmt.Errorf("augmentation %q not understood", aug)
	}
	if !eh && version >= 4 {
		r.byte() // address_size
		r.byte() // segment_selector_size
	}
	c.codeAlign = r.uleb()
	c.dataAlign = r.sleb()
	if version == 1 {
		c.retReg = uint64(r.byte())
	} else {
		c.retReg = r.uleb()
	}
	if eh && len(aug) > 0 {
		c.aug = true
		n := r.uleb()
		if n > uint64(r.left()) {
			return c, errShort
		}
		data := cfiReader{b: r.b[r.i : r.i+int(n)]}
		r.i += int(n)
	chars:
		for _, ch := range aug[1:] {
			switch ch {
			case 'L': // the LSDA's encoding
				data.byte()
			case 'R':
				c.enc = data.byte()
				if !ptrSupported(c.enc) {
					return c, fmt.Errorf("pointer encoding %#x not supported", c.enc)
				}
			case 'P': // the personality routine
				e := data.byte() &^ 0x80 // indirect: the pointer's address
				if !ptrSupported(e) {
					return c, fmt.Errorf("pointer encoding %#x not supported", e)
				}
				data.ptr(e, 0)
			case 'S', 'B', 'G': // a signal frame, arm64's BTI and MTE: no data
			default:
				// Its data, and that of any later ones, is within the
				// length: skipped.
				break chars
			}
		}
		if data.short {
			return c, errShort
		}
	}
	if r.short {
		return c, errShort
	}
	c.initial = r.b[r.i:len(r.b):len(r.b)]
	return c, nil
}

// sortFDEs sorts the FDEs by begin, the order of sections and of entries
// kept among equal ones, and drops each FDE of the same range as the one
// before it.
func (x *cfiIndex) sortFDEs() {
	slices.SortStableFunc(x.fdes, func(a, b fdeRec) int { return cmp.Compare(a.begin, b.begin) })
	if len(x.fdes) < 2 {
		return
	}
	kept := 1
	for i := 1; i < len(x.fdes); i++ {
		if x.fdes[i].begin != x.fdes[i-1].begin || x.fdes[i].end != x.fdes[i-1].end {
			x.fdes[kept] = x.fdes[i]
			kept++
		}
	}
	x.fdes = x.fdes[:kept]
}
