package host

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// fakeHost is a made-up /proc and /sys the test changes between ticks.
type fakeHost struct {
	t         *testing.T
	proc, sys string
}

func newFakeHost(t *testing.T) *fakeHost {
	dir := t.TempDir()
	h := &fakeHost{t: t, proc: filepath.Join(dir, "proc"), sys: filepath.Join(dir, "sys")}
	h.write("meminfo", "MemTotal: 1000 kB\nMemFree: 100 kB\nMemAvailable: 500 kB\nSwapTotal: 0 kB\nSwapFree: 0 kB\n")
	h.write("vmstat", "pgmajfault 0\npswpin 0\npswpout 0\noom_kill 0\n")
	h.write("uptime", "100.0 150.0\n")
	h.write("loadavg", "1.00 0.50 0.25 2/100 999\n")
	h.write("net/dev", "h|\nh|\n  eth0: 0 1 0 0 0 0 0 0 0 1 0 0 0 0 0 0\n")
	h.write("net/snmp", "Tcp: CurrEstab RetransSegs OutSegs InErrs\nTcp: 3 0 0 0\n")
	h.write("net/netstat", "TcpExt: ListenOverflows ListenDrops\nTcpExt: 0 0\n")
	h.block("sda")
	return h
}

func (h *fakeHost) write(rel, content string) {
	h.t.Helper()
	p := filepath.Join(h.proc, rel)
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		h.t.Fatal(err)
	}
	if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
		h.t.Fatal(err)
	}
}

func (h *fakeHost) block(name string) {
	h.t.Helper()
	if err := os.MkdirAll(filepath.Join(h.sys, "block", name), 0o755); err != nil {
		h.t.Fatal(err)
	}
}

// cpus writes /proc/stat with busy and idle ticks per CPU (nil: offline).
func (h *fakeHost) cpus(busy ...[2]uint64) {
	var b strings.Builder
	var tb, ti uint64
	for _, c := range busy {
		tb, ti = tb+c[0], ti+c[1]
	}
	fmt.Fprintf(&b, "cpu  %d 0 0 %d 0 0 0 0 0 0\n", tb, ti)
	for i, c := range busy {
		if c == [2]uint64{} {
			continue // offline
		}
		fmt.Fprintf(&b, "cpu%d %d 0 0 %d 0 0 0 0 0 0\n", i, c[0], c[1])
	}
	b.WriteString("btime 1700000000\nprocs_running 3\nprocs_blocked 0\nctxt 10\n")
	h.write("stat", b.String())
}

func (h *fakeHost) pid(pid int, comm string, ticks, waitNs uint64) {
	h.write(fmt.Sprintf("%d/stat", pid), fmt.Sprintf("%d (%s) R 1 %d %d 0 -1 0 0 0 0 0 %d 0 0 0 20 0 1 0 50 0 0", pid, comm, pid, pid, ticks))
	h.write(fmt.Sprintf("%d/schedstat", pid), fmt.Sprintf("%d %d 10\n", ticks*10_000_000, waitNs))
	h.write(fmt.Sprintf("%d/io", pid), "rchar: 1\nwchar: 1\nread_bytes: 0\nwrite_bytes: 0\n")
}

func find(o Overview, name string) *Resource {
	for i := range o.Resources {
		if o.Resources[i].Resource == name {
			return &o.Resources[i]
		}
	}
	return nil
}

func TestSamplerEdgeCases(t *testing.T) {
	h := newFakeHost(t)
	s := NewSampler(Options{Proc: h.proc, Sys: h.sys, Kmsg: "-"})
	t0 := time.Unix(1700000100, 0)
	tick := func(i int) { s.Tick(t0.Add(time.Duration(i) * time.Second)) }

	// Tick 0: the baseline. sda's io_ticks is about to wrap at 32 bits.
	h.cpus([2]uint64{1000, 1000}, [2]uint64{1000, 1000})
	h.pid(100, "hog", 0, 0)
	h.write("diskstats", fmt.Sprintf("8 0 sda 10 0 80 5 10 0 80 5 0 %d %d\n", uint64(1<<32-500), 10))
	tick(0)
	if o := s.Overview(1); len(o.Resources) != 0 {
		t.Fatalf("one sample has no rates, yet %d resources", len(o.Resources))
	}

	// Tick 1: both CPUs busy, the hog on both; sda wraps; sdb appears.
	h.cpus([2]uint64{1100, 1000}, [2]uint64{1100, 1000})
	h.pid(100, "hog", 200, 0)
	h.write("diskstats", fmt.Sprintf("8 0 sda 20 0 160 10 20 0 160 10 0 %d %d\n8 16 sdb 1 0 8 1 0 0 0 0 0 1 1\n", 400, 20))
	h.block("sdb")
	tick(1)
	o := s.Overview(1)
	cpu := find(o, "cpu")
	if cpu == nil || cpu.Utilization != 100 {
		t.Fatalf("cpu = %+v, want 100%% busy", cpu)
	}
	if cpu.Status != StatusOK {
		t.Errorf("one busy sample made cpu %s: a condition needs %d samples", cpu.Status, raiseSamples)
	}
	if len(o.Top.CPU) != 1 || o.Top.CPU[0].PID != 100 || o.Top.CPU[0].Value != 200 {
		t.Errorf("top cpu = %+v, want hog at 200%%", o.Top.CPU)
	}
	if sda := find(o, "disk:sda"); sda == nil || sda.Utilization != 90 {
		t.Errorf("sda = %+v: io_ticks wrapped from 2^32-500 to 400, 900 ms of 1 s busy", sda)
	}
	if find(o, "disk:sdb") != nil {
		t.Error("sdb has rates after the sample it appeared in")
	}
	var missing bool
	for _, m := range o.Missing {
		if strings.Contains(m, "pressure/cpu") && strings.Contains(m, "not on this host") {
			missing = true
		}
	}
	if !missing {
		t.Errorf("missing = %q: no word of the absent /proc/pressure/cpu", o.Missing)
	}

	// Tick 2: cpu1 went offline; cpu0 busy. Two busy samples: critical.
	h.cpus([2]uint64{1200, 1000}, [2]uint64{})
	h.pid(100, "hog", 300, 0)
	h.write("diskstats", fmt.Sprintf("8 0 sda 20 0 160 10 20 0 160 10 0 %d %d\n8 16 sdb 2 0 16 2 0 0 0 0 0 501 501\n", 400, 20))
	tick(2)
	o = s.Overview(1)
	cpu = find(o, "cpu")
	if cpu.Utilization != 100 || o.CPUs != 1 || !strings.Contains(cpu.Note, "cpu1 went offline") {
		t.Fatalf("cpu = %v%% of %d CPUs, note %q: want 100%% of the one online, cpu1 offline", cpu.Utilization, o.CPUs, cpu.Note)
	}
	if cpu.Status != StatusCritical || !strings.Contains(cpu.Rule, "CPU 100% busy") {
		t.Fatalf("cpu %s %q, want critical by CPU busy", cpu.Status, cpu.Rule)
	}
	if sdb := find(o, "disk:sdb"); sdb == nil || sdb.Utilization != 50 {
		t.Errorf("sdb = %+v, want 50%% busy in its second sample", sdb)
	}
	var drill *Drill
	for _, f := range o.Findings {
		if f.Resource == "cpu" && f.Drill.Type == "cpu" {
			drill = &f.Drill
		}
	}
	if drill == nil || drill.PID != 100 || drill.Duration != "10s" {
		t.Fatalf("findings = %+v, want a cpu drill of pid 100", o.Findings)
	}

	// Idle again: critical holds for holdSamples, then ok.
	busy := uint64(1200)
	for i := 3; i < 3+holdSamples; i++ {
		h.cpus([2]uint64{busy, 1000 + uint64(i)*100})
		tick(i)
		o = s.Overview(15)
		cpu = find(o, "cpu")
		if i < 2+holdSamples && cpu.Status != StatusCritical {
			t.Fatalf("tick %d: cpu %s %q, want critical held for %d samples", i, cpu.Status, cpu.Rule, holdSamples)
		}
	}
	if cpu.Status != StatusOK || cpu.Utilization != 0 || len(o.Findings) != 0 {
		t.Fatalf("after %d idle samples cpu %s %v%%, findings %+v: want ok", holdSamples, cpu.Status, cpu.Utilization, o.Findings)
	}
	if n := len(cpu.Series.Utilization); n != 2+holdSamples || cpu.Series.Utilization[0] != 100 || cpu.Series.Status[1] != 2 {
		t.Errorf("series = %v (status %v)", cpu.Series.Utilization, cpu.Series.Status)
	}
}

func TestSamplerRingBounded(t *testing.T) {
	h := newFakeHost(t)
	s := NewSampler(Options{Proc: h.proc, Sys: h.sys, Kmsg: "-", Window: 10 * time.Second})
	t0 := time.Unix(1700000100, 0)
	for i := range 25 {
		h.cpus([2]uint64{1000 + uint64(i), 1000 + uint64(i)})
		s.Tick(t0.Add(time.Duration(i) * time.Second))
	}
	cpu := find(s.Overview(15), "cpu")
	if n := len(cpu.Series.Utilization); n != 10 {
		t.Fatalf("%d points kept of a 10 s window", n)
	}
	if cpu.Series.Start != float64(t0.Unix()+15) {
		t.Errorf("series start %v, want the oldest kept sample %d", cpu.Series.Start, t0.Unix()+15)
	}
}

// TestSamplerFindings: each kind of trouble gives its finding and drill.
func TestSamplerFindings(t *testing.T) {
	h := newFakeHost(t)
	s := NewSampler(Options{Proc: h.proc, Sys: h.sys, Kmsg: "-"})
	t0 := time.Unix(1700000100, 0)
	h.cpus([2]uint64{1000, 1000})
	h.write("diskstats", "8 0 sda 10 0 80 5 10 0 80 5 0 100 10\n")
	// pid 300 is in D state at every sample; pid 2 is a kernel thread in D.
	writer := func(ticks uint64) {
		h.write("300/stat", fmt.Sprintf("300 (syncer) D 1 300 300 0 -1 0 0 0 0 0 %d 0 0 0 20 0 1 0 50 0 0", ticks))
		h.write("300/schedstat", "1 0 1\n")
		h.write("300/io", fmt.Sprintf("read_bytes: 0\nwrite_bytes: %d\n", ticks*4096))
		h.write("2/stat", "2 (kworker/u8:1) D 0 0 0 0 -1 2097152 0 0 0 0 0 0 0 0 20 0 1 0 5 0 0")
		h.write("2/schedstat", "1 0 1\n")
	}
	for i := range 4 {
		writer(uint64(i))
		h.cpus([2]uint64{1000, 1000 + uint64(i)*100})
		h.write("vmstat", fmt.Sprintf("pgmajfault 0\npswpin 0\npswpout 0\noom_kill %d\n", i/3))
		h.write("net/dev", fmt.Sprintf("h|\nh|\n  eth0: 0 %d 0 %d 0 0 0 0 0 1 0 0 0 0 0 0\n", 1+i*10, i*50))
		h.write("diskstats", fmt.Sprintf("8 0 sda 10 0 80 5 %d 0 80 5 0 %d 10\n", 10+i, 100+i*100))
		s.Tick(t0.Add(time.Duration(i) * time.Second))
	}
	o := s.Overview(1)
	byRes := map[string][]Finding{}
	for _, f := range o.Findings {
		byRes[f.Resource] = append(byRes[f.Resource], f)
	}
	if f := byRes["disk:sda"]; len(f) != 1 || f[0].Drill != (Drill{Type: "offcpu", PID: 300, State: "D", Duration: "10s"}) || !strings.Contains(f[0].Message, "syncer (300) blocked in D state") {
		t.Errorf("disk findings %+v, want an offcpu state=D drill of syncer (not the kernel thread)", f)
	}
	if len(o.Top.Blocked) != 2 || o.Top.Blocked[0].Value != 4 {
		t.Errorf("blocked %+v, want both tasks in D in 4 samples", o.Top.Blocked)
	}
	if f := byRes["memory"]; len(f) != 1 || f[0].Status != StatusCritical || f[0].Drill.Type != "mem" || f[0].Drill.Event != "page-faults" {
		t.Errorf("memory findings %+v, want an OOM kill critical at once, with a mem page-faults drill", f)
	}
	if f := byRes["net:eth0"]; len(f) != 1 || f[0].Drill != (Drill{Type: "event", Event: "skb:kfree_skb", Duration: "10s"}) || !strings.Contains(f[0].Message, "drops 50 packets/s") {
		t.Errorf("net findings %+v, want drops with an skb:kfree_skb drill", f)
	}
	if f := byRes["cpu"]; len(f) != 0 {
		t.Errorf("cpu findings %+v on an idle host", f)
	}
}

// TestSamplerPartialProc: a container's /proc without diskstats, PSI or
// schedstat says what is missing and still answers.
func TestSamplerPartialProc(t *testing.T) {
	h := newFakeHost(t)
	s := NewSampler(Options{Proc: h.proc, Sys: h.sys, Kmsg: "-"})
	t0 := time.Unix(1700000100, 0)
	for i := range 3 {
		h.cpus([2]uint64{1000 + uint64(i)*50, 1000 + uint64(i)*50})
		h.write("400/stat", fmt.Sprintf("400 (app) R 1 400 400 0 -1 0 0 0 0 0 %d 0 0 0 20 0 1 0 50 0 0", i*50))
		s.Tick(t0.Add(time.Duration(i) * time.Second))
	}
	o := s.Overview(1)
	missing := strings.Join(o.Missing, "\n")
	for _, want := range []string{"diskstats: not on this host: no disk figures", "pressure/memory: not on this host", "schedstat: missing for 1 tasks"} {
		if !strings.Contains(missing, want) {
			t.Errorf("missing lacks %q:\n%s", want, missing)
		}
	}
	cpu := find(o, "cpu")
	if cpu == nil || cpu.Utilization != 50 || cpu.Units.Saturation != "runnable tasks beyond the CPUs, per CPU" {
		t.Fatalf("cpu %+v: want 50%% busy, saturation from the run queue length without schedstat", cpu)
	}
	if mem := find(o, "memory"); mem == nil || mem.Units.Saturation != "pages swapped per s" || mem.Utilization != 50 {
		t.Errorf("memory %+v: want 50%% used, saturation from swapping without PSI", mem)
	}
	if len(o.Top.CPU) != 1 || o.Top.CPU[0].PID != 400 || o.Top.CPU[0].Value != 50 {
		t.Errorf("top cpu %+v", o.Top.CPU)
	}
}
