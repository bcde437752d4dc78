package host

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"math"
	"math/bits"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"
)

// Options configure a Sampler; zero fields take the defaults.
type Options struct {
	Proc     string        // default /proc
	Sys      string        // default /sys
	Kmsg     string        // default /dev/kmsg; "-" reads no kernel log
	Interval time.Duration // default 1s
	Window   time.Duration // history kept, default 15m
	// DrillDuration is the length of the captures findings propose; default 10s.
	DrillDuration time.Duration
}

// Defaults of the sampler.
const (
	DefaultInterval = time.Second
	DefaultWindow   = 15 * time.Minute
	// holdSamples is how long a resource stays warning or critical after
	// its condition ended: going back to ok takes longer than leaving it.
	holdSamples = 30
	// raiseSamples consecutive samples over a threshold raise the status:
	// a one-second spike does not, a condition lasting 2 s does.
	raiseSamples = 2
	topN         = 10
	kernelKept   = 50
	userHz       = 100 // USER_HZ, the unit of /proc ticks on every Linux ABI
	// blockedWindow samples of each process's state: one sample a second
	// catches a process blocked half the time in 2 of 5.
	blockedWindow = 5
	// busyThreads is the CPU (% of one) over which a multi-threaded
	// process's threads are read for their run-queue wait.
	busyThreads = 2.0
)

// Sampler reads /proc and /sys at every tick and keeps a bounded history.
type Sampler struct {
	opts Options

	mu          sync.Mutex
	buf         []byte
	gen         uint64
	changed     chan struct{}
	last        time.Time
	prev        *snapshot
	rings       map[string]*ring
	conds       map[string]*condition
	procs       map[int]*procState
	threads     map[int]*threadState
	top         Top
	now         Overview // latest computed figures (without series)
	kmsg        int      // fd of /dev/kmsg, -1 when closed; read raw: the poller would wait at the end of the log
	kmsgErr     string
	kernel      []KernelError
	missing     map[string]string
	block       map[string]bool // whole disks (names in /sys/block)
	speeds      map[string]float64
	noSchedstat bool          // no task's schedstat could be read
	cost        time.Duration // CPU time of the last tick
	costs       []float64     // the last minute of tick costs, percent of a CPU
}

type snapshot struct {
	t      time.Time
	stat   Stat
	mem    map[string]uint64
	vm     map[string]uint64
	disks  map[string]DiskStat
	ioerr  map[string]uint64
	net    map[string]NetDev
	snmp   map[string]int64
	psi    map[string]Pressure
	uptime float64
}

type procState struct {
	start    uint64
	ticks    uint64
	majflt   uint64
	io       uint64
	ioOK     bool
	gen      uint64
	comm     string
	kthread  bool
	dBits    uint8   // one bit per sample, newest lowest: a thread was in D state
	cpu, flt float64 // the last interval's rates
	iorate   float64
	wait     float64
}

// blocked is how many of the last blockedWindow samples found a thread
// of the process in D state (uninterruptible: waiting for a disk, mostly).
func (p *procState) blocked() int {
	return bits.OnesCount8(p.dBits & (1<<blockedWindow - 1))
}

type threadState struct {
	wait uint64
	gen  uint64
}

// NewSampler makes a sampler; call Run, or Tick for each sample.
func NewSampler(opts Options) *Sampler {
	if opts.Proc == "" {
		opts.Proc = "/proc"
	}
	if opts.Sys == "" {
		opts.Sys = "/sys"
	}
	if opts.Kmsg == "" {
		opts.Kmsg = "/dev/kmsg"
	}
	if opts.Interval <= 0 {
		opts.Interval = DefaultInterval
	}
	if opts.Window <= 0 {
		opts.Window = DefaultWindow
	}
	if opts.DrillDuration <= 0 {
		opts.DrillDuration = 10 * time.Second
	}
	return &Sampler{
		opts:    opts,
		buf:     make([]byte, 64<<10),
		changed: make(chan struct{}),
		rings:   make(map[string]*ring),
		conds:   make(map[string]*condition),
		procs:   make(map[int]*procState),
		threads: make(map[int]*threadState),
		missing: make(map[string]string),
		speeds:  make(map[string]float64),
		kmsg:    -1,
	}
}

// Run samples until ctx ends.
func (s *Sampler) Run(ctx context.Context) {
	t := time.NewTicker(s.opts.Interval)
	defer t.Stop()
	s.Tick(time.Now())
	for {
		select {
		case <-ctx.Done():
			s.mu.Lock()
			if s.kmsg >= 0 {
				syscall.Close(s.kmsg)
				s.kmsg = -1
			}
			s.mu.Unlock()
			return
		case now := <-t.C:
			s.Tick(now)
		}
	}
}

// Changed returns a channel closed at the next sample.
func (s *Sampler) Changed() <-chan struct{} {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.changed
}

// Generation counts the samples taken.
func (s *Sampler) Generation() uint64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.gen
}

// read reads a whole small file into the sampler's buffer (valid until
// the next read). Raw system calls: os.Open would also try to register
// every /proc file with the poller, a system call more per file.
func (s *Sampler) read(path string) ([]byte, error) {
	fd, err := syscall.Open(path, syscall.O_RDONLY|syscall.O_CLOEXEC, 0)
	if err != nil {
		return nil, &fs.PathError{Op: "open", Path: path, Err: err}
	}
	defer syscall.Close(fd)
	n := 0
	for {
		if n == len(s.buf) {
			if len(s.buf) >= 16<<20 {
				return nil, fmt.Errorf("%s: larger than 16 MiB", path)
			}
			s.buf = append(s.buf, make([]byte, len(s.buf))...)
		}
		want := len(s.buf) - n
		m, err := syscall.Read(fd, s.buf[n:])
		if err == syscall.EINTR {
			continue
		}
		if err != nil {
			return nil, &fs.PathError{Op: "read", Path: path, Err: err}
		}
		n += m
		// A /proc or /sys file hands out all it has up to the size asked
		// for: a shorter read is its end, without a read of 0 to prove it.
		if m == 0 || m < want {
			return s.buf[:n], nil
		}
	}
}

func (s *Sampler) proc(parts ...string) string {
	return filepath.Join(append([]string{s.opts.Proc}, parts...)...)
}

// system reads and parses one host-wide file, noting it when missing.
func system[T any](s *Sampler, rel, lacks string, parse func([]byte) (T, error)) (T, bool) {
	var zero T
	path := s.proc(rel)
	b, err := s.read(path)
	if err == nil {
		var v T
		if v, err = parse(b); err == nil {
			delete(s.missing, path)
			return v, true
		}
		err = fmt.Errorf("cannot parse: %w", err)
	}
	s.missing[path] = fmt.Sprintf("%s: %s: %s", path, reason(err), lacks)
	return zero, false
}

func reason(err error) string {
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return "not on this host"
	case errors.Is(err, fs.ErrPermission):
		return "permission denied"
	}
	return err.Error()
}

// Tick takes one sample.
func (s *Sampler) Tick(now time.Time) {
	// The cost is measured on this thread: keep the tick on it.
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	startCPU := cpuTime()
	s.mu.Lock()
	defer s.mu.Unlock()
	cur := &snapshot{t: now, disks: map[string]DiskStat{}, net: map[string]NetDev{}, psi: map[string]Pressure{}, ioerr: map[string]uint64{}}
	var ok bool
	if cur.stat, ok = system(s, "stat", "no CPU utilization", ParseStat); !ok {
		cur.stat = Stat{}
	}
	cur.mem, _ = system(s, "meminfo", "no memory utilization", ParseMeminfo)
	cur.vm, _ = system(s, "vmstat", "no paging, swapping or OOM kill counts", ParseVmstat)
	if d, ok := system(s, "diskstats", "no disk figures", ParseDiskstats); ok {
		for _, x := range d {
			cur.disks[x.Name] = x
		}
	}
	if d, ok := system(s, "net/dev", "no network interface figures", ParseNetDev); ok {
		for _, x := range d {
			cur.net[x.Name] = x
		}
	}
	snmp, ok1 := system(s, "net/snmp", "no TCP figures", ParseNetStat)
	ext, ok2 := system(s, "net/netstat", "no TCP listen overflow figures", ParseNetStat)
	if ok1 || ok2 {
		cur.snmp = snmp
		if cur.snmp == nil {
			cur.snmp = map[string]int64{}
		}
		for k, v := range ext {
			cur.snmp[k] = v
		}
	}
	for _, r := range []string{"cpu", "memory", "io"} {
		if p, ok := system(s, "pressure/"+r, "no "+r+" pressure stall figures (a kernel before 4.20, or booted with psi=0)", ParsePressure); ok {
			cur.psi[r] = p
		}
	}
	if up, ok := system(s, "uptime", "no uptime", parseUptime); ok {
		cur.uptime = up
	}
	newDevice := false
	if s.prev != nil {
		for name := range cur.disks {
			if _, ok := s.prev.disks[name]; !ok {
				newDevice = true
			}
		}
	}
	if s.gen%10 == 0 || s.block == nil || newDevice {
		s.readBlock()
	}
	for name := range cur.disks {
		if s.block[name] {
			if b, err := s.read(filepath.Join(s.opts.Sys, "block", sysName(name), "device", "ioerr_cnt")); err == nil {
				if v, err := strconv.ParseUint(strings.TrimPrefix(strings.TrimSpace(string(b)), "0x"), 16, 64); err == nil {
					cur.ioerr[name] = v
				}
			}
		}
	}
	s.readKmsg(cur.stat.BootTime)

	s.gen++
	prev := s.prev
	s.sampleProcs(now, prev, cur)
	if prev != nil {
		s.compute(prev, cur)
	}
	s.prev = cur
	s.last = now
	s.cost = cpuTime() - startCPU
	if prev != nil {
		dt := cur.t.Sub(prev.t).Seconds()
		if dt > 0 {
			s.costs = append(s.costs, s.cost.Seconds()/dt*100)
			if len(s.costs) > 60 {
				s.costs = s.costs[1:]
			}
		}
	}
	close(s.changed)
	s.changed = make(chan struct{})
}

func parseUptime(b []byte) (float64, error) {
	f := fields(b)
	if len(f) < 1 {
		return 0, errNoFields
	}
	return strconv.ParseFloat(string(f[0]), 64)
}

// sysName is a block device's directory name: "/" in a name is "!".
func sysName(name string) string { return strings.ReplaceAll(name, "/", "!") }

func (s *Sampler) readBlock() {
	dir := filepath.Join(s.opts.Sys, "block")
	ents, err := os.ReadDir(dir)
	if err != nil {
		s.missing[dir] = dir + ": " + reason(err) + ": partitions cannot be told from disks, every device of /proc/diskstats is shown"
		s.block = nil
		return
	}
	delete(s.missing, dir)
	s.block = make(map[string]bool, len(ents))
	for _, e := range ents {
		s.block[strings.ReplaceAll(e.Name(), "!", "/")] = true
	}
}

// isDisk: whole disks only (partitions are in diskstats but not in
// /sys/block); loop and ram devices that never did I/O are left out.
func (s *Sampler) isDisk(d DiskStat) bool {
	if s.block != nil && !s.block[d.Name] {
		return false
	}
	return d.Reads+d.Writes+d.Discards+d.Flushes > 0
}

// readKmsg reads the kernel log records written since the last tick.
func (s *Sampler) readKmsg(boot int64) {
	if s.opts.Kmsg == "-" {
		return
	}
	if s.kmsg < 0 {
		if s.kmsgErr != "" && s.gen%60 != 0 {
			return
		}
		f, err := syscall.Open(s.opts.Kmsg, syscall.O_RDONLY|syscall.O_NONBLOCK|syscall.O_CLOEXEC, 0)
		if err != nil {
			s.kmsgErr = s.opts.Kmsg + ": " + reason(err) + ": no kernel errors shown (reading it needs root, or kernel.dmesg_restrict=0)"
			s.missing[s.opts.Kmsg] = s.kmsgErr
			return
		}
		s.kmsg, s.kmsgErr = f, ""
		delete(s.missing, s.opts.Kmsg)
	}
	buf := make([]byte, 8192) // a read returns one record; it must fit
	for range 10000 {
		n, err := syscall.Read(s.kmsg, buf)
		if errors.Is(err, syscall.EPIPE) {
			continue // records overwritten before we read them: go on with the next
		}
		if errors.Is(err, syscall.EINTR) {
			continue
		}
		if err != nil || n <= 0 {
			if err != nil && !errors.Is(err, syscall.EAGAIN) {
				syscall.Close(s.kmsg)
				s.kmsg = -1
				s.kmsgErr = s.opts.Kmsg + ": " + err.Error()
				s.missing[s.opts.Kmsg] = s.kmsgErr
			}
			return
		}
		r, perr := ParseKmsg(buf[:n])
		if perr != nil || r.Level > 4 || r.Facility != 0 {
			continue
		}
		s.kernel = append(s.kernel, KernelError{
			Time:    float64(boot) + float64(r.Micros)/1e6,
			Level:   Levels[r.Level],
			Message: r.Message,
		})
		if len(s.kernel) > kernelKept {
			s.kernel = s.kernel[len(s.kernel)-kernelKept:]
		}
	}
}

// sampleProcs reads every process's stat, and io and run-queue wait of
// those that ran since the last tick (a task waits in a run queue only
// to run, so idle processes are not read further).
func (s *Sampler) sampleProcs(now time.Time, prev, cur *snapshot) {
	dir, err := os.Open(s.opts.Proc)
	if err != nil {
		return
	}
	names, err := dir.Readdirnames(-1)
	dir.Close()
	if err != nil {
		return
	}
	dt := 0.0
	if prev != nil {
		dt = cur.t.Sub(prev.t).Seconds()
	}
	gen := s.gen
	ioDenied, schedMissing, schedOK := 0, 0, 0
	var top Top
	for _, name := range names {
		if name == "" || name[0] < '0' || name[0] > '9' {
			continue
		}
		pid, err := strconv.Atoi(name)
		if err != nil {
			continue
		}
		b, err := s.read(s.proc(name, "stat"))
		if err != nil {
			continue // exited
		}
		st, err := ParsePIDStat(b)
		if err != nil {
			continue
		}
		p := s.procs[pid]
		fresh := p == nil || p.start != st.StartTime
		if fresh {
			p = &procState{start: st.StartTime}
			s.procs[pid] = p
		}
		p.gen, p.comm, p.kthread = gen, st.Comm, st.Kthread()
		ticks := st.UTime + st.STime
		active := fresh || ticks != p.ticks || st.State == 'R' || st.State == 'D'
		p.cpu, p.flt, p.iorate, p.wait = 0, 0, 0, 0
		if !fresh && dt > 0 {
			p.cpu = float64(delta(p.ticks, ticks)) / userHz / dt * 100
			p.flt = float64(delta(p.majflt, st.MajFlt)) / dt
		}
		p.ticks, p.majflt = ticks, st.MajFlt
		p.dBits <<= 1
		if st.State == 'D' {
			p.dBits |= 1
		}
		if !active {
			continue
		}
		// Kernel threads have no I/O accounting of their own: only their
		// run-queue wait is read.
		if !p.kthread {
			if b, err := s.read(s.proc(name, "io")); err == nil {
				if io, err := ParsePIDIO(b); err == nil {
					v := io.ReadBytes + io.WriteBytes
					if p.ioOK && dt > 0 {
						p.iorate = float64(delta(p.io, v)) / dt
					}
					p.io, p.ioOK = v, true
				}
			} else if errors.Is(err, fs.ErrPermission) {
				ioDenied++
			}
		}
		// Run-queue wait is per thread: one file for a single thread,
		// the task directory otherwise.
		var waitNs uint64
		var waitOK bool
		if st.NumThreads <= 1 {
			if b, err := s.read(s.proc(name, "schedstat")); err == nil {
				if ss, err := ParseSchedstat(b); err == nil {
					waitNs, waitOK = s.threadWait(pid, ss.WaitNs, gen), true
					schedOK++
				}
			} else if !errors.Is(err, fs.ErrNotExist) || !s.pidGone(name) {
				schedMissing++
			}
		} else if st.State != 'R' && !fresh && p.cpu < busyThreads {
			// A process that barely ran cannot have waited much to run:
			// its threads are not read (most of a busy host's processes).
			waitOK = true
		} else if tids, err := readNames(s.proc(name, "task")); err == nil {
			for _, tn := range tids {
				tid, err := strconv.Atoi(tn)
				if err != nil {
					continue
				}
				b, err := s.read(s.proc(name, "task", tn, "schedstat"))
				if err != nil {
					if !errors.Is(err, fs.ErrNotExist) {
						schedMissing++
					}
					continue
				}
				if ss, err := ParseSchedstat(b); err == nil {
					waitNs += s.threadWait(tid, ss.WaitNs, gen)
					waitOK = true
					schedOK++
				}
				if cur.stat.ProcsBlocked > 0 && tid != pid {
					if b, err := s.read(s.proc(name, "task", tn, "stat")); err == nil {
						if ts, err := ParsePIDStat(b); err == nil && ts.State == 'D' {
							p.dBits |= 1
						}
					}
				}
			}
		}
		if waitOK && dt > 0 {
			p.wait = float64(waitNs) / 1e6 / dt
		}
	}
	for pid, p := range s.procs {
		if p.gen != gen {
			delete(s.procs, pid)
		}
	}
	for tid, t := range s.threads {
		if gen-t.gen > 60 {
			delete(s.threads, tid)
		}
	}
	path := s.proc("PID", "schedstat")
	s.noSchedstat = schedMissing > 0 && schedOK == 0
	switch {
	case s.noSchedstat:
		s.missing[path] = fmt.Sprintf("%s: missing for %d tasks (a kernel without CONFIG_SCHED_INFO): no run-queue wait per process, CPU saturation is the run queue length", path, schedMissing)
	case schedMissing > 0:
		s.missing[path] = fmt.Sprintf("%s: missing for %d tasks: their run-queue wait is not counted", path, schedMissing)
	default:
		delete(s.missing, path)
	}
	path = s.proc("PID", "io")
	if ioDenied > 0 {
		s.missing[path] = fmt.Sprintf("%s: permission denied for %d processes: their I/O is not counted (run as root)", path, ioDenied)
	} else {
		delete(s.missing, path)
	}
	for pid, p := range s.procs {
		if p.gen != gen {
			continue
		}
		if p.cpu > 0 {
			top.CPU = append(top.CPU, Proc{PID: pid, Comm: p.comm, Value: Num(p.cpu)})
		}
		if p.wait > 0 {
			top.Runqueue = append(top.Runqueue, Proc{PID: pid, Comm: p.comm, Value: Num(p.wait)})
		}
		if p.iorate > 0 {
			top.IO = append(top.IO, Proc{PID: pid, Comm: p.comm, Value: Num(p.iorate)})
		}
		if n := p.blocked(); n > 0 {
			top.Blocked = append(top.Blocked, Proc{PID: pid, Comm: p.comm, Value: Num(n)})
		}
		if p.flt > 0 {
			top.Faults = append(top.Faults, Proc{PID: pid, Comm: p.comm, Value: Num(p.flt)})
		}
	}
	s.top = Top{CPU: largest(top.CPU), Runqueue: largest(top.Runqueue), IO: largest(top.IO), Blocked: largest(top.Blocked), Faults: largest(top.Faults)}
}

// pidGone: a process that exited between reading its stat and its
// schedstat is not a missing file.
func (s *Sampler) pidGone(name string) bool {
	_, err := os.Stat(s.proc(name))
	return err != nil
}

// threadWait returns the run-queue wait a thread added since the last tick.
func (s *Sampler) threadWait(tid int, wait, gen uint64) uint64 {
	t := s.threads[tid]
	if t == nil {
		s.threads[tid] = &threadState{wait: wait, gen: gen}
		return 0
	}
	d := uint64(0)
	if t.gen != gen && wait >= t.wait {
		d = wait - t.wait
	}
	t.wait, t.gen = wait, gen
	return d
}

func readNames(dir string) ([]string, error) {
	f, err := os.Open(dir)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	return f.Readdirnames(-1)
}

// largest sorts a top list, largest first (pid breaks ties), and keeps topN.
func largest(l []Proc) []Proc {
	sort.Slice(l, func(i, j int) bool {
		if l[i].Value != l[j].Value {
			return l[i].Value > l[j].Value
		}
		return l[i].PID < l[j].PID
	})
	if len(l) > topN {
		l = l[:topN]
	}
	if l == nil {
		l = []Proc{}
	}
	return l
}

// delta of a counter: a counter that went back wrapped at 32 bits (the
// width of some diskstats fields on 32-bit kernels) or was reset (a
// device re-added): a reset counts as 0, never as a huge jump.
func delta(prev, cur uint64) uint64 {
	if cur >= prev {
		return cur - prev
	}
	if prev <= math.MaxUint32 {
		d := (cur + 1<<32 - prev) & math.MaxUint32
		if d < 1<<31 {
			return d
		}
	}
	return 0
}

func deltaI(prev, cur int64) float64 {
	if cur >= prev {
		return float64(cur - prev)
	}
	return 0
}

// cpuTime is this process's CPU time so far; the sampler measures its
// own cost with it (every thread of the process: what a tick's reads add
// shows up here, the rest of the service is the same at every tick).
func cpuTime() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_THREAD, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// Missing lists the files missing now, sorted.
func (s *Sampler) missingList() []string {
	out := make([]string, 0, len(s.missing))
	for _, m := range s.missing {
		out = append(out, m)
	}
	slices.Sort(out)
	return out
}
