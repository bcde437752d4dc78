package web

import (
	"io"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/scorch-dev/scorch/capture"
	"github.com/scorch-dev/scorch/internal/synthcapture"
)

// The time views' benchmark (scripts/bench-timeviews.sh): the synthetic
// 60 s, 999 Hz, 2-CPU capture of 50 threads, served as in production.
// "Uncached" answers are computed from the decoded capture (the render
// cache emptied before each request), "cached" come from the render cache,
// "cold" also decode the capture file. The heatmap of the same capture,
// uncached, is the baseline.

func benchTimeServer(b *testing.B, typ capture.Type) (s *Server, base, id string) {
	b.Helper()
	c, err := synthcapture.Generate(synthcapture.Options{Type: typ})
	if err != nil {
		b.Fatal(err)
	}
	s, err = New(Config{DataDir: b.TempDir(), Recorder: hmRecorder{}, Listen: "127.0.0.1:0"})
	if err != nil {
		b.Fatal(err)
	}
	id = hmStore(b, s, c)
	ts := httptest.NewServer(s.Handler())
	b.Cleanup(ts.Close)
	return s, ts.URL, id
}

func benchGet(b *testing.B, url string) int {
	resp, err := http.Get(url)
	if err != nil {
		b.Fatal(err)
	}
	n, _ := io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		b.Fatalf("%s: %d", url, resp.StatusCode)
	}
	return int(n)
}

// benchRoute times GET path: uncached (drop the render cache first),
// cached, or cold (drop the decoded capture too).
func benchRoute(b *testing.B, typ capture.Type, path, mode string) {
	s, base, id := benchTimeServer(b, typ)
	url := base + "/api/captures/" + id + path
	n := benchGet(b, url) // loads the capture
	b.ResetTimer()
	for range b.N {
		if mode != "cached" {
			b.StopTimer()
			s.cache.drop(id)
			if mode == "cold" {
				s.loaded.drop(id)
			}
			b.StartTimer()
		}
		n = benchGet(b, url)
	}
	b.ReportMetric(float64(n), "bytes")
}

func BenchmarkTimeviewsHeatmapUncached(b *testing.B) {
	benchRoute(b, capture.CPU, "/heatmap.json", "uncached")
}

func BenchmarkTimeviewsThreadsUncached(b *testing.B) {
	benchRoute(b, capture.CPU, "/threads.json", "uncached")
}

func BenchmarkTimeviewsThreadsCached(b *testing.B) {
	benchRoute(b, capture.CPU, "/threads.json", "cached")
}

func BenchmarkTimeviewsThreadsCold(b *testing.B) {
	benchRoute(b, capture.CPU, "/threads.json", "cold")
}

func BenchmarkTimeviewsThreadsFocusUncached(b *testing.B) {
	benchRoute(b, capture.CPU, "/threads.json?t=focus:compress_block", "uncached")
}

func BenchmarkTimeviewsThreadsOffCPUUncached(b *testing.B) {
	benchRoute(b, capture.OffCPU, "/threads.json", "uncached")
}

// Thread 1000 is the busiest of the first half.
func BenchmarkTimeviewsStackchart10sUncached(b *testing.B) {
	benchRoute(b, capture.CPU, "/stackchart.json?tid=1000&from=10&to=20&width=1200", "uncached")
}

func BenchmarkTimeviewsStackchart60sUncached(b *testing.B) {
	benchRoute(b, capture.CPU, "/stackchart.json?tid=1000&width=1920", "uncached")
}
