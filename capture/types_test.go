package capture

import (
	"slices"
	"strings"
	"testing"
	"time"
)

// The type table holds the units of the public interface and the defaults
// each type's captures get.
func TestTypeTable(t *testing.T) {
	tests := []struct {
		typ      Type
		event    string
		unit     string
		interval bool
		want     Params // after Defaults, besides duration and unwind
	}{
		{CPU, "", "samples", false, Params{Hz: DefaultHz}},
		{OffCPU, "", "ns", true, Params{State: "all", MinBlock: Duration(time.Microsecond)}},
		{Wakeup, "", "ns", true, Params{State: "all", MinBlock: Duration(time.Microsecond)}},
		{OffWake, "", "ns", true, Params{State: "all", MinBlock: Duration(time.Microsecond)}},
		{Mem, "malloc", "bytes", false, Params{View: "alloc"}},
		{Mem, "page-faults", "count", false, Params{View: "alloc"}},
		{CPI, "", "count", false, Params{}},
		{PerfEvent, "sched:sched_switch", "count", false, Params{}},
		{"future", "", "count", false, Params{}},
	}
	for _, tt := range tests {
		if got := tt.typ.Unit(tt.event); got != tt.unit {
			t.Errorf("%s %s: unit %q, want %q", tt.typ, tt.event, got, tt.unit)
		}
		info := tt.typ.Info()
		if info.Interval != tt.interval {
			t.Errorf("%s: interval %v, want %v", tt.typ, info.Interval, tt.interval)
		}
		if info.Title == "" || info.Palette == "" || len(info.PprofTypes(tt.unit)) == 0 {
			t.Errorf("%s: title %q, palette %q, pprof types %v: each must be set", tt.typ, info.Title, info.Palette, info.PprofTypes(tt.unit))
		}
		p := Params{Type: tt.typ, Event: tt.event}
		p.Defaults()
		want := tt.want
		want.Type, want.Event, want.Duration, want.Unwind = tt.typ, tt.event, Duration(DefaultDuration), DefaultUnwind
		if p.Type != want.Type || p.Hz != want.Hz || p.State != want.State || p.MinBlock != want.MinBlock || p.View != want.View || p.Duration != want.Duration || p.Unwind != want.Unwind {
			t.Errorf("%s: defaults %+v, want %+v", tt.typ, p, want)
		}
	}
	for _, ti := range typeTable {
		for unit, sts := range ti.Pprof {
			defaults := 0
			for _, st := range sts {
				if st.Default {
					defaults++
				}
				if st.Type == "" || st.Unit == "" || strings.Contains(st.Type, "-") {
					t.Errorf("%s %q: pprof sample type %+v needs a name without '-' and a unit", ti.Type, unit, st)
				}
			}
			inuse := slices.ContainsFunc(sts, func(st SampleType) bool { return st.Sum == SumInuseValue })
			if want := ti.InuseUnit != "" && unit == ti.InuseUnit; inuse != want {
				t.Errorf("%s %q: pprof in-use values %v, but InuseUnit %q", ti.Type, unit, inuse, ti.InuseUnit)
			}
			if defaults > 1 {
				t.Errorf("%s %q: %d default pprof sample types", ti.Type, unit, defaults)
			}
		}
	}
	// Imports fall back to one type for events no entry names, and a perf
	// event name belongs to one type at most.
	others, perf := 0, map[string]Type{}
	for _, ti := range typeTable {
		if ti.OtherEvents {
			others++
		}
		for _, ev := range ti.PerfEvents {
			if prev, ok := perf[ev]; ok {
				t.Errorf("perf event %s is of both %s and %s", ev, prev, ti.Type)
			}
			perf[ev] = ti.Type
		}
	}
	if others != 1 || OtherEventsType() != PerfEvent {
		t.Errorf("%d types take other events, OtherEventsType %s: want one, %s", others, OtherEventsType(), PerfEvent)
	}
	// Values already set are kept.
	p := Params{Type: OffCPU, State: "D", MinBlock: Duration(time.Millisecond), Hz: 0}
	p.Defaults()
	if p.State != "D" || p.MinBlock != Duration(time.Millisecond) || p.Hz != 0 {
		t.Errorf("defaults replaced set values: %+v", p)
	}
	if len(Types) != len(typeTable) || Types[0] != CPU {
		t.Errorf("Types %v does not follow the table", Types)
	}
}
