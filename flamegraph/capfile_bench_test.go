package flamegraph

import (
	"os"
	"testing"

	"github.com/scorch-dev/scorch/capture"
)

// BenchmarkRenderCaptureFile renders the capture file named by
// SCORCH_BENCH_CAPTURE (e.g. `scorch record --format capture` of a whole
// host): the render of a real capture, skipped without one.
func BenchmarkRenderCaptureFile(b *testing.B) {
	path := os.Getenv("SCORCH_BENCH_CAPTURE")
	if path == "" {
		b.Skip("SCORCH_BENCH_CAPTURE not set")
	}
	f, err := os.Open(path)
	if err != nil {
		b.Fatal(err)
	}
	c, err := capture.Read(f)
	f.Close()
	if err != nil {
		b.Fatal(err)
	}
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
