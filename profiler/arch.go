package profiler

import (
	"fmt"
	"runtime"
	"strings"

	"github.com/scorch-dev/scorch/capture"
	"github.com/scorch-dev/scorch/unwind"
	"golang.org/x/sys/unix"
)

// hostArch is the architecture this scorch was built for, from the one
// table of them (unwind.Arches); its BPF objects are that architecture's
// (bpf/gen.go builds both from the same C).
var hostArch, _ = unwind.ArchFor(runtime.GOARCH)

// kernelStackCacheOff says what an off-CPU capture does differently where
// the kernel stack cache cannot work (bpf/arch.h's ARCH_KSTACK_CACHE).
func kernelStackCacheOff(a unwind.Arch) string {
	return fmt.Sprintf("the off-CPU kernel stack cache is off on %s (it relies on x86-64's ORC unwinder and do_syscall_64's random stack offset): every kernel stack is walked, which costs more per context switch but gives the same stacks", a.Name)
}

// archSummary names an architecture and its sampled registers for doctor.
func archSummary(a unwind.Arch) string {
	regs := []string{}
	for _, r := range a.Regs {
		if r != "" {
			regs = append(regs, r)
		}
	}
	s := fmt.Sprintf("%s (registers %s", a.Name, strings.Join(regs, ", "))
	if a.LinkReg {
		s += fmt.Sprintf("; a leaf's caller from %s", a.Regs[3])
	}
	if a.PAC {
		s += "; pointer-authentication bits stripped from return addresses"
	}
	return s + ")"
}

// archNotes are what doctor says about the architecture: a scorch built for
// another one than the kernel's (an emulated binary) cannot load its BPF
// programs, and what this one does not support.
func archNotes(a unwind.Arch, ok bool, machine string) []string {
	var notes []string
	if !ok {
		return []string{fmt.Sprintf("scorch is built for %s, which it has no BPF programs for: build it for amd64 or arm64", runtime.GOARCH)}
	}
	if machine != "" && machine != a.Uname {
		other := machine
		for _, b := range unwind.Arches {
			if b.Uname == machine {
				other = b.GOARCH
			}
		}
		notes = append(notes, fmt.Sprintf("this scorch is built for %s but the kernel is %s: its BPF programs cannot load there; use the %s build (make build: bin/scorch-%s)", a.GOARCH, machine, other, other))
	}
	if !a.KernelStackCache {
		notes = append(notes, kernelStackCacheOff(a))
	}
	return notes
}

// kernelMachine is uname -m.
func kernelMachine() string {
	var u unix.Utsname
	if err := unix.Uname(&u); err != nil {
		return ""
	}
	return unix.ByteSliceToString(u.Machine[:])
}

// offCPUNotes are the notes of an off-CPU capture's health on this host.
func offCPUNotes(a unwind.Arch, t capture.Type) []string {
	if a.KernelStackCache || t == capture.Wakeup { // wakeup sends no blocked stacks: no cache
		return nil
	}
	return []string{kernelStackCacheOff(a)}
}
