package flamegraph

import (
	"math"
	"regexp"
	"strconv"
	"strings"
	"testing"

	"github.com/scorch-dev/scorch/capture"
)

// cpiCapture: compute retires 4 instructions per cycle (CPI 0.25), memwait
// one per 4 cycles (CPI 4), balanced one per cycle; main has all three.
func cpiCapture(t *testing.T) *capture.Capture {
	t.Helper()
	b := capture.NewBuilder(capture.Meta{Type: capture.CPI, Host: "testhost"})
	stack := func(names ...string) uint32 {
		ids := []uint32{b.Frame(capture.Frame{Name: "app", Kind: capture.KindProcess})}
		for _, n := range names {
			ids = append(ids, b.Frame(capture.Frame{Name: n, Kind: capture.KindUser}))
		}
		return b.Stack(ids)
	}
	for _, e := range []struct {
		st            uint32
		cycles, instr int64
	}{
		{stack("main", "compute"), 1000, 4000},
		{stack("main", "compute"), 1000, 4000}, // merged with the first
		{stack("main", "memwait"), 4000, 1000},
		{stack("main", "balanced"), 2000, 2000},
	} {
		b.Add(capture.Event{Value: e.cycles, Value2: e.instr, Stack: e.st, PID: 1, TID: 1})
	}
	return b.Capture()
}

var rgbRE = regexp.MustCompile(`^rgb\((\d+),(\d+),(\d+)\)$`)

func rgbOf(t *testing.T, s string) (r, g, b int) {
	t.Helper()
	m := rgbRE.FindStringSubmatch(s)
	if m == nil {
		t.Fatalf("fill %q is not rgb()", s)
	}
	r, _ = strconv.Atoi(m[1])
	g, _ = strconv.Atoi(m[2])
	b, _ = strconv.Atoi(m[3])
	return r, g, b
}

func TestRenderCPI(t *testing.T) {
	doc := render(t, cpiCapture(t), Options{})
	if title := doc.text("title"); !strings.Contains(title, "CPI") {
		t.Errorf("title %q does not say CPI", title)
	}
	tests := []struct {
		name         string
		cycles       int64
		cpi          float64
		colour       string // "blue", "red", "middle" or "" (only ordered)
		instructions string
	}{
		{"compute", 2000, 0.25, "blue", "8,000 instructions"},
		{"memwait", 4000, 4, "red", "1,000 instructions"},
		{"balanced", 2000, 1, "middle", "2,000 instructions"},
		{"main", 8000, 8000.0 / 11000, "", "11,000 instructions"},
	}
	for _, tc := range tests {
		f := doc.frame(tc.name)
		if f == nil {
			t.Fatalf("frame %s missing", tc.name)
		}
		if f.V != tc.cycles {
			t.Errorf("%s: width %d, want %d cycles", tc.name, f.V, tc.cycles)
		}
		want := "CPI " + strconv.FormatFloat(tc.cpi, 'f', 2, 64)
		if !strings.Contains(f.Title, want) || !strings.Contains(f.Title, tc.instructions) {
			t.Errorf("%s: tooltip %q, want %q and %q", tc.name, f.Title, want, tc.instructions)
		}
		r, _, b := rgbOf(t, f.Rect.Fill)
		switch {
		case tc.colour == "blue" && !(b > 200 && r < 100):
			t.Errorf("%s (CPI %.2f): fill %s, want blue", tc.name, tc.cpi, f.Rect.Fill)
		case tc.colour == "red" && !(r > 200 && b < 60):
			t.Errorf("%s (CPI %.2f): fill %s, want red", tc.name, tc.cpi, f.Rect.Fill)
		case tc.colour == "middle" && math.Abs(float64(r-b)) > 20:
			t.Errorf("%s (CPI %.2f): fill %s, want the middle of the scale", tc.name, tc.cpi, f.Rect.Fill)
		}
	}
	// Redder means stall-heavier: the order of the fills follows CPI.
	rc, _, _ := rgbOf(t, doc.frame("compute").Rect.Fill)
	rm, _, _ := rgbOf(t, doc.frame("main").Rect.Fill)
	rb, _, _ := rgbOf(t, doc.frame("balanced").Rect.Fill)
	rw, _, _ := rgbOf(t, doc.frame("memwait").Rect.Fill)
	if !(rc < rm && rm < rb && rb < rw) {
		t.Errorf("red channel not increasing with CPI: compute %d, main %d, balanced %d, memwait %d", rc, rm, rb, rw)
	}
}

// Other capture types keep their palette: Value2 (allocation counts in mem)
// does not turn into a CPI colouring.
func TestRenderNotCPI(t *testing.T) {
	c := cpiCapture(t)
	c.Meta.Type = capture.Mem
	c.Meta.Unit = "bytes"
	doc := render(t, c, Options{})
	if f := doc.frame("compute"); f == nil || strings.Contains(f.Title, "CPI") {
		t.Fatalf("mem graph frame %+v has a CPI tooltip", f)
	}
}
