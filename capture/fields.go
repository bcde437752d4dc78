package capture

import (
	"fmt"
	"strconv"
	"strings"
	"time"
)

// FieldKind says what a parameter's value is, for the surfaces that are
// typed (JSON): the text form every surface gives Params.Set follows it.
type FieldKind uint8

// Field kinds.
const (
	FieldString   FieldKind = iota
	FieldInt                // a whole number
	FieldIDs                // ids: a number, a list or a comma-separated string
	FieldDuration           // a Go duration ("10s") or a number of seconds
)

// Field is one capture parameter under its API name (the JSON field and
// query parameter; flags spell '_' as '-'). Every surface (record flags,
// the JSON body, the form, the blocking routes' query) builds Params
// through this table and Params.Set, and names its own extras.
type Field struct {
	Name  string
	Kind  FieldKind
	Usage string
	set   func(p *Params, s string) error
	get   func(p *Params) string
}

func stringField(name, usage string, v func(p *Params) *string) Field {
	return Field{Name: name, Usage: usage,
		set: func(p *Params, s string) error { *v(p) = s; return nil },
		get: func(p *Params) string { return *v(p) }}
}

func durationField(name, usage string, v func(p *Params) *Duration) Field {
	return Field{Name: name, Kind: FieldDuration, Usage: usage,
		set: func(p *Params, s string) error {
			d, err := parseDuration(name, s)
			if err == nil && name == "duration" && d >= 0 && d < MinDuration {
				// Given explicitly, zero is not "unset" (the default) but a
				// capture too short to see anything.
				return fmt.Errorf("duration %q is below the minimum of %s: give at least %s, such as 10s", s, MinDuration, MinDuration)
			}
			*v(p) = Duration(d)
			return err
		},
		get: func(p *Params) string {
			if *v(p) == 0 {
				return ""
			}
			return time.Duration(*v(p)).String()
		}}
}

func idsField(name, usage string, v func(p *Params) *[]int) Field {
	return Field{Name: name, Kind: FieldIDs, Usage: usage,
		set: func(p *Params, s string) error {
			ids, err := ParseIDs(name, s)
			*v(p) = append(*v(p), ids...)
			return err
		},
		get: func(p *Params) string {
			var parts []string
			for _, id := range *v(p) {
				parts = append(parts, strconv.Itoa(id))
			}
			return strings.Join(parts, ",")
		}}
}

// Fields are the capture parameters, in the order messages list them.
var Fields = []Field{
	stringField("type", "capture type: "+TypeList(), func(p *Params) *string { return (*string)(&p.Type) }),
	durationField("duration", "how long to record (Go duration or seconds)", func(p *Params) *Duration { return &p.Duration }),
	{Name: "hz", Kind: FieldInt, Usage: fmt.Sprintf("sampling frequency, %d..%d", MinHz, MaxHz),
		set: func(p *Params, s string) error {
			n, err := strconv.Atoi(strings.TrimSpace(s))
			if err != nil {
				return fmt.Errorf("hz %q is not a whole number of samples per second, such as %d", s, DefaultHz)
			}
			p.Hz = n
			return nil
		},
		get: func(p *Params) string {
			if p.Hz == 0 {
				return ""
			}
			return strconv.Itoa(p.Hz)
		}},
	idsField("pid", "profile these processes (comma-separated)", func(p *Params) *[]int { return &p.PIDs }),
	idsField("tid", "profile these threads (comma-separated)", func(p *Params) *[]int { return &p.TIDs }),
	stringField("comm", "profile processes with this name", func(p *Params) *string { return &p.Comm }),
	stringField("event", "event name (mem and event types)", func(p *Params) *string { return &p.Event }),
	stringField("unwind", "user stack unwinding: "+strings.Join(UnwindModes, ", "), func(p *Params) *string { return &p.Unwind }),
	stringField("state", "off-CPU task state: all, S or D", func(p *Params) *string { return &p.State }),
	durationField("min_block", "off-CPU: shortest blocked time kept (default 1us)", func(p *Params) *Duration { return &p.MinBlock }),
	durationField("max_block", "off-CPU: longest blocked time kept (default unbounded)", func(p *Params) *Duration { return &p.MaxBlock }),
	stringField("view", "mem: alloc or inuse", func(p *Params) *string { return &p.View }),
}

// LookupField finds a parameter by its API name.
func LookupField(name string) (*Field, bool) {
	for i := range Fields {
		if Fields[i].Name == name {
			return &Fields[i], true
		}
	}
	return nil, false
}

// FieldNames are the parameters' API names, in table order.
func FieldNames() []string {
	names := make([]string, len(Fields))
	for i, f := range Fields {
		names[i] = f.Name
	}
	return names
}

// Set sets the parameter name from its text form (ids append, so that a
// repeated flag adds targets). The error names the parameter and what it
// takes; ranges are Validate's to check.
func (p *Params) Set(name, value string) error {
	f, ok := LookupField(name)
	if !ok {
		return fmt.Errorf("unknown parameter %q: allowed are %s", name, strings.Join(FieldNames(), ", "))
	}
	return f.set(p, value)
}

// Get is the text form of the parameter name ("" when unset), which Set reads back.
func (p *Params) Get(name string) string {
	f, ok := LookupField(name)
	if !ok {
		return ""
	}
	return f.get(p)
}

// ParseIDs reads a comma-separated list of process or thread ids (name is
// the parameter, for the message); empty items are skipped. Ranges are
// Validate's to check.
func ParseIDs(name, s string) ([]int, error) {
	var ids []int
	for _, f := range strings.Split(s, ",") {
		f = strings.TrimSpace(f)
		if f == "" {
			continue
		}
		n, err := strconv.Atoi(f)
		if err != nil {
			return nil, fmt.Errorf("%s must be a positive number, a list of numbers or a comma-separated string of numbers, not %q", name, f)
		}
		ids = append(ids, n)
	}
	return ids, nil
}

// parseDuration is ParseDuration with the parameter's name in the message.
func parseDuration(name, s string) (time.Duration, error) {
	d, err := ParseDuration(s)
	if err != nil {
		return 0, fmt.Errorf("%s %q is not valid: use a number of seconds or a Go duration such as 10s or 500ms", name, s)
	}
	return d, nil
}
