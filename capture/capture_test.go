package capture

import (
	"bytes"
	"encoding/json"
	"math"
	"net/url"
	"strings"
	"testing"
	"time"
	"unsafe"
)

func sample(t *testing.T) *Capture {
	t.Helper()
	b := NewBuilder(Meta{Type: CPU, Start: time.Unix(1700000000, 0), Duration: 4 * time.Second, Timestamps: true})
	app := b.Frame(Frame{Name: "app", Kind: KindProcess})
	main := b.Frame(Frame{Name: "main", Module: "/bin/app", Offset: 0x1130})
	beta := b.Frame(Frame{Name: "beta", Module: "/bin/app", Offset: 0x1180})
	read := b.Frame(Frame{Name: "ksys_read", Kind: KindKernel})
	s1 := b.Stack([]uint32{app, main, beta})
	s2 := b.Stack([]uint32{app, main, read})
	if again := b.Stack([]uint32{app, main, beta}); again != s1 {
		t.Fatalf("stack not interned: %d != %d", again, s1)
	}
	swapper := b.Stack([]uint32{b.Frame(Frame{Name: "swapper", Kind: KindProcess}), b.Frame(Frame{Name: "default_idle", Kind: KindKernel})})
	for i := 0; i < 300; i++ {
		b.Add(Event{Time: int64(i) * int64(10*time.Millisecond), Value: 1, Stack: s1, PID: 10, TID: 11, CPU: 0})
	}
	for i := 0; i < 100; i++ {
		b.Add(Event{Time: int64(i) * int64(10*time.Millisecond), Value: 1, Stack: s2, PID: 20, TID: 20, CPU: 1})
	}
	b.Add(Event{Time: 5, Value: 1, Stack: swapper, Flags: FlagIdle})
	return b.Capture()
}

func TestEventSize(t *testing.T) {
	if got := unsafe.Sizeof(Event{}); got > 48 {
		t.Errorf("Event is %d bytes, the budget is 48", got)
	}
}

func TestAggregateAndQuery(t *testing.T) {
	c := sample(t)
	tests := []struct {
		name  string
		query string
		want  map[string]int64
	}{
		{"all but idle", "", map[string]int64{"app;main;beta": 300, "app;main;ksys_read_[k]": 100}},
		{"idle included", "idle=include", map[string]int64{"app;main;beta": 300, "app;main;ksys_read_[k]": 100, "swapper;default_idle_[k]": 1}},
		{"pid", "pid=20", map[string]int64{"app;main;ksys_read_[k]": 100}},
		{"tid list", "tid=11,20", map[string]int64{"app;main;beta": 300, "app;main;ksys_read_[k]": 100}},
		{"cpu", "cpu=0", map[string]int64{"app;main;beta": 300}},
		{"comm", "comm=app", map[string]int64{"app;main;beta": 300, "app;main;ksys_read_[k]": 100}},
		{"comm none", "comm=nginx", map[string]int64{}},
		{"range", "from=0.5&to=1", map[string]int64{"app;main;beta": 50, "app;main;ksys_read_[k]": 50}},
		{"range past second", "from=2", map[string]int64{"app;main;beta": 100}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			v, err := url.ParseQuery(tt.query)
			if err != nil {
				t.Fatal(err)
			}
			q, err := ParseQuery(v)
			if err != nil {
				t.Fatal(err)
			}
			got := map[string]int64{}
			for _, sv := range c.Aggregate(q) {
				got[strings.Join(c.FoldedStack(sv.Stack), ";")] += sv.Value
			}
			if len(got) != len(tt.want) {
				t.Errorf("got %v, want %v", got, tt.want)
			}
			for k, v := range tt.want {
				if got[k] != v {
					t.Errorf("%s: got %d, want %d", k, got[k], v)
				}
			}
		})
	}
}

func TestParseQueryErrors(t *testing.T) {
	for _, tt := range []struct{ query, want string }{
		{"from=x", "from"},
		{"from=-1", "from"},
		{"to=1&from=2", "greater than from"},
		{"pid=abc", "pid"},
		{"idle=maybe", "include, exclude"},
		{"view=peak", "alloc, inuse"},
		{"cpu=-1", "cpu"},
	} {
		v, _ := url.ParseQuery(tt.query)
		if _, err := ParseQuery(v); err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("%s: got %v, want an error naming %q", tt.query, err, tt.want)
		}
	}
}

func TestFileRoundTrip(t *testing.T) {
	c := sample(t)
	c.Meta.Stats.Lost = 7
	c.Meta.Warnings = []string{"w"}
	c.Meta.Arch, c.Meta.Notes = "arm64", []string{"the off-CPU kernel stack cache is off on arm64"}
	var buf bytes.Buffer
	if err := Write(&buf, c); err != nil {
		t.Fatal(err)
	}
	if !IsCaptureFile(buf.Bytes()) {
		t.Fatal("written file does not start with the magic")
	}
	got, err := Read(bytes.NewReader(buf.Bytes()))
	if err != nil {
		t.Fatal(err)
	}
	if len(got.Events) != len(c.Events) || len(got.Stacks) != len(c.Stacks) || len(got.Frames) != len(c.Frames) {
		t.Fatalf("round trip lost data: %d/%d events, %d/%d stacks", len(got.Events), len(c.Events), len(got.Stacks), len(c.Stacks))
	}
	for i := range c.Events {
		if got.Events[i] != c.Events[i] {
			t.Fatalf("event %d: got %+v, want %+v", i, got.Events[i], c.Events[i])
		}
	}
	if got.Meta.Stats.Lost != 7 || got.Meta.Type != CPU || !got.Meta.Start.Equal(c.Meta.Start) || got.Meta.Duration != c.Meta.Duration ||
		got.Meta.Arch != "arm64" || len(got.Meta.Notes) != 1 {
		t.Errorf("meta not kept: %+v", got.Meta)
	}
	// A note is an info finding of the health; a warning a warning.
	sev := map[string]string{}
	for _, f := range got.Summarize(Query{}, nil).Findings {
		sev[f.Message] = f.Severity
	}
	if sev[c.Meta.Notes[0]] != "info" || sev["w"] != "warning" {
		t.Errorf("findings %v: want the note as info and the warning as warning", sev)
	}

	// Every truncation of the file is an error, never a panic or a partial capture.
	data := buf.Bytes()
	for _, n := range []int{0, 4, 9, 20, len(data) / 2, len(data) - 1} {
		if _, err := Read(bytes.NewReader(data[:n])); err == nil {
			t.Errorf("truncated to %d bytes: no error", n)
		}
	}
}

func TestReadRejectsBadIndexes(t *testing.T) {
	c := sample(t)
	c.Events[0].Stack = 99
	var buf bytes.Buffer
	if err := Write(&buf, c); err != nil {
		t.Fatal(err)
	}
	if _, err := Read(&buf); err == nil || !strings.Contains(err.Error(), "damaged") {
		t.Errorf("got %v, want a damaged-capture error", err)
	}
}

func FuzzRead(f *testing.F) {
	var buf bytes.Buffer
	c := NewBuilder(Meta{Type: CPU})
	c.Add(Event{Stack: c.Stack([]uint32{c.Frame(Frame{Name: "a", Kind: KindProcess})})})
	if err := Write(&buf, c.Capture()); err != nil {
		f.Fatal(err)
	}
	f.Add(buf.Bytes())
	f.Add([]byte(Magic + "\x01"))
	f.Fuzz(func(t *testing.T, data []byte) {
		c, err := Read(bytes.NewReader(data))
		if err == nil {
			// Whatever was accepted is consistent.
			for _, sv := range c.Aggregate(Query{IncludeIdle: true}) {
				_ = c.FoldedStack(sv.Stack)
			}
		}
	})
}

func TestFoldedName(t *testing.T) {
	tests := []struct {
		f    Frame
		want string
	}{
		{Frame{Name: "main"}, "main"},
		{Frame{Name: "schedule", Kind: KindKernel}, "schedule_[k]"},
		{Frame{Name: "LazyCompile:foo", Kind: KindJIT}, "LazyCompile:foo_[j]"},
		{Frame{Name: "inl", Kind: KindInlined}, "inl_[i]"},
		{Frame{Name: "write", Waker: true}, "write_[w]"},
		{Frame{Name: "a;b\nc"}, "a:b?c"},
		{Frame{Name: ""}, "[unknown]"},
		{Frame{Name: "--", Kind: KindSynthetic, Waker: true}, "--"},
	}
	for _, tt := range tests {
		if got := tt.f.FoldedName(); got != tt.want {
			t.Errorf("%+v: got %q, want %q", tt.f, got, tt.want)
		}
	}
}

func TestParamsValidate(t *testing.T) {
	tests := []struct {
		p    Params
		want string // "" means valid
	}{
		{Params{Type: CPU, Hz: 99}, ""},
		{Params{Type: CPU, Hz: 0}, ""},
		{Params{Type: CPU, Hz: 20000}, "1..10000"},
		{Params{Type: CPU, Hz: -5}, "1..10000"},
		{Params{Type: "gpu"}, "allowed values"},
		{Params{Type: CPU, Duration: Duration(-time.Second)}, "negative"},
		{Params{Type: CPU, Unwind: "lbr"}, "fp, auto, dwarf"},
		{Params{Type: CPU, PIDs: []int{1}, Comm: "x"}, "one target"},
		{Params{Type: OffCPU, State: "R"}, "all, S, D"},
		{Params{Type: Mem, View: "peak"}, "alloc, inuse"},
	}
	for _, tt := range tests {
		err := tt.p.Validate(time.Hour)
		switch {
		case tt.want == "" && err != nil:
			t.Errorf("%+v: unexpected error %v", tt.p, err)
		case tt.want != "" && (err == nil || !strings.Contains(err.Error(), tt.want)):
			t.Errorf("%+v: got %v, want an error containing %q", tt.p, err, tt.want)
		}
	}
}

func TestDurationJSON(t *testing.T) {
	var p Params
	for _, tt := range []struct {
		in   string
		want time.Duration
	}{
		{`{"type":"cpu","duration":"5s"}`, 5 * time.Second},
		{`{"type":"cpu","duration":2.5}`, 2500 * time.Millisecond},
		{`{"type":"cpu","duration":"3"}`, 3 * time.Second},
	} {
		if err := jsonUnmarshal(tt.in, &p); err != nil {
			t.Fatalf("%s: %v", tt.in, err)
		}
		if time.Duration(p.Duration) != tt.want {
			t.Errorf("%s: got %s, want %s", tt.in, time.Duration(p.Duration), tt.want)
		}
	}
	if err := jsonUnmarshal(`{"duration":"soon"}`, &p); err == nil {
		t.Error("bad duration accepted")
	}
}

func jsonUnmarshal(s string, v any) error { return json.Unmarshal([]byte(s), v) }

// Off-CPU intervals count in a range for the part of them inside it.
func TestIntervalRanges(t *testing.T) {
	b := NewBuilder(Meta{Type: OffCPU, Duration: 10 * time.Second, Timestamps: true})
	st := b.Stack([]uint32{b.Frame(Frame{Name: "app", Kind: KindProcess}), b.Frame(Frame{Name: "[blocked]", Kind: KindSynthetic})})
	sec := int64(time.Second)
	b.Add(Event{Time: 1 * sec, Value: 4 * sec, Stack: st, PID: 1}) // 1..5 s
	b.Add(Event{Time: 6 * sec, Value: sec / 2, Stack: st, PID: 1}) // 6..6.5 s
	c := b.Capture()
	for _, tt := range []struct {
		from, to float64
		want     int64
	}{
		{0, 0, 4*sec + sec/2},
		{2, 3, sec},
		{4, 6.25, sec + sec/4},
		{5, 6, 0},
		{0.5, 1.5, sec / 2},
	} {
		var got int64
		for _, sv := range c.Aggregate(Query{From: tt.from, To: tt.to}) {
			got += sv.Value
		}
		if got != tt.want {
			t.Errorf("%g..%g: got %d ns, want %d", tt.from, tt.to, got, tt.want)
		}
	}
}

func TestSatAdd(t *testing.T) {
	const max, min = math.MaxInt64, math.MinInt64
	tests := []struct{ a, b, want int64 }{
		{1, 2, 3}, {max, 1, max}, {max, max, max}, {min, -1, min}, {-5, 3, -2}, {max, min, -1}, {max - 1, 1, max},
	}
	for _, tt := range tests {
		if got := SatAdd(tt.a, tt.b); got != tt.want {
			t.Errorf("SatAdd(%d, %d) = %d, want %d", tt.a, tt.b, got, tt.want)
		}
	}
}

// Totals of many maximum-size values (a hostile import) saturate instead
// of wrapping negative; view=inuse on a capture that has no such view is
// an error, not an empty answer.
func TestTotalsSaturateAndInuseView(t *testing.T) {
	b := NewBuilder(Meta{Type: CPU})
	st := b.Stack([]uint32{b.Frame(Frame{Name: "app", Kind: KindProcess})})
	for range 3 {
		b.Add(Event{Stack: st, Value: math.MaxInt64, Value2: math.MaxInt64})
	}
	c := b.Capture()
	agg := c.Aggregate(Query{})
	if len(agg) != 1 || agg[0].Value != math.MaxInt64 || agg[0].Value2 != math.MaxInt64 {
		t.Errorf("aggregate of three MaxInt64 values: %+v, want MaxInt64", agg)
	}
	if err := c.CheckRange(Query{View: "inuse"}); err == nil || !strings.Contains(err.Error(), "mem captures") {
		t.Errorf("view=inuse on a cpu capture: %v, want an error naming mem captures", err)
	}
	mem := NewBuilder(Meta{Type: Mem, Unit: "bytes"}).Capture()
	if err := mem.CheckRange(Query{View: "inuse"}); err != nil {
		t.Errorf("view=inuse on an allocation capture: %v", err)
	}
}
