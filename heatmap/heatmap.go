// Package heatmap computes FlameScope's sub-second offset heatmap of a
// capture: one column per second (wider for long captures), one row per
// slice of that second, each cell holding what happened in its time slice.
//
// Cell values are sample counts for cpu captures, blocked nanoseconds for
// the off-CPU types (offcpu, wakeup, offwake) and the summed event value
// (bytes, counts) for the others.
//
// Off-CPU events are intervals (Event.Time is the block start, Value its
// length). Their time is spread over the cells the interval covers, so a
// cell holds the blocked time that fell inside it: a cell can never exceed
// its length times the number of threads, and a ten-second sleep shows as a
// ten-second band rather than one cell ten seconds hot that would wash out
// the colour scale of everything else.
package heatmap

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"slices"
	"strconv"
	"time"

	"github.com/scorch-dev/scorch/capture"
)

// Heatmap is the JSON answer of heatmap.json and `--format heatmap-json`.
// Values[c][r] covers Start + c*ColumnSeconds + r/Rows*ColumnSeconds onwards.
type Heatmap struct {
	Start         float64   `json:"start"`          // unix seconds of the capture start
	ColumnSeconds float64   `json:"column_seconds"` // length of one column
	Columns       int       `json:"columns"`
	Rows          int       `json:"rows"`
	Unit          string    `json:"unit"`     // samples, ns, bytes, count
	Duration      float64   `json:"duration"` // seconds covered by events or the capture
	Values        [][]int64 `json:"values"`   // [column][row], row 0 the start of the column
	Max           int64     `json:"max"`
}

// AllowedRows are the row counts offered (49 and 99 avoid beat patterns
// with sampling at 99 Hz).
var AllowedRows = []int{10, 25, 49, 50, 99, 100}

// DefaultRows is the row count when none is asked for.
const DefaultRows = 50

// MaxColumns bounds the width: longer captures get wider columns.
const MaxColumns = 300

// maxSpan bounds the time a heatmap may cover (about 2.2 years), so that
// cell arithmetic cannot overflow on hostile event times.
const maxSpan = int64(1) << 56

// ErrNoTimestamps is returned for captures whose events carry no time
// (folded and pprof imports).
var ErrNoTimestamps = errors.New("this capture has no timestamps: heatmaps need per-event times (record with scorch, or import a perf script or capture file)")

// niceColumns are the column widths, in seconds, tried in order for long captures.
var niceColumns = []int64{1, 2, 5, 10, 15, 20, 30, 60, 120, 300, 600, 900, 1800, 3600, 7200, 10800, 21600, 43200, 86400}

// ParseRows reads the rows parameter; empty means DefaultRows.
func ParseRows(s string) (int, error) {
	if s == "" {
		return DefaultRows, nil
	}
	n, err := strconv.Atoi(s)
	if err != nil || !slices.Contains(AllowedRows, n) {
		return 0, fmt.Errorf("rows %q is not supported: allowed values are %s", s, rowList())
	}
	return n, nil
}

func rowList() string {
	s := ""
	for i, r := range AllowedRows {
		if i > 0 {
			s += ", "
		}
		s += strconv.Itoa(r)
	}
	return s
}

// Compute builds the heatmap of the events q selects. q's pid, tid, comm,
// cpu, idle and view filters apply; From and To do not, since the heatmap
// is the map on which ranges are chosen and always covers the whole capture.
func Compute(c *capture.Capture, q capture.Query, rows int) (*Heatmap, error) {
	if !slices.Contains(AllowedRows, rows) {
		return nil, fmt.Errorf("rows %d is not supported: allowed values are %s", rows, rowList())
	}
	if !c.Meta.Timestamps {
		return nil, ErrNoTimestamps
	}
	q.From, q.To, q.Ranges = 0, 0, nil
	// One pass over the events on the grid the capture's duration implies;
	// a second only when events run past it (imports with an estimated
	// duration), so the common case reads the events once.
	span := int64(c.Meta.Duration)
	if span <= 0 || span > maxSpan {
		span = int64(time.Second)
	}
	h, fits := compute(c, q, rows, span)
	if !fits {
		span, err := spanOf(c)
		if err != nil {
			return nil, err
		}
		h, _ = compute(c, q, rows, span)
	}
	return h, nil
}

// compute bins the events on a grid covering span and reports whether
// every event (filtered or not) fell inside it.
func compute(c *capture.Capture, q capture.Query, rows int, span int64) (*Heatmap, bool) {
	colNs := columnNs(span)
	cols := max(int((span+colNs-1)/colNs), 1)
	unit := c.Meta.Unit
	if unit == "" {
		unit = c.Meta.Type.Unit(c.Meta.Event)
	}
	h := &Heatmap{
		ColumnSeconds: float64(colNs) / 1e9,
		Columns:       cols,
		Rows:          rows,
		Unit:          unit,
		Duration:      float64(span) / 1e9,
		Values:        make([][]int64, cols),
	}
	if !c.Meta.Start.IsZero() {
		h.Start = float64(c.Meta.Start.Unix()) + float64(c.Meta.Start.Nanosecond())/1e9
	}
	flat := make([]int64, cols*rows)
	for i := range h.Values {
		h.Values[i] = flat[i*rows : (i+1)*rows : (i+1)*rows]
	}

	m := c.Matcher(q)
	// Without pid, tid, cpu, comm or view filters only the idle flag
	// selects, which is much cheaper to test inline.
	simple := len(q.PIDs) == 0 && len(q.TIDs) == 0 && len(q.CPUs) == 0 && q.Comm == "" && q.View != "inuse"
	skip := capture.FlagIdle
	if q.IncludeIdle {
		skip = 0
	}
	r := int64(rows)
	end := int64(cols) * colNs
	var maxTime, maxValue int64
	info := c.Meta.Type.Info()
	switch {
	case info.Interval:
		// Whole cells as a difference array: an interval costs two steps
		// however many cells it covers (imports can hold many long,
		// overlapping ones).
		whole := make([]int64, len(flat)+1)
		for i := range c.Events {
			e := &c.Events[i]
			maxTime = max(maxTime, e.Time)
			maxValue = max(maxValue, e.Value)
			if simple && e.Flags&skip != 0 || !simple && !m.Match(e) {
				continue
			}
			if e.Time < end && e.Value <= maxSpan {
				spread(flat, whole, e.Time, e.Time+max(e.Value, 0), end, colNs, r)
			}
		}
		// The cells intervals covered whole, each its own length.
		var run int64
		for g := range flat {
			run += whole[g]
			if run != 0 {
				flat[g] = capture.SatAdd(flat[g], run*(cellStart(int64(g)+1, colNs, r)-cellStart(int64(g), colNs, r)))
			}
		}
	default:
		count := info.Sampled // one sample each, whatever its period
		for i := range c.Events {
			e := &c.Events[i]
			t := e.Time
			maxTime = max(maxTime, t)
			if t < 0 || t >= end || simple && e.Flags&skip != 0 || !simple && !m.Match(e) {
				continue
			}
			v := e.Value
			if count {
				v = 1
			}
			flat[t*r/colNs] += v
		}
	}
	for _, v := range flat {
		h.Max = max(h.Max, v)
	}
	fits := maxTime < end && (maxValue <= end && maxTime+maxValue <= end)
	return h, fits
}

// spanOf is the time the heatmap covers: the capture's duration, or longer
// when events fall after it (imports whose duration is only estimated).
func spanOf(c *capture.Capture) (int64, error) {
	interval := c.Meta.Type.Info().Interval
	span := int64(c.Meta.Duration)
	for i := range c.Events {
		e := &c.Events[i]
		if e.Time > maxSpan || (interval && e.Value > maxSpan) {
			return 0, fmt.Errorf("event %d at %d ns lasting %d ns is beyond %s: event times are out of range", i, e.Time, e.Value, time.Duration(maxSpan))
		}
		t := e.Time + 1
		if interval && e.Value > 0 {
			t = capture.SatAdd(e.Time, e.Value)
		}
		if t > span {
			span = t
		}
	}
	if span <= 0 {
		span = int64(time.Second)
	}
	if span > maxSpan {
		return 0, fmt.Errorf("capture lasts %s, more than %s: its duration is out of range", time.Duration(span), time.Duration(maxSpan))
	}
	return span, nil
}

// columnNs picks a whole number of seconds per column so that at most
// MaxColumns columns cover span; whole seconds keep rows meaning the same
// sub-second offsets in every column when columns are one second wide.
func columnNs(span int64) int64 {
	for _, s := range niceColumns {
		ns := s * int64(time.Second)
		if (span+ns-1)/ns <= MaxColumns {
			return ns
		}
	}
	perCol := (span + MaxColumns - 1) / MaxColumns
	secs := (perCol + int64(time.Second) - 1) / int64(time.Second)
	return secs * int64(time.Second)
}

// spread adds the interval [s, e) clipped to [0, end) to the cells it
// covers, each getting the nanoseconds that fall inside it: the partial
// first and last cells in flat, the cells between as +1 from the second
// to -1 after the last in whole (a difference array of covering
// intervals). Cell g of the flat timeline starts at ceil(g*colNs/r).
func spread(flat, whole []int64, s, e, end, colNs, r int64) {
	s = max(s, 0)
	e = min(e, end)
	if e <= s {
		return
	}
	first := s * r / colNs
	last := (e - 1) * r / colNs
	if first == last {
		flat[first] += e - s
		return
	}
	flat[first] += cellStart(first+1, colNs, r) - s
	flat[last] += e - cellStart(last, colNs, r)
	whole[first+1]++
	whole[last]--
}

func cellStart(g, colNs, r int64) int64 {
	return (g*colNs + r - 1) / r
}

// WriteJSON writes the heatmap of the events q selects as JSON, the
// `heatmap-json` output format.
func WriteJSON(w io.Writer, c *capture.Capture, q capture.Query, rows int) error {
	h, err := Compute(c, q, rows)
	if err != nil {
		return err
	}
	if err := json.NewEncoder(w).Encode(h); err != nil {
		return fmt.Errorf("writing heatmap: %w", err)
	}
	return nil
}

// Norms are the cell values heatmap.json offers (parameter norm): sum,
// the capture's unit added up per cell (the default), and threads, for
// off-CPU types, the average number of threads off CPU during the cell.
var Norms = []string{"sum", "threads"}

// ParseNorm reads the norm parameter; empty is "sum".
func ParseNorm(s string) (string, error) {
	if s == "" {
		return "sum", nil
	}
	if !slices.Contains(Norms, s) {
		return "", fmt.Errorf("norm %q is not supported: allowed values are sum, threads (threads for off-CPU types)", s)
	}
	return s, nil
}

// Threads is a heatmap whose cells are the average number of threads off
// CPU during them: an off-CPU heatmap in a unit a person reads (its sum
// grows with the number of threads, not with how long each waited).
type Threads struct {
	Start         float64     `json:"start"`
	ColumnSeconds float64     `json:"column_seconds"`
	Columns       int         `json:"columns"`
	Rows          int         `json:"rows"`
	Unit          string      `json:"unit"` // threads
	Duration      float64     `json:"duration"`
	Values        [][]float64 `json:"values"`
	Max           float64     `json:"max"`
}

// ErrNotIntervals is returned for norm=threads of captures whose events are
// not time intervals.
var ErrNotIntervals = errors.New("norm threads applies to off-CPU types (offcpu, wakeup, offwake), whose cells are blocked time: leave norm out, or use norm=sum")

// PerThread divides each cell of an off-CPU heatmap (ns) by the cell's
// length: the average number of threads off CPU in it.
func (h *Heatmap) PerThread() (*Threads, error) {
	if h.Unit != "ns" {
		return nil, ErrNotIntervals
	}
	t := &Threads{Start: h.Start, ColumnSeconds: h.ColumnSeconds, Columns: h.Columns, Rows: h.Rows, Unit: "threads",
		Duration: h.Duration, Values: make([][]float64, len(h.Values))}
	colNs := int64(math.Round(h.ColumnSeconds * 1e9))
	r := int64(h.Rows)
	for c, col := range h.Values {
		t.Values[c] = make([]float64, len(col))
		for row, v := range col {
			g := int64(c)*r + int64(row)
			cell := cellStart(g+1, colNs, r) - cellStart(g, colNs, r)
			if cell <= 0 {
				continue
			}
			// Four decimals: a hundredth of a percent of a thread.
			f := math.Round(float64(v)/float64(cell)*1e4) / 1e4
			t.Values[c][row] = f
			t.Max = max(t.Max, f)
		}
	}
	return t, nil
}
