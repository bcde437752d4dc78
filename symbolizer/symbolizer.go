// Package symbolizer turns (process snapshot, address) into frames: kernel
// symbols from kallsyms, native ELF symbols (symtab, separate debuginfo,
// debuginfod, MiniDebugInfo, dynsym), Go pclntab, the vDSO and JIT perf
// maps. It knows nothing of BPF.
package symbolizer

import (
	"bytes"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/ianlancetaylor/demangle"
	"github.com/scorch-dev/scorch/internal/cache"
)

// Options configures a Symbolizer; the zero value is usable.
type Options struct {
	ProcRoot        string   // default "/proc" (tests can point elsewhere)
	SysRoot         string   // default "/sys" (tests can point elsewhere)
	CacheBytes      int64    // memory cap of the symbol-table LRU; 0 = 256 MiB
	DebugDirs       []string // default ["/usr/lib/debug"]
	DebuginfodURLs  []string // default: split $DEBUGINFOD_URLS
	DebuginfodCache string   // default: $XDG_CACHE_HOME/scorch/debuginfod or ~/.cache/...
	Logger          *slog.Logger
	// Lines reads DWARF line tables and inlined calls
	// (DW_TAG_inlined_subroutine), where present in the file or its debug
	// file, for Frame.File, Frame.Line and inlined frames of native code
	// (Go's come from its pclntab regardless). A module's compilation
	// units are indexed at its first lookup, and a unit's lines and inlined
	// calls read when one of its addresses is first looked up, cached with
	// the module; first lookups are slower and tables larger.
	Lines bool
	// DWARFCache is a directory keeping the decompressed DWARF sections
	// of files whose sections are compressed, by build ID, for the next
	// Symbolizer to map them instead (see DefaultDWARFCacheDir); "": none.
	DWARFCache string
	// KernelCache is a directory keeping the static kernel symbols (the
	// kernel's own and its modules', keyed by boot, kernel and module
	// builds) for the next Symbolizer, which then does not read
	// /proc/kallsyms unless an address is outside them (see
	// DefaultKernelCacheDir); "": none.
	KernelCache string
}

// Frame is one symbolized frame.
type Frame struct {
	Name       string // demangled; "" when unknown
	SystemName string // raw (mangled) name when it differs
	Module     string // file path, "[kernel.kallsyms]", "[vdso]", "/tmp/perf-123.map" or "[module_name]"
	BuildID    string // hex
	Offset     uint64 // address in the module's own terms (ELF virtual address; kernel: the address)
	File       string // source file when line tables are present
	Line       int
	Kernel     bool
	JIT        bool
	Inlined    bool
}

// Symbolizer resolves addresses; its caches are shared by every process and
// it is safe for concurrent use.
type Symbolizer struct {
	opts  Options
	log   *slog.Logger
	cache *lru
	dinfo *debuginfod
	// dcache keeps decompressed DWARF sections on disk; nil: none.
	dcache *dwarfCache

	kernelMu sync.Mutex // serializes (re)loading kallsyms
	kernel   atomic.Pointer[kernelState]

	vdsoOnce  sync.Once
	vdso      *module
	vdsoImage []byte

	filesMu sync.Mutex
	files   map[string]*sharedFile

	loads atomic.Int64 // files parsed, for tests
}

// New returns a Symbolizer with defaults filled in.
func New(opts Options) *Symbolizer {
	if opts.ProcRoot == "" {
		opts.ProcRoot = "/proc"
	}
	if opts.SysRoot == "" {
		opts.SysRoot = "/sys"
	}
	if opts.CacheBytes <= 0 {
		opts.CacheBytes = 256 << 20
	}
	if opts.DebugDirs == nil {
		opts.DebugDirs = []string{"/usr/lib/debug"}
	}
	if opts.DebuginfodURLs == nil {
		opts.DebuginfodURLs = strings.Fields(os.Getenv("DEBUGINFOD_URLS"))
	}
	if opts.DebuginfodCache == "" {
		if dir, err := os.UserCacheDir(); err == nil {
			opts.DebuginfodCache = filepath.Join(dir, "scorch", "debuginfod")
		} else {
			opts.DebuginfodCache = filepath.Join(os.TempDir(), "scorch-debuginfod")
		}
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	s := &Symbolizer{
		opts:  opts,
		log:   opts.Logger,
		cache: newLRU(opts.CacheBytes),
		dinfo: newDebuginfod(opts.DebuginfodURLs, opts.DebuginfodCache, opts.Logger),
		files: make(map[string]*sharedFile),
	}
	if opts.DWARFCache != "" {
		s.dcache = &dwarfCache{dir: opts.DWARFCache, max: defaultDWARFCacheBytes, log: opts.Logger}
	}
	return s
}

// CacheStats returns the counters of the symbol-table cache: lookups
// answered from it (hits), files parsed (misses), tables evicted to stay
// within Options.CacheBytes, and the bytes its tables take. Lookups of a
// mapping whose table a process already holds skip the cache and are not
// counted.
func (s *Symbolizer) CacheStats() cache.Stats { return s.cache.c.Stats() }

// Close drops the caches. Processes keep their own file references until
// they are closed.
func (s *Symbolizer) Close() error {
	s.cache.clear()
	return nil
}

// kernelState is one reading of kallsyms, or a cached table of its static
// part (static set: addresses outside its spans need a reading).
type kernelState struct {
	table  *kernelTable
	err    error
	loaded time.Time
	static *staticKernel
	// partial: a reading failed after the cached table was used, so
	// addresses outside its spans stay unnamed.
	partial bool
}

// kernelReload bounds how often a kernel address without a symbol makes
// kallsyms be read again (a module loaded since the last reading).
var kernelReload = 10 * time.Second

// kernelTable returns the current kernel table: the cached one first, if
// any; stale asks for a new reading when the last is older than
// kernelReload.
func (s *Symbolizer) kernelTable(stale bool) *kernelState {
	ks := s.kernel.Load()
	if ks != nil && (!stale || time.Since(ks.loaded) < kernelReload) {
		return ks
	}
	return s.readKernel(ks, ks == nil)
}

// readKernel replaces ks, the state its caller saw, with a new reading of
// kallsyms, or with the cached table when cached is set and there is one.
func (s *Symbolizer) readKernel(ks *kernelState, cached bool) *kernelState {
	s.kernelMu.Lock()
	defer s.kernelMu.Unlock()
	if cur := s.kernel.Load(); cur != ks {
		return cur // another goroutine reloaded meanwhile
	}
	var kc *kernelCache
	if s.opts.KernelCache != "" {
		kc = &kernelCache{dir: s.opts.KernelCache, procRoot: s.opts.ProcRoot, sysRoot: s.opts.SysRoot}
	}
	if kc != nil && cached {
		sk, err := kc.load()
		if err == nil {
			nks := &kernelState{table: sk.table, static: sk, loaded: time.Now()}
			s.kernel.Store(nks)
			return nks
		}
		s.log.Debug("kernel symbol cache not used", "err", err)
	}
	var key kernelKey
	var kerr error
	if kc != nil {
		key, kerr = readKernelKey(kc.procRoot, kc.sysRoot)
	}
	nks := &kernelState{loaded: time.Now()}
	path := filepath.Join(s.opts.ProcRoot, "kallsyms")
	if f, err := os.Open(path); err != nil {
		nks.err = fmt.Errorf("open kallsyms: %w", err)
	} else {
		nks.table, nks.err = parseKallsyms(f)
		f.Close()
	}
	if nks.err == nil && kc != nil && kerr == nil {
		if err := kc.store(key, nks.table); err != nil {
			s.log.Debug("kernel symbols not cached", "err", err)
		}
	}
	if nks.err != nil && ks != nil && ks.err == nil {
		nks.table, nks.err = ks.table, nil // keep the last good reading
		nks.static, nks.partial = ks.static, ks.static != nil
	}
	s.kernel.Store(nks)
	return nks
}

// KernelStatus says whether kernel symbols are usable.
func (s *Symbolizer) KernelStatus() (ok bool, reason string) {
	ks := s.kernelTable(false)
	if ks.err != nil {
		return false, fmt.Sprintf("kernel symbols unavailable: %v", ks.err)
	}
	if ks.table.zero {
		kr := "?"
		if b, err := os.ReadFile(filepath.Join(s.opts.ProcRoot, "sys/kernel/kptr_restrict")); err == nil {
			kr = strings.TrimSpace(string(b))
		}
		who := "running as root"
		if os.Geteuid() != 0 {
			who = "not running as root"
		}
		return false, fmt.Sprintf("kernel addresses read as zero in %s/kallsyms (kernel.kptr_restrict=%s, %s); kernel symbols need root (CAP_SYSLOG) and kptr_restrict 0 or 1", s.opts.ProcRoot, kr, who)
	}
	return true, ""
}

// Kernel symbolizes a kernel address. ret: the address is a return address
// (looked up at addr-1, the call instruction).
func (s *Symbolizer) Kernel(addr uint64, ret bool) Frame {
	if ret && addr > 0 {
		addr--
	}
	fr := Frame{Module: kernelModule, Offset: addr, Kernel: true}
	ks := s.kernelTable(false)
	if ks.static != nil && !ks.static.covers(addr) {
		// Code the kernel made at run time (BPF, trampolines) or a
		// module loaded since: only kallsyms has it.
		if ks.partial {
			return fr
		}
		if ks = s.readKernel(ks, false); ks.partial {
			return fr
		}
	}
	name, mod, ok := ks.table.lookup(addr)
	if !ok && ks.err == nil && !ks.table.zero {
		if nks := s.kernelTable(true); nks != ks {
			name, mod, ok = nks.table.lookup(addr)
		}
	}
	if ok {
		fr.Name, fr.Module = name, mod
	}
	return fr
}

// setName fills Name and SystemName from a raw symbol name.
func (fr *Frame) setName(raw string) {
	fr.Name = raw
	if len(raw) > 2 && (raw[0] == '_' && (raw[1] == 'Z' || raw[1] == 'R') || strings.HasPrefix(raw, "__Z")) {
		if d := demangled(raw); d != raw && d != "" {
			fr.Name, fr.SystemName = d, raw
		}
	}
}

// demangleMemo remembers demangled names: demangling costs microseconds,
// a lookup a hundred nanoseconds, and hot C++ frames repeat. It is reset
// when full to stay bounded.
var demangleMemo = struct {
	sync.Mutex
	m map[string]string
}{m: make(map[string]string)}

const demangleMemoMax = 1 << 16

func demangled(raw string) string {
	demangleMemo.Lock()
	d, ok := demangleMemo.m[raw]
	demangleMemo.Unlock()
	if ok {
		return d
	}
	if r, ok := rustLegacy(raw); ok {
		d = r
	} else {
		d = demangle.Filter(raw, demangle.NoParams)
	}
	demangleMemo.Lock()
	if len(demangleMemo.m) >= demangleMemoMax {
		clear(demangleMemo.m)
	}
	demangleMemo.m[raw] = d
	demangleMemo.Unlock()
	return d
}

// readSmall reads a small /proc file.
func readSmall(path string) ([]byte, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	return bytes.TrimRight(b, "\n"), nil
}
