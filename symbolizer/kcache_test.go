package symbolizer

import (
	"bytes"
	"crypto/sha256"
	"encoding/binary"
	"hash/crc32"
	"os"
	"path/filepath"
	"testing"
)

// kernelRoot is a /proc and /sys for the kernel cache: the fixture's
// kallsyms with a BPF program and an ftrace trampoline after the modules,
// ext4 and nf_tables loaded with build IDs.
func kernelRoot(t *testing.T) (proc, sys string) {
	t.Helper()
	root := t.TempDir()
	proc, sys = filepath.Join(root, "proc"), filepath.Join(root, "sys")
	ks := append(readFixture(t, "kallsyms"), "ffffffffa0001000 t bpf_prog_6deef7357e7b4530_sample_cpu\t[bpf]\nffffffffa0002000 t ftrace_trampoline\t[__builtin__ftrace]\n"...)
	write := func(p string, b []byte) {
		t.Helper()
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	write(filepath.Join(proc, "kallsyms"), ks)
	write(filepath.Join(proc, "sys/kernel/random/boot_id"), []byte("a15bfef9-3602-4a7a-9c87-14152f34b904\n"))
	write(filepath.Join(proc, "modules"), []byte("ext4 1003520 2 - Live 0xffffffffc0001000\nnf_tables 303104 0 - Live 0xffffffffc0200000 (E)\n"))
	write(filepath.Join(sys, "kernel/notes"), []byte("\x04\x00\x00\x00\x14\x00\x00\x00\x03\x00\x00\x00GNU\x00kernel-build-id-0001"))
	write(filepath.Join(sys, "module/ext4/notes/.note.gnu.build-id"), []byte("ext4-build-id"))
	write(filepath.Join(sys, "module/nf_tables/notes/.note.gnu.build-id"), []byte("nft-build-id"))
	return proc, sys
}

func TestKernelCache(t *testing.T) {
	proc, sys := kernelRoot(t)
	dir := t.TempDir()
	opts := Options{ProcRoot: proc, SysRoot: sys, KernelCache: dir}
	if ok, reason := New(opts).KernelStatus(); !ok {
		t.Fatalf("KernelStatus: %s", reason)
	}
	files, _ := filepath.Glob(filepath.Join(dir, "*"+kernelCacheSuffix))
	if len(files) != 1 {
		t.Fatalf("cache files %v, want one", files)
	}

	// Without kallsyms, the kernel's and the modules' symbols come from
	// the cache; the BPF program's need kallsyms and stay unnamed.
	ks, _ := os.ReadFile(filepath.Join(proc, "kallsyms"))
	os.Remove(filepath.Join(proc, "kallsyms"))
	s := New(opts)
	if ok, reason := s.KernelStatus(); !ok {
		t.Fatalf("KernelStatus from the cache: %s", reason)
	}
	for addr, want := range map[uint64]string{0xffffffff81001010: "do_one_initcall", 0xffffffff81003010: "weak_func", 0xffffffffc0001010: "ext4_readdir"} {
		if fr := s.Kernel(addr, false); fr.Name != want {
			t.Errorf("cached %#x: %+v, want %s", addr, fr, want)
		}
	}
	if fr := s.Kernel(0xffffffffa0001010, false); fr.Name != "" {
		t.Errorf("BPF address named %q from the cache", fr.Name)
	}
	// Past a module's last symbol the cache does not answer either: a
	// BPF program may sit there. With kallsyms back, it is read.
	os.WriteFile(filepath.Join(proc, "kallsyms"), ks, 0o644)
	s = New(opts)
	s.KernelStatus()
	if ks := s.kernel.Load(); ks.static == nil {
		t.Fatal("the cache was not used")
	}
	if fr := s.Kernel(0xffffffffc0001410, false); fr.Name != "ext4_file_read_iter" || fr.Module != "[ext4]" {
		t.Errorf("module's last symbol: %+v", fr)
	}
	if fr := s.Kernel(0xffffffffa0001010, false); fr.Name != "bpf_prog_6deef7357e7b4530_sample_cpu" || fr.Module != "[bpf]" {
		t.Errorf("BPF address after reading kallsyms: %+v", fr)
	}
	if ks := s.kernel.Load(); ks.static != nil {
		t.Error("kallsyms read, yet the cached table still in use")
	}

	// Another boot, module set or module build is another key: kallsyms
	// (missing now) is read and the cache not used.
	for _, change := range []struct{ file, content string }{
		{filepath.Join(proc, "sys/kernel/random/boot_id"), "0d0e4a3c-0000-4000-8000-000000000001\n"},
		{filepath.Join(proc, "modules"), "ext4 1003520 2 - Live 0xffffffffc0001000\n"},
		{filepath.Join(proc, "modules"), "ext4 1003520 2 - Live 0xffffffffc0001000\nnf_tables 303104 0 - Live 0xffffffffc0300000\n"},
		{filepath.Join(sys, "module/ext4/notes/.note.gnu.build-id"), "ext4-rebuilt"},
		{filepath.Join(sys, "kernel/notes"), "another kernel"},
	} {
		proc2, sys2 := kernelRoot(t)
		rel, _ := filepath.Rel(filepath.Dir(proc), change.file)
		os.WriteFile(filepath.Join(filepath.Dir(proc2), rel), []byte(change.content), 0o644)
		os.Remove(filepath.Join(proc2, "kallsyms"))
		if ok, _ := New(Options{ProcRoot: proc2, SysRoot: sys2, KernelCache: dir}).KernelStatus(); ok {
			t.Errorf("with %s = %q the cache was used", rel, change.content)
		}
	}
}

// A module being loaded or unloaded, or hidden addresses: nothing cached.
func TestKernelCacheNotKept(t *testing.T) {
	for name, modules := range map[string]string{
		"loading": "ext4 1003520 2 - Live 0xffffffffc0001000\nnf_tables 303104 0 - Loading 0xffffffffc0200000\n",
		"hidden":  "ext4 1003520 2 - Live 0x0000000000000000\nnf_tables 303104 0 - Live 0x0000000000000000\n",
		"garbled": "ext4 lots\n",
	} {
		proc, sys := kernelRoot(t)
		os.WriteFile(filepath.Join(proc, "modules"), []byte(modules), 0o644)
		dir := t.TempDir()
		if ok, reason := New(Options{ProcRoot: proc, SysRoot: sys, KernelCache: dir}).KernelStatus(); !ok {
			t.Fatalf("%s: KernelStatus: %s", name, reason)
		}
		if files, _ := filepath.Glob(filepath.Join(dir, "*")); len(files) != 0 {
			t.Errorf("%s: cached %v", name, files)
		}
	}
	proc, sys := kernelRoot(t)
	os.WriteFile(filepath.Join(proc, "kallsyms"), readFixture(t, "kallsyms-restricted"), 0o644)
	dir := t.TempDir()
	New(Options{ProcRoot: proc, SysRoot: sys, KernelCache: dir}).KernelStatus()
	if files, _ := filepath.Glob(filepath.Join(dir, "*")); len(files) != 0 {
		t.Errorf("restricted kallsyms cached: %v", files)
	}
}

func TestParseModules(t *testing.T) {
	mods, err := parseModules([]byte("ext4 1003520 2 mbcache,jbd2, Live 0xffffffffc0a4f000\n\nvirtio_net 65536 0 - Unloading 0xffffffffc0100000 (OE)\n"))
	if err != nil {
		t.Fatal(err)
	}
	if len(mods) != 2 || mods[0].name != "ext4" || mods[0].size != 1003520 || !mods[0].live || mods[0].addr != 0xffffffffc0a4f000 ||
		mods[1].live || mods[1].addr != 0xffffffffc0100000 {
		t.Errorf("parsed %+v", mods)
	}
	for _, bad := range []string{"ext4 1 2 - Live\n", "ext4 x 2 - Live 0x1\n", "ext4 1 2 - Live ffff\n", "ext4 1 2 - Live 0xfffz\n"} {
		if _, err := parseModules([]byte(bad)); err == nil {
			t.Errorf("%q: no error", bad)
		}
	}
}

// A cache file round-trips, and one with any byte changed or cut short
// is refused.
func TestKernelCacheFile(t *testing.T) {
	kt, err := parseKallsyms(bytes.NewReader(readFixture(t, "kallsyms")))
	if err != nil {
		t.Fatal(err)
	}
	sk := staticPart(kt, map[string]bool{"[ext4]": true})
	sum := sha256.Sum256([]byte("key"))
	b := encodeKernelCache(sum, sk.table)
	got, err := parseKernelCache(b, sum)
	if err != nil {
		t.Fatal(err)
	}
	if got.table.syms.len() != sk.table.syms.len() || len(got.spans) != 2 {
		t.Errorf("%d symbols, %d spans; want %d, 2", got.table.syms.len(), len(got.spans), sk.table.syms.len())
	}
	if name, mod, ok := got.table.lookup(0xffffffffc0001010); !ok || name != "ext4_readdir" || mod != "[ext4]" {
		t.Errorf("lookup: %q %q %v", name, mod, ok)
	}
	if got.covers(0xffffffffc0200010) {
		t.Error("nf_tables, not in the module set, is covered")
	}
	if _, err := parseKernelCache(b, sha256.Sum256([]byte("other"))); err == nil {
		t.Error("another key accepted")
	}
	for i := range b {
		c := bytes.Clone(b)
		c[i] ^= 0x40
		if _, err := parseKernelCache(c, sum); err == nil {
			t.Errorf("byte %d changed: accepted", i)
		}
	}
	if _, err := parseKernelCache(b[:len(b)-1], sum); err == nil {
		t.Error("truncated file accepted")
	}
}

// A span never crosses a wide gap: an outlying kernel symbol above the
// module area does not make the BPF programs below it the kernel's.
func TestKernelCacheSpans(t *testing.T) {
	kt, err := parseKallsyms(bytes.NewReader([]byte("ffffffff81000000 T _stext\nffffffff81001000 T do_one_initcall\nffffffff81002000 T _etext\n" +
		"ffffffffc0001000 t ext4_readdir\t[ext4]\nffffffffc0001400 T ext4_file_read_iter\t[ext4]\n" +
		"ffffffffc0100000 t bpf_prog_1_x\t[bpf]\nffffffffff600000 T __vsyscall_page\nffffffffff600800 T __vsyscall_end\n")))
	if err != nil {
		t.Fatal(err)
	}
	sk := staticPart(kt, map[string]bool{"[ext4]": true})
	for addr, want := range map[uint64]bool{
		0xffffffff81000010: true, 0xffffffff81001fff: true, 0xffffffff81002000: false, // the last symbol's end is unknown
		0xffffffffc0001010: true, 0xffffffffc0100010: false, 0xffffffffff600010: true, 0xffffffff80000000: false,
	} {
		if got := sk.covers(addr); got != want {
			t.Errorf("covers(%#x) = %v, want %v (spans %x)", addr, got, want, sk.spans)
		}
	}
}

func FuzzKernelCache(f *testing.F) {
	sum := sha256.Sum256([]byte("key"))
	if kt, err := parseKallsyms(bytes.NewReader(readFixture(f, "kallsyms"))); err == nil {
		f.Add(encodeKernelCache(sum, staticPart(kt, map[string]bool{"[ext4]": true, "[nf_tables]": true}).table))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		// Fuzzed payloads with a valid checksum reach the checks after it.
		if len(data) >= len(kernelCacheMagic)+len(sum)+4 {
			copy(data, kernelCacheMagic)
			copy(data[len(kernelCacheMagic):], sum[:])
			p := data[len(kernelCacheMagic)+len(sum)+4:]
			crc := crc32Of(p)
			copy(data[len(kernelCacheMagic)+len(sum):], crc[:])
		}
		sk, err := parseKernelCache(data, sum)
		if err != nil {
			return
		}
		for _, a := range []uint64{0, 0xffffffff81001010, 1 << 63, ^uint64(0)} {
			sk.covers(a)
			sk.table.lookup(a)
		}
		for i := range sk.table.syms.len() {
			sk.table.syms.name(i)
		}
	})
}

func FuzzModules(f *testing.F) {
	f.Add([]byte("ext4 1003520 2 mbcache,jbd2, Live 0xffffffffc0a4f000\nnf 1 0 - Loading 0x0 (E)\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		mods, err := parseModules(data)
		if err == nil && len(mods) > bytes.Count(data, []byte("\n"))+1 {
			t.Fatalf("%d modules from %d lines", len(mods), bytes.Count(data, []byte("\n"))+1)
		}
	})
}

func crc32Of(p []byte) [4]byte {
	var b [4]byte
	binary.LittleEndian.PutUint32(b[:], crc32.Checksum(p, kernelCacheCRC))
	return b
}
