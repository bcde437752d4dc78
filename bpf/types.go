//go:build (386 || amd64 || arm64) && linux

package bpf

import "github.com/cilium/ebpf"

// The types of common.h are in every object, and bpf2go generates them once
// per object (gen.go's -type flags): these are the sampler's, for code that
// handles the records and counters of any program. types_test.go checks
// that every object lays them out the same.
type (
	StackEvent = SamplerStackEvent
	ExecEvent  = SamplerExecEvent
	RecordKind = SamplerRecordKind
	EventFlag  = SamplerEventFlag
	TargetMode = SamplerTargetMode
	StatSlot   = SamplerStatSlot
	Limit      = SamplerLimit
	UnwindEnd  = SamplerUnwindEnd
)

// Exec returns the exec hook of common.h, which every program has.
func (p *SamplerPrograms) Exec() *ebpf.Program { return p.OnExec }

// Exec returns the exec hook of common.h, which every program has.
func (p *OffcpuPrograms) Exec() *ebpf.Program { return p.OnExec }

// Exec returns the exec hook of common.h, which every program has.
func (p *MemPrograms) Exec() *ebpf.Program { return p.OnExec }

// Exec returns the exec hook of common.h, which every program has.
func (p *EventPrograms) Exec() *ebpf.Program { return p.OnExec }
