package capture

import (
	"encoding/json"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"
)

// Params is what a user asks for when starting a capture, from the command
// line or the HTTP API (the JSON names are the API's fields).
type Params struct {
	Type     Type     `json:"type"`
	Duration Duration `json:"duration,omitempty"`
	Hz       int      `json:"hz,omitempty"`
	PIDs     []int    `json:"pid,omitempty"`
	TIDs     []int    `json:"tid,omitempty"`
	Comm     string   `json:"comm,omitempty"`
	Command  []string `json:"command,omitempty"` // -- CMD ARGS (CLI only)
	Event    string   `json:"event,omitempty"`
	Unwind   string   `json:"unwind,omitempty"` // fp, auto, dwarf
	State    string   `json:"state,omitempty"`  // all, S, D
	MinBlock Duration `json:"min_block,omitempty"`
	MaxBlock Duration `json:"max_block,omitempty"`
	View     string   `json:"view,omitempty"` // alloc, inuse
}

// Limits on Params.
const (
	DefaultHz       = 99
	MinHz           = 1
	MaxHz           = 10000
	DefaultDuration = 10 * time.Second
	// MinDuration is the shortest capture: below a millisecond a sampler
	// sees nothing and the setup costs more than the recording.
	MinDuration   = time.Millisecond
	DefaultUnwind = "auto"
)

// UnwindModes are the allowed --unwind values.
var UnwindModes = []string{"fp", "auto", "dwarf"}

// Defaults fills in unset fields: the duration and unwinding of every
// capture, then the defaults of its type (TypeInfo.Defaults).
func (p *Params) Defaults() {
	if p.Duration == 0 {
		p.Duration = Duration(DefaultDuration)
	}
	if p.Unwind == "" {
		p.Unwind = DefaultUnwind
	}
	p.applyDefaults(defaultsOf(p.Type))
}

// Limits bound Params where a surface allows less than scorch can do.
type Limits struct {
	MaxDuration time.Duration // 0: no limit
	MaxHz       int           // 0: MaxHz
	// The settings behind the limits, named in messages when set
	// ("--max-duration").
	MaxDurationSetting, MaxHzSetting string
}

// Validate checks every field and names the problem and the allowed values.
// maxDuration of 0 means no limit.
func (p *Params) Validate(maxDuration time.Duration) error {
	return p.Check(Limits{MaxDuration: maxDuration})
}

// Check is Validate under limits: a message about a limit names the limit
// that applies, and the setting behind it.
func (p *Params) Check(l Limits) error {
	setting := func(name string) string {
		if name == "" {
			return ""
		}
		return " (" + name + ")"
	}
	maxHz := MaxHz
	if l.MaxHz > 0 && l.MaxHz < MaxHz {
		maxHz = l.MaxHz
	} else {
		l.MaxHzSetting = ""
	}
	if _, err := ParseType(string(p.Type)); err != nil {
		return err
	}
	if p.Duration < 0 {
		return fmt.Errorf("duration %s is negative: give a positive duration such as 10s", time.Duration(p.Duration))
	}
	if p.Duration > 0 && time.Duration(p.Duration) < MinDuration {
		return fmt.Errorf("duration %s is below the minimum of %s: allowed %s", time.Duration(p.Duration), MinDuration, durationRange(l.MaxDuration))
	}
	if l.MaxDuration > 0 && time.Duration(p.Duration) > l.MaxDuration {
		return fmt.Errorf("duration %s is over the limit of %s%s", time.Duration(p.Duration), l.MaxDuration, setting(l.MaxDurationSetting))
	}
	if p.Hz != 0 && (p.Hz < MinHz || p.Hz > maxHz) {
		return fmt.Errorf("hz %d is out of range: allowed %d..%d%s", p.Hz, MinHz, maxHz, setting(l.MaxHzSetting))
	}
	if !slices.Contains(UnwindModes, p.Unwind) && p.Unwind != "" {
		return fmt.Errorf("unwind %q is not supported: allowed values are %s", p.Unwind, strings.Join(UnwindModes, ", "))
	}
	for _, pid := range p.PIDs {
		if pid <= 0 {
			return fmt.Errorf("pid %d is not valid: give positive process ids", pid)
		}
	}
	for _, tid := range p.TIDs {
		if tid <= 0 {
			return fmt.Errorf("tid %d is not valid: give positive thread ids", tid)
		}
	}
	targets := 0
	for _, set := range []bool{len(p.PIDs) > 0, len(p.TIDs) > 0, p.Comm != "", len(p.Command) > 0} {
		if set {
			targets++
		}
	}
	if targets > 1 {
		return fmt.Errorf("choose one target: pid, tid, comm or a command")
	}
	if len(p.Comm) > 15 {
		return fmt.Errorf("comm %q is longer than the kernel's 15 characters", p.Comm)
	}
	if p.State != "" && p.State != "all" && p.State != "S" && p.State != "D" {
		return fmt.Errorf("state %q is not supported: allowed values are all, S, D", p.State)
	}
	if p.MinBlock < 0 || p.MaxBlock < 0 {
		return fmt.Errorf("min_block and max_block must not be negative")
	}
	if p.MaxBlock != 0 && p.MaxBlock < p.MinBlock {
		return fmt.Errorf("max_block %s is below min_block %s", time.Duration(p.MaxBlock), time.Duration(p.MinBlock))
	}
	if p.View != "" && p.View != "alloc" && p.View != "inuse" {
		return fmt.Errorf("view %q is not supported: allowed values are alloc, inuse", p.View)
	}
	return nil
}

// durationRange names the allowed durations for a message.
func durationRange(max time.Duration) string {
	if max > 0 {
		return fmt.Sprintf("%s up to %s", MinDuration, max)
	}
	return fmt.Sprintf("at least %s", MinDuration)
}

// Duration is a time.Duration that reads and writes JSON as a Go duration
// string ("10s"); a bare number is read as seconds.
type Duration time.Duration

// MarshalJSON writes the duration as a string such as "10s".
func (d Duration) MarshalJSON() ([]byte, error) {
	return json.Marshal(time.Duration(d).String())
}

// UnmarshalJSON reads "10s", "1.5m" or a number of seconds.
func (d *Duration) UnmarshalJSON(b []byte) error {
	var s string
	if err := json.Unmarshal(b, &s); err != nil {
		var f float64
		if err2 := json.Unmarshal(b, &f); err2 != nil {
			return fmt.Errorf("duration must be a string such as \"10s\" or a number of seconds")
		}
		*d = Duration(f * float64(time.Second))
		return nil
	}
	v, err := ParseDuration(s)
	if err != nil {
		return err
	}
	*d = Duration(v)
	return nil
}

// ParseDuration reads a Go duration ("10s", "500ms") or a bare number of seconds.
func ParseDuration(s string) (time.Duration, error) {
	if f, err := strconv.ParseFloat(s, 64); err == nil {
		return time.Duration(f * float64(time.Second)), nil
	}
	d, err := time.ParseDuration(s)
	if err != nil {
		return 0, fmt.Errorf("duration %q is not valid: use a number of seconds or a Go duration such as 10s or 500ms", s)
	}
	return d, nil
}
