package profiler

import (
	"errors"
	"fmt"
	"os"
	"strconv"
	"strings"
	"unsafe"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/link"
	"golang.org/x/sys/unix"
)

// perfEvent is one perf event file descriptor with a BPF program attached.
type perfEvent struct {
	fd   int
	link link.Link
}

// openSoftwareEvent opens a sampling software event (cpu-clock, page-faults,
// ...) on one CPU for every task. freq: period is a frequency in Hz.
func openPerfEvent(typ uint32, config uint64, cpu int, period uint64, freq bool) (int, error) {
	attr := unix.PerfEventAttr{
		Type:   typ,
		Config: config,
		Size:   uint32(unsafe.Sizeof(unix.PerfEventAttr{})),
		Sample: period,
		Bits:   unix.PerfBitDisabled,
	}
	if freq {
		attr.Bits |= unix.PerfBitFreq
	}
	fd, err := unix.PerfEventOpen(&attr, -1, cpu, -1, unix.PERF_FLAG_FD_CLOEXEC)
	if err != nil {
		return -1, err
	}
	return fd, nil
}

// attach attaches prog to the perf event: a BPF link where the kernel has
// them, the PERF_EVENT_IOC_SET_BPF ioctl otherwise; then enables the event.
func attachPerfEvent(fd int, prog *ebpf.Program) (*perfEvent, error) {
	pe := &perfEvent{fd: fd}
	l, err := link.AttachRawLink(link.RawLinkOptions{Target: fd, Program: prog, Attach: ebpf.AttachPerfEvent})
	if err == nil {
		pe.link = l
	} else if err := unix.IoctlSetInt(fd, unix.PERF_EVENT_IOC_SET_BPF, prog.FD()); err != nil {
		return nil, fmt.Errorf("attaching BPF program to perf event: %w", err)
	}
	if err := unix.IoctlSetInt(fd, unix.PERF_EVENT_IOC_ENABLE, 0); err != nil {
		pe.Close()
		return nil, fmt.Errorf("enabling perf event: %w", err)
	}
	return pe, nil
}

func (pe *perfEvent) Close() error {
	var err error
	if pe.fd >= 0 {
		_ = unix.IoctlSetInt(pe.fd, unix.PERF_EVENT_IOC_DISABLE, 0)
	}
	if pe.link != nil {
		err = pe.link.Close()
		pe.link = nil
	}
	if pe.fd >= 0 {
		if cerr := unix.Close(pe.fd); err == nil {
			err = cerr
		}
		pe.fd = -1
	}
	return err
}

// attachPerCPU opens the event on every online CPU and attaches prog. CPUs
// that are offline (ENODEV) are skipped.
func attachPerCPU(prog *ebpf.Program, typ uint32, config uint64, period uint64, freq bool) ([]*perfEvent, error) {
	cpus, err := OnlineCPUs()
	if err != nil {
		return nil, err
	}
	var events []*perfEvent
	for _, cpu := range cpus {
		fd, err := openPerfEvent(typ, config, cpu, period, freq)
		if errors.Is(err, unix.ENODEV) {
			continue
		}
		if err != nil {
			closeAll(events)
			return nil, fmt.Errorf("opening perf event on cpu %d: %w", cpu, err)
		}
		pe, err := attachPerfEvent(fd, prog)
		if err != nil {
			unix.Close(fd)
			closeAll(events)
			return nil, fmt.Errorf("cpu %d: %w", cpu, err)
		}
		events = append(events, pe)
	}
	if len(events) == 0 {
		return nil, fmt.Errorf("no online cpu accepted a perf event")
	}
	return events, nil
}

func closeAll(events []*perfEvent) {
	for _, e := range events {
		e.Close()
	}
}

// OnlineCPUs reads /sys/devices/system/cpu/online.
func OnlineCPUs() ([]int, error) {
	data, err := os.ReadFile("/sys/devices/system/cpu/online")
	if err != nil {
		return nil, err
	}
	return ParseCPUList(string(data))
}

// ParseCPUList parses the kernel's CPU list format ("0-3,8,10-11").
func ParseCPUList(s string) ([]int, error) {
	var cpus []int
	s = strings.TrimSpace(s)
	if s == "" {
		return nil, fmt.Errorf("empty cpu list")
	}
	for _, part := range strings.Split(s, ",") {
		lo, hi, isRange := strings.Cut(part, "-")
		a, err := strconv.Atoi(lo)
		if err != nil || a < 0 {
			return nil, fmt.Errorf("bad cpu list %q", s)
		}
		b := a
		if isRange {
			if b, err = strconv.Atoi(hi); err != nil || b < a || b-a > 1<<16 {
				return nil, fmt.Errorf("bad cpu list %q", s)
			}
		}
		for c := a; c <= b; c++ {
			cpus = append(cpus, c)
		}
	}
	return cpus, nil
}
