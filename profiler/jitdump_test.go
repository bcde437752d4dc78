package profiler_test

import (
	"bytes"
	"cmp"
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
// caller, in the default mode (the code has no CFI: the BPF walker falls
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
		Type: capture.CPU, PIDs: []int{cmd.Process.Pid}, Hz: 499, Duration: capture.Duration(2 * time.Second),
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

// jitCFIC JITs a function without a frame pointer (it moves rsp by 40 and
// spins) and describes it in its jitdump with an unwinding record: the
// eh_frame (a CIE and an FDE: CFA rsp+48 inside, rsp+8 at the ret) laid out
// right after the code, as perf inject expects. run_jit calls it; with
// "nocfi" the record is left out.
const jitCFIC = `
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>
#include <fcntl.h>

static const unsigned char code[] = {
	0x48, 0x83, 0xec, 0x28, /* sub $0x28,%rsp */
	0x48, 0xff, 0xcf,       /* 1: dec %rdi */
	0x75, 0xfb,             /* jnz 1b */
	0x48, 0x83, 0xc4, 0x28, /* add $0x28,%rsp */
	0xc3,                   /* ret */
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

volatile unsigned long sink;
__attribute__((noinline)) void run_jit(void (*fn)(unsigned long)) {
	fn(100000000);
	sink++;
}

int main(int argc, char **argv) {
	int cfi = !(argc > 1 && strcmp(argv[1], "nocfi") == 0);
	unsigned char *mem = mmap(0, 4096, PROT_READ | PROT_WRITE | PROT_EXEC, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (mem == MAP_FAILED) { perror("mmap"); return 1; }
	memcpy(mem, code, sizeof code);
	uint64_t addr = (uint64_t)(uintptr_t)mem;
	/* "late": the code and its dump come once the capture has started. */
	if (argc > 1 && strcmp(argv[1], "late") == 0) usleep(300000);

	char path[4096];
	snprintf(path, sizeof path, "/tmp/jit-%d.dump", getpid());
	int fd = open(path, O_CREAT | O_TRUNC | O_RDWR, 0644);
	if (fd < 0) { perror(path); return 1; }
	struct { uint32_t magic, version, total, mach, pad, pid; uint64_t ts, flags; } h =
		{ 0x4A695444, 1, 40, 62, 0, (uint32_t)getpid(), now(), 0 };
	put(fd, &h, sizeof h);

	if (cfi) {
		/* At eh = addr + 16 (the code's 14 bytes, 8-byte aligned). */
		unsigned char eh[52] = {
			/* CIE: length 20, id 0, version 1, "zR", code align 1, data
			 * align -8, return address r16, augmentation data: pointers
			 * pcrel sdata4; CFA rsp+8, r16 at CFA-8; padding. */
			20, 0, 0, 0, 0, 0, 0, 0, 1, 'z', 'R', 0, 1, 0x78, 16, 1, 0x1b,
			0x0c, 7, 8, 0x90, 1, 0, 0,
			/* FDE: length 20, CIE pointer 28, pc_begin (pcrel, below),
			 * pc_range 14, no augmentation data; after 4 bytes CFA rsp+48,
			 * after 9 more (the add) rsp+8. */
			20, 0, 0, 0, 28, 0, 0, 0, 0, 0, 0, 0, 14, 0, 0, 0, 0,
			0x44, 0x0e, 48, 0x49, 0x0e, 8, 0,
			/* terminator */
			0, 0, 0, 0,
		};
		int32_t pcrel = -48; /* addr - (eh + 32) */
		memcpy(eh + 32, &pcrel, 4);
		struct { uint64_t size, hdr, mapped; } u = { sizeof eh, 0, sizeof eh };
		struct rec r = { 4, sizeof r + sizeof u + sizeof eh, now() };
		put(fd, &r, sizeof r);
		put(fd, &u, sizeof u);
		put(fd, eh, sizeof eh);
	}

	const char name[] = "jitted_frameless";
	struct { uint32_t pid, tid; uint64_t vma, code_addr, code_size, code_index; } ld =
		{ (uint32_t)getpid(), (uint32_t)getpid(), addr, addr, sizeof code, 1 };
	struct rec r = { 0, sizeof r + sizeof ld + sizeof name + sizeof code, now() };
	put(fd, &r, sizeof r);
	put(fd, &ld, sizeof ld);
	put(fd, name, sizeof name);
	put(fd, code, sizeof code);

	void (*fn)(unsigned long) = (void (*)(unsigned long))mem;
	uint64_t end = now() + 60ull * 1000000000;
	while (now() < end) run_jit(fn);
	return 0;
}
`

// The CFI a jitdump gives for its code is the unwinders' (the BPF walker's
// table in the default mode, the user-space unwinder's in dwarf mode): the
// caller of a JIT function without a frame pointer is found
// (main;run_jit;jitted_...); without the unwinding record the
// frame-pointer fallback skips it.
func TestJitdumpUnwinding(t *testing.T) {
	testutil.RequireRoot(t)
	if runtime.GOARCH != "amd64" {
		t.Skip("the test's JIT writes x86-64 machine code")
	}
	bin := testutil.BuildC(t, "gcc", jitCFIC, "-O1", "-g", "-fno-omit-frame-pointer")
	// The default mode walks the stack in BPF with the table built from
	// the record; dwarf mode copies the stack and unwinds it in user space.
	for _, tc := range []struct {
		arg     string
		withCFI bool
		unwind  string
	}{{"cfi", true, ""}, {"nocfi", false, ""}, {"cfi", true, "dwarf"}, {"late", true, ""}} {
		t.Run(tc.arg+"/"+cmp.Or(tc.unwind, "default"), func(t *testing.T) {
			cmd := testutil.Start(t, bin, tc.arg)
			t.Cleanup(func() { os.Remove("/tmp/jit-" + strconv.Itoa(cmd.Process.Pid) + ".dump") })
			// Code loaded after the process's tables were: an unmapped pc
			// for the BPF walker, which reloads them within a second or
			// two (the samples before lose the caller).
			dur, want := 2*time.Second, 0.9
			if tc.arg == "late" {
				dur, want = 5*time.Second, 0.6
			} else {
				time.Sleep(200 * time.Millisecond)
			}
			c, err := profiler.Record(context.Background(), capture.Params{
				Type: capture.CPU, PIDs: []int{cmd.Process.Pid}, Hz: 499, Duration: capture.Duration(dur), Unwind: tc.unwind,
			}, profiler.Options{})
			if err != nil {
				t.Fatal(err)
			}
			if tc.unwind == "" {
				st := c.Meta.Stats
				t.Logf("unwound in BPF %d, jit tables %d", st.Counters.Get(capture.UnwoundInBPF), st.Counters.Get(capture.UnwindJITTables))
				if got := st.Counters.Get(capture.UnwindJITTables); tc.withCFI != (got > 0) {
					t.Errorf("%d JIT tables loaded for the BPF walker", got)
				}
			}
			stacks := folded(c, capture.Query{})
			all, jit, caller := total(stacks), share(stacks, "jitted_frameless_[j]"), share(stacks, "main;run_jit;jitted_frameless_[j]")
			t.Logf("%d samples, %d in jitted_frameless, %d under main;run_jit", all, jit, caller)
			// Code compiled after the capture started ("late") is named
			// too: the jitdump is looked at again within 50 ms of a miss.
			if all == 0 || float64(jit)/float64(all) < 0.95 {
				t.Fatalf("the JIT function is not named: %v", top(stacks, 5))
			}
			if tc.withCFI && float64(caller)/float64(jit) < want {
				t.Errorf("with the jitdump's CFI, %d of %d samples of the JIT function under main;run_jit: %v", caller, jit, top(stacks, 5))
			}
			if !tc.withCFI && caller > jit/10 {
				t.Errorf("without CFI, %d of %d samples under main;run_jit: the test does not need the record? %v", caller, jit, top(stacks, 5))
			}
		})
	}
}
