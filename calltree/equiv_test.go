package calltree

import (
	"bytes"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/scorch-dev/scorch/capture"
)

// randomCapture makes a small cpu capture whose frames share names the
// ways real ones do: one function at several addresses (frames), the same
// name in two modules and as a kernel frame, recursion, stacks that differ
// only by address, and a few empty or zero-valued events.
func randomCapture(rng *rand.Rand, lines bool) *capture.Capture {
	b := capture.NewBuilder(capture.Meta{Type: capture.CPU, Start: time.Unix(1700000000, 0), Duration: 10 * time.Second, Timestamps: true})
	names := []string{"main", "a", "b", "c", "d", "lib_x", "lib_y", "[unknown]", "a;b", "x<y>&z", "write", "f_[k]"}
	modules := []string{"/bin/app", "/usr/lib/libx.so", "/usr/lib/liby.so", "[kernel.kallsyms]", ""}
	procs := []uint32{b.Frame(capture.Frame{Name: "app", Kind: capture.KindProcess}), b.Frame(capture.Frame{Name: "db", Kind: capture.KindProcess})}
	var frames []uint32
	for i := 0; i < 8+rng.IntN(20); i++ {
		f := capture.Frame{Name: names[rng.IntN(len(names))], Module: modules[rng.IntN(len(modules))], Offset: uint64(rng.IntN(3))}
		if rng.IntN(6) == 0 {
			f.Kind = capture.KindKernel
		}
		if lines && rng.IntN(3) > 0 {
			f.File, f.Line = "src.c", 1+rng.IntN(4)
		}
		frames = append(frames, b.Frame(f))
	}
	var stacks []uint32
	for i := 0; i < 1+rng.IntN(40); i++ {
		st := []uint32{procs[rng.IntN(len(procs))]}
		if rng.IntN(30) == 0 {
			st = nil // no frames at all
		}
		for j := 0; j < rng.IntN(10); j++ {
			f := frames[rng.IntN(len(frames))]
			if len(st) > 1 && rng.IntN(4) == 0 {
				f = st[len(st)-1] // direct recursion
			}
			st = append(st, f)
		}
		stacks = append(stacks, b.Stack(st))
	}
	for i := 0; i < 1+rng.IntN(300); i++ {
		v := int64(1 + rng.IntN(5))
		if rng.IntN(100) == 0 {
			v = 0
		}
		e := capture.Event{Time: int64(rng.IntN(10)) * int64(time.Second), Value: v, Value2: int64(rng.IntN(9)),
			Stack: stacks[rng.IntN(len(stacks))], PID: uint32(1 + rng.IntN(3)), TID: uint32(1 + rng.IntN(5)), CPU: uint16(rng.IntN(2))}
		if e.TID == 5 && e.CPU == 1 {
			e.Flags |= capture.FlagIdle // some samples of the idle task
		}
		b.Add(e)
	}
	return b.Capture()
}

func randomTransforms(rng *rand.Rand) []capture.Transform {
	targets := []string{"main", "a", "b", "c", "lib_x", "[unknown]", "f_[k]", "f", "a;b", "nosuch", "write_[k]"}
	libs := []string{"libx.so", "/usr/lib/liby.so", "app", "[kernel.kallsyms]"}
	var ts []capture.Transform
	for i := 0; i < rng.IntN(4); i++ {
		k := capture.TransformKinds[rng.IntN(len(capture.TransformKinds))]
		name := targets[rng.IntN(len(targets))]
		if k == capture.TransformLib {
			name = libs[rng.IntN(len(libs))]
		}
		ts = append(ts, capture.Transform{Kind: k, Name: name})
	}
	return ts
}

func randomQuery(rng *rand.Rand) capture.Query {
	var q capture.Query
	q.IncludeIdle = rng.IntN(3) == 0
	switch rng.IntN(4) {
	case 1:
		q.From, q.To = 2, 7
	case 2:
		q.PIDs = []uint32{2}
	case 3:
		q.Comm = "db"
	}
	return q
}

// view is what a user sees of a set: totals, the function table, trees at
// several budgets, the sandwich of every function and the zoomed trees.
type viewer interface {
	Totals() (int64, int64)
	Functions() []Function
	Tree(root string, budget int) *Node
	Lookup(name string) (int32, bool)
}

func render(t *testing.T, s viewer, sandwich func(string, int) (*Node, *Node), subtree func([]string, int) *Node) string {
	t.Helper()
	var b bytes.Buffer
	c, base := s.Totals()
	fmt.Fprintf(&b, "totals %d %d\n", c, base)
	fns := s.Functions()
	slices.SortFunc(fns, func(a, b Function) int { return strings.Compare(a.Name, b.Name) })
	for _, f := range fns {
		fmt.Fprintf(&b, "fn %+v\n", f)
	}
	for _, budget := range []int{1, 2, 3, 7, 1000} {
		tr := s.Tree("all", budget)
		if err := WriteTree(&b, tr, true); err != nil {
			t.Fatal(err)
		}
		b.WriteString("\n")
	}
	for _, f := range fns {
		for _, budget := range []int{2, 1000} {
			cr, ce := sandwich(f.Name, budget)
			fmt.Fprintf(&b, "sandwich %s %d: ", f.Name, budget)
			WriteTree(&b, cr, true)
			WriteTree(&b, ce, true)
			b.WriteString("\n")
		}
	}
	// Zoom into every path of the full tree.
	var walk func(n *Node, path []string)
	walk = func(n *Node, path []string) {
		if n.Pruned > 0 {
			return
		}
		if len(path) > 0 {
			for _, budget := range []int{2, 1000} {
				fmt.Fprintf(&b, "zoom %q %d: ", path, budget)
				WriteTree(&b, subtree(path, budget), true)
				b.WriteString("\n")
			}
		}
		for _, ch := range n.Children {
			walk(ch, append(slices.Clip(path), ch.Name))
		}
	}
	walk(s.Tree("all", 1000), nil)
	return b.String()
}

func renderSet(t *testing.T, s *Set) string {
	return render(t, s, func(name string, budget int) (*Node, *Node) {
		id, ok := s.Lookup(name)
		if !ok {
			t.Fatalf("function %q of the table is not found", name)
		}
		cr, ce := s.Sandwich(id)
		return cr.Tree("", budget), ce.Tree("", budget)
	}, func(path []string, budget int) *Node {
		var ids []int32
		for _, p := range path {
			id, _ := s.Lookup(p)
			ids = append(ids, id)
		}
		return s.Subtree(ids).Tree("all", budget)
	})
}

func renderRef(t *testing.T, s *refSet) string {
	return render(t, s, func(name string, budget int) (*Node, *Node) {
		id, _ := s.Lookup(name)
		cr, ce := s.Sandwich(id)
		return cr.Tree("", budget), ce.Tree("", budget)
	}, func(path []string, budget int) *Node {
		var ids []int32
		for _, p := range path {
			id, _ := s.Lookup(p)
			ids = append(ids, id)
		}
		return s.Subtree(ids).Tree("all", budget)
	})
}

// The radix-sorted tree, the function table, sandwiches and zoomed trees
// are those of the straightforward computation, and so are the views
// derived from an untransformed set with Transform: on random captures,
// queries, directions and transform stacks, one-capture views, CPI views
// and diffs.
func TestSetMatchesReference(t *testing.T) {
	derived, merged := 0, 0
	named, presorted, tables := 0, 0, 0 // through a name plan; its changed stacks in order; its table from base's
	runs := 0                           // its changed stacks in sorted runs, merged
	for seed := uint64(0); seed < 400; seed++ {
		rng := rand.New(rand.NewPCG(seed, 7))
		c := randomCapture(rng, false)
		q := randomQuery(rng)
		ts := randomTransforms(rng)
		reverse := rng.IntN(3) == 0
		instructions := rng.IntN(5) == 0
		name := fmt.Sprintf("seed %d q %+v ts %v reverse %v cpi %v", seed, q, ts, reverse, instructions)
		tc := c.Transform(ts)

		ref := newRefSet()
		ref.Instructions = instructions
		ref.Add(tc, q, reverse, false)
		want := renderRef(t, ref)

		direct := NewSet()
		direct.Instructions = instructions
		direct.Add(tc, q, reverse, false)
		if got := renderSet(t, direct); got != want {
			t.Fatalf("%s: the set differs from the reference:\n%s", name, diffLines(got, want))
		}

		base := NewSet()
		base.Instructions = instructions
		base.Add(c, q, reverse, false)
		if seed%2 == 1 {
			base.Prepare() // as the web's views are
		}
		if base.Transformable() && q.Comm == "" {
			derived++
			ds := base.Transform(ts)
			if ds.deriv != nil {
				merged++ // sorted by merging its changed stacks into base's
			}
			if ds != base && base.namePlan(ts) != nil {
				named++
				if len(ds.deriv.moved) > 1 {
					if len(ds.deriv.movedRuns) == 0 {
						presorted++
					} else {
						runs++
					}
				}
				if ds.fnsFrom != nil {
					tables++
				}
			}
			if got := renderSet(t, ds); got != want {
				t.Fatalf("%s: the derived set differs from the reference:\n%s", name, diffLines(got, want))
			}
			// Transformed in two halves at once, as large sets are.
			saved := parallelTransform
			parallelTransform = 1
			halves := renderSet(t, base.Transform(ts))
			parallelTransform = saved
			if halves != want {
				t.Fatalf("%s: the set derived in halves differs from the reference:\n%s", name, diffLines(halves, want))
			}
		}

		// A diff against another random capture.
		other := randomCapture(rng, false).Transform(ts)
		rd := newRefSet()
		rd.Add(other, q, reverse, true)
		rd.Add(tc, q, reverse, false)
		sd := NewSet()
		sd.Add(other, q, reverse, true)
		sd.Add(tc, q, reverse, false)
		if sd.Transformable() {
			t.Fatalf("%s: a diff set is transformable", name)
		}
		if got, want := renderSet(t, sd), renderRef(t, rd); got != want {
			t.Fatalf("%s: the diff set differs from the reference:\n%s", name, diffLines(got, want))
		}
	}
	t.Logf("%d derived, %d of them sorted by a merge; %d through names, %d with their changed stacks in order, %d in sorted runs, %d with the table derived", derived, merged, named, presorted, runs, tables)
	if named < 60 || tables < 15 {
		t.Errorf("%d views through names, %d presorted, %d tables derived: those paths are not tested", named, presorted, tables)
	}
	if merged < 100 {
		t.Errorf("only %d of 400 views were sorted by a merge: that path is not tested", merged)
	}
	if derived < 200 {
		t.Errorf("only %d of 400 views were derived: the fast path is not tested", derived)
	}
}

// layeredCapture makes a capture whose function names each sit at one
// depth, as in the workspace benchmark's (and in a program whose function
// is called from one place): merging one moves the stacks through it
// without reordering them, so the derived view's changed stacks come out
// sorted. Some names also appear at a second depth, which reorders them.
func layeredCapture(rng *rand.Rand, lines bool) *capture.Capture {
	b := capture.NewBuilder(capture.Meta{Type: capture.CPU, Start: time.Unix(1700000000, 0), Duration: 10 * time.Second, Timestamps: true})
	frames := map[string]uint32{}
	frame := func(name string, kind capture.FrameKind) uint32 {
		if id, ok := frames[name]; ok {
			return id
		}
		f := capture.Frame{Name: name, Module: "/bin/app", Kind: kind}
		if lines && rng.IntN(2) == 0 {
			f.File, f.Line = "app.c", 1+rng.IntN(9)
		}
		id := b.Frame(f)
		frames[name] = id
		return id
	}
	var stacks []uint32
	for i := 0; i < 1+rng.IntN(60); i++ {
		st := []uint32{frame(fmt.Sprintf("app%d", rng.IntN(2)), capture.KindProcess)}
		for d := 0; d < rng.IntN(8); d++ {
			name := fmt.Sprintf("l%d_%d", d, rng.IntN(3))
			if rng.IntN(25) == 0 {
				name = fmt.Sprintf("l%d_%d", rng.IntN(8), rng.IntN(3)) // at another depth
			}
			st = append(st, frame(name, capture.KindUser))
		}
		stacks = append(stacks, b.Stack(st))
	}
	for i := 0; i < 1+rng.IntN(300); i++ {
		b.Add(capture.Event{Time: int64(rng.IntN(10)) * int64(time.Second), Value: int64(1 + rng.IntN(5)), Value2: int64(rng.IntN(9)),
			Stack: stacks[rng.IntN(len(stacks))], PID: 1, TID: uint32(1 + rng.IntN(3))})
	}
	return b.Capture()
}

// Views derived through name plans (focus, merge, drop of names whose
// frames all match) are those of the transformed capture: on layered
// captures, where the changed stacks often need no sort, and random ones,
// where they do; with the function table derived from the untransformed
// view's for merges and drops.
func TestNamePlanMatchesReference(t *testing.T) {
	named, presorted, tables, runs, extended := 0, 0, 0, 0, 0
	kinds := []capture.TransformKind{capture.TransformMerge, capture.TransformMerge, capture.TransformDrop, capture.TransformFocus}
	for seed := uint64(0); seed < 600; seed++ {
		rng := rand.New(rand.NewPCG(seed, 13))
		lines := rng.IntN(3) == 0
		var c *capture.Capture
		if seed%4 == 3 {
			c = randomCapture(rng, lines)
		} else {
			c = layeredCapture(rng, lines)
		}
		var ts []capture.Transform
		for i := 0; i < 1+rng.IntN(3); i++ {
			name := fmt.Sprintf("l%d_%d", rng.IntN(8), rng.IntN(3))
			if seed%4 == 3 {
				name = []string{"a", "b", "c", "main", "lib_x"}[rng.IntN(5)]
			}
			k := kinds[rng.IntN(len(kinds))]
			if seed%2 == 0 {
				k = capture.TransformMerge // merge-only stacks, the page's usual
			}
			ts = append(ts, capture.Transform{Kind: k, Name: name})
		}
		q := randomQuery(rng)
		q.Comm = ""
		reverse := rng.IntN(3) == 0
		instructions := rng.IntN(5) == 0
		name := fmt.Sprintf("seed %d q %+v ts %v reverse %v cpi %v lines %v", seed, q, ts, reverse, instructions, lines)
		ref := newRefSet()
		ref.Instructions = instructions
		ref.Add(c.Transform(ts), q, reverse, false)
		want := renderRef(t, ref)
		direct := NewSet()
		direct.Instructions = instructions
		direct.Add(c.Transform(ts), q, reverse, false)
		if lines {
			want = renderSet(t, direct) // the reference has no lines
		}
		base := NewSet()
		base.Instructions = instructions
		base.Add(c, q, reverse, false)
		if !base.Transformable() || base.namePlan(ts) == nil {
			continue
		}
		if seed%3 != 0 {
			base.Prepare() // as the web's views are
			if got := renderSet(t, base); got != renderSet(t, func() *Set { s := NewSet(); s.Instructions = instructions; s.Add(c, q, reverse, false); return s }()) {
				t.Fatalf("%s: the prepared set differs from the set", name)
			}
		}
		for _, half := range []int{parallelTransform, 1} {
			saved := parallelTransform
			parallelTransform = half
			ds := base.Transform(ts)
			parallelTransform = saved
			if ds == base {
				continue
			}
			if half != 1 {
				named++
				if len(ds.deriv.moved) > 1 {
					if len(ds.deriv.movedRuns) == 0 {
						presorted++
					} else {
						runs++
					}
				}
				if ds.fnsFrom != nil {
					tables++
				}
			}
			if got := renderSet(t, ds); got != want {
				t.Fatalf("%s (halves from %d): the derived set differs:\n%s", name, half, diffLines(got, want))
			}
		}
		// The stack as the page makes it, one merge at a time, each view
		// extended from the one before where it can be (Extend); the
		// views before drawn first (their trees and tables computed, as
		// the page's were) or not.
		if len(ts) > 1 {
			view := base.Transform(ts[:1])
			for k := 2; k <= len(ts); k++ {
				if seed%3 == 1 {
					renderSet(t, view)
				}
				next, ok := view.Extend(ts[k-1 : k])
				allMerges := true
				for _, tr := range ts[:k] {
					allMerges = allMerges && tr.Kind == capture.TransformMerge
				}
				if ok != (allMerges && view.merges > 0 && view.merges < maxMerges && base.namePlan(ts[:k]) != nil) {
					t.Fatalf("%s: Extend of %v by %v: ok %v", name, ts[:k-1], ts[k-1], ok)
				}
				if !ok {
					break
				}
				view = next
				if k == len(ts) {
					extended++
					if got := renderSet(t, view); got != want {
						t.Fatalf("%s: the view extended merge by merge differs:\n%s", name, diffLines(got, want))
					}
				}
			}
		}
	}
	t.Logf("%d through names, %d with their changed stacks in order, %d in sorted runs, %d with the table derived, %d extended merge by merge", named, presorted, runs, tables, extended)
	if named < 300 || presorted < 60 || runs < 15 || tables < 150 || extended < 60 {
		t.Errorf("%d views through names, %d presorted, %d tables derived, %d extended: those paths are not tested", named, presorted, tables, extended)
	}
}

// With file:line on frames, the lines a derived view names are those of
// the view of the transformed capture.
func TestDerivedLines(t *testing.T) {
	withLines := 0
	for seed := uint64(0); seed < 300; seed++ {
		rng := rand.New(rand.NewPCG(seed, 9))
		c := randomCapture(rng, true)
		q := randomQuery(rng)
		q.Comm = ""
		ts := randomTransforms(rng)
		reverse := rng.IntN(3) == 0
		direct := NewSet()
		direct.Add(c.Transform(ts), q, reverse, false)
		base := NewSet()
		base.Add(c, q, reverse, false)
		if !base.Transformable() {
			continue
		}
		if got, want := renderSet(t, base.Transform(ts)), renderSet(t, direct); got != want {
			t.Fatalf("seed %d %v: the derived set differs:\n%s", seed, ts, diffLines(got, want))
		}
		if strings.Contains(renderSet(t, base), `"line":`) {
			withLines++
		}
	}
	if withLines < 100 {
		t.Errorf("only %d of 300 views name lines", withLines)
	}
}

func diffLines(got, want string) string {
	g, w := strings.Split(got, "\n"), strings.Split(want, "\n")
	for i := 0; i < max(len(g), len(w)); i++ {
		var a, b string
		if i < len(g) {
			a = g[i]
		}
		if i < len(w) {
			b = w[i]
		}
		if a != b {
			return fmt.Sprintf("line %d:\n got  %s\n want %s", i+1, a, b)
		}
	}
	return "same lines"
}

// Larger sets go through the radix sort's run splitting rather than the
// insertion sort of small runs: stacks with long shared prefixes.
func TestSortEntriesLarge(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 4))
	for round := 0; round < 20; round++ {
		var es []entry
		prefix := make([]int32, rng.IntN(40))
		for i := range prefix {
			prefix[i] = int32(rng.IntN(3))
		}
		for i := 0; i < 50+rng.IntN(2000); i++ {
			names := slices.Clone(prefix[:rng.IntN(len(prefix)+1)])
			for j := 0; j < rng.IntN(12); j++ {
				names = append(names, int32(rng.IntN(1+round))*int32(1+(round%3)*5000))
			}
			es = append(es, entry{names: names, v: 1})
		}
		want := slices.Clone(es)
		slices.SortStableFunc(want, func(a, b entry) int { return slices.Compare(a.names, b.names) })
		lcp := sortEntries(es)
		for i := range es {
			if !slices.Equal(es[i].names, want[i].names) {
				t.Fatalf("round %d: entry %d is %v, want %v", round, i, es[i].names, want[i].names)
			}
			if i > 0 && int(lcp[i]) != commonPrefix(es[i-1].names, es[i].names) {
				t.Fatalf("round %d: lcp[%d] = %d, want %d", round, i, lcp[i], commonPrefix(es[i-1].names, es[i].names))
			}
		}
	}
}

// The summary of a view seen through a plan is that of the transformed
// capture.
func TestSummarizeThrough(t *testing.T) {
	for seed := uint64(0); seed < 300; seed++ {
		rng := rand.New(rand.NewPCG(seed, 11))
		c := randomCapture(rng, false)
		q := randomQuery(rng)
		q.Comm = ""
		ts := randomTransforms(rng)
		want, _ := json.Marshal(c.Transform(ts).Summarize(q, nil))
		got, _ := json.Marshal(c.SummarizeThrough(c.Plan(ts), q, nil, nil))
		if string(got) != string(want) {
			t.Fatalf("seed %d %v:\n got  %s\n want %s", seed, ts, got, want)
		}
		// With the untransformed view's counts, as the web's summaries.
		got, _ = json.Marshal(c.SummarizeThrough(c.Plan(ts), q, nil, c.CountEvents(q)))
		if string(got) != string(want) {
			t.Fatalf("seed %d %v, counts reused:\n got  %s\n want %s", seed, ts, got, want)
		}
	}
}

// A set is shared by the requests of a view: reading it from many
// goroutines at once, while the first sorts it, is safe (go test -race).
func TestSetConcurrentReads(t *testing.T) {
	rng := rand.New(rand.NewPCG(5, 5))
	c := randomCapture(rng, true)
	s := NewSet()
	s.Add(c, capture.Query{}, false, false)
	// A derived view, shared too: its sort merges into s's, sorted
	// meanwhile by another reader.
	merged := s.Transform([]capture.Transform{{Kind: capture.TransformMerge, Name: "a"}})
	if merged.deriv == nil {
		t.Fatal("the merged view is not sorted from the set's")
	}
	var wg sync.WaitGroup
	out := make([]string, 10)
	for i := range out {
		wg.Add(1)
		go func() {
			defer wg.Done()
			var b bytes.Buffer
			switch i % 5 {
			case 4:
				WriteTree(&b, merged.Tree("all", 50), false)
				fmt.Fprint(&b, merged.Functions())
			case 0:
				WriteTree(&b, s.Tree("all", 50), false)
			case 1:
				fmt.Fprint(&b, s.Functions())
			case 2:
				WriteTree(&b, s.Transform([]capture.Transform{{Kind: capture.TransformLib, Name: "libx.so"}}).Tree("all", 50), false)
			case 3:
				if id, ok := s.Lookup("a"); ok {
					cr, _ := s.Sandwich(id)
					WriteTree(&b, cr.Tree("", 50), false)
					WriteTree(&b, s.Subtree([]int32{id}).Tree("all", 50), false)
				}
			}
			out[i] = b.String()
		}()
	}
	wg.Wait()
	for i := 5; i < len(out); i++ {
		if out[i] != out[i-5] {
			t.Errorf("reader %d got %q, reader %d %q", i, out[i], i-5, out[i-5])
		}
	}
}

// A user frame named "f_[k]" and a kernel frame "f" share the folded name
// f_[k], but only the kernel frame's label is f: a transform of f takes
// the frames' way, and its view is still the transformed capture's.
func TestNamePlanMixedName(t *testing.T) {
	b := capture.NewBuilder(capture.Meta{Type: capture.CPU, Start: time.Unix(1700000000, 0), Duration: time.Second, Timestamps: true})
	app := b.Frame(capture.Frame{Name: "app", Kind: capture.KindProcess})
	main := b.Frame(capture.Frame{Name: "main"})
	user := b.Frame(capture.Frame{Name: "f_[k]"})
	kern := b.Frame(capture.Frame{Name: "f", Kind: capture.KindKernel})
	g := b.Frame(capture.Frame{Name: "g"})
	for i, st := range [][]uint32{{app, main, user, g}, {app, main, kern, g}, {app, main, kern}, {app, user}, {app, main, g}} {
		b.Add(capture.Event{Time: int64(i), Value: int64(1 + i), Stack: b.Stack(st), PID: 1, TID: 1})
	}
	c := b.Capture()
	for _, k := range []capture.TransformKind{capture.TransformMerge, capture.TransformDrop, capture.TransformFocus} {
		ts := []capture.Transform{{Kind: k, Name: "f"}}
		base := NewSet()
		base.Add(c, capture.Query{}, false, false)
		if base.namePlan(ts) != nil {
			t.Fatalf("%v: a name plan for a name only some of whose frames match", ts)
		}
		ref := newRefSet()
		ref.Add(c.Transform(ts), capture.Query{}, false, false)
		if got, want := renderSet(t, base.Transform(ts)), renderRef(t, ref); got != want {
			t.Fatalf("%v: the derived set differs:\n%s", ts, diffLines(got, want))
		}
	}
}

// TestMergeRuns sorts entries that are sorted runs by merging them, as a
// view derived through merges does with its changed stacks, and checks
// the order and the common prefixes against a sort of the same entries:
// runs of random lengths (one entry, empty names, prefixes of each other,
// equal ones), some starting where the one before is still in order.
func TestMergeRuns(t *testing.T) {
	for seed := uint64(0); seed < 500; seed++ {
		rng := rand.New(rand.NewPCG(seed, 21))
		n := 1 + rng.IntN(60)
		es := make([]entry, n)
		for i := range es {
			names := make([]int32, rng.IntN(6))
			for k := range names {
				names[k] = int32(rng.IntN(3 + int(seed%5)))
			}
			es[i] = entry{names: names, v: int64(i)}
		}
		// Cut into runs, each sorted, and the common prefix of every entry
		// with the one before it.
		var starts []int32
		for lo := 0; lo < n; {
			hi := min(n, lo+1+rng.IntN(12))
			sortEntries(es[lo:hi])
			if lo > 0 {
				starts = append(starts, int32(lo))
			}
			lo = hi
		}
		lcp := make([]int32, n)
		for i := 1; i < n; i++ {
			lcp[i] = int32(commonPrefix(es[i-1].names, es[i].names))
		}
		want := slices.Clone(es)
		wantLCP := sortEntries(want)
		got, gotLCP := mergeRuns(slices.Clone(es), slices.Clone(lcp), starts)
		for i := range got {
			if !slices.Equal(got[i].names, want[i].names) || gotLCP[i] != wantLCP[i] {
				t.Fatalf("seed %d, runs at %v: entry %d is %v (common prefix %d), want %v (%d)\ngot  %v\nwant %v",
					seed, starts, i, got[i].names, gotLCP[i], want[i].names, wantLCP[i], namesOf(got), namesOf(want))
			}
		}
		vs := 0
		for _, e := range got {
			vs += int(e.v)
		}
		if vs != n*(n-1)/2 {
			t.Fatalf("seed %d: entries lost or repeated: %v", seed, namesOf(got))
		}
	}
}

func namesOf(es []entry) [][]int32 {
	out := make([][]int32, len(es))
	for i, e := range es {
		out[i] = e.names
	}
	return out
}
