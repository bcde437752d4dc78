//go:build (386 || amd64) && linux

package bpf

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
)
