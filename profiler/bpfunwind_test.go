package profiler_test

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/scorch-dev/scorch/capture"
	"github.com/scorch-dev/scorch/internal/testutil"
	"github.com/scorch-dev/scorch/profiler"
)

// bigFrameC has no frame pointers (-O2 -fomit-frame-pointer): main →
// outer → middle, whose 4 KiB local buffer puts the caller's frames beyond
// the 1 KiB stack copy, → leaf, which spins.
const bigFrameC = `
#include <string.h>

volatile unsigned long sink;

__attribute__((noinline)) void leaf(unsigned char *buf) {
	for (unsigned long i = 0; i < 3000000; i++)
		sink += i * buf[i & 4095];
}

__attribute__((noinline)) void middle(int seed) {
	unsigned char buf[4096];
	memset(buf, seed, sizeof buf);
	leaf(buf);
	sink += buf[seed & 4095];
}

__attribute__((noinline)) void outer(int seed) {
	middle(seed);
	sink++;
}

int main(void) {
	for (int i = 0;; i++)
		outer(i);
}
`

// The default mode walks the stack in BPF with the tables: every sample of
// the frameless program reaches main and libc's start routine, in order,
// with no stack copy.
func TestBPFUnwindBigFrameDefault(t *testing.T) {
	testutil.RequireRoot(t)
	bin := testutil.BuildC(t, "gcc", bigFrameC, "-O2", "-fomit-frame-pointer")
	c, _ := recordWorkload(t, capture.Params{Type: capture.CPU, Hz: 499, Duration: capture.Duration(2 * time.Second)}, bin)
	st := c.Meta.Stats
	stacks := folded(c, capture.Query{})
	all := total(stacks)
	t.Logf("samples %d, cfi %d, fp %d, ended %d, counters %v", all, st.UnwindCFI, st.UnwindFP, st.UnwindEnded, st.Counters.Sorted())
	if all < 100 {
		t.Fatalf("only %d samples", all)
	}
	inBPF := st.Counters.Get(capture.UnwoundInBPF)
	if inBPF == 0 {
		if w := strings.Join(c.Meta.Warnings, "; "); strings.Contains(w, "refused the BPF unwinder") {
			t.Skipf("this kernel refuses the BPF unwinder: %s", w)
		}
		t.Fatalf("no stack was walked in BPF: %v", st.Counters.Sorted())
	}
	var complete, leafs int64
	for s, v := range stacks {
		if !strings.Contains(s, "leaf") {
			continue
		}
		leafs += v
		if inOrder(s, "_start", "__libc_start_main", "main", "outer", "middle", "leaf") ||
			inOrder(s, "__libc_start_main", "main", "outer", "middle", "leaf") {
			complete += v
		}
	}
	if leafs < all/2 {
		t.Fatalf("leaf has %d of %d samples: %v", leafs, all, top(stacks, 5))
	}
	if float64(complete) < 0.95*float64(leafs) {
		t.Errorf("%d of %d samples in leaf have the whole stack (want 95%%): %v", complete, leafs, top(stacks, 5))
	}
	// Once its tables are loaded, the process sends no stack copies: the
	// ring carries well under 1 KiB per event.
	if rb := st.Counters.Get(capture.RingBytes); rb/uint64(max(all, 1)) > 1024 {
		t.Errorf("%d ring bytes per event, want at most 1024", rb/uint64(all))
	}
}

// garbageC walks into code without CFI (an assembly function with no
// .cfi directives) with a frame pointer that points at garbage: the
// stacks there must end cleanly and be counted, and the rest be whole.
const garbageC = `
volatile unsigned long sink;

/* spin_garbage(fp): rbp = fp for a while, no CFI, then back. */
__asm__(
	".text\n"
	".globl spin_garbage\n"
	".type spin_garbage,@function\n"
	"spin_garbage:\n"
	"	push %rbx\n"
	"	mov %rbp, %rbx\n"
	"	mov %rdi, %rbp\n"
	"	mov $2000000, %rcx\n"
	"1:	dec %rcx\n"
	"	jnz 1b\n"
	"	mov %rbx, %rbp\n"
	"	pop %rbx\n"
	"	ret\n"
	".size spin_garbage, .-spin_garbage\n");
void spin_garbage(unsigned long fp);

__attribute__((noinline)) void sane(void) {
	for (unsigned long i = 0; i < 2000000; i++)
		sink += i;
}

int main(void) {
	volatile unsigned long junk[64]; /* on the stack: a plausible frame pointer */
	for (int i = 0; i < 64; i++)
		junk[i] = 0x10000000000ul * (i + 1) + 8 * i; /* unmapped "pointers" */
	for (unsigned long n = 0;; n++) {
		switch (n % 3) {
		case 0: spin_garbage((unsigned long)&junk[8]); break;     /* a chain into unmapped memory */
		case 1: spin_garbage(0xdead0000dead0000ul); break;          /* not a stack address */
		default: sane();
		}
	}
}
`

func TestBPFUnwindGarbageEndsCleanly(t *testing.T) {
	testutil.RequireRoot(t)
	bin := testutil.BuildC(t, "gcc", garbageC, "-O2", "-fomit-frame-pointer")
	c, _ := recordWorkload(t, capture.Params{Type: capture.CPU, Hz: 499, Duration: capture.Duration(2 * time.Second)}, bin)
	st := c.Meta.Stats
	stacks := folded(c, capture.Query{})
	t.Logf("cfi %d, fp %d, ended %d, counters %v; top %v", st.UnwindCFI, st.UnwindFP, st.UnwindEnded, st.Counters.Sorted(), top(stacks, 6))
	if st.Counters.Get(capture.UnwoundInBPF) == 0 {
		t.Skipf("no stack was walked in BPF: %v %v", st.Counters.Sorted(), c.Meta.Warnings)
	}
	garbage, sane := share(stacks, "spin_garbage"), share(stacks, "sane")
	if garbage == 0 || sane == 0 {
		t.Fatalf("spin_garbage %d, sane %d samples: %v", garbage, sane, top(stacks, 6))
	}
	if st.UnwindEnded == 0 {
		t.Errorf("no stack ended early, with a garbage frame pointer in %d samples", garbage)
	}
	ended := st.Counters.Reasons(capture.UnwindEndedBy)
	var n uint64
	for _, v := range ended {
		n += v
	}
	if n != st.UnwindEnded {
		t.Errorf("%d stacks ended early but the reasons count %d: %v", st.UnwindEnded, n, ended)
	}
	for s, v := range stacks {
		if depth := strings.Count(s, ";") + 1; depth > 130 {
			t.Errorf("a stack of %d frames (%d samples): %.200s", depth, v, s)
		}
	}
	whole := int64(0)
	for s, v := range stacks {
		if inOrder(s, "__libc_start_main", "main", "sane") {
			whole += v
		}
	}
	if float64(whole) < 0.9*float64(sane) {
		t.Errorf("%d of %d samples in sane have the whole stack: %v", whole, sane, top(stacks, 6))
	}
}

// inOrder: s holds the frames in this order (root first).
func inOrder(s string, frames ...string) bool {
	rest := ";" + s + ";"
	for _, f := range frames {
		i := strings.Index(rest, ";"+f+";")
		if i < 0 {
			return false
		}
		rest = rest[i+len(f)+1:]
	}
	return true
}

// pythonPerf finds a CPython with -X perf (3.12 or later): python3 on PATH
// if it is one, else a pyenv build.
func pythonPerf(t *testing.T) string {
	t.Helper()
	var cands []string
	if p, err := exec.LookPath("python3"); err == nil {
		cands = append(cands, p)
	}
	root := os.Getenv("PYENV_ROOT")
	if root == "" {
		root = "/root/.pyenv"
	}
	for _, v := range []string{"3.13", "3.12"} {
		m, _ := filepath.Glob(filepath.Join(root, "versions", v+".*", "bin", "python"+v))
		cands = append(cands, m...)
	}
	for _, p := range cands {
		out, err := exec.Command(p, "-c", "import sys; print(sys.version_info >= (3, 12))").Output()
		if err == nil && strings.TrimSpace(string(out)) == "True" {
			return p
		}
	}
	t.Skip("no Python 3.12 or later (with -X perf) on this machine")
	return ""
}

const spinPy = `
def inner(n):
    s = 0
    for i in range(n):
        s += i * i
    return s

def middle(n):
    return inner(n)

def outer():
    while True:
        middle(100000)

outer()
`

// CPython's -X perf trampolines have no frame record and no CFI: the
// tables scorch makes for them carry the walk through every Python frame
// to the interpreter's entry.
func TestBPFUnwindPythonPerfTrampolines(t *testing.T) {
	testutil.RequireRoot(t)
	py := pythonPerf(t)
	script := filepath.Join(t.TempDir(), "spin.py")
	if err := os.WriteFile(script, []byte(spinPy), 0o644); err != nil {
		t.Fatal(err)
	}
	cmd := testutil.Start(t, py, "-X", "perf", script)
	time.Sleep(500 * time.Millisecond) // the interpreter starts and makes its trampolines
	c, err := profiler.Record(context.Background(), capture.Params{Type: capture.CPU, PIDs: []int{cmd.Process.Pid}, Hz: 499, Duration: capture.Duration(2 * time.Second)}, profiler.Options{})
	if err != nil {
		t.Fatal(err)
	}
	st := c.Meta.Stats
	stacks := folded(c, capture.Query{})
	t.Logf("%s: cfi %d, fp %d, ended %d, counters %v; top %v", py, st.UnwindCFI, st.UnwindFP, st.UnwindEnded, st.Counters.Sorted(), top(stacks, 3))
	if st.Counters.Get(capture.UnwoundInBPF) == 0 {
		t.Skipf("no stack was walked in BPF: %v", c.Meta.Warnings)
	}
	if st.Counters.Get(capture.UnwindTrampolineTables) == 0 {
		t.Errorf("no trampoline table was made")
	}
	var inInner, whole int64
	for s, v := range stacks {
		if !strings.Contains(s, "py::inner:") {
			continue
		}
		inInner += v
		f := strings.Split(s, ";")
		var order []string
		for _, fr := range f {
			for _, n := range []string{"py::outer:", "py::middle:", "py::inner:"} {
				if strings.HasPrefix(fr, n) {
					order = append(order, n)
				}
			}
		}
		if len(f) > 1 && f[1] == "_start" && strings.Join(order, ",") == "py::outer:,py::middle:,py::inner:" {
			whole += v
		}
	}
	if inInner < 50 {
		t.Fatalf("only %d samples in py::inner: %v", inInner, top(stacks, 5))
	}
	if float64(whole) < 0.95*float64(inInner) {
		t.Errorf("%d of %d samples in py::inner reach _start through outer, middle, inner: %v", whole, inInner, top(stacks, 5))
	}
}

// Tables shared by two captures (a server's): the second builds nothing
// and walks every sample in BPF from its first.
func TestBPFUnwindSharedTables(t *testing.T) {
	testutil.RequireRoot(t)
	bin := testutil.BuildC(t, "gcc", bigFrameC, "-O2", "-fomit-frame-pointer")
	cmd := testutil.Start(t, bin)
	time.Sleep(100 * time.Millisecond)
	var lazy profiler.LazyUnwindTables
	tables := lazy.Get(nil)
	if tables == nil {
		t.Skip("the unwind tables' maps cannot be made here")
	}
	defer tables.Close()
	for i := range 2 {
		c, err := profiler.Record(context.Background(), capture.Params{Type: capture.CPU, PIDs: []int{cmd.Process.Pid}, Hz: 499, Duration: capture.Duration(time.Second)},
			profiler.Options{UnwindTables: tables})
		if err != nil {
			t.Fatal(err)
		}
		st := c.Meta.Stats
		t.Logf("capture %d: cfi %d, ended %d, counters %v", i, st.UnwindCFI, st.UnwindEnded, st.Counters.Sorted())
		if st.Counters.Get(capture.UnwoundInBPF) == 0 {
			t.Skipf("no stack was walked in BPF: %v", c.Meta.Warnings)
		}
		files := st.Counters.Get(capture.UnwindTableFilesLoaded)
		if i == 0 && files == 0 || i == 1 && files != 0 {
			t.Errorf("capture %d wrote %d files' tables", i, files)
		}
		if p := st.Counters.Get(capture.UnwindTablesPending); p != 0 {
			t.Errorf("capture %d: %d samples waited for their tables", i, p)
		}
		if st.UnwindCFI < 20 || st.UnwindEnded > st.UnwindCFI/20 {
			t.Errorf("capture %d: %d whole stacks, %d ended early", i, st.UnwindCFI, st.UnwindEnded)
		}
	}
}
