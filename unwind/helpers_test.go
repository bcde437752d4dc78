package unwind

import (
	"bufio"
	"debug/elf"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"

	"github.com/scorch-dev/scorch/internal/elfnote"
)

// mapping is one file-backed line of /proc/PID/maps.
type mapping struct {
	Start   uint64 `json:"start"`
	End     uint64 `json:"end"`
	Offset  uint64 `json:"offset"`
	Path    string `json:"path"`
	BuildID string `json:"build_id,omitempty"`
}

// parseMaps reads /proc/PID/maps text, keeping file-backed mappings.
func parseMaps(r io.Reader) ([]mapping, error) {
	var out []mapping
	sc := bufio.NewScanner(r)
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		if len(f) < 6 || !strings.HasPrefix(f[5], "/") {
			continue
		}
		lo, hi, ok := strings.Cut(f[0], "-")
		if !ok {
			return nil, fmt.Errorf("bad maps line %q", sc.Text())
		}
		start, err1 := strconv.ParseUint(lo, 16, 64)
		end, err2 := strconv.ParseUint(hi, 16, 64)
		off, err3 := strconv.ParseUint(f[2], 16, 64)
		if err1 != nil || err2 != nil || err3 != nil {
			return nil, fmt.Errorf("bad maps line %q", sc.Text())
		}
		out = append(out, mapping{Start: start, End: end, Offset: off, Path: f[5]})
	}
	return out, sc.Err()
}

// elfInfo is what the test resolver and namer need of one ELF file.
type elfInfo struct {
	path    string
	key     string // for the unwinder's cache
	openFn  func() (io.ReaderAt, io.Closer, error)
	buildID string
	loads   []elf.ProgHeader
	syms    []elf.Symbol // functions, sorted by address
}

var elfCache sync.Map // path -> *elfInfo (nil when unreadable)

func loadELF(path string) *elfInfo {
	if v, ok := elfCache.Load(path); ok {
		return v.(*elfInfo)
	}
	info := readELF(path)
	elfCache.Store(path, info)
	return info
}

func readELF(path string) *elfInfo {
	f, err := elf.Open(path)
	if err != nil {
		return nil
	}
	defer f.Close()
	info := &elfInfo{path: path, buildID: elfnote.BuildID(f)}
	info.key = path + ":" + info.buildID
	info.openFn = info.open
	for _, p := range f.Progs {
		if p.Type == elf.PT_LOAD {
			info.loads = append(info.loads, p.ProgHeader)
		}
	}
	syms := funcSymbols(f)
	if info.buildID != "" && !strings.HasPrefix(path, "testdata"+string(filepath.Separator)) {
		// libc6-dbg's detached symbols name libc's internal functions
		// (the extracts in testdata have theirs).
		dbg := filepath.Join("/usr/lib/debug/.build-id", info.buildID[:2], info.buildID[2:]+".debug")
		if df, err := elf.Open(dbg); err == nil {
			syms = append(syms, funcSymbols(df)...)
			df.Close()
		}
	}
	sort.Slice(syms, func(i, j int) bool { return syms[i].Value < syms[j].Value })
	info.syms = syms
	return info
}

func funcSymbols(f *elf.File) []elf.Symbol {
	var out []elf.Symbol
	for _, get := range []func() ([]elf.Symbol, error){f.Symbols, f.DynamicSymbols} {
		syms, _ := get()
		for _, s := range syms {
			if elf.ST_TYPE(s.Info) == elf.STT_FUNC && s.Value != 0 {
				out = append(out, s)
			}
		}
	}
	return out
}

func (e *elfInfo) open() (io.ReaderAt, io.Closer, error) {
	f, err := os.Open(e.path)
	if err != nil {
		return nil, nil, err
	}
	return f, f, nil
}

// vaddr converts a file offset to an ELF virtual address.
func (e *elfInfo) vaddr(fileOff uint64) (uint64, bool) {
	for _, p := range e.loads {
		if fileOff >= p.Off && fileOff < p.Off+p.Filesz {
			return fileOff - p.Off + p.Vaddr, true
		}
	}
	return 0, false
}

// name returns the function containing an ELF virtual address.
func (e *elfInfo) name(va uint64) string {
	if s, ok := e.symbolAt(va); ok {
		return s.Name
	}
	return "?"
}

// symbolAt returns the symbol of the function containing an ELF virtual
// address.
func (e *elfInfo) symbolAt(va uint64) (elf.Symbol, bool) {
	i := sort.Search(len(e.syms), func(i int) bool { return e.syms[i].Value > va }) - 1
	for ; i >= 0; i-- {
		s := e.syms[i]
		if va < s.Value+s.Size || s.Size == 0 && va-s.Value < 16 {
			// Assembly symbols such as __restore_rt have no size.
			return s, true
		}
		if s.Size != 0 && va-s.Value > 1<<20 {
			break
		}
	}
	return elf.Symbol{}, false
}

// mapsResolver is the test Resolver: /proc/PID/maps plus debug/elf.
// rename maps a path of the recording to a file here (fixtures); a file
// whose build ID differs from the recorded one is not resolved.
type mapsResolver struct {
	maps   []mapping
	rename map[string]string
	infos  []*elfInfo // per mapping, filled on first use
}

func (r *mapsResolver) find(addr uint64) (*mapping, *elfInfo) {
	if r.infos == nil {
		r.infos = make([]*elfInfo, len(r.maps))
		for i, m := range r.maps {
			path := m.Path
			if p, ok := r.rename[path]; ok {
				path = p
			}
			info := loadELF(path)
			if info == nil || m.BuildID != "" && info.buildID != m.BuildID {
				continue
			}
			r.infos[i] = info
		}
	}
	for i := range r.maps {
		m := &r.maps[i]
		if addr >= m.Start && addr < m.End {
			if r.infos[i] == nil {
				return nil, nil
			}
			return m, r.infos[i]
		}
	}
	return nil, nil
}

func (r *mapsResolver) ModuleFor(addr uint64) (string, uint64, func() (io.ReaderAt, io.Closer, error), bool) {
	m, info := r.find(addr)
	if m == nil {
		return "", 0, nil, false
	}
	va, ok := info.vaddr(addr - m.Start + m.Offset)
	if !ok {
		return "", 0, nil, false
	}
	return info.key, addr - va, info.openFn, true
}

// names symbolizes PCs (leaf first) into function names, root first; return
// addresses are looked up at pc-1.
func (r *mapsResolver) names(pcs []uint64) []string {
	out := make([]string, len(pcs))
	for i, pc := range pcs {
		look := pc
		if i > 0 {
			look--
		}
		name := fmt.Sprintf("%#x", pc)
		if m, info := r.find(look); m != nil {
			if va, ok := info.vaddr(look - m.Start + m.Offset); ok {
				name = info.name(va)
			}
		}
		out[len(pcs)-1-i] = name
	}
	return out
}

// fillBuildIDs records the build ID of every mapped file.
func (r *mapsResolver) fillBuildIDs() {
	r.infos = nil
	for i := range r.maps {
		if info := loadELF(r.maps[i].Path); info != nil {
			r.maps[i].BuildID = info.buildID
		}
	}
}

// containsInOrder reports whether want appears in names in this order,
// each want element matching a name that contains it.
func containsInOrder(names, want []string) bool {
	i := 0
	for _, n := range names {
		if i < len(want) && strings.Contains(n, want[i]) {
			i++
		}
	}
	return i == len(want)
}

// hasSuffixFrames reports whether names ends with exactly want.
func hasSuffixFrames(names, want []string) bool {
	if len(names) < len(want) {
		return false
	}
	tail := names[len(names)-len(want):]
	for i := range want {
		if tail[i] != want[i] {
			return false
		}
	}
	return true
}

func join(names []string) string { return strings.Join(names, ";") }

// requireGCC skips when gcc is missing.
func requireGCC(t *testing.T) string {
	t.Helper()
	for _, p := range []string{"/usr/bin/gcc", "/usr/local/bin/gcc"} {
		if _, err := os.Stat(p); err == nil {
			return p
		}
	}
	t.Skip("gcc not installed: the unwinding workloads are built with gcc")
	return ""
}
