package calltree

// The call tree as it was computed before the radix sort and the derived
// transforms: the straightforward form that the tests compare with.

import (
	"cmp"
	"container/heap"
	"slices"
	"strings"
	"sync"

	"github.com/scorch-dev/scorch/capture"
)

// refSet is the selected stacks of one or two captures (base and compare),
// as lists of name ids, root first.
type refSet struct {
	Names   []string // folded names
	Modules []string // module of the first frame seen with each name
	byName  map[string]int32
	entries []refEntry
	Unit    string
	Diff    bool // entries carry a base side
	// Instructions: the base side holds each stack's instructions
	// (Event.Value2) instead of a base capture: CPI captures, whose
	// frames are coloured by cycles per instruction.
	Instructions bool

	// The stacks sorted for Tree, computed once: a set is shared by the
	// requests of one view, which differ in their node budget.
	sortOnce sync.Once
	sorted   *refSortedSet
}

type refSortedSet struct {
	es                 []refEntry
	keys               [][]int32 // names as ranks of their spelling
	cumV, cumB, cumNew []int64
}

type refEntry struct {
	names []int32
	v, b  int64 // compare (or only) side, base side
}

// newRefSet starts an empty set.
func newRefSet() *refSet { return &refSet{byName: make(map[string]int32)} }

// Add adds the capture's events selected by q, merged per stack, to the
// compare side (base false) or the base side. reverse merges by leaf.
func (s *refSet) Add(c *capture.Capture, q capture.Query, reverse, base bool) {
	if s.Unit == "" {
		s.Unit = c.Meta.Unit
	}
	s.Diff = s.Diff || base
	ids := make([]int32, len(c.Frames))
	for i := range c.Frames {
		f := &c.Frames[i]
		ids[i] = s.intern(f.FoldedName(), f.Module)
	}
	agg := c.Aggregate(q)
	need := 0
	for _, sv := range agg {
		need += len(c.Stacks[sv.Stack])
	}
	// One arena for all the stacks' names: fewer, larger allocations.
	arena := make([]int32, 0, need)
	for _, sv := range agg {
		st := c.Stacks[sv.Stack]
		if sv.Value <= 0 || len(st) == 0 {
			continue
		}
		start := len(arena)
		for i := range st {
			f := st[i]
			if reverse {
				f = st[len(st)-1-i]
			}
			if int(f) < len(ids) {
				arena = append(arena, ids[f])
			}
		}
		if len(arena) == start {
			continue
		}
		e := refEntry{names: arena[start:len(arena):len(arena)]}
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
}

func (s *refSet) intern(name, module string) int32 {
	if id, ok := s.byName[name]; ok {
		if s.Modules[id] == "" {
			s.Modules[id] = module
		}
		return id
	}
	id := int32(len(s.Names))
	s.Names = append(s.Names, name)
	s.Modules = append(s.Modules, module)
	s.byName[name] = id
	return id
}

// Totals are the values of both sides.
func (s *refSet) Totals() (compare, base int64) {
	for _, e := range s.entries {
		compare += e.v
		base += e.b
	}
	return compare, base
}

// Functions computes the function table, unsorted.
func (s *refSet) Functions() []Function {
	fns := make([]Function, len(s.Names))
	seen := make([]int32, len(s.Names)) // stamp: the refEntry that last counted the name, plus one
	for i, e := range s.entries {
		stamp := int32(i + 1)
		for _, n := range e.names {
			if seen[n] == stamp {
				continue
			}
			seen[n] = stamp
			fns[n].Total += e.v
			fns[n].BaseTotal += e.b
		}
		leaf := e.names[len(e.names)-1]
		fns[leaf].Self += e.v
		fns[leaf].BaseSelf += e.b
	}
	out := fns[:0]
	for i := range fns {
		f := fns[i]
		if f.Total == 0 && f.BaseTotal == 0 {
			continue
		}
		f.Name, f.Module = s.Names[i], s.Modules[i]
		out = append(out, f)
	}
	return out
}

// Lookup finds the name id of a function given by its folded name or its
// label (the folded name without a kind suffix). ok false: no such frame.
func (s *refSet) Lookup(name string) (int32, bool) {
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
func (s *refSet) Sandwich(fn int32) (callers, callees *refSet) {
	callers = &refSet{Names: s.Names, Modules: s.Modules, byName: s.byName, Unit: s.Unit, Diff: s.Diff, Instructions: s.Instructions}
	callees = &refSet{Names: s.Names, Modules: s.Modules, byName: s.byName, Unit: s.Unit, Diff: s.Diff, Instructions: s.Instructions}
	for _, e := range s.entries {
		k := slices.Index(e.names, fn)
		if k < 0 {
			continue
		}
		up := make([]int32, k+1)
		for i := range up {
			up[i] = e.names[k-i]
		}
		callers.entries = append(callers.entries, refEntry{names: up, v: e.v, b: e.b})
		callees.entries = append(callees.entries, refEntry{names: e.names[k:], v: e.v, b: e.b})
	}
	return callers, callees
}

// Subtree keeps the stacks that start with path (name ids, root first)
// and cuts path off but for its last frame, which becomes their root.
func (s *refSet) Subtree(path []int32) *refSet {
	out := &refSet{Names: s.Names, Modules: s.Modules, byName: s.byName, Unit: s.Unit, Diff: s.Diff}
	if len(path) == 0 {
		out.entries = s.entries
		return out
	}
	for _, e := range s.entries {
		if len(e.names) >= len(path) && slices.Equal(e.names[:len(path)], path) {
			out.entries = append(out.entries, refEntry{names: e.names[len(path)-1:], v: e.v, b: e.b})
		}
	}
	return out
}

// refGroup is the entries[lo:hi] that share a frame at depth-1 below parent.
type refGroup struct {
	lo, hi int
	depth  int // length of the frame's path from the root, the root's children have 1
	parent *Node
	weight int64
}

type refGroupHeap []refGroup

func (h refGroupHeap) Len() int { return len(h) }
func (h refGroupHeap) Less(i, j int) bool {
	if h[i].weight != h[j].weight {
		return h[i].weight > h[j].weight
	}
	return h[i].lo < h[j].lo
}
func (h refGroupHeap) Swap(i, j int) { h[i], h[j] = h[j], h[i] }
func (h *refGroupHeap) Push(x any)   { *h = append(*h, x.(refGroup)) }
func (h *refGroupHeap) Pop() any {
	old := *h
	g := old[len(old)-1]
	*h = old[:len(old)-1]
	return g
}

// Tree merges the stacks into a call tree under a root named root and
// keeps the budget widest frames (widest first, so every kept frame's
// parent is kept). What is left out is never lost: each parent gets one
// pruned node with the count of frames and the value it holds. Children
// are in name order.
func (s *refSet) Tree(root string, budget int) *Node {
	if budget < 1 {
		budget = 1
	}
	s.sortOnce.Do(func() { s.sorted = s.sort() })
	ss := s.sorted
	es, skeys, cumV, cumB, cumNew := ss.es, ss.keys, ss.cumV, ss.cumB, ss.cumNew
	n := len(es)
	// frames under depth d (not counting it) in a refGroup [lo,hi) whose
	// entries share their first d frames: the first refEntry brings its own,
	// the others what they add beyond their common prefix, which is >= d.
	framesIn := func(lo, hi, d int) int64 {
		return int64(len(es[lo].names)-d) + (cumNew[hi] - cumNew[lo+1])
	}
	top := &Node{Name: root, Value: cumV[n], Base: cumB[n]}
	h := &refGroupHeap{}
	pushChildren := func(parent *Node, lo, hi, d int) {
		i := lo
		for i < hi && len(es[i].names) == d {
			parent.Self += es[i].v
			parent.BaseSelf += es[i].b
			i++
		}
		for i < hi {
			name := skeys[i][d]
			j := i + 1
			for j < hi && skeys[j][d] == name {
				j++
			}
			heap.Push(h, refGroup{lo: i, hi: j, depth: d + 1, parent: parent,
				weight: cumV[j] - cumV[i] + cumB[j] - cumB[i]})
			i = j
		}
	}
	pushChildren(top, 0, n, 0)
	kept := 1
	pruned := make(map[*Node]*Node)
	for h.Len() > 0 {
		g := heap.Pop(h).(refGroup)
		if kept >= budget {
			p := pruned[g.parent]
			if p == nil {
				p = &Node{Name: PrunedName}
				pruned[g.parent] = p
			}
			p.Value += cumV[g.hi] - cumV[g.lo]
			p.Base += cumB[g.hi] - cumB[g.lo]
			p.Pruned += 1 + framesIn(g.lo, g.hi, g.depth)
			continue
		}
		kept++
		c := &Node{Name: s.Names[es[g.lo].names[g.depth-1]], Value: cumV[g.hi] - cumV[g.lo], Base: cumB[g.hi] - cumB[g.lo]}
		c.pos = g.lo
		g.parent.Children = append(g.parent.Children, c)
		pushChildren(c, g.lo, g.hi, g.depth)
	}
	// Children were added widest first: put them back in name order (their
	// position in the sorted entries), the pruned node last.
	stack := []*Node{top}
	for len(stack) > 0 {
		nd := stack[len(stack)-1]
		stack = stack[:len(stack)-1]
		slices.SortFunc(nd.Children, func(a, b *Node) int { return cmp.Compare(a.pos, b.pos) })
		stack = append(stack, nd.Children...)
		if p := pruned[nd]; p != nil {
			nd.Children = append(nd.Children, p)
		}
	}
	if len(top.Children) == 0 {
		top.Children = nil
	}
	return top
}

// sort orders the stacks by the spelling of their names, so that siblings
// come out in name order, with the prefix sums Tree works from.
func (s *refSet) sort() *refSortedSet {
	es := s.entries
	rank := make([]int32, len(s.Names))
	order := make([]int32, len(s.Names))
	for i := range order {
		order[i] = int32(i)
	}
	slices.SortFunc(order, func(a, b int32) int { return strings.Compare(s.Names[a], s.Names[b]) })
	for r, id := range order {
		rank[id] = int32(r)
	}
	keys := make([][]int32, len(es))
	idx := make([]int, len(es))
	need := 0
	for _, e := range es {
		need += len(e.names)
	}
	arena := make([]int32, need)
	off := 0
	for i, e := range es {
		k := arena[off : off+len(e.names) : off+len(e.names)]
		off += len(e.names)
		for j, n := range e.names {
			k[j] = rank[n]
		}
		keys[i] = k
		idx[i] = i
	}
	slices.SortFunc(idx, func(a, b int) int { return slices.Compare(keys[a], keys[b]) })
	sorted := make([]refEntry, len(es))
	skeys := make([][]int32, len(es))
	for i, j := range idx {
		sorted[i] = es[j]
		skeys[i] = keys[j]
	}
	es = sorted
	// Prefix sums of both sides, and of the frames each refEntry adds to the
	// tree beyond its common prefix with the previous one: the number of
	// frames under a run of entries is then a difference of sums.
	n := len(es)
	cumV := make([]int64, n+1)
	cumB := make([]int64, n+1)
	cumNew := make([]int64, n+1)
	for i, e := range es {
		cumV[i+1] = cumV[i] + e.v
		cumB[i+1] = cumB[i] + e.b
		lcp := 0
		if i > 0 {
			a, b := skeys[i-1], skeys[i]
			for lcp < len(a) && lcp < len(b) && a[lcp] == b[lcp] {
				lcp++
			}
		}
		cumNew[i+1] = cumNew[i] + int64(len(e.names)-lcp)
	}
	return &refSortedSet{es: es, keys: skeys, cumV: cumV, cumB: cumB, cumNew: cumNew}
}
