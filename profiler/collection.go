package profiler

import (
	"context"
	"fmt"
	"os"
	"time"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/link"
	"github.com/cilium/ebpf/ringbuf"
	"github.com/cilium/ebpf/rlimit"
	"github.com/scorch-dev/scorch/capture"
	"github.com/scorch-dev/scorch/unwind"
)

// commonSpecs are what bpf/common.h puts in every object and user space
// sets before loading: the ring buffer and the constants.
type commonSpecs struct {
	Events        *ebpf.MapSpec      `ebpf:"events"`
	CopyBytes     *ebpf.VariableSpec `ebpf:"copy_bytes"`
	SelfTgid      *ebpf.VariableSpec `ebpf:"self_tgid"`
	WakeupBytes   *ebpf.VariableSpec `ebpf:"wakeup_bytes"`
	FilterMode    *ebpf.VariableSpec `ebpf:"filter_mode"`
	FilterComm    *ebpf.VariableSpec `ebpf:"filter_comm"`
	FilterList    *ebpf.VariableSpec `ebpf:"filter_list"`
	FilterListLen *ebpf.VariableSpec `ebpf:"filter_list_len"`
	FollowForks   *ebpf.VariableSpec `ebpf:"follow_forks"`
}

// varValue is a value for a BPF constant.
type varValue struct {
	spec *ebpf.VariableSpec
	v    any
}

// setVars sets BPF constants before loading.
func setVars(vs ...varValue) error {
	for _, v := range vs {
		if err := v.spec.Set(v.v); err != nil {
			return fmt.Errorf("setting %s: %w", v.spec.Name, err)
		}
	}
	return nil
}

// assignSpecs fills a struct of ebpf-tagged specs (a bpf2go XxxSpecs or
// commonSpecs): a map, program or variable missing from the object is an
// error, so that a rename in C cannot go unnoticed.
func assignSpecs(spec *ebpf.CollectionSpec, to any) error {
	if err := spec.Assign(to); err != nil {
		return fmt.Errorf("BPF object does not match scorch: %w", err)
	}
	return nil
}

// loadObjects loads a collection spec built on bpf/common.h into objs
// (a struct of ebpf-tagged objects): the target, the stack copy of the
// unwinding mode and a ring buffer of ring bytes (0: the default for the
// mode). The collector sets its own constants first.
func loadObjects(spec *ebpf.CollectionSpec, tgt *target, mode unwind.Mode, opts Options, follow bool, ring uint32, objs any) error {
	if err := rlimit.RemoveMemlock(); err != nil {
		return fmt.Errorf("removing memlock limit: %w", err)
	}
	var cs commonSpecs
	if err := assignSpecs(spec, &cs); err != nil {
		return err
	}
	if err := tgt.configure(&cs, follow); err != nil {
		return err
	}
	if ring == 0 {
		ring = ringBytes(opts, mode)
	}
	err := setVars(
		varValue{cs.CopyBytes, copyBytes(mode)},
		varValue{cs.SelfTgid, uint32(os.Getpid())},
		varValue{cs.WakeupBytes, wakeupBytes(ring)},
	)
	if err != nil {
		return err
	}
	cs.Events.MaxEntries = ring
	if err := spec.LoadAndAssign(objs, nil); err != nil {
		return verifierError(err)
	}
	return nil
}

// commonObjects are the maps and the exec hook of every object built on
// bpf/common.h.
type commonObjects struct {
	Events, Stats, FilterPids, FilterTids *ebpf.Map
	OnExec                                *ebpf.Program
}

// collection is what every collector shares once its BPF objects are
// loaded: the target filters, the exec hook that snapshots new processes,
// the ring buffer and the session that turns its records into a capture.
// A collector attaches its event sources between newCollection and run.
type collection struct {
	p    capture.Params
	opts Options
	tgt  *target
	m    commonObjects
	rd   *ringbuf.Reader
	exec link.Link
	meta capture.Meta
	s    *session
}

// newCollection fills the target filters, attaches the exec hook and opens
// the ring buffer; the capture's clock starts here.
func newCollection(p capture.Params, mode unwind.Mode, opts Options, tgt *target, m commonObjects) (*collection, error) {
	if err := tgt.fill(m.FilterPids, m.FilterTids); err != nil {
		return nil, err
	}
	c := &collection{p: p, opts: opts, tgt: tgt, m: m}
	var err error
	c.exec, err = link.AttachTracing(link.TracingOptions{Program: m.OnExec, AttachType: ebpf.AttachTraceRawTp})
	if err != nil {
		return nil, fmt.Errorf("%w: attaching %s: %v", ErrUnavailable, m.OnExec, err)
	}
	if c.rd, err = ringbuf.NewReader(m.Events); err != nil {
		c.exec.Close()
		return nil, fmt.Errorf("opening ring buffer reader: %w", err)
	}
	c.meta = hostMeta(p)
	c.meta.Params.Hz = 0
	mono := monotonicNow()
	c.meta.Start = time.Now()
	c.s = newSession(opts.Logger, opts.Symbolizer, opts.Unwinder, mode, mono)
	return c, nil
}

// Close releases the reader, the exec hook and the process snapshots.
func (c *collection) Close() {
	c.s.close()
	c.rd.Close()
	c.exec.Close()
}

// run starts a `-- CMD` target, snapshots the targets named up front, reads
// records until the capture ends, then calls stop to detach the event
// sources and takes what is still in the ring buffer.
func (c *collection) run(ctx context.Context, stop func()) error {
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
	// Snapshot targets named up front, before they can exit.
	for _, pid := range c.tgt.pids {
		c.s.snapshot(pid, "")
	}
	done := make(chan struct{})
	c.tgt.watchTargets(done, 100*time.Millisecond)
	err := c.s.run(ctx, c.p, c.opts, c.tgt, c.rd, c.m.Stats, stop)
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
		addExtra(&c.s.stats, "bpf_run_ns", uint64(st.Runtime.Nanoseconds()))
		addExtra(&c.s.stats, "bpf_runs", st.RunCount)
	}
}
