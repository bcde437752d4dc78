package profiler_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/google/pprof/profile"
	"github.com/scorch-dev/scorch/capture"
	"github.com/scorch-dev/scorch/formats"
	"github.com/scorch-dev/scorch/internal/testutil"
	"github.com/scorch-dev/scorch/profiler"
	"github.com/scorch-dev/scorch/symbolizer"
)

// leafC spends its time in a loop of several instructions, so samples land
// at many addresses of leaf_spin, called from main and from a thread.
const leafC = `
#include <pthread.h>
#include <stdlib.h>
volatile unsigned long sink;
__attribute__((noinline)) void leaf_spin(unsigned long n) {
	for (unsigned long i = 0; i < n; i++) { sink += i * 3; sink ^= i >> 2; sink -= i & 7; }
}
void *worker(void *a) { for (int k = 0; k < 150; k++) leaf_spin(1000000); return 0; }
int main(int argc, char **argv) {
	pthread_t t;
	pthread_create(&t, 0, worker, 0);
	for (int k = 0; k < 150; k++) leaf_spin(1000000);
	pthread_join(t, 0);
	return 0;
}
`

func recordLeaf(t *testing.T, bin, unwind string) *capture.Capture {
	t.Helper()
	c, err := profiler.Record(context.Background(), capture.Params{Type: capture.CPU, Hz: 499, Unwind: unwind,
		Command: []string{bin}, Duration: capture.Duration(20 * time.Second)}, profiler.Options{})
	if err != nil {
		t.Fatal(err)
	}
	if len(c.Events) < 50 {
		t.Fatalf("only %d samples", len(c.Events))
	}
	return c
}

// A frame is its name: folded output has one line per distinct stack,
// speedscope one shared frame per function and pprof one function per
// name, while pprof locations keep the addresses.
func TestOneFramePerFunction(t *testing.T) {
	testutil.RequireRoot(t)
	bin := testutil.BuildC(t, "gcc", leafC, "-O1", "-g", "-fno-omit-frame-pointer", "-pthread")
	c := recordLeaf(t, bin, "") // the default mode
	leafAddrs := map[uint64]bool{}
	for _, f := range c.Frames {
		if f.Name == "leaf_spin" {
			leafAddrs[f.Offset] = true
		}
	}
	if len(leafAddrs) < 2 {
		t.Skipf("all samples at %d address(es) of leaf_spin: nothing to merge", len(leafAddrs))
	}

	var folded bytes.Buffer
	if err := formats.WriteFolded(&folded, c, capture.Query{}); err != nil {
		t.Fatal(err)
	}
	lines := map[string]int{}
	var total int64
	for _, l := range strings.Split(strings.TrimSpace(folded.String()), "\n") {
		i := strings.LastIndexByte(l, ' ')
		lines[l[:i]]++
		var v int64
		for _, ch := range l[i+1:] {
			v = v*10 + int64(ch-'0')
		}
		total += v
	}
	for st, n := range lines {
		if n > 1 {
			t.Errorf("folded stack %q appears on %d lines", st, n)
		}
	}
	if total != int64(len(c.Events)) {
		t.Errorf("folded values sum to %d, want the %d samples", total, len(c.Events))
	}
	if lines["workload;_start;__libc_start_main;__libc_start_call_main;main;leaf_spin"] != 1 {
		t.Errorf("no line for main;leaf_spin:\n%s", folded.String())
	}

	var ss bytes.Buffer
	if err := formats.WriteSpeedscope(&ss, c, capture.Query{}); err != nil {
		t.Fatal(err)
	}
	var sf struct {
		Shared struct {
			Frames []struct{ Name, File string }
		}
	}
	if err := json.Unmarshal(ss.Bytes(), &sf); err != nil {
		t.Fatal(err)
	}
	names := map[string]int{}
	for _, f := range sf.Shared.Frames {
		names[f.Name]++
	}
	if names["leaf_spin"] != 1 {
		t.Errorf("speedscope has %d frames named leaf_spin, want 1", names["leaf_spin"])
	}

	p := formats.Profile(c, capture.Query{})
	fns := map[string]int{}
	for _, fn := range p.Function {
		fns[fn.Name]++
	}
	if fns["leaf_spin"] != 1 {
		t.Errorf("pprof has %d functions named leaf_spin, want 1", fns["leaf_spin"])
	}
	locAddrs := map[uint64]bool{}
	for _, l := range p.Location {
		if len(l.Line) > 0 && l.Line[len(l.Line)-1].Function.Name == "leaf_spin" {
			locAddrs[l.Address] = true
		}
	}
	if len(locAddrs) != len(leafAddrs) {
		t.Errorf("pprof has %d locations in leaf_spin, want one per address (%d)", len(locAddrs), len(leafAddrs))
	}
	var pb bytes.Buffer
	if err := p.Write(&pb); err != nil {
		t.Fatal(err)
	}
	if _, err := profile.Parse(&pb); err != nil {
		t.Fatalf("pprof output does not parse: %v", err)
	}
}

// main sits under one root, the entry chain CFI finds, whether a stack was
// walked with frame pointers or with CFI; so does a thread's function.
func TestOneRootPerProgram(t *testing.T) {
	testutil.RequireRoot(t)
	bin := testutil.BuildC(t, "gcc", leafC, "-O1", "-g", "-fno-omit-frame-pointer", "-pthread")
	for _, mode := range []string{"fp", "auto", "dwarf"} {
		t.Run(mode, func(t *testing.T) {
			c := recordLeaf(t, bin, mode)
			stacks := folded(c, capture.Query{})
			all := total(stacks)
			user := share(stacks, "leaf_spin")
			main := share(stacks, "workload;_start;__libc_start_main;__libc_start_call_main;")
			thread := share(stacks, "workload;clone3;start_thread;")
			if user < all/2 {
				t.Fatalf("only %d of %d samples in leaf_spin", user, all)
			}
			if got := main + thread; got < user*95/100 {
				var b strings.Builder
				for s, v := range stacks {
					if strings.Contains(s, "leaf_spin") && !strings.HasPrefix(s, "workload;_start;") && !strings.HasPrefix(s, "workload;clone3;") {
						b.WriteString(s + "\n")
						_ = v
					}
				}
				t.Errorf("%d of %d samples of leaf_spin under the entry roots; others:\n%s", got, user, b.String())
			}
			if main == 0 || thread == 0 {
				t.Errorf("main's root has %d samples, the thread's %d: want both", main, thread)
			}
		})
	}
}

// inlineSpinC spins in a function inlined into outer, built with -g.
const inlineSpinC = `
volatile unsigned long sink;
static inline __attribute__((always_inline)) void inner_spin(unsigned long n) {
	for (unsigned long i = 0; i < n; i++) { sink += i * 7; sink ^= i; } /* SPIN */
}
__attribute__((noinline)) void outer(void) {
	inner_spin(300000000UL); /* CALL */
	sink++;
}
int main(void) { outer(); return 0; }
`

// Native frames carry file:line from DWARF and inlined functions as
// "(inline)" lines of their location, as go tool pprof shows them; the
// mapping says so, and only what it has.
func TestPprofNativeLines(t *testing.T) {
	testutil.RequireRoot(t)
	goBin := testutil.RequireTool(t, "go")
	bin := testutil.BuildC(t, "gcc", inlineSpinC, "-O2", "-g", "-fno-omit-frame-pointer")
	c := recordLeaf(t, bin, "auto")
	path := filepath.Join(t.TempDir(), "cpu.pb.gz")
	var buf bytes.Buffer
	if err := formats.WritePprof(&buf, c, capture.Query{}); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, buf.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
	pprof := func(flag string) string {
		out, err := exec.Command(goBin, "tool", "pprof", flag, path).CombinedOutput()
		if err != nil {
			t.Fatalf("go tool pprof %s: %v\n%s", flag, err, out)
		}
		return string(out)
	}
	lineOf := func(marker string) int {
		for i, l := range strings.Split(inlineSpinC, "\n") {
			if strings.Contains(l, marker) {
				return i + 1
			}
		}
		return -1
	}
	src := filepath.Join(filepath.Dir(bin), "workload.c")
	// -raw: a location's lines, innermost first: inner_spin at the loop,
	// then outer at the call.
	raw := pprof("-raw")
	spin := fmt.Sprintf(`inner_spin %s:%d(:0)? s=0\n\s+outer %s:%d(:0)? s=0`, regexp.QuoteMeta(src), lineOf("SPIN"), regexp.QuoteMeta(src), lineOf("CALL"))
	if !regexp.MustCompile(spin).MatchString(raw) {
		t.Errorf("go tool pprof -raw has no location %q:\n%s", spin, raw)
	}
	// -traces marks the inlined frame.
	traces := pprof("-traces")
	if !regexp.MustCompile(`inner_spin \(inline\)\n\s+outer\n`).MatchString(traces) {
		t.Errorf("go tool pprof -traces does not show inner_spin (inline) under outer:\n%s", traces)
	}
	p := formats.Profile(c, capture.Query{})
	for _, m := range p.Mapping {
		if m.File == bin && (!m.HasFunctions || !m.HasFilenames || !m.HasLineNumbers || !m.HasInlineFrames) {
			t.Errorf("the program's mapping does not claim what it has: %+v", m)
		}
		if strings.HasPrefix(m.File, "[kernel") && (m.HasFilenames || m.HasLineNumbers || m.HasInlineFrames) {
			t.Errorf("the kernel's mapping claims lines: %+v", m)
		}
	}
}

// strippedGo is built with -ldflags=-s -w: no symbol table, no DWARF; the
// compiler inlines caller and innerSum into main.
const strippedGo = `package main

import "os"

var sink int

func innerSum(n int) int {
	s := 0
	for i := 0; i < n; i++ {
		s += i ^ (i >> 3)
	}
	return s
}

func caller(n int) int { return innerSum(n) + 1 }

func main() {
	for k := 0; k < 2500; k++ {
		sink += caller(1000000)
	}
	os.Exit(sink & 0)
}
`

// A stripped Go binary's inlined frames come from its pclntab alone.
func TestStrippedGoInlinedFrames(t *testing.T) {
	testutil.RequireRoot(t)
	bin := testutil.BuildGo(t, strippedGo, "-ldflags=-s -w")
	for _, mode := range []string{"fp", "auto"} {
		t.Run(mode, func(t *testing.T) {
			c := recordLeaf(t, bin, mode)
			stacks := folded(c, capture.Query{})
			all := total(stacks)
			got := share(stacks, "workload;runtime.goexit;runtime.main;main.main;main.caller_[i];main.innerSum_[i]")
			if got < all*9/10 {
				t.Errorf("%d of %d samples under main.main;main.caller_[i];main.innerSum_[i]: %v", got, all, stacks)
			}
		})
	}
}

// shortC runs for 5 ms in main → work, calling libc's memset.
const shortC = `
#include <string.h>
#include <time.h>
volatile unsigned long sink;
__attribute__((noinline)) void work(void) {
	struct timespec a, b;
	clock_gettime(CLOCK_MONOTONIC, &a);
	char buf[4096];
	do {
		for (int i = 0; i < 200; i++) { memset(buf, i, sizeof buf); sink += buf[i]; }
		clock_gettime(CLOCK_MONOTONIC, &b);
	} while ((b.tv_sec - a.tv_sec) * 1000000000L + (b.tv_nsec - a.tv_nsec) < 5000000L);
}
int main(void) { work(); return 0; }
`

// launchC runs argv[1] a hundred times, one after the other.
const launchC = `
#include <spawn.h>
#include <sys/wait.h>
extern char **environ;
int main(int argc, char **argv) {
	for (int i = 0; i < 100; i++) {
		pid_t pid;
		if (posix_spawn(&pid, argv[1], 0, 0, argv + 1, environ) != 0) return 1;
		waitpid(pid, 0, 0);
	}
	return 0;
}
`

// A 5 ms program keeps its libraries: the kernel's records of what it
// maps name its frames, even when /proc never shows it (a symbolizer whose
// /proc has no processes stands for a reader always too late).
func TestShortLivedKeepsLibraries(t *testing.T) {
	testutil.RequireRoot(t)
	short := testutil.BuildC(t, "gcc", shortC, "-O1", "-g", "-fno-omit-frame-pointer")
	named := filepath.Join(filepath.Dir(short), "shortlived")
	if err := os.Rename(short, named); err != nil {
		t.Fatal(err)
	}
	launch := testutil.BuildC(t, "gcc", launchC, "-O1")
	// A /proc with kallsyms only: kernel frames are named (samples in
	// execve are told apart by them), processes are not there.
	noProcs := t.TempDir()
	if err := os.Symlink("/proc/kallsyms", filepath.Join(noProcs, "kallsyms")); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name     string
		procRoot string
	}{
		{"proc and records", ""},
		{"records alone", noProcs},
	} {
		t.Run(tc.name, func(t *testing.T) {
			sym := symbolizer.New(symbolizer.Options{ProcRoot: tc.procRoot})
			c, err := profiler.Record(context.Background(), capture.Params{Type: capture.CPU, Hz: 999,
				Command: []string{launch, named}, Duration: capture.Duration(60 * time.Second)}, profiler.Options{Symbolizer: sym})
			if err != nil {
				t.Fatal(err)
			}
			checkShortLived(t, c)
		})
	}
}

func checkShortLived(t *testing.T, c *capture.Capture) {
	t.Helper()
	stacks := folded(c, capture.Query{})
	var all, known, main int64
	var unknown []string
	for s, v := range stacks {
		// Samples inside execve have the user registers of the image
		// being replaced: they are not the program's yet.
		if !strings.HasPrefix(s, "shortlived;") || strings.Contains(s, "__x64_sys_execve_[k]") {
			continue
		}
		all += v
		if strings.Contains(s, "[unknown]") {
			unknown = append(unknown, fmt.Sprintf("%s %d", s, v))
			continue
		}
		known += v
		if strings.Contains(s, ";__libc_start_call_main;main;work") {
			main += v
		}
	}
	if all < 100 {
		t.Fatalf("only %d samples of the short-lived program", all)
	}
	t.Logf("%d of %d samples fully named, %d under main;work; mapping records %d, lost %d", known, all, main,
		c.Meta.Stats.Counters.Get(capture.MappingRecords), c.Meta.Stats.Counters.Get(capture.MappingRecordsLost))
	// Before the mapping records, two thirds of such samples had
	// [unknown] for libc; re-reading /proc after exec brought it to 80%.
	if known < all*9/10 {
		t.Errorf("%d of %d samples of the short-lived program fully named; with [unknown]:\n%s", known, all, strings.Join(unknown, "\n"))
	}
	if main < all/2 {
		t.Errorf("only %d of %d samples under __libc_start_call_main;main;work", main, all)
	}
}

// mapsC prints its own executable mappings (/proc/self/maps), then spins in
// its own code and in libc's memset for a second or so of CPU (a fixed
// amount of work: a loaded machine slows it but does not cut it short).
const mapsC = `
#include <stdio.h>
#include <string.h>
volatile unsigned long sink;
__attribute__((noinline)) void spin_maps(void) {
	char buf[4096];
	for (unsigned long j = 0; j < 8000000UL; j++) {
		memset(buf, (int)j, sizeof buf);
		for (int i = 0; i < 64; i++) sink += buf[i] ^ j;
	}
}
int main(void) {
	char line[4096];
	FILE *f = fopen("/proc/self/maps", "r");
	while (fgets(line, sizeof line, f)) if (strstr(line, " r-xp ")) fputs(line, stdout);
	fclose(f);
	fflush(stdout);
	spin_maps();
	return 0;
}
`

// pprof mappings are the process's own: its ranges, file offsets and build
// IDs, as go tool pprof -raw lists them, and each claims functions, files
// and lines only when its frames have them.
func TestPprofRealMappings(t *testing.T) {
	testutil.RequireRoot(t)
	goBin := testutil.RequireTool(t, "go")
	bin := testutil.BuildC(t, "gcc", mapsC, "-O1", "-g", "-fno-omit-frame-pointer", "-Wl,--build-id")
	var out bytes.Buffer
	c, err := profiler.Record(context.Background(), capture.Params{Type: capture.CPU, Hz: 499,
		Command: []string{bin}, Duration: capture.Duration(20 * time.Second)}, profiler.Options{CommandStdout: &out})
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "cpu.pb.gz")
	var buf bytes.Buffer
	if err := formats.WritePprof(&buf, c, capture.Query{}); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, buf.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
	raw, err := exec.Command(goBin, "tool", "pprof", "-raw", path).CombinedOutput()
	if err != nil {
		t.Fatalf("go tool pprof -raw: %v\n%s", err, raw)
	}
	// -raw lists "ID: START/LIMIT/OFFSET FILE BUILDID [FN][FL][LN][IN]".
	listed := map[string]string{}
	_, section, _ := strings.Cut(string(raw), "\nMappings\n")
	for _, l := range strings.Split(section, "\n") {
		f := strings.Fields(l)
		if len(f) >= 3 && strings.HasSuffix(f[0], ":") {
			listed[f[1]+" "+f[2]] = l
		}
	}
	libc := ""
	for _, l := range strings.Split(strings.TrimSpace(out.String()), "\n") {
		// start-end perms offset dev inode path
		f := strings.Fields(l)
		if len(f) < 6 || (f[5] != bin && !strings.Contains(f[5], "/libc.so")) {
			continue
		}
		se := strings.Split(f[0], "-")
		var start, end, off uint64
		fmt.Sscanf(se[0], "%x", &start)
		fmt.Sscanf(se[1], "%x", &end)
		fmt.Sscanf(f[2], "%x", &off)
		key := fmt.Sprintf("%#x/%#x/%#x %s", start, end, off, f[5])
		got, ok := listed[key]
		if !ok {
			t.Errorf("no pprof mapping %s; -raw mappings:\n%s", key, section)
			continue
		}
		t.Logf("%s", got)
		if f[5] == bin {
			if !strings.Contains(got, fileBuildIDHex(t, bin)) || !strings.Contains(got, "[FN][FL][LN]") {
				t.Errorf("the program's mapping %q: want its build id and [FN][FL][LN]", got)
			}
		} else {
			libc = got
			if !strings.Contains(got, "[FN]") {
				t.Errorf("libc's mapping %q: want [FN]", got)
			}
		}
	}
	if libc == "" {
		t.Errorf("libc's mapping not checked: the program printed\n%s", out.String())
	}
	if strings.Contains(section, "0x100000000/") {
		t.Errorf("a synthetic mapping is left:\n%s", section)
	}
	// A location's address is where the process ran it: its file offset
	// (address - start + offset), given to addr2line, is the same function.
	p, err := profile.Parse(bytes.NewReader(buf.Bytes()))
	if err != nil {
		t.Fatal(err)
	}
	checked := 0
	for _, l := range p.Location {
		if l.Mapping == nil || l.Mapping.File != bin || len(l.Line) == 0 || l.Line[len(l.Line)-1].Function.Name != "spin_maps" {
			continue
		}
		off := l.Address - l.Mapping.Start + l.Mapping.Offset // a PIE's text: file offset = ELF address
		got, err := exec.Command("addr2line", "-f", "-e", bin, fmt.Sprintf("%#x", off)).Output()
		if err != nil {
			t.Fatalf("addr2line: %v", err)
		}
		if name := strings.SplitN(string(got), "\n", 2)[0]; name != "spin_maps" {
			t.Errorf("location %#x of spin_maps: file offset %#x is %q for addr2line", l.Address, off, name)
		}
		checked++
	}
	if checked == 0 {
		t.Error("no location of spin_maps in the program's mapping")
	}
}

func fileBuildIDHex(t *testing.T, path string) string {
	t.Helper()
	out, err := exec.Command("readelf", "-n", path).CombinedOutput()
	if err != nil {
		t.Fatalf("readelf -n: %v\n%s", err, out)
	}
	m := regexp.MustCompile(`Build ID: ([0-9a-f]+)`).FindSubmatch(out)
	if m == nil {
		t.Fatalf("%s has no build id:\n%s", path, out)
	}
	return string(m[1])
}
