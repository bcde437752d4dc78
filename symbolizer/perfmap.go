package symbolizer

import (
	"bufio"
	"bytes"
	"cmp"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"sync"
	"time"

	"golang.org/x/sys/unix"
)

// Limits that keep a hostile perf map from using unbounded memory.
const (
	perfMapMaxName    = 1024
	perfMapMaxEntries = 4 << 20
	perfMapMaxBytes   = 512 << 20
	// perfMapMaxFile: a larger map is not read at all (its first 512 MiB
	// would name only the oldest code).
	perfMapMaxFile = 4 << 30
)

// perfMap is a parsed /tmp/perf-PID.map.
type perfMap struct {
	syms *symTable
	// consumed counts the bytes of complete (newline-terminated) lines, where
	// reading more of a growing file resumes.
	consumed int64
}

// parsePerfMap reads "START SIZE NAME" lines (hex, "0x" optional). Later
// lines win over earlier ones at the same address (code regenerated in
// place). Lines that do not parse, or names with control bytes, are skipped;
// over-long names are cut.
func parsePerfMap(r io.Reader) *perfMap {
	type entry struct {
		symbol
		seq int
	}
	var entries []entry
	var consumed int64
	br := bufio.NewReaderSize(io.LimitReader(r, perfMapMaxBytes), 64<<10)
	for len(entries) < perfMapMaxEntries {
		line, raw, terminated, err := readLine(br, perfMapMaxName+64)
		if terminated {
			consumed += int64(raw)
		}
		if len(line) > 0 {
			if s, ok := parsePerfMapLine(line); ok {
				entries = append(entries, entry{s, len(entries)})
			}
		}
		if err != nil {
			break
		}
	}
	// Newest first among equal addresses, which is the one kept.
	slices.SortStableFunc(entries, func(a, b entry) int {
		if c := cmp.Compare(a.addr, b.addr); c != 0 {
			return c
		}
		return cmp.Compare(b.seq, a.seq)
	})
	syms := make([]symbol, 0, len(entries))
	for i := range entries {
		if i > 0 && entries[i].addr == entries[i-1].addr {
			continue
		}
		syms = append(syms, entries[i].symbol)
	}
	return &perfMap{syms: packSymbols(syms, false), consumed: consumed}
}

// readLine returns the next line without its newline, cut at max bytes (the
// rest of a long line is discarded), the bytes it took from br, and whether
// it ended with a newline.
func readLine(br *bufio.Reader, max int) (line []byte, raw int, terminated bool, err error) {
	for {
		chunk, err := br.ReadSlice('\n')
		raw += len(chunk)
		if len(line) < max {
			room := min(max-len(line), len(chunk))
			line = append(line, chunk[:room]...)
		}
		if err == bufio.ErrBufferFull {
			continue
		}
		terminated = len(chunk) > 0 && chunk[len(chunk)-1] == '\n'
		return bytes.TrimRight(line, "\r\n"), raw, terminated, err
	}
}

func parsePerfMapLine(line []byte) (symbol, bool) {
	f1 := bytes.IndexByte(line, ' ')
	if f1 <= 0 {
		return symbol{}, false
	}
	rest := line[f1+1:]
	f2 := bytes.IndexByte(rest, ' ')
	if f2 <= 0 {
		return symbol{}, false
	}
	start, ok1 := parseHex(line[:f1])
	size, ok2 := parseHex(rest[:f2])
	name := bytes.TrimSpace(rest[f2+1:])
	if !ok1 || !ok2 || size == 0 || len(name) == 0 || start+size < start {
		return symbol{}, false
	}
	if len(name) > perfMapMaxName {
		name = name[:perfMapMaxName]
	}
	for _, c := range name {
		if c < 0x20 || c == 0x7f {
			return symbol{}, false
		}
	}
	return symbol{addr: start, size: size, name: append([]byte(nil), name...)}, true
}

func parseHex(b []byte) (uint64, bool) {
	if len(b) > 2 && b[0] == '0' && (b[1] == 'x' || b[1] == 'X') {
		b = b[2:]
	}
	v, err := strconv.ParseUint(string(b), 16, 64)
	return v, err == nil
}

// perfMapState follows a process's /tmp/perf-PID.map. JIT compilers only
// append to it, so what was added since the last reading is parsed into a
// new layer; layers are merged by a full re-read when they pile up.
type perfMapState struct {
	mu        sync.Mutex
	path      string // in the process's namespace
	uid, euid int
	f         *os.File
	size      int64
	mtime     int64
	checked   time.Time
	layers    []*perfMap // oldest first
	readOff   int64      // where the next layer starts
}

// perfMapRecheck is how often a changed perf map is looked for; JIT code
// appears continually, re-reading on every miss would be wasteful.
var perfMapRecheck = time.Second

const perfMapMaxLayers = 8

func (ps *perfMapState) lookup(p *Process, addr uint64) (Frame, bool) {
	ps.mu.Lock()
	defer ps.mu.Unlock()
	// A missing or untrusted map is looked for again at the same pace as a
	// changed one: a JIT without one would otherwise cost an open per frame.
	if time.Since(ps.checked) > perfMapRecheck {
		ps.refresh(p)
	}
	for i := len(ps.layers) - 1; i >= 0; i-- {
		syms := ps.layers[i].syms
		if j, ok := syms.lookup(addr); ok {
			fr := Frame{Module: ps.path, Offset: addr, JIT: true}
			fr.setName(syms.name(j))
			return fr, true
		}
	}
	return Frame{}, false
}

func (ps *perfMapState) refresh(p *Process) {
	ps.checked = time.Now()
	if ps.f == nil {
		f, err := openPerfMap(p.root, p.s.opts.ProcRoot, p.PID, ps.path)
		if err != nil {
			return
		}
		ps.f = f
	}
	st, ok := statTrusted(ps.f, 0, ps.uid, ps.euid)
	if !ok {
		p.s.log.Debug("ignoring perf map", "pid", p.PID, "owner", st.Uid)
		ps.f.Close()
		ps.f, ps.layers = nil, nil
		return
	}
	if len(ps.layers) > 0 && st.Size == ps.size && st.Mtim.Nano() == ps.mtime {
		return
	}
	grown := len(ps.layers) > 0 && st.Size >= ps.size && st.Size > ps.readOff
	if grown && len(ps.layers) < perfMapMaxLayers {
		pm := parsePerfMap(io.NewSectionReader(ps.f, ps.readOff, st.Size-ps.readOff))
		ps.layers = append(ps.layers, pm)
		ps.readOff += pm.consumed
	} else {
		pm := parsePerfMap(io.NewSectionReader(ps.f, 0, st.Size))
		ps.layers = []*perfMap{pm}
		ps.readOff = pm.consumed
	}
	ps.size, ps.mtime = st.Size, st.Mtim.Nano()
}

func (ps *perfMapState) close() {
	ps.mu.Lock()
	defer ps.mu.Unlock()
	if ps.f != nil {
		ps.f.Close()
		ps.f = nil
	}
}

// openPerfMap opens the perf map inside the process's root without
// following any symlink, without blocking on a FIFO, and only when it is a
// regular file of at most perfMapMaxFile bytes.
func openPerfMap(root *os.File, procRoot string, pid int, p string) (*os.File, error) {
	return openForeign(root, filepath.Join(procRoot, strconv.Itoa(pid)), p, true, perfMapMaxFile)
}

// statTrusted is the check a JIT's perf map or jitdump passes before each
// read: a regular file of at most max bytes (0: any size), owned by root or
// by the process's user, since anyone can create a file in /tmp. It also
// answers false when the file cannot be stat'ed (st is then zero).
func statTrusted(f *os.File, max int64, uid, euid int) (st unix.Stat_t, ok bool) {
	if err := unix.Fstat(int(f.Fd()), &st); err != nil {
		return unix.Stat_t{}, false
	}
	if st.Mode&unix.S_IFMT != unix.S_IFREG || (max > 0 && st.Size > max) {
		return st, false
	}
	return st, st.Uid == 0 || int(st.Uid) == uid || int(st.Uid) == euid
}
