// Package timeline computes the time views of a capture: per-thread
// activity tracks (threads.json) and a thread's stack chart
// (stackchart.json). Both are pre-bucketed on the server, so the browser
// gets what it can draw, never the raw events.
package timeline

import (
	"errors"
	"fmt"
	"math"
	"strconv"
	"time"

	"github.com/scorch-dev/scorch/capture"
)

// ErrNoTimestamps is returned for captures whose events carry no time
// (folded and pprof imports).
var ErrNoTimestamps = errors.New("this capture has no timestamps: threads and stack charts need per-event times (record with scorch, or import a perf script or capture file); summary.json says \"timestamps\": false for such captures")

// maxSpan bounds the time a timeline covers (about 2.2 years), so that
// bucket arithmetic cannot overflow on hostile event times.
const maxSpan = int64(1) << 56

// window is the part of the capture a view covers, in ns from the capture
// start, and the ranges inside it that are selected.
type window struct {
	from, to int64
	spans    [][2]int64 // the selected ranges clipped to [from, to); one when the query has one range or none
}

// windowOf is the hull of the query's ranges, the end of the capture
// (its duration, or the end of its last event when events run past it)
// where a range is open.
func windowOf(c *capture.Capture, q capture.Query) (window, error) {
	if !c.Meta.Timestamps {
		return window{}, ErrNoTimestamps
	}
	end, err := spanOf(c)
	if err != nil {
		return window{}, err
	}
	ns := func(s float64) int64 { return int64(math.Round(s * 1e9)) }
	w := window{from: ns(q.From), to: end}
	if q.To != 0 {
		w.to = min(ns(q.To), maxSpan)
	}
	if w.from >= w.to {
		return w, fmt.Errorf("range %g..%g is outside the capture: valid interval is 0..%.3f seconds", q.From, q.To, float64(end)/1e9)
	}
	rs := q.QueryRanges()
	if rs == nil {
		rs = []capture.Range{{}}
	}
	for _, r := range rs {
		lo, hi := max(ns(r.From), w.from), w.to
		if r.To != 0 {
			hi = min(ns(r.To), w.to)
		}
		if lo < hi {
			w.spans = append(w.spans, [2]int64{lo, hi})
		}
	}
	return w, nil
}

// spanOf is the end of the capture in ns: its duration, or later when
// events fall after it (imports whose duration is only estimated).
func spanOf(c *capture.Capture) (int64, error) {
	interval := c.Meta.Type.Info().Interval
	span := int64(c.Meta.Duration)
	for i := range c.Events {
		e := &c.Events[i]
		if e.Time > maxSpan || e.Time < 0 || (interval && e.Value > maxSpan) {
			return 0, fmt.Errorf("event %d at %d ns lasting %d ns is beyond %s: event times are out of range", i, e.Time, e.Value, time.Duration(maxSpan))
		}
		t := e.Time + 1
		if interval && e.Value > 0 {
			t = e.Time + e.Value
		}
		span = max(span, t)
	}
	if span <= 0 {
		span = int64(time.Second)
	}
	return min(span, maxSpan), nil
}

// clip calls fn for each part of [s, e) inside the window's ranges.
func (w *window) clip(s, e int64, fn func(s, e int64)) {
	for _, sp := range w.spans {
		if lo, hi := max(s, sp[0]), min(e, sp[1]); lo < hi {
			fn(lo, hi)
		}
	}
}

func seconds(ns int64) float64 { return float64(ns) / 1e9 }

// ParseSeconds reads a positive number of seconds (name is the parameter,
// for the message); empty is 0, the default.
func ParseSeconds(name, s string) (float64, error) {
	if s == "" {
		return 0, nil
	}
	f, err := strconv.ParseFloat(s, 64)
	if err != nil || math.IsNaN(f) || math.IsInf(f, 0) || f <= 0 {
		return 0, fmt.Errorf("%s %q is not valid: give a number of seconds > 0, such as 0.1", name, s)
	}
	return f, nil
}
