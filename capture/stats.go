package capture

import (
	"encoding/json"
	"fmt"
	"sort"
	"strings"
)

// Stats counts what was collected and what was lost, so that nothing is lost silently.
type Stats struct {
	Samples       uint64 `json:"samples"`                   // events kept
	Lost          uint64 `json:"lost"`                      // events dropped (ring buffer full, map full)
	StackErrors   uint64 `json:"stack_errors,omitempty"`    // stack walks that failed
	Truncated     uint64 `json:"truncated,omitempty"`       // stacks cut at the depth limit
	Filtered      uint64 `json:"filtered,omitempty"`        // events outside min/max filters
	UnwindCFI     uint64 `json:"unwind_cfi,omitempty"`      // user stacks completed with CFI
	UnwindFP      uint64 `json:"unwind_fp,omitempty"`       // user stacks from frame pointers alone
	UnwindEnded   uint64 `json:"unwind_ended,omitempty"`    // user stacks that ended early
	ProcsExited   uint64 `json:"procs_exited,omitempty"`    // processes gone before their snapshot
	BadInputLines uint64 `json:"bad_input_lines,omitempty"` // imports: lines that could not be parsed
	// Counters are the collectors' other counts, by declared counter.
	Counters Counters `json:"counters,omitempty"`
	// LostAt says when the events counted in Lost were lost, where the
	// collector knows: spans of time, as fine as its reader looks at the
	// BPF counters, and the CPU.
	LostAt []LostSpan `json:"lost_at,omitempty"`
}

// LostSpan is a number of events lost on one CPU between two times.
type LostSpan struct {
	From  int64  `json:"from"` // ns since the capture start
	To    int64  `json:"to"`   // > From
	CPU   int    `json:"cpu"`  // -1: not known (records that could not be decoded)
	Count uint64 `json:"count"`
}

// Counter names a count of Stats.Counters; capture files store it by this
// name. Counters marked "by reason" are split by a reason label.
type Counter string

// Why events were lost (the reasons of LostBy).
const (
	LostRingFull   = "ring buffer full"        // the reader fell behind the programs
	LostMapFull    = "map full"                // a BPF map had no room
	LostUndecoded  = "undecodable record"      // a record user space could not read
	LostUnknownRef = "unknown stack reference" // a cached stack's reference named none sent
)

// The declared counters.
const (
	StackCopyErrors        Counter = "stack_copy_errors"        // user stack copies the kernel could not read
	ExecNotificationsLost  Counter = "exec_notifications_lost"  // exec notices lost: those processes are snapshot late
	MappingRecords         Counter = "mapping_records"          // the kernel's mmap/exec/fork/exit records read
	MappingRecordsLost     Counter = "mapping_records_lost"     // those the kernel lost (ring full): mappings read from /proc instead
	MapFull                Counter = "map_full"                 // events lost to a full BPF map (also in Lost)
	KernelStacksCached     Counter = "kernel_stacks_cached"     // off-CPU: kernel stacks taken from the cache
	KernelStacksWalked     Counter = "kernel_stacks_walked"     // off-CPU: kernel stacks walked
	KernelStackCacheWrong  Counter = "kernel_stack_cache_wrong" // off-CPU, check mode: cached stacks that differed from the walk
	UserStacksCached       Counter = "user_stacks_cached"       // off-CPU, mem: user stacks sent as a reference to one sent before
	UserStacksWalked       Counter = "user_stacks_walked"       // off-CPU, mem: user stacks walked with the cache on
	UserStackCacheWrong    Counter = "user_stack_cache_wrong"   // check mode: cached user stacks that differed from the walk
	NoWakerSeen            Counter = "no_waker_seen"            // wakeup, offwake: intervals without a waker to charge
	IntervalsWithoutStacks Counter = "intervals_without_stacks" // off-CPU: intervals whose stacks were lost
	LiveAllocations        Counter = "live_allocations"         // mem malloc: allocations not freed at the end
	LiveMapOverflow        Counter = "live_map_overflow"        // mem malloc: allocations the live map had no room for
	RingBytes              Counter = "ring_bytes"               // bytes read from the ring buffer
	AttachMicros           Counter = "attach_us"                // perf events: load to attached, µs
	BPFRunNanos            Counter = "bpf_run_ns"               // sampler run time (kernel.bpf_stats_enabled=1)
	BPFRuns                Counter = "bpf_runs"                 // sampler runs (kernel.bpf_stats_enabled=1)
	UnwindEndedBy          Counter = "unwind_ended"             // by reason: why user stacks ended early
	LostOnCPU              Counter = "lost_on_cpu"              // by reason (the CPU): events lost on each CPU
	LostBy                 Counter = "lost_by"                  // by reason (LostRingFull, ...): why events were lost
	// The BPF unwinder (--unwind auto) and its tables.
	UnwoundInBPF            Counter = "unwound_in_bpf"             // user stacks walked in BPF with the unwind tables
	UnwindTablesPending     Counter = "unwind_tables_pending"      // user stacks of processes whose tables were not loaded yet (unwound from a copy)
	UnwindTableProcs        Counter = "unwind_table_procs"         // processes whose tables were loaded
	UnwindTableProcsRemoved Counter = "unwind_table_procs_removed" // processes whose entry was removed (exit)
	UnwindTableFilesLoaded  Counter = "unwind_table_files_loaded"  // files whose tables were written to the maps
	UnwindTableFiles        Counter = "unwind_table_files"         // files in the maps at the end
	UnwindTablesBuilt       Counter = "unwind_tables_built"        // files whose tables were built from their CFI
	UnwindTablesCached      Counter = "unwind_tables_cached"       // files whose tables were read from the on-disk cache (--unwind-cache)
	UnwindTableBytes        Counter = "unwind_table_bytes"         // map bytes in use at the end
	UnwindTableEvictions    Counter = "unwind_table_evictions"     // by reason: files removed from the maps
	UnwindTableRefusals     Counter = "unwind_table_refusals"      // by reason: files or processes not loaded
	UnwindTrampolineTables  Counter = "unwind_trampoline_tables"   // anonymous code recognized as trampolines (CPython -X perf) and given tables
	UnwindJITTables         Counter = "unwind_jit_tables"          // JIT code given tables from its jitdump's unwinding records
)

// CounterKey is a counter and, for counters split by reason, the reason.
type CounterKey struct {
	Counter Counter
	Reason  string
}

// String names the count as Prometheus does: name or name{reason="…"}.
func (k CounterKey) String() string {
	if k.Reason == "" {
		return string(k.Counter)
	}
	return fmt.Sprintf("%s{reason=%q}", k.Counter, k.Reason)
}

// Counters are counts by counter and reason.
type Counters map[CounterKey]uint64

// Add adds n to a counter.
func (c *Counters) Add(name Counter, n uint64) { c.AddReason(name, "", n) }

// AddReason adds n to a counter's count for reason.
func (c *Counters) AddReason(name Counter, reason string, n uint64) {
	if *c == nil {
		*c = make(Counters)
	}
	(*c)[CounterKey{name, reason}] += n
}

// Get is a counter's total over its reasons.
func (c Counters) Get(name Counter) uint64 { return c.Totals()[name] }

// Totals are the counters' totals over their reasons.
func (c Counters) Totals() map[Counter]uint64 {
	out := make(map[Counter]uint64, len(c))
	for k, n := range c {
		out[k.Counter] += n
	}
	return out
}

// Reasons are a counter's counts by reason.
func (c Counters) Reasons(name Counter) map[string]uint64 {
	out := map[string]uint64{}
	for k, n := range c {
		if k.Counter == name && k.Reason != "" {
			out[k.Reason] += n
		}
	}
	return out
}

// Count is one count of Counters, as capture files store it.
type Count struct {
	Counter Counter `json:"counter"`
	Reason  string  `json:"reason,omitempty"`
	Value   uint64  `json:"value"`
}

// Sorted lists the counts by counter and reason.
func (c Counters) Sorted() []Count {
	out := make([]Count, 0, len(c))
	for k, n := range c {
		out = append(out, Count{k.Counter, k.Reason, n})
	}
	sort.Slice(out, func(i, j int) bool {
		if out[i].Counter != out[j].Counter {
			return out[i].Counter < out[j].Counter
		}
		return out[i].Reason < out[j].Reason
	})
	return out
}

func (c Counters) MarshalJSON() ([]byte, error) { return json.Marshal(c.Sorted()) }

func (c *Counters) UnmarshalJSON(b []byte) error {
	var list []Count
	if err := json.Unmarshal(b, &list); err != nil {
		return fmt.Errorf("stats counters: %w", err)
	}
	*c = nil
	for _, n := range list {
		c.AddReason(n.Counter, n.Reason, n.Value)
	}
	return nil
}

// UnmarshalJSON reads stats, also those of files written before the
// counters were declared: an "extra" object of names, some with their
// reason in the name ("unwind_ended: no CFI for pc", "lost_cpu_3").
func (s *Stats) UnmarshalJSON(b []byte) error {
	type plain Stats
	var v struct {
		plain
		Extra map[string]uint64 `json:"extra"`
	}
	if err := json.Unmarshal(b, &v); err != nil {
		return err
	}
	*s = Stats(v.plain)
	for k, n := range v.Extra {
		name, reason := legacyCounter(k)
		s.Counters.AddReason(name, reason, n)
	}
	return nil
}

// legacyCounter maps a key of the old "extra" object to its counter.
func legacyCounter(k string) (Counter, string) {
	if r, ok := strings.CutPrefix(k, "unwind_ended: "); ok {
		return UnwindEndedBy, r
	}
	if cpu, ok := strings.CutPrefix(k, "lost_cpu_"); ok {
		return LostOnCPU, cpu
	}
	return Counter(k), ""
}
