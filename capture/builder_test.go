package capture

import (
	"fmt"
	"math/rand/v2"
	"slices"
	"testing"
)

// TestBuilderStacksInterned interns random stacks, each several times, and
// checks that equal stacks get one index and different stacks different
// ones, with the frames kept as given; also when every stack's hash
// collides, the case the fallback map is for.
func TestBuilderStacksInterned(t *testing.T) {
	for _, tc := range []struct {
		name string
		hash func([]uint32) uint64
	}{
		{"maphash", stackHash},
		{"every hash colliding", func([]uint32) uint64 { return 7 }},
		{"hash of the length", func(f []uint32) uint64 { return uint64(len(f)) }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			defer func(h func([]uint32) uint64) { stackHash = h }(stackHash)
			stackHash = tc.hash
			rng := rand.New(rand.NewPCG(1, 2))
			var distinct [][]uint32
			seen := map[string]bool{}
			for len(distinct) < 3000 {
				s := make([]uint32, rng.IntN(40)) // the empty stack too
				for i := range s {
					s[i] = uint32(rng.IntN(6))
				}
				if k := fmt.Sprint(s); !seen[k] {
					seen[k] = true
					distinct = append(distinct, s)
				}
			}
			b := NewBuilder(Meta{Type: CPU})
			ids := make([]uint32, len(distinct))
			for round := range 3 {
				for _, i := range rng.Perm(len(distinct)) {
					in := slices.Clone(distinct[i])
					id := b.Stack(in)
					clear(in) // the builder must have copied it
					if round == 0 {
						ids[i] = id
					} else if id != ids[i] {
						t.Fatalf("round %d: stack %v interned as %d, first as %d", round, distinct[i], id, ids[i])
					}
				}
			}
			c := b.Capture()
			if len(c.Stacks) != len(distinct) {
				t.Fatalf("%d stacks kept for %d distinct ones", len(c.Stacks), len(distinct))
			}
			for i, s := range distinct {
				if got := c.Stacks[ids[i]]; !slices.Equal(got, s) {
					t.Fatalf("stack %d kept as %v, want %v", ids[i], got, s)
				}
			}
			// A stack grown by its user must not overwrite its neighbour
			// in the shared slab.
			first := c.Stacks[0]
			_ = append(first, 99)
			if len(c.Stacks) > 1 && !slices.Equal(c.Stacks[1], distinct[slices.Index(ids, 1)]) {
				t.Fatalf("appending to stack 0 changed stack 1: %v", c.Stacks[1])
			}
		})
	}
}

// TestBuilderFramesInterned: equal frames get one index, frames differing
// in any field different ones, in the order first interned; also when
// every frame's hash collides.
func TestBuilderFramesInterned(t *testing.T) {
	for _, tc := range []struct {
		name string
		hash func(Frame) uint64
	}{
		{"maphash", frameHash},
		{"every hash colliding", func(Frame) uint64 { return 7 }},
		{"hash of the name", func(f Frame) uint64 { return uint64(len(f.Name)) }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			defer func(h func(Frame) uint64) { frameHash = h }(frameHash)
			frameHash = tc.hash
			base := Frame{Name: "main", Kind: KindUser, Module: "/bin/app", BuildID: "ab", Offset: 0x10, File: "a.c", Line: 3, SystemName: "_Z4mainv"}
			vary := []func(*Frame){
				func(f *Frame) {},
				func(f *Frame) { f.Name = "mainx" },
				func(f *Frame) { f.Kind = KindKernel },
				func(f *Frame) { f.Waker = true },
				func(f *Frame) { f.Module = "/bin/other" },
				func(f *Frame) { f.BuildID = "" },
				func(f *Frame) { f.Offset++ },
				func(f *Frame) { f.File = "b.c" },
				func(f *Frame) { f.Line++ },
				func(f *Frame) { f.SystemName = "" },
			}
			var distinct []Frame
			for _, v := range vary {
				f := base
				v(&f)
				distinct = append(distinct, f)
			}
			b := NewBuilder(Meta{Type: CPU})
			for round := range 3 {
				for i, f := range distinct {
					if id := b.Frame(f); id != uint32(i) {
						t.Fatalf("round %d: frame %+v interned as %d, want %d", round, f, id, i)
					}
				}
			}
			if c := b.Capture(); !slices.Equal(c.Frames, distinct) {
				t.Fatalf("frames %+v, want %+v", c.Frames, distinct)
			}
		})
	}
}
