package profiler

import (
	"context"
	"errors"
	"fmt"
	"slices"

	"github.com/cilium/ebpf"
	"github.com/scorch-dev/scorch/bpf"
	"github.com/scorch-dev/scorch/capture"
	"github.com/scorch-dev/scorch/unwind"
	"golang.org/x/sys/unix"
)

func init() {
	collectors[capture.CPI] = recordCPI
	probes["cpi"] = probeCPI
}

// cpiCycles is the sampling event of CPI captures: every period cycles.
var cpiCycles = perfEventSpec{name: "cycles", typ: unix.PERF_TYPE_HARDWARE, config: unix.PERF_COUNT_HW_CPU_CYCLES, period: 10_000_019}

// recordCPI samples stacks every cpiCycles.period cycles and charges each
// the cycles (Value) and the instructions retired in that period (Value2),
// read from a counting instructions event on the same CPU. Without a
// hardware PMU (most VMs) it fails with ErrUnavailable and the reason.
func recordCPI(ctx context.Context, p capture.Params, mode unwind.Mode, opts Options) (*capture.Capture, error) {
	if ok, reason := probePMU(); !ok {
		return nil, fmt.Errorf("%w: %s", ErrUnavailable, reason)
	}
	cpus, err := OnlineCPUs()
	if err != nil || len(cpus) == 0 {
		return nil, fmt.Errorf("reading online CPUs: %w", err)
	}
	tgt := newTarget(p)
	objs, err := loadCPI(tgt, mode, opts, cpus)
	if err != nil {
		return nil, err
	}
	defer objs.Close()
	counters, err := openInstructionCounters(objs.Instructions, cpus)
	defer func() {
		for _, fd := range counters {
			unix.Close(fd)
		}
	}()
	if err != nil {
		return nil, err
	}
	c, err := newCollection(p, mode, opts, tgt, commonObjects{objs.Events, objs.Stats, objs.FilterPids, objs.FilterTids, objs.OnExec})
	if err != nil {
		return nil, err
	}
	defer c.Close()
	c.meta.Event = "cycles,instructions"
	events, err := openSpec(objs.SampleCpi, cpiCycles, 0)
	if err != nil {
		return nil, err
	}
	defer closeAll(events)
	s := c.s
	s.sample = func(e *stackEvent) {
		n := len(s.events)
		s.addSample(e, e.weight())
		if len(s.events) > n {
			s.events[n].Value2 = int64(e.instructions())
		}
	}
	if err := c.run(ctx, func() { closeAll(events) }); err != nil {
		return nil, err
	}
	return c.finish(), nil
}

// loadCPI loads event.c with its per-CPU instructions counters map sized
// for the online CPUs.
func loadCPI(tgt *target, mode unwind.Mode, opts Options, cpus []int) (*bpf.EventObjects, error) {
	spec, err := bpf.LoadEvent()
	if err != nil {
		return nil, fmt.Errorf("loading cpi spec: %w", err)
	}
	var ms bpf.EventMapSpecs
	if err := assignSpecs(spec, &ms); err != nil {
		return nil, err
	}
	ms.Instructions.MaxEntries = uint32(slices.Max(cpus) + 1)
	var objs bpf.EventObjects
	if err := loadObjects(spec, tgt, mode, opts, false, 0, &objs); err != nil {
		return nil, err
	}
	return &objs, nil
}

// openInstructionCounters opens and enables a counting instructions event
// per CPU and puts it in the map the BPF program reads. The descriptors
// opened are returned also on error, for the caller to close.
func openInstructionCounters(m *ebpf.Map, cpus []int) ([]int, error) {
	var fds []int
	for _, cpu := range cpus {
		fd, err := openPerfEvent(unix.PERF_TYPE_HARDWARE, unix.PERF_COUNT_HW_INSTRUCTIONS, cpu, 0, false)
		if errors.Is(err, unix.ENODEV) {
			continue
		}
		if err != nil {
			return fds, fmt.Errorf("%w: instructions counter on cpu %d: %v", ErrUnavailable, cpu, err)
		}
		fds = append(fds, fd)
		if err := unix.IoctlSetInt(fd, unix.PERF_EVENT_IOC_ENABLE, 0); err != nil {
			return fds, fmt.Errorf("enabling the instructions counter on cpu %d: %w", cpu, err)
		}
		if err := m.Put(uint32(cpu), uint32(fd)); err != nil {
			return fds, fmt.Errorf("adding the instructions counter of cpu %d: %w", cpu, err)
		}
	}
	return fds, nil
}

// probeCPI checks for the hardware counters CPI needs and that the kernel
// accepts the CPI program.
func probeCPI(ctx context.Context) error {
	if ok, reason := probePMU(); !ok {
		return errors.New(reason)
	}
	for _, cfg := range []uint64{unix.PERF_COUNT_HW_CPU_CYCLES, unix.PERF_COUNT_HW_INSTRUCTIONS} {
		fd, err := openPerfEvent(unix.PERF_TYPE_HARDWARE, cfg, 0, 0, false)
		if err != nil {
			return fmt.Errorf("hardware counter %d cannot be opened: %w", cfg, err)
		}
		unix.Close(fd)
	}
	return nil
}
