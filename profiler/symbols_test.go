package profiler_test

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/scorch-dev/scorch/capture"
	"github.com/scorch-dev/scorch/internal/testutil"
	"github.com/scorch-dev/scorch/profiler"
)

// recordPID samples one process for d at 499 Hz.
func recordPID(t *testing.T, pid int, d time.Duration, unwind string) map[string]int64 {
	t.Helper()
	c, err := profiler.Record(context.Background(), capture.Params{
		Type: capture.CPU, PIDs: []int{pid}, Hz: 499, Duration: capture.Duration(d), Unwind: unwind,
	}, profiler.Options{})
	if err != nil {
		t.Fatal(err)
	}
	return folded(c, capture.Query{})
}

// C++ templates in a namespace are named, demangled.
func TestSymbolsCPlusPlus(t *testing.T) {
	testutil.RequireRoot(t)
	const src = `
#include <cstdio>
namespace shapes {
template <typename T> struct Spinner {
	volatile T acc = 0;
	__attribute__((noinline)) void spin(long n) {
		for (long i = 0; i < n; i++) acc = acc + (T)i;
	}
};
}
int main() {
	shapes::Spinner<int> a;
	shapes::Spinner<double> b;
	for (;;) { a.spin(3000000); b.spin(3000000); }
}
`
	dir := t.TempDir()
	file := filepath.Join(dir, "spin.cc")
	if err := os.WriteFile(file, []byte(src), 0o644); err != nil {
		t.Fatal(err)
	}
	bin := filepath.Join(dir, "spincc")
	testutil.RequireTool(t, "g++")
	if out, err := exec.Command("g++", "-O1", "-fno-omit-frame-pointer", "-o", bin, file).CombinedOutput(); err != nil {
		t.Fatalf("g++: %v\n%s", err, out)
	}
	cmd := testutil.Start(t, bin)
	time.Sleep(100 * time.Millisecond)
	stacks := recordPID(t, cmd.Process.Pid, 2*time.Second, "auto")
	all := total(stacks)
	ints := share(stacks, "main;shapes::Spinner<int>::spin")
	doubles := share(stacks, "main;shapes::Spinner<double>::spin")
	t.Logf("%d samples: int %d, double %d; top %v", all, ints, doubles, top(stacks, 3))
	if ints == 0 || doubles == 0 || float64(ints+doubles)/float64(all) < 0.8 {
		t.Errorf("template instances not named: %v", top(stacks, 5))
	}
}

// A stripped Go binary is named from .gopclntab.
func TestSymbolsStrippedGo(t *testing.T) {
	testutil.RequireRoot(t)
	bin := testutil.BuildGo(t, spinGo, "-ldflags=-s -w")
	if out, _ := exec.Command("nm", bin).CombinedOutput(); !strings.Contains(string(out), "no symbols") {
		t.Logf("nm: %.200s", out)
	}
	cmd := testutil.Start(t, bin)
	time.Sleep(100 * time.Millisecond)
	stacks := recordPID(t, cmd.Process.Pid, 2*time.Second, "auto")
	all := total(stacks)
	named := share(stacks, "main.alpha;main.beta")
	t.Logf("%d samples, %d under main.alpha;main.beta", all, named)
	if all == 0 || float64(named)/float64(all) < 0.8 {
		t.Errorf("stripped Go functions not named: %v", top(stacks, 5))
	}
}

// JIT code is named from the process's perf map: node --perf-basic-prof.
func TestSymbolsNodePerfMap(t *testing.T) {
	testutil.RequireRoot(t)
	node := testutil.RequireTool(t, "node")
	const script = `
function scorchHotLoop(n) { let s = 0; for (let i = 0; i < n; i++) { s += Math.sqrt(i) * (i & 7); } return s; }
const end = Date.now() + 30000;
let sink = 0;
while (Date.now() < end) { sink += scorchHotLoop(200000); }
`
	dir := t.TempDir()
	file := filepath.Join(dir, "hot.js")
	if err := os.WriteFile(file, []byte(script), 0o644); err != nil {
		t.Fatal(err)
	}
	// node writes its v8 log into the working directory.
	// V8 may inline the hot function into the OSR-compiled top-level loop,
	// whose perf-map entry names only the script position; keep it a
	// function of its own, as it is in most programs.
	cmd := exec.Command(node, "--perf-basic-prof", "--max-inlined-bytecode-size=0", file)
	cmd.Dir = dir
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	// Let the function be compiled and written to /tmp/perf-PID.map.
	time.Sleep(1500 * time.Millisecond)
	t.Cleanup(func() { os.Remove(filepath.Join("/tmp", "perf-"+strconv.Itoa(cmd.Process.Pid)+".map")) })
	stacks := recordPID(t, cmd.Process.Pid, 2*time.Second, "fp")
	jit := share(stacks, "scorchHotLoop")
	t.Logf("%d samples, %d in scorchHotLoop", total(stacks), jit)
	if jit == 0 {
		t.Fatalf("the JS function is not named: %v", top(stacks, 5))
	}
	for s := range stacks {
		if i := strings.Index(s, "scorchHotLoop"); i >= 0 && !strings.Contains(s[i:], "_[j]") {
			t.Errorf("JIT frame without the _[j] mark: %s", s)
			break
		}
	}
}
