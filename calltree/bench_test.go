package calltree

import (
	"os"
	"slices"
	"strconv"
	"testing"

	"github.com/scorch-dev/scorch/capture"
)

// BenchmarkTree builds the views of the workspace benchmark's capture
// (SCORCH_BENCH_CAPTURE, made by scripts/bench/workspace): the set, its
// sort, the pruned tree and the function table, and a view derived from
// it through a merge, against the same view built from the transformed
// capture and against the implementation before (reference_test.go), and
// the summary's pass.
func BenchmarkTree(b *testing.B) {
	c := benchCapture(b)
	b.Run("aggregate", func(b *testing.B) {
		for i := 0; i < b.N; i++ {
			c.Aggregate(capture.Query{})
		}
	})
	b.Run("set", func(b *testing.B) {
		for i := 0; i < b.N; i++ {
			s := NewSet()
			s.Add(c, capture.Query{}, false, false)
		}
	})
	s := NewSet()
	s.Add(c, capture.Query{}, false, false)
	b.Run("sort", func(b *testing.B) {
		for i := 0; i < b.N; i++ {
			s.sort()
		}
	})
	b.Run("functions", func(b *testing.B) {
		for i := 0; i < b.N; i++ {
			tally(make([]Function, len(s.Names)), s.entries, 1) // Functions keeps the table once computed
		}
	})
	b.Run("tree", func(b *testing.B) {
		for i := 0; i < b.N; i++ {
			s.Tree("all", 20000+i%2)
		}
	})
	merge := []capture.Transform{{Kind: capture.TransformMerge, Name: "fn_3_1"}}
	b.Run("merge-derived", func(b *testing.B) {
		for i := 0; i < b.N; i++ {
			s.Transform(merge).Tree("all", 20000)
		}
	})
	// The derived view's sort alone: its changed stacks sorted and
	// merged into the untransformed view's sorted stacks.
	b.Run("merge-sort", func(b *testing.B) {
		d := s.Transform(merge).deriv
		moved := d.moved
		for i := 0; i < b.N; i++ {
			(&derivation{from: s, kept: d.kept, moved: slices.Clone(moved)}).sort()
		}
	})
	// The same views as computed before (reference_test.go): the
	// uncached tree and the tree after a merge.
	b.Run("tree-reference", func(b *testing.B) {
		for i := 0; i < b.N; i++ {
			r := newRefSet()
			r.Add(c, capture.Query{}, false, false)
			r.Tree("all", 20000)
		}
	})
	b.Run("tree-uncached", func(b *testing.B) {
		for i := 0; i < b.N; i++ {
			s := NewSet()
			s.Add(c, capture.Query{}, false, false)
			s.Tree("all", 20000)
		}
	})
	b.Run("merge-reference", func(b *testing.B) {
		for i := 0; i < b.N; i++ {
			r := newRefSet()
			r.Add(c.Transform(merge), capture.Query{}, false, false)
			r.Tree("all", 20000)
		}
	})
	b.Run("merge-capture", func(b *testing.B) {
		for i := 0; i < b.N; i++ {
			d := NewSet()
			d.Add(c.Transform(merge), capture.Query{}, false, false)
			d.Tree("all", 20000)
		}
	})
	// summary.json's capture part: untransformed, through the merge, and
	// through it with the untransformed view's event counts (the web's).
	b.Run("summary", func(b *testing.B) {
		for b.Loop() {
			c.Summarize(capture.Query{}, nil)
		}
	})
	b.Run("summary-merge", func(b *testing.B) {
		for b.Loop() {
			c.SummarizeThrough(c.Plan(merge), capture.Query{}, nil, nil)
		}
	})
	counts := c.CountEvents(capture.Query{})
	b.Run("summary-merge-counted", func(b *testing.B) {
		for b.Loop() {
			c.SummarizeThrough(c.Plan(merge), capture.Query{}, nil, counts)
		}
	})
}

// BenchmarkStackedMerges is the page's transforms after a few merges from
// the graph's context menu, stacked: wide functions at depths 1 to 5 of
// the workspace benchmark's capture (SCORCH_BENCH_CAPTURE), each stack
// derived from the untransformed set (as the web does) and its tree built
// at the page's budget.
func BenchmarkStackedMerges(b *testing.B) {
	c := benchCapture(b)
	s := NewSet()
	s.Add(c, capture.Query{}, false, false)
	s.Prepare()
	var ts []capture.Transform
	for _, name := range []string{"fn_1_0", "fn_3_1", "fn_2_0", "fn_4_1"} {
		ts = append(ts, capture.Transform{Kind: capture.TransformMerge, Name: name})
		stack := slices.Clone(ts)
		b.Run(strconv.Itoa(len(ts)), func(b *testing.B) {
			for b.Loop() {
				s.Transform(stack).Tree("all", 20000)
			}
		})
		// The tree alone, of the view built and sorted once.
		d := s.Transform(stack)
		d.prep()
		b.Run(strconv.Itoa(len(ts))+"-tree", func(b *testing.B) {
			for b.Loop() {
				d.Tree("all", 20000)
			}
		})
	}
}

// benchCapture reads the capture SCORCH_BENCH_CAPTURE names (made by
// scripts/bench/workspace), or skips the benchmark without one.
func benchCapture(b *testing.B) *capture.Capture {
	b.Helper()
	path := os.Getenv("SCORCH_BENCH_CAPTURE")
	if path == "" {
		b.Skip("SCORCH_BENCH_CAPTURE is not set")
	}
	f, err := os.Open(path)
	if err != nil {
		b.Fatal(err)
	}
	defer f.Close()
	c, err := capture.ReadLimit(f, 1<<30)
	if err != nil {
		b.Fatal(err)
	}
	return c
}
