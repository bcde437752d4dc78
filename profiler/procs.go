package profiler

import (
	"log/slog"
	"slices"
	"sync"
	"time"

	"github.com/scorch-dev/scorch/capture"
	"github.com/scorch-dev/scorch/symbolizer"
)

// proc is what a capture knows of one process.
type proc struct {
	pid       uint32
	snap      *symbolizer.Process // nil when the process was gone before its snapshot
	comm      string
	gen       uint32 // snapshot generation, part of raw stack keys
	refreshed uint64 // CLOCK_MONOTONIC ns of the snapshot, the records' clock
	// from and until bound, in CLOCK_MONOTONIC ns, the image the snapshot
	// is of: the kernel's mapping records from its exec on (0: before the
	// capture) until a later exec (0: none yet) are added to it.
	from, until uint64
}

// recorded is what the kernel's records say of a process since its last
// exec (or fork): the mappings a snapshot that comes too late is made of.
type recorded struct {
	comm   string
	exec   uint64 // time of the exec (or fork) the mappings start at; 0 before the capture
	maps   []timedMapping
	exited uint64 // 0 while it runs
}

type timedMapping struct {
	m symbolizer.Mapping
	t uint64
}

// recordedKeep is how long the records of an exited process are kept for
// a sample read after it: samples wait in the ring buffer a poll interval
// or so.
const recordedKeep = 10 * time.Second

// procs keeps the processes of a capture: a snapshot of each one's
// mappings, taken as it appears (or execs), for symbolization at the end.
type procs struct {
	// mu guards byPID and rec: the mapping tracker's goroutine adds what
	// processes map while the session reads samples.
	mu    sync.Mutex
	log   *slog.Logger
	sym   *symbolizer.Symbolizer
	stats *capture.Stats
	byPID map[uint32]*proc
	snaps []*symbolizer.Process
	// rec holds the kernel's mapping records by process; tracked says
	// they come (the tracker is open), so the re-reads after exec are not
	// needed.
	rec       map[uint32]*recorded
	tracked   bool
	lastPrune uint64
	// tables, when set, load the BPF unwinder's tables of each process
	// snapshot.
	tables *UnwindTables
	// watchers re-read the maps of processes that just exec'd; done stops
	// them at the end of the capture.
	watchers sync.WaitGroup
	done     chan struct{}
}

func newProcs(log *slog.Logger, sym *symbolizer.Symbolizer, stats *capture.Stats, tables *UnwindTables) procs {
	return procs{log: log, sym: sym, stats: stats, tables: tables, byPID: make(map[uint32]*proc), rec: make(map[uint32]*recorded), done: make(chan struct{})}
}

// get returns the process pid, snapshot now if it is new.
func (m *procs) get(pid uint32, comm string) *proc {
	m.mu.Lock()
	defer m.mu.Unlock()
	if p := m.byPID[pid]; p != nil {
		return p
	}
	return m.snapshotLocked(pid, comm, 0)
}

// snapshot records a process's mappings for later symbolization.
func (m *procs) snapshot(pid uint32, comm string) *proc {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.snapshotLocked(pid, comm, 0)
}

// snapshotLocked snapshots pid from /proc or, when it is gone, from the
// kernel's records of what it mapped. execAt is the BPF time of the exec
// that makes a new image (0: none).
func (m *procs) snapshotLocked(pid uint32, comm string, execAt uint64) *proc {
	p := m.byPID[pid]
	if p == nil {
		p = &proc{pid: pid, comm: comm}
		m.byPID[pid] = p
	}
	r := m.rec[pid]
	from := uint64(0)
	if r != nil && (execAt == 0 || r.exec <= execAt) {
		from = r.exec
	} else if execAt != 0 {
		from = execAt
	}
	snap, err := m.sym.Snapshot(int(pid))
	p.refreshed = monotonicNow()
	if err != nil && r != nil && r.exec == from && (len(r.maps) > 0 || from != 0) {
		// Gone before /proc was read: what the kernel recorded names it.
		name := r.comm
		if name == "" {
			name = comm
		}
		snap, err = m.sym.RecordedProcess(int(pid), name), nil
	}
	if err != nil {
		if p.snap == nil {
			m.stats.ProcsExited++
			m.log.Debug("process snapshot failed", "pid", pid, "err", err)
		}
		return p
	}
	if r != nil && r.exec == from {
		for _, tm := range r.maps {
			snap.AddMapping(tm.m) // those already read from /proc are kept as they are
		}
	}
	// The old snapshot stays referenced by the raw stacks that used it.
	m.snaps = append(m.snaps, snap)
	p.snap = snap
	p.gen++
	p.from, p.until = from, 0
	if snap.Comm != "" {
		p.comm = snap.Comm
	}
	m.tables.want(pid, snap)
	return p
}

// Mapping adds the kernel's record of what a process mapped, exec'd,
// forked or exited to the records and to its snapshot.
func (m *procs) Mapping(ev MappingEvent) {
	m.mu.Lock()
	defer m.mu.Unlock()
	r := m.rec[ev.PID]
	switch ev.Kind {
	case MappingExec:
		m.rec[ev.PID] = &recorded{comm: ev.Comm, exec: ev.Time}
		if p := m.byPID[ev.PID]; p != nil && p.from < ev.Time && p.until == 0 {
			p.until = ev.Time
		}
	case MappingFork:
		child := &recorded{exec: ev.Time}
		if pr := m.rec[ev.Parent]; pr != nil {
			child.comm = pr.comm
			child.maps = slices.Clone(pr.maps)
		}
		m.rec[ev.PID] = child
	case MappingMapped:
		if r == nil {
			r = &recorded{}
			m.rec[ev.PID] = r
		}
		if ev.Time < r.exec {
			return // the old image's, read late
		}
		if ev.Mapping.Path == "" {
			// Anonymous code (a JIT's) is named from its perf map or
			// jitdump, not its mapping; a JIT makes many.
			return
		}
		// A mapping over older ones replaced them: the list stays as long
		// as what is mapped.
		nm := ev.Mapping
		r.maps = slices.DeleteFunc(r.maps, func(o timedMapping) bool { return o.m.Start < nm.End && nm.Start < o.m.End })
		r.maps = append(r.maps, timedMapping{ev.Mapping, ev.Time})
		if p := m.byPID[ev.PID]; p != nil && p.snap != nil && ev.Time >= p.from && (p.until == 0 || ev.Time < p.until) {
			p.snap.AddMapping(ev.Mapping)
			// The BPF unwinder's tables follow (dlopen, ld.so after exec).
			m.tables.want(ev.PID, p.snap)
		}
	case MappingExit:
		if r != nil {
			r.exited = max(ev.Time, 1)
		}
		m.tables.exited(ev.PID)
		m.prune(ev.Time)
	}
}

// prune forgets the records of processes that exited a while ago.
func (m *procs) prune(now uint64) {
	keep := uint64(recordedKeep)
	if now < m.lastPrune+keep/4 || now < keep {
		return
	}
	m.lastPrune = now
	for pid, r := range m.rec {
		if r.exited != 0 && r.exited < now-keep {
			delete(m.rec, pid)
		}
	}
}

// rereadAfterExec are the delays after an exec at which a process's maps
// are read again: ld.so maps the libraries within a few milliseconds of the
// exec, and a short-lived process may be gone before its first sample is
// read from the ring buffer (up to a poll interval later), taking the
// addresses of its libraries with it.
var rereadAfterExec = []time.Duration{200 * time.Microsecond, 500 * time.Microsecond, time.Millisecond, 2 * time.Millisecond,
	4 * time.Millisecond, 8 * time.Millisecond, 16 * time.Millisecond, 32 * time.Millisecond}

// execed snapshots a process that has just exec'd and re-reads its maps
// while ld.so maps its libraries. Without a BPF record of every mapping,
// this is what keeps the libraries of a 5 ms program.
func (m *procs) execed(pid uint32, comm string, ts uint64) {
	m.mu.Lock()
	p := m.snapshotLocked(pid, comm, ts)
	snap, tracked := p.snap, m.tracked
	m.mu.Unlock()
	if snap == nil || tracked {
		// The kernel's mapping records add what ld.so maps next.
		return
	}
	m.watchers.Add(1)
	go func() {
		defer m.watchers.Done()
		start := time.Now()
		for _, d := range rereadAfterExec {
			t := time.NewTimer(time.Until(start.Add(d)))
			select {
			case <-m.done:
				t.Stop()
				return
			case <-t.C:
			}
			if !snap.Reread() {
				return // gone
			}
			m.tables.want(pid, snap)
		}
	}()
}

// young: the process was snapshot less than a second before ts (a record's
// time: no clock read per record), and may still map its libraries (ld.so,
// right after exec).
func (p *proc) young(ts uint64) bool { return ts < p.refreshed+uint64(time.Second) }

// close releases the snapshots.
func (m *procs) close() {
	select {
	case <-m.done:
	default:
		close(m.done)
	}
	m.watchers.Wait()
	for _, sn := range m.snaps {
		sn.Close()
	}
	m.snaps = nil
}
