package unwind

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"testing"
)

// compactC is a program without frame pointers at -O2: a leaf, a frame
// with a 4 KiB buffer, a recursion, and alloca (which makes gcc set up rbp
// even under -fomit-frame-pointer).
const compactC = `
#include <alloca.h>
#include <string.h>
#include <stdlib.h>
__attribute__((noinline)) long leaf(long x) { return x * 3 + 1; }
__attribute__((noinline)) long big(long x) {
	volatile char buf[4096];
	memset((char *)buf, (int)x, sizeof buf);
	return leaf(buf[x & 4095]);
}
__attribute__((noinline)) long rec(long n) { return n <= 0 ? big(n) : rec(n - 1) + n; }
__attribute__((noinline)) long dyn(long n) {
	char *p = alloca(n + 16);
	memset(p, 1, n + 16);
	return rec(p[n] + 3);
}
int main(int argc, char **argv) { return (int)dyn(argc + (argv[1] ? atoi(argv[1]) : 0)); }
`

// buildC compiles src with gcc (or a cross gcc) and the flags.
func buildC(t *testing.T, gcc, src, name string, flags ...string) string {
	t.Helper()
	dir := t.TempDir()
	c := filepath.Join(dir, name+".c")
	if err := os.WriteFile(c, []byte(src), 0o644); err != nil {
		t.Fatal(err)
	}
	bin := filepath.Join(dir, name)
	args := append(append([]string{}, flags...), "-o", bin, c)
	if out, err := exec.Command(gcc, args...).CombinedOutput(); err != nil {
		t.Fatalf("%s %v: %v\n%s", gcc, args, err, out)
	}
	return bin
}

func buildCompactFile(t testing.TB, path string) *CompactTable {
	t.Helper()
	return buildCompactFrom(t, path, true)
}

// buildCompactFrom is buildCompactFile; goFirst false takes a Go binary's
// FDEs over its pclntab (buildCompact).
func buildCompactFrom(t testing.TB, path string, goFirst bool) *CompactTable {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	ct, err := buildCompact(bytes.NewReader(b), goFirst)
	if err != nil {
		t.Fatalf("building the compact table of %s: %v", path, err)
	}
	return ct
}

// wantRule is the rule the existing CFI unwinder computes at pc, in compact
// form; exact says whether every field is to be compared (only the CFA
// rule for addresses it cannot unwind).
func wantRule(tb *table, pc uint64) (want Rule, exact bool) {
	rw, ok := tb.evaluate(pc)
	if !ok {
		if _, err := tb.fdes.FDEForPC(pc); err != nil {
			return Rule{CFA: CFANone}, false
		}
		return Rule{CFA: CFAUnsupported}, false
	}
	switch rw.kind {
	case rowCFASP:
		want.CFA = CFASP
	case rowCFABP:
		want.CFA = CFAFP
	case rowPLT:
		want.CFA = CFAPLT
	case rowSignal:
		want.CFA = CFASignal
	default:
		return Rule{CFA: CFAUnsupported}, false
	}
	want.CFAOffset = rw.cfaOff
	if rw.raUndefined {
		want.RA = RAUndefined
	} else {
		want.RA, want.RAOffset = RAAtCFA, rw.raOff
	}
	if rw.bpSaved {
		want.FP, want.FPOffset = FPAtCFA, rw.bpOff
	}
	return want, true
}

// compareAll checks the compact rule of every pc from the first entry to
// the end of the table (and a little around it) against the existing
// unwinder's, returning the first mismatches and their count.
func compareAll(tb *table, ct *CompactTable) (msgs []string, bad, checked int) {
	if len(ct.Entries) == 0 {
		return []string{"empty table"}, 1, 0
	}
	lo := ct.Base + uint64(ct.Entries[0].PC)
	hi := ct.Base + uint64(ct.Entries[len(ct.Entries)-1].PC)
	for pc := lo - min(lo, 64); pc < hi+64; pc++ {
		checked++
		got := ct.Lookup(pc)
		want, exact := wantRule(tb, pc)
		if got == want || !exact && got.CFA == want.CFA {
			continue
		}
		bad++
		if len(msgs) < 8 {
			msgs = append(msgs, fmt.Sprintf("pc %#x: compact %v, CFI unwinder %v", pc, got, want))
		}
	}
	return msgs, bad, checked
}

// x86Files are libc and ld.so: the extracts the fixtures use (on any host)
// and this host's.
func x86Files(t *testing.T) []string {
	files, _ := filepath.Glob(filepath.Join("testdata", "lib", "*.elf"))
	for _, p := range []string{"/lib/x86_64-linux-gnu/libc.so.6", "/lib64/ld-linux-x86-64.so.2"} {
		if _, err := os.Stat(p); err == nil {
			files = append(files, p)
		}
	}
	if len(files) == 0 {
		t.Fatal("no libc: testdata/lib is empty")
	}
	return files
}

// TestCompactAgrees is the table's proof: for every pc of libc, ld.so and
// an -O2 -fomit-frame-pointer program, the compact rule is the rule the
// existing CFI unwinder evaluates there.
func TestCompactAgrees(t *testing.T) {
	files := x86Files(t)
	if gcc := findGCC(); gcc != "" {
		files = append(files, buildC(t, gcc, compactC, "nofp", "-O2", "-fomit-frame-pointer"))
	} else {
		t.Log("gcc not installed: the -O2 -fomit-frame-pointer program is not checked")
	}
	for _, path := range files {
		t.Run(filepath.Base(path), func(t *testing.T) {
			ct := buildCompactFile(t, path)
			msgs, bad, checked := compareAll(openTable(t, path), ct)
			for _, m := range msgs {
				t.Error(m)
			}
			if bad > 0 {
				t.Errorf("%d of %d pcs disagree", bad, checked)
			}
			t.Logf("%d pcs checked; %d entries, %d rules, %d bytes; %d unsupported ranges", checked, len(ct.Entries), len(ct.Rules), ct.Bytes(), ct.Unsupported)
			if len(ct.Rules) < 3 || len(ct.Entries) < 10 {
				t.Errorf("implausibly small table: %d entries, %d rules", len(ct.Entries), len(ct.Rules))
			}
			for i, e := range ct.Entries[1:] {
				if e.PC <= ct.Entries[i].PC || e.Rule == ct.Entries[i].Rule {
					t.Fatalf("entries %d and %d: not sorted or not merged: %+v %+v", i, i+1, ct.Entries[i], e)
				}
			}
			if filepath.Base(path) == "nofp" {
				// The program's own frames: big's 4 KiB frame off rsp, and
				// dyn's alloca frame off rbp.
				var bigFrame, fpFrame bool
				for _, r := range ct.Rules {
					bigFrame = bigFrame || r.CFA == CFASP && r.CFAOffset > 3072
					fpFrame = fpFrame || r.CFA == CFAFP && r.FP == FPAtCFA
				}
				if !bigFrame || !fpFrame {
					t.Errorf("rules %v: want cfa=sp+>3072 (big, part of its buffer may be in the red zone) and cfa=fp+N with rbp saved (dyn)", ct.Rules)
				}
			}
			if last := ct.Entries[len(ct.Entries)-1]; last.Rule != 0 {
				t.Errorf("the table does not end with the no-CFI rule: %+v", last)
			}
		})
	}
}

// TestCompactCorrupted shows that the comparison fails: one rule changed
// (the CFA offset of the most used one, or where its return address is)
// gives mismatches.
func TestCompactCorrupted(t *testing.T) {
	path := x86Files(t)[0]
	tb := openTable(t, path)
	uses := map[uint32]int{}
	ct := buildCompactFile(t, path)
	for _, e := range ct.Entries {
		uses[e.Rule]++
	}
	top := uint32(1)
	for id, n := range uses {
		if id != 0 && n > uses[top] {
			top = id
		}
	}
	for _, tt := range []struct {
		name    string
		corrupt func(*Rule)
	}{
		{"cfa offset", func(r *Rule) { r.CFAOffset += 8 }},
		{"return address", func(r *Rule) { r.RAOffset -= 8 }},
		{"frame pointer", func(r *Rule) { r.FP, r.FPOffset = FPAtCFA, -24 }},
	} {
		t.Run(tt.name, func(t *testing.T) {
			bad := *ct
			bad.Rules = slices.Clone(ct.Rules)
			tt.corrupt(&bad.Rules[top])
			msgs, n, _ := compareAll(tb, &bad)
			if n == 0 {
				t.Fatalf("corrupting rule %d (%v, used by %d entries) went unnoticed", top, ct.Rules[top], uses[top])
			}
			t.Logf("%d mismatches, first: %s", n, msgs[0])
		})
	}
	// An entry moved by one byte is caught too.
	bad := *ct
	bad.Entries = slices.Clone(ct.Entries)
	bad.Entries[len(bad.Entries)/2].PC++
	if _, n, _ := compareAll(tb, &bad); n == 0 {
		t.Error("an entry moved by one byte went unnoticed")
	}
}

func findGCC() string {
	for _, p := range []string{"/usr/bin/gcc", "/usr/local/bin/gcc"} {
		if _, err := os.Stat(p); err == nil {
			return p
		}
	}
	return ""
}

// storeFinder is the TableFinder of a recorded sample: the fixture's
// resolver and a CompactStore.
type storeFinder struct {
	r     Resolver
	store *CompactStore
}

func (f storeFinder) CompactFor(pc uint64) (*CompactTable, uint64, bool) {
	key, bias, open, ok := f.r.ModuleFor(pc)
	if !ok {
		return nil, 0, false
	}
	t, err := f.store.Get(key, open)
	if err != nil {
		return nil, 0, false
	}
	return t, bias, true
}

// TestCompactWalkFixtures walks every recorded sample with the compact
// tables alone and gets the frames of the existing CFI unwinder.
func TestCompactWalkFixtures(t *testing.T) {
	store := NewCompactStore(64 << 20)
	for _, w := range workloads {
		if w.golang {
			continue
		}
		t.Run(w.name, func(t *testing.T) {
			f, r := loadFixture(t, w.name)
			s := f.Sample
			want := New(Options{}).Unwind(r, ModeDWARF, s.Regs, s.Stack, nil)
			got, reason := WalkCompact(storeFinder{r, store}, s.Regs, 0, s.Stack)
			t.Logf("compact: %s (%q); CFI: %s (%v %q)", join(r.names(got)), reason, join(r.names(want.PCs)), want.Outcome, want.Reason)
			if !slices.Equal(got, want.PCs) {
				t.Errorf("compact walk %x, CFI unwinder %x", got, want.PCs)
			}
			if want.Outcome == OutcomeCFI && reason != "" {
				t.Errorf("the CFI unwinder reached the outermost frame, the compact walk ended with %q", reason)
			}
			if want.Outcome == OutcomeEnded && reason != want.Reason {
				t.Errorf("compact walk ended with %q, the CFI unwinder with %q", reason, want.Reason)
			}
		})
	}
	// Two processes mapping the same file share its table.
	if st := store.Stats(); st.Entries == 0 || st.Hits == 0 {
		t.Errorf("store stats %+v: want tables shared between fixtures", st)
	}
}

// TestNoModuleFramePointer: a pc in no file (JIT code, a perf-map
// trampoline) is unwound by its frame record at rbp, by the CFI unwinder
// and the compact walk alike, and CFI takes over in the caller. The leaf
// fixture's sample, with its pc moved outside every mapping: rbp is
// beta's frame, whose record returns into alpha.
func TestNoModuleFramePointer(t *testing.T) {
	f, r := loadFixture(t, "leaf")
	s := f.Sample
	if !libcResolves(r) {
		t.Skip("the fixture's libc extract is missing")
	}
	regs := s.Regs
	regs.IP = 0x1000 // no mapping
	got := New(Options{}).Unwind(r, ModeDWARF, regs, s.Stack, nil)
	names := r.names(got.PCs)
	t.Logf("CFI unwinder: %s (%v %q)", join(names), got.Outcome, got.Reason)
	if len(got.PCs) < 2 || got.PCs[1] != s.FPChain[1] || !hasSuffixFrames(names, []string{"main", "alpha", "0x1000"}) || names[0] != "_start" || got.Outcome != OutcomeCFI {
		t.Errorf("got %s (%v %q), want _start;...;main;alpha;0x1000 with alpha from the frame record", join(names), got.Outcome, got.Reason)
	}
	pcs, reason := WalkCompact(storeFinder{r, NewCompactStore(16 << 20)}, regs, 0, s.Stack)
	if !slices.Equal(pcs, got.PCs) || reason != "" {
		t.Errorf("compact walk %s (%q), CFI unwinder %s", join(r.names(pcs)), reason, join(names))
	}
}
