package profiler

import (
	"cmp"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"sort"
	"strconv"
	"sync"
	"time"
	"unsafe"

	"github.com/cilium/ebpf"
	"github.com/scorch-dev/scorch/bpf"
	"github.com/scorch-dev/scorch/capture"
	"github.com/scorch-dev/scorch/symbolizer"
	"github.com/scorch-dev/scorch/unwind"
	"golang.org/x/sys/unix"
)

// The sizes of the unwind table maps (see bpf/unwinder.h).
const (
	// DefaultUnwindEntries bounds the entries array: 4M entries are 32 MiB
	// of kernel memory, the tables of about 150 libc-sized files (libLLVM
	// alone is 950k).
	DefaultUnwindEntries = 4 << 20
	unwindRules          = 1 << 17                            // 2 MiB
	unwindPages          = DefaultUnwindEntries / pageEntries // 8 MiB
	unwindProcs          = 8192
	unwindMaps           = 1 << 16 // 3 MiB: the executable mappings of all processes
	// pageEntries is about how many entries a slot of a file's page index
	// covers: pages are sized per file to the density of its entries, so
	// that the BPF search reads a slot and one or two cache lines of
	// entries (a binary search over 64 KiB pages took ~10 steps a frame,
	// ~150 ns of cache misses on a whole host).
	pageEntries = 4
)

// tableStoreBytes bounds the built tables kept in scorch's memory once
// written to the maps: they are read again only for a file evicted from
// the maps and mapped again (from the on-disk cache when there is one),
// and at 64 MiB a whole host's Go binaries kept 20-40 MiB of them in a
// 60 s capture's heap.
const tableStoreBytes = 4 << 20

// procNoTables is unwind_proc's UNWIND_PROC_NO_TABLES (bpf/unwinder.h):
// the process's tables could not be loaded (its samples take the usual
// copy, not the pending one).
const procNoTables = 2

// unwindMaxMaps is the most executable mappings a process's entry holds.
const unwindMaxMaps = int(bpf.SamplerLimitLIMIT_UNWIND_MAPS)

// Reasons the table manager refused or evicted something, counted in
// capture.UnwindTableRefusals and capture.UnwindTableEvictions.
const (
	refuseEntriesFull = "entries array full"
	refuseRulesFull   = "rules array full"
	refusePagesFull   = "page index full"
	refuseTooMany     = "too many mappings in a process"
	refuseMapsFull    = "mappings array full"
	refuseQueueFull   = "load queue full"
	refuseProcsFull   = "process map full"
	refuseBuild       = "no usable CFI"
	evictSpace        = "space for another file"
	evictProcess      = "process sampled least recently"
)

// UnwindTables owns the BPF maps of the in-kernel unwinder: every loaded
// object gets the same maps (MapReplacements), so all collectors of a
// process share one set of tables. Tables are built per file in the
// background (unwind.BuildCompact, shared by every process mapping the
// file), loaded when a process is first seen, and removed when no process
// uses them and space is needed. Safe for concurrent use.
type UnwindTables struct {
	log   *slog.Logger
	store *unwind.CompactStore
	disk  *tableCache // the tables of earlier scorch processes

	entries, rules, pages *ebpf.Map
	maps, procMap         *ebpf.Map
	nEntries              uint32

	// Loads wait in two queues: hot for processes whose samples are
	// waiting for their tables, cold for the rest (a whole host's
	// processes queued at the start), so that busy processes go first.
	hot, cold chan *loadReq
	done      chan struct{}
	// quit ends the loading before Close (stopLoading): a capture's own
	// tables once its window ended.
	quit     chan struct{}
	quitOnce sync.Once
	wg       sync.WaitGroup

	mu        sync.Mutex
	entAlloc  rangeAlloc
	ruleAlloc rangeAlloc
	pageAlloc rangeAlloc
	mapAlloc  rangeAlloc
	files     map[string]*tableFile
	procs     map[uint32]*tableProc
	pending   map[uint32]*loadReq // queued, by pid
	tick      uint64              // LRU clock
	counters  capture.Counters
	refused   error  // the kernel refused the walker: nothing is loaded
	active    int    // captures using the tables now
	loading   uint32 // the process load is writing (not to be evicted for itself)
	gen       uint32 // the last process entry's gen (bpf/unwinder.h's frame cache)
	// sampledOnly: a process's tables are loaded once one of its samples
	// waits for them, not when it is first seen (an exec): on a busy host
	// most processes are never sampled at an agent's low rate.
	sampledOnly bool
}

// tableFile is one file's table in the maps.
type tableFile struct {
	key             string
	entry, nEntries uint32
	rule, nRules    uint32
	page, nPages    uint32
	pageShift       uint32
	base            uint64
	refs            int
	used            uint64 // LRU clock at last use
	none            bool   // no table (no CFI): frame pointers there
	anon            bool   // one process's anonymous code (trampolines): offsets from the mapping's start
	abs             bool   // with anon: JIT code whose table's Base is an address of the process (bias 0)
}

// tableProc is a process whose mappings are in the procs map.
type tableProc struct {
	first, n uint32 // its range of the mappings array
	sampled  uint64 // LRU clock at its last sample walked in BPF
	files    []*tableFile
	reloaded time.Time
}

type loadReq struct {
	pid  uint32
	snap *symbolizer.Process
	hot  bool
}

// UnwindTableOptions configure NewUnwindTables.
type UnwindTableOptions struct {
	// Entries bounds the entries array (8 bytes each); 0: DefaultUnwindEntries.
	Entries int
	Logger  *slog.Logger
	// SampledOnly loads a process's tables only once it is sampled (an
	// agent's low rate), not as soon as it is seen.
	SampledOnly bool
	// CacheDir keeps built tables on disk for the next scorch process
	// (DefaultUnwindCacheDir); "": none.
	CacheDir string
	// Store, when set, keeps the built tables (the user-space unwinder's,
	// Unwinder.Store: a process's first samples, unwound from copies while
	// its tables load, build the same tables); nil: a store of its own.
	Store *unwind.CompactStore
}

// NewUnwindTables creates the maps (with the layouts of bpf/unwinder.h).
func NewUnwindTables(opts UnwindTableOptions) (*UnwindTables, error) {
	if opts.Entries <= 0 {
		opts.Entries = DefaultUnwindEntries
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	spec, err := samplerSpec() // read only: each map spec is copied
	if err != nil {
		return nil, err
	}
	t := &UnwindTables{
		log:         opts.Logger,
		sampledOnly: opts.SampledOnly,
		store:       opts.Store,
		disk:        &tableCache{dir: opts.CacheDir},
		nEntries:    uint32(opts.Entries),
		hot:         make(chan *loadReq, 1024),
		cold:        make(chan *loadReq, 8192),
		done:        make(chan struct{}),
		quit:        make(chan struct{}),
		files:       make(map[string]*tableFile),
		procs:       make(map[uint32]*tableProc),
		pending:     make(map[uint32]*loadReq),
	}
	if t.store == nil {
		t.store = unwind.NewCompactStore(tableStoreBytes)
	}
	if opts.CacheDir != "" {
		// The user-space unwinder's builds too (a process's first samples).
		t.store.SetBuild(t.disk.build)
	}
	sizes := t.sizes()
	mk := func(name string) (*ebpf.Map, error) {
		ms := spec.Maps[name].Copy()
		ms.MaxEntries = sizes[name]
		m, err := ebpf.NewMap(ms)
		if err != nil {
			return nil, fmt.Errorf("creating %s (%d entries): %w", name, ms.MaxEntries, err)
		}
		return m, nil
	}
	if t.entries, err = mk("unwind_entries"); err == nil {
		if t.rules, err = mk("unwind_rules"); err == nil {
			if t.pages, err = mk("unwind_pages"); err == nil {
				if t.maps, err = mk("unwind_maps"); err == nil {
					t.procMap, err = mk("unwind_procs")
				}
			}
		}
	}
	if err == nil {
		// The arrays are written through mappings (writeArray): a
		// kernel that cannot map them fails here, not at each write.
		err = writeArray(t.entries, make([]byte, 8), 0)
	}
	if err != nil {
		t.closeMaps()
		return nil, err
	}
	t.entAlloc.init(t.nEntries)
	t.ruleAlloc.init(unwindRules)
	t.pageAlloc.init(unwindPages)
	t.mapAlloc.init(unwindMaps)
	// Slot 0 of each array stays unused: rule 0 of every file means "no
	// CFI", and a zeroed mapping points nowhere.
	t.ruleAlloc.alloc(1)
	// Two builders: a large file takes 100 ms, and a whole host has many;
	// a third takes only processes whose samples wait (hot): on a busy
	// host both builders can be seconds into cold loads (Chromium's
	// 300 MB binary) while the sampled processes' samples fall back to
	// short stack copies.
	// An agent's tables (SampledOnly) are built by one: at its rate the
	// loads are few, and each builder of a large binary's table holds
	// tens of MiB until it is done (three at once were most of an
	// agent's RSS on a host starting new Go binaries).
	if opts.SampledOnly {
		t.wg.Add(2)
		go t.worker(false)
	} else {
		t.wg.Add(4)
		go t.worker(false)
		go t.worker(false)
		go t.worker(true)
	}
	go t.sweeper()
	return t, nil
}

// LazyUnwindTables makes the unwind tables at the first capture that uses
// them and keeps them for the next ones (a server's captures, an agent's
// windows), so that tables are built once per file, not per capture. The
// zero value is ready to use.
type LazyUnwindTables struct {
	// SampledOnly and Store: see UnwindTableOptions; set before the first
	// Get.
	SampledOnly bool
	Store       *unwind.CompactStore
	once        sync.Once
	t           *UnwindTables
}

// Get returns the tables, nil when they cannot be made (logged once; each
// capture then makes its own attempt and falls back to stack copies).
func (l *LazyUnwindTables) Get(log *slog.Logger) *UnwindTables {
	l.once.Do(func() {
		t, err := NewUnwindTables(UnwindTableOptions{Logger: log, SampledOnly: l.SampledOnly, Store: l.Store})
		if err != nil {
			if log != nil {
				log.Warn("BPF unwind tables unavailable", "err", err)
			}
			return
		}
		l.t = t
	})
	return l.t
}

// gauges are the counters stats reports as the state now, not as a count
// since the tables were made.
var gauges = map[capture.Counter]bool{capture.UnwindTableBytes: true, capture.UnwindTableFiles: true}

// since are the counters of stats now less those of base (gauges as they
// are): a capture's share of tables shared with others.
func since(now, base capture.Counters) capture.Counters {
	out := capture.Counters{}
	for k, n := range now {
		if !gauges[k.Counter] {
			n -= min(n, base[k])
		}
		if n > 0 {
			out.AddReason(k.Counter, k.Reason, n)
		}
	}
	return out
}

func (t *UnwindTables) sizes() map[string]uint32 {
	return map[string]uint32{
		"unwind_entries": t.nEntries,
		"unwind_rules":   unwindRules,
		"unwind_pages":   unwindPages,
		"unwind_maps":    unwindMaps,
		"unwind_procs":   unwindProcs,
	}
}

// replace sizes an object's unwind maps as the shared ones and returns
// them as its MapReplacements.
func (t *UnwindTables) replace(spec *ebpf.CollectionSpec) map[string]*ebpf.Map {
	for name, n := range t.sizes() {
		if ms := spec.Maps[name]; ms != nil {
			ms.MaxEntries = n
		}
	}
	// The walker's frame cache, the object's own: FC_SLOTS slots per
	// possible CPU (a CPU past the array caches nothing).
	if ms := spec.Maps["unwind_fcache"]; ms != nil {
		if n, err := ebpf.PossibleCPU(); err == nil && n > 0 {
			ms.MaxEntries = uint32(min(n, 4096)) * uint32(bpf.SamplerLimitLIMIT_FC_SLOTS)
		}
	}
	return map[string]*ebpf.Map{
		"unwind_entries": t.entries,
		"unwind_rules":   t.rules,
		"unwind_pages":   t.pages,
		"unwind_maps":    t.maps,
		"unwind_procs":   t.procMap,
	}
}

// refuse records that the kernel refused the walker: stacks are unwound
// from copies, as before the tables.
func (t *UnwindTables) refuse(err error) {
	t.mu.Lock()
	t.refused = err
	t.mu.Unlock()
}

// Refused is the kernel's refusal of the BPF unwinder, or nil.
func (t *UnwindTables) Refused() error {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.refused
}

// stopLoading drops the queued loads and takes no more; a load under way
// finishes. A capture's own tables stop when its window ends: building
// tables the capture will not use takes the CPU its end needs.
func (t *UnwindTables) stopLoading() {
	if t != nil {
		t.quitOnce.Do(func() { close(t.quit) })
	}
}

// Close stops loading and releases the maps.
func (t *UnwindTables) Close() error {
	select {
	case <-t.done:
		return nil
	default:
	}
	close(t.done)
	t.wg.Wait()
	return t.closeMaps()
}

func (t *UnwindTables) closeMaps() error {
	var errs []error
	for _, m := range []*ebpf.Map{t.entries, t.rules, t.pages, t.maps, t.procMap} {
		if m != nil {
			errs = append(errs, m.Close())
		}
	}
	return errors.Join(errs...)
}

// want asks for a process's tables to be loaded (first sight, exec, a new
// mapping). It does not block: the tables are built in the background.
func (t *UnwindTables) want(pid uint32, snap *symbolizer.Process) {
	t.enqueue(pid, snap, false, false)
}

// waiting: a sample of pid was taken before its tables were loaded. Its
// load, queued or not, goes to the front.
func (t *UnwindTables) waiting(pid uint32, snap *symbolizer.Process) {
	t.enqueue(pid, snap, true, false)
}

// enqueue queues a load; hot ones go first; reload queues one for a
// process already loaded.
func (t *UnwindTables) enqueue(pid uint32, snap *symbolizer.Process, hot, reload bool) {
	if t == nil || snap == nil {
		return
	}
	select {
	case <-t.quit:
		return // no worker takes it
	default:
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.refused != nil {
		return
	}
	r := t.pending[pid]
	if r == nil && !hot && t.sampledOnly && t.procs[pid] == nil {
		return // not sampled yet: its first sample waiting queues it
	}
	if r != nil {
		r.snap = snap
		if !hot || r.hot {
			return
		}
	} else if hot && !reload && t.procs[pid] != nil {
		return // loaded; an exec's reload is queued by want
	} else {
		r = &loadReq{pid: pid, snap: snap}
		t.pending[pid] = r
	}
	q := t.cold
	if hot {
		r.hot, q = true, t.hot
	}
	select {
	case q <- r:
	default:
		if t.pending[pid] == r && !r.hot {
			delete(t.pending, pid)
		}
		t.counters.AddReason(capture.UnwindTableRefusals, refuseQueueFull, 1)
	}
}

// loadNow loads a process's tables before returning (targets named up
// front, before sampling starts), or gives up waiting after loadWait (a
// huge binary's table: the load goes on, its first samples take the copy
// path).
func (t *UnwindTables) loadNow(pid uint32, snap *symbolizer.Process) {
	done := make(chan struct{})
	t.wg.Add(1) // Close waits for it: the maps must outlive their writers
	go func() {
		defer t.wg.Done()
		defer close(done)
		if err := t.load(pid, snap); err != nil {
			t.log.Debug("unwind tables not loaded", "pid", pid, "err", err)
			t.unmark(pid)
		}
	}()
	select {
	case <-done:
	case <-time.After(loadWait):
	}
}

const loadWait = 2 * time.Second

// reloadEvery bounds how often a process's mappings are reloaded because a
// sample met a pc outside them (code mapped after the load: dlopen, JIT).
const reloadEvery = 500 * time.Millisecond

// unmapped: a sample of pid walked through a pc outside its loaded
// mappings. The maps are read again (rate limited) and reloaded.
func (t *UnwindTables) unmapped(pid uint32, snap *symbolizer.Process) {
	if t == nil || snap == nil {
		return
	}
	t.mu.Lock()
	tp := t.procs[pid]
	stale := tp != nil && time.Since(tp.reloaded) >= reloadEvery
	if stale {
		tp.reloaded = time.Now()
	}
	t.mu.Unlock()
	if stale && snap.Reread() {
		// Its samples walk through code the tables do not have yet
		// (CPython's trampolines appear as functions are first called).
		t.enqueue(pid, snap, true, true)
	}
}

// stats are the manager's counters so far and the map bytes in use.
func (t *UnwindTables) stats() capture.Counters {
	t.mu.Lock()
	defer t.mu.Unlock()
	out := capture.Counters{}
	for k, n := range t.counters {
		out.AddReason(k.Counter, k.Reason, n)
	}
	var entries, rules, pages, maps uint64
	for _, f := range t.files {
		entries += uint64(f.nEntries)
		rules += uint64(f.nRules)
		pages += uint64(f.nPages)
	}
	for _, p := range t.procs {
		maps += uint64(p.n)
	}
	out.Add(capture.UnwindTableBytes, entries*unwind.EntrySize+rules*unwind.RuleSize+pages*8+
		maps*uint64(unsafe.Sizeof(bpf.SamplerUnwindMapping{}))+uint64(len(t.procs))*16)
	out.Add(capture.UnwindTableFiles, uint64(len(t.files)))
	if n := t.disk.built.Load(); n > 0 {
		out.Add(capture.UnwindTablesBuilt, uint64(n))
	}
	if n := t.disk.read.Load(); n > 0 {
		out.Add(capture.UnwindTablesCached, uint64(n))
	}
	return out
}

func (t *UnwindTables) worker(hotOnly bool) {
	defer t.wg.Done()
	cold := t.cold
	if hotOnly {
		cold = nil // never ready
	}
	for {
		var r *loadReq
		select {
		case <-t.done:
			return
		case <-t.quit:
			return
		case r = <-t.hot:
		default:
			select {
			case <-t.done:
				return
			case <-t.quit:
				return
			case r = <-t.hot:
			case r = <-cold:
			}
		}
		// A request promoted to hot is in both queues: the first taken
		// does it.
		t.mu.Lock()
		if t.pending[r.pid] != r {
			t.mu.Unlock()
			continue
		}
		delete(t.pending, r.pid)
		snap := r.snap
		t.mu.Unlock()
		if err := t.load(r.pid, snap); err != nil {
			t.log.Debug("unwind tables not loaded", "pid", r.pid, "err", err)
			t.unmark(r.pid)
		}
	}
}

// unmark: a process's load failed; its samples go back to the usual copy
// (and are counted as pending; the next one asks for a load again).
func (t *UnwindTables) unmark(pid uint32) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.procs[pid] == nil {
		t.procMap.Put(pid, bpf.SamplerUnwindProc{Flags: procNoTables})
	}
}

// dropStale deletes the BPF entries of processes without loaded tables
// (the walker's pending entries, unmark's) whose process exited, or all of
// them (a capture starting after a pause): the map is bounded, and a
// whole host's short-lived processes would fill it.
func (t *UnwindTables) dropStale(all bool) {
	var pid uint32
	var v bpf.SamplerUnwindProc
	var stale []uint32
	for it := t.procMap.Iterate(); it.Next(&pid, &v); {
		if t.procs[pid] != nil {
			continue
		}
		if _, err := os.Stat("/proc/" + strconv.Itoa(int(pid))); all || err != nil {
			stale = append(stale, pid)
		}
	}
	for _, pid := range stale {
		t.procMap.Delete(pid)
	}
}

// sweepEvery is how often the processes whose tables are loaded are checked
// for exit.
const sweepEvery = time.Second

func (t *UnwindTables) sweeper() {
	defer t.wg.Done()
	tk := time.NewTicker(sweepEvery)
	defer tk.Stop()
	for {
		select {
		case <-t.done:
			return
		case <-tk.C:
		}
		t.mu.Lock()
		var gone []uint32
		for pid := range t.procs {
			if _, err := os.Stat("/proc/" + strconv.Itoa(int(pid))); err != nil {
				gone = append(gone, pid)
			}
		}
		for _, pid := range gone {
			t.removeLocked(pid)
		}
		t.dropStale(false)
		t.mu.Unlock()
	}
}

// begin: a capture starts using the tables. Between captures no exec hook
// runs, so a process may have exec'd another program since its entry was
// written: the first capture drops the processes' entries (the files'
// tables stay, so reloading them takes no rebuilding).
func (t *UnwindTables) begin() {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.active == 0 {
		for pid := range t.procs {
			t.removeLocked(pid)
		}
		t.dropStale(true)
	}
	t.active++
}

// end: a capture stopped using the tables.
func (t *UnwindTables) end() {
	t.mu.Lock()
	t.active--
	t.mu.Unlock()
}

// sampled: a sample of pid was walked in BPF (the eviction order).
func (t *UnwindTables) sampled(pid uint32) {
	t.mu.Lock()
	t.tick++
	if p := t.procs[pid]; p != nil {
		p.sampled = t.tick
	}
	t.mu.Unlock()
}

// exited removes the entry of a process that exited (the kernel's mapping
// records say so; the sweep finds the others).
func (t *UnwindTables) exited(pid uint32) {
	if t == nil {
		return
	}
	t.mu.Lock()
	t.removeLocked(pid)
	t.mu.Unlock()
}

// remove drops a process's entry and its references to files.
func (t *UnwindTables) removeLocked(pid uint32) {
	tp := t.procs[pid]
	if tp == nil {
		return
	}
	t.procMap.Delete(pid)
	t.mapAlloc.free(tp.first, tp.n)
	t.unref(tp.files)
	delete(t.procs, pid)
	t.counters.Add(capture.UnwindTableProcsRemoved, 1)
}

// load builds (or finds) the tables of every executable mapping of the
// process and writes its entry.
func (t *UnwindTables) load(pid uint32, snap *symbolizer.Process) error {
	ms := snap.ExecMappings()
	// Build outside the lock: a large library takes 100 ms.
	tables := make([]*unwind.CompactTable, len(ms))
	jits := make([]*jitTable, len(ms))
	t.mu.Lock()
	for i, m := range ms {
		if m.Key == "" {
			t.mu.Unlock()
			jits[i] = buildJITTable(pid, snap, m)
			t.mu.Lock()
			continue
		}
		if t.files[m.Key] != nil {
			continue
		}
		t.mu.Unlock()
		// Under the user-space unwinder's key: a table it built for the
		// process's first samples is this one.
		tables[i], _ = t.store.GetOr(cmp.Or(m.ModuleKey, m.Key), func() (*unwind.CompactTable, error) { return t.disk.table(m) })
		t.mu.Lock()
	}
	defer t.mu.Unlock()
	if t.refused != nil {
		return t.refused
	}
	t.loading = pid
	defer func() { t.loading = 0 }()
	var maps []bpf.SamplerUnwindMapping
	var files []*tableFile
	t.tick++
	for i, m := range ms {
		if m.Key == "" {
			// Anonymous code (JIT): frame pointers, but for the
			// trampolines whose code scorch knows.
			tab, abs := trampolineTable(pid, m), false
			if tab != nil {
				m.Key = fmt.Sprintf("trampolines:%d:%x-%x", pid, m.Start, m.End)
			} else if j := jits[i]; j != nil {
				// JIT code with the CFI of its jitdump: a mapping of
				// the range that code covers, in absolute addresses.
				tab, m.Key, m.Start, m.End, abs = j.tab, j.key, j.start, j.end, true
			} else {
				continue
			}
			if t.files[m.Key] == nil {
				f := &tableFile{key: m.Key, anon: true, abs: abs}
				if err := t.upload(f, tab); err != nil {
					t.counters.AddReason(capture.UnwindTableRefusals, err.Error(), 1)
					continue
				}
				if f.abs {
					t.counters.Add(capture.UnwindJITTables, 1)
				} else {
					t.counters.Add(capture.UnwindTrampolineTables, 1)
				}
			}
		}
		f := t.files[m.Key]
		if f == nil {
			var err error
			if f, err = t.addFile(m, tables[i]); err != nil {
				// No room: the process stays on the copy path (user
				// space unwinds its samples) rather than lose the
				// frames of that file.
				t.counters.AddReason(capture.UnwindTableRefusals, err.Error(), 1)
				t.unref(files)
				return err
			}
		}
		if len(maps) >= unwindMaxMaps {
			t.counters.AddReason(capture.UnwindTableRefusals, refuseTooMany, 1)
			break
		}
		f.refs++
		f.used = t.tick
		files = append(files, f)
		maps = append(maps, f.mapping(m))
	}
	unref := t.unref
	sort.Slice(maps, func(i, j int) bool { return maps[i].Start < maps[j].Start })
	n := uint32(len(maps))
	first, ok := t.mapAlloc.alloc(n)
	if !ok {
		unref(files)
		t.counters.AddReason(capture.UnwindTableRefusals, refuseMapsFull, 1)
		return fmt.Errorf("no room for process %d's %d mappings", pid, n)
	}
	if n > 0 {
		b := unsafe.Slice((*byte)(unsafe.Pointer(&maps[0])), len(maps)*int(unsafe.Sizeof(maps[0])))
		if err := writeArray(t.maps, b, int64(first)*int64(unsafe.Sizeof(maps[0]))); err != nil {
			unref(files)
			t.mapAlloc.free(first, n)
			return fmt.Errorf("writing process %d's mappings: %w", pid, err)
		}
	}
	// A new gen for every entry written: the walker's frame cache keeps
	// results by it, valid only with the mappings they were found in.
	if t.gen++; t.gen == 0 {
		t.gen = 1
	}
	if err := t.procMap.Put(pid, bpf.SamplerUnwindProc{First: first, N: n, Gen: t.gen}); err != nil {
		unref(files)
		t.mapAlloc.free(first, n)
		t.counters.AddReason(capture.UnwindTableRefusals, refuseProcsFull, 1)
		return fmt.Errorf("writing process %d's entry: %w", pid, err)
	}
	// A reload: the process's previous mappings and references go.
	if old := t.procs[pid]; old != nil {
		unref(old.files)
		t.mapAlloc.free(old.first, old.n)
	} else {
		t.counters.Add(capture.UnwindTableProcs, 1)
	}
	t.procs[pid] = &tableProc{first: first, n: n, files: files, reloaded: time.Now(), sampled: t.tick}
	return nil
}

// mapping is the BPF mapping entry of a process's mapping of f.
func (f *tableFile) mapping(m symbolizer.ExecMapping) bpf.SamplerUnwindMapping {
	um := bpf.SamplerUnwindMapping{Start: m.Start, End: m.End}
	if f.none {
		return um
	}
	bias, ok := m.Start, true
	if f.abs {
		bias = 0
	} else if !f.anon {
		bias, ok = m.Bias, m.BiasOK
	}
	if !ok {
		return um
	}
	um.Bias = bias + f.base
	um.FirstEntry, um.EntryCount = f.entry, f.nEntries
	um.FirstRule = f.rule
	um.FirstPage, um.PageCount, um.PageShift = f.page, f.nPages, f.pageShift
	return um
}

// addFile writes a file's table into the maps, evicting the least recently
// used files no process maps when there is no room. A file without a
// usable table is kept as "none" (frame pointers there), so that it is not
// built again. The error is the refusal reason.
func (t *UnwindTables) addFile(m symbolizer.ExecMapping, tab *unwind.CompactTable) (*tableFile, error) {
	f := &tableFile{key: m.Key, none: true}
	if tab == nil || len(tab.Entries) < 2 || m.Open == nil {
		t.files[m.Key] = f
		if tab == nil {
			t.counters.AddReason(capture.UnwindTableRefusals, refuseBuild, 1)
		}
		return f, nil
	}
	if !m.BiasOK { // no executable segment: nothing of it runs
		t.files[m.Key] = f
		return f, nil
	}
	return f, t.upload(f, tab)
}

// upload writes a table into the maps for f and registers f.
func (t *UnwindTables) upload(f *tableFile, tab *unwind.CompactTable) error {
	pages, shift := buildPages(tab)
	ne, nr, np := uint32(len(tab.Entries)), uint32(len(tab.Rules)), uint32(len(pages))
	switch {
	case ne > t.nEntries:
		return errors.New(refuseEntriesFull)
	case nr > unwindRules:
		return errors.New(refuseRulesFull)
	case np > unwindPages:
		return errors.New(refusePagesFull)
	}
	if !t.reserve(f, ne, nr, np) {
		switch {
		case !t.entAlloc.fits(ne):
			return errors.New(refuseEntriesFull)
		case !t.ruleAlloc.fits(nr):
			return errors.New(refuseRulesFull)
		default:
			return errors.New(refusePagesFull)
		}
	}
	f.none = false
	f.nEntries, f.nRules, f.nPages, f.pageShift, f.base = ne, nr, np, shift, tab.Base
	// Sized once: appending to nil re-grew a large file's megabytes of
	// entries a dozen times, the agent's largest cost on a busy host.
	if err := writeArray(t.entries, tab.AppendEntries(make([]byte, 0, int(ne)*unwind.EntrySize)), int64(f.entry)*unwind.EntrySize); err != nil {
		return fmt.Errorf("writing entries: %w", err)
	}
	if err := writeArray(t.rules, tab.AppendRules(make([]byte, 0, int(nr)*unwind.RuleSize)), int64(f.rule)*unwind.RuleSize); err != nil {
		return fmt.Errorf("writing rules: %w", err)
	}
	pb := make([]byte, 0, len(pages)*8)
	for _, p := range pages {
		pb = append(pb, byte(p.First), byte(p.First>>8), byte(p.First>>16), byte(p.First>>24),
			byte(p.N), byte(p.N>>8), byte(p.N>>16), byte(p.N>>24))
	}
	if err := writeArray(t.pages, pb, int64(f.page)*8); err != nil {
		return fmt.Errorf("writing pages: %w", err)
	}
	t.files[f.key] = f
	t.counters.Add(capture.UnwindTableFilesLoaded, 1)
	return nil
}

// writeArray writes b at byte offset off of a BPF_F_MMAPABLE array through
// a mapping of only the pages b covers, unmapped once written. The kernel
// maps every page of a BPF array's mapping at mmap time, so the tables kept
// mapped for the capture's life (ebpf.Map.Memory) were 45 MiB of scorch's
// RSS from the start, whatever the tables held; the data stays in the
// map's kernel memory either way.
func writeArray(m *ebpf.Map, b []byte, off int64) error {
	if len(b) == 0 {
		return nil
	}
	ps := int64(os.Getpagesize())
	start := off &^ (ps - 1)
	mem, err := unix.Mmap(m.FD(), start, int(off-start)+len(b), unix.PROT_READ|unix.PROT_WRITE, unix.MAP_SHARED)
	if err != nil {
		return fmt.Errorf("mapping %s at %d: %w", m, start, err)
	}
	copy(mem[off-start:], b)
	if err := unix.Munmap(mem); err != nil {
		return fmt.Errorf("unmapping %s: %w", m, err)
	}
	return nil
}

// unref drops a process's references to files; a process's own
// trampoline tables go with it.
func (t *UnwindTables) unref(files []*tableFile) {
	for _, f := range files {
		f.refs--
		if f.anon && f.refs == 0 {
			t.free(f)
		}
	}
}

// free releases a file's ranges.
func (t *UnwindTables) free(f *tableFile) {
	t.entAlloc.free(f.entry, f.nEntries)
	t.ruleAlloc.free(f.rule, f.nRules)
	t.pageAlloc.free(f.page, f.nPages)
	delete(t.files, f.key)
}

// reserve allocates f's ranges, evicting unused files (least recently used
// first) until they fit. Nothing is allocated when it fails.
func (t *UnwindTables) reserve(f *tableFile, ne, nr, np uint32) bool {
	for {
		if t.entAlloc.fits(ne) && t.ruleAlloc.fits(nr) && t.pageAlloc.fits(np) {
			f.entry, _ = t.entAlloc.alloc(ne)
			f.rule, _ = t.ruleAlloc.alloc(nr)
			f.page, _ = t.pageAlloc.alloc(np)
			return true
		}
		var victim *tableFile
		for _, o := range t.files {
			if o.refs == 0 && !o.none && (victim == nil || o.used < victim.used) {
				victim = o
			}
		}
		if victim != nil {
			t.free(victim)
			t.counters.AddReason(capture.UnwindTableEvictions, evictSpace, 1)
			continue
		}
		// Every file is mapped: the process sampled longest ago goes
		// back to the copy path, and its files become free to evict.
		idle, oldest := uint32(0), uint64(0)
		for pid, p := range t.procs {
			if pid != t.loading && (idle == 0 || p.sampled < oldest) {
				idle, oldest = pid, p.sampled
			}
		}
		if idle == 0 {
			return false
		}
		t.removeLocked(idle)
		t.counters.AddReason(capture.UnwindTableEvictions, evictProcess, 1)
	}
}

// buildPages is a table's page index and its page size (1 << shift bytes,
// the smallest power of two of at least 16 that gives about pageEntries
// entries a page): for each page of its pc range, the entries a search
// there needs, or the rule itself (N 0) where one entry covers the page.
func buildPages(tab *unwind.CompactTable) ([]bpf.SamplerUnwindPage, uint32) {
	last := tab.Entries[len(tab.Entries)-1].PC
	shift := uint32(4)
	for shift < 31 && int(last>>shift)+1 > max(1, len(tab.Entries)/pageEntries) {
		shift++
	}
	n := int(last>>shift) + 1
	pages := make([]bpf.SamplerUnwindPage, n)
	i := 0 // the last entry at or below the page's start
	for p := range pages {
		start := uint32(p) << shift
		for i+1 < len(tab.Entries) && tab.Entries[i+1].PC <= start {
			i++
		}
		j := i // the last entry at or below the page's end
		end := start + (1<<shift - 1)
		for j+1 < len(tab.Entries) && tab.Entries[j+1].PC <= end {
			j++
		}
		if j == i && tab.Entries[i].PC <= start {
			pages[p] = bpf.SamplerUnwindPage{First: tab.Entries[i].Rule, N: 0}
			continue
		}
		pages[p] = bpf.SamplerUnwindPage{First: uint32(i), N: uint32(j - i + 1)}
	}
	return pages, shift
}

// rangeAlloc hands out ranges of an array: first fit over the free
// ranges, sorted by start and merged as they are freed.
type rangeAlloc struct {
	free_ []span
}

type span struct{ start, n uint32 }

func (a *rangeAlloc) init(n uint32) { a.free_ = []span{{0, n}} }

func (a *rangeAlloc) fits(n uint32) bool {
	for _, s := range a.free_ {
		if s.n >= n {
			return true
		}
	}
	return false
}

func (a *rangeAlloc) alloc(n uint32) (uint32, bool) {
	for i, s := range a.free_ {
		if s.n < n {
			continue
		}
		a.free_[i].start += n
		a.free_[i].n -= n
		if a.free_[i].n == 0 {
			a.free_ = append(a.free_[:i], a.free_[i+1:]...)
		}
		return s.start, true
	}
	return 0, false
}

func (a *rangeAlloc) free(start, n uint32) {
	if n == 0 {
		return
	}
	i := sort.Search(len(a.free_), func(i int) bool { return a.free_[i].start > start })
	a.free_ = append(a.free_, span{})
	copy(a.free_[i+1:], a.free_[i:])
	a.free_[i] = span{start, n}
	// Merge with the next, then with the previous.
	if i+1 < len(a.free_) && a.free_[i].start+a.free_[i].n == a.free_[i+1].start {
		a.free_[i].n += a.free_[i+1].n
		a.free_ = append(a.free_[:i+1], a.free_[i+2:]...)
	}
	if i > 0 && a.free_[i-1].start+a.free_[i-1].n == a.free_[i].start {
		a.free_[i-1].n += a.free_[i].n
		a.free_ = append(a.free_[:i], a.free_[i+1:]...)
	}
}
