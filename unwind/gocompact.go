package unwind

import (
	"debug/elf"
	"fmt"
	"io"
	"math"
	"sort"

	"github.com/scorch-dev/scorch/internal/gopclntab"
	"github.com/scorch-dev/scorch/internal/mapped"
)

// span is a pc range [lo, hi) with one rule.
type span struct {
	lo, hi uint64
	rule   Rule
}

// goRules are the rules a Go binary's pclntab gives: the frame size of
// every pc (pcsp), which stripped binaries keep when their .debug_frame is
// gone, and the functions that end a stack.
type goRules struct {
	spans []span // sorted, not overlapping
	top   []span // TOPFRAME functions (goexit, mstart, rt0_go); rule unused
	funcs int    // functions read
	// The reading of functions: readGoRules reads them all; BuildCompact
	// reads them as its walk over the addresses goes (streamGoRules), and
	// spans then holds only those not passed yet.
	tab  *gopclntab.Table
	arch Arch
	code *codeReader
	next int    // the next function to read
	last uint64 // end of the last span read: functions out of order are skipped
	gone int    // spans dropped from the front of spans (passed)
}

// maxGoFrame bounds a frame size read from pcsp (runtime.call1073741824 has
// a 1 GiB frame); more does not fit a rule.
const maxGoFrame = math.MaxInt32 - 16

// readGoRules reads the pclntab of a Go binary; nil, nil when the file has
// none.
//
// The rules, checked on Go 1.26's amd64 and arm64 code:
//   - x86-64: the call pushed the return address, so CFA = sp + spdelta + 8
//     and the return address is at CFA-8. A function with a frame starts
//     with PUSHQ BP; MOVQ SP, BP (after its stack check), so from the
//     instruction after the push, while spdelta ≥ 8, the caller's rbp is
//     at CFA-16; POPQ BP before RET brings spdelta back to 0.
//   - arm64: CFA = sp + spdelta. A leaf without a frame keeps its return
//     address in x30; a frame stores x30 at its new sp (CFA-spdelta) and
//     the caller's x29 just below it (CFA-spdelta-8), in small frames with
//     one instruction (MOVD R29, -8(RSP)) after sp moved, in large ones
//     before.
//   - TOPFRAME functions have nothing to return to.
//   - SPWRITE functions (systemstack, mcall, morestack…) move sp to another
//     stack, where spdelta means nothing; x86-64's systemstack keeps rbp on
//     the goroutine's frame, so past its prologue rbp gives the frame, on
//     the stack it came from (CFAFPSwitch: the one rule a walk may go down
//     by, from the thread's g0 stack to the goroutine's). The others end
//     the walk, as Go's tracebacks end there.
func readGoRules(f *elf.File, a Arch) (*goRules, error) {
	g, err := streamGoRules(f, a, nil)
	if g == nil {
		return nil, err
	}
	for g.readFunc() {
	}
	return g, nil
}

// streamGoRules is readGoRules without reading the functions' spans: the
// caller reads them in address order (readFunc, spanAt), and drops those
// it has passed (pass). An unstripped binary's FDEs cover nearly all of
// its code, and its 40-byte spans (300k in scorch's own binary) were most
// of its table's build memory.
//
// mf, when not nil, is the file's mapping: the pclntab and the code are
// read in place, and must not be used once it is unmapped.
func streamGoRules(f *elf.File, a Arch, mf *mapped.File) (*goRules, error) {
	sec := f.Section(".gopclntab")
	if sec == nil || sec.Type == elf.SHT_NOBITS {
		return nil, nil
	}
	data, err := sectionData(mf, sec)
	if err != nil {
		return nil, fmt.Errorf("reading .gopclntab: %w", err)
	}
	var textAddr uint64
	text := f.Section(".text")
	if text != nil {
		textAddr = text.Addr
	}
	tab, err := gopclntab.Parse(data, f.ByteOrder, textAddr)
	if err != nil {
		return nil, err
	}
	g := &goRules{tab: tab, arch: a, code: &codeReader{sec: text}}
	if b, err := mf.Section(text); err == nil {
		g.code.mapped = b
	}
	// The outermost functions, up front: a few, and the FDEs' rows ask
	// about them before the spans are read that far.
	var end uint64
	for i := range tab.NumFuncs() {
		fn, ok := tab.Func(i)
		if !ok || fn.Entry < end || fn.PCSP == 0 {
			continue
		}
		end = fn.End
		if fn.Flag&gopclntab.FlagTopFrame != 0 {
			g.top = append(g.top, span{lo: fn.Entry, hi: fn.End})
		}
	}
	return g, nil
}

// readFunc reads the spans of the next function with a frame-size table;
// false when there are no more.
func (g *goRules) readFunc() bool {
	for g.tab != nil && g.next < g.tab.NumFuncs() {
		fn, ok := g.tab.Func(g.next)
		g.next++
		if !ok || fn.Entry < g.last || fn.PCSP == 0 {
			continue // a record that does not fit, or out of order: no rule
		}
		g.funcs++
		n := len(g.spans)
		g.addFunc(g.tab, fn, g.arch, g.code)
		if len(g.spans) > n {
			g.last = g.spans[len(g.spans)-1].hi
		}
		return true
	}
	return false
}

// spanAt returns the i-th span (counting those passed), reading functions
// until there is one; false past the last.
func (g *goRules) spanAt(i int) (span, bool) {
	if g == nil {
		return span{}, false
	}
	for i-g.gone >= len(g.spans) {
		if !g.readFunc() {
			return span{}, false
		}
	}
	return g.spans[i-g.gone], true
}

// pass drops the spans before the i-th: the builder is past them. The
// slice is reused once most of it is passed.
func (g *goRules) pass(i int) {
	if g == nil || i-g.gone < len(g.spans)/2+64 {
		return
	}
	n := copy(g.spans, g.spans[i-g.gone:])
	g.spans = g.spans[:n]
	g.gone = i
}

// addFunc appends the spans of one function.
func (g *goRules) addFunc(tab *gopclntab.Table, fn gopclntab.Func, a Arch, code *codeReader) {
	// The prologue: where spdelta first becomes positive.
	var framed bool
	var first uint64 // pc of the first positive spdelta
	tab.Values(fn.PCSP, fn.Entry, func(lo, hi uint64, v int64) bool {
		if v > 0 {
			first = lo
			framed = true
			return false
		}
		return true
	})
	pushBP, fpFrom, fpRule := false, uint64(0), false
	if framed {
		if a.LinkReg {
			fpRule, fpFrom = true, first
			// MOVD R29, -8(RSP) at the first pc of the frame: x29 is stored
			// by the next instruction.
			if b, ok := code.at(first, 4); ok && b[0] == 0xfd && b[1] == 0x83 && b[2] == 0x1f && b[3] == 0xf8 {
				fpFrom = first + 4
			}
		} else if b, ok := code.at(first-1, 4); ok && b[0] == 0x55 {
			pushBP, fpRule, fpFrom = true, true, first
			if b[1] == 0x48 && b[2] == 0x89 && b[3] == 0xe5 { // MOVQ SP, BP
				fpFrom = first + 3
			}
		}
	}
	top := fn.Flag&gopclntab.FlagTopFrame != 0
	spwrite := fn.Flag&gopclntab.FlagSPWrite != 0
	// Runs merge within the function only: the spans of earlier ones may
	// have been passed to the builder already (the builder merges them).
	first0 := len(g.spans)
	emit := func(lo, hi uint64, r Rule) {
		lo, hi = max(lo, fn.Entry), min(hi, fn.End)
		if lo >= hi {
			return
		}
		if n := len(g.spans); n > first0 && g.spans[n-1].hi == lo && g.spans[n-1].rule == r {
			g.spans[n-1].hi = hi
			return
		}
		g.spans = append(g.spans, span{lo, hi, r})
	}
	tab.Values(fn.PCSP, fn.Entry, func(lo, hi uint64, v int64) bool {
		if lo >= fn.End {
			return false
		}
		if v < -maxGoFrame || v > maxGoFrame {
			emit(lo, hi, Rule{CFA: CFAUnsupported})
			return true
		}
		// A function that moves sp to another stack and leaves no frame
		// pointer to the one it came from (mcall, morestack, and
		// systemstack on arm64) ends the walk, as it ends Go's own
		// tracebacks: its pcsp says nothing of the other stack.
		r := goRule(a, v, top || spwrite && !pushBP)
		// Split the run where the saved frame pointer becomes readable.
		if fpRule && v > 0 && lo < fpFrom && fpFrom < hi {
			emit(lo, fpFrom, r)
			lo = fpFrom
		}
		if fpRule && v > 0 && lo >= fpFrom && (a.LinkReg || v >= 8) {
			if a.LinkReg {
				r.FP, r.FPOffset = FPAtCFA, int32(-v-8)
			} else {
				r.FP, r.FPOffset = FPAtCFA, -16
				if spwrite && pushBP {
					r.CFA, r.CFAOffset = CFAFPSwitch, 16
				}
			}
		}
		emit(lo, hi, r)
		return true
	})
}

// goRule is the rule of a pc whose frame is v bytes below the entry's sp.
func goRule(a Arch, v int64, top bool) Rule {
	var r Rule
	switch {
	case !a.LinkReg:
		r = Rule{CFA: CFASP, CFAOffset: int32(v + 8), RA: RAAtCFA, RAOffset: -8}
	case v <= 0: // < 0 in debugCallV2, which moves sp up
		r = Rule{CFA: CFASP, CFAOffset: int32(v), RA: RAInLink}
	default:
		r = Rule{CFA: CFASP, CFAOffset: int32(v), RA: RAAtCFA, RAOffset: int32(-v)}
	}
	if top {
		r.RA, r.RAOffset = RAUndefined, 0
	}
	return r
}

// isTop reports whether vaddr is in a TOPFRAME function; i is a cursor
// for ascending lookups.
func (g *goRules) isTop(vaddr uint64, i *int) bool {
	if g == nil {
		return false
	}
	for *i < len(g.top) && g.top[*i].hi <= vaddr {
		*i++
	}
	return *i < len(g.top) && g.top[*i].lo <= vaddr
}

// covers reports whether a span covers vaddr; i is a cursor into the
// spans (counting those passed) for ascending lookups.
func (g *goRules) covers(vaddr uint64, i *int) bool {
	s, ok := g.spanAt(*i)
	for ok && s.hi <= vaddr {
		*i++
		s, ok = g.spanAt(*i)
	}
	return ok && s.lo <= vaddr
}

// row is the user-space unwinder's row at vaddr (x86-64), from the span
// covering it.
func (g *goRules) row(vaddr uint64) (row, bool) {
	if g == nil {
		return row{}, false
	}
	i := sort.Search(len(g.spans), func(i int) bool { return g.spans[i].hi > vaddr })
	if i == len(g.spans) || g.spans[i].lo > vaddr {
		return row{}, false
	}
	r := g.spans[i].rule
	var rw row
	switch r.CFA {
	case CFASP:
		rw.kind = rowCFASP
	case CFAFP, CFAFPSwitch:
		rw.kind = rowCFABP
	default:
		return row{kind: rowUnsupported}, true
	}
	rw.cfaOff = r.CFAOffset
	switch r.RA {
	case RAAtCFA:
		rw.raOff = r.RAOffset
	case RAUndefined:
		rw.raUndefined = true
	case RAInLink: // an arm64 leaf
		rw.raInLink = true
	default:
		return row{kind: rowUnsupported}, true
	}
	if r.FP == FPAtCFA {
		rw.bpSaved, rw.bpOff = true, r.FPOffset
	}
	return rw, true
}

// codeReader reads a few bytes of .text at ascending addresses through a
// window, so that a large binary's code is not read whole.
type codeReader struct {
	sec    *elf.Section
	mapped []byte // the section in place, when the file is mapped
	base   uint64 // address of buf[0]
	buf    []byte
}

func (c *codeReader) at(addr uint64, n int) ([]byte, bool) {
	if c.sec == nil || addr < c.sec.Addr || addr+uint64(n) > c.sec.Addr+c.sec.Size || addr+uint64(n) < addr {
		return nil, false
	}
	if c.mapped != nil {
		off := addr - c.sec.Addr
		if off+uint64(n) > uint64(len(c.mapped)) {
			return nil, false
		}
		return c.mapped[off : off+uint64(n)], true
	}
	if addr < c.base || addr+uint64(n) > c.base+uint64(len(c.buf)) {
		const window = 64 << 10
		size := min(uint64(window), c.sec.Addr+c.sec.Size-addr)
		if c.buf == nil {
			c.buf = make([]byte, window)
		}
		m, err := c.sec.ReadAt(c.buf[:size], int64(addr-c.sec.Addr))
		if m < n || err != nil && err != io.EOF {
			c.buf, c.base = c.buf[:0], 0
			return nil, false
		}
		c.buf, c.base = c.buf[:m], addr
	}
	off := addr - c.base
	return c.buf[off : off+uint64(n)], true
}
