package timeline

import (
	"net/url"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/scorch-dev/scorch/capture"
)

const ms = int64(time.Millisecond)

// builder adds events on stacks written as folded lines.
type builder struct {
	b *capture.Builder
}

func newBuilder(typ capture.Type, d time.Duration, hz int) *builder {
	return &builder{capture.NewBuilder(capture.Meta{Type: typ, Start: time.Unix(1700000000, 0), Duration: d, Timestamps: true, Params: capture.Params{Hz: hz}})}
}

func (b *builder) stack(folded string) uint32 {
	var ids []uint32
	for i, name := range strings.Split(folded, ";") {
		f := capture.Frame{Name: name, Module: "/bin/app"}
		switch {
		case i == 0:
			f = capture.Frame{Name: name, Kind: capture.KindProcess}
		case strings.HasPrefix(name, "["):
			f = capture.Frame{Name: name, Kind: capture.KindSynthetic}
		}
		ids = append(ids, b.b.Frame(f))
	}
	return b.b.Stack(ids)
}

func (b *builder) add(pid, tid uint32, t, v int64, folded string) {
	b.b.Add(capture.Event{Time: t, Value: v, Stack: b.stack(folded), PID: pid, TID: tid})
}

func query(t *testing.T, s string) (capture.Query, []capture.Transform) {
	t.Helper()
	v, err := url.ParseQuery(s)
	if err != nil {
		t.Fatal(err)
	}
	q, err := capture.ParseQuery(v)
	if err != nil {
		t.Fatal(err)
	}
	ts, err := capture.ParseTransforms(v["t"])
	if err != nil {
		t.Fatal(err)
	}
	return q, ts
}

// cpuCapture: 1 s at 100 Hz; app (pid 1) threads 11 and 12, db (pid 2)
// thread 21, and idle samples.
func cpuCapture() *capture.Capture {
	b := newBuilder(capture.CPU, time.Second, 100)
	for _, t := range []int64{0, 50, 100, 299, 950} { // 100 ms is bucket 1's first instant
		b.add(1, 11, t*ms, 1, "app;main;spin")
	}
	for i := 0; i < 3; i++ {
		b.add(1, 12, 500*ms+int64(i)*ms, 1, "app;worker;hash")
	}
	b.add(2, 21, 700*ms, 1, "db;query")
	b.b.Add(capture.Event{Time: 10 * ms, Value: 1, Stack: b.stack("swapper;cpu_idle"), Flags: capture.FlagIdle})
	return b.b.Capture()
}

type track struct {
	pid, tid uint32
	comm     string
	series   []int64
}

func tracks(t *Threads) []track {
	var out []track
	for _, tr := range t.Threads {
		out = append(out, track{tr.PID, tr.TID, tr.Comm, tr.Series})
	}
	return out
}

func z(n int, kv ...int64) []int64 {
	s := make([]int64, n)
	for i := 0; i < len(kv); i += 2 {
		s[kv[i]] = kv[i+1]
	}
	return s
}

func TestThreadsSeries(t *testing.T) {
	c := cpuCapture()
	for _, tt := range []struct {
		name, query string
		o           ThreadsOptions
		buckets     int
		want        []track
		other       *track
	}{
		{"per thread, 100 ms buckets", "", ThreadsOptions{Bucket: 0.1}, 10, []track{
			{1, 11, "app", z(10, 0, 2, 1, 1, 2, 1, 9, 1)},
			{1, 12, "app", z(10, 5, 3)},
			{2, 21, "db", z(10, 7, 1)},
		}, nil},
		{"limit groups the rest", "", ThreadsOptions{Bucket: 0.1, Limit: 1}, 10, []track{
			{1, 11, "app", z(10, 0, 2, 1, 1, 2, 1, 9, 1)},
		}, &track{0, 0, "other", z(10, 5, 3, 7, 1)}},
		{"per process", "", ThreadsOptions{Bucket: 0.25, By: "process"}, 4, []track{
			{1, 0, "app", z(4, 0, 3, 1, 1, 2, 3, 3, 1)},
			{2, 0, "db", z(4, 2, 1)},
		}, nil},
		{"idle included", "idle=include", ThreadsOptions{Bucket: 0.5}, 2, []track{
			{1, 11, "app", z(2, 0, 4, 1, 1)},
			{1, 12, "app", z(2, 1, 3)},
			{0, 0, "swapper", z(2, 0, 1)},
			{2, 21, "db", z(2, 1, 1)},
		}, nil},
		{"comm filter", "comm=db", ThreadsOptions{Bucket: 0.5}, 2, []track{{2, 21, "db", z(2, 1, 1)}}, nil},
		{"pid filter", "pid=1&tid=12", ThreadsOptions{Bucket: 0.5}, 2, []track{{1, 12, "app", z(2, 1, 3)}}, nil},
		{"focus transform", "t=focus:hash", ThreadsOptions{Bucket: 0.5}, 2, []track{{1, 12, "app", z(2, 1, 3)}}, nil},
		{"drop transform", "t=drop:spin", ThreadsOptions{Bucket: 0.5}, 2, []track{{1, 12, "app", z(2, 1, 3)}, {2, 21, "db", z(2, 1, 1)}}, nil},
		// The buckets cover the hull of the ranges; outside them is zero.
		{"several ranges", "from=0&to=0.1&from=0.5&to=0.6", ThreadsOptions{Bucket: 0.1}, 6, []track{
			{1, 12, "app", z(6, 5, 3)},
			{1, 11, "app", z(6, 0, 2)},
		}, nil},
		{"one range", "from=0.25&to=0.75", ThreadsOptions{Bucket: 0.1}, 5, []track{
			{1, 12, "app", z(5, 2, 3)},
			{1, 11, "app", z(5, 0, 1)},
			{2, 21, "db", z(5, 4, 1)},
		}, nil},
	} {
		t.Run(tt.name, func(t *testing.T) {
			q, ts := query(t, tt.query)
			got, err := ComputeThreads(c, c.Transform(ts), q, tt.o)
			if err != nil {
				t.Fatal(err)
			}
			if got.Buckets != tt.buckets || len(got.Series) != tt.buckets {
				t.Errorf("buckets %d (series %d), want %d", got.Buckets, len(got.Series), tt.buckets)
			}
			if g := tracks(got); !reflect.DeepEqual(g, tt.want) {
				t.Errorf("threads\n got %v\nwant %v", g, tt.want)
			}
			var all []int64 = make([]int64, tt.buckets)
			var total int64
			for _, tr := range append(got.Threads, *orEmpty(got.Other)) {
				for i, v := range tr.Series {
					all[i] += v
				}
				if s := sum(tr.Series); s != tr.Total {
					t.Errorf("%d: total %d, series sum %d", tr.TID, tr.Total, s)
				}
				total += tr.Total
			}
			if !reflect.DeepEqual(all, got.Series) || total != got.Total {
				t.Errorf("total series %v (%d), want the tracks' sum %v (%d)", got.Series, got.Total, all, total)
			}
			if tt.other == nil {
				if got.Other != nil {
					t.Errorf("other %+v, want none", got.Other)
				}
			} else if got.Other == nil || got.Other.Comm != tt.other.comm || !reflect.DeepEqual(got.Other.Series, tt.other.series) || got.Other.Threads != 2 {
				t.Errorf("other %+v, want %v of 2 threads", got.Other, tt.other)
			}
			if got.Start != 1700000000 || got.Unit != "samples" || got.Offcpu || got.Lost.Series != nil {
				t.Errorf("start %g unit %s offcpu %v lost %v", got.Start, got.Unit, got.Offcpu, got.Lost)
			}
		})
	}
}

func orEmpty(t *Track) *Track {
	if t == nil {
		return &Track{}
	}
	return t
}

func TestThreadsOffCPU(t *testing.T) {
	b := newBuilder(capture.OffCPU, time.Second, 0)
	b.add(1, 11, 50*ms, 200*ms, "app;main;read;[blocked]")   // 50..250 ms
	b.add(1, 11, 250*ms, 20*ms, "app;main;read;[runqueue]")  // 250..270 ms
	b.add(1, 12, 900*ms, 300*ms, "app;main;sleep;[blocked]") // past the 1 s duration: the timeline extends
	c := b.b.Capture()
	q, _ := query(t, "")
	got, err := ComputeThreads(c, c, q, ThreadsOptions{Bucket: 0.1})
	if err != nil {
		t.Fatal(err)
	}
	if got.Buckets != 12 || got.To != 1.2 || !got.Offcpu || got.Unit != "ns" {
		t.Fatalf("buckets %d to %g offcpu %v unit %s", got.Buckets, got.To, got.Offcpu, got.Unit)
	}
	if t12 := got.Threads[0]; t12.TID != 12 || t12.Total != 300*ms || !reflect.DeepEqual(t12.Blocked, t12.Series) || sum(t12.Runqueue) != 0 {
		t.Fatalf("first thread %+v, want 12 blocked 300 ms", t12)
	}
	t11 := got.Threads[1]
	if t11.TID != 11 || t11.Total != 220*ms {
		t.Fatalf("second thread %d total %d", t11.TID, t11.Total)
	}
	if want := z(12, 0, 50*ms, 1, 100*ms, 2, 50*ms); !reflect.DeepEqual(t11.Blocked, want) {
		t.Errorf("blocked %v, want %v", t11.Blocked, want)
	}
	if want := z(12, 2, 20*ms); !reflect.DeepEqual(t11.Runqueue, want) {
		t.Errorf("runqueue %v, want %v", t11.Runqueue, want)
	}
	if want := z(12, 0, 50*ms, 1, 100*ms, 2, 70*ms); !reflect.DeepEqual(t11.Series, want) {
		t.Errorf("series %v, want %v", t11.Series, want)
	}
	// A range cuts intervals at its ends; the run queue stays runqueue
	// when a transform merges the frame away.
	q, ts := query(t, "from=0.2&to=0.26&from=0.95&to=1.05&t=merge:[runqueue]")
	got, err = ComputeThreads(c, c.Transform(ts), q, ThreadsOptions{Bucket: 0.1})
	if err != nil {
		t.Fatal(err)
	}
	if got.Buckets != 9 || got.From != 0.2 {
		t.Fatalf("buckets %d from %g", got.Buckets, got.From)
	}
	byTID := map[uint32]Track{}
	for _, tr := range got.Threads {
		byTID[tr.TID] = tr
	}
	if want := z(9, 0, 50*ms); !reflect.DeepEqual(byTID[11].Blocked, want) {
		t.Errorf("ranged blocked %v, want %v", byTID[11].Blocked, want)
	}
	if want := z(9, 0, 10*ms); !reflect.DeepEqual(byTID[11].Runqueue, want) {
		t.Errorf("ranged runqueue %v, want %v", byTID[11].Runqueue, want)
	}
	if want := z(9, 7, 50*ms, 8, 50*ms); !reflect.DeepEqual(byTID[12].Blocked, want) {
		t.Errorf("ranged 12 blocked %v, want %v", byTID[12].Blocked, want)
	}
}

func TestThreadsDefaultBucket(t *testing.T) {
	for _, tt := range []struct {
		d      time.Duration
		bucket float64
		n      int
	}{
		{time.Second, 0.005, 200},
		{60 * time.Second, 0.2, 300},
		{100 * time.Millisecond, 0.001, 100},
		{10 * time.Hour, 120, 300},
		{100 * time.Hour, 1800, 200},
		{1000 * time.Hour, 12000, 300},
	} {
		b := newBuilder(capture.CPU, tt.d, 99)
		// A sample just after the end (taken as the capture stopped)
		// adds a bucket but does not change its length.
		b.add(1, 1, int64(tt.d)+1000, 1, "app;main")
		c := b.b.Capture()
		got, err := ComputeThreads(c, c, capture.Query{}, ThreadsOptions{})
		if err != nil {
			t.Fatal(err)
		}
		if got.Bucket != tt.bucket || got.Buckets != tt.n+1 || len(got.Threads) != 1 || got.Threads[0].Series[tt.n] != 1 {
			t.Errorf("%s: bucket %g × %d, want %g × %d", tt.d, got.Bucket, got.Buckets, tt.bucket, tt.n)
		}
	}
}

// An import whose events run far past its duration (an estimate) gets
// buckets for the time its events cover.
func TestThreadsDefaultBucketPastDuration(t *testing.T) {
	b := newBuilder(capture.CPU, time.Second, 99)
	b.add(1, 1, int64(time.Hour), 1, "app;main")
	c := b.b.Capture()
	got, err := ComputeThreads(c, c, capture.Query{}, ThreadsOptions{})
	if err != nil || got.Bucket != 15 || got.Buckets != 241 || got.Threads[0].Series[240] != 1 {
		t.Errorf("got %v, bucket %g × %d", err, got.Bucket, got.Buckets)
	}
}

func TestThreadsErrors(t *testing.T) {
	c := cpuCapture()
	for _, tt := range []struct {
		o    ThreadsOptions
		want string
	}{
		{ThreadsOptions{Bucket: 1e-6}, "at most 10000 are allowed, give bucket >= 0.0001"},
		{ThreadsOptions{Limit: MaxLimit + 1}, "limit 10001 is out of range: allowed 1..10000"},
		{ThreadsOptions{By: "cpu"}, `by "cpu" is not supported: allowed values are thread, process`},
	} {
		if _, err := ComputeThreads(c, c, capture.Query{}, tt.o); err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("%+v: got %v, want %q", tt.o, err, tt.want)
		}
	}
	noTS := capture.NewBuilder(capture.Meta{Type: capture.CPU, Duration: time.Second}).Capture()
	if _, err := ComputeThreads(noTS, noTS, capture.Query{}, ThreadsOptions{}); err != ErrNoTimestamps {
		t.Errorf("no timestamps: got %v", err)
	}
	if _, err := ComputeStackChart(noTS, noTS, capture.Query{}, StackOptions{TID: 1}); err != ErrNoTimestamps {
		t.Errorf("no timestamps: got %v", err)
	}
	if _, err := ComputeStackChart(c, c, capture.Query{}, StackOptions{TID: 1, Width: MaxWidth + 1}); err == nil || !strings.Contains(err.Error(), "allowed 1..10000") {
		t.Errorf("width: got %v", err)
	}
	for _, s := range []string{"0", "-1", "x", "NaN", "Inf"} {
		if _, err := ParseSeconds("bucket", s); err == nil || !strings.Contains(err.Error(), "bucket") {
			t.Errorf("bucket %s: got %v", s, err)
		}
	}
}

type run struct {
	depth      int
	name       string
	start, end int64 // ms
}

func runs(sc *StackChart) []run {
	var out []run
	for _, r := range sc.Runs {
		out = append(out, run{r.Depth, r.Name, int64(r.Start*1000 + 0.5), int64(r.End*1000 + 0.5)})
	}
	return out
}

func TestStackChart(t *testing.T) {
	b := newBuilder(capture.CPU, time.Second, 100) // 10 ms samples
	for _, tm := range []int64{0, 10, 20} {
		b.add(1, 11, tm*ms, 1, "app;main;a;x")
	}
	for _, tm := range []int64{30, 40} {
		b.add(1, 11, tm*ms, 1, "app;main;b")
	}
	b.add(1, 11, 100*ms, 1, "app;main;a")
	b.add(1, 12, 10*ms, 1, "app;other") // another thread
	b.add(1, 11, 500*ms, 1, "app;late") // after the window of most cases
	c := b.b.Capture()
	for _, tt := range []struct {
		name, query string
		width       int
		want        []run
	}{
		{"one pixel per sample", "tid=11&from=0&to=0.2", 20, []run{
			{0, "app", 0, 50}, {1, "main", 0, 50}, {2, "a", 0, 30}, {3, "x", 0, 30}, {2, "b", 30, 50},
			{0, "app", 100, 110}, {1, "main", 100, 110}, {2, "a", 100, 110},
		}},
		// 100 ms per pixel: the first pixel shows its longest stack, a;x,
		// and the 50 ms gap, narrower than a pixel, is not shown.
		{"bucketed to the width", "tid=11&from=0&to=0.2", 2, []run{
			{0, "app", 0, 110}, {1, "main", 0, 110}, {2, "a", 0, 110}, {3, "x", 0, 50},
		}},
		// 40 ms per pixel: the gap (50-100 ms) is wider than a pixel.
		{"gap wider than a pixel", "tid=11&from=0&to=0.2", 5, []run{
			{0, "app", 0, 50}, {1, "main", 0, 50}, {2, "a", 0, 40}, {3, "x", 0, 40}, {2, "b", 40, 50},
			{0, "app", 100, 110}, {1, "main", 100, 110}, {2, "a", 100, 110},
		}},
		// Samples are selected by their time, as in the flame graph: the
		// one at 10 ms is not in a range from 15 ms; the one at 30 ms is
		// cut at the window's end.
		{"window cuts runs", "tid=11&from=0.015&to=0.035", 20, []run{
			{0, "app", 20, 35}, {1, "main", 20, 35}, {2, "a", 20, 30}, {3, "x", 20, 30}, {2, "b", 30, 35},
		}},
		{"several ranges", "tid=11&from=0&to=0.01&from=0.04&to=0.12", 120, []run{
			{0, "app", 0, 10}, {1, "main", 0, 10}, {2, "a", 0, 10}, {3, "x", 0, 10},
			{0, "app", 40, 50}, {1, "main", 40, 50}, {2, "b", 40, 50},
			{0, "app", 100, 110}, {1, "main", 100, 110}, {2, "a", 100, 110},
		}},
		{"merge transform", "tid=11&to=0.2&t=merge:main", 20, []run{
			{0, "app", 0, 50}, {1, "a", 0, 30}, {2, "x", 0, 30}, {1, "b", 30, 50},
			{0, "app", 100, 110}, {1, "a", 100, 110},
		}},
		{"focus transform", "tid=11&to=0.2&t=focus:a", 20, []run{
			{0, "a", 0, 30}, {1, "x", 0, 30}, {0, "a", 100, 110},
		}},
		{"whole capture", "tid=11", 1000, []run{
			{0, "app", 0, 50}, {1, "main", 0, 50}, {2, "a", 0, 30}, {3, "x", 0, 30}, {2, "b", 30, 50},
			{0, "app", 100, 110}, {1, "main", 100, 110}, {2, "a", 100, 110},
			{0, "app", 500, 510}, {1, "late", 500, 510},
		}},
		{"other filter", "tid=11&comm=db", 100, nil},
	} {
		t.Run(tt.name, func(t *testing.T) {
			q, ts := query(t, tt.query)
			sc, err := ComputeStackChart(c, c.Transform(ts), q, StackOptions{TID: 11, Width: tt.width})
			if err != nil {
				t.Fatal(err)
			}
			if g := runs(sc); !reflect.DeepEqual(g, tt.want) {
				t.Errorf("runs\n got %v\nwant %v", g, tt.want)
			}
			if tt.want != nil && (sc.PID != 1 || sc.Comm != "app" || sc.TID != 11) {
				t.Errorf("pid %d comm %s tid %d", sc.PID, sc.Comm, sc.TID)
			}
		})
	}
}

func TestStackChartOffCPU(t *testing.T) {
	b := newBuilder(capture.OffCPU, time.Second, 0)
	b.add(1, 11, 100*ms, 300*ms, "app;main;read;[blocked]")
	b.add(1, 11, 400*ms, 50*ms, "app;main;read;[runqueue]")
	b.add(1, 11, 600*ms, 100*ms, "app;main;sleep;[blocked]")
	c := b.b.Capture()
	sc, err := ComputeStackChart(c, c, capture.Query{TIDs: []uint32{11}}, StackOptions{TID: 11, Width: 100})
	if err != nil {
		t.Fatal(err)
	}
	want := []run{
		{0, "app", 100, 450}, {1, "main", 100, 450}, {2, "read", 100, 450}, {3, "[blocked]", 100, 400}, {3, "[runqueue]", 400, 450},
		{0, "app", 600, 700}, {1, "main", 600, 700}, {2, "sleep", 600, 700}, {3, "[blocked]", 600, 700},
	}
	if g := runs(sc); !reflect.DeepEqual(g, want) {
		t.Errorf("runs\n got %v\nwant %v", g, want)
	}
	if sc.Depth != 4 || sc.Samples != 3 || sc.Unit != "ns" {
		t.Errorf("depth %d samples %d unit %s", sc.Depth, sc.Samples, sc.Unit)
	}
}

// A thread whose stack changes at every sample, deep, over many pixels:
// the answer stays within MaxRuns, keeping the widest runs.
func TestStackChartBounded(t *testing.T) {
	b := newBuilder(capture.CPU, 10*time.Second, 1000)
	for i := int64(0); i < 10000; i++ {
		frames := []string{"app"}
		for d := int64(0); d < 10; d++ {
			frames = append(frames, "f"+string(rune('a'+(i+d)%26)))
		}
		b.add(1, 11, i*ms, 1, strings.Join(frames, ";"))
	}
	c := b.b.Capture()
	sc, err := ComputeStackChart(c, c, capture.Query{TIDs: []uint32{11}}, StackOptions{TID: 11, Width: MaxWidth})
	if err != nil {
		t.Fatal(err)
	}
	if len(sc.Runs) != MaxRuns || sc.Dropped != 10000*10+1-MaxRuns {
		t.Fatalf("%d runs, %d dropped", len(sc.Runs), sc.Dropped)
	}
	if r := sc.Runs[0]; r.Depth != 0 || r.Name != "app" || r.Start != 0 || r.End != 10 {
		t.Errorf("first run %+v, want the root over the whole capture", r)
	}
}

func TestThreadsLost(t *testing.T) {
	c := cpuCapture()
	c.Meta.Stats.Lost = 14
	c.Meta.Stats.LostAt = []capture.LostSpan{
		{From: 100 * ms, To: 350 * ms, CPU: 0, Count: 10},
		{From: 400 * ms, To: 450 * ms, CPU: 1, Count: 3},
		{From: 600 * ms, To: 600 * ms, CPU: -1, Count: 1}, // empty: ignored
	}
	for _, tt := range []struct {
		query  string
		series []uint64
		spans  []LostSpan
	}{
		{"", []uint64{0, 4, 4, 2, 3, 0, 0, 0, 0, 0}, []LostSpan{{0.1, 0.35, 0, 10}, {0.4, 0.45, 1, 3}}},
		{"cpu=1", []uint64{0, 0, 0, 0, 3, 0, 0, 0, 0, 0}, []LostSpan{{0.4, 0.45, 1, 3}}},
		// Shared out by the time inside the window: 50 of 250 ms of the
		// first span, 20 of 50 ms of the second.
		{"from=0.3&to=0.42", []uint64{2, 1}, []LostSpan{{0.3, 0.35, 0, 10}, {0.4, 0.42, 1, 3}}},
		{"from=0&to=0.2&from=0.3&to=0.5", []uint64{0, 4, 0, 2, 3}, []LostSpan{{0.1, 0.35, 0, 10}, {0.4, 0.45, 1, 3}}},
	} {
		q, _ := query(t, tt.query)
		got, err := ComputeThreads(c, c, q, ThreadsOptions{Bucket: 0.1})
		if err != nil {
			t.Fatal(err)
		}
		if got.Lost.Total != 14 || !reflect.DeepEqual(got.Lost.Series, tt.series) || !reflect.DeepEqual(got.Lost.Spans, tt.spans) {
			t.Errorf("%s: lost %+v, want series %v spans %v", tt.query, got.Lost, tt.series, tt.spans)
		}
	}
	c.Meta.Stats.LostAt = nil
	got, _ := ComputeThreads(c, c, capture.Query{}, ThreadsOptions{})
	if got.Lost.Total != 14 || got.Lost.Series != nil || len(got.Lost.Spans) != 0 {
		t.Errorf("without times: %+v, want the total only", got.Lost)
	}
}

// Intervals that overlap (a hostile import: one thread blocked 20000 times
// over the whole capture) cost their buckets and columns once, not once
// per interval, and still add up.
func TestOverlappingIntervals(t *testing.T) {
	b := newBuilder(capture.OffCPU, 10*time.Second, 0)
	sec := int64(time.Second)
	const n = 20000
	for i := 0; i < n; i++ {
		b.add(1, 1, 0, 10*sec, "app;main;read;[blocked]")
	}
	b.add(1, 1, 2*sec, sec, "app;main;poll;[blocked]")
	c := b.b.Capture()
	th, err := ComputeThreads(c, c, capture.Query{}, ThreadsOptions{Bucket: 0.001})
	if err != nil {
		t.Fatal(err)
	}
	s := th.Threads[0].Series
	if len(s) != 10000 || s[0] != n*ms || s[1999] != n*ms || s[2000] != (n+1)*ms || s[2999] != (n+1)*ms || s[3000] != n*ms || s[9999] != n*ms {
		t.Errorf("series %d buckets: %d %d %d %d %d", len(s), s[0], s[1999], s[2000], s[2999], s[3000])
	}
	if th.Total != n*10*sec+sec || !reflect.DeepEqual(th.Threads[0].Blocked, s) {
		t.Errorf("total %d, want %d", th.Total, n*10*sec+sec)
	}
	sc, err := ComputeStackChart(c, c, capture.Query{TIDs: []uint32{1}}, StackOptions{TID: 1, Width: MaxWidth})
	if err != nil {
		t.Fatal(err)
	}
	want := []run{{0, "app", 0, 10000}, {1, "main", 0, 10000}, {2, "read", 0, 10000}, {3, "[blocked]", 0, 10000}}
	if g := runs(sc); !reflect.DeepEqual(g, want) {
		t.Errorf("runs %v, want %v", g, want)
	}
}

func TestThreadsValuesBounded(t *testing.T) {
	b := newBuilder(capture.CPU, 10*time.Second, 99)
	for tid := uint32(1); tid <= 500; tid++ {
		b.add(1, tid, int64(tid)*ms, 1, "app;main")
	}
	c := b.b.Capture()
	_, err := ComputeThreads(c, c, capture.Query{}, ThreadsOptions{Bucket: 0.001, Limit: 1000})
	if err == nil || !strings.Contains(err.Error(), "limit 1000 and 10000 buckets give 5010000 values: at most 4000000 are sent") {
		t.Errorf("got %v", err)
	}
	if th, err := ComputeThreads(c, c, capture.Query{}, ThreadsOptions{Bucket: 0.001, Limit: 100}); err != nil || len(th.Threads) != 100 || th.Other.Threads != 400 {
		t.Errorf("limit 100: %v", err)
	}
}
