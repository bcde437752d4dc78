//go:build ignore

/* The CPU sampler: a perf_event program attached to one cpu-clock event per
 * CPU. Every sample streams the kernel and user stacks, the user registers
 * and a copy of the top of the user stack through the ring buffer. */

#include "common.h"

char LICENSE[] SEC("license") = "Dual BSD/GPL";

SEC("perf_event")
int sample_cpu(struct bpf_perf_event_data *ctx)
{
	struct task_struct *task = bpf_get_current_task_btf();
	__u64 id = bpf_get_current_pid_tgid();
	__u32 pid = id >> 32, tid = (__u32)id;

	if (!wanted_current(task, pid, tid))
		return 0;
	struct stack_event *e = start_event(task, pid, tid, 0, 1, bpf_ktime_get_ns());
	if (!e)
		return 0;
	sample_regs(ctx, e, task);
	fill_stacks(ctx, e, task);
	submit(e);
	return 0;
}

/* Children of profiled processes join the pid filter (for -- CMD targets). */
SEC("tp_btf/sched_process_fork")
int BPF_PROG(on_fork, struct task_struct *parent, struct task_struct *child)
{
	if (!follow_forks || filter_mode != TARGET_PID)
		return 0;
	__u32 ppid = parent->tgid;
	__u32 cpid = child->tgid;
	if (ppid == cpid || !bpf_map_lookup_elem(&filter_pids, &ppid))
		return 0;
	__u8 one = 1;
	if (bpf_map_update_elem(&filter_pids, &cpid, &one, BPF_ANY))
		count(STAT_MAP_FULL);
	return 0;
}

/* Keep the types of common.h in BTF so bpf2go generates them for user
 * space (gen.go's -type flags). */
const struct exec_event *unused_exec_event __attribute__((unused));
const struct stack_event *unused_stack_event __attribute__((unused));
const enum stat_slot *unused_stat_slot __attribute__((unused));
const enum record_kind *unused_record_kind __attribute__((unused));
const enum event_flag *unused_event_flag __attribute__((unused));
const enum target_mode *unused_target_mode __attribute__((unused));
const enum limit *unused_limit __attribute__((unused));
const enum unwind_end *unused_unwind_end __attribute__((unused));
const struct unwind_entry *unused_unwind_entry __attribute__((unused));
const struct unwind_rule *unused_unwind_rule __attribute__((unused));
const struct unwind_mapping *unused_unwind_mapping __attribute__((unused));
const struct unwind_proc *unused_unwind_proc __attribute__((unused));
const struct unwind_page *unused_unwind_page __attribute__((unused));
