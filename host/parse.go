// Package host samples the host's resources from /proc and /sys for the
// USE method (utilization, saturation and errors of every resource) and
// the "60 seconds" checklist: CPU, memory, disks, network, TCP, the
// processes that use or wait for them most, and the kernel log's errors.
//
// The parsers take bytes and know nothing of files, so they are tested on
// recorded files and fuzzed; the sampler reads the files and keeps a
// bounded history. Nothing here shells out or needs BPF.
package host

import (
	"bytes"
	"errors"
	"fmt"
	"strconv"
)

// CPUTimes are the clock ticks (USER_HZ) a CPU spent in each state, from
// a cpu line of /proc/stat.
type CPUTimes struct {
	User, Nice, System, Idle, IOWait, IRQ, SoftIRQ, Steal, Guest, GuestNice uint64
}

// Total is every tick but guest time, which user and nice already count.
func (t CPUTimes) Total() uint64 {
	return t.User + t.Nice + t.System + t.Idle + t.IOWait + t.IRQ + t.SoftIRQ + t.Steal
}

// Busy is the ticks neither idle nor waiting for I/O (iowait is idle time).
func (t CPUTimes) Busy() uint64 { return t.Total() - t.Idle - t.IOWait }

// Stat is /proc/stat.
type Stat struct {
	Total CPUTimes
	// CPUs are the online CPUs' lines in file order; offline CPUs have none.
	CPUs         []CPU
	Ctxt         uint64
	BootTime     int64 // btime, seconds since the epoch
	Processes    uint64
	ProcsRunning int
	ProcsBlocked int
}

// CPU is one per-CPU line of /proc/stat.
type CPU struct {
	ID int
	CPUTimes
}

var errNoFields = errors.New("no fields")

// fields splits a line at runs of spaces and tabs without allocating a
// string per field.
func fields(line []byte) [][]byte { return bytes.Fields(line) }

func parseU(b []byte) (uint64, error) { return strconv.ParseUint(string(b), 10, 64) }

func parseI(b []byte) (int64, error) { return strconv.ParseInt(string(b), 10, 64) }

// lines calls fn for each line of b, without the newline.
func lines(b []byte, fn func(n int, line []byte) error) error {
	for n := 1; len(b) > 0; n++ {
		i := bytes.IndexByte(b, '\n')
		line := b
		if i >= 0 {
			line, b = b[:i], b[i+1:]
		} else {
			b = nil
		}
		if err := fn(n, line); err != nil {
			return err
		}
	}
	return nil
}

func parseCPUTimes(f [][]byte) (CPUTimes, error) {
	// Older kernels have fewer columns (steal since 2.6.11, guest since
	// 2.6.24, guest_nice since 2.6.33): missing ones are 0.
	var v [10]uint64
	if len(f) < 4 {
		return CPUTimes{}, fmt.Errorf("%d time columns, want at least 4", len(f))
	}
	for i := 0; i < len(f) && i < len(v); i++ {
		n, err := parseU(f[i])
		if err != nil {
			return CPUTimes{}, fmt.Errorf("column %d: %w", i+1, err)
		}
		v[i] = n
	}
	return CPUTimes{v[0], v[1], v[2], v[3], v[4], v[5], v[6], v[7], v[8], v[9]}, nil
}

// ParseStat parses /proc/stat.
func ParseStat(b []byte) (Stat, error) {
	var s Stat
	sawTotal := false
	err := lines(b, func(n int, line []byte) error {
		f := fields(line)
		if len(f) < 2 {
			return nil
		}
		key := f[0]
		switch {
		case string(key) == "cpu":
			t, err := parseCPUTimes(f[1:])
			if err != nil {
				return fmt.Errorf("line %d (cpu): %w", n, err)
			}
			s.Total, sawTotal = t, true
		case bytes.HasPrefix(key, []byte("cpu")):
			id, err := strconv.Atoi(string(key[3:]))
			if err != nil || id < 0 {
				return fmt.Errorf("line %d: %q is not a CPU name", n, key)
			}
			t, err := parseCPUTimes(f[1:])
			if err != nil {
				return fmt.Errorf("line %d (%s): %w", n, key, err)
			}
			s.CPUs = append(s.CPUs, CPU{ID: id, CPUTimes: t})
		case string(key) == "ctxt", string(key) == "processes", string(key) == "btime",
			string(key) == "procs_running", string(key) == "procs_blocked":
			v, err := parseU(f[1])
			if err != nil {
				return fmt.Errorf("line %d (%s): %w", n, key, err)
			}
			switch string(key) {
			case "ctxt":
				s.Ctxt = v
			case "processes":
				s.Processes = v
			case "btime":
				s.BootTime = int64(min(v, 1<<62))
			case "procs_running":
				s.ProcsRunning = int(min(v, 1<<31))
			case "procs_blocked":
				s.ProcsBlocked = int(min(v, 1<<31))
			}
		}
		return nil
	})
	if err != nil {
		return Stat{}, err
	}
	if !sawTotal {
		return Stat{}, errors.New("no cpu line")
	}
	return s, nil
}

// Loadavg is /proc/loadavg.
type Loadavg struct {
	Load1, Load5, Load15 float64
	Running, Total       int // scheduling entities runnable now, and in all
}

// ParseLoadavg parses /proc/loadavg: "0.55 0.19 0.07 11/140 7583".
func ParseLoadavg(b []byte) (Loadavg, error) {
	f := fields(b)
	if len(f) < 4 {
		return Loadavg{}, fmt.Errorf("%d fields, want 5", len(f))
	}
	var l Loadavg
	for i, p := range []*float64{&l.Load1, &l.Load5, &l.Load15} {
		v, err := strconv.ParseFloat(string(f[i]), 64)
		if err != nil || v < 0 {
			return Loadavg{}, fmt.Errorf("field %d: %q is not a load", i+1, f[i])
		}
		*p = v
	}
	run, total, ok := bytes.Cut(f[3], []byte("/"))
	if !ok {
		return Loadavg{}, fmt.Errorf("field 4: %q is not running/total", f[3])
	}
	r, err1 := strconv.Atoi(string(run))
	t, err2 := strconv.Atoi(string(total))
	if err1 != nil || err2 != nil || r < 0 || t < 0 {
		return Loadavg{}, fmt.Errorf("field 4: %q is not running/total", f[3])
	}
	l.Running, l.Total = r, t
	return l, nil
}

// PSI is one line of a /proc/pressure file.
type PSI struct {
	Avg10, Avg60, Avg300 float64 // percent of time stalled
	Total                uint64  // microseconds stalled since boot
}

// Pressure is a /proc/pressure/{cpu,memory,io} file. Full is absent from
// the cpu file before Linux 5.13 (and all zero in it after).
type Pressure struct {
	Some    PSI
	Full    PSI
	HasFull bool
}

// ParsePressure parses "some avg10=0.00 avg60=0.00 avg300=0.00 total=0".
func ParsePressure(b []byte) (Pressure, error) {
	var p Pressure
	sawSome := false
	err := lines(b, func(n int, line []byte) error {
		f := fields(line)
		if len(f) == 0 {
			return nil
		}
		var dst *PSI
		switch string(f[0]) {
		case "some":
			dst, sawSome = &p.Some, true
		case "full":
			dst, p.HasFull = &p.Full, true
		default:
			return fmt.Errorf("line %d: %q is neither some nor full", n, f[0])
		}
		for _, kv := range f[1:] {
			k, v, ok := bytes.Cut(kv, []byte("="))
			if !ok {
				return fmt.Errorf("line %d: %q is not key=value", n, kv)
			}
			var err error
			switch string(k) {
			case "avg10":
				dst.Avg10, err = strconv.ParseFloat(string(v), 64)
			case "avg60":
				dst.Avg60, err = strconv.ParseFloat(string(v), 64)
			case "avg300":
				dst.Avg300, err = strconv.ParseFloat(string(v), 64)
			case "total":
				dst.Total, err = parseU(v)
			}
			if err != nil {
				return fmt.Errorf("line %d: %s: %w", n, k, err)
			}
		}
		return nil
	})
	if err != nil {
		return Pressure{}, err
	}
	if !sawSome {
		return Pressure{}, errors.New("no some line")
	}
	return p, nil
}

// ParseMeminfo parses /proc/meminfo into bytes per field ("MemTotal:
// 24589848 kB" → MemTotal: 25180004352); fields without a unit (the
// HugePages counts) are kept as they are.
func ParseMeminfo(b []byte) (map[string]uint64, error) {
	m := make(map[string]uint64, 64)
	err := lines(b, func(n int, line []byte) error {
		key, rest, ok := bytes.Cut(line, []byte(":"))
		if !ok {
			if len(bytes.TrimSpace(line)) == 0 {
				return nil
			}
			return fmt.Errorf("line %d: no colon", n)
		}
		f := fields(rest)
		if len(f) == 0 {
			return fmt.Errorf("line %d (%s): no value", n, key)
		}
		v, err := parseU(f[0])
		if err != nil {
			return fmt.Errorf("line %d (%s): %w", n, key, err)
		}
		if len(f) > 1 && string(f[1]) == "kB" {
			if v > (1<<64-1)/1024 {
				return fmt.Errorf("line %d (%s): %d kB overflows", n, key, v)
			}
			v *= 1024
		}
		m[string(bytes.TrimSpace(key))] = v
		return nil
	})
	if err != nil {
		return nil, err
	}
	if len(m) == 0 {
		return nil, errNoFields
	}
	return m, nil
}

// ParseVmstat parses /proc/vmstat ("pgmajfault 1234" per line).
func ParseVmstat(b []byte) (map[string]uint64, error) {
	m := make(map[string]uint64, 200)
	err := lines(b, func(n int, line []byte) error {
		f := fields(line)
		if len(f) == 0 {
			return nil
		}
		if len(f) != 2 {
			return fmt.Errorf("line %d: %d fields, want 2", n, len(f))
		}
		// A few gauges are signed per-CPU sums that can go briefly below 0.
		v, err := parseI(f[1])
		if err != nil {
			u, uerr := parseU(f[1])
			if uerr != nil {
				return fmt.Errorf("line %d (%s): %w", n, f[0], err)
			}
			m[string(f[0])] = u
			return nil
		}
		m[string(f[0])] = uint64(max(v, 0))
		return nil
	})
	if err != nil {
		return nil, err
	}
	if len(m) == 0 {
		return nil, errNoFields
	}
	return m, nil
}

// DiskStat is one line of /proc/diskstats (see the kernel's
// Documentation/admin-guide/iostats.rst). Times are milliseconds.
type DiskStat struct {
	Major, Minor                                        uint32
	Name                                                string
	Reads, ReadsMerged, ReadSectors, ReadMs             uint64
	Writes, WritesMerged, WriteSectors, WriteMs         uint64
	InFlight                                            uint64
	IOMs, WeightedMs                                    uint64 // time busy; time × requests in flight
	Discards, DiscardsMerged, DiscardSectors, DiscardMs uint64
	Flushes, FlushMs                                    uint64
}

// ParseDiskstats parses /proc/diskstats: 14 fields before Linux 4.18, 18
// with discards, 20 with flushes (5.5).
func ParseDiskstats(b []byte) ([]DiskStat, error) {
	var out []DiskStat
	err := lines(b, func(n int, line []byte) error {
		f := fields(line)
		if len(f) == 0 {
			return nil
		}
		if len(f) < 14 {
			return fmt.Errorf("line %d: %d fields, want at least 14", n, len(f))
		}
		maj, err1 := strconv.ParseUint(string(f[0]), 10, 32)
		mnr, err2 := strconv.ParseUint(string(f[1]), 10, 32)
		if err1 != nil || err2 != nil {
			return fmt.Errorf("line %d: %q %q is not a device number", n, f[0], f[1])
		}
		var v [17]uint64
		for i := 3; i < len(f) && i-3 < len(v); i++ {
			x, err := parseU(f[i])
			if err != nil {
				return fmt.Errorf("line %d (%s) field %d: %w", n, f[2], i+1, err)
			}
			v[i-3] = x
		}
		out = append(out, DiskStat{
			Major: uint32(maj), Minor: uint32(mnr), Name: string(f[2]),
			Reads: v[0], ReadsMerged: v[1], ReadSectors: v[2], ReadMs: v[3],
			Writes: v[4], WritesMerged: v[5], WriteSectors: v[6], WriteMs: v[7],
			InFlight: v[8], IOMs: v[9], WeightedMs: v[10],
			Discards: v[11], DiscardsMerged: v[12], DiscardSectors: v[13], DiscardMs: v[14],
			Flushes: v[15], FlushMs: v[16],
		})
		return nil
	})
	return out, err
}

// NetDev is one interface of /proc/net/dev.
type NetDev struct {
	Name                                                           string
	RxBytes, RxPackets, RxErrs, RxDrop, RxFifo, RxFrame            uint64
	TxBytes, TxPackets, TxErrs, TxDrop, TxFifo, TxColls, TxCarrier uint64
}

// ParseNetDev parses /proc/net/dev (two header lines, then
// "  eth0: 16 numbers").
func ParseNetDev(b []byte) ([]NetDev, error) {
	var out []NetDev
	err := lines(b, func(n int, line []byte) error {
		name, rest, ok := bytes.Cut(line, []byte(":"))
		if !ok || bytes.Contains(name, []byte("|")) {
			return nil // the headers
		}
		f := fields(rest)
		if len(f) < 16 {
			return fmt.Errorf("line %d: %d counters, want 16", n, len(f))
		}
		var v [16]uint64
		for i := range v {
			x, err := parseU(f[i])
			if err != nil {
				return fmt.Errorf("line %d counter %d: %w", n, i+1, err)
			}
			v[i] = x
		}
		nm := bytes.TrimSpace(name)
		if len(nm) == 0 {
			return fmt.Errorf("line %d: no interface name", n)
		}
		out = append(out, NetDev{
			Name: string(nm), RxBytes: v[0], RxPackets: v[1], RxErrs: v[2], RxDrop: v[3], RxFifo: v[4], RxFrame: v[5],
			TxBytes: v[8], TxPackets: v[9], TxErrs: v[10], TxDrop: v[11], TxFifo: v[12], TxColls: v[13], TxCarrier: v[14],
		})
		return nil
	})
	return out, err
}

// ParseNetStat parses /proc/net/snmp and /proc/net/netstat: pairs of
// lines "Proto: Name1 Name2..." and "Proto: v1 v2...", into
// "Proto.Name" → value. Some values are signed (Tcp MaxConn is -1).
func ParseNetStat(b []byte) (map[string]int64, error) {
	m := make(map[string]int64, 256)
	var names [][]byte
	var proto []byte
	err := lines(b, func(n int, line []byte) error {
		p, rest, ok := bytes.Cut(line, []byte(":"))
		if !ok {
			if len(bytes.TrimSpace(line)) == 0 {
				return nil
			}
			return fmt.Errorf("line %d: no colon", n)
		}
		f := fields(rest)
		if names == nil || !bytes.Equal(p, proto) {
			names, proto = f, p
			if names == nil {
				names = [][]byte{}
			}
			return nil
		}
		if len(f) != len(names) {
			return fmt.Errorf("line %d (%s): %d values for %d names", n, p, len(f), len(names))
		}
		for i, v := range f {
			x, err := parseI(v)
			if err != nil {
				// 64-bit counters beyond int64 are kept at the maximum.
				if _, uerr := parseU(v); uerr != nil {
					return fmt.Errorf("line %d (%s.%s): %w", n, p, names[i], err)
				}
				x = 1<<63 - 1
			}
			m[string(p)+"."+string(names[i])] = x
		}
		names, proto = nil, nil
		return nil
	})
	if err != nil {
		return nil, err
	}
	return m, nil
}

// PIDStat is what the sampler uses of /proc/PID/stat (proc(5)).
type PIDStat struct {
	PID        int
	Comm       string
	State      byte
	PPID       int
	Flags      uint64
	MajFlt     uint64
	UTime      uint64 // ticks, all threads
	STime      uint64
	NumThreads int
	StartTime  uint64 // ticks after boot: with PID, names one process
	Processor  int
}

// Kernel thread flag of PIDStat.Flags (PF_KTHREAD).
const pfKthread = 0x00200000

// Kthread reports whether the task is a kernel thread.
func (s PIDStat) Kthread() bool { return s.Flags&pfKthread != 0 }

// ParsePIDStat parses /proc/PID/stat. The name is between the first "("
// and the last ")": it may hold spaces and parentheses.
func ParsePIDStat(b []byte) (PIDStat, error) {
	open := bytes.IndexByte(b, '(')
	closing := bytes.LastIndexByte(b, ')')
	if open < 0 || closing < open {
		return PIDStat{}, errors.New("no (comm)")
	}
	pid, err := strconv.Atoi(string(bytes.TrimSpace(b[:open])))
	if err != nil || pid < 0 {
		return PIDStat{}, fmt.Errorf("pid %q is not a number", bytes.TrimSpace(b[:open]))
	}
	f := fields(b[closing+1:])
	// f[0] is field 3 (state); processor is field 39.
	if len(f) < 20 {
		return PIDStat{}, fmt.Errorf("%d fields after the name, want at least 20", len(f))
	}
	if len(f[0]) != 1 {
		return PIDStat{}, fmt.Errorf("state %q is not one letter", f[0])
	}
	num := func(field int) (uint64, error) {
		v, err := parseU(f[field-3])
		if err != nil {
			// ppid and a few others print as signed; none are negative in practice.
			if iv, ierr := parseI(f[field-3]); ierr == nil && iv < 0 {
				return 0, nil
			}
			return 0, fmt.Errorf("field %d: %w", field, err)
		}
		return v, nil
	}
	s := PIDStat{PID: pid, Comm: string(b[open+1 : closing]), State: f[0][0]}
	var v [8]uint64
	for i, field := range []int{4, 9, 12, 14, 15, 20, 22} {
		if v[i], err = num(field); err != nil {
			return PIDStat{}, err
		}
	}
	s.PPID, s.Flags, s.MajFlt, s.UTime, s.STime = int(min(v[0], 1<<31)), v[1], v[2], v[3], v[4]
	s.NumThreads, s.StartTime = int(min(v[5], 1<<31)), v[6]
	if len(f) >= 39-2 {
		if p, err := num(39); err == nil {
			s.Processor = int(min(p, 1<<31))
		}
	}
	return s, nil
}

// Schedstat is /proc/PID/schedstat (or a thread's): nanoseconds on the
// CPU, nanoseconds runnable but waiting in a run queue, and timeslices.
type Schedstat struct {
	RunNs, WaitNs, Slices uint64
}

// ParseSchedstat parses "1000478 2044 3".
func ParseSchedstat(b []byte) (Schedstat, error) {
	f := fields(b)
	if len(f) != 3 {
		return Schedstat{}, fmt.Errorf("%d fields, want 3", len(f))
	}
	var v [3]uint64
	for i := range v {
		x, err := parseU(f[i])
		if err != nil {
			return Schedstat{}, fmt.Errorf("field %d: %w", i+1, err)
		}
		v[i] = x
	}
	return Schedstat{v[0], v[1], v[2]}, nil
}

// PIDIO is /proc/PID/io. ReadBytes and WriteBytes are what reached (or
// would reach) storage; Rchar and Wchar count every read and write call.
type PIDIO struct {
	Rchar, Wchar, Syscr, Syscw, ReadBytes, WriteBytes, CancelledWriteBytes uint64
}

// ParsePIDIO parses "rchar: 6976" lines.
func ParsePIDIO(b []byte) (PIDIO, error) {
	var io PIDIO
	seen := 0
	err := lines(b, func(n int, line []byte) error {
		k, v, ok := bytes.Cut(line, []byte(":"))
		if !ok {
			if len(bytes.TrimSpace(line)) == 0 {
				return nil
			}
			return fmt.Errorf("line %d: no colon", n)
		}
		x, err := parseU(bytes.TrimSpace(v))
		if err != nil {
			return fmt.Errorf("line %d (%s): %w", n, k, err)
		}
		seen++
		switch string(k) {
		case "rchar":
			io.Rchar = x
		case "wchar":
			io.Wchar = x
		case "syscr":
			io.Syscr = x
		case "syscw":
			io.Syscw = x
		case "read_bytes":
			io.ReadBytes = x
		case "write_bytes":
			io.WriteBytes = x
		case "cancelled_write_bytes":
			io.CancelledWriteBytes = x
		default:
			seen--
		}
		return nil
	})
	if err != nil {
		return PIDIO{}, err
	}
	if seen == 0 {
		return PIDIO{}, errNoFields
	}
	return io, nil
}

// KmsgRecord is one record of /dev/kmsg.
type KmsgRecord struct {
	Level    int    // 0 emerg … 3 err, 4 warning … 7 debug
	Facility int    // 0 kernel, others from userspace writers
	Seq      uint64 // increases by one per record: gaps are records lost to the ring
	Micros   uint64 // microseconds after boot
	Message  string // kernel-escaped: non-printable bytes arrive as \xNN
}

// Levels names the syslog levels.
var Levels = [...]string{"emerg", "alert", "crit", "err", "warning", "notice", "info", "debug"}

// ParseKmsg parses one record, "6,339,5140900,-;message\n KEY=VALUE\n"
// (Documentation/ABI/testing/dev-kmsg); the KEY=VALUE lines are dropped.
func ParseKmsg(b []byte) (KmsgRecord, error) {
	head, msg, ok := bytes.Cut(b, []byte(";"))
	if !ok {
		return KmsgRecord{}, errors.New("no ; after the header")
	}
	if i := bytes.IndexByte(msg, '\n'); i >= 0 {
		msg = msg[:i]
	}
	f := bytes.Split(head, []byte(","))
	if len(f) < 3 {
		return KmsgRecord{}, fmt.Errorf("header %q has %d fields, want at least 3", head, len(f))
	}
	prio, err := parseU(f[0])
	if err != nil || prio > 1<<20 {
		return KmsgRecord{}, fmt.Errorf("priority %q is not a number", f[0])
	}
	seq, err := parseU(f[1])
	if err != nil {
		return KmsgRecord{}, fmt.Errorf("sequence %q is not a number", f[1])
	}
	us, err := parseU(f[2])
	if err != nil {
		return KmsgRecord{}, fmt.Errorf("timestamp %q is not a number", f[2])
	}
	return KmsgRecord{Level: int(prio & 7), Facility: int(prio >> 3), Seq: seq, Micros: us, Message: string(msg)}, nil
}
