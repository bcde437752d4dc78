package profiler_test

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/scorch-dev/scorch/capture"
	"github.com/scorch-dev/scorch/internal/testutil"
	"github.com/scorch-dev/scorch/profiler"
)

// allocC waits for SIGUSR1, then runs allocLoops loops of: alloc_big (10 ×
// 1 MiB, freed), alloc_small (1000 × 100 B, freed) and leaky (64 KiB never
// freed), says "done" (with write: printf would allocate) and idles, so
// that a capture from before the signal to "done" sees exactly the
// program's arithmetic. -fno-builtin keeps gcc from removing
// malloc/free pairs.
var allocC = loopProgram(`__attribute__((noinline)) void alloc_big(void) {
	void *p[10];
	for (int i = 0; i < 10; i++)
		sink = p[i] = malloc(1 << 20);
	for (int i = 0; i < 10; i++)
		free(p[i]);
}

__attribute__((noinline)) void alloc_small(void) {
	static void *p[1000];
	for (int i = 0; i < 1000; i++)
		sink = p[i] = malloc(100);
	for (int i = 0; i < 1000; i++)
		free(p[i]);
}

__attribute__((noinline)) void leaky(void) {
	sink = malloc(64 << 10);
}
`, allocLoops, 5000, "alloc_big()", "alloc_small()", "leaky()")

const allocLoops = 40

// loopProgram is a C workload for recordLoops: it waits for SIGUSR1, then
// runs loops rounds of calls (functions of decls) with a pause of pauseUs,
// says "done" (with write: printf would allocate) and idles.
func loopProgram(decls string, loops, pauseUs int, calls ...string) string {
	var body strings.Builder
	for _, c := range calls {
		fmt.Fprintf(&body, "\t\t%s;\n", c)
	}
	return fmt.Sprintf(`#include <signal.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <unistd.h>

static volatile sig_atomic_t go;
static void on_go(int sig) { go = 1; }
void *volatile sink;

%s
int main(void) {
	signal(SIGUSR1, on_go);
	while (!go)
		usleep(1000);
	for (int i = 0; i < %d; i++) {
%s		usleep(%d);
	}
	if (write(1, "done\n", 5) != 5)
		return 1;
	for (;;)
		pause();
}
`, decls, loops, body.String(), pauseUs)
}

// recordLoops records a workload that waits for SIGUSR1, runs its loops
// and prints "done": from before the signal until "done", however slow the
// machine (uprobes cost tens of microseconds per call in some VMs).
func recordLoops(t *testing.T, bin string, p capture.Params) *capture.Capture {
	t.Helper()
	cmd := exec.Command(bin)
	cmd.Stderr = os.Stderr
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		cmd.Process.Kill()
		cmd.Wait()
	})
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	done := make(chan struct{})
	go func() {
		defer close(done)
		line, _ := bufio.NewReader(out).ReadString('\n')
		if line == "done\n" {
			cancel()
		}
	}()
	time.Sleep(100 * time.Millisecond) // libc mapped
	p.PIDs = []int{cmd.Process.Pid}
	p.Duration = capture.Duration(2 * time.Minute)
	c, err := profiler.Record(ctx, p, profiler.Options{Ready: func() { cmd.Process.Signal(syscall.SIGUSR1) }})
	if err != nil {
		t.Fatal(err)
	}
	select {
	case <-done:
	default:
		t.Fatalf("the workload did not finish its loops within %s", time.Duration(p.Duration))
	}
	return c
}

func TestMemMallocBytesAndInuse(t *testing.T) {
	testutil.RequireRoot(t)
	bin := testutil.BuildC(t, "gcc", allocC, "-O1", "-g", "-fno-omit-frame-pointer", "-fno-builtin")
	c := recordLoops(t, bin, capture.Params{Type: capture.Mem, Event: "malloc", Unwind: "auto"})
	if c.Meta.Unit != "bytes" {
		t.Errorf("unit %q, want bytes", c.Meta.Unit)
	}
	if c.Meta.Stats.Lost != 0 {
		t.Errorf("%d events lost", c.Meta.Stats.Lost)
	}
	alloc := folded(c, capture.Query{})
	t.Logf("alloc view: %v", top(alloc, 6))
	counts := map[string]int64{}
	for _, sv := range c.Aggregate(capture.Query{}) {
		s := strings.Join(c.FoldedStack(sv.Stack), ";")
		for _, fn := range []string{"alloc_big", "alloc_small", "leaky"} {
			if strings.Contains(s, "main;"+fn+";") {
				counts[fn] += sv.Value2
			}
		}
	}
	for _, tc := range []struct {
		fn           string
		bytes, count int64
	}{
		{"alloc_big", allocLoops * 10 << 20, allocLoops * 10},
		{"alloc_small", allocLoops * 1000 * 100, allocLoops * 1000},
		{"leaky", allocLoops * 64 << 10, allocLoops},
	} {
		got := share(alloc, "main;"+tc.fn+";malloc")
		if r := float64(got) / float64(tc.bytes); r < 0.95 || r > 1.05 {
			t.Errorf("%s: %d bytes allocated, the program allocates %d (ratio %.3f)", tc.fn, got, tc.bytes, r)
		}
		if r := float64(counts[tc.fn]) / float64(tc.count); r < 0.95 || r > 1.05 {
			t.Errorf("%s: %d allocations, the program makes %d", tc.fn, counts[tc.fn], tc.count)
		}
	}

	inuse := folded(c, capture.Query{View: "inuse"})
	t.Logf("inuse view: %v", top(inuse, 6))
	for s, v := range inuse {
		if !strings.Contains(s, "main;leaky;") {
			t.Errorf("outstanding allocation outside leaky: %s %d", s, v)
		}
	}
	if got, want := total(inuse), int64(allocLoops*64<<10); float64(got) < 0.95*float64(want) || float64(got) > 1.05*float64(want) {
		t.Errorf("outstanding bytes %d, leaky leaves %d", got, want)
	}
}

func TestMemMallocNeedsPID(t *testing.T) {
	testutil.RequireRoot(t)
	_, err := profiler.Record(context.Background(), capture.Params{Type: capture.Mem, Event: "malloc", Duration: capture.Duration(time.Second)}, profiler.Options{})
	if err == nil || !strings.Contains(err.Error(), "--pid") || !errors.Is(err, profiler.ErrBadTarget) {
		t.Fatalf("malloc without --pid: got %v, want a bad-target error naming --pid", err)
	}
	_, err = profiler.Record(context.Background(), capture.Params{Type: capture.Mem, Event: "sbrk", Duration: capture.Duration(time.Second)}, profiler.Options{})
	if err == nil || !strings.Contains(err.Error(), "page-faults, malloc, brk, mmap") {
		t.Fatalf("unknown mem event: got %v, want the allowed values", err)
	}
}

// growC alternates grow_heap, which maps and touches 256 MiB of new memory
// page by page (huge pages off, so every page faults), with steady, which
// rewrites a small buffer for a while.
const growC = `
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#define GROW (256UL << 20)
volatile char buf[64 << 10];

__attribute__((noinline)) void grow_heap(void) {
	char *p = mmap(NULL, GROW, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (p == MAP_FAILED)
		_exit(1);
	madvise(p, GROW, MADV_NOHUGEPAGE);
	for (unsigned long i = 0; i < GROW; i += 4096)
		((volatile char *)p)[i] = 1;
	munmap(p, GROW);
}

__attribute__((noinline)) void steady(void) {
	for (int r = 0; r < 20000; r++)
		for (int i = 0; i < (int)sizeof(buf); i += 64)
			buf[i] = (char)r;
}

int main(void) {
	for (;;) {
		grow_heap();
		steady();
	}
}
`

func TestMemPageFaultsGrowHeap(t *testing.T) {
	testutil.RequireRoot(t)
	bin := testutil.BuildC(t, "gcc", growC, "-O1", "-g", "-fno-omit-frame-pointer")
	c, _ := recordWorkload(t, capture.Params{Type: capture.Mem, Event: "page-faults", Duration: capture.Duration(3 * time.Second), Unwind: "fp"}, bin)
	if c.Meta.Unit != "count" {
		t.Errorf("unit %q, want count", c.Meta.Unit)
	}
	stacks := folded(c, capture.Query{})
	all := total(stacks)
	grow := share(stacks, "main;grow_heap")
	t.Logf("%d faults, grow_heap %d, lost %d; top: %v", all, grow, c.Meta.Stats.Lost, top(stacks, 4))
	// One pass of grow_heap faults 65536 pages.
	if grow < 65536/2 {
		t.Fatalf("only %d faults in grow_heap in 3 s", grow)
	}
	if float64(grow) < 0.9*float64(all) {
		t.Errorf("grow_heap has %d of %d faults, want at least 90%%", grow, all)
	}
	if share(stacks, "steady") > all/20 {
		t.Errorf("steady faults %d of %d: it reuses its buffer", share(stacks, "steady"), all)
	}
}

// syscallC waits for SIGUSR1, then grows the heap with sbrk by 1 MiB in
// grow_brk and maps 2 MiB in map_some, syscallLoops times each.
var syscallC = loopProgram(`__attribute__((noinline)) void grow_brk(void) {
	if (sbrk(1 << 20) == (void *)-1)
		_exit(1);
}

__attribute__((noinline)) void map_some(void) {
	void *p = mmap(NULL, 2 << 20, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (p == MAP_FAILED)
		_exit(1);
	munmap(p, 2 << 20);
}
`, syscallLoops, 5000, "grow_brk()", "map_some()")

const syscallLoops = 20

func TestMemSyscalls(t *testing.T) {
	testutil.RequireRoot(t)
	bin := testutil.BuildC(t, "gcc", syscallC, "-O1", "-g", "-fno-omit-frame-pointer")
	for _, tc := range []struct {
		event string
		fn    string
		bytes int64
	}{
		{"brk", "grow_brk", syscallLoops << 20},
		{"mmap", "map_some", syscallLoops * 2 << 20},
	} {
		t.Run(tc.event, func(t *testing.T) {
			c := recordLoops(t, bin, capture.Params{Type: capture.Mem, Event: tc.event, Unwind: "auto"})
			stacks := folded(c, capture.Query{})
			t.Logf("%s: %v", tc.event, top(stacks, 4))
			got := share(stacks, "main;"+tc.fn+";")
			if r := float64(got) / float64(tc.bytes); r < 0.95 || r > 1.05 {
				t.Errorf("%s: %d bytes under %s, the program asks for %d", tc.event, got, tc.fn, tc.bytes)
			}
			if c.Meta.Unit != "bytes" {
				t.Errorf("unit %q, want bytes", c.Meta.Unit)
			}
		})
	}
}

// callocC: calloc_some callocs 100 × 50 B and frees it; realloc_some
// mallocs 1000 B and reallocs it to 64000 B, which it keeps: the realloc
// frees the first block, so only the reallocated bytes stay in use.
var callocC = loopProgram(`__attribute__((noinline)) void calloc_some(void) {
	sink = calloc(100, 50);
	free(sink);
}

__attribute__((noinline)) void realloc_some(void) {
	void *p = malloc(1000);
	sink = p = realloc(p, 64000);
}
`, 20, 2000, "calloc_some()", "realloc_some()")

func TestMemCallocRealloc(t *testing.T) {
	testutil.RequireRoot(t)
	bin := testutil.BuildC(t, "gcc", callocC, "-O1", "-g", "-fno-omit-frame-pointer", "-fno-builtin")
	c := recordLoops(t, bin, capture.Params{Type: capture.Mem, Event: "malloc", Unwind: "auto"})
	const loops = 20
	alloc := folded(c, capture.Query{})
	inuse := folded(c, capture.Query{View: "inuse"})
	t.Logf("alloc: %v; inuse: %v", top(alloc, 4), top(inuse, 4))
	// The symbolizer may name calloc by its glibc alias __libc_calloc.
	for _, tc := range []struct {
		view  map[string]int64
		stack string
		want  int64
	}{
		{alloc, "main;calloc_some;", loops * 5000},
		{alloc, "main;realloc_some;malloc", loops * 1000},
		{alloc, "main;realloc_some;realloc", loops * 64000},
		{inuse, "main;realloc_some;realloc", loops * 64000},
		{inuse, "main;realloc_some;malloc", 0},
		{inuse, "calloc", 0},
	} {
		if got := share(tc.view, tc.stack); got != tc.want {
			t.Errorf("%s: %d bytes, want %d", tc.stack, got, tc.want)
		}
	}
	if got := total(inuse); got != loops*64000 {
		t.Errorf("%d bytes in use, want %d (the reallocated blocks)", got, loops*64000)
	}
}

// --type mem without --event counts page faults, and says so.
func TestMemDefaultEvent(t *testing.T) {
	testutil.RequireRoot(t)
	bin := testutil.BuildC(t, "gcc", growC, "-O1", "-g", "-fno-omit-frame-pointer")
	c, _ := recordWorkload(t, capture.Params{Type: capture.Mem, Duration: capture.Duration(time.Second), Unwind: "fp"}, bin)
	if c.Meta.Event != "page-faults" || c.Meta.Unit != "count" {
		t.Errorf("event %q in %q, want page-faults in count", c.Meta.Event, c.Meta.Unit)
	}
	if len(c.Events) == 0 {
		t.Error("no page faults recorded")
	}
}
