/* The kernel types of the architecture being compiled for (bpf2go defines
 * __TARGET_ARCH_x86 or __TARGET_ARCH_arm64 per -target). vmlinux_x86.h was
 * dumped from an x86-64 kernel's BTF (bpftool btf dump file
 * /sys/kernel/btf/vmlinux format c); vmlinux_arm64.h from a Debian arm64
 * kernel's by scripts/vmlinux-arm64.sh. Field offsets do not matter: every
 * access is CO-RE-relocated to the running kernel at load time. */
#if defined(__TARGET_ARCH_arm64)
#include "vmlinux_arm64.h"
#elif defined(__TARGET_ARCH_x86)
#include "vmlinux_x86.h"
#else
#error "scorch's BPF programs are built for x86 and arm64 only (bpf2go -target amd64,arm64)"
#endif
