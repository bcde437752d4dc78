package symbolizer

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"strconv"
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
func parseKallsyms(r io.Reader) (*kernelTable, error) {
	// Names go into one arena (sliced once it is complete) rather than an
	// allocation each: a kernel has 100k-200k text symbols.
	syms := make([]symbol, 0, 1<<17)
	arena := make([]byte, 0, 4<<20)
	var nameAt []uint32
	modIdx := map[string]uint16{kernelModule: 0}
	kt := &kernelTable{modNames: []string{kernelModule}}
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 0, 4096), 1<<20)
	lines, nonzero := 0, false
	for sc.Scan() {
		line := sc.Bytes()
		f1 := bytes.IndexByte(line, ' ')
		if f1 <= 0 || f1+3 >= len(line) || line[f1+2] != ' ' {
			continue
		}
		addr, err := strconv.ParseUint(string(line[:f1]), 16, 64)
		if err != nil {
			continue
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
			continue
		}
		rest := line[f1+3:]
		name, mod := rest, []byte(nil)
		if i := bytes.IndexByte(rest, '\t'); i >= 0 {
			name, mod = rest[:i], bytes.TrimSpace(rest[i+1:])
		}
		if len(name) == 0 || len(name) > 512 {
			continue
		}
		if addr != 0 {
			nonzero = true
		}
		m := uint16(0)
		if len(mod) > 0 {
			key := string(mod) // already "[name]"
			if idx, ok := modIdx[key]; ok {
				m = idx
			} else if len(kt.modNames) < 1<<16-1 {
				m = uint16(len(kt.modNames))
				modIdx[key] = m
				kt.modNames = append(kt.modNames, key)
			}
		}
		// name aliases the scanner's buffer: copy it.
		nameAt = append(nameAt, uint32(len(arena)))
		arena = append(arena, name...)
		syms = append(syms, symbol{addr: addr, bind: bind, mod: m})
	}
	for i := range syms {
		end := len(arena)
		if i+1 < len(nameAt) {
			end = int(nameAt[i+1])
		}
		syms[i].name = arena[nameAt[i]:end:end]
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("read kallsyms: %w", err)
	}
	if lines == 0 {
		return nil, fmt.Errorf("kallsyms: no symbol lines")
	}
	kt.zero = !nonzero
	syms = uniqueSymbols(syms)
	// Symbols have no size: each reaches the next one, except the last of
	// a module (or of the table), which would otherwise swallow the space
	// of modules loaded later; give it a generous bound instead.
	kt.modules = make([]uint16, len(syms))
	for i := range syms {
		kt.modules[i] = syms[i].mod
		if i+1 == len(syms) || syms[i+1].mod != syms[i].mod {
			syms[i].size = lastSymbolSpan
		}
	}
	kt.syms = packSymbols(syms, true)
	return kt, nil
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
