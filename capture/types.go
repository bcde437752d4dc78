package capture

import (
	"fmt"
	"strings"
	"time"
)

// Type names a kind of capture.
type Type string

// The capture types of the public interface.
const (
	CPU       Type = "cpu"
	OffCPU    Type = "offcpu"
	Wakeup    Type = "wakeup"
	OffWake   Type = "offwake"
	Mem       Type = "mem"
	CPI       Type = "cpi"
	PerfEvent Type = "event"
)

// SampleType is a pprof sample type: a value's name and unit (names have
// no '-' because some pprof backends reject it), what it sums over the
// events of a sample, and whether it is the profile's default.
type SampleType struct {
	Type, Unit string
	Sum        SampleSum
	Default    bool
	// Event is the event of the captures these values come from, where
	// the type has several (mem: page_faults are of page-faults), so that
	// an import of them restores it.
	Event string
}

// SampleSum says what a pprof sample value adds up per event.
type SampleSum uint8

// What sample values add up.
const (
	SumValue        SampleSum = iota // Event.Value (of an interval, the part inside the range)
	SumValue2                        // Event.Value2 (cpi: instructions)
	SumObjects                       // Event.Value2, 1 when unset (mem: allocations)
	SumInuseValue                    // Value of the events still in use at the end (FlagInuse)
	SumInuseObjects                  // SumObjects of those
	SumEvents                        // 1 per event
	SumPeriod                        // Value times the sampling period in ns (cpu samples as cpu time)
)

// TypeInfo is what every part of scorch outside the collectors knows about
// a capture type: one entry here (and a collector in profiler/) is a new
// capture type.
type TypeInfo struct {
	Type Type
	// Unit of Event.Value; EventUnits overrides it for the events that
	// measure something else (mem: page-faults are counted, not bytes).
	Unit       string
	EventUnits map[string]string
	// Sampled: events are periodic samples at Params.Hz (one per event,
	// whatever its value), so hz applies and defaults to DefaultHz.
	Sampled bool
	// Interval: events are time intervals (Time the start, Value the
	// length in ns), counted in a range for the part inside it.
	Interval bool
	Title    string // flame graph title
	Palette  string // flame graph palette (flamegraph.Palettes)
	// Pprof are the pprof sample types, by unit ("" for any other unit).
	// Imports read them back: a profile with the types an entry sums
	// its events from is of this type (formats.readPprof).
	Pprof map[string][]SampleType
	// PerfEvents are the perf event names (before any ":") that record
	// what this type does, so a perf script of them imports as this type.
	PerfEvents []string
	// Periodic: events are samples taken at a steady rate (of time or of
	// cycles), so a summary reports the rate (Hz and effective Hz).
	Periodic bool
	// CyclesPerInstruction: Value is cycles and Value2 the instructions
	// retired in them, so flame graphs colour frames by their ratio.
	CyclesPerInstruction bool
	// InuseUnit is the unit of the captures whose events mark what is
	// still in use at the end (FlagInuse: mem's allocations in bytes), so
	// view=inuse applies to them and to no other.
	InuseUnit string
	// OtherEvents: the type of any counted event no other entry names;
	// imports of unknown events (perf script events, pprof sample types)
	// are of this type, named by their event.
	OtherEvents bool
	// Defaults fills the Params fields this type uses and leaves unset
	// (Params.Defaults copies its non-zero fields).
	Defaults Params
}

// offCPUDefaults are the defaults of the interval types.
var offCPUDefaults = Params{State: "all", MinBlock: Duration(DefaultMinBlock)}

// typeTable lists every capture type in the order the UI offers them.
var typeTable = []TypeInfo{
	{
		Type: CPU, Unit: "samples", Sampled: true, Periodic: true, Title: "CPU Flame Graph", Palette: "hot",
		Pprof: map[string][]SampleType{
			// perf script imports with periods: the value is cpu time already.
			"ns": {{Type: "samples", Unit: "count", Sum: SumEvents}, {Type: "cpu", Unit: "nanoseconds", Default: true}},
			"":   {{Type: "samples", Unit: "count"}, {Type: "cpu", Unit: "nanoseconds", Sum: SumPeriod, Default: true}},
		},
		PerfEvents: []string{"cpu-clock", "task-clock"},
		Defaults:   Params{Hz: DefaultHz},
	},
	{
		Type: OffCPU, Unit: "ns", Interval: true, Title: "Off-CPU Time Flame Graph", Palette: "io",
		Pprof:    map[string][]SampleType{"": {{Type: "off_cpu", Unit: "nanoseconds"}}},
		Defaults: offCPUDefaults,
	},
	{
		Type: Wakeup, Unit: "ns", Interval: true, Title: "Wakeup Time Flame Graph", Palette: "wakeup",
		Pprof:    map[string][]SampleType{"": {{Type: "wakeup", Unit: "nanoseconds"}}},
		Defaults: offCPUDefaults,
	},
	{
		Type: OffWake, Unit: "ns", Interval: true, Title: "Off-Wake Time Flame Graph", Palette: "chain",
		Pprof:    map[string][]SampleType{"": {{Type: "off_wake", Unit: "nanoseconds"}}},
		Defaults: offCPUDefaults,
	},
	{
		Type: Mem, Unit: "bytes",
		EventUnits: map[string]string{"page-faults": "count", "faults": "count", "major-faults": "count", "minor-faults": "count"},
		Title:      "Memory Flame Graph", Palette: "mem",
		Pprof: map[string][]SampleType{
			"bytes": {
				{Type: "alloc_space", Unit: "bytes", Default: true}, {Type: "alloc_objects", Unit: "count", Sum: SumObjects},
				{Type: "inuse_space", Unit: "bytes", Sum: SumInuseValue}, {Type: "inuse_objects", Unit: "count", Sum: SumInuseObjects},
			},
			"": {{Type: "page_faults", Unit: "count", Event: "page-faults"}},
		},
		PerfEvents: []string{"page-faults", "faults", "major-faults", "minor-faults"},
		InuseUnit:  "bytes",
		Defaults:   Params{View: "alloc"},
	},
	{
		Type: CPI, Unit: "count", Periodic: true, CyclesPerInstruction: true, Title: "CPI Flame Graph", Palette: "hot",
		Pprof: map[string][]SampleType{"": {{Type: "cycles", Unit: "count"}, {Type: "instructions", Unit: "count", Sum: SumValue2}}},
	},
	{
		Type: PerfEvent, Unit: "count", OtherEvents: true, Title: "Flame Graph", Palette: "hot",
		Pprof: map[string][]SampleType{"": {{Type: "events", Unit: "count"}}},
	},
}

// unknownType is the entry of a type the table does not have (a capture
// file from a newer scorch).
var unknownType = TypeInfo{
	Unit: "count", Title: "Flame Graph", Palette: "hot",
	Pprof: map[string][]SampleType{"": {{Type: "events", Unit: "count"}}},
}

// Types lists every capture type in the order the UI offers them.
var Types = func() []Type {
	ts := make([]Type, len(typeTable))
	for i, ti := range typeTable {
		ts[i] = ti.Type
	}
	return ts
}()

// Info is the table entry of the type; a type the table does not have
// gets a generic entry (counts, "Flame Graph", the hot palette).
func (t Type) Info() *TypeInfo {
	for i := range typeTable {
		if typeTable[i].Type == t {
			return &typeTable[i]
		}
	}
	u := unknownType
	u.Type = t
	return &u
}

// OtherEventsType is the type of events no table entry names (the entry
// with OtherEvents).
func OtherEventsType() Type {
	for i := range typeTable {
		if typeTable[i].OtherEvents {
			return typeTable[i].Type
		}
	}
	return PerfEvent
}

// ParseType validates a capture type name.
func ParseType(s string) (Type, error) {
	for _, t := range Types {
		if string(t) == s {
			return t, nil
		}
	}
	return "", fmt.Errorf("unknown capture type %q: allowed values are %s", s, TypeList())
}

// TypeList names every capture type, comma-separated, for messages.
func TypeList() string {
	names := make([]string, len(Types))
	for i, t := range Types {
		names[i] = string(t)
	}
	return strings.Join(names, ", ")
}

// Unit is the unit of an event's Value.
func (t Type) Unit(event string) string {
	ti := t.Info()
	if u, ok := ti.EventUnits[event]; ok {
		return u
	}
	return ti.Unit
}

// PprofTypes are the pprof sample types of a capture of this type whose
// values are in unit.
func (ti *TypeInfo) PprofTypes(unit string) []SampleType {
	if st, ok := ti.Pprof[unit]; ok {
		return st
	}
	return ti.Pprof[""]
}

// defaultsOf are the defaults of a capture type; an unset type is taken
// for cpu (the CLI's default).
func defaultsOf(t Type) Params {
	if t == "" {
		t = CPU
	}
	return t.Info().Defaults
}

// applyDefaults sets p's unset fields from d.
func (p *Params) applyDefaults(d Params) {
	if p.Hz == 0 {
		p.Hz = d.Hz
	}
	if p.State == "" {
		p.State = d.State
	}
	if p.MinBlock == 0 {
		p.MinBlock = d.MinBlock
	}
	if p.View == "" {
		p.View = d.View
	}
}

// DefaultMinBlock is the shortest blocked time the off-CPU types keep.
const DefaultMinBlock = time.Microsecond
