//go:build ignore

/* Stacks on any tracepoint: one program attached to the tracepoint a user
 * names (`--type event --event subsys:name`), like `perf record -e`. Perf
 * events (software and hardware) reuse the sampler's perf_event program.
 * And CPI: a program on a cycles sampling event that reads an instructions
 * counter on the same CPU. */

#include "common.h"

char LICENSE[] SEC("license") = "Dual BSD/GPL";

SEC("tracepoint")
int on_tracepoint(void *ctx)
{
	struct task_struct *task = bpf_get_current_task_btf();
	__u64 id = bpf_get_current_pid_tgid();
	__u32 pid = id >> 32, tid = (__u32)id;

	if (!wanted_current(task, pid, tid))
		return 0;
	/* Tracepoints fire in the kernel: the user registers are the ones
	 * saved at kernel entry. */
	struct stack_event *e = start_event(task, pid, tid, EVENT_KERNEL_MODE, 1, bpf_ktime_get_ns());
	if (!e)
		return 0;
	if (pid != 0)
		task_user_regs(task, e);
	fill_stacks(ctx, e, task);
	submit(e);
	return 0;
}

/* One counting instructions event per CPU, by CPU number. */
struct {
	__uint(type, BPF_MAP_TYPE_PERF_EVENT_ARRAY);
	__uint(key_size, sizeof(__u32));
	__uint(value_size, sizeof(__u32));
	__uint(max_entries, 1); /* resized from user space: the CPU count */
} instructions SEC(".maps");

/* The instructions count at the CPU's previous cycles sample. */
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, __u64);
} last_instructions SEC(".maps");

/* sample_cpi runs every period cycles on a CPU: the stack it finds is
 * charged the period's cycles and the instructions the CPU retired since
 * its previous sample (the same attribution as the cycles themselves). The
 * counter is read for every sample, also of unwanted tasks, so that the
 * differences always span one period. */
SEC("perf_event")
int sample_cpi(struct bpf_perf_event_data *ctx)
{
	struct bpf_perf_event_value v = {};
	if (bpf_perf_event_read_value(&instructions, BPF_F_CURRENT_CPU, &v, sizeof(v)))
		return 0;
	__u32 zero = 0;
	__u64 *last = bpf_map_lookup_elem(&last_instructions, &zero);
	if (!last)
		return 0;
	__u64 prev = *last;
	*last = v.counter;
	if (prev == 0 || v.counter < prev)
		return 0; /* the CPU's first sample: no interval yet */

	struct task_struct *task = bpf_get_current_task_btf();
	__u64 id = bpf_get_current_pid_tgid();
	__u32 pid = id >> 32, tid = (__u32)id;
	if (!wanted_current(task, pid, tid))
		return 0;
	struct stack_event *e = start_event_in(SCRATCH_IRQ, task, pid, tid, 0, ctx->sample_period, bpf_ktime_get_ns());
	if (!e)
		return 0;
	e->aux = v.counter - prev;
	sample_regs(ctx, e, task);
	fill_stacks(ctx, e, task);
	submit(e);
	return 0;
}
