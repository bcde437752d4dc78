package flamegraph

import (
	"bytes"
	"fmt"
	"slices"
	"strings"
	"testing"

	"github.com/scorch-dev/scorch/capture"
)

func rgb(t *testing.T, fill string) (r, g, b int) {
	t.Helper()
	if _, err := fmt.Sscanf(fill, "rgb(%d,%d,%d)", &r, &g, &b); err != nil {
		t.Fatalf("fill %q: %v", fill, err)
	}
	return r, g, b
}

func TestPalettes(t *testing.T) {
	tests := []struct {
		typ  capture.Type
		name string
		ok   func(r, g, b int) bool
	}{
		{capture.CPU, "warm", func(r, g, b int) bool { return r > g && r > b }},
		{capture.OffCPU, "blue", func(r, g, b int) bool { return b > r && b > g }},
		{capture.Wakeup, "aqua", func(r, g, b int) bool { return g > r && b > r }},
		{capture.Mem, "green", func(r, g, b int) bool { return g > r && g > b }},
	}
	for _, tt := range tests {
		doc := render(t, build(t, tt.typ, "app;main;compute 10", "app;main;sys_read_[k] 5"), Options{})
		user, kernel := doc.frame("compute"), doc.frame("sys_read")
		if r, g, b := rgb(t, user.Rect.Fill); !tt.ok(r, g, b) {
			t.Errorf("%s: user frame %s is not %s", tt.typ, user.Rect.Fill, tt.name)
		}
		if user.Rect.Fill == kernel.Rect.Fill {
			t.Errorf("%s: kernel and user frames look the same", tt.typ)
		}
	}
	// The same name keeps its colour across graphs.
	a := render(t, build(t, capture.CPU, "app;main;compute 10"), Options{})
	b := render(t, build(t, capture.CPU, "other;x;y;compute 99", "other;z 1"), Options{})
	if a.frame("compute").Rect.Fill != b.frame("compute").Rect.Fill {
		t.Errorf("colour of compute differs between graphs")
	}
}

func TestOffWakeChain(t *testing.T) {
	b := capture.NewBuilder(capture.Meta{Type: capture.OffWake})
	ids := []uint32{
		b.Frame(capture.Frame{Name: "app", Kind: capture.KindProcess}),
		b.Frame(capture.Frame{Name: "wait_for_poke"}),
		b.Frame(capture.Frame{Name: "--", Kind: capture.KindSynthetic}),
		b.Frame(capture.Frame{Name: "poke_reader", Waker: true}),
	}
	b.Add(capture.Event{Stack: b.Stack(ids), Value: 3000000})
	doc := render(t, b.Capture(), Options{})
	blocked, sep, waker := doc.frame("wait_for_poke"), doc.frame("--"), doc.frame("poke_reader")
	if r, g, bl := rgb(t, blocked.Rect.Fill); !(bl > r && bl > g) {
		t.Errorf("blocked frame %s is not blue", blocked.Rect.Fill)
	}
	if r, g, bl := rgb(t, waker.Rect.Fill); !(g > r && bl > r) || waker.Rect.Fill == blocked.Rect.Fill {
		t.Errorf("waker frame %s is not aqua", waker.Rect.Fill)
	}
	if sep.Rect.Fill != "rgb(160,160,160)" {
		t.Errorf("separator fill %s", sep.Rect.Fill)
	}
	if !strings.Contains(waker.Title, "3.00 ms (100.00%)") {
		t.Errorf("ns values should show as ms: %q", waker.Title)
	}
	if !strings.Contains(doc.text("title"), "Off-Wake") {
		t.Errorf("title %q", doc.text("title"))
	}
}

func TestFormatValue(t *testing.T) {
	tests := []struct {
		v    int64
		unit string
		want string
	}{
		{1234567, "samples", "1,234,567 samples"},
		{2500000, "ns", "2.50 ms"},
		{1500000000, "ns", "1.500 s"},
		{1500, "ns", "1.5 µs"},
		{10485760, "bytes", "10.00 MiB"},
		{100, "bytes", "100 bytes"},
		{42, "count", "42 events"},
		{-1234, "samples", "-1,234 samples"},
	}
	for _, tt := range tests {
		if got := formatValue(tt.v, tt.unit); got != tt.want {
			t.Errorf("formatValue(%d, %s) = %q, want %q", tt.v, tt.unit, got, tt.want)
		}
	}
}

func TestEmptyCapture(t *testing.T) {
	c := build(t, capture.CPU)
	doc := render(t, c, Options{})
	if len(doc.Frames) != 1 {
		t.Errorf("%d frames, want only the root", len(doc.Frames))
	}
	found := false
	for _, tx := range doc.Texts {
		found = found || strings.Contains(tx.Body, "no samples")
	}
	if !found {
		t.Errorf("an empty graph should say there are no samples")
	}
}

// FuzzRenderNames renders hostile frame names: the output must stay
// well-formed XML with exactly one script element.
func FuzzRenderNames(f *testing.F) {
	f.Add("<script>alert(1)</script>", "a&b", "]]>")
	f.Add("\x00\xff\xfe", "\u2028\ufffe", "--")
	f.Fuzz(func(t *testing.T, a, b, c string) {
		bl := capture.NewBuilder(capture.Meta{Type: capture.CPU, Host: c})
		ids := []uint32{
			bl.Frame(capture.Frame{Name: a, Kind: capture.KindProcess}),
			bl.Frame(capture.Frame{Name: b}),
			bl.Frame(capture.Frame{Name: c, Kind: capture.KindKernel}),
		}
		bl.Add(capture.Event{Stack: bl.Stack(ids), Value: 1})
		var buf bytes.Buffer
		if err := Render(&buf, bl.Capture(), capture.Query{}, Options{Title: a, Search: b, ScriptNonce: c}); err != nil {
			t.Fatal(err)
		}
		doc := parseSVG(t, buf.Bytes())
		if n := bytes.Count(buf.Bytes(), []byte("<script")); n != 1 {
			t.Fatalf("%d script elements", n)
		}
		if len(doc.Frames) != 4 {
			t.Fatalf("%d frames", len(doc.Frames))
		}
	})
}

// Every capture type's default palette is one that renders.
func TestTypePalettes(t *testing.T) {
	for _, typ := range capture.Types {
		if p := typ.Info().Palette; !slices.Contains(Palettes, p) {
			t.Errorf("%s: default palette %q is not one of %v", typ, p, Palettes)
		}
	}
}
