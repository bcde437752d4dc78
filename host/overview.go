package host

import (
	"math"
	"strconv"
)

// Num is a figure of the overview; NaN (not measured here) is JSON null.
// Values are rounded to 3 significant decimals to keep answers small.
type Num float64

// MarshalJSON writes null for NaN and infinities.
func (n Num) MarshalJSON() ([]byte, error) {
	f := float64(n)
	if math.IsNaN(f) || math.IsInf(f, 0) {
		return []byte("null"), nil
	}
	return strconv.AppendFloat(nil, math.Round(f*1000)/1000, 'f', -1, 64), nil
}

// Known reports whether the figure was measured.
func (n Num) Known() bool { return !math.IsNaN(float64(n)) && !math.IsInf(float64(n), 0) }

var unknown = Num(math.NaN())

// Statuses of a resource, worst last.
const (
	StatusOK       = "ok"
	StatusWarning  = "warning"
	StatusCritical = "critical"
)

type level int

const (
	levelOK level = iota
	levelWarning
	levelCritical
)

func (l level) String() string {
	switch l {
	case levelWarning:
		return StatusWarning
	case levelCritical:
		return StatusCritical
	}
	return StatusOK
}

// Overview is the host's USE table, top processes, findings and kernel
// errors at one moment: GET /api/overview.json.
type Overview struct {
	Time     float64 `json:"time"`     // seconds since the epoch of the latest sample
	Interval float64 `json:"interval"` // seconds between samples
	Uptime   float64 `json:"uptime"`
	Load     [3]Num  `json:"load"`
	CPUs     int     `json:"cpus"` // online
	Samples  int     `json:"samples"`
	// Resources, in the order of the 60-second checklist: cpu, memory,
	// disk:NAME..., net:NAME..., tcp.
	Resources    []Resource        `json:"resources"`
	Top          Top               `json:"top"`
	TopUnits     map[string]string `json:"top_units"`
	Findings     []Finding         `json:"findings"`
	KernelErrors []KernelError     `json:"kernel_errors"`
	// Missing names each file this host does not have or lets us read,
	// and what the overview lacks because of it.
	Missing []string `json:"missing"`
	// Cost is the sampler's own CPU time per second of wall time (percent
	// of one CPU), measured from its own ticks.
	Cost Num `json:"sampler_cpu_percent"`
}

// Resource is one row of the USE table.
type Resource struct {
	Resource    string   `json:"resource"`
	Utilization Num      `json:"utilization"`
	Saturation  Num      `json:"saturation"`
	Errors      Num      `json:"errors"`
	Units       Units    `json:"units"`
	Series      Series   `json:"series"`
	Status      string   `json:"status"`
	Rule        string   `json:"rule"`
	Details     []Detail `json:"details"`
	Note        string   `json:"note,omitempty"`
}

// Units says what each column of a resource counts.
type Units struct {
	Utilization string `json:"utilization"`
	Saturation  string `json:"saturation"`
	Errors      string `json:"errors"`
}

// Series are a resource's last minutes, one value per sample, oldest first.
type Series struct {
	Start       float64 `json:"start"` // seconds since the epoch of the first value
	Step        float64 `json:"step"`  // seconds
	Utilization []Num   `json:"utilization"`
	Saturation  []Num   `json:"saturation"`
	Errors      []Num   `json:"errors"`
	Status      []int8  `json:"status"` // 0 ok, 1 warning, 2 critical, per sample
}

// Detail is one more figure of a resource (iowait, await, throughput...).
type Detail struct {
	Name  string `json:"name"`
	Value Num    `json:"value"`
	Units string `json:"units"`
}

// Top lists the processes that use or wait for a resource most, largest
// first.
type Top struct {
	CPU      []Proc `json:"cpu"`
	Runqueue []Proc `json:"runqueue"`
	IO       []Proc `json:"io"`
	Blocked  []Proc `json:"blocked"`
	Faults   []Proc `json:"faults"`
}

// Proc is one process of a top list.
type Proc struct {
	PID   int    `json:"pid"`
	Comm  string `json:"comm"`
	Value Num    `json:"value"`
}

// TopUnits are the units of each top list's value.
var TopUnits = map[string]string{
	"cpu":      "% of one CPU",
	"runqueue": "ms waiting in a run queue per s",
	"io":       "storage bytes read+written per s",
	"blocked":  "of the last 5 samples in D state",
	"faults":   "major page faults per s",
}

// Finding is a resource in trouble and the capture that explains it.
type Finding struct {
	Resource string `json:"resource"`
	Status   string `json:"status"`
	Message  string `json:"message"`
	Drill    Drill  `json:"drill"`
}

// Drill is the body of POST /api/captures that explains a finding.
type Drill struct {
	Type     string `json:"type"`
	PID      int    `json:"pid,omitempty"`
	Duration string `json:"duration"`
	State    string `json:"state,omitempty"`
	Event    string `json:"event,omitempty"`
}

// KernelError is a warning or worse from the kernel log.
type KernelError struct {
	Time    float64 `json:"time"` // seconds since the epoch (from boot time; drifts with suspend)
	Level   string  `json:"level"`
	Message string  `json:"message"`
}
