// Package bpf holds scorch's BPF programs (C, compiled with bpf2go, CO-RE)
// and their generated Go loaders. The generated *_bpfel.go and .o files are
// committed, so building needs no clang; `make generate` rebuilds them and
// `make test` checks they match the sources.
//
// Every program is built for two targets from the same C: x86 (amd64) and
// arm64, little-endian both; Go picks the object of the GOARCH it is built
// for (the _x86_bpfel and _arm64_bpfel files' build tags). The registers and
// the other architecture-specific facts are the macros of arch.h. The kernel
// types come from headers/vmlinux.h, which includes the target's:
// vmlinux_x86.h (bpftool btf dump file /sys/kernel/btf/vmlinux format c on
// an x86-64 host) or vmlinux_arm64.h, which scripts/vmlinux-arm64.sh
// regenerates from the BTF of Debian's arm64 kernel package (fetched with
// apt; no arm64 machine needed). Any recent kernel's types will do for
// either: libbpf relocates each field access to the running kernel's
// layout when a program loads.
package bpf

//go:generate go tool bpf2go -tags linux -target amd64,arm64 -type stack_event -type exec_event -type stat_slot -type record_kind -type event_flag -type target_mode -type limit -type unwind_end -type unwind_entry -type unwind_rule -type unwind_mapping -type unwind_proc -type unwind_page Sampler sampler.c -- -I./headers -I.
//go:generate go tool bpf2go -tags linux -target amd64,arm64 -type off_state -type arrival -type leave_ref Offcpu offcpu.c -- -I./headers -I.
//go:generate go tool bpf2go -tags linux -target amd64,arm64 -type alloc_fn Mem mem.c -- -I./headers -I.
//go:generate go tool bpf2go -tags linux -target amd64,arm64 Event event.c -- -I./headers -I.
