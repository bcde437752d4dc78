package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/scorch-dev/scorch/host"
	"github.com/scorch-dev/scorch/internal/testutil"
	"github.com/scorch-dev/scorch/profiler"
	"github.com/scorch-dev/scorch/symbolizer"
	"github.com/scorch-dev/scorch/unwind"
	"github.com/scorch-dev/scorch/web"
)

// spinWorkload: `spin THREADS SAME_CPU NICE` runs THREADS threads of
// scorch_spin, pinned one per CPU (SAME_CPU 0) or all on CPU 0, at NICE.
const spinWorkload = `
#define _GNU_SOURCE
#include <pthread.h>
#include <sched.h>
#include <stdint.h>
#include <stdlib.h>
#include <unistd.h>
#include <sys/resource.h>
volatile uint64_t sink;
__attribute__((noinline)) void scorch_spin(void) {
	for (int i = 0; i < 4000000; i++) sink += (uint64_t)i * 7;
}
static void pin(int cpu) {
	cpu_set_t s;
	CPU_ZERO(&s);
	CPU_SET(cpu, &s);
	sched_setaffinity(0, sizeof s, &s);
}
static void *run(void *arg) {
	pin((int)(intptr_t)arg);
	for (;;) scorch_spin();
	return 0;
}
int main(int argc, char **argv) {
	int threads = atoi(argv[1]), same = atoi(argv[2]);
	long ncpu = sysconf(_SC_NPROCESSORS_ONLN);
	setpriority(PRIO_PROCESS, 0, atoi(argv[3])); /* before the threads: they inherit it */
	for (int i = 1; i < threads; i++) {
		pthread_t t;
		pthread_create(&t, 0, run, (void *)(intptr_t)(same ? 0 : i % ncpu));
	}
	run((void *)0);
}
`

// fsyncWorkload appends 4 KiB and fsyncs, in a loop, to FILE.
const fsyncWorkload = `
#include <fcntl.h>
#include <unistd.h>
static char buf[4096] = {1};
__attribute__((noinline)) void scorch_fsync_once(int fd) {
	if (write(fd, buf, sizeof buf) != sizeof buf) _exit(1);
	fsync(fd);
}
int main(int argc, char **argv) {
	int fd = open(argv[1], O_WRONLY | O_CREAT | O_TRUNC, 0644);
	if (fd < 0) return 1;
	for (long n = 1;; n++) {
		scorch_fsync_once(fd);
		if (n % 4096 == 0) ftruncate(fd, 0), lseek(fd, 0, SEEK_SET);
	}
}
`

// loadEnv is the service as `scorch serve` wires it: the BPF profiler
// and the host sampler (its drills 3 s long, to keep the test short).
func loadEnv(t *testing.T) string {
	t.Helper()
	testutil.RequireRoot(t)
	for _, c := range []string{"cpu", "offcpu"} {
		if col := profiler.Capabilities(context.Background()).Collectors[c]; !col.Available {
			t.Skipf("the %s collector cannot run here: %s", c, col.Reason)
		}
	}
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	hs := host.NewSampler(host.Options{DrillDuration: 3 * time.Second})
	go hs.Run(ctx)
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	sym := symbolizer.New(symbolizer.Options{Logger: log})
	t.Cleanup(func() { sym.Close() })
	ts := httptest.NewUnstartedServer(nil)
	srv, err := web.New(web.Config{
		DataDir: t.TempDir(), Listen: ts.Listener.Addr().String(), Host: hs,
		Recorder: &profilerRecorder{sym: sym, unw: unwind.New(unwind.Options{Logger: log}), log: log},
	})
	if err != nil {
		t.Fatal(err)
	}
	ts.Config.Handler = srv.Handler()
	ts.Start()
	t.Cleanup(ts.Close)
	return ts.URL
}

// waitOverview polls /api/overview.json until ok accepts an answer, for
// at most 30 s (statuses rise within 5 s of a condition; the drill's pid
// must be the workload's on a host others load too).
func waitOverview(t *testing.T, base string, ok func(host.Overview) (host.Finding, string)) (host.Overview, host.Finding) {
	t.Helper()
	var o host.Overview
	var why string
	for deadline := time.Now().Add(30 * time.Second); time.Now().Before(deadline); time.Sleep(500 * time.Millisecond) {
		resp, err := http.Get(base + "/api/overview.json?minutes=1")
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		o = host.Overview{}
		if err := json.Unmarshal(b, &o); err != nil {
			t.Fatalf("overview.json: %v: %.300s", err, b)
		}
		var f host.Finding
		if f, why = ok(o); why == "" {
			return o, f
		}
	}
	t.Fatalf("after 30 s: %s\nresources: %s\ntop: %+v\nfindings: %+v", why, resourcesText(o), o.Top, o.Findings)
	return o, host.Finding{}
}

func resourcesText(o host.Overview) string {
	var b strings.Builder
	for _, r := range o.Resources {
		fmt.Fprintf(&b, "\n  %s %s u=%v s=%v: %s", r.Resource, r.Status, float64(r.Utilization), float64(r.Saturation), r.Rule)
	}
	return b.String()
}

func resource(o host.Overview, name string) *host.Resource {
	for i := range o.Resources {
		if o.Resources[i].Resource == name {
			return &o.Resources[i]
		}
	}
	return nil
}

// follow posts a finding's drill as it is and returns the capture's
// heaviest folded stack, and the share of the capture's total in stacks
// that keep.
func follow(t *testing.T, base string, d host.Drill, keep func(stack string) bool) (string, float64) {
	t.Helper()
	body, _ := json.Marshal(d)
	resp, err := http.Post(base+"/api/captures?wait=true", "application/json", bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusCreated {
		t.Fatalf("POST the drill %s: %d %s", body, resp.StatusCode, b)
	}
	var rec struct{ ID, Status string }
	json.Unmarshal(b, &rec)
	if rec.Status != "done" {
		t.Fatalf("drill capture: %s", b)
	}
	resp, err = http.Get(base + "/api/captures/" + rec.ID + "/folded")
	if err != nil {
		t.Fatal(err)
	}
	folded, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	var top string
	var topV, kept, total int64
	for _, line := range strings.Split(strings.TrimSpace(string(folded)), "\n") {
		i := strings.LastIndexByte(line, ' ')
		if i < 0 {
			continue
		}
		v, _ := strconv.ParseInt(line[i+1:], 10, 64)
		total += v
		if keep(line[:i]) {
			kept += v
		}
		if v > topV {
			top, topV = line[:i], v
		}
	}
	if total == 0 {
		t.Fatalf("the drill's capture %s is empty", rec.ID)
	}
	return top, float64(kept) / float64(total)
}

func findingOf(o host.Overview, resource, typ string) (host.Finding, bool) {
	for _, f := range o.Findings {
		if strings.HasPrefix(f.Resource, resource) && f.Drill.Type == typ {
			return f, true
		}
	}
	return host.Finding{}, false
}

// TestOverviewCPUHog: a hog on every CPU makes CPU critical, is first of
// the top CPU list, and its finding's cpu drill records the hog's code.
func TestOverviewCPUHog(t *testing.T) {
	base := loadEnv(t)
	bin := testutil.BuildC(t, "gcc", spinWorkload, "-O1", "-fno-omit-frame-pointer", "-g", "-pthread")
	// At nice -10 it outweighs what else runs on a shared host.
	hog := testutil.Start(t, bin, strconv.Itoa(runtime.NumCPU()), "0", "-10").Process.Pid
	started := time.Now()
	o, f := waitOverview(t, base, func(o host.Overview) (host.Finding, string) {
		cpu := resource(o, "cpu")
		if cpu == nil || cpu.Status != host.StatusCritical {
			return host.Finding{}, "cpu is not critical"
		}
		if len(o.Top.CPU) == 0 || o.Top.CPU[0].PID != hog {
			return host.Finding{}, fmt.Sprintf("the hog %d is not first of the top CPU list", hog)
		}
		f, ok := findingOf(o, "cpu", "cpu")
		if !ok || f.Drill.PID != hog {
			return host.Finding{}, fmt.Sprintf("no cpu drill of the hog %d", hog)
		}
		return f, ""
	})
	t.Logf("cpu critical %.1f s after the hog started: %s; top %+v", time.Since(started).Seconds(), resource(o, "cpu").Rule, o.Top.CPU[0])
	top, share := follow(t, base, f.Drill, func(s string) bool { return strings.Contains(s, "scorch_spin") })
	if !strings.Contains(top, "scorch_spin") || share < 0.5 {
		t.Errorf("the drill's capture: heaviest stack %q, %.0f%% in scorch_spin; want scorch_spin, most of it", top, share*100)
	}
}

// TestOverviewRunQueue: three busy threads on one CPU saturate its run
// queue; the finding's offcpu drill of the waiting process shows them
// waiting to run in scorch_spin.
func TestOverviewRunQueue(t *testing.T) {
	base := loadEnv(t)
	bin := testutil.BuildC(t, "gcc", spinWorkload, "-O1", "-fno-omit-frame-pointer", "-g", "-pthread")
	// At nice 19 they mostly wait: the most waiting process on a shared host.
	w := testutil.Start(t, bin, "3", "1", "19").Process.Pid
	o, f := waitOverview(t, base, func(o host.Overview) (host.Finding, string) {
		cpu := resource(o, "cpu")
		if cpu == nil || cpu.Status == host.StatusOK || float64(cpu.Saturation) < 0.5 {
			return host.Finding{}, "cpu saturation is not raised"
		}
		f, ok := findingOf(o, "cpu", "offcpu")
		if !ok || f.Drill.PID != w {
			return host.Finding{}, fmt.Sprintf("no offcpu drill of the waiting process %d", w)
		}
		return f, ""
	})
	cpu := resource(o, "cpu")
	t.Logf("cpu %s: %s", cpu.Status, cpu.Rule)
	if !strings.Contains(cpu.Rule, "run queue") || !strings.Contains(f.Message, strconv.Itoa(w)) {
		t.Errorf("rule %q / finding %q: want the run queue and the waiting pid", cpu.Rule, f.Message)
	}
	var waited float64
	for _, p := range o.Top.Runqueue {
		if p.PID == w {
			waited = float64(p.Value)
		}
	}
	if waited < 1000 {
		t.Errorf("three threads on one CPU waited %.0f ms/s, want over 1000 (two of them always wait)", waited)
	}
	top, share := follow(t, base, f.Drill, func(s string) bool {
		return strings.Contains(s, "scorch_spin") && strings.HasSuffix(s, "[runqueue]")
	})
	if !strings.Contains(top, "scorch_spin") || !strings.HasSuffix(top, "[runqueue]") || share < 0.5 {
		t.Errorf("the drill's capture: heaviest stack %q, %.0f%% scorch_spin in [runqueue]; want most of it", top, share*100)
	}
}

// TestOverviewFsync: an fsync loop shows on its disk and gives a state=D
// drill of the loop, whose capture blocks in scorch_fsync_once.
func TestOverviewFsync(t *testing.T) {
	base := loadEnv(t)
	bin := testutil.BuildC(t, "gcc", fsyncWorkload, "-O1", "-fno-omit-frame-pointer", "-g")
	// On the disk of the working directory: /tmp may be a tmpfs.
	dir, err := os.MkdirTemp(".", "fsync-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	w := testutil.Start(t, bin, filepath.Join(dir, "data")).Process.Pid
	o, f := waitOverview(t, base, func(o host.Overview) (host.Finding, string) {
		f, ok := findingOf(o, "disk:", "offcpu")
		if !ok || f.Drill.State != "D" || f.Drill.PID != w {
			return host.Finding{}, fmt.Sprintf("no disk finding with a state=D drill of the fsync loop %d", w)
		}
		if r := resource(o, f.Resource); r == nil || !(r.Utilization > 0) {
			return host.Finding{}, f.Resource + " shows no utilization"
		}
		return f, ""
	})
	r := resource(o, f.Resource)
	t.Logf("%s %s %.0f%% busy: %s", r.Resource, r.Status, float64(r.Utilization), f.Message)
	top, share := follow(t, base, f.Drill, func(s string) bool { return strings.Contains(s, "scorch_fsync_once") })
	if !strings.Contains(top, "scorch_fsync_once") || share < 0.5 {
		t.Errorf("the drill's capture: heaviest stack %q, %.0f%% in scorch_fsync_once; want most of it", top, share*100)
	}
}
