package symbolizer

import (
	"bytes"
	"debug/elf"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// stripWithDebug moves bin's symbols into bin.debug and strips bin.
func stripWithDebug(t *testing.T, bin string) string {
	t.Helper()
	needTool(t, "objcopy")
	dbg := bin + ".debug"
	run(t, "objcopy", "--only-keep-debug", bin, dbg)
	run(t, "objcopy", "--strip-all", bin)
	return dbg
}

func fileBuildID(t *testing.T, path string) string {
	t.Helper()
	f, err := elf.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	id := buildID(f)
	if id == "" {
		t.Fatalf("%s has no build id", path)
	}
	return id
}

// addMiniDebugInfo follows the MiniDebugInfo recipe: the function symbols
// that .dynsym lacks go into an xz-compressed ELF in .gnu_debugdata.
func addMiniDebugInfo(t *testing.T, bin string) {
	t.Helper()
	needTool(t, "xz")
	needTool(t, "nm")
	dir := filepath.Dir(bin)
	out, err := exec.Command("nm", "--format=posix", "--defined-only", bin).Output()
	if err != nil {
		t.Fatal(err)
	}
	var funcs []string
	for _, line := range strings.Split(string(out), "\n") {
		f := strings.Fields(line)
		if len(f) >= 2 && (f[1] == "T" || f[1] == "t") {
			funcs = append(funcs, f[0])
		}
	}
	keep := writeFile(t, filepath.Join(dir, "keep.txt"), strings.Join(funcs, "\n")+"\n")
	mini := filepath.Join(dir, "mini.debug")
	run(t, "objcopy", "--only-keep-debug", bin, mini)
	run(t, "objcopy", "-S", "--remove-section", ".gdb_index", "--remove-section", ".comment", "--keep-symbols="+keep, mini)
	run(t, "xz", "-f", mini)
	run(t, "objcopy", "--strip-all", bin)
	run(t, "objcopy", "--add-section", ".gnu_debugdata="+mini+".xz", bin)
}

func TestNativeFixtures(t *testing.T) {
	names := []string{"alpha_leaf", "beta_middle", "gamma_static"}
	tests := []struct {
		name    string
		flags   []string
		prepare func(t *testing.T, bin, debugDir string)
		source  string
		want    []string // expected names, "" for module+offset
	}{
		{name: "pie", flags: []string{"-fPIE", "-pie"}, source: "symtab", want: names},
		{name: "no-pie", flags: []string{"-fno-pie", "-no-pie"}, source: "symtab", want: names},
		{
			name: "debuglink", flags: []string{"-fPIE", "-pie"}, source: "debuglink", want: names,
			prepare: func(t *testing.T, bin, _ string) {
				dbg := stripWithDebug(t, bin)
				run(t, "objcopy", "--add-gnu-debuglink="+dbg, bin)
			},
		},
		{
			name: "build-id", flags: []string{"-fPIE", "-pie"}, source: "build-id", want: names,
			prepare: func(t *testing.T, bin, debugDir string) {
				id := fileBuildID(t, bin)
				dbg := stripWithDebug(t, bin)
				dst := filepath.Join(debugDir, ".build-id", id[:2], id[2:]+".debug")
				if err := os.MkdirAll(filepath.Dir(dst), 0o755); err != nil {
					t.Fatal(err)
				}
				if err := os.Rename(dbg, dst); err != nil {
					t.Fatal(err)
				}
			},
		},
		{
			name: "minidebuginfo", flags: []string{"-fPIE", "-pie"}, source: "gnu_debugdata", want: names,
			prepare: func(t *testing.T, bin, _ string) { addMiniDebugInfo(t, bin) },
		},
		{
			// Nothing but .dynsym, which has none of these functions: the
			// frames must be module+offset, not a wrong neighbour's name.
			name: "stripped", flags: []string{"-fPIE", "-pie"}, source: "dynsym", want: []string{"", "", ""},
			prepare: func(t *testing.T, bin, _ string) { run(t, "objcopy", "--strip-all", bin) },
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			debugDir := filepath.Join(dir, "debug")
			bin := buildC(t, dir, "fixture", cFixture, tt.flags...)
			if tt.prepare != nil {
				tt.prepare(t, bin, debugDir)
			}
			s := New(Options{DebugDirs: []string{debugDir}, DebuginfodURLs: []string{}})
			defer s.Close()
			fx := start(t, bin)
			p, err := s.Snapshot(fx.pid())
			if err != nil {
				t.Fatal(err)
			}
			defer p.Close()
			for i, name := range names {
				addr := fx.addrs[name]
				if addr == 0 {
					t.Fatalf("fixture did not print %s", name)
				}
				// A return address just past the function's first bytes,
				// and a plain address inside it.
				for _, q := range []struct {
					addr uint64
					ret  bool
				}{{addr + 1, false}, {addr + 2, true}} {
					frames := s.User(p, q.addr, q.ret)
					if len(frames) != 1 {
						t.Fatalf("%s: got %d frames", name, len(frames))
					}
					fr := frames[0]
					if fr.Name != tt.want[i] {
						t.Errorf("%s at %#x: name %q, want %q", name, q.addr, fr.Name, tt.want[i])
					}
					if fr.Module != bin {
						t.Errorf("%s: module %q, want %q", name, fr.Module, bin)
					}
					if fr.BuildID == "" || fr.Offset == 0 {
						t.Errorf("%s: missing build id or offset: %+v", name, fr)
					}
				}
			}
			mod := p.module(p.find(fx.addrs["alpha_leaf"]))
			if mod == nil || !strings.Contains(mod.source, tt.source) {
				t.Errorf("symbol source %+v, want %s", mod, tt.source)
			}
		})
	}
}

// The snapshot keeps the files open: symbolizing works after the process
// exited and its binary was deleted.
func TestSnapshotAfterExit(t *testing.T) {
	dir := t.TempDir()
	bin := buildC(t, dir, "shortlived", cFixture, "-fPIE", "-pie")
	s := New(Options{DebugDirs: []string{}, DebuginfodURLs: []string{}})
	defer s.Close()
	fx := start(t, bin)
	p, err := s.Snapshot(fx.pid())
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	if p.Comm != "shortlived" || p.Exe != bin {
		t.Errorf("comm %q exe %q, want shortlived and %s", p.Comm, p.Exe, bin)
	}
	fx.stop()
	if err := os.Remove(bin); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join("/proc", itoa(fx.pid()))); err == nil {
		t.Fatal("fixture still running")
	}
	for _, name := range []string{"alpha_leaf", "gamma_static"} {
		if got := s.User(p, fx.addrs[name]+1, false)[0].Name; got != name {
			t.Errorf("after exit: %q, want %q", got, name)
		}
	}
	key, bias, open, ok := p.ModuleFor(fx.addrs["alpha_leaf"])
	if !ok || !strings.HasPrefix(key, "buildid:") {
		t.Fatalf("ModuleFor: key %q ok %v", key, ok)
	}
	r, c, err := open()
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	f, err := elf.NewFile(r)
	if err != nil {
		t.Fatal(err)
	}
	syms, err := f.Symbols()
	if err != nil {
		t.Fatal(err)
	}
	found := false
	for _, sym := range syms {
		if sym.Name == "alpha_leaf" {
			found = true
			if got := fx.addrs["alpha_leaf"] - bias; got != sym.Value {
				t.Errorf("ModuleFor bias: addr-bias = %#x, symbol at %#x", got, sym.Value)
			}
		}
	}
	if !found {
		t.Error("alpha_leaf not in the file ModuleFor opened")
	}
}

func TestCPlusPlus(t *testing.T) {
	dir := t.TempDir()
	bin := buildC(t, dir, "cpp", cppFixture, "-fPIE", "-pie")
	s := New(Options{DebugDirs: []string{}, DebuginfodURLs: []string{}})
	defer s.Close()
	fx := start(t, bin)
	p, err := s.Snapshot(fx.pid())
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	for _, name := range fx.order {
		fr := s.User(p, fx.addrs[name]+1, false)[0]
		if fr.Name != name {
			t.Errorf("got %q, want %q", fr.Name, name)
		}
		if !strings.HasPrefix(fr.SystemName, "_Z") {
			t.Errorf("%s: system name %q, want the mangled name", name, fr.SystemName)
		}
	}
}

func TestDlopen(t *testing.T) {
	dir := t.TempDir()
	needTool(t, "gcc")
	lib := filepath.Join(dir, "libplug.so")
	run(t, "gcc", "-O1", "-shared", "-fPIC", "-Wl,--build-id", "-o", lib, writeFile(t, filepath.Join(dir, "plug.c"), pluginFixture))
	bin := buildC(t, dir, "loader", dlopenFixture, "-ldl")
	s := New(Options{DebugDirs: []string{}, DebuginfodURLs: []string{}})
	defer s.Close()
	fx := start(t, bin, lib)
	p, err := s.Snapshot(fx.pid())
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	fr := s.User(p, fx.addrs["plugin_work"]+3, true)[0]
	if fr.Name != "plugin_work" || fr.Module != lib {
		t.Errorf("got %+v, want plugin_work in %s", fr, lib)
	}
}

func TestStrippedGo(t *testing.T) {
	goBin := needTool(t, "go")
	dir := t.TempDir()
	src := writeFile(t, filepath.Join(dir, "main.go"), goFixture)
	bin := filepath.Join(dir, "gofixture")
	cmd := exec.Command(goBin, "build", "-ldflags=-s -w", "-o", bin, src)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "GOTOOLCHAIN=local", "GOFLAGS=-buildvcs=false")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	f, err := elf.Open(bin)
	if err != nil {
		t.Fatal(err)
	}
	if f.Section(".symtab") != nil {
		t.Fatal("fixture is not stripped")
	}
	f.Close()
	s := New(Options{DebugDirs: []string{}, DebuginfodURLs: []string{}})
	defer s.Close()
	fx := start(t, bin)
	p, err := s.Snapshot(fx.pid())
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	for _, name := range []string{"main.alphaLeaf", "main.betaMiddle"} {
		fr := s.User(p, fx.addrs[name]+1, false)[0]
		if fr.Name != name {
			t.Errorf("got %q, want %q", fr.Name, name)
		}
		if !strings.HasSuffix(fr.File, "main.go") || fr.Line == 0 {
			t.Errorf("%s: file:line %s:%d, want main.go", name, fr.File, fr.Line)
		}
	}
	// runtime.Caller inside the inlined helper reports a pc in outerCaller's
	// body: two frames, the inlined one first.
	frames := s.User(p, fx.addrs["inline"], false)
	if len(frames) != 2 || frames[0].Name != "main.inlinedHelper" || !frames[0].Inlined ||
		frames[1].Name != "main.outerCaller" || frames[1].Inlined {
		t.Fatalf("inlined frames: %+v", frames)
	}
	// Each frame's line is its own: the helper's body, the call in outerCaller.
	lines := strings.Split(goFixture, "\n")
	for i, want := range []string{"runtime.Caller(0)", "return inlinedHelper()"} {
		if l := frames[i].Line; l <= 0 || l > len(lines) || !strings.Contains(lines[l-1], want) {
			t.Errorf("frame %d (%s) at line %d, want the line with %q", i, frames[i].Name, l, want)
		}
	}
}

// The test binary resolves its own functions through /proc/self/maps.
func TestSelf(t *testing.T) {
	s := New(Options{DebugDirs: []string{}, DebuginfodURLs: []string{}})
	defer s.Close()
	p, err := s.Snapshot(os.Getpid())
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	tests := []struct {
		name string
		pc   uint64
	}{
		{"github.com/scorch-dev/scorch/symbolizer.TestSelf", funcPC(TestSelf)},
		{"github.com/scorch-dev/scorch/symbolizer.parseMapsLine", funcPC(parseMapsLine)},
		{"bytes.IndexByte", funcPC(bytes.IndexByte)},
	}
	for _, tt := range tests {
		fr := s.User(p, tt.pc+1, false)[0]
		if fr.Name != tt.name {
			t.Errorf("got %q, want %q", fr.Name, tt.name)
		}
		if fr.Line == 0 || fr.File == "" {
			t.Errorf("%s: no file:line", tt.name)
		}
	}
	// A nil snapshot (the process was gone) still gives one frame.
	if fr := s.User(nil, 0x1234, false); len(fr) != 1 || fr[0].Name != "" || fr[0].Module != "" {
		t.Errorf("nil process: %+v", fr)
	}
	// An address in no mapping at all.
	if fr := s.User(p, 8, false); len(fr) != 1 || fr[0].Name != "" || fr[0].Module != "" {
		t.Errorf("unmapped address: %+v", fr)
	}
}

// A library loaded after the snapshot is found by re-reading the maps of the
// live process.
func TestDlopenAfterSnapshot(t *testing.T) {
	old := mapRefresh
	mapRefresh = 0
	t.Cleanup(func() { mapRefresh = old })
	dir := t.TempDir()
	needTool(t, "gcc")
	lib := filepath.Join(dir, "libplug.so")
	run(t, "gcc", "-O1", "-shared", "-fPIC", "-o", lib, writeFile(t, filepath.Join(dir, "plug.c"), pluginFixture))
	bin := buildC(t, dir, "late", lateDlopenFixture, "-ldl")
	s := New(Options{DebugDirs: []string{}, DebuginfodURLs: []string{}})
	defer s.Close()
	fx := start(t, bin, lib)
	p, err := s.Snapshot(fx.pid())
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	if _, err := fx.stdin.Write([]byte{'\n'}); err != nil {
		t.Fatal(err)
	}
	var addr uint64
	select {
	case line := <-fx.lines:
		_, hexAddr, _ := strings.Cut(line, " ")
		var ok bool
		if addr, ok = parseHex([]byte(hexAddr)); !ok {
			t.Fatalf("bad line %q", line)
		}
	case <-time.After(60 * time.Second):
		t.Fatal("fixture did not load the library")
	}
	fr := s.User(p, addr+1, false)[0]
	if fr.Name != "plugin_work" || fr.Module != lib {
		t.Errorf("got %+v, want plugin_work in %s", fr, lib)
	}
}

func TestLines(t *testing.T) {
	srcLine := func(substr string) int {
		for i, l := range strings.Split(cFixture, "\n") {
			if strings.Contains(l, substr) {
				return i + 1
			}
		}
		t.Fatalf("%q not in the fixture", substr)
		return 0
	}
	tests := []struct {
		name  string
		strip bool
	}{{"in the binary", false}, {"in the debuglink file", true}}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			bin := buildC(t, dir, "fixture", cFixture, "-g", "-fPIE", "-pie")
			if tt.strip {
				dbg := stripWithDebug(t, bin)
				run(t, "objcopy", "--add-gnu-debuglink="+dbg, bin)
			}
			s := New(Options{Lines: true, DebugDirs: []string{}, DebuginfodURLs: []string{}})
			defer s.Close()
			fx := start(t, bin)
			p, err := s.Snapshot(fx.pid())
			if err != nil {
				t.Fatal(err)
			}
			defer p.Close()
			for _, name := range []string{"alpha_leaf", "beta_middle"} {
				fr := s.User(p, fx.addrs[name], false)[0]
				want := srcLine("int " + name + "(int x)")
				if fr.Name != name || filepath.Base(fr.File) != "fixture.c" || fr.Line != want {
					t.Errorf("got %s %s:%d, want %s fixture.c:%d", fr.Name, fr.File, fr.Line, name, want)
				}
			}
		})
	}
}
