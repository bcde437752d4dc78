package profiler_test

import (
	"bytes"
	"context"
	"flag"
	"fmt"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/scorch-dev/scorch/capture"
	"github.com/scorch-dev/scorch/internal/testutil"
	"github.com/scorch-dev/scorch/profiler"
)

// The whole-host stack tests (issue 16) record in the default mode; these
// flags measure other modes and rates with the same workloads (the
// benchmark uses them: go test -run WholeHost -args -stacks.unwind=dwarf).
var (
	stacksUnwind = flag.String("stacks.unwind", "", "unwind mode of the whole-host stack tests (default: the default mode)")
	stacksHz     = flag.Int("stacks.hz", 499, "sampling rate of the whole-host stack tests")
	stacksSecs   = flag.Int("stacks.seconds", 20, "length of the whole-host stack tests' captures")
	stacksOnly   = flag.String("stacks.only", "", "comma-separated workloads of TestWholeHostStacks to run (default: all)")
)

// stackDir holds the workloads of the whole-host stack tests and of
// scripts/bench-stacks.sh (goleaf.go is the unwind package's).
const stackDir = "testdata/stacks"

// entryFrames are the functions a complete user stack starts from: the
// thread's entry (C, C++, Node, CPython: _start or the pthread start; Go:
// the goroutine's goexit or the thread's mstart).
var entryFrames = []string{
	"_start", "__libc_start_main", "__libc_start_call_main", "start_thread", "clone3", "clone",
	"runtime.goexit", "runtime.main", "runtime.mstart", "runtime.rt0_go",
}

func isEntry(name string) bool {
	for _, e := range entryFrames {
		if name == e || strings.HasPrefix(name, e+".") || strings.HasPrefix(name, e+"_") {
			return true
		}
	}
	return false
}

// stackProg is one workload of the mix: how to build it, and the
// functions its samples' user stacks must show, root first (each a
// substring of a frame name, in this order; the last one selects the
// samples checked).
type stackProg struct {
	name  string
	chain []string
	// build builds the program and returns the command that runs it (its
	// last argument, the seconds to run, is appended), or why it cannot
	// run here.
	build func(t testing.TB) (argv []string, skip string)
}

// buildProg compiles a source of stackDir into dir/name.
func buildProg(t testing.TB, compiler, src, name string, flags ...string) string {
	t.Helper()
	testutil.RequireTool(t, compiler)
	dir := t.TempDir()
	bin := filepath.Join(dir, name)
	args := append(append([]string{}, flags...), "-o", bin, filepath.Join(stackDir, src))
	if out, err := exec.Command(compiler, args...).CombinedOutput(); err != nil {
		t.Fatalf("%s %s: %v\n%s", compiler, strings.Join(args, " "), err, out)
	}
	return bin
}

// buildGoProg builds ../unwind/testdata/goleaf.go as dir/name.
func buildGoProg(t testing.TB, name string, flags ...string) string {
	t.Helper()
	src, err := os.ReadFile(filepath.Join("..", "unwind", "testdata", "goleaf.go"))
	if err != nil {
		t.Fatal(err)
	}
	bin := testutil.BuildGo(t, string(src), flags...)
	named := filepath.Join(filepath.Dir(bin), name)
	if err := os.Rename(bin, named); err != nil {
		t.Fatal(err)
	}
	return named
}

// startProg starts a program for secs seconds in a directory of its own
// (V8 writes its log to the current one); it is killed when the test ends
// and its output, the work it did, is kept in cmd.Stdout.
func startProg(t testing.TB, argv []string, secs int) *exec.Cmd {
	t.Helper()
	cmd := exec.Command(argv[0], append(argv[1:len(argv):len(argv)], fmt.Sprint(secs))...)
	cmd.Dir = t.TempDir()
	cmd.Stdout = new(bytes.Buffer)
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		cmd.Process.Kill()
		cmd.Wait()
	})
	return cmd
}

// findPythonPerf finds a Python 3.12+ (which has -X perf): the newest pyenv
// version, or python3 on the PATH.
func findPythonPerf() (string, string) {
	var cands []string
	if out, err := exec.Command("pyenv", "root").Output(); err == nil {
		vers, _ := filepath.Glob(filepath.Join(strings.TrimSpace(string(out)), "versions", "3.*", "bin", "python3"))
		sort.Sort(sort.Reverse(sort.StringSlice(vers)))
		cands = append(cands, vers...)
	}
	if p, err := exec.LookPath("python3"); err == nil {
		cands = append(cands, p)
	}
	for _, p := range cands {
		if exec.Command(p, "-X", "perf", "-c", "import sys; sys.exit(0 if sys.version_info >= (3, 12) and sys.is_stack_trampoline_active() else 1)").Run() == nil {
			return p, ""
		}
	}
	return "", fmt.Sprintf("no Python 3.12+ with -X perf (tried pyenv versions and python3 on PATH: %v)", cands)
}

// stackSource is the absolute path of a source of stackDir.
func stackSource(t testing.TB, name string) string {
	p, err := filepath.Abs(filepath.Join(stackDir, name))
	if err != nil {
		t.Fatal(err)
	}
	return p
}

var stackProgs = []stackProg{
	{
		name:  "c-bigframe",
		chain: []string{"outer", "middle", "inner"},
		build: func(t testing.TB) ([]string, string) {
			return []string{buildProg(t, "gcc", "bigframe.c", "bigframe", "-O2", "-fomit-frame-pointer", "-pthread")}, ""
		},
	},
	{
		name:  "cxx-nofp",
		chain: []string{"main", "app::Ledger::settle", "app::byAmount"},
		build: func(t testing.TB) ([]string, string) {
			return []string{buildProg(t, "g++", "ledger.cpp", "ledger", "-O2", "-fomit-frame-pointer")}, ""
		},
	},
	{
		name:  "go",
		chain: []string{"main.main", "main.alpha", "main.beta", "main.leaf"},
		build: func(t testing.TB) ([]string, string) {
			return []string{buildGoProg(t, "goleaf")}, ""
		},
	},
	{
		name:  "go-stripped",
		chain: []string{"main.main", "main.alpha", "main.beta", "main.leaf"},
		build: func(t testing.TB) ([]string, string) {
			return []string{buildGoProg(t, "goleafstripped", "-ldflags=-s -w")}, ""
		},
	},
	{
		name:  "node",
		chain: []string{"outer ", "middle ", "inner "},
		build: func(t testing.TB) ([]string, string) {
			node, err := exec.LookPath("node")
			if err != nil {
				return nil, "node is not installed"
			}
			return []string{node, "--perf-basic-prof", "--interpreted-frames-native-stack", "--no-turbo-inlining", stackSource(t, "spin.js")}, ""
		},
	},
	{
		name:  "python",
		chain: []string{"py::outer", "py::middle", "py::inner"},
		build: func(t testing.TB) ([]string, string) {
			py, skip := findPythonPerf()
			if py == "" {
				return nil, skip
			}
			return []string{py, "-X", "perf", stackSource(t, "spin.py")}, ""
		},
	},
}

// builtProg is a stackProg built for a test or benchmark.
type builtProg struct {
	stackProg
	argv []string
	skip string
}

// buildStackProgs builds the mix (the ones -stacks.only names).
func buildStackProgs(t testing.TB) []builtProg {
	var out []builtProg
	for _, p := range stackProgs {
		if *stacksOnly != "" && !slices.Contains(strings.Split(*stacksOnly, ","), p.name) {
			continue
		}
		argv, skip := p.build(t)
		out = append(out, builtProg{p, argv, skip})
	}
	return out
}

// userFrames returns the user part of a stack (root first): the frames
// after the process name and before the kernel's.
func userFrames(c *capture.Capture, stack uint32) []*capture.Frame {
	var out []*capture.Frame
	for i, id := range c.Stacks[stack] {
		f := &c.Frames[id]
		switch {
		case i == 0 && f.Kind == capture.KindProcess:
		case f.Kind == capture.KindKernel:
			return out
		case f.Kind == capture.KindSynthetic && f.Name != capture.FrameUnknown && f.Name != capture.FrameTruncated:
			return out
		default:
			out = append(out, f)
		}
	}
	return out
}

// stackFigures are the figures of one process's samples.
type stackFigures struct {
	samples  int      // samples with a user stack
	complete int      // of them, reaching the thread's entry
	unnamed  int      // of the others, those whose outermost frame has no name
	leaf     int      // samples showing the chain's last function
	ordered  int      // of them, reaching the entry with the whole chain in order
	leafDone int      // of them, reaching the entry (in order or not)
	ends     []string // the roots of incomplete stacks, most frequent first
	example  string   // an ordered stack
	bad      string   // an incomplete one
	badLeaf  string   // one with the leaf, incomplete or out of order (out of order preferred)
}

func (f stackFigures) String() string {
	return fmt.Sprintf("%d samples, %.1f%% complete; %d with the leaf, %.1f%% in order", f.samples,
		100*frac(f.complete, f.samples), f.leaf, 100*frac(f.ordered, f.leaf))
}

func frac(a, b int) float64 { return float64(a) / float64(max(b, 1)) }

// chainInOrder reports whether names contains each of chain as a substring of
// successive frames, in order.
func chainInOrder(names []string, chain []string) bool {
	i := 0
	for _, n := range names {
		if i < len(chain) && strings.Contains(n, chain[i]) {
			i++
		}
	}
	return i == len(chain)
}

// figures measures the samples of the processes pids.
func figures(c *capture.Capture, pids map[uint32]bool, chain []string) stackFigures {
	var f stackFigures
	ends := map[string]int{}
	for i := range c.Events {
		e := &c.Events[i]
		if !pids[e.PID] {
			continue
		}
		user := userFrames(c, e.Stack)
		if len(user) == 0 {
			continue
		}
		f.samples++
		names := make([]string, len(user))
		for j, fr := range user {
			names[j] = fr.Name
		}
		complete := isEntry(names[0])
		if complete {
			f.complete++
		} else {
			ends[names[0]]++
			if names[0] == capture.FrameUnknown {
				f.unnamed++
			}
			if f.bad == "" {
				f.bad = strings.Join(names, ";")
			}
		}
		if len(chain) > 0 && slices.ContainsFunc(names, func(n string) bool { return strings.Contains(n, chain[len(chain)-1]) }) {
			f.leaf++
			if complete {
				f.leafDone++
			}
			if chainInOrder(names, chain) && complete {
				f.ordered++
				if f.example == "" {
					f.example = strings.Join(names, ";")
				}
			} else if f.badLeaf == "" || complete {
				f.badLeaf = strings.Join(names, ";")
			}
		}
	}
	for k := range ends {
		f.ends = append(f.ends, k)
	}
	sort.Slice(f.ends, func(i, j int) bool { return ends[f.ends[i]] > ends[f.ends[j]] })
	for i, k := range f.ends {
		f.ends[i] = fmt.Sprintf("%s (%d)", k, ends[k])
	}
	return f
}

// wholeHost records the whole host in the mode of the flags for secs
// seconds.
func wholeHost(t testing.TB, secs int) *capture.Capture {
	t.Helper()
	c, err := profiler.Record(context.Background(), capture.Params{
		Type: capture.CPU, Hz: *stacksHz, Unwind: *stacksUnwind, Duration: capture.Duration(time.Duration(secs) * time.Second),
	}, profiler.Options{})
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func first(s []string, n int) []string { return s[:min(n, len(s))] }

var stacksRounds = flag.Int("stacks.rounds", 3, "rounds of BenchmarkStackSlowdown")

// mapMemlock sums the memlock bytes of the BPF maps this process holds
// (the fdinfo of its map descriptors; maps shared by descriptors counted
// once).
func mapMemlock() uint64 {
	fds, _ := os.ReadDir("/proc/self/fdinfo")
	seen := map[string]bool{}
	var sum uint64
	for _, fd := range fds {
		b, err := os.ReadFile(filepath.Join("/proc/self/fdinfo", fd.Name()))
		if err != nil || !bytes.Contains(b, []byte("map_id:")) {
			continue
		}
		var id string
		var memlock uint64
		for _, l := range strings.Split(string(b), "\n") {
			k, v, _ := strings.Cut(l, ":")
			switch k {
			case "map_id":
				id = strings.TrimSpace(v)
			case "memlock":
				fmt.Sscan(strings.TrimSpace(v), &memlock)
			}
		}
		if id != "" && !seen[id] {
			seen[id] = true
			sum += memlock
		}
	}
	return sum
}

// BenchmarkWholeHostStacks records the whole host (-stacks.hz, the
// benchmark's 999; -stacks.unwind) for -stacks.seconds while the mix of
// TestWholeHostStacks runs, and reports the share of the mix's user stacks
// that reach their entry (all, and per program), the sampler's BPF time per
// sample (with kernel.bpf_stats_enabled=1), ring bytes per event, the
// unwind tables' map bytes and the memlock of every BPF map of the capture.
func BenchmarkWholeHostStacks(b *testing.B) {
	testutil.RequireRoot(b)
	progs := buildStackProgs(b)
	secs := *stacksSecs
	for b.Loop() {
		pids := map[string]map[uint32]bool{}
		for _, p := range progs {
			if p.skip != "" {
				b.Logf("%s: %s", p.name, p.skip)
				continue
			}
			pids[p.name] = map[uint32]bool{uint32(startProg(b, p.argv, secs+30).Process.Pid): true}
		}
		time.Sleep(1500 * time.Millisecond)
		memlock := make(chan uint64, 1)
		go func() {
			time.Sleep(time.Duration(secs) * time.Second * 3 / 4)
			memlock <- mapMemlock()
		}()
		c := wholeHost(b, secs)
		var all stackFigures
		for _, p := range progs {
			if pids[p.name] == nil {
				continue
			}
			f := figures(c, pids[p.name], p.chain)
			b.Logf("%s: %s; incomplete stacks end at %v", p.name, f, first(f.ends, 4))
			b.ReportMetric(100*frac(f.complete, f.samples), p.name+"-complete-%")
			all.samples += f.samples
			all.complete += f.complete
		}
		st := c.Meta.Stats
		x := st.Counters.Totals()
		b.ReportMetric(100*frac(all.complete, all.samples), "complete-%")
		b.ReportMetric(float64(all.samples), "mix-samples")
		if x[capture.BPFRuns] > 0 {
			b.ReportMetric(float64(x[capture.BPFRunNanos])/float64(x[capture.BPFRuns]), "bpf-ns/sample")
		}
		b.ReportMetric(float64(x[capture.RingBytes])/float64(max(st.Samples, 1)), "ring-B/event")
		b.ReportMetric(float64(st.Samples), "samples")
		b.ReportMetric(float64(st.Lost), "lost")
		b.ReportMetric(float64(x[capture.Counter("unwind_table_bytes")]), "table-bytes")
		b.ReportMetric(float64(<-memlock), "memlock-B")
		b.Logf("--unwind %s: %v", c.Meta.Params.Unwind, st.Counters.Sorted())
	}
}

// runMix runs every program of the mix for secs seconds and returns the
// work each did per CPU second it used, by name: on a shared machine the
// programs' share of the CPUs swings with the other users', while the cost
// of profiling (the sampling interrupt, the BPF program, the caches it
// disturbs) lands on the CPU time of the program it interrupts.
func runMix(b *testing.B, progs []builtProg, secs int) map[string]float64 {
	cmds := map[string]*exec.Cmd{}
	for _, p := range progs {
		if p.skip == "" {
			cmds[p.name] = startProg(b, p.argv, secs)
		}
	}
	out := map[string]float64{}
	for name, cmd := range cmds {
		if err := cmd.Wait(); err != nil {
			b.Fatalf("%s: %v", name, err)
		}
		var n float64
		if _, err := fmt.Sscan(cmd.Stdout.(*bytes.Buffer).String(), &n); err != nil || n <= 0 {
			b.Fatalf("%s printed %q, not its rounds", name, cmd.Stdout.(*bytes.Buffer).String())
		}
		ru, ok := cmd.ProcessState.SysUsage().(*syscall.Rusage)
		if !ok {
			b.Fatal("no rusage")
		}
		cpu := time.Duration(ru.Utime.Nano() + ru.Stime.Nano()).Seconds()
		out[name] = n / max(cpu, 1e-3)
	}
	return out
}

// BenchmarkStackSlowdown measures what profiling costs the mix: its work
// rate under a whole-host capture at -stacks.hz in each unwind mode and
// under `perf record -g -a` at the same rate, against no profiling, in
// -stacks.rounds interleaved rounds (each profiled run against the mean of
// the unprofiled runs just before and after it, as the machine drifts).
// Reported: each condition's median slowdown of the mix (the geometric
// mean of the programs' work per CPU second), in percent, and its
// quartiles (q1 the smaller slowdown).
func BenchmarkStackSlowdown(b *testing.B) {
	testutil.RequireRoot(b)
	perf, err := exec.LookPath("perf")
	if err != nil {
		b.Skip("perf is not installed (Debian package linux-perf)")
	}
	progs := buildStackProgs(b)
	secs := *stacksSecs
	profiled := map[string]func(run func()){}
	for _, mode := range []string{"auto", "dwarf", "fp"} {
		profiled[mode] = func(run func()) {
			ctx, cancel := context.WithCancel(context.Background())
			started := make(chan struct{})
			var once sync.Once
			done := make(chan error, 1)
			go func() {
				_, err := profiler.Record(ctx, capture.Params{Type: capture.CPU, Hz: *stacksHz, Unwind: mode, Duration: capture.Duration(10 * time.Minute)},
					profiler.Options{Progress: func(profiler.Progress) { once.Do(func() { close(started) }) }})
				done <- err
			}()
			select {
			case <-started:
			case err := <-done:
				b.Fatalf("--unwind %s: %v", mode, err)
			}
			run()
			cancel()
			if err := <-done; err != nil {
				b.Fatal(err)
			}
		}
	}
	profiled["perf"] = func(run func()) {
		cmd := exec.Command(perf, "record", "-q", "-g", "-a", "-F", fmt.Sprint(*stacksHz), "-o", filepath.Join(b.TempDir(), "perf.data"))
		if err := cmd.Start(); err != nil {
			b.Fatal(err)
		}
		time.Sleep(time.Second)
		run()
		cmd.Process.Signal(os.Interrupt)
		cmd.Wait()
	}
	conds := []string{"auto", "dwarf", "fp", "perf"}
	for b.Loop() {
		ratios := map[string][]float64{}
		base := runMix(b, progs, secs)
		for round := range *stacksRounds {
			// Each round starts at another condition, so that none
			// always follows the same one (a cache or a frequency
			// state left behind).
			for c := range conds {
				cond := conds[(round+c)%len(conds)]
				var got map[string]float64
				profiled[cond](func() { got = runMix(b, progs, secs) })
				next := runMix(b, progs, secs)
				logSum, n := 0.0, 0
				for name, r := range got {
					logSum += math.Log(r / ((base[name] + next[name]) / 2))
					n++
				}
				ratios[cond] = append(ratios[cond], math.Exp(logSum/float64(n)))
				base = next
			}
		}
		for _, cond := range conds {
			r := ratios[cond]
			sort.Float64s(r)
			b.Logf("%s: rate ratios %.3f", cond, r)
			// The median and the quartiles' slowdowns (the spread).
			b.ReportMetric(100*(1-r[len(r)/2]), cond+"-slowdown-%")
			b.ReportMetric(100*(1-r[(len(r)*3)/4]), cond+"-slowdown-q1-%")
			b.ReportMetric(100*(1-r[len(r)/4]), cond+"-slowdown-q3-%")
		}
	}
}

// largeAllocsGo allocates large objects on its main goroutine: the heap
// takes their spans on the thread's g0 stack, through runtime.systemstack,
// and the garbage collector's workers switch there too.
const largeAllocsGo = `package main

import (
	"os"
	"strconv"
	"time"
)

var sink []byte

//go:noinline
func alloc() {
	for i := 0; i < 64; i++ {
		sink = make([]byte, 1<<20+i)
	}
}

func main() {
	secs, _ := strconv.Atoi(os.Args[1])
	end := time.Now().Add(time.Duration(secs) * time.Second)
	for time.Now().Before(end) {
		alloc()
	}
}
`

// A Go stack that runs on the thread's g0 stack through
// runtime.systemstack continues on the goroutine's stack, as frame
// pointers (perf -g) and Go's own profiler find it: the unwinder follows
// systemstack's rbp from one stack to the other (before, 86% of these
// samples stopped at systemstack, as if it were the outermost frame),
// built with and without its .debug_frame.
func TestGoSystemstackCrossed(t *testing.T) {
	testutil.RequireRoot(t)
	for _, build := range []struct {
		name  string
		flags []string
	}{{"unstripped", nil}, {"stripped", []string{"-ldflags=-s -w"}}} {
		t.Run(build.name, func(t *testing.T) {
			bin := testutil.BuildGo(t, largeAllocsGo, build.flags...)
			cmd := startProg(t, []string{bin}, 5)
			time.Sleep(300 * time.Millisecond)
			c, err := profiler.Record(context.Background(), capture.Params{
				Type: capture.CPU, Duration: capture.Duration(2 * time.Second), Hz: 999, Unwind: "auto", PIDs: []int{cmd.Process.Pid},
			}, profiler.Options{})
			if err != nil {
				t.Fatal(err)
			}
			var through, whole, fromAlloc int64
			for s, n := range folded(c, capture.Query{}) {
				if !strings.Contains(s, ";runtime.systemstack;") {
					continue
				}
				through += n
				if f := strings.Split(s, ";"); len(f) > 1 && isEntry(f[1]) {
					whole += n
				}
				if strings.Contains(s, ";main.alloc;") {
					fromAlloc += n
				}
			}
			t.Logf("%d samples through runtime.systemstack: %d from the thread's entry, %d under main.alloc", through, whole, fromAlloc)
			if through < 50 {
				t.Fatalf("only %d samples through runtime.systemstack", through)
			}
			if whole < through*95/100 {
				t.Errorf("%d of %d samples through runtime.systemstack reach the goroutine's entry, want 95%%", whole, through)
			}
			if fromAlloc == 0 {
				t.Error("no sample shows main.alloc above runtime.systemstack")
			}
		})
	}
}
