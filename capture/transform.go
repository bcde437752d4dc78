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

// Transform returns the capture seen through the transforms, applied in
// order. Stacks keep their indexes (a dropped stack becomes empty and its
// events are left out), so events are shared with c unless some are
// dropped. c is not modified.
func (c *Capture) Transform(ts []Transform) *Capture {
	if len(ts) == 0 {
		return c
	}
	out := &Capture{Meta: c.Meta, Frames: c.Frames, Stacks: c.Stacks, Events: c.Events}
	framesCopied := false
	var buf []uint32
	dropped := false
	for _, t := range ts {
		match := make([]bool, len(out.Frames))
		found := false
		for i := range out.Frames {
			f := &out.Frames[i]
			if t.Kind == TransformLib {
				match[i] = f.moduleMatches(t.Name)
			} else {
				match[i] = f.FrameMatches(t.Name)
			}
			found = found || match[i]
		}
		if !found && t.Kind != TransformFocus {
			continue // nothing to change (focus on a missing frame empties the view)
		}
		var libFrame uint32
		if t.Kind == TransformLib {
			if !framesCopied {
				out.Frames = append([]Frame(nil), out.Frames...)
				framesCopied = true
			}
			libFrame = uint32(len(out.Frames))
			out.Frames = append(out.Frames, Frame{Name: t.Name, Kind: KindUser, Module: t.Name})
		}
		stacks := make([][]uint32, len(out.Stacks))
		for si, st := range out.Stacks {
			if st == nil {
				continue
			}
			buf = buf[:0]
			switch t.Kind {
			case TransformFocus:
				for i, f := range st {
					if match[f] {
						buf = append(buf, st[i:]...)
						break
					}
				}
			case TransformMerge:
				for _, f := range st {
					if !match[f] {
						buf = append(buf, f)
					}
				}
			case TransformDrop:
				keep := true
				for _, f := range st {
					if match[f] {
						keep = false
						break
					}
				}
				if keep {
					stacks[si] = st
				} else {
					dropped = true
				}
				continue
			case TransformRec:
				for i, f := range st {
					if i > 0 && match[f] && st[i-1] == f {
						continue
					}
					buf = append(buf, f)
				}
			case TransformLib:
				for i, f := range st {
					if match[f] {
						if i > 0 && match[st[i-1]] {
							continue
						}
						f = libFrame
					}
					buf = append(buf, f)
				}
			}
			if len(buf) == len(st) && t.Kind != TransformLib {
				stacks[si] = st // unchanged: share it
			} else if len(buf) > 0 {
				stacks[si] = append([]uint32(nil), buf...)
			}
			if stacks[si] == nil {
				dropped = true
			}
		}
		out.Stacks = stacks
	}
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
