/* The user stack unwinder: walks a sampled thread's user stack in the
 * kernel with the compact unwind tables user space built from each mapped
 * file's .eh_frame/.debug_frame (unwind/compact.go: sorted {pc, rule}
 * entries over deduplicated rules), frame pointers where no table covers a
 * pc (JIT code, trampolines, files without CFI). No stack copy: only the
 * return addresses and saved frame pointers are read. Included by common.h.
 *
 * The maps are created once by user space (profiler/unwindtables.go) and
 * shared by every loaded object; the sizes here are placeholders that user
 * space replaces. */
#ifndef SCORCH_UNWINDER_H
#define SCORCH_UNWINDER_H

#define UNWIND_MAP_STEPS 9     /* binary search over UNWIND_MAX_MAPS */
#define UNWIND_SEARCH_STEPS 25 /* binary search over up to 32M entries */

/* Why a user stack walked in BPF ended (the record's ustack_end). */
enum unwind_end {
	UNWIND_NOT_WALKED = 0,  /* not walked here: frame pointers and a stack copy for user space */
	UNWIND_END_OK,          /* the outermost frame (return address undefined or zero) */
	UNWIND_END_DEPTH,       /* MAX_STACK frames */
	UNWIND_END_READ,        /* reading the stack failed (unmapped, or not resident) */
	UNWIND_END_NO_PROGRESS, /* the stack pointer did not grow */
	UNWIND_END_UNSUPPORTED, /* a CFI rule the walker does not evaluate */
	UNWIND_END_LOST_FP,     /* the rule needs a frame pointer that could not be recovered */
	UNWIND_END_NO_FP,       /* no table for the pc and no plausible frame pointer */
	UNWIND_END_LOST_LR,     /* arm64: the link register is needed past the first frame */
};

/* CFA rules, as unwind.CFARule. */
enum unwind_cfa {
	CFA_NONE = 0,
	CFA_SP,
	CFA_FP,
	CFA_PLT,
	CFA_SIGNAL,
	CFA_UNSUPPORTED,
	CFA_FP_SWITCH, /* CFA_FP after a switch of stacks (Go's systemstack): the CFA may be below sp */
};

/* unwind.RARule, unwind.FPRule. */
#define RA_AT_CFA 0
#define RA_IN_LINK 1
#define RA_UNDEFINED 2
#define FP_AT_CFA 1

/* unwind.Entry: from pc (an offset from the file's Base) to the next
 * entry's pc, rule (an index into the file's rules) applies. */
struct unwind_entry {
	__u32 pc;
	__u32 rule;
};

/* unwind.Rule. */
struct unwind_rule {
	__u8 cfa, ra, fp, pad;
	__s32 cfa_off, ra_off, fp_off;
};

/* One executable mapping of a process. A pc in [start, end) is at table
 * offset pc - bias; the file's entries are unwind_entries[first_entry,
 * first_entry + entry_count), its rules start at first_rule and its page
 * index at first_page (page_count slots of 1 << page_shift bytes of its
 * text). entry_count 0: no table (walk frame pointers). */
struct unwind_mapping {
	__u64 start, end, bias;
	__u32 first_entry, entry_count;
	__u32 first_rule;
	__u32 first_page, page_count;
	__u32 page_shift;
};

/* A process: its executable mappings are unwind_maps[first, first + n),
 * sorted by start. flags (profiler/unwindtables.go mirrors them):
 * UNWIND_PROC_PENDING: its tables are not loaded yet (the walker adds the
 * entry at the process's first sample, its time in first and n): its
 * samples take the copy path, for PENDING_WINDOW_NS with PENDING_COPY
 * bytes, enough for user space to unwind them later from the copy (a 4 KiB
 * frame, CPython's trampolines) rather than cut them at the usual 1 KiB.
 * UNWIND_PROC_NO_TABLES: user space could not load them: the usual copy. */
struct unwind_proc {
	__u32 first;
	__u32 n;
	__u32 flags;
	/* gen: which write of the entry this is (user space numbers them,
	 * never 0 for a loaded one): the frame cache's results of a process
	 * hold only under the mappings they were found with. */
	__u32 gen;
};
#define UNWIND_PROC_PENDING 1
#define UNWIND_PROC_NO_TABLES 2
#define PENDING_COPY 8192
/* The larger copy is taken for this long after a process's first sample:
 * on a loaded host tables may take seconds (CI, with other packages'
 * tests beside: a quarter of a whole host's samples pending, 10% of a 4 KiB
 * frame's stacks cut after a 1 s window), and a whole host's pending
 * processes copying 8 KiB a sample filled the ring (6 KB an event). */
#define PENDING_WINDOW_NS 3000000000ULL

/* A page slot: the entries of a page of a file's text start at index first
 * (relative to the file's first entry) and the search needs at most n of
 * them (the last entry at or below the page's start included). n 0: one
 * entry covers the whole page, and first is its rule (relative to the
 * file's first rule; 0: no CFI there), so no entry is read. User space
 * sizes each file's pages to a few entries each: every step of a search
 * is a likely cache miss in a table of megabytes. */
struct unwind_page {
	__u32 first, n;
};

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__uint(map_flags, BPF_F_MMAPABLE);
	__type(key, __u32);
	__type(value, struct unwind_entry);
} unwind_entries SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__uint(map_flags, BPF_F_MMAPABLE);
	__type(key, __u32);
	__type(value, struct unwind_rule);
} unwind_rules SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__uint(map_flags, BPF_F_MMAPABLE);
	__type(key, __u32);
	__type(value, struct unwind_page);
} unwind_pages SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__uint(map_flags, BPF_F_MMAPABLE);
	__type(key, __u32);
	__type(value, struct unwind_mapping);
} unwind_maps SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct unwind_proc);
} unwind_procs SEC(".maps");

/* The frame cache: per CPU, the last results of the per-frame lookups
 * (the pc's mapping and rule), by the process entry's gen, the pc and
 * whether it is exact. A lookup reads a mapping, a page slot, two or three
 * entries and a rule, each a likely cache and TLB miss in megabytes of
 * tables (a cold frame cost ~100 ns more than the same frame walked
 * again); the mix's frames recur from sample to sample (a loop's callers),
 * so most are one read of a 32-byte slot. Direct-mapped, FC_SLOTS (common.h)
 * slots a CPU, CPU c's at [c * FC_SLOTS, (c + 1) * FC_SLOTS) of an array (not a
 * per-CPU one: its slots stay in one cache line each) that user space
 * sizes to the possible CPUs. A program that interrupts another on its CPU
 * (a wakeup in an interrupt) may write a slot the other is writing or
 * reading: chk, a hash of the slot's other fields, written last and
 * checked on a copy, tells a torn slot (a miss). */
#define FC_EXACT 1 /* the pc was looked up as is (not a return address) */
#define FC_RULE 2  /* the rule is the pc's (else: no CFI there, frame pointers) */
struct fc_slot {
	__u64 pc;
	__u32 gen;
	__u32 map1; /* key in unwind_maps + 1; 0: no known mapping holds pc */
	__u32 chk;
	__u8 kind;  /* FC_EXACT | FC_RULE */
	__u8 cfa, ra, fp; /* struct unwind_rule's, ra_off and fp_off narrowed */
	__s32 cfa_off;
	__s16 ra_off, fp_off;
};

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct fc_slot);
} unwind_fcache SEC(".maps");

static __always_inline __u32 fc_sum(struct fc_slot *s)
{
	__u64 *w = (__u64 *)s;
	__u64 h = (w[0] ^ w[1]) * 0x9e3779b97f4a7c15ULL;
	h = (h ^ (w[2] >> 32)) * 0xff51afd7ed558ccdULL;
	h = (h ^ w[3]) * 0xc4ceb9fe1a85ec53ULL;
	return (__u32)(h >> 32) | 1; /* never 0: a zeroed slot is empty */
}

/* unwind_enabled: walk the user stacks of processes that have tables
 * (--unwind auto, when the kernel accepts the walker). */
const volatile bool unwind_enabled = false;

/* The registers of the frame being unwound and the process's mappings:
 * what unwind_frame reads and updates. */
struct frame_regs {
	__u64 pc, sp, fp, lr;
	__u64 report;       /* the pc to record for the caller */
	struct unwind_proc proc;
	__u32 end;          /* enum unwind_end, when unwind_frame returns 1 */
	__u32 flags;        /* EVENT_UNMAPPED_PC */
	__u8 fp_ok, exact;
	__u8 first;         /* pc is the sampled one (arm64's link register holds its caller) */
	__u8 bump_prev;     /* a signal frame: record the previous pc one byte on */
	__u32 last_map;     /* key of the previous frame's mapping + 1; 0: none */
	__u32 fc_base;      /* this CPU's first slot in unwind_fcache */
};

/* The state of one walk, on the caller's stack (bpf_loop's context). */
struct walk {
	struct frame_regs r;
	struct stack_event *e;
	__u32 end;
};

#define DATA_SLOTS (sizeof(((struct stack_event *)0)->data) / 8)

/* A window of the user stack, read once and served to the frame reads
 * that fall in it: each bpf_probe_read_user costs 100-150 ns here and the
 * bytes little more (a 4 KiB frame needs a read anyway), so a window serves
 * most of a deep stack's small frames. It lives in the event's data past
 * both stacks (the stack copy's room, unused when the walk is done here),
 * so it is per CPU and per scratch slot. */
#define WIN_SLOTS 256
#define WIN_PAGE 4096
struct stack_window {
	__u64 base, len;
	__u64 data[WIN_SLOTS];
};
#define WIN_SLOT (2 * MAX_STACK)

static __always_inline int win_read(struct stack_window *win, __u64 addr, __u64 *v)
{
	__u64 off = addr - win->base;
	if (addr >= win->base && off + 8 <= win->len && !(off & 7)) {
		__u64 i = off / 8;
		if (i < WIN_SLOTS) {
			*v = win->data[i];
			return 0;
		}
	}
	if (bpf_probe_read_user(win->data, sizeof(win->data), (void *)addr) == 0) {
		win->base = addr;
		win->len = sizeof(win->data);
		*v = win->data[0];
		return 0;
	}
	/* Near the end of the stack mapping, the window crossed it: the rest
	 * of addr's page is readable if addr is. */
	__u64 n = WIN_PAGE - (addr & (WIN_PAGE - 1));
	if (n > sizeof(win->data))
		n = sizeof(win->data);
	win->len = 0;
	if (n < 8 || bpf_probe_read_user(win->data, n, (void *)addr))
		return -1;
	win->base = addr;
	win->len = n;
	*v = win->data[0];
	return 0;
}

/* The searches are global functions: the verifier checks each once, on
 * its own, instead of at every path of every walk step that calls it
 * (inlined, they made each program take seconds and 400k instructions to
 * verify). They look elements up by key, not by pointer arithmetic, so the
 * bounds' values need no tracking and the loops' states converge. */

/* unwind_find_mapping returns the key in unwind_maps of the mapping of
 * process p holding pc, or -1. */
__attribute__((noinline)) int unwind_find_mapping(struct unwind_proc *p, __u64 pc)
{
	if (!p)
		return -1;
	__u32 lo = 0, hi = p->n, first = p->first;
	if (hi > UNWIND_MAX_MAPS)
		hi = UNWIND_MAX_MAPS;
	for (int i = 0; i < UNWIND_MAP_STEPS && lo < hi; i++) {
		__u32 mid = lo + (hi - lo) / 2;
		__u32 k = first + mid;
		struct unwind_mapping *m = bpf_map_lookup_elem(&unwind_maps, &k);
		if (!m)
			return -1;
		if (pc < m->start)
			hi = mid;
		else if (pc >= m->end)
			lo = mid + 1;
		else
			return k & 0x7fffffff;
	}
	return -1;
}

/* unwind_find_rule returns the key in unwind_rules of the rule of the last
 * entry at or below off in the table of mapping m, or -1 (also for rule 0:
 * no CFI there). The page index narrows the search to the entries of off's
 * page. */
__attribute__((noinline)) int unwind_find_rule(struct unwind_mapping *m, __u64 off)
{
	if (!m)
		return -1;
	__u32 lo = 0, hi = m->entry_count, first = m->first_entry;
	__u64 page = off >> (m->page_shift & 63);
	if (page < m->page_count) {
		__u32 k = m->first_page + (__u32)page;
		struct unwind_page *pg = bpf_map_lookup_elem(&unwind_pages, &k);
		if (!pg)
			return -1;
		if (pg->n == 0)
			return pg->first == 0 ? -1 : (m->first_rule + pg->first) & 0x7fffffff;
		lo = pg->first;
		hi = pg->first + pg->n;
		if (hi > m->entry_count)
			hi = m->entry_count;
	}
	/* Invariant: entries[lo].pc <= off (or lo is the first), answer in [lo, hi). */
	for (int i = 0; i < UNWIND_SEARCH_STEPS && hi - lo > 1; i++) {
		__u32 mid = lo + (hi - lo) / 2;
		__u32 k = first + mid;
		struct unwind_entry *en = bpf_map_lookup_elem(&unwind_entries, &k);
		if (!en)
			return -1;
		if (en->pc <= off)
			lo = mid;
		else
			hi = mid;
	}
	if (lo >= hi)
		return -1;
	__u32 k = first + lo;
	struct unwind_entry *en = bpf_map_lookup_elem(&unwind_entries, &k);
	if (!en || en->pc > off || en->rule == 0)
		return -1;
	return (m->first_rule + en->rule) & 0x7fffffff;
}

/* push_pc appends a pc to the user stack. The count lives in the event
 * (ustack_len), map memory the verifier does not track, rather than in the
 * walk state: a counter it tracks makes every iteration of the walk a new
 * state, and the program too large to verify. */
static __always_inline bool push_pc(struct walk *w, __u64 pc)
{
	struct stack_event *e = w->e;
	__u64 n = e->ustack_len / 8;
	__u64 i = e->kstack_len / 8 + n;
	if (n >= MAX_STACK || i >= DATA_SLOTS) {
		w->end = UNWIND_END_DEPTH;
		return false;
	}
	barrier_var(i);
	e->data[i] = pc;
	e->ustack_len = (n + 1) * 8;
	return true;
}

/* unwind_frame unwinds one frame: from r's pc, sp, fp to the caller's,
 * whose pc to record it puts in r->report. It returns 1 once the walk
 * ended, with r->end set. A global function, verified once on its own. */
__attribute__((noinline)) int unwind_frame(struct frame_regs *w, struct stack_window *win)
{
	if (!w || !win)
		return 1;
	struct unwind_rule fprec = {.cfa = CFA_FP, .cfa_off = 16, .ra = RA_AT_CFA, .ra_off = -8, .fp = FP_AT_CFA, .fp_off = -16};
	struct unwind_rule rule = {};
	struct unwind_rule *r = NULL;
	__u64 pc = w->pc, sp = w->sp;
	__u32 exact = w->exact ? FC_EXACT : 0;
	w->bump_prev = 0;
	__u64 h = (pc ^ ((__u64)w->proc.gen << 40) ^ exact) * 0x9e3779b97f4a7c15ULL;
	__u32 fk = w->fc_base + (__u32)(h >> 53) % FC_SLOTS;
	struct fc_slot *fs = bpf_map_lookup_elem(&unwind_fcache, &fk);
	struct fc_slot c = {};
	if (fs)
		c = *fs; /* checked as read, not as it may change meanwhile */
	if (fs && c.pc == pc && c.gen == w->proc.gen && (c.kind & FC_EXACT) == exact && c.chk == fc_sum(&c)) {
		w->last_map = c.map1;
		if (!c.map1)
			w->flags |= EVENT_UNMAPPED_PC;
		if (c.kind & FC_RULE) {
			rule.cfa = c.cfa;
			rule.ra = c.ra;
			rule.fp = c.fp;
			rule.cfa_off = c.cfa_off;
			rule.ra_off = c.ra_off;
			rule.fp_off = c.fp_off;
			r = &rule;
		}
	} else {
		/* Callers are often in the file of their callee: try its
		 * mapping before searching. */
		struct unwind_mapping *m = NULL;
		__u32 mk = w->last_map - 1;
		if (w->last_map) {
			m = bpf_map_lookup_elem(&unwind_maps, &mk);
			if (m && (pc < m->start || pc >= m->end))
				m = NULL;
		}
		if (!m) {
			mk = unwind_find_mapping(&w->proc, pc);
			m = (int)mk < 0 ? NULL : bpf_map_lookup_elem(&unwind_maps, &mk);
		}
		w->last_map = m ? mk + 1 : 0;
		if (m) {
			if (m->entry_count) {
				__u64 off = pc - m->bias;
				if (!exact)
					off--; /* a return address may be past the end of its function */
				if (off < (1ULL << 32)) {
					__u32 rk = unwind_find_rule(m, off);
					if ((int)rk >= 0)
						r = bpf_map_lookup_elem(&unwind_rules, &rk);
				}
			}
		} else {
			w->flags |= EVENT_UNMAPPED_PC;
		}
		/* Kept unless a rule's offsets do not fit the slot. */
		if (fs && (!r || (r->ra_off == (__s16)r->ra_off && r->fp_off == (__s16)r->fp_off))) {
			c.pc = pc;
			c.gen = w->proc.gen;
			c.map1 = w->last_map;
			c.kind = exact;
			if (r) {
				c.kind |= FC_RULE;
				c.cfa = r->cfa;
				c.ra = r->ra;
				c.fp = r->fp;
				c.cfa_off = r->cfa_off;
				c.ra_off = r->ra_off;
				c.fp_off = r->fp_off;
			} else {
				c.cfa = c.ra = c.fp = 0;
				c.cfa_off = c.ra_off = c.fp_off = 0;
			}
			c.chk = fc_sum(&c);
			*fs = c;
		}
	}
	if (!r) {
		/* No CFI: a frame record {caller fp, return address} at fp. */
		if (!w->fp_ok || w->fp < sp || w->fp - sp > (1ULL << 28) || (w->fp & 7)) {
			w->end = w->fp == 0 ? UNWIND_END_OK : UNWIND_END_NO_FP;
			return 1;
		}
		r = &fprec;
	}
	__u64 cfa = 0;
	switch (r->cfa) {
	case CFA_SP:
		cfa = sp + (__s64)r->cfa_off;
		break;
	case CFA_FP:
	case CFA_FP_SWITCH:
		if (!w->fp_ok) {
			w->end = UNWIND_END_LOST_FP;
			return 1;
		}
		cfa = w->fp + (__s64)r->cfa_off;
		break;
	case CFA_PLT:
		cfa = sp + 8;
		if ((pc & 15) >= (__u64)r->cfa_off)
			cfa += 8;
		break;
	case CFA_SIGNAL: {
		__u64 nsp = 0, nip = 0, nfp = 0;
		if (win_read(win, sp + (__s64)r->cfa_off, &nsp) || win_read(win, sp + (__s64)r->ra_off, &nip)) {
			w->end = UNWIND_END_READ;
			return 1;
		}
		nip = STRIP_RA(nip);
		if (nip == 0) {
			w->end = UNWIND_END_OK;
			return 1;
		}
		if (nsp <= sp) {
			w->end = UNWIND_END_NO_PROGRESS;
			return 1;
		}
		if (r->fp == FP_AT_CFA) {
			w->fp_ok = win_read(win, sp + (__s64)r->fp_off, &nfp) == 0;
			w->fp = nfp;
		}
		/* The trampoline and the interrupted pc one byte on, as
		 * unwind.WalkCompact reports them: symbolizers look return
		 * addresses up at pc-1. */
		w->bump_prev = !w->first;
		w->report = nip + 1;
		w->pc = nip;
		w->sp = nsp;
		w->exact = 1;
		w->first = 0;
		return 0;
	}
	default:
		w->end = UNWIND_END_UNSUPPORTED;
		return 1;
	}
	/* Read before r may become &fprec below. */
	bool switched = r->cfa == CFA_FP_SWITCH;
	__u64 ra = 0;
	if (r->ra == RA_UNDEFINED) {
		w->end = UNWIND_END_OK;
		return 1;
	} else if (r->ra == RA_IN_LINK) {
		if (!w->first || w->lr == 0) {
			w->end = UNWIND_END_LOST_LR;
			return 1;
		}
		ra = w->lr;
	} else if (r->fp == FP_AT_CFA && r->fp_off + 8 == r->ra_off) {
		/* {saved fp, return address}, as every frame record and push
		 * %rbp frame has them. */
		__u64 nfp = 0;
		if (win_read(win, cfa + (__s64)r->fp_off, &nfp) || win_read(win, cfa + (__s64)r->ra_off, &ra)) {
			w->end = UNWIND_END_READ;
			return 1;
		}
		w->fp = nfp;
		w->fp_ok = 1;
		r = &fprec; /* fp done: skip the read below */
		fprec.fp = 0;
	} else if (win_read(win, cfa + (__s64)r->ra_off, &ra)) {
		w->end = UNWIND_END_READ;
		return 1;
	}
	ra = STRIP_RA(ra);
	if (ra == 0) {
		w->end = UNWIND_END_OK;
		return 1;
	}
	if (!switched && (cfa < sp || (cfa == sp && r->ra != RA_IN_LINK))) {
		w->end = UNWIND_END_NO_PROGRESS;
		return 1;
	}
	if (r->fp == FP_AT_CFA) {
		__u64 nfp = 0;
		w->fp_ok = win_read(win, cfa + (__s64)r->fp_off, &nfp) == 0;
		w->fp = nfp;
	}
	w->report = ra;
	w->pc = ra;
	w->sp = cfa;
	w->exact = 0;
	w->first = 0;
	return 0;
}

/* unwind_step is bpf_loop's callback: one frame. It returns 1 (stop) once
 * the walk ended, with w->end set. */
static long unwind_step(__u64 i, struct walk *w)
{
	struct stack_window *win = (void *)&w->e->data[WIN_SLOT];
	if (unwind_frame(&w->r, win)) {
		w->end = w->r.end;
		return 1;
	}
	if (w->r.bump_prev) {
		__u64 n = w->e->ustack_len / 8;
		__u64 last = w->e->kstack_len / 8 + n - 1;
		if (n > 0 && last < DATA_SLOTS) {
			barrier_var(last);
			w->e->data[last] += 1;
		}
	}
	if (!push_pc(w, w->r.report))
		return 1;
	return 0;
}

/* walk_user_stack writes the user stack of e (registers in e) into data
 * after the kernel stack, with the tables of process p, and sets ustack_len and
 * ustack_end. */
static __always_inline void walk_user_stack(struct stack_event *e, struct unwind_proc *p)
{
	struct walk w = {
		.r = {
			.pc = e->ip, .sp = e->sp, .fp = e->bp, .lr = STRIP_RA(e->lr),
			.proc = *p, .fp_ok = 1, .exact = 1, .first = 1,
			.fc_base = bpf_get_smp_processor_id() * FC_SLOTS,
		},
		.e = e,
	};
	e->ustack_len = 0;
	((struct stack_window *)&e->data[WIN_SLOT])->len = 0;
	if (push_pc(&w, e->ip)) {
		w.end = UNWIND_END_DEPTH;
		bpf_loop(MAX_STACK, unwind_step, &w, 0);
	}
	e->ustack_end = w.end;
	e->flags |= w.r.flags;
}

#endif
