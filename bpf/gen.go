// Package bpf holds scorch's BPF programs (C, compiled with bpf2go against
// the kernel's BTF, CO-RE) and their generated Go loaders. The generated
// *_bpfel.go and .o files are committed, so building needs no clang; `make
// generate` rebuilds them and `make test` checks they match the sources.
//
// Only little-endian objects are built: scorch runs on x86-64 (and arm64
// hosts would need their own vmlinux.h and registers anyway).
package bpf

//go:generate go tool bpf2go -tags linux -target amd64 -type stack_event -type exec_event -type stat_slot -type record_kind -type event_flag -type target_mode -type limit Sampler sampler.c -- -I./headers -I.
//go:generate go tool bpf2go -tags linux -target amd64 -type off_state Offcpu offcpu.c -- -I./headers -I.
//go:generate go tool bpf2go -tags linux -target amd64 -type alloc_fn Mem mem.c -- -I./headers -I.
//go:generate go tool bpf2go -tags linux -target amd64 Event event.c -- -I./headers -I.
