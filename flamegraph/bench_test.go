package flamegraph

import (
	"bytes"
	"io"
	"math/rand/v2"
	"strconv"
	"strings"
	"sync"
	"testing"

	"github.com/scorch-dev/scorch/capture"
	"github.com/scorch-dev/scorch/formats"
)

// largeProfile is 100k distinct stacks of 10 to 30 frames (about 2M frames
// before merging) over 5000 function names, with skewed fan-out and values
// as real profiles have, as a capture and as folded text.
var largeProfile = sync.OnceValues(func() (*capture.Capture, []byte) {
	rng := rand.New(rand.NewPCG(1, 2))
	names := make([]string, 5000)
	for i := range names {
		names[i] = "pkg" + strconv.Itoa(i%97) + ".(*Type" + strconv.Itoa(i%13) + ").method_" + strconv.Itoa(i)
	}
	b := capture.NewBuilder(capture.Meta{Type: capture.CPU})
	seen := make(map[uint32]bool)
	var folded bytes.Buffer
	var ids []uint32
	var parts []string
	procs := []uint32{b.Frame(capture.Frame{Name: "server", Kind: capture.KindProcess}), b.Frame(capture.Frame{Name: "worker", Kind: capture.KindProcess})}
	for len(seen) < 100000 {
		ids, parts = ids[:0], parts[:0]
		p := rng.IntN(len(procs))
		ids = append(ids, procs[p])
		parts = append(parts, []string{"server", "worker"}[p])
		depth := 10 + rng.IntN(21)
		node := 0
		for d := 0; d < depth; d++ {
			choice := min(int(rng.ExpFloat64()*1.2), 11)
			node = (node*31 + choice*7919 + d*104729) % len(names)
			ids = append(ids, b.Frame(capture.Frame{Name: names[node]}))
			parts = append(parts, names[node])
		}
		st := b.Stack(ids)
		if seen[st] {
			continue
		}
		seen[st] = true
		v := int64(1 + rng.IntN(20))
		if rng.IntN(100) == 0 {
			v *= 100
		}
		b.Add(capture.Event{Stack: st, Value: v})
		folded.WriteString(strings.Join(parts, ";"))
		folded.WriteByte(' ')
		folded.WriteString(strconv.FormatInt(v, 10))
		folded.WriteByte('\n')
	}
	return b.Capture(), folded.Bytes()
})

type countWriter struct{ n int64 }

func (w *countWriter) Write(p []byte) (int, error) {
	w.n += int64(len(p))
	return len(p), nil
}

// TestLargeRenderSize checks the size budget of the benchmark's graph:
// at most 15 MB with the default minwidth.
func TestLargeRenderSize(t *testing.T) {
	if testing.Short() {
		t.Skip("large render skipped in -short mode")
	}
	c, _ := largeProfile()
	frames := 0
	for _, st := range c.Stacks {
		frames += len(st)
	}
	if len(c.Stacks) != 100000 || frames < 1800000 {
		t.Fatalf("profile has %d stacks, %d frames", len(c.Stacks), frames)
	}
	var w countWriter
	if err := Render(&w, c, capture.Query{}, Options{}); err != nil {
		t.Fatal(err)
	}
	t.Logf("%d stacks, %d frames: %.1f MB of SVG", len(c.Stacks), frames, float64(w.n)/1e6)
	if w.n > 15e6 {
		t.Errorf("SVG is %.1f MB, over the 15 MB budget", float64(w.n)/1e6)
	}
}

// BenchmarkRenderLarge renders the 100k-stack profile to SVG.
func BenchmarkRenderLarge(b *testing.B) {
	c, _ := largeProfile()
	b.ReportAllocs()
	var w countWriter
	for b.Loop() {
		w.n = 0
		if err := Render(&w, c, capture.Query{}, Options{}); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(w.n)/1e6, "MB-svg")
}

// BenchmarkFoldedParseLarge reads the same profile as folded text: the
// baseline the render time is compared with.
func BenchmarkFoldedParseLarge(b *testing.B) {
	_, folded := largeProfile()
	b.ReportAllocs()
	for b.Loop() {
		if _, _, err := formats.Import(bytes.NewReader(folded), formats.ImportOptions{}); err != nil {
			b.Fatal(err)
		}
	}
}

var _ io.Writer = (*countWriter)(nil)
