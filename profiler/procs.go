package profiler

import (
	"log/slog"
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
	refreshed time.Time
}

// procs keeps the processes of a capture: a snapshot of each one's
// mappings, taken as it appears (or execs), for symbolization at the end.
type procs struct {
	log   *slog.Logger
	sym   *symbolizer.Symbolizer
	stats *capture.Stats
	byPID map[uint32]*proc
	snaps []*symbolizer.Process
	// watchers re-read the maps of processes that just exec'd; done stops
	// them at the end of the capture.
	watchers sync.WaitGroup
	done     chan struct{}
}

func newProcs(log *slog.Logger, sym *symbolizer.Symbolizer, stats *capture.Stats) procs {
	return procs{log: log, sym: sym, stats: stats, byPID: make(map[uint32]*proc), done: make(chan struct{})}
}

// get returns the process pid, snapshot now if it is new.
func (m *procs) get(pid uint32, comm string) *proc {
	if p := m.byPID[pid]; p != nil {
		return p
	}
	return m.snapshot(pid, comm)
}

// snapshot records a process's mappings for later symbolization.
func (m *procs) snapshot(pid uint32, comm string) *proc {
	p := m.byPID[pid]
	if p == nil {
		p = &proc{pid: pid, comm: comm}
		m.byPID[pid] = p
	}
	snap, err := m.sym.Snapshot(int(pid))
	p.refreshed = time.Now()
	if err != nil {
		if p.snap == nil {
			m.stats.ProcsExited++
			m.log.Debug("process snapshot failed", "pid", pid, "err", err)
		}
		return p
	}
	// The old snapshot stays referenced by the raw stacks that used it.
	m.snaps = append(m.snaps, snap)
	p.snap = snap
	p.gen++
	if snap.Comm != "" {
		p.comm = snap.Comm
	}
	return p
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
func (m *procs) execed(pid uint32, comm string) {
	p := m.snapshot(pid, comm)
	snap := p.snap
	if snap == nil {
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
		}
	}()
}

// young: the process was snapshot less than a second ago, and may still
// map its libraries (ld.so, right after exec).
func (p *proc) young() bool { return time.Since(p.refreshed) < time.Second }

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
