package profiler

import (
	"encoding/hex"
	"fmt"
	"path/filepath"
	"strings"

	"github.com/scorch-dev/scorch/capture"
	"github.com/scorch-dev/scorch/symbolizer"
)

// frames names the frames of a capture's raw stacks as it is built.
type frames struct {
	sym *symbolizer.Symbolizer
	b   *capture.Builder
	// mapped are the addresses whose mapping is recorded: stacks share
	// most of their addresses.
	mapped map[mappedPC]struct{}
}

type mappedPC struct {
	snap *symbolizer.Process
	pc   uint64
}

// buildCapture symbolizes the raw stacks and returns the capture of the
// events, whose Stack fields index raws.
func buildCapture(meta capture.Meta, sym *symbolizer.Symbolizer, raws []rawStack, events []capture.Event) *capture.Capture {
	f := frames{sym: sym, b: capture.NewBuilder(meta), mapped: make(map[mappedPC]struct{})}
	ids := make([]uint32, len(raws))
	var fs []uint32
	for i := range raws {
		r := &raws[i]
		if r.wakerRoot {
			fs = f.appendWakerRoot(fs[:0], &r.main)
		} else {
			fs = f.appendSegment(fs[:0], &r.main)
		}
		if r.leaf != "" {
			fs = append(fs, f.synthetic(r.leaf))
		}
		if r.waker != nil {
			fs = append(fs, f.synthetic(capture.FrameSeparator))
			fs = f.appendWaker(fs, r.waker)
		}
		ids[i] = f.b.Stack(fs)
	}
	for i := range events {
		events[i].Stack = ids[events[i].Stack]
		f.b.Add(events[i])
	}
	c := f.b.Capture()
	c.Meta.Stats.Samples = uint64(len(c.Events))
	return c
}

func (f *frames) synthetic(name string) uint32 {
	return f.b.Frame(capture.Frame{Name: name, Kind: capture.KindSynthetic})
}

func (f *frames) process(comm string) uint32 {
	return f.b.Frame(capture.Frame{Name: comm, Kind: capture.KindProcess})
}

// symbolize names a segment's frames, root first, without the process name.
func (f *frames) symbolize(g *segment) (user, kernel []capture.Frame) {
	if g.uTrunc {
		user = append(user, capture.Frame{Name: capture.FrameTruncated, Kind: capture.KindSynthetic})
	}
	for j := len(g.user) - 1; j >= 0; j-- {
		user = f.appendUser(user, g.snap, g.user[j], j > 0)
		f.mapping(g, g.user[j], j > 0)
	}
	if g.kTrunc {
		kernel = append(kernel, capture.Frame{Name: capture.FrameTruncated, Kind: capture.KindSynthetic})
	}
	for j := len(g.kernel) - 1; j >= 0; j-- {
		kf := kernelFrame(f.sym.Kernel(g.kernel[j], j > 0))
		// The tracing machinery that ran the BPF program is not part of
		// what the thread was doing.
		if isTracingFrame(kf.Name) {
			continue
		}
		kernel = append(kernel, kf)
	}
	return user, kernel
}

// appendRootFirst adds frames root first.
func (f *frames) appendRootFirst(out []uint32, fs ...[]capture.Frame) []uint32 {
	for _, list := range fs {
		for _, fr := range list {
			out = append(out, f.b.Frame(fr))
		}
	}
	return out
}

// appendSegment adds a segment root first: process name, user, kernel.
func (f *frames) appendSegment(out []uint32, g *segment) []uint32 {
	out = append(out, f.process(g.comm))
	user, kernel := f.symbolize(g)
	out = f.appendRootFirst(out, user, kernel)
	if len(user)+len(kernel) == 0 {
		out = append(out, f.synthetic(capture.FrameUnknown))
	}
	return out
}

// appendWaker adds a waker's segment leaf first, marked as the waker's, and
// ends with its process name; a wakeup from an interrupt keeps only the
// kernel stack and is named [irq].
func (f *frames) appendWaker(out []uint32, g *segment) []uint32 {
	user, kernel, comm := f.wakerFrames(g)
	for _, list := range [][]capture.Frame{kernel, user} {
		for j := len(list) - 1; j >= 0; j-- {
			fr := list[j]
			fr.Waker = true
			out = append(out, f.b.Frame(fr))
		}
	}
	return append(out, f.process(comm))
}

// appendWakerRoot builds the frames of a wakeup capture: the waker's stack,
// root first under its process name, or [irq] and the kernel stack.
func (f *frames) appendWakerRoot(out []uint32, g *segment) []uint32 {
	user, kernel, comm := f.wakerFrames(g)
	out = append(out, f.process(comm))
	return f.appendRootFirst(out, user, kernel)
}

// interruptEntries are kernel functions through which interrupts and
// softirqs enter: a wakeup below one of them was not done by the task that
// happened to be running.
var interruptEntries = []string{
	"asm_sysvec_", "sysvec_", "asm_common_interrupt", "common_interrupt",
	"handle_softirqs", "__do_softirq", "do_softirq", "irq_exit_rcu", "__irq_exit_rcu",
	"hrtimer_interrupt", "__hrtimer_run_queues", "handle_irq_event",
}

// interruptEntry returns the index of the outermost interrupt entry in a
// root-first kernel stack, or -1.
func interruptEntry(kernel []capture.Frame) int {
	for i, f := range kernel {
		if hasAnyPrefix(f.Name, interruptEntries) {
			return i
		}
	}
	return -1
}

// wakerFrames names a waker's frames. A wakeup done from an interrupt is
// charged to [irq] with the kernel stack from the interrupt entry on: the
// task that happened to be interrupted had nothing to do with it.
func (f *frames) wakerFrames(g *segment) (user, kernel []capture.Frame, comm string) {
	user, kernel = f.symbolize(g)
	if i := interruptEntry(kernel); i >= 0 {
		return nil, kernel[i:], capture.FrameIRQ
	}
	if g.idle {
		return nil, kernel, capture.FrameIRQ
	}
	return user, kernel, g.comm
}

// tracingPrefixes name the kernel functions that run a BPF program from a
// tracepoint or perf event: they are on the stack only because scorch is.
var tracingPrefixes = []string{
	"bpf_prog_", "__bpf_trace_", "bpf_trace_run", "__traceiter_", "bpf_get_stack", "__bpf_prog_run",
	"perf_syscall_", "perf_trace_", "syscall_trace_enter", "trace_call_bpf",
}

func isTracingFrame(name string) bool { return hasAnyPrefix(name, tracingPrefixes) }

func hasAnyPrefix(s string, prefixes []string) bool {
	for _, p := range prefixes {
		if strings.HasPrefix(s, p) {
			return true
		}
	}
	return false
}

// appendUser adds the frames of one user address, outermost first.
func (f *frames) appendUser(out []capture.Frame, snap *symbolizer.Process, pc uint64, ret bool) []capture.Frame {
	unknown := capture.Frame{Name: capture.FrameUnknown, Kind: capture.KindSynthetic}
	if snap == nil {
		return append(out, unknown)
	}
	fs := f.sym.User(snap, pc, ret)
	// Innermost first from the symbolizer; the stack is root first.
	for j := len(fs) - 1; j >= 0; j-- {
		out = append(out, userFrame(fs[j]))
	}
	if len(fs) == 0 {
		out = append(out, unknown)
	}
	return out
}

// mapping records where the process had the module of a user address
// mapped, for pprof's real mappings.
func (f *frames) mapping(g *segment, pc uint64, ret bool) {
	if g.snap == nil {
		return
	}
	if ret && pc > 0 {
		pc-- // as the symbolizer looks it up: within the call
	}
	k := mappedPC{g.snap, pc}
	if _, ok := f.mapped[k]; ok {
		return
	}
	f.mapped[k] = struct{}{}
	m, vaddr, ok := g.snap.MappingAt(pc)
	if !ok {
		return
	}
	f.b.Mapping(capture.Mapping{PID: g.pid, Start: m.Start, Limit: m.End, Offset: m.Offset, VAddr: vaddr,
		Module: m.Path, BuildID: hex.EncodeToString(m.BuildID)})
}

func userFrame(f symbolizer.Frame) capture.Frame {
	cf := capture.Frame{
		Name: f.Name, Module: f.Module, BuildID: f.BuildID, Offset: f.Offset,
		File: f.File, Line: f.Line, SystemName: f.SystemName, Kind: capture.KindUser,
	}
	switch {
	case f.JIT:
		cf.Kind = capture.KindJIT
	case f.Inlined:
		cf.Kind = capture.KindInlined
	}
	if cf.Name == "" {
		if f.Module == "" {
			cf.Name, cf.Kind = capture.FrameUnknown, capture.KindSynthetic
		} else {
			cf.Name = fmt.Sprintf("%s+0x%x", filepath.Base(f.Module), f.Offset)
		}
	}
	return cf
}

func kernelFrame(f symbolizer.Frame) capture.Frame {
	cf := capture.Frame{Name: f.Name, Module: f.Module, Offset: f.Offset, Kind: capture.KindKernel, SystemName: f.SystemName}
	if cf.Module == "" {
		cf.Module = "[kernel.kallsyms]"
	}
	if cf.Name == "" {
		cf.Name = capture.FrameUnknown
	}
	return cf
}
