package flamegraph

import (
	"slices"
	"strings"

	"github.com/scorch-dev/scorch/capture"
)

// nameInfo is one distinct frame name: what is drawn and how it is coloured.
type nameInfo struct {
	label string // display name without the folded kind suffix
	kind  capture.FrameKind
	waker bool
}

// node is one frame of the merged tree. Values are in the capture's unit;
// base and baseSelf are only used by differential graphs.
type node struct {
	name     int32
	parent   int32
	depth    int32
	value    int64
	self     int64
	base     int64
	baseSelf int64
	start    int64 // offset from the left edge, in units of the width side
	children []int32
}

// tree merges stacks by frame name. Nodes are kept in one slice and found
// through a map keyed by (parent, name) so that millions of frames merge
// without per-node maps.
type tree struct {
	names  []nameInfo
	byName map[string]int32
	nodes  []node
	index  map[uint64]int32
}

func newTree() *tree {
	t := &tree{byName: make(map[string]int32), index: make(map[uint64]int32)}
	t.names = append(t.names, nameInfo{label: "all", kind: capture.KindSynthetic})
	t.nodes = append(t.nodes, node{parent: -1})
	return t
}

// frameNames interns the folded name of every frame of c and returns the
// name id of each frame index.
func (t *tree) frameNames(c *capture.Capture) []int32 {
	ids := make([]int32, len(c.Frames))
	for i := range c.Frames {
		f := &c.Frames[i]
		key := f.FoldedName()
		id, ok := t.byName[key]
		if !ok {
			label := capture.SanitizeName(f.Name)
			if label == "" {
				label = capture.FrameUnknown
			}
			id = int32(len(t.names))
			t.names = append(t.names, nameInfo{label: label, kind: f.Kind, waker: f.Waker})
			t.byName[key] = id
		}
		ids[i] = id
	}
	return ids
}

// add merges one stack (frame indexes, root first) with its value into the
// tree; base selects the side of a differential graph.
func (t *tree) add(frames []uint32, names []int32, v int64, reverse, base bool) {
	cur := int32(0)
	n := len(frames)
	for i := 0; i < n; i++ {
		f := frames[i]
		if reverse {
			f = frames[n-1-i]
		}
		if int(f) >= len(names) {
			continue
		}
		nid := names[f]
		key := uint64(cur)<<32 | uint64(uint32(nid))
		child, ok := t.index[key]
		if !ok {
			child = int32(len(t.nodes))
			t.nodes = append(t.nodes, node{name: nid, parent: cur, depth: t.nodes[cur].depth + 1})
			t.nodes[cur].children = append(t.nodes[cur].children, child)
			t.index[key] = child
		}
		if base {
			t.nodes[child].base += v
		} else {
			t.nodes[child].value += v
		}
		cur = child
	}
	if base {
		t.nodes[cur].baseSelf += v
		if cur != 0 {
			t.nodes[0].base += v
		}
	} else {
		t.nodes[cur].self += v
		if cur != 0 {
			t.nodes[0].value += v
		}
	}
}

// addCapture merges the capture's selected events.
func (t *tree) addCapture(c *capture.Capture, q capture.Query, reverse, base bool) {
	names := t.frameNames(c)
	for _, sv := range c.Aggregate(q) {
		if sv.Value <= 0 || int(sv.Stack) >= len(c.Stacks) {
			continue
		}
		t.add(c.Stacks[sv.Stack], names, sv.Value, reverse, base)
	}
}

// width is the value a node's width is drawn from.
func (t *tree) width(i int32, useBase bool) int64 {
	if useBase {
		return t.nodes[i].base
	}
	return t.nodes[i].value
}

// layout sorts siblings and assigns every node its start offset.
func (t *tree) layout(bySize, useBase bool) {
	var visit func(i int32, start int64)
	visit = func(i int32, start int64) {
		n := &t.nodes[i]
		n.start = start
		ch := n.children
		if bySize {
			slices.SortFunc(ch, func(a, b int32) int {
				wa, wb := t.width(a, useBase), t.width(b, useBase)
				if wa != wb {
					if wa > wb {
						return -1
					}
					return 1
				}
				return strings.Compare(t.names[t.nodes[a].name].label, t.names[t.nodes[b].name].label)
			})
		} else {
			slices.SortFunc(ch, func(a, b int32) int {
				na, nb := t.names[t.nodes[a].name], t.names[t.nodes[b].name]
				if c := strings.Compare(na.label, nb.label); c != 0 {
					return c
				}
				return int(na.kind) - int(nb.kind)
			})
		}
		for _, c := range ch {
			visit(c, start)
			start += t.width(c, useBase)
		}
	}
	visit(0, 0)
}
