// Package unwind completes user stacks with the call frame information of
// .eh_frame (or .debug_frame) over a copy of the top of the user stack, for
// the frames that frame pointers miss: leaf functions, libc wrappers and
// whole binaries built without frame pointers. It knows nothing of BPF: it
// gets registers, a stack copy and the frame-pointer chain, and returns PCs.
package unwind

import (
	"encoding/binary"
	"fmt"
	"io"
	"log/slog"
)

// Mode selects how user stacks are unwound.
type Mode int

// The unwinding modes of --unwind.
const (
	ModeFP    Mode = iota // frame pointers only
	ModeAuto              // frame pointers, plus CFI for the frames that have none
	ModeDWARF             // CFI for the whole stack over a larger copy
)

var modeNames = [...]string{"fp", "auto", "dwarf"}

func (m Mode) String() string {
	if m >= 0 && int(m) < len(modeNames) {
		return modeNames[m]
	}
	return fmt.Sprintf("mode(%d)", int(m))
}

// ParseMode parses an --unwind value.
func ParseMode(s string) (Mode, error) {
	for i, n := range modeNames {
		if n == s {
			return Mode(i), nil
		}
	}
	return 0, fmt.Errorf("unknown unwind mode %q: allowed values are fp, auto, dwarf", s)
}

// Regs are the user registers at the moment of the sample: the pc, the
// stack pointer, the frame pointer (x86-64's rbp, arm64's x29) and the link
// register (arm64's x30; 0 on x86-64, which has none).
type Regs struct{ IP, SP, BP, LR uint64 }

// Resolver finds the ELF file behind an address of the process.
// *symbolizer.Process implements it.
type Resolver interface {
	// ModuleFor returns a key identifying the file for caching (build ID or
	// dev/inode/size/mtime), the bias such that ELF virtual address =
	// addr - bias, and a function opening the ELF file.
	ModuleFor(addr uint64) (key string, bias uint64, open func() (io.ReaderAt, io.Closer, error), ok bool)
}

// Outcome says how a stack was obtained, for per-capture statistics.
type Outcome int

// Outcomes of Unwind.
const (
	OutcomeFP    Outcome = iota // frame pointers alone were right
	OutcomeCFI                  // completed by CFI
	OutcomeEnded                // ended early; Result.Reason says why
)

var outcomeNames = [...]string{"fp", "cfi", "ended"}

func (o Outcome) String() string {
	if o >= 0 && int(o) < len(outcomeNames) {
		return outcomeNames[o]
	}
	return fmt.Sprintf("outcome(%d)", int(o))
}

// Result is an unwound user stack.
type Result struct {
	// PCs are leaf first; PCs[0] = Regs.IP and the others are return
	// addresses, to be looked up at pc-1 (a frame a signal interrupted is
	// reported at its pc+1 to fit that rule).
	PCs     []uint64
	Outcome Outcome
	Reason  string // why the stack ended early: one of the Reason* constants
}

// Reasons a stack ended early. They are few and fixed, so that they can be
// counted per capture.
const (
	ReasonNoModule    = "no module for pc"
	ReasonNoCFI       = "no CFI for pc"
	ReasonBadCFI      = "unreadable CFI"
	ReasonUnsupported = "unsupported CFI rule"
	ReasonLostBP      = "rbp not recoverable"
	ReasonEndOfCopy   = "end of stack copy"
	ReasonNoProgress  = "no progress"
	ReasonDepth       = "depth limit"
	ReasonNoMatch     = "frame pointers did not match"
)

// MaxDepth is the most frames Unwind returns, as many as the kernel's
// frame-pointer walk gives (PERF_MAX_STACK_DEPTH).
const MaxDepth = 127

// Options configure an Unwinder.
type Options struct {
	// CacheBytes bounds the compact tables kept (a file's table costs its
	// entries and rules; one larger than the bound is kept alone); 0:
	// DefaultCacheBytes.
	CacheBytes int64
	Logger     *slog.Logger // nil: slog.Default()
}

// DefaultCacheBytes bounds an Unwinder's tables: libc's is 225 KiB, a
// large Go binary's 2 MiB, libLLVM's 7 MiB.
const DefaultCacheBytes = 16 << 20

// Unwinder unwinds user stacks. It caches parsed CFI tables per file key and
// is safe for concurrent use.
type Unwinder struct {
	log    *slog.Logger
	tables *tableCache
	store  *CompactStore
}

// New returns an Unwinder.
func New(opts Options) *Unwinder {
	if opts.CacheBytes <= 0 {
		opts.CacheBytes = DefaultCacheBytes
	}
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	store := NewCompactStore(opts.CacheBytes)
	return &Unwinder{log: opts.Logger, tables: newTableCache(opts.Logger, store), store: store}
}

// Store is where the unwinder keeps the compact tables it builds, by its
// resolver's file keys: the BPF unwinder's loader can share it, so that a
// file's table is built once for both.
func (u *Unwinder) Store() *CompactStore { return u.store }

// frame is the state of one frame during the walk.
type frame struct {
	pc, sp, bp, lr uint64
	bpOK           bool // bp holds the frame's frame pointer (false once CFI could not restore it)
	lrOK           bool // lr holds the link register's value (the sampled frame only)
	// exact: pc is the interrupted instruction (the sample's, or one a
	// signal interrupted), not a return address.
	exact bool
}

// walk is the state kept across the frames of one stack: its frames are in
// a few files, whose tables are looked up in the shared cache once.
type walk struct {
	keys   [4]string
	tables [4]*table
	n      int // entries used; the oldest is replaced when full
}

func (w *walk) table(u *Unwinder, key string, open func() (io.ReaderAt, io.Closer, error)) *table {
	for i := range min(w.n, len(w.keys)) {
		if w.keys[i] == key {
			return w.tables[i]
		}
	}
	t := u.tables.get(key, open)
	i := w.n % len(w.keys)
	w.keys[i], w.tables[i] = key, t
	w.n++
	return t
}

// stackCopy is the copy of the user stack starting at base (the sampled sp).
type stackCopy struct {
	base uint64
	data []byte
}

func (s stackCopy) read(addr uint64) (uint64, bool) {
	if addr < s.base {
		return 0, false
	}
	off := addr - s.base
	if off > uint64(len(s.data)) || uint64(len(s.data))-off < 8 {
		return 0, false
	}
	return binary.LittleEndian.Uint64(s.data[off:]), true
}

// Unwind returns the user stack of a sample. In ModeFP it returns fpChain.
// In ModeAuto it unwinds with CFI from regs until a return address matches
// an entry of fpChain and splices the rest of the chain on; in ModeDWARF it
// unwinds with CFI as far as the copy goes and splices only after that.
// Garbage in any argument ends the walk; it never loops or panics.
func (u *Unwinder) Unwind(r Resolver, mode Mode, regs Regs, stack []byte, fpChain []uint64) Result {
	if mode == ModeFP || regs.IP == 0 {
		return Result{PCs: fpChain, Outcome: OutcomeFP}
	}
	st := stackCopy{base: regs.SP, data: stack}
	cur := frame{pc: regs.IP, sp: regs.SP, bp: regs.BP, lr: regs.LR, bpOK: true, lrOK: regs.LR != 0, exact: true}
	pcs := make([]uint64, 1, 32)
	pcs[0] = regs.IP
	// lastK/lastJ remember the latest CFI frame pcs[lastK] that is
	// fpChain[lastJ], so that the chain can be spliced on after it.
	lastK, lastJ := -1, -1
	var w walk
	reason := ""
	clean := false
	for {
		if len(pcs) >= MaxDepth {
			reason = ReasonDepth
			break
		}
		next, kind, end, why := u.step(&w, r, cur, st)
		if kind == rowCFABP && cur.bpOK && cur.bp == regs.BP && chainStartsAt(st, fpChain, cur) {
			// This frame has set up its frame pointer and it is the one
			// the kernel's walk started from: the chain continues from
			// here (fpChain[1] is this frame's return address).
			lastK, lastJ = len(pcs)-1, 0
			if mode == ModeAuto {
				break
			}
		}
		if why != "" {
			reason = why
			break
		}
		if end {
			clean = true
			break
		}
		if kind == rowSignal {
			// Symbolizers look return addresses (every PC but the first) up
			// at pc-1. The trampoline's own address is its first byte (its
			// CFI starts a byte early for that lookup), and the interrupted
			// instruction is exact: report both one byte later so that the
			// pc-1 rule names the right functions.
			if n := len(pcs); n > 1 {
				pcs[n-1]++
			}
			pcs = append(pcs, next.pc+1)
		} else {
			pcs = append(pcs, next.pc)
		}
		if j := match(fpChain, next.pc); j > 0 {
			lastK, lastJ = len(pcs)-1, j
			if mode == ModeAuto {
				break
			}
		}
		cur = next
	}
	if clean {
		return Result{PCs: pcs, Outcome: OutcomeCFI}
	}
	if lastK >= 0 {
		out := splice(pcs[:lastK+1], fpChain[lastJ+1:])
		if lastK == lastJ {
			// CFI found nothing the chain did not have.
			return Result{PCs: out, Outcome: OutcomeFP}
		}
		return Result{PCs: out, Outcome: OutcomeCFI}
	}
	if len(pcs) == 1 && (reason == ReasonNoModule || reason == ReasonNoCFI || reason == ReasonBadCFI) && len(fpChain) > 1 {
		// Code without CFI (JIT, stripped): frame pointers are all there is.
		return Result{PCs: fpChain, Outcome: OutcomeFP}
	}
	if reason == ReasonEndOfCopy && len(fpChain) > 1 {
		// The copy ran out and no CFI frame confirmed any of the chain.
		reason = ReasonNoMatch
	}
	return Result{PCs: pcs, Outcome: OutcomeEnded, Reason: reason}
}

// chainStartsAt reports whether the kernel's frame-pointer walk, which
// started at the sampled rbp, plausibly continues from frame f: rbp points
// into the stack above sp, and the return address at rbp+8 is fpChain[1]
// when the copy holds it.
func chainStartsAt(st stackCopy, fpChain []uint64, f frame) bool {
	if len(fpChain) < 2 || f.bp < f.sp {
		return false
	}
	ra, ok := st.read(f.bp + 8)
	return !ok || ra == fpChain[1]
}

// match returns the index j >= 1 of the first fpChain entry equal to pc, or -1.
func match(fpChain []uint64, pc uint64) int {
	for j := 1; j < len(fpChain); j++ {
		if fpChain[j] == pc {
			return j
		}
	}
	return -1
}

// splice appends rest to head without exceeding MaxDepth; head is reused.
func splice(head, rest []uint64) []uint64 {
	if n := MaxDepth - len(head); len(rest) > n {
		rest = rest[:n]
	}
	return append(head, rest...)
}

// step unwinds one frame with CFI. end reports the outermost frame (the
// return address is undefined or zero); why is a Reason* when the walk
// cannot go on.
func (u *Unwinder) step(w *walk, r Resolver, cur frame, st stackCopy) (next frame, kind rowKind, end bool, why string) {
	key, bias, open, ok := r.ModuleFor(cur.pc)
	if !ok {
		if cr, isC := r.(CompactResolver); isC {
			if tab, tbias, ok := cr.CompactFor(cur.pc); ok {
				if next, kind, end, why, ok := compactStep(tab, tbias, cur, st); ok {
					return next, kind, end, why
				}
			}
		}
		return fpStep(cur, st, ReasonNoModule)
	}
	t := w.table(u, key, open)
	if t == nil {
		return fpStep(cur, st, ReasonBadCFI)
	}
	pc := cur.pc - bias
	if !cur.exact {
		// A return address may point past the end of a function whose last
		// instruction is a call: look up the call instruction instead.
		pc--
	}
	rw, ok := t.rowFor(pc)
	if !ok {
		return fpStep(cur, st, ReasonNoCFI)
	}
	kind = rw.kind
	if kind == rowUnsupported {
		return frame{}, kind, false, ReasonUnsupported
	}
	if kind == rowSignal {
		return signalStep(cur, rw, st)
	}
	var cfa uint64
	switch rw.kind {
	case rowCFASP:
		cfa = cur.sp + uint64(rw.cfaOff)
	case rowCFABP:
		if !cur.bpOK {
			return frame{}, kind, false, ReasonLostBP
		}
		cfa = cur.bp + uint64(rw.cfaOff)
	case rowPLT:
		// The PLT's CFA expression: rsp+8, plus 8 once the entry has pushed
		// its relocation index (past byte 11 of each 16-byte entry).
		cfa = cur.sp + 8
		if (cur.pc & 15) >= uint64(rw.cfaOff) {
			cfa += 8
		}
	}
	if rw.raUndefined {
		return frame{}, kind, true, ""
	}
	var ra uint64
	if rw.raInLink {
		// arm64 before the prologue saved x30, or a leaf that never does:
		// only the sampled frame has the register.
		if !cur.lrOK {
			return frame{}, kind, false, ReasonLostLR
		}
		ra = cur.lr
	} else if ra, ok = st.read(cfa + uint64(rw.raOff)); !ok {
		return frame{}, kind, false, ReasonEndOfCopy
	}
	// Pointer authentication signs return addresses in their top bits.
	ra &= t.arch.RAMask
	if ra == 0 {
		return frame{}, kind, true, ""
	}
	// A leaf returning through the link register may leave sp where it
	// was (CFA = sp); any other frame moves it up.
	if cfa < cur.sp || cfa == cur.sp && !rw.raInLink {
		return frame{}, kind, false, ReasonNoProgress
	}
	next = frame{pc: ra, sp: cfa, bp: cur.bp, bpOK: cur.bpOK}
	if rw.bpSaved {
		next.bp, next.bpOK = st.read(cfa + uint64(rw.bpOff))
	}
	return next, kind, false, ""
}

// CompactResolver is a Resolver that also has compact tables for code no
// file's CFI covers (CPython's perf trampolines, whose rules scorch knows):
// tab's offsets are pc - bias.
type CompactResolver interface {
	Resolver
	CompactFor(pc uint64) (tab *CompactTable, bias uint64, ok bool)
}

// compactStep unwinds a frame by a compact table's rule of the forms
// trampolines have (CFA = sp or fp + offset, return address and saved fp
// at the CFA); ok false for any other, or no rule.
func compactStep(tab *CompactTable, bias uint64, cur frame, st stackCopy) (next frame, kind rowKind, end bool, why string, ok bool) {
	pc := cur.pc - bias
	if !cur.exact {
		pc--
	}
	r := tab.Lookup(pc)
	var cfa uint64
	switch r.CFA {
	case CFASP:
		cfa, kind = cur.sp+uint64(int64(r.CFAOffset)), rowCFASP
	case CFAFP, CFAFPSwitch:
		if !cur.bpOK {
			return frame{}, 0, false, "", false
		}
		cfa, kind = cur.bp+uint64(int64(r.CFAOffset)), rowCFABP
	default:
		return frame{}, 0, false, "", false
	}
	if r.RA != RAAtCFA {
		return frame{}, 0, false, "", false
	}
	ra, okRA := st.read(cfa + uint64(int64(r.RAOffset)))
	if !okRA {
		return frame{}, kind, false, ReasonEndOfCopy, true
	}
	if ra == 0 {
		return frame{}, kind, true, "", true
	}
	if cfa <= cur.sp {
		return frame{}, kind, false, ReasonNoProgress, true
	}
	next = frame{pc: ra, sp: cfa, bp: cur.bp, bpOK: cur.bpOK}
	if r.FP == FPAtCFA {
		next.bp, next.bpOK = st.read(cfa + uint64(int64(r.FPOffset)))
	}
	return next, kind, false, "", true
}

// fpStep unwinds a frame that no CFI describes (JIT code, perf-map
// trampolines, files without CFI) by its frame record {saved rbp, return
// address} at rbp, as the kernel's walk and the BPF unwinder do; why ends
// the walk where there is no record to read.
func fpStep(cur frame, st stackCopy, why string) (next frame, kind rowKind, end bool, _ string) {
	if !cur.bpOK || cur.bp < cur.sp {
		return frame{}, 0, false, why
	}
	fp, ok1 := st.read(cur.bp)
	ra, ok2 := st.read(cur.bp + 8)
	if !ok1 || !ok2 {
		return frame{}, 0, false, why
	}
	if ra == 0 {
		return frame{}, rowCFABP, true, ""
	}
	return frame{pc: ra, sp: cur.bp + 16, bp: fp, bpOK: true}, rowCFABP, false, ""
}

// signalStep unwinds a signal trampoline into the interrupted context, whose
// registers the kernel saved in the signal frame.
func signalStep(cur frame, rw row, st stackCopy) (next frame, kind rowKind, end bool, why string) {
	sp, ok1 := st.read(cur.sp + uint64(rw.cfaOff))
	ip, ok2 := st.read(cur.sp + uint64(rw.raOff))
	if !ok1 || !ok2 {
		return frame{}, rowSignal, false, ReasonEndOfCopy
	}
	if ip == 0 {
		return frame{}, rowSignal, true, ""
	}
	if sp <= cur.sp {
		// An alternate signal stack below the interrupted one: the copy
		// cannot hold both.
		return frame{}, rowSignal, false, ReasonNoProgress
	}
	next = frame{pc: ip, sp: sp, exact: true}
	if rw.bpSaved {
		next.bp, next.bpOK = st.read(cur.sp + uint64(rw.bpOff))
	}
	return next, rowSignal, false, ""
}
