package flamegraph

import (
	"cmp"
	"slices"
	"strings"

	"github.com/scorch-dev/scorch/capture"
)

// nameInfo is one distinct frame name: what is drawn and how it is coloured.
type nameInfo struct {
	folded string // the folded spelling, which frames are merged by
	label  string // display name without the folded kind suffix
	kind   capture.FrameKind
	waker  bool
}

// node is one drawn frame. Values are in the capture's unit; base and
// baseSelf are only used by differential graphs.
type node struct {
	name     int32
	depth    int32
	cut      int32 // a [truncated] frame: how many frames below it are not drawn
	value    int64
	self     int64
	base     int64
	baseSelf int64
	start    int64 // offset from the left edge, in units of the width side
}

// entry is one stack as a list of name ids, root first, with its value on
// one side of the graph.
type entry struct {
	names []int32 // set by build: a window of tree.arena
	off   int     // position and length in tree.arena
	n     int
	full  int // the stack's depth, of which at most MaxDepth frames are kept
	value int64
	base  bool
}

// tree merges stacks by frame name the way FlameGraph does: stacks are
// sorted, so every frame's stacks are one contiguous run, and a frame's
// value is a difference of prefix sums. Only the frames that are drawn
// are ever materialised, which keeps huge profiles cheap.
type tree struct {
	names   []nameInfo
	byName  map[string]int32
	entries []entry
	arena   []int32

	nodes []node // drawn frames in pre-order; nodes[0] is the root "all"

	cumV, cumB               []int64 // prefix sums of the compare and base values over entries
	prunedFrames, prunedVal  int64
	onlyBase                 int64
	truncName                int32 // the name id of [truncated] frames
	truncStacks, truncFrames int64 // [truncated] frames drawn, frames they stand for
	maxDepth                 int32
	total, baseTot, cmpTotal int64
}

// MaxDepth is the deepest frame drawn: a stack deeper than that (a hostile
// import of a million frames, runaway recursion) ends in a [truncated]
// frame whose tooltip says how many frames were cut. It bounds the frames
// drawn and the work per render (stacks are kept only to this depth).
const MaxDepth = 1024

func newTree() *tree {
	return &tree{byName: make(map[string]int32)}
}

// addCapture adds the capture's selected events, merged per stack, on one
// side of the graph (the base side when base). With instructions (cpi
// captures) each stack's instructions (Event.Value2) go on the base side
// too, from the same aggregation.
func (t *tree) addCapture(c *capture.Capture, q capture.Query, reverse, base, instructions bool) {
	// The capture keeps a frame per address, so many frames share a name:
	// the folded name (built, and looked up) once per distinct name, kind
	// and waker side, which are all it depends on.
	type spelling struct {
		name  string
		kind  capture.FrameKind
		waker bool
	}
	seen := make(map[spelling]int32, len(c.Frames))
	if len(t.byName) == 0 {
		t.byName = make(map[string]int32, len(c.Frames))
	}
	ids := make([]int32, len(c.Frames))
	for i := range c.Frames {
		f := &c.Frames[i]
		sp := spelling{f.Name, f.Kind, f.Waker}
		id, ok := seen[sp]
		if !ok {
			key := f.FoldedName()
			if id, ok = t.byName[key]; !ok {
				id = int32(len(t.names))
				t.names = append(t.names, nameInfo{folded: key, label: f.Label(), kind: f.Kind, waker: f.Waker})
				t.byName[key] = id
			}
			seen[sp] = id
		}
		ids[i] = id
	}
	agg := c.Aggregate(q)
	need := 0
	for _, sv := range agg {
		need += len(c.Stacks[sv.Stack])
	}
	t.arena = slices.Grow(t.arena, need)
	t.entries = slices.Grow(t.entries, len(agg))
	for _, sv := range agg {
		st := c.Stacks[sv.Stack]
		withInstr := instructions && sv.Value2 > 0
		if (sv.Value <= 0 && !withInstr) || len(st) == 0 {
			continue
		}
		n := len(t.arena)
		full := 0
		for i := range st {
			f := st[i]
			if reverse {
				f = st[len(st)-1-i]
			}
			if int(f) < len(ids) {
				if full < MaxDepth {
					t.arena = append(t.arena, ids[f])
				}
				full++
			}
		}
		// The arena may move while it grows: keep offsets until build.
		// Both sides of a cpi stack share its names.
		if sv.Value > 0 {
			t.entries = append(t.entries, entry{off: n, n: len(t.arena) - n, full: full, value: sv.Value, base: base})
		}
		if withInstr {
			t.entries = append(t.entries, entry{off: n, n: len(t.arena) - n, full: full, value: sv.Value2, base: true})
		}
	}
}

// build sorts the stacks and materialises the frames at least minUnits
// wide (minUnits gets the total of the width side). Frames are ordered
// alphabetically, or by width when bySize.
func (t *tree) build(minUnits func(total int64) float64, bySize, useBase bool) {
	// Renumber the names in label order so that sorting stacks by name id
	// sorts siblings alphabetically.
	order := make([]int32, len(t.names))
	for i := range order {
		order[i] = int32(i)
	}
	slices.SortFunc(order, func(a, b int32) int {
		na, nb := &t.names[a], &t.names[b]
		// Not cmp.Or, which would compare the folded names every time.
		if c := strings.Compare(na.label, nb.label); c != 0 {
			return c
		}
		if c := cmp.Compare(na.kind, nb.kind); c != 0 {
			return c
		}
		return strings.Compare(na.folded, nb.folded)
	})
	rank := make([]int32, len(order))
	sorted := make([]nameInfo, len(order))
	for r, id := range order {
		rank[id] = int32(r)
		sorted[r] = t.names[id]
	}
	t.names = sorted
	for i := range t.arena {
		t.arena[i] = rank[t.arena[i]]
	}
	for i := range t.entries {
		e := &t.entries[i]
		e.names = t.arena[e.off : e.off+e.n : e.off+e.n]
	}
	slices.SortFunc(t.entries, func(a, b entry) int { return slices.Compare(a.names, b.names) })

	t.cumV = make([]int64, len(t.entries)+1)
	t.cumB = make([]int64, len(t.entries)+1)
	for i, e := range t.entries {
		t.cumV[i+1], t.cumB[i+1] = t.cumV[i], t.cumB[i]
		if e.base {
			t.cumB[i+1] = capture.SatAdd(t.cumB[i+1], e.value)
		} else {
			t.cumV[i+1] = capture.SatAdd(t.cumV[i+1], e.value)
		}
	}
	n := len(t.entries)
	t.cmpTotal, t.baseTot = t.cumV[n], t.cumB[n]
	t.total = t.cmpTotal
	if useBase {
		t.total = t.baseTot
	}
	t.names = append(t.names, nameInfo{folded: capture.FrameTruncated, label: capture.FrameTruncated, kind: capture.KindSynthetic})
	t.truncName = int32(len(t.names) - 1)
	t.names = append(t.names, nameInfo{label: "all", kind: capture.KindSynthetic})
	root := node{name: int32(len(t.names) - 1), value: t.cmpTotal, base: t.baseTot}
	// Room for the frames of a typical whole-host graph at once (tens of
	// thousands; never more than the stacks' frames), instead of growing
	// by copies.
	t.nodes = slices.Grow(t.nodes[:0], min(len(t.arena), 1<<15)+1)
	t.nodes = append(t.nodes, root)
	t.expand(0, n, minUnits(t.total), bySize, useBase)
}

// group is the stacks entries[lo:hi] that share a frame one level below
// their parent: one frame to draw, at start, when it is wide enough.
type group struct {
	lo, hi int
	width  int64
	name   int32
	depth  int32
	start  int64
	cut    int32 // > 0: a [truncated] frame standing for this many frames
}

// expand adds the frames below the root, whose stacks are entries[lo:hi],
// in pre-order. It walks with a stack of pending frames instead of
// recursing, so that a stack millions of frames deep (a hostile import)
// cannot overflow the goroutine's stack.
func (t *tree) expand(lo, hi int, minUnits float64, bySize, useBase bool) {
	work := t.children(nil, 0, lo, hi, bySize, useBase)
	for len(work) > 0 {
		g := work[len(work)-1]
		work = work[:len(work)-1]
		switch {
		case g.width == 0:
			t.onlyBase++ // only on the other side of a differential graph
		case float64(g.width) < minUnits:
			t.prunedFrames++
			t.prunedVal += g.width
		default:
			c := node{name: g.name, depth: g.depth, start: g.start, cut: g.cut,
				value: t.cumV[g.hi] - t.cumV[g.lo], base: t.cumB[g.hi] - t.cumB[g.lo]}
			t.maxDepth = max(t.maxDepth, c.depth)
			if g.cut > 0 {
				// Everything below is cut: it is this frame's own value.
				c.self, c.baseSelf = c.value, c.base
				t.truncStacks++
				t.truncFrames += int64(g.cut)
				t.nodes = append(t.nodes, c)
				continue
			}
			t.nodes = append(t.nodes, c)
			work = t.children(work, int32(len(t.nodes)-1), g.lo, g.hi, bySize, useBase)
		}
	}
}

// children adds the self value of node ni, whose stacks are entries[lo:hi],
// and pushes its children onto work, the first child last so that it is
// drawn first.
func (t *tree) children(work []group, ni int32, lo, hi int, bySize, useBase bool) []group {
	d := t.nodes[ni].depth
	// Stacks that end here come first: they are the node's self value.
	i := lo
	for i < hi && int32(len(t.entries[i].names)) == d {
		if t.entries[i].base {
			t.nodes[ni].baseSelf += t.entries[i].value
		} else {
			t.nodes[ni].self += t.entries[i].value
		}
		i++
	}
	first := len(work)
	if d == MaxDepth-1 && i < hi {
		// The last level drawn: stacks going deeper end in one
		// [truncated] frame.
		deepest := 0
		for k := i; k < hi; k++ {
			deepest = max(deepest, t.entries[k].full)
		}
		if deepest > MaxDepth {
			w := t.cumV[hi] - t.cumV[i]
			if useBase {
				w = t.cumB[hi] - t.cumB[i]
			}
			return append(work, group{lo: i, hi: hi, width: w, name: t.truncName, depth: d + 1,
				start: t.nodes[ni].start, cut: int32(min(deepest-int(d), 1<<31-1))})
		}
	}
	for i < hi {
		name := t.entries[i].names[d]
		j := i + 1
		for j < hi && t.entries[j].names[d] == name {
			j++
		}
		w := t.cumV[j] - t.cumV[i]
		if useBase {
			w = t.cumB[j] - t.cumB[i]
		}
		work = append(work, group{lo: i, hi: j, width: w, name: name, depth: d + 1})
		i = j
	}
	kids := work[first:]
	if bySize {
		slices.SortStableFunc(kids, func(a, b group) int { return cmp.Compare(b.width, a.width) })
	}
	x := t.nodes[ni].start
	for k := range kids {
		kids[k].start = x
		x += kids[k].width
	}
	slices.Reverse(kids)
	return work
}

// width is the value a node's width is drawn from.
func (t *tree) width(i int32, useBase bool) int64 {
	if useBase {
		return t.nodes[i].base
	}
	return t.nodes[i].value
}
