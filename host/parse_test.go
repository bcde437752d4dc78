package host

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func recorded(t testing.TB, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", "proc", name))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestParseStat(t *testing.T) {
	s, err := ParseStat(recorded(t, "stat.1"))
	if err != nil {
		t.Fatal(err)
	}
	if len(s.CPUs) != 2 || s.CPUs[0].ID != 0 || s.CPUs[1].ID != 1 {
		t.Fatalf("CPUs = %+v, want cpu0 and cpu1", s.CPUs)
	}
	if s.BootTime < 1e9 || s.Ctxt == 0 || s.Processes == 0 || s.ProcsRunning < 1 {
		t.Fatalf("stat = %+v: btime, ctxt, processes, procs_running missing", s)
	}
	var sum uint64
	for _, c := range s.CPUs {
		sum += c.User
	}
	if d := int64(s.Total.User) - int64(sum); d < -2 || d > 2 {
		t.Errorf("total user %d, per-CPU sum %d", s.Total.User, sum)
	}
	for _, tc := range []struct {
		name, in, want string
		cpus           int
	}{
		{"cpu1 offline", "cpu  10 0 10 100 0 0 0 0 0 0\ncpu0 10 0 10 100 0 0 0 0 0 0\ncpu2 1 0 1 1 0 0 0 0\nprocs_running 3\n", "", 2},
		{"old kernel, 4 columns", "cpu 1 2 3 4\ncpu0 1 2 3 4\n", "", 1},
		{"no cpu line", "ctxt 5\n", "no cpu line", 0},
		{"bad column", "cpu 1 2 x 4\n", "column 3", 0},
		{"bad cpu name", "cpu 1 2 3 4\ncpuX 1 2 3 4\n", "not a CPU name", 0},
		{"too few columns", "cpu 1 2\n", "at least 4", 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s, err := ParseStat([]byte(tc.in))
			if tc.want != "" {
				if err == nil || !strings.Contains(err.Error(), tc.want) {
					t.Fatalf("err = %v, want %q", err, tc.want)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if len(s.CPUs) != tc.cpus {
				t.Fatalf("%d CPUs, want %d", len(s.CPUs), tc.cpus)
			}
		})
	}
}

func TestParseLoadavgPressure(t *testing.T) {
	l, err := ParseLoadavg(recorded(t, "loadavg"))
	if err != nil || l.Load1 <= 0 || l.Total < l.Running || l.Total == 0 {
		t.Fatalf("loadavg = %+v, %v", l, err)
	}
	if _, err := ParseLoadavg([]byte("1 2 3 x 5")); err == nil {
		t.Error("no error for 'x' as running/total")
	}
	for _, f := range []string{"cpu", "memory", "io"} {
		p, err := ParsePressure(recorded(t, "pressure/"+f))
		if err != nil {
			t.Fatalf("%s: %v", f, err)
		}
		if !p.HasFull {
			t.Errorf("%s: no full line", f)
		}
		if f == "cpu" && (p.Some.Total == 0 || p.Some.Avg10 <= 0) {
			t.Errorf("cpu pressure %+v: the recorded host was busy", p)
		}
	}
	// Linux 4.20..5.12: the cpu file has no full line.
	p, err := ParsePressure([]byte("some avg10=1.50 avg60=0.20 avg300=0.00 total=123456\n"))
	if err != nil || p.HasFull || p.Some.Total != 123456 || p.Some.Avg10 != 1.5 {
		t.Fatalf("pressure = %+v, %v", p, err)
	}
	for _, bad := range []string{"", "half avg10=1\n", "some avg10\n", "some total=-1\n"} {
		if _, err := ParsePressure([]byte(bad)); err == nil {
			t.Errorf("%q: no error", bad)
		}
	}
}

func TestParseMeminfoVmstat(t *testing.T) {
	m, err := ParseMeminfo(recorded(t, "meminfo"))
	if err != nil {
		t.Fatal(err)
	}
	if m["MemTotal"] < 1<<30 || m["MemAvailable"] == 0 || m["MemAvailable"] > m["MemTotal"] {
		t.Fatalf("MemTotal %d MemAvailable %d", m["MemTotal"], m["MemAvailable"])
	}
	if m["MemTotal"]%1024 != 0 {
		t.Errorf("MemTotal %d is not in bytes", m["MemTotal"])
	}
	if _, ok := m["HugePages_Total"]; !ok {
		t.Error("HugePages_Total (no unit) missing")
	}
	if _, err := ParseMeminfo([]byte("MemTotal: 18446744073709551615 kB\n")); err == nil {
		t.Error("no error for a kB value that overflows")
	}
	v, err := ParseVmstat(recorded(t, "vmstat"))
	if err != nil {
		t.Fatal(err)
	}
	for _, k := range []string{"pgmajfault", "pswpin", "pswpout", "pgpgin", "oom_kill"} {
		if _, ok := v[k]; !ok {
			t.Errorf("vmstat: %s missing", k)
		}
	}
	v, err = ParseVmstat([]byte("nr_free_pages 5\nnr_zone_write_pending -3\nbig 18446744073709551615\n"))
	if err != nil || v["nr_zone_write_pending"] != 0 || v["big"] != 1<<64-1 {
		t.Fatalf("vmstat = %v, %v: a negative gauge is 0, a full uint64 kept", v, err)
	}
}

func TestParseDiskstats(t *testing.T) {
	d, err := ParseDiskstats(recorded(t, "diskstats.1"))
	if err != nil {
		t.Fatal(err)
	}
	var vda *DiskStat
	for i := range d {
		if d[i].Name == "vda" {
			vda = &d[i]
		}
	}
	if vda == nil || vda.Major != 254 || vda.Reads == 0 || vda.IOMs == 0 {
		t.Fatalf("vda = %+v", vda)
	}
	// 14 fields (before Linux 4.18): discards and flushes are 0.
	d, err = ParseDiskstats([]byte("   8       0 sda 1 2 3 4 5 6 7 8 0 10 11\n"))
	if err != nil || len(d) != 1 || d[0].Writes != 5 || d[0].IOMs != 10 || d[0].Flushes != 0 {
		t.Fatalf("old format: %+v, %v", d, err)
	}
	for _, bad := range []string{"8 0 sda 1 2\n", "x 0 sda 1 2 3 4 5 6 7 8 0 10 11\n", "8 0 sda 1 2 3 4 5 6 7 8 0 10 -1\n"} {
		if _, err := ParseDiskstats([]byte(bad)); err == nil {
			t.Errorf("%q: no error", bad)
		}
	}
}

func TestParseNet(t *testing.T) {
	devs, err := ParseNetDev(recorded(t, "net/dev"))
	if err != nil {
		t.Fatal(err)
	}
	names := map[string]NetDev{}
	for _, d := range devs {
		names[d.Name] = d
	}
	if names["eth0"].RxBytes == 0 || names["lo"].Name != "lo" {
		t.Fatalf("net/dev = %+v", devs)
	}
	if _, err := ParseNetDev([]byte("h|h\nh|h\neth0: 1 2 3\n")); err == nil {
		t.Error("no error for 3 counters")
	}
	for _, f := range []string{"net/snmp", "net/netstat"} {
		m, err := ParseNetStat(recorded(t, f))
		if err != nil {
			t.Fatalf("%s: %v", f, err)
		}
		if f == "net/snmp" && (m["Tcp.MaxConn"] != -1 || m["Tcp.ActiveOpens"] == 0) {
			t.Errorf("snmp Tcp.MaxConn %d ActiveOpens %d", m["Tcp.MaxConn"], m["Tcp.ActiveOpens"])
		}
		if _, ok := m["TcpExt.ListenOverflows"]; f == "net/netstat" && !ok {
			t.Error("netstat: TcpExt.ListenOverflows missing")
		}
	}
	if _, err := ParseNetStat([]byte("Tcp: A B\nTcp: 1\n")); err == nil {
		t.Error("no error for 1 value of 2 names")
	}
}

func TestParsePID(t *testing.T) {
	s, err := ParsePIDStat(recorded(t, "pid_stat"))
	if err != nil {
		t.Fatal(err)
	}
	if s.PID != 1 || s.Comm != "process_api" || s.State != 'S' || s.NumThreads < 1 || s.StartTime == 0 {
		t.Fatalf("stat = %+v", s)
	}
	// A name with spaces and parentheses, as any process may set.
	s, err = ParsePIDStat([]byte("42 (a) b (c)) R 1 42 42 0 -1 2097152 0 0 7 0 300 200 0 0 20 0 3 0 999 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 1\n"))
	if err != nil {
		t.Fatal(err)
	}
	if s.Comm != "a) b (c)" || s.State != 'R' || s.UTime != 300 || s.STime != 200 || s.MajFlt != 7 || s.NumThreads != 3 || s.StartTime != 999 || !s.Kthread() {
		t.Fatalf("stat = %+v", s)
	}
	for _, bad := range []string{"", "1 (x R 1", "1 (x) RR 1 2 3 4 5 6 7 8 9 10 11 12 13 14 15 16 17 18 19 20", "1 (x) R 1 2\n"} {
		if _, err := ParsePIDStat([]byte(bad)); err == nil {
			t.Errorf("%q: no error", bad)
		}
	}
	ss, err := ParseSchedstat(recorded(t, "pid_schedstat"))
	if err != nil || ss.RunNs == 0 || ss.Slices == 0 {
		t.Fatalf("schedstat = %+v, %v", ss, err)
	}
	if _, err := ParseSchedstat([]byte("1 2\n")); err == nil {
		t.Error("no error for 2 fields")
	}
	io, err := ParsePIDIO(recorded(t, "pid_io"))
	if err != nil || io.Rchar == 0 || io.Syscr == 0 {
		t.Fatalf("io = %+v, %v", io, err)
	}
	if _, err := ParsePIDIO([]byte("rchar: x\n")); err == nil {
		t.Error("no error for rchar: x")
	}
}

func TestParseKmsg(t *testing.T) {
	r, err := ParseKmsg(recorded(t, "kmsg_record"))
	if err != nil || r.Level != 5 || r.Seq != 0 || !strings.HasPrefix(r.Message, "Linux version") {
		t.Fatalf("record = %+v, %v", r, err)
	}
	r, err = ParseKmsg([]byte("3,1234,5140900,-,caller=T1;EXT4-fs error (device vda): bad\n SUBSYSTEM=block\n DEVICE=b254:0\n"))
	if err != nil || r.Level != 3 || r.Facility != 0 || r.Micros != 5140900 || r.Message != "EXT4-fs error (device vda): bad" {
		t.Fatalf("record = %+v, %v", r, err)
	}
	if r, _ := ParseKmsg([]byte("12,5,1,-;from userspace")); r.Facility != 1 || r.Level != 4 {
		t.Errorf("facility/level of priority 12: %+v", r)
	}
	for _, bad := range []string{"", "3,1;x", "x,1,2,-;m", "3,1,2,-"} {
		if _, err := ParseKmsg([]byte(bad)); err == nil {
			t.Errorf("%q: no error", bad)
		}
	}
}

func TestDelta(t *testing.T) {
	for _, tc := range []struct{ prev, cur, want uint64 }{
		{10, 15, 5},
		{1<<32 - 10, 5, 15},       // a 32-bit counter wrapped
		{1 << 40, 7, 0},           // a 64-bit counter went back: reset, not a jump
		{1000, 2, 0},              // a reset: as a 32-bit wrap it would be over 2^31
		{1<<64 - 1, 1<<64 - 1, 0}, // unchanged
	} {
		if got := delta(tc.prev, tc.cur); got != tc.want {
			t.Errorf("delta(%d, %d) = %d, want %d", tc.prev, tc.cur, got, tc.want)
		}
	}
}
