package heatmap

import (
	"testing"
	"time"

	"github.com/scorch-dev/scorch/capture"
)

// Many long intervals over one another (an import can hold them) cost two
// steps each, and every cell still gets the time inside it: here each cell
// is covered 20000 times over, plus once more by a short interval cut at
// cell edges.
func TestOverlappingIntervals(t *testing.T) {
	b := capture.NewBuilder(capture.Meta{Type: capture.OffCPU, Duration: 10 * time.Second, Timestamps: true})
	st := b.Stack([]uint32{b.Frame(capture.Frame{Name: "app", Kind: capture.KindProcess}), b.Frame(capture.Frame{Name: "[blocked]", Kind: capture.KindSynthetic})})
	const n = 20000
	sec := int64(time.Second)
	for i := 0; i < n; i++ {
		b.Add(capture.Event{Time: 0, Value: 10 * sec, Stack: st, PID: 1, TID: 1})
	}
	b.Add(capture.Event{Time: 2*sec + 5*int64(time.Millisecond), Value: 30 * int64(time.Millisecond), Stack: st, PID: 1, TID: 2})
	h, err := Compute(b.Capture(), capture.Query{}, 100)
	if err != nil {
		t.Fatal(err)
	}
	cell := 10 * int64(time.Millisecond)
	for c := range h.Values {
		for r, v := range h.Values[c] {
			want := n * cell
			if c == 2 {
				switch r {
				case 0, 3:
					want += cell / 2
				case 1, 2:
					want += cell
				}
			}
			if v != want {
				t.Fatalf("cell [%d][%d] = %d, want %d", c, r, v, want)
			}
		}
	}
	th, err := h.PerThread()
	if err != nil || th.Values[0][0] != n || th.Values[2][1] != n+1 || th.Values[2][3] != n+0.5 || th.Max != n+1 {
		t.Errorf("per thread: %v, cells %g %g %g, max %g", err, th.Values[0][0], th.Values[2][1], th.Values[2][3], th.Max)
	}
}
