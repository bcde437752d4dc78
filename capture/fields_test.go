package capture

import (
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"
)

// Every parameter reads its text form, writes it back the same way, and
// names itself when the text is wrong.
func TestParamsSet(t *testing.T) {
	tests := []struct {
		name, value, get string
		check            func(p Params) bool
		bad              string // a value Set refuses, and what its error says
		badWant          string
	}{
		{"type", "offcpu", "offcpu", func(p Params) bool { return p.Type == OffCPU }, "", ""},
		{"duration", "2.5", "2.5s", func(p Params) bool { return p.Duration == Duration(2500*time.Millisecond) }, "soon", `duration "soon" is not valid`},
		{"hz", "499", "499", func(p Params) bool { return p.Hz == 499 }, "0x10", `hz "0x10" is not a whole number`},
		{"pid", "12, 34", "12,34", func(p Params) bool { return slices.Equal(p.PIDs, []int{12, 34}) }, "x1", "pid must be a positive number"},
		{"tid", "7", "7", func(p Params) bool { return slices.Equal(p.TIDs, []int{7}) }, "7.5", "tid must be a positive number"},
		{"comm", "nginx", "nginx", func(p Params) bool { return p.Comm == "nginx" }, "", ""},
		{"event", "page-faults", "page-faults", func(p Params) bool { return p.Event == "page-faults" }, "", ""},
		{"unwind", "dwarf", "dwarf", func(p Params) bool { return p.Unwind == "dwarf" }, "", ""},
		{"state", "D", "D", func(p Params) bool { return p.State == "D" }, "", ""},
		{"min_block", "1ms", "1ms", func(p Params) bool { return p.MinBlock == Duration(time.Millisecond) }, "1 ms", `min_block "1 ms" is not valid`},
		{"max_block", "2", "2s", func(p Params) bool { return p.MaxBlock == Duration(2*time.Second) }, "", ""},
		{"view", "inuse", "inuse", func(p Params) bool { return p.View == "inuse" }, "", ""},
	}
	if len(tests) != len(Fields) {
		t.Errorf("%d fields, %d tested", len(Fields), len(tests))
	}
	for _, tt := range tests {
		var p Params
		if err := p.Set(tt.name, tt.value); err != nil || !tt.check(p) {
			t.Errorf("%s=%q: %+v, %v", tt.name, tt.value, p, err)
		}
		if got := p.Get(tt.name); got != tt.get {
			t.Errorf("%s=%q: reads back as %q, want %q", tt.name, tt.value, got, tt.get)
		}
		if tt.bad != "" {
			var p Params
			if err := p.Set(tt.name, tt.bad); err == nil || !strings.Contains(err.Error(), tt.badWant) {
				t.Errorf("%s=%q: error %v, want %q", tt.name, tt.bad, err, tt.badWant)
			}
		}
	}
	// Repeated ids add up, as repeated --pid flags do.
	var p Params
	p.Set("pid", "1")
	p.Set("pid", "2,3")
	if !slices.Equal(p.PIDs, []int{1, 2, 3}) {
		t.Errorf("repeated pid: %v", p.PIDs)
	}
	if err := p.Set("seconds", "5"); err == nil || !strings.Contains(err.Error(), `unknown parameter "seconds": allowed are type, duration, hz, pid, tid, comm, event, unwind, state, min_block, max_block, view`) {
		t.Errorf("unknown name: %v", err)
	}
}

// A limit below scorch's own is the one named, with the setting behind it.
func TestParamsCheckLimits(t *testing.T) {
	l := Limits{MaxDuration: time.Minute, MaxHz: 500, MaxDurationSetting: "--max-duration", MaxHzSetting: "--max-hz"}
	tests := []struct {
		p    Params
		l    Limits
		want string
	}{
		{Params{Type: CPU, Hz: 500}, l, ""},
		{Params{Type: CPU, Hz: 501}, l, "hz 501 is out of range: allowed 1..500 (--max-hz)"},
		{Params{Type: CPU, Hz: 20000}, l, "hz 20000 is out of range: allowed 1..500 (--max-hz)"},
		{Params{Type: CPU, Hz: 20000}, Limits{}, "hz 20000 is out of range: allowed 1..10000"},
		{Params{Type: CPU, Hz: 20000}, Limits{MaxHz: 50000, MaxHzSetting: "--max-hz"}, "hz 20000 is out of range: allowed 1..10000"},
		{Params{Type: CPU, Duration: Duration(2 * time.Minute)}, l, "duration 2m0s is over the limit of 1m0s (--max-duration)"},
		{Params{Type: CPU, Duration: Duration(2 * time.Minute)}, Limits{}, ""},
		{Params{Type: CPU, Duration: Duration(time.Microsecond)}, l, "duration 1µs is below the minimum of 1ms: allowed 1ms up to 1m0s"},
		{Params{Type: CPU, Duration: Duration(time.Nanosecond)}, Limits{}, "duration 1ns is below the minimum of 1ms: allowed at least 1ms"},
		{Params{Type: CPU, Duration: Duration(time.Millisecond)}, l, ""},
		{Params{Type: CPU, Unwind: "lbr"}, l, `unwind "lbr" is not supported: allowed values are fp, auto, dwarf`},
	}
	for _, tt := range tests {
		err := tt.p.Check(tt.l)
		if got := ""; err != nil {
			got = err.Error()
			if got != tt.want {
				t.Errorf("%+v under %+v: %q, want %q", tt.p, tt.l, got, tt.want)
			}
		} else if tt.want != "" {
			t.Errorf("%+v under %+v: accepted, want %q", tt.p, tt.l, tt.want)
		}
	}
}

// FuzzParamsSet: any name and value set a field or give an error naming
// the parameter, never a panic.
func FuzzParamsSet(f *testing.F) {
	for _, name := range FieldNames() {
		f.Add(name, "1")
	}
	f.Add("pid", "1,,-2, x")
	f.Add("duration", "1e400")
	f.Add("nope", "")
	f.Fuzz(func(t *testing.T, name, value string) {
		var p Params
		err := p.Set(name, value)
		if err != nil && !strings.Contains(err.Error(), name) && !strings.Contains(err.Error(), strconv.Quote(name)) {
			t.Fatalf("Set(%q, %q): error %q does not name the parameter", name, value, err)
		}
		if got := p.Get(name); err == nil && got != "" { // "" is unset: surfaces skip it
			var q Params
			if err := q.Set(name, got); err != nil || q.Get(name) != got {
				t.Fatalf("Set(%q, %q) reads back %q, which sets %q (%v)", name, value, got, q.Get(name), err)
			}
		}
	})
}
