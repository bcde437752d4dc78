//go:build ignore

/* Off-CPU, wakeup and off-wake collectors on scheduler tracepoints.
 *
 * One hook does the off-CPU work: sched_switch, running as the task that
 * leaves the CPU. For prev, when wanted, it notes the time and sends its
 * stacks (RECORD_LEAVE): a blocked thread's stacks do not change until it
 * runs again, so they name the code that blocked. For next, if it is coming
 * back from such an interval, it sends the times (a RECORD_SAMPLE without
 * stacks, flagged EVENT_LEFT), split into blocked and run-queue time; user
 * space joins the two and applies the min/max filters. A second hook on
 * sched_exit_tp, walking the stacks as the thread returns, was measured
 * too: every context switch on the host then pays for two programs, and
 * filtered captures cost twice as much. sched_waking (running as the waker)
 * is attached for wakeup and offwake only: it notes who woke the thread and
 * sends the waker's stacks. offcpu takes the run-queue time from the
 * scheduler's own accounting. */

#include "common.h"

char LICENSE[] SEC("license") = "Dual BSD/GPL";

extern void *bpf_rdonly_cast(const void *obj, __u32 btf_id) __ksym __weak;
#ifndef bpf_ksym_exists
/* libbpf's: a weak kernel symbol missing from this kernel reads as 0, and the
 * verifier drops the code behind the test. */
#define bpf_ksym_exists(sym) (!!(sym))
#endif

#define TASK_INTERRUPTIBLE 1
#define TASK_UNINTERRUPTIBLE 2

/* The thread states off-CPU captures keep (--state). */
enum off_state {
	OFF_STATE_ALL = 0,
	OFF_STATE_S = 1, /* interruptible sleep */
	OFF_STATE_D = 2, /* uninterruptible sleep */
};

const volatile __u32 state_filter = OFF_STATE_ALL; /* enum off_state */
const volatile __u64 min_block_ns = 1000;
const volatile __u64 max_block_ns = ~0ULL;
const volatile bool want_blocked_stack = true; /* offcpu, offwake */
const volatile bool want_waker_stack = false;  /* wakeup, offwake */
/* offcpu: take the run-queue part of an interval from the scheduler's own
 * accounting (sched_info.run_delay, CONFIG_SCHED_INFO) rather than from
 * sched_waking, which user space then leaves detached: one hook fewer on
 * the hottest path there is. offcpu has no use for the waker's identity. */
const volatile bool use_run_delay = false;

struct off_start {
	__u64 ts;      /* when the thread left the CPU */
	__u64 wake_ts; /* when it was woken; ts for a preempted thread */
	__u32 waker_pid;
	__u32 waker_tid;
	__u32 flags;   /* EVENT_IRQ: woken from the idle task's interrupts */
	__u32 pad;
	__u64 run_delay; /* use_run_delay: sched_info.run_delay when it left */
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

/* Kernel stack cache.
 *
 * Walking the kernel stack (ORC, inside bpf_get_stack) is most of what an
 * off-CPU event costs: about 2 us for the 10 frames of a blocked read, more
 * than the context switch itself. A thread that blocks again where it
 * blocked before has the same kernel stack, and the return addresses the
 * unwinder read sit in the same slots relative to the tracepoint's argument
 * array (ctx, in bpf_trace_run4's frame, at a fixed distance below
 * __schedule's). So the
 * first walk of a stack also finds the slot of each return address, and a
 * later event of the same process and system call reuses the stack when
 * every one of those slots still holds its return address: the unwinder,
 * starting from the same place and reading the same values, would find the
 * same frames. Not checked: the first frames, in the tracing code below the
 * anchor (the same for every event of this program), and the outermost,
 * the entry code above do_syscall_64's randomized stack offset (the only
 * caller of the frame below it). kcache_check walks every stack anyway and
 * counts the cached ones that differ (STAT_KCACHE_WRONG), for the tests.
 *
 * A cached stack goes to user space once, as the user stack cache's do
 * (common.h): the record that learned it is flagged EVENT_KSTACK_DEF, and
 * later records name it (EVENT_KSTACK_REF, the reference in aux) instead
 * of carrying it. A way holding a stack (n > 0) was sent: leave() forgets
 * it before the program returns when its record did not reach the ring
 * (kc_sent), and sched_switch's program does not nest on a CPU.
 *
 * Per CPU, so that no lock is needed: KC_SETS sets of KC_WAYS stacks,
 * chosen by the key's hash, replaced round robin. */
#define KC_FRAMES 32   /* deeper stacks are walked every time */
#define KC_WAYS 4
#define KC_SETS 32
#define KC_SCAN 512    /* words searched above the anchor: 4 KiB */
#define KC_LEAD 6      /* tracing frames that may come before the first slot */

const volatile bool kcache_check = false;

struct kc_way {
	__u32 pid;
	__s32 nr;    /* system call number (REGS_SYSCALL_NR) */
	__u32 n;     /* frames; 0: empty */
	__u32 first; /* frames [first, n) have their slot checked */
	__u16 off[KC_FRAMES]; /* slot of frame i: bytes above the anchor */
	__u16 off_last;       /* slot of frame n - 1: bytes above the stack's base */
	__u16 pad[3];
	__u64 ips[KC_FRAMES];
};

struct kc_set {
	__u32 next; /* the way to replace next */
	__u32 pad;
	struct kc_way way[KC_WAYS];
};

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, KC_SETS);
	__type(key, __u32);
	__type(value, struct kc_set);
} kcache SEC(".maps");

/* kword reads a word of kernel memory with a plain load (a fault reads 0). */
static __always_inline __u64 kword(__u64 addr)
{
	__u64 *p = bpf_rdonly_cast((void *)addr, 0);
	return *p;
}

static __always_inline bool kc_valid(struct kc_way *w, __u64 base, __u64 stack)
{
	__u32 n = w->n, first = w->first;
	if (n < 1 || n > KC_FRAMES || kword(stack + w->off_last) != w->ips[(n - 1) & (KC_FRAMES - 1)])
		return false;
	for (__u32 i = 0; i < KC_FRAMES - 1; i++) {
		if (i + 1 >= n)
			break;
		if (i < first)
			continue;
		if (kword(base + w->off[i]) != w->ips[i])
			return false;
	}
	return true;
}

/* kc_scan finds the slots of frames j..n-1 of w->ips, in that order, from
 * the word at base + 8 * start up. A global function: the verifier checks
 * its loop once, for any argument values, not once per caller state. */
__noinline int kc_scan(struct kc_way *w, __u32 n, __u64 base, __u32 j, __u32 start)
{
	if (!w || n > KC_FRAMES)
		return 0;
	__u64 *ips = w->ips;
	for (__u32 k = 0; k < KC_SCAN; k++) {
		if (j >= n)
			break;
		__u64 v = kword(base + (__u64)(start + k) * 8);
		if (v == ips[j & (KC_FRAMES - 1)]) {
			w->off[j & (KC_FRAMES - 1)] = (start + k) * 8;
			j++;
		}
	}
	return j == n;
}

/* kc_learn finds the slots of the n frames just walked into e->data and
 * keeps them in w; it leaves w empty when one cannot be found. */
static __always_inline void kc_learn(struct kc_way *w, struct stack_event *e, __u32 n, __u64 base, __u64 stack)
{
	__u64 *ips = e->data;
	__u32 k = 0, first = 0;
	w->n = 0;
	if (n < 3 || n > KC_FRAMES)
		return;
	/* The first slot above the anchor: one of the first frames, which
	 * are tracing code (the rest are below the anchor). */
	for (k = 0; k < 32; k++) {
		__u64 v = kword(base + k * 8);
		for (__u32 t = 1; t <= KC_LEAD; t++) {
			if (t < n && v == ips[t]) {
				first = t;
				break;
			}
		}
		if (first)
			break;
	}
	if (!first)
		return;
	w->off[first & (KC_FRAMES - 1)] = k * 8;
	__builtin_memcpy(w->ips, ips, sizeof(w->ips));
	if (!kc_scan(w, n, base, first + 1, k + 1))
		return;
	/* The outermost frame, the entry code, is checked from the stack's
	 * base: a system call moves everything below it by a random offset. */
	__u64 last = base + w->off[(n - 1) & (KC_FRAMES - 1)] - stack;
	if (last > 0xffff)
		return;
	w->off_last = last;
	w->first = first;
	w->n = n;
}

/* kc_ref is the reference of way wi of set idx, on e's CPU. */
static __always_inline __u32 kc_ref(struct stack_event *e, __u32 idx, __u32 wi)
{
	return (e->cpu << 16) | (idx * KC_WAYS + wi);
}

/* kernel_stack fills e's kernel stack, from the cache when it can (by
 * reference when the cached stack was sent before). nr is the task's
 * system call number; base the anchor; stack the stack's base. */
static __always_inline void kernel_stack(void *ctx, struct stack_event *e, __u32 pid, __s32 nr, __u64 base, __u64 stack)
{
	struct kc_set *set = NULL;
	struct kc_way *hit = NULL;
	__u32 idx = 0, wi = 0;
	/* ARCH_KSTACK_CACHE (arch.h): where the cache's assumptions do not
	 * hold, set stays NULL and every stack is walked. */
	if (ARCH_KSTACK_CACHE && bpf_ksym_exists(bpf_rdonly_cast) && base > stack && stack) {
		__u32 h = ((pid * 0x9e3779b1u) ^ (__u32)nr) * 0x85ebca6bu;
		idx = (h >> 16) % KC_SETS;
		set = bpf_map_lookup_elem(&kcache, &idx);
	}
	if (set) {
		for (int i = 0; i < KC_WAYS; i++) {
			struct kc_way *w = &set->way[i];
			if (w->n && w->pid == pid && w->nr == nr && kc_valid(w, base, stack)) {
				hit = w;
				wi = i;
				break;
			}
		}
	}
	if (hit && !kcache_check) {
		e->kstack_len = 0;
		e->flags |= EVENT_KSTACK_REF;
		e->aux = kc_ref(e, idx, wi);
		count(STAT_KCACHE_HIT);
		return;
	}
	e->kstack_len = get_stack(ctx, e, 0, 0, STAT_KSTACK_ERR);
	if (!set)
		return;
	__u32 n = e->kstack_len / 8;
	if (hit) {
		/* Check mode: compare the cached stack with the walk. */
		bool same = hit->n == n;
		for (int i = 0; i < KC_FRAMES; i++) {
			if (i < n && hit->ips[i] != e->data[i])
				same = false;
		}
		count(same ? STAT_KCACHE_HIT : STAT_KCACHE_WRONG);
		return;
	}
	count(STAT_KCACHE_MISS);
	wi = set->next % KC_WAYS;
	struct kc_way *w = &set->way[wi];
	set->next++;
	w->pid = pid;
	w->nr = nr;
	kc_learn(w, e, n, base, stack);
	if (w->n) {
		e->flags |= EVENT_KSTACK_DEF;
		e->aux = kc_ref(e, idx, wi);
	}
}

/* kc_sent forgets the way e defined when its record did not reach the ring
 * (not ok): no record may name it. */
static __always_inline void kc_sent(struct stack_event *e, bool ok)
{
	if (ok || !ARCH_KSTACK_CACHE || !(e->flags & EVENT_KSTACK_DEF))
		return;
	__u32 idx = (e->aux & 0xffff) / KC_WAYS;
	struct kc_set *set = bpf_map_lookup_elem(&kcache, &idx);
	if (!set)
		return;
	set->way[(e->aux & 0xffff) % KC_WAYS].n = 0;
}

/* Per-CPU word through which an address on the kernel stack becomes a
 * number (see on_switch). */
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, __u64);
} anchors SEC(".maps");

/* rq_clock is the clock of the run queue t is on (updated as __schedule
 * starts), the clock of sched_info's times; 0 when unknown. */
static __always_inline __u64 rq_clock(struct task_struct *t)
{
	struct cfs_rq *cfs = t->se.cfs_rq;
	if (!cfs || !bpf_core_field_exists(cfs->rq))
		return 0;
	struct rq *rq = cfs->rq;
	return rq ? rq->clock : 0;
}

/* arrival is the end of an off-CPU interval, next coming back. It goes
 * out after the stacks of the thread that leaves in the same switch (a
 * RECORD_LEAVE flagged EVENT_ARRIVAL): one record per switch rather than
 * two, in the storm of a thread pair passing the CPU back and forth. Else
 * on its own, as a RECORD_SAMPLE (send_arrival). */
struct arrival {
	__u64 ts;      /* when the thread left the CPU */
	__u64 total;   /* ns off CPU */
	__u64 blocked; /* of those, ns before the wakeup */
	__u32 pid, tid;
	__u32 waker_pid, waker_tid;
	__u32 flags;   /* EVENT_IRQ */
	__u8 comm[TASK_COMM_LEN];
	__u32 pad;
};

/* arrive ends next's off-CPU interval into a; it returns whether the
 * interval passes the filters. */
static __always_inline bool arrive(struct task_struct *next, struct off_start *stp, __u64 now, struct arrival *a)
{
	struct off_start st = *stp;
	stp->ts = 0;
	if (now <= st.ts)
		return false;
	__u64 total = now - st.ts;
	if (total < min_block_ns || total > max_block_ns)
		return false;
	__u64 blocked;
	if (use_run_delay && bpf_core_field_exists(next->sched_info.run_delay)) {
		/* The run-queue wait so far, and since the last enqueue: the
		 * scheduler adds the latter as next arrives, after this hook. */
		__u64 rq = next->sched_info.run_delay - st.run_delay;
		__u64 queued = next->sched_info.last_queued;
		__u64 clock = rq_clock(next);
		if (queued && clock > queued)
			rq += clock - queued;
		blocked = rq < total ? total - rq : 0;
	} else {
		/* No wakeup seen (it happened before the capture, or was
		 * missed): count it all as blocked. */
		blocked = st.wake_ts ? st.wake_ts - st.ts : total;
	}
	a->ts = st.ts;
	a->total = total;
	a->blocked = blocked;
	a->pid = next->tgid;
	a->tid = next->pid;
	a->waker_pid = st.waker_pid;
	a->waker_tid = st.waker_tid;
	a->flags = st.flags;
	a->pad = 0;
	__builtin_memcpy(a->comm, next->comm, sizeof(a->comm));
	return true;
}

/* send_arrival sends an interval's end on its own: the times, no stacks
 * (those went out when the thread left, RECORD_LEAVE). */
static __always_inline void send_arrival(struct arrival *a)
{
	struct stack_event *e = start_event(NULL, a->pid, a->tid, a->flags | EVENT_KERNEL_MODE | (want_blocked_stack ? EVENT_LEFT : 0), a->total, a->ts);
	if (!e)
		return;
	__builtin_memcpy(e->comm, a->comm, sizeof(e->comm));
	e->aux = a->blocked;
	e->peer_pid = a->waker_pid;
	e->peer_tid = a->waker_tid;
	e->kstack_len = e->ustack_len = 0;
	e->copy_len = 0;
	submit(e);
}

/* leave_ref is a RECORD_LEAVE whose kernel and user stacks are both
 * references to stacks sent before: in the storm of a thread pair passing
 * the CPU back and forth, nearly every record. A third of the full
 * record's size (the ring's copy is most of what a record costs), written
 * in place. */
struct leave_ref {
	__u32 kind;  /* RECORD_LEAVE_REF */
	__u32 flags; /* the RECORD_LEAVE's, with EVENT_KSTACK_REF and EVENT_USTACK_REF */
	__u64 ts;
	__u32 pid, tid;
	__u32 cpu;
	__u32 kstack_ref; /* stack_event's aux */
	__u32 ustack_ref;
	__u32 ustack_end;
	__u64 ip;
	__u8 comm[TASK_COMM_LEN];
	/* EVENT_ARRIVAL: the interval next ended (struct arrival's times;
	 * its comm is the one the thread's own RECORD_LEAVE carried). */
	__u64 arrival_ts, arrival_total, arrival_blocked;
	__u32 arrival_pid, arrival_tid, arrival_waker_pid, arrival_waker_tid;
	__u32 arrival_flags, pad;
};

/* send_leave_ref sends e, whose stacks are both references, and a. */
static __always_inline void send_leave_ref(struct stack_event *e, struct arrival *a)
{
	__u64 flags = ring_flags(sizeof(struct leave_ref));
	struct leave_ref *r = bpf_ringbuf_reserve(&events, sizeof(*r), 0);
	if (!r) {
		sent(-1);
		return;
	}
	r->kind = RECORD_LEAVE_REF;
	r->flags = e->flags;
	r->ts = e->ts;
	r->pid = e->pid;
	r->tid = e->tid;
	r->cpu = e->cpu;
	r->kstack_ref = e->aux;
	r->ustack_ref = e->ustack_ref;
	r->ustack_end = e->ustack_end;
	r->ip = e->ip;
	__builtin_memcpy(r->comm, e->comm, sizeof(r->comm));
	r->pad = 0;
	if (a) {
		r->flags |= EVENT_ARRIVAL;
		r->arrival_ts = a->ts;
		r->arrival_total = a->total;
		r->arrival_blocked = a->blocked;
		r->arrival_pid = a->pid;
		r->arrival_tid = a->tid;
		r->arrival_waker_pid = a->waker_pid;
		r->arrival_waker_tid = a->waker_tid;
		r->arrival_flags = a->flags;
	} else {
		r->arrival_ts = r->arrival_total = r->arrival_blocked = 0;
		r->arrival_pid = r->arrival_tid = r->arrival_waker_pid = r->arrival_waker_tid = 0;
		r->arrival_flags = 0;
	}
	bpf_ringbuf_submit(r, flags);
	sent(0);
}

/* leave sends prev's stacks as it goes off CPU: it does not run until it
 * comes back, so they are the stacks it blocked in. a, when not NULL, is
 * the interval that next ends: it rides along after the stacks. */
static __always_inline void leave(void *ctx, struct task_struct *prev, __u32 pid, __u32 tid, __u64 now, __u64 anchor, struct arrival *a)
{
	struct stack_event *e = start_event(prev, pid, tid, EVENT_KERNEL_MODE, 0, now);
	if (!e) {
		if (a)
			send_arrival(a);
		return;
	}
	e->kind = RECORD_LEAVE;
	struct pt_regs *regs = task_user_regs(prev, e);
	__u64 stack = (__u64)prev->stack;
	/* The anchor must be on this task's stack (not on a BPF private
	 * stack, which some kernels give programs with large frames). */
	if (anchor <= stack || anchor >= stack + 65536)
		anchor = 0;
	kernel_stack(ctx, e, pid, REGS_SYSCALL_NR(regs), anchor, stack);
	fill_user_stack(ctx, e);
	if ((e->flags & (EVENT_KSTACK_REF | EVENT_USTACK_REF)) == (EVENT_KSTACK_REF | EVENT_USTACK_REF)) {
		send_leave_ref(e, a);
		return;
	}
	if (!a) {
		kc_sent(e, submit(e) == 0);
		return;
	}
	__u64 n = (__u64)e->kstack_len + e->ustack_len + e->copy_len;
	if (n > sizeof(e->data) - sizeof(*a)) {
		/* A full stack copy leaves no room. */
		kc_sent(e, submit(e) == 0);
		send_arrival(a);
		return;
	}
	barrier_var(n);
	__builtin_memcpy((void *)e->data + n, a, sizeof(*a));
	e->flags |= EVENT_ARRIVAL;
	kc_sent(e, submit_extra(e, sizeof(*a)) == 0);
}

SEC("tp_btf/sched_switch")
int BPF_PROG(on_switch, bool preempt, struct task_struct *prev, struct task_struct *next, unsigned int prev_state)
{
	__u64 now = 0;
	struct arrival arr;
	struct arrival *a = NULL;
	/* next comes back. Threads that never went off CPU in this capture
	 * have no storage: no helper call for them. */
	if (next->bpf_storage) {
		struct off_start *st = bpf_task_storage_get(&starts, next, 0, 0);
		if (st && st->ts) {
			now = bpf_ktime_get_ns();
			if (arrive(next, st, now, &arr))
				a = &arr;
		}
	}

	/* prev leaves. */
	__u32 tid = prev->pid;
	__u32 pid = prev->tgid;
	bool runnable = preempt || (prev_state & 0xff) == 0;
	if (pid == 0 || (prev->flags & PF_KTHREAD) || !wanted(prev, pid, tid) ||
	    (state_filter == OFF_STATE_S && (runnable || !(prev_state & TASK_INTERRUPTIBLE))) ||
	    (state_filter == OFF_STATE_D && (runnable || !(prev_state & TASK_UNINTERRUPTIBLE)))) {
		if (a)
			send_arrival(a);
		return 0;
	}
	if (!now)
		now = bpf_ktime_get_ns();
	struct off_start *slot = bpf_task_storage_get(&starts, prev, 0, BPF_LOCAL_STORAGE_GET_F_CREATE);
	if (!slot) {
		count(STAT_MAP_FULL);
		if (a)
			send_arrival(a);
		return 0;
	}
	slot->ts = now;
	/* A preempted thread waits in the run queue from the start. */
	slot->wake_ts = runnable ? now : 0;
	slot->waker_pid = slot->waker_tid = 0;
	slot->flags = 0;
	if (use_run_delay && bpf_core_field_exists(prev->sched_info.run_delay))
		slot->run_delay = prev->sched_info.run_delay;
	if (!want_blocked_stack) {
		if (a)
			send_arrival(a);
		return 0;
	}
	/* The kernel stack cache's reference point: ctx, the arguments
	 * array of bpf_trace_run4, on the kernel stack at a fixed distance
	 * below __schedule's frame. The map turns the pointer into a number. */
	__u64 anchor = 0;
	__u32 zero = 0;
	volatile __u64 *a0 = bpf_map_lookup_elem(&anchors, &zero);
	if (a0) {
		*a0 = (__u64)ctx;
		anchor = *a0;
	}
	leave(ctx, prev, pid, tid, now, anchor, a);
	return 0;
}

SEC("tp_btf/sched_waking")
int BPF_PROG(on_waking, struct task_struct *p)
{
	/* Threads that never went off CPU in this capture have no storage:
	 * most wakeups end here, without a helper call. */
	if (!p->bpf_storage)
		return 0;
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

	struct task_struct *task = bpf_get_current_task_btf();
	struct stack_event *e = start_event_in(SCRATCH_IRQ, task, irq ? 0 : id >> 32, irq ? 0 : (__u32)id, irq ? EVENT_IRQ : 0, blocked, now);
	if (!e)
		return 0;
	e->kind = RECORD_WAKER;
	e->peer_pid = p->tgid;
	e->peer_tid = tid;
	if (irq) {
		/* The interrupted task's user stack has nothing to do with
		 * this wakeup: kernel stack only. */
		e->kstack_len = get_stack(ctx, e, 0, 0, STAT_KSTACK_ERR);
		e->ustack_len = 0;
		e->copy_len = 0;
		e->ip = e->sp = e->bp = e->lr = 0;
		e->flags |= EVENT_KTHREAD;
	} else {
		e->flags |= EVENT_KERNEL_MODE;
		task_user_regs(task, e);
		fill_stacks(ctx, e, task);
	}
	submit(e);
	return 0;
}

const struct stack_event *unused_stack_event __attribute__((unused));
const enum off_state *unused_off_state __attribute__((unused));
const struct arrival *unused_arrival __attribute__((unused));
const struct leave_ref *unused_leave_ref __attribute__((unused));
