// Package capture is scorch's data model: one recording's metadata, a
// deduplicated table of symbolized stacks and a compact list of timestamped
// events. Flame graphs, folded stacks, pprof, speedscope and heatmaps are all
// derived from it.
package capture

import (
	"fmt"
	"strings"
	"time"
)

// FrameKind says where a frame's code lives.
type FrameKind uint8

// Frame kinds. The folded suffix of each is given by FoldedName.
const (
	KindUser      FrameKind = iota // native user code
	KindKernel                     // kernel code, folded as name_[k]
	KindJIT                        // JIT code from a perf map, name_[j]
	KindInlined                    // a function inlined into its caller, name_[i]
	KindSynthetic                  // [unknown], [truncated], [blocked], --, ...
	KindProcess                    // the root frame: the process name
)

var kindNames = [...]string{"user", "kernel", "jit", "inlined", "synthetic", "process"}

func (k FrameKind) String() string {
	if int(k) < len(kindNames) {
		return kindNames[k]
	}
	return fmt.Sprintf("kind(%d)", k)
}

// Frame is one symbolized stack frame. Frames are interned: equal frames share
// one index in Capture.Frames.
type Frame struct {
	Name       string    `json:"name"`                  // function name, demangled; synthetic frames are in brackets
	Kind       FrameKind `json:"kind"`                  //
	Waker      bool      `json:"waker,omitempty"`       // part of the waker's stack (offwake), folded with _[w]
	Module     string    `json:"module,omitempty"`      // file of the code: an ELF path, "[kernel.kallsyms]", "[vdso]", a perf map
	BuildID    string    `json:"build_id,omitempty"`    // GNU build ID of Module, hex
	Offset     uint64    `json:"offset,omitempty"`      // address relative to Module (ELF virtual address, or kernel address)
	File       string    `json:"file,omitempty"`        // source file, when line tables were present
	Line       int       `json:"line,omitempty"`        // source line
	SystemName string    `json:"system_name,omitempty"` // raw (mangled) name, when it differs from Name
}

// Synthetic frame names of the folded format.
const (
	FrameUnknown   = "[unknown]"
	FrameTruncated = "[truncated]"
	FrameBlocked   = "[blocked]"
	FrameRunqueue  = "[runqueue]"
	FrameIRQ       = "[irq]"
	FrameIdle      = "swapper"
	FrameSeparator = "--"
)

// Label is the frame's name as it is shown: sanitized like FoldedName but
// without the kind suffix, FrameUnknown when empty.
func (f *Frame) Label() string {
	if name := SanitizeName(f.Name); name != "" {
		return name
	}
	return FrameUnknown
}

// FoldedName is the frame as it appears in folded stacks: the name with its
// kind suffix, with the characters that would break the format replaced.
func (f *Frame) FoldedName() string {
	name := f.Label()
	switch f.Kind {
	case KindKernel:
		name += "_[k]"
	case KindJIT:
		name += "_[j]"
	case KindInlined:
		name += "_[i]"
	}
	if f.Waker && f.Kind != KindSynthetic {
		name += "_[w]"
	}
	return name
}

// SanitizeName makes a name safe for the folded format: no ';', no newlines
// and no other control characters.
func SanitizeName(s string) string {
	clean := true
	for i := 0; i < len(s); i++ {
		if c := s[i]; c == ';' || c < 0x20 || c == 0x7f {
			clean = false
			break
		}
	}
	if clean {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c == ';':
			b.WriteByte(':')
		case c < 0x20 || c == 0x7f:
			b.WriteByte('?')
		default:
			b.WriteByte(c)
		}
	}
	return b.String()
}

// Event flags.
const (
	FlagIdle   uint16 = 1 << iota // the idle task (pid 0) was on CPU
	FlagInuse                     // mem: allocation still outstanding at the end of the capture
	FlagIRQ                       // wakeup/offwake: the waker ran in interrupt context
	FlagKernel                    // the sample interrupted kernel code
)

// Event is one sample or one interval. 48 bytes.
type Event struct {
	Time     int64  // ns since Meta.Start; for off-CPU types the start of the interval
	Value    int64  // in Meta.Unit: 1 per cpu sample, ns, bytes, counts
	Value2   int64  // a second value: instructions (cpi), 1 per allocation (mem)
	Stack    uint32 // index into Capture.Stacks
	PID      uint32 // thread group id
	TID      uint32
	WakerPID uint32 // wakeup/offwake: who woke the thread
	WakerTID uint32
	CPU      uint16
	Flags    uint16
}

// Meta describes a capture.
type Meta struct {
	Version    int           `json:"version"`
	ID         string        `json:"id,omitempty"`
	Type       Type          `json:"type"`
	Event      string        `json:"event,omitempty"` // mem and event types: the event name
	Unit       string        `json:"unit"`            // unit of Event.Value
	Params     Params        `json:"params"`
	Host       string        `json:"host,omitempty"`
	Kernel     string        `json:"kernel,omitempty"`
	Arch       string        `json:"arch,omitempty"` // the host's architecture: x86-64, arm64
	Start      time.Time     `json:"start"`          // wall clock at Event.Time == 0
	Duration   time.Duration `json:"duration"`       // length of the capture
	Timestamps bool          `json:"timestamps"`
	Source     string        `json:"source,omitempty"` // "bpf", "perf-script", "folded", "pprof", "capture"
	Stats      Stats         `json:"stats"`
	Warnings   []string      `json:"warnings,omitempty"`
	// Notes are facts of how the capture was taken that a user should know
	// and that lose nothing (a part that works differently on this
	// architecture): info findings in the health.
	Notes []string `json:"notes,omitempty"`
}

// Capture is a recording: metadata, an interned frame table, an interned
// stack table and the events.
type Capture struct {
	Meta   Meta
	Frames []Frame
	// Stacks are lists of indexes into Frames, root first. Frame 0 of every
	// stack is the process name (KindProcess). In offwake captures the
	// blocked stack is followed by a "--" frame and the waker's frames, leaf
	// first, ending with the waker's process name.
	Stacks [][]uint32
	Events []Event
	// Mappings are where the processes had their modules mapped, for
	// formats that carry addresses (pprof); empty for imports and for
	// captures written before they were recorded.
	Mappings []Mapping
}

// Mapping is one executable mapping of a process: [Start, Limit) of its
// address space holds Module from file offset Offset. VAddr is the module's
// own address (Frame.Offset's terms) at Start, so a frame of this mapping
// ran at Start + Frame.Offset - VAddr.
type Mapping struct {
	PID     uint32 `json:"pid"`
	Start   uint64 `json:"start"`
	Limit   uint64 `json:"limit"`
	Offset  uint64 `json:"offset"`
	VAddr   uint64 `json:"vaddr"`
	Module  string `json:"module"`
	BuildID string `json:"build_id,omitempty"`
}

// Holds reports whether a frame of the mapping's module at module address
// off lies in the mapping.
func (m *Mapping) Holds(off uint64) bool {
	return off >= m.VAddr && off-m.VAddr < m.Limit-m.Start
}

// FormatVersion is the version of the capture file format and of Meta.
const FormatVersion = 1
