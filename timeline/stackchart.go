package timeline

import (
	"cmp"
	"fmt"
	"math"
	"slices"

	"github.com/scorch-dev/scorch/capture"
)

// Width and size bounds of stackchart.json.
const (
	DefaultWidth = 1000
	MaxWidth     = 10000
	// MaxRuns bounds the runs sent (about 70 bytes each in JSON): past it
	// the narrowest are left out, and counted in Dropped.
	MaxRuns = 20000
)

// StackChart is the answer of stackchart.json: one thread's stacks over
// time, at the resolution of Width pixels over From..To.
type StackChart struct {
	From    float64 `json:"from"`  // seconds from the capture start
	To      float64 `json:"to"`    //
	Width   int     `json:"width"` // pixels the runs were bucketed to
	Pixel   float64 `json:"pixel"` // seconds per pixel
	PID     uint32  `json:"pid"`
	TID     uint32  `json:"tid"`
	Comm    string  `json:"comm"`
	Unit    string  `json:"unit"`
	Samples int     `json:"samples"` // events of the thread drawn
	Depth   int     `json:"depth"`   // the deepest run's depth + 1
	Runs    []Run   `json:"runs"`    // by start, then depth
	Dropped int     `json:"dropped"` // runs left out to stay within MaxRuns
}

// Run is one frame at one depth over a stretch of time: consecutive
// pixels whose stacks share the frames from the root down to it.
type Run struct {
	Depth int     `json:"depth"` // 0 is the root frame (the process's name)
	Name  string  `json:"name"`  // as the flame graph names it (folded name)
	Start float64 `json:"start"` // seconds from the capture start
	End   float64 `json:"end"`
}

// StackOptions are what stackchart.json asks beside the filters.
type StackOptions struct {
	TID   uint32
	Width int // 0 is DefaultWidth
}

// cell is the time one stack was seen in one pixel column.
type cell struct {
	col   int32
	stack uint32 // canonical (NameStacks)
	ns    int64
}

// ComputeStackChart draws the thread's events q selects (q names the
// thread, and its From..To is the chart's window) in time order: samples
// last until the next sampling period (or the thread's next sample),
// off-CPU intervals their length. Each pixel column shows the stack seen
// longest in it, and columns that follow each other with the same frames
// from the root make one run per depth. c and view are as for
// ComputeThreads.
func ComputeStackChart(c, view *capture.Capture, q capture.Query, o StackOptions) (*StackChart, error) {
	if o.Width == 0 {
		o.Width = DefaultWidth
	}
	if o.Width < 1 || o.Width > MaxWidth {
		return nil, fmt.Errorf("width %d is out of range: allowed 1..%d", o.Width, MaxWidth)
	}
	w, err := windowOf(view, q)
	if err != nil {
		return nil, err
	}
	length := w.to - w.from
	width := int64(o.Width)
	sc := &StackChart{From: seconds(w.from), To: seconds(w.to), Width: o.Width, Pixel: seconds(length) / float64(o.Width),
		TID: o.TID, Comm: capture.FrameUnknown, Unit: view.Meta.Unit, Runs: []Run{}}
	// edge is where column i starts (i = width: the window's end).
	edge := func(i int64) int64 { return w.from + int64(float64(length)*float64(i)/float64(width)) }
	col := func(t int64) int64 {
		return min(max(int64(float64(t-w.from)*float64(width)/float64(length)), 0), width-1)
	}

	// The thread's events, in time order.
	m := view.Matcher(q)
	var evs []*capture.Event
	for i := range view.Events {
		e := &view.Events[i]
		if e.TID == o.TID && m.Match(e) && int(e.Stack) < len(view.Stacks) && len(view.Stacks[e.Stack]) > 0 {
			evs = append(evs, e)
		}
	}
	slices.SortStableFunc(evs, func(a, b *capture.Event) int { return cmp.Compare(a.Time, b.Time) })
	sc.Samples = len(evs)
	if len(evs) == 0 {
		return sc, nil
	}
	sc.PID = evs[0].PID
	sc.Comm = processName(c, evs[0].Stack)

	info := view.Meta.Type.Info()
	period := samplePeriod(view, evs, length/width)
	canon := view.NameStacks()
	var cells []cell
	full := make([]int64, width) // per column: the stack covering it whole, -1 none
	for i := range full {
		full[i] = -1
	}
	free := newNextFree(int(width))
	lo := make([]int64, width) // per column: where events in it start and end
	hi := make([]int64, width)
	for i := range lo {
		lo[i], hi[i] = math.MaxInt64, math.MinInt64
	}
	for i, e := range evs {
		end := e.Time + period
		if info.Interval {
			end = e.Time + max(e.Value, 0)
		} else if i+1 < len(evs) && evs[i+1].Time > e.Time {
			end = min(end, evs[i+1].Time)
		}
		st := canon[e.Stack]
		w.clip(e.Time, end, func(s, e int64) {
			c0, c1 := col(s), col(e-1)
			for _, cl := range [2]int64{c0, c1} {
				a, b := max(s, edge(cl)), min(e, edge(cl+1))
				if a < b {
					cells = append(cells, cell{int32(cl), st, b - a})
					lo[cl], hi[cl] = min(lo[cl], a), max(hi[cl], b)
				}
				if c0 == c1 {
					break
				}
			}
			// The columns in between are covered whole: each is given to
			// the first interval that covers it, visiting each column once
			// however many intervals overlap (a long off-CPU interval
			// costs its columns, not more).
			for cl := free.next(c0 + 1); cl < c1; cl = free.next(cl + 1) {
				full[cl] = int64(st)
				lo[cl], hi[cl] = min(lo[cl], edge(cl)), max(hi[cl], edge(cl+1))
				free.take(cl)
			}
		})
	}
	// The stack seen longest in each column (ties: the first stack).
	slices.SortFunc(cells, func(a, b cell) int {
		if c := cmp.Compare(a.col, b.col); c != 0 {
			return c
		}
		return cmp.Compare(a.stack, b.stack)
	})
	best := make([]int64, width)
	bestNs := make([]int64, width)
	for i := range best {
		best[i] = -1
	}
	for i := 0; i < len(cells); {
		j, ns := i, int64(0)
		for ; j < len(cells) && cells[j].col == cells[i].col && cells[j].stack == cells[i].stack; j++ {
			ns += cells[j].ns
		}
		if cl := cells[i].col; ns > bestNs[cl] {
			best[cl], bestNs[cl] = int64(cells[i].stack), ns
		}
		i = j
	}
	for cl, st := range full {
		if st >= 0 {
			best[cl] = st
		}
	}

	// Runs: a column continues the previous one's runs down to the depth
	// their frames stop being the same, when it starts where that one
	// ended (or less than a pixel later).
	frames := view.NameFrames()
	name := func(f uint32) uint32 {
		if int(f) < len(frames) {
			return frames[f]
		}
		return f
	}
	type open struct {
		frame uint32
		start int64
	}
	pixelNs := max(length/width, 1)
	var stack []open // the runs open, by depth
	var prevEnd int64
	closeFrom := func(d int, end int64) {
		for k := len(stack) - 1; k >= d; k-- {
			sc.Runs = append(sc.Runs, Run{Depth: k, Name: frameName(view, stack[k].frame), Start: seconds(stack[k].start), End: seconds(end)})
		}
		stack = stack[:d]
	}
	for cl := int64(0); cl < width; cl++ {
		if best[cl] < 0 {
			closeFrom(0, prevEnd)
			continue
		}
		st := view.Stacks[best[cl]]
		keep := 0
		// A gap narrower than a pixel cannot be seen: runs go on over it.
		if len(stack) > 0 && lo[cl]-prevEnd < pixelNs {
			for keep < len(stack) && keep < len(st) && stack[keep].frame == name(st[keep]) {
				keep++
			}
		}
		closeFrom(keep, prevEnd)
		start := lo[cl]
		for d := keep; d < len(st); d++ {
			stack = append(stack, open{name(st[d]), start})
		}
		sc.Depth = max(sc.Depth, len(st))
		prevEnd = hi[cl]
	}
	closeFrom(0, prevEnd)
	if len(sc.Runs) > MaxRuns {
		// Keep the widest: a run is never wider than its parent's, so
		// what remains still hangs from its callers.
		slices.SortStableFunc(sc.Runs, func(a, b Run) int {
			if c := cmp.Compare(b.End-b.Start, a.End-a.Start); c != 0 {
				return c
			}
			return cmp.Compare(a.Depth, b.Depth)
		})
		sc.Dropped = len(sc.Runs) - MaxRuns
		sc.Runs = sc.Runs[:MaxRuns]
	}
	slices.SortStableFunc(sc.Runs, func(a, b Run) int {
		if c := cmp.Compare(a.Start, b.Start); c != 0 {
			return c
		}
		return cmp.Compare(a.Depth, b.Depth)
	})
	return sc, nil
}

func frameName(c *capture.Capture, f uint32) string {
	if int(f) < len(c.Frames) {
		return c.Frames[f].FoldedName()
	}
	return capture.FrameUnknown
}

// samplePeriod is how long a sample stands for: the sampling period at the
// capture's hz, else the median gap between the thread's samples (cycles
// and other periodic events), else one pixel (events at points in time).
func samplePeriod(c *capture.Capture, evs []*capture.Event, pixel int64) int64 {
	info := c.Meta.Type.Info()
	if info.Sampled && c.Meta.Params.Hz > 0 {
		return int64(1e9 / c.Meta.Params.Hz)
	}
	if info.Periodic && len(evs) > 2 {
		gaps := make([]int64, 0, len(evs)-1)
		for i := 1; i < len(evs); i++ {
			if g := evs[i].Time - evs[i-1].Time; g > 0 {
				gaps = append(gaps, g)
			}
		}
		if len(gaps) > 0 {
			slices.Sort(gaps)
			return gaps[len(gaps)/2]
		}
	}
	return max(pixel, 1)
}

// nextFree finds the first column at or after c not yet taken (a
// union-find over the columns, with path halving).
type nextFree []int32

func newNextFree(n int) nextFree {
	f := make(nextFree, n+1)
	for i := range f {
		f[i] = int32(i)
	}
	return f
}

// next is the first free column >= c (len-1, past the last column, when
// none is).
func (f nextFree) next(c int64) int64 {
	i := int32(min(c, int64(len(f)-1)))
	for f[i] != i {
		f[i] = f[f[i]]
		i = f[i]
	}
	return int64(i)
}

// take marks column c taken.
func (f nextFree) take(c int64) { f[c] = int32(c + 1) }
