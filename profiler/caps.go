package profiler

import (
	"context"
	"errors"
	"fmt"
	"github.com/scorch-dev/scorch/bpf"
	"github.com/scorch-dev/scorch/capture"
	"github.com/scorch-dev/scorch/unwind"
	"log/slog"
	"os"
	"strings"

	"golang.org/x/sys/unix"
)

// Collector says whether a collector can run here, and why not.
type Collector struct {
	Available bool   `json:"available"`
	Reason    string `json:"reason,omitempty"`
}

// Caps are what this host supports, found by trying.
type Caps struct {
	Kernel     string               `json:"kernel"`
	Arch       string               `json:"arch"` // what this scorch is built for, with its registers
	BTF        bool                 `json:"btf"`
	BTFReason  string               `json:"btf_reason,omitempty"`
	Root       bool                 `json:"root"`
	PMU        bool                 `json:"pmu"`
	PMUReason  string               `json:"pmu_reason,omitempty"`
	Collectors map[string]Collector `json:"collectors"`
	Sysctls    map[string]string    `json:"sysctls"`
	Notes      []string             `json:"notes,omitempty"`
}

// Capabilities tries each collector for real (load and attach) and reads the
// sysctls that matter.
func Capabilities(ctx context.Context) Caps {
	c := Caps{
		Kernel:     kernelRelease(),
		Arch:       archSummary(hostArch),
		Root:       os.Geteuid() == 0,
		Collectors: make(map[string]Collector),
		Sysctls:    make(map[string]string),
	}
	if _, err := os.Stat("/sys/kernel/btf/vmlinux"); err == nil {
		c.BTF = true
	} else {
		c.BTFReason = "/sys/kernel/btf/vmlinux is missing: the kernel was built without CONFIG_DEBUG_INFO_BTF"
	}
	for _, name := range []string{"kernel.kptr_restrict", "kernel.perf_event_paranoid", "kernel.perf_event_max_stack", "kernel.bpf_stats_enabled", "kernel.unprivileged_bpf_disabled"} {
		path := "/proc/sys/" + strings.ReplaceAll(name, ".", "/")
		if b, err := os.ReadFile(path); err == nil {
			c.Sysctls[name] = strings.TrimSpace(string(b))
		}
	}
	if v := c.Sysctls["kernel.kptr_restrict"]; v != "" && v != "0" && !c.Root {
		c.Notes = append(c.Notes, "kernel.kptr_restrict="+v+" hides kernel addresses from non-root users: kernel frames need root")
	}
	if v := c.Sysctls["kernel.kptr_restrict"]; v == "2" {
		c.Notes = append(c.Notes, "kernel.kptr_restrict=2 hides kernel addresses even from root: kernel frames cannot be named (set it to 0 or 1)")
	}
	if v := c.Sysctls["kernel.perf_event_max_stack"]; v != "" && v != "127" {
		c.Notes = append(c.Notes, "kernel.perf_event_max_stack="+v+": stacks are cut at that depth")
	}
	c.Notes = append(c.Notes, archNotes(hostArch, hostArch.Name != "", kernelMachine())...)
	c.PMU, c.PMUReason = probePMU()
	for _, t := range capture.Types {
		col, ok := collectorFor(t)
		name := string(t)
		switch {
		case !c.Root:
			c.Collectors[name] = Collector{Reason: "scorch needs root (or CAP_BPF and CAP_PERFMON) to load BPF programs"}
		case !c.BTF:
			c.Collectors[name] = Collector{Reason: c.BTFReason}
		case !ok:
			c.Collectors[name] = Collector{Reason: "not implemented in this version of scorch"}
		default:
			if err := col.try(); err != nil {
				// The sentinel says nothing the listing does not.
				c.Collectors[name] = Collector{Reason: strings.TrimPrefix(err.Error(), ErrUnavailable.Error()+": ")}
			} else {
				c.Collectors[name] = Collector{Available: true}
			}
		}
	}
	return c
}

// try loads and attaches the collector for a moment, as a capture would,
// with a one-page ring buffer and a target that matches nothing.
func (col collector) try() error {
	p := col.probe
	p.Type = col.typ
	p.Defaults()
	tgt := &target{mode: bpf.SamplerTargetModeTARGET_PID}
	opts := Options{RingBytes: os.Getpagesize(), Logger: slog.New(slog.DiscardHandler)}
	r, err := start(col, p, tgt, unwind.ModeFP, opts)
	if err != nil {
		return err
	}
	r.Close()
	return nil
}

// probePMU checks for hardware counters by opening a cycles event.
func probePMU() (bool, string) {
	fd, err := openPerfEvent(unix.PERF_TYPE_HARDWARE, unix.PERF_COUNT_HW_CPU_CYCLES, 0, 1000000, false)
	if err == nil {
		unix.Close(fd)
		return true, ""
	}
	if errors.Is(err, unix.ENOENT) || errors.Is(err, unix.EOPNOTSUPP) || errors.Is(err, unix.ENODEV) {
		return false, "no hardware PMU: cycles and instructions counters are not supported here (common in VMs)"
	}
	return false, fmt.Sprintf("hardware counters cannot be opened: %v", err)
}
