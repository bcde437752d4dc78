package unwind

import (
	"debug/elf"
	"errors"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/scorch-dev/scorch/internal/gopclntab"
	"golang.org/x/sys/unix"
)

// buildGoWith builds a one-file Go program with extra environment (GOARCH)
// and go build flags.
func buildGoWith(t testing.TB, src string, env []string, flags ...string) string {
	t.Helper()
	if _, err := exec.LookPath("go"); err != nil {
		t.Skip("go not installed")
	}
	dir := t.TempDir()
	code, err := os.ReadFile(src)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "main.go"), code, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "go.mod"), []byte("module workload\n\ngo 1.21\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	bin := filepath.Join(dir, "workload")
	cmd := exec.Command("go", append(append([]string{"build", "-o", bin}, flags...), ".")...)
	cmd.Dir = dir
	cmd.Env = append(append(os.Environ(), "GOFLAGS=", "GOWORK=off", "CGO_ENABLED=0"), env...)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go build %v: %v\n%s", flags, err, out)
	}
	return bin
}

// goFuncs reads a Go binary's function table (names, flags) from its
// pclntab, which stripped binaries keep.
type goFuncs struct{ tab *gopclntab.Table }

func readGoFuncs(t testing.TB, path string) goFuncs {
	t.Helper()
	f, err := elf.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	data, err := f.Section(".gopclntab").Data()
	if err != nil {
		t.Fatal(err)
	}
	tab, err := gopclntab.Parse(data, f.ByteOrder, f.Section(".text").Addr)
	if err != nil {
		t.Fatal(err)
	}
	return goFuncs{tab}
}

func (g goFuncs) at(pc uint64) (gopclntab.Func, string) {
	fn, ok := g.tab.FuncAt(pc)
	if !ok {
		return fn, "?"
	}
	return fn, g.tab.Name(fn.NameOff)
}

// names names return addresses (looked up at pc-1 past the leaf), root
// first.
func (g goFuncs) names(pcs []uint64) []string {
	out := make([]string, len(pcs))
	for i, pc := range pcs {
		if i > 0 {
			pc--
		}
		_, out[len(pcs)-1-i] = g.at(pc)
	}
	return out
}

// TestGoCompactAgrees builds a Go program twice per architecture, with
// and without -ldflags=-s -w, and checks the stripped build's table (from
// the pclntab alone) against the rules of the full build's .debug_frame at
// every pc the latter covers. The frame pointer, which .debug_frame does
// not describe, is checked on x86-64 by TestGoCompactWalk.
func TestGoCompactAgrees(t *testing.T) {
	src := filepath.Join("testdata", "goleaf.go")
	for _, arch := range []string{"amd64", "arm64"} {
		t.Run(arch, func(t *testing.T) {
			env := []string{"GOARCH=" + arch}
			full := buildGoWith(t, src, env)
			stripped := buildGoWith(t, src, env, "-ldflags=-s -w")
			sf, err := elf.Open(stripped)
			if err != nil {
				t.Fatal(err)
			}
			defer sf.Close()
			if sf.Section(".debug_frame") != nil || sf.Section(".eh_frame") != nil || sf.Section(".symtab") != nil {
				t.Fatal("the stripped build still has CFI or symbols")
			}
			st := buildCompactFile(t, stripped)
			// The reference: the full build's .debug_frame rows, not the
			// pclntab's rules that BuildCompact prefers.
			ft := buildCompactFrom(t, full, false)
			// What scorch uses for the full build: the same rules as for
			// the stripped one, frame pointer included.
			fgo := buildCompactFile(t, full)
			differ := 0
			ff, err := elf.Open(full)
			if err != nil {
				t.Fatal(err)
			}
			defer ff.Close()
			fdes, err := readFDEs(ff)
			if err != nil {
				t.Fatal(err)
			}
			// The code of both builds is at the same addresses: the
			// linker lays out .text before the sections -s -w removes.
			sg, fg := readGoFuncs(t, stripped), readGoFuncs(t, full)
			checked, bad, withFP, skipped := 0, 0, 0, 0
			for _, fde := range fdes {
				fn, name := fg.at(fde.Begin())
				if sfn, sname := sg.at(fde.Begin()); sname != name || sfn.Entry != fn.Entry {
					t.Fatalf("function at %#x: %s in the full build, %s in the stripped one", fde.Begin(), name, sname)
				}
				for pc := fde.Begin(); pc < fde.End(); pc++ {
					got, want := st.Lookup(pc), ft.Lookup(pc)
					if g := fgo.Lookup(pc); g != got {
						if differ++; differ <= 4 {
							t.Errorf("%s+%#x (%#x): the full build's table has %v, the stripped one's %v", name, pc-fn.Entry, pc, g, got)
						}
					}
					if got.FP == FPAtCFA {
						withFP++
					}
					if fn.Flag&gopclntab.FlagSPWrite != 0 && (got.CFA == CFAFPSwitch || got.RA == RAUndefined) {
						// Functions that switch stacks: x86-64's systemstack
						// is found from rbp (TestGoSystemstackCrossed), the
						// others end the walk.
						skipped++
						continue
					}
					checked++
					got.FP, got.FPOffset = FPUnchanged, 0
					if got != want {
						bad++
						if bad <= 8 {
							t.Errorf("%s+%#x (%#x): pclntab %v, .debug_frame %v", name, pc-fn.Entry, pc, got, want)
						}
					}
				}
			}
			t.Logf("%s: %d pcs of %d FDEs checked (%d of them with rbp/x29 saved; %d of SPWRITE functions, found from the frame pointer or ending the walk); stripped table %d entries, %d rules, %d bytes",
				arch, checked, len(fdes), withFP, skipped, len(st.Entries), len(st.Rules), st.Bytes())
			if bad > 0 {
				t.Errorf("%d of %d pcs disagree", bad, checked)
			}
			if checked < 100000 || withFP < checked/4 {
				t.Errorf("implausible: %d pcs checked, %d with the frame pointer saved", checked, withFP)
			}
			// The outermost functions end a walk.
			for _, name := range []string{"runtime.goexit", "runtime.mstart"} {
				entry := funcEntry(t, sg, name)
				if r := st.Lookup(entry + 1); r.RA != RAUndefined {
					t.Errorf("%s: %v, want ra=undefined", name, r)
				}
			}
			// The leaf has no frame: on arm64 its return address is in x30.
			leaf := st.Lookup(funcEntry(t, sg, "main.leaf") + 4)
			if wantRA := map[string]RARule{"amd64": RAAtCFA, "arm64": RAInLink}[arch]; leaf.RA != wantRA || leaf.FP != FPUnchanged {
				t.Errorf("main.leaf: %v", leaf)
			}
		})
	}
}

func funcEntry(t *testing.T, g goFuncs, name string) uint64 {
	t.Helper()
	for i := range g.tab.NumFuncs() {
		if fn, ok := g.tab.Func(i); ok && strings.TrimSuffix(g.tab.Name(fn.NameOff), ".abi0") == name {
			return fn.Entry
		}
	}
	t.Fatalf("no function %s", name)
	return 0
}

// binFinder is the table of a static binary mapped at its link address.
type binFinder struct {
	t      *CompactTable
	lo, hi uint64
}

func (f binFinder) CompactFor(pc uint64) (*CompactTable, uint64, bool) {
	return f.t, 0, pc >= f.lo && pc < f.hi
}

// withoutRules is t with no rule over [lo, hi): the walk uses frame
// pointers there.
func withoutRules(t *CompactTable, lo, hi uint64) *CompactTable {
	out := *t
	out.Entries = nil
	l, h := uint32(lo-t.Base), uint32(hi-t.Base)
	var atHi uint32 // the rule in force at h
	for _, e := range t.Entries {
		if e.PC <= h {
			atHi = e.Rule
		}
		if e.PC < l {
			out.Entries = append(out.Entries, e)
		}
	}
	out.Entries = append(out.Entries, Entry{PC: l}, Entry{PC: h, Rule: atHi})
	for _, e := range t.Entries {
		if e.PC > h {
			out.Entries = append(out.Entries, e)
		}
	}
	return &out
}

// TestGoCompactWalk samples a stripped Go program with ptrace while its
// frameless leaf runs, and walks the stack with the pclntab's rules alone:
// main.beta, the leaf's caller that frame pointers lose, is kept and the
// walk ends cleanly at runtime.goexit. With main.alpha's rules removed the
// walk goes on through alpha by frame pointers, which works only if the
// rules gave back the rbp that main.beta saved.
func TestGoCompactWalk(t *testing.T) {
	requireRoot(t)
	bin := buildGoWith(t, filepath.Join("testdata", "goleaf.go"), nil, "-ldflags=-s -w")
	ct := buildCompactFile(t, bin)
	g := readGoFuncs(t, bin)
	f, err := elf.Open(bin)
	if err != nil {
		t.Fatal(err)
	}
	text := f.Section(".text")
	f.Close()
	finder := binFinder{ct, text.Addr, text.Addr + text.Size}
	alpha := funcEntry(t, g, "main.alpha")
	alphaFn, _ := g.at(alpha)
	noAlpha := binFinder{withoutRules(ct, alphaFn.Entry, alphaFn.End), finder.lo, finder.hi}
	if r := noAlpha.t.Lookup(alpha + 8); r.CFA != CFANone {
		t.Fatalf("main.alpha still has %v", r)
	}
	if r := noAlpha.t.Lookup(alphaFn.End); r != ct.Lookup(alphaFn.End) {
		t.Fatalf("past main.alpha: %v, want %v", r, ct.Lookup(alphaFn.End))
	}
	cmd := exec.Command(bin, "120")
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		cmd.Process.Kill()
		cmd.Wait()
	})
	time.Sleep(100 * time.Millisecond)
	want := []string{"runtime.main", "main.main", "main.alpha", "main.beta", "main.leaf"}
	got, tries := 0, 0
	for ; got < 5 && tries < 2000; tries++ {
		time.Sleep(time.Duration(1+rand.IntN(5)) * time.Millisecond)
		s, err := takeSample(cmd.Process.Pid, 16<<10)
		if err != nil {
			if errors.Is(err, unix.ESRCH) {
				t.Fatalf("workload exited: %v", err)
			}
			continue
		}
		if _, leaf := g.at(s.Regs.IP); leaf != "main.leaf" {
			continue
		}
		got++
		for _, tt := range []struct {
			name   string
			finder TableFinder
		}{{"pclntab", finder}, {"pclntab without main.alpha", noAlpha}} {
			pcs, reason := WalkCompact(tt.finder, s.Regs, 0, s.Stack)
			names := g.names(pcs)
			t.Logf("%s: %s (%q)", tt.name, strings.Join(names, ";"), reason)
			if !hasSuffixFrames(names, want) || reason != "" || !strings.HasPrefix(names[0], "runtime.goexit") {
				t.Errorf("%s: %s (%q), want runtime.goexit;%s to the end", tt.name, strings.Join(names, ";"), reason, strings.Join(want, ";"))
			}
		}
		// Frame pointers alone lose main.beta: the check above can fail.
		if fp := g.names(s.FPChain); slices.Contains(fp, "main.beta") {
			t.Logf("frame pointers found main.beta too: %s", strings.Join(fp, ";"))
		}
	}
	if got < 5 {
		t.Fatalf("only %d samples in main.leaf after %d tries", got, tries)
	}
}
