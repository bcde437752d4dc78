package capture

import (
	"strings"
	"testing"
	"time"
)

// foldedCapture builds a cpu capture from folded lines ("a;b;c N": N
// events of one sample each, 10 ms apart). Frames named lib* are in
// /usr/lib/libx.so, frames ending in _[k] are kernel frames.
func foldedCapture(t *testing.T, lines ...string) *Capture {
	t.Helper()
	b := NewBuilder(Meta{Type: CPU, Start: time.Unix(1700000000, 0), Duration: 10 * time.Second, Timestamps: true})
	var tm int64
	for _, l := range lines {
		stack, n, _ := strings.Cut(l, " ")
		var ids []uint32
		for i, name := range strings.Split(stack, ";") {
			f := Frame{Name: name, Module: "/bin/app"}
			switch {
			case i == 0:
				f = Frame{Name: name, Kind: KindProcess}
			case strings.HasSuffix(name, "_[k]"):
				f = Frame{Name: strings.TrimSuffix(name, "_[k]"), Kind: KindKernel, Module: "[kernel.kallsyms]"}
			case strings.HasPrefix(name, "lib"):
				f.Module = "/usr/lib/libx.so"
			}
			ids = append(ids, b.Frame(f))
		}
		st := b.Stack(ids)
		var count int
		for _, c := range n {
			count = count*10 + int(c-'0')
		}
		for i := 0; i < count; i++ {
			b.Add(Event{Time: tm, Value: 1, Stack: st, PID: 1, TID: 1})
			tm += int64(10 * time.Millisecond)
		}
	}
	return b.Capture()
}

func folded(c *Capture) map[string]int64 {
	out := map[string]int64{}
	for _, sv := range c.Aggregate(Query{}) {
		out[strings.Join(c.FoldedStack(sv.Stack), ";")] += sv.Value
	}
	return out
}

func TestTransforms(t *testing.T) {
	lines := []string{"app;main;a;c 3", "app;main;b;c 2", "app;main;a 1", "app;main;a;a;a;d 4", "app;main;libp;libq;libr;write_[k] 5"}
	tests := []struct {
		ts   string
		want map[string]int64
	}{
		{"focus:a", map[string]int64{"a;c": 3, "a": 1, "a;a;a;d": 4}},
		{"merge:a", map[string]int64{"app;main;c": 3, "app;main;b;c": 2, "app;main": 1, "app;main;d": 4, "app;main;libp;libq;libr;write_[k]": 5}},
		{"drop:b", map[string]int64{"app;main;a;c": 3, "app;main;a": 1, "app;main;a;a;a;d": 4, "app;main;libp;libq;libr;write_[k]": 5}},
		{"rec:a", map[string]int64{"app;main;a;c": 3, "app;main;b;c": 2, "app;main;a": 1, "app;main;a;d": 4, "app;main;libp;libq;libr;write_[k]": 5}},
		{"lib:libx.so", map[string]int64{"app;main;a;c": 3, "app;main;b;c": 2, "app;main;a": 1, "app;main;a;a;a;d": 4, "app;main;libx.so;write_[k]": 5}},
		{"lib:/usr/lib/libx.so", map[string]int64{"app;main;a;c": 3, "app;main;b;c": 2, "app;main;a": 1, "app;main;a;a;a;d": 4, "app;main;/usr/lib/libx.so;write_[k]": 5}},
		// The folded name with its kind suffix names the frame as well as its label.
		{"drop:write_[k]", map[string]int64{"app;main;a;c": 3, "app;main;b;c": 2, "app;main;a": 1, "app;main;a;a;a;d": 4}},
		{"drop:write", map[string]int64{"app;main;a;c": 3, "app;main;b;c": 2, "app;main;a": 1, "app;main;a;a;a;d": 4}},
		// Applied in order.
		{"focus:main,merge:main,drop:c", map[string]int64{"a": 1, "a;a;a;d": 4, "libp;libq;libr;write_[k]": 5}},
		{"rec:a,focus:d", map[string]int64{"d": 4}},
		{"focus:nosuch", map[string]int64{}},
		{"merge:nosuch", map[string]int64{"app;main;a;c": 3, "app;main;b;c": 2, "app;main;a": 1, "app;main;a;a;a;d": 4, "app;main;libp;libq;libr;write_[k]": 5}},
	}
	for _, tt := range tests {
		t.Run(tt.ts, func(t *testing.T) {
			c := foldedCapture(t, lines...)
			ts, err := ParseTransforms(strings.Split(tt.ts, ","))
			if err != nil {
				t.Fatal(err)
			}
			before := folded(c)
			got := folded(c.Transform(ts))
			if !mapsEqual(got, tt.want) {
				t.Errorf("%s: got %v, want %v", tt.ts, got, tt.want)
			}
			if after := folded(c); !mapsEqual(before, after) {
				t.Errorf("the transform changed the capture: %v, was %v", after, before)
			}
		})
	}
}

func mapsEqual(a, b map[string]int64) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if b[k] != v {
			return false
		}
	}
	return true
}

// Dropped samples leave the events, so the heatmap and ranges see them go.
func TestTransformDropsEvents(t *testing.T) {
	c := foldedCapture(t, "app;main;a 3", "app;main;b 2")
	ts, _ := ParseTransforms([]string{"drop:a"})
	if got := len(c.Transform(ts).Events); got != 2 {
		t.Errorf("after drop:a %d events are left, want 2", got)
	}
	if len(c.Events) != 5 {
		t.Errorf("the capture lost events: %d", len(c.Events))
	}
}

// KeepsEvents says whether a transform stack leaves every event in,
// as Transform does it: the heatmap and the tracks reuse the
// untransformed answers when it does.
func TestKeepsEvents(t *testing.T) {
	lines := []string{"app;main;a;c 3", "app;main;b;c 2", "app;main;a;a;a;d 4", "app;main;libp;libq 5", "solo 1"}
	tests := []struct {
		ts   string
		want bool
	}{
		{"", true},
		{"merge:a", true},
		{"merge:nothing", true},
		{"rec:a", true},
		{"lib:libx.so", true},
		{"merge:a,merge:c,rec:a", true},
		{"drop:b", false},
		{"drop:nothing", true}, // matches no frame: no step
		{"focus:a", false},
		{"focus:nothing", false}, // empties every stack
		{"focus:app", false},     // a focus that matches is not looked into
		{"merge:solo", false},    // the stack solo is all merged
		{"merge:app,merge:main,merge:libp,merge:libq", false},
		{"merge:app,merge:main,merge:libp", true},
		{"lib:libx.so,merge:app,merge:main,merge:libx.so", false}, // the lib frame is merged
		{"lib:libx.so,merge:app,merge:main", true},
	}
	c := foldedCapture(t, lines...)
	for _, tt := range tests {
		var vals []string
		if tt.ts != "" {
			vals = strings.Split(tt.ts, ",")
		}
		ts, err := ParseTransforms(vals)
		if err != nil {
			t.Fatal(err)
		}
		if got := c.KeepsEvents(ts); got != tt.want {
			t.Errorf("KeepsEvents(%s) = %v, want %v", tt.ts, got, tt.want)
		}
		// What it says is what Transform does.
		if kept := len(c.Transform(ts).Events) == len(c.Events); kept != tt.want {
			t.Errorf("%s: Transform keeps every event: %v, want %v", tt.ts, kept, tt.want)
		}
	}
}

func TestParseTransformsErrors(t *testing.T) {
	for _, tt := range []struct{ in, want string }{
		{"zoom:a", "allowed kinds are focus, merge, drop, rec, lib"},
		{"focus", "give KIND:NAME"},
		{"focus:", "give KIND:NAME"},
		{":a", "unknown transform"},
	} {
		_, err := ParseTransforms([]string{tt.in})
		if err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("ParseTransforms(%q) = %v, want an error with %q", tt.in, err, tt.want)
		}
	}
	many := make([]string, MaxTransforms+1)
	for i := range many {
		many[i] = "rec:a"
	}
	if _, err := ParseTransforms(many); err == nil {
		t.Error("more than MaxTransforms transforms are accepted")
	}
	// NAME may hold colons (C++ and Rust names).
	ts, err := ParseTransforms([]string{"focus:std::vec::Vec<T>::push"})
	if err != nil || ts[0].Name != "std::vec::Vec<T>::push" {
		t.Errorf("a name with colons: %v, %v", ts, err)
	}
}

// Any transform stack leaves a capture whose stacks index real frames and
// whose total is at most the original.
func FuzzTransform(f *testing.F) {
	f.Add("focus:a\nmerge:main\nlib:libx.so")
	f.Add("rec:a\ndrop:b")
	f.Fuzz(func(t *testing.T, spec string) {
		c := foldedCapture(t, "app;main;a;c 3", "app;main;b;c 2", "app;main;a;a;a;d 4", "app;main;libp;libq;write_[k] 5")
		ts, err := ParseTransforms(strings.Split(spec, "\n"))
		if err != nil {
			return
		}
		out := c.Transform(ts)
		var total int64
		for _, sv := range out.Aggregate(Query{}) {
			total += sv.Value
			for _, fr := range out.Stacks[sv.Stack] {
				if int(fr) >= len(out.Frames) {
					t.Fatalf("frame %d out of %d", fr, len(out.Frames))
				}
			}
		}
		if total > 14 {
			t.Fatalf("total %d grew", total)
		}
	})
}
