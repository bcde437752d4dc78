package host

import (
	"os"
	"path/filepath"
	"testing"
)

// seeds adds the recorded files to a fuzz corpus.
func seeds(f *testing.F, names ...string) {
	for _, n := range names {
		b, err := os.ReadFile(filepath.Join("testdata", "proc", n))
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
}

func FuzzParseStat(f *testing.F) {
	seeds(f, "stat.0", "stat.1")
	f.Fuzz(func(t *testing.T, b []byte) {
		s, err := ParseStat(b)
		if err == nil && s.Total.Busy() > s.Total.Total() {
			t.Fatalf("busy %d > total %d", s.Total.Busy(), s.Total.Total())
		}
	})
}

func FuzzParseSmall(f *testing.F) {
	seeds(f, "loadavg", "pressure/cpu", "pressure/io", "pid_schedstat", "pid_io")
	f.Fuzz(func(t *testing.T, b []byte) {
		ParseLoadavg(b)
		ParsePressure(b)
		ParseSchedstat(b)
		ParsePIDIO(b)
	})
}

func FuzzParseTables(f *testing.F) {
	seeds(f, "meminfo", "vmstat", "diskstats.1", "net/dev", "net/snmp", "net/netstat")
	f.Fuzz(func(t *testing.T, b []byte) {
		ParseMeminfo(b)
		ParseVmstat(b)
		ParseDiskstats(b)
		ParseNetDev(b)
		ParseNetStat(b)
	})
}

func FuzzParsePIDStat(f *testing.F) {
	seeds(f, "pid_stat")
	f.Add([]byte("42 (a) b (c)) R 1 42 42 0 -1 2097152 0 0 7 0 300 200 0 0 20 0 3 0 999 0"))
	f.Fuzz(func(t *testing.T, b []byte) {
		s, err := ParsePIDStat(b)
		if err == nil && s.PID < 0 {
			t.Fatalf("pid %d", s.PID)
		}
	})
}

func FuzzParseKmsg(f *testing.F) {
	seeds(f, "kmsg_record")
	f.Add([]byte("3,1234,5140900,-,caller=T1;EXT4-fs error\n SUBSYSTEM=block\n"))
	f.Fuzz(func(t *testing.T, b []byte) {
		r, err := ParseKmsg(b)
		if err == nil && (r.Level < 0 || r.Level >= len(Levels)) {
			t.Fatalf("level %d", r.Level)
		}
	})
}
