package capture

import (
	"fmt"
	"path/filepath"
	"strings"
)

// TransformKind names a call-stack transform.
type TransformKind string

// The transforms of the public interface (query parameter t=KIND:NAME).
const (
	TransformFocus TransformKind = "focus" // keep stacks through F, each starting at its outermost F
	TransformMerge TransformKind = "merge" // remove F's frames: their callees move to F's caller
	TransformDrop  TransformKind = "drop"  // remove the samples whose stack holds F
	TransformRec   TransformKind = "rec"   // collapse direct recursion of F into one frame
	TransformLib   TransformKind = "lib"   // collapse consecutive frames of module M into one frame M
)

// TransformKinds lists the transforms in the order messages name them.
var TransformKinds = []TransformKind{TransformFocus, TransformMerge, TransformDrop, TransformRec, TransformLib}

// Transform is one step of a view's transform stack.
type Transform struct {
	Kind TransformKind
	Name string // a frame's label or folded name; a module's base name or path for lib
}

func (t Transform) String() string { return string(t.Kind) + ":" + t.Name }

// MaxTransforms bounds a transform stack: each one is a pass over every stack.
const MaxTransforms = 32

// ParseTransforms reads the values of the repeatable parameter t, each
// KIND:NAME, in the order they apply.
func ParseTransforms(vals []string) ([]Transform, error) {
	if len(vals) > MaxTransforms {
		return nil, fmt.Errorf("t is given %d times: at most %d transforms are allowed", len(vals), MaxTransforms)
	}
	var out []Transform
	for _, v := range vals {
		kind, name, ok := strings.Cut(v, ":")
		if !ok || name == "" {
			return nil, fmt.Errorf("t %q is not valid: give KIND:NAME, KIND one of %s", v, transformKindList())
		}
		k := TransformKind(kind)
		known := false
		for _, tk := range TransformKinds {
			known = known || tk == k
		}
		if !known {
			return nil, fmt.Errorf("t %q: unknown transform %q: allowed kinds are %s", v, kind, transformKindList())
		}
		out = append(out, Transform{Kind: k, Name: name})
	}
	return out, nil
}

func transformKindList() string {
	names := make([]string, len(TransformKinds))
	for i, k := range TransformKinds {
		names[i] = string(k)
	}
	return strings.Join(names, ", ")
}

// FrameMatches reports whether the frame is the one a transform or a
// sandwich names: by its label (as displayed) or its folded name.
func (f *Frame) FrameMatches(name string) bool {
	return f.Label() == name || f.FoldedName() == name
}

// moduleMatches reports whether the frame's code is in module m, named by
// its base name or its path.
func (f *Frame) moduleMatches(m string) bool {
	return f.Module != "" && (f.Module == m || filepath.Base(f.Module) == m)
}

// TransformPlan is a transform stack compiled against a capture's frames:
// which frames each step matches and the frames lib steps add. Applying it
// stack by stack (Apply) gives what Transform gives for the whole capture,
// so that a view can transform the stacks it has already aggregated
// instead of the capture.
type TransformPlan struct {
	// Frames are the capture's frames, followed by one frame per lib step
	// that matched (shared with the capture when there is none).
	Frames []Frame
	steps  []planStep
}

type planStep struct {
	kind     TransformKind
	match    []bool // by frame index
	libFrame uint32 // lib: the frame that replaces a run of the module's frames
}

// Plan compiles the transforms against c's frames. Steps that match no
// frame change nothing and are left out, but for focus, which then empties
// every stack.
func (c *Capture) Plan(ts []Transform) *TransformPlan {
	p := &TransformPlan{Frames: c.Frames}
	copied := false
	for _, t := range ts {
		match := make([]bool, len(p.Frames))
		found := false
		for i := range p.Frames {
			f := &p.Frames[i]
			if t.Kind == TransformLib {
				match[i] = f.moduleMatches(t.Name)
			} else {
				match[i] = f.FrameMatches(t.Name)
			}
			found = found || match[i]
		}
		if !found && t.Kind != TransformFocus {
			continue
		}
		st := planStep{kind: t.Kind, match: match}
		if t.Kind == TransformLib {
			if !copied {
				p.Frames = append([]Frame(nil), p.Frames...)
				copied = true
			}
			st.libFrame = uint32(len(p.Frames))
			p.Frames = append(p.Frames, Frame{Name: t.Name, Kind: KindUser, Module: t.Name})
		}
		p.steps = append(p.steps, st)
	}
	return p
}

// Empty reports whether the plan changes nothing.
func (p *TransformPlan) Empty() bool { return len(p.steps) == 0 }

// Apply returns the stack seen through the plan (frames root first) and
// whether it differs from st: st itself when no step changes it, nil when
// the stack is dropped, otherwise a stack in one of bufs (reused by the
// next call: copy it to keep it). Frame indexes of st must be below
// len(p.Frames).
func (p *TransformPlan) Apply(st []uint32, bufs *[2][]uint32) ([]uint32, bool) {
	cur, changed, k := st, false, 0
	for i := range p.steps {
		ps := &p.steps[i]
		if len(cur) == 0 {
			// As Transform always did: an empty stack is kept by every
			// step but lib, which drops it.
			if cur == nil || ps.kind == TransformLib {
				return nil, true
			}
			continue
		}
		out, wrote := ps.apply(cur, bufs[k][:0])
		if out == nil {
			return nil, true
		}
		if wrote {
			// The next step reads this buffer and writes the other one.
			bufs[k] = out
			k ^= 1
			changed = true
		}
		cur = out
	}
	return cur, changed
}

// apply is one step over a non-empty stack: st itself when unchanged, nil
// when dropped or emptied, else the new stack appended to buf (wrote).
// Most stacks do not hold the frame: they are only read.
func (ps *planStep) apply(st []uint32, buf []uint32) (out []uint32, wrote bool) {
	match := ps.match
	k := 0 // the first frame the step changes
	if ps.kind == TransformRec {
		for k = 1; k < len(st) && !(match[st[k]] && st[k-1] == st[k]); k++ {
		}
	} else {
		for k < len(st) && !match[st[k]] {
			k++
		}
	}
	if k == len(st) {
		if ps.kind == TransformFocus {
			return nil, false
		}
		return st, false
	}
	switch ps.kind {
	case TransformFocus:
		if k == 0 {
			return st, false
		}
		return append(buf, st[k:]...), true
	case TransformDrop:
		return nil, false
	case TransformMerge:
		buf = append(buf, st[:k]...)
		for _, f := range st[k+1:] {
			if !match[f] {
				buf = append(buf, f)
			}
		}
		if len(buf) == 0 {
			return nil, false
		}
	case TransformRec:
		buf = append(buf, st[:k]...)
		for i := k + 1; i < len(st); i++ {
			if f := st[i]; !(match[f] && st[i-1] == f) {
				buf = append(buf, f)
			}
		}
	case TransformLib:
		buf = append(buf, st[:k]...)
		for i := k; i < len(st); i++ {
			f := st[i]
			if match[f] {
				if i > 0 && match[st[i-1]] {
					continue
				}
				f = ps.libFrame
			}
			buf = append(buf, f)
		}
	}
	return buf, true
}

// Transform returns the capture seen through the transforms, applied in
// order. Stacks keep their indexes (a dropped stack becomes empty and its
// events are left out), so events are shared with c unless some are
// dropped. c is not modified.
func (c *Capture) Transform(ts []Transform) *Capture {
	if len(ts) == 0 {
		return c
	}
	p := c.Plan(ts)
	out := &Capture{Meta: c.Meta, Frames: p.Frames, Stacks: c.Stacks, Events: c.Events, Mappings: c.Mappings}
	if p.Empty() {
		return out
	}
	stacks := make([][]uint32, len(c.Stacks))
	var bufs [2][]uint32
	// Changed stacks are copied into large blocks, not one allocation
	// each: a wide merge changes most of a large capture's stacks.
	var arena []uint32
	dropped := false
	for si, st := range c.Stacks {
		if st == nil {
			continue
		}
		switch ns, changed := p.Apply(st, &bufs); {
		case ns == nil:
			dropped = true
		case !changed:
			stacks[si] = st // unchanged: share it
		case len(ns) == 0:
			// As a copy of it always was.
		default:
			if cap(arena)-len(arena) < len(ns) {
				arena = make([]uint32, 0, max(1<<16, len(ns)))
			}
			start := len(arena)
			arena = append(arena, ns...)
			stacks[si] = arena[start:len(arena):len(arena)]
		}
	}
	out.Stacks = stacks
	if dropped {
		events := make([]Event, 0, len(out.Events))
		for _, e := range out.Events {
			if int(e.Stack) < len(out.Stacks) && out.Stacks[e.Stack] != nil {
				events = append(events, e)
			}
		}
		if len(events) == len(out.Events) {
			events = out.Events
		}
		out.Events = events
	}
	return out
}

// KeepsEvents reports whether c seen through ts (Transform) keeps every
// event of c: then every answer that reads only the events and not the
// frames of their stacks (the heatmap, the thread tracks, without a comm
// filter) is the untransformed capture's. Focus and drop steps that match
// a frame leave events out; merge, rec and lib steps only when they empty
// a stack (a stack all of whose frames are merged, or an empty one that a
// lib step drops). It costs a pass over the stacks that stops at each
// stack's first frame no merge matches, or Apply's pass when lib steps are
// among merges.
func (c *Capture) KeepsEvents(ts []Transform) bool {
	if len(ts) == 0 {
		return true
	}
	p := c.Plan(ts)
	if p.Empty() {
		return true
	}
	var merged []bool // frames some merge step removes
	lib := false
	for i := range p.steps {
		switch ps := &p.steps[i]; ps.kind {
		case TransformFocus, TransformDrop:
			return false
		case TransformLib:
			lib = true
		case TransformMerge:
			if merged == nil {
				merged = make([]bool, len(p.Frames))
			}
			for f, m := range ps.match {
				merged[f] = merged[f] || m
			}
		}
	}
	if lib {
		// A lib frame may be merged by a later step: ask the plan.
		var bufs [2][]uint32
		for _, st := range c.Stacks {
			if st == nil {
				continue
			}
			if ns, _ := p.Apply(st, &bufs); ns == nil {
				return false
			}
		}
		return true
	}
	if merged == nil {
		return true // rec steps only: they never empty a stack
	}
	// Merge and rec steps: a stack is emptied when every one of its frames
	// is merged (rec keeps one of each run).
	for _, st := range c.Stacks {
		if len(st) == 0 {
			continue
		}
		all := true
		for _, f := range st {
			if int(f) >= len(merged) || !merged[f] {
				all = false
				break
			}
		}
		if all {
			return false
		}
	}
	return true
}
