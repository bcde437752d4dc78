package profiler

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/rlimit"
	"github.com/scorch-dev/scorch/bpf"
	"github.com/scorch-dev/scorch/capture"
	"github.com/scorch-dev/scorch/internal/testutil"
	"github.com/scorch-dev/scorch/unwind"
	"golang.org/x/sys/unix"
)

// fakeTracefs builds an events directory with sched:sched_switch and
// sched:sched_wakeup.
func fakeTracefs(t *testing.T) string {
	t.Helper()
	root := t.TempDir()
	for _, tp := range []string{"sched/sched_switch", "sched/sched_wakeup"} {
		dir := filepath.Join(root, tp)
		if err := os.MkdirAll(dir, 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, "id"), []byte("316\n"), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return root
}

func TestParseEvent(t *testing.T) {
	tracefs := fakeTracefs(t)
	tests := []struct {
		name    string
		tracefs string
		config  uint64 // perf events
		tp      string // tracepoints: group:name
		errIs   error
		errHas  []string
	}{
		{name: "context-switches", tracefs: tracefs, config: unix.PERF_COUNT_SW_CONTEXT_SWITCHES},
		{name: "cs", tracefs: tracefs, config: unix.PERF_COUNT_SW_CONTEXT_SWITCHES},
		{name: "major-faults", tracefs: tracefs, config: unix.PERF_COUNT_SW_PAGE_FAULTS_MAJ},
		{name: "cycles", tracefs: tracefs, config: unix.PERF_COUNT_HW_CPU_CYCLES},
		{name: "sched:sched_switch", tracefs: tracefs, tp: "sched:sched_switch"},
		{name: "", tracefs: tracefs, errIs: ErrBadTarget, errHas: []string{"needs --event", "context-switches", "cycles"}},
		{name: "bogus", tracefs: tracefs, errIs: ErrBadTarget, errHas: []string{`unknown event "bogus"`, "cpu-migrations", "major-faults", "subsys:name"}},
		{name: "sched:nope", tracefs: tracefs, errIs: ErrBadTarget, errHas: []string{"sched:sched_switch", "sched:sched_wakeup"}},
		{name: "sched:sched_wake", tracefs: tracefs, errIs: ErrBadTarget, errHas: []string{"sched has sched:sched_wakeup, sched:sched_switch"}},
		{name: "nosuch:thing", tracefs: tracefs, errIs: ErrBadTarget, errHas: []string{`subsystem "nosuch"`}},
		{name: "../x:y", tracefs: tracefs, errIs: ErrBadTarget, errHas: []string{"not valid"}},
		{name: "sched:sched_switch", tracefs: "", errIs: ErrUnavailable, errHas: []string{"tracefs"}},
	}
	for _, tc := range tests {
		label := tc.name
		if tc.tracefs == "" {
			label += "/no-tracefs"
		}
		t.Run(label, func(t *testing.T) {
			src, err := parseEvent(tc.name, tc.tracefs)
			if tc.errIs != nil {
				if !errors.Is(err, tc.errIs) {
					t.Fatalf("error %v, want %v", err, tc.errIs)
				}
				for _, s := range tc.errHas {
					if !strings.Contains(err.Error(), s) {
						t.Errorf("error %q does not mention %q", err, s)
					}
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if tc.tp != "" {
				if got := src.group + ":" + src.tap; got != tc.tp || src.perf != nil {
					t.Errorf("tracepoint %s, want %s", got, tc.tp)
				}
				return
			}
			if src.perf == nil || src.perf.config != tc.config {
				t.Errorf("perf event %+v, want config %d", src.perf, tc.config)
			}
		})
	}
}

const mapsFixture = `55d0c0a00000-55d0c0a01000 r--p 00000000 fe:01 123 /tmp/workload
7f1c2a000000-7f1c2a028000 r--p 00000000 fe:01 456 /usr/lib/x86_64-linux-gnu/libc.so.6
7f1c2a028000-7f1c2a19d000 r-xp 00028000 fe:01 456 /usr/lib/x86_64-linux-gnu/libc.so.6
7f1c2a19d000-7f1c2a1f5000 r--p 0019d000 fe:01 456 /usr/lib/x86_64-linux-gnu/libc.so.6
7ffd5e1f0000-7ffd5e211000 rw-p 00000000 00:00 0 [stack]
`

func TestFindAllocatorAndMappedAddress(t *testing.T) {
	if got := findAllocator([]byte(mapsFixture)); got != "/usr/lib/x86_64-linux-gnu/libc.so.6" {
		t.Errorf("allocator %q", got)
	}
	if got := findAllocator([]byte("7f00-7f01 r-xp 0 0:0 1 /lib/ld-musl-x86_64.so.1\n")); got != "/lib/ld-musl-x86_64.so.1" {
		t.Errorf("musl allocator %q", got)
	}
	if got := findAllocator([]byte("55d0-55d1 r-xp 0 0:0 1 /static\n")); got != "" {
		t.Errorf("static binary: allocator %q, want none", got)
	}
	tests := []struct {
		off  uint64
		addr uint64
		ok   bool
	}{
		{0x99a70, 0x7f1c2a099a70, true}, // malloc in the text mapping
		{0x100, 0x7f1c2a000100, true},
		{0x300000, 0, false},
	}
	for _, tc := range tests {
		addr, ok := mappedAddress(strings.NewReader(mapsFixture), "/usr/lib/x86_64-linux-gnu/libc.so.6", tc.off)
		if addr != tc.addr || ok != tc.ok {
			t.Errorf("offset %#x: %#x %v, want %#x %v", tc.off, addr, ok, tc.addr, tc.ok)
		}
	}
}

func FuzzMappedAddress(f *testing.F) {
	f.Add([]byte(mapsFixture), uint64(0x99a70))
	f.Add([]byte("0-1 r 0\nzz-yy r-xp qq 0 0 /a\n"), uint64(1))
	f.Fuzz(func(t *testing.T, maps []byte, off uint64) {
		lib := findAllocator(maps)
		addr, ok := mappedAddress(bytes.NewReader(maps), lib, off)
		if !ok && addr != 0 {
			t.Fatalf("address %#x without a mapping", addr)
		}
	})
}

// sleepyC sleeps in nap() (through libc's nanosleep wrapper, which has no
// frame pointer) 200 times a second.
const sleepyC = `
#include <time.h>

__attribute__((noinline)) void nap(void) {
	struct timespec ts = {0, 5 * 1000 * 1000};
	nanosleep(&ts, NULL);
}

int main(void) {
	for (;;)
		nap();
}
`

func TestEventContextSwitchesNamesSleeper(t *testing.T) {
	testutil.RequireRoot(t)
	c, all, nap := recordSleepy(t, "context-switches")
	t.Logf("%d context switches, %d under nap, event %q", all, nap, c.Meta.Event)
	// 200 sleeps a second for 2 s: at least a quarter of them on a slow VM.
	if all < 100 {
		t.Fatalf("only %d context switches in 2 s", all)
	}
	if float64(nap) < 0.8*float64(all) {
		t.Errorf("nap has %d of %d context switches, want at least 80%%", nap, all)
	}
	if c.Meta.Event != "context-switches" || c.Meta.Type != capture.PerfEvent {
		t.Errorf("meta %s/%s", c.Meta.Type, c.Meta.Event)
	}
}

func TestEventTracepoint(t *testing.T) {
	testutil.RequireRoot(t)
	if tracefsEvents() == "" {
		t.Skip("tracefs is not available")
	}
	_, all, nap := recordSleepy(t, "syscalls:sys_enter_clock_nanosleep")
	t.Logf("%d tracepoint hits, %d under nap", all, nap)
	if all < 100 || float64(nap) < 0.9*float64(all) {
		t.Errorf("nap has %d of %d clock_nanosleep calls, want at least 100 and 90%%", nap, all)
	}
}

func TestEventHardwareWithoutPMU(t *testing.T) {
	testutil.RequireRoot(t)
	if ok, _ := probePMU(); ok {
		t.Skip("this host has a PMU")
	}
	_, err := Record(context.Background(), capture.Params{Type: capture.PerfEvent, Event: "cycles", Duration: capture.Duration(time.Second)}, Options{})
	if !errors.Is(err, ErrUnavailable) || !strings.Contains(err.Error(), "no hardware PMU") {
		t.Fatalf("cycles without a PMU: %v, want ErrUnavailable saying no hardware PMU", err)
	}
}

// The CPI program cannot run without a PMU, but the verifier must accept
// it with the maps sized as loadCPI sizes them.
func TestCPIProgramLoads(t *testing.T) {
	testutil.RequireRoot(t)
	if err := rlimit.RemoveMemlock(); err != nil {
		t.Fatal(err)
	}
	cpus, err := OnlineCPUs()
	if err != nil {
		t.Fatal(err)
	}
	var objs eventObjects
	if err := loadCPIObjects(loadConfig{tgt: &target{mode: bpf.SamplerTargetModeTARGET_PID}, mode: unwind.ModeAuto}, cpus, &objs); err != nil {
		t.Fatalf("the kernel refused the CPI program: %v", err)
	}
	defer objs.Close()
	if objs.Progs.SampleCpi == nil || objs.Progs.SampleCpi.Type() != ebpf.PerfEvent {
		t.Fatalf("sample_cpi is %v, want a perf_event program", objs.Progs.SampleCpi)
	}
}

// recordSleepy records event on the sleepyC workload for 2 s and returns the
// capture, its total and the part under main;nap.
func recordSleepy(t *testing.T, event string) (c *capture.Capture, all, nap int64) {
	t.Helper()
	bin := testutil.BuildC(t, "gcc", sleepyC, "-O1", "-g", "-fno-omit-frame-pointer")
	cmd := testutil.Start(t, bin)
	time.Sleep(100 * time.Millisecond)
	c, err := Record(context.Background(), capture.Params{
		Type: capture.PerfEvent, Event: event, PIDs: []int{cmd.Process.Pid},
		Duration: capture.Duration(2 * time.Second), Unwind: "auto",
	}, Options{})
	if err != nil {
		t.Fatal(err)
	}
	for _, sv := range c.Aggregate(capture.Query{}) {
		all += sv.Value
		if strings.Contains(strings.Join(c.FoldedStack(sv.Stack), ";"), "main;nap;") {
			nap += sv.Value
		}
	}
	return c, all, nap
}

// On a host without hardware counters (this VM) a CPI capture fails with
// ErrUnavailable and says why, and the capabilities say the same.
func TestCPIWithoutPMU(t *testing.T) {
	testutil.RequireRoot(t)
	caps := Capabilities(context.Background())
	if caps.PMU {
		t.Skip("this host has a hardware PMU: the no-PMU answer cannot be checked here")
	}
	_, err := Record(context.Background(), capture.Params{Type: capture.CPI, Duration: capture.Duration(time.Second)}, Options{})
	if !errors.Is(err, ErrUnavailable) {
		t.Fatalf("cpi capture: %v, want ErrUnavailable", err)
	}
	if !strings.Contains(err.Error(), "no hardware PMU") {
		t.Errorf("cpi error %q does not say there is no hardware PMU", err)
	}
	col := caps.Collectors["cpi"]
	if col.Available || !strings.Contains(col.Reason, "no hardware PMU") {
		t.Errorf("capabilities say cpi %+v, want unavailable with the no-PMU reason", col)
	}
	for _, name := range []string{"mem", "event"} {
		if c := caps.Collectors[name]; !c.Available {
			t.Errorf("collector %s unavailable: %s", name, c.Reason)
		}
	}
}

// CheckEvent refuses, before anything loads, the events Record would fail
// on, with Record's error class, and accepts those that exist here.
func TestCheckEvent(t *testing.T) {
	testutil.RequireRoot(t)
	if tracefsEvents() == "" {
		t.Skip("tracefs is not available")
	}
	for _, tt := range []struct {
		p    capture.Params
		want string // "" accepted
	}{
		{capture.Params{Type: capture.PerfEvent, Event: "sched:sched_switch"}, ""},
		{capture.Params{Type: capture.PerfEvent, Event: "context-switches"}, ""},
		{capture.Params{Type: capture.PerfEvent, Event: "nosuch:thing"}, `unknown tracepoint subsystem "nosuch"`},
		{capture.Params{Type: capture.PerfEvent, Event: "sched:nosuch"}, `unknown tracepoint "sched:nosuch": sched has sched:`},
		{capture.Params{Type: capture.PerfEvent, Event: "../x:y"}, `tracepoint "../x:y" is not valid`},
		{capture.Params{Type: capture.PerfEvent}, "--type event needs --event NAME"},
		{capture.Params{Type: capture.Mem, Event: "free"}, `mem event "free" is not supported`},
		{capture.Params{Type: capture.Mem}, ""},
		{capture.Params{Type: capture.CPU, Event: "whatever"}, ""},
	} {
		err := CheckEvent(tt.p)
		switch {
		case tt.want == "" && err != nil:
			t.Errorf("%s %q: %v", tt.p.Type, tt.p.Event, err)
		case tt.want != "" && (err == nil || !errors.Is(err, ErrBadTarget) || !strings.Contains(err.Error(), tt.want)):
			t.Errorf("%s %q: %v, want ErrBadTarget with %q", tt.p.Type, tt.p.Event, err, tt.want)
		}
	}
}
