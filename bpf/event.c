//go:build ignore

/* Stacks on any tracepoint: one program attached to the tracepoint a user
 * names (`--type event --event subsys:name`), like `perf record -e`. Perf
 * events (software and hardware) reuse the sampler's perf_event program. */

#include "common.h"

char LICENSE[] SEC("license") = "Dual BSD/GPL";

SEC("tracepoint")
int on_tracepoint(void *ctx)
{
	struct task_struct *task = bpf_get_current_task_btf();
	__u64 id = bpf_get_current_pid_tgid();
	__u32 pid = id >> 32, tid = (__u32)id;

	if (pid != 0 && !wanted(task, pid, tid))
		return 0;
	if (pid == 0 && filter_mode != TARGET_ALL)
		return 0;
	struct stack_event *e = new_event();
	if (!e)
		return 0;
	e->kind = RECORD_SAMPLE;
	/* Tracepoints fire in the kernel: the user registers are the ones
	 * saved at kernel entry. */
	e->flags = EVENT_KERNEL_MODE;
	e->ts = bpf_ktime_get_ns();
	e->pid = pid;
	e->tid = tid;
	e->cpu = bpf_get_smp_processor_id();
	e->value = 1;
	e->aux = 0;
	e->peer_pid = e->peer_tid = 0;
	bpf_get_current_comm(&e->comm, sizeof(e->comm));
	e->ip = e->sp = e->bp = 0;
	if (pid != 0)
		task_user_regs(task, e);
	fill_stacks(ctx, e, task);
	submit(e);
	return 0;
}

/* New processes are snapshot when they exec, before they can exit. */
SEC("tp_btf/sched_process_exec")
int BPF_PROG(on_exec, struct task_struct *p, pid_t old_pid, struct linux_binprm *bprm)
{
	notify_exec(p);
	return 0;
}
