//go:build ignore

/* Memory collectors: uprobes on the target's allocator (malloc, calloc,
 * realloc, free) with a bounded map of live allocations, and the brk and
 * mmap syscall tracepoints. Every allocation streams a stack event whose
 * value is the size in bytes; aux is the address and peer_pid the
 * allocating function (enum alloc_fn), so user space can name the leaf and
 * match the allocations still live at the end. */

#include "common.h"

char LICENSE[] SEC("license") = "Dual BSD/GPL";

enum alloc_fn {
	FN_MALLOC = 1,
	FN_CALLOC = 2,
	FN_REALLOC = 3,
	FN_BRK = 4,
	FN_MMAP = 5,
};

/* pending_alloc is an allocation call between its entry and its return. */
struct pending_alloc {
	__u64 size;
	__u64 old; /* realloc: the block it replaces */
	__u32 fn;
	__u32 pad;
};

/* live_alloc is an allocation not freed yet; ts identifies its event. */
struct live_alloc {
	__u64 size;
	__u64 ts;
};

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 16384);
	__type(key, __u32); /* tid */
	__type(value, struct pending_alloc);
} pending SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 262144); /* resized from user space */
	__type(key, __u64);          /* address */
	__type(value, struct live_alloc);
} live SEC(".maps");

/* Allocations that found the live map full: their bytes count as
 * allocated but cannot be followed to a free. */
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, __u64);
} live_overflow SEC(".maps");

static __always_inline bool current_wanted(__u32 *pid, __u32 *tid)
{
	__u64 id = bpf_get_current_pid_tgid();
	*pid = id >> 32;
	*tid = (__u32)id;
	return wanted(bpf_get_current_task_btf(), *pid, *tid);
}

static __always_inline int enter(__u64 size, __u64 old, __u32 fn)
{
	__u32 pid, tid;
	if (!current_wanted(&pid, &tid))
		return 0;
	struct pending_alloc a = {.size = size, .old = old, .fn = fn};
	if (bpf_map_update_elem(&pending, &tid, &a, BPF_ANY))
		count(STAT_MAP_FULL);
	return 0;
}

SEC("uprobe")
int BPF_KPROBE(malloc_enter, __u64 size)
{
	return enter(size, 0, FN_MALLOC);
}

SEC("uprobe")
int BPF_KPROBE(calloc_enter, __u64 n, __u64 size)
{
	return enter(n * size, 0, FN_CALLOC);
}

SEC("uprobe")
int BPF_KPROBE(realloc_enter, __u64 old, __u64 size)
{
	return enter(size, old, FN_REALLOC);
}

SEC("uprobe")
int BPF_KPROBE(free_enter, __u64 addr)
{
	if (addr)
		bpf_map_delete_elem(&live, &addr);
	return 0;
}

/* fill_user fills the header and the user stacks of an event from user
 * registers (uprobe context: no kernel stack). */
static __always_inline void fill_user(struct pt_regs *ctx, struct stack_event *e, __u32 pid, __u32 tid, __u64 ts)
{
	e->kind = RECORD_SAMPLE;
	e->flags = 0;
	e->ts = ts;
	e->pid = pid;
	e->tid = tid;
	e->cpu = bpf_get_smp_processor_id();
	e->aux = 0;
	e->peer_tid = 0;
	bpf_get_current_comm(&e->comm, sizeof(e->comm));
	e->ip = REGS_IP(ctx);
	e->sp = REGS_SP(ctx);
	e->bp = REGS_FP(ctx);
	e->lr = REGS_LR(ctx);
	e->kstack_len = 0;
	fill_user_stack(ctx, e);
}

/* The stack is taken at the return, where the caller's frame is whole (at
 * the entry, frame pointers skip the immediate caller); user space adds
 * the allocator's name as the leaf. */
SEC("uretprobe")
int BPF_KRETPROBE(alloc_return, __u64 addr)
{
	__u32 pid, tid;
	__u64 id = bpf_get_current_pid_tgid();
	pid = id >> 32;
	tid = (__u32)id;
	struct pending_alloc *a = bpf_map_lookup_elem(&pending, &tid);
	if (!a)
		return 0;
	struct pending_alloc call = *a;
	bpf_map_delete_elem(&pending, &tid);
	if (call.fn == FN_REALLOC && call.old && addr)
		bpf_map_delete_elem(&live, &call.old);
	if (!addr || call.size == 0)
		return 0;

	__u64 ts = bpf_ktime_get_ns();
	struct live_alloc l = {.size = call.size, .ts = ts};
	if (bpf_map_update_elem(&live, &addr, &l, BPF_ANY)) {
		__u32 zero = 0;
		__u64 *n = bpf_map_lookup_elem(&live_overflow, &zero);
		if (n)
			*n += 1;
	}
	struct stack_event *e = new_event(0);
	if (!e)
		return 0;
	fill_user(ctx, e, pid, tid, ts);
	e->value = call.size;
	e->aux = addr;
	e->peer_pid = call.fn;
	submit(e);
	return 0;
}

/* syscall_event records the current task's stacks for a syscall that
 * grows memory by size bytes. */
static __always_inline void syscall_event(void *ctx, __u64 size, __u32 fn)
{
	struct task_struct *task = bpf_get_current_task_btf();
	__u64 id = bpf_get_current_pid_tgid();
	__u32 pid = id >> 32, tid = (__u32)id;
	if (!wanted(task, pid, tid))
		return;
	struct stack_event *e = start_event(task, pid, tid, EVENT_KERNEL_MODE, size, bpf_ktime_get_ns());
	if (!e)
		return;
	e->peer_pid = fn;
	task_user_regs(task, e);
	fill_stacks(ctx, e, task);
	submit(e);
}

/* brk growth: the requested break minus the current one (mm->brk); brk(0)
 * and shrinking calls grow nothing. */
SEC("tracepoint/syscalls/sys_enter_brk")
int brk_enter(struct trace_event_raw_sys_enter *ctx)
{
	struct task_struct *task = bpf_get_current_task_btf();
	__u64 want = ctx->args[0];
	__u64 cur = BPF_CORE_READ(task, mm, brk);
	if (want <= cur || cur == 0)
		return 0;
	syscall_event(ctx, want - cur, FN_BRK);
	return 0;
}

SEC("tracepoint/syscalls/sys_enter_mmap")
int mmap_enter(struct trace_event_raw_sys_enter *ctx)
{
	__u64 len = ctx->args[1];
	if (len == 0)
		return 0;
	syscall_event(ctx, len, FN_MMAP);
	return 0;
}

const enum alloc_fn *unused_alloc_fn __attribute__((unused));
const struct live_alloc *unused_live_alloc __attribute__((unused));
