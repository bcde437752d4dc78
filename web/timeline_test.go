package web

import (
	"encoding/json"
	"math"
	"net/http"
	"reflect"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/scorch-dev/scorch/capture"
	"github.com/scorch-dev/scorch/heatmap"
	"github.com/scorch-dev/scorch/timeline"
)

// tlServer serves the phased cpu capture of the heatmap tests (hot_loop in
// thread 100 at 2-2.2 s and 3-3.2 s, cold_loop in thread 200 at 0.5-0.9 s
// of every second, one sample every 5 ms), an off-CPU capture and a
// capture without timestamps.
func tlServer(t *testing.T) (base, cpuID, offID, noTSID string, s *Server) {
	t.Helper()
	base, cpuID, noTSID = hmServer(t)
	s = testServers[base]
	offID = hmStore(t, s, tlOffCPU())
	return base, cpuID, offID, noTSID, s
}

// tlOffCPU: 2 s; threads 1-3 of app blocked in read for the whole first
// second; thread 4 blocked 0-0.5 s, then 0.5-0.6 s in the run queue.
func tlOffCPU() *capture.Capture {
	b := capture.NewBuilder(capture.Meta{Type: capture.OffCPU, Start: time.Unix(1700000000, 0), Duration: 2 * time.Second, Timestamps: true, Stats: capture.Stats{Lost: 7}})
	app := b.Frame(capture.Frame{Name: "app", Kind: capture.KindProcess})
	main := b.Frame(capture.Frame{Name: "main"})
	read := b.Frame(capture.Frame{Name: "read"})
	blocked := b.Frame(capture.Frame{Name: capture.FrameBlocked, Kind: capture.KindSynthetic})
	runq := b.Frame(capture.Frame{Name: capture.FrameRunqueue, Kind: capture.KindSynthetic})
	bst, rst := b.Stack([]uint32{app, main, read, blocked}), b.Stack([]uint32{app, main, read, runq})
	sec := int64(time.Second)
	for tid := uint32(1); tid <= 3; tid++ {
		b.Add(capture.Event{Time: 0, Value: sec, Stack: bst, PID: 1, TID: tid})
	}
	b.Add(capture.Event{Time: 0, Value: sec / 2, Stack: bst, PID: 1, TID: 4})
	b.Add(capture.Event{Time: sec / 2, Value: sec / 10, Stack: rst, PID: 1, TID: 4})
	return b.Capture()
}

func tlGet(t *testing.T, url string, into any) (int, string) {
	t.Helper()
	code, body, hdr := hmGet(t, url)
	if code == http.StatusOK {
		if !strings.HasPrefix(hdr.Get("Content-Type"), "application/json") {
			t.Errorf("%s: content type %s", url, hdr.Get("Content-Type"))
		}
		if err := json.Unmarshal([]byte(body), into); err != nil {
			t.Fatalf("%s: %v: %.200s", url, err, body)
		}
	}
	return code, body
}

func TestThreadsJSON(t *testing.T) {
	base, id, offID, _, _ := tlServer(t)
	api := base + "/api/captures/" + id + "/threads.json"
	var th timeline.Threads
	if code, body := tlGet(t, api+"?bucket=1", &th); code != http.StatusOK {
		t.Fatalf("got %d %s", code, body)
	}
	// Thread 200 has 80 samples a second (0.5-0.9 s every 5 ms), 100 has
	// 40 in seconds 2 and 3; busiest first.
	if th.Start != 1700000000 || th.Bucket != 1 || th.Buckets != 5 || th.Count != 2 || len(th.Threads) != 2 || th.Unit != "samples" {
		t.Fatalf("got %+v", th)
	}
	want := []timeline.Track{
		{PID: 200, TID: 200, Comm: "other", Total: 400, Series: []int64{80, 80, 80, 80, 80}},
		{PID: 100, TID: 100, Comm: "app", Total: 80, Series: []int64{0, 0, 40, 40, 0}},
	}
	if !reflect.DeepEqual(th.Threads, want) || th.Other != nil || th.Total != 480 || !reflect.DeepEqual(th.Series, []int64{80, 80, 120, 120, 80}) {
		t.Errorf("tracks\n got %+v other %+v total %d %v\nwant %+v", th.Threads, th.Other, th.Total, th.Series, want)
	}

	// The default bucket: 5 s gives 20 ms buckets, 250 of them; the
	// first cold_loop sample (0.501 s) is in bucket 25.
	if code, body := tlGet(t, api, &th); code != http.StatusOK || th.Bucket != 0.02 || th.Buckets != 250 || th.Threads[0].Series[24] != 0 || th.Threads[0].Series[25] != 4 {
		t.Errorf("default bucket: got %d %g × %d: %.200s", code, th.Bucket, th.Buckets, body)
	}

	for _, tt := range []struct {
		name, query string
		want        map[uint32][]int64
	}{
		{"comm", "bucket=1&comm=app", map[uint32][]int64{100: {0, 0, 40, 40, 0}}},
		{"tid", "bucket=1&tid=200", map[uint32][]int64{200: {80, 80, 80, 80, 80}}},
		{"focus", "bucket=1&t=focus:hot_loop", map[uint32][]int64{100: {0, 0, 40, 40, 0}}},
		{"drop", "bucket=1&t=drop:hot_loop", map[uint32][]int64{200: {80, 80, 80, 80, 80}}},
		{"several ranges", "bucket=1&from=0&to=1&from=3&to=4", map[uint32][]int64{100: {0, 0, 0, 40}, 200: {80, 0, 0, 80}}},
		{"range halves", "bucket=0.5&from=2.5&to=3.5", map[uint32][]int64{100: {0, 40}, 200: {80, 0}}},
		{"limit", "bucket=1&limit=1", map[uint32][]int64{200: {80, 80, 80, 80, 80}}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			var th timeline.Threads
			if code, body := tlGet(t, api+"?"+tt.query, &th); code != http.StatusOK {
				t.Fatalf("got %d %s", code, body)
			}
			got := map[uint32][]int64{}
			for _, tr := range th.Threads {
				got[tr.TID] = tr.Series
			}
			if !reflect.DeepEqual(got, tt.want) {
				t.Errorf("got %v, want %v", got, tt.want)
			}
		})
	}
	if code, _ := tlGet(t, api+"?bucket=1&limit=1", &th); code != 200 || th.Other == nil || th.Other.Threads != 1 || th.Other.Total != 80 {
		t.Errorf("limit=1: other %+v, want thread 100's 80 samples", th.Other)
	}

	// Off-CPU: blocked and runqueue beside series; lost known only as a total.
	if code, body := tlGet(t, base+"/api/captures/"+offID+"/threads.json?bucket=0.25", &th); code != http.StatusOK {
		t.Fatalf("offcpu: got %d %s", code, body)
	}
	q := int64(250 * time.Millisecond)
	t4 := th.Threads[3]
	if !th.Offcpu || th.Unit != "ns" || t4.TID != 4 || th.Lost.Total != 7 || th.Lost.Series != nil ||
		!reflect.DeepEqual(t4.Blocked, []int64{q, q, 0, 0, 0, 0, 0, 0}) ||
		!reflect.DeepEqual(t4.Runqueue, []int64{0, 0, q * 2 / 5, 0, 0, 0, 0, 0}) ||
		!reflect.DeepEqual(t4.Series, []int64{q, q, q * 2 / 5, 0, 0, 0, 0, 0}) {
		t.Errorf("offcpu thread 4: %+v (lost %+v)", t4, th.Lost)
	}

	// norm=threads: the average number of threads off CPU per bucket.
	var pt timeline.ThreadsOf[float64]
	if code, body := tlGet(t, base+"/api/captures/"+offID+"/threads.json?bucket=0.25&norm=threads&by=process", &pt); code != http.StatusOK {
		t.Fatalf("norm=threads: got %d %s", code, body)
	}
	if p := pt.Threads[0]; pt.Unit != "threads" || p.PID != 1 || p.Threads != 4 || p.Total != 1.8 || pt.Total != 1.8 ||
		!reflect.DeepEqual(p.Series, []float64{4, 4, 3.4, 3, 0, 0, 0, 0}) || !reflect.DeepEqual(p.Runqueue, []float64{0, 0, 0.4, 0, 0, 0, 0, 0}) {
		t.Errorf("norm=threads by process: %+v (total %g)", p, pt.Total)
	}
	if code, _ := tlGet(t, base+"/api/captures/"+offID+"/threads.json?bucket=0.25&norm=threads&tid=4", &pt); code != http.StatusOK ||
		!reflect.DeepEqual(pt.Threads[0].Blocked, []float64{1, 1, 0, 0, 0, 0, 0, 0}) || pt.Threads[0].Total != 0.3 {
		t.Errorf("norm=threads thread 4: %+v", pt.Threads)
	}

	// A second request is answered from the view cache.
	hits := func() float64 {
		_, body, _ := hmGet(t, base+"/metrics")
		for _, line := range strings.Split(body, "\n") {
			if v, ok := strings.CutPrefix(line, "scorch_render_cache_hits_total "); ok {
				f, _ := strconv.ParseFloat(v, 64)
				return f
			}
		}
		return -1
	}
	before := hits()
	if code, _ := tlGet(t, api+"?bucket=1", &th); code != 200 || hits() != before+1 {
		t.Errorf("repeated request: %d, cache hits %g then %g", code, before, hits())
	}
}

func TestStackchartJSON(t *testing.T) {
	base, id, offID, _, _ := tlServer(t)
	var sc timeline.StackChart
	api := base + "/api/captures/" + id + "/stackchart.json"
	// Thread 100 over 1.9-3.3 s at 14 px (100 ms each): hot_loop from its
	// first sample (2.001 s) to the end of its last of each phase (2.196 s
	// plus 5 ms: without hz a sample lasts the median gap), 2.2-3.0 empty.
	if code, body := tlGet(t, api+"?tid=100&from=1.9&to=3.3&width=14", &sc); code != http.StatusOK {
		t.Fatalf("got %d %s", code, body)
	}
	type run struct {
		Depth      int
		Name       string
		Start, End float64
	}
	var got []run
	for _, r := range sc.Runs {
		got = append(got, run{r.Depth, r.Name, math.Round(r.Start*1e4) / 1e4, math.Round(r.End*1e4) / 1e4})
	}
	want := []run{
		{0, "app", 2.001, 2.201}, {1, "main", 2.001, 2.201}, {2, "hot_loop", 2.001, 2.201},
		{0, "app", 3.001, 3.201}, {1, "main", 3.001, 3.201}, {2, "hot_loop", 3.001, 3.201},
	}
	if !reflect.DeepEqual(got, want) || sc.From != 1.9 || sc.To != 3.3 || sc.Width != 14 || sc.PID != 100 || sc.Comm != "app" || sc.Samples != 80 {
		t.Errorf("runs\n got %v\nwant %v\n(%+v)", got, want, sc)
	}
	// Transforms name frames as the flame graph does.
	if code, body := tlGet(t, api+"?tid=100&t=merge:main", &sc); code != http.StatusOK || len(sc.Runs) != 4 || sc.Runs[1].Name != "hot_loop" || sc.Runs[1].Depth != 1 {
		t.Errorf("merge:main: got %d %.300s", code, body)
	}
	// Off-CPU intervals.
	if code, body := tlGet(t, base+"/api/captures/"+offID+"/stackchart.json?tid=4", &sc); code != http.StatusOK || len(sc.Runs) != 5 ||
		sc.Runs[4].Name != "[runqueue]" || sc.Runs[4].Start != 0.5 || sc.Runs[4].End != 0.6 || sc.Runs[0].End != 0.6 {
		t.Errorf("offcpu: got %d %.400s", code, body)
	}
}

func TestHeatmapNormThreadsAndFocus(t *testing.T) {
	base, id, offID, _, _ := tlServer(t)
	var h heatmap.Threads
	if code, body := tlGet(t, base+"/api/captures/"+offID+"/heatmap.json?norm=threads&rows=10", &h); code != http.StatusOK {
		t.Fatalf("got %d %s", code, body)
	}
	// Second 0: 3 threads blocked all along, thread 4 too until 0.5 s,
	// then in the run queue until 0.6 s; second 1: nothing.
	want := []float64{4, 4, 4, 4, 4, 4, 3, 3, 3, 3}
	if h.Unit != "threads" || h.Columns != 2 || !reflect.DeepEqual(h.Values[0], want) || h.Max != 4 || !reflect.DeepEqual(h.Values[1], make([]float64, 10)) {
		t.Errorf("norm=threads: got %+v, column 0 want %v", h, want)
	}
	// Blocked only: the run queue dropped.
	if code, body := tlGet(t, base+"/api/captures/"+offID+"/heatmap.json?norm=threads&rows=10&t=drop:[runqueue]", &h); code != http.StatusOK || h.Values[0][5] != 3 || h.Values[0][4] != 4 {
		t.Errorf("drop:[runqueue]: got %d %.300s", code, body)
	}
	// Default (sum): ns, as before.
	var hs heatmap.Heatmap
	if code, _ := tlGet(t, base+"/api/captures/"+offID+"/heatmap.json?rows=10", &hs); code != http.StatusOK || hs.Unit != "ns" || hs.Values[0][0] != 4*int64(100*time.Millisecond) {
		t.Errorf("sum: got %+v", hs)
	}
	// t=focus:F: only the cells where F ran.
	if code, body := tlGet(t, base+"/api/captures/"+id+"/heatmap.json?rows=10&t=focus:hot_loop", &hs); code != http.StatusOK {
		t.Fatalf("focus: got %d %s", code, body)
	}
	for c := range hs.Values {
		for r, v := range hs.Values[c] {
			want := int64(0)
			if (c == 2 || c == 3) && r < 2 {
				want = 20
			}
			if v != want {
				t.Errorf("focus:hot_loop cell [%d][%d] = %d, want %d", c, r, v, want)
			}
		}
	}
}

func TestSeveralRangesOnDataRoutes(t *testing.T) {
	base, id, _, _, _ := tlServer(t)
	// 0.5-0.9 s holds cold_loop only, 2-2.2 hot_loop only: both ranges
	// give both, each with its own samples.
	var fns struct {
		Total     int64
		Functions []struct {
			Name string
			Self int64
		}
	}
	if code, body := tlGet(t, base+"/api/captures/"+id+"/functions.json?from=0.5&to=0.9&from=2&to=2.2", &fns); code != http.StatusOK {
		t.Fatalf("got %d %s", code, body)
	}
	self := map[string]int64{}
	for _, f := range fns.Functions {
		self[f.Name] = f.Self
	}
	if fns.Total != 120 || self["cold_loop"] != 80 || self["hot_loop"] != 40 {
		t.Errorf("functions of two ranges: total %d, %v; want 120: cold_loop 80, hot_loop 40", fns.Total, self)
	}
	// The graph and the sandwich follow the same ranges.
	var tree struct {
		Total int64
		Tree  struct{ Value int64 }
	}
	if code, body := tlGet(t, base+"/api/captures/"+id+"/tree.json?from=0.5&to=0.9&from=2&to=2.2", &tree); code != http.StatusOK || tree.Total != 120 || tree.Tree.Value != 120 {
		t.Errorf("tree of two ranges: %d total %d root %d: %.200s", code, tree.Total, tree.Tree.Value, body)
	}
	var sw struct{ Self, Total int64 }
	if code, body := tlGet(t, base+"/api/captures/"+id+"/sandwich.json?fn=hot_loop&from=0&to=1&from=2&to=2.1&from=3.1&to=3.2", &sw); code != http.StatusOK || sw.Self != 40 || sw.Total != 40 {
		t.Errorf("sandwich of three ranges: %d self %d total %d: %.200s", code, sw.Self, sw.Total, body)
	}
	code, body, _ := hmGet(t, base+"/api/captures/"+id+"/folded?from=2&to=2.2&from=3&to=3.1")
	if code != http.StatusOK || strings.TrimSpace(body) != "app;main;hot_loop 60" {
		t.Errorf("folded of two ranges: got %d %q", code, body)
	}
	code, body, _ = hmGet(t, base+"/api/captures/"+id+"/flamegraph.svg?from=2&to=2.2&from=3&to=3.1")
	if code != http.StatusOK || !strings.Contains(body, "2 s to 2.2 s, 3 s to 3.1 s") {
		t.Errorf("flame graph of two ranges: got %d, range text missing", code)
	}
	code, body, _ = hmGet(t, base+"/api/diff/functions.json?base="+id+"&compare="+id+"&base_from=2&base_to=2.1&base_from=3&base_to=3.1&compare_from=0&compare_to=1")
	if code != http.StatusOK || !strings.Contains(body, `"base_total":40`) {
		t.Errorf("diff with two base ranges: got %d %.300s", code, body)
	}
}

func TestTimelineErrors(t *testing.T) {
	base, id, offID, noTS, _ := tlServer(t)
	c := "/api/captures/" + id
	for _, tt := range []struct {
		name, path string
		code       int
		want       string
	}{
		{"threads no timestamps", "/api/captures/" + noTS + "/threads.json", 400, "this capture has no timestamps"},
		{"stackchart no timestamps", "/api/captures/" + noTS + "/stackchart.json?tid=1", 400, "this capture has no timestamps"},
		{"bucket", c + "/threads.json?bucket=abc", 400, `bucket "abc" is not valid: give a number of seconds > 0`},
		{"bucket zero", c + "/threads.json?bucket=0", 400, "bucket"},
		{"bucket too small", c + "/threads.json?bucket=0.0001", 400, "at most 10000 are allowed, give bucket >= 0.0005"},
		{"limit", c + "/threads.json?limit=0", 400, "limit \"0\" is out of range: allowed 1..10000"},
		{"by", c + "/threads.json?by=cpu", 400, "allowed values are thread, process"},
		{"unknown parameter", c + "/threads.json?buckets=3", 400, "unknown parameter \"buckets\": allowed are from, to, pid, tid, comm, cpu, idle, view, t, reverse, bucket, limit, by, norm"},
		{"transform", c + "/threads.json?t=zoom:x", 400, "allowed kinds are focus, merge, drop, rec, lib"},
		{"unpaired ranges", c + "/threads.json?from=1&to=2&from=3", 400, "from is given 2 times and to 1 times"},
		{"range outside", c + "/threads.json?from=10&to=11", 400, "valid interval is 0..5"},
		{"tid missing", c + "/stackchart.json", 400, "tid must name one thread"},
		{"two tids", c + "/stackchart.json?tid=100,200", 400, "tid must name one thread"},
		{"width", c + "/stackchart.json?tid=100&width=0", 400, "width \"0\" is out of range: allowed 1..10000"},
		{"stackchart unknown parameter", c + "/stackchart.json?tid=100&bucket=1", 400, "allowed are"},
		{"unknown capture", "/api/captures/20200101-000000-00000000/threads.json", 404, "not found"},
		{"norm", c + "/heatmap.json?norm=avg", 400, "allowed values are sum, threads"},
		{"threads norm", c + "/threads.json?norm=avg", 400, "norm \"avg\" is not supported: allowed values are sum, threads"},
		{"threads norm of cpu", c + "/threads.json?norm=threads", 400, "norm threads applies to off-CPU types"},
		{"norm threads of cpu", c + "/heatmap.json?norm=threads", 400, "norm threads applies to off-CPU types"},
		{"norm threads no timestamps", "/api/captures/" + noTS + "/heatmap.json?norm=threads", 400, "off-CPU"},
		{"offcpu ok", "/api/captures/" + offID + "/heatmap.json?norm=sum", 200, ""},
	} {
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

// The heatmap and the tracks of a view whose transforms keep every event
// are the untransformed view's (the server answers those, cached), and
// those of one that drops or empties stacks are not.
func TestEventAnswersThroughTransforms(t *testing.T) {
	base, cpuID, _, _, _ := tlServer(t)
	routes := []string{"heatmap.json?rows=50", "threads.json?by=thread&limit=200", "threads.json?by=process&limit=8"}
	get := func(path string) string {
		t.Helper()
		code, body, _ := hmGet(t, base+"/api/captures/"+cpuID+"/"+path)
		if code != http.StatusOK {
			t.Fatalf("%s: %d %s", path, code, body)
		}
		return body
	}
	tests := []struct {
		ts   string // t values, joined by &
		same bool   // the answers are the untransformed ones
	}{
		{"t=merge:main", true},
		{"t=merge:main&t=rec:hot_loop", true},
		{"t=merge:app&t=merge:main", true}, // hot_loop is left
		{"t=merge:nothing", true},
		{"t=merge:app&t=merge:main&t=merge:hot_loop", false}, // the hot stack is emptied: its samples go
		{"t=drop:hot_loop", false},
		{"t=focus:cold_loop", false},
	}
	misses := func() string {
		_, body, _ := hmGet(t, base+"/metrics")
		m := regexp.MustCompile(`(?m)^scorch_render_cache_misses_total (\S+)`).FindStringSubmatch(body)
		if m == nil {
			t.Fatal("no scorch_render_cache_misses_total in /metrics")
		}
		return m[1]
	}
	for _, r := range routes {
		plain := get(r)
		for _, tt := range tests {
			m0 := misses()
			got := get(r + "&" + tt.ts)
			if rendered := misses() != m0; rendered == tt.same {
				t.Errorf("%s&%s: rendered anew: %v, want %v (the untransformed answer is cached)", r, tt.ts, rendered, !tt.same)
			}
			if (got == plain) != tt.same {
				t.Errorf("%s&%s: the same as without transforms: %v, want %v", r, tt.ts, got == plain, tt.same)
			}
		}
		// A comm filter reads the transformed frames: still right.
		if a, b := get(r+"&comm=app"), get(r+"&comm=app&t=merge:main"); a != b {
			t.Errorf("%s: comm=app with merge:main differs from comm=app", r)
		}
	}
	// What a drop leaves: only cold_loop's thread.
	var th timeline.Threads
	tlGet(t, base+"/api/captures/"+cpuID+"/threads.json?t=drop:hot_loop", &th)
	if len(th.Threads) != 1 || th.Threads[0].TID != 200 {
		t.Errorf("threads after drop:hot_loop: %+v, want thread 200 only", th.Threads)
	}
}
