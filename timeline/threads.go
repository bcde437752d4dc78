package timeline

import (
	"cmp"
	"fmt"
	"math"
	"slices"

	"github.com/scorch-dev/scorch/capture"
)

// Bucket and limit bounds of threads.json.
const (
	// DefaultBuckets is about how many buckets a track gets when no
	// bucket is asked for: enough to see phases, few enough to draw fast.
	DefaultBuckets = 300
	// MaxBuckets bounds the buckets of a track whatever bucket is asked.
	MaxBuckets = 10000
	// MaxValues bounds the values of an answer (tracks times buckets).
	MaxValues = 4_000_000
	// DefaultLimit and MaxLimit bound the tracks sent; the rest is grouped.
	DefaultLimit = 25
	MaxLimit     = 10000
)

// Groupings of threads.json's tracks (parameter by).
var Groupings = []string{"thread", "process"}

// niceBuckets are the default bucket lengths, in ns, tried in order.
var niceBuckets = []int64{
	1e6, 2e6, 5e6, 10e6, 20e6, 50e6, 100e6, 200e6, 500e6,
	1e9, 2e9, 5e9, 10e9, 15e9, 30e9, 60e9, 120e9, 300e9, 600e9, 900e9, 1800e9, 3600e9,
}

// ThreadsOptions are what threads.json asks beside the filters.
type ThreadsOptions struct {
	Bucket float64 // seconds; 0 chooses about DefaultBuckets buckets
	Limit  int     // tracks sent, the busiest; 0 is DefaultLimit
	By     string  // "thread" (default) or "process"
}

// Threads is the answer of threads.json, in the capture's unit.
type Threads = ThreadsOf[int64]

// Track is a track of Threads.
type Track = TrackOf[int64]

// ThreadsOf is the answer of threads.json: values in the capture's unit
// (int64), or average threads off CPU (float64, norm=threads). Bucket i of
// every series covers [From + i*Bucket, From + (i+1)*Bucket) seconds from
// the capture start; the last one ends at To.
type ThreadsOf[V int64 | float64] struct {
	Start   float64 `json:"start"`   // unix seconds of the capture start, as heatmap.json's
	From    float64 `json:"from"`    // seconds from the capture start where bucket 0 starts
	To      float64 `json:"to"`      // where the last bucket ends
	Bucket  float64 `json:"bucket"`  // seconds per bucket
	Buckets int     `json:"buckets"` // buckets per series
	Unit    string  `json:"unit"`    // of the values: the capture's (samples, ns, bytes, count), or threads
	By      string  `json:"by"`      // thread or process
	Count   int     `json:"count"`   // threads (or processes) with selected events
	Total   V       `json:"total"`   // all selected events, = the sum of Series (threads: the average over the ranges)
	Series  []V     `json:"series"`  // all selected events per bucket (the total track)
	// Offcpu: series are off-CPU time, split into blocked and runqueue.
	Offcpu  bool         `json:"offcpu"`
	Threads []TrackOf[V] `json:"threads"`
	// Other groups the tracks past the limit; nil when there are none.
	Other *TrackOf[V] `json:"other"`
	Lost  Lost        `json:"lost"`

	selected int64 // ns covered by the query's ranges inside the window
}

// TrackOf is one thread's (or process's, or the rest's) activity.
type TrackOf[V int64 | float64] struct {
	PID     uint32 `json:"pid"`
	TID     uint32 `json:"tid"`               // 0 for a process's track and for other
	Comm    string `json:"comm"`              // the process's name (the flame graph's root frame)
	Threads int    `json:"threads,omitempty"` // process tracks and other: how many threads they hold
	Total   V      `json:"total"`             // the sum of Series (threads: the average over the ranges)
	Series  []V    `json:"series"`
	// Off-CPU types: the part of Series spent blocked (sleeping, waiting
	// for I/O) and waiting in the run queue to get a CPU again (wakeup and
	// offwake record blocked time only).
	Blocked  []V `json:"blocked,omitempty"`
	Runqueue []V `json:"runqueue,omitempty"`
}

// Norms are the values threads.json offers (parameter norm), as
// heatmap.json's: sum (the capture's unit, the default) or threads
// (off-CPU types: the average number of threads off CPU in each bucket).
var Norms = []string{"sum", "threads"}

// PerThread is the tracks t of an off-CPU capture with each bucket the
// average number of threads off CPU during it (a thread's track: the
// share of the bucket it was off CPU), four decimals; totals are averages
// over the query's ranges.
func PerThread(t *Threads) (*ThreadsOf[float64], error) {
	if !t.Offcpu {
		return nil, fmt.Errorf("norm threads applies to off-CPU types (offcpu, wakeup, offwake), not to %s: leave norm out, or use norm=sum", t.Unit)
	}
	bucket := t.Bucket * 1e9
	// Time covered by the selected ranges, in ns, for the totals.
	span := (t.To - t.From) * 1e9
	if t.selected > 0 {
		span = float64(t.selected)
	}
	round := func(v float64) float64 { return math.Round(v*1e4) / 1e4 }
	// The last bucket may be cut short by To; so may the ranges' edges,
	// which is not corrected: their buckets read as averages over the
	// whole bucket.
	lengths := make([]float64, t.Buckets)
	for i := range lengths {
		lengths[i] = math.Min(bucket, (t.To-t.From)*1e9-float64(i)*bucket)
	}
	conv := func(s []int64) []float64 {
		if s == nil {
			return nil
		}
		out := make([]float64, len(s))
		for i, v := range s {
			if lengths[i] > 0 {
				out[i] = round(float64(v) / lengths[i])
			}
		}
		return out
	}
	track := func(tr *Track) TrackOf[float64] {
		return TrackOf[float64]{PID: tr.PID, TID: tr.TID, Comm: tr.Comm, Threads: tr.Threads, Total: round(float64(tr.Total) / span),
			Series: conv(tr.Series), Blocked: conv(tr.Blocked), Runqueue: conv(tr.Runqueue)}
	}
	out := &ThreadsOf[float64]{Start: t.Start, From: t.From, To: t.To, Bucket: t.Bucket, Buckets: t.Buckets, Unit: "threads", By: t.By,
		Count: t.Count, Total: round(float64(t.Total) / span), Series: conv(t.Series), Offcpu: true, Threads: []TrackOf[float64]{}, Lost: t.Lost}
	for i := range t.Threads {
		out.Threads = append(out.Threads, track(&t.Threads[i]))
	}
	if t.Other != nil {
		o := track(t.Other)
		out.Other = &o
	}
	return out, nil
}

// Lost says how many events the capture lost and, when it knows, where.
type Lost struct {
	Total uint64 `json:"total"`
	// Series are the events lost per bucket (those of a span shared out
	// over the buckets it covers); null when the capture does not know
	// when its events were lost (imports, captures of older versions).
	Series []uint64 `json:"series"`
	// Spans are the capture's own marks, cut to the window: events lost
	// on a CPU (-1: unknown) somewhere between from and to.
	Spans []LostSpan `json:"spans"`
}

// maxLostSpans bounds the spans listed (all are in Series).
const maxLostSpans = 10000

// LostSpan is a capture.LostSpan in seconds from the capture start.
type LostSpan struct {
	From  float64 `json:"from"`
	To    float64 `json:"to"`
	CPU   int     `json:"cpu"`
	Count uint64  `json:"count"`
}

// ComputeThreads builds the tracks of the events q selects. view is c seen
// through the view's transforms (c itself without any): its events are
// counted, while c's stacks (whose indexes view keeps) tell the process
// names and the blocked from the run-queue time.
func ComputeThreads(c, view *capture.Capture, q capture.Query, o ThreadsOptions) (*Threads, error) {
	if o.By == "" {
		o.By = "thread"
	}
	if !slices.Contains(Groupings, o.By) {
		return nil, fmt.Errorf("by %q is not supported: allowed values are thread, process", o.By)
	}
	if o.Limit == 0 {
		o.Limit = DefaultLimit
	}
	if o.Limit < 1 || o.Limit > MaxLimit {
		return nil, fmt.Errorf("limit %d is out of range: allowed 1..%d", o.Limit, MaxLimit)
	}
	w, err := windowOf(view, q)
	if err != nil {
		return nil, err
	}
	length := w.to - w.from
	var bucket int64
	if o.Bucket == 0 {
		// Chosen from the capture's length, not from events a little
		// past it (a sample taken as the capture stopped).
		choice := length
		if d := int64(view.Meta.Duration); q.To == 0 && d > w.from {
			choice = min(length, d-w.from)
		}
		bucket = niceBucket(choice)
		if (length+bucket-1)/bucket > DefaultBuckets*11/10 {
			bucket = niceBucket(length) // events far past the duration (an import's estimate)
		}
	} else {
		bucket = int64(math.Round(o.Bucket * 1e9))
		if bucket < 1 || (length+bucket-1)/bucket > MaxBuckets {
			least := float64(length) / MaxBuckets / 1e9
			return nil, fmt.Errorf("bucket %g gives %.0f buckets over %.3f s: at most %d are allowed, give bucket >= %.3g", o.Bucket, math.Ceil(float64(length)/math.Max(o.Bucket*1e9, 1)), seconds(length), MaxBuckets, least)
		}
	}
	n := int((length + bucket - 1) / bucket)
	info := view.Meta.Type.Info()
	t := &Threads{
		From: seconds(w.from), To: seconds(w.to), Bucket: seconds(bucket), Buckets: n,
		Unit: view.Meta.Unit, By: o.By, Offcpu: info.Interval, Series: make([]int64, n),
		Threads: []Track{}, Lost: Lost{Total: view.Meta.Stats.Lost},
	}
	if t.Unit == "" {
		t.Unit = view.Meta.Type.Unit(view.Meta.Event)
	}
	if st := view.Meta.Start; !st.IsZero() {
		t.Start = float64(st.Unix()) + float64(st.Nanosecond())/1e9
	}
	runq := runqueueStacks(c)
	key := func(e *capture.Event) uint64 {
		if o.By == "process" {
			return uint64(e.PID) << 32
		}
		return uint64(e.PID)<<32 | uint64(e.TID)
	}

	// First pass: totals, to pick the busiest before any series is made.
	m := view.Matcher(q)
	type group struct {
		key     uint64
		total   int64
		comm    uint32 // a stack naming the process
		threads map[uint32]bool
		track   int // index in t.Threads, -1 for other
	}
	groups := map[uint64]*group{}
	for i := range view.Events {
		e := &view.Events[i]
		if !m.Match(e) {
			continue
		}
		k := key(e)
		g := groups[k]
		if g == nil {
			g = &group{key: k, comm: e.Stack}
			if o.By == "process" {
				g.threads = map[uint32]bool{}
			}
			groups[k] = g
		}
		if g.threads != nil {
			g.threads[e.TID] = true
		}
		g.total = capture.SatAdd(g.total, m.Value(e))
	}
	order := make([]*group, 0, len(groups))
	for _, g := range groups {
		order = append(order, g)
	}
	slices.SortFunc(order, func(a, b *group) int {
		if c := cmp.Compare(b.total, a.total); c != 0 {
			return c
		}
		return cmp.Compare(a.key, b.key)
	})
	t.Count = len(order)
	tracks := min(len(order), o.Limit+1) + 1 // the busiest, other, the total
	if info.Interval {
		tracks *= 3
	}
	if int64(tracks)*int64(n) > MaxValues {
		return nil, fmt.Errorf("limit %d and %d buckets give %d values: at most %d are sent, give a smaller limit or a larger bucket", o.Limit, n, int64(tracks)*int64(n), MaxValues)
	}
	newTrack := func() Track {
		tr := Track{Series: make([]int64, n)}
		if info.Interval {
			tr.Blocked, tr.Runqueue = make([]int64, n), make([]int64, n)
		}
		return tr
	}
	for i, g := range order {
		if i >= o.Limit {
			if t.Other == nil {
				tr := newTrack()
				t.Other = &tr
				t.Other.Comm = "other"
			}
			g.track = -1
			t.Other.Threads += max(len(g.threads), 1)
			continue
		}
		tr := newTrack()
		tr.PID = uint32(g.key >> 32)
		tr.TID = uint32(g.key)
		tr.Comm = processName(c, g.comm)
		tr.Threads = len(g.threads)
		g.track = len(t.Threads)
		t.Threads = append(t.Threads, tr)
	}

	// Second pass: the series. Intervals add the whole buckets they cover
	// to a difference array (one step each, however long the interval),
	// summed at the end.
	whole := func(tr *Track) [3]series {
		out := [3]series{{tr.Series, make([]int64, n+1)}}
		if info.Interval {
			out[1], out[2] = series{tr.Blocked, make([]int64, n+1)}, series{tr.Runqueue, make([]int64, n+1)}
		}
		return out
	}
	acc := make([][3]series, len(t.Threads))
	for i := range t.Threads {
		acc[i] = whole(&t.Threads[i])
	}
	var otherAcc [3]series
	if t.Other != nil {
		otherAcc = whole(t.Other)
	}
	total := series{t.Series, make([]int64, n+1)}
	for i := range view.Events {
		e := &view.Events[i]
		if !m.Match(e) {
			continue
		}
		g := groups[key(e)]
		tr, a := t.Other, &otherAcc
		if g.track >= 0 {
			tr, a = &t.Threads[g.track], &acc[g.track]
		}
		if !info.Interval {
			if e.Time >= w.from && e.Time < w.to {
				b := (e.Time - w.from) / bucket
				tr.Series[b] = capture.SatAdd(tr.Series[b], e.Value)
				t.Series[b] = capture.SatAdd(t.Series[b], e.Value)
			}
			continue
		}
		part := &a[1]
		if int(e.Stack) < len(runq) && runq[e.Stack] {
			part = &a[2]
		}
		w.clip(e.Time, e.Time+max(e.Value, 0), func(s, e int64) {
			spread(s-w.from, e-w.from, bucket, &a[0], part, &total)
		})
	}
	for i := range acc {
		for j := range acc[i] {
			acc[i][j].finish(bucket)
		}
	}
	for j := range otherAcc {
		otherAcc[j].finish(bucket)
	}
	total.finish(bucket)
	for i := range t.Threads {
		t.Threads[i].Total = sum(t.Threads[i].Series)
	}
	if t.Other != nil {
		t.Other.Total = sum(t.Other.Series)
	}
	t.Total = sum(t.Series)
	t.Lost = lostOf(view, q, w, bucket, n)
	for _, sp := range w.spans {
		t.selected += sp[1] - sp[0]
	}
	return t, nil
}

// lostOf places the capture's lost events on the buckets: each span's
// count shared out in proportion to the time of it inside each bucket (and
// inside the query's ranges), rounded so that the parts add up.
func lostOf(c *capture.Capture, q capture.Query, w window, bucket int64, n int) Lost {
	l := Lost{Total: c.Meta.Stats.Lost, Spans: []LostSpan{}}
	if len(c.Meta.Stats.LostAt) == 0 {
		return l
	}
	l.Series = make([]uint64, n)
	for _, sp := range c.Meta.Stats.LostAt {
		if sp.To <= sp.From || sp.Count == 0 || (len(q.CPUs) > 0 && sp.CPU >= 0 && !slices.Contains(q.CPUs, sp.CPU)) {
			continue
		}
		length := float64(sp.To - sp.From)
		var inside int64 // ns of the span before the part at hand
		var given uint64
		w.clip(sp.From, sp.To, func(s, e int64) {
			for b := (s - w.from) / bucket; b < int64(n); b++ {
				lo, hi := max(s, w.from+b*bucket), min(e, w.from+(b+1)*bucket)
				if lo >= hi {
					break
				}
				// Rounded on the running total, so the parts add up to
				// the span's count where the span is inside.
				inside += hi - lo
				upto := uint64(math.Round(float64(sp.Count) * float64(inside) / length))
				l.Series[b] += upto - given
				given = upto
			}
		})
		if inside > 0 && len(l.Spans) < maxLostSpans {
			l.Spans = append(l.Spans, LostSpan{From: seconds(max(sp.From, w.from)), To: seconds(min(sp.To, w.to)), CPU: sp.CPU, Count: sp.Count})
		}
	}
	return l
}

// niceBucket is the shortest nice bucket length giving at most
// DefaultBuckets buckets over length ns.
func niceBucket(length int64) int64 {
	for _, b := range niceBuckets {
		if (length+b-1)/b <= DefaultBuckets {
			return b
		}
	}
	per := (length + DefaultBuckets - 1) / DefaultBuckets
	return (per + 1e9 - 1) / 1e9 * 1e9
}

// series are a track's values while intervals are added: the parts of
// buckets in v, the whole buckets as a difference array.
type series struct {
	v, whole []int64
}

// finish adds the whole buckets to the values.
func (sr *series) finish(bucket int64) {
	if sr.v == nil {
		return
	}
	var run int64
	for b := range sr.v {
		run += sr.whole[b]
		sr.v[b] = capture.SatAdd(sr.v[b], run*bucket)
	}
}

// spread adds [s, e) (ns from bucket 0's start, inside the buckets) to
// each of the series, every bucket getting the ns inside it.
func spread(s, e, bucket int64, srs ...*series) {
	if e <= s {
		return
	}
	first, last := s/bucket, (e-1)/bucket
	for _, sr := range srs {
		if first == last {
			sr.v[first] = capture.SatAdd(sr.v[first], e-s)
			continue
		}
		sr.v[first] = capture.SatAdd(sr.v[first], (first+1)*bucket-s)
		sr.v[last] = capture.SatAdd(sr.v[last], e-last*bucket)
		sr.whole[first+1]++
		sr.whole[last]--
	}
}

func sum(s []int64) int64 {
	var t int64
	for _, v := range s {
		t = capture.SatAdd(t, v)
	}
	return t
}

// runqueueStacks marks the stacks of time spent waiting in the run queue
// (off-CPU captures end those stacks in [runqueue]).
func runqueueStacks(c *capture.Capture) []bool {
	out := make([]bool, len(c.Stacks))
	for i, st := range c.Stacks {
		for _, f := range st {
			if int(f) < len(c.Frames) && c.Frames[f].Kind == capture.KindSynthetic && c.Frames[f].Name == capture.FrameRunqueue {
				out[i] = true
				break
			}
		}
	}
	return out
}

// processName is the root frame of a stack of c: the process's name.
func processName(c *capture.Capture, stack uint32) string {
	if int(stack) < len(c.Stacks) {
		if st := c.Stacks[stack]; len(st) > 0 && int(st[0]) < len(c.Frames) {
			if f := &c.Frames[st[0]]; f.Kind == capture.KindProcess {
				return f.Label()
			}
		}
	}
	return capture.FrameUnknown
}
