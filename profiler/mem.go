package profiler

import (
	"bufio"
	"bytes"
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
	"golang.org/x/sys/unix"
)

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

// memObjects are bpf/mem.c's: allocator uprobes, syscall tracepoints and
// the map of live allocations.
type memObjects = objects[bpf.MemPrograms, *bpf.MemPrograms, memMaps]

type memMaps struct {
	Live         *ebpf.Map `ebpf:"live"`
	LiveOverflow *ebpf.Map `ebpf:"live_overflow"`
}

// loadMem records memory growth: page faults (the sampler), allocator
// calls or the brk and mmap syscalls (bpf/mem.c).
func loadMem(p *capture.Params, cfg loadConfig) (source, error) {
	if p.Event == "" {
		p.Event = MemEvents[0]
	}
	// A loop that touches or allocates memory faults and calls from the
	// same places: their user stacks are sent once.
	cfg.stackCache = true
	switch p.Event {
	case "page-faults":
		ev := perfEventSpec{name: "page-faults", typ: unix.PERF_TYPE_SOFTWARE, config: unix.PERF_COUNT_SW_PAGE_FAULTS, period: 1}
		return loadSampler(p, cfg, ev)
	case "malloc":
		if len(p.PIDs) == 0 {
			return nil, fmt.Errorf("%w: --type mem --event malloc needs --pid: allocator uprobes are placed per process", ErrBadTarget)
		}
	case "brk", "mmap":
	default:
		return nil, fmt.Errorf("%w: mem event %q is not supported: allowed values are %s", ErrBadTarget, p.Event, strings.Join(MemEvents, ", "))
	}
	spec, err := bpf.LoadMem()
	if err != nil {
		return nil, fmt.Errorf("loading mem spec: %w", err)
	}
	var ms bpf.MemMapSpecs
	if err := assignSpecs(spec, &ms); err != nil {
		return nil, err
	}
	ms.Live.MaxEntries = liveEntries
	src := &memSource{event: p.Event, byAlloc: make(map[allocKey]int), entries: make(map[uint32]map[string]uint64)}
	if err := loadObjects(spec, cfg, len(p.Command) > 0, 0, &src.memObjects); err != nil {
		return nil, err
	}
	return src, nil
}

// allocKey identifies one allocation: its address and its event's time.
type allocKey struct{ addr, ts uint64 }

// memSource turns allocation records into events and remembers which
// event each allocation is, to flag those still live at the end.
type memSource struct {
	memObjects
	event   string
	byAlloc map[allocKey]int // index into s.events
	// entries holds each process's allocator entry points by name, so the
	// allocator is the leaf frame, named by the symbolizer.
	entries map[uint32]map[string]uint64
	buf     []uint64
}

func (m *memSource) decode(s *session, e *stackEvent) {
	if e.Kind != bpf.SamplerRecordKindRECORD_SAMPLE {
		return
	}
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
		Time:   s.since(e.Ts),
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
		m.byAlloc[allocKey{addr, e.Ts}] = s.events.len()
	}
	s.add(ev)
}

// markLive flags the events of the allocations still in the live map.
func (m *memSource) markLive(s *session) (n int) {
	var addr uint64
	var v bpf.MemLiveAlloc
	it := m.Maps.Live.Iterate()
	for it.Next(&addr, &v) {
		if i, ok := m.byAlloc[allocKey{addr, v.Ts}]; ok {
			s.events.at(i).Flags |= capture.FlagInuse
			n++
		}
	}
	return n
}

// attach places the allocator uprobes on every target process (malloc) or
// the syscall tracepoint.
func (m *memSource) attach(c *collection, l *links) error {
	switch m.event {
	case "malloc":
		for _, pid := range c.tgt.pids {
			entries, err := attachAllocator(&m.memObjects, int(pid), l)
			if err != nil {
				return err
			}
			m.entries[pid] = entries
		}
		return nil
	case "mmap":
		return m.attachSyscall("mmap", m.Progs.MmapEnter, l)
	}
	return m.attachSyscall("brk", m.Progs.BrkEnter, l)
}

func (m *memSource) attachSyscall(name string, prog *ebpf.Program, l *links) error {
	tp, err := attachTracepoint("syscalls", "sys_enter_"+name, prog)
	if err != nil {
		return err
	}
	l.add(tp)
	return nil
}

func (m *memSource) finish(c *collection) {
	if m.event != "malloc" {
		return
	}
	n := m.markLive(c.s)
	c.s.stats.Counters.Add(capture.LiveAllocations, uint64(n))
	if over := sumPerCPU(m.Maps.LiveOverflow); over > 0 {
		c.s.stats.Counters.Add(capture.LiveMapOverflow, over)
		c.meta.Warnings = append(c.meta.Warnings, fmt.Sprintf("%d allocations found the map of live allocations full (%d entries): they count as allocated but not as in use", over, liveEntries))
	}
}

// attachAllocator places the allocator uprobes on the library the process
// really uses and returns the allocator functions' addresses in it.
func attachAllocator(objs *memObjects, pid int, links *links) (map[string]uint64, error) {
	maps, err := os.ReadFile(fmt.Sprintf("/proc/%d/maps", pid))
	if err != nil {
		return nil, fmt.Errorf("%w: reading the mappings of process %d: %w", ErrBadTarget, pid, err)
	}
	lib := findAllocator(maps)
	if lib == "" {
		return nil, fmt.Errorf("%w: process %d maps no libc (statically linked or not started yet): malloc uprobes need a dynamically linked libc", ErrUnavailable, pid)
	}
	// The path as the process sees it, also inside a container.
	path := fmt.Sprintf("/proc/%d/root%s", pid, lib)
	ex, err := link.OpenExecutable(path)
	if err != nil {
		return nil, fmt.Errorf("%w: opening %s: %w", ErrUnavailable, lib, err)
	}
	opts := &link.UprobeOptions{PID: pid}
	probes := []struct {
		sym   string
		prog  *ebpf.Program
		ret   bool
		maybe bool
	}{
		{"malloc", objs.Progs.MallocEnter, false, false},
		{"malloc", objs.Progs.AllocReturn, true, false},
		{"free", objs.Progs.FreeEnter, false, false},
		{"calloc", objs.Progs.CallocEnter, false, true},
		{"calloc", objs.Progs.AllocReturn, true, true},
		{"realloc", objs.Progs.ReallocEnter, false, true},
		{"realloc", objs.Progs.AllocReturn, true, true},
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
			return nil, fmt.Errorf("%w: uprobe on %s in %s: %w", ErrUnavailable, pr.sym, lib, err)
		}
		links.add(l)
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
	return entries, nil
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
