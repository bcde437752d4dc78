package capture

import (
	"net/url"
	"reflect"
	"strings"
	"testing"
	"time"
)

func TestParseQueryRanges(t *testing.T) {
	for _, tt := range []struct {
		query    string
		from, to float64
		ranges   []Range
		err      string
	}{
		{query: "", from: 0, to: 0},
		{query: "from=1&to=2", from: 1, to: 2},
		{query: "from=1", from: 1},
		{query: "to=3", to: 3},
		{query: "from=5&to=6&from=1&to=2", from: 1, to: 6, ranges: []Range{{1, 2}, {5, 6}}},
		// Overlapping and touching ranges are joined.
		{query: "from=1&to=3&from=2&to=4", from: 1, to: 4},
		{query: "from=1&to=2&from=2&to=3&from=7&to=8", from: 1, to: 8, ranges: []Range{{1, 3}, {7, 8}}},
		// An empty to is the end, and swallows what follows.
		{query: "from=1&to=2&from=4&to=", from: 1, to: 0, ranges: []Range{{1, 2}, {4, 0}}},
		{query: "from=4&to=&from=6&to=7", from: 4, to: 0},
		{query: "from=0&to=1&from=3&to=", from: 0, to: 0, ranges: []Range{{0, 1}, {3, 0}}},
		{query: "from=1&from=2&to=3", err: "from is given 2 times and to 1 times"},
		{query: "from=1&to=2&from=x&to=3", err: `from "x" is not valid`},
		{query: "from=1&to=2&from=4&to=3", err: "to (3) must be greater than from (4)"},
		{query: strings.Repeat("from=1&to=2&", MaxRanges+1), err: "at most 64"},
	} {
		v, _ := url.ParseQuery(tt.query)
		q, err := ParseQuery(v)
		if tt.err != "" {
			if err == nil || !strings.Contains(err.Error(), tt.err) {
				t.Errorf("%s: got %v, want an error with %q", tt.query, err, tt.err)
			}
			continue
		}
		if err != nil || q.From != tt.from || q.To != tt.to || !reflect.DeepEqual(q.Ranges, tt.ranges) {
			t.Errorf("%s: got %g..%g %v, %v; want %g..%g %v", tt.query, q.From, q.To, q.Ranges, err, tt.from, tt.to, tt.ranges)
		}
	}
}

// Several ranges select the events in any of them, and the parts of the
// intervals inside them.
func TestSeveralRanges(t *testing.T) {
	sec := int64(time.Second)
	cpu := NewBuilder(Meta{Type: CPU, Duration: 10 * time.Second, Timestamps: true})
	st := cpu.Stack([]uint32{cpu.Frame(Frame{Name: "app", Kind: KindProcess}), cpu.Frame(Frame{Name: "f"})})
	for i := int64(0); i < 100; i++ { // one sample every 100 ms
		cpu.Add(Event{Time: i * sec / 10, Value: 1, Stack: st, PID: 1, TID: 1})
	}
	off := NewBuilder(Meta{Type: OffCPU, Duration: 10 * time.Second, Timestamps: true})
	ost := off.Stack([]uint32{off.Frame(Frame{Name: "app", Kind: KindProcess}), off.Frame(Frame{Name: "[blocked]", Kind: KindSynthetic})})
	off.Add(Event{Time: 1 * sec, Value: 4 * sec, Stack: ost, PID: 1, TID: 1}) // 1..5 s
	off.Add(Event{Time: 6 * sec, Value: sec, Stack: ost, PID: 1, TID: 1})     // 6..7 s
	for _, tt := range []struct {
		query        string
		samples, off int64
	}{
		{"", 100, 5 * sec},
		{"from=1&to=2", 10, sec},
		{"from=1&to=2&from=3&to=3.5", 15, sec + sec/2},
		{"from=3&to=3.5&from=1&to=2", 15, sec + sec/2},
		{"from=0&to=0.5&from=4.5&to=6.5", 5 + 20, sec/2 + sec/2},
		{"from=2&to=3&from=9&to=", 10 + 10, sec},
		{"from=5&to=6&from=7&to=8", 20, 0},
	} {
		v, _ := url.ParseQuery(tt.query)
		q, err := ParseQuery(v)
		if err != nil {
			t.Fatal(err)
		}
		for _, c := range []struct {
			c    *Capture
			want int64
		}{{cpu.Capture(), tt.samples}, {off.Capture(), tt.off}} {
			if err := c.c.CheckRange(q); err != nil {
				t.Fatalf("%s: %v", tt.query, err)
			}
			var got int64
			for _, sv := range c.c.Aggregate(q) {
				got += sv.Value
			}
			if got != c.want {
				t.Errorf("%s %s: got %d, want %d", c.c.Meta.Type, tt.query, got, c.want)
			}
		}
	}
	v, _ := url.ParseQuery("from=1&to=2&from=30&to=31")
	q, _ := ParseQuery(v)
	if err := cpu.Capture().CheckRange(q); err == nil || !strings.Contains(err.Error(), "outside the capture") {
		t.Errorf("a range past the end: got %v", err)
	}
	noTS := NewBuilder(Meta{Type: CPU, Duration: 10 * time.Second}).Capture()
	if err := noTS.CheckRange(q); err == nil || !strings.Contains(err.Error(), "no timestamps") {
		t.Errorf("ranges of a capture without timestamps: got %v", err)
	}
}

func FuzzParseQuery(f *testing.F) {
	for _, s := range []string{"from=1&to=2&from=5&to=6", "from=1&to=&from=0.5&to=3", "from=1e308&to=", "pid=1,2&cpu=0"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		v, err := url.ParseQuery(s)
		if err != nil {
			return
		}
		q, err := ParseQuery(v)
		if err != nil {
			return
		}
		rs := q.QueryRanges()
		for i, r := range rs {
			if r.From < 0 || (r.To != 0 && r.To <= r.From) {
				t.Fatalf("%q: range %v", s, r)
			}
			if i > 0 && (rs[i-1].To == 0 || rs[i-1].To >= r.From) {
				t.Fatalf("%q: ranges %v not merged", s, rs)
			}
		}
		if len(q.Ranges) == 1 {
			t.Fatalf("%q: one range kept in Ranges", s)
		}
	})
}
