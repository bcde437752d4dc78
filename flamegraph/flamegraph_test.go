package flamegraph

import (
	"bytes"
	"encoding/xml"
	"io"
	"math"
	"net/url"
	"runtime"
	"runtime/debug"
	"strconv"
	"strings"
	"testing"

	"github.com/scorch-dev/scorch/capture"
)

// build makes a capture from folded-style lines "proc;a;b_[k] 3"; frame 0
// is the process, suffixes set the kind.
func build(t testing.TB, typ capture.Type, lines ...string) *capture.Capture {
	t.Helper()
	b := capture.NewBuilder(capture.Meta{Type: typ, Host: "testhost", Timestamps: true})
	for n, line := range lines {
		sp := strings.LastIndexByte(line, ' ')
		v, err := strconv.ParseInt(line[sp+1:], 10, 64)
		if err != nil {
			t.Fatalf("bad test line %q", line)
		}
		var ids []uint32
		for i, name := range strings.Split(line[:sp], ";") {
			f := capture.Frame{Name: name, Kind: capture.KindUser}
			switch {
			case i == 0:
				f.Kind = capture.KindProcess
			case strings.HasSuffix(name, "_[k]"):
				f.Name, f.Kind = strings.TrimSuffix(name, "_[k]"), capture.KindKernel
			case strings.HasSuffix(name, "_[j]"):
				f.Name, f.Kind = strings.TrimSuffix(name, "_[j]"), capture.KindJIT
			}
			ids = append(ids, b.Frame(f))
		}
		b.Add(capture.Event{Time: int64(n) * 1e9, Value: v, Stack: b.Stack(ids), PID: 1, TID: 1})
	}
	return b.Capture()
}

// svgFrame is one <g class="f"> of the output, as XML.
type svgFrame struct {
	Class string `xml:"class,attr"`
	X     int64  `xml:"data-x,attr"`
	V     int64  `xml:"data-v,attr"`
	D     int    `xml:"data-d,attr"`
	Title string `xml:"title"`
	Rect  struct {
		X     float64 `xml:"x,attr"`
		Y     float64 `xml:"y,attr"`
		Width float64 `xml:"width,attr"`
		Fill  string  `xml:"fill,attr"`
	} `xml:"rect"`
	Text string `xml:"text"`
}

type svgDoc struct {
	Width  int `xml:"width,attr"`
	Height int `xml:"height,attr"`
	Texts  []struct {
		ID    string `xml:"id,attr"`
		Class string `xml:"class,attr"`
		Body  string `xml:",chardata"`
	} `xml:"text"`
	Frames []svgFrame `xml:"g>g"`
	Script struct {
		Nonce string `xml:"nonce,attr"`
		Body  string `xml:",chardata"`
	} `xml:"script"`
	Style struct {
		Nonce string `xml:"nonce,attr"`
	} `xml:"style"`
}

func parseSVG(t testing.TB, data []byte) svgDoc {
	t.Helper()
	var doc svgDoc
	dec := xml.NewDecoder(bytes.NewReader(data))
	if err := dec.Decode(&doc); err != nil {
		t.Fatalf("output is not XML: %v", err)
	}
	// Every element must be well formed, not only the ones decoded above.
	dec = xml.NewDecoder(bytes.NewReader(data))
	for {
		_, err := dec.Token()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatalf("output is not well-formed XML: %v", err)
		}
	}
	return doc
}

func (d svgDoc) frame(name string) *svgFrame {
	for i := range d.Frames {
		if strings.SplitN(d.Frames[i].Title, "\n", 2)[0] == name {
			return &d.Frames[i]
		}
	}
	return nil
}

func (d svgDoc) text(id string) string {
	for _, t := range d.Texts {
		if t.ID == id {
			return t.Body
		}
	}
	return ""
}

func render(t testing.TB, c *capture.Capture, opts Options) svgDoc {
	t.Helper()
	var buf bytes.Buffer
	if err := Render(&buf, c, capture.Query{}, opts); err != nil {
		t.Fatalf("Render: %v", err)
	}
	return parseSVG(t, buf.Bytes())
}

func TestRenderFramesAndWidths(t *testing.T) {
	c := build(t, capture.CPU,
		"app;main;alpha;spin 60",
		"app;main;beta 30",
		"app;main;beta;read_[k] 10",
		"other;main;alpha 100",
	)
	doc := render(t, c, Options{})
	// all, app, main, alpha, spin, beta, read, other, main, alpha
	if got := len(doc.Frames); got != 10 {
		t.Fatalf("got %d frames, want 10 (one element per merged frame)", got)
	}
	root := doc.frame("all")
	if root == nil || root.V != 200 {
		t.Fatalf("root frame = %+v, want value 200", root)
	}
	for _, f := range doc.Frames {
		want := float64(f.V) / 200 * float64(doc.Width-20)
		if math.Abs(f.Rect.Width-want) > 0.06 {
			t.Errorf("%q: width %.1f px, want %.2f for value %d", f.Title, f.Rect.Width, want, f.V)
		}
	}
	beta := doc.frame("beta")
	if beta == nil || beta.V != 40 || !strings.Contains(beta.Title, "40 samples (20.00%), self 30 samples (15.00%)") {
		t.Errorf("beta tooltip = %+v, want value 40, 20%%, self 30", beta)
	}
	read := doc.frame("read")
	if read == nil || read.D != 4 {
		t.Fatalf("kernel frame read missing or at the wrong depth: %+v", read)
	}
	if read.Rect.Fill == doc.frame("spin").Rect.Fill {
		t.Errorf("kernel and user frames share the fill %s", read.Rect.Fill)
	}
	// Alphabetical siblings: alpha left of beta.
	if a, b := doc.frame("alpha"), beta; a.X >= b.X {
		t.Errorf("alpha at %d is not left of beta at %d", a.X, b.X)
	}
	// Flame layout: deeper frames are higher up.
	if read.Rect.Y >= beta.Rect.Y {
		t.Errorf("flame layout: child y %.0f is not above parent y %.0f", read.Rect.Y, beta.Rect.Y)
	}
	if !strings.Contains(doc.Script.Body, "addEventListener") || strings.Contains(doc.Script.Body, "onclick=") {
		t.Errorf("script missing or uses inline handlers")
	}
	for _, want := range []string{"cpu", "host testhost", "4 samples", "0 lost"} {
		if !strings.Contains(doc.text("subtitle"), want) {
			t.Errorf("subtitle %q lacks %q", doc.text("subtitle"), want)
		}
	}
}

func TestRenderOptions(t *testing.T) {
	c := build(t, capture.CPU, "app;main;alpha 10", "app;main;zeta 90")
	size := render(t, c, Options{Sort: "size", Layout: "icicle", Title: "T<1>"})
	if a, z := size.frame("alpha"), size.frame("zeta"); z.X >= a.X {
		t.Errorf("sort=size: zeta (90) at %d should be left of alpha (10) at %d", z.X, a.X)
	}
	if m, a := size.frame("main"), size.frame("alpha"); a.Rect.Y <= m.Rect.Y {
		t.Errorf("icicle: child y %.0f should be below parent y %.0f", a.Rect.Y, m.Rect.Y)
	}
	if size.text("title") != "T<1>" {
		t.Errorf("title = %q", size.text("title"))
	}
	rev := render(t, c, Options{Reverse: true})
	// Reversed: the leaves are children of the root, the process is the leaf.
	if f := rev.frame("zeta"); f == nil || f.D != 1 {
		t.Errorf("reverse: zeta should be at depth 1: %+v", f)
	}
	if f := rev.frame("app"); f == nil || f.D != 3 {
		t.Errorf("reverse: app should be a leaf at depth 3")
	}
	nonce := render(t, c, Options{ScriptNonce: "abc123"})
	if nonce.Script.Nonce != "abc123" {
		t.Errorf("script nonce = %q", nonce.Script.Nonce)
	}
}

func TestMinWidthKeepsTotals(t *testing.T) {
	lines := []string{"app;main;big 100000"}
	for i := 0; i < 50; i++ {
		lines = append(lines, "app;main;tiny"+strconv.Itoa(i)+" 1")
	}
	c := build(t, capture.CPU, lines...)
	doc := render(t, c, Options{})
	if doc.frame("tiny1") != nil {
		t.Errorf("a frame of 1/100050 should be pruned at minwidth 0.1 px")
	}
	if m := doc.frame("main"); m.V != 100050 {
		t.Errorf("main = %d, want 100050: pruned frames stay in their parent", m.V)
	}
	var note string
	for _, tx := range doc.Texts {
		if tx.Class == "note" {
			note = tx.Body
		}
	}
	if !strings.Contains(note, "50 frames narrower than 0.1 px") {
		t.Errorf("pruning note = %q", note)
	}
	all := render(t, c, Options{MinWidth: "0"})
	if all.frame("tiny1") == nil {
		t.Errorf("minwidth 0 should draw every frame")
	}
	pct := render(t, c, Options{MinWidth: "50%"})
	if pct.frame("big") == nil || len(pct.Frames) != 4 {
		t.Errorf("minwidth 50%% should keep all, app, main, big: got %d frames", len(pct.Frames))
	}
}

// TestDeepStack renders a stack deeper than a recursive walk of the tree
// could go and deeper than is worth drawing: a hostile import of one
// stack of a million frames cost 11 s and 700 MB per render. Frames are
// drawn to MaxDepth; the last is [truncated] and its tooltip says how many
// frames it stands for. The goroutine stack limit is lowered so that a
// recursive walk would fail.
func TestDeepStack(t *testing.T) {
	defer debug.SetMaxStack(debug.SetMaxStack(4 << 20))
	const depth = 1_000_000
	b := capture.NewBuilder(capture.Meta{Type: capture.CPU})
	ids := []uint32{b.Frame(capture.Frame{Name: "app", Kind: capture.KindProcess})}
	for i := 0; i < depth; i++ {
		ids = append(ids, b.Frame(capture.Frame{Name: "f" + strconv.Itoa(i%2)}))
	}
	b.Add(capture.Event{Stack: b.Stack(ids), Value: 1})
	// A shallow stack beside it is drawn whole.
	b.Add(capture.Event{Stack: b.Stack(ids[:3]), Value: 1})
	c := b.Capture()
	var out bytes.Buffer
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	if err := Render(&out, c, capture.Query{}, Options{}); err != nil {
		t.Fatal(err)
	}
	runtime.ReadMemStats(&after)
	if n := bytes.Count(out.Bytes(), []byte(`<g class="f"`)); n != MaxDepth+1 {
		t.Errorf("%d frames drawn, want %d (all and %d levels)", n, MaxDepth+1, MaxDepth)
	}
	g := parseSVG(t, out.Bytes())
	tr := g.frame(capture.FrameTruncated)
	if tr == nil {
		t.Fatal("no [truncated] frame drawn")
	}
	wantCut := depth + 1 - (MaxDepth - 1)
	if want := "stands for " + thousands(int64(wantCut)) + " frames not drawn"; !strings.Contains(tr.Title, want) {
		t.Errorf("[truncated] tooltip %q, want it to say %q", tr.Title, want)
	}
	if !strings.Contains(out.String(), "stacks deeper than 1024 frames end in [truncated]") {
		t.Errorf("no note of the cut stacks")
	}
	// The render's work is bounded by what is drawn, not by the stack.
	if alloc := after.TotalAlloc - before.TotalAlloc; alloc > 32<<20 {
		t.Errorf("rendering allocated %d MiB, want under 32 MiB for %d frames drawn", alloc>>20, MaxDepth+1)
	}
	if out.Len() > 2<<20 {
		t.Errorf("SVG of %d KiB", out.Len()>>10)
	}
}

func TestEscaping(t *testing.T) {
	hostile := []string{
		"<script>alert(1)</script>",
		"a&b\"c'd",
		"nul\x00byte",
		"bad\xff\xfeutf8",
		"]]>cdata",
	}
	var lines []string
	for _, h := range hostile {
		lines = append(lines, "app;"+h+" 10")
	}
	c := build(t, capture.CPU, lines...)
	c.Meta.Host = "<b>host</b>"
	var buf bytes.Buffer
	if err := Render(&buf, c, capture.Query{}, Options{Search: `"><script>`}); err != nil {
		t.Fatal(err)
	}
	out := buf.String()
	if strings.Count(out, "<script") != 1 {
		t.Errorf("found %d <script elements, want only scorch's own", strings.Count(out, "<script"))
	}
	if strings.Contains(out, "<b>") {
		t.Errorf("host name became markup")
	}
	doc := parseSVG(t, buf.Bytes())
	if f := doc.frame("<script>alert(1)</script>"); f == nil {
		t.Errorf("hostile name not present as text")
	}
	if f := doc.frame("nul?byte"); f == nil {
		t.Errorf("NUL not replaced (by SanitizeName's ?)")
	}
	if f := doc.frame("bad\uFFFD\uFFFDutf8"); f == nil {
		t.Errorf("invalid UTF-8 not replaced by U+FFFD")
	}
}

func TestTruncate(t *testing.T) {
	tests := []struct {
		name string
		w    float64
		want string
	}{
		{"short", 100, "short"},
		{"a_long_function_name", 50, "a_lon.."},
		{"abc", 10, ""},
		{"ünïcödé_name", 50, "ünïcö.."},
	}
	for _, tt := range tests {
		if got := truncate(tt.name, tt.w); got != tt.want {
			t.Errorf("truncate(%q, %v) = %q, want %q", tt.name, tt.w, got, tt.want)
		}
	}
}

func TestParseOptions(t *testing.T) {
	tests := []struct {
		query   string
		wantErr string
		check   func(Options) bool
	}{
		{"", "", func(o Options) bool { return o == Options{} }},
		{"layout=icicle&sort=size&reverse=true&minwidth=0.5%25&s=^foo&title=x", "", func(o Options) bool {
			return o.Layout == "icicle" && o.Sort == "size" && o.Reverse && o.MinWidth == "0.5%" && o.Search == "^foo" && o.Title == "x"
		}},
		{"layout=sideways", "allowed values are flame, icicle", nil},
		{"sort=random", "allowed values are alpha, size", nil},
		{"minwidth=-1", "minwidth", nil},
		{"minwidth=abc%25", "percentage", nil},
		{"reverse=maybe", "allowed values are true, false", nil},
		{"width=5", "allowed 200..20000", nil},
		{"palette=pink", "hot, io, wakeup, chain, mem", nil},
		{"widths=both", "allowed values are base, compare", nil},
	}
	for _, tt := range tests {
		v, _ := url.ParseQuery(tt.query)
		o, err := ParseOptions(v)
		if tt.wantErr != "" {
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Errorf("%q: error %v, want one containing %q", tt.query, err, tt.wantErr)
			}
			continue
		}
		if err != nil || !tt.check(o) {
			t.Errorf("%q: got %+v, %v", tt.query, o, err)
		}
	}
}

func TestRenderDiff(t *testing.T) {
	base := build(t, capture.CPU, "app;main;grow 10", "app;main;shrink 80", "app;main;gone 10")
	cmp := build(t, capture.CPU, "app;main;grow 60", "app;main;shrink 40")
	var buf bytes.Buffer
	if err := RenderDiff(&buf, base, cmp, capture.Query{}, capture.Query{}, Options{}); err != nil {
		t.Fatal(err)
	}
	doc := parseSVG(t, buf.Bytes())
	grow, shrink := doc.frame("grow"), doc.frame("shrink")
	if grow == nil || shrink == nil {
		t.Fatal("frames missing")
	}
	if grow.V != 60 || shrink.V != 40 {
		t.Errorf("widths should come from compare: grow %d shrink %d", grow.V, shrink.V)
	}
	if !strings.HasPrefix(grow.Rect.Fill, "rgb(255,") {
		t.Errorf("grow fill %s is not red", grow.Rect.Fill)
	}
	if !strings.HasSuffix(shrink.Rect.Fill, ",255)") {
		t.Errorf("shrink fill %s is not blue", shrink.Rect.Fill)
	}
	if !strings.Contains(grow.Title, "base 10 samples (10.00%), compare 60 samples (60.00%), delta +50.00%") {
		t.Errorf("grow tooltip = %q", grow.Title)
	}
	if doc.frame("gone") != nil {
		t.Errorf("a frame only in base has no width in the compare view")
	}
	buf.Reset()
	if err := RenderDiff(&buf, base, cmp, capture.Query{}, capture.Query{}, Options{BaseWidths: true}); err != nil {
		t.Fatal(err)
	}
	bdoc := parseSVG(t, buf.Bytes())
	buf.Reset()
	// Two time ranges of one capture.
	if err := RenderDiff(&buf, base, base, capture.Query{From: 0, To: 1}, capture.Query{From: 1}, Options{}); err != nil {
		t.Fatal(err)
	}
	if sub := parseSVG(t, buf.Bytes()).text("subtitle"); !strings.Contains(sub, "0 s to 1 s (10 samples) vs compare cpu on testhost 1 s to end (90 samples)") {
		t.Errorf("subtitle %q should name both ranges", sub)
	}
	if g := bdoc.frame("gone"); g == nil || g.V != 10 || !strings.HasSuffix(g.Rect.Fill, ",255)") {
		t.Errorf("widths=base should show the vanished frame in blue: %+v", g)
	}
}
