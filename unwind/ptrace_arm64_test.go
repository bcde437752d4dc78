package unwind

import "golang.org/x/sys/unix"

// ptraceRegs are the registers a sample takes, from ptrace's (whose type
// is the GOARCH's): pc, sp, x29 and x30.
func ptraceRegs(r *unix.PtraceRegs) Regs {
	return Regs{IP: r.Pc, SP: r.Sp, BP: r.Regs[29], LR: r.Regs[30]}
}
