package calltree

import (
	"os"
	"testing"

	"github.com/scorch-dev/scorch/capture"
)

// BenchmarkTree builds the tree of the workspace benchmark's capture
// (SCORCH_BENCH_CAPTURE, made by scripts/bench/workspace).
func BenchmarkTree(b *testing.B) {
	path := os.Getenv("SCORCH_BENCH_CAPTURE")
	if path == "" {
		b.Skip("SCORCH_BENCH_CAPTURE is not set")
	}
	f, err := os.Open(path)
	if err != nil {
		b.Fatal(err)
	}
	c, err := capture.ReadLimit(f, 1<<30)
	f.Close()
	if err != nil {
		b.Fatal(err)
	}
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
	b.Run("functions", func(b *testing.B) {
		for i := 0; i < b.N; i++ {
			s.Functions()
		}
	})
	b.Run("tree", func(b *testing.B) {
		for i := 0; i < b.N; i++ {
			s.Tree("all", 20000)
		}
	})
}
