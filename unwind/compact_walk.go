package unwind

// TableFinder gives the compact table of the file mapped at a pc and the
// bias such that ELF virtual address = pc - bias (the BPF side's per-process
// mapping lookup).
type TableFinder interface {
	CompactFor(pc uint64) (t *CompactTable, bias uint64, ok bool)
}

// ReasonLostLR ends a walk that needs arm64's link register past the
// first frame, where it no longer holds the return address.
const ReasonLostLR = "link register not recoverable"

// WalkCompact unwinds a user stack with compact tables only, the way the
// BPF program will: per frame one table lookup and a few reads of the
// stack, frame pointers where no CFI covers the pc. regs are the sampled
// registers (lr: arm64's x30, 0 on x86-64), stack a copy of the stack from
// regs.SP. It returns the PCs leaf first (as Result.PCs) and why the walk
// ended: "" at the outermost frame, else a Reason*. Where no table covers a
// pc, the frame pointer's record continues the walk.
func WalkCompact(f TableFinder, regs Regs, lr uint64, stack []byte) ([]uint64, string) {
	st := stackCopy{base: regs.SP, data: stack}
	pc, sp, fp, fpOK, exact := regs.IP, regs.SP, regs.BP, true, true
	pcs := []uint64{pc}
	// The return-address mask of the last file with a table (pointer
	// authentication on arm64), also for the frames of code without one.
	mask := ^uint64(0)
	for len(pcs) < MaxDepth {
		var r Rule
		if t, bias, ok := f.CompactFor(pc); ok {
			mask = t.Arch.RAMask
			look := pc - bias
			if !exact {
				look-- // a return address may be past the end of its function
			}
			r = t.Lookup(look)
		}
		if r.CFA == CFANone {
			// No CFI, or no file (JIT code, perf-map trampolines): a frame
			// record {caller fp, return address} at fp, the same on x86-64
			// and arm64.
			r = Rule{CFA: CFAFP, CFAOffset: 16, RA: RAAtCFA, RAOffset: -8, FP: FPAtCFA, FPOffset: -16}
		}
		var cfa uint64
		switch r.CFA {
		case CFASP:
			cfa = sp + uint64(int64(r.CFAOffset))
		case CFAFP, CFAFPSwitch:
			if !fpOK {
				return pcs, ReasonLostBP
			}
			cfa = fp + uint64(int64(r.CFAOffset))
		case CFAPLT:
			cfa = sp + 8
			if pc&15 >= uint64(r.CFAOffset) {
				cfa += 8
			}
		case CFASignal:
			nsp, ok1 := st.read(sp + uint64(r.CFAOffset))
			nip, ok2 := st.read(sp + uint64(r.RAOffset))
			if !ok1 || !ok2 {
				return pcs, ReasonEndOfCopy
			}
			if nip == 0 {
				return pcs, ""
			}
			if nsp <= sp {
				return pcs, ReasonNoProgress
			}
			if r.FP == FPAtCFA {
				fp, fpOK = st.read(sp + uint64(r.FPOffset))
			}
			// Report the trampoline and the interrupted pc one byte on, as
			// Unwind does, so that the pc-1 lookup of symbolizers fits.
			if n := len(pcs); n > 1 {
				pcs[n-1]++
			}
			pcs = append(pcs, nip+1)
			pc, sp, exact = nip, nsp, true
			continue
		default:
			return pcs, ReasonUnsupported
		}
		var ra uint64
		switch r.RA {
		case RAUndefined:
			return pcs, ""
		case RAInLink:
			if len(pcs) > 1 || lr == 0 {
				return pcs, ReasonLostLR
			}
			ra = lr
		default:
			var ok bool
			if ra, ok = st.read(cfa + uint64(int64(r.RAOffset))); !ok {
				return pcs, ReasonEndOfCopy
			}
		}
		// Pointer authentication signs return addresses in their top bits.
		ra &= mask
		if ra == 0 {
			return pcs, ""
		}
		// A leaf on arm64 may leave sp where it was (CFA = sp + 0); a
		// stack switch may go anywhere.
		if r.CFA != CFAFPSwitch && (cfa < sp || cfa == sp && r.RA != RAInLink) {
			return pcs, ReasonNoProgress
		}
		if r.FP == FPAtCFA {
			fp, fpOK = st.read(cfa + uint64(int64(r.FPOffset)))
		}
		pcs = append(pcs, ra)
		pc, sp, exact = ra, cfa, false
	}
	return pcs, ReasonDepth
}
