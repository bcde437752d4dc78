// Package calltree computes the analysis views of a capture that the web
// page draws: the merged call tree pruned to a node budget, the flat
// function table with self and total, the sandwich (callers and callees of
// one function) and their differential forms. Frames are merged by their
// folded name, as in folded stacks and the SVG flame graph.
package calltree

import (
	"cmp"
	"iter"
	"math"
	"slices"
	"sort"
	"strings"
	"sync"

	"github.com/scorch-dev/scorch/capture"
)

// Set is the selected stacks of one or two captures (base and compare),
// as lists of name ids, root first. Name ids are the ranks of the names'
// spellings, so that stacks sort by their ids in the order the tree shows
// siblings.
type Set struct {
	Names   []string // folded names, sorted
	Modules []string // module of the first frame seen with each name
	// Files and Lines are each name's source file and line where the
	// frames have them: the line that holds most of the name's value (a
	// caller's: the call it makes most), "" and 0 where unknown.
	Files   []string
	Lines   []int
	lineW   []int64 // the value of the line chosen so far, per name
	byName  map[string]int32
	entries []entry
	Unit    string
	Diff    bool // entries carry a base side
	// Instructions: the base side holds each stack's instructions
	// (Event.Value2) instead of a base capture: CPI captures, whose
	// frames are coloured by cycles per instruction.
	Instructions bool

	// src is the one capture the entries were added from, one entry per
	// stack (entry.stack), so that Transform can transform the entries
	// instead of the capture; nil when stacks were merged by name or
	// come from two captures.
	src     *capture.Capture
	reverse bool
	srcIDs  []int32 // name id of each frame of src
	// merges, when above 0: the set was derived from the untransformed
	// set of src through this many steps of merges only (src, reverse
	// and srcIDs are that set's), and Extend derives from it.
	merges int

	// The stacks sorted for Tree, computed once: a set is shared by the
	// requests of one view, which differ in their node budget. The set
	// is read-only once built (Add is not called again).
	prepOnce sync.Once
	sorted   *sortedSet
	relaid   bool // Prepare laid the names out in sorted order
	// deriv: the set was derived by Transform from another; its sort
	// starts from that set's sorted stacks. Read only under prepOnce.
	deriv   *derivation
	fnsOnce sync.Once
	fns     []Function // by name id, without names (fnTable)
	// fnsFrom, when not nil, derives the table from the untransformed
	// set's (transformNames).
	fnsFrom func() []Function
}

type sortedSet struct {
	// es are the entries sorted, a copy: the set's entries stay in the
	// order of the capture's stacks, read by Functions and Transform
	// without waiting for the sort (unless Prepare made them these).
	es  []entry
	lcp []int32 // common prefix of each entry with the one before
	// next is, for each entry, the first entry after it whose common
	// prefix with the one before is shorter than its own (len(es) if
	// none): the entries in between are under the same frame at every
	// depth below its prefix, so Tree steps from a frame's first entry to
	// its next sibling's in as many jumps as there are levels between,
	// not one per entry.
	next               []int32
	cumV, cumB, cumNew []int64
}

type entry struct {
	names []int32
	v, b  int64 // compare (or only) side, base side
	stack uint32
}

// NewSet starts an empty set.
func NewSet() *Set { return &Set{byName: make(map[string]int32)} }

// Add adds the capture's events selected by q, merged per stack, to the
// compare side (base false) or the base side. reverse merges by leaf.
func (s *Set) Add(c *capture.Capture, q capture.Query, reverse, base bool) {
	if s.Unit == "" {
		s.Unit = c.Meta.Unit
	}
	first := len(s.entries) == 0 && len(s.Names) == 0
	s.Diff = s.Diff || base
	ids := s.internFrames(c.Frames, nil)
	agg, perStack := aggregate(c, q)
	need := 0
	for _, sv := range agg {
		need += len(c.Stacks[sv.Stack])
	}
	if lined(c.Frames) {
		s.addLines(c.Frames, ids, func(yield func([]uint32, int64) bool) {
			for _, sv := range agg {
				if !yield(c.Stacks[sv.Stack], sv.Value) {
					return
				}
			}
		})
	}
	// One arena for all the stacks' names: fewer, larger allocations.
	arena := make([]int32, 0, need)
	for _, sv := range agg {
		st := c.Stacks[sv.Stack]
		if sv.Value <= 0 || len(st) == 0 {
			continue
		}
		start := len(arena)
		arena = appendNames(arena, st, ids, reverse)
		if len(arena) == start {
			continue
		}
		e := entry{names: arena[start:len(arena):len(arena)], stack: sv.Stack}
		switch {
		case base:
			e.b = sv.Value
		case s.Instructions:
			e.v, e.b = sv.Value, sv.Value2
		default:
			e.v = sv.Value
		}
		s.entries = append(s.entries, e)
	}
	if first && perStack && !base {
		s.src, s.reverse, s.srcIDs = c, reverse, ids
	} else {
		s.src, s.srcIDs = nil, nil
	}
}

func lined(frames []capture.Frame) bool {
	for i := range frames {
		if frames[i].Line > 0 {
			return true
		}
	}
	return false
}

// addLines weighs each frame (an address: one file:line) by the value of
// the stacks that hold it, and keeps for each name its heaviest line.
func (s *Set) addLines(frames []capture.Frame, ids []int32, stacks iter.Seq2[[]uint32, int64]) {
	w := make([]int64, len(frames))
	for st, v := range stacks {
		for _, f := range st {
			if int(f) < len(w) {
				w[f] += max(v, 0)
			}
		}
	}
	s.padLines()
	for i := range frames {
		f := &frames[i]
		if f.Line <= 0 || f.File == "" {
			continue
		}
		if id := ids[i]; w[i] > s.lineW[id] || s.Files[id] == "" {
			s.Files[id], s.Lines[id], s.lineW[id] = f.File, f.Line, w[i]
		}
	}
}

func (s *Set) padLines() {
	for len(s.Files) < len(s.Names) {
		s.Files, s.Lines, s.lineW = append(s.Files, ""), append(s.Lines, 0), append(s.lineW, 0)
	}
}

// Loc is a name's file and line, "" and 0 where unknown.
func (s *Set) Loc(id int32) (string, int) {
	if int(id) < len(s.Files) {
		return s.Files[id], s.Lines[id]
	}
	return "", 0
}

// appendNames appends the name ids of a stack's frames, leaf first when
// reverse.
func appendNames(arena []int32, st []uint32, ids []int32, reverse bool) []int32 {
	for i := range st {
		f := st[i]
		if reverse {
			f = st[len(st)-1-i]
		}
		if int(f) < len(ids) {
			arena = append(arena, ids[f])
		}
	}
	return arena
}

// aggregate is capture.Aggregate without merging the stacks whose frames
// have the same names, which the set merges anyway, when that cannot
// change the result: every selected stack has a positive value and no sum
// can saturate. perStack: one result per stack of c.
func aggregate(c *capture.Capture, q capture.Query) (agg []capture.StackValue, perStack bool) {
	m := c.Matcher(q)
	sums := make([]capture.StackValue, len(c.Stacks))
	var total, total2 int64
	// Without a range or a filter (the view a page opens on) only the
	// idle flag selects and every event counts its value, as Match and
	// Value have it, tested inline.
	simple := q.From == 0 && q.To == 0 && len(q.Ranges) <= 1 && len(q.PIDs) == 0 && len(q.TIDs) == 0 &&
		len(q.CPUs) == 0 && q.Comm == "" && q.View != "inuse"
	skip := capture.FlagIdle
	if q.IncludeIdle {
		skip = 0
	}
	for i := range c.Events {
		e := &c.Events[i]
		if int(e.Stack) >= len(sums) {
			continue
		}
		var v int64
		if simple {
			if e.Flags&skip != 0 || e.Time == math.MaxInt64 {
				continue
			}
			v = e.Value
		} else {
			if !m.Match(e) {
				continue
			}
			v = m.Value(e)
		}
		sv := &sums[e.Stack]
		sv.Value = capture.SatAdd(sv.Value, v)
		sv.Value2 = capture.SatAdd(sv.Value2, e.Value2)
		sv.Count++
		total = capture.SatAdd(total, absSat(v))
		total2 = capture.SatAdd(total2, absSat(e.Value2))
	}
	const safe = 1 << 62
	ok := total < safe && total2 < safe
	out := sums[:0]
	for i, sv := range sums {
		if sv.Count == 0 {
			continue
		}
		if sv.Value <= 0 || sv.Value2 < 0 {
			ok = false
			break
		}
		sv.Stack = uint32(i)
		out = append(out, sv)
	}
	if !ok {
		return c.Aggregate(q), false
	}
	return out, true
}

func absSat(v int64) int64 {
	if v < 0 {
		if v == math.MinInt64 {
			return math.MaxInt64
		}
		return -v
	}
	return v
}

// internFrames interns the frames' folded names and returns the name id of
// each. New names are placed in spelling order: the ids of the names
// already known, in the set's entries and in remap (optional, name ids
// by frame of an earlier call), are renumbered.
func (s *Set) internFrames(frames []capture.Frame, remap []int32) []int32 {
	added := false
	for i := range frames {
		f := &frames[i]
		name := f.FoldedName()
		if id, ok := s.byName[name]; ok {
			if s.Modules[id] == "" {
				s.Modules[id] = f.Module
			}
			continue
		}
		s.byName[name] = int32(len(s.Names))
		s.Names = append(s.Names, name)
		s.Modules = append(s.Modules, f.Module)
		added = true
	}
	if added {
		s.rank(remap)
	}
	ids := make([]int32, len(frames))
	for i := range frames {
		ids[i] = s.byName[frames[i].FoldedName()]
	}
	return ids
}

// rank renumbers the names in spelling order.
func (s *Set) rank(remap []int32) {
	order := make([]int32, len(s.Names))
	for i := range order {
		order[i] = int32(i)
	}
	slices.SortFunc(order, func(a, b int32) int { return strings.Compare(s.Names[a], s.Names[b]) })
	newID := make([]int32, len(order))
	sorted := true
	for r, id := range order {
		newID[id] = int32(r)
		sorted = sorted && int32(r) == id
	}
	if sorted {
		return
	}
	names := make([]string, len(order))
	modules := make([]string, len(order))
	for r, id := range order {
		names[r], modules[r] = s.Names[id], s.Modules[id]
		s.byName[names[r]] = int32(r)
	}
	s.Names, s.Modules = names, modules
	if s.Files != nil {
		s.padLines()
		files, lines, lineW := make([]string, len(order)), make([]int, len(order)), make([]int64, len(order))
		for r, id := range order {
			files[r], lines[r], lineW[r] = s.Files[id], s.Lines[id], s.lineW[id]
		}
		s.Files, s.Lines, s.lineW = files, lines, lineW
	}
	for _, e := range s.entries {
		for i, n := range e.names {
			e.names[i] = newID[n]
		}
	}
	for i, n := range remap {
		remap[i] = newID[n]
	}
}

// Prepare sorts the set's stacks for Tree now, and lays their names out
// in that order, one after the other: a view derived from the set reads
// them in that order, and Tree does, and scattered they cost a cache miss
// each. The set's entries are then the sorted ones. Call it once the set
// is built and before it is shared (it is not safe beside other reads).
func (s *Set) Prepare() {
	s.prep()
	ss := s.sorted
	if s.relaid || len(ss.es) == 0 {
		return
	}
	s.relaid = true
	n := 0
	for _, e := range ss.es {
		n += len(e.names)
	}
	arena := make([]int32, 0, n)
	for i := range ss.es {
		e := &ss.es[i]
		start := len(arena)
		arena = append(arena, e.names...)
		e.names = arena[start:len(arena):len(arena)]
	}
	s.entries = ss.es
}

// prep sorts the entries once, before any read.
func (s *Set) prep() {
	s.prepOnce.Do(func() {
		if s.deriv != nil {
			s.sorted = s.deriv.sort()
			s.deriv = nil
			return
		}
		s.sorted = s.sort()
	})
}

// derivation is how a transformed set's stacks came from the set it was
// derived from: the stacks a transform left as they were keep their order
// among the other set's sorted stacks, so only the stacks it changed are
// sorted, then merged with those.
type derivation struct {
	from  *Set
	kept  []bool  // by stack of from.src: its entry is kept as it was
	moved []entry // the entries the transforms changed, unsorted
	// movedLCP, when not nil: the common prefixes of each moved entry
	// with the one before, and moved is in order but where movedRuns
	// says: each of those starts a sorted run.
	movedLCP  []int32
	movedRuns []int32
}

func (d *derivation) sort() *sortedSet {
	d.from.prep()
	base := d.from.sorted
	b := d.moved // the derivation's own
	blcp := d.movedLCP
	switch {
	case blcp == nil:
		blcp = sortEntries(b)
	case len(d.movedRuns) > 0:
		b, blcp = mergeRuns(b, blcp, d.movedRuns)
	}
	n := len(b)
	for _, e := range base.es {
		if d.kept[e.stack] {
			n++
		}
	}
	es := make([]entry, 0, n)
	lcp := make([]int32, 0, n)
	// A merge that knows the common prefix of each list's head with the
	// entry output last (ha, hb): when they differ the longer one's head
	// comes first without a comparison, else the heads are compared from
	// there on only; either way the output's common prefixes come out of
	// it. The kept entries are read in the base's order, the prefix of
	// the head with the last output shrinking to the least of the base's
	// over the entries skipped (of sorted x <= y <= z, lcp(x, z) is the
	// least of lcp(x, y) and lcp(y, z)).
	i, j := 0, 0
	var ha, hb int32
	for {
		for i < len(base.es) && !d.kept[base.es[i].stack] {
			i++
			if i < len(base.es) {
				ha = min(ha, base.lcp[i])
			}
		}
		if i >= len(base.es) && j >= len(b) {
			break
		}
		var takeBase bool
		out := ha
		switch {
		case j >= len(b):
			takeBase = true
		case i >= len(base.es):
			out = hb
		default:
			takeBase, out = nextHead(base.es[i].names, b[j].names, &ha, &hb)
		}
		if takeBase {
			es = append(es, base.es[i])
			i++
			if i < len(base.es) {
				ha = base.lcp[i]
			}
		} else {
			es = append(es, b[j])
			j++
			if j < len(b) {
				hb = blcp[j]
			}
		}
		lcp = append(lcp, out)
	}
	d.moved, d.movedLCP, d.movedRuns = nil, nil, nil
	return sums(es, lcp)
}

// mergeRuns sorts entries that are sorted runs, the first at 0 and the
// others at starts, lcp being each entry's common prefix with the one
// before it (sorted neighbours within a run), by merging neighbouring
// runs pairwise: n log(runs) steps, most of which compare no names. It
// returns the entries sorted and their common prefixes (the first's 0),
// in es and lcp or in new slices.
func mergeRuns(es []entry, lcp []int32, starts []int32) ([]entry, []int32) {
	bounds := make([]int, 0, len(starts)+2)
	bounds = append(bounds, 0)
	for _, r := range starts {
		bounds = append(bounds, int(r))
	}
	bounds = append(bounds, len(es))
	src, slcp := es, lcp
	dst, dlcp := make([]entry, len(es)), make([]int32, len(es))
	for len(bounds) > 2 {
		runs := len(bounds) - 1
		next := make([]int, 0, runs/2+2)
		for k := 0; k < runs; k += 2 {
			lo, mid := bounds[k], bounds[k+1]
			next = append(next, lo)
			if k+1 == runs {
				copy(dst[lo:mid], src[lo:mid])
				copy(dlcp[lo:mid], slcp[lo:mid])
				continue
			}
			hi := bounds[k+2]
			merge2(dst[lo:hi], dlcp[lo:hi], src[lo:mid], slcp[lo:mid], src[mid:hi], slcp[mid:hi])
		}
		bounds = append(next, len(es))
		src, slcp, dst, dlcp = dst, dlcp, src, slcp
	}
	if len(slcp) > 0 {
		slcp[0] = 0
	}
	return src, slcp
}

// merge2 merges the sorted runs a and b into dst (len(a)+len(b) long),
// with the common prefix of each output entry with the one before in dlcp
// (the first's 0); alcp and blcp are the runs' own (their first ignored).
// Each step is derivation.sort's (nextHead).
func merge2(dst []entry, dlcp []int32, a []entry, alcp []int32, b []entry, blcp []int32) {
	i, j := 0, 0
	var ha, hb int32
	for o := range dst {
		var takeA bool
		out := ha
		switch {
		case j >= len(b):
			takeA = true
		case i >= len(a):
			out = hb
		default:
			takeA, out = nextHead(a[i].names, b[j].names, &ha, &hb)
		}
		if takeA {
			dst[o] = a[i]
			i++
			if i < len(a) {
				ha = alcp[i]
			}
		} else {
			dst[o] = b[j]
			j++
			if j < len(b) {
				hb = blcp[j]
			}
		}
		dlcp[o] = out
	}
}

// nextHead is the step of derivation.sort's and merge2's merges: of two
// heads x and y, whose common prefixes with the entry output last are ha
// and hb, whether x comes first, and the common prefix of the one that
// does with that entry. When ha and hb differ the longer one's head comes
// first without a comparison; else the heads are compared from there on
// only, and the other head's prefix with the one taken is set.
func nextHead(x, y []int32, ha, hb *int32) (takeX bool, out int32) {
	switch {
	case *ha > *hb:
		return true, *ha
	case *hb > *ha:
		return false, *hb
	}
	out = *ha
	k := int(out) + commonPrefix(x[out:], y[out:])
	takeX = k == len(x) || (k < len(y) && x[k] < y[k])
	if takeX {
		*hb = int32(k)
	} else {
		*ha = int32(k)
	}
	return takeX, out
}

// Transformable reports whether Transform can derive views from this set.
func (s *Set) Transformable() bool { return s.src != nil && s.merges == 0 }

// maxMerges bounds the derivations by merges behind a set (the first
// from the untransformed set, then Extends): an extended set's unchanged
// stacks share their names with the set it came from, so that a long
// chain would keep the memory of sets the views' cache has let go of.
const maxMerges = 4

// Extend returns the set seen through more transforms ts when it can
// derive it from this set, a view derived through merges (Transform) or
// extended before: when ts are merges of names, whose frames all match,
// the set is that of the untransformed set seen through its merges and
// then ts (merges compose: they remove the union of their names). The
// page stacks merges from the graph's menu one at a time; after the first
// most stacks of the view on screen are through the merges already, and
// only those through the new name change, where derived from the
// untransformed set nearly all would again. ok is false when it cannot.
func (s *Set) Extend(ts []capture.Transform) (_ *Set, ok bool) {
	if s.merges == 0 || s.merges >= maxMerges {
		return nil, false
	}
	for _, t := range ts {
		if t.Kind != capture.TransformMerge {
			return nil, false
		}
	}
	np := s.namePlan(ts)
	if np == nil || !np.mergeOnly {
		return nil, false
	}
	if len(np.steps) == 0 {
		return s, true
	}
	return s.transformNames(np, nil), true
}

// Transform returns the set seen through the transforms, as the set of
// the transformed capture would be, computed from this set's entries
// instead of the capture's events. The set must be Transformable.
func (s *Set) Transform(ts []capture.Transform) *Set {
	p := s.src.Plan(ts)
	if p.Empty() {
		return s
	}
	if np := s.namePlan(ts); np != nil {
		return s.transformNames(np, p)
	}
	// The derived set is not Transformable itself: views derive from the
	// untransformed set with their whole transform stack.
	out := &Set{Names: s.Names, Modules: s.Modules, byName: s.byName, Unit: s.Unit, Instructions: s.Instructions}
	ids := s.srcIDs
	renumbered := false
	if len(p.Frames) > len(s.src.Frames) {
		// lib frames: their names may be new to the set.
		out.Names = slices.Clone(s.Names)
		out.Modules = slices.Clone(s.Modules)
		out.byName = make(map[string]int32, len(s.byName)+1)
		for k, v := range s.byName {
			out.byName[k] = v
		}
		remap := slices.Clone(s.srcIDs)
		extra := out.internFrames(p.Frames[len(s.src.Frames):], remap)
		ids = append(remap, extra...)
		renumbered = !slices.Equal(remap, s.srcIDs)
	}
	var d *derivation
	var kept []bool
	if !renumbered {
		kept = make([]bool, len(s.src.Stacks))
		d = &derivation{from: s, kept: kept}
	}
	// Halves of the stacks transformed at once when there are many: the
	// page asks for the view's tree and table together, both wait for
	// this, and the other core is idle meanwhile. Each half writes kept
	// at its own stacks only.
	chunks := [][]entry{s.entries}
	if len(s.entries) >= parallelTransform {
		h := len(s.entries) / 2
		chunks = [][]entry{s.entries[:h], s.entries[h:]}
	}
	type part struct{ entries, moved []entry }
	parts := make([]part, len(chunks))
	var wg sync.WaitGroup
	for i, es := range chunks {
		wg.Add(1)
		go func() {
			defer wg.Done()
			parts[i].entries, parts[i].moved = s.transformEntries(p, es, ids, kept)
		}()
	}
	wg.Wait()
	if len(parts) == 1 {
		out.entries = parts[0].entries
		if d != nil {
			d.moved = parts[0].moved
		}
	} else {
		out.entries = slices.Concat(parts[0].entries, parts[1].entries)
		if d != nil {
			d.moved = slices.Concat(parts[0].moved, parts[1].moved)
		}
	}
	out.deriv = d
	if lined(p.Frames) {
		// The lines are weighed anew: the transformed stacks hold other
		// frames.
		var bufs [2][]uint32
		out.Files, out.Lines, out.lineW = nil, nil, nil
		out.addLines(p.Frames, ids, func(yield func([]uint32, int64) bool) {
			for _, e := range s.entries {
				if ns, _ := p.Apply(s.src.Stacks[e.stack], &bufs); ns != nil && !yield(ns, e.v) {
					return
				}
			}
		})
	}
	return out
}

// parallelTransform is the number of stacks from which Transform works in
// two halves at once (a variable: tests lower it).
var parallelTransform = 16384

// transformEntries transforms entries (of s.src's stacks) through p. With
// kept (not nil), an entry the plan leaves as it was is kept as it is and
// marked in kept; the others are also returned as moved. Transformed
// entries that keep their frames share their names; the others are
// written into one arena, grown as needed.
func (s *Set) transformEntries(p *capture.TransformPlan, es []entry, ids []int32, kept []bool) (entries, moved []entry) {
	var bufs [2][]uint32
	var arena []int32
	entries = make([]entry, 0, len(es))
	for _, e := range es {
		ns, changed := p.Apply(s.src.Stacks[e.stack], &bufs)
		if ns == nil {
			continue
		}
		if !changed && kept != nil {
			entries = append(entries, e)
			kept[e.stack] = true
			continue
		}
		if cap(arena)-len(arena) < len(ns) {
			arena = make([]int32, 0, max(1<<16, 4*len(ns)))
		}
		start := len(arena)
		arena = appendNames(arena, ns, ids, s.reverse)
		if len(arena) == start {
			continue
		}
		e.names = arena[start:len(arena):len(arena)]
		entries = append(entries, e)
		if kept != nil {
			moved = append(moved, e)
		}
	}
	return entries, moved
}

// Totals are the values of both sides.
func (s *Set) Totals() (compare, base int64) {
	for _, e := range s.entries {
		compare += e.v
		base += e.b
	}
	return compare, base
}

// Function is one row of the function table. Self: the value of the stacks
// that end in it; total: of the stacks that hold it (once per stack, so
// recursion is not counted twice).
type Function struct {
	Name      string `json:"name"`
	Module    string `json:"module"`
	File      string `json:"file,omitempty"`
	Line      int    `json:"line,omitempty"`
	Self      int64  `json:"self"`
	Total     int64  `json:"total"`
	BaseSelf  int64  `json:"base_self"`
	BaseTotal int64  `json:"base_total"`
}

// Functions computes the function table, unsorted, from the table by
// name computed once per set (the table and the summary both ask).
func (s *Set) Functions() []Function {
	fns := s.fnTable()
	out := make([]Function, 0, len(fns))
	for i := range fns {
		f := fns[i]
		if f.Total == 0 && f.BaseTotal == 0 {
			continue
		}
		f.Name, f.Module = s.Names[i], s.Modules[i]
		f.File, f.Line = s.Loc(int32(i))
		out = append(out, f)
	}
	return out
}

// fnTable is the function table by name id, without the names, computed
// once: read only.
func (s *Set) fnTable() []Function {
	s.fnsOnce.Do(func() {
		if s.fnsFrom != nil {
			s.fns = s.fnsFrom()
			s.fnsFrom = nil
			return
		}
		s.fns = make([]Function, len(s.Names))
		tally(s.fns, s.entries, 1)
	})
	return s.fns
}

// tally adds (sign 1) or takes away (-1) the entries' values to the
// table: each name's total once per entry, self to its leaf.
func tally(fns []Function, es []entry, sign int64) {
	seen := make([]int32, len(fns)) // stamp: the entry that last counted the name, plus one
	for i, e := range es {
		stamp := int32(i + 1)
		v, b := sign*e.v, sign*e.b
		for _, n := range e.names {
			if seen[n] == stamp {
				continue
			}
			seen[n] = stamp
			fns[n].Total += v
			fns[n].BaseTotal += b
		}
		leaf := e.names[len(e.names)-1]
		fns[leaf].Self += v
		fns[leaf].BaseSelf += b
	}
}

// FunctionSorts are the orders of the function table.
var FunctionSorts = []string{"self", "total", "name", "delta"}

// SortFunctions orders the table: by self or total (largest first), name,
// or delta (largest change of share first, diffs only). Ties go by name.
func SortFunctions(fns []Function, by string, total, baseTotal int64) {
	share := func(v, t int64) float64 {
		if t == 0 {
			return 0
		}
		return float64(v) / float64(t)
	}
	delta := func(f Function) float64 {
		d := share(f.Total, total) - share(f.BaseTotal, baseTotal)
		if d < 0 {
			d = -d
		}
		return d
	}
	slices.SortFunc(fns, func(a, b Function) int {
		var c int
		switch by {
		case "total":
			c = cmp.Compare(b.Total, a.Total)
		case "name":
			c = strings.Compare(a.Name, b.Name)
		case "delta":
			c = cmp.Compare(delta(b), delta(a))
		default:
			c = cmp.Compare(b.Self, a.Self)
		}
		return cmp.Or(c, strings.Compare(a.Name, b.Name))
	})
}

// Lookup finds the name id of a function given by its folded name or its
// label (the folded name without a kind suffix). ok false: no such frame.
func (s *Set) Lookup(name string) (int32, bool) {
	if id, ok := s.byName[name]; ok {
		return id, true
	}
	for _, suffix := range []string{"_[k]", "_[j]", "_[i]", "_[w]", "_[k]_[w]", "_[j]_[w]", "_[i]_[w]"} {
		if id, ok := s.byName[name+suffix]; ok {
			return id, true
		}
	}
	return 0, false
}

// Sandwich splits the stacks through function fn at its outermost frame:
// callers (fn first, then its caller, up to the root) and callees (fn
// first, down to the leaf). Both sets' roots are fn, with fn's total.
func (s *Set) Sandwich(fn int32) (callers, callees *Set) {
	callers = &Set{Names: s.Names, Modules: s.Modules, byName: s.byName, Unit: s.Unit, Diff: s.Diff, Instructions: s.Instructions}
	callees = &Set{Names: s.Names, Modules: s.Modules, byName: s.byName, Unit: s.Unit, Diff: s.Diff, Instructions: s.Instructions}
	need := 0
	for _, e := range s.entries {
		if k := slices.Index(e.names, fn); k >= 0 {
			need += k + 1
		}
	}
	arena := make([]int32, 0, need)
	for _, e := range s.entries {
		k := slices.Index(e.names, fn)
		if k < 0 {
			continue
		}
		start := len(arena)
		for i := k; i >= 0; i-- {
			arena = append(arena, e.names[i])
		}
		callers.entries = append(callers.entries, entry{names: arena[start:len(arena):len(arena)], v: e.v, b: e.b})
		callees.entries = append(callees.entries, entry{names: e.names[k:], v: e.v, b: e.b})
	}
	return callers, callees
}

// Subtree keeps the stacks that start with path (name ids, root first)
// and cuts path off but for its last frame, which becomes their root.
func (s *Set) Subtree(path []int32) *Set {
	s.prep()
	out := &Set{Names: s.Names, Modules: s.Modules, Files: s.Files, Lines: s.Lines, lineW: s.lineW, byName: s.byName, Unit: s.Unit, Diff: s.Diff}
	if len(path) == 0 {
		out.entries = s.entries
		out.prepOnce.Do(func() { out.sorted = s.sorted })
		return out
	}
	// The stacks that start with path are a run of the sorted entries, in
	// order: the subtree's sorted set is a slice of this one's.
	es := s.sorted.es
	head := func(i int) int { return slices.Compare(es[i].names[:min(len(es[i].names), len(path))], path) }
	lo := sort.Search(len(es), func(i int) bool { return head(i) >= 0 })
	hi := lo + sort.Search(len(es)-lo, func(i int) bool { return head(lo+i) > 0 })
	cut := int32(len(path) - 1)
	out.entries = make([]entry, hi-lo)
	lcp := make([]int32, hi-lo)
	for i := lo; i < hi; i++ {
		e := es[i]
		e.names = e.names[cut:]
		out.entries[i-lo] = e
		if i > lo {
			lcp[i-lo] = s.sorted.lcp[i] - cut
		}
	}
	out.prepOnce.Do(func() { out.sorted = sums(out.entries, lcp) })
	return out
}

// Node is one frame of a drawn tree. Value and Self are the compare (or
// only) side; Base and BaseSelf the base side of a diff. A pruned node
// (Pruned > 0) stands for the frames under one parent that were left out:
// Pruned of them, holding Value (and Base).
type Node struct {
	Name     string
	Value    int64
	Self     int64
	Base     int64
	BaseSelf int64
	Pruned   int64
	File     string // source file and line where known (Set.Files)
	Line     int
	Children []*Node
	pos      int // first entry of the node in the sorted stacks: sibling order
}

// PrunedName is the name of a node that holds pruned frames.
const PrunedName = "[pruned]"

// group is the entries[lo:hi] that share a frame at depth-1 below parent.
type group struct {
	lo, hi int32
	depth  int32 // length of the frame's path from the root, the root's children have 1
	parent int32 // index of the kept node
	weight int64
}

// before orders the groups widest first, then by position: the order in
// which Tree keeps frames.
func (g *group) before(o *group) bool {
	if g.weight != o.weight {
		return g.weight > o.weight
	}
	return g.lo < o.lo
}

// groupHeap is a 4-ary heap of groups, widest first: half the levels of
// a binary heap, and each moved group written once (the one sifted is
// held aside), for Tree pushes every child of every frame it keeps.
type groupHeap []group

func (h *groupHeap) push(g group) {
	a := append(*h, g)
	i := len(a) - 1
	for i > 0 {
		p := (i - 1) / 4
		if !g.before(&a[p]) {
			break
		}
		a[i] = a[p]
		i = p
	}
	a[i] = g
	*h = a
}

func (h *groupHeap) pop() group {
	a := *h
	g := a[0]
	n := len(a) - 1
	last := a[n]
	a = a[:n]
	if n > 0 {
		i := 0
		for {
			c := 4*i + 1
			if c >= n {
				break
			}
			best := c
			for k := c + 1; k < c+4 && k < n; k++ {
				if a[k].before(&a[best]) {
					best = k
				}
			}
			if !a[best].before(&last) {
				break
			}
			a[i] = a[best]
			i = best
		}
		a[i] = last
	}
	*h = a
	return g
}

// Tree merges the stacks into a call tree under a root named root and
// keeps the budget widest frames (widest first, so every kept frame's
// parent is kept). What is left out is never lost: each parent gets one
// pruned node with the count of frames and the value it holds. Children
// are in name order.
func (s *Set) Tree(root string, budget int) *Node {
	if budget < 1 {
		budget = 1
	}
	s.prep()
	ss := s.sorted
	es := ss.es
	lcp, next, cumV, cumB, cumNew := ss.lcp, ss.next, ss.cumV, ss.cumB, ss.cumNew
	n := len(es)
	// frames under depth d (not counting it) in a group [lo,hi) whose
	// entries share their first d frames: the first entry brings its own,
	// the others what they add beyond their common prefix, which is >= d.
	framesIn := func(lo, hi, d int) int64 {
		return int64(len(es[lo].names)-d) + (cumNew[hi] - cumNew[lo+1])
	}
	// The kept nodes, in the order they are kept; a node's children are
	// linked through their indexes until the end.
	nodes := make([]Node, 1, min(budget, int(cumNew[n])+1))
	nodes[0] = Node{Name: root, Value: cumV[n], Base: cumB[n]}
	parentOf := make([]int32, 1, cap(nodes))
	heap := make(groupHeap, 0, min(4*budget, n+1))
	h := &heap
	pushChildren := func(parent int32, lo, hi, d int) {
		p := &nodes[parent]
		i := lo
		for i < hi && len(es[i].names) == d {
			p.Self += es[i].v
			p.BaseSelf += es[i].b
			i++
		}
		for i < hi {
			// The entries that share the frame at depth d: their common
			// prefixes with the entry before are longer than d. (next
			// never passes hi: the entry at hi shares fewer than d.)
			j := i + 1
			for j < hi && int(lcp[j]) > d {
				j = int(next[j])
			}
			h.push(group{lo: int32(i), hi: int32(j), depth: int32(d + 1), parent: parent,
				weight: cumV[j] - cumV[i] + cumB[j] - cumB[i]})
			i = j
		}
	}
	pushChildren(0, 0, n, 0)
	for len(*h) > 0 && len(nodes) < budget {
		g := h.pop()
		lo, hi := int(g.lo), int(g.hi)
		id := es[lo].names[g.depth-1]
		nodes = append(nodes, Node{Name: s.Names[id], Value: cumV[hi] - cumV[lo], Base: cumB[hi] - cumB[lo], pos: lo})
		nodes[len(nodes)-1].File, nodes[len(nodes)-1].Line = s.Loc(id)
		parentOf = append(parentOf, g.parent)
		pushChildren(int32(len(nodes)-1), lo, hi, int(g.depth))
	}
	// What is left is pruned: one node per parent that holds it (the
	// index of each kept node's in prunedNodes, plus one).
	prunedOf := make([]int32, len(nodes))
	var prunedNodes []Node
	for i := range *h {
		g := &(*h)[i]
		k := prunedOf[g.parent]
		if k == 0 {
			prunedNodes = append(prunedNodes, Node{Name: PrunedName})
			k = int32(len(prunedNodes))
			prunedOf[g.parent] = k
		}
		p := &prunedNodes[k-1]
		p.Value += cumV[g.hi] - cumV[g.lo]
		p.Base += cumB[g.hi] - cumB[g.lo]
		p.Pruned += 1 + framesIn(int(g.lo), int(g.hi), int(g.depth))
	}
	// Children in name order (their position in the sorted entries; kept
	// nodes come after their parents, so positions order siblings), the
	// pruned node last, from one array of pointers.
	count := make([]int32, len(nodes))
	for i := 1; i < len(nodes); i++ {
		count[parentOf[i]]++
	}
	for i, k := range prunedOf {
		if k > 0 {
			count[i]++
		}
	}
	ptrs := make([]*Node, len(nodes)-1+len(prunedNodes))
	off := 0
	for i := range nodes {
		if count[i] > 0 {
			nodes[i].Children = ptrs[off : off : off+int(count[i])]
			off += int(count[i])
		}
	}
	for i := 1; i < len(nodes); i++ {
		p := &nodes[parentOf[i]]
		p.Children = append(p.Children, &nodes[i])
	}
	for i := range nodes {
		nd := &nodes[i]
		if len(nd.Children) > 1 {
			slices.SortFunc(nd.Children, func(a, b *Node) int { return cmp.Compare(a.pos, b.pos) })
		}
		if k := prunedOf[i]; k > 0 {
			nd.Children = append(nd.Children, &prunedNodes[k-1])
		}
	}
	return &nodes[0]
}

// sort orders the entries by their names (ids are ranks of the spelling,
// so siblings come out in name order) and computes the prefix sums Tree
// works from.
func (s *Set) sort() *sortedSet {
	es := slices.Clone(s.entries)
	return sums(es, sortEntries(es))
}

// sums computes the prefix sums of sorted entries: of both sides, and of
// the frames each entry adds to the tree beyond its common prefix with the
// previous one, so that the number of frames under a run of entries is a
// difference of sums.
func sums(es []entry, lcp []int32) *sortedSet {
	n := len(es)
	cumV := make([]int64, n+1)
	cumB := make([]int64, n+1)
	cumNew := make([]int64, n+1)
	for i, e := range es {
		cumV[i+1] = cumV[i] + e.v
		cumB[i+1] = cumB[i] + e.b
		cumNew[i+1] = cumNew[i] + int64(len(e.names)-int(lcp[i]))
	}
	// next, from the last entry back: a stack of the entries after i
	// whose prefixes are shorter than those of all entries between.
	next := make([]int32, n)
	stack := make([]int32, 0, 64)
	for i := n - 1; i >= 0; i-- {
		for len(stack) > 0 && lcp[stack[len(stack)-1]] >= lcp[i] {
			stack = stack[:len(stack)-1]
		}
		next[i] = int32(n)
		if len(stack) > 0 {
			next[i] = stack[len(stack)-1]
		}
		stack = append(stack, int32(i))
	}
	return &sortedSet{es: es, lcp: lcp, next: next, cumV: cumV, cumB: cumB, cumNew: cumNew}
}

// sortEntries sorts entries by their names, lexicographically (a prefix
// first), and returns the length of each one's common prefix with the one
// before. It is a most-significant-digit radix sort: each run of entries
// that share a prefix is sorted by the next name only, so each name is
// read about once.
func sortEntries(es []entry) []int32 {
	lcp := make([]int32, len(es))
	type task struct{ lo, hi, d int }
	tasks := []task{{0, len(es), 0}}
	var keys []uint64
	var tmp []entry
	var counts []int32
	for len(tasks) > 0 {
		t := tasks[len(tasks)-1]
		tasks = tasks[:len(tasks)-1]
		lo, hi, d := t.lo, t.hi, t.d
		if hi-lo < 2 {
			continue
		}
		if hi-lo <= 12 {
			smallSort(es[lo:hi], lcp[lo:hi], d)
			continue
		}
		// Skip the prefix every entry of the run shares beyond d.
		first := es[lo].names
		shared := len(first) - d
		for k := lo + 1; k < hi && shared > 0; k++ {
			shared = min(shared, commonPrefix(first[d:d+shared], es[k].names[d:]))
		}
		d += shared
		// Entries that end at d come first: they are equal.
		i := lo
		for k := lo; k < hi; k++ {
			if len(es[k].names) == d {
				es[i], es[k] = es[k], es[i]
				i++
			}
		}
		for k := lo + 1; k <= i && k < hi; k++ {
			lcp[k] = int32(d)
		}
		if hi-i < 2 {
			continue
		}
		// Sort the rest by the name at d: by counting when the names span
		// a range not much larger than the run, else by comparison.
		lo2, hi2 := es[i].names[d], es[i].names[d]
		for k := i + 1; k < hi; k++ {
			n := es[k].names[d]
			lo2, hi2 = min(lo2, n), max(hi2, n)
		}
		m := hi - i
		if span := int(hi2-lo2) + 1; span <= 4*m {
			counts = slices.Grow(counts[:0], span+1)[:span+1]
			clear(counts)
			for k := i; k < hi; k++ {
				counts[es[k].names[d]-lo2+1]++
			}
			for b := 1; b <= span; b++ {
				counts[b] += counts[b-1]
			}
			// counts[b] is now where bucket b starts.
			tmp = slices.Grow(tmp[:0], m)[:m]
			for k := i; k < hi; k++ {
				b := es[k].names[d] - lo2
				tmp[counts[b]] = es[k]
				counts[b]++
			}
			copy(es[i:hi], tmp)
			// counts[b] is now where bucket b ends.
			start := int32(0)
			for b := 0; b < span; b++ {
				end := counts[b]
				if end == start {
					continue
				}
				if start > 0 {
					lcp[i+int(start)] = int32(d)
				}
				if end-start > 1 {
					tasks = append(tasks, task{i + int(start), i + int(end), d + 1})
				}
				start = end
			}
			continue
		}
		keys = keys[:0]
		for k := i; k < hi; k++ {
			keys = append(keys, uint64(uint32(es[k].names[d]))<<32|uint64(k-i))
		}
		slices.Sort(keys)
		tmp = append(tmp[:0], es[i:hi]...)
		for k, key := range keys {
			es[i+k] = tmp[uint32(key)]
		}
		for r := 0; r < len(keys); {
			name := keys[r] >> 32
			q := r + 1
			for q < len(keys) && keys[q]>>32 == name {
				q++
			}
			if r > 0 {
				lcp[i+r] = int32(d)
			}
			if q-r > 1 {
				tasks = append(tasks, task{i + r, i + q, d + 1})
			}
			r = q
		}
	}
	return lcp
}

// smallSort sorts a few entries that share their first d names by
// insertion, and sets lcp within them (lcp[0] is the caller's).
func smallSort(es []entry, lcp []int32, d int) {
	for i := 1; i < len(es); i++ {
		for j := i; j > 0 && slices.Compare(es[j].names[d:], es[j-1].names[d:]) < 0; j-- {
			es[j], es[j-1] = es[j-1], es[j]
		}
	}
	for i := 1; i < len(es); i++ {
		lcp[i] = int32(d + commonPrefix(es[i-1].names[d:], es[i].names[d:]))
	}
}

func commonPrefix(a, b []int32) int {
	n := min(len(a), len(b))
	for i := 0; i < n; i++ {
		if a[i] != b[i] {
			return i
		}
	}
	return n
}
