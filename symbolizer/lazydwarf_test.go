package symbolizer

import (
	"debug/elf"
	"os"
	"path/filepath"
	"slices"
	"testing"
)

// Three units with inlined calls across a header, one of them C++.
const lazyUnitA = `#include "lazy.h"
int sum_a(int n) { int s = 0; for (int i = 0; i < n; i++) s += twice(i) + square(i); return s; }
int main(int argc, char **argv) { return sum_a(argc) + sum_b(argc) + sum_c(argc); }
`

const lazyUnitB = `#include "lazy.h"
static inline __attribute__((always_inline)) int thrice(int x) { return twice(x) + x; }
int sum_b(int n) { int s = 0; for (int i = 0; i < n; i++) s += thrice(i) * square(i + 1); return s; }
`

const lazyUnitC = `#include "lazy.h"
static inline __attribute__((always_inline)) int nested(int x) { return square(twice(x)) - x; }
int sum_c(int n) { int s = 0; for (int i = 0; i < n; i++) s ^= nested(i) + nested(s); return s; }
`

const lazyHeader = `static inline __attribute__((always_inline)) int twice(int x) { return x + x; }
static inline __attribute__((always_inline)) int square(int x) { return x * x; }
int sum_a(int n); int sum_b(int n); int sum_c(int n);
`

// The lazy reading (unit ranges first, a unit's lines and inlined calls
// when an address in it is symbolized) gives the frames the eager reading
// of the whole module gives, at every line-table address of a binary
// built here from several units (in the binary, and in its debug file),
// and of libc when its debug file is installed.
func TestLazyDWARFMatchesEager(t *testing.T) {
	dir := t.TempDir()
	needTool(t, "gcc")
	var srcs []string
	for name, src := range map[string]string{"a.c": lazyUnitA, "b.c": lazyUnitB, "c.c": lazyUnitC, "lazy.h": lazyHeader} {
		p := writeFile(t, filepath.Join(dir, name), src)
		if filepath.Ext(name) == ".c" {
			srcs = append(srcs, p)
		}
	}
	slices.Sort(srcs)
	bin := filepath.Join(dir, "lazy")
	run(t, "gcc", append([]string{"-O2", "-g", "-Wl,--build-id", "-o", bin}, srcs...)...)
	stripped := filepath.Join(dir, "lazy-stripped")
	run(t, "cp", bin, stripped)
	dbg := stripWithDebug(t, stripped)

	// Link-time optimisation: inlined calls refer to functions of other
	// units (DW_FORM_ref_addr), read with every unit.
	lto := filepath.Join(dir, "lazy-lto")
	run(t, "gcc", append([]string{"-O2", "-g", "-flto", "-Wl,--build-id", "-o", lto}, srcs...)...)

	files := []struct{ name, path string }{{"binary", bin}, {"debug file", dbg}, {"lto binary", lto}}
	if id := fileBuildIDOrEmpty(libcPath); len(id) > 2 {
		files = append(files, struct{ name, path string }{"libc debug file", filepath.Join("/usr/lib/debug/.build-id", id[:2], id[2:]+".debug")})
	}
	for _, tc := range files {
		t.Run(tc.name, func(t *testing.T) {
			f, err := os.Open(tc.path)
			if err != nil {
				t.Skipf("%s: %v", tc.path, err)
			}
			defer f.Close()
			ef, err := openELF(f)
			if err != nil {
				t.Fatal(err)
			}
			// The eager reading: every unit into one table.
			d, err := openDWARF(ef)
			if err != nil {
				t.Fatal(err)
			}
			lt, err := readLineTable(d)
			if err != nil {
				t.Fatal(err)
			}
			b := newInlineBuilder()
			if err := b.add(d, nil); err != nil {
				t.Fatal(err)
			}
			it, err := b.finish()
			if err != nil {
				t.Fatal(err)
			}
			s := New(Options{Lines: true, DebugDirs: []string{}, DebuginfodURLs: []string{}, Logger: discardLogger()})
			// Units indexed from .debug_aranges, and from their DIEs and
			// line programs: the same units, the same frames.
			useAranges = false
			full := s.readDWARF(ef, f, debugLocator{label: tc.path})
			useAranges = true
			md := s.readDWARF(ef, f, debugLocator{label: tc.path})
			if md == nil || full == nil {
				t.Fatal("no lazy DWARF")
			}
			if tc.name != "lto binary" && md.fromAranges == 0 {
				t.Errorf("no unit indexed from .debug_aranges: the fixture does not test that path")
			}
			for i := range md.units {
				u := &md.units[i]
				if j := slices.IndexFunc(full.units, func(v dwarfUnit) bool { return v.start == u.start }); j < 0 ||
					full.units[j].end != u.end || full.units[j].off != u.off || full.units[j].refAddr != md.refersAcross(u) {
					t.Fatalf("unit %d %+v not among the units read from DIEs", i, u)
				}
			}
			var funcs [][2]uint64
			syms, _ := ef.Symbols()
			for _, sym := range syms {
				if elf.ST_TYPE(sym.Info) == elf.STT_FUNC && sym.Size > 0 {
					funcs = append(funcs, [2]uint64{sym.Value, sym.Value + sym.Size})
				}
			}
			if len(funcs) == 0 {
				t.Fatal("no function symbols")
			}
			inFunc := func(a uint64) bool {
				return slices.ContainsFunc(funcs, func(r [2]uint64) bool { return r[0] <= a && a < r[1] })
			}
			step := max(1, len(lt.addrs)/20000)
			compared, inlined, padding := 0, 0, 0
			for i := 0; i < len(lt.addrs); i += step {
				for _, a := range []uint64{lt.addrs[i], lt.addrs[i] + 1} {
					fr := Frame{Name: "physical", Module: "m", Offset: a}
					want := expandInlined(fr, a, lt, it)
					if got := full.frames(fr, a); !slices.Equal(got, want) {
						t.Fatalf("%#x: lazy %+v\neager %+v", a, got, want)
					}
					// .debug_aranges leaves out the padding between
					// functions that a line program's last row reaches
					// over: code that never runs, and no function's.
					if got := md.frames(fr, a); !slices.Equal(got, want) {
						if inFunc(a) {
							t.Fatalf("%#x: lazy from .debug_aranges %+v\neager %+v", a, got, want)
						}
						padding++
					}
					compared++
					if len(want) > 1 {
						inlined++
					}
				}
			}
			read := 0
			for _, u := range md.units {
				if u.loaded != nil {
					read++
				}
			}
			t.Logf("%d addresses compared (%d with inlined calls, %d in padding without lines from .debug_aranges), %d of %d units read, %d indexed from .debug_aranges",
				compared, inlined, padding, read, len(md.units), md.fromAranges)
			if across := slices.ContainsFunc(md.units, func(u dwarfUnit) bool { return u.refAddr }); tc.name == "lto binary" && !across {
				t.Errorf("no unit of the LTO binary refers into another: the fixture does not test that path")
			}
			if inlined == 0 {
				t.Errorf("no inlined calls among %d addresses: the fixture does not test them", compared)
			}
		})
	}
	// Symbolizing one address reads its unit only.
	t.Run("one unit read", func(t *testing.T) {
		f, err := os.Open(bin)
		if err != nil {
			t.Fatal(err)
		}
		defer f.Close()
		ef, _ := openELF(f)
		s := New(Options{Lines: true, DebugDirs: []string{}, DebuginfodURLs: []string{}, Logger: discardLogger()})
		md := s.readDWARF(ef, f, debugLocator{label: bin})
		if md == nil || len(md.units) < 3 {
			t.Fatalf("want at least 3 units, got %+v", md)
		}
		before := md.bytes()
		md.frames(Frame{}, md.ranges[0].lo)
		read := 0
		for _, u := range md.units {
			if u.loaded != nil {
				read++
			}
		}
		if read != 1 || md.bytes() <= before || !md.takeGrown() || md.takeGrown() {
			t.Errorf("%d units read, %d bytes charged after (%d before)", read, md.bytes(), before)
		}
	})
}

func fileBuildIDOrEmpty(path string) string {
	f, err := os.Open(path)
	if err != nil {
		return ""
	}
	defer f.Close()
	return fileBuildIDOf(f)
}
