package symbolizer

import (
	"debug/elf"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// ld.so's entry points are untyped, unsized assembly labels: they are named
// _start and _dl_start_user, not ld-linux-x86-64.so.2+0x1ab77.
func TestLdsoEntryLabels(t *testing.T) {
	dir := t.TempDir()
	fx := start(t, buildC(t, dir, "fixture", cFixture))
	s := New(Options{DebuginfodURLs: []string{}})
	defer s.Close()
	p, err := s.Snapshot(fx.pid())
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	ldso := ""
	for _, m := range p.mappings() {
		if strings.HasPrefix(filepath.Base(m.path), "ld-linux") {
			ldso = m.path
		}
	}
	if ldso == "" {
		t.Skip("the fixture maps no ld-linux")
	}
	id := fileBuildID(t, ldso)
	df, err := elf.Open(filepath.Join("/usr/lib/debug/.build-id", id[:2], id[2:]+".debug"))
	if err != nil {
		t.Skipf("ld.so's debug symbols are not installed (libc6-dbg): %v", err)
	}
	syms, err := df.Symbols()
	df.Close()
	if err != nil {
		t.Fatal(err)
	}
	found := 0
	for _, sym := range syms {
		if sym.Name != "_start" && sym.Name != "_dl_start_user" {
			continue
		}
		if elf.ST_TYPE(sym.Info) != elf.STT_NOTYPE || sym.Size != 0 {
			t.Logf("%s is typed or sized here: %+v", sym.Name, sym)
		}
		found++
		// A return address inside the label's code, as on a stack.
		addr := runtimeAddr(t, fx.pid(), ldso, sym.Value+3)
		fr := s.User(p, addr, false)[0]
		if fr.Name != sym.Name || fr.Module != ldso {
			t.Errorf("%s+3: got %q in %s", sym.Name, fr.Name, fr.Module)
		}
	}
	if found != 2 {
		t.Skipf("ld.so's debug symbols have %d of _start and _dl_start_user", found)
	}
	// A sized function right after them is still its own name.
	for _, sym := range syms {
		if sym.Name == "_dl_start" && sym.Size > 8 {
			if fr := s.User(p, runtimeAddr(t, fx.pid(), ldso, sym.Value+4), false)[0]; fr.Name != "_dl_start" {
				t.Errorf("_dl_start+4: got %q", fr.Name)
			}
		}
	}
}

// Rust's legacy mangling keeps an identifier's leading underscores:
// std's __rust_begin_short_backtrace is named as c++filt names it.
func TestRustLegacyUnderscores(t *testing.T) {
	rustc := needTool(t, "rustc")
	dir := t.TempDir()
	src := writeFile(t, filepath.Join(dir, "main.rs"), `
use std::io::Read;
fn main() {
    println!("ready");
    let mut s = Vec::new();
    std::io::stdin().read_to_end(&mut s).unwrap();
}
`)
	bin := filepath.Join(dir, "fixture")
	if out, err := exec.Command(rustc, "-C", "symbol-mangling-version=legacy", "-Z", "unstable-options", "-o", bin, src).CombinedOutput(); err != nil {
		// Stable rustc mangles legacy by default and refuses -Z.
		if out2, err2 := exec.Command(rustc, "-o", bin, src).CombinedOutput(); err2 != nil {
			t.Fatalf("rustc: %v\n%s\n%s", err2, out, out2)
		}
	}
	f, err := elf.Open(bin)
	if err != nil {
		t.Fatal(err)
	}
	syms, err := f.Symbols()
	f.Close()
	if err != nil {
		t.Fatal(err)
	}
	var target elf.Symbol
	for _, sym := range syms {
		if strings.HasPrefix(sym.Name, "_ZN") && strings.Contains(sym.Name, "28__rust_begin_short_backtrace17h") && sym.Size > 2 {
			target = sym
			break
		}
	}
	if target.Name == "" {
		t.Skip("no legacy-mangled __rust_begin_short_backtrace in the binary")
	}
	fx := start(t, bin)
	s := New(Options{DebuginfodURLs: []string{}})
	defer s.Close()
	p, err := s.Snapshot(fx.pid())
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	// The executable mapping of the file offset (rustc's layout puts the
	// start of .text on the same page as the read-only segment's end).
	addr := execAddr(t, p, bin, target.Value+1)
	fr := s.User(p, addr, false)[0]
	if !strings.HasSuffix(fr.Name, "::__rust_begin_short_backtrace") || fr.SystemName != target.Name {
		t.Errorf("got %q (%q), want ...::__rust_begin_short_backtrace", fr.Name, fr.SystemName)
	}
	if out, err := exec.Command("c++filt", target.Name).Output(); err == nil {
		if want := strings.TrimSpace(string(out)); !strings.HasPrefix(want, fr.Name) {
			t.Errorf("c++filt says %q, scorch %q", want, fr.Name)
		}
	}
}

// execAddr converts an ELF address of path to the run-time address in the
// process's executable mapping of it.
func execAddr(t *testing.T, p *Process, path string, vaddr uint64) uint64 {
	t.Helper()
	f, err := elf.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	for _, pr := range f.Progs {
		if pr.Type != elf.PT_LOAD || pr.Flags&elf.PF_X == 0 || vaddr < pr.Vaddr || vaddr >= pr.Vaddr+pr.Filesz {
			continue
		}
		off := vaddr - pr.Vaddr + pr.Off
		for _, m := range p.mappings() {
			if m.path == path && off >= m.offset && off < m.offset+m.end-m.start {
				return m.start + off - m.offset
			}
		}
	}
	t.Fatalf("%#x of %s is not in an executable mapping", vaddr, path)
	return 0
}

// inlineC calls probe from a function inlined into outer: probe's return
// address is inside the inlined body.
const inlineC = `#include <stdio.h>
#include <unistd.h>
void *ra;
__attribute__((noinline)) void probe(void) { ra = __builtin_return_address(0); __asm__ volatile(""); }
static inline __attribute__((always_inline)) int inner(int x) {
	probe(); /* PROBE */
	return x * 2;
}
__attribute__((noinline)) int outer(int x) {
	return inner(x) + 1; /* CALL */
}
int main(void) {
	outer(3);
	printf("ra %p\nready\n", ra);
	fflush(stdout);
	char c;
	while (read(0, &c, 1) > 0) {}
	return 0;
}
`

// Native inlined frames come from DWARF: the inlined function at the line
// of the sampled address, its caller at the line of the call; in the
// binary, in a debuglink file, in a debug file found by build ID, and in
// split DWARF's .dwo (where the compiler left it, or moved next to the
// binary) or .dwp package.
func TestNativeInlinedFrames(t *testing.T) {
	lineOf := func(marker string) int {
		for i, l := range strings.Split(inlineC, "\n") {
			if strings.Contains(l, marker) {
				return i + 1
			}
		}
		t.Fatalf("no %s", marker)
		return 0
	}
	// splitBuild compiles in dir (the .dwo lands there, DW_AT_comp_dir is
	// dir) and returns the binary.
	splitBuild := func(t *testing.T, dir string) string {
		src := writeFile(t, filepath.Join(dir, "inline.c"), inlineC)
		bin := filepath.Join(dir, "inline")
		cmd := exec.Command("gcc", "-O2", "-g", "-gsplit-dwarf", "-fno-omit-frame-pointer", "-Wl,--build-id", "-o", bin, src)
		cmd.Dir = dir
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("gcc -gsplit-dwarf: %v\n%s", err, out)
		}
		dwos, _ := filepath.Glob(filepath.Join(dir, "*.dwo"))
		if len(dwos) == 0 {
			t.Skip("gcc -gsplit-dwarf wrote no .dwo")
		}
		return bin
	}
	for _, tc := range []struct {
		name  string
		build func(t *testing.T, dir, debugDir string) string
	}{
		{"in the binary", func(t *testing.T, dir, _ string) string { return buildC(t, dir, "inline", inlineC, "-g", "-O2") }},
		{"in the debuglink file", func(t *testing.T, dir, _ string) string {
			bin := buildC(t, dir, "inline", inlineC, "-g", "-O2")
			dbg := stripWithDebug(t, bin)
			run(t, "objcopy", "--add-gnu-debuglink="+dbg, bin)
			return bin
		}},
		{"in the build-id debug file", func(t *testing.T, dir, debugDir string) string {
			bin := buildC(t, dir, "inline", inlineC, "-g", "-O2")
			id := fileBuildID(t, bin)
			dbg := stripWithDebug(t, bin)
			dst := filepath.Join(debugDir, ".build-id", id[:2], id[2:]+".debug")
			if err := os.MkdirAll(filepath.Dir(dst), 0o755); err != nil {
				t.Fatal(err)
			}
			if err := os.Rename(dbg, dst); err != nil {
				t.Fatal(err)
			}
			return bin
		}},
		{"in the split DWARF .dwo", func(t *testing.T, dir, _ string) string { return splitBuild(t, dir) }},
		{"in the split DWARF .dwo next to the binary", func(t *testing.T, dir, _ string) string {
			built := filepath.Join(dir, "build")
			if err := os.Mkdir(built, 0o755); err != nil {
				t.Fatal(err)
			}
			bin := splitBuild(t, built)
			moved := filepath.Join(dir, "installed")
			if err := os.Rename(built, moved); err != nil { // the compile directory is gone
				t.Fatal(err)
			}
			return filepath.Join(moved, filepath.Base(bin))
		}},
		{"in a .dwp package next to the binary", func(t *testing.T, dir, _ string) string {
			bin := splitBuild(t, dir)
			dwp := ""
			for _, tool := range []string{"llvm-dwp", "llvm-dwp-14", "llvm-dwp-15"} {
				if p, err := exec.LookPath(tool); err == nil {
					dwp = p
					break
				}
			}
			if dwp == "" {
				t.Skip("no llvm-dwp (Debian package llvm)")
			}
			run(t, dwp, "-e", bin, "-o", bin+".dwp")
			dwos, _ := filepath.Glob(filepath.Join(dir, "*.dwo"))
			for _, f := range dwos {
				os.Remove(f) // only the package is left
			}
			return bin
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			needTool(t, "gcc")
			dir, debugDir := t.TempDir(), t.TempDir()
			bin := tc.build(t, dir, debugDir)
			fx := start(t, bin)
			s := New(Options{Lines: true, DebugDirs: []string{debugDir}, DebuginfodURLs: []string{}})
			defer s.Close()
			p, err := s.Snapshot(fx.pid())
			if err != nil {
				t.Fatal(err)
			}
			defer p.Close()
			frames := s.User(p, fx.addrs["ra"], true)
			if len(frames) != 2 {
				t.Fatalf("got %+v, want inner (inlined) then outer", frames)
			}
			in, out := frames[0], frames[1]
			if in.Name != "inner" || !in.Inlined || filepath.Base(in.File) != "inline.c" || in.Line != lineOf("PROBE") {
				t.Errorf("inlined frame %s %s:%d inlined=%v, want inner inline.c:%d", in.Name, in.File, in.Line, in.Inlined, lineOf("PROBE"))
			}
			if out.Name != "outer" || out.Inlined || filepath.Base(out.File) != "inline.c" || out.Line != lineOf("CALL") {
				t.Errorf("physical frame %s %s:%d inlined=%v, want outer inline.c:%d", out.Name, out.File, out.Line, out.Inlined, lineOf("CALL"))
			}
			if in.Offset != out.Offset || in.Module != out.Module {
				t.Errorf("the two frames have different addresses: %+v", frames)
			}
		})
	}
}
