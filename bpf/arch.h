/* The architecture-specific part of scorch's BPF programs: which registers
 * are the user pc, stack pointer, frame pointer and link register, how a
 * kernel address looks, and what the kernel's stack layout allows. Every
 * program and common.h go through these macros; nothing else names a
 * register. bpf2go compiles each program once per -target (gen.go), with
 * __TARGET_ARCH_x86 or __TARGET_ARCH_arm64 defined, which selects libbpf's
 * PT_REGS_* definitions and the kernel types (headers/vmlinux.h).
 *
 * The REGS_* macros take a struct pt_regs * (bpf_task_pt_regs, a uprobe's
 * context) or the perf_event context's &ctx->regs (x86: struct pt_regs,
 * arm64: struct user_pt_regs, the first member of arm64's pt_regs). They are
 * plain loads, as the perf_event context allows only whole-register reads
 * at fixed offsets; libbpf CO-RE-relocates them on BTF pointers. */
#ifndef SCORCH_ARCH_H
#define SCORCH_ARCH_H

#include "vmlinux.h"
#include <bpf/bpf_tracing.h>

#if defined(bpf_target_x86)

/* x86-64: rip, rsp, rbp. A call pushes the return address: there is no
 * link register, and a leaf's return address is at [rsp] (the user-space
 * unwinder reads it from the stack copy). */
#define REGS_IP(r) PT_REGS_IP(r)
#define REGS_SP(r) PT_REGS_SP(r)
#define REGS_FP(r) PT_REGS_FP(r)
#define REGS_LR(r) 0
/* The system call a task entered the kernel with. */
#define REGS_SYSCALL_NR(r) ((__s32)(r)->orig_ax)
/* Kernel addresses have the top bit set (the upper half). */
#define IS_KERNEL_ADDR(a) ((__s64)(a) < 0)
/* Return addresses are plain addresses. */
#define STRIP_RA(a) (a)
/* The off-CPU kernel stack cache (offcpu.c) relies on x86-64's ORC
 * unwinder reading return addresses from fixed stack slots and on
 * do_syscall_64 being the only frame below the random stack offset. */
#define ARCH_KSTACK_CACHE 1

#elif defined(bpf_target_arm64)

/* arm64: pc, sp, x29 (the frame pointer, AAPCS64 frame records {x29, x30})
 * and x30, the link register: a leaf that saves no frame record returns
 * through x30, so it is the leaf's caller. */
#define REGS_IP(r) PT_REGS_IP(r)
#define REGS_SP(r) PT_REGS_SP(r)
#define REGS_FP(r) PT_REGS_FP(r)
#define REGS_LR(r) PT_REGS_RET(r)
#define REGS_SYSCALL_NR(r) ((r)->syscallno)
/* User addresses are below 2^52 (TTBR0), kernel ones have the top bits set
 * (TTBR1): the top bit tells them apart, as on x86-64. */
#define IS_KERNEL_ADDR(a) ((__s64)(a) < 0)
/* Pointer authentication (-mbranch-protection=pac-ret) signs return
 * addresses in their top bits on hosts that support it: keep the user
 * virtual address bits (48: Linux maps user memory above 2^48 only for
 * processes that ask for it with a hint). */
#define STRIP_RA(a) ((a) & 0x0000ffffffffffffULL)
/* No ORC and no do_syscall_64 on arm64: the cache's assumptions do not hold,
 * every off-CPU kernel stack is walked. */
#define ARCH_KSTACK_CACHE 0

#else
#error "scorch's BPF programs support x86 and arm64 only"
#endif

#endif
