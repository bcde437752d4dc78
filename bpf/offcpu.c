//go:build ignore

/* Off-CPU, wakeup and off-wake collectors on scheduler tracepoints.
 *
 * sched_switch (running as the task leaving the CPU) notes when a wanted
 * thread goes off CPU; sched_waking (running as the waker) notes when it is
 * woken, and by whom, and may send the waker's stacks; sched_exit_tp
 * (running as the thread coming back, at the end of __schedule) computes
 * the time off CPU, split into blocked (until the wakeup) and run-queue
 * time, applies the min/max filters and only then walks the stacks. A
 * blocked thread's stack does not change while it is off CPU, so walking it
 * on return names the code that blocked, and short blocks that the filters
 * drop cost no stack walk. */

#include "common.h"

char LICENSE[] SEC("license") = "Dual BSD/GPL";

#define TASK_INTERRUPTIBLE 1
#define TASK_UNINTERRUPTIBLE 2

const volatile __u32 state_filter = 0;      /* 0 all, 1 S, 2 D */
const volatile __u64 min_block_ns = 1000;
const volatile __u64 max_block_ns = ~0ULL;
const volatile bool want_blocked_stack = true; /* offcpu, offwake */
const volatile bool want_waker_stack = false;  /* wakeup, offwake */

struct off_start {
	__u64 ts;      /* when the thread left the CPU */
	__u64 wake_ts; /* when it was woken; ts for a preempted thread */
	__u32 waker_pid;
	__u32 waker_tid;
	__u32 flags;   /* EVENT_IRQ: woken from the idle task's interrupts */
	__u32 pad;
};

/* Per thread, for all CPUs (a thread may wake up on another CPU): task
 * local storage, found from the task without hashing, so that the many
 * switches of threads that are not targets cost little. ts == 0 means the
 * thread is not off CPU. */
struct {
	__uint(type, BPF_MAP_TYPE_TASK_STORAGE);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__type(key, int);
	__type(value, struct off_start);
} starts SEC(".maps");

SEC("tp_btf/sched_switch")
int BPF_PROG(on_switch, bool preempt, struct task_struct *prev, struct task_struct *next, unsigned int prev_state)
{
	__u32 tid = prev->pid;
	__u32 pid = prev->tgid;
	if (pid == 0 || (prev->flags & PF_KTHREAD))
		return 0;
	if (!wanted(prev, pid, tid))
		return 0;
	bool runnable = preempt || (prev_state & 0xff) == 0;
	if (state_filter == 1 && (runnable || !(prev_state & TASK_INTERRUPTIBLE)))
		return 0;
	if (state_filter == 2 && (runnable || !(prev_state & TASK_UNINTERRUPTIBLE)))
		return 0;
	struct off_start st = {};
	st.ts = bpf_ktime_get_ns();
	/* A preempted thread waits in the run queue from the start. */
	if (runnable)
		st.wake_ts = st.ts;
	struct off_start *slot = bpf_task_storage_get(&starts, prev, 0, BPF_LOCAL_STORAGE_GET_F_CREATE);
	if (!slot) {
		count(STAT_MAP_FULL);
		return 0;
	}
	*slot = st;
	return 0;
}

SEC("tp_btf/sched_waking")
int BPF_PROG(on_waking, struct task_struct *p)
{
	__u32 tid = p->pid;
	struct off_start *st = bpf_task_storage_get(&starts, p, 0, 0);
	if (!st || !st->ts || st->wake_ts)
		return 0;
	__u64 now = bpf_ktime_get_ns();
	__u64 id = bpf_get_current_pid_tgid();
	/* Wakeups from interrupts run in whatever task was interrupted. The idle
	 * task is certain; otherwise user space finds the interrupt entry on the
	 * kernel stack (cilium/ebpf cannot resolve the per-CPU preempt count). */
	bool irq = (id >> 32) == 0;
	st->wake_ts = now;
	st->waker_pid = irq ? 0 : id >> 32;
	st->waker_tid = irq ? 0 : (__u32)id;
	st->flags = irq ? EVENT_IRQ : 0;
	if (!want_waker_stack)
		return 0;
	__u64 blocked = now - st->ts;
	if (blocked < min_block_ns || blocked > max_block_ns)
		return 0;

	struct stack_event *e = start_event(irq ? 0 : id >> 32, irq ? 0 : (__u32)id, irq ? EVENT_IRQ : 0, blocked);
	if (!e)
		return 0;
	e->kind = RECORD_WAKER;
	e->ts = now;
	e->peer_pid = p->tgid;
	e->peer_tid = tid;
	struct task_struct *task = bpf_get_current_task_btf();
	if (irq) {
		/* The interrupted task's user stack has nothing to do with
		 * this wakeup: kernel stack only. */
		e->kstack_len = get_stack(ctx, e, 0, 0, STAT_KSTACK_ERR);
		e->ustack_len = 0;
		e->copy_len = 0;
		e->ip = e->sp = e->bp = 0;
		e->flags |= EVENT_KTHREAD;
	} else {
		e->flags |= EVENT_KERNEL_MODE;
		task_user_regs(task, e);
		fill_stacks(ctx, e, task);
	}
	submit(e);
	return 0;
}

SEC("tp_btf/sched_exit_tp")
int BPF_PROG(on_return, bool is_switch)
{
	if (!is_switch)
		return 0;
	__u64 id = bpf_get_current_pid_tgid();
	__u32 tid = (__u32)id;
	struct task_struct *task = bpf_get_current_task_btf();
	struct off_start *stp = bpf_task_storage_get(&starts, task, 0, 0);
	if (!stp || !stp->ts)
		return 0;
	struct off_start st = *stp;
	stp->ts = 0;
	__u64 now = bpf_ktime_get_ns();
	if (now <= st.ts)
		return 0;
	__u64 total = now - st.ts;
	if (total < min_block_ns || total > max_block_ns)
		return 0;

	struct stack_event *e = start_event(id >> 32, tid, st.flags | EVENT_KERNEL_MODE, total);
	if (!e)
		return 0;
	e->ts = st.ts;
	/* No wakeup seen (it happened before the capture, or was missed):
	 * count it all as blocked. */
	e->aux = st.wake_ts ? st.wake_ts - st.ts : total;
	e->peer_pid = st.waker_pid;
	e->peer_tid = st.waker_tid;
	if (want_blocked_stack) {
		task_user_regs(task, e);
		fill_stacks(ctx, e, task);
	} else {
		e->kstack_len = e->ustack_len = 0;
		e->copy_len = 0;
		e->ip = e->sp = e->bp = 0;
	}
	submit(e);
	return 0;
}

SEC("tp_btf/sched_process_exec")
int BPF_PROG(on_exec, struct task_struct *p, pid_t old_pid, struct linux_binprm *bprm)
{
	notify_exec(p);
	return 0;
}

const struct stack_event *unused_stack_event __attribute__((unused));
