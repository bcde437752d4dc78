package capture

import (
	"cmp"
	"encoding/binary"
	"fmt"
	"math"
	"net/url"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"
)

// Query selects the events a view shows. The zero Query selects every event
// but the idle ones.
type Query struct {
	From, To float64 // seconds from the capture start; To == 0 means the end
	// Ranges are the merged ranges when from and to are given several
	// times (sorted, none overlapping or touching, To 0 for the end); From
	// and To are then their hull. nil for one range or none.
	Ranges      []Range
	PIDs, TIDs  []uint32 // empty: all
	Comm        string   // process name (root frame); empty: all
	CPUs        []int    // empty: all
	IncludeIdle bool     // keep samples of the idle task
	View        string   // mem: "alloc" (default) or "inuse"
}

// Range is a time range in seconds from the capture start, [From, To);
// To == 0 means the end of the capture.
type Range struct{ From, To float64 }

func (r Range) String() string {
	if r.To == 0 {
		return strconv.FormatFloat(r.From, 'g', -1, 64) + "-end"
	}
	return strconv.FormatFloat(r.From, 'g', -1, 64) + "-" + strconv.FormatFloat(r.To, 'g', -1, 64)
}

// MaxRanges bounds how many ranges one query may give.
const MaxRanges = 64

// QueryParams are the names ParseQuery reads, for the surfaces that
// check the names they are given.
var QueryParams = []string{"from", "to", "pid", "tid", "comm", "cpu", "idle", "view"}

// ParseQuery reads the filter parameters of the HTTP API and of
// `scorch render` (QueryParams).
//
// from and to are seconds from the capture start (to empty or absent: the
// end). Several ranges are from and to repeated, paired in order
// (from=1&to=2&from=5&to=6): the i-th from with the i-th to, so both are
// given as many times (an empty to is the end). The ranges are merged
// (overlapping or touching ones joined) and an event is selected when it
// falls in any of them; an interval counts for its parts inside them.
func ParseQuery(v url.Values) (Query, error) {
	var q Query
	var err error
	if q.From, q.To, q.Ranges, err = parseRanges(v["from"], v["to"]); err != nil {
		return q, err
	}
	if q.PIDs, err = parseIDs("pid", v["pid"]); err != nil {
		return q, err
	}
	if q.TIDs, err = parseIDs("tid", v["tid"]); err != nil {
		return q, err
	}
	cpus, err := parseIDs("cpu", v["cpu"])
	if err != nil {
		return q, err
	}
	for _, c := range cpus {
		q.CPUs = append(q.CPUs, int(c))
	}
	q.Comm = v.Get("comm")
	switch s := v.Get("idle"); s {
	case "", "exclude":
	case "include":
		q.IncludeIdle = true
	default:
		return q, fmt.Errorf("idle %q is not supported: allowed values are include, exclude", s)
	}
	switch s := v.Get("view"); s {
	case "", "alloc", "inuse":
		q.View = s
	default:
		return q, fmt.Errorf("view %q is not supported: allowed values are alloc, inuse", s)
	}
	return q, nil
}

// parseRanges reads the from and to values (see ParseQuery): the hull and,
// when several ranges remain after merging, the ranges.
func parseRanges(froms, tos []string) (from, to float64, ranges []Range, err error) {
	n := max(len(froms), len(tos))
	if n > 1 && len(froms) != len(tos) {
		return 0, 0, nil, fmt.Errorf("from is given %d times and to %d times: give several ranges as pairs, from=A&to=B&from=C&to=D (an empty to is the end)", len(froms), len(tos))
	}
	if n > MaxRanges {
		return 0, 0, nil, fmt.Errorf("%d ranges are given: at most %d are allowed", n, MaxRanges)
	}
	var rs []Range
	for i := 0; i < n; i++ {
		var r Range
		if i < len(froms) && froms[i] != "" {
			if r.From, err = parseSeconds("from", froms[i]); err != nil {
				return 0, 0, nil, err
			}
		}
		if i < len(tos) && tos[i] != "" {
			if r.To, err = parseSeconds("to", tos[i]); err != nil {
				return 0, 0, nil, err
			}
		}
		if r.To != 0 && r.To <= r.From {
			return 0, 0, nil, fmt.Errorf("to (%g) must be greater than from (%g)", r.To, r.From)
		}
		rs = append(rs, r)
	}
	rs = MergeRanges(rs)
	switch len(rs) {
	case 0:
		return 0, 0, nil, nil
	case 1:
		return rs[0].From, rs[0].To, nil, nil
	}
	return rs[0].From, rs[len(rs)-1].To, rs, nil
}

// MergeRanges sorts ranges and joins those that overlap or touch; the
// result is a new slice.
func MergeRanges(rs []Range) []Range {
	end := func(r Range) float64 {
		if r.To == 0 {
			return math.Inf(1)
		}
		return r.To
	}
	sorted := slices.Clone(rs)
	slices.SortStableFunc(sorted, func(a, b Range) int { return cmp.Compare(a.From, b.From) })
	var out []Range
	for _, r := range sorted {
		if last := len(out) - 1; last >= 0 && r.From <= end(out[last]) {
			if end(r) > end(out[last]) {
				out[last].To = r.To
			}
			continue
		}
		out = append(out, r)
	}
	return out
}

// QueryRanges are the query's ranges: Ranges, or From..To as one range
// (none when the query covers the whole capture).
func (q Query) QueryRanges() []Range {
	if len(q.Ranges) > 0 {
		return q.Ranges
	}
	if q.From == 0 && q.To == 0 {
		return nil
	}
	return []Range{{q.From, q.To}}
}

func parseSeconds(name, s string) (float64, error) {
	f, err := strconv.ParseFloat(s, 64)
	if err != nil || math.IsNaN(f) || math.IsInf(f, 0) || f < 0 {
		return 0, fmt.Errorf("%s %q is not valid: give seconds from the capture start, a number >= 0", name, s)
	}
	return f, nil
}

func parseIDs(name string, vals []string) ([]uint32, error) {
	var ids []uint32
	for _, v := range vals {
		for _, s := range strings.Split(v, ",") {
			s = strings.TrimSpace(s)
			if s == "" {
				continue
			}
			n, err := strconv.ParseUint(s, 10, 32)
			if err != nil {
				return nil, fmt.Errorf("%s %q is not valid: give a number or a comma-separated list of numbers", name, s)
			}
			ids = append(ids, uint32(n))
		}
	}
	return ids, nil
}

// CheckRange validates From/To against the capture's length and says what
// the valid interval is.
func (c *Capture) CheckRange(q Query) error {
	if ti := c.Meta.Type.Info(); q.View == "inuse" && (ti.InuseUnit == "" || c.Meta.Unit != ti.InuseUnit) {
		// Only allocation captures mark what is still allocated: anything
		// else would be an empty answer.
		return fmt.Errorf("view inuse applies only to mem captures of allocations (malloc, unit bytes), not to this %s capture: leave view out, or use view=alloc", c.Meta.Type)
	}
	if q.QueryRanges() == nil {
		return nil
	}
	if !c.Meta.Timestamps {
		return fmt.Errorf("this capture has no timestamps: from and to cannot be used")
	}
	end := c.Meta.Duration.Seconds()
	for _, r := range q.QueryRanges() {
		if r.From > end || (r.To != 0 && r.To > end+1) {
			return fmt.Errorf("range %g..%g is outside the capture: valid interval is 0..%.3f seconds", r.From, r.To, end)
		}
	}
	return nil
}

// Matcher tests events against a query.
type Matcher struct {
	q          Query
	from, to   int64
	pids, tids map[uint32]bool
	cpus       map[int]bool
	commStacks []int8 // per stack: 0 unknown, 1 match, -1 no match
	c          *Capture
	// intervals: events are time intervals (Time is the start, Value the
	// length in ns), selected when they overlap the range and counted for
	// the part inside it, as the heatmap counts them.
	intervals bool
	ranged    bool
	// spans are the ranges in ns, when there are several (from and to are
	// then their hull).
	spans []span
}

// span is a range in ns, [from, to).
type span struct{ from, to int64 }

// Matcher compiles a query for this capture.
func (c *Capture) Matcher(q Query) *Matcher {
	m := &Matcher{q: q, c: c, from: math.MinInt64, to: math.MaxInt64, ranged: q.From != 0 || q.To != 0 || len(q.Ranges) > 1,
		intervals: c.Meta.Type.Info().Interval}
	if q.From != 0 {
		m.from = int64(q.From * float64(time.Second))
	}
	if q.To != 0 {
		m.to = int64(q.To * float64(time.Second))
	}
	if len(q.Ranges) > 1 {
		for _, r := range q.Ranges {
			sp := span{int64(r.From * float64(time.Second)), math.MaxInt64}
			if r.To != 0 {
				sp.to = int64(r.To * float64(time.Second))
			}
			m.spans = append(m.spans, sp)
		}
	}
	if len(q.PIDs) > 0 {
		m.pids = make(map[uint32]bool)
		for _, p := range q.PIDs {
			m.pids[p] = true
		}
	}
	if len(q.TIDs) > 0 {
		m.tids = make(map[uint32]bool)
		for _, t := range q.TIDs {
			m.tids[t] = true
		}
	}
	if len(q.CPUs) > 0 {
		m.cpus = make(map[int]bool)
		for _, c := range q.CPUs {
			m.cpus[c] = true
		}
	}
	if q.Comm != "" {
		m.commStacks = make([]int8, len(c.Stacks))
	}
	return m
}

// Match reports whether the event is selected.
func (m *Matcher) Match(e *Event) bool {
	if e.Flags&FlagIdle != 0 && !m.q.IncludeIdle {
		return false
	}
	if m.intervals && m.ranged {
		if SatAdd(e.Time, e.Value) <= m.from || e.Time >= m.to {
			return false
		}
	} else if e.Time < m.from || e.Time >= m.to {
		return false
	}
	if m.spans != nil && !m.inSpans(e) {
		return false
	}
	if m.pids != nil && !m.pids[e.PID] {
		return false
	}
	if m.tids != nil && !m.tids[e.TID] {
		return false
	}
	if m.cpus != nil && !m.cpus[int(e.CPU)] {
		return false
	}
	if m.q.View == "inuse" && e.Flags&FlagInuse == 0 {
		return false
	}
	if m.commStacks != nil && int(e.Stack) < len(m.commStacks) {
		s := m.commStacks[e.Stack]
		if s == 0 {
			s = -1
			if st := m.c.Stacks[e.Stack]; len(st) > 0 && m.c.Frames[st[0]].Name == m.q.Comm {
				s = 1
			}
			m.commStacks[e.Stack] = s
		}
		return s == 1
	}
	return true
}

// firstSpan is the index of the first span that ends after t.
func (m *Matcher) firstSpan(t int64) int {
	i, _ := slices.BinarySearchFunc(m.spans, t, func(s span, t int64) int {
		if s.to <= t {
			return -1
		}
		return 1
	})
	return i
}

// inSpans reports whether the event is in one of several ranges (an
// interval: overlaps one).
func (m *Matcher) inSpans(e *Event) bool {
	i := m.firstSpan(e.Time)
	if i == len(m.spans) {
		return false
	}
	if m.intervals {
		return m.spans[i].from < SatAdd(e.Time, e.Value)
	}
	return m.spans[i].from <= e.Time
}

// Value is the part of a matched event's value inside the query's range:
// the whole value, except for intervals that cross the range's ends.
func (m *Matcher) Value(e *Event) int64 {
	if !m.intervals || !m.ranged {
		return e.Value
	}
	if m.spans != nil {
		end := SatAdd(e.Time, e.Value)
		var sum int64
		for i := m.firstSpan(e.Time); i < len(m.spans) && m.spans[i].from < end; i++ {
			sum += max(min(end, m.spans[i].to)-max(e.Time, m.spans[i].from), 0)
		}
		return sum
	}
	lo, hi := e.Time, SatAdd(e.Time, e.Value)
	if lo < m.from {
		lo = m.from
	}
	if hi > m.to {
		hi = m.to
	}
	if hi < lo {
		return 0
	}
	return hi - lo
}

// StackValue is the total of one stack's selected events.
type StackValue struct {
	Stack  uint32
	Value  int64
	Value2 int64
	Count  int64 // number of events
}

// Aggregate sums the selected events per stack, merging stacks whose frames
// have the same names (FoldedName): a frame's identity for a user is its
// name, while the capture keeps one frame per address. Each result names the
// first stack of its group; the result is ordered by that index, so it is
// stable for a given capture.
func (c *Capture) Aggregate(q Query) []StackValue {
	m := c.Matcher(q)
	canon := c.NameStacks()
	sums := make([]StackValue, len(c.Stacks))
	for i := range c.Events {
		e := &c.Events[i]
		if int(e.Stack) >= len(sums) || !m.Match(e) {
			continue
		}
		s := &sums[canon[e.Stack]]
		// Saturating: a hostile import's values (many maximum-size periods)
		// must not wrap into negative totals.
		s.Value = SatAdd(s.Value, m.Value(e))
		s.Value2 = SatAdd(s.Value2, e.Value2)
		s.Count++
	}
	out := make([]StackValue, 0, len(sums))
	for i, s := range sums {
		if s.Count > 0 {
			s.Stack = uint32(i)
			out = append(out, s)
		}
	}
	return out
}

// NameFrames maps every frame to the first frame with the same FoldedName.
func (c *Capture) NameFrames() []uint32 {
	canon := make([]uint32, len(c.Frames))
	byName := make(map[string]uint32, len(c.Frames))
	for i := range c.Frames {
		name := c.Frames[i].FoldedName()
		id, ok := byName[name]
		if !ok {
			id = uint32(i)
			byName[name] = id
		}
		canon[i] = id
	}
	return canon
}

// NameStacks maps every stack to the first stack whose frames have the same
// names, in the same order.
func (c *Capture) NameStacks() []uint32 {
	frames := c.NameFrames()
	canon := make([]uint32, len(c.Stacks))
	seen := make(map[string]uint32, len(c.Stacks))
	var key []byte
	for i, st := range c.Stacks {
		key = key[:0]
		for _, f := range st {
			if int(f) < len(frames) {
				f = frames[f]
			}
			key = binary.LittleEndian.AppendUint32(key, f)
		}
		id, ok := seen[string(key)]
		if !ok {
			id = uint32(i)
			seen[string(key)] = id
		}
		canon[i] = id
	}
	return canon
}

// FoldedStack returns the stack's frames as folded names, root first.
func (c *Capture) FoldedStack(stack uint32) []string {
	ids := c.Stacks[stack]
	names := make([]string, len(ids))
	for i, id := range ids {
		names[i] = c.Frames[id].FoldedName()
	}
	return names
}

// SortEvents orders events by time (stable), which heatmaps and range views
// rely on.
func (c *Capture) SortEvents() {
	sort.SliceStable(c.Events, func(i, j int) bool { return c.Events[i].Time < c.Events[j].Time })
}

// SatAdd is a+b clamped to the int64 range instead of wrapping: totals of
// values from files are attacker-controlled.
func SatAdd(a, b int64) int64 {
	c := a + b
	if (c > a) == (b > 0) {
		return c
	}
	if b > 0 {
		return math.MaxInt64
	}
	return math.MinInt64
}
