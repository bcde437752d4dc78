package web

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/scorch-dev/scorch/capture"
	"github.com/scorch-dev/scorch/heatmap"
	"github.com/scorch-dev/scorch/web/store"
)

// hmRecorder is a Recorder for tests that only read stored captures.
type hmRecorder struct{}

func (hmRecorder) Record(ctx context.Context, p capture.Params, progress func(Progress)) (*capture.Capture, error) {
	return nil, ErrUnavailable
}

func (hmRecorder) Capabilities(ctx context.Context) Capabilities {
	return Capabilities{Kernel: "test", Collectors: map[string]Collector{}}
}

// hmServer starts the service with the phased capture (hot_loop only in
// the first 200 ms of seconds 2 and 3, cold_loop at 500-900 ms of every
// second) and a capture without timestamps; it returns the base URL and
// the two ids.
func hmServer(t *testing.T) (base, phasedID, noTSID string) {
	t.Helper()
	s, err := New(Config{DataDir: t.TempDir(), Recorder: hmRecorder{}, Listen: "127.0.0.1:0"})
	if err != nil {
		t.Fatal(err)
	}
	phasedID = hmStore(t, s, hmPhased(t))
	noTS := capture.NewBuilder(capture.Meta{Type: capture.CPU, Source: "folded", Duration: time.Second})
	noTS.Add(capture.Event{Value: 3, Stack: noTS.Stack([]uint32{noTS.Frame(capture.Frame{Name: "app", Kind: capture.KindProcess})})})
	noTSID = hmStore(t, s, noTS.Capture())
	ts := httptest.NewServer(s.Handler())
	t.Cleanup(ts.Close)
	testServers[ts.URL] = s
	return ts.URL, phasedID, noTSID
}

func hmStore(t testing.TB, s *Server, c *capture.Capture) string {
	t.Helper()
	time.Sleep(2 * time.Millisecond)
	rec := store.Record{ID: store.NewID(time.Now()), Type: c.Meta.Type, Start: c.Meta.Start, Params: capture.Params{Type: c.Meta.Type}}
	if err := s.store.Begin(rec); err != nil {
		t.Fatal(err)
	}
	rec.Status = store.StatusDone
	rec.Samples = uint64(len(c.Events))
	rec.Seconds = c.Meta.Duration.Seconds()
	c.Meta.ID = rec.ID
	if err := s.store.Finish(rec, c); err != nil {
		t.Fatal(err)
	}
	return rec.ID
}

func hmPhased(t testing.TB) *capture.Capture {
	b := capture.NewBuilder(capture.Meta{Type: capture.CPU, Start: time.Unix(1700000000, 0), Duration: 5 * time.Second, Timestamps: true})
	stack := func(names ...string) uint32 {
		ids := []uint32{b.Frame(capture.Frame{Name: names[0], Kind: capture.KindProcess})}
		for _, n := range names[1:] {
			ids = append(ids, b.Frame(capture.Frame{Name: n}))
		}
		return b.Stack(ids)
	}
	hot := stack("app", "main", "hot_loop")
	cold := stack("other", "main", "cold_loop")
	const ms = int64(time.Millisecond)
	for s := int64(0); s < 5; s++ {
		for off := int64(0); off < 1000; off += 5 {
			ts := s*int64(time.Second) + off*ms + ms
			switch {
			case (s == 2 || s == 3) && off < 200:
				b.Add(capture.Event{Time: ts, Value: 1, Stack: hot, PID: 100, TID: 100})
			case off >= 500 && off < 900:
				b.Add(capture.Event{Time: ts, Value: 1, Stack: cold, PID: 200, TID: 200})
			}
		}
	}
	return b.Capture()
}

func hmGet(t *testing.T, url string) (int, string, http.Header) {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp.StatusCode, string(body), resp.Header
}

func TestHeatmapJSONRoute(t *testing.T) {
	base, id, _ := hmServer(t)
	code, body, hdr := hmGet(t, base+"/api/captures/"+id+"/heatmap.json?comm=app")
	if code != http.StatusOK || !strings.HasPrefix(hdr.Get("Content-Type"), "application/json") {
		t.Fatalf("got %d %s: %s", code, hdr.Get("Content-Type"), body)
	}
	var h heatmap.Heatmap
	if err := json.Unmarshal([]byte(body), &h); err != nil {
		t.Fatal(err)
	}
	if h.Rows != 50 || h.Columns != 5 || h.Unit != "samples" || h.Start != 1700000000 {
		t.Fatalf("got rows %d columns %d unit %q start %f; want 50, 5, samples, 1700000000", h.Rows, h.Columns, h.Unit, h.Start)
	}
	for c := range h.Values {
		for r, v := range h.Values[c] {
			want := int64(0)
			if (c == 2 || c == 3) && r < 10 {
				want = 4
			}
			if v != want {
				t.Errorf("cell [%d][%d] = %d, want %d", c, r, v, want)
			}
		}
	}
	// Without the comm filter the cold process fills offsets 500-900 ms.
	code, body, _ = hmGet(t, base+"/api/captures/"+id+"/heatmap.json?rows=10")
	if err := json.Unmarshal([]byte(body), &h); code != http.StatusOK || err != nil {
		t.Fatalf("rows=10: got %d %v", code, err)
	}
	if h.Rows != 10 || h.Values[0][5] != 20 || h.Values[0][0] != 0 || h.Values[2][0] != 20 {
		t.Errorf("rows=10: got rows %d, column 0 %v, column 2 %v", h.Rows, h.Values[0], h.Values[2])
	}
}

func TestHeatmapJSONErrors(t *testing.T) {
	base, id, noTS := hmServer(t)
	tests := []struct {
		name, path string
		code       int
		want       string
	}{
		{"rows", "/api/captures/" + id + "/heatmap.json?rows=7", 400, "allowed values are 10, 25, 49, 50, 99, 100"},
		{"unknown parameter", "/api/captures/" + id + "/heatmap.json?colour=red", 400, "allowed are rows"},
		{"bad pid", "/api/captures/" + id + "/heatmap.json?pid=x", 400, "pid"},
		{"bad idle", "/api/captures/" + id + "/heatmap.json?idle=maybe", 400, "include, exclude"},
		{"no timestamps", "/api/captures/" + noTS + "/heatmap.json", 400, "this capture has no timestamps"},
		{"unknown capture", "/api/captures/20200101-000000-00000000/heatmap.json", 404, "not found"},
		{"diff without base", "/api/diff.svg?compare=" + id, 400, "base is missing"},
		{"diff unknown compare", "/api/diff.svg?base=" + id + "&compare=20200101-000000-00000000", 404, "not found"},
		{"diff bad range", "/api/diff.svg?base=" + id + "&compare=" + id + "&compare_from=3&compare_to=2", 400, "compare_from"},
		{"diff range outside", "/api/diff.svg?base=" + id + "&compare=" + id + "&base_from=50&base_to=60", 400, "valid interval is 0..5"},
		{"diff no timestamps", "/api/diff.svg?base=" + noTS + "&compare=" + id + "&base_from=1&base_to=2", 400, "no timestamps"},
		{"diff unknown parameter", "/api/diff.svg?base=" + id + "&compare=" + id + "&from=1", 400, "base_from"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			code, body, _ := hmGet(t, base+tt.path)
			var e struct{ Error string }
			_ = json.Unmarshal([]byte(body), &e)
			if code != tt.code || !strings.Contains(e.Error, tt.want) {
				t.Errorf("got %d %s, want %d with %q", code, body, tt.code, tt.want)
			}
		})
	}
}

func TestRangeAndDiffGraphs(t *testing.T) {
	base, id, _ := hmServer(t)
	code, body, _ := hmGet(t, base+"/api/captures/"+id+"/flamegraph.svg?from=2&to=2.2")
	if code != http.StatusOK || !strings.Contains(body, "hot_loop") || strings.Contains(body, "cold_loop") {
		t.Errorf("range 2-2.2: got %d, hot_loop %v, cold_loop %v; want only hot_loop", code, strings.Contains(body, "hot_loop"), strings.Contains(body, "cold_loop"))
	}
	code, body, hdr := hmGet(t, base+"/api/diff.svg?base="+id+"&compare="+id+"&base_from=2&base_to=2.2&compare_from=2&compare_to=3")
	if code != http.StatusOK || hdr.Get("Content-Type") != "image/svg+xml" {
		t.Fatalf("diff: got %d %s: %.300s", code, hdr.Get("Content-Type"), body)
	}
	if !strings.Contains(body, "cold_loop") || !strings.Contains(body, "hot_loop") || !strings.Contains(hdr.Get("Content-Security-Policy"), "nonce-") {
		t.Errorf("diff of 2-2.2 against 2-3 should draw both functions under a nonce CSP: hot %v cold %v CSP %q",
			strings.Contains(body, "hot_loop"), strings.Contains(body, "cold_loop"), hdr.Get("Content-Security-Policy"))
	}
	// widths=base draws the base side (2-2.2 s: hot_loop only).
	code, body, _ = hmGet(t, base+"/api/diff.svg?base="+id+"&compare="+id+"&base_from=2&base_to=2.2&compare_from=2&compare_to=3&widths=base&palette=io")
	if code != http.StatusOK || !strings.Contains(body, "hot_loop") || strings.Contains(body, ">cold_loop<") {
		t.Errorf("diff with widths=base: got %d, hot_loop %v, cold_loop drawn %v", code, strings.Contains(body, "hot_loop"), strings.Contains(body, ">cold_loop<"))
	}
}

func TestCapturePageLoadsHeatmap(t *testing.T) {
	base, id, _ := hmServer(t)
	code, body, _ := hmGet(t, base+"/captures/"+id)
	if code != http.StatusOK || !strings.Contains(body, `id="heatmap"`) || !strings.Contains(body, `src="/assets/workspace.js"`) {
		t.Fatalf("capture page: got %d, heatmap section or script missing", code)
	}
	// The workspace module imports the heatmap's.
	for _, asset := range []string{"/assets/workspace.js", "/assets/heatmap.js", "/assets/flame.js", "/assets/heatmap.css"} {
		if code, body, _ := hmGet(t, base+asset); code != http.StatusOK || len(body) < 100 {
			t.Errorf("%s: got %d, %d bytes", asset, code, len(body))
		}
	}
}
