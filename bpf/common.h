/* Shared definitions of scorch's BPF programs: the stack event written to the
 * ring buffer, target filters, counters and the exec hook. */
#ifndef SCORCH_COMMON_H
#define SCORCH_COMMON_H

#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>
#include <bpf/bpf_core_read.h>
#include "arch.h"

#define MAX_STACK 127          /* PERF_MAX_STACK_DEPTH */
#define MAX_COPY 16384         /* largest user stack copy (--unwind dwarf) */
#define UNWIND_MAX_MAPS 256    /* executable mappings of a process the BPF unwinder knows */
#define FC_SLOTS 2048          /* the unwinder's frame cache slots per CPU (unwinder.h) */
#define TASK_COMM_LEN 16
#define PF_KTHREAD 0x00200000
/* Up to FILTER_LIST pids or tids that stay the same for the whole capture:
 * compared in the programs rather than looked up in the maps, on every
 * event. */
#define FILTER_LIST 8

/* Sizes user space needs too (bpf2go generates this enum). */
enum limit {
	LIMIT_MAX_STACK = MAX_STACK,
	LIMIT_FILTER_LIST = FILTER_LIST,
	LIMIT_COMM = TASK_COMM_LEN,
	LIMIT_UNWIND_MAPS = UNWIND_MAX_MAPS,
	LIMIT_FC_SLOTS = FC_SLOTS,
};

/* Ring-buffer record kinds. What the shared fields of a stack_event mean
 * depends on the kind and the program (see struct stack_event). */
enum record_kind {
	RECORD_SAMPLE = 1, /* a stack event */
	RECORD_EXEC = 2,   /* a process called exec: snapshot it now */
	RECORD_WAKER = 3,  /* a waker's stacks; peer_tid is the wakee */
	RECORD_LEAVE = 4,  /* off-CPU: a thread's stacks as it leaves the CPU */
	RECORD_LEAVE_REF = 5, /* off-CPU: a RECORD_LEAVE whose stacks are both references (offcpu.c's struct leave_ref) */
};

/* Event flags. */
enum event_flag {
	EVENT_KERNEL_MODE = 1, /* interrupted in kernel mode */
	EVENT_KTHREAD = 2,     /* a kernel thread: no user stack */
	EVENT_IRQ = 4,         /* ran in interrupt context */
	EVENT_LEFT = 8,        /* off-CPU: the stacks came in a RECORD_LEAVE */
	EVENT_UNMAPPED_PC = 16, /* the user stack walk met a pc outside the process's known mappings */
	EVENT_ARRIVAL = 32,     /* off-CPU: a struct arrival follows the stacks (offcpu.c) */
	EVENT_USTACK_DEF = 64,  /* user space keeps this user stack as ustack_ref */
	EVENT_USTACK_REF = 128, /* the user stack is the one kept as ustack_ref: not sent again */
	EVENT_KSTACK_DEF = 256, /* off-CPU: user space keeps this kernel stack as the reference in aux */
	EVENT_KSTACK_REF = 512, /* off-CPU: the kernel stack is the one kept as the reference in aux: not sent again */
};

/* Counters, one slot each in the per-CPU stats array. */
enum stat_slot {
	STAT_SEEN = 0,     /* events that passed the filters */
	STAT_DROPPED,      /* ring buffer full */
	STAT_KSTACK_ERR,   /* bpf_get_stack failed for the kernel stack */
	STAT_USTACK_ERR,   /* bpf_get_stack failed for the user stack */
	STAT_COPY_ERR,     /* the user stack copy could not be read */
	STAT_EXEC_DROPPED, /* exec notifications lost */
	STAT_MAP_FULL,     /* a map was full */
	STAT_KCACHE_HIT,   /* off-CPU: kernel stacks taken from the cache */
	STAT_KCACHE_MISS,  /* off-CPU: kernel stacks walked */
	STAT_KCACHE_WRONG, /* off-CPU, check mode: a cached stack that differed from the walk */
	STAT_UCACHE_HIT,   /* user stacks sent as a reference */
	STAT_UCACHE_MISS,  /* user stacks walked with the cache on */
	STAT_UCACHE_WRONG, /* check mode: a cached user stack that differed from the walk */
	STAT_MAX,
};

/* Target filter modes. */
enum target_mode {
	TARGET_ALL = 0,
	TARGET_PID = 1,  /* thread group ids in filter_pids */
	TARGET_TID = 2,  /* thread ids in filter_tids */
	TARGET_COMM = 3, /* the process name filter_comm */
};

/* stack_event is one record: a header, then in data the kernel stack
 * (kstack_len bytes, leaf first), the user stack (ustack_len bytes) and a copy
 * of the top of the user stack (copy_len bytes), packed, so that only what
 * was filled is sent. */
struct stack_event {
	__u32 kind;
	__u32 flags;
	__u64 ts;       /* bpf_ktime_get_ns: CLOCK_MONOTONIC */
	__u32 pid;      /* thread group id */
	__u32 tid;
	__u32 cpu;
	__u32 kstack_len; /* bytes */
	__u32 ustack_len;
	__u32 copy_len;   /* bytes of the user stack copied from sp */
	/* value: the sample's weight: 1 or the event's period; off-CPU: ns
	 * off CPU; waker records: ns blocked so far; mem: bytes. */
	__u64 value;
	/* aux: off-CPU: ns blocked before the wakeup (RECORD_SAMPLE), the
	 * kernel stack cache's reference (RECORD_LEAVE, EVENT_KSTACK_DEF or
	 * EVENT_KSTACK_REF); mem: the address allocated (0 for syscalls);
	 * cpi: instructions retired. */
	__u64 aux;
	/* peer_pid, peer_tid: off-CPU: the waker; waker records: the wakee;
	 * mem: peer_pid is the allocating function (enum alloc_fn). */
	__u32 peer_pid;
	__u32 peer_tid;
	/* ustack_end: enum unwind_end, why the user stack walked in BPF ended
	 * (UNWIND_NOT_WALKED: it was not; the copy is for user space). */
	__u32 ustack_end;
	/* ustack_ref: EVENT_USTACK_DEF, EVENT_USTACK_REF: the user stack
	 * cache's id of this user stack (see fill_user_stack). */
	__u32 ustack_ref;
	/* User registers (arch.h): pc, stack pointer, frame pointer (rbp,
	 * x29) and the link register (arm64's x30, the return address while
	 * a function has not saved it; 0 on x86-64). */
	__u64 ip, sp, bp, lr;
	__u8 comm[TASK_COMM_LEN];
	__u64 data[2 * MAX_STACK + MAX_COPY / 8];
};

/* exec_event asks user space to snapshot a process that just called exec. */
struct exec_event {
	__u32 kind;
	__u32 pid;
	__u64 ts;
	__u8 comm[TASK_COMM_LEN];
};

const volatile __u32 filter_mode = TARGET_ALL; /* enum target_mode */
const volatile __u8 filter_comm[TASK_COMM_LEN] = {};
const volatile __u32 copy_bytes = 0;   /* user stack bytes to copy; 0: none (fp mode) */
const volatile __u32 self_tgid = 0;    /* scorch itself */
const volatile bool follow_forks = false;
const volatile __u32 filter_list_len = 0;
const volatile __u32 filter_list[FILTER_LIST] = {};
/* Wake the reader only when this much data waits: per-event wakeups would
 * cost a context switch each; the reader also polls on a timer. */
const volatile __u64 wakeup_bytes = 1 << 20;

struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, 8 << 20); /* resized from user space */
} events SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 4096);
	__type(key, __u32);
	__type(value, __u8);
} filter_pids SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 4096);
	__type(key, __u32);
	__type(value, __u8);
} filter_tids SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, STAT_MAX);
	__type(key, __u32);
	__type(value, __u64);
} stats SEC(".maps");

/* Per-CPU event buffers: slot 0 for programs that run in task context,
 * SCRATCH_IRQ for those that can interrupt them on the same CPU (a wakeup
 * from an interrupt that arrives while a task-context program runs), so
 * that one never overwrites the event the other is filling. */
#define SCRATCH_IRQ 1
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 2);
	__type(key, __u32);
	__type(value, struct stack_event);
} scratch SEC(".maps");

static __always_inline void count(__u32 slot)
{
	__u64 *v = bpf_map_lookup_elem(&stats, &slot);
	if (v)
		*v += 1;
}

static __always_inline bool comm_matches(struct task_struct *task)
{
	/* The process name is the group leader's comm. Direct loads through
	 * the BTF pointer: no helper call on the path every switch takes. */
	struct task_struct *leader = task->group_leader;
	if (!leader)
		return false;
	for (int i = 0; i < TASK_COMM_LEN; i++) {
		char c = leader->comm[i];
		if (c != filter_comm[i])
			return false;
		if (c == 0)
			return true;
	}
	return true;
}

static __always_inline bool in_filter_list(__u32 id)
{
	for (int i = 0; i < FILTER_LIST; i++) {
		if (i >= filter_list_len)
			return false;
		if (filter_list[i] == id)
			return true;
	}
	return false;
}

/* wanted applies the target filter to a task. */
static __always_inline bool wanted(struct task_struct *task, __u32 pid, __u32 tid)
{
	if (self_tgid && pid == self_tgid)
		return false;
	switch (filter_mode) {
	case TARGET_PID:
		if (filter_list_len)
			return in_filter_list(pid);
		return bpf_map_lookup_elem(&filter_pids, &pid) != NULL;
	case TARGET_TID:
		if (filter_list_len)
			return in_filter_list(tid);
		return bpf_map_lookup_elem(&filter_tids, &tid) != NULL;
	case TARGET_COMM:
		return comm_matches(task);
	}
	return true;
}

static __always_inline struct stack_event *new_event(__u32 slot)
{
	return bpf_map_lookup_elem(&scratch, &slot);
}

#define STACK_BYTES (MAX_STACK * 8)

#include "unwinder.h"

/* User stack cache.
 *
 * A thread that blocks (or faults) again where it did before has the same
 * user stack: the same pc, stack pointer and frame pointer, and the same
 * return addresses in the same slots above the stack pointer. The walk
 * reads those slots and nothing that could differ with the same values
 * in them (the rules come from the pcs), so the first walk of a stack also
 * finds each return address's slot (in one window read from sp), and a
 * later event of the same thread with the same registers reuses the stack
 * when every one of those slots still holds its return address: one read
 * of the window instead of a walk. The record then carries a reference
 * (EVENT_USTACK_REF, ustack_ref) instead of the stack, which user space
 * sent with EVENT_USTACK_DEF before: a way's reference is valid only once
 * the record that defined it reached the ring (submit_extra), and the ring
 * delivers a CPU's records in order. ucache_check walks every stack anyway
 * and counts the cached ones that differ (STAT_UCACHE_WRONG), for tests.
 *
 * Per CPU, as the kernel stack cache (offcpu.c): UC_SETS sets of UC_WAYS
 * stacks, replaced round robin. On only where stacks repeat (off-CPU,
 * page faults): a CPU sample rarely has the stack pointer of another. */
#define UC_FRAMES 32              /* deeper user stacks are walked every time */
#define UC_WAYS 4
#define UC_SETS 32
#define UC_WINDOW 4096            /* bytes above sp the return addresses must be in */
#define UC_LR 0xffff              /* arm64: the frame's pc is the link register (in the key) */
#define UC_WIN_OFF (2 * STACK_BYTES) /* the window's room in data: the stack copy's */
#define UC_VALID 1
#define UC_UNCACHEABLE 2 /* a stack whose slots were not found: not searched again */

const volatile bool ucache_enabled = false;
const volatile bool ucache_check = false;

struct uc_way {
	__u64 ip, sp, bp, lr; /* the key, with pid and tid */
	__u32 pid, tid;
	__u32 n;     /* frames; 0: empty */
	__u32 valid; /* UC_VALID: the record that defined it reached the ring; UC_UNCACHEABLE: walked every time */
	__u32 end;   /* the walk's ustack_end */
	__u32 flags; /* the walk's EVENT_UNMAPPED_PC */
	__u32 win;   /* bytes above sp that hold the slots */
	__u32 pad;
	__u16 off[UC_FRAMES]; /* slot of frame i >= 1: bytes above sp */
	__u64 ips[UC_FRAMES];
};

struct uc_set {
	__u32 next; /* the way to replace next */
	__u32 pad;
	struct uc_way way[UC_WAYS];
};

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, UC_SETS);
	__type(key, __u32);
	__type(value, struct uc_set);
} ucache SEC(".maps");

/* uc_read reads n bytes of the user stack from sp into the window's room. */
static __always_inline long uc_read(struct stack_event *e, __u64 n)
{
	if (n > UC_WINDOW)
		n = UC_WINDOW;
	if (n < 8)
		n = 8;
	barrier_var(n);
	return bpf_probe_read_user((void *)e->data + UC_WIN_OFF, n, (void *)e->sp);
}

/* uc_valid reports whether every slot of way w still holds its return
 * address. A global function: verified once, not once per way and path. */
__noinline int uc_valid(struct uc_way *w, struct stack_event *e)
{
	if (!w || !e)
		return 0;
	__u32 n = w->n;
	if (n < 1 || n > UC_FRAMES)
		return 0;
	if (n == 1)
		return 1;
	if (uc_read(e, w->win))
		return 0;
	for (__u32 i = 1; i < UC_FRAMES; i++) {
		if (i >= n)
			break;
		__u16 off = w->off[i];
		if (off == UC_LR)
			continue;
		if (STRIP_RA(e->data[UC_WIN_OFF / 8 + ((off / 8) & (UC_WINDOW / 8 - 1))]) != w->ips[i])
			return 0;
	}
	return 1;
}

/* uc_same reports whether way w holds the user stack just walked into e
 * at byte offset off (check mode). */
__noinline int uc_same(struct uc_way *w, struct stack_event *e, __u32 off)
{
	if (!w || !e || off > STACK_BYTES)
		return 0;
	__u32 n = e->ustack_len / 8;
	if (w->n != n || w->end != e->ustack_end)
		return 0;
	for (__u32 j = 0; j < UC_FRAMES; j++) {
		__u32 k = off / 8 + j;
		if (j < n && w->ips[j] != e->data[k & 511])
			return 0;
	}
	return 1;
}

/* The state of uc_scan's search: bpf_loop's context. */
struct uc_scan_ctx {
	struct uc_way *w;
	struct stack_event *e;
	__u32 j, n, last, words;
};

/* uc_scan_step looks at window word i for the slot of frame j. */
static long uc_scan_step(__u64 i, struct uc_scan_ctx *c)
{
	__u32 j = c->j;
	if (j >= c->n || i >= c->words || j >= UC_FRAMES)
		return 1;
	struct uc_way *w = c->w;
	__u64 v = c->e->data[UC_WIN_OFF / 8 + (i & (UC_WINDOW / 8 - 1))];
	if (STRIP_RA(v) == w->ips[j & (UC_FRAMES - 1)]) {
		w->off[j & (UC_FRAMES - 1)] = i * 8;
		c->last = i;
		c->j = j + 1;
	}
	return 0;
}

/* uc_scan finds the slots of frames 1..n-1 of w->ips, in that order, in
 * the first words of the window (a bpf_loop: verified once). */
static __always_inline bool uc_scan(struct uc_way *w, struct stack_event *e, __u32 n, __u32 words)
{
	struct uc_scan_ctx c = {.w = w, .e = e, .j = 1, .n = n, .words = words};
	if (n > 1 && w->lr && w->ips[1] == STRIP_RA(w->lr)) {
		w->off[1] = UC_LR;
		c.j = 2;
	}
	bpf_loop(UC_WINDOW / 8, uc_scan_step, &c, 0);
	if (c.j < n)
		return false;
	w->win = (c.last + 1) * 8;
	return true;
}

/* uc_learn keeps the user stack just walked into e in a way of set idx,
 * to be confirmed when its record is sent. */
static __always_inline void uc_learn(struct uc_set *set, __u32 idx, struct stack_event *e, __u64 off)
{
	__u32 n = e->ustack_len / 8;
	/* A read fault may not happen again (a page not resident yet); a
	 * copy is for user space to unwind. */
	if (n < 1 || n > UC_FRAMES || e->copy_len || e->ustack_end == UNWIND_END_READ || e->ustack_end == UNWIND_END_DEPTH)
		return;
	if (e->ustack_end == UNWIND_NOT_WALKED && copy_bytes)
		return;
	__u32 wi = set->next % UC_WAYS;
	set->next++;
	struct uc_way *w = &set->way[wi];
	w->valid = 0;
	w->n = 0;
	w->ip = e->ip;
	w->sp = e->sp;
	w->bp = e->bp;
	w->lr = e->lr;
	w->pid = e->pid;
	w->tid = e->tid;
	w->end = e->ustack_end;
	w->flags = e->flags & EVENT_UNMAPPED_PC;
	w->win = 0;
	for (__u32 j = 0; j < UC_FRAMES; j++) {
		__u64 k = off / 8 + j;
		w->ips[j] = j < n && k < DATA_SLOTS ? e->data[k & 511] : 0;
	}
	if (n > 1) {
		/* The window, halved where it would cross the stack's end. */
		__u32 words = UC_WINDOW / 8;
		for (int i = 0; i < 4; i++) {
			if (uc_read(e, words * 8) == 0)
				break;
			words >>= 1;
		}
		if (words < UC_WINDOW / 64 || !uc_scan(w, e, n, words)) {
			/* Slots outside the window (a long frame-pointer chain
			 * of garbage, a deep stack): the next events with these
			 * registers are walked without searching again. */
			w->valid = UC_UNCACHEABLE;
			return;
		}
	}
	w->n = n;
	e->flags |= EVENT_USTACK_DEF;
	e->ustack_ref = (e->cpu << 16) | (idx * UC_WAYS + wi);
}

/* uc_sent makes the way e defined valid once its record is in the ring. */
static __always_inline void uc_sent(struct stack_event *e, bool ok)
{
	__u32 idx = (e->ustack_ref & 0xffff) / UC_WAYS;
	struct uc_set *set = bpf_map_lookup_elem(&ucache, &idx);
	if (!set)
		return;
	struct uc_way *w = &set->way[(e->ustack_ref & 0xffff) % UC_WAYS];
	if (ok)
		w->valid = UC_VALID;
	else
		w->n = 0;
}

/* Lengths are computed in 64 bits and passed through barrier_var (libbpf)
 * after their bounds checks, so the verifier sees the checked register. */

/* get_stack walks a stack into data at byte offset off and returns the bytes
 * written (0 on error, counted unless there is no stack of that kind). */
static __always_inline __u32 get_stack(void *ctx, struct stack_event *e, __u64 off, __u64 flags, __u32 err_slot)
{
	if (off > STACK_BYTES)
		return 0;
	barrier_var(off);
	long n = bpf_get_stack(ctx, (void *)e->data + off, STACK_BYTES, flags);
	if (n < 0) {
		if (n != -14 /* EFAULT: no stack of this kind */)
			count(err_slot);
		return 0;
	}
	if (n > STACK_BYTES)
		n = STACK_BYTES;
	return n & ~7;
}

/* copy_user_stack copies up to n bytes from the user sp to data at byte
 * offset off. A read that crosses the end of the stack mapping fails: then
 * the copy ends a page boundary lower, down to the end of sp's page (the top
 * of a main thread's stack is a few KiB above its outermost frame: halving
 * an 8 KiB copy there lost a 4 KiB frame's callers). */
static __always_inline void copy_user_stack(struct stack_event *e, __u64 off, __u64 n)
{
	e->copy_len = 0;
	if (n == 0 || e->sp == 0 || off > 2 * STACK_BYTES)
		return;
	barrier_var(off);
	__u64 sp = e->sp;
	for (int i = 0; i < 6; i++) {
		if (n > MAX_COPY)
			n = MAX_COPY;
		if (n < 8)
			break;
		barrier_var(n);
		if (bpf_probe_read_user((void *)e->data + off, n, (void *)sp) == 0) {
			e->copy_len = n;
			return;
		}
		__u64 end = (sp + n - 1) & ~4095ULL;
		if (end <= sp)
			break;
		n = end - sp;
	}
	count(STAT_COPY_ERR);
}

/* walk_or_copy records the user stack (after the kernel stack, already
 * in data, off bytes). A process whose unwind tables are loaded is walked
 * here, with no stack copy. Otherwise: a frame-pointer walk and a copy of
 * the top of the stack for user space's CFI. A frame-pointer walk from a
 * bp that cannot be a frame pointer (below sp, or far above it: code built
 * without frame pointers leaves any value there) yields the pc alone, or
 * garbage, and costs the kernel a page fault more often than not: then the
 * pc is the whole walk, and user space unwinds the copy with CFI. */
static __always_inline void walk_or_copy(void *ctx, struct stack_event *e, __u64 off)
{
	if (off > STACK_BYTES)
		return;
	barrier_var(off);
	__u64 copy = copy_bytes;
	if (unwind_enabled && e->ip) {
		__u32 pid = e->pid;
		struct unwind_proc *p = bpf_map_lookup_elem(&unwind_procs, &pid);
		if (p) {
			if (!(p->flags & (UNWIND_PROC_PENDING | UNWIND_PROC_NO_TABLES))) {
				walk_user_stack(e, p);
				return;
			}
			__u64 seen = ((__u64)p->n << 32) | p->first;
			if ((p->flags & UNWIND_PROC_PENDING) && copy && e->ts - seen < PENDING_WINDOW_NS)
				copy = PENDING_COPY;
		} else {
			/* First sight: pending until user space, which reads
			 * the ring later, loads the tables or gives up; first
			 * and n hold when. */
			struct unwind_proc pending = {
				.first = (__u32)e->ts, .n = (__u32)(e->ts >> 32), .flags = UNWIND_PROC_PENDING,
			};
			bpf_map_update_elem(&unwind_procs, &pid, &pending, BPF_NOEXIST);
			if (copy)
				copy = PENDING_COPY;
		}
	}
	if (e->bp >= e->sp && e->bp - e->sp < (1ULL << 28)) {
		e->ustack_len = get_stack(ctx, e, off, BPF_F_USER_STACK, STAT_USTACK_ERR);
	} else if (e->ip) {
		e->data[off / 8] = e->ip;
		e->ustack_len = 8;
	}
	copy_user_stack(e, off + e->ustack_len, copy);
}

static __always_inline bool uc_key_matches(struct uc_way *w, struct stack_event *e)
{
	return w->tid == e->tid && w->pid == e->pid && w->ip == e->ip && w->sp == e->sp && w->bp == e->bp && w->lr == e->lr;
}

/* fill_user_stack records the user stack after the kernel stack: a
 * reference to one sent before when the cache has it, else as
 * walk_or_copy finds it. */
static __always_inline void fill_user_stack(void *ctx, struct stack_event *e)
{
	__u64 off = e->kstack_len;
	e->ustack_len = 0;
	e->copy_len = 0;
	e->ustack_end = UNWIND_NOT_WALKED;
	e->ustack_ref = 0;
	if (off > STACK_BYTES)
		return;
	struct uc_set *set = NULL;
	struct uc_way *hit = NULL;
	__u32 idx = 0, wi = 0;
	bool skip = false;
	if (ucache_enabled && e->ip && e->sp) {
		__u64 h = (e->tid * 0x9e3779b97f4a7c15ULL) ^ e->ip ^ (e->sp * 0xff51afd7ed558ccdULL);
		idx = (__u32)(h >> 40) % UC_SETS;
		set = bpf_map_lookup_elem(&ucache, &idx);
	}
	if (set) {
		for (int i = 0; i < UC_WAYS; i++) {
			struct uc_way *w = &set->way[i];
			if (!w->valid || !uc_key_matches(w, e))
				continue;
			if (w->valid == UC_UNCACHEABLE) {
				skip = true;
				break;
			}
			if (w->n && uc_valid(w, e)) {
				hit = w;
				wi = i;
				break;
			}
		}
	}
	if (hit && !ucache_check) {
		e->ustack_end = hit->end;
		e->flags |= EVENT_USTACK_REF | hit->flags;
		e->ustack_ref = (e->cpu << 16) | (idx * UC_WAYS + wi);
		count(STAT_UCACHE_HIT);
		return;
	}
	walk_or_copy(ctx, e, off);
	if (!set)
		return;
	if (hit) {
		/* Check mode: compare the cached stack with the walk. */
		bool same = uc_same(hit, e, off);
		count(same ? STAT_UCACHE_HIT : STAT_UCACHE_WRONG);
		return;
	}
	count(STAT_UCACHE_MISS);
	if (!skip)
		uc_learn(set, idx, e, off);
}

/* fill_stacks records the current task's kernel and user stacks and the
 * stack copy. ctx is the program's context; e->ip, sp and bp hold the user
 * registers (0 when unknown). */
static __always_inline void fill_stacks(void *ctx, struct stack_event *e, struct task_struct *task)
{
	/* A sample that interrupted user mode has no kernel stack (the
	 * kernel's walk would return none): no call for it. */
	e->kstack_len = (e->flags & EVENT_KERNEL_MODE) ? get_stack(ctx, e, 0, 0, STAT_KSTACK_ERR) : 0;
	e->ustack_len = 0;
	e->copy_len = 0;
	if (task->flags & PF_KTHREAD) {
		e->flags |= EVENT_KTHREAD;
		e->ip = e->sp = e->bp = e->lr = 0;
		return;
	}
	fill_user_stack(ctx, e);
}

/* ring_flags are the submit flags of a record of size bytes. The reader
 * is woken each time the unread data crosses a multiple of wakeup_bytes,
 * not for every event once past it: a wakeup is an interrupt (a trap to
 * the hypervisor in a VM), and the reader takes a while to come and drain.
 * Two CPUs may both miss a crossing; the next one, or the reader's timer,
 * covers it. */
static __always_inline __u64 ring_flags(__u64 size)
{
	__u64 avail = bpf_ringbuf_query(&events, BPF_RB_AVAIL_DATA);
	if (wakeup_bytes && (avail + size) / wakeup_bytes != avail / wakeup_bytes)
		return BPF_RB_FORCE_WAKEUP;
	return BPF_RB_NO_WAKEUP;
}

/* sent counts a record sent (err 0) or dropped. */
static __always_inline void sent(long err)
{
	count(err == 0 ? STAT_SEEN : STAT_DROPPED);
}

/* submit_extra sends the header, the filled part of data and extra bytes
 * the caller wrote after it; it returns bpf_ringbuf_output's error. */
static __always_inline long submit_extra(struct stack_event *e, __u64 extra)
{
	__u64 size = __builtin_offsetof(struct stack_event, data);
	__u64 n = (__u64)e->kstack_len + e->ustack_len + e->copy_len + extra;
	if (n > sizeof(e->data))
		n = sizeof(e->data);
	barrier_var(n);
	size += n;
	long err = bpf_ringbuf_output(&events, e, size, ring_flags(size));
	if (e->flags & EVENT_USTACK_DEF)
		uc_sent(e, err == 0);
	sent(err);
	return err;
}

/* submit sends the header and the filled part of data. */
static __always_inline long submit(struct stack_event *e)
{
	return submit_extra(e, 0);
}

/* task_user_regs reads the user registers a task saved at kernel entry into
 * e and returns them (for REGS_SYSCALL_NR, the system call number). */
static __always_inline struct pt_regs *task_user_regs(struct task_struct *task, struct stack_event *e)
{
	struct pt_regs *regs = (struct pt_regs *)bpf_task_pt_regs(task);
	e->ip = REGS_IP(regs);
	e->sp = REGS_SP(regs);
	e->bp = REGS_FP(regs);
	e->lr = REGS_LR(regs);
	return regs;
}

/* wanted_current applies the target filter to the running task; the idle
 * task (pid 0) only in whole-host captures. */
static __always_inline bool wanted_current(struct task_struct *task, __u32 pid, __u32 tid)
{
	if (pid == 0)
		return filter_mode == TARGET_ALL;
	return wanted(task, pid, tid);
}

/* start_event_in takes a per-CPU scratch event and fills its header for the
 * running task, stamped ts; the caller adds the registers and the stacks.
 * The name is task's (the running one), read with two loads through the
 * BTF pointer rather than bpf_get_current_comm's call and string copy on
 * every event; NULL leaves it to the caller. */
static __always_inline struct stack_event *start_event_in(__u32 slot, struct task_struct *task, __u32 pid, __u32 tid, __u32 flags, __u64 value, __u64 ts)
{
	struct stack_event *e = new_event(slot);
	if (!e)
		return NULL;
	e->kind = RECORD_SAMPLE;
	e->flags = flags;
	e->ts = ts;
	e->pid = pid;
	e->tid = tid;
	e->cpu = bpf_get_smp_processor_id();
	e->value = value;
	e->aux = 0;
	e->peer_pid = e->peer_tid = 0;
	e->ustack_end = 0;
	e->ip = e->sp = e->bp = e->lr = 0;
	if (task)
		__builtin_memcpy(e->comm, task->comm, sizeof(e->comm));
	return e;
}

static __always_inline struct stack_event *start_event(struct task_struct *task, __u32 pid, __u32 tid, __u32 flags, __u64 value, __u64 ts)
{
	return start_event_in(0, task, pid, tid, flags, value, ts);
}

/* sample_regs records the user registers of a perf_event sample: the
 * interrupted ones when it hit user mode, otherwise those saved at the last
 * kernel entry, told apart by the pc (the context allows only
 * whole-register reads, so neither x86's cs nor arm64's pstate is used). */
static __always_inline void sample_regs(struct bpf_perf_event_data *ctx, struct stack_event *e, struct task_struct *task)
{
	/* Read before the branch, so that the compiler cannot merge these
	 * loads with task_user_regs' (the verifier refuses a ctx pointer moved
	 * to another field). */
	__u64 ip = REGS_IP(&ctx->regs), sp = REGS_SP(&ctx->regs), bp = REGS_FP(&ctx->regs), lr = REGS_LR(&ctx->regs);
	barrier_var(ip);
	if (ip && !IS_KERNEL_ADDR(ip)) {
		e->ip = ip;
		e->sp = sp;
		e->bp = bp;
		e->lr = lr;
		return;
	}
	e->flags |= EVENT_KERNEL_MODE;
	if (e->pid != 0)
		task_user_regs(task, e);
}

/* notify_exec asks user space to snapshot a process right after its exec. */
static __always_inline void notify_exec(struct task_struct *task)
{
	__u32 pid = BPF_CORE_READ(task, tgid);
	__u32 tid = BPF_CORE_READ(task, pid);
	/* The image changed: its unwind tables are stale until user space
	 * loads the new ones (samples take the copy path meanwhile). */
	if (unwind_enabled)
		bpf_map_delete_elem(&unwind_procs, &pid);
	if (!wanted(task, pid, tid))
		return;
	struct exec_event *x = bpf_ringbuf_reserve(&events, sizeof(*x), 0);
	if (!x) {
		count(STAT_EXEC_DROPPED);
		return;
	}
	x->kind = RECORD_EXEC;
	x->pid = pid;
	x->ts = bpf_ktime_get_ns();
	bpf_get_current_comm(&x->comm, sizeof(x->comm));
	/* Wake the reader at once: the process may not live long. */
	bpf_ringbuf_submit(x, BPF_RB_FORCE_WAKEUP);
}

/* The exec hook of every object: new processes are snapshot when they
 * exec, before they can exit. */
SEC("tp_btf/sched_process_exec")
int BPF_PROG(on_exec, struct task_struct *p, pid_t old_pid, struct linux_binprm *bprm)
{
	notify_exec(p);
	return 0;
}

#endif
