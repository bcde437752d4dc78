package symbolizer

import (
	"bytes"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"hash/crc32"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strconv"
	"time"
)

// The kernel symbol cache keeps the static part of /proc/kallsyms on disk:
// reading the file is 20-30 ms of the kernel's formatting and as much
// parsing, per capture, for the same 120k names each time. Static are the
// kernel's own text symbols, fixed for a boot (KASLR picks their place at
// boot), and those of loaded modules, fixed while the same module builds
// stay loaded at the same addresses. The key of a cached table is the boot
// id, the kernel's build ID and, per module, its name, size, address and
// build ID: a new boot or any module loaded, unloaded or rebuilt gives
// another key. BPF programs, trampolines and other code the kernel makes
// at run time are not cached: a cached table answers only addresses
// between the first and the last symbol of a run of one module's symbols
// (the kernel's or a module's, no gap wider than maxSpanGap), where no such
// code can be, and any other address makes the symbolizer read
// /proc/kallsyms whole (see Symbolizer.Kernel).

// DefaultKernelCacheDir is where record keeps the kernel's symbols.
func DefaultKernelCacheDir() string { return CacheDir("kernel") }

const (
	kernelCacheMagic  = "scorchK1"
	kernelCacheSuffix = ".ksyms"
	kernelCacheKeep   = 4 // files kept: other boots' and module sets'
)

var kernelCacheCRC = crc32.MakeTable(crc32.Castagnoli)

// moduleLine is one line of /proc/modules.
type moduleLine struct {
	name  string
	size  uint64
	live  bool
	addr  uint64
	other string // the fields the key does not use (refcount, deps)
}

// parseModules reads /proc/modules: "NAME SIZE REFS DEPS STATE ADDR
// [TAINTS]". A line without those six fields is an error: a key must
// not be made from what scorch did not understand.
func parseModules(b []byte) ([]moduleLine, error) {
	var out []moduleLine
	for line := range bytes.Lines(b) {
		f := bytes.Fields(line)
		if len(f) == 0 {
			continue
		}
		if len(f) < 6 {
			return nil, fmt.Errorf("modules: line %q has %d fields, want at least 6", bytes.TrimSpace(line), len(f))
		}
		size, err := strconv.ParseUint(string(f[1]), 10, 64)
		if err != nil {
			return nil, fmt.Errorf("modules: size of %s: %w", f[0], err)
		}
		a := f[5]
		if !bytes.HasPrefix(a, []byte("0x")) {
			return nil, fmt.Errorf("modules: address %q of %s", a, f[0])
		}
		addr, n, ok := hexPrefix(a[2:])
		if !ok || n != len(a)-2 {
			return nil, fmt.Errorf("modules: address %q of %s", a, f[0])
		}
		out = append(out, moduleLine{name: string(f[0]), size: size, live: string(f[4]) == "Live", addr: addr, other: string(f[2]) + " " + string(f[3])})
	}
	return out, nil
}

// kernelKey is what names this boot's static kernel symbols.
type kernelKey struct {
	sum     [sha256.Size]byte
	modules map[string]bool // the loaded modules, as kallsyms names them: "[name]"
}

// readKernelKey makes the key from the boot id, the kernel's notes (its
// build ID) and every module; it fails when a module is not live (being
// loaded or unloaded), its address is hidden or its build ID unknown.
func readKernelKey(procRoot, sysRoot string) (kernelKey, error) {
	k := kernelKey{modules: map[string]bool{}}
	boot, err := os.ReadFile(filepath.Join(procRoot, "sys/kernel/random/boot_id"))
	if err != nil || len(bytes.TrimSpace(boot)) == 0 {
		return k, fmt.Errorf("boot id: %w", cmpErr(err))
	}
	h := sha256.New()
	fmt.Fprintf(h, "%s\nboot %s\n", kernelCacheMagic, bytes.TrimSpace(boot))
	notes, err := os.ReadFile(filepath.Join(sysRoot, "kernel/notes"))
	if err != nil {
		return k, fmt.Errorf("kernel notes: %w", err)
	}
	fmt.Fprintf(h, "kernel %x\n", notes)
	b, err := os.ReadFile(filepath.Join(procRoot, "modules"))
	switch {
	case errors.Is(err, os.ErrNotExist):
		// A kernel without module support: its own symbols only.
	case err != nil:
		return k, fmt.Errorf("modules: %w", err)
	}
	mods, err := parseModules(b)
	if err != nil {
		return k, err
	}
	slices.SortFunc(mods, func(a, b moduleLine) int { return cmpString(a.name, b.name) })
	for _, m := range mods {
		if !m.live || m.addr == 0 {
			return k, fmt.Errorf("module %s is not live or its address is hidden", m.name)
		}
		id, err := os.ReadFile(filepath.Join(sysRoot, "module", m.name, "notes/.note.gnu.build-id"))
		if err != nil || len(id) == 0 {
			return k, fmt.Errorf("build ID of module %s: %w", m.name, cmpErr(err))
		}
		fmt.Fprintf(h, "module %s %d %x %x\n", m.name, m.size, m.addr, id)
		k.modules["["+m.name+"]"] = true
	}
	h.Sum(k.sum[:0])
	return k, nil
}

func cmpErr(err error) error {
	if err == nil {
		return errors.New("empty")
	}
	return err
}

func cmpString(a, b string) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

// span is a range [lo, hi) of addresses a cached table answers.
type span struct{ lo, hi uint64 }

// staticKernel is a cached table: the static symbols and the spans they
// answer.
type staticKernel struct {
	table *kernelTable
	spans []span // sorted, disjoint
}

// covers reports whether the cached table answers addr.
func (sk *staticKernel) covers(addr uint64) bool {
	i := sort.Search(len(sk.spans), func(i int) bool { return sk.spans[i].hi > addr })
	return i < len(sk.spans) && sk.spans[i].lo <= addr
}

// staticPart keeps the symbols of kt that are the kernel's or a module's
// of mods, and the spans they answer (moduleSpans).
func staticPart(kt *kernelTable, mods map[string]bool) *staticKernel {
	keep := make([]bool, len(kt.modNames))
	remap := make([]uint16, len(kt.modNames))
	out := &kernelTable{modNames: []string{kernelModule}}
	for i, name := range kt.modNames {
		if i == 0 || mods[name] {
			keep[i] = true
			if i > 0 {
				remap[i] = uint16(len(out.modNames))
				out.modNames = append(out.modNames, name)
			}
		}
	}
	t := &symTable{exact: true}
	for i, a := range kt.syms.addrs {
		m := kt.modules[i]
		if !keep[m] {
			continue
		}
		t.addrs = append(t.addrs, a)
		t.names = append(t.names, uint32(len(t.blob)))
		t.blob = append(t.blob, kt.syms.name(i)...)
		t.blob = append(t.blob, 0)
		out.modules = append(out.modules, remap[m])
	}
	t.sizes = make([]uint32, len(t.addrs))
	setLastSpans(t.sizes, out.modules)
	out.syms = t
	return &staticKernel{table: out, spans: moduleSpans(t.addrs, out.modules)}
}

// setLastSpans bounds the last symbol of each module (see parseKallsyms).
func setLastSpans(sizes []uint32, modules []uint16) {
	for i := range sizes {
		if i+1 == len(sizes) || modules[i+1] != modules[i] {
			sizes[i] = lastSymbolSpan
		}
	}
}

// maxSpanGap is the widest gap between two symbols a span crosses: no
// function is that long, and a wider gap (the kernel's data between its
// text sections, an outlying symbol) is left to kallsyms, so that a span
// can never reach over code the kernel makes at run time.
const maxSpanGap = 1 << 20

// moduleSpans are the runs of symbols of one module in address order, each
// gap within them at most maxSpanGap, from the first symbol's address to
// the last's: disjoint and sorted, as addrs is.
func moduleSpans(addrs []uint64, modules []uint16) []span {
	var out []span
	for i := 0; i < len(addrs); {
		j := i
		for j+1 < len(addrs) && modules[j+1] == modules[i] && addrs[j+1]-addrs[j] <= maxSpanGap {
			j++
		}
		if addrs[j] > addrs[i] {
			out = append(out, span{addrs[i], addrs[j]})
		}
		i = j + 1
	}
	return out
}

// encodeKernelCache is a cache file: the magic, the key, the CRC-32C of
// the payload, then the payload: the module names (count, then each with
// a 16-bit length), the symbol count, per symbol its address, name offset
// and module index, and the names (length, then NUL-ended names).
func encodeKernelCache(sum [sha256.Size]byte, kt *kernelTable) []byte {
	var p []byte
	p = binary.LittleEndian.AppendUint32(p, uint32(len(kt.modNames)))
	for _, n := range kt.modNames {
		p = binary.LittleEndian.AppendUint16(p, uint16(len(n)))
		p = append(p, n...)
	}
	t := kt.syms
	p = binary.LittleEndian.AppendUint32(p, uint32(len(t.addrs)))
	for i, a := range t.addrs {
		p = binary.LittleEndian.AppendUint64(p, a)
		p = binary.LittleEndian.AppendUint32(p, t.names[i])
		p = binary.LittleEndian.AppendUint16(p, kt.modules[i])
	}
	p = binary.LittleEndian.AppendUint32(p, uint32(len(t.blob)))
	p = append(p, t.blob...)
	out := make([]byte, 0, len(kernelCacheMagic)+len(sum)+4+len(p))
	out = append(out, kernelCacheMagic...)
	out = append(out, sum[:]...)
	out = binary.LittleEndian.AppendUint32(out, crc32.Checksum(p, kernelCacheCRC))
	return append(out, p...)
}

// parseKernelCache reads a cache file made for the key sum. Everything is
// checked (the checksum, every count, offset and index, the addresses in
// order, the names ended): a file cut short or corrupt is an error.
func parseKernelCache(b []byte, sum [sha256.Size]byte) (*staticKernel, error) {
	head := len(kernelCacheMagic) + len(sum) + 4
	if len(b) < head || string(b[:len(kernelCacheMagic)]) != kernelCacheMagic {
		return nil, errors.New("not a kernel symbol cache")
	}
	if !bytes.Equal(b[len(kernelCacheMagic):len(kernelCacheMagic)+len(sum)], sum[:]) {
		return nil, errors.New("made for another kernel or module set")
	}
	p := b[head:]
	if crc32.Checksum(p, kernelCacheCRC) != binary.LittleEndian.Uint32(b[head-4:]) {
		return nil, errors.New("checksum mismatch")
	}
	errShort := errors.New("truncated")
	at := 0
	u32 := func() (uint32, bool) {
		if at+4 > len(p) {
			return 0, false
		}
		v := binary.LittleEndian.Uint32(p[at:])
		at += 4
		return v, true
	}
	nm, ok := u32()
	if !ok || nm == 0 || nm > 1<<16-1 {
		return nil, errors.New("bad module count")
	}
	kt := &kernelTable{}
	for range nm {
		if at+2 > len(p) {
			return nil, errShort
		}
		l := int(binary.LittleEndian.Uint16(p[at:]))
		at += 2
		if at+l > len(p) {
			return nil, errShort
		}
		kt.modNames = append(kt.modNames, string(p[at:at+l]))
		at += l
	}
	if kt.modNames[0] != kernelModule {
		return nil, fmt.Errorf("first module %q, want %s", kt.modNames[0], kernelModule)
	}
	n, ok := u32()
	if !ok || uint64(n)*14 > uint64(len(p)-at) {
		return nil, errShort
	}
	t := &symTable{exact: true, addrs: make([]uint64, n), sizes: make([]uint32, n), names: make([]uint32, n)}
	kt.modules = make([]uint16, n)
	for i := range int(n) {
		t.addrs[i] = binary.LittleEndian.Uint64(p[at:])
		t.names[i] = binary.LittleEndian.Uint32(p[at+8:])
		kt.modules[i] = binary.LittleEndian.Uint16(p[at+12:])
		at += 14
		if i > 0 && t.addrs[i] <= t.addrs[i-1] {
			return nil, fmt.Errorf("symbol %d out of address order", i)
		}
		if int(kt.modules[i]) >= len(kt.modNames) {
			return nil, fmt.Errorf("symbol %d: module %d of %d", i, kt.modules[i], len(kt.modNames))
		}
	}
	bl, ok := u32()
	if !ok || uint64(bl) != uint64(len(p)-at) {
		return nil, errShort
	}
	t.blob = p[at:len(p):len(p)]
	// Names in order, each ended by a NUL before the next: name reads
	// up to the next offset.
	for i, off := range t.names {
		end := uint32(len(t.blob))
		if i+1 < len(t.names) {
			end = t.names[i+1]
		}
		if off >= end || end > uint32(len(t.blob)) || t.blob[end-1] != 0 || bytes.IndexByte(t.blob[off:end-1], 0) >= 0 {
			return nil, fmt.Errorf("symbol %d: name at %d..%d of %d", i, off, end, len(t.blob))
		}
	}
	if n > 0 && t.names[0] != 0 || n == 0 && len(t.blob) != 0 {
		return nil, errors.New("names do not start the blob")
	}
	setLastSpans(t.sizes, kt.modules)
	kt.syms = t
	return &staticKernel{table: kt, spans: moduleSpans(t.addrs, kt.modules)}, nil
}

// kernelCache is the directory of cached tables.
type kernelCache struct {
	dir, procRoot, sysRoot string
}

func (c *kernelCache) path(sum [sha256.Size]byte) string {
	return filepath.Join(c.dir, hex.EncodeToString(sum[:16])+kernelCacheSuffix)
}

// load returns the cached table of the running kernel, or nil.
func (c *kernelCache) load() (*staticKernel, error) {
	k, err := readKernelKey(c.procRoot, c.sysRoot)
	if err != nil {
		return nil, err
	}
	b, err := os.ReadFile(c.path(k.sum))
	if err != nil {
		return nil, err
	}
	return parseKernelCache(b, k.sum)
}

// store keeps the static part of kt, read between two readings of the key
// (before is the first): a module loaded or unloaded meanwhile changes the
// key, and then nothing is kept.
func (c *kernelCache) store(before kernelKey, kt *kernelTable) error {
	after, err := readKernelKey(c.procRoot, c.sysRoot)
	if err != nil {
		return err
	}
	if after.sum != before.sum {
		return errors.New("the modules changed while kallsyms was read")
	}
	if kt.zero {
		return errors.New("kernel addresses are hidden")
	}
	sk := staticPart(kt, before.modules)
	if err := os.MkdirAll(c.dir, 0o700); err != nil {
		return fmt.Errorf("kernel cache: %w", err)
	}
	f, err := os.CreateTemp(c.dir, ".tmp-*")
	if err != nil {
		return fmt.Errorf("kernel cache: %w", err)
	}
	_, werr := f.Write(encodeKernelCache(before.sum, sk.table))
	if err := errors.Join(werr, f.Close()); err != nil {
		os.Remove(f.Name())
		return fmt.Errorf("kernel cache: %w", err)
	}
	if err := os.Rename(f.Name(), c.path(before.sum)); err != nil {
		os.Remove(f.Name())
		return fmt.Errorf("kernel cache: %w", err)
	}
	c.prune()
	return nil
}

// prune keeps the most recently written files.
func (c *kernelCache) prune() {
	ents, err := filepath.Glob(filepath.Join(c.dir, "*"+kernelCacheSuffix))
	if err != nil || len(ents) <= kernelCacheKeep {
		return
	}
	mtime := map[string]time.Time{}
	for _, p := range ents {
		if fi, err := os.Stat(p); err == nil {
			mtime[p] = fi.ModTime()
		}
	}
	sort.Slice(ents, func(i, j int) bool { return mtime[ents[i]].After(mtime[ents[j]]) })
	for _, p := range ents[kernelCacheKeep:] {
		os.Remove(p)
	}
}
