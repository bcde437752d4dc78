// Package calltree computes the analysis views of a capture that the web
// page draws: the merged call tree pruned to a node budget, the flat
// function table with self and total, the sandwich (callers and callees of
// one function) and their differential forms. Frames are merged by their
// folded name, as in folded stacks and the SVG flame graph.
package calltree

import (
	"cmp"
	"container/heap"
	"slices"
	"strings"
	"sync"

	"github.com/scorch-dev/scorch/capture"
)

// Set is the selected stacks of one or two captures (base and compare),
// as lists of name ids, root first.
type Set struct {
	Names   []string // folded names
	Modules []string // module of the first frame seen with each name
	// Files and Lines are each name's source file and line where the
	// frames have them: the line that holds most of the name's value (a
	// caller's: the call it makes most), "" and 0 where unknown.
	Files  []string
	Lines  []int
	lineW  []int64 // the value of the line chosen so far, per name
	byName map[string]int32
	entries []entry
	Unit    string
	Diff    bool // entries carry a base side
	// Instructions: the base side holds each stack's instructions
	// (Event.Value2) instead of a base capture: CPI captures, whose
	// frames are coloured by cycles per instruction.
	Instructions bool

	// The stacks sorted for Tree, computed once: a set is shared by the
	// requests of one view, which differ in their node budget.
	sortOnce sync.Once
	sorted   *sortedSet
}

type sortedSet struct {
	es                 []entry
	keys               [][]int32 // names as ranks of their spelling
	cumV, cumB, cumNew []int64
}

type entry struct {
	names []int32
	v, b  int64 // compare (or only) side, base side
}

// NewSet starts an empty set.
func NewSet() *Set { return &Set{byName: make(map[string]int32)} }

// Add adds the capture's events selected by q, merged per stack, to the
// compare side (base false) or the base side. reverse merges by leaf.
func (s *Set) Add(c *capture.Capture, q capture.Query, reverse, base bool) {
	if s.Unit == "" {
		s.Unit = c.Meta.Unit
	}
	s.Diff = s.Diff || base
	ids := make([]int32, len(c.Frames))
	lined := false
	for i := range c.Frames {
		f := &c.Frames[i]
		ids[i] = s.intern(f.FoldedName(), f.Module)
		lined = lined || f.Line > 0
	}
	agg := c.Aggregate(q)
	need := 0
	for _, sv := range agg {
		need += len(c.Stacks[sv.Stack])
	}
	if lined {
		s.addLines(c, agg, ids)
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
		e := entry{names: arena[start:len(arena):len(arena)]}
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

// addLines weighs each frame (an address: one file:line) by the value of
// the stacks that hold it, and keeps for each name its heaviest line.
func (s *Set) addLines(c *capture.Capture, agg []capture.StackValue, ids []int32) {
	w := make([]int64, len(c.Frames))
	for _, sv := range agg {
		for _, f := range c.Stacks[sv.Stack] {
			if int(f) < len(w) {
				w[f] += max(sv.Value, 0)
			}
		}
	}
	for len(s.Files) < len(s.Names) {
		s.Files, s.Lines, s.lineW = append(s.Files, ""), append(s.Lines, 0), append(s.lineW, 0)
	}
	for i := range c.Frames {
		f := &c.Frames[i]
		if f.Line <= 0 || f.File == "" {
			continue
		}
		if id := ids[i]; w[i] > s.lineW[id] || s.Files[id] == "" {
			s.Files[id], s.Lines[id], s.lineW[id] = f.File, f.Line, w[i]
		}
	}
}

// Loc is a name's file and line, "" and 0 where unknown.
func (s *Set) Loc(id int32) (string, int) {
	if int(id) < len(s.Files) {
		return s.Files[id], s.Lines[id]
	}
	return "", 0
}

func (s *Set) intern(name, module string) int32 {
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

// Functions computes the function table, unsorted.
func (s *Set) Functions() []Function {
	fns := make([]Function, len(s.Names))
	seen := make([]int32, len(s.Names)) // stamp: the entry that last counted the name, plus one
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
		f.File, f.Line = s.Loc(int32(i))
		out = append(out, f)
	}
	return out
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
	for _, e := range s.entries {
		k := slices.Index(e.names, fn)
		if k < 0 {
			continue
		}
		up := make([]int32, k+1)
		for i := range up {
			up[i] = e.names[k-i]
		}
		callers.entries = append(callers.entries, entry{names: up, v: e.v, b: e.b})
		callees.entries = append(callees.entries, entry{names: e.names[k:], v: e.v, b: e.b})
	}
	return callers, callees
}

// Subtree keeps the stacks that start with path (name ids, root first)
// and cuts path off but for its last frame, which becomes their root.
func (s *Set) Subtree(path []int32) *Set {
	out := &Set{Names: s.Names, Modules: s.Modules, Files: s.Files, Lines: s.Lines, lineW: s.lineW, byName: s.byName, Unit: s.Unit, Diff: s.Diff}
	if len(path) == 0 {
		out.entries = s.entries
		return out
	}
	for _, e := range s.entries {
		if len(e.names) >= len(path) && slices.Equal(e.names[:len(path)], path) {
			out.entries = append(out.entries, entry{names: e.names[len(path)-1:], v: e.v, b: e.b})
		}
	}
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
	lo, hi int
	depth  int // length of the frame's path from the root, the root's children have 1
	parent *Node
	weight int64
}

type groupHeap []group

func (h groupHeap) Len() int { return len(h) }
func (h groupHeap) Less(i, j int) bool {
	if h[i].weight != h[j].weight {
		return h[i].weight > h[j].weight
	}
	return h[i].lo < h[j].lo
}
func (h groupHeap) Swap(i, j int) { h[i], h[j] = h[j], h[i] }
func (h *groupHeap) Push(x any)   { *h = append(*h, x.(group)) }
func (h *groupHeap) Pop() any {
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
func (s *Set) Tree(root string, budget int) *Node {
	if budget < 1 {
		budget = 1
	}
	s.sortOnce.Do(func() { s.sorted = s.sort() })
	ss := s.sorted
	es, skeys, cumV, cumB, cumNew := ss.es, ss.keys, ss.cumV, ss.cumB, ss.cumNew
	n := len(es)
	// frames under depth d (not counting it) in a group [lo,hi) whose
	// entries share their first d frames: the first entry brings its own,
	// the others what they add beyond their common prefix, which is >= d.
	framesIn := func(lo, hi, d int) int64 {
		return int64(len(es[lo].names)-d) + (cumNew[hi] - cumNew[lo+1])
	}
	top := &Node{Name: root, Value: cumV[n], Base: cumB[n]}
	h := &groupHeap{}
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
			heap.Push(h, group{lo: i, hi: j, depth: d + 1, parent: parent,
				weight: cumV[j] - cumV[i] + cumB[j] - cumB[i]})
			i = j
		}
	}
	pushChildren(top, 0, n, 0)
	kept := 1
	pruned := make(map[*Node]*Node)
	for h.Len() > 0 {
		g := heap.Pop(h).(group)
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
		id := es[g.lo].names[g.depth-1]
		c := &Node{Name: s.Names[id], Value: cumV[g.hi] - cumV[g.lo], Base: cumB[g.hi] - cumB[g.lo]}
		c.File, c.Line = s.Loc(id)
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
func (s *Set) sort() *sortedSet {
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
	sorted := make([]entry, len(es))
	skeys := make([][]int32, len(es))
	for i, j := range idx {
		sorted[i] = es[j]
		skeys[i] = keys[j]
	}
	es = sorted
	// Prefix sums of both sides, and of the frames each entry adds to the
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
	return &sortedSet{es: es, keys: skeys, cumV: cumV, cumB: cumB, cumNew: cumNew}
}
