package profiler_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/scorch-dev/scorch/capture"
	"github.com/scorch-dev/scorch/internal/testutil"
	"github.com/scorch-dev/scorch/profiler"
)

// sleeperC: main sleeps 100 ms per napper() call; a reader thread blocks in
// read() in wait_for_poke(), woken every 50 ms by the poker thread's
// poke_reader(), which writes to the pipe. Blocking happens inside libc
// wrappers, which have no frame pointers here.
const sleeperC = `
#include <pthread.h>
#include <stdlib.h>
#include <time.h>
#include <unistd.h>

static int pipefd[2];

__attribute__((noinline)) void napper(void) {
	struct timespec ts = {0, 100 * 1000 * 1000};
	nanosleep(&ts, NULL);
}

__attribute__((noinline)) void wait_for_poke(void) {
	char c;
	if (read(pipefd[0], &c, 1) != 1)
		exit(1);
}

__attribute__((noinline)) void *reader(void *arg) {
	for (;;)
		wait_for_poke();
	return NULL;
}

__attribute__((noinline)) void poke_reader(void) {
	if (write(pipefd[1], "x", 1) != 1)
		exit(1);
}

__attribute__((noinline)) void *poker(void *arg) {
	struct timespec ts = {0, 50 * 1000 * 1000};
	for (;;) {
		nanosleep(&ts, NULL);
		poke_reader();
	}
	return NULL;
}

int main(void) {
	pthread_t r, p;
	if (pipe(pipefd))
		return 1;
	pthread_create(&r, NULL, reader, NULL);
	pthread_create(&p, NULL, poker, NULL);
	for (int i = 0; i < 600; i++)
		napper();
	return 0;
}
`

func recordSleeper(t *testing.T, typ capture.Type) (*capture.Capture, map[string]int64) {
	t.Helper()
	testutil.RequireRoot(t)
	bin := testutil.BuildC(t, "gcc", sleeperC, "-O1", "-g", "-fno-omit-frame-pointer", "-pthread")
	c, _ := recordWorkload(t, capture.Params{Type: typ, Duration: capture.Duration(3 * time.Second), Unwind: "auto"}, bin)
	if c.Meta.Stats.Lost != 0 {
		t.Errorf("%d events lost", c.Meta.Stats.Lost)
	}
	return c, folded(c, capture.Query{})
}

func TestOffCPUNapper(t *testing.T) {
	c, stacks := recordSleeper(t, capture.OffCPU)
	if c.Meta.Unit != "ns" {
		t.Errorf("unit %q, want ns", c.Meta.Unit)
	}
	// Each napper() interval is one sleep of 100 ms: the time charged to
	// napper equals the number of sleeps times 100 ms.
	var napperNs int64
	var sleeps int
	for _, sv := range c.Aggregate(capture.Query{}) {
		s := strings.Join(c.FoldedStack(sv.Stack), ";")
		if strings.Contains(s, "main;napper;") && strings.HasSuffix(s, "[blocked]") {
			napperNs += sv.Value
			sleeps += int(sv.Count)
		}
	}
	t.Logf("napper: %d sleeps, %.3f s; top: %v", sleeps, float64(napperNs)/1e9, top(stacks, 4))
	if sleeps < 15 {
		t.Fatalf("only %d napper sleeps in 3 s", sleeps)
	}
	if ratio := float64(napperNs) / (float64(sleeps) * 100e6); ratio < 0.9 || ratio > 1.1 {
		t.Errorf("napper blocked %.3f s for %d sleeps of 100 ms: ratio %.3f, want 1 ± 0.1", float64(napperNs)/1e9, sleeps, ratio)
	}
	if share(stacks, "reader;wait_for_poke;") == 0 {
		t.Errorf("the reader blocked in wait_for_poke is missing: %v", top(stacks, 6))
	}
	for s := range stacks {
		if !strings.HasSuffix(s, capture.FrameBlocked) && !strings.HasSuffix(s, capture.FrameRunqueue) {
			t.Errorf("stack without a [blocked] or [runqueue] leaf: %s", s)
		}
	}
	for _, e := range c.Events {
		if e.Time < 0 || e.Time > int64(4*time.Second) {
			t.Fatalf("event at %s is outside the capture", time.Duration(e.Time))
		}
	}
}

func TestWakeupChargesWaker(t *testing.T) {
	c, stacks := recordSleeper(t, capture.Wakeup)
	poked := share(stacks, "poke_reader")
	t.Logf("charged to poke_reader: %.3f s; top: %v", float64(poked)/1e9, top(stacks, 4))
	// The reader is blocked almost all the time and only poke_reader wakes it.
	if poked < int64(2*time.Second) {
		t.Errorf("only %.3f s of the reader's blocked time is charged to poke_reader", float64(poked)/1e9)
	}
	for s := range stacks {
		if strings.HasPrefix(s, capture.FrameIRQ+";") && strings.Contains(s, "poke_reader") {
			t.Errorf("an interrupt waker has user frames: %s", s)
		}
	}
	var irq bool
	for s := range stacks {
		if strings.HasPrefix(s, capture.FrameIRQ+";") {
			irq = true
		}
	}
	if !irq {
		t.Errorf("the timer wakeups of nanosleep are not charged to [irq]: %v", top(stacks, 6))
	}
	_ = c
}

func TestOffWakeJoinsStacks(t *testing.T) {
	_, stacks := recordSleeper(t, capture.OffWake)
	var joined int64
	for s, v := range stacks {
		blocked, waker, ok := strings.Cut(s, ";--;")
		if !ok {
			t.Errorf("offwake stack without the -- separator: %s", s)
			continue
		}
		if strings.Contains(blocked, "wait_for_poke") && strings.Contains(waker, "poke_reader_[w]") {
			joined += v
		}
	}
	t.Logf("wait_for_poke;--;poke_reader: %.3f s; top: %v", float64(joined)/1e9, top(stacks, 3))
	if joined < int64(2*time.Second) {
		t.Errorf("only %.3f s of wait_for_poke joined with poke_reader", float64(joined)/1e9)
	}
}

// More busy threads than CPUs on one CPU wait in the run queue.
func TestOffCPURunqueue(t *testing.T) {
	testutil.RequireRoot(t)
	const busyC = `
#define _GNU_SOURCE
#include <pthread.h>
#include <sched.h>
volatile unsigned long sink;
__attribute__((noinline)) void *busy(void *arg) {
	for (;;) sink++;
	return 0;
}
int main(void) {
	cpu_set_t set;
	CPU_ZERO(&set);
	CPU_SET(0, &set);
	sched_setaffinity(0, sizeof(set), &set);
	pthread_t t[3];
	for (int i = 0; i < 3; i++)
		pthread_create(&t[i], 0, busy, 0);
	pthread_join(t[0], 0);
}
`
	bin := testutil.BuildC(t, "gcc", busyC, "-O1", "-fno-omit-frame-pointer", "-pthread")
	c, _ := recordWorkload(t, capture.Params{Type: capture.OffCPU, Duration: capture.Duration(2 * time.Second), Unwind: "fp"}, bin)
	stacks := folded(c, capture.Query{})
	rq := share(stacks, "[runqueue]")
	blocked := share(stacks, "[blocked]")
	t.Logf("runqueue %.3f s, blocked %.3f s", float64(rq)/1e9, float64(blocked)/1e9)
	// Three threads share one CPU: each waits about two thirds of the time.
	if rq < int64(time.Second) {
		t.Errorf("only %.3f s in the run queue for 3 busy threads on one CPU over 2 s: %v", float64(rq)/1e9, top(stacks, 4))
	}
	if share(stacks, "busy") == 0 {
		t.Errorf("run-queue time not charged to busy(): %v", top(stacks, 4))
	}
}

// blockersC blocks in many kernel paths, over and over: pipes, sleeps,
// futexes, poll on a socket pair, fsync.
const blockersC = `
#define _GNU_SOURCE
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>
static int ping[2], pong[2], sv[2];
static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
static volatile unsigned long sink;
static const char *path;
static void *pinger(void *a) { char c = 0; for (;;) { write(ping[1], &c, 1); read(pong[0], &c, 1); } }
static void *ponger(void *a) { char c; for (;;) { read(ping[0], &c, 1); write(pong[1], &c, 1); } }
static void *sleeper(void *a) { struct timespec ts = {0, 200000}; for (;;) nanosleep(&ts, 0); }
static void *locker(void *a) { for (;;) { pthread_mutex_lock(&mu); for (int i = 0; i < 20000; i++) sink++; pthread_mutex_unlock(&mu); } }
static void *poller(void *a) {
	char c = 0; struct pollfd p = {sv[0], POLLIN, 0};
	for (;;) { write(sv[0], &c, 1); poll(&p, 1, 100); read(sv[0], &c, 1); }
}
static void *echoer(void *a) { char c; for (;;) { read(sv[1], &c, 1); write(sv[1], &c, 1); } }
static void *syncer(void *a) {
	int fd = open(path, O_CREAT | O_WRONLY | O_TRUNC, 0600);
	for (;;) { write(fd, "x", 1); fsync(fd); usleep(1000); }
}
int main(int argc, char **argv) {
	path = argv[1];
	pipe(ping); pipe(pong); socketpair(AF_UNIX, SOCK_STREAM, 0, sv);
	void *(*fns[])(void *) = {pinger, ponger, sleeper, locker, locker, poller, echoer, syncer};
	pthread_t t;
	for (int i = 0; i < 8; i++) pthread_create(&t, 0, fns[i], 0);
	pause();
}
`

// The kernel stack cache must give the stacks a walk gives. In check mode
// the programs walk every stack and count the cached ones that differ; a
// whole-host capture, with the blockers and whatever else runs, covers
// many kernel paths.
func TestKernelStackCacheMatchesWalk(t *testing.T) {
	testutil.RequireRoot(t)
	bin := testutil.BuildC(t, "gcc", blockersC, "-O1", "-g", "-pthread")
	cmd := testutil.Start(t, bin, t.TempDir()+"/synced")
	time.Sleep(200 * time.Millisecond)
	profiler.SetCheckKernelStacks(true)
	defer profiler.SetCheckKernelStacks(false)
	q := capture.Query{PIDs: []uint32{uint32(cmd.Process.Pid)}}
	var walked map[string]int64
	for _, typ := range []capture.Type{capture.OffCPU, capture.OffWake} {
		c, err := profiler.Record(context.Background(), capture.Params{
			Type: typ, Duration: capture.Duration(2 * time.Second), Unwind: "auto",
		}, profiler.Options{})
		if err != nil {
			t.Fatal(err)
		}
		if typ == capture.OffCPU {
			walked = folded(c, q)
		}
		x := c.Meta.Stats.Counters.Totals()
		t.Logf("%s: %d events; kernel stacks: %d cached and checked, %d walked, %d wrong", typ, len(c.Events), x["kernel_stacks_cached"], x["kernel_stacks_walked"], x["kernel_stack_cache_wrong"])
		if x["kernel_stack_cache_wrong"] != 0 {
			t.Errorf("%s: %d cached kernel stacks differ from the walk", typ, x["kernel_stack_cache_wrong"])
		}
		if x["kernel_stacks_cached"] < 1000 {
			t.Errorf("%s: only %d kernel stacks came from the cache", typ, x["kernel_stacks_cached"])
		}
		stacks := folded(c, q)
		for _, want := range []string{"pinger;", "sleeper;", "poller;", "locker;", "syncer;"} {
			if share(stacks, want) == 0 {
				t.Errorf("%s: no off-CPU time under %q: %v", typ, want, top(stacks, 3))
			}
		}
	}

	// Out of check mode, cached stacks go out by reference (most records
	// become a RECORD_LEAVE_REF): the stacks must be the ones the walks
	// gave, kernel frames included.
	profiler.SetCheckKernelStacks(false)
	c, err := profiler.Record(context.Background(), capture.Params{
		Type: capture.OffCPU, Duration: capture.Duration(2 * time.Second), Unwind: "auto", PIDs: []int{cmd.Process.Pid},
	}, profiler.Options{})
	if err != nil {
		t.Fatal(err)
	}
	x := c.Meta.Stats.Counters.Totals()
	t.Logf("by reference: %d events; kernel stacks %d cached, %d walked; user stacks %d cached", len(c.Events), x["kernel_stacks_cached"], x["kernel_stacks_walked"], x["user_stacks_cached"])
	if x["kernel_stacks_cached"] < 1000 || x["user_stacks_cached"] < 1000 {
		t.Fatalf("only %d kernel and %d user stacks were sent by reference", x["kernel_stacks_cached"], x["user_stacks_cached"])
	}
	if c.Meta.Stats.Lost != 0 {
		t.Errorf("%d events lost (%v)", c.Meta.Stats.Lost, c.Meta.Stats.Counters.Reasons(capture.LostBy))
	}
	// The tracing code's kernel frames (BPF programs, trampolines) are
	// left out: their names depend on when the kernel's symbols were read.
	tracing := func(f string) bool { return strings.HasSuffix(f, "_[k]") && strings.Contains(f, "bpf") }
	sameHeaviest(t, "by reference", dropFrames(folded(c, q), tracing), "walked", dropFrames(walked, tracing))
}

// The user stack cache must give the stacks a walk gives: in check mode
// the programs walk every user stack the cache has and count those that
// differ, in both unwinding modes; and a capture that sends references
// must name the same stacks as one that sends every stack in full.
func TestUserStackCacheMatchesWalk(t *testing.T) {
	testutil.RequireRoot(t)
	bin := testutil.BuildC(t, "gcc", blockersC, "-O1", "-g", "-pthread")
	cmd := testutil.Start(t, bin, t.TempDir()+"/synced")
	pid := uint32(cmd.Process.Pid)
	time.Sleep(200 * time.Millisecond)
	record := func(unwind string) *capture.Capture {
		t.Helper()
		c, err := profiler.Record(context.Background(), capture.Params{
			Type: capture.OffCPU, Duration: capture.Duration(time.Second), Unwind: unwind, PIDs: []int{int(pid)},
		}, profiler.Options{})
		if err != nil {
			t.Fatal(err)
		}
		return c
	}
	profiler.SetCheckUserStacks(true)
	for _, unwind := range []string{"auto", "fp"} {
		x := record(unwind).Meta.Stats.Counters.Totals()
		t.Logf("--unwind %s: user stacks %d cached and checked, %d walked, %d wrong", unwind, x["user_stacks_cached"], x["user_stacks_walked"], x["user_stack_cache_wrong"])
		if x["user_stack_cache_wrong"] != 0 {
			t.Errorf("--unwind %s: %d cached user stacks differ from the walk", unwind, x["user_stack_cache_wrong"])
		}
		if x["user_stacks_cached"] < 1000 {
			t.Errorf("--unwind %s: only %d user stacks came from the cache", unwind, x["user_stacks_cached"])
		}
	}
	profiler.SetCheckUserStacks(false)

	withRefs := record("auto")
	profiler.SetUserStackCache(false)
	full := record("auto")
	profiler.SetUserStackCache(true)
	if n := withRefs.Meta.Stats.Counters.Totals()["user_stacks_cached"]; n < 1000 {
		t.Fatalf("only %d user stacks were sent as references", n)
	}
	if n := full.Meta.Stats.Counters.Totals()["user_stacks_cached"]; n != 0 {
		t.Fatalf("the cache was off, yet %d user stacks were references", n)
	}
	q := capture.Query{PIDs: []uint32{pid}}
	// Kernel frames are left out: whether the tracing code's frame is
	// named depends on when the kernel's symbols were read.
	kernel := func(f string) bool { return strings.HasSuffix(f, "_[k]") }
	sameHeaviest(t, "with references", dropFrames(folded(withRefs, q), kernel), "full", dropFrames(folded(full, q), kernel))
}

// sameHeaviest checks that the heaviest stack of each blocker thread, which
// every capture has many of, is in both captures (named for the errors).
func sameHeaviest(t *testing.T, aName string, a map[string]int64, bName string, b map[string]int64) {
	t.Helper()
	for _, fn := range []string{"pinger;", "sleeper;", "poller;", "locker;"} {
		ta, tb := heaviest(a, fn), heaviest(b, fn)
		if ta == "" || b[ta] == 0 || a[tb] == 0 {
			t.Errorf("%s: the heaviest stack %s %q is not in the %s capture, or its heaviest %q is not in the one %s", fn, aName, ta, bName, tb, aName)
		}
	}
}

// dropFrames merges folded stacks that differ only in the frames drop
// picks.
func dropFrames(stacks map[string]int64, drop func(frame string) bool) map[string]int64 {
	out := map[string]int64{}
	for s, v := range stacks {
		var keep []string
		for _, f := range strings.Split(s, ";") {
			if !drop(f) {
				keep = append(keep, f)
			}
		}
		out[strings.Join(keep, ";")] += v
	}
	return out
}

// heaviest is the stack containing sub with the largest value.
func heaviest(stacks map[string]int64, sub string) string {
	best, v := "", int64(0)
	for s, n := range stacks {
		if strings.Contains(s, sub) && (n > v || n == v && s < best) {
			best, v = s, n
		}
	}
	return best
}
