package symbolizer

import (
	"bytes"
	"os"
	"testing"
)

// TestSymbolNamesInPlace: a name that is a NUL-terminated string of a
// source stays there, one cut short of its NUL (a version suffix) or from
// elsewhere is copied, and every name reads back as it was given.
func TestSymbolNamesInPlace(t *testing.T) {
	strtab := []byte("\x00memcpy\x00clock_nanosleep@GLIBC_2.2.5\x00_ZN4node5StartEv\x00")
	dynstr := []byte("\x00open\x00")
	at := func(src []byte, name string) []byte {
		i := bytes.Index(src, []byte(name))
		return src[i : i+len(name) : i+len(name)]
	}
	tests := []struct {
		name    string
		syms    []symbol
		srcs    [][]byte
		inPlace []bool // per symbol, by address
	}{
		{"in the string tables", []symbol{
			{addr: 0x10, name: at(strtab, "memcpy")},
			{addr: 0x20, name: at(strtab, "_ZN4node5StartEv")},
			{addr: 0x30, name: at(dynstr, "open")},
		}, [][]byte{strtab, dynstr}, []bool{true, true, true}},
		{"cut at a version", []symbol{
			{addr: 0x10, name: at(strtab, "clock_nanosleep")},
			{addr: 0x20, name: at(strtab, "memcpy")},
		}, [][]byte{strtab}, []bool{false, true}},
		{"made elsewhere", []symbol{
			{addr: 0x10, name: []byte("memcpy@plt")},
			{addr: 0x20, name: at(strtab, "memcpy")},
		}, [][]byte{strtab}, []bool{false, true}},
		{"no sources", []symbol{
			{addr: 0x10, name: at(strtab, "memcpy")},
		}, nil, []bool{false}},
		{"a suffix of a name", []symbol{
			{addr: 0x10, name: at(strtab, "cpy")},
		}, [][]byte{strtab}, []bool{true}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			tab := newSymTable(tc.syms, true, tc.srcs...)
			plain := newSymTable(tc.syms, true)
			copied := 0
			for i, sym := range tc.syms {
				j, ok := tab.lookup(sym.addr)
				if !ok || tab.addrs[j] != sym.addr {
					t.Fatalf("%#x not found", sym.addr)
				}
				if got := tab.name(j); got != string(sym.name) {
					t.Errorf("%#x: name %q, want %q", sym.addr, got, sym.name)
				}
				if got := plain.name(j); got != string(sym.name) {
					t.Errorf("%#x: name %q without sources, want %q", sym.addr, got, sym.name)
				}
				if inPlace := tab.srcs != nil && tab.names[j]>>28 != 0; inPlace != tc.inPlace[i] {
					t.Errorf("%#x (%s): in place %v, want %v", sym.addr, sym.name, inPlace, tc.inPlace[i])
				}
				if !tc.inPlace[i] {
					copied += len(sym.name) + 1
				}
			}
			if len(tab.blob) != copied {
				t.Errorf("blob of %d bytes, want the %d of the copied names", len(tab.blob), copied)
			}
		})
	}
}

// TestModuleNamesMapped: a module loaded from its file (mapped, names in
// its string tables) names every symbol as one loaded from its bytes, and
// holds less heap.
func TestModuleNamesMapped(t *testing.T) {
	dir := t.TempDir()
	for _, tc := range []struct{ name, src string }{
		{"c", cFixture},
		{"c++", "namespace node { int Start() { return 1; } }\nint main() { return node::Start(); }\n"},
		{"libc", ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			path := libcPath
			if tc.src != "" {
				path = buildC(t, dir, "names", tc.src)
			}
			data, err := os.ReadFile(path)
			if err != nil {
				t.Skip(err)
			}
			f, err := os.Open(path)
			if err != nil {
				t.Fatal(err)
			}
			defer f.Close()
			s := New(Options{DebuginfodURLs: []string{}})
			defer s.Close()
			mapped := s.loadModule(f, debugLocator{path: path})
			read := s.loadModule(bytes.NewReader(data), debugLocator{path: path})
			if mapped.err != nil || read.err != nil {
				t.Fatalf("loading: %v, %v", mapped.err, read.err)
			}
			if mapped.table.len() != read.table.len() || mapped.table.len() == 0 {
				t.Fatalf("%d symbols mapped, %d read", mapped.table.len(), read.table.len())
			}
			for i := range read.table.len() {
				if a, b := mapped.table.name(i), read.table.name(i); a != b || mapped.table.addrs[i] != read.table.addrs[i] {
					t.Fatalf("symbol %d: %#x %q mapped, %#x %q read", i, mapped.table.addrs[i], a, read.table.addrs[i], b)
				}
			}
			if mapped.table.srcs == nil || len(mapped.mappings) == 0 {
				t.Fatal("the mapped module's names are not in place")
			}
			// (libc's names come from its debug file, mapped for both.)
			if mb, rb := mapped.table.bytes(), read.table.bytes(); mb >= rb && read.table.srcs == nil {
				t.Errorf("mapped table %d bytes, read %d", mb, rb)
			}
			t.Logf("%d symbols; table %d bytes mapped, %d read", read.table.len(), mapped.table.bytes(), read.table.bytes())
		})
	}
}

// TestModuleRefShared: what the unwinders need of a file is made once for
// every process (and snapshot) mapping it, not per mapping.
func TestModuleRefShared(t *testing.T) {
	s := New(Options{DebuginfodURLs: []string{}})
	defer s.Close()
	var refs []*moduleRef
	for range 2 {
		p, err := s.Snapshot(os.Getpid())
		if err != nil {
			t.Fatal(err)
		}
		defer p.Close()
		exe, _ := os.Executable()
		n := 0
		for _, m := range p.mappings() {
			if m.path != exe || m.file == nil {
				continue
			}
			mm := m
			refs = append(refs, p.ref(&mm))
			n++
		}
		if n < 1 {
			t.Fatalf("no mapping of %s", exe)
		}
	}
	for i, r := range refs {
		if r != refs[0] || r.failed || len(r.loads) == 0 {
			t.Fatalf("ref %d: %p %+v, want the one shared %p", i, r, r, refs[0])
		}
	}
	if key, _, open, ok := (*Process)(nil).ModuleFor(0); ok || key != "" || open != nil {
		t.Fatal("a nil snapshot has a module")
	}
}
