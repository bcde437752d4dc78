package profiler

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/link"
	"github.com/cilium/ebpf/ringbuf"
	"github.com/cilium/ebpf/rlimit"
	"github.com/scorch-dev/scorch/bpf"
	"github.com/scorch-dev/scorch/capture"
	"github.com/scorch-dev/scorch/unwind"
	"golang.org/x/sys/unix"
)

// recordCPU samples stacks with a cpu-clock perf event on every CPU.
func recordCPU(ctx context.Context, p capture.Params, mode unwind.Mode, opts Options) (*capture.Capture, error) {
	loadStart := time.Now()
	if err := rlimit.RemoveMemlock(); err != nil {
		return nil, fmt.Errorf("removing memlock limit: %w", err)
	}
	spec, err := bpf.LoadSampler()
	if err != nil {
		return nil, fmt.Errorf("loading sampler spec: %w", err)
	}
	tgt := newTarget(p)
	if err := tgt.configure(spec, len(p.Command) > 0); err != nil {
		return nil, err
	}
	if err := spec.Variables["copy_bytes"].Set(copyBytes(mode)); err != nil {
		return nil, fmt.Errorf("setting copy_bytes: %w", err)
	}
	ring := ringBytes(opts, mode)
	spec.Maps["events"].MaxEntries = ring
	if err := spec.Variables["wakeup_bytes"].Set(wakeupBytes(ring)); err != nil {
		return nil, fmt.Errorf("setting wakeup_bytes: %w", err)
	}

	var objs bpf.SamplerObjects
	if err := spec.LoadAndAssign(&objs, nil); err != nil {
		return nil, verifierError(err)
	}
	defer objs.Close()
	if err := tgt.fill(objs.FilterPids, objs.FilterTids); err != nil {
		return nil, err
	}

	for _, prog := range []*ebpf.Program{objs.OnExec, objs.OnFork} {
		l, err := link.AttachTracing(link.TracingOptions{Program: prog, AttachType: ebpf.AttachTraceRawTp})
		if err != nil {
			return nil, fmt.Errorf("%w: attaching %s: %v", ErrUnavailable, prog, err)
		}
		defer l.Close()
	}

	rd, err := ringbuf.NewReader(objs.Events)
	if err != nil {
		return nil, fmt.Errorf("opening ring buffer reader: %w", err)
	}
	defer rd.Close()

	meta := hostMeta(p)
	meta.Params.Hz = p.Hz
	monoStart := monotonicNow()
	meta.Start = time.Now()

	events, err := attachPerCPU(objs.SampleCpu, unix.PERF_TYPE_SOFTWARE, unix.PERF_COUNT_SW_CPU_CLOCK, uint64(p.Hz), true)
	if err != nil {
		if errors.Is(err, unix.EACCES) || errors.Is(err, unix.EPERM) {
			return nil, fmt.Errorf("%w: %v", ErrPermission, err)
		}
		return nil, fmt.Errorf("%w: %v", ErrUnavailable, err)
	}
	defer closeAll(events)

	if len(p.Command) > 0 {
		if err := tgt.startCommand(p.Command, objs.FilterPids, opts); err != nil {
			return nil, err
		}
		defer tgt.stopCommand()
	}

	attach := time.Since(loadStart)
	opts.Logger.Info("sampler attached", "attach_ms", float64(attach.Microseconds())/1000, "cpus", len(events), "hz", p.Hz)
	s := newSession(opts.Logger, opts.Symbolizer, opts.Unwinder, mode, monoStart)
	defer s.close()
	if opts.Ready != nil {
		opts.Ready()
	}

	// Snapshot targets named up front, before they can exit.
	for _, pid := range tgt.pids {
		s.snapshot(pid, "")
	}

	if err := s.run(ctx, p, opts, tgt, rd, objs.Stats, func() { closeAll(events) }); err != nil {
		return nil, err
	}
	meta.Duration = time.Since(meta.Start)

	s.addBPFStats(readStats(objs.Stats))
	addExtra(&s.stats, "attach_us", uint64(attach.Microseconds()))
	// Filled only while kernel.bpf_stats_enabled=1 (make bench sets it).
	if st, err := objs.SampleCpu.Stats(); err == nil && st.RunCount > 0 {
		addExtra(&s.stats, "bpf_run_ns", uint64(st.Runtime.Nanoseconds()))
		addExtra(&s.stats, "bpf_runs", st.RunCount)
	}
	return s.finish(meta, opts), nil
}

// run reads the ring buffer until the duration ends, ctx is cancelled or a
// started command exits; then it stops the events (stopSampling) and takes
// what is still in the buffer.
func (s *session) run(ctx context.Context, p capture.Params, opts Options, tgt *target, rd *ringbuf.Reader, stats *ebpf.Map, stopSampling func()) error {
	stop := make(chan struct{})
	go func() {
		defer close(stop)
		var timer <-chan time.Time
		if p.Duration > 0 {
			t := time.NewTimer(time.Duration(p.Duration))
			defer t.Stop()
			timer = t.C
		}
		select {
		case <-ctx.Done():
		case <-timer:
		case <-tgt.exited: // nil channel when there is no command
		}
	}()
	started := time.Now()
	progress := func() {
		if opts.Progress != nil {
			opts.Progress(Progress{Elapsed: time.Since(started), Events: uint64(len(s.events)), Lost: readStats(stats)[bpf.SamplerStatSlotSTAT_DROPPED]})
		}
	}
	err := s.read(rd, stop, progress)
	stopSampling()
	s.drain(rd, time.Now().Add(200*time.Millisecond))
	if opts.Progress != nil {
		progress()
	}
	return err
}

// addBPFStats adds the BPF programs' counters to the capture's.
func (s *session) addBPFStats(st map[bpf.SamplerStatSlot]uint64) {
	s.stats.Lost += st[bpf.SamplerStatSlotSTAT_DROPPED]
	s.stats.StackErrors += st[bpf.SamplerStatSlotSTAT_KSTACK_ERR] + st[bpf.SamplerStatSlotSTAT_USTACK_ERR]
	if n := st[bpf.SamplerStatSlotSTAT_COPY_ERR]; n > 0 {
		addExtra(&s.stats, "stack_copy_errors", n)
	}
	if n := st[bpf.SamplerStatSlotSTAT_EXEC_DROPPED]; n > 0 {
		addExtra(&s.stats, "exec_notifications_lost", n)
	}
	if n := st[bpf.SamplerStatSlotSTAT_MAP_FULL]; n > 0 {
		s.stats.Lost += n
		addExtra(&s.stats, "map_full", n)
	}
}

// finish adds warnings and symbolizes.
func (s *session) finish(meta capture.Meta, opts Options) *capture.Capture {
	meta.Stats = s.stats
	if ok, reason := opts.Symbolizer.KernelStatus(); !ok {
		meta.Warnings = append(meta.Warnings, "kernel frames are not named: "+reason)
	}
	if s.stats.Lost > 0 {
		meta.Warnings = append(meta.Warnings, fmt.Sprintf("%d events were lost (ring buffer or map full): use a larger --ring-size, a lower frequency or a narrower target", s.stats.Lost))
	}
	c := s.build(meta)
	c.Meta.Stats.Lost = s.stats.Lost
	return c
}

func addExtra(st *capture.Stats, name string, n uint64) {
	if st.Extra == nil {
		st.Extra = make(map[string]uint64)
	}
	st.Extra[name] += n
}

// readStats sums the per-CPU counters.
func readStats(m *ebpf.Map) map[bpf.SamplerStatSlot]uint64 {
	out := make(map[bpf.SamplerStatSlot]uint64)
	for slot := bpf.SamplerStatSlot(0); slot < bpf.SamplerStatSlotSTAT_MAX; slot++ {
		var vals []uint64
		if err := m.Lookup(uint32(slot), &vals); err != nil {
			continue
		}
		for _, v := range vals {
			out[slot] += v
		}
	}
	return out
}
