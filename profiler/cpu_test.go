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

// spinC spins in main → alpha → beta twice as long (in CPU time, so that
// other load on the machine does not skew it) as in main → alpha → gamma.
// The clock is read rarely, so few samples land in the vDSO.
const spinC = `
#include <time.h>
#include <stdio.h>

static double cpu_ms(void) {
	struct timespec ts;
	clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
	return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
}

volatile unsigned long sink;

__attribute__((noinline)) void spin(double ms) {
	double end = cpu_ms() + ms;
	do {
		for (unsigned long i = 0; i < 200000; i++)
			sink += i * i;
	} while (cpu_ms() < end);
}

__attribute__((noinline)) void beta(void)  { spin(40); }
__attribute__((noinline)) void gamma_(void) { spin(20); }

__attribute__((noinline)) void alpha(int which) {
	if (which) beta(); else gamma_();
}

int main(void) {
	for (;;) {
		alpha(1);
		alpha(0);
	}
}
`

func folded(c *capture.Capture, q capture.Query) map[string]int64 {
	out := map[string]int64{}
	for _, sv := range c.Aggregate(q) {
		out[strings.Join(c.FoldedStack(sv.Stack), ";")] += sv.Value
	}
	return out
}

// share sums the values of stacks containing every one of the substrings.
func share(stacks map[string]int64, subs ...string) (n int64) {
next:
	for s, v := range stacks {
		for _, sub := range subs {
			if !strings.Contains(s, sub) {
				continue next
			}
		}
		n += v
	}
	return n
}

func total(stacks map[string]int64) (n int64) {
	for _, v := range stacks {
		n += v
	}
	return n
}

// recordWorkload starts bin with args, gives it 100 ms to start (200 ms
// when it starts threads), and records p on its process.
func recordWorkload(t *testing.T, p capture.Params, bin string, args ...string) (*capture.Capture, *exec.Cmd) {
	t.Helper()
	cmd := testutil.Start(t, bin, args...)
	time.Sleep(200 * time.Millisecond)
	p.PIDs = []int{cmd.Process.Pid}
	c, err := profiler.Record(context.Background(), p, profiler.Options{})
	if err != nil {
		t.Fatal(err)
	}
	return c, cmd
}

func TestCPUSamplerCWorkload(t *testing.T) {
	testutil.RequireRoot(t)
	bin := testutil.BuildC(t, "clang", spinC, "-O1", "-fno-omit-frame-pointer", "-mno-omit-leaf-frame-pointer")
	c, cmd := recordWorkload(t, capture.Params{Type: capture.CPU, Hz: 499, Duration: capture.Duration(3 * time.Second), Unwind: "fp"}, bin)
	stacks := folded(c, capture.Query{})
	all := total(stacks)
	beta := share(stacks, "main;alpha;beta")
	gamma := share(stacks, "main;alpha;gamma_")
	t.Logf("%d samples: beta %d, gamma %d, lost %d", all, beta, gamma, c.Meta.Stats.Lost)
	if all < 300 {
		t.Fatalf("only %d samples in 3 s at 499 Hz", all)
	}
	if frac := float64(beta+gamma) / float64(all); frac < 0.9 {
		t.Errorf("only %.0f%% of samples contain main;alpha;beta or main;alpha;gamma_; stacks: %v", frac*100, top(stacks, 8))
	}
	if gamma == 0 {
		t.Fatalf("no gamma samples: %v", top(stacks, 8))
	}
	if ratio := float64(beta) / float64(gamma); ratio < 1.6 || ratio > 2.4 {
		t.Errorf("beta/gamma = %.2f, want 2.0 ± 0.4", ratio)
	}
	if c.Meta.Stats.Lost != 0 {
		t.Errorf("%d samples lost", c.Meta.Stats.Lost)
	}
	for _, e := range c.Events {
		if int(e.PID) != cmd.Process.Pid {
			t.Fatalf("event of pid %d in a capture of pid %d", e.PID, cmd.Process.Pid)
		}
	}
	if !strings.HasPrefix(anyKey(stacks), "workload;") {
		t.Errorf("stacks do not start with the process name: %v", top(stacks, 3))
	}
}

const spinGo = `package main

import "time"

var sink int

//go:noinline
func mix(i int) int { return i * i }

// beta calls mix, so it has a frame of its own: a frameless Go leaf would
// hide its caller from frame-pointer stacks (the unwinding tests cover that).
//go:noinline
func beta() { for i := 0; i < 1000000; i++ { sink += mix(i) + i*7 } }

//go:noinline
func alpha() { beta() }

func main() {
	end := time.Now().Add(time.Minute)
	for time.Now().Before(end) { alpha() }
}
`

func TestCPUSamplerGoWorkload(t *testing.T) {
	testutil.RequireRoot(t)
	bin := testutil.BuildGo(t, spinGo)
	c, _ := recordWorkload(t, capture.Params{Type: capture.CPU, Hz: 499, Duration: capture.Duration(2 * time.Second), Unwind: "fp"}, bin)
	stacks := folded(c, capture.Query{})
	all := total(stacks)
	in := share(stacks, "main.main;main.alpha;main.beta")
	// mix is a frameless leaf: with frame pointers alone its samples read
	// main.alpha;main.mix, beta hidden (about a fifth of them, so a floor on
	// beta alone sat at its own noise: 79.4% once failed a floor of 80%).
	leaf := share(stacks, "main.main;main.alpha;main.mix")
	t.Logf("%d samples, %d in main.main;main.alpha;main.beta, %d in main.alpha;main.mix", all, in, leaf)
	if all < 200 || float64(in+leaf)/float64(all) < 0.9 || float64(in)/float64(all) < 0.6 {
		t.Errorf("main.alpha;main.beta in %d and main.alpha;main.mix in %d of %d samples; stacks: %v", in, leaf, all, top(stacks, 8))
	}
}

// A process that lives less than 200 ms during the capture is still named.
func TestCPUSamplerShortLivedProcess(t *testing.T) {
	testutil.RequireRoot(t)
	src := strings.Replace(spinC, "int main(void) {\n\tfor (;;) {", "int main(void) {\n\tfor (int n = 0; n < 2; n++) {", 1)
	src = strings.Replace(src, "spin(40)", "spin(50)", 1)
	src = strings.Replace(src, "spin(20)", "spin(25)", 1)
	bin := testutil.BuildC(t, "clang", src, "-O1", "-fno-omit-frame-pointer", "-mno-omit-leaf-frame-pointer")
	short := filepath.Join(filepath.Dir(bin), "shortlived")
	if err := os.Rename(bin, short); err != nil {
		t.Fatal(err)
	}
	ready := make(chan struct{})
	done := make(chan error, 1)
	go func() {
		<-ready
		time.Sleep(300 * time.Millisecond)
		start := time.Now()
		err := exec.Command(short).Run()
		t.Logf("shortlived ran %s", time.Since(start))
		done <- err
	}()
	c, err := profiler.Record(context.Background(), capture.Params{
		Type: capture.CPU, Comm: "shortlived", Hz: 999,
		Duration: capture.Duration(2 * time.Second), Unwind: "fp",
	}, profiler.Options{Ready: func() { close(ready) }})
	if err != nil {
		t.Fatal(err)
	}
	if err := <-done; err != nil {
		t.Fatalf("short-lived workload: %v", err)
	}
	stacks := folded(c, capture.Query{})
	all := total(stacks)
	// libc is mapped by ld.so after the exec snapshot: its frame is named
	// only if the snapshot caught up with the process before it exited.
	named := share(stacks, "__libc_start_call_main;main;alpha;")
	t.Logf("%d samples, %d named: %v", all, named, top(stacks, 5))
	if all < 20 {
		t.Fatalf("only %d samples of the short-lived process", all)
	}
	if float64(named)/float64(all) < 0.8 {
		t.Errorf("only %d of %d samples of the exited process are symbolized: %v", named, all, top(stacks, 5))
	}
}

// Every BPF program, map and link is closed after a capture, also when it
// fails or is cancelled.
func TestRecordClosesBPFObjects(t *testing.T) {
	testutil.RequireRoot(t)
	before := bpfFDs(t)
	ctx, cancel := context.WithCancel(context.Background())
	go func() { time.Sleep(300 * time.Millisecond); cancel() }()
	c, err := profiler.Record(ctx, capture.Params{Type: capture.CPU, Hz: 99, Duration: capture.Duration(time.Minute)}, profiler.Options{})
	if err != nil {
		t.Fatal(err)
	}
	if c.Meta.Duration > 10*time.Second {
		t.Errorf("cancelled capture ran %s", c.Meta.Duration)
	}
	if _, err := profiler.Record(context.Background(), capture.Params{Type: capture.CPU, Command: []string{"/nonexistent/program"}}, profiler.Options{}); err == nil {
		t.Error("a command that does not exist was accepted")
	}
	if after := bpfFDs(t); after != before {
		t.Errorf("%d BPF file descriptors before, %d after", before, after)
	}
}

// bpfFDs counts this process's file descriptors of BPF objects.
func bpfFDs(t *testing.T) int {
	entries, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, e := range entries {
		target, err := os.Readlink(filepath.Join("/proc/self/fd", e.Name()))
		if err == nil && strings.HasPrefix(target, "anon_inode:bpf") {
			n++
		}
	}
	return n
}

func TestRecordCommand(t *testing.T) {
	testutil.RequireRoot(t)
	src := strings.Replace(spinC, "int main(void) {\n\tfor (;;) {", "int main(void) {\n\tfor (int n = 0; n < 6; n++) {", 1)
	bin := testutil.BuildC(t, "clang", src, "-O1", "-fno-omit-frame-pointer", "-mno-omit-leaf-frame-pointer")
	c, err := profiler.Record(context.Background(), capture.Params{Type: capture.CPU, Hz: 499, Command: []string{bin}, Unwind: "fp"}, profiler.Options{})
	if err != nil {
		t.Fatal(err)
	}
	stacks := folded(c, capture.Query{})
	if c.Meta.Duration > 5*time.Second {
		t.Errorf("capture of a command that runs ~0.4 s CPU lasted %s", c.Meta.Duration)
	}
	if share(stacks, "main;alpha;beta") == 0 {
		t.Errorf("command not profiled: %v", top(stacks, 5))
	}
}

func anyKey(m map[string]int64) string {
	for k := range m {
		return k
	}
	return ""
}

func top(m map[string]int64, n int) []string {
	type kv struct {
		k string
		v int64
	}
	var all []kv
	for k, v := range m {
		all = append(all, kv{k, v})
	}
	for i := range all {
		for j := i + 1; j < len(all); j++ {
			if all[j].v > all[i].v {
				all[i], all[j] = all[j], all[i]
			}
		}
	}
	var out []string
	for i := 0; i < len(all) && i < n; i++ {
		out = append(out, all[i].k+" "+strconv.FormatInt(all[i].v, 10))
	}
	return out
}

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
