package calltree

import (
	"slices"
	"sync"

	"github.com/scorch-dev/scorch/capture"
)

// A transform stack of focus, merge and drop steps is applied to the
// set's name ids directly when each step matches every frame of a name or
// none of them (a user frame named "f_[k]" and a kernel frame "f" share
// the folded name f_[k] but not the label f: then the frames decide).
// The entries are read in the untransformed set's sorted order, so that
// the changed ones come out sorted already when the transforms remove
// frames at the same depths of the stacks that hold them (as merging a
// function called from one place does): their sort is then a check of
// each against the one before, not a radix sort. Where they do not (a
// merged function's callees land among its siblings), they are a few
// sorted runs, merged pairwise (mergeRuns), not sorted anew.

// namePlan is such a transform stack compiled against the set's names.
type namePlan struct {
	steps []nameStep
	// mergeOnly: every step is a merge (of the union of their names);
	// the function table is then the untransformed one's but for the
	// merged names and the self of the stacks that ended in them.
	mergeOnly bool
	dropOnly  bool
	merged    []bool // by name id: the union of the merge steps' names
}

type nameStep struct {
	kind  capture.TransformKind
	match []bool // by name id
}

// namePlan compiles ts against the set's names, nil when the frames must
// decide (rec and lib steps, or a name some of whose frames match).
func (s *Set) namePlan(ts []capture.Transform) *namePlan {
	frames := s.src.Frames
	np := &namePlan{mergeOnly: true, dropOnly: true}
	for _, t := range ts {
		switch t.Kind {
		case capture.TransformFocus, capture.TransformMerge, capture.TransformDrop:
		default:
			return nil
		}
		match := make([]bool, len(s.Names))
		mixed := make([]bool, len(s.Names)) // a frame of the name does not match
		found := false
		for i := range frames {
			if i >= len(s.srcIDs) {
				return nil
			}
			n := s.srcIDs[i]
			if frames[i].FrameMatches(t.Name) {
				match[n], found = true, true
			} else {
				mixed[n] = true
			}
		}
		for n := range match {
			if match[n] && mixed[n] {
				return nil
			}
		}
		// As Plan: a step that matches no frame changes nothing, but for
		// focus, which then empties every stack.
		if !found && t.Kind != capture.TransformFocus {
			continue
		}
		np.steps = append(np.steps, nameStep{kind: t.Kind, match: match})
		np.mergeOnly = np.mergeOnly && t.Kind == capture.TransformMerge
		np.dropOnly = np.dropOnly && t.Kind == capture.TransformDrop
	}
	if np.mergeOnly {
		np.merged = make([]bool, len(s.Names))
		for _, st := range np.steps {
			for n, m := range st.match {
				np.merged[n] = np.merged[n] || m
			}
		}
		// Merges compose into one of the union of their names: each stack
		// is copied once, however many merges the page stacked up.
		if len(np.steps) > 1 {
			np.steps = []nameStep{{kind: capture.TransformMerge, match: np.merged}}
		}
	}
	return np
}

// apply returns the names seen through the plan: names itself when no step
// changes them, nil when the stack is dropped, else the new names in one
// of bufs (reused by the next call). same is how many leading names are
// those of names, unchanged (len(names) when unchanged). reverse: the
// names are leaf first.
func (np *namePlan) apply(names []int32, bufs *[2][]int32, reverse bool) (out []int32, same int) {
	cur, k := names, 0
	same = len(names)
	for i := range np.steps {
		st := &np.steps[i]
		first := -1
		for j, n := range cur {
			if st.match[n] {
				first = j
				break
			}
		}
		switch st.kind {
		case capture.TransformDrop:
			if first >= 0 {
				return nil, 0
			}
			continue
		case capture.TransformFocus:
			if first < 0 {
				return nil, 0
			}
			if reverse {
				// Root first, the stack from its outermost F on: leaf
				// first, the names up to the last F.
				last := len(cur) - 1
				for !st.match[cur[last]] {
					last--
				}
				if last == len(cur)-1 {
					continue
				}
				cur = cur[:last+1] // a prefix: no copy
				same = min(same, len(cur))
				continue
			}
			if first == 0 {
				continue
			}
			buf := append(bufs[k][:0], cur[first:]...)
			bufs[k], k = buf, k^1
			cur, same = buf, 0
		case capture.TransformMerge:
			if first < 0 {
				continue
			}
			buf := append(bufs[k][:0], cur[:first]...)
			for _, n := range cur[first+1:] {
				if !st.match[n] {
					buf = append(buf, n)
				}
			}
			if len(buf) == 0 {
				return nil, 0
			}
			bufs[k], k = buf, k^1
			cur, same = buf, min(same, first)
		}
	}
	return cur, same
}

// nameHalf is what one goroutine of transformNames made of its run of the
// sorted entries.
type nameHalf struct {
	entries []entry // kept and changed, the changed ones in order after the kept
	moved   []entry // the changed entries, in the untransformed order
	lcp     []int32 // each moved entry's common prefix with the one before (the first's: 0)
	runs    []int32 // where the moved entries are out of order: each starts a sorted run
	dropped []entry // the entries dropped, for a drop-only plan's table
	selfTo  []entry // merge only: the moved entries that ended in a merged name
}

// transformNames is Transform (or Extend) through a name plan.
// p is the same stack compiled against the frames, for the lines (not
// read for merges only, which leave the lines as they were).
func (s *Set) transformNames(np *namePlan, p *capture.TransformPlan) *Set {
	s.prep()
	base := s.sorted
	out := &Set{Names: s.Names, Modules: s.Modules, byName: s.byName, Unit: s.Unit, Instructions: s.Instructions,
		Files: s.Files, Lines: s.Lines, lineW: s.lineW}
	kept := make([]bool, len(s.src.Stacks))
	n := len(base.es)
	bounds := []int{0, n}
	if n >= parallelTransform {
		bounds = []int{0, n / 2, n}
	}
	halves := make([]nameHalf, len(bounds)-1)
	var wg sync.WaitGroup
	for h := range halves {
		wg.Add(1)
		go func() {
			defer wg.Done()
			halves[h] = s.transformRun(np, base, bounds[h], bounds[h+1], kept)
		}()
	}
	wg.Wait()
	d := &derivation{from: s, kept: kept}
	var selfTo, dropped []entry
	nk, nm := 0, 0
	for h := range halves {
		nk, nm = nk+len(halves[h].entries), nm+len(halves[h].moved)
	}
	out.entries = make([]entry, 0, nk)
	d.moved = make([]entry, 0, nm)
	d.movedLCP = make([]int32, 0, nm)
	for h := range halves {
		hf := &halves[h]
		out.entries = append(out.entries, hf.entries...)
		if h > 0 && len(hf.moved) > 0 && len(d.moved) > 0 {
			// The first of this half against the last of the one before.
			a, b := d.moved[len(d.moved)-1].names, hf.moved[0].names
			c := commonPrefix(a, b)
			hf.lcp[0] = int32(c)
			if !(c == len(a) || (c < len(b) && a[c] < b[c])) {
				d.movedRuns = append(d.movedRuns, int32(len(d.moved)))
			}
		}
		for _, r := range hf.runs {
			d.movedRuns = append(d.movedRuns, int32(len(d.moved))+r)
		}
		d.moved = append(d.moved, hf.moved...)
		d.movedLCP = append(d.movedLCP, hf.lcp...)
		selfTo = append(selfTo, hf.selfTo...)
		dropped = append(dropped, hf.dropped...)
	}
	out.deriv = d
	if lined(s.src.Frames) && !np.mergeOnly {
		// The lines are weighed anew: stacks were dropped or cut. (A merge
		// leaves every other name's frames with the weights they had.)
		var bufs [2][]uint32
		out.Files, out.Lines, out.lineW = nil, nil, nil
		out.addLines(p.Frames, s.srcIDs, func(yield func([]uint32, int64) bool) {
			for _, e := range s.entries {
				if ns, _ := p.Apply(s.src.Stacks[e.stack], &bufs); ns != nil && !yield(ns, e.v) {
					return
				}
			}
		})
	}
	switch {
	case np.mergeOnly:
		out.src, out.reverse, out.srcIDs, out.merges = s.src, s.reverse, s.srcIDs, s.merges+1
		out.fnsFrom = func() []Function {
			fns := slices.Clone(s.fnTable())
			for id, m := range np.merged {
				if m {
					fns[id] = Function{}
				}
			}
			for _, e := range selfTo {
				leaf := e.names[len(e.names)-1]
				fns[leaf].Self += e.v
				fns[leaf].BaseSelf += e.b
			}
			return fns
		}
	case np.dropOnly && len(dropped) < len(out.entries):
		out.fnsFrom = func() []Function {
			fns := slices.Clone(s.fnTable())
			tally(fns, dropped, -1)
			return fns
		}
	}
	return out
}

// transformRun transforms the sorted entries base.es[lo:hi] through np.
func (s *Set) transformRun(np *namePlan, base *sortedSet, lo, hi int, kept []bool) nameHalf {
	var hf nameHalf
	hf.entries = make([]entry, 0, hi-lo)
	hf.moved = make([]entry, 0, hi-lo)
	var bufs [2][]int32
	var arena []int32
	prev := -1      // the moved entry before, in base.es
	prevSame := 0   // its leading names that are as they were
	var since int32 // the least common prefix of base.es since prev
	for i := lo; i < hi; i++ {
		e := base.es[i]
		if prev >= 0 {
			since = min(since, base.lcp[i])
		}
		ns, same := np.apply(e.names, &bufs, s.reverse)
		if ns == nil {
			if np.dropOnly {
				hf.dropped = append(hf.dropped, e)
			}
			continue
		}
		if same == len(e.names) && len(ns) == len(e.names) {
			hf.entries = append(hf.entries, e)
			kept[e.stack] = true
			continue
		}
		if cap(arena)-len(arena) < len(ns) {
			arena = make([]int32, 0, max(1<<16, 4*len(ns)))
		}
		start := len(arena)
		arena = append(arena, ns...)
		me := e
		me.names = arena[start:len(arena):len(arena)]
		var c int
		if prev >= 0 {
			// The names before either's first change, and within the
			// prefix the two shared, are the same.
			lb := min(int(since), same, prevSame)
			a := hf.moved[len(hf.moved)-1].names
			c = lb + commonPrefix(a[lb:], me.names[lb:])
			if !(c == len(a) || (c < len(me.names) && a[c] < me.names[c])) {
				hf.runs = append(hf.runs, int32(len(hf.moved)))
			}
		}
		hf.moved = append(hf.moved, me)
		hf.lcp = append(hf.lcp, int32(c))
		if np.mergeOnly && np.merged[e.names[len(e.names)-1]] {
			hf.selfTo = append(hf.selfTo, me)
		}
		prev, prevSame, since = i, same, int32(len(e.names))
	}
	hf.entries = append(hf.entries, hf.moved...)
	return hf
}
