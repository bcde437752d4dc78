package profiler

import (
	"strings"
	"testing"

	"github.com/cilium/ebpf"
	"github.com/scorch-dev/scorch/capture"
	"github.com/scorch-dev/scorch/unwind"
)

// The Go table's KernelStackCache is what bpf/arch.h's ARCH_KSTACK_CACHE
// compiled into each architecture's off-CPU object: on_switch looks the
// cache up only where it can work.
func TestArchTableMatchesObjects(t *testing.T) {
	objs := map[string]string{"amd64": "../bpf/offcpu_x86_bpfel.o", "arm64": "../bpf/offcpu_arm64_bpfel.o"}
	for _, a := range unwind.Arches {
		path, ok := objs[a.GOARCH]
		if !ok {
			t.Fatalf("%s: no BPF object for GOARCH %s", a.Name, a.GOARCH)
		}
		spec, err := ebpf.LoadCollectionSpec(path)
		if err != nil {
			t.Fatal(err)
		}
		uses := false
		for _, ins := range spec.Programs["on_switch"].Instructions {
			if ins.IsLoadFromMap() && ins.Reference() == "kcache" {
				uses = true
			}
		}
		if uses != a.KernelStackCache {
			t.Errorf("%s: on_switch uses the kernel stack cache: %v; the table says KernelStackCache %v", a.Name, uses, a.KernelStackCache)
		}
		if got, ok := unwind.ArchFor(a.GOARCH); !ok || got.Name != a.Name {
			t.Errorf("ArchFor(%q) = %v, %v", a.GOARCH, got.Name, ok)
		}
	}
}

func TestArchNotes(t *testing.T) {
	x86, _ := unwind.ArchFor("amd64")
	arm, _ := unwind.ArchFor("arm64")
	tests := []struct {
		name    string
		a       unwind.Arch
		machine string
		notes   int
		want    []string // substrings of the notes
	}{
		{"x86-64 host", x86, "x86_64", 0, nil},
		{"arm64 host", arm, "aarch64", 1, []string{"kernel stack cache is off on arm64"}},
		{"amd64 build on an arm64 kernel", x86, "aarch64", 1, []string{"built for amd64 but the kernel is aarch64", "bin/scorch-arm64"}},
		{"arm64 build on an x86-64 kernel", arm, "x86_64", 2, []string{"built for arm64 but the kernel is x86_64", "bin/scorch-amd64", "cache is off"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := archNotes(tt.a, true, tt.machine)
			if len(got) != tt.notes {
				t.Fatalf("notes %q, want %d", got, tt.notes)
			}
			for _, w := range tt.want {
				if !strings.Contains(strings.Join(got, "\n"), w) {
					t.Errorf("notes %q lack %q", got, w)
				}
			}
		})
	}
	if n := offCPUNotes(arm, capture.OffCPU); len(n) != 1 {
		t.Errorf("arm64 offcpu capture notes %q, want the cache note", n)
	}
	if n := offCPUNotes(arm, capture.Wakeup); len(n) != 0 {
		t.Errorf("arm64 wakeup capture notes %q: wakeup walks no blocked stacks", n)
	}
	if n := offCPUNotes(x86, capture.OffWake); len(n) != 0 {
		t.Errorf("x86-64 offwake capture notes %q", n)
	}
	if s := archSummary(arm); !strings.Contains(s, "x30") || !strings.Contains(s, "pointer-authentication") {
		t.Errorf("arm64 summary %q", s)
	}
}

// A wakeup from an interrupt is charged to [irq] from the outermost entry
// on, on either architecture's kernel.
func TestInterruptEntry(t *testing.T) {
	stack := func(names ...string) []capture.Frame {
		out := make([]capture.Frame, len(names))
		for i, n := range names {
			out[i] = capture.Frame{Name: n, Kind: capture.KindKernel}
		}
		return out
	}
	tests := []struct {
		name   string
		kernel []capture.Frame // root first
		want   int
	}{
		{"x86-64 timer", stack("asm_sysvec_apic_timer_interrupt", "sysvec_apic_timer_interrupt", "hrtimer_interrupt", "try_to_wake_up"), 0},
		{"arm64 timer from the kernel", stack("el1h_64_irq", "el1h_64_irq_handler", "el1_interrupt", "gic_handle_irq", "hrtimer_interrupt", "try_to_wake_up"), 0},
		{"arm64 softirq from user space", stack("el0t_64_irq", "el0t_64_irq_handler", "el0_interrupt", "irq_exit_rcu", "handle_softirqs", "try_to_wake_up"), 0},
		{"arm64 system call", stack("el0t_64_sync", "el0t_64_sync_handler", "el0_svc", "invoke_syscall", "__arm64_sys_futex", "futex_wake", "try_to_wake_up"), -1},
	}
	for _, tt := range tests {
		if got := interruptEntry(tt.kernel); got != tt.want {
			t.Errorf("%s: entry %d, want %d", tt.name, got, tt.want)
		}
	}
}
