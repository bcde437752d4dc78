package symbolizer

import (
	"bytes"
	"cmp"
	"fmt"
	"io"
	"slices"
)

// kernelTable is /proc/kallsyms reduced to text symbols.
type kernelTable struct {
	syms *symTable
	// modules[i] is the module of syms entry i, an index into modNames (0: the kernel).
	modules  []uint16
	modNames []string
	zero     bool // every address was 0: kptr_restrict hides them
}

const kernelModule = "[kernel.kallsyms]"

// lastSymbolSpan bounds the last symbol of the kernel or of a module.
const lastSymbolSpan = 256 << 10

// parseKallsyms reads the /proc/kallsyms format: "ADDR TYPE NAME [MODULE]".
// Only text symbols are kept. Malformed lines are skipped; a stream with no
// valid line is an error.
//
// The file is read in large reads and parsed in one pass over its bytes:
// addresses are decoded in place, names copied into one arena, and the
// symbols are sorted only when the file is not in address
// order already (the kernel's text is; modules may not be). Through a line
// scanner, strconv and a stable sort, the parse was about half of reading
// the host's kallsyms (122k symbols), the kernel's formatting of the file
// the other half.
func parseKallsyms(r io.Reader) (*kernelTable, error) {
	// ksym is a text symbol while parsing: its name at arena[off:off+n].
	type ksym struct {
		addr uint64
		off  uint32
		n    uint16
		mod  uint16
		bind uint8
	}
	syms := make([]ksym, 0, 1<<17)
	// Names are copied into one arena as the file is read in chunks.
	arena := make([]byte, 0, 4<<20)
	modIdx := map[string]uint16{kernelModule: 0}
	kt := &kernelTable{modNames: []string{kernelModule}}
	lastMod := []byte(nil) // the module of the previous line, and its index
	lastIdx := uint16(0)
	lines, nonzero := 0, false
	unsorted := -1 // the first symbol below its predecessor's address
	parse := func(line []byte) {
		if len(line) > 0 && line[len(line)-1] == '\r' {
			line = line[:len(line)-1]
		}
		addr, f1, ok := hexPrefix(line)
		if !ok || f1+3 >= len(line) || line[f1] != ' ' || line[f1+2] != ' ' {
			return
		}
		lines++
		var bind uint8
		switch line[f1+1] {
		case 'T':
			bind = 2
		case 'W', 'w':
			bind = 1
		case 't':
		default:
			return
		}
		name, mod := line[f1+3:], []byte(nil)
		if i := bytes.IndexByte(name, '\t'); i >= 0 {
			name, mod = name[:i], bytes.TrimSpace(name[i+1:])
		}
		if len(name) == 0 || len(name) > 512 || len(arena)+len(name) > maxKallsymsNames {
			return
		}
		if addr != 0 {
			nonzero = true
		}
		m := uint16(0)
		switch {
		case len(mod) == 0:
		case bytes.Equal(mod, lastMod):
			m = lastIdx // a module's symbols come together
		default:
			if idx, ok := modIdx[string(mod)]; ok {
				m = idx
			} else if len(kt.modNames) < 1<<16-1 {
				key := string(mod) // already "[name]"
				m = uint16(len(kt.modNames))
				modIdx[key] = m
				kt.modNames = append(kt.modNames, key)
			}
			lastMod, lastIdx = append(lastMod[:0], mod...), m
		}
		if n := len(syms); unsorted < 0 && n > 0 && addr < syms[n-1].addr {
			unsorted = n
		}
		syms = append(syms, ksym{addr: addr, off: uint32(len(arena)), n: uint16(len(name)), mod: m, bind: bind})
		arena = append(arena, name...)
	}
	// Large reads: the kernel formats as many lines as a read asks for.
	buf := make([]byte, 1<<20)
	have, skip := 0, false
	for {
		n, err := r.Read(buf[have:])
		have += n
		if err != nil && err != io.EOF {
			return nil, fmt.Errorf("read kallsyms: %w", err)
		}
		rest := buf[:have]
		for {
			i := bytes.IndexByte(rest, '\n')
			if i < 0 {
				break
			}
			if !skip {
				parse(rest[:i])
			}
			rest, skip = rest[i+1:], false
		}
		if err == io.EOF {
			if !skip {
				parse(rest)
			}
			break
		}
		// The partial last line moves to the front; a line longer than
		// the buffer is dropped.
		have = copy(buf, rest)
		if have == len(buf) {
			have, skip = 0, true
		}
	}
	if lines == 0 {
		return nil, fmt.Errorf("kallsyms: no symbol lines")
	}
	if unsorted >= 0 {
		// By address, then file order: aliases keep the order a stable
		// sort gives them. The kernel's text comes first in address
		// order; what follows it (modules, BPF programs, trampolines:
		// a few thousand) is sorted and merged with it.
		byAddr := func(a, b ksym) int {
			if c := cmp.Compare(a.addr, b.addr); c != 0 {
				return c
			}
			return cmp.Compare(a.off, b.off)
		}
		head, tail := syms[:unsorted], syms[unsorted:]
		slices.SortFunc(tail, byAddr)
		merged := make([]ksym, 0, len(syms))
		for len(head) > 0 && len(tail) > 0 {
			if byAddr(tail[0], head[0]) < 0 {
				merged, tail = append(merged, tail[0]), tail[1:]
			} else {
				merged, head = append(merged, head[0]), head[1:]
			}
		}
		syms = append(append(merged, head...), tail...)
	}
	kt.zero = !nonzero
	// One symbol per address, the best-named alias (see better; the
	// first on equal rank), packed as packSymbols does.
	name := func(k *ksym) []byte { return arena[k.off : k.off+uint32(k.n)] }
	better := func(a, b *ksym) bool {
		if a.bind != b.bind {
			return a.bind > b.bind
		}
		if ua, ub := leadingUnderscores(name(a)), leadingUnderscores(name(b)); ua != ub {
			return ua < ub
		}
		return a.n < b.n
	}
	out := syms[:0]
	blobLen := 0
	for i := 0; i < len(syms); {
		best := i
		j := i + 1
		for ; j < len(syms) && syms[j].addr == syms[i].addr; j++ {
			if better(&syms[j], &syms[best]) {
				best = j
			}
		}
		out = append(out, syms[best])
		blobLen += int(syms[best].n) + 1
		i = j
	}
	t := &symTable{
		addrs: make([]uint64, len(out)),
		sizes: make([]uint32, len(out)),
		names: make([]uint32, len(out)),
		blob:  make([]byte, 0, blobLen),
		exact: true,
	}
	kt.modules = make([]uint16, len(out))
	for i := range out {
		k := &out[i]
		t.addrs[i] = k.addr
		// Symbols have no size: each reaches the next one, except the
		// last of a module (or of the table), which would otherwise
		// swallow the space of modules loaded later; give it a generous
		// bound instead.
		if i+1 == len(out) || out[i+1].mod != k.mod {
			t.sizes[i] = lastSymbolSpan
		}
		t.names[i] = uint32(len(t.blob))
		t.blob = append(t.blob, name(k)...)
		t.blob = append(t.blob, 0)
		kt.modules[i] = k.mod
	}
	kt.syms = t
	return kt, nil
}

// maxKallsymsNames bounds the names parseKallsyms keeps (offsets into
// them are 32-bit).
const maxKallsymsNames = 1 << 30

// hexPrefix decodes the hexadecimal digits at the start of b: the value,
// how many digits, and false when there are none or the value overflows.
func hexPrefix(b []byte) (v uint64, n int, ok bool) {
	for ; n < len(b); n++ {
		c := b[n]
		var d byte
		switch {
		case '0' <= c && c <= '9':
			d = c - '0'
		case 'a' <= c && c <= 'f':
			d = c - 'a' + 10
		case 'A' <= c && c <= 'F':
			d = c - 'A' + 10
		default:
			return v, n, n > 0
		}
		if v>>60 != 0 {
			return 0, n, false
		}
		v = v<<4 | uint64(d)
	}
	return v, n, n > 0
}

// lookup names a kernel address; sizes are unknown so a symbol extends to
// the next one.
func (kt *kernelTable) lookup(addr uint64) (name, module string, ok bool) {
	if kt == nil || kt.zero {
		return "", "", false
	}
	i, ok := kt.syms.lookup(addr)
	if !ok {
		return "", "", false
	}
	return kt.syms.name(i), kt.modNames[kt.modules[i]], true
}
