package unwind

import "golang.org/x/sys/unix"

// ptraceRegs are the registers a sample takes, from ptrace's (whose type
// is the GOARCH's).
func ptraceRegs(r *unix.PtraceRegs) Regs { return Regs{IP: r.Rip, SP: r.Rsp, BP: r.Rbp} }
