package profiler

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strings"

	"github.com/cilium/ebpf"
	"github.com/scorch-dev/scorch/bpf"
	"github.com/scorch-dev/scorch/capture"
	"golang.org/x/sys/unix"
)

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

// loadPerfEvent samples stacks on a perf event (the sampler) or a
// tracepoint (bpf/event.c).
func loadPerfEvent(p *capture.Params, cfg loadConfig) (source, error) {
	src, err := parseEvent(p.Event, tracefsEvents())
	if err != nil {
		return nil, err
	}
	if src.perf != nil {
		return loadSampler(p, cfg, *src.perf)
	}
	return loadTracepoint(cfg, src.group, src.tap)
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
		return nil, fmt.Errorf("%w: %w", ErrPermission, err)
	}
	if ev.typ == unix.PERF_TYPE_HARDWARE && (errors.Is(err, unix.ENOENT) || errors.Is(err, unix.EOPNOTSUPP) || errors.Is(err, unix.ENODEV)) {
		return nil, fmt.Errorf("%w: no hardware PMU: the %s counter is not supported here (common in VMs); software events are %s", ErrUnavailable, ev.name, eventNames(softwareEvents))
	}
	return nil, fmt.Errorf("%w: %s: %w", ErrUnavailable, ev.name, err)
}

// eventObjects are bpf/event.c's: the tracepoint program, and the cpi
// program with its instructions counters.
type eventObjects = objects[bpf.EventPrograms, *bpf.EventPrograms, eventMaps]

type eventMaps struct {
	Instructions *ebpf.Map `ebpf:"instructions"`
}

// loadEventObjects loads event.c, with room for cpus instructions
// counters (0: leave the map as it is, for tracepoint captures).
func loadEventObjects(cfg loadConfig, cpus uint32, objs *eventObjects) error {
	spec, err := bpf.LoadEvent()
	if err != nil {
		return fmt.Errorf("loading event spec: %w", err)
	}
	var ms bpf.EventMapSpecs
	if err := assignSpecs(spec, &ms); err != nil {
		return err
	}
	if cpus > 0 {
		ms.Instructions.MaxEntries = cpus
	}
	return loadObjects(spec, cfg, false, 0, objs)
}

// tracepointSource records a stack every time a tracepoint fires.
type tracepointSource struct {
	eventObjects
	group, name string
}

func loadTracepoint(cfg loadConfig, group, name string) (source, error) {
	src := &tracepointSource{group: group, name: name}
	if err := loadEventObjects(cfg, 0, &src.eventObjects); err != nil {
		return nil, err
	}
	return src, nil
}

func (src *tracepointSource) attach(c *collection, l *links) error {
	tp, err := attachTracepoint(src.group, src.name, src.Progs.OnTracepoint)
	if err != nil {
		return err
	}
	l.add(tp)
	return nil
}

func (src *tracepointSource) decode(s *session, e *stackEvent) {
	if e.Kind == bpf.SamplerRecordKindRECORD_SAMPLE {
		s.addSample(e, e.weight())
	}
}

// CheckEvent reports, before a capture starts, whether the event p names
// exists on this host: the perf event or tracepoint of --type event, the
// allocator event of --type mem. The errors are Record's (ErrBadTarget for
// a name that does not exist, listing what does; ErrUnavailable without
// tracefs), so a service can refuse the request instead of failing later.
func CheckEvent(p capture.Params) error {
	switch p.Type {
	case capture.PerfEvent:
		_, err := parseEvent(p.Event, tracefsEvents())
		return err
	case capture.Mem:
		if p.Event != "" && !slices.Contains(MemEvents, p.Event) {
			return fmt.Errorf("%w: mem event %q is not supported: allowed values are %s", ErrBadTarget, p.Event, strings.Join(MemEvents, ", "))
		}
	}
	return nil
}
