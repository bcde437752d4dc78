package symbolizer

import (
	"bytes"
	"cmp"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"runtime/debug"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
	"weak"

	"golang.org/x/sys/unix"
)

// Process is what Snapshot recorded about a process: enough to symbolize
// its addresses after it exited.
type Process struct {
	PID  int
	Comm string
	Exe  string
	// NSpid is the pid inside the process's own pid namespace.
	NSpid int
	UID   int

	s         *Symbolizer
	dir       string                        // /proc/PID
	startTime string                        // to detect pid reuse
	maps      atomic.Pointer[[]procMapping] // executable mappings, sorted by start
	root      *os.File                      // O_PATH handle on /proc/PID/root; nil if unavailable
	perf      perfMapState
	jit       jitDumpState
	closed    sync.Once

	mu        sync.Mutex // guards the fields below (refreshing the maps)
	refreshed time.Time
	// every is the current wait between two refreshes: short while the
	// process is young (ld.so maps libraries right after exec), doubling up
	// to mapRefresh.
	every   time.Duration
	gone    bool
	retired []procMapping
	// released: Close let go of the files; AddMapping adds nothing after.
	released bool
}

func (p *Process) mappings() []procMapping {
	if m := p.maps.Load(); m != nil {
		return *m
	}
	return nil
}

type procMapping struct {
	mapping
	file *sharedFile // nil for anonymous, [vdso] or unopenable files
	slot *modSlot
}

// modSlot remembers a mapping's cache entry so that warm lookups skip the
// cache's lock; every touchEvery-th use refreshes its LRU position. The
// pointer is weak: a snapshot kept for a whole capture must not keep the
// tables the cache evicted (and no longer counts) alive.
type modSlot struct {
	ent  atomic.Pointer[weak.Pointer[lruEntry]]
	uses atomic.Uint32
	ref  atomic.Pointer[moduleRef]
}

const touchEvery = 256

// sharedFile is an open file shared by every process that maps it,
// identified by device, inode, size and mtime.
type sharedFile struct {
	key  string
	f    *os.File
	refs int
	// id is the file's build ID, read once (recorded mappings are checked
	// against it).
	idOnce sync.Once
	id     string
	// ref is what the unwinders need of the file (moduleRef), made once
	// for every process mapping it: made per mapping, its headers parsed
	// and load segments kept for each were 3.5 MB of a whole-host
	// capture's heap.
	refOnce sync.Once
	ref     *moduleRef
}

func (sf *sharedFile) buildID() string {
	sf.idOnce.Do(func() { sf.id = fileBuildIDOf(sf.f) })
	return sf.id
}

// cacheKey is the key of its module in the cache: its build ID when it
// has one.
func (sf *sharedFile) cacheKey() string {
	if id := sf.buildID(); id != "" {
		return "buildid:" + id
	}
	return sf.key
}

// Snapshot records what symbolizing pid needs later: its executable
// mappings with an open handle on each file, comm, exe, NSpid and its root.
func (s *Symbolizer) Snapshot(pid int) (*Process, error) {
	dir := filepath.Join(s.opts.ProcRoot, strconv.Itoa(pid))
	stb, err := os.ReadFile(filepath.Join(dir, "status"))
	if err != nil {
		return nil, fmt.Errorf("snapshot pid %d: %w", pid, err)
	}
	st, err := parseStatus(bytes.NewReader(stb))
	if err != nil {
		return nil, fmt.Errorf("snapshot pid %d: %w", pid, err)
	}
	p := &Process{PID: pid, Comm: st.name, NSpid: st.nspid, UID: st.uid, s: s}
	if p.NSpid <= 0 {
		p.NSpid = pid
	}
	if c, err := readSmall(filepath.Join(dir, "comm")); err == nil {
		p.Comm = string(c)
	}
	p.Exe, _ = os.Readlink(filepath.Join(dir, "exe"))
	if fd, err := unix.Open(filepath.Join(dir, "root"), unix.O_PATH|unix.O_DIRECTORY|unix.O_CLOEXEC, 0); err == nil {
		p.root = os.NewFile(uintptr(fd), filepath.Join(dir, "root"))
	}
	p.perf.uid, p.perf.euid = st.uid, st.euid
	p.perf.path = fmt.Sprintf("/tmp/perf-%d.map", p.NSpid)
	p.jit.uid, p.jit.euid = st.uid, st.euid
	p.jit.path = fmt.Sprintf("/tmp/jit-%d.dump", p.NSpid)

	p.dir, p.startTime = dir, procStartTime(dir)
	maps, err := p.readMappings(nil)
	if err != nil {
		p.Close()
		return nil, fmt.Errorf("snapshot pid %d: %w", pid, err)
	}
	p.maps.Store(&maps)
	p.refreshed = time.Now()
	p.every = firstRefresh
	return p, nil
}

// readMappings reads the executable mappings of the process, reusing the
// entries of old that did not change and opening the files of new ones.
func (p *Process) readMappings(old []procMapping) ([]procMapping, error) {
	mb, err := os.ReadFile(filepath.Join(p.dir, "maps"))
	if err != nil {
		return nil, err
	}
	maps, err := parseMaps(bytes.NewReader(mb))
	if err != nil {
		return nil, err
	}
	same := make(map[mapping]int, len(old))
	for i, m := range old {
		same[m.mapping] = i
	}
	var out []procMapping
	opened := map[string]*sharedFile{} // by path+inode: one open per file
	for _, m := range maps {
		if !m.exec() {
			continue
		}
		if i, ok := same[m]; ok {
			out = append(out, old[i])
			delete(same, m)
			continue
		}
		pm := procMapping{mapping: m, slot: &modSlot{}}
		if len(m.path) > 0 && m.path[0] == '/' {
			// Each mapping holds one reference: openMapped's for the first
			// mapping of a file, a new one for the others.
			id := m.path + "\x00" + strconv.FormatUint(m.inode, 10)
			sf, ok := opened[id]
			if !ok {
				sf = p.s.openMapped(p.dir, p.root, m)
				opened[id] = sf
				if sf == nil {
					p.s.log.Debug("cannot open mapped file", "pid", p.PID, "path", m.path)
				}
			} else if sf != nil {
				p.s.ref(sf)
			}
			pm.file = sf
		}
		out = append(out, pm)
	}
	// Entries that went away keep their files until Close: frames taken
	// before the change may still be symbolized.
	for _, i := range same {
		p.retired = append(p.retired, old[i])
	}
	slices.SortFunc(out, func(a, b procMapping) int { return cmp.Compare(a.start, b.start) })
	return out, nil
}

// mapRefresh bounds how often an address outside every known mapping
// makes the snapshot re-read the maps of a live process (code loaded by
// dlopen after the snapshot). firstRefresh is the first wait, doubled after
// each refresh: a process that just started maps its libraries within
// milliseconds, and may not live long.
var (
	mapRefresh   = time.Second
	firstRefresh = 20 * time.Millisecond
)

// Reread re-reads the maps now, whatever the rate limit, if the process is
// still the one snapshotted: a caller that knows the process is mapping its
// libraries (ld.so, right after exec) takes them before a short-lived
// process is gone. It reports whether the maps were read.
func (p *Process) Reread() bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.gone {
		return false
	}
	// refreshed is left alone: a sample's unknown address may still make
	// refresh read the maps at once.
	return p.rereadLocked()
}

// rereadLocked reads the maps of a process still the one snapshotted,
// marking it gone when it exited or its pid was reused; p.mu is held.
func (p *Process) rereadLocked() bool {
	if st := procStartTime(p.dir); st == "" || st != p.startTime {
		p.gone = true // exited, or the pid was reused
		return false
	}
	maps, err := p.readMappings(p.mappings())
	if err != nil {
		p.gone = true
		return false
	}
	p.maps.Store(&maps)
	return true
}

// refresh re-reads the maps if the process is still the one snapshotted.
func (p *Process) refresh() bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.gone || time.Since(p.refreshed) < min(p.every, mapRefresh) {
		return false
	}
	p.refreshed = time.Now()
	p.every = min(2*p.every, mapRefresh)
	return p.rereadLocked()
}

// procStartTime returns field 22 of /proc/PID/stat (start time in clock
// ticks), which tells a process from a later one with the same pid.
func procStartTime(dir string) string {
	b, err := os.ReadFile(filepath.Join(dir, "stat"))
	if err != nil {
		return ""
	}
	// The command name (field 2) may contain spaces and parentheses.
	i := bytes.LastIndexByte(b, ')')
	if i < 0 {
		return ""
	}
	f := strings.Fields(string(b[i+1:]))
	if len(f) < 20 {
		return ""
	}
	return f[19]
}

// openMapped opens a mapped file through the process's root (so a
// container's files are the container's), falling back to map_files when
// the file was deleted or replaced. The returned file holds one reference.
func (s *Symbolizer) openMapped(dir string, root *os.File, m mapping) *sharedFile {
	var candidates []func() (*os.File, error)
	if !m.deleted {
		candidates = append(candidates, func() (*os.File, error) { return openInRoot(root, dir, m.path) })
	}
	candidates = append(candidates, func() (*os.File, error) {
		// A magic link to the mapped inode, which may be a device: never
		// block opening it; the check below keeps regular files only.
		return os.OpenFile(filepath.Join(dir, "map_files", fmt.Sprintf("%x-%x", m.start, m.end)), os.O_RDONLY|unix.O_NONBLOCK|unix.O_NOCTTY, 0)
	})
	for _, open := range candidates {
		f, err := open()
		if err != nil {
			continue
		}
		var st unix.Stat_t
		if err := unix.Fstat(int(f.Fd()), &st); err != nil || st.Mode&unix.S_IFMT != unix.S_IFREG || (m.inode != 0 && st.Ino != m.inode) {
			f.Close()
			continue
		}
		key := fmtKey(st.Dev, st.Ino, st.Size, st.Mtim.Nano())
		s.filesMu.Lock()
		if sf, ok := s.files[key]; ok {
			sf.refs++
			s.filesMu.Unlock()
			f.Close()
			return sf
		}
		sf := &sharedFile{key: key, f: f, refs: 1}
		s.files[key] = sf
		s.filesMu.Unlock()
		return sf
	}
	return nil
}

func (s *Symbolizer) ref(sf *sharedFile) {
	s.filesMu.Lock()
	sf.refs++
	s.filesMu.Unlock()
}

func (s *Symbolizer) unref(sf *sharedFile) {
	s.filesMu.Lock()
	defer s.filesMu.Unlock()
	sf.refs--
	if sf.refs == 0 {
		delete(s.files, sf.key)
		sf.f.Close()
	}
}

// openInRoot opens p (an absolute path in the process's mount namespace)
// resolving it inside root, so a container's absolute symlinks cannot
// point at the host's files; see openForeign.
func openInRoot(root *os.File, dir, p string) (*os.File, error) {
	return openForeign(root, dir, p, false, foreignMaxELF)
}

// Close releases the file handles the snapshot holds.
func (p *Process) Close() error {
	if p == nil {
		return nil
	}
	p.closed.Do(func() {
		p.mu.Lock()
		p.gone = true // no re-read after the files are released
		p.released = true
		all := slices.Concat(p.mappings(), p.retired)
		p.retired = nil
		p.mu.Unlock()
		for i := range all {
			if sf := all[i].file; sf != nil {
				p.s.unref(sf)
			}
		}
		if p.root != nil {
			p.root.Close()
		}
		p.perf.close()
		p.jit.close()
	})
	return nil
}

func (p *Process) find(addr uint64) *procMapping {
	if m := p.findIn(p.mappings(), addr); m != nil {
		return m
	}
	if p.refresh() {
		return p.findIn(p.mappings(), addr)
	}
	return nil
}

func (p *Process) findIn(maps []procMapping, addr uint64) *procMapping {
	i, found := slices.BinarySearchFunc(maps, addr, func(m procMapping, a uint64) int {
		if m.end <= a {
			return -1
		}
		if m.start > a {
			return 1
		}
		return 0
	})
	if !found {
		return nil
	}
	return &maps[i]
}

// locator says where a mapping's file lives, for its debug files.
func (p *Process) locator(m *procMapping) debugLocator {
	loc := debugLocator{
		open:  func(q string) (*os.File, error) { return openInRoot(p.root, "", q) },
		path:  m.path,
		label: m.path,
	}
	if p.root == nil {
		loc.open = nil
	}
	return loc
}

// module returns the loaded module of a mapping, or nil.
func (p *Process) module(m *procMapping) *module {
	if m.path == "[vdso]" {
		return p.s.vdsoModule()
	}
	sf := m.file
	if sf == nil {
		return nil
	}
	if w := m.slot.ent.Load(); w != nil {
		if e := w.Value(); e != nil && !e.Evicted() {
			if m.slot.uses.Add(1)%touchEvery == 0 {
				p.s.cache.touch(e)
			}
			return moduleOf(e)
		}
	}
	// Two files with one build ID (the same library in two container
	// images) share one entry and one parse.
	e := p.s.cache.entry(sf.cacheKey(), func() *module { return p.s.loadModule(sf.f, p.locator(m)) })
	w := weak.Make(e)
	m.slot.ent.Store(&w)
	return moduleOf(e)
}

// User symbolizes a user address of the process. The result is innermost
// first and never empty: an address without a name gives a frame with the
// module and offset (Module "" when not even that is known).
func (s *Symbolizer) User(p *Process, addr uint64, ret bool) []Frame {
	if ret && addr > 0 {
		addr--
	}
	if p == nil {
		return []Frame{{Offset: addr}}
	}
	m := p.find(addr)
	if m == nil || m.path == "" || (m.path[0] == '[' && m.path != "[vdso]") {
		// A jitdump names more precisely (lines too) than a perf map.
		if fr, ok := p.jit.lookup(p, addr); ok {
			return []Frame{fr}
		}
		if fr, ok := p.perf.lookup(p, addr); ok {
			return []Frame{fr}
		}
		return []Frame{{Offset: addr}}
	}
	fileOff := addr - m.start + m.offset
	mod := p.module(m)
	if mod == nil || len(mod.loads) == 0 && mod.err != nil {
		return []Frame{{Module: m.path, Offset: fileOff}}
	}
	elfAddr := mod.elfAddr(fileOff)
	if m.path == "[vdso]" {
		elfAddr = mod.elfAddr(addr - m.start)
	}
	fr := Frame{Module: m.path, BuildID: mod.buildID, Offset: elfAddr}
	if gt := mod.gotab; gt != nil && gt.tab != nil {
		if frames, ok := gt.goFrames(fr, elfAddr); ok {
			return frames
		}
	}
	i, ok := mod.table.lookup(elfAddr)
	if !ok {
		return []Frame{fr}
	}
	fr.setName(mod.table.name(i))
	if mod.gotab == nil {
		if m.file != nil {
			// Line tables and inlined calls are read at the module's first
			// symbolization, not when the unwinder first needs the module
			// during a capture (the DWARF of libc takes a few hundred ms).
			if p.s.ensureDWARF(mod, m.file.f, p.locator(m)) {
				p.s.cache.recost(m.file.cacheKey())
			}
		}
		frames := mod.nativeFrames(fr, elfAddr)
		if mod.dwarf.takeGrown() && m.file != nil {
			p.s.cache.recost(m.file.cacheKey()) // a unit was read
		}
		return frames
	}
	return mod.gotab.frames(fr, elfAddr)
}

// goFrames names pc from a pclntab read in place and expands it into its
// inlined calls, innermost first, with file:line; ok false when no Go
// function holds pc. A mapped file truncated under the mapping faults:
// that costs this frame's name, not the profiler.
func (gt *goTable) goFrames(fr Frame, pc uint64) (frames []Frame, ok bool) {
	defer debug.SetPanicOnFault(debug.SetPanicOnFault(true))
	defer func() {
		if recover() != nil {
			frames, ok = nil, false
		}
		runtime.KeepAlive(gt.mapping)
	}()
	fn, ok := gt.tab.FuncAt(pc)
	if !ok {
		return nil, false
	}
	fr.setName(gt.tab.Name(fn.NameOff))
	inl := gt.inline.inlined(fn, pc)
	out := make([]Frame, 0, len(inl)+1)
	for _, c := range inl {
		f := fr
		f.Name, f.SystemName, f.Inlined = c.name, "", true
		f.File, f.Line = gt.tab.Line(fn, pc)
		out = append(out, f)
		pc = c.callPC
	}
	fr.File, fr.Line = gt.tab.Line(fn, pc)
	return append(out, fr), true
}

// frames expands a Go frame into its file:line through debug/gosym, for
// pclntabs older than Go 1.20 (no inline trees read there).
func (gt *goTable) frames(fr Frame, pc uint64) (frames []Frame) {
	// debug/gosym trusts the table; a corrupt one must cost the file:line,
	// not the profiler.
	defer func() {
		if recover() != nil {
			frames = []Frame{fr}
		}
	}()
	if gt.table == nil {
		return []Frame{fr}
	}
	fr.File, fr.Line, _ = gt.table.PCToLine(pc)
	return []Frame{fr}
}

// ModuleFor returns, for the CFI unwinder, a cache key identifying the file
// (build ID, or device+inode+size+mtime), the bias such that ELF virtual
// address = addr - bias, and a function opening the ELF file (working after
// the process exited, while the snapshot is open).
func (p *Process) ModuleFor(addr uint64) (key string, bias uint64, open func() (io.ReaderAt, io.Closer, error), ok bool) {
	if p == nil {
		return "", 0, nil, false
	}
	m := p.find(addr)
	if m == nil || m.file == nil && m.path != "[vdso]" {
		// JIT code: the CFI its jitdump gave, where it gave some.
		if key, img, ok := p.jit.unwindFor(p, addr); ok {
			return key, 0, func() (io.ReaderAt, io.Closer, error) { return bytes.NewReader(img), io.NopCloser(nil), nil }, true
		}
		return "", 0, nil, false
	}
	ref := p.ref(m)
	if ref.failed {
		return "", 0, nil, false
	}
	fileOff := addr - m.start + m.offset
	return ref.key, addr - (&module{loads: ref.loads}).elfAddr(fileOff), ref.open, true
}

// ref is what the unwinders need of a mapping's file. They ask for every
// frame: key, opener and load segments are made once per mapping, from the
// file's headers: no symbols (the cache may have evicted them; they are
// read again only when a frame is named).
func (p *Process) ref(m *procMapping) *moduleRef {
	ref := m.slot.ref.Load()
	if ref == nil {
		build := func() *moduleRef {
			mod := p.header(m)
			if mod == nil || mod.err != nil && len(mod.loads) == 0 {
				return &moduleRef{failed: true}
			}
			ref := p.newModuleRef(m, mod)
			ref.loads = mod.loads
			return ref
		}
		if sf := m.file; sf != nil && m.path != "[vdso]" {
			sf.refOnce.Do(func() { sf.ref = build() })
			ref = sf.ref
		} else {
			ref = build()
		}
		m.slot.ref.Store(ref)
	}
	return ref
}

// header is a mapping's build ID and load segments, read from its file's
// headers alone (the vDSO: its module); nil when it has no file.
func (p *Process) header(m *procMapping) *module {
	if m.path == "[vdso]" {
		return p.s.vdsoModule()
	}
	if m.file == nil {
		return nil
	}
	f, err := openELF(m.file.f)
	if err != nil {
		return &module{err: err}
	}
	return &module{buildID: buildID(f), loads: loadSegments(f)}
}

// moduleRef is what ModuleFor hands out for a mapping.
type moduleRef struct {
	key    string
	open   func() (io.ReaderAt, io.Closer, error)
	loads  []loadSeg
	failed bool // not an ELF file: no unwinding through it
}

func (p *Process) newModuleRef(m *procMapping, mod *module) *moduleRef {
	if m.path == "[vdso]" {
		img := p.s.vdsoImage
		return &moduleRef{key: "vdso:" + mod.buildID, open: func() (io.ReaderAt, io.Closer, error) {
			return bytes.NewReader(img), io.NopCloser(nil), nil
		}}
	}
	sf, path := m.file, m.path
	ref := &moduleRef{key: sf.key}
	if mod.buildID != "" {
		ref.key = "buildid:" + mod.buildID
	}
	ref.open = dupOpener(sf, path)
	return ref
}

// dupOpener opens a duplicate descriptor of a mapped file: the caller may
// close it whenever it likes without taking the snapshot's handle away.
func dupOpener(sf *sharedFile, path string) func() (io.ReaderAt, io.Closer, error) {
	return func() (io.ReaderAt, io.Closer, error) {
		fd, err := unix.Dup(int(sf.f.Fd()))
		if err != nil {
			return nil, nil, fmt.Errorf("dup %s: %w", path, err)
		}
		unix.CloseOnExec(fd)
		f := os.NewFile(uintptr(fd), path)
		return f, f, nil
	}
}

// ExecMapping is one executable mapping of a snapshot, with what building
// its unwind table needs.
type ExecMapping struct {
	Start, End uint64
	Offset     uint64 // file offset of Start
	Path       string
	// Key identifies the file (device, inode, size and mtime; "vdso:" for
	// the vDSO), shared by every process mapping it; "" for anonymous
	// memory and files that could not be opened (JIT code, deleted files).
	Key string
	// ModuleKey is the key ModuleFor gives the mapping's pcs (the build ID
	// when the file has one): the user-space unwinder's tables are kept
	// under it, so a table built for either unwinder serves the other.
	ModuleKey string
	// Open opens the file (a duplicate descriptor the caller closes); nil
	// when Key is "".
	Open func() (io.ReaderAt, io.Closer, error)
	// Bias is such that ELF virtual address = pc - Bias for the pcs of
	// the mapping, from the executable PT_LOAD it maps (not from the
	// mapping's start: a segment whose file offset is not page aligned is
	// mapped from the page below it); BiasOK false when the mapping maps
	// no executable segment of an ELF file.
	Bias   uint64
	BiasOK bool
}

// ExecMappings lists the executable mappings of the snapshot as last read,
// sorted by start.
func (p *Process) ExecMappings() []ExecMapping {
	maps := p.mappings()
	out := make([]ExecMapping, 0, len(maps))
	for i := range maps {
		m := &maps[i]
		em := ExecMapping{Start: m.start, End: m.end, Offset: m.offset, Path: m.path}
		switch {
		case m.path == "[vdso]":
			if mod := p.s.vdsoModule(); mod != nil && mod.err == nil {
				img := p.s.vdsoImage
				em.Key, em.Offset = "vdso:"+mod.buildID, 0
				em.Open = func() (io.ReaderAt, io.Closer, error) { return bytes.NewReader(img), io.NopCloser(nil), nil }
			}
		case m.file != nil:
			em.Key, em.Open = m.file.key, dupOpener(m.file, m.path)
		}
		if em.Key != "" {
			if ref := p.ref(m); !ref.failed {
				em.Bias, em.BiasOK = execBias(ref.loads, em.Start, em.End, em.Offset)
				em.ModuleKey = ref.key
			}
		}
		out = append(out, em)
	}
	return out
}
