package capture

import (
	"os"
	"testing"
)

// BenchmarkSummarize: SCORCH_BENCH_CAPTURE names a capture file (e.g. the
// workspace benchmark's, scripts/bench/workspace); its summary untransformed
// and through a merge.
func BenchmarkSummarize(b *testing.B) {
	path := os.Getenv("SCORCH_BENCH_CAPTURE")
	if path == "" {
		b.Skip("SCORCH_BENCH_CAPTURE not set")
	}
	f, err := os.Open(path)
	if err != nil {
		b.Fatal(err)
	}
	c, err := Read(f)
	f.Close()
	if err != nil {
		b.Fatal(err)
	}
	ts, err := ParseTransforms([]string{"merge:fn_3_1"})
	if err != nil {
		b.Fatal(err)
	}
	b.Run("plain", func(b *testing.B) {
		for b.Loop() {
			c.Summarize(Query{}, nil)
		}
	})
	b.Run("merge", func(b *testing.B) {
		for b.Loop() {
			c.SummarizeThrough(c.Plan(ts), Query{}, nil, nil)
		}
	})
	ec := c.CountEvents(Query{})
	b.Run("merge-counted", func(b *testing.B) {
		for b.Loop() {
			c.SummarizeThrough(c.Plan(ts), Query{}, nil, ec)
		}
	})
}
