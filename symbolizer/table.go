package symbolizer

import (
	"bytes"
	"cmp"
	"runtime/debug"
	"slices"
	"unsafe"

	"github.com/scorch-dev/scorch/internal/mapped"
)

// symbol is the transient form used while building a table.
type symbol struct {
	addr uint64
	size uint64
	name []byte
	bind uint8 // 2 global, 1 weak, 0 local: picks among aliases
	// label: an untyped, unsized symbol in code (an assembly entry point);
	// it loses to any other symbol at its address and inside a sized one.
	label bool
	mod   uint16 // kallsyms only: index into kernelTable.modNames
}

// better reports whether a should name an address rather than its alias b,
// the way perf chooses: global over weak over local, then fewer leading
// underscores (qsort, not __GI_qsort), then the shorter name.
func better(a, b *symbol) bool {
	if a.label != b.label {
		return b.label
	}
	if a.bind != b.bind {
		return a.bind > b.bind
	}
	ua, ub := leadingUnderscores(a.name), leadingUnderscores(b.name)
	if ua != ub {
		return ua < ub
	}
	return len(a.name) < len(b.name)
}

func leadingUnderscores(b []byte) int {
	n := 0
	for n < len(b) && b[n] == '_' {
		n++
	}
	return n
}

// symTable is a sorted, compact symbol table: 16 bytes per symbol plus the
// name bytes, packed into one blob so that lookups allocate nothing but a
// copy of the name returned. Names that are in a string table of a mapped
// file (srcs) are read there, not copied: a C++ binary's .strtab is most
// of its table (node's 7.5 MB of names beside 1.7 MB of addresses), and
// in place only the pages of the names looked up are resident.
type symTable struct {
	addrs []uint64
	sizes []uint32 // 0: unknown size
	// names are offsets into blob, each name ending with a NUL; with srcs,
	// the top 4 bits say where: 0 the blob, k srcs[k-1].
	names []uint32
	blob  []byte
	srcs  [][]byte
	// owners are the mappings srcs are in, kept as long as the table.
	owners []*mapped.File
	// exact means a symbol of unknown size covers the gap up to the next
	// symbol; tables from .dynsym only are not exact (internal functions are
	// missing), so an address past a sized symbol is unnamed.
	exact bool
}

// newSymTable sorts syms and drops duplicates (see uniqueSymbols); names
// in srcs are kept there (see symTable).
func newSymTable(syms []symbol, exact bool, srcs ...[]byte) *symTable {
	return packSymbols(uniqueSymbols(syms), exact, srcs...)
}

// uniqueSymbols sorts syms by address and keeps one symbol per address, in
// place: the best-named alias (sources added earlier win over later ones
// only on equal rank: the sort is stable), with the size of a sized alias
// when it has none.
func uniqueSymbols(syms []symbol) []symbol {
	slices.SortStableFunc(syms, func(a, b symbol) int { return cmp.Compare(a.addr, b.addr) })
	for i := 0; i < len(syms); {
		j := i + 1
		for j < len(syms) && syms[j].addr == syms[i].addr {
			if better(&syms[j], &syms[i]) {
				syms[i], syms[j] = syms[j], syms[i]
			}
			j++
		}
		i = j
	}
	out := syms[:0]
	var sizedEnd uint64 // the end of the sized symbols so far
	for _, sym := range syms {
		if n := len(out); n > 0 && out[n-1].addr == sym.addr {
			if out[n-1].size == 0 {
				out[n-1].size = sym.size
			}
			continue
		}
		if sym.label && sym.addr < sizedEnd {
			continue // a label inside a function does not split it
		}
		if sym.size > 0 {
			sizedEnd = max(sizedEnd, sym.addr+sym.size)
		}
		out = append(out, sym)
	}
	return out
}

// packSymbols builds the table of symbols sorted by address, one per
// address. A name that is a NUL-terminated string of one of srcs (at most
// 15, each under 256 MiB) is kept there.
func packSymbols(syms []symbol, exact bool, srcs ...[]byte) *symTable {
	const offBits = 28
	if len(srcs) > 15 {
		srcs = nil
	}
	for _, src := range srcs {
		if len(src) >= 1<<offBits {
			srcs = nil
			break
		}
	}
	// where[i]: the src (1-based) symbol i's name is in, and its offset.
	var where []uint32
	blobLen := 0
	if len(srcs) > 0 {
		where = make([]uint32, len(syms))
	}
	for i := range syms {
		name := syms[i].name
		if where != nil {
			if k, off, ok := inSource(srcs, name); ok {
				where[i] = uint32(k+1)<<offBits | off
				continue
			}
		}
		blobLen += len(name) + 1
	}
	if blobLen >= 1<<offBits {
		srcs, where = nil, nil // too many names to copy for the offsets' bits: all copied
		blobLen = 0
		for i := range syms {
			blobLen += len(syms[i].name) + 1
		}
	}
	t := &symTable{
		addrs: make([]uint64, 0, len(syms)),
		sizes: make([]uint32, 0, len(syms)),
		names: make([]uint32, 0, len(syms)),
		blob:  make([]byte, 0, blobLen),
		exact: exact,
	}
	if where != nil {
		t.srcs = srcs
	}
	for i := range syms {
		t.addrs = append(t.addrs, syms[i].addr)
		t.sizes = append(t.sizes, clampSize(syms[i].size))
		if where != nil && where[i] != 0 {
			t.names = append(t.names, where[i])
			continue
		}
		t.names = append(t.names, uint32(len(t.blob)))
		t.blob = append(t.blob, syms[i].name...)
		t.blob = append(t.blob, 0)
	}
	return t
}

// inSource finds name in srcs: the index of the source whose bytes it is,
// followed by a NUL, and its offset there.
func inSource(srcs [][]byte, name []byte) (int, uint32, bool) {
	if len(name) == 0 {
		return 0, 0, false
	}
	p := uintptr(unsafe.Pointer(unsafe.SliceData(name)))
	for k, src := range srcs {
		if len(src) == 0 {
			continue
		}
		base := uintptr(unsafe.Pointer(unsafe.SliceData(src)))
		if p < base || p-base >= uintptr(len(src)) {
			continue
		}
		off := int(p - base)
		if end := off + len(name); end < len(src) && src[end] == 0 {
			return k, uint32(off), true
		}
		return 0, 0, false // cut short of its NUL (a version suffix): copied
	}
	return 0, 0, false
}

func clampSize(s uint64) uint32 {
	if s > 1<<32-1 {
		return 1<<32 - 1
	}
	return uint32(s)
}

// lookup returns the symbol covering addr: its index and ok.
func (t *symTable) lookup(addr uint64) (int, bool) {
	if t == nil || len(t.addrs) == 0 || addr < t.addrs[0] {
		return 0, false
	}
	// Binary search for the last start <= addr.
	lo, hi := 0, len(t.addrs)
	for hi-lo > 1 {
		mid := int(uint(lo+hi) >> 1)
		if t.addrs[mid] <= addr {
			lo = mid
		} else {
			hi = mid
		}
	}
	if sz := t.sizes[lo]; sz > 0 {
		return lo, addr-t.addrs[lo] < uint64(sz)
	}
	return lo, t.exact
}

// name returns a copy of the name of symbol i. A copy, not a string into
// the blob: names end up in captures kept long after the table is evicted,
// and one name into a 500 MiB perf map's blob kept all of it alive.
func (t *symTable) name(i int) string {
	if t.srcs != nil {
		return t.nameIn(i)
	}
	start := t.names[i]
	end := uint32(len(t.blob))
	if i+1 < len(t.names) {
		end = t.names[i+1]
	}
	end-- // the NUL
	if end <= start {
		return ""
	}
	return string(t.blob[start:end])
}

// nameIn is name of a table with names in srcs. A mapped file truncated
// under the table faults: that costs the name.
func (t *symTable) nameIn(i int) (name string) {
	defer debug.SetPanicOnFault(debug.SetPanicOnFault(true))
	defer func() {
		if recover() != nil {
			name = ""
		}
	}()
	n := t.names[i]
	src := t.blob
	if k := n >> 28; k > 0 {
		src = t.srcs[k-1]
	}
	b := src[n&(1<<28-1):]
	if end := bytes.IndexByte(b, 0); end >= 0 {
		b = b[:end]
	}
	return string(b)
}

func (t *symTable) len() int {
	if t == nil {
		return 0
	}
	return len(t.addrs)
}

// bytes is the memory the table holds, for the cache's accounting: not
// the names in srcs, pages of the page cache of which only those of the
// names looked up are resident.
func (t *symTable) bytes() int64 {
	if t == nil {
		return 0
	}
	return int64(cap(t.addrs)*8 + cap(t.sizes)*4 + cap(t.names)*4 + cap(t.blob))
}
