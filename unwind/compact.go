package unwind

import (
	"debug/elf"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"runtime/debug"
	"sort"
	"sync/atomic"

	dframe "github.com/go-delve/delve/pkg/dwarf/frame"
	"github.com/scorch-dev/scorch/internal/cache"
	"github.com/scorch-dev/scorch/internal/elfnote"
	"github.com/scorch-dev/scorch/internal/mapped"
)

// Arch is everything scorch's Go code knows about an architecture, the one
// table of it (bpf/arch.h is the BPF side's): which DWARF registers are the
// stack pointer, the frame pointer and the return address, how return
// addresses are found and stripped, and which parts of the profiler work
// there. Everything else in the unwinders and the profiler is shared.
type Arch struct {
	Name    string      // as users know it: "x86-64", "arm64"
	GOARCH  string      // runtime.GOARCH of scorch built for it
	Uname   string      // uname -m of its kernels
	Machine elf.Machine // of its ELF files
	SP, FP  uint64      // DWARF register numbers
	RA      uint64      // the CIEs' return-address column
	// Regs names the sampled registers: pc, sp, fp and the link register
	// ("" where there is none), for doctor and the README.
	Regs [4]string
	// LinkReg: the return address is in register RA until the prologue
	// saves it (arm64's x30), so a missing rule means "in the register";
	// otherwise (x86-64) the call pushed it and a missing rule is CFA-8.
	LinkReg bool
	// X86Exprs: recognize the two CFA expressions x86-64 code has (PLT
	// entries, signal trampolines).
	X86Exprs bool
	// RAMask keeps the address bits of a return address: arm64 code built
	// with -mbranch-protection=pac-ret signs return addresses in their top
	// bits (pointer authentication) on hosts that support it, and marks
	// where in its CFI (DW_CFA_AARCH64_negate_ra_state, which unwinding
	// needs only as "strip it"). Linux user addresses are below 2^48.
	RAMask uint64
	// PAC: the CFI may say DW_CFA_AARCH64_negate_ra_state (0x2d), which
	// changes nothing of where the return address is.
	PAC bool
	// KernelStackCache: the off-CPU kernel stack cache can work
	// (bpf/arch.h's ARCH_KSTACK_CACHE): it relies on x86-64's ORC unwinder
	// and do_syscall_64's random stack offset.
	KernelStackCache bool
}

// Arches are the architectures scorch supports.
var Arches = []Arch{
	{Name: "x86-64", GOARCH: "amd64", Uname: "x86_64", Machine: elf.EM_X86_64, SP: 7, FP: 6, RA: 16,
		Regs: [4]string{"rip", "rsp", "rbp", ""}, X86Exprs: true, RAMask: ^uint64(0), KernelStackCache: true},
	{Name: "arm64", GOARCH: "arm64", Uname: "aarch64", Machine: elf.EM_AARCH64, SP: 31, FP: 29, RA: 30,
		Regs: [4]string{"pc", "sp", "x29", "x30"}, LinkReg: true, RAMask: 1<<48 - 1, PAC: true},
}

// ArchFor returns the architecture scorch built for GOARCH goarch
// supports (runtime.GOARCH: the host's).
func ArchFor(goarch string) (Arch, bool) {
	for _, a := range Arches {
		if a.GOARCH == goarch {
			return a, true
		}
	}
	return Arch{}, false
}

func archFor(m elf.Machine) (Arch, error) {
	for _, a := range Arches {
		if a.Machine == m {
			return a, nil
		}
	}
	return Arch{}, fmt.Errorf("unsupported machine %v: scorch unwinds x86-64 and arm64", m)
}

// CFARule says how the canonical frame address of a frame is computed.
type CFARule uint8

// CFA rules. CFANone is the rule of addresses no CFI covers (JIT code,
// stripped files, gaps between functions): walk them with frame pointers.
const (
	CFANone        CFARule = iota
	CFASP                  // CFA = sp + CFAOffset
	CFAFP                  // CFA = fp + CFAOffset
	CFAPLT                 // x86-64 PLT: CFA = sp + 8, +8 more when (pc & 15) >= CFAOffset
	CFASignal              // signal trampoline: sp, pc and fp of the interrupted context are at sp + CFAOffset, RAOffset, FPOffset
	CFAUnsupported         // an expression or register the walker does not evaluate
	// CFAFPSwitch is CFAFP in a function that moved sp to another stack
	// (Go's systemstack, on the thread's g0 stack, whose rbp still points
	// at its frame on the goroutine's): the CFA is on the stack it came
	// from, which may lie below sp. The only rule a walk may go down by.
	CFAFPSwitch
)

// RARule says where the return address of a frame is.
type RARule uint8

// Return-address rules.
const (
	RAAtCFA     RARule = iota // at CFA + RAOffset
	RAInLink                  // still in the link register (arm64 x30: a leaf, or a prologue)
	RAUndefined               // the outermost frame: nothing to return to
)

// FPRule says where the caller's frame pointer is.
type FPRule uint8

// Frame-pointer rules.
const (
	FPUnchanged FPRule = iota // the register still holds it
	FPAtCFA                   // saved at CFA + FPOffset
)

// Rule is one deduplicated unwinding rule, 16 bytes in this layout (the
// value type of the BPF rules array).
type Rule struct {
	CFA       CFARule
	RA        RARule
	FP        FPRule
	_         uint8
	CFAOffset int32
	RAOffset  int32
	FPOffset  int32
}

// RuleSize is the size of a Rule in a map.
const RuleSize = 16

func (r Rule) String() string {
	cfa := [...]string{"none", "sp", "fp", "plt", "signal", "unsupported", "fp-switch"}
	s := fmt.Sprintf("cfa=%s%+d", cfa[min(int(r.CFA), len(cfa)-1)], r.CFAOffset)
	switch r.RA {
	case RAAtCFA:
		s += fmt.Sprintf(" ra=cfa%+d", r.RAOffset)
	case RAInLink:
		s += " ra=link"
	default:
		s += " ra=undefined"
	}
	if r.FP == FPAtCFA {
		s += fmt.Sprintf(" fp=cfa%+d", r.FPOffset)
	}
	return s
}

// Entry starts a pc range: from PC (an offset from the table's Base) to
// the next entry's PC, Rules[Rule] applies. 8 bytes: the element of the
// BPF entries array, binary searched.
type Entry struct {
	PC   uint32
	Rule uint32
}

// EntrySize is the size of an Entry in a map.
const EntrySize = 8

// CompactTable is the CFI of one ELF file compiled for a walker that does
// not interpret DWARF: sorted pc ranges, each with the index of a small
// rule. It depends only on the file, so processes mapping the same file
// (same Key) share it.
type CompactTable struct {
	Key  string // the file's GNU build ID in hex; "" when it has none
	Arch Arch
	// Base is the ELF virtual address PC offsets count from: the lowest
	// PT_LOAD address, so that a process's pc maps to
	// pc - mappingBias - Base.
	Base    uint64
	Entries []Entry // sorted by PC, adjacent rules distinct; the last one ends the table with rule 0
	Rules   []Rule  // Rules[0] is the CFANone rule
	// Unsupported counts the entries whose rule is CFAUnsupported.
	Unsupported int
}

// Bytes is the memory the table takes in maps.
func (t *CompactTable) Bytes() int { return len(t.Entries)*EntrySize + len(t.Rules)*RuleSize }

// Lookup returns the rule at an ELF virtual address, as the BPF program
// will find it: a binary search for the last entry at or below the pc.
func (t *CompactTable) Lookup(vaddr uint64) Rule {
	if vaddr < t.Base || vaddr-t.Base > math.MaxUint32 {
		return Rule{}
	}
	pc := uint32(vaddr - t.Base)
	i := sort.Search(len(t.Entries), func(i int) bool { return t.Entries[i].PC > pc }) - 1
	if i < 0 {
		return Rule{}
	}
	return t.Rules[t.Entries[i].Rule]
}

// AppendEntries appends the entries in their map layout (little endian).
func (t *CompactTable) AppendEntries(b []byte) []byte {
	for _, e := range t.Entries {
		b = binary.LittleEndian.AppendUint32(b, e.PC)
		b = binary.LittleEndian.AppendUint32(b, e.Rule)
	}
	return b
}

// AppendRules appends the rules in their map layout (little endian).
func (t *CompactTable) AppendRules(b []byte) []byte {
	for _, r := range t.Rules {
		b = append(b, byte(r.CFA), byte(r.RA), byte(r.FP), 0)
		b = binary.LittleEndian.AppendUint32(b, uint32(r.CFAOffset))
		b = binary.LittleEndian.AppendUint32(b, uint32(r.RAOffset))
		b = binary.LittleEndian.AppendUint32(b, uint32(r.FPOffset))
	}
	return b
}

// BuildCompact compiles the .eh_frame and .debug_frame of an ELF file into a
// compact table; in a Go binary, the pcs no FDE covers (all of a stripped
// one's) get their rules from the pclntab's frame sizes. Malformed CFI
// gives CFAUnsupported ranges, not an error; an error means the file
// cannot have a table (not ELF, another machine, no CFI nor pclntab,
// larger than 4 GiB).
//
// An *os.File's sections are read through a mapping of it, unmapped when
// the table is built: a large binary's .eh_frame and .gopclntab (10-20 MB)
// were read onto the heap for each table, garbage right after.
func BuildCompact(ra io.ReaderAt) (t *CompactTable, err error) { return buildCompact(ra, true) }

// buildCompact is BuildCompact; goFirst false keeps the FDEs' rules where
// a Go binary has both (the tests' reference for the pclntab's).
func buildCompact(ra io.ReaderAt, goFirst bool) (t *CompactTable, err error) {
	var mf *mapped.File
	if osf, ok := ra.(*os.File); ok {
		if mf, err = mapped.Map(osf); err == nil {
			mf.ReadAhead()
			defer mf.Unmap()
			// A file truncated under the mapping faults: a panic,
			// recovered below.
			defer debug.SetPanicOnFault(debug.SetPanicOnFault(true))
		}
	}
	defer func() {
		if r := recover(); r != nil {
			t, err = nil, fmt.Errorf("parsing CFI: %v", r)
		}
	}()
	f, err := elf.NewFile(ra)
	if err != nil {
		return nil, fmt.Errorf("reading elf: %w", err)
	}
	arch, err := archFor(f.Machine)
	if err != nil {
		return nil, err
	}
	cfi, err := readCFI(f, mf)
	gos, goErr := streamGoRules(f, arch, mf)
	if _, any := gos.spanAt(0); err != nil && !any {
		if goErr != nil {
			return nil, errors.Join(err, goErr)
		}
		return nil, err
	}
	base := uint64(math.MaxUint64)
	for _, p := range f.Progs {
		if p.Type == elf.PT_LOAD {
			base = min(base, p.Vaddr)
		}
	}
	if base == math.MaxUint64 {
		// No program headers (the ELF image a jitdump's unwinding records
		// are wrapped in, at the JIT code's addresses, far more than 4 GiB
		// past 0): the offsets count from the lowest FDE.
		base = 0
		if len(cfi.fdes) > 0 {
			base = cfi.fdes[0].begin
			for _, fde := range cfi.fdes {
				base = min(base, fde.begin)
			}
		}
	}
	b := &builder{arch: arch, base: base, ids: map[Rule]uint32{{}: 0}, rules: []Rule{{}}, gos: gos, goFirst: goFirst}
	for i := range cfi.fdes {
		fde := &cfi.fdes[i]
		if err := b.addFDE(fde.begin, fde.end, &cfi.cies[fde.cie], cfi.instructions(fde)); err != nil {
			return nil, err
		}
	}
	// Go functions past the last FDE (all of them in a stripped binary).
	if _, any := gos.spanAt(b.gi); any {
		if err := b.fill(b.end, math.MaxUint64); err != nil {
			return nil, err
		}
	}
	if err := b.add(b.end, Rule{}); err != nil {
		return nil, err
	}
	// Kept for the capture's life (the unwinder's cache, the loader's
	// store): exactly as large as it is.
	t = &CompactTable{Key: elfnote.BuildID(f), Arch: arch, Base: base, Entries: b.entries.slice(), Rules: clip(b.rules)}
	for _, e := range t.Entries {
		if t.Rules[e.Rule].CFA == CFAUnsupported {
			t.Unsupported++
		}
	}
	return t, nil
}

// sectionData is a section's bytes: in place in the file's mapping when
// it is stored as it is, else read (decompressed).
func sectionData(mf *mapped.File, s *elf.Section) ([]byte, error) {
	if b, err := mf.Section(s); err == nil {
		return b, nil
	}
	return s.Data()
}

// readCFI indexes the FDEs of .eh_frame and .debug_frame, sorted by address
// without duplicates (as delve's parser and readFDEs do). Both x86-64 and
// arm64 are little-endian with 8-byte pointers. The index is never nil.
func readCFI(f *elf.File, mf *mapped.File) (*cfiIndex, error) {
	x := &cfiIndex{}
	for _, name := range []string{".eh_frame", ".debug_frame"} {
		s := f.Section(name)
		if s == nil || s.Type == elf.SHT_NOBITS || s.Size == 0 {
			continue
		}
		eh := name == ".eh_frame"
		if eh && s.Addr == 0 {
			continue // not loaded: pointers relative to it mean nothing
		}
		data, err := sectionData(mf, s)
		if err != nil {
			return x, fmt.Errorf("reading %s: %w", name, err)
		}
		addr := uint64(0)
		if eh {
			addr = s.Addr
		}
		if err := x.scan(data, eh, addr); err != nil {
			if len(x.fdes) > 0 {
				continue // a broken .debug_frame does not spoil .eh_frame
			}
			return x, fmt.Errorf("parsing %s: %w", name, err)
		}
	}
	if len(x.fdes) == 0 {
		return x, errNoCFI
	}
	x.sortFDEs()
	return x, nil
}

// clip returns s without spare capacity, copied when that is more than
// an eighth of it.
func clip[T any](s []T) []T {
	if cap(s)-len(s) <= len(s)/8 {
		return s
	}
	return append(make([]T, 0, len(s)), s...)
}

// entryList collects a table's entries in chunks, copied once into a
// slice of their number at the end: append's growth by a quarter at a
// time allocated five times the table on the way, and held 2.25 times it
// while it grew.
type entryList struct {
	full []([]Entry) // filled chunks, in order
	cur  []Entry
	n    int
}

const (
	firstEntryChunk = 256
	maxEntryChunk   = 64 << 10 // 512 KiB
)

func (l *entryList) len() int { return l.n }

// last returns the k-th entry from the end (1: the last one).
func (l *entryList) last(k int) *Entry {
	if k <= len(l.cur) {
		return &l.cur[len(l.cur)-k]
	}
	k -= len(l.cur)
	for i := len(l.full) - 1; ; i-- {
		if c := l.full[i]; k <= len(c) {
			return &c[len(c)-k]
		} else {
			k -= len(c)
		}
	}
}

// pop drops the last entry.
func (l *entryList) pop() {
	if len(l.cur) == 0 {
		l.cur = l.full[len(l.full)-1]
		l.full = l.full[:len(l.full)-1]
	}
	l.cur = l.cur[:len(l.cur)-1]
	l.n--
}

func (l *entryList) push(e Entry) {
	if len(l.cur) == cap(l.cur) {
		size := firstEntryChunk
		if l.cur != nil {
			l.full = append(l.full, l.cur)
			size = min(2*cap(l.cur), maxEntryChunk)
		}
		l.cur = make([]Entry, 0, size)
	}
	l.cur = append(l.cur, e)
	l.n++
}

// slice returns the entries in one slice of their length; the list is
// empty after.
func (l *entryList) slice() []Entry {
	if len(l.full) == 0 {
		out := clip(l.cur)
		*l = entryList{}
		return out
	}
	out := make([]Entry, 0, l.n)
	for _, c := range l.full {
		out = append(out, c...)
	}
	out = append(out, l.cur...)
	*l = entryList{}
	return out
}

type builder struct {
	arch    Arch
	base    uint64
	end     uint64 // end of the last range added
	entries entryList
	rules   []Rule
	ids     map[Rule]uint32
	// gos are a Go binary's pclntab rules, for the pcs no FDE covers; gi
	// and ti are cursors into its spans and TOPFRAME functions.
	gos     *goRules
	gi, ti  int
	goFirst bool // the pclntab's rules win over the FDEs' (buildCompact)
}

// fill adds the Go rules of [lo, hi), a range no FDE covers, and the
// no-CFI rule where no Go function is either; b.end becomes hi.
func (b *builder) fill(lo, hi uint64) error {
	// hi is MaxUint64 for the rest of the spans: the end is then the last
	// span's.
	defer func() {
		if hi == math.MaxUint64 {
			hi = lo
		}
		b.end = max(b.end, hi)
	}()
	for lo < hi {
		s, ok := b.gos.spanAt(b.gi)
		for ok && s.hi <= lo {
			b.gi++
			s, ok = b.gos.spanAt(b.gi)
		}
		b.gos.pass(b.gi)
		if !ok || s.lo >= hi {
			break
		}
		if s.lo > lo {
			if b.entries.len() > 0 {
				if err := b.add(lo, Rule{}); err != nil {
					return err
				}
			}
			lo = s.lo
		}
		if err := b.add(lo, s.rule); err != nil {
			return err
		}
		lo = min(s.hi, hi)
	}
	if lo < hi && hi != math.MaxUint64 && b.entries.len() > 0 {
		return b.add(lo, Rule{})
	}
	return nil
}

// add starts a range at vaddr, merging it into the previous one when the
// rule is the same.
func (b *builder) add(vaddr uint64, r Rule) error {
	if vaddr < b.base || vaddr-b.base > math.MaxUint32 {
		return fmt.Errorf("CFI address %#x is more than 4 GiB past the file's base %#x", vaddr, b.base)
	}
	id, ok := b.ids[r]
	if !ok {
		id = uint32(len(b.rules))
		b.ids[r] = id
		b.rules = append(b.rules, r)
	}
	pc := uint32(vaddr - b.base)
	if n := b.entries.len(); n > 0 {
		last := b.entries.last(1)
		if last.PC == pc { // an empty range: the new rule replaces it
			last.Rule = id
			if n > 1 && b.entries.last(2).Rule == id {
				b.entries.pop()
			}
			return nil
		}
		if last.Rule == id {
			return nil
		}
	} else if id == 0 {
		return nil // no leading gap
	}
	b.entries.push(Entry{PC: pc, Rule: id})
	return nil
}

// addFDE adds the rows of one FDE, running its CFI program once.
func (b *builder) addFDE(begin, end uint64, cie *cieRec, instr []byte) error {
	start := begin
	if begin < b.end {
		begin = b.end // overlapping FDEs: the earlier one wins, as a sorted search finds it
	}
	if end <= begin {
		return nil
	}
	if begin > b.end {
		if err := b.fill(b.end, begin); err != nil { // a gap without CFI
			return err
		}
	}
	if b.goFirst && b.gos.covers(begin, &b.gi) {
		// Go code: the pclntab's rules are .debug_frame's rows (checked
		// by TestGoCompactAgrees) and more: where rbp is saved, which
		// .debug_frame leaves out and a function that switches stacks
		// needs (CFAFPSwitch: Go's systemstack, found from rbp).
		return b.fill(begin, end)
	}
	e := emitter{b: b, begin: begin, end: end}
	runCFI(b.arch, cie, start, instr, &e)
	b.end = end
	return e.err
}

// emitter adds the rows runCFI gives within [begin, end).
type emitter struct {
	b          *builder
	begin, end uint64
	err        error
}

func (e *emitter) emit(loc uint64, r Rule) {
	if e.err == nil && loc < e.end {
		loc = max(loc, e.begin)
		// Go's .debug_frame gives the outermost functions a return
		// address; the pclntab says there is none.
		if r.CFA != CFAUnsupported && e.b.gos.isTop(loc, &e.b.ti) {
			r.RA, r.RAOffset = RAUndefined, 0
		}
		e.err = e.b.add(loc, r)
	}
}

// cfiState is the part of a CFI row the compact rules need: the CFA, and
// the rules of the return-address column and the frame pointer.
type cfiState struct {
	retReg     uint64 // the CIE's return-address column
	cfa        dframe.DWRule
	ra, fp     dframe.DWRule
	raOK, fpOK bool // a rule was given (else: the CIE's default)
}

// ruleFrom reduces a CFI row to a compact rule.
func ruleFrom(a Arch, st *cfiState) Rule {
	var r Rule
	fits := func(v int64) bool { return v == int64(int32(v)) }
	switch cfa := st.cfa; {
	case cfa.Rule == dframe.RuleCFA && cfa.Reg == a.SP && fits(cfa.Offset):
		r.CFA, r.CFAOffset = CFASP, int32(cfa.Offset)
	case cfa.Rule == dframe.RuleCFA && cfa.Reg == a.FP && fits(cfa.Offset):
		r.CFA, r.CFAOffset = CFAFP, int32(cfa.Offset)
	case cfa.Rule == dframe.RuleExpression && a.X86Exprs:
		if th, ok := pltThreshold(cfa.Expression); ok {
			r.CFA, r.CFAOffset = CFAPLT, int32(th)
		} else if off, ok := spOffset(cfa.Expression, true); ok {
			return signalRule(st, off)
		} else {
			return Rule{CFA: CFAUnsupported}
		}
	default:
		return Rule{CFA: CFAUnsupported}
	}
	ra, ok := st.ra, st.raOK
	switch {
	case st.retReg != a.RA:
		return Rule{CFA: CFAUnsupported}
	case !ok && a.LinkReg, ok && ra.Rule == dframe.RuleSameVal && a.LinkReg:
		r.RA = RAInLink
	case !ok:
		r.RA, r.RAOffset = RAAtCFA, -8
	case ra.Rule == dframe.RuleOffset && fits(ra.Offset):
		r.RA, r.RAOffset = RAAtCFA, int32(ra.Offset)
	case ra.Rule == dframe.RuleUndefined:
		r.RA = RAUndefined
	default:
		return Rule{CFA: CFAUnsupported}
	}
	if fp := st.fp; st.fpOK {
		switch {
		case fp.Rule == dframe.RuleOffset && fits(fp.Offset):
			r.FP, r.FPOffset = FPAtCFA, int32(fp.Offset)
		case fp.Rule == dframe.RuleUndefined, fp.Rule == dframe.RuleSameVal:
		default:
			return Rule{CFA: CFAUnsupported}
		}
	}
	return r
}

// signalRule reads the rules of an x86-64 signal trampoline, where the
// interrupted context's registers are saved at offsets from sp.
func signalRule(st *cfiState, spOff int32) Rule {
	r := Rule{CFA: CFASignal, CFAOffset: spOff}
	if !st.raOK || st.ra.Rule != dframe.RuleExpression {
		return Rule{CFA: CFAUnsupported}
	}
	var ok bool
	if r.RAOffset, ok = spOffset(st.ra.Expression, false); !ok {
		return Rule{CFA: CFAUnsupported}
	}
	if st.fpOK && st.fp.Rule == dframe.RuleExpression {
		if r.FPOffset, ok = spOffset(st.fp.Expression, false); ok {
			r.FP = FPAtCFA
		}
	}
	return r
}

// runCFI runs the CIE's and an FDE's CFI programs (the FDE's from begin),
// giving the emitter the first address of each row and its rule (rows at one
// address: the last wins). Rows from an instruction it cannot run on are
// unsupported. It allocates only for remember_state nested deeper than 4.
func runCFI(a Arch, cie *cieRec, begin uint64, instr []byte, sink *emitter) {
	st := cfiState{retReg: cie.retReg}
	var initial cfiState
	var stackBuf [4]cfiState
	stack := stackBuf[:0]
	loc := begin
	// set assigns a register rule; only the return address and the frame
	// pointer matter.
	set := func(reg uint64, r dframe.DWRule) {
		switch reg {
		case st.retReg:
			st.ra, st.raOK = r, true
		case a.FP:
			st.fp, st.fpOK = r, true
		}
	}
	restore := func(reg uint64) {
		switch reg {
		case st.retReg:
			st.ra, st.raOK = initial.ra, initial.raOK
		case a.FP:
			st.fp, st.fpOK = initial.fp, initial.fpOK
		}
	}
	for inFDE, prog := range [2][]byte{cie.initial, instr} {
		if inFDE == 1 {
			initial = st
		}
		r := cfiReader{b: prog}
		advance := func(delta uint64) {
			if inFDE == 1 {
				sink.emit(loc, ruleFrom(a, &st))
				loc += delta * cie.codeAlign
			}
		}
		dataAlign := cie.dataAlign
		for r.left() > 0 && !r.short {
			op := r.byte()
			switch op & 0xc0 {
			case 0x40: // advance_loc
				advance(uint64(op & 0x3f))
				continue
			case 0x80: // offset
				set(uint64(op&0x3f), dframe.DWRule{Rule: dframe.RuleOffset, Offset: int64(r.uleb()) * dataAlign})
				continue
			case 0xc0: // restore
				restore(uint64(op & 0x3f))
				continue
			}
			switch op {
			case 0x00: // nop
			case 0x02:
				advance(r.fixed(1))
			case 0x03:
				advance(r.fixed(2))
			case 0x04:
				advance(r.fixed(4))
			case 0x05: // offset_extended
				reg := r.uleb()
				set(reg, dframe.DWRule{Rule: dframe.RuleOffset, Offset: int64(r.uleb()) * dataAlign})
			case 0x11: // offset_extended_sf
				reg := r.uleb()
				set(reg, dframe.DWRule{Rule: dframe.RuleOffset, Offset: r.sleb() * dataAlign})
			case 0x06: // restore_extended
				restore(r.uleb())
			case 0x07: // undefined
				set(r.uleb(), dframe.DWRule{Rule: dframe.RuleUndefined})
			case 0x08: // same_value
				set(r.uleb(), dframe.DWRule{Rule: dframe.RuleSameVal})
			case 0x09: // register
				reg := r.uleb()
				set(reg, dframe.DWRule{Rule: dframe.RuleRegister, Reg: r.uleb()})
			case 0x0a: // remember_state
				stack = append(stack, st)
			case 0x0b: // restore_state
				if len(stack) == 0 {
					sink.emit(loc, Rule{CFA: CFAUnsupported})
					return
				}
				st, stack = stack[len(stack)-1], stack[:len(stack)-1]
			case 0x0c: // def_cfa
				reg := r.uleb()
				st.cfa = dframe.DWRule{Rule: dframe.RuleCFA, Reg: reg, Offset: int64(r.uleb())}
			case 0x12: // def_cfa_sf
				reg := r.uleb()
				st.cfa = dframe.DWRule{Rule: dframe.RuleCFA, Reg: reg, Offset: r.sleb() * dataAlign}
			case 0x0d: // def_cfa_register
				st.cfa.Reg = r.uleb()
			case 0x0e: // def_cfa_offset
				st.cfa.Offset = int64(r.uleb())
			case 0x13: // def_cfa_offset_sf
				st.cfa.Offset = r.sleb() * dataAlign
			case 0x0f: // def_cfa_expression
				st.cfa = dframe.DWRule{Rule: dframe.RuleExpression, Expression: r.block()}
			case 0x10: // expression
				reg := r.uleb()
				set(reg, dframe.DWRule{Rule: dframe.RuleExpression, Expression: r.block()})
			case 0x14, 0x15: // val_offset(_sf): not a place the walker reads
				reg := r.uleb()
				if op == 0x14 {
					r.uleb()
				} else {
					r.sleb()
				}
				set(reg, dframe.DWRule{Rule: dframe.RuleValOffset})
			case 0x16: // val_expression
				reg := r.uleb()
				set(reg, dframe.DWRule{Rule: dframe.RuleValExpression, Expression: r.block()})
			case 0x2e: // GNU_args_size
				r.uleb()
			case 0x2d: // AARCH64_negate_ra_state: the return address is signed (or no longer): RAMask strips it
				if !a.PAC {
					sink.emit(loc, Rule{CFA: CFAUnsupported})
					return
				}
			default: // set_loc, vendor opcodes, unknown ones
				sink.emit(loc, Rule{CFA: CFAUnsupported})
				return
			}
		}
		if r.short {
			sink.emit(loc, Rule{CFA: CFAUnsupported})
			return
		}
	}
	sink.emit(loc, ruleFrom(a, &st))
}

// CompactStore keeps the compact tables built so far, one per file key
// (build ID, or dev/inode/size/mtime), so that every process mapping a
// file shares its table; it is bounded by the tables' bytes. It is the
// only place the user-space unwinder keeps tables: its own cache of them
// beside the store held up to as much again, tables the store had let go.
type CompactStore struct {
	c *cache.Cache[string, *storedTable]
	// build makes a table that is not kept; nil: BuildCompact. The BPF
	// unwinder's loader sets one that reads and writes its on-disk cache,
	// so that the user-space unwinder's first samples of a file (unwound
	// from copies while the BPF tables load) take the table from there
	// too instead of building it.
	build atomic.Pointer[func(key string, ra io.ReaderAt) (*CompactTable, error)]
}

// SetBuild makes build the way tables not kept are made (see
// CompactStore.build).
func (s *CompactStore) SetBuild(build func(key string, ra io.ReaderAt) (*CompactTable, error)) {
	s.build.Store(&build)
}

// storedTable is a table with the unwinder's view of it.
type storedTable struct {
	ct *CompactTable
	wt table
}

// NewCompactStore returns a store keeping at most maxBytes of tables.
func NewCompactStore(maxBytes int64) *CompactStore {
	return &CompactStore{c: cache.New[string](cache.Options[*storedTable]{
		MaxCost:    maxBytes,
		Cost:       func(t *storedTable) int64 { return int64(max(t.ct.Bytes(), 1)) },
		KeepErrors: true,
	})}
}

func (s *CompactStore) get(key string, build func() (*CompactTable, error)) (*storedTable, bool, error) {
	return s.c.Get(key, func() (*storedTable, error) {
		ct, err := build()
		if err != nil {
			return nil, err
		}
		return &storedTable{ct: ct, wt: table{arch: ct.Arch, ct: ct}}, nil
	})
}

// opened builds the table of the file open opens, known by key.
func (s *CompactStore) opened(key string, open func() (io.ReaderAt, io.Closer, error)) func() (*CompactTable, error) {
	return func() (*CompactTable, error) {
		ra, closer, err := open()
		if err != nil {
			return nil, fmt.Errorf("opening file for CFI: %w", err)
		}
		if closer != nil {
			defer closer.Close()
		}
		if b := s.build.Load(); b != nil {
			return (*b)(key, ra)
		}
		return BuildCompact(ra)
	}
}

// Get returns the table of a file, building it on first use.
func (s *CompactStore) Get(key string, open func() (io.ReaderAt, io.Closer, error)) (*CompactTable, error) {
	return s.GetOr(key, s.opened(key, open))
}

// GetOr returns the table of key, made by build on first use (read from an
// on-disk cache, or built).
func (s *CompactStore) GetOr(key string, build func() (*CompactTable, error)) (*CompactTable, error) {
	t, _, err := s.get(key, build)
	if err != nil {
		return nil, err
	}
	return t.ct, nil
}

// Stats are the store's counters (entries, bytes, evictions).
func (s *CompactStore) Stats() cache.Stats { return s.c.Stats() }
