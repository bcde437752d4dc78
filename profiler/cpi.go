package profiler

import (
	"errors"
	"fmt"
	"slices"

	"github.com/cilium/ebpf"
	"github.com/scorch-dev/scorch/bpf"
	"github.com/scorch-dev/scorch/capture"
	"golang.org/x/sys/unix"
)

// cpiCycles is the sampling event of CPI captures: every period cycles.
var cpiCycles = perfEventSpec{name: "cycles", typ: unix.PERF_TYPE_HARDWARE, config: unix.PERF_COUNT_HW_CPU_CYCLES, period: 10_000_019}

// cpiSource samples stacks every cpiCycles.period cycles and charges each
// the cycles (Value) and the instructions retired in that period (Value2),
// read from a counting instructions event on the same CPU.
type cpiSource struct {
	eventObjects
	cpus []int
}

// loadCPI fails with ErrUnavailable and the reason without a hardware PMU
// (most VMs).
func loadCPI(p *capture.Params, cfg loadConfig) (source, error) {
	if ok, reason := probePMU(); !ok {
		return nil, fmt.Errorf("%w: %s", ErrUnavailable, reason)
	}
	cpus, err := OnlineCPUs()
	if err != nil || len(cpus) == 0 {
		return nil, fmt.Errorf("reading online CPUs: %w", err)
	}
	src := &cpiSource{cpus: cpus}
	if err := loadCPIObjects(cfg, cpus, &src.eventObjects); err != nil {
		return nil, err
	}
	return src, nil
}

// loadCPIObjects loads event.c with its per-CPU instructions counters map
// sized for the online CPUs.
func loadCPIObjects(cfg loadConfig, cpus []int, objs *eventObjects) error {
	return loadEventObjects(cfg, uint32(slices.Max(cpus)+1), objs)
}

func (src *cpiSource) attach(c *collection, l *links) error {
	c.meta.Event = "cycles,instructions"
	counters, err := openInstructionCounters(src.Maps.Instructions, src.cpus)
	for _, fd := range counters {
		l.add(fd)
	}
	if err != nil {
		return err
	}
	events, err := openSpec(src.Progs.SampleCpi, cpiCycles, 0)
	if err != nil {
		return err
	}
	for _, e := range events {
		l.add(e)
	}
	return nil
}

func (src *cpiSource) decode(s *session, e *stackEvent) {
	if e.Kind == bpf.SamplerRecordKindRECORD_SAMPLE {
		s.addSample(e, e.weight()).Value2 = int64(e.instructions())
	}
}

// fdCloser closes a file descriptor.
type fdCloser int

func (fd fdCloser) Close() error { return unix.Close(int(fd)) }

// openInstructionCounters opens and enables a counting instructions event
// per CPU and puts it in the map the BPF program reads. The descriptors
// opened are returned also on error, for the caller to close.
func openInstructionCounters(m *ebpf.Map, cpus []int) ([]fdCloser, error) {
	var fds []fdCloser
	for _, cpu := range cpus {
		fd, err := openPerfEvent(unix.PERF_TYPE_HARDWARE, unix.PERF_COUNT_HW_INSTRUCTIONS, cpu, 0, false)
		if errors.Is(err, unix.ENODEV) {
			continue
		}
		if err != nil {
			return fds, fmt.Errorf("%w: instructions counter on cpu %d: %w", ErrUnavailable, cpu, err)
		}
		fds = append(fds, fdCloser(fd))
		if err := unix.IoctlSetInt(fd, unix.PERF_EVENT_IOC_ENABLE, 0); err != nil {
			return fds, fmt.Errorf("enabling the instructions counter on cpu %d: %w", cpu, err)
		}
		if err := m.Put(uint32(cpu), uint32(fd)); err != nil {
			return fds, fmt.Errorf("adding the instructions counter of cpu %d: %w", cpu, err)
		}
	}
	return fds, nil
}
