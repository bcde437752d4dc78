package profiler

import (
	"fmt"
	"slices"
	"strconv"
	"strings"

	"github.com/cilium/ebpf"
	"github.com/scorch-dev/scorch/bpf"
	"github.com/scorch-dev/scorch/capture"
)

// addBPFStats adds the BPF programs' counters to the capture's.
func (s *session) addBPFStats(st map[bpf.StatSlot]uint64) {
	s.stats.Lost += st[bpf.SamplerStatSlotSTAT_DROPPED]
	s.stats.StackErrors += st[bpf.SamplerStatSlotSTAT_KSTACK_ERR] + st[bpf.SamplerStatSlotSTAT_USTACK_ERR]
	s.stats.Lost += st[bpf.SamplerStatSlotSTAT_MAP_FULL]
	if n := st[bpf.SamplerStatSlotSTAT_DROPPED]; n > 0 {
		s.stats.Counters.AddReason(capture.LostBy, capture.LostRingFull, n)
	}
	if n := st[bpf.SamplerStatSlotSTAT_MAP_FULL]; n > 0 {
		s.stats.Counters.AddReason(capture.LostBy, capture.LostMapFull, n)
	}
	for slot, name := range slotCounters {
		if n := st[slot]; n > 0 {
			s.stats.Counters.Add(name, n)
		}
	}
}

// slotCounters are the BPF counters (enum stat_slot) kept in the capture
// under their own name.
var slotCounters = map[bpf.StatSlot]capture.Counter{
	bpf.SamplerStatSlotSTAT_COPY_ERR:     capture.StackCopyErrors,
	bpf.SamplerStatSlotSTAT_EXEC_DROPPED: capture.ExecNotificationsLost,
	bpf.SamplerStatSlotSTAT_KCACHE_HIT:   capture.KernelStacksCached,
	bpf.SamplerStatSlotSTAT_KCACHE_MISS:  capture.KernelStacksWalked,
	bpf.SamplerStatSlotSTAT_KCACHE_WRONG: capture.KernelStackCacheWrong,
	bpf.SamplerStatSlotSTAT_UCACHE_HIT:   capture.UserStacksCached,
	bpf.SamplerStatSlotSTAT_UCACHE_MISS:  capture.UserStacksWalked,
	bpf.SamplerStatSlotSTAT_UCACHE_WRONG: capture.UserStackCacheWrong,
	bpf.SamplerStatSlotSTAT_MAP_FULL:     capture.MapFull,
}

// lostSlots are the counters of the events the BPF programs dropped.
var lostSlots = []bpf.StatSlot{bpf.SamplerStatSlotSTAT_DROPPED, bpf.SamplerStatSlotSTAT_MAP_FULL}

// readLostPerCPU reads the events the BPF programs dropped on each CPU
// (the stats array is per CPU), indexed by CPU.
func readLostPerCPU(m *ebpf.Map) []uint64 {
	var out []uint64
	for _, slot := range lostSlots {
		var vals []uint64
		if err := m.Lookup(uint32(slot), &vals); err != nil {
			continue
		}
		if out == nil {
			out = make([]uint64, len(vals))
		}
		for cpu, v := range vals {
			if cpu < len(out) {
				out[cpu] += v
			}
		}
	}
	return out
}

// addLostPerCPU keeps the events lost on each CPU, zero included: a BPF
// capture says for every CPU how many it lost.
func (s *session) addLostPerCPU(lost []uint64) {
	for cpu, n := range lost {
		s.stats.Counters.AddReason(capture.LostOnCPU, strconv.Itoa(cpu), n)
	}
}

// readStats sums the per-CPU counters.
func readStats(m *ebpf.Map) map[bpf.StatSlot]uint64 {
	out := make(map[bpf.StatSlot]uint64)
	for slot := bpf.StatSlot(0); slot < bpf.SamplerStatSlotSTAT_MAX; slot++ {
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

// sumPerCPU sums slot 0 of a per-CPU counter array.
func sumPerCPU(m *ebpf.Map) (n uint64) {
	var vals []uint64
	if err := m.Lookup(uint32(0), &vals); err != nil {
		return 0
	}
	for _, v := range vals {
		n += v
	}
	return n
}

// UnwindSummary says how the user stacks of a capture were obtained, so
// that users can trust or question a graph: "user stacks: 950 completed
// with CFI, 40 from frame pointers alone, 10 ended early (no CFI for pc: 6,
// end of stack copy: 4)".
func UnwindSummary(st capture.Stats) string {
	if st.UnwindCFI+st.UnwindFP+st.UnwindEnded == 0 {
		return ""
	}
	out := fmt.Sprintf("user stacks: %d completed with CFI, %d from frame pointers alone, %d ended early", st.UnwindCFI, st.UnwindFP, st.UnwindEnded)
	var reasons []string
	for r, n := range st.Counters.Reasons(capture.UnwindEndedBy) {
		reasons = append(reasons, fmt.Sprintf("%s: %d", r, n))
	}
	if len(reasons) > 0 {
		slices.Sort(reasons)
		out += " (" + strings.Join(reasons, ", ") + ")"
	}
	return out
}
