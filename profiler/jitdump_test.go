package profiler_test

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"testing"
	"time"

	"github.com/scorch-dev/scorch/capture"
	"github.com/scorch-dev/scorch/formats"
	"github.com/scorch-dev/scorch/internal/testutil"
	"github.com/scorch-dev/scorch/profiler"
)

// jitC is a tiny JIT: it copies a function (x86-64 machine code that sets
// up its frame pointer and counts rdi down) into executable memory it
// mapped, describes it in /tmp/jit-PID.dump as JITs do (file header, a
// debug-info record, then the code-load record, and the dump mapped
// executable as the marker perf looks for), then spins in it from main.
const jitC = `
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>
#include <fcntl.h>

static const unsigned char code[] = {
	0x55,             /* push %rbp */
	0x48, 0x89, 0xe5, /* mov %rsp,%rbp */
	0x48, 0xff, 0xcf, /* 1: dec %rdi */
	0x75, 0xfb,       /* jnz 1b */
	0x5d,             /* pop %rbp */
	0xc3,             /* ret */
};

static uint64_t now(void) {
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

struct rec { uint32_t id, total; uint64_t ts; };

static void put(int fd, const void *p, size_t n) {
	if (write(fd, p, n) != (ssize_t)n) { perror("write"); _exit(1); }
}

int main(int argc, char **argv) {
	const char *dir = argc > 1 ? argv[1] : "/tmp";
	unsigned char *mem = mmap(0, 4096, PROT_READ | PROT_WRITE | PROT_EXEC, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (mem == MAP_FAILED) { perror("mmap"); return 1; }
	memcpy(mem, code, sizeof code);
	uint64_t addr = (uint64_t)(uintptr_t)mem;

	char path[4096];
	snprintf(path, sizeof path, "%s/jit-%d.dump", dir, getpid());
	int fd = open(path, O_CREAT | O_TRUNC | O_RDWR, 0644);
	if (fd < 0) { perror(path); return 1; }
	struct { uint32_t magic, version, total, mach, pad, pid; uint64_t ts, flags; } h =
		{ 0x4A695444, 1, 40, 62, 0, (uint32_t)getpid(), now(), 0 };
	put(fd, &h, sizeof h);
	/* Mapped executable so that perf record would see it, as JITs do. */
	if (mmap(0, 4096, PROT_READ | PROT_EXEC, MAP_PRIVATE, fd, 0) == MAP_FAILED) { perror("mmap dump"); return 1; }

	/* Debug info: line 10 for the prologue, line 12 (same file) for the loop. */
	const char file[] = "jit_source.js";
	struct { uint64_t code_addr, nr; } di = { addr, 2 };
	struct { uint64_t addr; uint32_t line, discrim; } e1 = { addr, 10, 0 }, e2 = { addr + 4, 12, 0 };
	struct rec r = { 2, sizeof r + sizeof di + sizeof e1 + sizeof file + sizeof e2 + 2, now() };
	put(fd, &r, sizeof r);
	put(fd, &di, sizeof di);
	put(fd, &e1, sizeof e1);
	put(fd, file, sizeof file);
	put(fd, &e2, sizeof e2);
	put(fd, "\xff", 2);

	const char name[] = "jitted_spin";
	struct { uint32_t pid, tid; uint64_t vma, code_addr, code_size, code_index; } ld =
		{ (uint32_t)getpid(), (uint32_t)getpid(), addr, addr, sizeof code, 1 };
	r = (struct rec){ 0, sizeof r + sizeof ld + sizeof name + sizeof code, now() };
	put(fd, &r, sizeof r);
	put(fd, &ld, sizeof ld);
	put(fd, name, sizeof name);
	put(fd, code, sizeof code);

	void (*fn)(unsigned long) = (void (*)(unsigned long))mem;
	uint64_t end = now() + 60ull * 1000000000;
	while (now() < end) fn(100000000);
	return 0;
}
`

// JIT code described by a jitdump is named, with its file:line and its
// caller, in --unwind dwarf mode (the code has no CFI: the unwinder falls
// back on its frame pointer).
func TestJitdumpFrames(t *testing.T) {
	testutil.RequireRoot(t)
	if runtime.GOARCH != "amd64" {
		t.Skip("the test's JIT writes x86-64 machine code")
	}
	bin := testutil.BuildC(t, "gcc", jitC, "-O1", "-g", "-fno-omit-frame-pointer")
	t.Run("tmp", func(t *testing.T) { testJitdump(t, bin, "/tmp") })
	// Elsewhere (JVM agents write under ~/.debug/jit), the dump is found by
	// the mapping that marks it.
	t.Run("marker", func(t *testing.T) { testJitdump(t, bin, t.TempDir()) })
}

func testJitdump(t *testing.T, bin, dir string) {
	cmd := testutil.Start(t, bin, dir)
	dump := filepath.Join(dir, "jit-"+strconv.Itoa(cmd.Process.Pid)+".dump")
	t.Cleanup(func() { os.Remove(dump) })
	time.Sleep(200 * time.Millisecond)

	c, err := profiler.Record(context.Background(), capture.Params{
		Type: capture.CPU, PIDs: []int{cmd.Process.Pid}, Hz: 499, Duration: capture.Duration(2 * time.Second), Unwind: "dwarf",
	}, profiler.Options{})
	if err != nil {
		t.Fatal(err)
	}
	stacks := folded(c, capture.Query{})
	all, jit := total(stacks), share(stacks, "main;jitted_spin_[j]")
	t.Logf("%d samples, %d in main;jitted_spin_[j]", all, jit)
	if all == 0 || float64(jit)/float64(all) < 0.8 {
		t.Fatalf("the JIT function is not named under main: %v", top(stacks, 5))
	}

	p := formats.Profile(c, capture.Query{})
	lines := map[string]int64{}
	for _, s := range p.Sample {
		l := s.Location[0]
		if len(l.Line) == 0 || l.Line[0].Function.Name != "jitted_spin" {
			continue
		}
		lines[l.Line[0].Function.Filename+":"+strconv.FormatInt(l.Line[0].Line, 10)] += s.Value[0]
		if l.Mapping == nil || l.Mapping.File != dump {
			t.Errorf("JIT location in mapping %+v", l.Mapping)
		}
	}
	t.Logf("lines of jitted_spin: %v", lines)
	// The loop is line 12; the prologue (line 10) gets a sample now and then.
	if lines["jit_source.js:12"] == 0 || lines["jit_source.js:12"] < 4*lines["jit_source.js:10"] {
		t.Errorf("file:line of the JIT code not in pprof: %v", lines)
	}

	// Read back, the pprof file still marks the frame as JIT code.
	var pb bytes.Buffer
	if err := p.Write(&pb); err != nil {
		t.Fatal(err)
	}
	back, _, err := formats.ImportBytes(pb.Bytes(), formats.ImportOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if n := share(folded(back, capture.Query{}), "main;jitted_spin_[j]"); n != jit {
		t.Errorf("pprof read back: %d samples in main;jitted_spin_[j], want %d", n, jit)
	}
}
