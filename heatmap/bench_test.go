package heatmap

import (
	"fmt"
	"io"
	"sync"
	"testing"
	"time"

	"github.com/scorch-dev/scorch/capture"
	"github.com/scorch-dev/scorch/flamegraph"
)

var benchCaptures sync.Map // events count -> *capture.Capture

// benchCapture is a 60 s cpu capture of n events spread over 1000 stacks,
// 50 processes and 2 CPUs, a tenth of them idle, in time order.
func benchCapture(b *testing.B, n int) *capture.Capture {
	if c, ok := benchCaptures.Load(n); ok {
		return c.(*capture.Capture)
	}
	bl := capture.NewBuilder(capture.Meta{Type: capture.CPU, Duration: time.Minute, Timestamps: true})
	proc := bl.Frame(capture.Frame{Name: "app", Kind: capture.KindProcess})
	main := bl.Frame(capture.Frame{Name: "main"})
	for i := range 1000 {
		bl.Stack([]uint32{proc, main, bl.Frame(capture.Frame{Name: fmt.Sprintf("fn%d", i)})})
	}
	c := bl.Capture()
	c.Events = make([]capture.Event, n)
	step := int64(time.Minute) / int64(n)
	x := uint64(88172645463325252)
	for i := range c.Events {
		x ^= x << 13
		x ^= x >> 7
		x ^= x << 17
		e := &c.Events[i]
		e.Time = int64(i)*step + int64(x%uint64(step+1))
		e.Value = 1
		e.Stack = uint32(x>>20) % 1000
		e.PID = 1000 + uint32(x>>40)%50
		e.TID = e.PID
		e.CPU = uint16(x>>50) % 2
		if x%10 == 0 {
			e.Flags = capture.FlagIdle
		}
	}
	benchCaptures.Store(n, c)
	return c
}

var sink int64

// plainPass is the baseline: the cheapest loop that reads every event.
func plainPass(c *capture.Capture) int64 {
	var s int64
	for i := range c.Events {
		s += c.Events[i].Value + c.Events[i].Time
	}
	return s
}

func BenchmarkPlainPass10M(b *testing.B) {
	c := benchCapture(b, 10_000_000)
	b.ResetTimer()
	for b.Loop() {
		sink += plainPass(c)
	}
}

func BenchmarkHeatmap10M(b *testing.B) {
	c := benchCapture(b, 10_000_000)
	b.ResetTimer()
	for b.Loop() {
		h, err := Compute(c, capture.Query{}, DefaultRows)
		if err != nil {
			b.Fatal(err)
		}
		sink += h.Max
	}
}

func BenchmarkPlainPass1M(b *testing.B) {
	c := benchCapture(b, 1_000_000)
	b.ResetTimer()
	for b.Loop() {
		sink += plainPass(c)
	}
}

// BenchmarkRange1M is the data side of a range flame graph: the stacks of
// a 10 s range of a 1M-event capture, summed and folded.
func BenchmarkRange1M(b *testing.B) {
	c := benchCapture(b, 1_000_000)
	b.ResetTimer()
	for b.Loop() {
		for _, sv := range c.Aggregate(capture.Query{From: 20, To: 30}) {
			sink += sv.Value + int64(len(c.FoldedStack(sv.Stack)))
		}
	}
}

// BenchmarkRangeFlameGraph1M renders the SVG flame graph of a 10 s range
// of a 1M-event capture, as flamegraph.svg?from=20&to=30 does.
func BenchmarkRangeFlameGraph1M(b *testing.B) {
	c := benchCapture(b, 1_000_000)
	b.ResetTimer()
	for b.Loop() {
		if err := flamegraph.Render(io.Discard, c, capture.Query{From: 20, To: 30}, flamegraph.Options{}); err != nil {
			b.Fatal(err)
		}
	}
}
