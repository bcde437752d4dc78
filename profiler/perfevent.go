package profiler

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"time"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/link"
	"github.com/scorch-dev/scorch/bpf"
	"github.com/scorch-dev/scorch/capture"
	"github.com/scorch-dev/scorch/unwind"
	"golang.org/x/sys/unix"
)

func init() {
	collectors[capture.PerfEvent] = recordPerfEvent
	probes["event"] = probePerfEvent
}

// perfEventSpec is a perf event scorch opens by name, as `perf list` names
// them.
type perfEventSpec struct {
	name   string
	typ    uint32
	config uint64
	// freq: sample at --hz (clocks); otherwise every period-th event, each
	// sample worth period.
	freq   bool
	period uint64
}

// softwareEvents count every occurrence: they are rare enough (faults,
// switches, migrations) that a sample per event is what a user expects.
var softwareEvents = []perfEventSpec{
	{name: "cpu-clock", typ: unix.PERF_TYPE_SOFTWARE, config: unix.PERF_COUNT_SW_CPU_CLOCK, freq: true},
	{name: "task-clock", typ: unix.PERF_TYPE_SOFTWARE, config: unix.PERF_COUNT_SW_TASK_CLOCK, freq: true},
	{name: "page-faults", typ: unix.PERF_TYPE_SOFTWARE, config: unix.PERF_COUNT_SW_PAGE_FAULTS, period: 1},
	{name: "faults", typ: unix.PERF_TYPE_SOFTWARE, config: unix.PERF_COUNT_SW_PAGE_FAULTS, period: 1},
	{name: "minor-faults", typ: unix.PERF_TYPE_SOFTWARE, config: unix.PERF_COUNT_SW_PAGE_FAULTS_MIN, period: 1},
	{name: "major-faults", typ: unix.PERF_TYPE_SOFTWARE, config: unix.PERF_COUNT_SW_PAGE_FAULTS_MAJ, period: 1},
	{name: "context-switches", typ: unix.PERF_TYPE_SOFTWARE, config: unix.PERF_COUNT_SW_CONTEXT_SWITCHES, period: 1},
	{name: "cs", typ: unix.PERF_TYPE_SOFTWARE, config: unix.PERF_COUNT_SW_CONTEXT_SWITCHES, period: 1},
	{name: "cpu-migrations", typ: unix.PERF_TYPE_SOFTWARE, config: unix.PERF_COUNT_SW_CPU_MIGRATIONS, period: 1},
	{name: "migrations", typ: unix.PERF_TYPE_SOFTWARE, config: unix.PERF_COUNT_SW_CPU_MIGRATIONS, period: 1},
	{name: "alignment-faults", typ: unix.PERF_TYPE_SOFTWARE, config: unix.PERF_COUNT_SW_ALIGNMENT_FAULTS, period: 1},
	{name: "emulation-faults", typ: unix.PERF_TYPE_SOFTWARE, config: unix.PERF_COUNT_SW_EMULATION_FAULTS, period: 1},
}

// hardwareEvents sample every period-th event: periods about perf's, chosen
// for a few hundred samples per second per busy CPU.
var hardwareEvents = []perfEventSpec{
	{name: "cycles", typ: unix.PERF_TYPE_HARDWARE, config: unix.PERF_COUNT_HW_CPU_CYCLES, period: 10_000_019},
	{name: "cpu-cycles", typ: unix.PERF_TYPE_HARDWARE, config: unix.PERF_COUNT_HW_CPU_CYCLES, period: 10_000_019},
	{name: "instructions", typ: unix.PERF_TYPE_HARDWARE, config: unix.PERF_COUNT_HW_INSTRUCTIONS, period: 10_000_019},
	{name: "cache-references", typ: unix.PERF_TYPE_HARDWARE, config: unix.PERF_COUNT_HW_CACHE_REFERENCES, period: 100_003},
	{name: "cache-misses", typ: unix.PERF_TYPE_HARDWARE, config: unix.PERF_COUNT_HW_CACHE_MISSES, period: 10_007},
	{name: "branches", typ: unix.PERF_TYPE_HARDWARE, config: unix.PERF_COUNT_HW_BRANCH_INSTRUCTIONS, period: 1_000_003},
	{name: "branch-instructions", typ: unix.PERF_TYPE_HARDWARE, config: unix.PERF_COUNT_HW_BRANCH_INSTRUCTIONS, period: 1_000_003},
	{name: "branch-misses", typ: unix.PERF_TYPE_HARDWARE, config: unix.PERF_COUNT_HW_BRANCH_MISSES, period: 10_007},
	{name: "bus-cycles", typ: unix.PERF_TYPE_HARDWARE, config: unix.PERF_COUNT_HW_BUS_CYCLES, period: 1_000_003},
	{name: "ref-cycles", typ: unix.PERF_TYPE_HARDWARE, config: unix.PERF_COUNT_HW_REF_CPU_CYCLES, period: 10_000_019},
	{name: "stalled-cycles-frontend", typ: unix.PERF_TYPE_HARDWARE, config: unix.PERF_COUNT_HW_STALLED_CYCLES_FRONTEND, period: 10_000_019},
	{name: "stalled-cycles-backend", typ: unix.PERF_TYPE_HARDWARE, config: unix.PERF_COUNT_HW_STALLED_CYCLES_BACKEND, period: 10_000_019},
}

// eventSource is a parsed --event: a perf event or a tracepoint.
type eventSource struct {
	perf       *perfEventSpec
	group, tap string // tracepoint subsys:name
}

var tracepointName = regexp.MustCompile(`^[A-Za-z0-9_]+$`)

func eventNames(list []perfEventSpec) string {
	names := make([]string, len(list))
	for i, e := range list {
		names[i] = e.name
	}
	return strings.Join(names, ", ")
}

// parseEvent resolves an event name against the perf events scorch knows
// and the tracepoints under tracefs (the events directory; "" when tracefs
// is not available). Errors list what exists.
func parseEvent(name, tracefs string) (eventSource, error) {
	if name == "" {
		return eventSource{}, fmt.Errorf("%w: --type event needs --event NAME: software events are %s; hardware events %s; or a tracepoint subsys:name such as sched:sched_switch",
			ErrBadTarget, eventNames(softwareEvents), eventNames(hardwareEvents))
	}
	for _, list := range [][]perfEventSpec{softwareEvents, hardwareEvents} {
		for i := range list {
			if list[i].name == name {
				return eventSource{perf: &list[i]}, nil
			}
		}
	}
	group, tp, ok := strings.Cut(name, ":")
	if !ok {
		return eventSource{}, fmt.Errorf("%w: unknown event %q: software events are %s; hardware events %s; or a tracepoint subsys:name such as sched:sched_switch or block:block_rq_issue",
			ErrBadTarget, name, eventNames(softwareEvents), eventNames(hardwareEvents))
	}
	if !tracepointName.MatchString(group) || !tracepointName.MatchString(tp) {
		return eventSource{}, fmt.Errorf("%w: tracepoint %q is not valid: write subsys:name with letters, digits and underscores, such as sched:sched_switch", ErrBadTarget, name)
	}
	if tracefs == "" {
		return eventSource{}, fmt.Errorf("%w: tracepoint %s: tracefs is not mounted (mount -t tracefs nodev /sys/kernel/tracing)", ErrUnavailable, name)
	}
	if _, err := os.Stat(filepath.Join(tracefs, group, tp, "id")); err == nil {
		return eventSource{group: group, tap: tp}, nil
	}
	entries, err := os.ReadDir(filepath.Join(tracefs, group))
	if err != nil {
		return eventSource{}, fmt.Errorf("%w: unknown tracepoint subsystem %q: the subsystems here are the directories of %s (such as sched, syscalls, block)", ErrBadTarget, group, tracefs)
	}
	var names []string
	for _, e := range entries {
		if e.IsDir() {
			names = append(names, group+":"+e.Name())
		}
	}
	sort.Strings(names)
	// Names the user's text begins or is part of come first.
	sort.SliceStable(names, func(i, j int) bool {
		return similar(names[i], group+":"+tp) && !similar(names[j], group+":"+tp)
	})
	const show = 40
	more := ""
	if len(names) > show {
		more = fmt.Sprintf(" and %d more", len(names)-show)
		names = names[:show]
	}
	return eventSource{}, fmt.Errorf("%w: unknown tracepoint %q: %s has %s%s", ErrBadTarget, name, group, strings.Join(names, ", "), more)
}

// similar: one of the names contains the other.
func similar(a, b string) bool {
	return strings.Contains(a, b) || strings.Contains(b, a)
}

// tracefsEvents finds the tracepoints directory, mounting tracefs when it
// is not (scorch runs as root).
func tracefsEvents() string {
	for _, d := range []string{"/sys/kernel/tracing/events", "/sys/kernel/debug/tracing/events"} {
		if _, err := os.Stat(d); err == nil {
			return d
		}
	}
	if err := unix.Mount("tracefs", "/sys/kernel/tracing", "tracefs", 0, ""); err == nil {
		return "/sys/kernel/tracing/events"
	}
	return ""
}

// recordPerfEvent samples stacks on a perf event or a tracepoint.
func recordPerfEvent(ctx context.Context, p capture.Params, mode unwind.Mode, opts Options) (*capture.Capture, error) {
	src, err := parseEvent(p.Event, tracefsEvents())
	if err != nil {
		return nil, err
	}
	if src.perf != nil {
		return recordSampler(ctx, p, mode, opts, *src.perf, nil)
	}
	return recordTracepoint(ctx, p, mode, opts, src.group, src.tap)
}

// openSpec opens ev on every CPU for prog, with the error a user can act on.
func openSpec(prog *ebpf.Program, ev perfEventSpec, hz int) ([]*perfEvent, error) {
	period := ev.period
	if ev.freq {
		period = uint64(hz)
	}
	events, err := attachPerCPU(prog, ev.typ, ev.config, period, ev.freq)
	if err == nil {
		return events, nil
	}
	if errors.Is(err, unix.EACCES) || errors.Is(err, unix.EPERM) {
		return nil, fmt.Errorf("%w: %v", ErrPermission, err)
	}
	if ev.typ == unix.PERF_TYPE_HARDWARE && (errors.Is(err, unix.ENOENT) || errors.Is(err, unix.EOPNOTSUPP) || errors.Is(err, unix.ENODEV)) {
		return nil, fmt.Errorf("%w: no hardware PMU: the %s counter is not supported here (common in VMs); software events are %s", ErrUnavailable, ev.name, eventNames(softwareEvents))
	}
	return nil, fmt.Errorf("%w: %s: %v", ErrUnavailable, ev.name, err)
}

// recordSampler runs the sampler's perf_event program on ev on every CPU.
// sample, when set, turns records into events (nil: one event per record
// worth the event's period).
func recordSampler(ctx context.Context, p capture.Params, mode unwind.Mode, opts Options, ev perfEventSpec, sample func(s *session, e *stackEvent)) (*capture.Capture, error) {
	loadStart := time.Now()
	spec, err := bpf.LoadSampler()
	if err != nil {
		return nil, fmt.Errorf("loading sampler spec: %w", err)
	}
	tgt := newTarget(p)
	var objs bpf.SamplerObjects
	if err := loadObjects(spec, tgt, mode, opts, len(p.Command) > 0, 0, &objs); err != nil {
		return nil, err
	}
	defer objs.Close()
	fork, err := link.AttachTracing(link.TracingOptions{Program: objs.OnFork, AttachType: ebpf.AttachTraceRawTp})
	if err != nil {
		return nil, fmt.Errorf("%w: attaching %s: %v", ErrUnavailable, objs.OnFork, err)
	}
	defer fork.Close()
	c, err := newCollection(p, mode, opts, tgt, commonObjects{objs.Events, objs.Stats, objs.FilterPids, objs.FilterTids, objs.OnExec})
	if err != nil {
		return nil, err
	}
	defer c.Close()
	hz := p.Hz
	if hz == 0 {
		hz = capture.DefaultHz
	}
	if ev.freq {
		c.meta.Params.Hz = hz
	}
	events, err := openSpec(objs.SampleCpu, ev, hz)
	if err != nil {
		return nil, err
	}
	defer closeAll(events)
	attach := time.Since(loadStart)
	opts.Logger.Info("perf event attached", "event", ev.name, "attach_ms", float64(attach.Microseconds())/1000, "cpus", len(events))

	s := c.s
	value := uint64(1)
	if !ev.freq {
		value = ev.period
	}
	if sample != nil {
		s.sample = func(e *stackEvent) { sample(s, e) }
	} else {
		s.sample = func(e *stackEvent) { s.addSample(e, value) }
	}
	if err := c.run(ctx, func() { closeAll(events) }); err != nil {
		return nil, err
	}
	addExtra(&s.stats, "attach_us", uint64(attach.Microseconds()))
	c.addProgStats(objs.SampleCpu)
	return c.finish(), nil
}

// recordTracepoint records a stack every time a tracepoint fires.
func recordTracepoint(ctx context.Context, p capture.Params, mode unwind.Mode, opts Options, group, name string) (*capture.Capture, error) {
	spec, err := bpf.LoadEvent()
	if err != nil {
		return nil, fmt.Errorf("loading tracepoint spec: %w", err)
	}
	tgt := newTarget(p)
	var objs bpf.EventObjects
	if err := loadObjects(spec, tgt, mode, opts, false, 0, &objs); err != nil {
		return nil, err
	}
	defer objs.Close()
	c, err := newCollection(p, mode, opts, tgt, commonObjects{objs.Events, objs.Stats, objs.FilterPids, objs.FilterTids, objs.OnExec})
	if err != nil {
		return nil, err
	}
	defer c.Close()
	tp, err := link.Tracepoint(group, name, objs.OnTracepoint, nil)
	if err != nil {
		return nil, fmt.Errorf("%w: attaching to tracepoint %s:%s: %v", ErrUnavailable, group, name, err)
	}
	detach := func() {
		if tp != nil {
			tp.Close()
			tp = nil
		}
	}
	defer detach()
	if err := c.run(ctx, detach); err != nil {
		return nil, err
	}
	return c.finish(), nil
}

// probePerfEvent opens a context-switches event with the sampler on one CPU.
func probePerfEvent(ctx context.Context) error {
	if err := probeCPU(ctx); err != nil {
		return err
	}
	fd, err := openPerfEvent(unix.PERF_TYPE_SOFTWARE, unix.PERF_COUNT_SW_CONTEXT_SWITCHES, 0, 1, false)
	if err != nil {
		return fmt.Errorf("perf_event_open(context-switches) failed: %w", err)
	}
	unix.Close(fd)
	if tracefsEvents() == "" {
		return fmt.Errorf("tracefs is not mounted and cannot be: tracepoint events are unavailable (perf events work)")
	}
	return nil
}
