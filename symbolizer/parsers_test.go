package symbolizer

import (
	"bytes"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"testing/iotest"
)

func readFixture(t testing.TB, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", name))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestParseKallsyms(t *testing.T) {
	kt, err := parseKallsyms(bytes.NewReader(readFixture(t, "kallsyms")))
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		addr      uint64
		name, mod string
		ok        bool
	}{
		{0xffffffff81000010, "_text", kernelModule, true}, // alias of _stext: the shorter name
		{0xffffffff81001000, "do_one_initcall", kernelModule, true},
		{0xffffffff810011ff, "do_one_initcall", kernelModule, true},
		{0xffffffff81001234, "trace_initcall_start", kernelModule, true},
		{0xffffffff81003004, "weak_func", kernelModule, true},
		{0xffffffffc0001404, "ext4_file_read_iter", "[ext4]", true},
		{0xffffffffc0200001, "nf_hook_slow", "[nf_tables]", true},
		{0xffffffff80000000, "", "", false},
	}
	for _, tt := range tests {
		name, mod, ok := kt.lookup(tt.addr)
		if name != tt.name || mod != tt.mod || ok != tt.ok {
			t.Errorf("lookup(%#x) = %q %q %v, want %q %q %v", tt.addr, name, mod, ok, tt.name, tt.mod, tt.ok)
		}
	}
	if kt.syms.len() != 8 {
		t.Errorf("kept %d text symbols, want 8 (data, absolute and bad lines dropped, one duplicate address)", kt.syms.len())
	}
	if _, err := parseKallsyms(strings.NewReader("nothing here\n")); err == nil {
		t.Error("no error for input without symbols")
	}
}

func TestKernelStatusRestricted(t *testing.T) {
	root := t.TempDir()
	if err := os.WriteFile(filepath.Join(root, "kallsyms"), readFixture(t, "kallsyms-restricted"), 0o644); err != nil {
		t.Fatal(err)
	}
	os.MkdirAll(filepath.Join(root, "sys/kernel"), 0o755)
	os.WriteFile(filepath.Join(root, "sys/kernel/kptr_restrict"), []byte("2\n"), 0o644)
	s := New(Options{ProcRoot: root})
	ok, reason := s.KernelStatus()
	if ok || !strings.Contains(reason, "kptr_restrict=2") {
		t.Errorf("KernelStatus = %v %q, want false naming kptr_restrict=2", ok, reason)
	}
	if fr := s.Kernel(0xffffffff81001010, false); fr.Name != "" || !fr.Kernel || fr.Module != kernelModule {
		t.Errorf("restricted kernel frame %+v, want no name", fr)
	}

	s = New(Options{ProcRoot: filepath.Join(root, "missing")})
	if ok, reason := s.KernelStatus(); ok || !strings.Contains(reason, "kallsyms") {
		t.Errorf("missing kallsyms: %v %q", ok, reason)
	}
}

func TestKernelFixture(t *testing.T) {
	root := t.TempDir()
	os.WriteFile(filepath.Join(root, "kallsyms"), readFixture(t, "kallsyms"), 0o644)
	s := New(Options{ProcRoot: root})
	if ok, reason := s.KernelStatus(); !ok {
		t.Fatalf("KernelStatus: %s", reason)
	}
	// A return address right after a call at the end of do_one_initcall
	// belongs to the call, not to the next function.
	if fr := s.Kernel(0xffffffff81001200, true); fr.Name != "do_one_initcall" {
		t.Errorf("return address: %q", fr.Name)
	}
	if fr := s.Kernel(0xffffffff81001200, false); fr.Name != "trace_initcall_start" {
		t.Errorf("plain address: %q", fr.Name)
	}
	if fr := s.Kernel(0xffffffffc0001010, false); fr.Name != "ext4_readdir" || fr.Module != "[ext4]" || fr.Offset != 0xffffffffc0001010 {
		t.Errorf("module frame %+v", fr)
	}

	// A module loaded after kallsyms was read: not named after the last
	// symbol of another module, and found once kallsyms is read again.
	late := uint64(0xffffffffc0400010)
	if fr := s.Kernel(late, false); fr.Name != "" {
		t.Errorf("address past every module named %q", fr.Name)
	}
	old := kernelReload
	kernelReload = 0
	t.Cleanup(func() { kernelReload = old })
	more := append(readFixture(t, "kallsyms"), "ffffffffc0400000 t vhost_worker\t[vhost]\n"...)
	os.WriteFile(filepath.Join(root, "kallsyms"), more, 0o644)
	if fr := s.Kernel(late, false); fr.Name != "vhost_worker" || fr.Module != "[vhost]" {
		t.Errorf("after reload: %+v", fr)
	}
}

// The host's own kallsyms, when readable, names a symbol found independently.
func TestKernelHost(t *testing.T) {
	b, err := os.ReadFile("/proc/kallsyms")
	if err != nil {
		t.Skipf("cannot read /proc/kallsyms: %v", err)
	}
	s := New(Options{})
	if ok, reason := s.KernelStatus(); !ok {
		t.Skipf("kernel symbols unusable here: %s", reason)
	}
	checked := 0
	for _, line := range strings.Split(string(b), "\n") {
		f := strings.Fields(line)
		if len(f) != 3 || f[1] != "T" || !strings.HasPrefix(f[2], "do_sys_") {
			continue
		}
		addr, ok := parseHex([]byte(f[0]))
		if !ok {
			continue
		}
		fr := s.Kernel(addr, false)
		// Aliases share an address; any of them is right but it must be a
		// text symbol at exactly this address.
		if fr.Name == "" || !strings.Contains(string(b), f[0]+" T "+fr.Name+"\n") && !strings.Contains(string(b), f[0]+" t "+fr.Name+"\n") {
			t.Errorf("%s at %s: got %q", f[2], f[0], fr.Name)
		}
		checked++
	}
	if checked == 0 {
		t.Skip("no do_sys_* symbols in kallsyms")
	}
}

func TestParseMaps(t *testing.T) {
	maps, err := parseMaps(bytes.NewReader(readFixture(t, "maps")))
	if err != nil {
		t.Fatal(err)
	}
	want := []struct {
		start   uint64
		perms   string
		offset  uint64
		inode   uint64
		path    string
		deleted bool
	}{
		{0x55d0c0a00000, "r--p", 0, 1311121, "/usr/bin/app", false},
		{0x55d0c0a01000, "r-xp", 0x1000, 1311121, "/usr/bin/app", false},
		{0x55d0c1c4f000, "rw-p", 0, 0, "[heap]", false},
		{0x7f3a8c000000, "rw-p", 0, 0, "", false},
		{0x7f3a8e828000, "r-xp", 0x28000, 2622019, "/usr/lib/x86_64-linux-gnu/libc.so.6", false},
		{0x7f3a8ea00000, "r-xp", 0, 99, "/memfd:jit", true},
		{0x7f3a8eb00000, "r-xp", 0, 4242, "/tmp/with space/lib x.so", true},
		{0x7ffd1b5f8000, "r-xp", 0, 0, "[vdso]", false},
		{0xffffffffff600000, "--xp", 0, 0, "[vsyscall]", false},
	}
	if len(maps) != len(want) {
		t.Fatalf("got %d mappings, want %d: %+v", len(maps), len(want), maps)
	}
	for i, w := range want {
		m := maps[i]
		if m.start != w.start || m.perms != w.perms || m.offset != w.offset || m.inode != w.inode || m.path != w.path || m.deleted != w.deleted {
			t.Errorf("mapping %d = %+v, want %+v", i, m, w)
		}
	}
	if maps[4].devMajor != 0xfd || maps[4].devMinor != 0 || !maps[4].exec() || maps[0].exec() {
		t.Errorf("device or perms wrong: %+v", maps[4])
	}
}

func TestParseStatus(t *testing.T) {
	st, err := parseStatus(bytes.NewReader(readFixture(t, "status")))
	if err != nil {
		t.Fatal(err)
	}
	if st.name != "node" || st.tgid != 4242 || st.uid != 1000 || st.euid != 1001 || st.nspid != 17 {
		t.Errorf("status = %+v", st)
	}
	if _, err := parseStatus(strings.NewReader("garbage\n")); err == nil {
		t.Error("no error for garbage")
	}
}

func TestParsePerfMap(t *testing.T) {
	pm := parsePerfMap(bytes.NewReader(readFixture(t, "perf-17.map")))
	tests := []struct {
		addr uint64
		name string
	}{
		{0x7f00aa000000, "LazyCompile:*fib /app/fib.js:3"},
		{0x7f00aa00003f, "LazyCompile:*fib /app/fib.js:3"},
		{0x7f00aa000040, ""},
		{0x7f00aa000150, "Function:~main /app/main.js:1"},
		{0x7f00aa000205, "second (regenerated)"},
		{0x7f00aa000300, ""},
		{0x7f00aa000400, ""},
		{0x7f00aa000505, ""},
	}
	for _, tt := range tests {
		got := ""
		if i, ok := pm.syms.lookup(tt.addr); ok {
			got = pm.syms.name(i)
		}
		if got != tt.name {
			t.Errorf("lookup(%#x) = %q, want %q", tt.addr, got, tt.name)
		}
	}
	long := "7f00 10 " + strings.Repeat("x", 100000) + "\n7f20 10 after\n"
	pm = parsePerfMap(strings.NewReader(long))
	if i, ok := pm.syms.lookup(0x7f05); !ok || len(pm.syms.name(i)) != perfMapMaxName {
		t.Errorf("long name not cut to %d bytes", perfMapMaxName)
	}
	if i, ok := pm.syms.lookup(0x7f25); !ok || pm.syms.name(i) != "after" {
		t.Error("line after a long line lost")
	}
}

func FuzzKallsyms(f *testing.F) {
	f.Add(readFixture(f, "kallsyms"))
	f.Add(readFixture(f, "kallsyms-restricted"))
	f.Fuzz(func(t *testing.T, data []byte) {
		kt, err := parseKallsyms(bytes.NewReader(data))
		if err != nil {
			return
		}
		for _, a := range []uint64{0, 1 << 63, ^uint64(0)} {
			kt.lookup(a)
		}
	})
}

func FuzzMaps(f *testing.F) {
	f.Add(readFixture(f, "maps"))
	if b, err := os.ReadFile("/proc/self/maps"); err == nil {
		f.Add(b)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		maps, _ := parseMaps(bytes.NewReader(data))
		for _, m := range maps {
			if m.end <= m.start {
				t.Fatalf("bad range %+v", m)
			}
		}
	})
}

func FuzzStatus(f *testing.F) {
	f.Add(readFixture(f, "status"))
	f.Fuzz(func(t *testing.T, data []byte) {
		_, _ = parseStatus(bytes.NewReader(data))
	})
}

func FuzzPerfMap(f *testing.F) {
	f.Add(readFixture(f, "perf-17.map"))
	f.Fuzz(func(t *testing.T, data []byte) {
		pm := parsePerfMap(bytes.NewReader(data))
		for i := 0; i < pm.syms.len(); i++ {
			if n := pm.syms.name(i); len(n) == 0 || len(n) > perfMapMaxName {
				t.Fatalf("bad name %q", n)
			}
		}
	})
}

// kallsymsReference is parseKallsyms written plainly (fields, strconv, a
// stable sort): TestKallsymsMatchesReference holds the one-pass parser to
// it.
func kallsymsReference(t *testing.T, data []byte) *kernelTable {
	t.Helper()
	var syms []symbol
	kt := &kernelTable{modNames: []string{kernelModule}, zero: true}
	for _, line := range strings.Split(string(data), "\n") {
		line = strings.TrimSuffix(line, "\r")
		addrS, rest, ok := strings.Cut(line, " ")
		if !ok || len(rest) < 3 || rest[1] != ' ' {
			continue
		}
		addr, err := strconv.ParseUint(addrS, 16, 64)
		if err != nil {
			continue
		}
		bind := map[byte]uint8{'T': 2, 'W': 1, 'w': 1, 't': 0}
		b, ok := bind[rest[0]]
		if !ok {
			continue
		}
		name, mod, _ := strings.Cut(rest[2:], "\t")
		mod = strings.TrimSpace(mod)
		if name == "" || len(name) > 512 {
			continue
		}
		if addr != 0 {
			kt.zero = false
		}
		m := slices.Index(kt.modNames, mod)
		if mod == "" {
			m = 0
		} else if m < 0 {
			m = len(kt.modNames)
			kt.modNames = append(kt.modNames, mod)
		}
		syms = append(syms, symbol{addr: addr, name: []byte(name), bind: b, mod: uint16(m)})
	}
	syms = uniqueSymbols(syms)
	kt.modules = make([]uint16, len(syms))
	for i := range syms {
		kt.modules[i] = syms[i].mod
		if i+1 == len(syms) || syms[i+1].mod != syms[i].mod {
			syms[i].size = lastSymbolSpan
		}
	}
	kt.syms = packSymbols(syms, true)
	return kt
}

// The one-pass kallsyms parser keeps what a plain parse keeps, symbol for
// symbol (address, name among aliases, module, the last one's bound): on
// the host's kallsyms, and on a file whose modules are out of address order
// with aliases across them, CRLF ends and bad lines.
func TestKallsymsMatchesReference(t *testing.T) {
	inputs := map[string][]byte{"fixture": readFixture(t, "kallsyms")}
	if b, err := os.ReadFile("/proc/kallsyms"); err == nil && len(b) > 0 {
		inputs["host"] = b
		// Its second half first, the last tenth reversed: sorted runs to
		// sort and merge at the host's scale.
		lines := strings.SplitAfter(strings.TrimSuffix(string(b), "\n")+"\n", "\n")
		lines = append(lines[len(lines)/2:], lines[:len(lines)/2]...)
		slices.Reverse(lines[len(lines)*9/10:])
		inputs["host reordered"] = []byte(strings.Join(lines, ""))
	}
	var mixed strings.Builder
	mixed.WriteString("ffffffffc0002000 t mod_b_second\t[b]\r\nffffffffc0001000 t mod_b_first\t[b]\n")
	mixed.WriteString("ffffffff81000100 T core_late\nffffffff81000000 t _core_alias\nffffffff81000000 t core_alias\n")
	mixed.WriteString("ffffffffc0000000 W mod_a\t[a]\nFFFFFFFFC0000000 T mod_a_global\t[a]\n")
	mixed.WriteString("ffffffffc0000010 T  \nffffffffc00000 t short_addr\n0ffffffffc0003000 t leading_zero\t[b]\n")
	mixed.WriteString("1ffffffffffffffff t overflow\nffffffffc0004000 d data\t[b]\nffffffffc0005000 t no_newline\t[c]")
	inputs["mixed"] = []byte(mixed.String())
	// A line longer than a read, between two symbols.
	inputs["long line"] = []byte("ffffffff81000000 T before\nffffffff81000100 t " + strings.Repeat("x", 3<<20) + "\nffffffff81000200 t after\n")
	for name, data := range inputs {
		t.Run(name, func(t *testing.T) {
			var r io.Reader = bytes.NewReader(data)
			if len(data) < 1<<10 {
				r = iotest.OneByteReader(r) // lines split across reads
			}
			got, err := parseKallsyms(r)
			if err != nil {
				t.Fatal(err)
			}
			want := kallsymsReference(t, data)
			if got.zero != want.zero || !slices.Equal(got.modNames, want.modNames) {
				t.Errorf("zero %v modules %q, want %v %q", got.zero, got.modNames, want.zero, want.modNames)
			}
			if got.syms.len() != want.syms.len() {
				t.Fatalf("%d symbols, want %d", got.syms.len(), want.syms.len())
			}
			for i := range want.syms.len() {
				if got.syms.addrs[i] != want.syms.addrs[i] || got.syms.sizes[i] != want.syms.sizes[i] ||
					got.syms.name(i) != want.syms.name(i) || got.modules[i] != want.modules[i] {
					t.Fatalf("symbol %d: %#x %d %q module %d, want %#x %d %q module %d", i,
						got.syms.addrs[i], got.syms.sizes[i], got.syms.name(i), got.modules[i],
						want.syms.addrs[i], want.syms.sizes[i], want.syms.name(i), want.modules[i])
				}
			}
		})
	}
}
