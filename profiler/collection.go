package profiler

import (
	"cmp"
	"context"
	"fmt"
	"time"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/link"
	"github.com/cilium/ebpf/ringbuf"
	"github.com/scorch-dev/scorch/capture"
	"github.com/scorch-dev/scorch/unwind"
)

// collection is what every collector shares once its BPF objects are
// loaded: the target filters, the exec hook that snapshots new processes,
// the ring buffer and the session that turns its records into a capture.
type collection struct {
	p    capture.Params
	opts Options
	tgt  *target
	m    *commonMaps
	rd   *ringbuf.Reader
	exec link.Link
	meta capture.Meta
	s    *session
}

// newCollection fills the target filters, attaches the exec hook and opens
// the ring buffer; the capture's clock starts here.
func newCollection(p capture.Params, mode unwind.Mode, opts Options, tgt *target, m *commonMaps, exec *ebpf.Program) (*collection, error) {
	if err := tgt.fill(m.FilterPids, m.FilterTids); err != nil {
		return nil, err
	}
	c := &collection{p: p, opts: opts, tgt: tgt, m: m}
	var err error
	if c.exec, err = attachRawTp(exec); err != nil {
		return nil, err
	}
	if c.rd, err = ringbuf.NewReader(m.Events); err != nil {
		c.exec.Close()
		return nil, fmt.Errorf("opening ring buffer reader: %w", err)
	}
	c.meta = hostMeta(p)
	c.meta.Params.Hz = 0
	mono := monotonicNow()
	c.meta.Start = time.Now()
	c.s = newSession(opts.Logger, opts.Symbolizer, opts.Unwinder, opts.UnwindTables, mode, mono, c.meta)
	c.s.ringSize = uint64(m.Events.MaxEntries())
	idle := cmp.Or(opts.idleWait, trackerIdle)
	if opts.Mappings != nil {
		c.s.trackMappings(idle, opts.Mappings)
	} else {
		c.s.trackMappings(idle)
	}
	return c, nil
}

// preload snapshots the targets named up front and loads their unwind
// tables before the events are attached, so that their first samples are
// walked in BPF. A whole host's processes are loaded as their samples come,
// the busiest first: loading every process up front would fill the tables
// with idle ones.
func (c *collection) preload() {
	for _, pid := range c.tgt.pids {
		p := c.s.procs.snapshot(uint32(pid), "")
		if c.s.tables != nil && p.snap != nil {
			c.s.tables.loadNow(uint32(pid), p.snap)
		}
	}
}

// Close releases the reader, the exec hook and the process snapshots.
func (c *collection) Close() {
	c.s.close()
	c.rd.Close()
	c.exec.Close()
}

// run starts a `-- CMD` target, snapshots the targets named up front, reads
// records into dec until the capture ends, then calls stop to detach the
// event sources and takes what is still in the ring buffer.
func (c *collection) run(ctx context.Context, dec decoder, stop func()) error {
	// The window runs at scorch's own priority, and so does a command
	// started for it (a child starts with its creator thread's nice);
	// what follows the window is boosted again (Options.BoostNice).
	c.opts.boost.lower(&c.opts)
	if len(c.p.Command) > 0 {
		if err := c.tgt.startCommand(c.p.Command, c.m.FilterPids, c.opts); err != nil {
			stop()
			return err
		}
		defer c.tgt.stopCommand()
	}
	if c.opts.Ready != nil {
		c.opts.Ready()
	}
	// Snapshot targets named up front, before they can exit (preload
	// took those that existed before the events were attached).
	for _, pid := range c.tgt.pids {
		c.s.procs.get(uint32(pid), "")
	}
	done := make(chan struct{})
	c.tgt.watchTargets(done, 100*time.Millisecond)
	err := c.s.run(ctx, c.p, c.opts, c.tgt, c.rd, c.m.Stats, dec, func() {
		c.opts.boost.raise(&c.opts)
		stop()
	})
	close(done)
	c.meta.Duration = time.Since(c.meta.Start)
	if c.tgt.targetsGone() {
		what := "process"
		if len(c.tgt.tids) > 0 {
			what = "thread"
		}
		c.meta.Warnings = append(c.meta.Warnings, fmt.Sprintf("every target %s exited: the capture ended after %s", what, c.meta.Duration.Round(time.Millisecond)))
	}
	if c.tgt.cmd != nil {
		c.tgt.stopCommand()
		if c.tgt.state != nil && !c.tgt.stopped && c.opts.CommandExit != nil {
			c.opts.CommandExit(ExitCode(c.tgt.state))
		}
	}
	c.s.addBPFStats(readStats(c.m.Stats))
	c.s.addLostPerCPU(readLostPerCPU(c.m.Stats))
	return err
}

// finish symbolizes the stacks and returns the capture.
func (c *collection) finish() *capture.Capture {
	return c.s.finish(c.meta, c.opts)
}

// addProgStats adds a program's run time and count, filled only while
// kernel.bpf_stats_enabled=1 (make bench sets it).
func (c *collection) addProgStats(prog *ebpf.Program) {
	if st, err := prog.Stats(); err == nil && st.RunCount > 0 {
		c.s.stats.Counters.Add(capture.BPFRunNanos, uint64(st.Runtime.Nanoseconds()))
		c.s.stats.Counters.Add(capture.BPFRuns, st.RunCount)
	}
}
