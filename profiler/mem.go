package profiler

import (
	"bufio"
	"bytes"
	"context"
	"debug/elf"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/link"
	"github.com/scorch-dev/scorch/bpf"
	"github.com/scorch-dev/scorch/capture"
	"github.com/scorch-dev/scorch/unwind"
	"golang.org/x/sys/unix"
)

func init() {
	collectors[capture.Mem] = recordMem
	probes["mem"] = probeMem
}

// MemEvents are the --event values of --type mem; the first is the default.
var MemEvents = []string{"page-faults", "malloc", "brk", "mmap"}

// allocFnNames name the allocating functions of bpf/mem.c's enum alloc_fn.
var allocFnNames = map[bpf.MemAllocFn]string{
	bpf.MemAllocFnFN_MALLOC:  "malloc",
	bpf.MemAllocFnFN_CALLOC:  "calloc",
	bpf.MemAllocFnFN_REALLOC: "realloc",
	bpf.MemAllocFnFN_BRK:     "brk",
	bpf.MemAllocFnFN_MMAP:    "mmap",
}

// isAllocator: fn is a C allocator, reached through a uprobe (brk and mmap
// are system calls, with a kernel stack that names them).
func isAllocator(fn bpf.MemAllocFn) bool {
	switch fn {
	case bpf.MemAllocFnFN_MALLOC, bpf.MemAllocFnFN_CALLOC, bpf.MemAllocFnFN_REALLOC:
		return true
	}
	return false
}

// liveEntries bounds the map of allocations not freed yet.
const liveEntries = 1 << 18

// recordMem records memory growth: page faults, allocator calls or the
// brk and mmap syscalls.
func recordMem(ctx context.Context, p capture.Params, mode unwind.Mode, opts Options) (*capture.Capture, error) {
	if p.Event == "" {
		p.Event = MemEvents[0]
	}
	switch p.Event {
	case "page-faults":
		ev := perfEventSpec{name: "page-faults", typ: unix.PERF_TYPE_SOFTWARE, config: unix.PERF_COUNT_SW_PAGE_FAULTS, period: 1}
		return recordSampler(ctx, p, mode, opts, ev, nil)
	case "malloc":
		if len(p.PIDs) == 0 {
			return nil, fmt.Errorf("%w: --type mem --event malloc needs --pid: allocator uprobes are placed per process", ErrBadTarget)
		}
		return recordMemBPF(ctx, p, mode, opts)
	case "brk", "mmap":
		return recordMemBPF(ctx, p, mode, opts)
	}
	return nil, fmt.Errorf("%w: mem event %q is not supported: allowed values are %s", ErrBadTarget, p.Event, strings.Join(MemEvents, ", "))
}

func loadMem(tgt *target, mode unwind.Mode, opts Options, follow bool) (*bpf.MemObjects, error) {
	spec, err := bpf.LoadMem()
	if err != nil {
		return nil, fmt.Errorf("loading mem spec: %w", err)
	}
	var ms bpf.MemMapSpecs
	if err := assignSpecs(spec, &ms); err != nil {
		return nil, err
	}
	ms.Live.MaxEntries = liveEntries
	var objs bpf.MemObjects
	if err := loadObjects(spec, tgt, mode, opts, follow, 0, &objs); err != nil {
		return nil, err
	}
	return &objs, nil
}

// allocKey identifies one allocation: its address and its event's time.
type allocKey struct{ addr, ts uint64 }

// memState turns allocation records into events and remembers which event
// each allocation is, to flag those still live at the end.
type memState struct {
	s       *session
	byAlloc map[allocKey]int // index into s.events
	// entries holds each process's allocator entry points by name, so the
	// allocator is the leaf frame, named by the symbolizer.
	entries map[uint32]map[string]uint64
	buf     []uint64
}

func (m *memState) sample(e *stackEvent) {
	s := m.s
	seg := s.segmentOf(e)
	fn, addr := e.alloc()
	name := allocFnNames[fn]
	leaf := ""
	if pc, ok := m.entries[e.PID][name]; ok && name != "" && !seg.idle {
		m.buf = append(append(m.buf[:0], pc), seg.user...)
		seg.user = m.buf
	} else if isAllocator(fn) {
		leaf = name
	}
	ev := capture.Event{
		Time:   int64(e.Ts - s.monoStart),
		Value:  int64(e.weight()),
		Value2: 1,
		Stack:  s.intern(rawStack{main: seg, leaf: leaf}),
		PID:    e.PID,
		TID:    e.TID,
		CPU:    uint16(e.CPU),
	}
	if e.has(bpf.SamplerEventFlagEVENT_KERNEL_MODE) {
		ev.Flags |= capture.FlagKernel
	}
	if addr != 0 {
		m.byAlloc[allocKey{addr, e.Ts}] = len(s.events)
	}
	s.events = append(s.events, ev)
}

// markLive flags the events of the allocations still in the live map.
func (m *memState) markLive(live *ebpf.Map) (n int) {
	var addr uint64
	var v bpf.MemLiveAlloc
	it := live.Iterate()
	for it.Next(&addr, &v) {
		if i, ok := m.byAlloc[allocKey{addr, v.Ts}]; ok {
			m.s.events[i].Flags |= capture.FlagInuse
			n++
		}
	}
	return n
}

// recordMemBPF runs mem.c: allocator uprobes (malloc) or syscall
// tracepoints (brk, mmap).
func recordMemBPF(ctx context.Context, p capture.Params, mode unwind.Mode, opts Options) (*capture.Capture, error) {
	tgt := newTarget(p)
	objs, err := loadMem(tgt, mode, opts, len(p.Command) > 0)
	if err != nil {
		return nil, err
	}
	defer objs.Close()
	c, err := newCollection(p, mode, opts, tgt, commonObjects{objs.Events, objs.Stats, objs.FilterPids, objs.FilterTids, objs.OnExec})
	if err != nil {
		return nil, err
	}
	defer c.Close()
	ms := &memState{s: c.s, byAlloc: make(map[allocKey]int), entries: make(map[uint32]map[string]uint64)}
	c.s.sample = ms.sample

	var links []link.Link
	detach := func() {
		for _, l := range links {
			l.Close()
		}
		links = nil
	}
	defer detach()
	switch p.Event {
	case "malloc":
		for _, pid := range tgt.pids {
			ls, entries, err := attachAllocator(objs, int(pid))
			links = append(links, ls...)
			if err != nil {
				return nil, err
			}
			ms.entries[pid] = entries
		}
	case "brk", "mmap":
		prog := objs.BrkEnter
		if p.Event == "mmap" {
			prog = objs.MmapEnter
		}
		l, err := link.Tracepoint("syscalls", "sys_enter_"+p.Event, prog, nil)
		if err != nil {
			return nil, fmt.Errorf("%w: attaching to tracepoint syscalls:sys_enter_%s: %v", ErrUnavailable, p.Event, err)
		}
		links = append(links, l)
	}
	if err := c.run(ctx, detach); err != nil {
		return nil, err
	}
	if p.Event == "malloc" {
		n := ms.markLive(objs.Live)
		addExtra(&c.s.stats, "live_allocations", uint64(n))
		if over := sumPerCPU(objs.LiveOverflow); over > 0 {
			addExtra(&c.s.stats, "live_map_overflow", over)
			c.meta.Warnings = append(c.meta.Warnings, fmt.Sprintf("%d allocations found the map of live allocations full (%d entries): they count as allocated but not as in use", over, liveEntries))
		}
	}
	return c.finish(), nil
}

func sumPerCPU(m *ebpf.Map) (n uint64) {
	var vals []uint64
	if err := m.Lookup(uint32(0), &vals); err != nil {
		return 0
	}
	for _, v := range vals {
		n += v
	}
	return n
}

// attachAllocator places the allocator uprobes on the library the process
// really uses and returns the allocator functions' addresses in it.
func attachAllocator(objs *bpf.MemObjects, pid int) ([]link.Link, map[string]uint64, error) {
	maps, err := os.ReadFile(fmt.Sprintf("/proc/%d/maps", pid))
	if err != nil {
		return nil, nil, fmt.Errorf("%w: reading the mappings of process %d: %v", ErrBadTarget, pid, err)
	}
	lib := findAllocator(maps)
	if lib == "" {
		return nil, nil, fmt.Errorf("%w: process %d maps no libc (statically linked or not started yet): malloc uprobes need a dynamically linked libc", ErrUnavailable, pid)
	}
	// The path as the process sees it, also inside a container.
	path := fmt.Sprintf("/proc/%d/root%s", pid, lib)
	ex, err := link.OpenExecutable(path)
	if err != nil {
		return nil, nil, fmt.Errorf("%w: opening %s: %v", ErrUnavailable, lib, err)
	}
	var links []link.Link
	opts := &link.UprobeOptions{PID: pid}
	probes := []struct {
		sym   string
		prog  *ebpf.Program
		ret   bool
		maybe bool
	}{
		{"malloc", objs.MallocEnter, false, false},
		{"malloc", objs.AllocReturn, true, false},
		{"free", objs.FreeEnter, false, false},
		{"calloc", objs.CallocEnter, false, true},
		{"calloc", objs.AllocReturn, true, true},
		{"realloc", objs.ReallocEnter, false, true},
		{"realloc", objs.AllocReturn, true, true},
	}
	for _, pr := range probes {
		var l link.Link
		if pr.ret {
			l, err = ex.Uretprobe(pr.sym, pr.prog, opts)
		} else {
			l, err = ex.Uprobe(pr.sym, pr.prog, opts)
		}
		if err != nil {
			if pr.maybe {
				continue
			}
			return links, nil, fmt.Errorf("%w: uprobe on %s in %s: %v", ErrUnavailable, pr.sym, lib, err)
		}
		links = append(links, l)
	}
	entries := make(map[string]uint64)
	if f, err := elf.Open(path); err == nil {
		for _, fn := range []string{"malloc", "calloc", "realloc"} {
			if addr, ok := symbolAddress(f, maps, lib, fn); ok {
				entries[fn] = addr
			}
		}
		f.Close()
	}
	return links, entries, nil
}

// findAllocator picks the C library from a /proc/PID/maps listing: glibc's
// libc.so.6 (or libc-2.x.so) or musl's.
func findAllocator(maps []byte) string {
	sc := bufio.NewScanner(bytes.NewReader(maps))
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		if len(f) < 6 || !strings.HasPrefix(f[5], "/") {
			continue
		}
		base := filepath.Base(f[5])
		if base == "libc.so.6" || (strings.HasPrefix(base, "libc-") && strings.HasSuffix(base, ".so")) ||
			strings.HasPrefix(base, "libc.musl-") || strings.HasPrefix(base, "ld-musl-") {
			return f[5]
		}
	}
	return ""
}

// symbolAddress is the address of a dynamic symbol of the file mapped at
// path in the process, from the file offset of the symbol and the mapping
// that covers it.
func symbolAddress(f *elf.File, maps []byte, path, name string) (uint64, bool) {
	syms, err := f.DynamicSymbols()
	if err != nil {
		return 0, false
	}
	var vaddr uint64
	for _, s := range syms {
		if s.Name == name && elf.ST_TYPE(s.Info) == elf.STT_FUNC && s.Value != 0 {
			vaddr = s.Value
			break
		}
	}
	if vaddr == 0 {
		return 0, false
	}
	var off uint64
	found := false
	for _, p := range f.Progs {
		if p.Type == elf.PT_LOAD && vaddr >= p.Vaddr && vaddr < p.Vaddr+p.Memsz {
			off, found = vaddr-p.Vaddr+p.Off, true
			break
		}
	}
	if !found {
		return 0, false
	}
	return mappedAddress(bytes.NewReader(maps), path, off)
}

// mappedAddress finds the address at which file offset off of path is
// mapped, from a /proc/PID/maps listing.
func mappedAddress(r io.Reader, path string, off uint64) (uint64, bool) {
	sc := bufio.NewScanner(r)
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		if len(f) < 6 || f[5] != path {
			continue
		}
		lo, hi, ok := strings.Cut(f[0], "-")
		if !ok {
			continue
		}
		start, err1 := strconv.ParseUint(lo, 16, 64)
		end, err2 := strconv.ParseUint(hi, 16, 64)
		moff, err3 := strconv.ParseUint(f[2], 16, 64)
		if err1 != nil || err2 != nil || err3 != nil || end <= start {
			continue
		}
		if off >= moff && off < moff+(end-start) {
			return start + off - moff, true
		}
	}
	return 0, false
}

// probeMem loads mem.c and attaches the brk tracepoint for a moment (the
// malloc uprobes need a target process).
func probeMem(ctx context.Context) error {
	objs, err := loadMem(&target{mode: bpf.SamplerTargetModeTARGET_PID}, unwind.ModeFP, Options{RingBytes: os.Getpagesize()}, false)
	if err != nil {
		return fmt.Errorf("the kernel refused the memory programs: %w", err)
	}
	defer objs.Close()
	l, err := link.Tracepoint("syscalls", "sys_enter_brk", objs.BrkEnter, nil)
	if err != nil {
		return fmt.Errorf("tracepoint syscalls:sys_enter_brk cannot be attached: %w", err)
	}
	l.Close()
	fd, err := openPerfEvent(unix.PERF_TYPE_SOFTWARE, unix.PERF_COUNT_SW_PAGE_FAULTS, 0, 1, false)
	if err != nil {
		return fmt.Errorf("perf_event_open(page-faults) failed: %w", err)
	}
	unix.Close(fd)
	return nil
}
