package symbolizer

import (
	"bufio"
	"bytes"
	"cmp"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/fnv"
	"io"
	"os"
	"path"
	"slices"
	"sort"
	"sync"
	"time"
)

// jitdump is the format of /tmp/jit-PID.dump (tools/perf/Documentation/
// jitdump-specification.txt): a file header, then records, each with a
// header giving its id and total size. The JIT writes it in its own byte
// order, which the magic tells.
const (
	jitMagic        = 0x4A695444 // "JiTD" read in the writer's order
	jitHeaderSize   = 40
	jitRecordHeader = 16

	jitCodeLoad      = 0
	jitCodeMove      = 1
	jitDebugInfo     = 2
	jitCodeClose     = 3
	jitUnwindingInfo = 4
)

// Limits that keep a hostile jitdump from using unbounded memory.
const (
	jitMaxFuncs = 4 << 20
	jitMaxLines = 16 << 20
	// jitMaxKept: how much of a record is read; the rest (the machine code
	// of a load, unwinding data) is skipped. Debug info may use more.
	jitMaxKept      = 64 << 10
	jitMaxDebugInfo = 16 << 20
	// jitMaxUnwind bounds the unwinding data kept of one dump.
	jitMaxUnwind = 64 << 20
	// jitMaxFile: a larger dump is not read at all.
	jitMaxFile = 4 << 30
)

type jitLine struct {
	addr uint64
	line int
	file string
}

type jitFunc struct {
	addr, size uint64
	name       string
	lines      []jitLine // sorted by addr
	seq        int
	// ehFrame is the code's CFI from the unwinding record before its
	// load, laid out at ehAddr: right after the code, 8-byte aligned, as
	// perf inject places it (its pointers are relative to that place).
	ehFrame []byte
	ehAddr  uint64
	image   []byte // ehFrame in an ELF file, for the unwinder; made once
}

// jitDump is what was read of a jitdump so far; reading more of a growing
// file continues from consumed.
type jitDump struct {
	order    binary.ByteOrder
	funcs    []jitFunc // in record order
	byAddr   []int     // indices into funcs, sorted by address, newest wins at equal ones
	pending  map[uint64][]jitLine
	latest   map[uint64]int // code address to its newest entry in funcs, for moves
	nlines   int
	consumed int64 // bytes of complete records, header included
	// unwind is the eh_frame of the last unwinding record, for the code
	// load that follows it; unwindBytes what the dump's records kept.
	unwind      []byte
	unwindBytes int
}

var errNotJitdump = errors.New("not a jitdump file")

// parseJitdump reads a whole jitdump. A truncated last record (the JIT is
// still writing it) is not an error: it is read again later.
func parseJitdump(r io.Reader) (*jitDump, error) {
	br := bufio.NewReaderSize(r, 64<<10)
	var h [jitHeaderSize]byte
	if _, err := io.ReadFull(br, h[:]); err != nil {
		return nil, fmt.Errorf("jitdump header: %w", errNotJitdump)
	}
	d := &jitDump{pending: map[uint64][]jitLine{}, latest: map[uint64]int{}}
	switch {
	case binary.LittleEndian.Uint32(h[:]) == jitMagic:
		d.order = binary.LittleEndian
	case binary.BigEndian.Uint32(h[:]) == jitMagic:
		d.order = binary.BigEndian
	default:
		return nil, fmt.Errorf("jitdump magic %#x: %w", binary.LittleEndian.Uint32(h[:]), errNotJitdump)
	}
	size := d.order.Uint32(h[8:])
	if size < jitHeaderSize || size > jitMaxKept {
		return nil, fmt.Errorf("jitdump header size %d (want %d to %d)", size, jitHeaderSize, jitMaxKept)
	}
	// A newer header may be longer: skip what this reader does not know.
	if n, _ := io.CopyN(io.Discard, br, int64(size-jitHeaderSize)); n != int64(size-jitHeaderSize) {
		return nil, fmt.Errorf("jitdump header: %w", io.ErrUnexpectedEOF)
	}
	d.consumed = int64(size)
	d.read(br)
	return d, nil
}

// more reads the records appended since the last reading.
func (d *jitDump) more(r io.Reader) {
	d.read(bufio.NewReaderSize(r, 64<<10))
}

func (d *jitDump) read(br *bufio.Reader) {
	var buf bytes.Buffer
	for len(d.funcs) < jitMaxFuncs {
		var rh [jitRecordHeader]byte
		if _, err := io.ReadFull(br, rh[:]); err != nil {
			break
		}
		id, total := d.order.Uint32(rh[:]), d.order.Uint32(rh[4:])
		if total < jitRecordHeader {
			// Nothing after a record with an impossible size can be
			// trusted: stop here for good.
			d.consumed = -1
			break
		}
		body := int64(total) - jitRecordHeader
		keep := min(body, jitMaxKept)
		if id == jitDebugInfo {
			keep = min(body, jitMaxDebugInfo)
		}
		// Grown as the bytes arrive, so a size that claims more than the
		// file holds costs nothing.
		buf.Reset()
		if n, _ := buf.ReadFrom(io.LimitReader(br, keep)); n != keep {
			break
		}
		if n, _ := io.CopyN(io.Discard, br, body-keep); n != body-keep {
			break
		}
		d.consumed += int64(total)
		d.record(id, buf.Bytes())
	}
	d.index()
}

func (d *jitDump) record(id uint32, b []byte) {
	o := d.order
	switch id {
	case jitCodeLoad:
		// pid, tid u32; vma, code_addr, code_size, code_index u64; name; code
		if len(b) < 40 {
			return
		}
		addr, size := o.Uint64(b[16:]), o.Uint64(b[24:])
		name, ok := cString(b[40:])
		if !ok || size == 0 || addr+size < addr {
			return
		}
		f := jitFunc{addr: addr, size: size, name: cleanName(name), seq: len(d.funcs)}
		if d.unwind != nil {
			f.ehFrame, f.ehAddr = d.unwind, ehFrameAddr(addr, size)
			d.unwind = nil
		}
		if ls, ok := d.pending[addr]; ok {
			f.lines = ls
			delete(d.pending, addr)
		}
		d.latest[addr] = len(d.funcs)
		d.funcs = append(d.funcs, f)
	case jitCodeMove:
		// pid, tid u32; vma, old_code_addr, new_code_addr, code_size, code_index u64
		if len(b) < 48 {
			return
		}
		old, nu, size := o.Uint64(b[16:]), o.Uint64(b[24:]), o.Uint64(b[32:])
		if size == 0 || nu+size < nu {
			return
		}
		i, ok := d.latest[old]
		if !ok {
			return
		}
		f := jitFunc{addr: nu, size: size, name: d.funcs[i].name, seq: len(d.funcs)}
		if eh := d.funcs[i].ehFrame; eh != nil {
			// Its pointers are relative: it moves with the code.
			f.ehFrame, f.ehAddr = eh, ehFrameAddr(nu, size)
		}
		for _, l := range d.funcs[i].lines {
			l.addr = l.addr - old + nu
			f.lines = append(f.lines, l)
		}
		d.latest[nu] = len(d.funcs)
		d.funcs = append(d.funcs, f)
	case jitDebugInfo:
		// code_addr, nr_entry u64; entries of addr u64, line, discrim u32, file name
		if len(b) < 16 {
			return
		}
		addr, n := o.Uint64(b), o.Uint64(b[8:])
		b = b[16:]
		var lines []jitLine
		prev := ""
		for ; n > 0 && len(b) >= 16 && d.nlines < jitMaxLines; n-- {
			la, ln := o.Uint64(b), int32(o.Uint32(b[8:]))
			file, ok := cString(b[16:])
			if !ok {
				break
			}
			b = b[16+len(file)+1:]
			// "\xff" means the previous entry's file.
			if file == "\xff" {
				file = prev
			} else {
				file = cleanName(file)
			}
			prev = file
			lines = append(lines, jitLine{addr: la, line: max(int(ln), 0), file: file})
			d.nlines++
		}
		slices.SortStableFunc(lines, func(a, b jitLine) int { return cmp.Compare(a.addr, b.addr) })
		if len(d.pending) < jitMaxFuncs {
			d.pending[addr] = lines
		}
	case jitUnwindingInfo:
		// unwinding_size, eh_frame_hdr_size, mapped_size u64; the eh_frame
		// then its header (the unwinder needs the eh_frame only).
		if len(b) < 24 {
			return
		}
		n, hdr := o.Uint64(b), o.Uint64(b[8:])
		data := b[24:]
		if hdr > n || n-hdr > uint64(len(data)) || n-hdr < 8 || d.unwindBytes+int(n-hdr) > jitMaxUnwind {
			d.unwind = nil
			return
		}
		d.unwind = bytes.Clone(data[:n-hdr])
		d.unwindBytes += len(d.unwind)
	}
}

// ehFrameAddr is where a JIT's unwinding data is laid out for code at addr.
func ehFrameAddr(addr, size uint64) uint64 { return addr + (size+7)&^7 }

// unwindFor returns, for the unwinder, the CFI of the JIT code covering
// addr as an ELF image with its .eh_frame at the place the JIT laid it out,
// and a key naming it by content.
func (js *jitDumpState) unwindFor(p *Process, addr uint64) (key string, img []byte, ok bool) {
	js.mu.Lock()
	defer js.mu.Unlock()
	var f *jitFunc
	if js.d != nil {
		f, _ = js.d.lookup(addr)
	}
	if f == nil && time.Since(js.checked) > min(perfMapRecheck, jitDumpRecheck) {
		js.refresh(p)
		if js.d != nil {
			f, _ = js.d.lookup(addr)
		}
	}
	if f == nil || f.ehFrame == nil {
		return "", nil, false
	}
	if f.image == nil {
		f.image = ehFrameELF(f.ehFrame, f.ehAddr)
	}
	h := fnv.New64a()
	h.Write(f.image)
	return fmt.Sprintf("jit:%x", h.Sum64()), f.image, true
}

// ehFrameELF wraps an .eh_frame at addr in a minimal x86-64 ELF file: a
// header, the data, a section name table and three section headers.
func ehFrameELF(eh []byte, addr uint64) []byte {
	le := binary.LittleEndian
	names := []byte("\x00.eh_frame\x00.shstrtab\x00")
	ehOff := uint64(64)
	namesOff := ehOff + uint64(len(eh))
	shOff := (namesOff + uint64(len(names)) + 7) &^ 7
	out := make([]byte, shOff+3*64)
	copy(out, "\x7fELF")
	out[4], out[5], out[6] = 2, 1, 1 // 64-bit, little-endian, version 1
	le.PutUint16(out[16:], 3)        // ET_DYN
	le.PutUint16(out[18:], 62)       // EM_X86_64
	le.PutUint32(out[20:], 1)
	le.PutUint64(out[40:], shOff)
	le.PutUint16(out[52:], 64) // header size
	le.PutUint16(out[54:], 56) // program header size (none)
	le.PutUint16(out[58:], 64) // section header size
	le.PutUint16(out[60:], 3)  // sections
	le.PutUint16(out[62:], 2)  // .shstrtab
	copy(out[ehOff:], eh)
	copy(out[namesOff:], names)
	sh := func(i int, name, typ uint32, flags, addr, off, size uint64) {
		b := out[shOff+uint64(i)*64:]
		le.PutUint32(b, name)
		le.PutUint32(b[4:], typ)
		le.PutUint64(b[8:], flags)
		le.PutUint64(b[16:], addr)
		le.PutUint64(b[24:], off)
		le.PutUint64(b[32:], size)
		le.PutUint64(b[48:], 1)
	}
	sh(1, 1, 1, 2, addr, ehOff, uint64(len(eh)))     // .eh_frame: PROGBITS, ALLOC
	sh(2, 11, 3, 0, 0, namesOff, uint64(len(names))) // .shstrtab: STRTAB
	return out
}

// cString returns the NUL-terminated string at the start of b.
func cString(b []byte) (string, bool) {
	i := bytes.IndexByte(b, 0)
	if i < 0 {
		return "", false
	}
	return string(b[:i]), true
}

// cleanName cuts over-long names and replaces control bytes, which would
// corrupt folded output.
func cleanName(s string) string {
	if len(s) > perfMapMaxName {
		s = s[:perfMapMaxName]
	}
	if !bytes.ContainsFunc([]byte(s), func(r rune) bool { return r < 0x20 || r == 0x7f }) {
		return s
	}
	b := []byte(s)
	for i, c := range b {
		if c < 0x20 || c == 0x7f {
			b[i] = '?'
		}
	}
	return string(b)
}

func (d *jitDump) index() {
	d.byAddr = d.byAddr[:0]
	for i := range d.funcs {
		d.byAddr = append(d.byAddr, i)
	}
	slices.SortFunc(d.byAddr, func(a, b int) int {
		if c := cmp.Compare(d.funcs[a].addr, d.funcs[b].addr); c != 0 {
			return c
		}
		return cmp.Compare(d.funcs[b].seq, d.funcs[a].seq)
	})
	d.byAddr = slices.CompactFunc(d.byAddr, func(a, b int) bool { return d.funcs[a].addr == d.funcs[b].addr })
}

// lookup returns the code covering addr and the source line of addr in it.
func (d *jitDump) lookup(addr uint64) (*jitFunc, *jitLine) {
	i := sort.Search(len(d.byAddr), func(i int) bool { return d.funcs[d.byAddr[i]].addr > addr }) - 1
	// Code at a lower address can still cover addr when a newer, shorter
	// function starts between: look back a few.
	for k := i; k >= 0 && k > i-4; k-- {
		f := &d.funcs[d.byAddr[k]]
		if addr-f.addr >= f.size {
			continue
		}
		j := sort.Search(len(f.lines), func(j int) bool { return f.lines[j].addr > addr }) - 1
		if j < 0 {
			return f, nil
		}
		return f, &f.lines[j]
	}
	return nil, nil
}

// jitDumpState follows a process's jitdump like perfMapState follows its
// perf map: the JIT keeps appending, so an address it does not cover makes
// it read what was added, at most once per perfMapRecheck.
type jitDumpState struct {
	mu        sync.Mutex
	path      string // in the process's namespace
	uid, euid int
	f         *os.File
	size      int64
	mtime     int64
	checked   time.Time
	d         *jitDump
}

// jitDumpRecheck is how often a miss looks at the jitdump again: a fstat
// (an open while there is none) and, when it grew, a read of what it grew
// by, never of the whole again (unlike a perf map's layers). At a second,
// as perf maps are, the samples of code compiled just after the last check
// went unnamed for up to that second: 17% of a 5 s capture of a JIT that
// starts 300 ms in.
var jitDumpRecheck = 50 * time.Millisecond

func (js *jitDumpState) lookup(p *Process, addr uint64) (Frame, bool) {
	js.mu.Lock()
	defer js.mu.Unlock()
	var f *jitFunc
	var l *jitLine
	if js.d != nil {
		f, l = js.d.lookup(addr)
	}
	if f == nil && time.Since(js.checked) > min(perfMapRecheck, jitDumpRecheck) {
		js.refresh(p)
		if js.d != nil {
			f, l = js.d.lookup(addr)
		}
	}
	if f == nil {
		return Frame{}, false
	}
	fr := Frame{Module: js.path, Offset: addr, JIT: true}
	fr.setName(f.name)
	if l != nil {
		fr.File, fr.Line = l.file, l.line
	}
	return fr, true
}

func (js *jitDumpState) refresh(p *Process) {
	js.checked = time.Now()
	if js.f == nil {
		js.path = js.markerPath(p)
		f, err := openPerfMap(p.root, p.s.opts.ProcRoot, p.PID, js.path)
		if err != nil {
			return
		}
		js.f = f
	}
	st, ok := statTrusted(js.f, jitMaxFile, js.uid, js.euid)
	if !ok {
		p.s.log.Debug("ignoring jitdump", "pid", p.PID, "owner", st.Uid)
		js.f.Close()
		js.f, js.d = nil, nil
		return
	}
	if js.d != nil && st.Size == js.size && st.Mtim.Nano() == js.mtime {
		return
	}
	if js.d != nil && js.d.consumed >= 0 && st.Size >= js.size && st.Size > js.d.consumed {
		js.d.more(io.NewSectionReader(js.f, js.d.consumed, st.Size-js.d.consumed))
	} else if js.d == nil || st.Size < js.size {
		d, err := parseJitdump(io.NewSectionReader(js.f, 0, st.Size))
		if err != nil {
			p.s.log.Debug("ignoring jitdump", "pid", p.PID, "err", err)
		}
		js.d = d
	}
	js.size, js.mtime = st.Size, st.Mtim.Nano()
}

// markerPath is where the JIT writes its dump: the file it mapped
// executable as a marker for perf (JVM and .NET agents write under
// ~/.debug/jit or $JITDUMPDIR), named jit-PID.dump, or else /tmp's.
func (js *jitDumpState) markerPath(p *Process) string {
	want := fmt.Sprintf("jit-%d.dump", p.NSpid)
	for _, m := range p.mappings() {
		if !m.deleted && path.Base(m.path) == want && path.IsAbs(m.path) {
			return m.path
		}
	}
	return "/tmp/" + want
}

func (js *jitDumpState) close() {
	js.mu.Lock()
	defer js.mu.Unlock()
	if js.f != nil {
		js.f.Close()
		js.f = nil
	}
}

// JITCode is a piece of JIT code in a process's jitdump with the eh_frame
// its unwinding record gave, for unwind.BuildCompactJIT.
type JITCode struct {
	Addr, Size uint64
	EhFrame    []byte // laid out at EhAddr; shared, not to be modified
	EhAddr     uint64
}

// JITCode lists the code of the process's jitdump in [start, end) that
// has CFI, by address (the newest load at an address), reading what the
// JIT appended first (at most once per perfMapRecheck).
func (p *Process) JITCode(start, end uint64) []JITCode {
	if p == nil {
		return nil
	}
	js := &p.jit
	js.mu.Lock()
	defer js.mu.Unlock()
	if time.Since(js.checked) > perfMapRecheck {
		js.refresh(p)
	}
	if js.d == nil {
		return nil
	}
	var out []JITCode
	for _, i := range js.d.byAddr {
		f := &js.d.funcs[i]
		if f.ehFrame != nil && f.addr >= start && f.addr+f.size <= end {
			out = append(out, JITCode{Addr: f.addr, Size: f.size, EhFrame: f.ehFrame, EhAddr: f.ehAddr})
		}
	}
	return out
}
